"""What the data-plane checks (functional, comprehensive) share: a tenant workload built
step by step in a cloud, probed from inside its VMs, and removed.

A `WorkloadRun` records one CheckResult per step (`<type>.<step>`), names the resource and,
for VMs, the host it blames, and stops the steps that need a failed one ("not checked: ...")
while the cleanup always runs.  Everything it creates is named by the front end (Rally's
random names, Tempest's rand_name) and tagged `cloudpulse` and `cloudpulse-run:<run id>`
(nova, neutron and glance tags; cinder metadata; what cannot be tagged is written into the
run's file); `leftovers` finds what a run left, and the sweeper what a dead run left.
"""

import collections
import concurrent.futures
import contextlib
import dataclasses
import fcntl
import hashlib
import ipaddress
import logging
import os
import shlex
import tempfile
import threading
import time
import typing
import uuid

from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives import serialization

from openstack import exceptions as sdk_exceptions

from cloudpulse.checks import runner
from cloudpulse.checks import service_states
from cloudpulse import fanout
from cloudpulse import results
from cloudpulse import ssh

LOG = logging.getLogger(__name__)

TAG = "cloudpulse"
RUN_TAG_PREFIX = "cloudpulse-run:"
RUN_METADATA = "cloudpulse-run"     # cinder has metadata, not tags
QUOTA_PREFIX = "quota exhausted in the check's project:"
# What a run creates, by kind, in the order the sweeper can delete them one by one.
KINDS = ("server", "floating IP", "router", "port", "network", "security group",
         "server group", "keypair", "image", "volume", "user", "project", "trust")
# nova has no tags for key pairs and server groups, and a project made for the run (Rally's
# users context) and a trust it acts through are keystone's: a run writes these into its
# run file (RunRegistry).
UNTAGGED = ("keypair", "server group", "user", "project", "trust")
# Also noted: the user a run acts for through a trust, whose key pair it made.
OWNER = "owner"
# A run's own cleanup removes each thing it made as soon as what must go first is gone
# (the floating IP before the router interface its address needs, the VMs before their
# ports, the ports before their security group and network), everything else at once.
# The subnet waits for the router's interface on it, not for the router (its deletion
# takes seconds on OVN), which goes with any interface still found then and its gateway.
CLEANUP_AFTER = {
    "floating IP": (), "image": (), "keypair": (),
    "server": (), "volume": ("server",),   # deleting the VM detaches its volume
    "router interface": ("floating IP",), "router": ("floating IP", "router interface"),
    "port": ("server",), "server group": ("server",),
    "security group": ("server", "port"),
    "subnet": ("server", "port", "router interface"),
    "network": ("server", "port", "router interface", "subnet"),
}
POLL_INTERVAL = 0.5   # seconds between two GETs of a resource being waited for

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
    volume_size: int = 1                   # GiB; 0: no volume step
    # How vm1 pings vm2: over SSH through a floating IP, or by a user-data script whose
    # result is read from vm1's console log (a project without floating IPs).  auto: the
    # floating IP when there is an external network.
    ping_via: str = "auto"
    # Runs started on this machine register here (RunRegistry): a workload run waits up
    # to queue_timeout for another one on the same cloud to finish.
    runs_dir: str = ""
    queue_timeout: float = 900.0

    def __post_init__(self):
        if not self.image_file:
            raise ValueError("image_file: missing (a small image file to upload)")
        if not self.flavor:
            raise ValueError("flavor: missing")
        if self.ping_via not in ("auto", "floating_ip", "console"):
            raise ValueError("ping_via: %r is not one of auto, floating_ip, console"
                             % self.ping_via)
        if self.volume_size < 0:
            raise ValueError("volume_size: must be 0 (no volume step) or more GiB")


class StepFailed(Exception):
    """A step found the cloud at fault; `component` names what is blamed."""

    def __init__(self, details, component=None):
        super().__init__(details)
        self.details = details
        self.component = component


@dataclasses.dataclass(frozen=True)
class Account:
    """The project and user made for one run (Rally's users context, operator mode)."""
    project_id: str
    user_id: str


class NotChecked(Exception):
    """A step could not run: a step it needs failed (named)."""

    def __init__(self, failed_step):
        super().__init__("%s%s failed" % (results.NOT_CHECKED, failed_step))


class QuotaExhausted(StepFailed):
    """The project's quota refused a resource: the checker's limit, not a cloud fault."""


@dataclasses.dataclass(eq=False)
class Undo:
    """How to remove one thing a run created."""
    kind: str            # one of CLEANUP_AFTER's
    ident: str
    remove: typing.Callable[[], typing.Any]


