"""Health transitions (cloudpulse.health) on results as the endpoint and control-plane
checks write them, the notification's signature (cloudpulse.webhook), and the store
(cloudpulse_rally.notifications) on a real SQLite database."""

import datetime
import json

import pytest
import sqlalchemy as sa

from cloudpulse import health
from cloudpulse import results
from cloudpulse import webhook
from cloudpulse_rally import notifications
from cloudpulse_rally import queue

T0 = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
ENDPOINT = results.CheckType.ENDPOINT
# details as the endpoint check writes them (cloudpulse/checks/runner.py, service_states)
REFUSED = "cannot connect to http://127.0.0.1:9292/v2/images?limit=1: connection refused"
# a server's first run after its start fails at version discovery, the next ones at the list
COLD = "cannot connect to http://127.0.0.1:9292: connection refused"
WARM = "cannot connect to http://127.0.0.1:9292/v2/images: connection refused"
TIMEOUT_3 = "timeout after 3.0 s (http://127.0.0.1:9292/v2/images?limit=1)"
TIMEOUT_10 = "timeout after 10 s (http://127.0.0.1:9292/v2/images?limit=1)"
HTTP_500 = ("HTTP 500 from http://127.0.0.1:9292/v2/images: The server has either erred "
            "(request req-0b6f7c1e-4a0e-4d5a-9c39-2f0a4d8e6b11)")
HTTP_500_AGAIN = ("HTTP 500 from http://127.0.0.1:9292/v2/images: The server has either "
                  "erred (request req-9e2d3c4b-5a6f-4e7d-8c9b-0a1b2c3d4e5f)")
HTTP_503 = "HTTP 503 from http://127.0.0.1:9292/v2/images: The server has either erred"


def glance(status, details=""):
    return results.CheckResult(name="endpoint.glance", check_type=ENDPOINT,
                               component="glance", status=status, details=details)


PASS = glance("passed")


def replay(observed, thresholds=health.Thresholds(), reminder=0, every=60):
    """Feed results one run (`every` seconds) apart: [(event or None)] and the state."""
    state, events = None, []
    for i, result in enumerate(observed):
        state, transition = health.observe(
            state, "endpoint.glance", result, "run-%d" % i,
            T0 + datetime.timedelta(seconds=i * every), thresholds, reminder)
        events.append(transition.event.value if transition else None)
    return events, state


def test_a_fault_that_lasts_is_one_notice_when_it_starts_and_one_when_it_ends():
    events, state = replay([PASS] + [glance("failed", REFUSED)] * 60 + [PASS, PASS, PASS])
    assert [e for e in events if e] == ["failed", "recovered"]
    assert events[1] == "failed" and events[62] == "recovered"   # the 2nd passing run
    assert state.condition == health.Condition("passed")


def test_a_cause_change_is_a_transition_its_numbers_are_not():
    # recover_after 1: every change is told at once
    events, _ = replay([PASS, glance("failed", COLD), glance("failed", WARM),
                        glance("failed", REFUSED),
                        glance("failed", TIMEOUT_3), glance("failed", TIMEOUT_10),
                        glance("failed", HTTP_500), glance("failed", HTTP_500_AGAIN),
                        glance("failed", HTTP_503),
                        glance("error", HTTP_503)], health.Thresholds(1, 1))
    assert events == [None, "failed", None, None, "changed", None, "changed", None,
                      "changed", "changed"]


def test_a_cause_change_is_damped_as_a_recovery_a_new_fault_is_not():
    """glance restarting: refused, a 503 while it starts, then answers (the default 1/2)."""
    events, _ = replay([PASS, glance("failed", REFUSED), glance("failed", HTTP_503),
                        PASS, PASS, glance("failed", REFUSED), glance("failed", TIMEOUT_3),
                        glance("failed", TIMEOUT_10)])
    assert events == [None, "failed", None, None, "recovered", "failed", None, "changed"]


def test_a_flapping_fault_is_one_fault():
    fail = glance("failed", REFUSED)
    events, _ = replay([PASS, fail, PASS, fail, PASS, fail, PASS, PASS, PASS])
    assert events == [None, "failed", None, None, None, None, None, "recovered", None]


