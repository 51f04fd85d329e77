"""Access to the API, for real: keystone tokens of users made for the test (two projects,
a member each) validated by keystonemiddleware against the box's keystone, oslo.policy's
rules, runs that belong to a project; the static token file and noauth's refusals."""

import concurrent.futures
import json
import os
import re
import secrets
import subprocess
import uuid
import xml.etree.ElementTree as ET

import pytest
import requests
import yaml
from keystoneauth1 import session as ks_session
from keystoneauth1.identity import v3

from tests.integration.conftest import run_cmd
from tests.integration import server as server_mod
from tests.integration.server import Server

PERIODIC = re.compile(r"periodic endpoint check of \S+ started: ([0-9a-f-]{36})")


class Member:
    """A user with the member role on a project of its own, both made for the test."""

    def __init__(self, conn, box, label):
        name = "cpulse-access-%s-%s" % (label, uuid.uuid4().hex[:8])
        self.password = secrets.token_urlsafe(16)
        self.project = conn.identity.create_project(name=name, domain_id="default")
        self.user = conn.identity.create_user(name=name, password=self.password,
                                              domain_id="default",
                                              default_project_id=self.project.id)
        conn.identity.assign_project_role_to_user(
            self.project, self.user, conn.identity.find_role("member"))
        self.auth = {"auth_url": yaml.safe_load(open(box.clouds_yaml))["clouds"][
            box.admin_cloud]["auth"]["auth_url"], "username": name,
            "password": self.password, "project_name": name,
            "user_domain_name": "Default", "project_domain_name": "Default"}
        self.token = ks_session.Session(auth=v3.Password(**self.auth)).get_token()

    def delete(self, conn):
        conn.identity.delete_user(self.user, ignore_missing=True)
        conn.identity.delete_project(self.project, ignore_missing=True)


@pytest.fixture(scope="module")
def members(box, admin_conn):
    made = []
    try:
        for label in ("a", "b"):
            made.append(Member(admin_conn, box, label))
        yield made
    finally:
        for member in made:
            member.delete(admin_conn)


@pytest.fixture(scope="module")
def server(venv_bin, tmp_path_factory, box, admin_conn, silent_horizon):
    srv = Server(venv_bin, tmp_path_factory.mktemp("access"), box, auth="keystone",
                 periodic="endpoint_interval = 4s\n", horizon_url=silent_horizon)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def admin_token(admin_conn):
    return admin_conn.session.get_token()


def _post(server, token, check_type="endpoint"):
    return requests.post(server.url + "/cpulse/check", json={"type": check_type},
                         # a storm of POSTs on 2 cores: slow, not refused
                         headers={"X-Auth-Token": token} if token else {}, timeout=60)


def _get(server, token, handle, wait=0):
    return requests.get(server.url + "/cpulse/result", params={"handle": handle, "wait": wait},
                        headers={"X-Auth-Token": token} if token else {}, timeout=wait + 10)


def test_the_server_runs_this_tree_with_keystone(server):
    assert "(auth: keystone;" in server.log_text()


@pytest.mark.parametrize("token", [None, "not-a-token", "gAAAAABbadbadbadbadbadbad"])
def test_no_token_or_a_bad_one_is_401_json(server, token):
    for resp in (requests.get(server.url + "/cpulse/types", timeout=10,
                              headers={"X-Auth-Token": token} if token else {}),
                 _post(server, token)):
        assert resp.status_code == 401
        assert resp.json()["error"] == "Unauthorized"
        assert "X-Auth-Token" in resp.json()["message"]
        assert resp.headers["WWW-Authenticate"].startswith("Keystone uri=")


def test_a_member_starting_an_admin_type_is_403_naming_the_rule(server, members):
    # operator and comprehensive are not offered by this server; `all` is admin-only too
    resp = _post(server, members[0].token, "all")
    assert resp.status_code == 403
    assert resp.json()["error"] == "Forbidden"
    assert "cloudpulse:check:start:all" in resp.json()["message"]
    assert resp.json()["message"].startswith("type: starting all checks")


def test_runs_belong_to_the_project_that_asked(server, members, admin_token):
    a, b = members
    first = _post(server, a.token)
    assert first.status_code == 202
    handle_a = first.json()["handle"]
    # queued or running (a horizon that never answers holds it 3 s): the same run
    again = _post(server, a.token)
    assert (again.status_code, again.json()["handle"]) == (202, handle_a)
    handle_b = _post(server, b.token).json()["handle"]
    assert handle_b != handle_a

    mine = _get(server, a.token, handle_a)
    assert mine.status_code == 200 and mine.json()["project_id"] == a.project.id
    # another project's run reads exactly as a handle that does not exist
    theirs = _get(server, b.token, handle_a)
    unknown_handle = str(uuid.uuid4())
    unknown = _get(server, b.token, unknown_handle)
    assert theirs.status_code == unknown.status_code == 404
    assert theirs.json() == {key: value.replace(unknown_handle, handle_a)
                             for key, value in unknown.json().items()}
    assert "results" not in theirs.json()

    # admin reads every run: both projects', and the server's own periodic ones
    for handle, project in ((handle_a, a.project.id), (handle_b, b.project.id)):
        doc = _get(server, admin_token, handle).json()
        assert doc["project_id"] == project, doc
    periodic = server.box.wait_for(lambda: PERIODIC.search(server.log_text()), timeout=30,
                                   interval=0.5, message="a periodic run").group(1)
    doc = _get(server, admin_token, periodic)
    assert doc.status_code == 200 and doc.json()["project_id"] is None
    assert _get(server, a.token, periodic).status_code == 404