@dataclasses.dataclass
class VM:
    label: str          # vm1, vm2, or the host it was put on
    server: typing.Any
    address: str = ""   # its fixed IP
    floating_ip: str = ""
    requested_host: typing.Optional[str] = None   # the host it was booted onto (admin)

    @property
    def host(self):
        """Its compute host, where the caller may see it (admin); the host it was booted
        onto while that host has not taken it yet."""
        return getattr(self.server, "compute_host", None) or getattr(
            self.server, "hypervisor_hostname", None) or self.requested_host

    def where(self):
        if self.host == self.label:   # one VM per host, labelled by its host
            return "the VM on %s" % self.host
        return "%s on %s" % (self.label, self.host) if self.host else self.label


class WorkloadRun:
    """One run over an openstacksdk connection.  `name(kind)`, from the front end, gives
    each created resource its name.

    A step records its result with the time since it began; steps run one after the
    other (`step`) or together (`steps_together`), each in its own thread then."""

    check_type: results.CheckType

    def __init__(self, conn, settings, run_id, name=None, account=None, sweeper_conn=None):
        self.conn = conn
        # the sweeper's: one that sees every project (a run acting for a user does not)
        self.sweeper_conn = sweeper_conn or conn
        self.account = account   # an Account made for this run, or None
        self.settings = settings
        self.run_id = run_id
        self.tags = [TAG, RUN_TAG_PREFIX + run_id]
        self._name = name or (lambda kind: "cloudpulse-%s-%s" % (run_id[:8], kind))
        self._undo = []          # [Undo]: what the cleanup removes, wave by wave
        self._results = []
        self._failed = None      # the first step that failed, for "not checked"
        self._step = threading.local()   # started_at, t0 of the step of this thread
        self._keydir = None
        self._run_file = None
        self._left = []          # what the cleanup could not remove
        self._kinds = set()      # the kinds of resource this run created
        self._notes = collections.defaultdict(list)   # untagged kind -> [name or id]
        self._network_done = threading.Event()   # the network step is over
        # What the steps create, for the steps after them.
        self.network = self.subnet = self.external = self.image = self.keypair = None
        self.router = None       # with its interface on the subnet
        self.security_group = self.key_file = None
        self.hosts = None        # the compute hosts a VM may go to; None: not visible
        self.left_out = []       # the enabled compute hosts a VM may not go to

    def check_name(self, step):
        return "%s.%s" % (self.check_type.value, step)

    def steps(self):
        """The run: calls self.step(...) in order, the cleanup last."""
        raise NotImplementedError

    def run(self):
        registry = RunRegistry(self.settings.runs_dir or default_runs_dir())
        with contextlib.ExitStack() as stack:
            try:
                self._run_file = stack.enter_context(registry.running(
                    self.run_id, cloud_key(self.conn), self.settings.queue_timeout))
                if self.account is not None:   # for the sweeper, should this run die
                    self._run_file.note("user", self.account.user_id)
                    self._run_file.note("project", self.account.project_id)
            except QueueTimeout as exc:
                self._begin_step()
                self.record("queue", results.Status.ERROR, "cloud", str(exc))
                return self._results
            self.step("sweep", "sweeper", lambda: self.sweep(registry))
            self._keydir = stack.enter_context(tempfile.TemporaryDirectory(
                prefix="cloudpulse-%s-" % self.check_type.value))
            try:
                self.steps()
            finally:
                if not self.keeps():
                    self.step("cleanup", "cleanup", self.cleanup)
                # What the cleanup could not remove (a volume stuck while cinder-volume
                # hangs) stays registered: the sweeper takes it once the cloud lets it.
                if self._left:
                    registry.keep(self.run_id)
        return self._results

    def keeps(self):
        """Whether what the run made stays in the cloud (an upgrade check's set, once
        recorded in its snapshot) rather than being cleaned up at the end."""
        return False

    def sweep(self, registry):
        """Remove what runs that died on this machine left in this cloud, and say what."""
        removed = sweep(self.sweeper_conn, registry)
        self.record("sweep", results.Status.PASSED, "sweeper",
                    "removed what dead runs left: %s" % ", ".join(removed) if removed else "")
        return True

    # -- bookkeeping ------------------------------------------------------------------
    def created(self, kind, ident, undo):
        """Remember how to remove what was created (`kind` one of CLEANUP_AFTER's)."""
        entry = Undo(kind, ident, undo)
        self._undo.append(entry)
        if kind in KINDS:
            self._kinds.add(kind)
        if kind in UNTAGGED:
            self._notes[kind].append(ident)
            self._run_file.note(kind, ident)
        return entry

    def _begin_step(self):
        self._step.started_at, self._step.t0 = results.utcnow(), time.monotonic()

    def record(self, step, status, component, details, duration=None):
        """One result, timed from the beginning of this thread's step (a step recording
        its own, per host or per rule, gets the time since it began)."""
        self._results.append(results.CheckResult(
            name=self.check_name(step), check_type=self.check_type, component=component,
            status=status, details=details,
            duration=time.monotonic() - self._step.t0 if duration is None else duration,
            started_at=self._step.started_at, finished_at=results.utcnow()))

    def step(self, step, component, func):
        """Run one step and record its verdict.  A step that records its own results
        (one per host, per rule) returns True."""
        self._begin_step()
        if self._failed and step not in ("cleanup", "sweep"):
            self.record(step, results.Status.ERROR, component,
                        "%s%s failed" % (results.NOT_CHECKED, self._failed), 0.0)
            return
        try:
            recorded_itself = func()
        except NotChecked as exc:
            self.record(step, results.Status.ERROR, component, str(exc), 0.0)
        except Exception as exc:
            self._failed = self._failed or step
            status, blamed, details = self.verdict_of(exc)
            self.record(step, status, blamed or component, details)
        else:
            if not recorded_itself:
                self.record(step, results.Status.PASSED, component, "")

    def steps_together(self, *steps):
        """(step, component, func) steps at the same time, each recording its own."""
        fanout.fan_out(lambda args: self.step(*args), steps, max_workers=len(steps),
                       name="cpulse-step")

    @contextlib.contextmanager
    def meanwhile(self):
        """Yields submit(func, *args) -> future: work that goes on while the steps of
        the with-block run, all of it over at the block's end (before the cleanup,
        which must know everything the run made)."""
        with concurrent.futures.ThreadPoolExecutor(
                max_workers=3, thread_name_prefix="cpulse-meanwhile") as pool:
            yield pool.submit

    def first_steps(self, submit, network, access):
        """The steps that need nothing of each other at once, and the router meanwhile:
        its gateway takes seconds (OVN binds it to a gateway chassis) and only what
        crosses it (floating IPs, the gateway) needs it.  The router's future: its
        result() before the steps that need it."""
        router = submit(self.step, "router", "router", self.create_router)
        self.steps_together(("network", "network", network),
                            ("image", "image", self.upload_image),
                            ("access", "keypair", access),
                            ("hosts", "nova-compute", self.find_hosts))
        return router

    def verdict_of(self, exc):
        """(status, component or None, details) for an exception that stopped a step or
        one of its items: the cloud's fault (failed) unless the project's quota refused
        (the checker's limit) or the checker itself broke (errors)."""
        if isinstance(exc, QuotaExhausted):
            return results.Status.ERROR, exc.component, exc.details
        if isinstance(exc, StepFailed):
            return results.Status.FAILED, exc.component, exc.details
        details = runner.describe_error(exc, self.settings.api_timeout)
        if is_quota_exhausted(exc):
            return results.Status.ERROR, None, "%s %s" % (QUOTA_PREFIX, details)
        if runner.is_cloud_fault(exc):
            return results.Status.FAILED, None, details
        LOG.warning("%s step crashed", self.check_type.value, exc_info=True)
        return results.Status.ERROR, None, details

    def stop_dependent_steps(self, step):
        """A step that recorded its own failures stops the steps that need it."""
        self._failed = self._failed or step

    # -- resources ----------------------------------------------------------------------
    # What a project member, who cannot see hosts, is told by the hosts step (None: nothing).
    hidden_hosts_note = None

    def find_hosts(self):
        """The compute hosts a VM may go to (self.hosts): enabled, their nova-compute up
        and their L2 agent alive.  A host whose L2 agent (ovn-controller...) is dead still
        forwards with the flows it has, but a new VM there never gets its port: each
        enabled host left out is a skipped result saying why, never a silent gap."""
        try:
            services = list(self.conn.compute.services(binary="nova-compute"))
        except sdk_exceptions.ForbiddenException:
            if self.hidden_hosts_note:
                self.record("hosts", results.Status.SKIPPED, "nova-compute",
                            self.hidden_hosts_note)
            return True
        dead_l2 = {a.host: a for a in self.conn.network.agents()
                   if service_states.is_dead(a) and a.binary in service_states.L2_AGENTS}
        self.hosts = []
        for service in sorted(services, key=lambda s: s.host):
            if service.status != "enabled":
                continue
            if service.state != "up" or service.host in dead_l2:
                self.left_out.append(service.host)
            if service.state != "up":
                self.record("hosts", results.Status.SKIPPED, service.host,
                            "nova-compute on %s is %s: no VM booted there"
                            % (service.host, service.state))
            elif service.host in dead_l2:
                agent = dead_l2[service.host]
                self.record("hosts", results.Status.SKIPPED, service.host,
                            "%s: %s on %s (its %s is dead: a new VM there would not get "
                            "its port); no VM booted there" % (
                                results.CONTROL_PLANE_DEGRADED, agent.binary,
                                service.host, agent.agent_type))
            else:
                self.hosts.append(service.host)
        if not self.hosts:
            raise StepFailed("no enabled compute host is up", "nova-compute")

    def create_tagged(self, kind, create, remove, **attrs):
        """A neutron resource made by `create(**attrs)`, registered for the cleanup by
        `remove(resource)` and tagged as the run's."""
        made = create(**attrs)
        self.created(kind, made.id, lambda: remove(made))
        self.conn.network.set_tags(made, self.tags)
        return made

    def create_network(self, mtu=None):
        """A network and its subnet."""
        net = self.conn.network
        try:
            self.network = self.create_tagged(
                "network", net.create_network, net.delete_network, name=self._name("net"),
                **({"mtu": mtu} if mtu else {}))
            self.subnet = self.create_tagged(
                "subnet", net.create_subnet, net.delete_subnet, name=self._name("subnet"),
                network_id=self.network.id, ip_version=4, cidr=self.settings.cidr)
        finally:
            self._network_done.set()

    def external_gateway(self):
        """A router's gateway argument on the external network (self.external found), or
        {} when the suite names none."""
        if not self.settings.external_network:
            return {}
        self.external = find_network(self.conn, self.settings.external_network)
        if self.external is None:
            raise StepFailed("external network %s not found"
                             % self.settings.external_network, "external-network")
        return {"external_gateway_info": {"network_id": self.external.id}}

    def create_router(self):
        """A router (its gateway on the external network when there is one), made while
        the network step makes the network, then its interface on the run's subnet."""
        # Removed with whatever interfaces it has then: an interface call that timed out
        # on the client may still have been made.
        router = self.create_tagged("router", self.conn.network.create_router,
                                    lambda made: delete_router(self.conn, made),
                                    name=self._name("router"), **self.external_gateway())
        self._network_done.wait()
        if self.subnet is None:
            raise NotChecked("network")
        # Registered first: a call that timed out on the client may still have been made.
        subnet_id = self.subnet.id
        self.created("router interface", subnet_id,
                     lambda: remove_interface(self.conn, router, subnet_id))
        self.conn.network.add_interface_to_router(router, subnet_id=subnet_id)
        self.router = router

    def upload_image(self, name=None):
        with open(self.settings.image_file, "rb") as data:
            image = self.conn.image.create_image(
                name=name or self._name("image"), data=data, disk_format=self.settings.image_disk_format,
                container_format="bare", tags=self.tags, allow_duplicates=True,
                visibility="private")
        self.created("image", image.id, lambda: self.conn.image.delete_image(image))
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
        self.created("keypair", keypair.name,
                     lambda: self.conn.compute.delete_keypair(keypair))
        self.keypair = keypair
        self.security_group, _ = self.create_security_group(rules)

    def create_security_group(self, rules):
        """A tagged security group allowing `rules` (names in RULES) in:
        (group, {rule name: rule})."""
        group = self.create_tagged("security group", self.conn.network.create_security_group,
                                   self.conn.network.delete_security_group,
                                   name=self._name("sg"))
        return group, {rule: self.add_rule(group, rule) for rule in rules}

    def add_rule(self, group, rule):
        return self.conn.network.create_security_group_rule(
            security_group_id=group.id, direction="ingress", ethertype="IPv4", **RULES[rule])

    def create_server_group(self, policy):
        group = self.conn.compute.create_server_group(name=self._name("group"), policy=policy)
        self.created("server group", group.id,
                     lambda: self.conn.compute.delete_server_group(group))
        return group

    def boot(self, requests, parallel):
        """Boot VMs: requests are (label, create_server keyword arguments; security_groups
        a list of groups, the run's own by default; networks, the run's network by
        default; image_id, the run's image by default; name, the front end's for `label`
        by default), at most `parallel` building at a time.  {label: VM or the exception that stopped it}."""
        flavor = self.conn.compute.find_flavor(self.settings.flavor, ignore_missing=False)

        def boot_one(request):
            label, extra = request
            extra = dict(extra)
            groups = extra.pop("security_groups", None) or [self.security_group]
            networks = extra.pop("networks", None) or [{"uuid": self.network.id}]
            image_id = extra.pop("image_id", None) or self.image.id
            server = self.conn.compute.create_server(
                name=extra.pop("name", None) or self._name(label), image_id=image_id,
                flavor_id=flavor.id,
                networks=networks, key_name=self.keypair.name,
                security_groups=[{"name": g.name} for g in groups], tags=self.tags,
                **extra)
            self.created("server", server.id, lambda: self._delete_server(server))
            try:
                server = self.conn.compute.wait_for_server(
                    server, wait=self.settings.boot_timeout, interval=POLL_INTERVAL)
            except Exception as exc:
                vm = VM(label, self.conn.compute.get_server(server.id),
                        requested_host=extra.get("host"))
                fault = (getattr(vm.server, "fault", None) or {}).get("message", "")
                if "quota" in fault.lower():   # nova's recheck after the API let it in
                    raise QuotaExhausted("%s %s: %s" % (QUOTA_PREFIX, vm.where(), fault),
                                         label) from exc
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
        self.conn.compute.wait_for_delete(server, wait=2 * self.settings.boot_timeout,
                                          interval=POLL_INTERVAL)

    def attach_floating_ip(self, vm):
        port = next(self.conn.network.ports(device_id=vm.server.id))
        vm.floating_ip = self.create_floating_ip(port.id, vm.label)
        return vm.floating_ip

    def create_floating_ip(self, port_id, label):
        """The address of a floating IP on the external network for a port of `label`."""
        if self.external is None:
            raise ValueError("external_network: needed to reach %s through a floating IP"
                             % label)
        fip = self.create_tagged("floating IP", self.conn.network.create_ip,
                                 self.conn.network.delete_ip,
                                 floating_network_id=self.external.id, port_id=port_id)
        return fip.floating_ip_address

    def create_volume(self):
        """A volume of volume_size GiB, tagged by metadata, once it is available."""
        volume = self.conn.block_storage.create_volume(
            name=self._name("volume"), size=self.settings.volume_size,
            metadata={TAG: "true", RUN_METADATA: self.run_id})
        self.created("volume", volume.id, lambda: _delete_volume(
            self.conn, volume, self.settings.boot_timeout))
        return self._volume_status(volume, "available", "created")

    def check_volume(self, vm, volume, session):
        """`volume` attached to `vm`, `in-use` through the API, a block device of its size
        inside the VM at the device nova reports.  The cleanup deletes the VM (which
        detaches the volume), then the volume (detached first if it is still attached).
        `session()` gives an SSH session into the VM and, when it is None, why (then the
        API's word only, said in the result)."""
        attachment = self.conn.compute.create_volume_attachment(vm.server, volume_id=volume.id)
        self._volume_status(volume, "in-use", "attached to %s" % vm.label)
        device = attachment.device
        ssh_session, why_not = session()
        if ssh_session is not None:
            res = ssh_session.run("blockdev --getsize64 %s" % shlex.quote(device), timeout=20)
            want = self.settings.volume_size * 1024 ** 3
            if res.exit_status != 0 or res.stdout.strip() != str(want):
                raise StepFailed(
                    "volume %s: in-use, but %s inside %s is not a %d GiB block device (%s)"
                    % (volume.id, device, vm.where(), self.settings.volume_size,
                       (res.stdout + res.stderr).strip()[-200:]), "volume")
        if ssh_session is None:
            self.record("volume", results.Status.PASSED, "volume",
                        "in-use through the API; not looked for inside %s (%s)"
                        % (vm.label, why_not))
            return True

    def _volume_status(self, volume, status, what):
        try:
            return self.conn.block_storage.wait_for_status(
                volume, status=status, failures=["error", "error_attaching", "error_detaching"],
                wait=self.settings.boot_timeout, interval=POLL_INTERVAL)
        except Exception as exc:
            now = self.conn.block_storage.get_volume(volume.id)
            raise StepFailed("volume %s %s: not %s within %s s (status %s)" % (
                volume.id, what, status, self.settings.boot_timeout, now.status),
                "volume") from exc

    def ssh_to(self, vm):
        """An SSH session into a VM of this run, through its floating IP; retried until
        ping_timeout (a new VM's sshd may not answer yet)."""
        address = vm.floating_ip or self.attach_floating_ip(vm)
        return ssh_into(vm.where(), SSHHost(vm.label, address, self.settings.ssh_user,
                                            self.key_file),
                        self.settings.ping_timeout, self.settings.api_timeout)

    def cleanup(self):
        """Remove what the run made (remove_all), and check that nothing of the run's is
        left."""
        problems = ["%s %s: %s" % (entry.kind, entry.ident, runner.describe_error(error))
                    for entry, error in remove_all(self._undo)]
        self._undo = []
        # Only the kinds this run made are looked for: a service that is down (the
        # reason an earlier step failed) need not answer for what it never got.
        self._left = leftovers(self.conn, self.run_id, self._kinds, self._notes)
        if self._left:
            problems.append("left after the run, for the sweeper: %s" % ", ".join(self._left))
        if problems:
            raise StepFailed("; ".join(problems), "cleanup")


