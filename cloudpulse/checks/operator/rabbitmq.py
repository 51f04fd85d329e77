"""RabbitMQ: `rabbitmqctl cluster_status` on every RabbitMQ node, each node's view
cross-checked with its peers': nodes not running, network partitions, resource alarms.

A node is blamed as not running when most views say so (its own view counts, and a node
whose app is stopped says so itself); in a partition the nodes cut off from most others
are blamed, not the ones that merely lost sight of them.
"""

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers

CHECK = "rabbitmq"
SERVICE = "rabbitmq"


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
    return base.node_views(out, parsers.parse_rabbit_cluster_status,
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
    statuses = {n: v for n, v in views.items() if isinstance(v, parsers.RabbitClusterStatus)}
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

