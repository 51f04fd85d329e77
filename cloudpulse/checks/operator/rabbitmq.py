"""RabbitMQ: `rabbitmqctl cluster_status` on every RabbitMQ node, each node's view
cross-checked with its peers': nodes not running, network partitions, resource alarms.

A node is blamed as not running when most views say so (its own view counts, and a node
whose app is stopped says so itself); in a partition the nodes cut off from most others
are blamed, not the ones that merely lost sight of them.
"""

import dataclasses
import json
import re
import typing

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers

CHECK = "rabbitmq"
SERVICE = "rabbitmq"


# -- RabbitMQ cluster_status ------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class RabbitClusterStatus:
    disk_nodes: typing.Tuple[str, ...]
    ram_nodes: typing.Tuple[str, ...]
    running_nodes: typing.Tuple[str, ...]
    partitions: typing.Dict[str, typing.Tuple[str, ...]]   # node -> nodes it cannot reach
    alarms: typing.Tuple[typing.Tuple[str, str], ...]       # (node, resource)

    @property
    def members(self):
        return tuple(self.disk_nodes) + tuple(self.ram_nodes)


def parse_rabbit_cluster_status(text):
    """`rabbitmqctl cluster_status --formatter json` (3.8+), or the Erlang terms that
    `rabbitmqctl cluster_status` prints before 3.8, or the 3.8+ human text format."""
    text = parsers.strip_ansi(text).strip()
    if text.startswith("{"):
        return _rabbit_from_json(text)
    if re.search(r"\[\s*\{nodes,", text):
        return _rabbit_from_erlang(text)
    if "Running Nodes" in text:
        return _rabbit_from_text(text)
    raise parsers.ParseError("rabbitmqctl cluster_status: neither JSON, Erlang terms nor text")


def _rabbit_from_json(text):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise parsers.ParseError("rabbitmqctl cluster_status: bad JSON: %s" % exc) from None
    alarms = []
    for alarm in data.get("alarms") or []:
        if isinstance(alarm, dict):
            alarms.append((alarm.get("node", "?"),
                           alarm.get("resource") or alarm.get("type", "?")))
    return RabbitClusterStatus(
        disk_nodes=tuple(data.get("disk_nodes") or ()),
        ram_nodes=tuple(data.get("ram_nodes") or ()),
        running_nodes=tuple(data.get("running_nodes") or ()),
        partitions={k: tuple(v) for k, v in (data.get("partitions") or {}).items() if v},
        alarms=tuple(alarms))


_ERL_ATOM = r"'?[\w@.\-]+'?"


def _erl_section(text, key):
    """The bracketed value of {key,[...]} in Erlang terms (balanced brackets)."""
    m = re.search(r"\{%s,\s*\[" % key, text)
    if not m:
        return None
    depth, i = 0, m.end() - 1
    for j in range(i, len(text)):
        if text[j] == "[":
            depth += 1
        elif text[j] == "]":
            depth -= 1
            if depth == 0:
                return text[i + 1:j]
    raise parsers.ParseError("rabbitmqctl cluster_status: unbalanced %s" % key)


def _erl_atoms(text):
    return tuple(a.strip("'") for a in re.findall(_ERL_ATOM, text or ""))


def _erl_pairs(text):
    """[{a,[b,c]},{d,[]}] -> {a: (b, c), d: ()}."""
    return {m.group(1).strip("'"): _erl_atoms(m.group(2))
            for m in re.finditer(r"\{(%s),\s*\[([^\]]*)\]\}" % _ERL_ATOM, text or "")}


def _rabbit_from_erlang(text):
    nodes = _erl_section(text, "nodes") or ""
    disk = re.search(r"\{disc,\s*\[([^\]]*)\]\}", nodes)
    ram = re.search(r"\{ram,\s*\[([^\]]*)\]\}", nodes)
    running = _erl_section(text, "running_nodes")
    if running is None:
        raise parsers.ParseError("rabbitmqctl cluster_status: no running_nodes in Erlang terms")
    partitions = {k: v for k, v in _erl_pairs(_erl_section(text, "partitions")).items() if v}
    alarms = tuple((node, name)
                   for node, names in _erl_pairs(_erl_section(text, "alarms")).items()
                   for name in names)
    return RabbitClusterStatus(
        disk_nodes=_erl_atoms(disk.group(1)) if disk else (),
        ram_nodes=_erl_atoms(ram.group(1)) if ram else (),
        running_nodes=_erl_atoms(running), partitions=partitions, alarms=alarms)


def _text_sections(text):
    sections, current = {}, None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line.startswith((" ", "\t")) and ":" not in stripped and "@" not in stripped \
                and not stripped.startswith("("):
            current = stripped
            sections[current] = []
        elif current is not None:
            sections[current].append(stripped)
    return sections