def find_network(conn, name_or_id):
    """A network by id or name in one request (openstacksdk's find tries the id first:
    two requests for a name), or None."""
    try:
        uuid.UUID(name_or_id)
    except ValueError:
        found = list(conn.network.networks(name=name_or_id))
        if len(found) > 1:
            raise StepFailed("external network %s: %d networks have that name"
                             % (name_or_id, len(found)), "external-network")
        return found[0] if found else None
    return conn.network.find_network(name_or_id)


def remove_all(entries):
    """Remove every Undo entry, each once the entries of the kinds it waits for
    (CLEANUP_AFTER) are done, all the others at once: [(entry, exception)] of those that
    failed.  A failed removal does not hold the ones after it: they are tried anyway."""
    unknown = {entry.kind for entry in entries} - set(CLEANUP_AFTER)
    if unknown:
        raise ValueError("no cleanup order for %s" % ", ".join(sorted(unknown)))
    order = list(CLEANUP_AFTER)   # every kind after the kinds it waits for
    started = {}

    def remove(entry, waits_for):
        concurrent.futures.wait(waits_for)
        entry.remove()

    with concurrent.futures.ThreadPoolExecutor(
            max_workers=max(1, len(entries)), thread_name_prefix="cpulse-undo") as pool:
        for entry in sorted(reversed(entries), key=lambda e: order.index(e.kind)):
            waits_for = [done for earlier, done in started.items()
                         if earlier.kind in CLEANUP_AFTER[entry.kind]]
            started[entry] = pool.submit(remove, entry, waits_for)
    return [(entry, done.exception()) for entry, done in started.items()
            if done.exception() is not None]


