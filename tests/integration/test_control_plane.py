"""Operator check, API side (no SSH): the cloud in a box's service and agent states
compared with a service map of the box's controller (cinder-volume) and its first
compute host (nova-compute, a neutron agent: the OVN controller)."""

import pytest

from cloudpulse.checks import operator
from cloudpulse.checks.operator import servicemap
from cloudpulse import results
from tests.integration.conftest import TIMEOUT, wait_for_result


@pytest.fixture(scope="module")
def box_map(box):
    # the addresses are never dialled: this check reads the APIs only
    return servicemap.from_dict({"hosts": {
        "controller": {"address": "198.18.255.1", "hostname": box.controller_host,
                       "roles": ["storage"]},
        "compute1": {"address": "198.18.255.2", "hostname": box.compute_host,
                     "roles": ["compute"]}}}, "test map")


def _run(box_map, conn):
    return {r.component: r for r in operator.run_control_plane(box_map, conn, TIMEOUT)}


def test_healthy_control_plane(box_map, admin_conn, box):
    out = _run(box_map, admin_conn)
    host = box.compute_host
    for component in ("nova-compute@%s" % host, "neutron-agent@%s" % host,
                      "cinder-volume@%s" % box.controller_host, "nova", "neutron", "cinder"):
        assert out[component].status == results.Status.PASSED, out[component]


def test_tenant_is_skipped_not_failed(box_map, demo_conn):
    out = operator.run_control_plane(box_map, demo_conn, TIMEOUT)
    assert not [r for r in out if r.status in (results.Status.FAILED, results.Status.ERROR)]
    assert any(r.status == results.Status.SKIPPED for r in out)


def test_nova_compute_down_blames_it(box_map, admin_conn, box, faults):
    faults.stop(box.host_service("nova-compute"))
    comp = "nova-compute@%s" % box.compute_host
    out = wait_for_result(lambda: _run(box_map, admin_conn),
                          lambda o: o[comp].status == results.Status.FAILED, timeout=60)
    assert out[comp].status == results.Status.FAILED
    assert "is down" in out[comp].details
    assert out["cinder-volume@%s" % box.controller_host].status == results.Status.PASSED


def test_cinder_volume_down_blames_it(box_map, admin_conn, box, faults):
    faults.stop("cinder-volume")
    failed = lambda o: any(c.startswith("cinder-volume@") and r.status == results.Status.FAILED
                           for c, r in o.items())
    out = wait_for_result(lambda: _run(box_map, admin_conn), failed, timeout=60)
    assert failed(out), out
