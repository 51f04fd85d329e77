"""Endpoint check benchmark on the cloud in a box: CloudPulse's paths side by side with the
alternatives, in one run on one machine. Medians of N runs (the machine is noisy).

    python bench/endpoint.py [--repeat 10] [--quick]

(a) the endpoint check through the API of a warm server (POST, poll until finished)
(b) the same probes in-process (warm connection)
(c) the product spec's five CLI calls, one after another (openstack ... list)
(d) `tempest run` of the endpoint tests
(e) the slowest single API call alone, warm
(f) `rally task start` of the endpoint task (one workload, existing users)
the CPU one check costs the checker and the box (the floor of its wall time here),
and the server's idle RSS and CPU.  Needs the box up: tools/cloudbox/cloudbox.sh up.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time

import requests
import yaml

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench import fixtures  # noqa: E402
from bench.timing import median, timed  # noqa: E402
from cloudpulse.checks import endpoint  # noqa: E402
from cloudpulse import cloud  # noqa: E402
from tests.integration import cloudbox  # noqa: E402

BIN = os.path.dirname(sys.executable)


def start_server(box, state, port, horizon_url):
    return fixtures.start_server(box, state, port, "[cloud]\nhorizon_url = %s\n" % horizon_url
                                 if horizon_url else "")


def api_check(url):
    handle = requests.post(url + "/cpulse/check", json={"type": "endpoint"}).json()["handle"]
    doc = requests.get(url + "/cpulse/result", params={"handle": handle, "wait": 60}).json()
    assert doc["state"] == "finished" and doc["healthy"], doc["tests_failed"]


def slowest_call(conn, repeat):
    calls = {
        "keystone service list": lambda: list(conn.identity.services()),
        "glance image list": lambda: endpoint._first(conn.image.images(limit=1)),
        "cinder volume list": lambda: endpoint._first(
            conn.block_storage.volumes(details=False, limit=1)),
        "nova server list": lambda: endpoint._first(conn.compute.servers(details=False,
                                                                         limit=1)),
        "neutron network list": lambda: endpoint._first(conn.network.networks(limit=1)),
    }
    for call in calls.values():
        call()  # warm: token, discovery
    medians = {name: median(timed(call, repeat)) for name, call in calls.items()}
    name = max(medians, key=medians.get)
    return name, medians


def cpu_seconds(pid):
    """User + system CPU seconds a process has used so far (from /proc/PID/stat)."""
    with open("/proc/%s/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_seconds_of_others():
    """CPU seconds used so far by every process but this one (the box's services)."""
    total = 0.0
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            total += cpu_seconds(pid)
        except OSError:
            continue   # gone meanwhile
    return total


def cpu_per_check(check, repeat):
    """(wall, checker CPU, box CPU) per check, background load subtracted: what one check
    costs the machine, hence the floor of its wall time on this machine's cores."""
    check()
    t0, b0 = time.perf_counter(), _cpu_seconds_of_others()
    time.sleep(3)
    background = (_cpu_seconds_of_others() - b0) / (time.perf_counter() - t0)
    t0, b0, c0 = time.perf_counter(), _cpu_seconds_of_others(), time.process_time()
    for _ in range(repeat):
        check()
    wall = time.perf_counter() - t0
    box = _cpu_seconds_of_others() - b0 - background * wall
    return wall / repeat, (time.process_time() - c0) / repeat, box / repeat


def proc_stats(pid):
    with open("/proc/%d/status" % pid) as f:
        rss = [int(line.split()[1]) for line in f if line.startswith("VmRSS")][0]
    return rss / 1024.0, cpu_seconds(pid)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--slow-repeat", type=int, default=10,
                        help="runs of the slow alternatives (c), (d), (f)")
    args = parser.parse_args()
    box = cloudbox.CloudBox()
    box.up()
    conn = cloud.connect(box.admin_cloud, box.clouds_yaml, timeout=10)
    rows = []
    with tempfile.TemporaryDirectory() as state:
        proc, url = start_server(box, state, 9871, box.horizon_url)
        try:
            api_check(url)  # warm
            a = timed(lambda: api_check(url), args.repeat)
            time.sleep(2)
            rss0, cpu0 = proc_stats(proc.pid)
            time.sleep(10)
            rss1, cpu1 = proc_stats(proc.pid)
        finally:
            proc.terminate()
            proc.wait()
        # The same without the Horizon login (GET the form + POST it: Horizon authenticates
        # against keystone and renders its redirect): the APIs alone.
        proc, url = start_server(box, state, 9872, None)
        try:
            api_check(url)
            a_apis = timed(lambda: api_check(url), args.repeat)
        finally:
            proc.terminate()
            proc.wait()

        endpoint.run_endpoint_checks(conn, horizon_url=box.horizon_url)  # warm
        b = timed(lambda: endpoint.run_endpoint_checks(conn, horizon_url=box.horizon_url),
                  args.repeat)
        apis = [s for s in endpoint.SERVICES if s != "horizon"]
        b_apis = timed(lambda: endpoint.run_endpoint_checks(conn, services=apis), args.repeat)
        horizon = timed(lambda: endpoint.run_endpoint_checks(
            conn, services=["horizon"], horizon_url=box.horizon_url), args.repeat)
        e_name, e_medians = slowest_call(conn, args.repeat)
        cpu_wall, cpu_checker, cpu_box = cpu_per_check(
            lambda: endpoint.run_endpoint_checks(conn, services=apis), 4 * args.repeat)

        env = dict(os.environ, OS_CLIENT_CONFIG_FILE=box.clouds_yaml)
        osc = os.path.join(BIN, "openstack")
        five = [["service", "list"], ["image", "list"], ["volume", "list"], ["server", "list"],
                ["network", "list"]]

        def cli_five():
            for cmd in five:
                subprocess.run([osc, "--os-cloud", box.admin_cloud] + cmd, env=env, check=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        c = timed(cli_five, args.slow_repeat)

        ws = os.path.join(state, "tempest")
        subprocess.run([os.path.join(BIN, "cloudpulse-tempest-init"), "--cloud", box.admin_cloud,
                        "--clouds-file", box.clouds_yaml, "--horizon-url", box.horizon_url, ws],
                       check=True, stdout=subprocess.DEVNULL)
        d = timed(lambda: subprocess.run(
            [os.path.join(BIN, "tempest"), "run", "--regex", "cloudpulse_tempest", "--serial"],
            cwd=ws, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL),
            args.slow_repeat)

        rally, rally_dir = fixtures.rally_for(box, state)
        task_args = os.path.join(rally_dir, "args.yaml")
        with open(task_args, "w") as f:
            yaml.safe_dump({"services": list(endpoint.SERVICES), "horizon_url": box.horizon_url,
                            "timeout": 10}, f)
        f_ = timed(lambda: subprocess.run(
            rally + ["task", "start", os.path.join(TOP, "task_templates", "endpoint.yaml"),
                     "--task-args-file", task_args], check=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL), args.slow_repeat)

    e = e_medians[e_name]
    rows = [("(a) endpoint check via the API, warm server", median(a), len(a)),
            ("(a') same, APIs only (no Horizon login)", median(a_apis), len(a_apis)),
            ("(b) the same probes in-process", median(b), len(b)),
            ("(b') same, APIs only", median(b_apis), len(b_apis)),
            ("    Horizon login alone (GET form + POST)", median(horizon), len(horizon)),
            ("(c) five `openstack ... list` CLI calls", median(c), len(c)),
            ("(d) `tempest run` of the endpoint tests", median(d), len(d)),
            ("(e) slowest single API call, warm: %s" % e_name, e, args.repeat),
            ("(f) `rally task start` endpoint task", median(f_), len(f_))]
    print("\n%-52s %10s %6s %10s" % ("path", "median s", "runs", "vs (e)"))
    for name, value, n in rows:
        print("%-52s %10.3f %6d %9.1fx" % (name, value, n, value / e))
    print("\n(a)/(e) = %.2f, (a')/(e) = %.2f (goal <= 2); (c)/(a) = %.1fx; (f)/(a) = %.1fx; "
          "API overhead (a)-(b) = %.3f s" % (
              median(a) / e, median(a_apis) / e, median(c) / median(a),
              median(f_) / median(a), median(a) - median(b)))
    print("per-call medians (e): " + ", ".join("%s %.3f" % kv for kv in e_medians.items()))
    print("CPU per check (b'): checker %.3f s + box %.3f s = %.3f s; on %d cores at best "
          "%.3f s; measured %.3f s wall" % (
              cpu_checker, cpu_box, cpu_checker + cpu_box, os.cpu_count(),
              (cpu_checker + cpu_box) / os.cpu_count(), cpu_wall))
    print("server idle: RSS %.0f MiB, CPU %.2f%% over 10 s" % (
        rss1, 100.0 * (cpu1 - cpu0) / 10.0))


if __name__ == "__main__":
    main()
