import xml.etree.ElementTree as ET

import pytest

from cloudpulse import results
from cloudpulse_api import cli
from cloudpulse_api import junit


def test_server_url_precedence(tmp_path, monkeypatch):
    rc = tmp_path / "rc"
    rc.write_text("[cpulse]\nurl = http://from-rc:1\n")
    monkeypatch.delenv("CPULSE_URL", raising=False)
    assert cli.server_url(None, str(rc)) == "http://from-rc:1"
    monkeypatch.setenv("CPULSE_URL", "http://from-env:2")
    assert cli.server_url(None, str(rc)) == "http://from-env:2"
    assert cli.server_url("http://flag:3", str(rc)) == "http://flag:3"
    monkeypatch.delenv("CPULSE_URL")
    assert cli.server_url(None, str(tmp_path / "missing")) == cli.DEFAULT_URL


def test_table_lists_each_check():
    now = results.utcnow()
    run = results.CheckRun("h", ["endpoint"], "finished", results=[
        results.CheckResult("endpoint.glance", "endpoint", "glance", "failed",
                            "timeout after 3.0 s", 3.0, now, now)])
    text = cli.format_table(run)
    assert text.splitlines()[0] == "handle h  state finished  UNHEALTHY"
    assert text.splitlines()[1] == "verdict: control plane failing: glance"
    assert text.splitlines()[3].split() == ["endpoint.glance", "glance", "failed", "3.00",
                                            "timeout", "after", "3.0", "s"]
    assert cli.exit_code(run) == cli.EXIT_FAILED


def _run(state="finished", statuses=("passed",)):
    now = results.utcnow()
    return results.CheckRun("h", ["endpoint"], state, now, now, [
        results.CheckResult("endpoint.c%d" % i, "endpoint", "c%d" % i, status,
                            "" if status == "passed" else "why %d" % i, 0.5, now, now)
        for i, status in enumerate(statuses)])


@pytest.mark.parametrize("state,statuses,code", [
    ("finished", ("passed", "skipped"), cli.EXIT_OK),
    ("finished", ("passed", "failed"), cli.EXIT_FAILED),
    ("finished", ("error", "failed"), cli.EXIT_FAILED),   # the cloud is known unhealthy
    ("finished", ("passed", "error"), cli.EXIT_ERROR),
    ("finished", (), cli.EXIT_ERROR),                      # nothing could run
    ("interrupted", ("passed",), cli.EXIT_ERROR),
    ("interrupted", ("failed",), cli.EXIT_FAILED),
    ("running", ("failed",), cli.EXIT_RUNNING),
    ("queued", (), cli.EXIT_RUNNING)])
def test_exit_codes(state, statuses, code):
    assert cli.exit_code(_run(state, statuses)) == code


