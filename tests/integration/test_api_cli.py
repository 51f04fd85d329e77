"""The facade and the CLI, run for real: `cloudpulse-server` over the cloud in a box."""

import concurrent.futures
import datetime
import json
import os
import re
import signal
import sqlite3
import time
import xml.etree.ElementTree as ET

import pytest
import requests
import yaml

from cloudpulse.checks import functional
from cloudpulse import results
from cloudpulse.checks import workload
from tests.integration.conftest import FUNCTIONAL_CONF, WORKLOAD_TIMEOUT, run_cmd
from tests.integration.server import Server


@pytest.fixture(scope="module")
def state(tmp_path_factory):
    return tmp_path_factory.mktemp("cpulse-state")


@pytest.fixture(scope="module")
def server(venv_bin, state, box, admin_conn):
    srv = Server(venv_bin, state, box)
    yield srv
    srv.stop()


def _wait(server, handle, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        doc = requests.get(server.url + "/cpulse/result", params={"handle": handle},
                           timeout=5).json()
        if doc["state"] in ("finished", "interrupted") or time.monotonic() > deadline:
            return doc
        time.sleep(0.1)


def test_check_endpoint_through_the_api(server):
    resp = requests.post(server.url + "/cpulse/check", json={"type": "endpoint"}, timeout=5)
    assert resp.status_code == 202
    handle = resp.json()["handle"]
    doc = _wait(server, handle)
    assert doc["state"] == "finished"
    assert doc["tests_failed"] == []
    assert doc["tests_passed"] == ["endpoint.keystone", "endpoint.glance", "endpoint.nova",
                                   "endpoint.neutron", "endpoint.cinder", "endpoint.horizon"]
    assert doc["healthy"] is True and doc["timestamp"]
    assert {r["check_type"] for r in doc["results"]} == {"endpoint"}


@pytest.mark.parametrize("body,field", [
    ({"type": "bogus"}, "type"), ({}, "type"), ([1, 2], "body"), ("not json", "body")])
def test_bad_check_requests_are_400_naming_the_field(server, body, field):
    if isinstance(body, str):
        resp = requests.post(server.url + "/cpulse/check", data=body, timeout=5)
    else:
        resp = requests.post(server.url + "/cpulse/check", json=body, timeout=5)
    assert resp.status_code == 400
    assert resp.json()["message"].startswith(field + ":")
    if body == {"type": "bogus"}:
        assert resp.json()["allowed"] == ["endpoint", "upgrade", "all"]


def test_long_poll_returns_the_finished_run(server):
    handle = requests.post(server.url + "/cpulse/check", json={"type": "endpoint"},
                           timeout=5).json()["handle"]
    doc = requests.get(server.url + "/cpulse/result", params={"handle": handle, "wait": 30},
                       timeout=35).json()
    assert doc["state"] == "finished" and doc["healthy"]
    for bad in ("soon", "-1", "1000"):
        resp = requests.get(server.url + "/cpulse/result",
                            params={"handle": handle, "wait": bad}, timeout=5)
        assert resp.status_code == 400 and resp.json()["message"].startswith("wait:")


def test_unknown_handle_is_404_json(server):
    resp = requests.get(server.url + "/cpulse/result", params={"handle": "no-such"}, timeout=5)
    assert resp.status_code == 404 and resp.json()["message"].startswith("handle:")
    resp = requests.get(server.url + "/cpulse/result", timeout=5)
    assert resp.status_code == 400
    resp = requests.get(server.url + "/nowhere", timeout=5)
    assert resp.status_code == 404 and resp.json()["error"] == "Not Found"


def test_glance_stopped_through_api_and_cli(server, venv_bin, faults, tmp_path):
    faults.stop("glance")
    cpulse = os.path.join(venv_bin, "cpulse")
    res = run_cmd([cpulse, "--url", server.url, "check", "endpoint", "--wait", "-f", "json"])
    assert res.returncode == 1, res.stdout + res.stderr
    doc = json.loads(res.stdout)
    assert [list(f) for f in doc["tests_failed"]] == [["endpoint.glance"]]
    assert "cannot connect" in doc["tests_failed"][0]["endpoint.glance"]
    # The same handle, as a table, through ~/.cpulserc for the address.
    (tmp_path / ".cpulserc").write_text("[cpulse]\nurl = %s\n" % server.url)
    env = dict(os.environ, HOME=str(tmp_path))
    env.pop("CPULSE_URL", None)
    res = run_cmd([cpulse, "result", doc["handle"]], env=env)
    assert res.returncode == 1
    assert "UNHEALTHY" in res.stdout
    line = [ln for ln in res.stdout.splitlines() if ln.startswith("endpoint.glance")][0]
    assert "failed" in line and "cannot connect" in line


def test_cli_healthy_and_errors(server, venv_bin):
    cpulse = os.path.join(venv_bin, "cpulse")
    env = dict(os.environ, CPULSE_URL=server.url)
    res = run_cmd([cpulse, "check", "endpoint", "--wait"], env=env)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "HEALTHY" in res.stdout.splitlines()[0]
    res = run_cmd([cpulse, "check", "bogus"], env=env)
    assert res.returncode == 2
    assert "type: 'bogus' is not a check type" in res.stderr
    assert "Traceback" not in res.stderr
    res = run_cmd([cpulse, "--url", "http://127.0.0.1:9", "result", "x"])
    assert res.returncode == 2 and "cannot reach the CloudPulse API" in res.stderr


def _list(server, **params):
    return requests.get(server.url + "/cpulse/results", params=params, timeout=10)


def test_runs_are_listed_filtered_and_paged_through_the_api_and_the_cli(server, venv_bin):
    # `since` has whole seconds: wait for the next one, so that a run the previous test
    # made in this second is not listed too
    start = results.utcnow()
    time.sleep(1 - start.microsecond / 1e6)
    since = (start.replace(microsecond=0) + datetime.timedelta(seconds=1)).isoformat()
    handles = []
    for _ in range(3):   # one after the other: a run in flight would be handed back
        handles.append(requests.post(server.url + "/cpulse/check", json={"type": "endpoint"},
                                     timeout=5).json()["handle"])
        assert _wait(server, handles[-1])["state"] == "finished"
    newest_first = handles[::-1]
    doc = _list(server, since=since).json()
    assert [r["handle"] for r in doc["runs"]] == newest_first
    for run in doc["runs"]:   # a summary says what the run's own document says
        full = requests.get(server.url + "/cpulse/result", params={"handle": run["handle"]},
                            timeout=5).json()
        assert {k: full[k] for k in run} == run
        assert run["healthy"] is True and run["check_types"] == ["endpoint"]
    page = _list(server, type="endpoint", state="finished", since=since, limit=2).json()
    assert [r["handle"] for r in page["runs"]] == newest_first[:2]
    next_page = requests.get(page["runs_links"][0]["href"], timeout=10).json()
    assert [r["handle"] for r in next_page["runs"]] == newest_first[2:]
    assert next_page["runs_links"] == []
    assert _list(server, type="functional", since=since).json()["runs"] == []
    assert _list(server, state="running", since=since).json()["runs"] == []
    assert [r["handle"] for r in _list(server, since="1h", limit=3).json()["runs"]] == \
        newest_first
    for params, says in (({"since": "yesterday"}, "since: "), ({"limit": "0"}, "limit: "),
                         ({"state": "done"}, "state: "), ({"type": "x"}, "type: "),
                         ({"marker": "no-such-run"}, "marker: no run 'no-such-run'")):
        res = _list(server, **params)
        assert res.status_code == 400 and res.json()["message"].startswith(says), res.text

    cpulse = os.path.join(venv_bin, "cpulse")
    env = dict(os.environ, CPULSE_URL=server.url)
    res = run_cmd([cpulse, "results", "--type", "endpoint", "--since", since], env=env)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.splitlines()
    assert lines[0].split()[:3] == ["handle", "created", "state"]
    assert [line.split()[0] for line in lines[1:]] == newest_first
    assert all(line.split()[2:5] == ["finished", "endpoint", "yes"] for line in lines[1:])
    res = run_cmd([cpulse, "results", "--limit", "1", "--marker", handles[2], "-f", "json"],
                  env=env)
    assert [r["handle"] for r in json.loads(res.stdout)] == [handles[1]]
    res = run_cmd([cpulse, "results", "--since", "soon"], env=env)
    assert res.returncode == 2 and "since: 'soon'" in res.stderr, res.stderr
    res = run_cmd([cpulse, "result", handles[0], "-f", "junit"], env=env)
    assert res.returncode == 0, res.stderr
    root = ET.fromstring(res.stdout)
    assert (root.get("tests"), root.get("failures"), root.get("errors")) == ("6", "0", "0")
    assert [c.get("name") for c in root.iter("testcase")][0] == "endpoint.keystone[keystone]"


def test_an_interrupted_run_is_listed_and_exits_2(venv_bin, tmp_path, box, admin_conn,
                                                   silent_horizon):
    """SIGKILL mid-run (the silent horizon holds the run 8 s): the next server records
    the run interrupted; the CLI says the checks could not run."""
    first = Server(venv_bin, tmp_path, box, horizon_url=silent_horizon, timeout=8)
    try:
        handle = requests.post(first.url + "/cpulse/check", json={"type": "endpoint"},
                               timeout=5).json()["handle"]
        box.wait_for(lambda: _list(first, state="running").json()["runs"], timeout=5,
                     interval=0.1, message="the run running")
    finally:
        first.kill()
    again = Server(venv_bin, tmp_path, box)
    try:
        listed = _list(again, state="interrupted").json()["runs"]
        assert [(r["handle"], r["healthy"]) for r in listed] == [(handle, False)]
        cpulse = os.path.join(venv_bin, "cpulse")
        res = run_cmd([cpulse, "--url", again.url, "result", handle, "-f", "junit"])
        assert res.returncode == 2, res.stdout + res.stderr
        run_suite = ET.fromstring(res.stdout).findall("testsuite")[-1]
        assert run_suite.get("name") == "cloudpulse.run" and run_suite.get("errors") == "1"
        assert "interrupted" in run_suite.find("testcase/error").get("message")
    finally:
        again.stop()


def test_results_survive_a_restart_and_periodic_runs(venv_bin, state, box, admin_conn):
    # The product spec's alias (osendpoint) with a short interval: the server checks by itself.
    first = Server(venv_bin, state, box, periodic="osendpoint = 2s\n")
    handle = requests.post(first.url + "/cpulse/check", json={"type": "all"},
                           timeout=5).json()["handle"]
    before = _wait(first, handle)
    time.sleep(5)
    first.stop()
    db = sqlite3.connect(str(state / "rally.sqlite"))
    tagged = db.execute("select count(distinct uuid) from tags where tag = "
                        "'cloudpulse-type:endpoint'").fetchone()[0]
    assert tagged >= 3   # ours + at least two periodic runs
    # Restarted with an hourly endpoint check: the next one is due an hour after the last
    # recorded run (plus up to [periodic] jitter), not now and not an hour after the start.
    again = Server(venv_bin, state, box, periodic="endpoint_interval = 1h\njitter = 0.1\n")
    try:
        after = requests.get(again.url + "/cpulse/result", params={"handle": handle},
                             timeout=5).json()
        assert after == before
        announced = box.wait_for(lambda: re.search(
            r"periodic endpoint check of \S+: every 3600 s, next in (\d+) s", again.log_text()),
            timeout=10, interval=0.2)
        assert 3600 - 30 <= int(announced.group(1)) <= 3600 + 360
    finally:
        again.stop()
    secret = yaml.safe_load(open(box.clouds_yaml))["clouds"][box.admin_cloud]["auth"]["password"]
    assert secret not in first.log_text() + again.log_text()
    assert secret not in json.dumps(after)


def test_sigterm_lets_runs_in_flight_finish(venv_bin, tmp_path, box, admin_conn, faults):
    # Two runs with one worker: one running, one queued when the signal arrives. Both
    # finish and are recorded before the server exits; the next server serves them.
    # glance hung makes a run last one API timeout, so the signal lands mid-run.
    image = tmp_path / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    first = Server(venv_bin, tmp_path, box,
                   extra="[api]\nworkers = 1\n" + FUNCTIONAL_CONF % image)
    faults.hang("glance")

    def post(check_type):
        return requests.post(first.url + "/cpulse/check", json={"type": check_type},
                             timeout=5).json()["handle"]
    handles = [post("endpoint"), post("functional")]
    # a type already queued or running: that run's handle, not a second run
    assert post("endpoint") == handles[0]
    # the worker thread takes the first run an instant after the POST answered
    states = box.wait_for(lambda: (lambda s: s if s[0] == "running" else None)(
        [requests.get(first.url + "/cpulse/result", params={"handle": h},
                      timeout=5).json()["state"] for h in handles]), timeout=5, interval=0.1)
    assert states == ["running", "queued"], states
    first.proc.send_signal(signal.SIGTERM)
    assert first.proc.wait(timeout=120) == 0
    first.log.close()
    assert "finishing runs in flight" in first.log_text()
    again = Server(venv_bin, tmp_path, box)
    try:
        docs = [requests.get(again.url + "/cpulse/result", params={"handle": handle},
                             timeout=5).json() for handle in handles]
        assert [doc["state"] for doc in docs] == ["finished", "finished"], (
            docs, first.log_text())
        assert [list(f) for f in docs[0]["tests_failed"]] == [["endpoint.glance"]], docs[0]
        assert docs[0]["tests_failed"][0]["endpoint.glance"].startswith("timeout after")
        assert "functional.image" in [list(f)[0] for f in docs[1]["tests_failed"]], docs[1]
    finally:
        again.stop()


def test_the_server_stays_light_under_a_storm_of_posts(venv_bin, tmp_path, box, faults):
    """200 POSTs at once while a run is in flight: a type already in flight gets that
    run's handle, a new one beyond max_active_runs a 429 with Retry-After; GETs are still
    answered, long polls beyond max_long_polls answer at once, and a body too large is
    refused before it is read."""
    image = tmp_path / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    srv = Server(venv_bin, tmp_path, box, timeout=8,
                 extra="[api]\nmax_active_runs = 1\nmax_long_polls = 2\n"
                       + FUNCTIONAL_CONF % image)
    try:
        faults.hang("glance")   # the endpoint run lasts one API timeout: 8 s
        handle = requests.post(srv.url + "/cpulse/check", json={"type": "endpoint"},
                               timeout=5).json()["handle"]

        def post(i):
            res = requests.post(srv.url + "/cpulse/check", timeout=10,
                                json={"type": ("endpoint", "functional")[i % 2]})
            return i % 2, res.status_code, res.json(), res.headers.get("Retry-After")

        def get(_):
            t0 = time.monotonic()
            res = requests.get(srv.url + "/cpulse/result", params={"handle": handle},
                               timeout=10)
            assert res.status_code == 200
            return time.monotonic() - t0

        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            posts = pool.map(post, range(200))
            gets = list(pool.map(get, range(20)))
            posts = list(posts)
        endpoint = [(code, doc) for kind, code, doc, _ in posts if kind == 0]
        functional = [(code, doc, retry) for kind, code, doc, retry in posts if kind == 1]
        assert {(code, doc["handle"]) for code, doc in endpoint} == {(202, handle)}
        assert {(code, retry) for code, _, retry in functional} == {(429, "10")}
        assert all("max_active_runs" in doc["message"] for _, doc, _ in functional)
        # GETs are answered (200) during the storm; how fast is bench/'s to say, not a test's
        assert len(gets) == 20
        # two long polls hold their thread; the others are answered at once
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            t0 = time.monotonic()
            waits = list(pool.map(lambda _: (requests.get(
                srv.url + "/cpulse/result", params={"handle": handle, "wait": 30},
                timeout=40).json()["state"], time.monotonic() - t0), range(4)))
        answered_at_once = [t for state, t in waits if state == "running" and t < 1]
        assert len(answered_at_once) == 2, waits
        res = requests.post(srv.url + "/cpulse/check", data=b"{" + b" " * 65536 + b"}",
                            headers={"Content-Type": "application/json"}, timeout=10)
        assert res.status_code == 413
        assert res.json()["message"] == "body: at most 16384 bytes"
    finally:
        srv.stop()


def test_refused_credentials_are_said_at_start_and_in_the_check(venv_bin, tmp_path, box):
    clouds = yaml.safe_load(open(box.clouds_yaml))["clouds"]
    wrong = dict(clouds[box.admin_cloud])
    wrong["auth"] = dict(wrong["auth"], password="wrong-password")
    clouds_file = tmp_path / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": {"cloudbox-wrong": wrong}}))
    srv = Server(venv_bin, tmp_path, box, cloud="cloudbox-wrong", clouds_file=clouds_file)
    try:
        handle = requests.post(srv.url + "/cpulse/check", json={"type": "endpoint"},
                               timeout=5).json()["handle"]
        doc = requests.get(srv.url + "/cpulse/result", params={"handle": handle, "wait": 30},
                           timeout=40).json()
    finally:
        srv.stop()
    log = srv.log_text()
    assert "authentication failed for cloud cloudbox-wrong: HTTP 401" in log, log
    assert "did not answer" not in log
    assert "wrong-password" not in log
    failed = {k: v for f in doc["tests_failed"] for k, v in f.items()}
    assert failed["endpoint.keystone"].startswith(
        "authentication failed for cloud cloudbox-wrong: HTTP 401"), failed


def test_the_state_keeps_no_password_and_is_owner_only(server, state, box):
    # The server runs endpoint checks in-process: Rally's env needs no password, and gets
    # none (Rally keeps its env spec in its database).
    password = yaml.safe_load(open(box.clouds_yaml))["clouds"][box.admin_cloud]["auth"][
        "password"]
    assert password.encode() not in (state / "rally.sqlite").read_bytes()
    # Files the server made (Rally would make its DB 0644 under a usual umask); pytest's
    # tmp dir is 0700 already, so the directory's own mode is proven by the unit tests.
    assert oct((state / "rally.sqlite").stat().st_mode & 0o777) == "0o600"
    assert oct((state / "rally.conf").stat().st_mode & 0o777) == "0o600"

def test_all_with_the_data_plane_through_the_server_and_the_cli(all_through_the_cli, box):
    """type=all: endpoint, functional and comprehensive in one run (one Rally task for
    the two that boot VMs), through the CLI (each type's steps: test_functional and
    test_comprehensive, on this same run)."""
    types, res = all_through_the_cli
    assert {"functional", "comprehensive"} <= set(types), types
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-2000:]
    doc = json.loads(res.stdout)
    assert doc["healthy"], doc["tests_failed"]
    assert doc["cloud"] == box.admin_cloud
    passed = doc["tests_passed"]
    assert sorted(n for n in passed if n.startswith("functional.")) == sorted(
        "functional." + step for step in functional.STEPS)
    for host in box.compute_hosts:
        assert "comprehensive.data_path/%s" % host in passed, passed
    assert "comprehensive.security_group/rule tcp/80" in passed, passed
    assert "endpoint.nova" in passed
    # the upgrade type too: the server's own runs have no snapshot to verify
    assert "upgrade.snapshot" in [next(iter(s)) for s in doc["tests_skipped"]], doc


