"""SSH for every check that logs in somewhere (control-plane nodes now, the checks' VMs
next): strict host keys, key only, bounded in time, one connection per host and run.

A host is any object with `name`, `address`, `ssh_port`, `ssh_user` and `ssh_key` (the
service map's Node).  `SSHSettings` holds the defaults every front end derives its own
from (cloudpulse.conf's [operator] options, the Rally scenario's arguments).

rally.utils.sshutils.SSH is the model (paramiko, exit status, a command deadline) but not
used as is: it accepts any host key (AutoAddPolicy), connects with a fixed 1 s timeout,
offers passwords, and cloudpulse/ does not import Rally (layering).

Commands are fixed strings (the operator checks' `commands`).  A value that must reach a
remote command (a container name) travels on stdin, never through the shell's parser.
"""

import dataclasses
import logging
import os
import select
import socket
import threading
import time

import paramiko

from cloudpulse import fanout

LOG = logging.getLogger(__name__)


def _quiet_paramiko():
    # paramiko's transport thread logs every failed handshake at ERROR with its traceback
    # (to stderr when nothing else handles it).  Each failure is reported once, in a line
    # that says what happened, by SessionPool; paramiko's own account is noise there.
    logging.getLogger("paramiko").setLevel(logging.CRITICAL)


@dataclasses.dataclass(frozen=True)
class SSHSettings:
    known_hosts_file: str = "/etc/cloudpulse/known_hosts"
    key_file: str = ""
    user: str = "root"
    connect_timeout: float = 5.0
    command_timeout: float = 20.0
    max_parallel: int = 8
    strict_host_keys: bool = True
    # For hosts this run created itself (a check's VMs): their first key is taken, as
    # Rally and Tempest do; never for control-plane nodes.
    accept_new_host_keys: bool = False


class NodeUnreachable(Exception):
    """SSH to a node failed; the message says why, for a person on call."""


class HostKeyRejected(NodeUnreachable):
    """The node's host key is unknown or changed: refused before authenticating."""


class CommandTimeout(Exception):
    pass


@dataclasses.dataclass(frozen=True)
class CommandResult:
    exit_status: int
    stdout: str
    stderr: str

    @property
    def first_error_line(self):
        for text in (self.stderr, self.stdout):
            for line in text.splitlines():
                if line.strip():
                    return line.strip()
        return "exit status %d" % self.exit_status


class NodeSession:
    """An authenticated SSH connection to one node; commands open channels on it."""

    def __init__(self, node, client, settings):
        self.node = node
        self._client = client
        self._settings = settings

    def run(self, command, stdin_data=None, timeout=None):
        timeout = timeout or self._settings.command_timeout
        transport = self._client.get_transport()
        if transport is None or not transport.is_active():
            raise NodeUnreachable("%s: SSH connection lost" % self.node.name)
        chan = transport.open_session(timeout=self._settings.connect_timeout)
        try:
            chan.exec_command(command)
            if stdin_data is not None:
                chan.sendall(stdin_data.encode())
            chan.shutdown_write()
            return self._collect(chan, command, timeout)
        finally:
            chan.close()

    def _collect(self, chan, command, timeout):
        deadline = time.monotonic() + timeout
        out, err = bytearray(), bytearray()
        while True:
            while chan.recv_ready():
                out += chan.recv(65536)
            while chan.recv_stderr_ready():
                err += chan.recv_stderr(65536)
            if chan.exit_status_ready() and not chan.recv_ready() \
                    and not chan.recv_stderr_ready():
                break
            left = deadline - time.monotonic()
            if left <= 0:
                raise CommandTimeout("%r did not finish within %ss on %s"
                                     % (command.split()[0], timeout, self.node.name))
            select.select([chan], [], [], min(left, 0.5))
        return CommandResult(chan.recv_exit_status(), out.decode("utf-8", "replace"),
                             err.decode("utf-8", "replace"))

    def close(self):
        self._client.close()


_SOCKET_ERRORS = {111: "connection refused", 113: "no route to host",
                  101: "network unreachable"}


def _remote_banner(client):
    """The SSH version string the host sent ("SSH-2.0-OpenSSH_9.2p1"), or "" if none."""
    transport = client.get_transport()
    return (getattr(transport, "remote_version", "") or "") if transport else ""


