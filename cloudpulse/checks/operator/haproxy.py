"""HAProxy: `show stat` on the stats socket of every HAProxy node (frontends, backends and
servers DOWN), then every backend server probed outside HAProxy, not only through the
VIP: an OpenStack API answers its version document at / without a token (over https
when it speaks TLS, verified with the configured CA), any other server must accept a TCP
connection.  A server the checker cannot reach is probed from the HAProxy node over SSH
([operator] haproxy_backend_probes)."""

import csv
import dataclasses
import io
import re
import ssl
import typing

import requests

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import servicemap
from cloudpulse.checks import runner
from cloudpulse import fanout
from cloudpulse import reach

CHECK = "haproxy"
SERVICE = "haproxy"

# Ports whose servers are OpenStack HTTP APIs (the role defaults).
API_PORTS = frozenset(p for name in ("keystone", "glance", "nova", "neutron", "cinder",
                                     "placement")
                      for p in servicemap.SERVICE_DEFAULTS[name].ports)


def server_component(proxy, server):
    return "haproxy/%s/%s" % (proxy, server)


# -- HAProxy: show stat -----------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class HAProxyRow:
    proxy: str             # pxname: frontend, backend or listen section
    server: str            # svname: FRONTEND, BACKEND or the server's name
    status: str            # UP, DOWN, OPEN, MAINT, no check, UP 1/2...
    check_status: str      # L4OK, L4CON, L7STS...
    check_desc: str        # "Connection refused"
    address: str           # "198.18.10.12:5000" (servers, HAProxy >= 1.9); "" if not TCP
    socket: bool = False   # a server on a unix socket (addr "unix"): no TCP address

    @property
    def is_server(self):
        return self.server not in ("FRONTEND", "BACKEND")


def parse_haproxy_stat(text):
    """`show stat` on the stats socket: a CSV whose header line starts with '# '."""
    text = text.lstrip()
    if not text.startswith("# pxname"):
        raise parsers.ParseError("show stat: no '# pxname,...' header")
    reader = csv.DictReader(io.StringIO(text[2:]))
    rows = []
    for rec in reader:
        # type 3 is a listener (a frontend's bind, with `option socket-stats`): its
        # frontend's row already says whether it is OPEN.
        if not rec.get("pxname") or (rec.get("type") or "").strip() == "3":
            continue
        address = (rec.get("addr") or "").strip()
        # "unix" (a unix socket server) or anything else without a port: not probed
        socket_server = bool(address) and not re.search(r".:\d+$", address)
        rows.append(HAProxyRow(
            proxy=rec["pxname"], server=rec.get("svname") or "",
            status=(rec.get("status") or "").strip(),
            check_status=(rec.get("check_status") or "").strip("* ").strip(),
            check_desc=(rec.get("check_desc") or rec.get("last_chk") or "").strip(),
            address="" if socket_server else address, socket=socket_server))
    return rows


def gather(ctx, nodes):
    """{node name: [HAProxyRow] | str (its failure) | Exception}."""
    return base.node_views(base.run_on(ctx, nodes, commands.HAPROXY_SHOW_STAT, SERVICE),
                           parse_haproxy_stat, "haproxy stats socket",
                           empty_is_error=True)


@dataclasses.dataclass(frozen=True)
class ServerProbe:
    """One backend server probed outside HAProxy.  `reached` None: no connection could be
    made from where it was probed; True: it answered as it should; False: it answered,
    wrongly (HTTP 5xx, an untrusted certificate).  `detail` says what was seen."""
    reached: typing.Optional[bool]
    detail: str = ""

    @property
    def failed(self):
        return self.reached is not True


