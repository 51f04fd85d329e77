"""Rally front end of the endpoint checks (cloudpulse.checks.endpoint)."""

from rally.task import validation
from rally_openstack.task import scenario

from cloudpulse.checks import endpoint
from cloudpulse_rally.scenarios import base


@validation.add("cloudpulse_subset", param_name="services", values=endpoint.SERVICES)
@validation.add("number", param_name="timeout", minval=0.1, nullable=True)
@validation.add("required_platform", platform="openstack", users=True)
@scenario.configure(name="CloudPulse.endpoint", platform="openstack")
class Endpoint(base.CheckScenario):

    def run(self, services=endpoint.SERVICES, horizon_url=None, timeout=10.0):
        """Every API answers with what it should; Horizon lets the user log in.

        Creates nothing: one list call per service (limit=1) plus, where the user
        may see them, the services' own component states (nova-compute,
        cinder-volume, neutron agents).  Fails when any check fails.

        :param services: services to probe, a subset of keystone, glance, nova,
            neutron, cinder, horizon
        :param horizon_url: dashboard URL for the login check (skipped if unset)
        :param timeout: seconds before one API call counts as failed
        """
        conn = self.connection(timeout)
        self.report(endpoint.run_endpoint_checks(
            conn, services=services, horizon_url=horizon_url, timeout=timeout))
