"""The functional check through Rally's engine on the cloud in a box: a tenant's workload
end to end with real packets, healthy and with a real data-plane fault."""

import contextlib
import re
import subprocess

import pytest

from cloudpulse.checks import functional
from cloudpulse import results
from tests.integration.conftest import run_engine


@pytest.fixture(scope="module")
def engine(workload_engine):
    store, args = workload_engine
    return store, dict(args)


def _run(engine):
    return run_engine(engine[0], "functional", engine[1])


def _by_step(run):
    return {r.name.split(".", 1)[1]: r for r in run.results}


def test_functional_healthy(engine, admin_conn):
    run = _run(engine)
    steps = _by_step(run)
    assert list(steps) == list(functional.STEPS), run.to_api()
    assert run.healthy, run.to_api()["tests_failed"]
    assert all(r.duration > 0 for r in run.results)
    # Nothing of the run is left in the cloud.
    assert functional.leftovers(admin_conn, run.handle) == []


_ABOVE_SG = "1100"


@contextlib.contextmanager
def _icmp_dropped(box):
    """The data plane drops ICMP to every neutron port: an OVN ACL above the security
    groups' own (neutron's allow ACLs are at priority 1002: at an equal priority OVN may
    apply either). TCP still flows."""
    nbctl = ["ovn-nbctl", "--db=unix:%s/ovn/run/ovnnb_db.sock" % box.state_dir]
    match = "outport == @neutron_pg_drop && icmp4"
    subprocess.run(nbctl + ["acl-add", "neutron_pg_drop", "to-lport", _ABOVE_SG, match, "drop"],
                   check=True, capture_output=True)
    try:
        yield
    finally:
        subprocess.run(nbctl + ["acl-del", "neutron_pg_drop", "to-lport", _ABOVE_SG, match],
                       check=True, capture_output=True)


def test_icmp_dropped_fails_the_ping_naming_vm2_and_cleans_up(engine, box, admin_conn):
    with _icmp_dropped(box):
        run = _run(engine)
    steps = _by_step(run)
    ping = steps["ping"]
    assert ping.status == results.Status.FAILED, run.to_api()
    assert ping.component == "vm2"
    assert re.match(r"vm2 on (%s): no ping reply from 198\.18\.42\." % "|".join(
        box.compute_hosts), ping.details), ping.details
    assert ping.details.endswith("(from vm1) in 20.0 s"), ping.details
    assert all(steps[s].status == results.Status.PASSED
               for s in ("network", "image", "access", "boot", "cleanup")), run.to_api()
    assert functional.leftovers(admin_conn, run.handle) == []
