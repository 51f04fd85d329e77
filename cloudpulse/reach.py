"""What the checker itself can reach: a TCP port and a ping, from this machine, each with
its timeout.  The operator checks' direct HAProxy backend probes and the upgrade checks'
probes of a workload's floating IPs go through these.

A TCP connection tells three things apart, which a firewall's verdict needs:
- OPEN: it connected;
- REFUSED: the host answered with a reset: the packets got there (no security group or
  firewall dropped them), nothing listens;
- SILENT: no answer within the timeout: dropped on the way (a security group denies it,
  or the path is down).
"""

import enum
import ipaddress
import shutil
import socket
import subprocess


class TCP(str, enum.Enum):
    OPEN = "open"
    REFUSED = "refused"
    SILENT = "silent"

    @property
    def arrived(self):
        """The packets reached the host (a security group let them through)."""
        return self is not TCP.SILENT


def connect(host, port, timeout):
    """(TCP, why, the connected socket or None) of a connection to host:port from here;
    `why` says what an OSError other than a timeout or a reset was (SILENT then).  The
    caller closes the socket (a probe that goes on to speak TLS on it)."""
    try:
        sock = socket.create_connection((host, int(port)), timeout=timeout)
    except ConnectionRefusedError:
        return TCP.REFUSED, "connection refused", None
    except (socket.timeout, TimeoutError):
        return TCP.SILENT, "no answer within %s s" % timeout, None
    except OSError as exc:
        return TCP.SILENT, (exc.strerror or str(exc)).lower(), None
    return TCP.OPEN, "", sock


def tcp(host, port, timeout):
    """(TCP, why) of a connection to host:port from here (connect's, the socket closed)."""
    outcome, why, sock = connect(host, port, timeout)
    if sock is not None:
        sock.close()
    return outcome, why


class PingUnavailable(Exception):
    """This machine has no ping command the checker may run."""


def ping(address, timeout):
    """Whether `address` answers one echo request within `timeout` seconds (at least 1),
    with the system's ping (iputils or busybox: -c, -W); PingUnavailable when there is
    none."""
    ip = ipaddress.ip_address(address)   # a literal address: nothing for a shell to read
    command = shutil.which("ping")
    if command is None:
        raise PingUnavailable("no ping command on this machine")
    wait = max(1, int(round(timeout)))
    done = subprocess.run([command, "-n", "-c", "1", "-W", str(wait), str(ip)],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=wait + 5, check=False)
    return done.returncode == 0
