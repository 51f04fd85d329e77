"""Operator check, API side (no SSH): the cloud in a box's service and agent states
compared with a service map that puts nova-compute, a neutron agent (OVN controller)
and cinder-volume on the box's one compute host."""

import pytest

from cloudpulse.checks import operator
from cloudpulse.checks.operator import servicemap
from cloudpulse import results
from tests.integration.conftest import TIMEOUT, wait_for_result


@pytest.fixture(scope="module")
def box_map(box):
    return servicemap.from_dict({"hosts": {"compute1": {
        "address": "198.18.255.1",   # never dialled: this check reads the APIs only
        "hostname": box.compute_host, "roles": ["compute", "storage"]}}}, "test map")


def _run(box_map, conn):
    return {r.component: r for r in operator.run_control_plane(box_map, conn, TIMEOUT)}


def test_healthy_control_plane(box_map, admin_conn, box):
    out = _run(box_map, admin_conn)
    host = box.compute_host
    for component in ("nova-compute@%s" % host, "neutron-agent@%s" % host,
                      "cinder-volume@%s" % host, "nova", "neutron", "cinder"):
        assert out[component].status == results.Status.PASSED, out[component]


def test_tenant_is_skipped_not_failed(box_map, demo_conn):
    out = operator.run_control_plane(box_map, demo_conn, TIMEOUT)
    assert not [r for r in out if r.status in (results.Status.FAILED, results.Status.ERROR)]
    assert any(r.status == results.Status.SKIPPED for r in out)


def test_nova_compute_down_blames_it(box_map, admin_conn, box, faults):
    faults.stop("nova-compute")
    comp = "nova-compute@%s" % box.compute_host
    out = wait_for_result(lambda: _run(box_map, admin_conn),
                          lambda o: o[comp].status == results.Status.FAILED, timeout=60)
    assert out[comp].status == results.Status.FAILED
    assert "is down" in out[comp].details
    assert out["cinder-volume@%s" % box.compute_host].status == results.Status.PASSED


def test_cinder_volume_down_blames_it(box_map, admin_conn, box, faults):
    faults.stop("cinder-volume")
    failed = lambda o: any(c.startswith("cinder-volume@") and r.status == results.Status.FAILED
                           for c, r in o.items())
    out = wait_for_result(lambda: _run(box_map, admin_conn), failed, timeout=60)
    assert failed(out), out
