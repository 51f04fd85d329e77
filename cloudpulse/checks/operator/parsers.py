"""Parsers of what the operator commands print, pure functions over text.

Every parser takes the raw stdout of one fixed command (see `commands`) and returns plain
data; malformed input raises `ParseError` naming what was expected.  Older formats are
kept: RabbitMQ before 3.8 prints Erlang terms instead of JSON, pacemaker 2.0 says
Master/Slave where 2.1 says Promoted/Unpromoted.
"""

import csv
import dataclasses
import io
import json
import re
import typing
import xml.etree.ElementTree as ET


class ParseError(ValueError):
    """The output is not in any format this parser knows."""


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def strip_ansi(text):
    return _ANSI.sub("", text or "")


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
            raise ParseError("ss: no port in local address %r" % local)
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
    text = strip_ansi(text).strip()
    if text.startswith("{"):
        return _rabbit_from_json(text)
    if re.search(r"\[\s*\{nodes,", text):
        return _rabbit_from_erlang(text)
    if "Running Nodes" in text:
        return _rabbit_from_text(text)
    raise ParseError("rabbitmqctl cluster_status: neither JSON, Erlang terms nor text")


def _rabbit_from_json(text):
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ParseError("rabbitmqctl cluster_status: bad JSON: %s" % exc) from None
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
    raise ParseError("rabbitmqctl cluster_status: unbalanced %s" % key)


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
        raise ParseError("rabbitmqctl cluster_status: no running_nodes in Erlang terms")
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


# -- Galera: SHOW STATUS LIKE 'wsrep%' ------------------------------------------------------

def parse_wsrep_status(text):
    """`mysql -N -B -e "SHOW STATUS LIKE 'wsrep%'"`: {variable: value}."""
    status = {}
    for line in text.splitlines():
        if "\t" in line:
            key, value = line.split("\t", 1)
            status[key.strip()] = value.strip()
    if not status:
        raise ParseError("SHOW STATUS LIKE 'wsrep%': no wsrep variables (wsrep off?)")
    return status


def wsrep_member_addresses(status):
    """IP addresses of the members, from wsrep_incoming_addresses ("ip:port,ip:port")."""
    out = []
    for item in (status.get("wsrep_incoming_addresses") or "").split(","):
        item = item.strip()
        if item and item != "AUTO":
            out.append(item.rsplit(":", 1)[0].strip("[]"))
    return out


# -- HAProxy: show stat -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HAProxyRow:
    proxy: str             # pxname: frontend, backend or listen section
    server: str            # svname: FRONTEND, BACKEND or the server's name
    status: str            # UP, DOWN, OPEN, MAINT, no check, UP 1/2...
    check_status: str      # L4OK, L4CON, L7STS...
    check_desc: str        # "Connection refused"
    address: str           # "198.18.10.12:5000" (servers, HAProxy >= 1.9)

    @property
    def is_server(self):
        return self.server not in ("FRONTEND", "BACKEND")


def parse_haproxy_stat(text):
    """`show stat` on the stats socket: a CSV whose header line starts with '# '."""
    text = text.lstrip()
    if not text.startswith("# pxname"):
        raise ParseError("show stat: no '# pxname,...' header")
    reader = csv.DictReader(io.StringIO(text[2:]))
    rows = []
    for rec in reader:
        if not rec.get("pxname"):
            continue
        rows.append(HAProxyRow(
            proxy=rec["pxname"], server=rec.get("svname") or "",
            status=(rec.get("status") or "").strip(),
            check_status=(rec.get("check_status") or "").strip("* ").strip(),
            check_desc=(rec.get("check_desc") or rec.get("last_chk") or "").strip(),
            address=(rec.get("addr") or "").strip()))
    return rows


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
        raise ParseError("crm_mon XML: %s" % exc) from None
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
    offline node is not one: a clone counts only when none of its instances runs."""
    if element.tag == "resource":
        return [element.get("id")] if _wanted_stopped(element) else []
    if element.tag == "clone":
        instances = element.findall(".//resource")
        if instances and all(_wanted_stopped(r) for r in instances) \
                and element.get("disabled") != "true":
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


def parse_crm_mon_text(text):
    """`pcs status`, `crm status` or `crm_mon -1` text, pacemaker 2.0 and 2.1 wording."""
    text = strip_ansi(text)
    if "Current DC" not in text and "Node List" not in text and "Online:" not in text:
        raise ParseError("pacemaker status text: no 'Current DC' nor node list")
    st = PacemakerStatus()
    m = re.search(r"Current DC:\s*(\S+).*?partition (with|WITHOUT) quorum", text)
    if m:
        st.dc, st.quorum = m.group(1), m.group(2) == "with"
    elif re.search(r"Current DC:\s*NONE", text):
        st.quorum = False
    in_failed = False
    for line in text.splitlines():
        nm = _NODE_LIST.match(line)
        if nm:
            names = nm.group(2).split()
            (st.online if "Online" in nm.group(1) else st.offline).extend(names)
            continue
        um = re.match(r"^\s*\*?\s*Node (\S+?):\s*UNCLEAN", line)
        if um:
            st.unclean.append(um.group(1))
            st.offline.append(um.group(1))
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
            elif line.strip() and not line.startswith((" ", "\t", "*")):
                in_failed = False
            continue
        sm = re.match(r"^\s*\*?\s*(\S+)\s+\(\S+\):\s+Stopped", line)
        if sm:
            st.stopped.append(sm.group(1))
        fm = re.match(r"^\s*\*?\s*(\S+)\s+\(\S+\):\s+FAILED (\S+)", line)
        if fm:
            st.failed.append((fm.group(1), fm.group(2)))
    st.stopped = sorted(set(st.stopped))
    return st
