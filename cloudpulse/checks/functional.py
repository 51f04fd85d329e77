"""Functional checks: what a tenant does, end to end, and packets that must flow.

One run creates a network, a subnet and a router (its gateway on the external network when
one is given), uploads an image, creates a key pair and a security group that allows ping
and ssh, boots two VMs (apart, where the cloud allows), pings VM2 from inside VM1 (over SSH
through a floating IP), and deletes everything, checking that nothing is left.  Each step
is one CheckResult naming the step, its resource and, for VMs, the host; a failed step
stops the steps that need it ("not checked: ...") while the cleanup always runs.

Everything the run creates is named by the front end (Rally's random names, so Rally's own
cleanup finds it too) and tagged `cloudpulse` and `cloudpulse-run:<run id>` (nova, neutron,
glance tags; cinder metadata).  The Rally scenario (cloudpulse_rally) and the Tempest test
(cloudpulse_tempest) are thin front ends over `run_functional_checks`.
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

CHECK_TYPE = results.CheckType.FUNCTIONAL
TAG = "cloudpulse"
RUN_TAG_PREFIX = "cloudpulse-run:"

STEPS = ("network", "image", "access", "boot", "ping", "cleanup")


def check_name(step):
    return "functional.%s" % step


@dataclasses.dataclass(frozen=True)
class Settings:
    """What a functional run uses, from the suite (scenarios/functional.yaml)."""
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
class _VM:
    label: str          # vm1, vm2
    server: typing.Any
    address: str = ""

    def where(self):
        host = getattr(self.server, "compute_host", None) or getattr(
            self.server, "hypervisor_hostname", None)
        return "%s on %s" % (self.label, host) if host else self.label


class FunctionalRun:
    """One functional run over an openstacksdk connection.

    `name(kind)` gives each created resource its name; `timer(step)` is a context manager
    timing each step (Rally's atomic action); both come from the front end."""

    def __init__(self, conn, settings, run_id, name=None, timer=None):
        self.conn = conn
        self.settings = settings
        self.run_id = run_id
        self.tags = [TAG, RUN_TAG_PREFIX + run_id]
        self._name = name or (lambda kind: "cloudpulse-%s-%s" % (run_id[:8], kind))
        self._timer = timer or (lambda step: contextlib.nullcontext())
        self._undo = []          # (what, function), deleted in reverse order
        self._results = []
        self._failed = None      # the step that failed, for "not checked"
        # What the steps create, for the steps after them.
        self.network = self.external = self.image = self.keypair = None
        self.security_group = self.key_file = None
        self.vms = []

    # -- bookkeeping ------------------------------------------------------------------
    def _created(self, what, undo, batch=None):
        """Remember how to remove what was created.  Consecutive entries of one `batch`
        (the VMs) are removed together: each waits for its own deletion."""
        self._undo.append((what, undo, batch))

    def _record(self, step, status, component, details, t0, started_at):
        self._results.append(results.CheckResult(
            name=check_name(step), check_type=CHECK_TYPE, component=component,
            status=status, details=details, duration=time.monotonic() - t0,
            started_at=started_at, finished_at=results.utcnow()))

    def _step(self, step, component, func):
        started_at, t0 = results.utcnow(), time.monotonic()
        if self._failed and step != "cleanup":
            self._record(step, results.Status.ERROR, component,
                         "not checked: %s failed" % self._failed, t0, started_at)
            return
        try:
            with self._timer("functional.%s" % step):
                func()
        except StepFailed as exc:
            self._failed = self._failed or step
            self._record(step, results.Status.FAILED, exc.component or component,
                         exc.details, t0, started_at)
        except Exception as exc:
            self._failed = self._failed or step
            status = (results.Status.FAILED if runner.is_cloud_fault(exc)
                      else results.Status.ERROR)
            self._record(step, status, component, runner.describe_error(
                exc, self.settings.api_timeout), t0, started_at)
        else:
            self._record(step, results.Status.PASSED, component, "", t0, started_at)

    # -- the steps ----------------------------------------------------------------------
    def run(self):
        with tempfile.TemporaryDirectory(prefix="cloudpulse-functional-") as keydir:
            self._keydir = keydir
            self._step("network", "network", self.create_network)
            self._step("image", "image", self.upload_image)
            self._step("access", "keypair", self.create_access)
            self._step("boot", "vm", self.boot)
            self._step("ping", "vm1", self.ping_across)
            self._step("cleanup", "cleanup", self.cleanup)
        return self._results

    def create_network(self):
        net = self.conn.network.create_network(name=self._name("net"))
        self._created("network %s" % net.id, lambda: self.conn.network.delete_network(net))
        self.conn.network.set_tags(net, self.tags)
        subnet = self.conn.network.create_subnet(
            name=self._name("subnet"), network_id=net.id, ip_version=4,
            cidr=self.settings.cidr)
        self._created("subnet %s" % subnet.id,
                      lambda: self.conn.network.delete_subnet(subnet))
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
        self._created("router %s" % router.id, lambda: self.conn.network.delete_router(router))
        self.conn.network.set_tags(router, self.tags)
        self.conn.network.add_interface_to_router(router, subnet_id=subnet.id)
        self._created("router interface", lambda: self.conn.network.remove_interface_from_router(
            router, subnet_id=subnet.id))
        self.network = net

    def upload_image(self):
        with open(self.settings.image_file, "rb") as data:
            image = self.conn.image.create_image(
                name=self._name("image"), data=data, disk_format=self.settings.image_disk_format,
                container_format="bare", tags=self.tags, allow_duplicates=True,
                visibility="private")
        self._created("image %s" % image.id, lambda: self.conn.image.delete_image(image))
        image = self.conn.image.wait_for_status(image, status="active", failures=["killed"],
                                               wait=self.settings.boot_timeout)
        self.image = image

    def create_access(self):
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
        self._created("keypair %s" % keypair.name,
                      lambda: self.conn.compute.delete_keypair(keypair))
        self.keypair = keypair
        group = self.conn.network.create_security_group(name=self._name("sg"))
        self._created("security group %s" % group.id,
                      lambda: self.conn.network.delete_security_group(group))
        self.conn.network.set_tags(group, self.tags)
        for rule in ({"protocol": "icmp"},
                     {"protocol": "tcp", "port_range_min": 22, "port_range_max": 22}):
            self.conn.network.create_security_group_rule(
                security_group_id=group.id, direction="ingress", ethertype="IPv4", **rule)
        self.security_group = group

    def boot(self):
        flavor = self.conn.compute.find_flavor(self.settings.flavor, ignore_missing=False)
        servers = []
        for label in ("vm1", "vm2"):
            server = self.conn.compute.create_server(
                name=self._name(label), image_id=self.image.id, flavor_id=flavor.id,
                networks=[{"uuid": self.network.id}], key_name=self.keypair.name,
                security_groups=[{"name": self.security_group.name}], tags=self.tags)
            self._created("server %s" % server.id, lambda s=server: self._delete_server(s),
                          batch="servers")
            servers.append((label, server))
        for label, server in servers:
            try:
                server = self.conn.compute.wait_for_server(
                    server, wait=self.settings.boot_timeout, interval=1)
            except Exception as exc:
                vm = _VM(label, self.conn.compute.get_server(server.id))
                raise StepFailed("%s: not ACTIVE within %s s (%s)" % (
                    vm.where(), self.settings.boot_timeout,
                    getattr(vm.server, "status", "?")), label) from exc
            addresses = [a["addr"] for nets in server.addresses.values() for a in nets
                         if a.get("OS-EXT-IPS:type", "fixed") == "fixed"]
            self.vms.append(_VM(label, server, addresses[0] if addresses else ""))

    def _delete_server(self, server):
        self.conn.compute.delete_server(server, ignore_missing=True)
        self.conn.compute.wait_for_delete(server, wait=self.settings.boot_timeout)

    def ping_across(self):
        vm1, vm2 = self.vms
        if self.external is None:
            raise ValueError("external_network: needed to reach vm1 through a floating IP")
        port = next(self.conn.network.ports(device_id=vm1.server.id))
        fip = self.conn.network.create_ip(floating_network_id=self.external.id,
                                          port_id=port.id)
        self._created("floating IP %s" % fip.floating_ip_address,
                      lambda: self.conn.network.delete_ip(fip))
        session = self._ssh_to(vm1, fip.floating_ip_address)
        try:
            deadline = time.monotonic() + self.settings.ping_timeout
            while True:
                res = session.run("ping -c 1 -W 2 %s" % _ip(vm2.address), timeout=10)
                if res.exit_status == 0:
                    return
                if time.monotonic() > deadline:
                    raise StepFailed("%s: no ping reply from %s (from %s) in %s s" % (
                        vm2.where(), vm2.address, vm1.label, self.settings.ping_timeout),
                        vm2.label)
                time.sleep(1)
        finally:
            session.close()

    def _ssh_to(self, vm, address):
        """An SSH session into a VM of this run, through its floating IP."""
        host = _SSHHost(vm.label, address, self.settings.ssh_user, self.key_file)
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
class _SSHHost:
    name: str
    address: str
    ssh_user: str
    ssh_key: str
    ssh_port: int = 22


def _ip(address):
    """A fixed IP of a VM, checked, before it reaches a command line."""
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


def run_functional_checks(conn, settings, run_id, name=None, timer=None):
    return FunctionalRun(conn, settings, run_id, name, timer).run()