def test_help_documents_the_exit_codes(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    out = capsys.readouterr().out
    for code in ("0  healthy", "1  a check failed", "2  a check could not run",
                 "3  the run is still"):
        assert code in out


def test_junit_has_a_testcase_per_result_and_a_suite_per_type():
    now = results.utcnow()
    run = results.CheckRun("h", ["endpoint", "operator"], "finished", now, now, [
        results.CheckResult("endpoint.glance", "endpoint", "glance", "passed", "", 0.25),
        results.CheckResult("endpoint.nova", "endpoint", "nova-compute@host1", "failed",
                            "nova-compute@host1 is down", 1.5),
        results.CheckResult("endpoint.horizon", "endpoint", "horizon", "skipped",
                            "no horizon_url"),
        results.CheckResult("operator.rabbitmq", "operator", "rabbitmq@node2", "error",
                            "ssh: connection refused <&>", 2.0)])
    root = ET.fromstring(junit.to_junit(run))
    assert root.tag == "testsuites"
    assert {k: root.get(k) for k in ("tests", "failures", "errors", "skipped", "time")} == {
        "tests": "4", "failures": "1", "errors": "1", "skipped": "1", "time": "3.750"}
    endpoint, operator = root.findall("testsuite")
    assert (endpoint.get("name"), endpoint.get("tests"), endpoint.get("failures"),
            endpoint.get("skipped"), endpoint.get("time")) == (
        "cloudpulse.endpoint", "3", "1", "1", "1.750")
    assert endpoint.get("timestamp") == now.replace(tzinfo=None).isoformat(
        timespec="seconds")
    props = {p.get("name"): p.get("value") for p in endpoint.find("properties")}
    assert props["handle"] == "h" and props["state"] == "finished"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert list(cases) == ["endpoint.glance[glance]", "endpoint.nova[nova-compute@host1]",
                           "endpoint.horizon[horizon]",
                           "operator.rabbitmq[rabbitmq@node2]"]
    assert list(cases["endpoint.glance[glance]"]) == []
    assert cases["endpoint.glance[glance]"].get("classname") == "cloudpulse.endpoint"
    assert cases["endpoint.glance[glance]"].get("time") == "0.250"
    failure = cases["endpoint.nova[nova-compute@host1]"].find("failure")
    assert failure.get("message") == failure.text == "nova-compute@host1 is down"
    assert cases["endpoint.horizon[horizon]"].find("skipped").get("message") == \
        "no horizon_url"
    error = cases["operator.rabbitmq[rabbitmq@node2]"].find("error")
    assert error.get("message") == "ssh: connection refused <&>"   # escaped, parsed back
    assert (operator.get("errors"), operator.get("failures")) == ("1", "0")


def test_junit_of_an_interrupted_run_is_never_green():
    root = ET.fromstring(junit.to_junit(_run("interrupted", ("passed",))))
    run_suite = root.findall("testsuite")[-1]
    assert run_suite.get("name") == "cloudpulse.run" and run_suite.get("errors") == "1"
    assert "interrupted" in run_suite.find("testcase/error").get("message")
    assert root.get("errors") == "1"


def test_runs_table():
    now = results.utcnow()
    text = cli.format_runs([
        results.RunSummary("h1", ["endpoint"], "finished", True, now, now, "p1", "box"),
        results.RunSummary("h2", ["endpoint", "functional"], "running", False, now)])
    lines = text.splitlines()
    assert lines[0].split() == ["handle", "created", "state", "types", "healthy", "cloud",
                                "project"]
    assert lines[1].split()[2:] == ["finished", "endpoint", "yes", "box", "p1"]
    assert lines[2].split()[2:] == ["running", "endpoint,functional", "-", "-"]


def test_a_ca_bundle_that_is_not_there_is_named(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("OS_CACERT", str(tmp_path / "ca.pem"))
    assert cli.main(["--url", "https://127.0.0.1:1", "results"]) == cli.EXIT_ERROR
    assert capsys.readouterr().err.strip() == "cpulse: --os-cacert: %s: no such file" % (
        tmp_path / "ca.pem")


def test_a_snapshot_prints_what_it_recorded_per_kind():
    doc = {"handle": "s1", "timestamp": "2026-12-03T14:00:00+00:00", "cloud": "box",
           "project_id": "p1", "all_projects": False,
           "resources": {"vm": ["up-vm"], "port": ["up-port", "up-vm 198.18.77.13"]}}
    lines = cli.format_snapshot(doc).splitlines()
    assert lines[0] == "snapshot s1  taken 2026-12-03T14:00:00+00:00  cloud box  project p1"
    assert lines[2].split() == ["port", "2", "up-port,", "up-vm", "198.18.77.13"]
    assert lines[3].split() == ["vm", "1", "up-vm"]
    listed = cli.format_snapshots([doc, dict(doc, handle="s2", all_projects=True,
                                             project_id=None)]).splitlines()
    assert listed[1].split() == ["s1", "2026-12-03T14:00:00+00:00", "box", "p1", "3"]
    assert listed[2].split()[3] == "all"


def test_upgrade_verify_needs_no_handle_and_takes_the_run_options():
    args = cli.build_parser().parse_args(["upgrade", "verify", "--wait", "-f", "junit"])
    assert (args.handle, args.wait, args.format) == (None, True, "junit")
    with pytest.raises(SystemExit):   # one or the other
        cli.build_parser().parse_args(["upgrade", "snapshot", "--project-id", "p",
                                       "--all-projects"])
