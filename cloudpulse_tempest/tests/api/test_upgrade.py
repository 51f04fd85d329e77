"""The upgrade verify as a Tempest test, after an upgrade: the snapshot
[cloudpulse] upgrade_snapshot names (taken before it through the CloudPulse API at
[cloudpulse] api_url) is read with the primary account's token, and every resource it
recorded must still be there and work as it did (cloudpulse.checks.upgrade).  Creates
nothing."""

import requests
from tempest import config
from tempest.lib import decorators
from tempest import test

from cloudpulse.checks import upgrade
from cloudpulse import results
from cloudpulse_tempest import connection

CONF = config.CONF


class UpgradeVerifyTest(test.BaseTestCase):
    """What the snapshot recorded before the upgrade is still there, and still works."""

    credentials = ["primary"]

    @classmethod
    def skip_checks(cls):
        super().skip_checks()
        if not CONF.cloudpulse.upgrade_snapshot or not CONF.cloudpulse.api_url:
            raise cls.skipException("[cloudpulse] upgrade_snapshot and api_url name no "
                                    "snapshot to verify")

    @classmethod
    def setup_credentials(cls):
        cls.set_network_resources()   # it creates nothing
        super().setup_credentials()

    @classmethod
    def resource_setup(cls):
        super().resource_setup()
        handle = CONF.cloudpulse.upgrade_snapshot
        answer = requests.get(
            CONF.cloudpulse.api_url.rstrip("/") + "/cpulse/snapshot",
            params={"handle": handle}, timeout=CONF.cloudpulse.timeout,
            headers={"X-Auth-Token": cls.os_primary.auth_provider.get_token()})
        if answer.status_code != 200:
            raise cls.failureException("snapshot %s: HTTP %s from %s: %s" % (
                handle, answer.status_code, CONF.cloudpulse.api_url,
                answer.text[:300]))
        cls.snapshot, cls.handle = upgrade.from_api(answer.json()), handle

    @decorators.idempotent_id("5d2b7e4a-9c1f-4a8e-b3d6-0e7f2a9c4b15")
    def test_every_recorded_resource_still_holds(self):
        out = upgrade.verify(connection.connect(self.os_primary.credentials), self.snapshot,
                             self.handle, timeout=CONF.cloudpulse.timeout)
        self.assertEqual([], ["%s: %s" % (r.name, r.details) for r in out
                              if r.status in (results.Status.FAILED, results.Status.ERROR)])
