"""Pacemaker: the cluster state from every pacemaker node (`crm_mon -1 --output-as=xml`,
falling back to `crm_mon -1 -X`, `pcs status`, `crm status`): quorum, offline or unclean
nodes, resources stopped or failed, failed actions.  A node is blamed as offline when
most views say so; a node in a partition without quorum blames itself.  Skipped on nodes
where no pacemaker tool is installed."""

import dataclasses
import re
import typing
import xml.etree.ElementTree as ET

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers
from cloudpulse import fanout

CHECK = "pacemaker"
SERVICE = "pacemaker"

class NotInstalled(str):
    """A node's answer when none of the pacemaker tools exists there."""


# -- Pacemaker --------------------------------------------------------------------------------

@dataclasses.dataclass
class PacemakerStatus:
    connected: bool = True
    dc: typing.Optional[str] = None
    quorum: typing.Optional[bool] = None
    online: typing.List[str] = dataclasses.field(default_factory=list)
    offline: typing.List[str] = dataclasses.field(default_factory=list)
    unclean: typing.List[str] = dataclasses.field(default_factory=list)
    stopped: typing.List[str] = dataclasses.field(default_factory=list)   # resource ids
    failed: typing.List[typing.Tuple[str, str]] = dataclasses.field(default_factory=list)
    failed_actions: typing.List[typing.Tuple[str, str, str]] = dataclasses.field(
        default_factory=list)   # (resource, node, what)
    error: str = ""


def parse_crm_mon_xml(text):
    """`crm_mon -1 --output-as=xml` (2.1+) or `crm_mon -1 -X` (older): the same tree.
    A not-connected pacemaker gives <pacemaker-result><status code="102" .../> or an
    empty <crm_mon/>."""
    try:
        root = ET.fromstring(text.strip())
    except ET.ParseError as exc:
        raise parsers.ParseError("crm_mon XML: %s" % exc) from None
    status_el = root.find("status")
    if root.tag == "pacemaker-result" and status_el is not None \
            and status_el.get("code") not in (None, "0"):
        errors = [e.text for e in status_el.iter("error") if e.text]
        return PacemakerStatus(connected=False, error="; ".join(
            [status_el.get("message", "")] + errors).strip("; "))
    mon = root if root.tag == "crm_mon" else root
    dc = mon.find("summary/current_dc")
    if dc is None and mon.find("nodes") is None:
        return PacemakerStatus(connected=False, error="crm_mon returned no cluster state")
    st = PacemakerStatus()
    if dc is not None and dc.get("present", "true") == "true":
        st.dc = dc.get("name")
        st.quorum = dc.get("with_quorum") == "true"
    elif dc is not None:
        # <current_dc present="false"/>: no DC elected, what the text prints as
        # "Current DC: NONE"; nothing is managed, as without quorum.
        st.quorum = False
    for node in mon.findall("nodes/node"):
        name = node.get("name")
        if node.get("unclean") == "true":
            st.unclean.append(name)
        if node.get("online") == "true":
            st.online.append(name)
        else:
            st.offline.append(name)
    for res in mon.iter("resource"):
        if res.get("failed") == "true":
            where = [n.get("name") for n in res.findall("node")] or [""]
            st.failed.extend((res.get("id"), n) for n in where)
    for top in mon.findall("resources/*"):
        st.stopped.extend(_stopped_resources(top))
    for f in mon.findall("failures/failure"):
        op_key = f.get("op_key") or ""
        st.failed_actions.append((_resource_of_op(op_key, f.get("task")), f.get("node") or "",
                                  "%s returned '%s'" % (_op_name(op_key, f),
                                                        f.get("exitstatus") or f.get("exitcode"))))
    st.stopped = sorted(set(st.stopped))
    return st


def _wanted_stopped(res):
    return (res.get("role") == "Stopped" and res.get("managed") != "false"
            and (res.get("target_role") or "").lower() != "stopped")


def _stopped_resources(element):
    """Resources that should run and run nowhere.  A clone instance stopped on an
    offline node is not one: a clone counts only when none of its instances runs, and
    so does a bundle (TripleO's Galera, RabbitMQ and HAProxy) when none of its replicas
    runs."""
    if element.tag == "resource":
        return [element.get("id")] if _wanted_stopped(element) else []
    if element.tag in ("clone", "bundle"):
        instances = element.findall(".//resource")
        if instances and all(_wanted_stopped(r) for r in instances) \
                and element.get("disabled") != "true" and element.get("managed") != "false":
            return [element.get("id")]
        return []
    if element.tag == "group":
        return [rid for r in element.findall("resource") for rid in _stopped_resources(r)]
    return []


def _resource_of_op(op_key, task):
    # "vip_monitor_5000" -> "vip"; "broken-svc_start_0" -> "broken-svc"
    m = re.match(r"(.+?)_(start|stop|monitor|promote|demote|notify|migrate_to|migrate_from)"
                 r"_\d+$", op_key)
    return m.group(1) if m else op_key


