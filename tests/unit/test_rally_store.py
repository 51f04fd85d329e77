"""The server's Rally store on a real SQLite Rally DB: runs written from several threads
at once, as the server's HTTP threads and run workers do."""

import concurrent.futures
import time

from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_rally import tasks
from tests.unit import test_rally_report


def test_concurrent_runs_are_all_recorded(tmp_path):
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % tmp_path)
    store = tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    store.ensure_env({})
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
