"""The run queue (cloudpulse_rally.queue) on a real SQLite database: what the API and the
runners rely on.  Across processes on PostgreSQL: tests/integration/test_scale.py."""

import socket
import subprocess
import sys

import pytest
import sqlalchemy as sa

from cloudpulse import results
from cloudpulse_rally import queue

ENDPOINT, OPERATOR = results.CheckType.ENDPOINT, results.CheckType.OPERATOR


@pytest.fixture
def run_queue(tmp_path):
    return queue.RunQueue(sa.create_engine("sqlite:///%s" % (tmp_path / "q.sqlite")))


def _add(run_queue, types, project=None, max_active=10, max_per_project=3, cloud="box"):
    made = []
    handle, new = run_queue.add(types, project, max_active, max_per_project, made.append,
                                made.remove, cloud=cloud)
    assert made == ([handle] if new else [])
    return handle, new


def test_a_run_already_queued_for_the_project_is_the_answer_not_a_second(run_queue):
    first, new = _add(run_queue, [ENDPOINT, OPERATOR], "p1")
    assert new
    assert _add(run_queue, [OPERATOR, ENDPOINT], "p1") == (first, False)
    other, new = _add(run_queue, [ENDPOINT, OPERATOR], "p2")
    assert new and other != first
    assert _add(run_queue, [ENDPOINT], None)[1]   # the server's own


def test_the_same_run_on_another_cloud_is_another_run(run_queue):
    first, _ = _add(run_queue, [ENDPOINT], "p1", cloud="box")
    other, new = _add(run_queue, [ENDPOINT], "p1", cloud="box-b")
    assert new and other != first
    assert _add(run_queue, [ENDPOINT], "p1", cloud="box-b") == (other, False)
    assert run_queue.active_types("box-b") == [("p1", frozenset({"endpoint"}))]
    assert run_queue.claim("r1")[2] == "box" and run_queue.claim("r1")[2] == "box-b"


def test_a_queue_made_before_runs_named_their_cloud_keeps_its_runs(tmp_path):
    """A server upgraded with runs in flight: the table gains the cloud column (and the
    key with it), and its runs are the first cloud's."""
    engine = sa.create_engine("sqlite:///%s" % (tmp_path / "q.sqlite"))
    with engine.begin() as conn:   # the table as the previous release made it
        conn.execute(sa.text(
            "CREATE TABLE cloudpulse_queue (handle VARCHAR(36) PRIMARY KEY, project "
            "VARCHAR(64) NOT NULL, check_types VARCHAR(255) NOT NULL, state VARCHAR(16) "
            "NOT NULL, runner VARCHAR(255), heartbeat_at DATETIME, created_at DATETIME NOT "
            "NULL, CONSTRAINT uniq_cloudpulse_queue0run UNIQUE (project, check_types))"))
        conn.execute(sa.text("CREATE INDEX cloudpulse_queue_state_idx ON cloudpulse_queue "
                             "(state, created_at)"))
        conn.execute(sa.text("INSERT INTO cloudpulse_queue VALUES ('h1', 'p1', 'endpoint', "
                             "'queued', NULL, NULL, '2026-12-01 10:00:00')"))
    run_queue = queue.RunQueue(engine, first_cloud="box")
    assert run_queue.handles() == {"h1"}
    assert _add(run_queue, [ENDPOINT], "p1", cloud="box") == ("h1", False)
    assert _add(run_queue, [ENDPOINT], "p1", cloud="box-b")[1]
    assert run_queue.claim("r1") == ("h1", [ENDPOINT], "box", "p1", {})
    queue.RunQueue(engine, first_cloud="box")   # once: a second start changes nothing
    assert len(run_queue.handles()) == 2


