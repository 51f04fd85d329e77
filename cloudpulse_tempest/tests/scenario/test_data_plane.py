"""The data-plane checks as Tempest tests: the functional run (a tenant's workload end to
end) and the comprehensive run (every compute host, path MTU, security groups rule by rule),
both as the primary account.  Each is the shared implementation
(cloudpulse.checks.functional / comprehensive) with Tempest's credentials, its own
configuration ([scenario] img_file, [compute] flavor_ref, [network]
floating_network_name, [validation] image_ssh_user and timeouts) and its resource names;
what a run created is removed by the run, and Tempest's cleanup removes by tag whatever a
failed removal left."""

import os

from tempest import config
from tempest.lib.common.utils import data_utils
from tempest.lib.common.utils import test_utils
from tempest.lib import decorators
from tempest import test

from cloudpulse.checks import comprehensive
from cloudpulse.checks import functional
from cloudpulse.checks import workload
from cloudpulse import results
from cloudpulse_tempest import connection

CONF = config.CONF


class _DataPlaneTest(test.BaseTestCase):

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not os.path.isfile(CONF.scenario.img_file or ""):
            raise cls.skipException("[scenario] img_file %r is not a file: an image is "
                                    "needed to boot the check's VMs"
                                    % CONF.scenario.img_file)
        for service in ("nova", "neutron", "glance"):
            if not getattr(CONF.service_available, service):
                raise cls.skipException("%s is not available" % service)

    @classmethod
    def setup_credentials(cls):
        # The checks create their own network: Tempest need not make one.
        cls.set_network_resources()
        super().setup_credentials()

    def settings(self, settings_class, **extra):
        return settings_class(
            image_file=CONF.scenario.img_file, flavor=CONF.compute.flavor_ref,
            external_network=CONF.network.floating_network_name or None,
            ssh_user=CONF.validation.image_ssh_user,
            image_disk_format=CONF.scenario.img_disk_format,
            boot_timeout=float(CONF.compute.build_timeout),
            ping_timeout=float(CONF.validation.ping_timeout),
            api_timeout=CONF.cloudpulse.timeout,
            volume_size=CONF.cloudpulse.volume_size if
            CONF.service_available.cinder else 0,
            **extra)

    def run_checks(self, run_class, conn, settings):
        run_id = data_utils.rand_uuid()
        # Tempest's cleanup: whatever the run could not remove, by the run's tag.
        self.addCleanup(self._remove_leftovers, conn, run_id)
        out = run_class(conn, settings, run_id,
                        name=lambda kind: data_utils.rand_name(prefix="cloudpulse",
                                                               name=kind)).run()
        failed = [r for r in out if r.status in (results.Status.FAILED,
                                                 results.Status.ERROR)]
        self.assertEqual([], ["%s (%s): %s" % (r.name, r.component, r.details)
                              for r in failed])
        return out

    @staticmethod
    def _remove_leftovers(conn, run_id):
        for _, _, delete in workload.tagged(conn, run_id):
            test_utils.call_and_ignore_notfound_exc(delete)


class FunctionalTest(_DataPlaneTest):
    """A tenant's workload end to end: network, image, key pair and security group, two
    VMs apart, a ping between them, a volume seen inside the first; nothing left."""

    credentials = ["primary"]

    @decorators.attr(type="slow")
    @decorators.idempotent_id("3c5e8a1f-6b2d-4e7a-9f1c-8d4b2a6e0c11")
    def test_tenant_workload_end_to_end(self):
        self.run_checks(functional.FunctionalRun,
                        connection.connect(self.os_primary.credentials),
                        self.settings(functional.Settings))


class ComprehensiveTest(_DataPlaneTest):
    """Every compute host's data path, the path MTU, and security groups rule by rule.
    The VMs go onto each host when the account has the admin role (a pre-provisioned
    account listed without it keeps its real rights); without it those parts are skipped,
    saying why."""

    credentials = ["primary"]

    @decorators.attr(type="slow")
    @decorators.idempotent_id("7a1d4f9b-2c8e-4b3a-8e6d-1f5c9b3a7d12")
    def test_every_host_mtu_and_security_groups(self):
        self.run_checks(comprehensive.ComprehensiveRun,
                        connection.connect(self.os_primary.credentials),
                        self.settings(comprehensive.Settings,
                                      probe_timeout=CONF.cloudpulse.probe_timeout))
