"""GET /cpulse/availability, GET /metrics (and /cpulse/metrics) and `cpulse availability` through the app,
behind a static token file (a member of each of two projects, an admin), over a real
SQLite history written as the runner writes it.  The metrics are read back with
prometheus_client's own parser; a real Prometheus scrape: tests/integration."""

import datetime
import json
import threading

import openapi_schema_validator
import pytest
import sqlalchemy as sa
from prometheus_client.parser import text_string_to_metric_families
from werkzeug import serving

from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse_api import app as app_mod
from cloudpulse_api import cli
from cloudpulse_api import openapi
from cloudpulse_api import service as service_mod
from cloudpulse_rally import history
from tests.unit import api_access

TOKENS, _as = api_access.TOKENS, api_access.as_
ENDPOINT = results.CheckType.ENDPOINT
REFUSED = "cannot connect to http://127.0.0.1:9292/v2/images: connection refused"
DOWN = "nova-compute@compute-2 is down (state down, status enabled)"


class Cloud:
    """What these routes ask of a CloudChecks: its name, check types, periodic intervals,
    history gaps and the cloud's hosts (masked for members).  Its upgrade type never ran:
    the status leaves it out (it would say nothing of the cloud)."""

    def __init__(self, conf, name):
        self.name = name
        self.types = [ENDPOINT, results.CheckType.FUNCTIONAL, results.CheckType.UPGRADE]
        self.intervals = {ENDPOINT: 60}
        self.max_gaps = cp_conf.max_gaps(conf)

    def host_names(self):
        return frozenset({"compute-2"})


class Service:
    """What these routes ask of a CheckService: its configuration, history and clouds
    (a second one, "other", has no runs)."""

    cloud = service_mod.CheckService.cloud

    def __init__(self, conf, store):
        self.conf, self.history = conf, store
        self.clouds = {name: Cloud(conf, name) for name in ("box", "other")}


def _run(now, minutes_ago, project=None, glance="passed", nova="passed"):
    """An endpoint run as the check writes it, `minutes_ago` before `now`: glance, and
    nova-compute on two hosts."""
    at = now - datetime.timedelta(minutes=minutes_ago)

    def result(name, component, status, details):
        return results.CheckResult(name, ENDPOINT, component, status,
                                   "" if status == "passed" else details, duration=0.04)
    checks = [result("endpoint.glance", "glance", glance, REFUSED),
              result("endpoint.nova", "nova-compute@compute-1", "passed", ""),
              result("endpoint.nova", "nova-compute@compute-2", nova, DOWN)]
    return results.CheckRun(handle="run-%s-%d" % (project, minutes_ago),
                            check_types=[ENDPOINT], state=results.RunState.FINISHED,
                            created_at=at, finished_at=at, results=checks,
                            project_id=project)


def _validate(doc, schema_name):
    """`doc` against the OpenAPI document's schema (OpenAPI 3.0: nullable)."""
    components = openapi.document()["components"]
    openapi_schema_validator.OAS30Validator(
        {"$ref": "#/components/schemas/" + schema_name, "components": components}).validate(doc)


@pytest.fixture
def now():
    """When the app's last run was recorded: the test's start (the windows end when
    they are asked, a moment later)."""
    return results.utcnow().replace(microsecond=0)


@pytest.fixture
def app(tmp_path, now):
    conf = api_access.token_file_conf(tmp_path)
    store = history.HistoryStore(sa.create_engine("sqlite:///%s" % (tmp_path / "h.sqlite")))
    gaps = cp_conf.max_gaps(conf)
    # the server's own runs: every minute of the last 70, glance refused for the
    # 6 minutes from 20 to 14 minutes ago, and nova-compute down since 3 minutes ago;
    # project-a's one run passed
    runs = [_run(now, m, glance="failed" if 14 < m <= 20 else "passed",
                 nova="failed" if m <= 3 else "passed") for m in range(70, -1, -1)]
    for run in runs + [_run(now, 5, project="project-a")]:
        with store.engine.begin() as conn:
            store.record_run(conn, run, "box", gaps)
    return app_mod.create_app(Service(conf, store))


