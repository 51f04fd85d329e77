"""What the data-plane checks (functional, comprehensive) share: a tenant workload built
step by step in a cloud, probed from inside its VMs, and removed.

A `WorkloadRun` records one CheckResult per step (`<type>.<step>`), names the resource and,
for VMs, the host it blames, and stops the steps that need a failed one ("not checked: ...")
while the cleanup always runs.  Everything it creates is named by the front end (Rally's
random names, so Rally's own cleanup finds it too) and tagged `cloudpulse` and
`cloudpulse-run:<run id>` (nova, neutron and glance tags); `leftovers` finds what a run left.
"""

import contextlib
import dataclasses
import ipaddress
import os
import tempfile
import time
import typing

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

from cloudpulse.checks import runner
from cloudpulse import fanout
from cloudpulse import results
from cloudpulse import ssh

TAG = "cloudpulse"
RUN_TAG_PREFIX = "cloudpulse-run:"

# Ingress rules of the workload's security group, by name: what the checks probe.
RULES = {
    "icmp": {"protocol": "icmp"},
    "tcp/22": {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22},
    "tcp/80": {"protocol": "tcp", "port_range_min": 80, "port_range_max": 80},
}

# A guest's netcat: nc where the image has one, else busybox's applet.
NETCAT = 'NC=nc; command -v nc >/dev/null 2>&1 || NC="busybox nc"'

# user-data for images without a web server (CirrOS): netcat answers port 80.  Where
# something already listens there, nc fails at once and the loop just sleeps.
HTTP_USER_DATA = """#!/bin/sh
%s
(while :; do printf 'HTTP/1.0 200 OK\\r\\n\\r\\ncloudpulse\\r\\n' | $NC -l -p 80 || sleep 1; done) \
>/dev/null 2>&1 &
""" % NETCAT


@dataclasses.dataclass(frozen=True)
class WorkloadSettings:
    """What a workload run uses, from the suite."""
    image_file: str                        # a small image; the content is not booted here
    flavor: str
    external_network: typing.Optional[str] = None   # name or id; None: no router gateway
    cidr: str = "198.18.42.0/24"
    ssh_user: str = "cirros"
    image_disk_format: str = "qcow2"
    boot_timeout: float = 300.0            # Tempest waits up to 300 s for a build
    ping_timeout: float = 120.0            # Tempest pings every second for up to 120 s
    api_timeout: float = 10.0

    def __post_init__(self):
        if not self.image_file:
            raise ValueError("image_file: missing (a small image file to upload)")
        if not self.flavor:
            raise ValueError("flavor: missing")


class StepFailed(Exception):
    """A step found the cloud at fault; `component` names what is blamed."""

    def __init__(self, details, component=None):
        super().__init__(details)
        self.details = details
        self.component = component


@dataclasses.dataclass
class VM:
    label: str          # vm1, vm2, or the host it was put on
    server: typing.Any
    address: str = ""   # its fixed IP
    floating_ip: str = ""

    @property
    def host(self):
        """Its compute host, where the caller may see it (admin)."""
        return getattr(self.server, "compute_host", None) or getattr(
            self.server, "hypervisor_hostname", None)

    def where(self):
        if self.host == self.label:   # one VM per host, labelled by its host
            return "the VM on %s" % self.host
        return "%s on %s" % (self.label, self.host) if self.host else self.label


