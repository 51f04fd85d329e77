"""Functional checks: what a tenant does, end to end, and packets that must flow.

One run creates a network, a subnet and a router (its gateway on the external network when
one is given), uploads an image, creates a key pair and a security group that allows ping
and ssh, boots two VMs (apart, where the cloud allows), pings VM2 from inside VM1 (over SSH
through a floating IP), and deletes everything, checking that nothing is left.  Each step
is one CheckResult naming the step, its resource and, for VMs, the host.  The steps and
their bookkeeping are cloudpulse.checks.workload's, shared with the comprehensive check.
The Rally scenario (cloudpulse_rally) and the Tempest test (cloudpulse_tempest) are thin
front ends over `run_functional_checks`.
"""

from cloudpulse.checks import workload
from cloudpulse import results

CHECK_TYPE = results.CheckType.FUNCTIONAL
STEPS = ("network", "image", "access", "boot", "ping", "cleanup")

Settings = workload.WorkloadSettings
StepFailed = workload.StepFailed
leftovers = workload.leftovers


def check_name(step):
    return "%s.%s" % (CHECK_TYPE.value, step)


class FunctionalRun(workload.WorkloadRun):

    check_type = CHECK_TYPE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vms = []

    def steps(self):
        self.step("network", "network", self.create_network)
        self.step("image", "image", self.upload_image)
        self.step("access", "keypair", self.create_access)
        self.step("boot", "vm", self.boot_two)
        self.step("ping", "vm1", self.ping_across)

    def boot_two(self):
        # Apart where the cloud allows: soft anti-affinity still boots on a one-host cloud.
        group = self.create_server_group("soft-anti-affinity")
        hint = {"scheduler_hints": {"group": group.id}}
        booted = self.boot([("vm1", hint), ("vm2", hint)], parallel=2)
        for label in ("vm1", "vm2"):
            if isinstance(booted[label], Exception):
                raise booted[label]
            self.vms.append(booted[label])

    def ping_across(self):
        vm1, vm2 = self.vms
        session = self.ssh_to(vm1)
        try:
            replied, _ = workload.ping_until(session, vm2.address, self.settings.ping_timeout)
        finally:
            session.close()
        if not replied:
            raise StepFailed("%s: no ping reply from %s (from %s) in %s s" % (
                vm2.where(), vm2.address, vm1.label, self.settings.ping_timeout), vm2.label)


def run_functional_checks(conn, settings, run_id, name=None, timer=None):
    return FunctionalRun(conn, settings, run_id, name, timer).run()
