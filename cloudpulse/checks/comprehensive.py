"""Comprehensive checks: the data path of every compute host, the path MTU, and security
groups rule by rule.  For operators (admin); a project member gets the parts that need no
admin, and the others are skipped with that reason.

1. One VM on every enabled compute host that is up (booted onto the host, at most
   `max_parallel_boots` at a time).  Each VM pings the subnet's gateway and every other VM:
   one result per host, blaming the host whose data path fails rather than every host that
   could not reach it.
2. The largest ICMP payload that passes with don't-fragment set, VM to VM across hosts and
   VM to gateway, against the network's `mtu` attribute (the path must carry what neutron
   promises; large packets lost in a tunnel give no error, so only this probe sees it).
   With `jumbo_mtu` the network is created with that MTU and must carry it.
3. With a group that allows ping, ssh and http, all three pass; with one rule removed, exactly
   that traffic is blocked and the rest still passes.  One result per rule.
The network, image, access and cleanup steps are the functional check's
(cloudpulse.checks.workload).
"""

import base64
import dataclasses
import typing

from cloudpulse.checks import workload
from cloudpulse import fanout
from cloudpulse import results

CHECK_TYPE = results.CheckType.COMPREHENSIVE
StepFailed = workload.StepFailed
IP_ICMP_HEADERS = 28      # an ICMP echo's payload + 28 = the IP packet
PROBED = "probed"         # the VM whose security group is probed rule by rule


@dataclasses.dataclass(frozen=True)
class Settings(workload.WorkloadSettings):
    cidr: str = "198.18.43.0/24"
    max_parallel_boots: int = 4
    probe_timeout: float = 30.0    # per probe that must pass, and for a rule change to apply
    jumbo_mtu: typing.Optional[int] = None

    def __post_init__(self):
        super().__post_init__()
        if self.max_parallel_boots < 1:
            raise ValueError("max_parallel_boots: must be at least 1")
        if self.jumbo_mtu is not None and not 1280 <= self.jumbo_mtu <= 65535:
            raise ValueError("jumbo_mtu: must be between 1280 and 65535")


# What a VM runs to probe one kind of traffic to another VM; 0 = it passed.  Busybox
# forms, so that CirrOS runs them too (the MTU probe needs iputils' ping -M).
PROBES = {
    "icmp": "ping -n -c 1 -W 1 {ip}",
    "tcp/22": workload.NETCAT + "; $NC -w 2 {ip} 22 </dev/null 2>/dev/null | head -c 4 "
              "| grep -q SSH-",
    # GNU wget retries a timeout 20 times; busybox's has no option for it
    "tcp/80": "timeout 5 wget -q -O /dev/null -T 3 http://{ip}/",
}


