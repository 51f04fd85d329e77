"""Rally front end of the upgrade checks (cloudpulse.checks.upgrade): a snapshot of the
user's project before an upgrade, written to a file, and its verify after.

    rally task start task_templates/upgrade_snapshot.yaml --task-args '{snapshot_file: s.json}'
    # ... the upgrade ...
    rally task start task_templates/upgrade.yaml --task-args '{snapshot_file: s.json}'
"""

import json
import os

from rally.task import validation
from rally_openstack.task import scenario

from cloudpulse.checks import upgrade
from cloudpulse import results
from cloudpulse_rally.scenarios import base


@validation.add("number", param_name="timeout", minval=0.1, nullable=True)
@validation.add("required_platform", platform="openstack", users=True)
@scenario.configure(name="CloudPulse.upgrade_snapshot", platform="openstack")
class UpgradeSnapshot(base.CheckScenario):

    def run(self, snapshot_file, timeout=10.0):
        """Record the user's project's resources and their state, and the API versions,
        into `snapshot_file` (JSON; replaced whole, never half written).  Creates
        nothing in the cloud.

        :param snapshot_file: where the snapshot is written
        :param timeout: seconds before one API call counts as failed
        """
        started = results.utcnow()
        snapshot = upgrade.take(self.connection(timeout), timeout=timeout)
        partial = snapshot_file + ".part"
        with open(partial, "w") as f:
            json.dump(snapshot, f, indent=1, sort_keys=True)
        os.replace(partial, snapshot_file)
        recorded = sum(map(len, snapshot["resources"].values()))
        self.report([results.CheckResult(
            name="upgrade.snapshot", check_type=results.CheckType.UPGRADE,
            component=os.path.basename(snapshot_file), status=results.Status.PASSED,
            details="%d resources of project %s written to %s" % (
                recorded, snapshot["project_id"], snapshot_file),
            started_at=started, finished_at=results.utcnow(),
            duration=(results.utcnow() - started).total_seconds())])


@validation.add("file_exists", param_name="snapshot_file")
@validation.add("number", param_name="timeout", minval=0.1, nullable=True)
@validation.add("required_platform", platform="openstack", users=True)
@scenario.configure(name="CloudPulse.upgrade_verify", platform="openstack")
class UpgradeVerify(base.CheckScenario):

    def run(self, snapshot_file, timeout=10.0):
        """Every resource the snapshot in `snapshot_file` recorded is still there and
        still works as it did: one result per resource, failed with what changed
        (`status ACTIVE -> SHUTOFF`, `gateway lost`, `rule ... removed`); the API
        versions before and after side by side.  Creates nothing.

        :param snapshot_file: a snapshot written by CloudPulse.upgrade_snapshot
        :param timeout: seconds before one API call counts as failed
        """
        with open(snapshot_file) as f:
            snapshot = json.load(f)
        self.report(upgrade.verify(self.connection(timeout), snapshot,
                                   os.path.basename(snapshot_file), timeout=timeout))