def _speaks_tls(sock, host):
    """Whether the server on this fresh connection completes a TLS handshake (no
    verification here: the GET that follows verifies with the configured CA)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    try:
        with context.wrap_socket(sock, server_hostname=host):
            return True
    except (ssl.SSLError, OSError):
        return False


def probe_server(address, timeout, verify=True):
    """The server at address probed from here: an OpenStack API answers its version
    document at / without a token, over https when it speaks TLS (verified with `verify`,
    a CA bundle or True for the system's); any other server must accept a TCP connection."""
    host, _, port = address.rpartition(":")
    host = host.strip("[]")
    outcome, why, sock = reach.connect(host, port, timeout)
    if outcome == reach.TCP.REFUSED:
        # The host answered: nothing listens there (the server is down).
        return ServerProbe(False, "direct connect to %s: connection refused" % address)
    if outcome == reach.TCP.SILENT:
        return ServerProbe(None, "not reachable from the checker: %s" % why)
    if int(port) not in API_PORTS:
        sock.close()
        return ServerProbe(True)
    scheme = "https" if _speaks_tls(sock, host) else "http"
    sock.close()
    url = "%s://%s/" % (scheme, address)
    try:
        resp = requests.get(url, timeout=timeout, allow_redirects=False, verify=verify)
    except requests.exceptions.SSLError as exc:
        return ServerProbe(False, "direct GET %s: TLS certificate not trusted (%s)"
                           % (url, _ssl_reason(exc)))
    except requests.RequestException as exc:
        return ServerProbe(False, "direct GET %s: %s" % (url, runner.describe_error(exc, timeout)))
    if resp.status_code >= 500:
        return ServerProbe(False, "direct GET %s: HTTP %s" % (url, resp.status_code))
    return ServerProbe(True)


def _ssl_reason(exc):
    match = re.search(r"certificate verify failed: ([^(')]+)", str(exc))
    return match.group(1).strip() if match else "TLS error"


def probe_from_node(ctx, node, address):
    """The server probed from the HAProxy node over SSH (one fixed command; the address
    on stdin).  Only HTTP APIs: a TCP server is not probed from there."""
    port = int(address.rpartition(":")[2])
    if port not in API_PORTS:
        return ServerProbe(True, "not probed from the HAProxy node (a TCP server)")
    res = base.run_on(ctx, [node], commands.HTTP_PROBE_FROM_NODE, stdin=address + "\n")
    res = res[node.name]
    if isinstance(res, Exception):
        return ServerProbe(True, "not probed from %s: %s" % (node.name, res))
    if res.exit_status == commands.COMMAND_NOT_FOUND:
        return ServerProbe(True, "not probed from %s: no curl there" % node.name)
    if res.exit_status != 0:
        why = re.sub(r"0{3}$", "", res.first_error_line).strip()
        return ServerProbe(None, "from %s: %s" % (node.name, why))
    scheme, _, code = res.stdout.strip().partition(" ")
    url = "%s://%s/" % (scheme, address)
    if not code.isdigit() or int(code) >= 500:
        return ServerProbe(False, "GET %s from %s: HTTP %s" % (url, node.name, code))
    return ServerProbe(True, "answers GET %s from %s (HTTP %s)" % (url, node.name, code))


def probe_servers(ctx, nodes, views):
    """{address: ServerProbe} for every backend server, as [operator]
    haproxy_backend_probes says (base.BACKEND_PROBES)."""
    mode = ctx.backend_probes
    addresses = probe_addresses(views)
    if mode == "off" or not addresses:
        return {}
    # The HAProxy node that probes a server from inside: the first one whose stats list it.
    seen_by = {}
    for node in nodes:
        for row in views.get(node.name) if isinstance(views.get(node.name), list) else ():
            seen_by.setdefault(row.address, node)

    def probe(address):
        direct = (probe_server(address, ctx.api_timeout, ctx.tls_verify)
                  if mode in ("auto", "direct") else None)
        if direct is not None and (direct.reached is not None or mode == "direct"):
            return direct
        inside = probe_from_node(ctx, seen_by[address], address)
        if direct is None:
            return inside
        if inside.reached is True:
            return ServerProbe(True, "%s; %s" % (direct.detail, inside.detail))
        return ServerProbe(inside.reached, "%s; %s" % (direct.detail, inside.detail))

    return fanout.fan_out_map(probe, addresses, key=str, max_workers=ctx.settings.max_parallel,
                              name="cpulse-haproxy")


def evaluate(nodes, views, direct):
    """`direct`: {address: ServerProbe} from probe_servers."""
    found = base.Findings(CHECK)
    down = {}   # component -> [(haproxy node, status, check)]
    for node in nodes:
        own = views.get(node.name)
        comp = "haproxy@%s" % node.name
        if isinstance(own, Exception):
            found.unreachable(comp, own)
            continue
        if isinstance(own, str):
            found.fail(comp, own)
            continue
        found.ok(comp)
        for row in own:
            if row.server == "FRONTEND":
                key = "haproxy/%s" % row.proxy
                if row.status != "OPEN":
                    down.setdefault(key, []).append((node.name, "frontend " + row.status, ""))
                else:
                    found.ok(key)
            elif row.server == "BACKEND":
                key = "haproxy/%s" % row.proxy
                if row.status.startswith("DOWN"):
                    down.setdefault(key, []).append((node.name, "backend DOWN (no server up)",
                                                     ""))
                else:
                    found.ok(key)
            else:
                key = server_component(row.proxy, row.server)
                if row.status.startswith(("DOWN", "MAINT", "NOLB")):
                    check = ("%s: %s" % (row.check_status, row.check_desc)
                             if row.check_desc else row.check_status)
                    down.setdefault(key, []).append((node.name, row.status, check))
                elif row.socket:
                    found.ok(key, "%s not probed directly (a unix socket server)" % key)
                else:
                    found.ok(key)
                probe = direct.get(row.address)
                if isinstance(probe, Exception):   # the probe itself crashed
                    found.error(key, "probe of %s: %s" % (row.address,
                                                          runner.describe_error(probe)))
                elif probe is not None and probe.failed:
                    found.fail(key, "%s %s" % (key, probe.detail))
                elif probe is not None and probe.detail:
                    found.ok(key, probe.detail)
    for key, seen in down.items():
        status, check = seen[0][1], seen[0][2]
        found.fail(key, "%s %s%s on haproxy of %s" % (
            key, status, " (%s)" % check if check else "", ", ".join(n for n, _, _ in seen)))
    return found


def probe_addresses(views):
    """The TCP addresses of the servers to probe; unix socket servers have none."""
    return sorted({row.address for v in views.values() if isinstance(v, list)
                   for row in v if row.is_server and row.address and not row.socket})


def check(ctx):
    nodes = ctx.service_map.nodes_running(SERVICE)
    views = gather(ctx, nodes)
    return evaluate(nodes, views, probe_servers(ctx, nodes, views)).results()
