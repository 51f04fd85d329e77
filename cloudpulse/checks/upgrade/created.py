"""Upgrade checks with `create: true`: a set of resources CloudPulse makes before an
upgrade, proves working (each listed connection pings both ways), and keeps for the
snapshot that records it, until that snapshot's owner asks for its removal.

The set is asked for as POST /cpulse/snapshot's `resources`:

    {"image": ["up-image"],
     "net": ["up-a", {"name": "up-b", "cidr": "198.18.44.0/24"}],
     "router": [{"name": "up-r", "nets": ["up-a", "up-b"]}],
     "vm": ["up-1", {"name": "up-2", "net": "up-b", "image": "up-image"}],
     "connections": [["up-1", "up-2"]]}

Names are kept as given.  What a request leaves out: one image and one network (named
after the first VM), a router on every network (its gateway on the external network),
each VM on the first network and image; a network's subnet is the next /24 from
[functional] cidr.  The steps are the functional check's (cloudpulse.checks.workload):
everything is tagged `cloudpulse` and `cloudpulse-run:<handle>`, and a set whose creation
fails, or whose checker dies on the way, is removed (by the run, or by the sweeper, which
takes dead runs' resources).  A set once recorded is its snapshot's: its run is over, so
no sweeper touches it; `remove()` deletes it on request.
"""

import base64
import contextlib
import dataclasses
import ipaddress
import os
import tempfile
import typing

from cloudpulse.checks import runner
from cloudpulse.checks import workload
from cloudpulse import fanout
from cloudpulse import results

CHECK_TYPE = results.CheckType.UPGRADE
# port 80 answers on images without a web server (the snapshot's http probe)
_HTTP_USER_DATA = base64.b64encode(workload.HTTP_USER_DATA.encode()).decode()
FIELDS = ("image", "vm", "net", "router", "connections")
PING_TIMEOUT = 20.0   # seconds a connection has to answer in a verify (it did before)


@dataclasses.dataclass(frozen=True)
class NetSpec:
    name: str
    cidr: str


@dataclasses.dataclass(frozen=True)
class RouterSpec:
    name: str
    nets: typing.Tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class VMSpec:
    name: str
    net: str
    image: str


@dataclasses.dataclass(frozen=True)
class SetSpec:
    """A validated request: the set to create."""
    images: typing.Tuple[str, ...]
    nets: typing.Tuple[NetSpec, ...]
    routers: typing.Tuple[RouterSpec, ...]
    vms: typing.Tuple[VMSpec, ...]
    connections: typing.Tuple[typing.Tuple[str, str], ...]

    def summary(self):
        """{kind: [name]}, as the snapshot's answer names what it holds."""
        return {"image": list(self.images), "net": [n.name for n in self.nets],
                "router": [r.name for r in self.routers], "vm": [v.name for v in self.vms],
                "connections": [list(pair) for pair in self.connections]}


def _name(value, where):
    if not isinstance(value, str) or not value.strip() or len(value) > 64:
        raise ValueError("%s: a name (1 to 64 characters)" % where)
    return value


def _entries(doc, kind):
    entries = doc.get(kind, [])
    if not isinstance(entries, list):
        raise ValueError("resources.%s: a list" % kind)
    return entries


def _fields(entry, where, allowed):
    """(name, {field: value}) of a list entry: a name, or an object with `name`."""
    if isinstance(entry, str):
        return _name(entry, where), {}
    if not isinstance(entry, dict):
        raise ValueError("%s: a name or an object with %s" % (where, ", ".join(allowed)))
    unknown = sorted(set(entry) - set(allowed))
    if unknown:
        raise ValueError("%s.%s: not a field (%s)" % (where, unknown[0], ", ".join(allowed)))
    return _name(entry.get("name"), where + ".name"), entry


def _unique(names, kind):
    seen = set()
    for index, name in enumerate(names):
        if name in seen:
            raise ValueError("resources.%s[%d]: %r is named twice" % (kind, index, name))
        seen.add(name)