def test_a_members_result_masks_node_addresses(server, members, admin_token):
    a = members[0]
    handle = _post(server, a.token).json()["handle"]
    as_member = _get(server, a.token, handle, wait=30).json()
    as_admin = _get(server, admin_token, handle).json()
    assert as_member["state"] == as_admin["state"] == "finished"
    horizon_admin = [r for r in as_admin["results"] if r["name"] == "endpoint.horizon"][0]
    horizon_member = [r for r in as_member["results"] if r["name"] == "endpoint.horizon"][0]
    assert "127.0.0.1" in horizon_admin["details"], horizon_admin
    assert "127.0.0.1" not in str(as_member), as_member
    assert "<address>" in horizon_member["details"], horizon_member
    assert [r["name"] for r in as_member["results"]] == [
        r["name"] for r in as_admin["results"]]


def test_the_cli_takes_a_token_from_clouds_yaml(server, members, venv_bin, tmp_path):
    a, b = members
    clouds = tmp_path / "clouds.yaml"
    clouds.write_text(yaml.safe_dump({"clouds": {"member-a": {
        "auth": a.auth, "region_name": "RegionOne", "identity_api_version": 3}}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("OS_")}
    env.update(CPULSE_URL=server.url, OS_CLIENT_CONFIG_FILE=str(clouds))
    cpulse = os.path.join(venv_bin, "cpulse")
    res = run_cmd([cpulse, "--os-cloud", "member-a", "check", "endpoint"], env=env)
    assert res.returncode == 0, res.stderr
    handle = res.stdout.strip()
    res = run_cmd([cpulse, "result", handle, "-f", "json"], env=dict(env, OS_CLOUD="member-a"))
    assert res.returncode in (0, 1, 3), res.stderr   # the run's verdict, not an access error
    assert yaml.safe_load(res.stdout)["project_id"] == a.project.id
    # refused: one line, exit 2
    for args, extra_env, says in (
            (["result", handle], {}, "give a token"),
            (["--os-token", "bad", "result", handle], {}, "give a token"),
            (["--os-token", b.token, "result", handle], {}, "handle: no run"),
            (["--os-token", b.token, "check", "all"], {}, "cloudpulse:check:start:all")):
        res = run_cmd([cpulse] + args, env=dict(env, **extra_env))
        assert res.returncode == 2, (args, res.stdout, res.stderr)
        assert len(res.stderr.strip().splitlines()) == 1 and says in res.stderr, res.stderr
        assert b.token not in res.stderr


def _start_refused(venv_bin, state, box, **conf):
    """cloudpulse-server with a conf it must refuse: (exit code, stderr)."""
    path = server_mod.write_conf(state / "refused.conf", state, box, 9, **conf)
    proc = subprocess.run([os.path.join(venv_bin, "cloudpulse-server"), "--config-file",
                           str(path)], capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stderr


def test_noauth_on_a_non_loopback_host_refuses_to_start(venv_bin, tmp_path, box):
    code, err = _start_refused(venv_bin, tmp_path, box, auth="noauth",
                               extra="[api]\nhost = 0.0.0.0\n")
    assert code == 2, err
    assert "[api] auth_strategy = noauth" in err and "[api] host" in err and "0.0.0.0" in err
    assert "Traceback" not in err


def test_keystone_without_its_credentials_refuses_to_start(venv_bin, tmp_path, box):
    code, err = _start_refused(venv_bin, tmp_path, box, auth="keystone",
                               extra="[keystone_authtoken]\nauth_type =\n")
    assert code == 2 and "[keystone_authtoken] auth_type" in err, err


def test_token_file(venv_bin, tmp_path, box, admin_conn):
    admin, member = secrets.token_hex(20), secrets.token_hex(20)
    tokens = tmp_path / "tokens"
    tokens.write_text("# token project roles\n%s ops admin\n%s vnf-1 member\n"
                      % (admin, member))
    tokens.chmod(0o644)
    code, err = _start_refused(venv_bin, tmp_path, box, auth="token_file",
                               extra="[api]\ntoken_file = %s\n" % tokens)
    assert code == 2 and "[api] token_file" in err and "readable by others" in err, err
    assert admin not in err
    tokens.chmod(0o600)
    srv = Server(venv_bin, tmp_path, box, auth="token_file",
                 extra="[api]\ntoken_file = %s\n" % tokens)
    try:
        assert _post(srv, None).status_code == 401
        assert _post(srv, member[:-1] + "x").status_code == 401
        assert _post(srv, member, "all").status_code == 403
        resp = _post(srv, member)
        assert resp.status_code == 202
        handle = resp.json()["handle"]
        assert _get(srv, member, handle).json()["project_id"] == "vnf-1"
        assert _get(srv, admin, handle).status_code == 200
        # a client cannot claim roles by itself: the file's say
        forged = requests.post(srv.url + "/cpulse/check", json={"type": "all"}, timeout=10,
                               headers={"X-Auth-Token": member, "X-Roles": "admin"})
        assert forged.status_code == 403
    finally:
        srv.stop()
    assert member not in srv.log_text() and admin not in srv.log_text()


def test_a_storm_from_four_projects_gives_one_run_per_project_and_type(
        venv_bin, tmp_path, box, admin_conn, members, silent_horizon):
    """200 POSTs at once from four projects, room for three runs: each project gets one
    run of endpoint and only its handle, the fourth a 429; each reads its own run."""
    others = []
    srv = None
    try:
        others = [Member(admin_conn, box, label) for label in ("c", "d")]
        projects = members + others
        # a run lasts one API timeout (the silent horizon): the storm is over before
        # (it took over 8 s on a loaded 2-core machine)
        srv = Server(venv_bin, tmp_path, box, auth="keystone", horizon_url=silent_horizon,
                     timeout=30, extra="[api]\nmax_active_runs = 3\n")

        def post(i):
            resp = _post(srv, projects[i % 4].token)
            return i % 4, resp.status_code, resp.json().get("handle")

        with concurrent.futures.ThreadPoolExecutor(max_workers=40) as pool:
            posts = list(pool.map(post, range(200)))
        answers = {p: {(code, handle) for q, code, handle in posts if q == p}
                   for p in range(4)}
        started = {p: handle for p, got in answers.items() for code, handle in got
                   if code == 202}
        assert sorted(len(got) for got in answers.values()) == [1, 1, 1, 1], answers
        assert len(started) == 3 and len(set(started.values())) == 3, answers
        refused = [got for p, got in answers.items() if p not in started]
        assert refused == [{(429, None)}], answers
        for p, handle in started.items():
            assert _get(srv, projects[p].token, handle).status_code == 200
            other = projects[(p + 1) % 4].token
            assert _get(srv, other, handle).status_code == 404
    finally:
        if srv is not None:
            srv.stop()
        for member in others:
            member.delete(admin_conn)


def _list(server, token, **params):
    return requests.get(server.url + "/cpulse/results", params=params, timeout=10,
                        headers={"X-Auth-Token": token})


def test_a_member_lists_only_their_projects_runs(server, members, admin_token):
    a, b = members
    handle_a, handle_b = _post(server, a.token).json()["handle"], \
        _post(server, b.token).json()["handle"]
    for member, handle in ((a, handle_a), (b, handle_b)):
        assert _get(server, member.token, handle, wait=30).json()["state"] == "finished"
    mine = _list(server, a.token, limit=500)
    assert mine.status_code == 200, mine.text
    assert handle_a in [r["handle"] for r in mine.json()["runs"]]
    assert {r["project_id"] for r in mine.json()["runs"]} == {a.project.id}
    refused = _list(server, b.token, project_id=a.project.id)
    assert refused.status_code == 403, refused.text
    assert refused.json()["message"].startswith("project_id: listing another project's")
    assert "cloudpulse:results:list:all_projects" in refused.json()["message"]
    # admin: every project's runs and the server's own periodic ones; or one project's
    everyone = _list(server, admin_token, limit=500).json()["runs"]
    assert {handle_a, handle_b} <= {r["handle"] for r in everyone}
    assert None in {r["project_id"] for r in everyone}
    only_a = _list(server, admin_token, project_id=a.project.id, limit=500).json()["runs"]
    assert [r["handle"] for r in only_a] == [r["handle"] for r in mine.json()["runs"]]


def test_the_cli_exits_1_with_junit_when_a_check_fails(server, members, venv_bin):
    """The silent horizon fails the endpoint run's horizon check."""
    a = members[0]
    cpulse = os.path.join(venv_bin, "cpulse")
    env = dict(os.environ, CPULSE_URL=server.url, OS_TOKEN=a.token)
    res = run_cmd([cpulse, "check", "endpoint", "--wait", "--timeout", "60", "-f", "junit"],
                  env=env)
    assert res.returncode == 1, res.stdout + res.stderr
    suite = ET.fromstring(res.stdout).find("testsuite")
    assert suite.get("name") == "cloudpulse.endpoint" and suite.get("failures") == "1"
    failed = [case for case in suite.iter("testcase") if case.find("failure") is not None]
    assert [case.get("name") for case in failed] == ["endpoint.horizon[horizon]"]
    assert "<address>" in failed[0].find("failure").get("message")   # the member view
    res = run_cmd([cpulse, "results", "-f", "json"], env=env)
    assert res.returncode == 0, res.stderr
    assert {r["project_id"] for r in json.loads(res.stdout)} == {a.project.id}
