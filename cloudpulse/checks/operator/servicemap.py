"""The service map: which nodes run which control-plane services, and how to reach them.

Two input formats, both YAML:

- a plain inventory::

    defaults: {ssh_user: root, ssh_key: /etc/cloudpulse/id_ed25519, ssh_port: 22}
    services:                 # optional: override or add service definitions
      haproxy: {listen: ["198.18.10.100:5000"]}
    roles:                    # optional: add roles (a role is a list of services)
      db: [galera]
    hosts:
      node1: {address: 198.18.10.11, roles: [controller], hostname: node1}

- `juju status --format yaml` (1.x `services` with `agent-state`, 2.x `applications` with
  `juju-status`): every unit's public-address is a node; its charm names the services.

Everything is validated on load: a bad map raises `ServiceMapError` naming the key
("hosts.node2.address: missing").  Values from the map are data only: they are never put
into a command run over SSH.
"""

import dataclasses
import ipaddress
import re
import typing

import yaml


class ServiceMapError(ValueError):
    """The service map is missing or malformed; the message names the key."""


MANAGERS = ("process", "systemd", "docker", "podman")


@dataclasses.dataclass(frozen=True)
class ServiceDef:
    name: str
    ports: typing.Tuple[int, ...] = ()           # on the node's address or a wildcard
    listen: typing.Tuple[typing.Tuple[str, int], ...] = ()   # (address, port): VIP frontends
    processes: typing.Tuple[str, ...] = ()       # any one alive is enough
    manager: str = "process"
    unit: str = ""                               # systemd unit (manager systemd)
    container: str = ""                          # container name (manager docker/podman)


def _svc(name, ports=(), processes=(), unit=None, container=None):
    return ServiceDef(name, ports=tuple(ports), processes=tuple(processes),
                      unit=unit or "%s.service" % name, container=container or name)


# Role defaults of a standard control plane.  WSGI APIs may run under apache2/httpd/uwsgi.
_WSGI = ("apache2", "httpd", "uwsgi")
SERVICE_DEFAULTS = {s.name: s for s in (
    _svc("keystone", [5000], ("keystone-wsgi-public", "keystone-all") + _WSGI,
         unit="apache2.service"),
    _svc("glance", [9292], ("glance-api",), unit="glance-api.service", container="glance_api"),
    _svc("nova", [8774], ("nova-api", "nova-api-wsgi") + _WSGI, unit="nova-api.service",
         container="nova_api"),
    _svc("neutron", [9696], ("neutron-server",), unit="neutron-server.service",
         container="neutron_server"),
    _svc("cinder", [8776], ("cinder-api", "cinder-wsgi") + _WSGI, unit="cinder-api.service",
         container="cinder_api"),
    _svc("placement", [8778], ("placement-api",) + _WSGI, unit="placement-api.service",
         container="placement_api"),
    _svc("rabbitmq", [5672, 25672], ("beam.smp",), unit="rabbitmq-server.service"),
    _svc("galera", [3306, 4567], ("mariadbd", "mysqld"), unit="mariadb.service",
         container="mariadb"),
    _svc("memcached", [11211], ("memcached",)),
    _svc("haproxy", [], ("haproxy",)),
    _svc("pacemaker", [], ("pacemakerd",)),
    _svc("corosync", [], ("corosync",)),
    _svc("nova-compute", [], ("nova-compute",), container="nova_compute"),
    _svc("neutron-agent", [], ("neutron-openvswitch-agent", "neutron-linuxbridge-agent",
                               "neutron-ovn-metadata-agent", "ovn-controller")),
    _svc("cinder-volume", [], ("cinder-volume",), container="cinder_volume"),
)}

ROLE_DEFAULTS = {
    "controller": ("keystone", "glance", "nova", "neutron", "cinder", "placement", "rabbitmq",
                   "galera", "memcached", "haproxy"),
    "compute": ("nova-compute", "neutron-agent"),
    "network": ("neutron-agent",),
    "storage": ("cinder-volume",),
    "database": ("galera",),
    "messaging": ("rabbitmq",),
    "loadbalancer": ("haproxy",),
    "cluster": ("pacemaker", "corosync"),
}