def is_quota_exhausted(exc):
    """nova (403), neutron (409 OverQuota) and cinder (413) refuse over quota."""
    status = getattr(exc, "status_code", None) or getattr(
        getattr(exc, "response", None), "status_code", None)
    return status in (403, 409, 413) and "quota" in str(exc).lower()


def wait_until(predicate, timeout, interval=0.5):
    """True as soon as predicate() is, False when `timeout` seconds pass first."""
    deadline = time.monotonic() + timeout
    while True:
        if predicate():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)


def ping_until(session, address, timeout):
    """Ping `address` from inside a VM until a reply or `timeout`: (replied, the last
    output)."""
    last = []

    def replied():
        res = session.run("ping -n -c 1 -W 1 %s" % ip(address), timeout=10)
        last[:] = [(res.stdout + res.stderr).strip()]
        return res.exit_status == 0
    return wait_until(replied, timeout), last[0] if last else ""


def ssh_into(where, host, timeout, api_timeout):
    """An SSH session into a VM (`host`: an SSHHost, its address the VM's floating IP;
    `where` names the VM in a failure), retried until `timeout` (a new VM's sshd may not
    answer yet); StepFailed blaming `<label>/floating-ip` when none came."""
    pool = ssh.SessionPool(ssh.SSHSettings(
        strict_host_keys=False, accept_new_host_keys=True,
        connect_timeout=min(10.0, api_timeout), command_timeout=20.0, max_parallel=1))
    deadline = time.monotonic() + timeout
    while True:
        state = pool.connect_all([host])[host.name]
        if not isinstance(state, Exception):
            return state
        pool.close()
        if time.monotonic() > deadline:
            raise StepFailed("%s: no SSH through floating IP %s in %s s (%s)" % (
                where, host.address, timeout, state), "%s/floating-ip" % host.name)
        time.sleep(1)


