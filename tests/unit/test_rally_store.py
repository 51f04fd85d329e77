"""The server's Rally store on a real SQLite Rally DB: runs written from several threads
at once, as the server's HTTP threads and run workers do."""

import concurrent.futures
import datetime
import sqlite3
import time

from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_rally import tasks
from tests.unit import test_rally_report


def test_concurrent_runs_are_all_recorded(rally_store):
    store = rally_store
    check_results = test_rally_report._results()   # one passed, one failed

    def one_run(i):
        handle = store.create_run([results.CheckType.ENDPOINT])
        store.set_running(handle)
        store.get_run(handle)                    # a client polling meanwhile
        store.record(handle, results.CheckType.ENDPOINT, {"timeout": 3}, check_results,
                     time.time(), time.time())
        store.set_finished(handle)
        return handle

    with concurrent.futures.ThreadPoolExecutor(max_workers=6) as pool:
        handles = list(pool.map(one_run, range(36)))   # raises "database is locked", if any
    for handle in handles:
        run = store.get_run(handle)
        assert run.state == results.RunState.FINISHED
        assert [(r.name, r.status) for r in run.results] == [
            ("endpoint.keystone", results.Status.PASSED),
            ("endpoint.nova", results.Status.FAILED)]


def _mode(path):
    return oct(path.stat().st_mode & 0o777)


def test_state_directory_and_db_are_owner_only_from_creation(tmp_path):
    state = tmp_path / "state"
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % state)
    tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    assert _mode(state) == "0o700"
    assert _mode(state / "rally.sqlite") == "0o600"
    assert _mode(state / "rally.conf") == "0o600"


def test_looser_state_is_fixed_at_start_with_a_warning(tmp_path, caplog):
    state = tmp_path / "old-state"
    state.mkdir(mode=0o755)
    state.chmod(0o755)
    (state / "rally.sqlite").touch(mode=0o644)
    (state / "rally.sqlite").chmod(0o644)
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % state)
    tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    assert _mode(state) == "0o700"
    assert _mode(state / "rally.sqlite") == "0o600"
    warned = [r.getMessage() for r in caplog.records if "readable by others" in r.getMessage()]
    assert len(warned) == 2, warned


def _finished_run(store, check_types):
    handle = store.create_run(check_types)
    store.set_finished(handle)
    return handle


def _age(tmp_path, handle, days):
    db = sqlite3.connect(str(tmp_path / "rally.sqlite"))
    with db:
        db.execute("update tasks set created_at = ? where uuid = ?", (
            (datetime.datetime.utcnow() - datetime.timedelta(days=days)).isoformat(" "),
            handle))
    db.close()


def test_old_runs_and_runs_beyond_the_limit_per_type_are_pruned_never_a_running_one(
        tmp_path, rally_store):
    store = rally_store
    endpoint, functional = results.CheckType.ENDPOINT, results.CheckType.FUNCTIONAL
    old = [_finished_run(store, [endpoint]) for _ in range(2)]
    old_running = store.create_run([endpoint])
    store.set_running(old_running)
    for handle in old + [old_running]:
        _age(tmp_path, handle, days=40)
    recent = [_finished_run(store, [endpoint]) for _ in range(3)]
    both = _finished_run(store, [endpoint, functional])
    assert sorted(store.prune(max_age_days=30, max_per_type=0)) == sorted(old)
    assert store.get_run(old[0]) is None
    assert store.get_run(old_running).state == results.RunState.RUNNING
    # the newest two of each type are kept: `both` counts for endpoint and functional
    assert sorted(store.prune(max_age_days=0, max_per_type=2)) == sorted(recent[:2])
    assert store.get_run(recent[2]) is not None and store.get_run(both) is not None
    assert store.prune(max_age_days=30, max_per_type=2) == []


def test_a_restart_finds_the_last_run_of_a_type_and_the_unfinished_ones(tmp_path, rally_store):
    store = rally_store
    endpoint = results.CheckType.ENDPOINT
    assert store.last_run_at(endpoint) is None
    earlier = _finished_run(store, [endpoint])
    _age(tmp_path, earlier, days=1)
    before = results.utcnow()
    queued = store.create_run([endpoint, results.CheckType.OPERATOR])
    running = _finished_run(store, [results.CheckType.OPERATOR])
    store.set_running(running)
    last = store.last_run_at(endpoint)
    assert before - datetime.timedelta(seconds=1) <= last <= results.utcnow()
    assert store.last_run_at(results.CheckType.FUNCTIONAL) is None
    assert sorted(store.interrupted()) == sorted([queued, running])