# juju charm -> services it runs
CHARM_SERVICES = {
    "keystone": ("keystone",), "glance": ("glance",),
    "nova-cloud-controller": ("nova", "placement"), "placement": ("placement",),
    "neutron-api": ("neutron",), "cinder": ("cinder",), "rabbitmq-server": ("rabbitmq",),
    "percona-cluster": ("galera",), "mysql": ("galera",), "mariadb": ("galera",),
    "galera-cluster": ("galera",), "memcached": ("memcached",), "haproxy": ("haproxy",),
    "hacluster": ("pacemaker", "corosync"), "nova-compute": ("nova-compute",),
    "neutron-gateway": ("neutron-agent",), "neutron-openvswitch": ("neutron-agent",),
    "cinder-volume": ("cinder-volume",),
}

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,62}$")
_HOST = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9\-.]{0,252})$")
_UNIT = re.compile(r"^[A-Za-z0-9@_.\\:\-]+\.(service|socket|target)$")


# States of a healthy juju unit: 1.x agent-state; 2.x+ juju-status (the agent) and
# workload-status (what the charm reports: "blocked" or "error" need the operator).
JUJU_OK_STATES = frozenset({"started", "idle", "executing", "active", "unknown"})


@dataclasses.dataclass(frozen=True)
class UnitState:
    """A juju unit's state as `juju status` reports it."""
    kind: str            # "agent" (1.x agent-state, 2.x juju-status) or "workload"
    current: str         # started, idle, lost, error, blocked, ...
    message: str = ""    # agent-state-info / status message: "hook failed: ..."

    @property
    def ok(self):
        return self.current in JUJU_OK_STATES

    def __str__(self):
        text = "juju %s %s" % ("agent-state" if self.kind == "agent" else "workload-status",
                                self.current)
        return "%s (%s)" % (text, self.message) if self.message else text


@dataclasses.dataclass(frozen=True)
class Node:
    name: str                       # how results name it: "node3"
    address: typing.Optional[str]   # where SSH goes; None: not reachable (see `pending`)
    services: typing.Tuple[ServiceDef, ...]
    ssh_user: typing.Optional[str] = None     # None: [operator] ssh_user
    ssh_key: typing.Optional[str] = None      # None: [operator] ssh_key_file
    ssh_port: int = 22
    hostname: str = ""              # as OpenStack services report it (nova-compute@<hostname>)
    # juju: service -> UnitState of the unit that runs it
    agent_states: typing.Dict[str, "UnitState"] = dataclasses.field(default_factory=dict)
    # juju: why the node has no address ("unit pending (no public-address)")
    pending: str = ""

    def runs(self, service):
        return any(s.name == service for s in self.services)

    def service(self, service):
        return next(s for s in self.services if s.name == service)


@dataclasses.dataclass(frozen=True)
class ServiceMap:
    nodes: typing.Tuple[Node, ...]
    source: str = ""

    def nodes_running(self, service):
        return [n for n in self.nodes if n.runs(service)]

    def node_named(self, name):
        """The node a service calls `name` (rabbit@node2 -> node2): by name or hostname."""
        short = name.split("@", 1)[-1].split(".", 1)[0]
        for n in self.nodes:
            if short in (n.name, n.hostname, n.hostname.split(".", 1)[0]):
                return n
        return None

    def node_at(self, address):
        return next((n for n in self.nodes if n.address == address), None)


def load(path):
    try:
        with open(path) as f:
            data = yaml.safe_load(f)
    except OSError as exc:
        raise ServiceMapError("service map %s: %s" % (path, exc.strerror)) from None
    except yaml.YAMLError as exc:
        raise ServiceMapError("service map %s is not valid YAML: %s" % (path, exc)) from None
    try:
        return from_dict(data, source=path)
    except ServiceMapError as exc:
        raise ServiceMapError("service map %s: %s" % (path, exc)) from None


def from_dict(data, source=""):
    if not isinstance(data, dict):
        raise ServiceMapError("expected a mapping with 'hosts' (inventory) or "
                              "'machines' + 'services'/'applications' (juju status)")
    if "hosts" in data:
        return _from_inventory(data, source)
    if "services" in data and "machines" in data or "applications" in data:
        return _from_juju(data, source)
    raise ServiceMapError("hosts: missing (an inventory needs 'hosts'; a juju status has "
                          "'machines' and 'services' or 'applications')")


def _mapping(value, key):
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ServiceMapError("%s: expected a mapping, got %r" % (key, value))
    return value


