from cloudpulse import results
from cloudpulse_api import cli


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
    assert cli._exit_code(run) == cli.EXIT_FAILED
