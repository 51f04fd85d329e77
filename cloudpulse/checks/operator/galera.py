"""Galera: `SHOW STATUS LIKE 'wsrep%'` on every database node.  Each node must be in the
Primary component, ready, Synced, in a cluster of the expected size; a node missing from
the Primary component's members (wsrep_incoming_addresses) is blamed by its peers too.
Credentials come from the SSH user's ~/.my.cnf on the node, never from a command line."""

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers

CHECK = "galera"
SERVICE = "galera"


# -- Galera: SHOW STATUS LIKE 'wsrep%' ------------------------------------------------------

def parse_wsrep_status(text):
    """`mysql -N -B -e "SHOW STATUS LIKE 'wsrep%'"`: {variable: value}."""
    status = {}
    for line in text.splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            status[key.strip()] = value.strip()
    if not status:
        raise parsers.ParseError("SHOW STATUS LIKE 'wsrep%': no wsrep variables (wsrep off?)")
    return status


def wsrep_member_addresses(status):
    """IP addresses of the members, from wsrep_incoming_addresses ("ip:port,ip:port")."""
    out = []
    for item in (status.get("wsrep_incoming_addresses") or "").split(","):
        item = item.strip()
        if item and item != "AUTO":
            out.append(item.rsplit(":", 1)[0].strip("[]"))
    return out


def component(node):
    return "galera@%s" % node.name


def gather(ctx, nodes):
    """{node name: wsrep status dict | str (its failure) | Exception}."""
    return base.node_views(base.run_on(ctx, nodes, commands.GALERA_WSREP_STATUS, SERVICE),
                           parse_wsrep_status, "mysql")


def _own_problems(status, expected):
    problems = []
    if status.get("wsrep_cluster_status") != "Primary":
        problems.append("wsrep_cluster_status=%s" % status.get("wsrep_cluster_status"))
    if status.get("wsrep_ready") != "ON":
        problems.append("wsrep_ready=%s" % status.get("wsrep_ready"))
    if status.get("wsrep_local_state_comment") != "Synced":
        problems.append("local state %s" % status.get("wsrep_local_state_comment"))
    if status.get("wsrep_connected") == "OFF":
        problems.append("wsrep_connected=OFF")
    size = status.get("wsrep_cluster_size")
    if problems and size is not None:
        problems.append("sees %s of %d nodes" % (size, expected))
    return problems


def evaluate(smap, nodes, views):
    found = base.Findings(CHECK)
    expected = len(nodes)
    primary = {n: v for n, v in views.items()
               if isinstance(v, dict) and v.get("wsrep_cluster_status") == "Primary"}
    members = {a for v in primary.values() for a in wsrep_member_addresses(v)}
    sizes = sorted({int(v.get("wsrep_cluster_size") or 0) for v in primary.values()})
    for node in nodes:
        comp = component(node)
        own = views.get(node.name)
        if isinstance(own, Exception):
            found.unreachable(comp, own)
        elif isinstance(own, str):
            found.fail(comp, own)
        else:
            problems = _own_problems(own, expected)
            if problems:
                state = "non-Primary" if own.get("wsrep_cluster_status") != "Primary" \
                    else "not ready"
                found.fail(comp, "galera@%s %s (%s)" % (node.name, state, ", ".join(problems)))
        if members and node.address not in members:
            names = sorted(smap.node_at(a).name if smap.node_at(a) else a for a in members)
            found.fail(comp, "galera@%s not in the Primary component (cluster_size %s of %d, "
                       "members %s, seen from %s)" % (node.name, "/".join(map(str, sizes)),
                                                      expected, ", ".join(names),
                                                      ", ".join(sorted(primary))))
        found.ok(comp)
    if primary and not members and sizes and sizes[0] < expected:
        # The members' addresses are not the map's: the shortfall cannot be pinned.
        found.fail("galera", "cluster_size %d of %d (members not identified)"
                   % (sizes[0], expected))
    if not primary and any(isinstance(v, dict) for v in views.values()):
        found.fail("galera", "no node is in a Primary component: the cluster is down "
                   "(bootstrap the most advanced node)")
    return found


def check(ctx):
    nodes = ctx.service_map.nodes_running(SERVICE)
    return evaluate(ctx.service_map, nodes, gather(ctx, nodes)).results()