def parse(doc, base_cidr, max_vms):
    """The SetSpec of a request's `resources`; ValueError naming the field
    (`resources.vm[1].net: no network 'up-c' in resources.net`)."""
    if not isinstance(doc, dict):
        raise ValueError("resources: an object with %s" % ", ".join(FIELDS))
    unknown = sorted(set(doc) - set(FIELDS))
    if unknown:
        raise ValueError("resources.%s: not a kind (%s)" % (unknown[0], ", ".join(FIELDS)))
    raw_vms = [_fields(e, "resources.vm[%d]" % i, ("name", "net", "image"))
               for i, e in enumerate(_entries(doc, "vm"))]
    if not raw_vms:
        raise ValueError("resources.vm: at least one VM")
    if len(raw_vms) > max_vms:
        raise ValueError("resources.vm: at most %d VMs ([upgrade] max_created_vms)"
                         % max_vms)
    first = raw_vms[0][0]
    images = [_name(e, "resources.image[%d]" % i) for i, e in
              enumerate(_entries(doc, "image"))] or ["%s-image" % first]
    base = ipaddress.ip_network(base_cidr)
    nets = []
    for index, entry in enumerate(_entries(doc, "net") or ["%s-net" % first]):
        where = "resources.net[%d]" % index
        name, fields = _fields(entry, where, ("name", "cidr"))
        cidr = fields.get("cidr") or str(ipaddress.ip_network(
            (int(base.network_address) + index * base.num_addresses, base.prefixlen)))
        try:
            ipaddress.ip_network(cidr)
        except (TypeError, ValueError):
            raise ValueError("%s.cidr: %r is not a network address" % (where, cidr)) from None
        nets.append(NetSpec(name, cidr))
    net_names = [n.name for n in nets]
    routers = []
    for index, entry in enumerate(_entries(doc, "router") or ["%s-router" % first]):
        where = "resources.router[%d]" % index
        name, fields = _fields(entry, where, ("name", "nets"))
        on = fields.get("nets", net_names)
        if not isinstance(on, list) or not on:
            raise ValueError("%s.nets: a list of names of resources.net" % where)
        for net in on:
            if net not in net_names:
                raise ValueError("%s.nets: no network %r in resources.net" % (where, net))
        routers.append(RouterSpec(name, tuple(on)))
    vms = []
    for index, (name, fields) in enumerate(raw_vms):
        where = "resources.vm[%d]" % index
        net, image = fields.get("net", net_names[0]), fields.get("image", images[0])
        if net not in net_names:
            raise ValueError("%s.net: no network %r in resources.net" % (where, net))
        if image not in images:
            raise ValueError("%s.image: no image %r in resources.image" % (where, image))
        vms.append(VMSpec(name, net, image))
    vm_names = [v.name for v in vms]
    for kind, names in (("image", images), ("net", net_names),
                        ("router", [r.name for r in routers]), ("vm", vm_names)):
        _unique(names, kind)
    connections = []
    for index, pair in enumerate(_entries(doc, "connections")):
        where = "resources.connections[%d]" % index
        if (not isinstance(pair, list) or len(pair) != 2 or pair[0] == pair[1]
                or not all(isinstance(n, str) for n in pair)):
            raise ValueError("%s: two names of resources.vm" % where)
        for name in pair:
            if name not in vm_names:
                raise ValueError("%s: no VM %r in resources.vm" % (where, name))
        connections.append(tuple(pair))
    return SetSpec(tuple(images), tuple(nets), tuple(routers), tuple(vms),
                   tuple(connections))


@dataclasses.dataclass
class Made:
    """What a creation made, for its snapshot: every id (the snapshot records these
    only), the untagged kinds' names and ids (key pair), and the connections to ping."""
    run_id: str
    ids: typing.Set[str]
    notes: typing.Dict[str, typing.List[str]]
    connections: typing.List[dict]   # {"from", "to" (VM ids), "via" (from's floating
    #                                  IP), "address" (to's fixed IP)}, both ways
    ssh_user: str
    private_key: str                  # OpenSSH PEM: the snapshot store's secret

    def document(self):
        """The part of the snapshot document that says what CloudPulse made (no key)."""
        return {"run_id": self.run_id, "notes": self.notes,
                "connections": self.connections, "ssh_user": self.ssh_user}