def _list(value, key):
    if value is None:
        return []
    if isinstance(value, (str, int)):
        value = [value]
    if not isinstance(value, list):
        raise ServiceMapError("%s: expected a list, got %r" % (key, value))
    return value


def _port(value, key):
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 65536:
        raise ServiceMapError("%s: %r is not a TCP port" % (key, value))
    return value


def _address(value, key):
    if not isinstance(value, str) or not value:
        raise ServiceMapError("%s: missing" % key if value in (None, "")
                              else "%s: %r is not an address" % (key, value))
    try:
        ipaddress.ip_address(value)
    except ValueError:
        if not _HOST.match(value):
            raise ServiceMapError("%s: %r is not an IP address or host name"
                                  % (key, value)) from None
    return value


def _listen(value, key):
    if not isinstance(value, str) or ":" not in value:
        raise ServiceMapError("%s: %r: expected 'address:port'" % (key, value))
    address, _, port = value.rpartition(":")
    address = address.strip("[]")
    _address(address, key)
    if not port.isdigit():
        raise ServiceMapError("%s: %r: the port is not a number" % (key, value))
    return (address, _port(int(port), key))


def _service_def(name, spec, key):
    base = SERVICE_DEFAULTS.get(name, ServiceDef(name, unit="%s.service" % name,
                                                 container=name))
    spec = _mapping(spec, key)
    unknown = set(spec) - {"ports", "listen", "processes", "manager", "unit", "container"}
    if unknown:
        raise ServiceMapError("%s.%s: unknown key (known: ports, listen, processes, manager, "
                              "unit, container)" % (key, sorted(unknown)[0]))
    fields = {}
    if "ports" in spec:
        fields["ports"] = tuple(_port(p, "%s.ports[%d]" % (key, i))
                                for i, p in enumerate(_list(spec["ports"], key + ".ports")))
    if "listen" in spec:
        fields["listen"] = tuple(_listen(v, "%s.listen[%d]" % (key, i))
                                 for i, v in enumerate(_list(spec["listen"], key + ".listen")))
    if "processes" in spec:
        procs = _list(spec["processes"], key + ".processes")
        for i, p in enumerate(procs):
            if not isinstance(p, str) or not _NAME.match(p):
                raise ServiceMapError("%s.processes[%d]: %r is not a process name"
                                      % (key, i, p))
        fields["processes"] = tuple(procs)
    if "manager" in spec:
        if spec["manager"] not in MANAGERS:
            raise ServiceMapError("%s.manager: %r is not one of %s"
                                  % (key, spec["manager"], ", ".join(MANAGERS)))
        fields["manager"] = spec["manager"]
    if "unit" in spec:
        if not isinstance(spec["unit"], str) or not _UNIT.match(spec["unit"]):
            raise ServiceMapError("%s.unit: %r is not a systemd unit name" % (key, spec["unit"]))
        fields["unit"] = spec["unit"]
    if "container" in spec:
        if not isinstance(spec["container"], str) or not _NAME.match(spec["container"]):
            raise ServiceMapError("%s.container: %r is not a container name"
                                  % (key, spec["container"]))
        fields["container"] = spec["container"]
    svc = dataclasses.replace(base, name=name, **fields)
    if not (svc.ports or svc.listen or svc.processes):
        raise ServiceMapError("%s: a service needs ports, listen or processes" % key)
    return svc