@pytest.fixture
def client(app):
    return app.test_client()


def _checks(doc, window):
    [found] = [w for w in doc["windows"] if w["window"] == window]
    return {c["key"]: c for c in found["checks"]}


def test_an_admin_reads_the_servers_own_runs_over_the_configured_windows(client, now):
    answer = client.get("/cpulse/availability", headers=_as("admin"))
    assert answer.status_code == 200, answer.get_json()
    doc = answer.get_json()
    _validate(doc, "Availability")
    assert [w["window"] for w in doc["windows"]] == [3600, 86400, 2592000]
    assert doc["cloud"] == "box" and doc["project_id"] is None and doc["slo"] == 0.999
    hour = _checks(doc, 3600)
    glance = hour["endpoint.glance"]
    # the window ends when it is asked, a moment after the last run (not yet looked)
    elapsed = (results.utcnow() - now).total_seconds()
    assert glance["down_seconds"] == 360
    assert glance["up_seconds"] == pytest.approx(3240 - elapsed, abs=2)
    assert glance["unknown_seconds"] == pytest.approx(elapsed, abs=2)
    assert glance["availability"] == pytest.approx(0.9, abs=1e-3)
    assert glance["slo_met"] is False and glance["error_budget_left_seconds"] < 0
    [outage] = glance["outages"]
    assert (outage["seconds"], outage["ongoing"], outage["details"]) == (360, False, REFUSED)
    assert hour["endpoint.nova/nova-compute@compute-1"]["availability"] == 1.0
    nova = hour["endpoint.nova/nova-compute@compute-2"]
    assert nova["outages"][0]["ongoing"] and nova["outages"][0]["details"] == DOWN
    assert hour["endpoint"]["down_seconds"] == 360 + 180   # the type: either one failing
    assert set(_checks(doc, 86400)) == set(hour)


def test_a_member_reads_their_projects_runs_with_hosts_masked(client):
    doc = client.get("/cpulse/availability?window=1h", headers=_as("a")).get_json()
    assert doc["project_id"] == "project-a"
    # both hosts' nova-compute, masked alike
    assert [c["key"] for c in doc["windows"][0]["checks"]] == [
        "endpoint", "endpoint.glance", "endpoint.nova/nova-compute",
        "endpoint.nova/nova-compute"]
    assert "compute-" not in json.dumps(doc)
    answer = client.get("/cpulse/availability?project_id=project-b", headers=_as("a"))
    assert answer.status_code == 403
    assert "cloudpulse:availability:all_projects" in answer.get_json()["message"]
    # an admin may ask for a project's
    doc = client.get("/cpulse/availability?window=1h&project_id=project-a",
                     headers=_as("admin")).get_json()
    assert "endpoint.nova/nova-compute@compute-2" in _checks(doc, 3600)


def test_each_cloud_has_its_own_availability(client):
    doc = client.get("/cpulse/availability?cloud=other", headers=_as("admin")).get_json()
    _validate(doc, "Availability")
    assert doc["cloud"] == "other" and all(w["checks"] == [] for w in doc["windows"])
    box = client.get("/cpulse/availability?cloud=box&window=1h", headers=_as("admin"))
    assert "endpoint.glance" in _checks(box.get_json(), 3600)


@pytest.mark.parametrize("query, field", [
    ("window=yesterday", "window: "), ("window=-1", "window: "), ("window=0", "window: "),
    ("window=100d", "window: "), ("window=1h,,x", "window: "), ("type=bogus", "type: "),
    ("cloud=nowhere", "cloud: "),
])
def test_a_bad_parameter_is_400_naming_it(client, query, field):
    answer = client.get("/cpulse/availability?" + query, headers=_as("admin"))
    assert answer.status_code == 400
    _validate(answer.get_json(), "Error")
    assert answer.get_json()["message"].startswith(field)