class ComprehensiveRun(workload.WorkloadRun):

    check_type = CHECK_TYPE

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.vms = []            # booted and ACTIVE
        self.sessions = {}       # label -> SSH session, for the VMs reached
        self.probed_vm = None
        self.probed_group = self.probed_rules = None

    def steps(self):
        with self.meanwhile() as submit:
            router = self.first_steps(
                submit, lambda: self.create_network(mtu=self.settings.jumbo_mtu),
                self.create_groups)
            self.step("boot", "vm", self.boot_everywhere)
            router.result()   # the floating IPs and the gateway the VMs ping need it
            try:
                self.step("data_path", "vm", self.check_data_path)
                self.step("mtu", "network", self.check_mtu)
                self.step("security_group", "security-group", self.check_security_group)
            finally:
                for session in self.sessions.values():
                    session.close()

    def create_groups(self):
        """The run's group (ping, ssh, http: the checker reaches every VM) and the probed
        group, on one VM only, whose rules the security group step removes one by one
        (a VM the checker keeps a session with must not lose its own ssh rule: OVN cuts
        established connections too)."""
        rules = tuple(workload.RULES)
        self.create_access(rules)
        self.probed_group, self.probed_rules = self.create_security_group(rules)

    # -- 1. every host's data path --------------------------------------------------------
    hidden_hosts_note = ("needs admin: compute hosts are not visible to a project member; "
                         "two VMs are booted apart where the cloud allows")

    def boot_everywhere(self):
        extra = {"user_data": base64.b64encode(workload.HTTP_USER_DATA.encode()).decode()}
        probed = dict(extra, security_groups=[self.probed_group])
        if self.hosts is None:
            group = self.create_server_group("soft-anti-affinity")
            hint = {"scheduler_hints": {"group": group.id}}
            requests = [("vm1", dict(extra, **hint)), ("vm2", dict(extra, **hint)),
                        (PROBED, dict(probed, **hint))]
        else:   # onto each host, through the scheduler's filters (nova API 2.74)
            requests = [(host, dict(extra, host=host)) for host in self.hosts]
            # the probed VM on another host than the first VM, which probes it
            requests.append((PROBED, dict(probed, host=self.hosts[1 % len(self.hosts)])))
        booted = self.boot(requests, parallel=self.settings.max_parallel_boots)
        for label, _ in requests:
            vm = booted[label]
            if isinstance(vm, Exception):
                status, _, details = self.verdict_of(vm)
                self.record("boot", status, label, details)
                continue
            if label == PROBED:
                self.probed_vm = vm
            else:
                self.vms.append(vm)
            self.record("boot", results.Status.PASSED,
                        vm.host if vm.label != PROBED and vm.host else vm.label, "")
        if not self.vms:
            self.stop_dependent_steps("boot")
        return True

    def check_data_path(self):
        """SSH into every VM (through its floating IP); each pings the gateway and every
        other VM.  One result per VM's host."""
        gateway = self.subnet.gateway_ip

        def probe_from(vm):
            session = self.ssh_to(vm)
            self.sessions[vm.label] = session
            out = {"gateway": workload.ping_until(session, gateway,
                                                  self.settings.probe_timeout)[0]}
            for peer in self.vms:
                if peer is not vm:
                    out[peer.label] = workload.ping_until(
                        session, peer.address, self.settings.probe_timeout)[0]
            return out

        probes = {item.item.label: item for item in fanout.fan_out(
            probe_from, self.vms, max_workers=8, name="cpulse-probe")}
        verdicts = judge_data_path(
            {vm.label: vm for vm in self.vms},
            {label: (None if item.ok else _reason(item.error)) for label, item in probes.items()},
            {label: item.value for label, item in probes.items() if item.ok},
            gateway)
        for vm in self.vms:
            problems = verdicts[vm.label]
            self.record("data_path", results.Status.FAILED if problems else results.Status.PASSED,
                        vm.host or vm.label, "; ".join(problems))
        if len(self.sessions) < 1:
            self.stop_dependent_steps("data_path")
        return True

    # -- 2. path MTU ------------------------------------------------------------------------
    def check_mtu(self):
        mtu = self.network.mtu
        reached = [vm for vm in self.vms if vm.label in self.sessions]
        paths = [(reached[0], self.subnet.gateway_ip, "gateway")]
        if len(reached) > 1:   # a ring: every VM sends to the next one
            paths += [(vm, nxt.address, nxt.host or nxt.label)
                      for vm, nxt in zip(reached, reached[1:] + reached[:1])]

        def probe(path):
            vm, address, _ = path
            return largest_payload(self.sessions[vm.label], address, mtu - IP_ICMP_HEADERS)

        for item in fanout.fan_out(probe, paths, max_workers=8, name="cpulse-mtu"):
            vm, address, target = item.item
            component = "%s -> %s" % (vm.host or vm.label, target)
            if not item.ok:
                self.record("mtu", results.Status.ERROR, component, _reason(item.error))
                continue
            largest, detail = item.value
            if largest == mtu - IP_ICMP_HEADERS:
                self.record("mtu", results.Status.PASSED, component, "")
            elif largest is None:
                self.record("mtu", results.Status.FAILED, component,
                            "%s: no reply to a small ping from %s%s" % (
                                component, vm.where(), ": " + detail if detail else ""))
            else:
                self.record("mtu", results.Status.FAILED, component,
                            "%s: the path carries %d bytes (largest ping payload with "
                            "don't-fragment %d), the network's mtu attribute promises %d%s" % (
                                component, largest + IP_ICMP_HEADERS, largest, mtu,
                                " (%s)" % detail if detail else ""))
        return True

    # -- 3. security groups ------------------------------------------------------------------
    def check_security_group(self):
        """From the first VM reached, to the probed VM: ping, ssh and http pass with its
        whole group; with one rule removed, exactly that traffic is blocked."""
        if self.probed_vm is None:
            raise StepFailed("no VM with the probed group booted", PROBED)
        source, target = [vm for vm in self.vms if vm.label in self.sessions][0], self.probed_vm
        session = self.sessions[source.label]
        timeout = self.settings.probe_timeout

        def passes(rule):
            return session.run(PROBES[rule].format(ip=workload.ip(target.address)),
                               timeout=15).exit_status == 0

        def settle(rule, want):
            return workload.wait_until(lambda: passes(rule) == want, timeout)

        path = "%s -> %s" % (source.where(), target.where())
        blocked = [rule for rule in workload.RULES if not settle(rule, True)]
        for rule in workload.RULES:
            if blocked:
                self.record("security_group", results.Status.FAILED if rule in blocked
                            else results.Status.PASSED, "rule %s" % rule,
                            "%s allowed by the group but blocked (%s)" % (rule, path)
                            if rule in blocked else "")
                continue
            self.conn.network.delete_security_group_rule(self.probed_rules.pop(rule))
            problems = []
            if not settle(rule, False):
                problems.append("still passes %s s after its rule was removed" % timeout)
            problems += ["%s blocked too" % other for other in workload.RULES
                         if other != rule and not settle(other, True)]
            self.probed_rules[rule] = self.add_rule(self.probed_group, rule)
            if not settle(rule, True):
                problems.append("still blocked %s s after its rule was added back" % timeout)
            self.record("security_group",
                        results.Status.FAILED if problems else results.Status.PASSED,
                        "rule %s" % rule,
                        "%s without its rule (%s): %s" % (rule, path, "; ".join(problems))
                        if problems else "")
        return True