def _rabbit_from_text(text):
    s = _text_sections(text)
    nodes = lambda name: tuple(l for l in s.get(name, []) if l != "(none)")  # noqa: E731
    partitions = {}
    for line in nodes("Network Partitions"):
        m = re.match(r"Node (\S+) cannot communicate with (.+)$", line)
        if m:
            partitions.setdefault(m.group(1), ())
            partitions[m.group(1)] += tuple(n.strip() for n in m.group(2).split(","))
    alarms = []
    for line in nodes("Alarms"):
        m = re.match(r"(\w[\w ]*?) alarm on node (\S+)", line)
        if m:
            alarms.append((m.group(2), m.group(1).strip().lower()))
    return RabbitClusterStatus(
        disk_nodes=nodes("Disk Nodes"), ram_nodes=nodes("RAM Nodes"),
        running_nodes=nodes("Running Nodes"), partitions=partitions, alarms=tuple(alarms))


def component(node):
    return "rabbitmq@%s" % node.name


def _older_cli(result):
    # rabbitmqctl before 3.8 has no --formatter option
    text = (result.stderr + result.stdout).lower()
    return result.exit_status != 0 and ("formatter" in text or "invalid option" in text
                                        or "unrecognised" in text)


def _app_stopped(result):
    return "requires the 'rabbit' app to be running" in result.stderr + result.stdout


def gather(ctx, nodes):
    """{node name: RabbitClusterStatus | str (the node's own failure) | Exception}."""
    out = base.run_on(ctx, nodes, commands.RABBIT_CLUSTER_STATUS_JSON, SERVICE)
    older = [n for n in nodes if not isinstance(out[n.name], Exception)
             and _older_cli(out[n.name])]
    out.update(base.run_on(ctx, older, commands.RABBIT_CLUSTER_STATUS, SERVICE))
    return base.node_views(out, parse_rabbit_cluster_status,
                           "rabbitmqctl cluster_status", known_failure=_app_stopped_view)


def _app_stopped_view(name, res):
    if _app_stopped(res):
        return "rabbit app not running on %s (rabbitmqctl: the 'rabbit' app is stopped)" % name
    return None


def _rabbit_name(smap, node, views):
    for v in views:
        for member in v.members:
            if smap.node_named(member) is node:
                return member
    return "rabbit@%s" % (node.hostname or node.name)


def _partition_blame(pairs):
    """Smallest set of nodes explaining every unreachable pair: greedy vertex cover,
    the node cut off from the most peers first."""
    pairs = {frozenset(p) for p in pairs if len(set(p)) == 2}
    blamed = {}
    while pairs:
        counts = {}
        for p in pairs:
            for n in p:
                counts[n] = counts.get(n, 0) + 1
        worst = max(sorted(counts), key=lambda n: counts[n])
        blamed[worst] = sorted(next(iter(p - {worst})) for p in pairs if worst in p)
        pairs = {p for p in pairs if worst not in p}
    return blamed


def evaluate(smap, nodes, views):
    found = base.Findings(CHECK)
    statuses = {n: v for n, v in views.items() if isinstance(v, RabbitClusterStatus)}
    for node in nodes:
        comp = component(node)
        own = views.get(node.name)
        name = _rabbit_name(smap, node, statuses.values())
        peers_up = [n for n, v in statuses.items() if name in v.running_nodes]
        if isinstance(own, Exception):
            if peers_up:
                found.ok(comp, "%s running as seen from %s (own view unavailable)"
                         % (name, ", ".join(peers_up)))
            else:
                found.unreachable(comp, own)
        elif isinstance(own, str):
            found.fail(comp, own)
        peers_down = [(n, v) for n, v in statuses.items() if name not in v.running_nodes]
        if peers_down and len(peers_down) + (1 if isinstance(own, str) else 0) > len(peers_up):
            seen, v = peers_down[0]
            found.fail(comp, "%s not running (running %d of %d disk nodes, seen from %s)" % (
                name, len(v.running_nodes), len(v.disk_nodes) or len(v.members),
                ", ".join(n for n, _ in peers_down)))
        found.ok(comp)
    pairs = [(a, b) for v in statuses.values() for a, bs in v.partitions.items() for b in bs]
    for rabbit_node, others in _partition_blame(pairs).items():
        node = smap.node_named(rabbit_node)
        found.fail(component(node) if node else "rabbitmq",
                   "%s partitioned from %s (network partition recorded; restart %s to "
                   "rejoin)" % (rabbit_node, ", ".join(others), rabbit_node))
    alarms = sorted({a for v in statuses.values() for a in v.alarms})
    for rabbit_node, resource in alarms:
        node = smap.node_named(rabbit_node)
        found.fail(component(node) if node else "rabbitmq",
                   "%s %s alarm (publishers blocked)" % (rabbit_node, resource))
    return found


def check(ctx):
    nodes = ctx.service_map.nodes_running(SERVICE)
    views = gather(ctx, nodes)
    return evaluate(ctx.service_map, nodes, views).results()