def _from_inventory(data, source):
    unknown = set(data) - {"defaults", "services", "roles", "hosts"}
    if unknown:
        raise ServiceMapError("%s: unknown key (known: defaults, services, roles, hosts)"
                              % sorted(unknown)[0])
    defaults = _mapping(data.get("defaults"), "defaults")
    bad = set(defaults) - {"ssh_user", "ssh_key", "ssh_port"}
    if bad:
        raise ServiceMapError("defaults.%s: unknown key (known: ssh_user, ssh_key, ssh_port)"
                              % sorted(bad)[0])
    services = dict(SERVICE_DEFAULTS)
    for name, spec in _mapping(data.get("services"), "services").items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise ServiceMapError("services.%s: not a service name" % name)
        services[name] = _service_def(name, spec, "services.%s" % name)
    roles = dict(ROLE_DEFAULTS)
    for name, members in _mapping(data.get("roles"), "roles").items():
        members = _list(members, "roles.%s" % name)
        for i, m in enumerate(members):
            if m not in services:
                raise ServiceMapError("roles.%s[%d]: unknown service %r (known: %s)"
                                      % (name, i, m, ", ".join(sorted(services))))
        roles[name] = tuple(members)
    hosts = _mapping(data.get("hosts"), "hosts")
    if not hosts:
        raise ServiceMapError("hosts: empty; list the nodes to check")
    nodes = []
    for name, spec in hosts.items():
        key = "hosts.%s" % name
        if not isinstance(name, str) or not _NAME.match(name):
            raise ServiceMapError("%s: not a node name" % key)
        spec = _mapping(spec, key)
        bad = set(spec) - {"address", "ssh_user", "ssh_key", "ssh_port", "roles", "services",
                           "hostname"}
        if bad:
            raise ServiceMapError("%s.%s: unknown key (known: address, hostname, roles, "
                                  "services, ssh_user, ssh_key, ssh_port)" % (key, sorted(bad)[0]))
        names = []
        for i, role in enumerate(_list(spec.get("roles"), key + ".roles")):
            if role in roles:
                names.extend(roles[role])
            elif role in services:
                names.append(role)   # a service name is a role of one service
            else:
                raise ServiceMapError("%s.roles[%d]: unknown role %r (known: %s)" % (
                    key, i, role, ", ".join(sorted(set(roles) | set(services)))))
        for i, svc in enumerate(_list(spec.get("services"), key + ".services")):
            if svc not in services:
                raise ServiceMapError("%s.services[%d]: unknown service %r" % (key, i, svc))
            names.append(svc)
        if not names:
            raise ServiceMapError("%s.roles: empty; give the node a role or services" % key)
        user = spec.get("ssh_user", defaults.get("ssh_user"))
        if user is not None and (not isinstance(user, str) or not _NAME.match(user)):
            raise ServiceMapError("%s.ssh_user: %r is not a user name" % (key, user))
        ssh_key = spec.get("ssh_key", defaults.get("ssh_key"))
        if ssh_key is not None and not isinstance(ssh_key, str):
            raise ServiceMapError("%s.ssh_key: expected a file path" % key)
        port = _port(spec.get("ssh_port", defaults.get("ssh_port", 22)), key + ".ssh_port")
        hostname = spec.get("hostname", name)
        if not isinstance(hostname, str) or not _HOST.match(hostname):
            raise ServiceMapError("%s.hostname: %r is not a host name" % (key, hostname))
        nodes.append(Node(
            name=name, address=_address(spec.get("address"), key + ".address"),
            services=tuple(services[n] for n in dict.fromkeys(names)),
            ssh_user=user, ssh_key=ssh_key, ssh_port=port, hostname=hostname))
    _unique_addresses(nodes)
    return ServiceMap(tuple(nodes), source)


def _unique_addresses(nodes):
    seen = {}
    for n in nodes:
        if (n.address, n.ssh_port) in seen:
            raise ServiceMapError("hosts.%s.address: %s is also hosts.%s's"
                                  % (n.name, n.address, seen[(n.address, n.ssh_port)]))
        seen[(n.address, n.ssh_port)] = n.name


def _from_juju(data, source):
    apps_key = "applications" if "applications" in data else "services"
    apps = _mapping(data.get(apps_key), apps_key)
    machines = _mapping(data.get("machines"), "machines")
    by_address = {}
    # application -> the services its charm runs; None for charms CloudPulse does not
    # check (ntp, landscape...).  Subordinate units are looked up here by application.
    checked = {}
    for app, spec in apps.items():
        spec = _mapping(spec, "%s.%s" % (apps_key, app))
        charm = str(spec.get("charm-name") or spec.get("charm") or app)
        charm = re.sub(r"-\d+$", "", charm.rsplit("/", 1)[-1])   # cs:trusty/keystone-42
        checked[app] = CHARM_SERVICES.get(charm)
    for app, svc_names in checked.items():
        if svc_names is None:
            continue
        key = "%s.%s" % (apps_key, app)
        for unit, uspec in _mapping(apps[app].get("units"), key + ".units").items():
            _juju_unit(by_address, machines, checked, svc_names,
                       "%s.units.%s" % (key, unit), uspec, unit)
    if not by_address:
        raise ServiceMapError("%s: no unit of a checked charm (%s)"
                              % (apps_key, ", ".join(sorted(CHARM_SERVICES))))
    nodes = [Node(name=name, address=addr if isinstance(addr, str) else None, hostname=name,
                  services=tuple(SERVICE_DEFAULTS[s] for s in dict.fromkeys(svcs)),
                  agent_states=states,
                  pending="" if isinstance(addr, str) else "unit pending (no public-address)")
             for addr, (name, svcs, states) in by_address.items()]
    return ServiceMap(tuple(nodes), source)