class CreatedSet(workload.WorkloadRun):
    """The creation run: the steps of the functional check over a SetSpec, then
    `record(made)` (the snapshot taken and stored by the front end).  When every step
    passed and it was recorded, the set stays; otherwise the cleanup removes it."""

    check_type = CHECK_TYPE

    def __init__(self, conn, settings, run_id, spec, record, trust_id=None,
                 sweeper_conn=None):
        # what the request does not name (key pair, security group, server group):
        # cloudpulse-<run>-<kind>
        super().__init__(conn, settings, run_id, sweeper_conn=sweeper_conn)
        self.trust_id = trust_id   # `conn` acts for a user through it (cloud.on_behalf)
        self.spec = spec
        self._record = record
        self._recorded = False
        self.nets = {}      # name -> (network, subnet)
        self.images = {}    # name -> image
        self.vms = {}       # name -> workload.VM
        self._routed = set()   # the names of networks behind a router with a gateway

    def check_name(self, step):
        return "%s.create.%s" % (self.check_type.value, step)

    def keeps(self):
        return self._recorded

    def steps(self):
        if self.trust_id:
            # A killed run's trust goes with its set (the sweeper); the user it acts for
            # owns the key pair, which their project's set is removed with later.
            self._run_file.note("trust", self.trust_id)
            self._notes[workload.OWNER].append(self.conn.current_user_id)
            self._run_file.note(workload.OWNER, self.conn.current_user_id)
        with self.meanwhile() as submit:
            images = submit(self.step, "image", "image", self.upload_images)
            self.steps_together(("network", "network", self.create_networks),
                                ("access", "keypair", self.create_access_all))
            self.step("router", "router", self.create_routers)
            images.result()
        self.step("boot", "vm", self.boot_all)
        self.step("floating_ip", "floating IP", self.attach_floating_ips)
        self.step("connections", "vm", self.prove_connections)
        self.step("snapshot", "snapshot", self.record_set)

    def create_networks(self):
        net = self.conn.network
        for spec in self.spec.nets:
            network = self.create_tagged("network", net.create_network, net.delete_network,
                                         name=spec.name)
            subnet = self.create_tagged("subnet", net.create_subnet, net.delete_subnet,
                                        name=spec.name, network_id=network.id,
                                        ip_version=4, cidr=spec.cidr)
            self.nets[spec.name] = (network, subnet)

    def upload_images(self):
        for name in self.spec.images:
            self.upload_image(name)
            self.images[name] = self.image

    def create_access_all(self):
        self.create_access(rules=("icmp", "tcp/22", "tcp/80"))

    def create_routers(self):
        """Each router, its gateway on the external network when there is one, and its
        interfaces on its networks."""
        gateway = self.external_gateway()
        for spec in self.spec.routers:
            router = self.create_tagged("router", self.conn.network.create_router,
                                        lambda made: workload.delete_router(self.conn, made),
                                        name=spec.name, **gateway)
            for net in spec.nets:
                subnet_id = self.nets[net][1].id
                self.created("router interface", subnet_id,
                             lambda r=router, s=subnet_id: workload.remove_interface(
                                 self.conn, r, s))
                self.conn.network.add_interface_to_router(router, subnet_id=subnet_id)
                if gateway:
                    self._routed.add(net)

    def boot_all(self):
        requests = [(vm.name, {"name": vm.name, "image_id": self.images[vm.image].id,
                               "networks": [{"uuid": self.nets[vm.net][0].id}],
                               "user_data": _HTTP_USER_DATA})
                    for vm in self.spec.vms]
        booted = self.boot(requests, parallel=3)
        failed = [v for v in booted.values() if isinstance(v, Exception)]
        if failed:
            raise failed[0]
        self.vms = booted

    def attach_floating_ips(self):
        """A floating IP for each VM on a network behind a router's gateway: the
        checker's way in (the probes, the watch, SSH for the connections)."""
        reachable = [self.vms[vm.name] for vm in self.spec.vms if vm.net in self._routed]
        for item in fanout.fan_out(self._floating_ip_shown, reachable, max_workers=4,
                                   name="cpulse-fip"):
            if not item.ok:
                raise item.error

    def _floating_ip_shown(self, vm):
        """A floating IP for `vm`, once nova shows it among the VM's addresses (its
        network cache catches up with neutron a moment later): the snapshot records the
        VM as it then stays."""
        address = self.attach_floating_ip(vm)

        def shown():
            server = self.conn.compute.get_server(vm.server.id)
            return any(a["addr"] == address for addrs in (server.addresses or {}).values()
                       for a in addrs)
        if not workload.wait_until(shown, self.settings.boot_timeout,
                                   interval=workload.POLL_INTERVAL):
            raise workload.StepFailed("%s: nova does not show its floating IP %s within "
                                      "%s s" % (vm.where(), address,
                                                self.settings.boot_timeout), vm.label)

    def prove_connections(self):
        """Each listed connection pings both ways before it is recorded: a set that
        does not work before the upgrade proves nothing after it."""
        for a, b in self.spec.connections:
            for origin in (a, b):
                if not self.vms[origin].floating_ip:
                    raise workload.StepFailed(
                        "connection %s-%s: %s has no floating IP (its network %s is "
                        "behind no router with a gateway): the checker cannot reach it to "
                        "ping from it" % (a, b, origin, self._spec_of(origin).net), origin)
        ways = self._ways()
        pinged = ping_ways(ways, self.settings.ssh_user, self.key_file,
                           self.settings.ping_timeout, self.settings.api_timeout)
        name_of = {vm.server.id: name for name, vm in self.vms.items()}
        failed = False
        for a, b in self.spec.connections:
            problems = way_problems([w for w in ways if {name_of[w["from"]], name_of[w["to"]]}
                                     == {a, b}], pinged, name_of)
            failed = failed or bool(problems)
            self.record("connections", results.Status.FAILED if problems else
                        results.Status.PASSED, "%s-%s" % (a, b), "; ".join(problems))
        if failed:
            self.stop_dependent_steps("connections")
        return True

    def _spec_of(self, name):
        return next(vm for vm in self.spec.vms if vm.name == name)

    def _ways(self):
        """Made.connections: each way of each listed connection."""
        return [{"from": self.vms[o].server.id, "to": self.vms[t].server.id,
                 "via": self.vms[o].floating_ip, "address": self.vms[t].address}
                for a, b in self.spec.connections for o, t in ((a, b), (b, a))]

    def made(self):
        connections = self._ways()
        ids = {entry.ident for entry in self._undo}
        with open(self.key_file) as key:
            private_key = key.read()
        return Made(self.run_id, ids, {k: list(v) for k, v in self._notes.items()},
                    connections, self.settings.ssh_user, private_key)

    def record_set(self):
        self._record(self.made())
        self._recorded = True


