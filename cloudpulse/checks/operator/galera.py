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
    """`mysql -N -B -e "SHOW STATUS LIKE 'wsrep%'; SHOW VARIABLES LIKE 'wsrep_node%'"`:
    {variable: value}, status and the node's own wsrep_node_* variables together."""
    status = {}
    for line in text.splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            status[key.strip()] = value.strip()
    if not status:
        raise parsers.ParseError("SHOW STATUS LIKE 'wsrep%': no wsrep variables (wsrep off?)")
    return status


def _host(address):
    """"198.18.10.11:3306" -> "198.18.10.11"; "[fd00::1]:3306" -> "fd00::1"; "db1" -> "db1"."""
    address = address.strip()
    if address.startswith("["):
        return address[1:].split("]", 1)[0]
    if address.count(":") == 1:
        return address.rsplit(":", 1)[0]
    return address


def wsrep_member_addresses(status):
    """The members' hosts, from wsrep_incoming_addresses ("ip:port,ip:port")."""
    out = []
    for item in (status.get("wsrep_incoming_addresses") or "").split(","):
        item = item.strip()
        if item and item != "AUTO":
            out.append(_host(item))
    return out


_OWN_NAMES = ("wsrep_node_name", "wsrep_node_address", "wsrep_node_incoming_address")


def identities(node, own):
    """Every name a member list may use for this node: the map's address, name and host
    name, and, from the node's own view, its wsrep_node_name, _address and
    _incoming_address (a cluster replicating on a network of its own, or a map that
    names nodes by host name, lists members by other names than the map's)."""
    names = {node.address, node.name, node.hostname}
    if isinstance(own, dict):
        names.update(_host(own[v]) for v in _OWN_NAMES if own.get(v) not in (None, "", "AUTO"))
    names.discard(None)
    names.discard("")
    return names | {n.split(".", 1)[0] for n in names if not n[:1].isdigit()}


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
    known = {node.name: identities(node, views.get(node.name)) for node in nodes}
    unmatched = sorted(members - set().union(*known.values())) if known else []

    unidentified = []   # nodes not in the member list, while some members go unnamed

    def member_name(address):
        return next((n for n, ids in known.items() if address in ids), address)

    for node in nodes:
        comp = component(node)
        own = views.get(node.name)
        problems = None
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
        # A node whose own view is Primary and Synced is a member, whatever name the
        # member list gives it; any other node must be found in the member list.
        if members and problems != [] and not known[node.name] & members:
            if unmatched:
                unidentified.append(node.name)   # it may go by one of those names
            else:
                found.fail(comp, "galera@%s not in the Primary component (cluster_size %s "
                           "of %d, members %s, seen from %s)" % (
                               node.name, "/".join(map(str, sizes)), expected,
                               ", ".join(sorted(map(member_name, members))),
                               ", ".join(sorted(primary))))
        found.ok(comp)
    if unidentified and sizes and sizes[0] < expected:
        found.fail("galera", "cluster_size %s of %d: %s not found among the members; member "
                   "addresses matching no node of the map: %s" % (
                       "/".join(map(str, sizes)), expected, ", ".join(unidentified),
                       ", ".join(unmatched)))
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
