"""Functional checks: what a tenant does, end to end, and packets that must flow.

One run creates a network, a subnet and a router (its gateway on the external network when
one is given), uploads an image, creates a key pair and a security group that allows ping
and ssh, boots two VMs (apart, where the cloud allows), pings VM2 from inside VM1 (over SSH
through a floating IP), and deletes everything, checking that nothing is left.  Each step
is one CheckResult naming the step, its resource and, for VMs, the host.  The steps and
their bookkeeping are cloudpulse.checks.workload's, shared with the comprehensive check.
The Rally scenario (cloudpulse_rally) and the Tempest test (cloudpulse_tempest) are thin
front ends over `FunctionalRun`.
"""

import base64
import random
import threading

from cloudpulse.checks import workload
from cloudpulse import fanout
from cloudpulse import results

CHECK_TYPE = results.CheckType.FUNCTIONAL
STEPS = ("sweep", "network", "router", "image", "access", "hosts", "boot", "ping", "volume",
         "cleanup")

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
        self.session = None      # SSH into vm1, for the ping and the volume
        self._pinged = threading.Event()   # the ping step is over: self.session is set
        self._volume = None      # the volume's creation, under way while the VMs boot
        self._floating_ip = None   # vm1's, made on its port while the VMs boot

    def steps(self):
        # Steps that need nothing of each other go together, the volume is made while
        # the VMs boot, and the router while everything before the ping goes on: a run
        # takes the time of its longest path, not of every step.
        with self.meanwhile() as submit:
            router = self.first_steps(submit, self.create_network, self.create_access)
            if self.settings.volume_size and not self._failed:
                self._volume = submit(self.create_volume)
            self.step("boot", "vm", lambda: self.boot_two(submit, router))
            router.result()
            steps = [("ping", "vm1", self.ping_across)]
            if self.settings.volume_size:
                steps.append(("volume", "volume", self.check_volume_step))
            try:
                self.steps_together(*steps)
            finally:
                if self.session is not None:
                    self.session.close()

    @property
    def via_console(self):
        if self.settings.ping_via == "auto":
            return not self.settings.external_network
        return self.settings.ping_via == "console"

    def boot_two(self, submit, router):
        """vm1 and vm2 on ports of their own, vm1's floating IP made while they boot
        (once the `router` future is done)."""
        # Apart where the cloud allows: soft anti-affinity still boots on a one-host cloud.
        group = self.create_server_group("soft-anti-affinity")
        hint = {"scheduler_hints": {"group": group.id}}
        onto = {}
        if self.hosts:
            # Where the run sees the hosts (admin), two of them at random: never together
            # (two boots at once can beat soft anti-affinity), every host in turn over
            # the runs, and never one whose VMs would not get their ports (the scheduler
            # knows nothing of neutron's agents: the hosts step says which).  nova's
            # scheduler still checks that each fits.
            picked = random.sample(self.hosts, min(2, len(self.hosts)))
            onto = {"vm1": {"host": picked[0]}, "vm2": {"host": picked[-1]}}
        # The ports first: vm1's user-data knows the address to ping (its console log
        # tells whether the tenant network works, also when the floating IP path fails),
        # and vm1's floating IP is ready when vm1 is.
        port1, port2 = [item.get() for item in fanout.fan_out(
            self.create_port, ("vm1", "vm2"), max_workers=2, name="cpulse-port")]
        if not self.via_console:
            self._floating_ip = submit(self._floating_ip_once_routed, port1, router)
        vm2 = dict(hint, networks=[{"port": port2.id}], **onto.get("vm2", {}))
        vm1 = dict(hint, networks=[{"port": port1.id}], **onto.get("vm1", {}),
                   user_data=base64.b64encode(self._ping_script(
                       port2.fixed_ips[0]["ip_address"]).encode()).decode())
        booted = self.boot([("vm1", vm1), ("vm2", vm2)], parallel=2)
        for label in ("vm1", "vm2"):
            if isinstance(booted[label], Exception):
                raise booted[label]
            self.vms.append(booted[label])
        # Where they went, where the user may see it (admin).
        self.record("boot", results.Status.PASSED, "vm", ", ".join(
            vm.where() for vm in self.vms if vm.host))
        return True

    def create_port(self, label):
        return self.create_tagged("port", self.conn.network.create_port,
                                  self.conn.network.delete_port, name=self._name(label),
                                  network_id=self.network.id,
                                  security_groups=[self.security_group.id])

    def _floating_ip_once_routed(self, port, router):
        router.result()
        if self.router is None:
            raise workload.NotChecked("router")
        return self.create_floating_ip(port.id, "vm1")

    def _ping_script(self, address):
        """vm1's user-data: ping vm2 once a second until a reply or ping_timeout, and say
        which on the console, marked with the run."""
        return ("#!/bin/sh\ni=0\nwhile [ $i -lt %d ]; do\n"
                "  if ping -c 1 -W 1 %s >/dev/null 2>&1; then echo '%s reply'; exit 0; fi\n"
                "  i=$((i+1)); sleep 1\ndone\necho '%s no reply'\n" % (
                    int(self.settings.ping_timeout), workload.ip(address), self._marker,
                    self._marker))

    @property
    def _marker(self):
        return "cloudpulse-ping %s:" % self.run_id

    def ping_across(self):
        try:
            self._ping_across()
        finally:
            self._pinged.set()

    def _ping_across(self):
        vm1, vm2 = self.vms
        if self.via_console:
            replied = self._ping_result_from_console(vm1)
        else:
            try:
                vm1.floating_ip = self._floating_ip.result()
                self.session = self.ssh_to(vm1)
            except StepFailed as exc:
                raise self._external_path_failed(vm1, exc) from None
            replied, _ = workload.ping_until(self.session, vm2.address,
                                             self.settings.ping_timeout)
        if not replied:
            raise StepFailed("%s: no ping reply from %s (from %s%s) in %s s" % (
                vm2.where(), vm2.address, vm1.label,
                ", console log" if self.via_console else "", self.settings.ping_timeout),
                vm2.label)

    def _external_path_failed(self, vm1, exc):
        """SSH through the floating IP failed: the console log tells whether the tenant
        network works, so that the external path is blamed, not the VMs."""
        try:
            tenant_ok = self._ping_result_from_console(vm1)
        except StepFailed:
            return exc
        if not tenant_ok:
            return exc
        return StepFailed(
            "floating IP %s of %s unreachable from the checker (external network %s, its "
            "router gateway or SNAT/floating IP path), while the tenant network passes: %s "
            "reached %s (console log)" % (vm1.floating_ip, vm1.where(),
                                          self.settings.external_network, vm1.label,
                                          self.vms[1].label),
            "external-network")

    def _ping_result_from_console(self, vm1):
        """True/False from the marker line vm1's user-data writes on its console; the
        console is read until then (the guest boots and retries for ping_timeout)."""
        found = []

        def marker_seen():
            log = self.conn.compute.get_server_console_output(vm1.server)["output"] or ""
            lines = [line for line in log.splitlines() if line.startswith(self._marker)]
            found[:] = lines[-1:]
            return bool(found)
        if not workload.wait_until(marker_seen, 2 * self.settings.ping_timeout, interval=2):
            raise StepFailed("%s: its user-data never reported the ping on the console log "
                             "in %s s" % (vm1.where(), 2 * self.settings.ping_timeout), vm1.label)
        return found[0] == self._marker + " reply"

    def check_volume_step(self):
        def session():
            self._pinged.wait()
            return self.session, ("no floating IP: the ping went by the console log"
                                  if self.via_console else "no SSH into it: see the ping")
        return self.check_volume(self.vms[0], self._volume.result(), session)

