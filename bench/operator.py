"""Operator check benchmark on the operator bed (tests/operator_bed): one check over 1 node
vs over 3 nodes (parallel SSH), the cost of connecting vs reusing the connections within a
run, and the checker's idle footprint.  Medians of N runs (the machine is shared).

    tests/operator_bed/bed.sh up      # once (about 30 s)
    python bench/operator.py [--repeat 10]
"""

import argparse
import dataclasses
import os
import resource
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench.timing import median, timed  # noqa: E402
from cloudpulse.checks import operator  # noqa: E402
from cloudpulse.checks.operator import base  # noqa: E402
from cloudpulse import ssh  # noqa: E402

BED = "/tmp/cpulse-opbed"
CA_FILE = os.path.join(BED, "tls", "ca.pem")   # the bed's TLS API servers
MAP = os.path.join(TOP, "tests", "operator", "bed_map.yaml")


def settings(max_parallel=8):
    return operator.SSHSettings(known_hosts_file=os.path.join(BED, "ssh", "known_hosts"),
                                key_file=os.path.join(BED, "ssh", "client_key"),
                                max_parallel=max_parallel)


def median_ms(func, repeat):
    return median(timed(func, repeat)) * 1000


def one_check(smap, check, max_parallel=8):
    """A full run of one check: connect (parallel), run, close."""
    def run():
        out = operator.run_operator_checks(smap, settings(max_parallel), checks=[check],
                                           ca_file=CA_FILE)
        assert all(r.ok for r in out), [(r.component, r.details) for r in out if not r.ok]
    return run


def warm_check(smap, check):
    """The check on connections already open (reused within a run)."""
    pool = ssh.SessionPool(settings())
    ctx = base.OperatorContext(smap, pool)
    pool.connect_all(smap.nodes)
    return ctx, (lambda: operator.CHECKS[check](ctx))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args()
    full = operator.servicemap.load(MAP)
    single = dataclasses.replace(full, nodes=full.nodes[:1])
    r = args.repeat
    rows = []
    for check in ("rabbitmq", "galera", "pacemaker"):
        rows.append(("%s, 1 node (connect + run)" % check, median_ms(one_check(single, check), r)))
        rows.append(("%s, 3 nodes in parallel" % check, median_ms(one_check(full, check), r)))
        rows.append(("%s, 3 nodes one at a time" % check,
                     median_ms(one_check(full, check, max_parallel=1), r)))
    rows.append(("all checks, 3 nodes (one run)", median_ms(
        lambda: operator.run_operator_checks(full, settings(), checks=(
            "services", "rabbitmq", "galera", "haproxy", "pacemaker"), ca_file=CA_FILE), r)))
    pool = ssh.SessionPool(settings())
    rows.append(("SSH connect to 3 nodes (parallel)", median_ms(
        lambda: (pool.connect_all(full.nodes), pool.close()), r)))
    ctx, warm = warm_check(full, "galera")
    rows.append(("galera, 3 nodes, connections reused", median_ms(warm, r)))
    # Idle: the open connections' cost while nothing runs (keepalive-free paramiko).
    cpu0, t0 = time.process_time(), time.monotonic()
    time.sleep(10)
    idle_cpu = (time.process_time() - cpu0) / (time.monotonic() - t0) * 100
    ctx.pool.close()
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print("| measurement | median (ms) |\n|---|---|")
    for name, ms in rows:
        print("| %s | %.0f |" % (name, ms))
    print("\nidle with 3 SSH connections open: %.2f%% of one core over 10 s; peak RSS %.0f MiB"
          % (idle_cpu, rss))


if __name__ == "__main__":
    main()
