"""One server, several clouds (docs/availability.md, "Several clouds"): the cloud in a box
as its admin and as its demo user, two clouds.yaml entries checked side by side, each
periodically.  Disabling the demo user breaks that cloud alone: only its verdict changes,
and every result says which cloud it is about."""

import json
import os

import requests
import yaml

from tests.integration.conftest import run_cmd
from tests.integration.server import Server

INTERVAL = 5   # seconds between two periodic endpoint runs of each cloud


def _status(srv):
    """{cloud: (verdict, the keys of its failing components)}"""
    doc = requests.get(srv.url + "/cpulse/status", timeout=10).json()
    return {cloud["cloud"]: (cloud["verdict"], [f["key"] for check in cloud["checks"]
                                                for f in check["failing"]])
            for cloud in doc["clouds"]}


def _verdicts(srv):
    return {cloud: verdict for cloud, (verdict, _) in _status(srv).items()}


def test_two_clouds_one_answer_and_only_the_broken_ones_verdict_changes(
        venv_bin, tmp_path, box, admin_conn):
    admin, demo = box.admin_cloud, box.demo_cloud
    srv = Server(venv_bin, tmp_path, box, clouds=[admin, demo],
                 periodic="endpoint_interval = %ds\n" % INTERVAL)
    auth = yaml.safe_load(open(box.clouds_yaml))["clouds"][demo]["auth"]
    user = admin_conn.identity.find_user(auth["username"], domain_id="default")
    try:
        types = requests.get(srv.url + "/cpulse/types", timeout=5).json()
        assert list(types["clouds"]) == [admin, demo], types
        seen = []
        box.wait_for(lambda: seen.append(_verdicts(srv)) or seen[-1] == {
            admin: "healthy", demo: "healthy"}, timeout=90, interval=1,
            message="both clouds healthy: %s" % seen[-1:])

        admin_conn.identity.update_user(user, is_enabled=False)
        seen.clear()
        # horizon's login, with the password, may fail a run before keystone stops
        # accepting the token the server holds: wait for keystone's failure too
        box.wait_for(lambda: seen.append(_status(srv))
                     or "endpoint.keystone" in seen[-1][demo][1], timeout=60, interval=1, message="the demo cloud's keystone failing")
        assert all(v[admin][0] == "healthy" for v in seen), seen   # the other, throughout
        assert seen[-1][demo][0] == "unhealthy"
        # asked for by name, a run of the broken cloud, labelled with it
        handle = requests.post(srv.url + "/cpulse/check", json={"type": "endpoint",
                                                                 "cloud": demo},
                               timeout=5).json()["handle"]
        run = requests.get(srv.url + "/cpulse/result",
                           params={"handle": handle, "wait": 60}, timeout=70).json()
        assert (run["cloud"], run["healthy"]) == (demo, False), run
        assert "endpoint.keystone" in [next(iter(f)) for f in run["tests_failed"]], run
        bad = requests.post(srv.url + "/cpulse/check", json={"type": "endpoint",
                                                              "cloud": "elsewhere"}, timeout=5)
        assert bad.status_code == 400 and bad.json()["message"].startswith("cloud: ")
        listed = requests.get(srv.url + "/cpulse/results", params={"cloud": admin},
                              timeout=10).json()["runs"]
        assert listed and {r["cloud"] for r in listed} == {admin}

        env = dict(os.environ, CPULSE_URL=srv.url)
        res = run_cmd([os.path.join(venv_bin, "cpulse"), "status", "-f", "json"], env=env)
        assert res.returncode == 1, res.stderr   # a cloud is unhealthy
        assert [(c["cloud"], c["verdict"]) for c in json.loads(res.stdout)] == [
            (admin, "healthy"), (demo, "unhealthy")]
        res = run_cmd([os.path.join(venv_bin, "cpulse"), "availability", "--cloud", demo,
                       "--window", "1h"], env=env)
        assert res.stdout.startswith("cloud %s " % demo), res.stdout + res.stderr

        admin_conn.identity.update_user(user, is_enabled=True)
        box.wait_for(lambda: _verdicts(srv) == {admin: "healthy", demo: "healthy"},
                     timeout=60, interval=1, message="the demo cloud healthy again")
    finally:
        admin_conn.identity.update_user(user, is_enabled=True)
        srv.stop()
