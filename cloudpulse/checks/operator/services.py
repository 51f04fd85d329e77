"""Services running and listening: per node, every service of the map has its ports
listening (`ss -ltnH`) and its process alive (ps, systemd unit or container)."""

import dataclasses

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers

CHECK = "services"
_WILDCARDS = {"0.0.0.0", "::", "*"}


# -- ss -ltnH ---------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Listener:
    address: str      # "0.0.0.0", "198.18.10.12", "::", "*"
    port: int


def parse_ss_listeners(text):
    """`ss -ltnH`: one listening TCP socket per line (State Recv-Q Send-Q Local Peer)."""
    out = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 4:
            continue
        local = fields[3] if fields[0] == "LISTEN" else fields[2]
        address, _, port = local.rpartition(":")
        if not port.isdigit():
            raise parsers.ParseError("ss: no port in local address %r" % local)
        address = address.strip("[]").split("%", 1)[0]   # [::]:22, 0.0.0.0%lo:53
        out.append(Listener(address, int(port)))
    return out


# -- ps -eo pid=,comm=,args= --------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Process:
    pid: int
    comm: str
    argv0: str        # basename of argv[0], which daemons often set to their name


def parse_ps(text):
    out = []
    for line in text.splitlines():
        fields = line.split(None, 2)
        if len(fields) < 2 or not fields[0].isdigit():
            continue
        args = fields[2] if len(fields) > 2 else fields[1]
        argv0 = args.split(None, 1)[0].rsplit("/", 1)[-1].rstrip(":")
        out.append(Process(int(fields[0]), fields[1], argv0))
    return out


def process_names(processes):
    names = set()
    for p in processes:
        names.add(p.comm)
        names.add(p.argv0)
    return names


# -- systemctl / docker / podman ------------------------------------------------------------

def parse_systemctl_units(text):
    """`systemctl list-units --type=service --all --no-legend --plain --no-pager`:
    {unit: (active, sub)}."""
    units = {}
    for line in text.splitlines():
        fields = line.split(None, 4)
        if len(fields) >= 4 and "." in fields[0]:
            units[fields[0]] = (fields[2], fields[3])
    return units


def parse_container_states(text):
    """`docker|podman ps --all --format '{{.Names}}\t{{.State}}'`: {name: state}.
    Docker prints the state ("running", "exited"); podman 4.3 (Debian 12) prints the status
    ("Up 43 seconds ago", "Exited (0) 43 seconds ago", "Paused", "Created"): its first word
    is the state, "up" meaning running."""
    states = {}
    for line in text.splitlines():
        if "\t" in line:
            name, state = line.split("\t", 1)
            state = (state.split() or [""])[0].lower()
            states[name.strip()] = "running" if state == "up" else state
    return states


def _component(service, node):
    return "%s@%s" % (service.name, node.name)


def _port_listening(node, port, listeners):
    # A VIP frontend on the same port (HAProxy) must not stand in for the service itself.
    vips = {addr for s in node.services for addr, _ in s.listen}
    return any(li.port == port and li.address not in vips for li in listeners)


def _listen_ok(address, port, listeners):
    return any(li.port == port and li.address in _WILDCARDS | {address} for li in listeners)


def _alive(service, views):
    """(alive, how) from the node's process table, systemd units or containers."""
    if service.manager == "systemd":
        active, sub = views["systemd"].get(service.unit, ("not-found", ""))
        return active == "active" and sub in ("running", "exited"), \
            "unit %s is %s%s" % (service.unit, active, "/" + sub if sub else "")
    if service.manager in commands.CONTAINERS:
        state = views[service.manager].get(service.container, "absent")
        return state in ("running", "up"), "%s container %s is %s" % (
            service.manager, service.container, state)
    alive = sorted(set(service.processes) & views["processes"])
    if alive:
        return True, "%s alive" % alive[0]
    return False, "no %s process" % " / ".join(service.processes)


def _gather(ctx, nodes):
    """Per node: the listeners and the process states the node's managers need."""
    needed = {commands.LISTENING_TCP: nodes}
    for n in nodes:
        for s in n.services:
            cmd = {"systemd": commands.SYSTEMD_UNITS, "process": commands.PROCESSES}.get(
                s.manager) or commands.CONTAINERS[s.manager]
            needed.setdefault(cmd, [])
            if n not in needed[cmd]:
                needed[cmd].append(n)
    return {cmd: base.run_on(ctx, ns, cmd) for cmd, ns in needed.items()}


_PARSE = {
    commands.LISTENING_TCP: ("listeners", parse_ss_listeners),
    commands.PROCESSES: ("processes",
                         lambda t: process_names(parse_ps(t))),
    commands.SYSTEMD_UNITS: ("systemd", parse_systemctl_units),
    **{c: (runtime, parse_container_states) for runtime, c in commands.CONTAINERS.items()},
}


def check(ctx):
    found = base.Findings(CHECK)
    nodes = list(ctx.service_map.nodes)
    # {command: {node name: parsed view | str (why none) | Exception (unreachable)}}
    per_command = {cmd: base.node_views(outputs, _PARSE[cmd][1], cmd.split()[0])
                   for cmd, outputs in _gather(ctx, nodes).items()}
    for node in nodes:
        views, problem = {"processes": set(), "systemd": {}, "docker": {}, "podman": {}}, None
        for cmd, by_node in per_command.items():
            view = by_node.get(node.name)
            if isinstance(view, (Exception, str)):
                problem = view
                break
            if view is not None:
                views[_PARSE[cmd][0]] = view
        for service in node.services:
            component = _component(service, node)
            if isinstance(problem, Exception):
                found.unreachable(component, problem)
            elif problem is not None:
                found.error(component, problem)
            else:
                _judge(found, node, service, views, component)
    return found.results()


def _judge(found, node, service, views, component):
    state = node.agent_states.get(service.name)
    if state is not None and not state.ok:
        found.fail(component, "%s: %s" % (component, state))
    alive, how = _alive(service, views)
    closed = [str(p) for p in service.ports if not _port_listening(node, p, views["listeners"])]
    closed += ["%s:%d" % (a, p) for a, p in service.listen
               if not _listen_ok(a, p, views["listeners"])]
    if closed:
        found.fail(component, "%s: port%s %s not listening on %s (%s)" % (
            component, "s" if len(closed) > 1 else "", ", ".join(closed), node.name, how))
    elif not alive:
        found.fail(component, "%s: %s on %s" % (component, how, node.name))
    else:
        found.ok(component)
