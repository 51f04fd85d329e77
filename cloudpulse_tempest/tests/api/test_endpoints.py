"""Endpoint health as Tempest tests: one test per service, each the shared probe
(cloudpulse.checks.endpoint) run with the primary credentials. Creates nothing."""

from tempest import config
from tempest.lib import decorators
from tempest import test

from cloudpulse.checks import endpoint
from cloudpulse.checks import runner
from cloudpulse import results
from cloudpulse_tempest import connection

CONF = config.CONF


class EndpointHealthTest(test.BaseTestCase):
    """Every API answers with what it should; Horizon lets the user log in."""

    credentials = ["primary"]

    @classmethod
    def setup_credentials(cls):
        # Endpoint checks must not create users or networks on the cloud they check.
        cls.set_network_resources()
        super().setup_credentials()

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        cls.timeout = CONF.cloudpulse.timeout
        conn = connection.connect(cls.os_primary.credentials)
        horizon_url = CONF.cloudpulse.horizon_url or CONF.dashboard.dashboard_url
        cls.probes = endpoint.endpoint_probes(
            conn, services=CONF.cloudpulse.endpoint_services, horizon_url=horizon_url,
            timeout=cls.timeout)

    def verify_service(self, service):
        probe = self.probes.get(service)
        if probe is None:
            raise self.skipException("%s is not in [cloudpulse] endpoint_services" % service)
        result = runner.run_probe(probe, self.timeout)
        if result.status == results.Status.SKIPPED:
            raise self.skipException(result.details)
        self.assertEqual(results.Status.PASSED, result.status,
                         "%s failed (%s): %s" % (result.name, result.component,
                                                 result.details))

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("6f0c7a8e-3b8e-4a41-9a53-1f7c7d0e2a01")
    def test_keystone(self):
        self.verify_service("keystone")

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("0d7f3b5a-5c1e-4a8e-8f0e-2b6c1a9d3e02")
    def test_glance(self):
        self.verify_service("glance")

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("a4c2e6b1-7d3f-4b9a-9c5e-3d8e2f1a4b03")
    def test_nova(self):
        self.verify_service("nova")

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("c9e1d5f3-2a7b-4c6d-8e4f-5a1b7c3d9e04")
    def test_neutron(self):
        self.verify_service("neutron")

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("e2b8f4a6-9c1d-4e3f-a7b5-6c2d8e4f1a05")
    def test_cinder(self):
        self.verify_service("cinder")

    @decorators.attr(type="smoke")
    @decorators.idempotent_id("f7a3c9e5-4b2d-4f8a-b6c1-7d3e9f5a2b06")
    def test_horizon_login(self):
        self.verify_service("horizon")
