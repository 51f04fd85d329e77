"""The endpoint probes against the real cloud in a box, healthy and with real faults."""

import contextlib
import time

import pytest

from cloudpulse.checks import endpoint
from cloudpulse import results
from tests.integration.conftest import TIMEOUT, by_name, wait_for_result

ALL = ["endpoint.%s" % s for s in endpoint.SERVICES]


def _run(conn, box, **kwargs):
    return endpoint.run_endpoint_checks(conn, timeout=TIMEOUT, horizon_url=box.horizon_url,
                                        **kwargs)


def test_healthy_cloud_all_pass_as_admin(admin_conn, box):
    out = _run(admin_conn, box)
    assert [r.name for r in out] == ALL
    assert [(r.name, r.status.value, r.details) for r in out if r.status != "passed"] == []


def test_healthy_cloud_all_pass_as_tenant(demo_conn, box):
    out = by_name(_run(demo_conn, box))
    assert all(r.status == results.Status.PASSED for r in out.values()), out
    # A tenant may not read service states: said, not failed.
    assert out["endpoint.nova"].details == "service states not visible to this user"


def test_glance_stopped_fails_glance_only(admin_conn, box, faults):
    faults.stop("glance")
    out = by_name(_run(admin_conn, box))
    assert out["endpoint.glance"].status == results.Status.FAILED
    assert "cannot connect" in out["endpoint.glance"].details
    assert out["endpoint.glance"].component == "glance"
    assert [n for n, r in out.items() if not r.ok] == ["endpoint.glance"]


def test_neutron_hung_fails_with_timeout_and_does_not_hang(admin_conn, box, faults):
    faults.hang("neutron")
    t0 = time.monotonic()
    out = by_name(_run(admin_conn, box))
    elapsed = time.monotonic() - t0
    assert out["endpoint.neutron"].status == results.Status.FAILED
    assert out["endpoint.neutron"].details.startswith("timeout after %s s" % TIMEOUT)
    # Parallel probes: the hung API costs about one timeout, not one per service.
    assert elapsed < 4 * TIMEOUT, elapsed
    assert out["endpoint.nova"].ok and out["endpoint.glance"].ok


def test_nova_compute_down_fails_nova_naming_the_host(admin_conn, box, faults):
    faults.stop(box.host_service("nova-compute"))
    out = wait_for_result(lambda: by_name(_run(admin_conn, box, services=["keystone", "nova"])),
                          lambda o: not o["endpoint.nova"].ok, timeout=60)
    nova = out["endpoint.nova"]
    assert nova.status == results.Status.FAILED
    assert nova.component == "nova-compute@%s" % box.compute_host
    assert "nova-compute@%s is down" % box.compute_host in nova.details


def test_cinder_volume_down_fails_cinder(admin_conn, box, faults):
    faults.stop("cinder-volume")
    out = wait_for_result(lambda: by_name(_run(admin_conn, box, services=["cinder"])),
                          lambda o: not o["endpoint.cinder"].ok, timeout=60)
    cinder = out["endpoint.cinder"]
    assert cinder.status == results.Status.FAILED
    assert cinder.component.startswith("cinder-volume@")
    assert "is down" in cinder.details


def test_ovn_controller_hung_fails_neutron_naming_the_agent(admin_conn, box, faults):
    faults.hang(box.host_service("ovn-controller"))
    out = wait_for_result(lambda: by_name(_run(admin_conn, box, services=["neutron"])),
                          lambda o: not o["endpoint.neutron"].ok, timeout=90)
    neutron = out["endpoint.neutron"]
    assert neutron.status == results.Status.FAILED
    assert "is dead" in neutron.details
    assert box.compute_host in neutron.component


def test_keystone_stopped_fails_keystone_and_checks_nothing_else(box, faults):
    from cloudpulse import cloud
    fresh = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=TIMEOUT)  # no token yet
    faults.stop("keystone")
    out = by_name(_run(fresh, box))
    assert out["endpoint.keystone"].status == results.Status.FAILED
    assert "cannot connect" in out["endpoint.keystone"].details
    others = [r for n, r in out.items() if n != "endpoint.keystone"]
    assert {r.status for r in others} == {results.Status.ERROR}
    assert all(r.details.startswith("not checked: keystone failed") for r in others)


def test_horizon_wrong_password_is_refused(box):
    from cloudpulse import cloud
    conn = cloud.connect(box.demo_cloud, box.clouds_yaml, timeout=TIMEOUT)
    conn.config.config["auth"] = dict(conn.config.config["auth"], password="wrong-password")
    out = endpoint.run_endpoint_checks(conn, services=["horizon"], horizon_url=box.horizon_url,
                                       timeout=TIMEOUT)
    assert out[0].status == results.Status.FAILED
    assert out[0].details.startswith("login as demo refused")
    assert "wrong-password" not in out[0].details


def test_horizon_without_url_is_skipped(admin_conn):
    out = endpoint.run_endpoint_checks(admin_conn, services=["horizon"], timeout=TIMEOUT)
    assert out[0].status == results.Status.SKIPPED