class WorkloadRun:
    """One run over an openstacksdk connection.

    `name(kind)` gives each created resource its name; `timer(step)` is a context manager
    timing each step (Rally's atomic action); both come from the front end."""

    check_type: results.CheckType

    def __init__(self, conn, settings, run_id, name=None, timer=None):
        self.conn = conn
        self.settings = settings
        self.run_id = run_id
        self.tags = [TAG, RUN_TAG_PREFIX + run_id]
        self._name = name or (lambda kind: "cloudpulse-%s-%s" % (run_id[:8], kind))
        self._timer = timer or (lambda step: contextlib.nullcontext())
        self._undo = []          # (what, function, batch), removed in reverse order
        self._results = []
        self._failed = None      # the step that failed, for "not checked"
        self._keydir = None
        # What the steps create, for the steps after them.
        self.network = self.subnet = self.external = self.image = self.keypair = None
        self.security_group = self.key_file = None

    def check_name(self, step):
        return "%s.%s" % (self.check_type.value, step)

    def steps(self):
        """The run: calls self.step(...) in order, the cleanup last."""
        raise NotImplementedError

    def run(self):
        with tempfile.TemporaryDirectory(prefix="cloudpulse-%s-" % self.check_type.value) \
                as self._keydir:
            try:
                self.steps()
            finally:
                self.step("cleanup", "cleanup", self.cleanup)
        return self._results

    # -- bookkeeping ------------------------------------------------------------------
    def created(self, what, undo, batch=None):
        """Remember how to remove what was created.  Consecutive entries of one `batch`
        (the VMs) are removed together: each waits for its own deletion."""
        self._undo.append((what, undo, batch))

    def record(self, step, status, component, details, duration=None, started_at=None):
        """One result; a step recording its own (per host, per rule) gets the time since
        the step began."""
        if duration is None:
            duration = time.monotonic() - self._step_t0
        self._results.append(results.CheckResult(
            name=self.check_name(step), check_type=self.check_type, component=component,
            status=status, details=details, duration=duration,
            started_at=started_at or self._step_started, finished_at=results.utcnow()))

    def step(self, step, component, func):
        """Run one step as an atomic action and record its verdict.  A step that records
        its own results (one per host, per rule) returns True."""
        started_at, t0 = results.utcnow(), time.monotonic()
        self._step_started, self._step_t0 = started_at, t0
        if self._failed and step != "cleanup":
            self.record(step, results.Status.ERROR, component,
                        "not checked: %s failed" % self._failed, 0.0, started_at)
            return
        try:
            with self._timer("%s.%s" % (self.check_type.value, step)):
                recorded_itself = func()
        except StepFailed as exc:
            self._failed = self._failed or step
            self.record(step, results.Status.FAILED, exc.component or component,
                        exc.details, time.monotonic() - t0, started_at)
        except Exception as exc:
            self._failed = self._failed or step
            status = (results.Status.FAILED if runner.is_cloud_fault(exc)
                      else results.Status.ERROR)
            self.record(step, status, component, runner.describe_error(
                exc, self.settings.api_timeout), time.monotonic() - t0, started_at)
        else:
            if not recorded_itself:
                self.record(step, results.Status.PASSED, component, "",
                            time.monotonic() - t0, started_at)

    def stop_dependent_steps(self, step):
        """A step that recorded its own failures stops the steps that need it."""
        self._failed = self._failed or step

    # -- resources ----------------------------------------------------------------------
    def create_network(self, mtu=None):
        extra = {"mtu": mtu} if mtu else {}
        net = self.conn.network.create_network(name=self._name("net"), **extra)
        self.created("network %s" % net.id, lambda: self.conn.network.delete_network(net))
        self.conn.network.set_tags(net, self.tags)
        subnet = self.conn.network.create_subnet(
            name=self._name("subnet"), network_id=net.id, ip_version=4,
            cidr=self.settings.cidr)
        self.created("subnet %s" % subnet.id, lambda: self.conn.network.delete_subnet(subnet))
        self.conn.network.set_tags(subnet, self.tags)
        gateway = {}
        if self.settings.external_network:
            ext = self.conn.network.find_network(self.settings.external_network)
            if ext is None:
                raise StepFailed("external network %s not found"
                                 % self.settings.external_network, "external-network")
            gateway = {"external_gateway_info": {"network_id": ext.id}}
            self.external = ext
        router = self.conn.network.create_router(name=self._name("router"), **gateway)
        self.created("router %s" % router.id, lambda: self.conn.network.delete_router(router))
        self.conn.network.set_tags(router, self.tags)
        self.conn.network.add_interface_to_router(router, subnet_id=subnet.id)
        self.created("router interface", lambda: self.conn.network.remove_interface_from_router(
            router, subnet_id=subnet.id))
        self.network, self.subnet = self.conn.network.get_network(net.id), subnet

    def upload_image(self):
        with open(self.settings.image_file, "rb") as data:
            image = self.conn.image.create_image(
                name=self._name("image"), data=data, disk_format=self.settings.image_disk_format,
                container_format="bare", tags=self.tags, allow_duplicates=True,
                visibility="private")
        self.created("image %s" % image.id, lambda: self.conn.image.delete_image(image))
        self.image = self.conn.image.wait_for_status(
            image, status="active", failures=["killed"], wait=self.settings.boot_timeout)

    def create_access(self, rules=("icmp", "tcp/22")):
        """A key pair (its private key only in this run's temporary directory) and a
        security group allowing `rules` in."""
        key = ed25519.Ed25519PrivateKey.generate()
        self.key_file = os.path.join(self._keydir, "id_ed25519")
        fd = os.open(self.key_file, os.O_WRONLY | os.O_CREAT, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.OpenSSH,
                                      serialization.NoEncryption()))
        public = key.public_key().public_bytes(serialization.Encoding.OpenSSH,
                                               serialization.PublicFormat.OpenSSH).decode()
        keypair = self.conn.compute.create_keypair(name=self._name("key"), public_key=public)
        self.created("keypair %s" % keypair.name,
                     lambda: self.conn.compute.delete_keypair(keypair))
        self.keypair = keypair
        self.security_group, _ = self.create_security_group(rules)

    def create_security_group(self, rules):
        """A tagged security group allowing `rules` (names in RULES) in:
        (group, {rule name: rule})."""
        group = self.conn.network.create_security_group(name=self._name("sg"))
        self.created("security group %s" % group.id,
                     lambda: self.conn.network.delete_security_group(group))
        self.conn.network.set_tags(group, self.tags)
        return group, {rule: self.add_rule(group, rule) for rule in rules}

    def add_rule(self, group, rule):
        return self.conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", **RULES[rule])

    def create_server_group(self, policy):
        group = self.conn.compute.create_server_group(name=self._name("group"), policy=policy)
        self.created("server group %s" % group.id,
                     lambda: self.conn.compute.delete_server_group(group))
        return group

    def boot(self, requests, parallel):
        """Boot VMs: requests are (label, create_server keyword arguments; security_groups
        a list of groups, the run's own by default), at most `parallel` building at a
        time.  {label: VM or the exception that stopped it}."""
        flavor = self.conn.compute.find_flavor(self.settings.flavor, ignore_missing=False)

        def boot_one(request):
            label, extra = request
            extra = dict(extra)
            groups = extra.pop("security_groups", [self.security_group])
            server = self.conn.compute.create_server(
                name=self._name(label), image_id=self.image.id, flavor_id=flavor.id,
                networks=[{"uuid": self.network.id}], key_name=self.keypair.name,
                security_groups=[{"name": g.name} for g in groups], tags=self.tags,
                **extra)
            self.created("server %s" % server.id, lambda: self._delete_server(server),
                         batch="servers")
            try:
                server = self.conn.compute.wait_for_server(
                    server, wait=self.settings.boot_timeout, interval=1)
            except Exception as exc:
                vm = VM(label, self.conn.compute.get_server(server.id))
                fault = (getattr(vm.server, "fault", None) or {}).get("message", "")
                raise StepFailed("%s: not ACTIVE within %s s (%s%s)" % (
                    vm.where(), self.settings.boot_timeout,
                    getattr(vm.server, "status", "?"), ": " + fault if fault else ""),
                    label) from exc
            addresses = [a["addr"] for nets in server.addresses.values() for a in nets
                         if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]
            return VM(label, server, addresses[0] if addresses else "")

        out = {}
        for item in fanout.fan_out(boot_one, requests, max_workers=parallel,
                                   name="cpulse-boot"):
            out[item.item[0]] = item.value if item.ok else item.error
        return out

    def _delete_server(self, server):
        self.conn.compute.delete_server(server, ignore_missing=True)
        # A VM stuck in its build goes only when the build gives up: allow a second boot
        # timeout for that.
        self.conn.compute.wait_for_delete(server, wait=2 * self.settings.boot_timeout)

    def attach_floating_ip(self, vm):
        if self.external is None:
            raise ValueError("external_network: needed to reach %s through a floating IP"
                             % vm.label)
        port = next(self.conn.network.ports(device_id=vm.server.id))
        fip = self.conn.network.create_ip(floating_network_id=self.external.id,
                                          port_id=port.id)
        self.created("floating IP %s" % fip.floating_ip_address,
                     lambda: self.conn.network.delete_ip(fip))
        vm.floating_ip = fip.floating_ip_address
        return vm.floating_ip

    def ssh_to(self, vm):
        """An SSH session into a VM of this run, through its floating IP; retried until
        ping_timeout (a new VM's sshd may not answer yet)."""
        address = vm.floating_ip or self.attach_floating_ip(vm)
        host = SSHHost(vm.label, address, self.settings.ssh_user, self.key_file)
        pool = ssh.SessionPool(ssh.SSHSettings(
            strict_host_keys=False, accept_new_host_keys=True,
            connect_timeout=min(10.0, self.settings.api_timeout),
            command_timeout=20.0, max_parallel=1))
        deadline = time.monotonic() + self.settings.ping_timeout
        while True:
            state = pool.connect_all([host])[host.name]
            if not isinstance(state, Exception):
                return state
            pool.close()
            if time.monotonic() > deadline:
                raise StepFailed("%s: no SSH through floating IP %s in %s s (%s)" % (
                    vm.where(), address, self.settings.ping_timeout, state),
                    "%s/floating-ip" % vm.label)
            time.sleep(1)

    def cleanup(self):
        problems = []
        for group in _batches(reversed(self._undo)):
            for item in fanout.fan_out(lambda entry: entry[1](), group, name="cpulse-undo"):
                if not item.ok:
                    problems.append("%s: %s" % (item.item[0],
                                                runner.describe_error(item.error)))
        self._undo = []
        left = leftovers(self.conn, self.run_id)
        if left:
            problems.append("left after the run: %s" % ", ".join(left))
        if problems:
            raise StepFailed("; ".join(problems), "cleanup")