class SessionPool:
    """The SSH connections of one run: opened once per node (in parallel, bounded),
    reused by every check, closed at the end.  Failures are remembered, not retried."""

    def __init__(self, settings):
        self.settings = settings
        self._lock = threading.Lock()
        self._sessions = {}
        self._errors = {}
        _quiet_paramiko()
        if not settings.strict_host_keys and not settings.accept_new_host_keys:
            LOG.warning("[operator] strict_host_key_checking = false: unknown SSH host keys "
                        "are accepted; a man in the middle would not be noticed")

    def connect_all(self, nodes):
        """{node name: NodeSession or NodeUnreachable}, nodes contacted in parallel."""
        todo = [n for n in nodes if n.name not in self._sessions and n.name not in self._errors]
        # Each step of a connection (TCP, banner, authentication) has its own timeout; the
        # fan-out's is the guard over all three.
        guard = 3 * self.settings.connect_timeout + 1.0
        for item in fanout.fan_out(self._connect_one, todo, self.settings.max_parallel,
                                   timeout=guard, name="cpulse-ssh"):
            if not item.ok:
                node = item.item
                why = ("SSH connection not established within %s s" % guard
                       if isinstance(item.error, fanout.ItemTimeout) else
                       "SSH failed: %s: %s" % (type(item.error).__name__, item.error))
                with self._lock:
                    self._errors.setdefault(node.name, NodeUnreachable(
                        "%s (%s:%s): %s" % (node.name, node.address, node.ssh_port, why)))
        return {n.name: self._sessions.get(n.name) or self._errors[n.name] for n in nodes}

    def session(self, node):
        """The node's session; raises the NodeUnreachable its connection ended with."""
        self.connect_all([node])
        if node.name in self._errors:
            raise self._errors[node.name]
        return self._sessions[node.name]

    def error(self, node):
        return self._errors.get(node.name)

    def _connect_one(self, node):
        try:
            session = NodeSession(node, self._open_client(node), self.settings)
        except NodeUnreachable as exc:
            with self._lock:
                self._errors[node.name] = exc
            return
        with self._lock:
            self._sessions[node.name] = session

    def _open_client(self, node):
        s = self.settings
        if node.address is None:
            raise NodeUnreachable("%s not reachable: %s" % (
                node.name, getattr(node, "pending", "") or "no address in the service map"))
        client = paramiko.SSHClient()
        if s.strict_host_keys:
            if not os.path.isfile(s.known_hosts_file):
                raise HostKeyRejected("%s: known_hosts file %s does not exist; refusing to "
                                      "connect" % (node.name, s.known_hosts_file))
            client.load_host_keys(s.known_hosts_file)
            client.set_missing_host_key_policy(paramiko.RejectPolicy())
        elif s.accept_new_host_keys:
            client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
        else:
            client.set_missing_host_key_policy(paramiko.WarningPolicy())
        key_file = node.ssh_key or s.key_file
        where = "%s (%s:%s)" % (node.name, node.address, node.ssh_port)
        try:
            # The TCP connection first, so that a host that accepts it and then says
            # nothing is told apart from one that cannot be reached.
            sock = socket.create_connection((node.address, node.ssh_port),
                                            timeout=s.connect_timeout)
        except (socket.timeout, TimeoutError):
            raise NodeUnreachable("%s unreachable over SSH: no answer within %ss"
                                  % (where, s.connect_timeout)) from None
        except OSError as exc:
            raise NodeUnreachable("%s unreachable over SSH: %s" % (
                where, _SOCKET_ERRORS.get(exc.errno) or exc.strerror or exc)) from None
        try:
            client.connect(
                node.address, port=node.ssh_port, username=node.ssh_user or s.user,
                key_filename=key_file or None, allow_agent=False, look_for_keys=False,
                timeout=s.connect_timeout, banner_timeout=s.connect_timeout,
                auth_timeout=s.connect_timeout, sock=sock)
        except paramiko.BadHostKeyException as exc:
            client.close()
            raise HostKeyRejected("%s: host key CHANGED (got %s %s, known_hosts has another);"
                                  " refusing to connect" % (where, exc.key.get_name(),
                                                             exc.key.get_base64()[:16] + "..."))
        except paramiko.AuthenticationException as exc:
            client.close()
            raise NodeUnreachable("%s: SSH key refused (%s)" % (where, exc)) from None
        except (paramiko.SSHException, OSError) as exc:
            banner = _remote_banner(client)
            client.close()
            sock.close()
            if "not found in known_hosts" in str(exc):
                raise HostKeyRejected("%s: host key not in %s; refusing to connect"
                                      % (where, s.known_hosts_file)) from None
            if not banner:
                raise NodeUnreachable(
                    "%s: %s:%s accepted the connection but sent no SSH banner within %s s"
                    % (node.name, node.address, node.ssh_port, s.connect_timeout)) from None
            raise NodeUnreachable("%s: SSH failed after the banner %r: %s"
                                  % (where, banner, exc or type(exc).__name__)) from None
        return client

    def close(self):
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
            self._errors = {}
        for s in sessions:
            s.close()
