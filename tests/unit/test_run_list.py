"""Listing runs (GET /cpulse/results): Rally's tables read in a few queries on a real
SQLite Rally DB, the summary model, and the query parameters' rules."""

import datetime
import time

import pytest
import sqlalchemy
from werkzeug.datastructures import MultiDict

from cloudpulse import results
from cloudpulse_api import checks
from cloudpulse_rally import report
from cloudpulse_rally import tasks
from tests.unit import test_rally_report
from tests.unit import test_rally_store

ENDPOINT, FUNCTIONAL = results.CheckType.ENDPOINT, results.CheckType.FUNCTIONAL


def _recorded_run(store, check_results, project_id=None):
    handle = store.create_run([ENDPOINT], project_id)
    store.set_running(handle)
    store.record(handle, ENDPOINT, {"timeout": 3}, check_results, time.time(), time.time())
    store.set_finished(handle)
    return handle


@pytest.fixture
def runs(tmp_path, rally_store):
    """A store with, oldest first: a healthy run of project p1, an unhealthy one of p2, a
    functional run of no project that was interrupted, a queued one of p1, a running one
    of p1."""
    store = rally_store
    passed = test_rally_report._results()[:1]
    handles = {"healthy": _recorded_run(store, passed, "p1"),
               "unhealthy": _recorded_run(store, test_rally_report._results(), "p2"),
               "interrupted": store.create_run([FUNCTIONAL])}
    store.mark_interrupted(handles["interrupted"], "the server stopped")
    handles["queued"] = store.create_run([ENDPOINT], "p1")
    handles["running"] = store.create_run([ENDPOINT, FUNCTIONAL], "p1")
    store.set_running(handles["running"])
    for age, name in enumerate(["running", "queued", "interrupted", "unhealthy",
                                "healthy"]):
        test_rally_store._age(tmp_path, handles[name], days=age)
    return store, handles


def _handles(summaries):
    return [s.handle for s in summaries]


def test_a_list_is_newest_first_and_agrees_with_each_run(runs):
    store, handles = runs
    listed = store.list_runs(all_projects=True)
    assert _handles(listed) == [handles[n] for n in ("running", "queued", "interrupted",
                                                     "unhealthy", "healthy")]
    for summary in listed:   # the summary is what the full run says of itself
        assert summary == store.get_run(summary.handle).summary(), summary.handle
    assert [(s.state.value, s.healthy) for s in listed] == [
        ("running", False), ("queued", False), ("interrupted", False),
        ("finished", False), ("finished", True)]


def test_filters_and_pages(runs):
    store, handles = runs
    assert _handles(store.list_runs(project_id="p1")) == [
        handles["running"], handles["queued"], handles["healthy"]]
    assert store.list_runs() == []   # neither a project nor every project: nothing
    assert _handles(store.list_runs(check_type=FUNCTIONAL, all_projects=True)) == [
        handles["running"], handles["interrupted"]]
    for state in results.RunState:
        assert {s.state for s in store.list_runs(state=state, all_projects=True)} == {state}
    since = results.utcnow() - datetime.timedelta(days=1, hours=1)
    assert _handles(store.list_runs(since=since, all_projects=True)) == [
        handles["running"], handles["queued"]]
    first = store.list_runs(all_projects=True, limit=2)
    second = store.list_runs(all_projects=True, limit=2, marker=first[-1].handle)
    third = store.list_runs(all_projects=True, limit=2, marker=second[-1].handle)
    assert _handles(first + second + third) == _handles(store.list_runs(all_projects=True))
    with pytest.raises(tasks.UnknownMarker, match="marker: no run 'nope'"):
        store.list_runs(all_projects=True, marker="nope")
    # another project's handle is no marker for p1: it is not among p1's runs
    with pytest.raises(tasks.UnknownMarker):
        store.list_runs(project_id="p1", marker=handles["unhealthy"])


def test_a_list_is_three_queries_however_many_runs(runs):
    store, _ = runs
    for _ in range(20):
        _recorded_run(store, test_rally_report._results())
    statements = []
    from rally.common.db import api as db_api
    engine = db_api.get_engine()

    def count(conn, cursor, statement, *args):
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    sqlalchemy.event.listen(engine, "before_cursor_execute", count)
    try:
        listed = store.list_runs(all_projects=True, limit=500, marker=None)
    finally:
        sqlalchemy.event.remove(engine, "before_cursor_execute", count)
    assert len(listed) == 25
    assert len(statements) == 3, statements


def test_the_summary_round_trips_through_the_api_document():
    now = results.utcnow().replace(microsecond=123000)   # the API's times have ms
    summary = results.RunSummary("h", ["endpoint", "functional"], "finished", True, now,
                                 now, "p1")
    doc = summary.to_api()
    assert doc["timestamp"] == doc["finished_at"] and doc["healthy"] is True
    assert results.RunSummary.from_api(doc) == summary
    run = results.CheckRun("h", ["endpoint"], "finished", now, now,
                           test_rally_report._results()[:1], "p1")
    # a result document is its run's summary and more
    assert run.to_api().items() >= run.summary().to_api().items()


def test_a_crashed_task_is_not_healthy_even_when_its_sla_passed():
    row = {"uuid": "u", "status": "crashed", "validation_result": {}, "pass_sla": True,
           "created_at": results.utcnow(), "updated_at": results.utcnow()}
    assert report.task_summary(row, [report.TAG], 1).healthy is False
    assert report.task_summary(dict(row, status="finished"), [report.TAG], 1).healthy
    assert report.task_summary(dict(row, status="finished"), [report.TAG], 0).healthy is False


def test_since_takes_an_iso_time_or_a_duration():
    now = datetime.datetime(2026, 5, 1, 12, 0, tzinfo=datetime.timezone.utc)
    assert checks.parse_since("1h", now) == now - datetime.timedelta(hours=1)
    assert checks.parse_since("30m", now) == now - datetime.timedelta(minutes=30)
    assert checks.parse_since("2d", now) == now - datetime.timedelta(days=2)
    assert checks.parse_since("2026-04-30T10:00:00Z", now) == datetime.datetime(
        2026, 4, 30, 10, tzinfo=datetime.timezone.utc)
    assert checks.parse_since("2026-04-30T12:00:00+02:00", now) == datetime.datetime(
        2026, 4, 30, 10, tzinfo=datetime.timezone.utc)
    assert checks.parse_since("2026-04-30T10:00:00", now).tzinfo == datetime.timezone.utc
    for bad in ("yesterday", "", "-1", "0", "never", "1w"):
        with pytest.raises(checks.BadParameter, match="^since: "):
            checks.parse_since(bad, now)


@pytest.mark.parametrize("args,field", [
    ({"type": "bogus"}, "type"), ({"state": "done"}, "state"), ({"since": "soon"}, "since"),
    ({"limit": "0"}, "limit"), ({"limit": "501"}, "limit"), ({"limit": "ten"}, "limit")])
def test_bad_list_parameters_are_named(args, field):
    with pytest.raises(checks.BadParameter, match="^%s: " % field):
        checks.list_filters(MultiDict(args))


def test_list_parameters():
    filters = checks.list_filters(MultiDict({"type": "endpoint", "state": "finished",
                                             "limit": "500", "marker": "h"}))
    assert filters == {"check_type": ENDPOINT, "state": results.RunState.FINISHED,
                       "since": None, "limit": 500, "marker": "h", "cloud": None}
    assert checks.list_filters(MultiDict())["limit"] == checks.DEFAULT_LIMIT
