"""The operator checks through Rally on the bed: `rally task start task_templates/operator.yaml`
(the validators run the checks, the scenario reports them, both read back into the typed
model), and two runs in one process, as the server's engine runs them."""

import json
import os
import subprocess
import sys
import textwrap
import time

import yaml

from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_rally import tasks

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)
MAP = os.path.join(TOP, "tests", "operator", "bed_map.yaml")
SSH_CHECKS = ["services", "rabbitmq", "galera", "haproxy", "pacemaker"]

# Reads a task back the way the facade does (cloudpulse_rally.report.task_to_run).
_READ_BACK = textwrap.dedent("""
    import json, sys
    from rally import api
    from cloudpulse_rally import report
    task = api.API(config_file=sys.argv[1]).task.get(sys.argv[2], detailed=True)
    task.setdefault("tags", ["cloudpulse", "cloudpulse-type:operator"])
    print(json.dumps(report.task_to_run(task).to_api()))
""")


def _env_spec(box):
    # The operator validators need an OpenStack platform (the cloud whose control plane
    # the bed stands for): the cloud in a box's admin.
    region = cloud.connect(box.admin_cloud, box.clouds_yaml).config
    return tasks.env_spec(region, is_admin=True)


def _rally(tmp_path, *args):
    return subprocess.run([os.path.join(BIN, "rally"), "--config-file",
                           str(tmp_path / "rally.conf"), *args],
                          capture_output=True, text=True, timeout=300)


def _task_args(bed, service_map=MAP):
    return {"service_map": service_map, "known_hosts_file": bed.settings.known_hosts_file,
            "ssh_key_file": bed.settings.key_file, "checks": SSH_CHECKS,
            "ca_file": bed.ca_file}


def _start(bed, box, tmp_path):
    (tmp_path / "rally.conf").write_text(
        "[database]\nconnection = sqlite:///%s\n" % (tmp_path / "rally.sqlite"))
    if not (tmp_path / "rally.sqlite").exists():
        assert _rally(tmp_path, "db", "create").returncode == 0
        (tmp_path / "spec.json").write_text(json.dumps(_env_spec(box)))
        created = _rally(tmp_path, "env", "create", "--name", "opbed", "--spec",
                         str(tmp_path / "spec.json"))
        assert created.returncode == 0, created.stdout + created.stderr
    args = tmp_path / "args.yaml"
    args.write_text(yaml.safe_dump(_task_args(bed)))
    started = _rally(tmp_path, "task", "start", os.path.join(TOP, "task_templates",
                                                             "operator.yaml"),
                     "--task-args-file", str(args))
    uuid = next(line.split()[-1] for line in started.stdout.splitlines()
                if line.startswith("Using task:"))
    read = subprocess.run([sys.executable, "-c", _READ_BACK, str(tmp_path / "rally.conf"),
                           uuid], capture_output=True, text=True, timeout=120, cwd=TOP)
    assert read.returncode == 0, read.stderr
    return started, json.loads(read.stdout)


def test_rally_task_healthy_then_a_validator_failure_both_typed(healthy_bed, box, tmp_path):
    bed = healthy_bed
    started, run = _start(bed, box, tmp_path)
    assert started.returncode == 0, started.stdout[-2000:]
    assert run["healthy"] and run["state"] == "finished"
    components = {r["component"] for r in run["results"]}
    assert {"rabbitmq@node2", "galera@node3", "pacemaker@node1",
            "haproxy/keystone_api/node2"} <= components
    assert all(r["check_type"] == "operator" for r in run["results"])

    bed.heal.append(lambda: bed.sh(2, "rabbitmqctl -q start_app"))
    bed.sh(2, "rabbitmqctl -q stop_app")
    started, run = _start(bed, box, tmp_path)
    assert started.returncode != 0
    assert "cloudpulse_operator_rabbitmq" in started.stdout + started.stderr
    failed = {list(f)[0]: list(f.values())[0] for f in run["tests_failed"]}
    assert "rabbit app not running on node2" in failed["operator.rabbitmq@node2"]
    bad = {r["component"] for r in run["results"] if r["status"] == "failed"}
    assert bad == {"rabbitmq@node2"}, run["results"]
    # The checks that passed are reported too, though validation stopped the task; they
    # came through the task's results table, not through the validator's message.
    passed = {r["component"] for r in run["results"] if r["status"] == "passed"}
    assert {"galera@node3", "pacemaker@node1"} <= passed, run["results"]
    assert "cloudpulse-results" not in started.stdout + started.stderr


