"""`rally task start task_templates/operator.yaml` on the bed: the validators run the
checks, the scenario reports them, and both map back into the typed model."""

import json
import os
import subprocess
import sys
import textwrap

import yaml

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)

# Reads a task back the way the facade does (cloudpulse_rally.report.task_to_run).
_READ_BACK = textwrap.dedent("""
    import json, sys
    from rally import api
    from cloudpulse_rally import report
    task = api.API(config_file=sys.argv[1]).task.get(sys.argv[2], detailed=True)
    task.setdefault("tags", ["cloudpulse", "cloudpulse-type:operator"])
    print(json.dumps(report.task_to_run(task).to_api()))
""")


def _rally(tmp_path, *args):
    return subprocess.run([os.path.join(BIN, "rally"), "--config-file",
                           str(tmp_path / "rally.conf"), *args],
                          capture_output=True, text=True, timeout=300)


def _start(bed, tmp_path):
    (tmp_path / "rally.conf").write_text(
        "[database]\nconnection = sqlite:///%s\n" % (tmp_path / "rally.sqlite"))
    if not (tmp_path / "rally.sqlite").exists():
        assert _rally(tmp_path, "db", "create").returncode == 0
        (tmp_path / "spec.json").write_text("{}")
        assert _rally(tmp_path, "env", "create", "--name", "opbed", "--spec",
                      str(tmp_path / "spec.json")).returncode == 0
    args = tmp_path / "args.yaml"
    args.write_text(yaml.safe_dump({
        "service_map": os.path.join(TOP, "tests", "operator", "bed_map.yaml"),
        "known_hosts_file": bed.settings.known_hosts_file,
        "ssh_key_file": bed.settings.key_file,
        "checks": ["services", "rabbitmq", "galera", "haproxy", "pacemaker"]}))
    started = _rally(tmp_path, "task", "start", os.path.join(TOP, "task_templates",
                                                             "operator.yaml"),
                     "--task-args-file", str(args))
    uuid = next(line.split()[-1] for line in started.stdout.splitlines()
                if line.startswith("Using task:"))
    read = subprocess.run([sys.executable, "-c", _READ_BACK, str(tmp_path / "rally.conf"),
                           uuid], capture_output=True, text=True, timeout=120, cwd=TOP)
    assert read.returncode == 0, read.stderr
    return started, json.loads(read.stdout)


def test_rally_task_healthy_then_a_validator_failure_both_typed(healthy_bed, tmp_path):
    bed = healthy_bed
    started, run = _start(bed, tmp_path)
    assert started.returncode == 0, started.stdout[-2000:]
    assert run["healthy"] and run["state"] == "finished"
    components = {r["component"] for r in run["results"]}
    assert {"rabbitmq@node2", "galera@node3", "pacemaker@node1",
            "haproxy/keystone_api/node2"} <= components
    assert all(r["check_type"] == "operator" for r in run["results"])

    bed.heal.append(lambda: bed.sh(2, "rabbitmqctl -q start_app"))
    bed.sh(2, "rabbitmqctl -q stop_app")
    started, run = _start(bed, tmp_path)
    assert started.returncode != 0
    assert "cloudpulse_operator_rabbitmq" in started.stdout + started.stderr
    failed = {list(f)[0]: list(f.values())[0] for f in run["tests_failed"]}
    assert "rabbit app not running on node2" in failed["operator.rabbitmq"]
    bad = {r["component"] for r in run["results"] if r["status"] == "failed"}
    assert bad == {"rabbitmq@node2"}, run["results"]
    # the checks that passed are reported too, though validation stopped the task
    passed = {r["component"] for r in run["results"] if r["status"] == "passed"}
    assert {"galera@node3", "pacemaker@node1"} <= passed, run["results"]