def ping_summary(output):
    """ping's own verdict line of its output (`1 packets transmitted, 0 received, 100%
    packet loss`), else its last line: one line for a result's details."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    verdict = [line for line in lines if "packet loss" in line or "unreachable" in line]
    return (verdict or lines or [""])[-1].split(", time ")[0][:200]


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


def leftovers(conn, run_id, kinds=KINDS, notes=None):
    """What is still there of this run's: ["server <id>", ...]."""
    return ["%s %s" % (kind, thing.id) for kind, thing, _ in tagged(conn, run_id, kinds,
                                                                   notes)]


def _listers(conn, tag, run_id, notes):
    """{kind: () -> [(resource, delete)]} of what a run made, in the order they can be
    deleted: servers, floating IPs, routers (their interfaces first), ports, networks,
    security groups, server groups and key pairs (by the names and ids in `notes`),
    images, volumes (cinder: by metadata), and the user and project made for the run.
    An admin looks in every project (a run in a project of its own)."""
    net = conn.network
    everywhere = {"all_projects": True} if service_states.can_read_states(conn) else {}
    owners = notes.get("user") or notes.get(OWNER)
    owner = {"user_id": owners[0]} if owners else {}

    def noted(kind, find):
        return [thing for thing in (find(ident) for ident in notes.get(kind, ()))
                if thing is not None]

    def tagged_or_in_its_project(list_resources, keep=lambda thing: True):
        # Neutron tags a resource after creating it: a run killed in between leaves it
        # untagged.  In a project made for the run, everything is the run's.
        found = {thing.id: thing for thing in list_resources(tags=tag)}
        for project_id in notes.get("project", ()):
            found.update((thing.id, thing) for thing in list_resources(project_id=project_id)
                         if keep(thing))
        return list(found.values())

    def own_port(port):   # a VM's or an unbound port, not one neutron made for a network
        return not (port.device_owner or "").startswith("network:")
    identity = conn.identity
    return {
        "server": lambda: [(s, lambda s=s: _delete_and_wait_server(conn, s))
                           for s in conn.compute.servers(tags=tag, **everywhere)],
        "floating IP": lambda: [(f, lambda f=f: net.delete_ip(f, ignore_missing=True))
                                for f in tagged_or_in_its_project(net.ips)],
        "router": lambda: [(r, lambda r=r: delete_router(conn, r))
                           for r in tagged_or_in_its_project(net.routers)],
        "port": lambda: [(p, lambda p=p: net.delete_port(p, ignore_missing=True))
                         for p in tagged_or_in_its_project(net.ports, own_port)],
        "network": lambda: [(n, lambda n=n: _delete_network(conn, n))
                            for n in net.networks(tags=tag)],
        "security group": lambda: [(g, lambda g=g: net.delete_security_group(
            g, ignore_missing=True)) for g in net.security_groups(tags=tag)],
        "server group": lambda: [(g, lambda g=g: conn.compute.delete_server_group(
            g, ignore_missing=True)) for g in noted("server group",
                                                    conn.compute.find_server_group)],
        "keypair": lambda: [(k, lambda k=k: conn.compute.delete_keypair(
            k, ignore_missing=True, **owner)) for k in noted(
                "keypair", lambda name: conn.compute.find_keypair(name, **owner))],
        "image": lambda: [(i, lambda i=i: conn.image.delete_image(i, ignore_missing=True))
                          for i in conn.image.images(tag=[tag])],
        "volume": lambda: [(v, lambda v=v: _delete_volume(conn, v))
                           for v in conn.block_storage.volumes(**everywhere)
                           if (v.metadata or {}).get(RUN_METADATA) == run_id],
        "user": lambda: [(u, lambda u=u: identity.delete_user(u, ignore_missing=True))
                         for u in noted("user", identity.find_user)],
        "project": lambda: [(p, lambda p=p: identity.delete_project(p, ignore_missing=True))
                            for p in noted("project", identity.find_project)],
        "trust": lambda: [(t, lambda t=t: identity.delete_trust(t, ignore_missing=True))
                          for t in noted("trust", identity.find_trust)],
    }