def _engine(box, tmp_path):
    conf_file = tmp_path / "cloudpulse.conf"
    conf_file.write_text("[DEFAULT]\nstate_path = %s\n" % (tmp_path / "state"))
    store = tasks.RallyTasks(cp_conf.load(["--config-file", str(conf_file)]))
    store.ensure_env(_env_spec(box))
    return store


def _engine_run(store, args):
    handle = store.create_run([results.CheckType.OPERATOR])
    t0 = time.monotonic()
    store.start_engine(handle, [(results.CheckType.OPERATOR, args)])
    return store.get_run(handle), time.monotonic() - t0


def _validate(task, args):
    """The operator validators of one CloudPulse.operator workload, as Rally's engine runs
    them in its semantic phase (each in turn, in this thread)."""
    from rally.common import validation
    from cloudpulse_rally.scenarios import operator as operator_scenario
    scenario_cls = operator_scenario.Operator
    workload = {"name": "CloudPulse.operator", "args": args, "position": 0}
    for name, _, kwargs in scenario_cls._meta_get("validators"):
        if name.startswith("cloudpulse_operator_"):
            try:
                validation.Validator.get(name)(**kwargs).validate(
                    {"task": task}, workload, scenario_cls, None)
            except validation.ValidationError:
                pass


def test_two_runs_at_once_do_not_wait_for_each_other(healthy_bed, box, tmp_path):
    """Run A's map has a node that accepts SSH connections and never answers (A waits
    out the banner timeout); run B, started just after, must not wait for A."""
    import socket
    import threading
    from rally.common import objects
    bed = healthy_bed
    store = _engine(box, tmp_path)
    listener = socket.create_server(("127.0.0.1", 0))
    threading.Thread(target=lambda: [listener.accept() for _ in range(5)],
                     daemon=True).start()
    slow_map = yaml.safe_load(open(MAP))
    slow_map["hosts"]["node4"] = {"address": "127.0.0.1", "roles": ["rabbitmq"],
                                  "ssh_port": listener.getsockname()[1]}
    (tmp_path / "slow_map.yaml").write_text(yaml.safe_dump(slow_map))
    runs = {}

    def run(label, service_map):
        task = objects.Task.get(store.create_run([results.CheckType.OPERATOR]))
        t0 = time.monotonic()
        _validate(task, dict(_task_args(bed, service_map), connect_timeout=4))
        runs[label] = time.monotonic() - t0

    try:
        a = threading.Thread(target=run, args=("A", str(tmp_path / "slow_map.yaml")))
        a.start()
        time.sleep(0.3)
        run("B", MAP)
        a.join()
    finally:
        listener.close()
    assert runs["A"] >= 4, runs            # A waited for node4's banner
    # B took its own time, not A's too: with one lock for all runs it would wait for A.
    assert runs["B"] < runs["A"] - 1.0, runs


def test_a_fault_healed_between_two_runs_shows_healed(healthy_bed, box, tmp_path):
    bed = healthy_bed
    store = _engine(box, tmp_path)
    bed.heal.append(lambda: bed.sh(2, "rabbitmqctl -q start_app"))
    bed.sh(2, "rabbitmqctl -q stop_app")
    first, _ = _engine_run(store, _task_args(bed))
    assert {r.component for r in first.failed} == {"rabbitmq@node2"}
    bed.sh(2, "rabbitmqctl -q start_app")
    bed.wait(lambda out: all(r.ok for r in out), 120, checks=("rabbitmq",),
             what="rabbitmq healed")
    second, _ = _engine_run(store, _task_args(bed))
    assert second.healthy, second.to_api()["tests_failed"]
