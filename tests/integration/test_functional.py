"""The functional check through Rally's engine on the cloud in a box: a tenant's workload
end to end with real packets, healthy and with a real data-plane fault."""

import contextlib
import re
import subprocess
import threading

import pytest

from cloudpulse.checks import functional
from cloudpulse.checks import workload
from cloudpulse import results
from tests.integration.conftest import healthy_data_plane_run, run_engine


@pytest.fixture(scope="module")
def engine(workload_engine):
    store, args = workload_engine
    return store, dict(args)


def _run(engine):
    return run_engine(engine[0], "functional", engine[1])


def _by_step(run):
    return {r.name.split(".", 1)[1]: r for r in run.results}


def test_functional_healthy(all_through_the_cli, admin_conn):
    """Its steps in the healthy run of every type through the server and the CLI (in
    operator mode: a project made for the run)."""
    run = healthy_data_plane_run(all_through_the_cli, results.CheckType.FUNCTIONAL)
    steps = _by_step(run)
    # steps that need nothing of each other run together: their results come in any order
    assert sorted(steps) == sorted(functional.STEPS), run.to_api()
    assert len(run.results) == len(functional.STEPS)
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
               for s in ("network", "router", "image", "access", "boot", "cleanup")), run.to_api()
    assert functional.leftovers(admin_conn, run.handle) == []


def test_without_floating_ips_the_ping_is_read_from_the_console(engine, admin_conn):
    """A project without an external network: vm1's user-data pings vm2 and the result
    comes from vm1's console log; the volume is checked through the API only."""
    store, args = engine
    args = {k: v for k, v in args.items() if k != "external_network"}
    run = run_engine(store, "functional", args)
    steps = _by_step(run)
    assert run.healthy, run.to_api()["tests_failed"]
    assert steps["ping"].status == results.Status.PASSED
    assert steps["volume"].details.startswith("in-use through the API; not looked for inside")
    assert functional.leftovers(admin_conn, run.handle) == []


def test_floating_ips_unreachable_blame_the_external_network(engine, box, admin_conn):
    with box.external_down():
        run = _run(engine)
    ping = _by_step(run)["ping"]
    assert ping.status == results.Status.FAILED, run.to_api()
    assert ping.component == "external-network"
    assert "while the tenant network passes: vm1 reached vm2 (console log)" in ping.details
    assert _by_step(run)["cleanup"].status == results.Status.PASSED
    assert functional.leftovers(admin_conn, run.handle) == []


def test_glance_stopped_fails_the_image_step(engine, faults, admin_conn):
    faults.stop("glance")
    run = _run(engine)
    steps = _by_step(run)
    assert steps["network"].status == results.Status.PASSED
    assert steps["image"].status == results.Status.FAILED, run.to_api()
    assert steps["image"].component == "image"
    assert steps["boot"].details == "not checked: image failed"
    assert steps["cleanup"].status == results.Status.PASSED


def _hang_cinder_volume_once_a_volume_is_made(box, faults, conn):
    """cinder-volume hung as soon as a run's volume is available (it is made while the
    VMs boot, seconds before the attach): the attach, not the create, meets it hung."""
    def made():
        return [v for v in conn.block_storage.volumes()
                if workload.RUN_METADATA in (v.metadata or {}) and v.status == "available"]

    def watch():
        box.wait_for(made, timeout=180, interval=0.2, message="a run's volume available")
        faults.hang("cinder-volume")
    thread = threading.Thread(target=watch, name="hang-cinder-volume", daemon=True)
    thread.start()
    return thread


def test_an_attach_that_never_completes_fails_the_volume_step_and_cleans_up(
        engine, box, faults, admin_conn):
    """cinder-volume hung once the volume exists: nova's attach waits on it forever (its
    RPC call times out only after a minute).  The volume step fails, naming the volume
    and what it saw; what the cleanup cannot remove while cinder-volume hangs stays
    registered, and the sweeper removes it once cinder-volume answers again."""
    store, args = engine
    watcher = _hang_cinder_volume_once_a_volume_is_made(box, faults, admin_conn)
    run = run_engine(store, "functional", dict(args, boot_timeout=20))
    watcher.join(timeout=1)
    assert faults.hung == ["cinder-volume"]
    steps = _by_step(run)
    volume = steps["volume"]
    assert volume.status == results.Status.FAILED, run.to_api()
    assert volume.component == "volume"
    assert re.fullmatch(r"volume \S+ attached to vm1: not in-use within 20.0 s "
                        r"\(status (reserved|attaching)\)", volume.details), volume.details
    assert all(steps[s].status == results.Status.PASSED
               for s in ("network", "router", "image", "access", "boot", "ping")), run.to_api()
    registry = workload.RunRegistry(workload.default_runs_dir())
    if steps["cleanup"].status != results.Status.PASSED:
        assert "left after the run, for the sweeper: " in steps["cleanup"].details
        assert run.handle in registry.dead_runs()
    faults.heal()
    faults.stopped, faults.hung = [], []
    box.wait_for(lambda: workload.sweep(admin_conn, registry) is not None
                 and not functional.leftovers(admin_conn, run.handle), timeout=180,
                 message="nothing left of the run once cinder-volume answers")
    assert run.handle not in registry.dead_runs()


def test_an_exhausted_quota_is_an_error_not_a_cloud_failure(engine, admin_conn):
    """The check's project may boot one instance only: the second VM is refused by nova
    (403, quota), which is the checker's limit, not the cloud's fault."""
    project = admin_conn.current_project_id
    admin_conn.compute.update_quota_set(project, instances=1)
    try:
        run = _run(engine)
    finally:
        admin_conn.compute.revert_quota_set(project)
    boot = _by_step(run)["boot"]
    assert boot.status == results.Status.ERROR, run.to_api()
    assert boot.details.startswith("quota exhausted in the check's project: "), boot.details
    assert "quota" in boot.details.lower()
    assert _by_step(run)["cleanup"].status == results.Status.PASSED
    assert functional.leftovers(admin_conn, run.handle) == []
