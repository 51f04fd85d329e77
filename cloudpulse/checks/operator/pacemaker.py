"""Pacemaker: the cluster state from every pacemaker node (`crm_mon -1 --output-as=xml`,
falling back to `crm_mon -1 -X`, `pcs status`, `crm status`): quorum, offline or unclean
nodes, resources stopped or failed, failed actions.  A node is blamed as offline when
most views say so; a node in a partition without quorum blames itself.  Skipped on nodes
where no pacemaker tool is installed."""

import concurrent.futures

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers

CHECK = "pacemaker"
SERVICE = "pacemaker"

# (command, parser), newest first
_ATTEMPTS = [(commands.CRM_MON_XML, parsers.parse_crm_mon_xml),
             (commands.CRM_MON_XML_OLD, parsers.parse_crm_mon_xml),
             (commands.PCS_STATUS, parsers.parse_crm_mon_text),
             (commands.CRM_STATUS, parsers.parse_crm_mon_text)]


class NotInstalled(str):
    """A node's answer when none of the pacemaker tools exists there."""


def component(node_name):
    return "pacemaker@%s" % node_name


def _usable(result):
    """Whether this command's output says something about the cluster."""
    if result.exit_status == commands.COMMAND_NOT_FOUND:
        return False
    text = (result.stdout + result.stderr).lower()
    if "unrecognized option" in text or "unknown option" in text or "invalid option" in text:
        return False
    return bool(result.stdout.strip())


def _read_node(ctx, node):
    last = None
    for command, parse in _ATTEMPTS:
        res = base.run_on(ctx, [node], command, SERVICE)[node.name]
        if isinstance(res, Exception):
            return res
        last = res
        if not _usable(res):
            continue
        try:
            return parse(res.stdout)
        except parsers.ParseError:
            if res.exit_status != 0:
                return parsers.PacemakerStatus(connected=False, error=res.first_error_line)
            continue
    if last is not None and last.exit_status == commands.COMMAND_NOT_FOUND:
        return NotInstalled("no crm_mon, pcs or crm on %s" % node.name)
    return "pacemaker status unreadable on %s: %s" % (
        node.name, last.first_error_line if last else "no output")


def gather(ctx, nodes):
    """{node name: PacemakerStatus | NotInstalled | str | Exception}."""
    if not nodes:
        return {}
    workers = max(1, min(ctx.settings.max_parallel, len(nodes)))
    with concurrent.futures.ThreadPoolExecutor(workers, "cpulse-pcmk") as pool:
        return dict(zip([n.name for n in nodes], pool.map(lambda n: _read_node(ctx, n), nodes)))


def evaluate(smap, nodes, views):
    found = base.Findings(CHECK)
    states = {n: v for n, v in views.items()
              if isinstance(v, parsers.PacemakerStatus) and v.connected}

    def map_name(pcmk_name):
        node = smap.node_named(pcmk_name)
        return node.name if node else pcmk_name

    for node in nodes:
        comp = component(node.name)
        own = views.get(node.name)
        if isinstance(own, NotInstalled):
            found.skip(comp, "pacemaker not installed on %s (%s)" % (node.name, own))
            continue
        if isinstance(own, Exception):
            found.unreachable(comp, own)
        elif isinstance(own, str):
            found.error(comp, own)
        elif not own.connected:
            found.fail(comp, "pacemaker not running on %s (crm_mon: %s)"
                       % (node.name, own.error or "not connected"))
        elif own.quorum is False:
            found.fail(comp, "%s in a partition WITHOUT quorum (online there: %s)"
                       % (node.name, ", ".join(map(map_name, own.online)) or "none"))
        offline_from = [n for n, v in states.items()
                        if node.name in map(map_name, v.offline)]
        online_from = [n for n, v in states.items() if node.name in map(map_name, v.online)]
        if offline_from and len(offline_from) >= len(online_from):
            unclean = any(node.name in map(map_name, states[n].unclean) for n in offline_from)
            dcs = sorted({states[n].dc for n in offline_from if states[n].dc})
            found.fail(comp, "%s %s (seen from %s; DC %s)" % (
                node.name, "UNCLEAN (offline)" if unclean else "OFFLINE",
                ", ".join(offline_from), ", ".join(dcs) or "none"))
        found.ok(comp)
    # Resources as the quorate partition sees them: the minority stops everything.
    quorate = {n: v for n, v in states.items() if v.quorum}
    for v in quorate.values():
        for rid in v.stopped:
            found.fail("pacemaker/%s" % rid, "resource %s is stopped (runs nowhere)" % rid)
        for rid, where in v.failed:
            found.fail("pacemaker/%s@%s" % (rid, map_name(where)),
                       "resource %s FAILED on %s" % (rid, map_name(where)))
        for rid, where, what in v.failed_actions:
            found.fail("pacemaker/%s@%s" % (rid, map_name(where)),
                       "failed action: %s %s on %s (clear with crm_resource --cleanup "
                       "--resource %s)" % (rid, what, map_name(where), rid))
    return found


def check(ctx):
    nodes = ctx.service_map.nodes_running(SERVICE)
    return evaluate(ctx.service_map, nodes, gather(ctx, nodes)).results()
