"""The comprehensive check through Rally's engine on the cloud in a box (one VM per compute
host, each its own OVN chassis joined by geneve): healthy, then with one host's data path
cut and with one host's underlay MTU below what neutron promises.  Each fault must be blamed
on that host and nothing else."""

import re

import pytest

from cloudpulse.checks import endpoint
from cloudpulse.checks import workload
from cloudpulse import results
from tests.integration.conftest import TIMEOUT, healthy_data_plane_run, run_engine


@pytest.fixture(scope="module")
def engine(workload_engine):
    store, args = workload_engine
    return store, dict(args, probe_timeout=8)


def _run(engine):
    return run_engine(engine[0], "comprehensive", engine[1])


def _by(run, step):
    return {r.component: r for r in run.results if r.name == "comprehensive." + step}


def test_comprehensive_healthy(all_through_the_cli, box, admin_conn):
    """Its steps in the healthy run of every type through the server and the CLI."""
    run = healthy_data_plane_run(all_through_the_cli, results.CheckType.COMPREHENSIVE)
    hosts = box.compute_hosts
    assert run.healthy, run.to_api()["tests_failed"]
    assert sorted(_by(run, "boot")) == sorted(hosts) + ["probed"]
    assert sorted(_by(run, "data_path")) == sorted(hosts)
    # VM to gateway, and a ring of VM to VM across hosts
    assert len(_by(run, "mtu")) == 1 + len(hosts), _by(run, "mtu")
    assert sorted(_by(run, "security_group")) == ["rule %s" % r for r in sorted(workload.RULES)]
    assert _by(run, "cleanup")["cleanup"].status == results.Status.PASSED
    assert workload.leftovers(admin_conn, run.handle) == []


def test_a_cut_host_is_blamed_alone(engine, box, admin_conn):
    """A host whose uplink is down cannot even bring a new VM's port up (its
    ovn-controller loses the SB, so neutron never reports the port plugged): its VM fails
    to boot, and the other hosts' data paths pass."""
    cut = box.compute_hosts[-1]
    store, args = engine
    with box.cut(cut):
        run = _run((store, dict(args, boot_timeout=25)))
    boot, data_path = _by(run, "boot"), _by(run, "data_path")
    assert boot[cut].status == results.Status.FAILED, run.to_api()
    assert boot[cut].details.startswith("the VM on %s: not ACTIVE within 25.0 s" % cut)
    assert cut not in data_path
    assert sorted(data_path) == sorted(h for h in box.compute_hosts if h != cut)
    assert all(r.status == results.Status.PASSED for r in data_path.values()), \
        run.to_api()["tests_failed"]
    assert _by(run, "cleanup")["cleanup"].status == results.Status.PASSED
    assert workload.leftovers(admin_conn, run.handle) == []


def test_an_underlay_mtu_below_the_networks_is_found(engine, box, admin_conn):
    small = box.compute_hosts[1]
    with box.underlay_mtu(small, 1400):
        run = _run(engine)
    mtu = _by(run, "mtu")
    failed = {c: r for c, r in mtu.items() if r.status == results.Status.FAILED}
    # every path into or out of that host, and only those
    assert failed and all(small in c for c in failed), run.to_api()
    # geneve takes 58 bytes of the 1400 the host's uplink carries
    detail = next(iter(failed.values())).details
    assert "the path carries 1342 bytes" in detail and "promises 1442" in detail, detail
    # small packets still flow; TCP to that host's VM may stall (an MTU black hole): if
    # anything else fails, it is that host
    assert all(r.status == results.Status.PASSED for c, r in _by(run, "data_path").items()
               if c != small), run.to_api()["tests_failed"]
    assert workload.leftovers(admin_conn, run.handle) == []


def test_a_dead_ovn_controller_reads_control_plane_degraded(engine, workload_engine, box,
                                                            faults, admin_conn):
    """ovn-controller stopped on one host is not a data-path cut (its flows stay), but a
    new VM there would never get its port: the comprehensive check leaves that host out,
    saying so, and passes; so does the functional check, whose VMs go to the other
    hosts; the endpoint check names the dead agent; together they read "data plane
    forwarding, control plane degraded on <host>"."""
    host = box.compute_hosts[1]
    faults.stop(box.host_service("ovn-controller", host))
    box.wait_for(lambda: [a for a in admin_conn.network.agents()
                          if a.host == host and not a.is_alive], timeout=60,
                 message="neutron reports the OVN agent on %s dead" % host)
    run = _run(engine)
    assert run.healthy, run.to_api()["tests_failed"]
    skipped = _by(run, "hosts")[host]
    assert skipped.status == results.Status.SKIPPED
    assert skipped.details.startswith("control plane degraded: ovn-controller on %s" % host)
    assert host not in _by(run, "data_path")
    neutron = endpoint.run_endpoint_checks(admin_conn, services=["neutron"], timeout=TIMEOUT)
    assert neutron[0].status == results.Status.FAILED
    assert neutron[0].component == "ovn-controller@%s" % host, neutron[0]
    together = results.CheckRun(run.handle, ["endpoint", "comprehensive"], "finished",
                                results=neutron + run.results)
    assert together.verdict() == "data plane forwarding, control plane degraded on %s" % host

    # as the server runs it for an operator: in a project made for the run (Rally's users
    # context), whose user is admin there, and which is gone afterwards
    store, args = workload_engine
    projects = {p.id for p in admin_conn.identity.projects()}
    run = run_engine(store, "functional", dict(args, new_tenant=True))
    assert run.healthy, run.to_api()["tests_failed"]
    assert {p.id for p in admin_conn.identity.projects()} == projects
    hosts = [r for r in run.results if r.name == "functional.hosts"]
    assert [(r.component, r.status) for r in hosts if r.status != results.Status.PASSED] == [
        (host, results.Status.SKIPPED)], hosts
    boot = [r for r in run.results if r.name == "functional.boot"][0]
    assert re.fullmatch(r"vm1 on (\S+), vm2 on (\S+)", boot.details), boot.details
    assert host not in boot.details.replace(",", " ").split(), boot.details
    assert run.verdict() == "data plane forwarding, control plane degraded on %s" % host


def test_a_hung_nova_compute_fails_its_hosts_boot_and_cleans_up(engine, box, faults,
                                                                admin_conn):
    """nova-compute hung on one host just before the run: the host still counts as up,
    its VM never becomes ACTIVE (timeout, naming the host), the other hosts pass, and the
    cleanup still leaves nothing (nova deletes locally once the service is down)."""
    host = box.compute_hosts[-1]
    store, args = engine
    faults.hang(box.host_service("nova-compute", host))
    run = run_engine(store, "comprehensive", dict(args, boot_timeout=30))
    boot = _by(run, "boot")
    assert boot[host].status == results.Status.FAILED, run.to_api()
    assert boot[host].details.startswith("the VM on %s: not ACTIVE within 30.0 s" % host)
    assert all(r.status == results.Status.PASSED for h, r in _by(run, "data_path").items()),\
        run.to_api()["tests_failed"]
    assert _by(run, "cleanup")["cleanup"].status == results.Status.PASSED, run.to_api()
    assert workload.leftovers(admin_conn, run.handle) == []