def _juju_machine(machines, machine_id):
    """machines.<m>, or machines.<m>.containers.<m/lxd/N> for a unit in a container
    (LXC/LXD: the standard layout of charmed OpenStack); {} when not listed."""
    machine_id = str(machine_id if machine_id is not None else "")
    by_id = {str(k): v for k, v in machines.items()}
    if machine_id in by_id:
        return _mapping(by_id[machine_id], "machines.%s" % machine_id)
    host = by_id.get(machine_id.split("/", 1)[0])
    if isinstance(host, dict):
        containers = {str(k): v for k, v in _mapping(host.get("containers"), "machines.%s."
                                                     "containers" % machine_id).items()}
        if machine_id in containers:
            return _mapping(containers[machine_id], "machines.%s" % machine_id)
    return {}


def _node_name(machine, machine_id, address):
    """The node's name: the machine's hostname, else its instance-id or dns-name (not
    while "pending", not an IP), else the address, else the machine id (1/lxc/0 ->
    machine-1-lxc-0)."""
    for value in (machine.get("hostname"), machine.get("instance-id"), machine.get("dns-name")):
        value = str(value or "")
        if value and value != "pending" and _NAME.match(value) and not _is_ip(value):
            return value
    if address:
        return address
    return "machine-%s" % re.sub(r"[^A-Za-z0-9]+", "-", str(machine_id or "unknown"))


def _is_ip(value):
    try:
        ipaddress.ip_address(value)
        return True
    except ValueError:
        return False


def _juju_unit(by_address, machines, checked, svc_names, key, uspec, unit):
    uspec = _mapping(uspec, key)
    machine_id = uspec.get("machine")
    if uspec.get("public-address") in (None, ""):
        # Not deployed yet (pending) or lost its address: judged as such, not the map.
        address = None
        where = ("pending", str(machine_id) if machine_id is not None else unit)
    else:
        address = where = _address(uspec.get("public-address"), key + ".public-address")
    state = _unit_state(uspec, key)
    name = _node_name(_juju_machine(machines, machine_id), machine_id or unit, address)
    entry = by_address.setdefault(where, (name, [], {}))
    entry[1].extend(svc_names)
    for s in svc_names:
        entry[2][s] = state
    for sub, sspec in _mapping(uspec.get("subordinates"), key + ".subordinates").items():
        app = sub.split("/", 1)[0]   # subordinates name their application, not the charm
        if app in checked:
            subs = checked[app]
        else:
            # A status that does not list the subordinate's application: go by its name
            # (hacluster-keystone).
            subs = next((v for k, v in CHARM_SERVICES.items()
                         if app == k or app.startswith(k + "-")), None)
        if subs:
            entry[1].extend(subs)
            sub_key = "%s.subordinates.%s" % (key, sub)
            sub_state = _unit_state(_mapping(sspec, sub_key), sub_key)
            for s in subs:
                entry[2][s] = sub_state


def _unit_state(uspec, key):
    """The unit's state: 1.x `agent-state` (1.24/1.25 add `agent-status` and
    `workload-status`); 2.x+ the agent's `juju-status` and the
    charm's `workload-status`, the first that is not healthy (a failed hook shows as
    workload "error" while the agent idles; a dead machine as agent "lost")."""
    states = []
    if "agent-state" in uspec:
        # 1.x; 1.24/1.25 print it beside agent-status and workload-status: all judged
        states.append(UnitState("agent", str(uspec["agent-state"]),
                                str(uspec.get("agent-state-info") or "")))
    for field, kind in (("juju-status", "agent"), ("agent-status", "agent"),
                        ("workload-status", "workload")):
        status = uspec.get(field)
        if status is None:
            continue
        status = _mapping(status, "%s.%s" % (key, field))
        states.append(UnitState(kind, str(status.get("current") or "unknown"),
                                str(status.get("message") or "")))
    return next((st for st in states if not st.ok),
                states[0] if states else UnitState("agent", "unknown"))
