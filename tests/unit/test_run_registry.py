"""Runs on this machine (cloudpulse.checks.workload.RunRegistry) with real flocks and real
processes: a run killed by SIGKILL is dead at once, a live one never is, and one workload
run at a time goes into a cloud."""

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from cloudpulse.checks import workload

_HOLDER = textwrap.dedent("""
    import sys, time
    from cloudpulse.checks import workload
    with workload.RunRegistry(sys.argv[1]).running(sys.argv[2], "cloud-a", 5):
        print("held", flush=True)
        time.sleep(600)
""")


@pytest.fixture
def holder(tmp_path):
    procs = []

    def start(run_id):
        proc = subprocess.Popen([sys.executable, "-c", _HOLDER, str(tmp_path), run_id],
                                stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "held"
        procs.append(proc)
        return proc
    yield start
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_live_run_is_not_dead_and_a_killed_one_is(tmp_path, holder):
    registry = workload.RunRegistry(str(tmp_path))
    proc = holder("run-1")
    assert registry.dead_runs() == []
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert registry.dead_runs() == ["run-1"]
    registry.forget("run-1")
    assert registry.dead_runs() == []


def test_a_finished_run_leaves_no_file(tmp_path):
    registry = workload.RunRegistry(str(tmp_path))
    with registry.running("run-2", "cloud-a", 1):
        assert registry.dead_runs() == []
        assert (tmp_path / "run-2.run").exists()
    assert not (tmp_path / "run-2.run").exists()
    assert registry.dead_runs() == []


def test_one_workload_run_at_a_time_per_cloud(tmp_path, holder):
    holder("run-3")   # holds cloud-a
    registry = workload.RunRegistry(str(tmp_path))
    with pytest.raises(workload.QueueTimeout, match="within 1 s"):
        with registry.running("run-4", "cloud-a", 1):
            pass
    with registry.running("run-5", "cloud-b", 1):   # another cloud is not held up
        pass


def test_a_run_that_left_something_stays_for_the_sweeper(tmp_path):
    registry = workload.RunRegistry(str(tmp_path))
    with registry.running("run-6", "cloud-a", 1):
        registry.keep("run-6")
    assert registry.dead_runs() == ["run-6"]
