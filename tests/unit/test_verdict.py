"""A run's one-line verdict (results.CheckRun.verdict): which plane fails, and where."""

from cloudpulse import results

NOW = results.utcnow()


def _r(name, check_type, component, status, details=""):
    return results.CheckResult(name, check_type, component, status, details, 1.0, NOW, NOW)


def _run(*checks):
    return results.CheckRun("h", sorted({c.check_type for c in checks}, key=str), "finished",
                            results=list(checks))


def test_healthy():
    assert _run(_r("endpoint.nova", "endpoint", "nova", "passed"),
                _r("functional.ping", "functional", "vm1", "passed")).verdict() == "healthy"


def test_a_dead_ovn_controller_with_the_data_plane_passing():
    run = _run(
        _r("endpoint.neutron", "endpoint", "ovn-controller@compute-2", "failed",
           "OVN Controller agent on compute-2 is dead (last heartbeat never)"),
        _r("comprehensive.hosts", "comprehensive", "compute-2", "skipped",
           "control plane degraded: ovn-controller on compute-2 (its OVN controller agent "
           "is dead: ...); no VM booted there"),
        _r("comprehensive.data_path", "comprehensive", "compute-1", "passed"),
        _r("functional.ping", "functional", "vm1", "passed"))
    assert run.verdict() == "data plane forwarding, control plane degraded on compute-2"
    assert run.to_api()["verdict"] == run.verdict()


def test_the_skipped_host_alone_still_says_degraded():
    run = _run(_r("comprehensive.hosts", "comprehensive", "compute-3", "skipped",
                  "control plane degraded: ..."),
               _r("comprehensive.data_path", "comprehensive", "compute-1", "passed"))
    assert run.healthy
    assert run.verdict() == "data plane forwarding, control plane degraded on compute-3"


def test_a_data_plane_failure_names_its_checks():
    run = _run(_r("functional.ping", "functional", "vm2", "failed", "no reply"),
               _r("endpoint.glance", "endpoint", "glance", "passed"))
    assert run.verdict() == "data plane failing: functional.ping"


def test_unfinished():
    assert results.CheckRun("h", ["endpoint"], "running").verdict() == "running"