def wait_until(predicate, timeout, interval=0.5):
    """True as soon as predicate() is, False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def ping_until(session, address, timeout, size=None, dont_fragment=False):
    """Ping `address` from inside a VM until a reply or `timeout`: (replied, the last
    output)."""
    options = "-M do -s %d " % size if dont_fragment else ""
    last = []

    def replied():
        res = session.run("ping -n -c 1 -W 1 %s%s" % (options, ip(address)), timeout=10)
        last[:] = [(res.stdout + res.stderr).strip()]
        return res.exit_status == 0
    return wait_until(replied, timeout), last[0] if last else ""


def _batches(entries):
    """[[entry, ...], ...]: consecutive entries of one batch together, others alone."""
    out = []
    for entry in entries:
        if out and entry[2] is not None and out[-1][-1][2] == entry[2]:
            out[-1].append(entry)
        else:
            out.append([entry])
    return out


@dataclasses.dataclass(frozen=True)
class SSHHost:
    name: str
    address: str
    ssh_user: str
    ssh_key: str
    ssh_port: int = 22


def ip(address):
    """A VM's IP address, checked, before it reaches a command line."""
    return str(ipaddress.ip_address(address))


def leftovers(conn, run_id):
    """What is still tagged as this run's: ["server <id>", ...]."""
    tag = RUN_TAG_PREFIX + run_id
    found = ["server %s" % s.id for s in conn.compute.servers(tags=tag)]
    found += ["network %s" % n.id for n in conn.network.networks(tags=tag)]
    found += ["router %s" % r.id for r in conn.network.routers(tags=tag)]
    found += ["security group %s" % g.id for g in conn.network.security_groups(tags=tag)]
    found += ["image %s" % i.id for i in conn.image.images(tag=[tag])]
    return found