def test_one_type_and_several_windows(client):
    doc = client.get("/cpulse/availability?window=5m,1h&type=operator",
                     headers=_as("admin")).get_json()
    assert [(w["window"], w["checks"]) for w in doc["windows"]] == [(300, []), (3600, [])]
    doc = client.get("/cpulse/availability?window=10m&window=1h&type=endpoint",
                     headers=_as("admin")).get_json()
    assert [w["window"] for w in doc["windows"]] == [600, 3600]
    assert _checks(doc, 600)["endpoint.glance"]["availability"] == 1.0


# Prometheus' default metrics_path, and the API's own prefix
@pytest.mark.parametrize("path", ["/metrics", "/cpulse/metrics"])
def test_metrics_in_prometheus_text_format_for_an_admin_only(client, now, path):
    # as Prometheus 2 scrapes: a bearer token, the classic text format accepted
    answer = client.get(path, headers={
        "Authorization": "Bearer " + TOKENS["admin"], "Accept": "text/plain;version=0.0.4"})
    assert answer.status_code == 200
    assert answer.content_type == "text/plain; version=0.0.4; charset=utf-8"
    families = {f.name: f for f in text_string_to_metric_families(answer.get_data(as_text=True))}
    samples = {(f.name, tuple(sorted(s.labels.items()))): s.value
               for f in families.values() for s in f.samples}

    def value(name, key, **labels):
        return samples[(name, tuple(sorted(dict(cloud="box", check_type="endpoint", key=key,
                                                **labels).items())))]
    assert value("cloudpulse_check_up", "endpoint.glance") == 1.0
    assert value("cloudpulse_check_up", "endpoint.nova/nova-compute@compute-2") == 0.0
    assert value("cloudpulse_check_error", "endpoint.glance") == 0.0
    assert value("cloudpulse_check_duration_seconds", "endpoint.glance") == 0.04
    assert value("cloudpulse_check_last_run_timestamp_seconds", "endpoint") == now.timestamp()
    assert value("cloudpulse_check_last_success_timestamp_seconds",
                 "endpoint.nova/nova-compute@compute-2") == \
        (now - datetime.timedelta(minutes=3)).timestamp()
    assert value("cloudpulse_availability_ratio", "endpoint.glance", window="1h") == \
        pytest.approx(0.9, abs=1e-3)
    assert value("cloudpulse_error_budget_remaining_seconds", "endpoint.glance",
                 window="1h") == pytest.approx(0.001 * 3600 - 360, abs=0.1)
    assert samples[("cloudpulse_slo_ratio", (("cloud", "box"),))] == 0.999
    # every cloud the server checks: "other" has its objective, and no run yet
    assert samples[("cloudpulse_slo_ratio", (("cloud", "other"),))] == 0.999
    assert not [k for k in samples if dict(k[1]).get("cloud") == "other"
                and k[0] != "cloudpulse_slo_ratio"]
    assert client.get(path, headers=_as("a")).status_code == 403
    assert client.get(path).status_code == 401
    assert client.get(path,
                      headers={"Authorization": "Bearer " + "x" * 24}).status_code == 401


def test_cpulse_availability(app, capsys):
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = ["--url", "http://127.0.0.1:%d" % server.server_port, "availability"]
    try:
        assert cli.main(["--os-token", TOKENS["admin"]] + base + ["--window", "1h"]) == 1
        table = capsys.readouterr().out.splitlines()
        assert table[0] == "cloud box  the server's own runs  slo 99.900%"
        assert table[2] == "last 1h"
        assert table[3].split()[:4] == ["check", "available", "down", "s"]
        glance = [ln for ln in table if ln.startswith("endpoint.glance ")][0].split()
        assert glance[1][:4] in ("90.0", "89.9") and glance[2:4] == ["360", "0"]
        assert cli.main(["--os-token", TOKENS["a"]] + base + ["-f", "json",
                                                             "--window", "1h"]) == 0
        doc = json.loads(capsys.readouterr().out)
        assert doc["project_id"] == "project-a"
        assert cli.main(["--os-token", TOKENS["a"]] + base + ["--window", "soon"]) == 2
        assert "window: 'soon'" in capsys.readouterr().err
    finally:
        server.shutdown()