def test_a_killed_servers_run_is_swept_at_the_next_start(venv_bin, tmp_path, box, admin_conn):
    """SIGKILL the server while its functional run has VMs in the cloud: the next server
    removes everything that run created, and only that (found through the APIs by the
    run's tag)."""
    image = tmp_path / "image.raw"
    image.write_bytes(b"cloudbox instance image\n" * 64)
    first = Server(venv_bin, tmp_path, box, extra=FUNCTIONAL_CONF % image,
                   timeout=WORKLOAD_TIMEOUT)
    try:
        handle = requests.post(first.url + "/cpulse/check", json={"type": "functional"},
                               timeout=5).json()["handle"]
        tag = workload.RUN_TAG_PREFIX + handle
        box.wait_for(lambda: list(admin_conn.compute.servers(tags=tag, all_projects=True)),
                     timeout=120,
                     interval=0.5, message="a VM of run %s" % handle)
    finally:
        first.kill()
    # nova cannot tag key pairs and server groups, nor keystone the project and user made
    # for the run (the server is admin: operator mode): the run file names them
    notes = workload.RunRegistry(str(tmp_path / "runs")).notes(handle)
    assert {kind: len(idents) for kind, idents in notes.items()} == {
        "keypair": 1, "server group": 1, "user": 1, "project": 1}, notes
    left = workload.leftovers(admin_conn, handle, notes=notes)
    assert {"server", "keypair", "server group", "network", "user", "project"} <= {
        thing.rsplit(" ", 1)[0] for thing in left}, left
    second = Server(venv_bin, tmp_path, box, extra=FUNCTIONAL_CONF % image,
                   timeout=WORKLOAD_TIMEOUT)
    try:
        box.wait_for(lambda: not workload.leftovers(admin_conn, handle, notes=notes),
                     timeout=180, message="nothing left of run %s" % handle)
        box.wait_for(lambda: "sweeper at start of %s: removed" % box.admin_cloud in second.log_text(), timeout=30)
        assert "(run %s)" % handle in second.log_text()
        # the run itself is recorded as interrupted, not lost
        run = requests.get(second.url + "/cpulse/result", params={"handle": handle},
                           timeout=5).json()
        assert run["handle"] == handle
    finally:
        second.stop()


def test_data_plane_types_not_offered_without_an_image(server):
    types = requests.get(server.url + "/cpulse/types", timeout=5).json()["types"]
    assert "functional" not in types and "comprehensive" not in types
    for check_type in ("functional", "comprehensive"):
        res = requests.post(server.url + "/cpulse/check", json={"type": check_type},
                            timeout=5)
        assert res.status_code == 400 and check_type not in res.json()["allowed"]