def largest_payload(session, address, expected):
    """The largest ICMP payload that reaches `address` with don't-fragment set, at most
    `expected`: (payload, detail), or (None, detail) when even a small ping fails."""
    def passes(size):
        res = session.run("ping -n -c 1 -W 1 -M do -s %d %s" % (size, workload.ip(address)),
                          timeout=10)
        return res.exit_status == 0, (res.stdout + res.stderr).strip()

    for _ in range(3):   # one lost packet is not a small path
        ok, detail = passes(expected)
        if ok:
            return expected, ""
    if not passes(56)[0]:
        plain = session.run("ping -n -c 1 -W 1 %s" % workload.ip(address), timeout=10)
        if plain.exit_status == 0:
            raise ValueError("the image's ping cannot set don't-fragment (-M do: iputils' "
                             "ping is needed, busybox's has no such option)")
        return None, detail.splitlines()[-1] if detail else ""
    low, high = 56, expected     # low passes, high does not
    while high - low > 1:
        middle = (low + high) // 2
        if passes(middle)[0] or passes(middle)[0]:
            low = middle
        else:
            high = middle
    local = [line for line in detail.splitlines() if "mtu=" in line]
    return low, local[0] if local else ""


def judge_data_path(vms, unreachable, replies, gateway):
    """{label: [problem, ...]} for each VM's host.

    vms: {label: VM}; unreachable: {label: reason or None}; replies: {label: {"gateway":
    bool, peer label: bool}} for the VMs reached.  A host is blamed for a missing reply
    only when the other end is sound: a VM that could not be reached, or that neither
    reached nor was reached by any peer, has its own data path at fault, and its peers are
    not failed for it."""
    def broken(label):
        if unreachable.get(label):
            return True
        peers = [p for p in vms if p != label]
        if not peers:
            return False
        outgoing = [replies[label].get(p) for p in peers]
        incoming = [replies[p].get(label) for p in peers if p in replies]
        return not any(outgoing) and bool(incoming) and not any(incoming)

    out = {}
    for label, vm in vms.items():
        problems = []
        if unreachable.get(label):
            problems.append(unreachable[label])
        mine = replies.get(label, {})
        if mine.get("gateway") is False:
            problems.append("%s: no ping reply from the gateway %s" % (vm.where(), gateway))
        for peer_label, peer in vms.items():
            if peer_label == label or (broken(peer_label) and not broken(label)):
                continue
            if mine.get(peer_label) is False:
                problems.append("%s: no ping reply from %s (%s)" % (
                    vm.where(), peer.where(), peer.address))
        if broken(label) and not unreachable.get(label) and not problems:
            problems.append("%s: no traffic with any other VM" % vm.where())
        out[label] = problems
    return out


def _reason(exc):
    return getattr(exc, "details", None) or str(exc)