def test_status_gives_each_types_verdict_since_when_and_what_fails(client, now):
    answer = client.get("/cpulse/status", headers=_as("admin"))
    assert answer.status_code == 200
    doc = answer.get_json()
    _validate(doc, "Status")
    cloud, other = doc["clouds"]   # every cloud the server checks, the default first
    assert (cloud["cloud"], cloud["project_id"], cloud["verdict"]) == ("box", None,
                                                                        "unhealthy")
    assert (other["cloud"], other["verdict"]) == ("other", "unknown")   # never checked
    assert {c["verdict"] for c in other["checks"]} == {"unknown"}
    endpoint, functional = cloud["checks"]
    three_minutes_ago = (now - datetime.timedelta(minutes=3)).isoformat()
    assert (endpoint["check_type"], endpoint["verdict"], endpoint["since"]) == (
        "endpoint", "unhealthy", three_minutes_ago)
    assert endpoint["failing"] == [{"key": "endpoint.nova/nova-compute@compute-2",
                                    "component": "nova-compute@compute-2",
                                    "state": "failed", "since": three_minutes_ago,
                                    "details": DOWN}]
    assert (functional["verdict"], functional["since"], functional["last_run"]) == (
        "unknown", None, None)   # offered, never run
    member = client.get("/cpulse/status", headers=_as("a")).get_json()["clouds"][0]
    assert member["project_id"] == "project-a"
    assert [(c["check_type"], c["verdict"]) for c in member["checks"]] == [
        ("endpoint", "healthy"), ("functional", "unknown")]


def test_cpulse_status(app, capsys):
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = ["--url", "http://127.0.0.1:%d" % server.server_port]
    try:
        assert cli.main(base + ["--os-token", TOKENS["admin"], "status"]) == 1
        table = capsys.readouterr().out.splitlines()
        assert table[0].split() == ["cloud", "check", "verdict", "since", "failing"]
        assert table[1].split()[:3] == ["box", "endpoint", "unhealthy"]
        assert table[1].endswith("endpoint.nova/nova-compute@compute-2: " + DOWN)
        assert table[2].split() == ["box", "functional", "unknown", "-"]
        assert [line.split()[:3] for line in table[3:]] == [
            ["other", "endpoint", "unknown"], ["other", "functional", "unknown"]]
        assert cli.main(base + ["--os-token", TOKENS["a"], "status", "-f", "json"]) == 0
        box, other = json.loads(capsys.readouterr().out)
        assert box["verdict"] == other["verdict"] == "unknown"   # functional never ran
    finally:
        server.shutdown()


def test_the_status_page_names_what_fails_with_its_bars_and_changes(client):
    assert client.get("/", headers=_as("admin")).headers["Location"] == "/cpulse/"
    answer = client.get("/cpulse/", headers=_as("admin"))
    assert answer.status_code == 200 and answer.content_type == "text/html; charset=utf-8"
    page = answer.get_data(as_text=True)
    assert "<script" not in page and '<meta http-equiv="refresh" content="30">' in page
    assert "CloudPulse: 2 clouds" in page and 'class="verdict unhealthy">unhealthy' in page
    box, other = page.split('<h2 class="cloud"')[1:]   # a section per cloud, in order
    assert box.startswith(' id="cloud-1">box') and other.startswith(' id="cloud-2">other')
    assert "endpoint.nova/nova-compute@compute-2</span> failed since" in box
    assert DOWN in box and REFUSED in box   # the failing one, and glance's recent change
    assert DOWN not in other and 'class="verdict unknown">unknown' in other
    # endpoint and functional rows of each cloud
    assert box.count('class="bar ') == other.count('class="bar ') == 2 * (24 + 30)
    assert 'class="bar low"' in page and 'class="bar none"' in page
    member = client.get("/cpulse/", headers=_as("a")).get_data(as_text=True)
    assert "project project-a" in member and "compute-2" not in member
    assert client.get("/cpulse/").status_code == 401