@contextlib.contextmanager
def cinder_endpoints_disabled(admin_conn):
    """Every cinder endpoint disabled in keystone (`openstack endpoint set --disable`),
    enabled again on exit."""
    identity = admin_conn.identity
    cinder = [s.id for s in identity.services() if s.type in ("block-storage", "volumev3",
                                                               "volume")]
    endpoints = [e for e in identity.endpoints() if e.service_id in cinder and e.is_enabled]
    assert endpoints
    try:
        for e in endpoints:
            identity.update_endpoint(e, is_enabled=False)
        yield
    finally:
        for e in endpoints:
            identity.update_endpoint(e, is_enabled=True)


@pytest.mark.parametrize("who", ["admin", "tenant"])
def test_a_disabled_endpoint_fails_its_service_on_the_next_run(who, box, admin_conn,
                                                               demo_conn):
    conn = admin_conn if who == "admin" else demo_conn
    first = by_name(_run(conn, box, services=["keystone", "glance", "cinder"]))
    assert first["endpoint.cinder"].status == results.Status.PASSED   # token held now
    with cinder_endpoints_disabled(admin_conn):
        out = by_name(_run(conn, box, services=["keystone", "glance", "cinder"]))
        cinder = out["endpoint.cinder"]
        assert cinder.status == results.Status.FAILED, cinder
        assert cinder.details.startswith("no usable cinder endpoint in the catalog keystone "
                                         "serves now"), cinder.details
        assert out["endpoint.keystone"].ok and out["endpoint.glance"].ok
        # A suite without cinder, on this cloud without cinder: healthy.
        without = _run(conn, box, services=["keystone", "glance", "nova", "neutron"])
        assert [(r.name, r.details) for r in without if not r.ok] == []
    again = by_name(_run(conn, box, services=["cinder"]))
    assert again["endpoint.cinder"].status == results.Status.PASSED, again


def test_keystone_hung_fails_for_a_tenant_holding_a_token(demo_conn, box, faults):
    _run(demo_conn, box, services=["keystone"])   # the tenant holds a valid token now
    faults.hang("keystone")
    t0 = time.monotonic()
    out = by_name(_run(demo_conn, box, services=["keystone"]))
    assert out["endpoint.keystone"].status == results.Status.FAILED
    assert out["endpoint.keystone"].details.startswith("timeout after %s s" % TIMEOUT)
    assert time.monotonic() - t0 < 3 * TIMEOUT


def test_wrong_password_names_the_cloud(box, tmp_path):
    import yaml
    from cloudpulse import cloud
    clouds = yaml.safe_load(open(box.clouds_yaml))["clouds"]
    wrong = dict(clouds[box.demo_cloud])
    wrong["auth"] = dict(wrong["auth"], password="wrong-password")
    clouds_file = tmp_path / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": {"cloudbox-wrong": wrong}}))
    conn = cloud.connect("cloudbox-wrong", str(clouds_file), timeout=TIMEOUT)
    out = by_name(_run(conn, box, services=["keystone", "glance"]))
    assert out["endpoint.keystone"].status == results.Status.FAILED
    assert out["endpoint.keystone"].details.startswith(
        "authentication failed for cloud cloudbox-wrong: HTTP 401"), out
    assert "wrong-password" not in out["endpoint.keystone"].details


def test_errors_read_as_one_line_with_the_request_id(admin_conn, box, faults):
    # The database down: every API answers HTTP 500, glance with its WSGI error page.
    faults.stop("mariadb")
    out = by_name(_run(admin_conn, box, services=["glance", "nova", "cinder"]))
    for name in ("endpoint.glance", "endpoint.nova", "endpoint.cinder"):
        details = out[name].details
        assert out[name].status == results.Status.FAILED, out[name]
        assert details.startswith("HTTP 500 from http://127.0.0.1:"), details
        assert "<" not in details and "\n" not in details, details
        assert details.count("req-") == 1 and "(request req-" in details, details
    assert ("The server has either erred or is incapable of performing the requested "
            "operation. (request req-") in out["endpoint.glance"].details


def test_horizon_login_uses_the_clouds_tls_settings(box, tmp_path):
    import urllib.parse

    import yaml
    from cloudpulse import cloud
    from tests.integration import tls
    ca, cert, key = tls.make_ca_and_cert(tmp_path)
    horizon = urllib.parse.urlsplit(box.horizon_url)
    clouds = yaml.safe_load(open(box.clouds_yaml))["clouds"]
    clouds["with-ca"] = dict(clouds[box.demo_cloud], cacert=ca)
    clouds_file = tmp_path / "clouds.yaml"
    clouds_file.write_text(yaml.safe_dump({"clouds": clouds}))
    with tls.TLSProxy((horizon.hostname, horizon.port), cert, key) as proxy:
        url = "https://127.0.0.1:%d/" % proxy.port
        trusting = cloud.connect("with-ca", str(clouds_file), timeout=TIMEOUT)
        out = endpoint.run_endpoint_checks(trusting, services=["horizon"], horizon_url=url,
                                           timeout=TIMEOUT)
        assert out[0].status == results.Status.PASSED, out[0].details
        # The same dashboard for a cloud that does not trust that CA: refused.
        plain = cloud.connect(box.demo_cloud, str(clouds_file), timeout=TIMEOUT)
        out = endpoint.run_endpoint_checks(plain, services=["horizon"], horizon_url=url,
                                           timeout=TIMEOUT)
        assert out[0].status == results.Status.FAILED
        assert "TLS certificate verification failed" in out[0].details, out[0].details