def test_fail_after_two_ignores_a_single_failing_run():
    fail = glance("failed", REFUSED)
    events, state = replay([PASS, fail, PASS, fail, fail, PASS, PASS],
                           health.Thresholds(fail_after=2, recover_after=2))
    assert events == [None, None, None, None, "failed", None, "recovered"]
    # the fault was first seen at its first failing run of the two
    _, failed_state = replay([PASS, fail, PASS, fail, fail],
                             health.Thresholds(fail_after=2, recover_after=2))
    assert failed_state.since == T0 + datetime.timedelta(seconds=180)


def test_a_fault_at_first_sight_is_told_with_no_old_state():
    state, transition = health.observe(None, "endpoint.glance", glance("failed", REFUSED),
                                       "run-0", T0)
    assert transition.event == health.Event.FAILED and transition.old is None
    assert health.observe(None, "endpoint.glance", PASS, "run-0", T0)[1] is None


def test_reminders_at_the_configured_period_while_the_fault_lasts():
    fail = glance("failed", REFUSED)
    events, _ = replay([PASS] + [fail] * 10 + [PASS, PASS], reminder=180, every=60)
    assert events == [None, "failed", None, None, "reminder", None, None, "reminder",
                      None, None, "reminder", None, "recovered"]


def test_a_hung_keystone_is_one_notice_not_one_per_service():
    """keystone times out; the endpoint check reports every other probe as not checked
    (cloudpulse/checks/endpoint.py): only keystone's transitions are told, and glance's
    state is what it was."""
    keystone_down = results.CheckResult(
        name="endpoint.keystone", check_type=ENDPOINT, component="keystone",
        status="failed", details="timeout after 10 s (http://127.0.0.1:5000/v3/auth/tokens)")
    keystone_up = results.CheckResult(name="endpoint.keystone", check_type=ENDPOINT,
                                      component="keystone", status="passed")
    not_checked = glance("error", "not checked: keystone failed (timeout after 10 s)")
    runs = ([(keystone_up, PASS)] + [(keystone_down, not_checked)] * 5
            + [(keystone_up, PASS)] * 2)
    states, told = {}, []
    for i, run in enumerate(runs):
        for result in run:
            states[result.name], transition = health.observe(
                states.get(result.name), result.name, result, "run-%d" % i,
                T0 + datetime.timedelta(minutes=i))
            if transition:
                told.append((transition.key, transition.event.value))
    assert told == [("endpoint.keystone", "failed"), ("endpoint.keystone", "recovered")]
    assert states["endpoint.glance"].condition == health.Condition("passed")
    assert health.observe(None, "endpoint.glance", not_checked, "run-0", T0) == (None, None)


def test_skipped_is_not_a_fault():
    events, _ = replay([PASS, glance("skipped", "no horizon_url"), PASS])
    assert events == [None, None, None]


def test_an_interrupted_run_says_nothing_about_the_cloud():
    run = results.CheckRun("h", [ENDPOINT], state=results.RunState.INTERRUPTED,
                           results=[glance("failed", REFUSED)])
    assert health.run_observations(run) == []


def test_a_signature_verifies_and_a_changed_body_or_old_timestamp_does_not():
    body = webhook.encode({"id": "n1", "event": "failed"})
    header = webhook.signature("s3cret-s3cret-s3cret", body, timestamp=1777000000)
    assert webhook.verify("s3cret-s3cret-s3cret", header, body, now=1777000010) == 1777000000
    with pytest.raises(webhook.BadSignature, match="does not match"):
        webhook.verify("s3cret-s3cret-s3cret", header, body + b" ", now=1777000010)
    with pytest.raises(webhook.BadSignature, match="does not match"):
        webhook.verify("another-secret", header, body, now=1777000010)
    with pytest.raises(webhook.BadSignature, match="off"):
        webhook.verify("s3cret-s3cret-s3cret", header, body, now=1777000000 + 301)
    with pytest.raises(webhook.BadSignature, match="expected"):
        webhook.verify("s3cret-s3cret-s3cret", "v1=abc", body)