def ping_connections(connections, ssh_user, private_key, timeout=PING_TIMEOUT,
                     api_timeout=10.0):
    """ping_ways of a snapshot's connections (Made.connections), with the set's key."""
    with tempfile.TemporaryDirectory(prefix="cloudpulse-upgrade-") as keydir:
        return ping_ways(connections, ssh_user, _write_key(keydir, private_key), timeout,
                         api_timeout)


def ping_ways(ways, ssh_user, key_file, timeout, api_timeout):
    """{(from id, to id): None when it pings, else why not} of connection ways
    (Made.connections' shape), each from inside its VM over SSH through its floating IP
    as `ssh_user` with `key_file`, all at once."""
    def ping(way):
        host = workload.SSHHost(way["from"][:8], way["via"], ssh_user, key_file)
        try:
            session = workload.ssh_into(way["via"], host, timeout, api_timeout)
        except workload.StepFailed as exc:
            return str(exc)
        try:
            replied, last = workload.ping_until(session, way["address"], timeout)
        finally:
            session.close()
        return None if replied else "no reply in %g s (%s)" % (
            timeout, workload.ping_summary(last))
    found = fanout.fan_out(ping, ways, max_workers=8, name="cpulse-connection")
    return {(w["from"], w["to"]): (r.value if r.ok else runner.describe_error(r.error))
            for w, r in zip(ways, found)}


def way_problems(ways, pinged, name_of):
    """["a -> b (address): why"] of the `ways` that did not ping (`pinged` as ping_ways
    answers it; `name_of` {VM id: name})."""
    return ["%s -> %s (%s): %s" % (name_of.get(w["from"], w["from"]),
                                   name_of.get(w["to"], w["to"]), w["address"],
                                   pinged[(w["from"], w["to"])])
            for w in ways if pinged[(w["from"], w["to"])]]


class InsidePing:
    """One way of a created set's connection, pinged from inside its VM once a round
    of a watch, over an SSH session kept open (opened again, one try a round, when an
    outage dropped it)."""

    def __init__(self, connection, label, ssh_user, key_file, timeout=1.0):
        self.connection, self.label, self.timeout = connection, label, timeout
        self._host = workload.SSHHost(label, connection["via"], ssh_user, key_file)
        self._session = None

    def describe(self):
        return "%s (%s)" % (self.label, self.connection["address"])

    def __call__(self):
        try:
            if self._session is None:
                self._session = workload.ssh_into(self.label, self._host, 0, self.timeout)
            res = self._session.run("ping -n -c 1 -W %d %s" % (
                max(1, int(self.timeout)), workload.ip(self.connection["address"])),
                timeout=self.timeout + 2)
            return res.exit_status == 0
        except Exception:   # the way in is cut too: lost, and reconnected next round
            self.close()
            return False

    def close(self):
        if self._session is not None:
            self._session.close()
            self._session = None


@contextlib.contextmanager
def inside_pings(snapshot, secret, labels):
    """{label `a->b`: InsidePing} of each way of a created set's connections (none for
    another snapshot), for a watch; their sessions and key gone at the end."""
    made = snapshot.get("created") or {}
    if not made.get("connections") or not secret:
        yield {}
        return
    with tempfile.TemporaryDirectory(prefix="cloudpulse-watch-") as keydir:
        key_file = _write_key(keydir, secret)
        pings = {}
        for connection in made["connections"]:
            label = "%s->%s" % (labels.get(connection["from"], connection["from"]),
                                labels.get(connection["to"], connection["to"]))
            pings[label] = InsidePing(connection, label, made["ssh_user"], key_file)
        try:
            yield pings
        finally:
            for ping in pings.values():
                ping.close()


def _write_key(directory, private_key):
    key_file = os.path.join(directory, "id_ed25519")
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(private_key)
    return key_file


def remove(conn, created):
    """Delete what a snapshot's set (its document's `created`) still has in the cloud,
    in the order the sweeper deletes: (removed, problems), ["<kind> <id>"] each."""
    return workload.remove_tagged(conn, created["run_id"], created["notes"])
