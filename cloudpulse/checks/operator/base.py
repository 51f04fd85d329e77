"""What every operator check shares: the run's context, running one fixed command on
many nodes at once, and turning findings per component into CheckResults."""

import dataclasses
import time
import typing

from cloudpulse.checks.operator import commands
from cloudpulse.checks.operator import parsers
from cloudpulse.checks.operator import servicemap
from cloudpulse import fanout
from cloudpulse import ssh
from cloudpulse import results

CHECK_TYPE = results.CheckType.OPERATOR


def check_name(check):
    return "operator.%s" % check


# How HAProxy's backend servers are probed besides reading HAProxy's stats: "auto" from
# here, and from the HAProxy node over SSH where a server cannot be reached from here;
# "direct" from here only; "node" from the HAProxy node only; "off" not at all.
BACKEND_PROBES = ("auto", "direct", "node", "off")


@dataclasses.dataclass
class OperatorContext:
    """One run: the map, its SSH connections (reused by every check) and, for the
    control-plane check, an admin API connection (None: that check is skipped)."""
    service_map: servicemap.ServiceMap
    pool: ssh.SessionPool
    api_connection: typing.Any = None
    api_timeout: float = 10.0
    backend_probes: str = "auto"
    ca_file: typing.Optional[str] = None   # CA bundle for TLS backends probed from here

    @property
    def settings(self):
        return self.pool.settings

    @property
    def tls_verify(self):
        """requests' `verify` for probes from here: the configured CA bundle, else the
        cloud connection's TLS settings, else the system's CAs."""
        if self.ca_file:
            return self.ca_file
        if self.api_connection is not None:
            return self.api_connection.session.verify
        return True


def run_on(ctx, nodes, command, service=None, stdin=None):
    """{node name: CommandResult or Exception} for one fixed command on several nodes,
    in parallel (bounded by max_parallel).  With `service`, the command runs inside the
    service's container when the map says it is containerised.  `stdin` is data for the
    command (values never go through a shell's parser)."""
    def one(node):
        try:
            session = ctx.pool.session(node)
            data, cmd = stdin, command
            svc = node.service(service) if service and node.runs(service) else None
            if svc is not None and svc.manager in commands.CONTAINERS:
                cmd = commands.in_container(svc.manager, command)
                data = svc.container + "\n" + (stdin or "")
            return session.run(cmd, stdin_data=data)
        except (ssh.NodeUnreachable, ssh.CommandTimeout) as exc:
            return exc
        except Exception as exc:   # paramiko channel errors mid-command
            return ssh.NodeUnreachable("%s: SSH command failed: %s: %s"
                                       % (node.name, type(exc).__name__, exc))

    s = ctx.settings
    # Each SSH step and the command have their own timeouts; this guards the sum.
    guard = 3 * s.connect_timeout + s.command_timeout + 1.0
    return fanout.fan_out_map(one, nodes, key=lambda n: n.name, max_workers=s.max_parallel,
                              timeout=guard, name="cpulse-op")


def node_views(outputs, parse, what, known_failure=None, empty_is_error=False):
    """Each node's own view from run_on's outputs: {node name: parsed output | str (why
    the node has no view, naming it) | Exception (unreachable)}.  `known_failure(name,
    result)` may word a failure the tool signals in its own way (RabbitMQ's stopped app)."""
    views = {}
    for name, res in outputs.items():
        known = None if isinstance(res, Exception) or known_failure is None \
            else known_failure(name, res)
        if isinstance(res, Exception):
            views[name] = res
        elif known:
            views[name] = known
        elif res.exit_status != 0 or (empty_is_error and not res.stdout.strip()):
            views[name] = "%s on %s: %s" % (what, name, res.first_error_line)
        else:
            try:
                views[name] = parse(res.stdout)
            except parsers.ParseError as exc:
                views[name] = "%s on %s: %s" % (what, name, exc)
    return views


def not_checked_reason(exc):
    return results.NOT_CHECKED + str(exc)


_RANK = {results.Status.PASSED: 0, results.Status.SKIPPED: 1, results.Status.ERROR: 2,
         results.Status.FAILED: 3}


class Findings:
    """What one check found, per component; the worst status wins, details accumulate."""

    def __init__(self, check):
        self.name = check_name(check)
        self._status = {}
        self._details = {}
        self._started_at = results.utcnow()
        self._t0 = time.monotonic()

    def _add(self, component, status, detail):
        current = self._status.get(component, results.Status.PASSED)
        if _RANK[status] > _RANK[current]:
            self._status[component] = status
        else:
            self._status.setdefault(component, current)
        if detail and detail not in self._details.setdefault(component, []):
            self._details[component].append(detail)

    def ok(self, component, detail=""):
        self._add(component, results.Status.PASSED, detail)

    def fail(self, component, detail):
        self._add(component, results.Status.FAILED, detail)

    def error(self, component, detail):
        self._add(component, results.Status.ERROR, detail)

    def skip(self, component, detail):
        self._add(component, results.Status.SKIPPED, detail)

    def unreachable(self, component, exc):
        """A node whose own view is missing: an error of this check, unless another
        finding (a peer's view) already blames the component."""
        self._add(component, results.Status.ERROR, not_checked_reason(exc))

    def results(self):
        finished = results.utcnow()
        duration = time.monotonic() - self._t0
        out = []
        for component, status in self._status.items():
            details = self._details.get(component, [])
            if status == results.Status.FAILED:
                # Only the failures: "not checked" lines would blur who is blamed.
                details = [d for d in details if not d.startswith(results.NOT_CHECKED)] or details
            out.append(results.CheckResult(
                name=self.name, check_type=CHECK_TYPE, component=component, status=status,
                details="; ".join(details), duration=duration,
                started_at=self._started_at, finished_at=finished))
        return out
