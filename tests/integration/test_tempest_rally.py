"""The endpoint and upgrade checks through their front ends: `tempest run` and `rally task
start`."""

import configparser
import json
import os
import re

import openstack.config
import pytest
import requests
import yaml

from cloudpulse import results
from cloudpulse_rally import report
from cloudpulse_rally import tasks
from tests.integration.conftest import TIMEOUT, run_cmd, wait_for_result
from tests.integration.server import Server

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


@pytest.fixture(scope="module")
def tempest_ws(box, admin_conn, tmp_path_factory, venv_bin):
    ws = tmp_path_factory.mktemp("tempest-ws")
    res = run_cmd([os.path.join(venv_bin, "cloudpulse-tempest-init"), "--cloud", box.admin_cloud,
                   "--clouds-file", box.clouds_yaml, "--horizon-url", box.horizon_url,
                   "--timeout", str(TIMEOUT), str(ws)])
    assert res.returncode == 0, res.stderr
    return ws


def _tempest_run(ws, venv_bin):
    return run_cmd([os.path.join(venv_bin, "tempest"), "run", "--regex", "cloudpulse_tempest",
                    "--serial"], cwd=str(ws))


def _statuses(output):
    """{test name: ok|FAILED|SKIPPED} from `tempest run`'s subunit-trace lines."""
    found = {}
    for m in re.finditer(r"\{\d+\} cloudpulse_tempest\.\S+\.(test_\w+) "
                         r"\[[^\]]*\] \.\.\. (ok|FAILED|SKIPPED)", output):
        found[m.group(1)] = m.group(2)
    return found


def test_tempest_run_healthy(tempest_ws, venv_bin):
    res = _tempest_run(tempest_ws, venv_bin)
    assert res.returncode == 0, res.stdout[-3000:]
    assert _statuses(res.stdout) == {t: "ok" for t in (
        "test_keystone", "test_glance", "test_nova", "test_neutron", "test_cinder",
        "test_horizon_login")}
    for test_class in ("FunctionalTest", "ComprehensiveTest"):   # no image in this workspace
        assert ("setUpClass (cloudpulse_tempest.tests.scenario.test_data_plane.%s) ... "
                "SKIPPED: [scenario] img_file" % test_class) in res.stdout, res.stdout[-3000:]
    # Pre-provisioned credentials: tempest created no user or project.
    assert "use_dynamic_credentials = false" in (tempest_ws / "etc" / "tempest.conf").read_text()


def test_tempest_runs_the_data_plane_checks(box, admin_conn, tmp_path, venv_bin):
    """With an image and a flavor, the functional and comprehensive tests run on the box
    (as the admin user, listed without its admin role: the comprehensive test still goes
    onto every host) and leave nothing."""
    image = tmp_path / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    ws = tmp_path / "ws"
    res = run_cmd([os.path.join(venv_bin, "cloudpulse-tempest-init"), "--cloud",
                   box.admin_cloud, "--clouds-file", box.clouds_yaml, "--timeout", "10",
                   "--image-file", str(image), "--disk-format", "raw", "--flavor", "cbx.tiny",
                   "--external-network", "public", "--ssh-user", "root",
                   "--boot-timeout", "60", "--ping-timeout", "30", "--probe-timeout", "10",
                   str(ws)])
    assert res.returncode == 0, res.stderr
    res = run_cmd([os.path.join(venv_bin, "tempest"), "run", "--regex",
                   r"cloudpulse_tempest\.tests\.scenario", "--serial"], cwd=str(ws))
    assert res.returncode == 0, res.stdout[-4000:]
    assert _statuses(res.stdout) == {"test_tenant_workload_end_to_end": "ok",
                                     "test_every_host_mtu_and_security_groups": "ok"}
    tagged = [s.name for s in admin_conn.compute.servers(tags="cloudpulse")]
    tagged += [n.name for n in admin_conn.network.networks(tags="cloudpulse")]
    assert tagged == []


def test_tempest_run_glance_stopped(tempest_ws, venv_bin, faults):
    faults.stop("glance")
    res = _tempest_run(tempest_ws, venv_bin)
    assert res.returncode != 0
    statuses = _statuses(res.stdout)
    assert statuses["test_glance"] == "FAILED"
    assert statuses["test_keystone"] == "ok" and statuses["test_nova"] == "ok"
    assert "endpoint.glance failed (glance): cannot connect" in res.stdout


@pytest.fixture(scope="module")
def rally_env(box, admin_conn, tmp_path_factory, venv_bin):
    """A Rally DB and env of our own for plain `rally` commands (not the server's)."""
    state = tmp_path_factory.mktemp("rally")
    conf = state / "rally.conf"
    conf.write_text("[database]\nconnection = sqlite:///%s/rally.sqlite\n" % state)
    rally = [os.path.join(venv_bin, "rally"), "--config-file", str(conf)]
    assert run_cmd(rally + ["db", "create"]).returncode == 0
    region = openstack.config.OpenStackConfig(
        config_files=[box.clouds_yaml]).get_one(cloud=box.admin_cloud)
    spec = state / "spec.json"
    spec.write_text(json.dumps(tasks.env_spec(region, is_admin=True)))
    res = run_cmd(rally + ["env", "create", "--name", "box", "--spec", str(spec)])
    assert res.returncode == 0, res.stdout + res.stderr
    return rally, state