def test_backoff_doubles_up_to_its_cap():
    assert [webhook.backoff(n, 2, 60) for n in range(1, 8)] == [2, 4, 8, 16, 32, 60, 60]


# -- the store -----------------------------------------------------------------------------
SETTINGS = notifications.Settings(
    cloud="box", thresholds={}, reminder_interval=0,
    configured_urls=("http://127.0.0.1:1/hook",), result_url="http://api/r?handle=%s")


@pytest.fixture
def engine(tmp_path):
    return sa.create_engine("sqlite:///%s" % (tmp_path / "n.sqlite"))


def _run(handle, *check_results, project=None):
    return results.CheckRun(handle, [ENDPOINT], state=results.RunState.FINISHED,
                            results=list(check_results), project_id=project)


def test_transitions_are_queued_with_the_run_off_the_queue_in_one_transaction(engine):
    run_queue, store = queue.RunQueue(engine), notifications.NotificationStore(engine)
    handle, _ = run_queue.add([ENDPOINT], None, 10, 3, lambda h: None, lambda h: None)
    run = _run(handle, glance("failed", REFUSED))

    def crash(conn):
        store.record_run(conn, run, SETTINGS)
        raise RuntimeError("the runner died here")
    with pytest.raises(RuntimeError):
        run_queue.finished(handle, also=crash)
    assert run_queue.in_flight(handle) and store.outbox() == [] and store.states() == []
    run_queue.finished(handle, also=lambda conn: store.record_run(conn, run, SETTINGS))
    assert not run_queue.in_flight(handle)
    assert [(url, attempts) for _, url, attempts, _ in store.outbox()] == [
        ("http://127.0.0.1:1/hook", 0)]


def test_a_members_webhook_gets_its_projects_transitions_masked_an_admins_all(engine):
    store = notifications.NotificationStore(engine)
    mine = store.add_webhook("http://127.0.0.1:2/a", "project-a", False, "secret-a" * 3)
    store.add_webhook("http://127.0.0.1:3/b", "project-b", False, "secret-b" * 3)
    admin = store.add_webhook("http://127.0.0.1:4/all", "ops", True, "secret-o" * 3)
    nova = results.CheckResult(name="endpoint.nova", check_type=ENDPOINT,
                               component="nova", status="failed",
                               details="nova-compute@compute-3 is down (last report "
                                       "2026-05-01T11:58:00)")
    with engine.begin() as conn:
        store.record_run(conn, _run("h-a", nova, project="project-a"), SETTINGS,
                         hosts={"compute-3"})
        store.record_run(conn, _run("h-srv", nova), SETTINGS)   # the server's own
    sent = {}
    for delivery in store.claim(lease=60):
        sent.setdefault(delivery.webhook, []).append(json.loads(delivery.body))
    assert sorted(sent) == sorted([notifications.CONFIGURED, mine.id, admin.id])
    assert [d["handle"] for d in sent[mine.id]] == ["h-a"]
    assert "compute-3" not in sent[mine.id][0]["details"]
    assert sorted(d["handle"] for d in sent[admin.id]) == ["h-a", "h-srv"]
    assert all("compute-3" in d["details"] for d in sent[admin.id])
    one = sent[admin.id][0]
    assert {k: one[k] for k in ("cloud", "check", "component", "old_state", "new_state",
                                "event")} == {
        "cloud": "box", "check": "endpoint.nova", "component": "nova", "old_state": None,
        "new_state": "failed", "event": "failed"}
    assert one["result_url"] == "http://api/r?handle=" + one["handle"]


def test_a_claimed_delivery_is_leased_to_one_runner(engine):
    store = notifications.NotificationStore(engine)
    with engine.begin() as conn:
        store.record_run(conn, _run("h", glance("failed", REFUSED)), SETTINGS)
    first = store.claim(lease=30)
    assert len(first) == 1 and store.claim(lease=30) == []
    later = results.utcnow() + datetime.timedelta(seconds=31)
    assert [d.id for d in store.claim(lease=30, now=later)] == [first[0].id]
    store.delivered(first[0].id)
    assert store.outbox() == []