def test_runs_asked_with_other_arguments_are_other_runs(run_queue):
    upgrade = [results.CheckType.UPGRADE]
    made = []

    def add(args):
        return run_queue.add(upgrade, "p1", 10, 5, made.append, made.remove, cloud="box",
                             args=args)
    first, new = add({"snapshot": "s1"})
    assert new and add({"snapshot": "s1"}) == (first, False)
    second, new = add({"snapshot": "s2"})
    assert new and second != first
    watch, new = add({"watch": 600, "snapshot": "s1"})   # the same snapshot, watched
    assert new and watch not in (first, second)
    assert add({"snapshot": "s1", "watch": 600}) == (watch, False)   # in any order
    newest, new = add(None)   # the project's newest snapshot, whichever it is then
    assert new and newest not in (first, second, watch)
    assert run_queue.claim("r1").args == {"snapshot": "s1"}
    assert run_queue.claim("r1")[-1] == {"snapshot": "s2"}
    assert run_queue.claim("r1").args == {"snapshot": "s1", "watch": 600}
    assert run_queue.claim("r1").args == {}


def test_a_run_is_told_to_stop_through_its_row(run_queue):
    handle, _ = _add(run_queue, [ENDPOINT], "p1")
    assert run_queue.stop_requested(handle) is False
    assert run_queue.request_stop(handle) is True
    assert run_queue.stop_requested(handle) is True
    run_queue.finished(handle)
    assert run_queue.request_stop(handle) is False   # no longer in flight


def test_a_queue_made_before_runs_had_arguments_keeps_its_runs(tmp_path):
    engine = sa.create_engine("sqlite:///%s" % (tmp_path / "q.sqlite"))
    with engine.begin() as conn:   # the table as the release before this one made it
        conn.execute(sa.text(
            "CREATE TABLE cloudpulse_queue (handle VARCHAR(36) PRIMARY KEY, cloud "
            "VARCHAR(255) NOT NULL, project VARCHAR(64) NOT NULL, check_types VARCHAR(255) "
            "NOT NULL, state VARCHAR(16) NOT NULL, runner VARCHAR(255), heartbeat_at "
            "DATETIME, created_at DATETIME NOT NULL, CONSTRAINT uniq_cloudpulse_queue0run "
            "UNIQUE (cloud, project, check_types))"))
        conn.execute(sa.text("INSERT INTO cloudpulse_queue VALUES ('h1', 'east', 'p1', "
                             "'endpoint', 'queued', NULL, NULL, '2026-12-01 10:00:00')"))
    run_queue = queue.RunQueue(engine, first_cloud="west")
    assert _add(run_queue, [ENDPOINT], "p1", cloud="east") == ("h1", False)
    assert run_queue.claim("r1") == ("h1", [ENDPOINT], "east", "p1", {})
    assert run_queue.request_stop("h1") and run_queue.stop_requested("h1")


def test_the_queue_is_bounded_overall_and_per_project(run_queue):
    _add(run_queue, [ENDPOINT], "p1", max_per_project=1)
    with pytest.raises(queue.QueueFull, match="1 runs of project p1"):
        _add(run_queue, [OPERATOR], "p1", max_per_project=1)
    _add(run_queue, [ENDPOINT], "p2", max_active=2)
    with pytest.raises(queue.QueueFull, match="2 runs are queued or running"):
        _add(run_queue, [ENDPOINT], "p3", max_active=2)


def test_the_run_that_filled_the_queue_an_instant_ago_is_the_answer_not_a_429(run_queue):
    """Seen in CI (200 POSTs from four projects, room for three runs): another request
    queued the project's run just after this one looked for it, and that run filled the
    queue.  The answer is that run's handle, not a 429."""
    _add(run_queue, [ENDPOINT], "p1")
    _add(run_queue, [ENDPOINT], "p2")
    lookup, theirs = run_queue.active, []

    def racing_lookup(project_id, check_types, cloud="", args=None):
        found = lookup(project_id, check_types, cloud, args)
        if not theirs:   # the other request queues the same run now
            theirs.append(None)
            theirs[0] = _add(run_queue, [ENDPOINT], "p3", max_active=3)[0]
        return found
    run_queue.active = racing_lookup
    made = []
    assert run_queue.add([ENDPOINT], "p3", 3, 3, made.append, made.remove, cloud="box") == (
        theirs[0], False)
    assert made == [] and len(run_queue.handles()) == 3
    with pytest.raises(queue.QueueFull):   # a run that is not there yet is still refused
        run_queue.add([ENDPOINT], "p4", 3, 3, made.append, made.remove, cloud="box")