def _rally_task(rally_env, box, services=None):
    args = yaml.safe_load(open(os.path.join(TOP, "scenarios", "endpoint.yaml")))
    args.update(horizon_url=box.horizon_url, timeout=TIMEOUT)
    if services:
        args["services"] = services
    return _rally_task_start(rally_env, "endpoint", args)


def _rally_task_start(rally_env, template, args, check_type="endpoint"):
    """`rally task start task_templates/<template>.yaml` with `args`, tagged as
    CloudPulse's: (its CompletedProcess, the CheckRun read back from Rally)."""
    rally, state = rally_env
    args_file = state / "args.yaml"
    args_file.write_text(yaml.safe_dump(args))
    res = run_cmd(rally + ["task", "start", os.path.join(TOP, "task_templates",
                                                         template + ".yaml"),
                           "--task-args-file", str(args_file), "--tag", report.TAG,
                           report.TYPE_TAG_PREFIX + check_type])
    uuid = re.search(r"Task +([0-9a-f-]{36}):? (started|finished|is)", res.stdout)
    uuid = uuid or re.search(r"rally task report ([0-9a-f-]{36})", res.stdout)
    assert uuid, res.stdout[-3000:] + res.stderr[-2000:]
    api = tasks.rally_api("sqlite:///%s/rally.sqlite" % state, str(state))
    return res, report.task_to_run(api.task.get(uuid.group(1), detailed=True))


def test_rally_task_start_healthy(rally_env, box):
    res, run = _rally_task(rally_env, box)
    assert run.state == results.RunState.FINISHED
    assert [r.name for r in run.results] == [
        "endpoint.keystone", "endpoint.glance", "endpoint.nova", "endpoint.neutron",
        "endpoint.cinder", "endpoint.horizon"]
    assert run.healthy, run.to_api()["tests_failed"]


def test_rally_task_start_nova_compute_down(rally_env, box, faults):
    faults.stop(box.host_service("nova-compute"))
    res, run = wait_for_result(lambda: _rally_task(rally_env, box, ["keystone", "nova"]),
                               lambda rr: not rr[1].healthy, timeout=60, interval=2)
    failed = run.to_api()["tests_failed"]
    assert [list(f) for f in failed] == [["endpoint.nova"]]
    assert failed[0]["endpoint.nova"].startswith(
        "nova-compute@%s is down (last report " % box.compute_host), failed
    nova = [r for r in run.results if r.name == "endpoint.nova"][0]
    assert nova.component == "nova-compute@%s" % box.compute_host


def test_rally_task_start_snapshots_into_a_file_and_verifies_it(rally_env, admin_conn,
                                                                tmp_path):
    """task_templates/upgrade_snapshot.yaml before an upgrade, task_templates/upgrade.yaml
    after it, under plain `rally task start`: the environment's user's project."""
    args = {"snapshot_file": str(tmp_path / "snapshot.json"), "timeout": TIMEOUT}
    group = admin_conn.network.create_security_group(name="up-rally")
    try:
        _, taken = _rally_task_start(rally_env, "upgrade_snapshot", args, "upgrade")
        assert taken.healthy, [(r.name, r.details) for r in taken.results]
        recorded = json.loads((tmp_path / "snapshot.json").read_text())
        assert recorded["project_id"] == admin_conn.current_project_id
        assert "up-rally" in [g["name"] for g in recorded["resources"]["security_group"]]
        _, untouched = _rally_task_start(rally_env, "upgrade", args, "upgrade")
        assert untouched.healthy, [(r.name, r.details) for r in untouched.failed]
    finally:
        admin_conn.network.delete_security_group(group)
    res, gone = _rally_task_start(rally_env, "upgrade", args, "upgrade")
    assert [(r.name, r.details) for r in gone.failed] == [
        ("upgrade.security_group/up-rally", "gone")], res.stdout[-2000:]


def test_tempest_verifies_the_snapshot_its_options_name(tempest_ws, venv_bin, tmp_path, box,
                                                        admin_conn):
    """[cloudpulse] upgrade_snapshot and api_url: the verify after an upgrade as a
    Tempest test, of a snapshot taken before through the API."""
    srv = Server(venv_bin, tmp_path, box)
    group = admin_conn.network.create_security_group(name="up-tempest")
    try:
        snap = requests.post(srv.url + "/cpulse/snapshot", json={}, timeout=30).json()
        conf = configparser.ConfigParser()
        conf.read(tempest_ws / "etc" / "tempest.conf")
        conf.set("cloudpulse", "api_url", srv.url)
        conf.set("cloudpulse", "upgrade_snapshot", snap["handle"])
        conf_file = tmp_path / "tempest-upgrade.conf"
        with open(conf_file, "w") as f:
            conf.write(f)
        run = [os.path.join(venv_bin, "tempest"), "run", "--config-file", str(conf_file),
               "--regex", r"cloudpulse_tempest\.tests\.api\.test_upgrade", "--serial"]
        res = run_cmd(run, cwd=str(tempest_ws))
        assert res.returncode == 0, res.stdout[-3000:]
        assert _statuses(res.stdout) == {"test_every_recorded_resource_still_holds": "ok"}
        admin_conn.network.delete_security_group(group)
        res = run_cmd(run, cwd=str(tempest_ws))
        assert res.returncode != 0
        assert _statuses(res.stdout) == {"test_every_recorded_resource_still_holds": "FAILED"}
        assert "upgrade.security_group/up-tempest: gone" in res.stdout, res.stdout[-3000:]
    finally:
        admin_conn.network.delete_security_group(group, ignore_missing=True)
        srv.stop()
