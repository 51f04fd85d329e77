"""The operator bed (tests/operator_bed/bed.sh): 3 namespaced nodes with sshd, RabbitMQ,
Galera, corosync + pacemaker, HAProxy.  Built once per session (about 30 s; it installs
its Debian packages itself), torn down at the end unless OPBED_KEEP=1.  Fault tests heal
what they broke and wait until every check passes again before the next one."""

import glob
import os
import subprocess
import time
import warnings

import pytest

from cloudpulse.checks import operator

HERE = os.path.dirname(os.path.abspath(__file__))
BED_SH = os.path.join(os.path.dirname(HERE), "operator_bed", "bed.sh")
BED_DIR = "/tmp/cpulse-opbed"
MAP = os.path.join(HERE, "bed_map.yaml")
SSH_CHECKS = ("services", "rabbitmq", "galera", "haproxy", "pacemaker")


class Bed:
    dir = BED_DIR

    def __init__(self):
        self.service_map = operator.servicemap.load(MAP)
        self.settings = self.ssh_settings()

    def ssh_settings(self, **changes):
        base = dict(known_hosts_file=os.path.join(BED_DIR, "ssh", "known_hosts"),
                    key_file=os.path.join(BED_DIR, "ssh", "client_key"),
                    connect_timeout=3.0, command_timeout=15.0)
        base.update(changes)
        return operator.SSHSettings(**base)

    def bed(self, *args, check=True):
        return subprocess.run([BED_SH, *map(str, args)], check=check, capture_output=True,
                              text=True, timeout=300)

    def sh(self, node, script, check=True):
        """Run a shell script inside node N (all its namespaces), as the bed's admin."""
        return self.bed("exec", node, "sh", "-c", script, check=check)

    # The CA of the bed's TLS API servers (glance on :9292).
    ca_file = os.path.join(BED_DIR, "tls", "ca.pem")

    def run(self, checks=SSH_CHECKS, settings=None, **probe_options):
        probe_options.setdefault("ca_file", self.ca_file)
        return operator.run_operator_checks(self.service_map, settings or self.settings,
                                            checks=checks, api_timeout=3.0, **probe_options)

    def wait(self, predicate, timeout, checks=SSH_CHECKS, what="condition"):
        """Run the checks until predicate(results) holds; the results that satisfied it."""
        deadline = time.monotonic() + timeout
        while True:
            out = self.run(checks)
            if predicate(out):
                return out
            if time.monotonic() > deadline:
                raise AssertionError("%s not reached after %ss; last results:\n%s" % (
                    what, timeout, "\n".join(describe(out))))
            time.sleep(1)

    def wait_healthy(self, timeout=180):
        return self.wait(lambda out: all(r.ok for r in out), timeout, what="healthy bed")


def describe(out):
    return ["%s %s %s %s" % (r.name, r.component, r.status.value, r.details) for r in out]


def blamed(out, name=None):
    """{component: details} of every result that is not ok (of one check when named)."""
    return {r.component: r.details for r in out
            if not r.ok and (name is None or r.name == name)}


def _daemon_logs(lines=15):
    """The tail of every node's MariaDB, RabbitMQ and pacemaker logs."""
    out = []
    for path in sorted(glob.glob(os.path.join(BED_DIR, "n*", "log", "*", "*.log"))):
        with open(path, errors="replace") as f:
            tail = f.readlines()[-lines:]
        out.append("--- %s\n%s" % (path, "".join(tail)))
    return "\n".join(out)


def _require_root():
    if os.geteuid() == 0:
        return
    why = "the operator bed needs root (network namespaces, packages)"
    if os.environ.get("CI") == "true":
        # In CI the bed's tests must run: a skip there would lose them unnoticed.
        pytest.fail("CI runs as root, yet: " + why)
    pytest.skip(why)


@pytest.fixture(scope="session")
def bed():
    _require_root()
    running = os.path.exists(os.path.join(BED_DIR, "n1", "anchor.pid"))
    if running and os.environ.get("OPBED_KEEP") != "1":
        subprocess.run([BED_SH, "down"], check=False, timeout=120)
        running = False
    # OPBED_KEEP=1: reuse a bed left up by a previous run, and leave it up.
    failures = []
    while not running and len(failures) < 2:
        up = subprocess.run([BED_SH, "up"], capture_output=True, text=True, timeout=900)
        if up.returncode == 0:
            break
        # What the bed's daemons said goes with the error: `down` removes their logs.
        failures.append("%s\n%s\n%s" % (up.stdout, up.stderr, _daemon_logs()))
        subprocess.run([BED_SH, "down"], check=False, timeout=120)
    else:
        if failures:
            raise RuntimeError("operator bed did not come up, twice:\n" + "\n".join(failures))
    if failures:   # the second attempt worked: the bed's bring-up is flaky, not the checks
        warnings.warn("operator bed came up at the second attempt; first:\n" + failures[0])
    b = Bed()
    try:
        b.wait_healthy()
        yield b
    finally:
        if os.environ.get("OPBED_KEEP") != "1":
            subprocess.run([BED_SH, "down"], check=False, timeout=120)


@pytest.fixture
def healthy_bed(bed):
    """The bed, healthy before the test and healed after it (the test's own heal steps
    run first, registered with bed.heal.append)."""
    bed.wait_healthy()
    bed.heal = []
    yield bed
    for step in reversed(bed.heal):
        step()
    bed.wait_healthy()