def _op_name(op_key, failure):
    m = re.match(r".+?_(\w+?)_(\d+)$", op_key)
    if not m:
        return op_key
    interval = int(m.group(2))
    return "%s%s" % (m.group(1), " (every %ss)" % (interval // 1000) if interval else "")


_NODE_LIST = re.compile(r"^\s*\*?\s*(Online|OFFLINE|GuestOnline|RemoteOnline|RemoteOFFLINE)"
                        r":\s*\[\s*(.*?)\s*\]")
# One node per line (crm_mon --show-detail, --group-by-node, pacemaker 2.1+):
# "* Node cluster01 (1): online, feature set 3.15.1", "* GuestNode httpd-bundle-0@cluster02:
# OFFLINE", "* Node node3: UNCLEAN (offline)", "* Node node2: standby"
_NODE_LINE = re.compile(r"^\s*\*?\s*(Node|GuestNode|RemoteNode) (\S+?)(?: \(\d+\))?:\s+(\w+)")
_RESOURCES = re.compile(r"^(Active Resources|Inactive Resources|Full [Ll]ist of [Rr]esources):")
# "Clone Set: ping-clone [ping] (promotable):", "Resource Group: g1 (disabled):",
# "Container bundle set: httpd-bundle [pcmk:http]:", 2.0: "Master/Slave Set: m [galera]",
# "Docker container set: galera-bundle [...]", a bundle's "Replica[0]"
_COLLECTION = re.compile(r"^(Clone Set|Master/Slave Set|Resource Group|Container bundle set|"
                         r"Docker container set|Podman container set|Bundle set|"
                         r"Replica)(?::\s*(\S+)|\[\d+\])(.*)$")
# "vip\t(ocf:heartbeat:IPaddr2):\t Started node1", a bundle replica "httpd-bundle-0
# (192.168.122.131)\t(ocf:heartbeat:apache):\t Stopped", brief "1/2\t(agent):\tActive n"
_PRIMITIVE = re.compile(r"^(\S+)(?: \([^)]*\))?\s+\(([^)]*)\):\s+(\S+)\s*(.*)$")
# a clone's summary: "Started: [ node1 node2 ]", "Stopped (disabled): [ node3 ]"
_SUMMARY = re.compile(r"^(\w+)(?: \(([^)]*)\))?:\s*\[(.*)\]")
_NOT_WANTED = ("disabled", "unmanaged", "maintenance")


def _flags(text):
    return " ".join(re.findall(r"\(([^)]*)\)", text or "")).lower()


class _Item:
    """One line of a text resource list and what is nested under it."""

    def __init__(self, indent, kind, rid="", role="", where="", flags=""):
        self.indent, self.kind, self.rid = indent, kind, rid
        self.role, self.where, self.flags = role, where, flags
        self.children = []

    def leaves(self):
        if self.kind in ("primitive", "summary"):
            return [self]
        return [leaf for c in self.children for leaf in c.leaves()]

    def unwanted(self):
        return any(f in self.flags for f in _NOT_WANTED)


def _text_resources(lines):
    """The resource list of the text outputs as a tree, by indentation."""
    root = _Item(-1, "root")
    stack = [root]
    for line in lines:
        body = line.lstrip(" \t")
        indent = len(line) - len(body)
        body = re.sub(r"^\*\s*", "", body).rstrip()
        if not body:
            continue
        cm, pm, sm = _COLLECTION.match(body), _PRIMITIVE.match(body), _SUMMARY.match(body)
        if cm:
            item = _Item(indent, cm.group(1), (cm.group(2) or "").rstrip(":"),
                         flags=_flags(cm.group(3)))
        elif sm and not pm:
            item = _Item(indent, "summary", role=sm.group(1), where=sm.group(3).strip(),
                         flags=(sm.group(2) or "").lower())
        elif pm:
            rest = pm.group(4)
            item = _Item(indent, "primitive", pm.group(1), pm.group(3),
                         re.sub(r"\(.*", "", rest).strip(), _flags(rest))
        else:
            continue
        while stack[-1].indent >= indent:
            stack.pop()
        stack[-1].children.append(item)
        stack.append(item)
    return root


def _text_wanted_stopped(leaf, inherited):
    return leaf.role == "Stopped" and not leaf.unwanted() and not inherited


def _text_verdicts(item, st, inherited=False):
    """Stopped and FAILED resources of a text resource tree, by the XML path's rules."""
    inherited = inherited or item.unwanted()
    if item.kind == "primitive":
        if _text_wanted_stopped(item, inherited):
            st.stopped.append(item.rid)
        if item.role == "FAILED":
            st.failed.append((item.rid, item.where.split()[0] if item.where else ""))
        return
    if item.kind in ("Clone Set", "Master/Slave Set", "Container bundle set",
                     "Docker container set", "Podman container set", "Bundle set"):
        leaves = item.leaves()
        if leaves and all(_text_wanted_stopped(leaf, inherited) for leaf in leaves):
            st.stopped.append(item.rid)
        for leaf in leaves:
            if leaf.kind == "primitive" and leaf.role == "FAILED":
                st.failed.append((leaf.rid, leaf.where.split()[0] if leaf.where else ""))
        return
    for child in item.children:   # root, groups
        _text_verdicts(child, st, inherited)


def _guest(name):
    return name.split("@", 1)[0]   # GuestOnline: [ httpd-bundle-0@cluster01 ]


def parse_crm_mon_text(text):
    """`pcs status`, `crm status` or `crm_mon -1` text, pacemaker 2.0 and 2.1 wording."""
    text = parsers.strip_ansi(text)
    if "Current DC" not in text and "Node List" not in text and "Online:" not in text:
        raise parsers.ParseError("pacemaker status text: no 'Current DC' nor node list")
    st = PacemakerStatus()
    m = re.search(r"Current DC:\s*(\S+).*?partition (with|WITHOUT) quorum", text)
    if m:
        st.dc, st.quorum = m.group(1), m.group(2) == "with"
    elif re.search(r"Current DC:\s*NONE", text):
        st.quorum = False
    in_failed = in_resources = False
    resource_lines = []
    for line in text.splitlines():
        if line.strip() and not line.startswith((" ", "\t", "*")):
            in_failed = in_resources = False
        if _RESOURCES.match(line):
            in_resources = True
            continue
        if in_resources:
            resource_lines.append(line)
            continue
        nm = _NODE_LIST.match(line)
        if nm:
            names = [_guest(n) for n in nm.group(2).split()]
            (st.online if "Online" in nm.group(1) else st.offline).extend(names)
            continue
        um = re.match(r"^\s*\*?\s*Node (\S+?):\s*UNCLEAN", line)
        if um:
            st.unclean.append(um.group(1))
            st.offline.append(um.group(1))
            continue
        dm = _NODE_LINE.match(line)
        if dm:
            name, state = _guest(dm.group(2)), dm.group(3)
            if state == "OFFLINE":
                st.offline.append(name)
            elif state in ("online", "standby", "maintenance"):
                st.online.append(name)
            continue
        if re.match(r"^\s*Failed (Resource )?Actions:", line):
            in_failed = True
            continue
        if in_failed:
            # 2.1: "* vip 5s-interval monitor on node1 returned 'not running' at ..."
            fm = re.match(r"^\s*\*\s*(\S+) (.+?) on (\S+) returned '([^']*)'", line)
            # 2.0: "* galera_monitor_10000 on node2 'not running' (7): call=42, ..."
            om = re.match(r"^\s*\*\s*(\S+) on (\S+) '([^']*)' \((\d+)\)", line)
            if fm:
                st.failed_actions.append((fm.group(1), fm.group(3),
                                          "%s returned '%s'" % (fm.group(2), fm.group(4))))
            elif om:
                st.failed_actions.append((_resource_of_op(om.group(1), None), om.group(2),
                                          "%s returned '%s'" % (_op_name(om.group(1), None),
                                                                om.group(3))))
            continue
    _text_verdicts(_text_resources(resource_lines), st)
    st.online = list(dict.fromkeys(st.online))
    st.offline = list(dict.fromkeys(st.offline))
    st.stopped = sorted(set(st.stopped))
    return st


# (command, parser), newest first
_ATTEMPTS = [(commands.CRM_MON_XML, parse_crm_mon_xml),
             (commands.CRM_MON_XML_OLD, parse_crm_mon_xml),
             (commands.PCS_STATUS, parse_crm_mon_text),
             (commands.CRM_STATUS, parse_crm_mon_text)]



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
                return PacemakerStatus(connected=False, error=res.first_error_line)
            continue
    if last is not None and last.exit_status == commands.COMMAND_NOT_FOUND:
        return NotInstalled("no crm_mon, pcs or crm on %s" % node.name)
    return "pacemaker status unreadable on %s: %s" % (
        node.name, last.first_error_line if last else "no output")


def gather(ctx, nodes):
    """{node name: PacemakerStatus | NotInstalled | str | Exception}."""
    return fanout.fan_out_map(lambda n: _read_node(ctx, n), nodes, key=lambda n: n.name,
                              max_workers=ctx.settings.max_parallel, name="cpulse-pcmk")


def evaluate(smap, nodes, views):
    found = base.Findings(CHECK)
    states = {n: v for n, v in views.items()
              if isinstance(v, PacemakerStatus) and v.connected}

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
            found.fail(comp, "%s in a partition WITHOUT quorum (%sonline there: %s)"
                       % (node.name, "" if own.dc else "no DC; ",
                          ", ".join(map(map_name, own.online)) or "none"))
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
