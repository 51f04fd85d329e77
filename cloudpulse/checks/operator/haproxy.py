"""HAProxy: `show stat` on the stats socket of every HAProxy node (frontends, backends and
servers DOWN), then every backend server probed directly from here, not only through the
VIP: an OpenStack API answers its version document at / without a token, any other
server must accept a TCP connection."""

import concurrent.futures
import csv
import dataclasses
import io
import re
import socket

import requests

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import servicemap
from cloudpulse.checks import runner

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
        if not rec.get("pxname"):
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


def probe_server(address, timeout):
    """None when the server answers directly, else why not."""
    host, _, port = address.rpartition(":")
    try:
        if int(port) in API_PORTS:
            url = "http://%s/" % address
            resp = requests.get(url, timeout=timeout, allow_redirects=False)
            if resp.status_code >= 500:
                return "direct GET %s: HTTP %s" % (url, resp.status_code)
            return None
        with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout):
            return None
    except requests.ConnectionError as exc:
        # urllib3 nests the socket error in a long repr: keep "[Errno 111] Connection refused"
        errno = re.search(r"\[Errno -?\d+\] ([^'\"()]+)", str(exc))
        return "direct GET http://%s/: cannot connect: %s" % (
            address, errno.group(1).strip() if errno else runner.describe_error(exc, timeout))
    except requests.RequestException as exc:
        return "direct GET http://%s/: %s" % (address, runner.describe_error(exc, timeout))
    except OSError as exc:
        return "direct TCP connect to %s: %s" % (address, exc.strerror or exc)


def evaluate(nodes, views, direct):
    """`direct`: {address: None or why it failed} from probe_server."""
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
                why = direct.get(row.address)
                if why:
                    found.fail(key, why)
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
    addresses = probe_addresses(views)
    direct = {}
    if addresses:
        workers = max(1, min(ctx.settings.max_parallel, len(addresses)))
        with concurrent.futures.ThreadPoolExecutor(workers, "cpulse-haproxy") as pool:
            direct = dict(zip(addresses, pool.map(
                lambda a: probe_server(a, ctx.api_timeout), addresses)))
    return evaluate(nodes, views, direct).results()