def tagged(conn, run_id, kinds=KINDS, notes=None):
    """(kind, resource, delete) of everything of `kinds` tagged as the run's (or, for
    the UNTAGGED kinds, named in `notes`: {kind: [name or id]}), in the order they can
    be deleted."""
    listers = _listers(conn, RUN_TAG_PREFIX + run_id, run_id, notes or {})
    return [(kind, thing, delete) for kind in KINDS if kind in kinds
            for thing, delete in listers[kind]()]


def _delete_volume(conn, volume, wait=300):
    """Detached from what it is still attached to (as it is now), then deleted."""
    volume = conn.block_storage.find_volume(volume.id)
    if volume is None:
        return
    for attachment in volume.attachments or []:
        conn.compute.delete_volume_attachment(attachment["server_id"], volume,
                                              ignore_missing=True)
    if volume.attachments:
        conn.block_storage.wait_for_status(volume, status="available", wait=wait)
    conn.block_storage.delete_volume(volume, ignore_missing=True)
    conn.block_storage.wait_for_delete(volume, wait=wait)


def _delete_and_wait_server(conn, server, wait=300):
    conn.compute.delete_server(server, ignore_missing=True)
    conn.compute.wait_for_delete(server, wait=wait, interval=POLL_INTERVAL)


def delete_router(conn, router):
    """Its interfaces, then the router (neutron removes the gateway with it)."""
    for port in conn.network.ports(device_id=router.id,
                                   device_owner="network:router_interface"):
        for fixed in port.fixed_ips:
            conn.network.remove_interface_from_router(router, subnet_id=fixed["subnet_id"])
    conn.network.delete_router(router, ignore_missing=True)


