"""Availability (cloudpulse.availability) over the history the store writes
(cloudpulse_rally.history) on a real SQLite database, from runs as the endpoint check
records them."""

import datetime

import pytest
import sqlalchemy as sa

from cloudpulse import availability
from cloudpulse import health
from cloudpulse import results
from cloudpulse_rally import history

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
ENDPOINT = results.CheckType.ENDPOINT
REFUSED = "cannot connect to http://127.0.0.1:9292/v2/images?limit=1: connection refused"
GAPS = {t: 600 for t in results.CheckType}


def _result(component, status, details=""):
    return results.CheckResult(name="endpoint." + component, check_type=ENDPOINT,
                               component=component, status=status, details=details,
                               duration=0.05)


def _run(minute, glance="passed", keystone="passed", state=results.RunState.FINISHED,
         project=None):
    at = T0 + datetime.timedelta(minutes=minute)
    checks = [_result("keystone", keystone, "" if keystone == "passed" else "HTTP 500")]
    if keystone == "passed":
        checks.append(_result("glance", glance, "" if glance == "passed" else REFUSED))
    else:   # as the endpoint check writes it when keystone fails first
        checks.append(_result("glance", "error", results.NOT_CHECKED + "keystone failed"))
    return results.CheckRun(handle="run-%d" % minute, check_types=[ENDPOINT], state=state,
                            created_at=at, finished_at=at, results=checks,
                            project_id=project)


@pytest.fixture
def store(tmp_path):
    return history.HistoryStore(sa.create_engine("sqlite:///%s" % (tmp_path / "h.sqlite")))


def _record(store, runs, cloud="box"):
    for run in runs:
        with store.engine.begin() as conn:
            store.record_run(conn, run, cloud, GAPS)


def _by_key(store, window, now, project=None, slo=0.999, cloud="box"):
    spans = store.spans(cloud, project, now - datetime.timedelta(seconds=window))
    return {a.key: a for a in availability.over_window(spans, window, slo, now)}


def test_a_month_of_healthy_runs_is_one_span_per_key(store):
    _record(store, [_run(m) for m in range(0, 60 * 24, 5)])
    spans = store.spans("box", None, T0)
    assert sorted((s.key, s.runs) for s in spans) == [
        ("endpoint", 288), ("endpoint.glance", 288), ("endpoint.keystone", 288)]
    now = T0 + datetime.timedelta(hours=24)
    glance = _by_key(store, 86400, now)["endpoint.glance"]
    assert glance.ratio == 1.0 and glance.outages == () and glance.slo_met
    assert glance.unknown == 5 * 60   # the last run was 5 minutes before now


def test_an_outage_lasts_from_its_first_failing_run_to_the_first_passing_one(store):
    # passing every minute, glance refused from minute 10 to 19, passing again at 20
    _record(store, [_run(m, glance="failed" if 10 <= m < 20 else "passed")
                    for m in range(60)])
    now = T0 + datetime.timedelta(minutes=59)
    by_key = _by_key(store, 3600, now)
    glance = by_key["endpoint.glance"]
    assert glance.down == 600 and glance.up == 59 * 60 - 600
    assert [(o.start, o.end, o.seconds, o.state, o.ongoing) for o in glance.outages] == [
        (T0 + datetime.timedelta(minutes=10), T0 + datetime.timedelta(minutes=20), 600.0,
         health.State.FAILED, False)]
    assert glance.outages[0].details == REFUSED
    assert glance.ratio == pytest.approx(1 - 600 / (59 * 60))
    assert glance.budget == pytest.approx(0.001 * 59 * 60)
    assert glance.budget_left < 0 and glance.slo_met is False
    # the type as a whole was down as long; keystone never
    assert by_key["endpoint"].down == 600
    assert by_key["endpoint.keystone"].ratio == 1.0


def test_a_run_that_could_not_check_is_neither_up_nor_down(store):
    _record(store, [_run(0), _run(1, keystone="failed"), _run(2, keystone="failed"),
                    _run(3)])
    by_key = _by_key(store, 180, T0 + datetime.timedelta(minutes=3))
    # keystone failed for 2 minutes; glance, not checked meanwhile, said nothing: its
    # passed span goes on (the blame is keystone's)
    assert by_key["endpoint.keystone"].down == 120
    assert by_key["endpoint.glance"].down == 0 and by_key["endpoint.glance"].error == 0
    assert by_key["endpoint"].down == 120