def test_runners_take_the_oldest_run_once_and_finish_it(run_queue):
    first, _ = _add(run_queue, [ENDPOINT], "p1")
    second, _ = _add(run_queue, [ENDPOINT, OPERATOR], "p2")
    assert run_queue.claim("r1") == (first, [ENDPOINT], "box", "p1", {})
    assert run_queue.claim("r2") == (second, [ENDPOINT, OPERATOR], "box", "p2", {})
    assert run_queue.claim("r1") is None
    assert run_queue.wait_finished(first, 0.05) is False
    run_queue.finished(first)
    assert run_queue.wait_finished(first, 1) is True
    assert run_queue.handles() == {second}


def test_runs_of_a_runner_that_stopped_are_taken_back(run_queue):
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True).stdout.strip()
    here, silent, other_host = [_add(run_queue, [ENDPOINT], p)[0] for p in ("a", "b", "c")]
    run_queue.claim("%s:%s:x" % (socket.gethostname(), gone))   # its process is gone
    run_queue.claim(queue.runner_id())                            # alive, beating
    run_queue.claim("elsewhere:1:y")                              # another machine
    assert run_queue.take_dead(dead_after=60) == [here]
    with run_queue.engine.begin() as conn:   # the other machine's runner fell silent
        conn.execute(sa.text("update cloudpulse_queue set heartbeat_at = "
                             "datetime('now', '-2 minutes') where runner like 'elsewhere%'"))
    assert run_queue.take_dead(dead_after=60) == [other_host]
    assert run_queue.handles() == {silent}


def test_two_processes_queueing_the_same_run_at_once_get_one_handle(rally_store, monkeypatch):
    """Both looked before either queued: the database's unique key decides, on Rally's own
    engine (oslo.db, which turns the violation into DBDuplicateEntry), and the loser's
    Rally task is discarded."""
    store = rally_store
    run_queue = queue.RunQueue(store.engine())

    def add():
        return run_queue.add([ENDPOINT], "p1", 10, 3,
                             lambda handle: store.create_run([ENDPOINT], "p1", handle),
                             store.discard_run)
    first, _ = add()
    real_active, looked = run_queue.active, []

    def active_as_seen_before_the_first_queued(*args):
        if not looked:   # the second process's first look: nothing queued yet
            looked.append(args)
            return None
        return real_active(*args)
    monkeypatch.setattr(run_queue, "active", active_as_seen_before_the_first_queued)
    second, new = add()
    assert (second, new) == (first, False)
    assert [r.handle for r in store.list_runs(all_projects=True)] == [first]


def test_a_run_rally_has_ended_is_running_until_it_is_off_the_queue(rally_store):
    """Rally records a run's end a moment before its runner takes it off the queue: a
    client that read it as finished in that moment and asked again was handed the same
    run (seen in CI).  It reads as running, by handle and in lists, until it is off."""
    import collections
    import threading

    from cloudpulse_api import service as cp_service

    svc = cp_service.CheckService.__new__(cp_service.CheckService)   # its cloud unneeded
    svc.rally, svc.queue = rally_store, queue.RunQueue(rally_store.engine())
    svc._runs_lock, svc._finished_runs = threading.Lock(), collections.OrderedDict()
    svc._long_polls = threading.BoundedSemaphore(1)
    handle, _ = svc.queue.add([ENDPOINT], "p1", 10, 3,
                              lambda h: rally_store.create_run([ENDPOINT], "p1", h),
                              rally_store.discard_run)
    assert svc.queue.claim("r1")[0] == handle
    rally_store.set_finished(handle)
    assert svc.get(handle).state == results.RunState.RUNNING
    [summary] = svc.list_runs(project_id="p1")
    assert (summary.state, summary.healthy) == (results.RunState.RUNNING, False)
    svc.queue.finished(handle)
    assert svc.get(handle).state == results.RunState.FINISHED
    assert svc.list_runs(project_id="p1")[0].state == results.RunState.FINISHED