def remove_interface(conn, router, subnet_id):
    try:
        conn.network.remove_interface_from_router(router, subnet_id=subnet_id)
    except sdk_exceptions.NotFoundException:   # never made (the add failed)
        pass


def _delete_network(conn, network):
    for port in conn.network.ports(network_id=network.id):
        if not port.device_owner or port.device_owner.startswith("compute:"):
            conn.network.delete_port(port, ignore_missing=True)
    conn.network.delete_network(network, ignore_missing=True)


# -- runs on this machine, and the sweeper ------------------------------------------------
class QueueTimeout(Exception):
    pass


def default_runs_dir():
    """Where runs register when no runs_dir is given (plain `rally task start`): the
    user's state directory, which survives a reboot (a killed run's leftovers must)."""
    base = os.environ.get("XDG_STATE_HOME") or os.path.expanduser("~/.local/state")
    return os.path.join(base, "cloudpulse", "runs")


def cloud_key(conn):
    """One cloud: its identity endpoint and region."""
    auth_url = getattr(conn.session.auth, "auth_url", "") or ""
    region = conn.config.get_region_name() or ""
    return hashlib.sha256(("%s|%s" % (auth_url.rstrip("/"), region)).encode()).hexdigest()[:16]


class RunRegistry:
    """The workload runs started on this machine.  A run holds an flock on
    `<dir>/<run id>.run` for its life, so the kernel releases it when the run's process
    dies, even by SIGKILL: a run file that is not locked is a dead run's (or a finished
    run's whose cleanup could not remove everything: `keep`).  Runs started
    elsewhere have no file here, and the sweeper never touches what they created.  The
    file lists what the run made that cannot be tagged (RunFile.note).  A second lock per
    cloud lets one workload run at a time into each cloud."""

    def __init__(self, directory):
        self.directory = directory
        self._kept = set()

    def keep(self, run_id):
        """The run ends with things left in the cloud: keep its file for the sweeper."""
        self._kept.add(run_id)

    def _path(self, run_id):
        return os.path.join(self.directory, "%s.run" % run_id)

    def _open(self, name):
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        return os.open(os.path.join(self.directory, name), os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def running(self, run_id, cloud, queue_timeout):
        """Held while the run runs: its RunFile."""
        cloud_fd = self._open("cloud-%s.lock" % cloud)
        try:
            if not wait_until(lambda: _try_lock(cloud_fd), queue_timeout, interval=1.0):
                raise QueueTimeout("another CloudPulse workload run into this cloud did not "
                                   "finish within %s s (one at a time per cloud)"
                                   % queue_timeout)
            run_fd = self._open("%s.run" % run_id)
            fcntl.flock(run_fd, fcntl.LOCK_EX)
            self._kept.discard(run_id)
            try:
                yield RunFile(run_fd)
            finally:
                if run_id not in self._kept:
                    self.forget(run_id)
                os.close(run_fd)
        finally:
            os.close(cloud_fd)

    def dead_runs(self):
        """Run ids whose run file is not held by a live process."""
        try:
            names = os.listdir(self.directory)
        except FileNotFoundError:
            return []
        dead = []
        for name in sorted(names):
            if not name.endswith(".run"):
                continue
            fd = os.open(os.path.join(self.directory, name), os.O_RDWR)
            try:
                if _try_lock(fd):
                    dead.append(name[:-len(".run")])
            finally:
                os.close(fd)
        return dead

    def notes(self, run_id):
        """{kind: [name or id]} that the run noted in its file."""
        out = collections.defaultdict(list)
        with contextlib.suppress(FileNotFoundError), open(self._path(run_id)) as f:
            for line in f:
                kind, _, ident = line.rstrip("\n").partition("\t")
                if (kind in UNTAGGED or kind == OWNER) and ident:
                    out[kind].append(ident)
        return out

    def forget(self, run_id):
        with contextlib.suppress(FileNotFoundError):
            os.remove(self._path(run_id))


class RunFile:
    """A live run's file: one line per thing it made that has no tag."""

    def __init__(self, fd):
        self._fd = fd
        self._lock = threading.Lock()

    def note(self, kind, ident):
        if "\t" in ident or "\n" in ident:
            raise ValueError("%s name %r: tabs and newlines are not allowed" % (kind, ident))
        with self._lock:
            os.write(self._fd, ("%s\t%s\n" % (kind, ident)).encode())
            os.fsync(self._fd)


def _try_lock(fd):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def remove_tagged(conn, run_id, notes):
    """Delete what run `run_id` left in the cloud of `conn` (its tags, and its untagged
    `notes`), in CLEANUP_AFTER's order: (removed, problems), ["<kind> <id>"] each."""
    removed, problems = [], []
    for kind, thing, delete in tagged(conn, run_id, notes=notes):
        try:
            delete()
            removed.append("%s %s" % (kind, thing.id))
        except Exception as exc:   # the rest may still go; this one is said
            problems.append("%s %s: %s" % (kind, thing.id, runner.describe_error(exc)))
    return removed, problems


def sweep(conn, registry):
    """Delete what the dead runs of `registry` left in the cloud of `conn` (tagged with
    their run tags), and forget the runs that left nothing.  ["server <id> (run <id>)"]."""
    removed = []
    for run_id in registry.dead_runs():
        gone, problems = remove_tagged(conn, run_id, registry.notes(run_id))
        removed.extend("%s (run %s)" % (thing, run_id) for thing in gone)
        if problems:
            LOG.warning("sweeper: run %s: could not remove %s", run_id, "; ".join(problems))
        else:
            registry.forget(run_id)
    if removed:
        LOG.info("sweeper removed what dead runs left: %s", ", ".join(removed))
    return removed
