"""Operator checks: the control plane seen from its nodes over SSH, and from the APIs.

    servicemap      which nodes run which services (inventory or juju status), validated
    commands        the fixed command strings run on the nodes
    parsers         what the parsers share (ParseError); each check module parses its own
                    component's outputs (older formats included)
    services, rabbitmq, galera, haproxy, pacemaker, control_plane: one module per check

SSH itself (strict host keys, key only, timeouts, one connection per node and run) is
cloudpulse.ssh, shared with the checks that log in to VMs.

`run_operator_checks` runs the chosen checks over one set of SSH connections (opened in
parallel, bounded, closed at the end) and returns CheckResults per node and component:
"operator.ssh" (ssh@node3), "operator.rabbitmq" (rabbitmq@node3), "operator.haproxy"
(haproxy/keystone_api/node2), ...  The Rally validators and scenario (cloudpulse_rally)
and the server's recorded path are thin front ends over it.
"""

import logging

from cloudpulse.checks.operator import base
from cloudpulse.checks.operator import control_plane
from cloudpulse.checks.operator import galera
from cloudpulse.checks.operator import haproxy
from cloudpulse.checks.operator import pacemaker
from cloudpulse.checks.operator import rabbitmq
from cloudpulse.checks.operator import servicemap
from cloudpulse.checks.operator import services
from cloudpulse import ssh
from cloudpulse.checks import runner
from cloudpulse import results

LOG = logging.getLogger(__name__)

CHECK_TYPE = base.CHECK_TYPE

# The operator checks, in report order; the keys are the names a suite lists.
CHECKS = {
    "services": services.check,
    "rabbitmq": rabbitmq.check,
    "galera": galera.check,
    "haproxy": haproxy.check,
    "pacemaker": pacemaker.check,
    "control_plane": control_plane.check,
}
SSH_CHECK = "ssh"

ServiceMapError = servicemap.ServiceMapError
SSHSettings = ssh.SSHSettings


def validate_checks(checks):
    unknown = [c for c in checks if c not in CHECKS]
    if unknown:
        raise ValueError("checks: unknown %s (known: %s)"
                         % (", ".join(map(str, unknown)), ", ".join(CHECKS)))


def ssh_results(ctx):
    """One result per node: reachable with a known host key and the configured key."""
    found = base.Findings(SSH_CHECK)
    for name, state in ctx.pool.connect_all(ctx.service_map.nodes).items():
        if isinstance(state, Exception):
            found.fail("ssh@%s" % name, str(state))
        else:
            found.ok("ssh@%s" % name)
    return found.results()


def _crashed(check, exc):
    LOG.warning("operator check %s crashed", check, exc_info=True)
    now = results.utcnow()
    return [results.CheckResult(
        name=base.check_name(check), check_type=CHECK_TYPE, component=check,
        status=results.Status.ERROR, details=runner.describe_error(exc),
        started_at=now, finished_at=now)]


def run_operator_checks(service_map, settings, checks=tuple(CHECKS), api_connection=None,
                        api_timeout=10.0, backend_probes="auto", ca_file=None):
    """SSH reachability of every node, then each check; one SSH connection per node."""
    validate_checks(checks)
    if backend_probes not in base.BACKEND_PROBES:
        raise ValueError("haproxy_backend_probes: %r is not one of %s"
                         % (backend_probes, ", ".join(base.BACKEND_PROBES)))
    pool = ssh.SessionPool(settings)
    ctx = base.OperatorContext(service_map, pool, api_connection, api_timeout,
                               backend_probes, ca_file)
    try:
        out = ssh_results(ctx)
        for check in checks:
            try:
                out.extend(CHECKS[check](ctx))
            except Exception as exc:
                out.extend(_crashed(check, exc))
        return out
    finally:
        pool.close()


def run_control_plane(service_map, api_connection, api_timeout=10.0):
    """Only the API-side check (no SSH): for front ends that hold the admin credential
    apart from the SSH run (the Rally scenario)."""
    ctx = base.OperatorContext(service_map, ssh.SessionPool(ssh.SSHSettings()),
                               api_connection, api_timeout)
    try:
        return control_plane.check(ctx)
    except Exception as exc:
        return _crashed("control_plane", exc)


def settings_from_args(args):
    """SSHSettings from task arguments (scenarios/operator.yaml, or the server's [operator])."""
    defaults = ssh.SSHSettings()
    return ssh.SSHSettings(
        known_hosts_file=args.get("known_hosts_file") or defaults.known_hosts_file,
        key_file=args.get("ssh_key_file") or defaults.key_file,
        user=args.get("ssh_user") or defaults.user,
        connect_timeout=float(args.get("connect_timeout") or defaults.connect_timeout),
        command_timeout=float(args.get("command_timeout") or defaults.command_timeout),
        max_parallel=int(args.get("max_parallel_nodes") or defaults.max_parallel),
        strict_host_keys=bool(args.get("strict_host_key_checking", True)))


def probe_options_from_args(args):
    """The HAProxy backend probe options from task arguments."""
    return {"backend_probes": args.get("haproxy_backend_probes") or "auto",
            "ca_file": args.get("ca_file") or None}


def run_from_args(args, api_connection=None):
    """The operator checks a suite's task arguments describe."""
    smap = servicemap.load(args["service_map"])
    return run_operator_checks(smap, settings_from_args(args),
                               checks=args.get("checks") or tuple(CHECKS),
                               api_connection=api_connection,
                               api_timeout=float(args.get("timeout") or 10.0),
                               **probe_options_from_args(args))