def test_error_time_counts_apart_and_never_as_uptime(store):
    runs = [_run(0), _run(1, glance="error"), _run(2, glance="error"), _run(3)]
    _record(store, runs)
    glance = _by_key(store, 180, T0 + datetime.timedelta(minutes=3))["endpoint.glance"]
    assert (glance.up, glance.down, glance.error) == (60, 0, 120)
    assert glance.ratio == 1.0   # of the measured minute
    assert [o.state for o in glance.outages] == [health.State.ERROR]


def test_a_gap_longer_than_max_gap_is_unknown_time(store):
    _record(store, [_run(0), _run(5), _run(30), _run(35)])   # 25 minutes without a run
    glance = _by_key(store, 35 * 60, T0 + datetime.timedelta(minutes=35))["endpoint.glance"]
    assert glance.up == 10 * 60 and glance.unknown == 25 * 60
    assert len([s for s in store.spans("box", None, T0) if s.key == "endpoint.glance"]) == 2


def test_an_interrupted_run_says_nothing(store):
    _record(store, [_run(0), _run(1, glance="failed", state=results.RunState.INTERRUPTED),
                    _run(2)])
    glance = _by_key(store, 120, T0 + datetime.timedelta(minutes=2))["endpoint.glance"]
    assert glance.down == 0 and glance.up == 120


def test_windows_clip_outages_and_projects_and_clouds_are_apart(store):
    _record(store, [_run(m, glance="failed" if m >= 50 else "passed") for m in range(61)])
    _record(store, [_run(m, project="p1") for m in range(61)])
    _record(store, [_run(m) for m in range(61)], cloud="other")
    now = T0 + datetime.timedelta(minutes=60)
    glance = _by_key(store, 300, now)["endpoint.glance"]
    assert glance.down == 300 and glance.unknown == 0
    [outage] = glance.outages
    assert outage.start == now - datetime.timedelta(minutes=5) and outage.ongoing
    assert _by_key(store, 3600, now, project="p1")["endpoint.glance"].down == 0
    assert _by_key(store, 3600, now, cloud="other")["endpoint.glance"].down == 0


def test_latest_gives_the_newest_state_and_the_last_success(store):
    _record(store, [_run(0), _run(1), _run(2, glance="failed"), _run(3, glance="failed")])
    latest = store.latest("box", None)
    span, last_passed = latest["endpoint.glance"]
    assert span.state == health.State.FAILED and span.handle == "run-3"
    assert last_passed == T0 + datetime.timedelta(minutes=2)   # it held until then
    assert latest["endpoint.keystone"][0].state == health.State.PASSED


def test_prune_keeps_the_newest_span_of_every_key(store):
    _record(store, [_run(0), _run(1, glance="failed"), _run(2)])
    # the first two spans of glance and of the type as a whole
    assert store.prune(T0 + datetime.timedelta(days=1)) == 4
    assert {s.key for s in store.spans("box", None, T0)} == {
        "endpoint", "endpoint.glance", "endpoint.keystone"}


def test_type_state_is_the_worst_of_its_results():
    ok, bad, err = (_result("glance", s) for s in ("passed", "failed", "error"))
    assert availability.type_state([ok, err]) == health.State.ERROR
    assert availability.type_state([err, bad, ok]) == health.State.FAILED
    assert availability.type_state([ok]) == health.State.PASSED
    assert availability.type_state([]) is None


def test_a_types_verdict_is_unknown_when_its_newest_run_is_old_or_could_not_check(store):
    _record(store, [_run(0), _run(1, glance="failed")])
    check = store.status("box", None, [ENDPOINT], GAPS,
                         now=T0 + datetime.timedelta(minutes=2)).checks[0]
    assert check.verdict == availability.Verdict.UNHEALTHY
    assert [f.key for f in check.failing] == ["endpoint.glance"]
    later = store.status("box", None, [ENDPOINT], GAPS,
                         now=T0 + datetime.timedelta(minutes=20)).checks[0]
    assert (later.verdict, later.failing) == (availability.Verdict.UNKNOWN, ())
    _record(store, [_run(21, glance="error")])
    check = store.status("box", None, [ENDPOINT], GAPS,
                         now=T0 + datetime.timedelta(minutes=21)).checks[0]
    assert check.verdict == availability.Verdict.UNKNOWN
    assert [(f.key, f.state) for f in check.failing] == [("endpoint.glance",
                                                          health.State.ERROR)]
