"""API benchmark on the cloud in a box, the deployment apart: the API under uwsgi (2
processes) behind nginx, two `cloudpulse-runner`s, a PostgreSQL (Debian's), all on this
machine; figures side by side with nginx serving a static file of the same size, in the
same run.

    python bench/api.py [--seconds 10]

(a) GET /cpulse/result of a finished run through nginx + uwsgi, against (b) nginx serving
    that document as a static file: requests per second and p50/p99 (wrk, 2 threads, 8
    connections), and the embedded `cloudpulse-server` (waitress) for reference;
(c) GET /cpulse/result while 200 POSTs from 4 projects arrive at once: p50/p99/max;
(d) POST /cpulse/check while the runners are busy: latency as the queue fills;
(e) idle RSS and CPU of the API processes and of a runner with the default intervals.
Needs the box up (tools/cloudbox/cloudbox.sh up) and wrk (apt-get install wrk).
"""

import argparse
import concurrent.futures
import multiprocessing
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import pathlib

import requests

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from tests.integration import cloudbox  # noqa: E402
from tests.integration.postgres import PostgreSQL  # noqa: E402
from tests.integration import server as server_mod  # noqa: E402

BIN = os.path.dirname(sys.executable)
PROJECTS = 64


def wait_http(url, headers=None, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if requests.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError("%s did not answer" % url)


def wrk(url, seconds, token=None):
    """(requests per second, p50 ms, p99 ms) of wrk against url."""
    argv = ["wrk", "-t2", "-c8", "-d%ds" % seconds, "--latency", url]
    if token:
        argv[1:1] = ["-H", "X-Auth-Token: " + token]
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout

    def ms(label):
        value, unit = re.search(r"^\s+%s\s+([\d.]+)(us|ms|s)" % label, out, re.M).groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if errors:
        raise RuntimeError("wrk: %s non-2xx answers from %s" % (errors.group(1), url))
    return float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), ms("50%"), ms("99%")


def time_gets(url, headers, go, stop, samples):
    """GET url one after another from `go` to `stop`: the seconds each took, into
    `samples`."""
    session, taken = requests.Session(), []
    go.wait()
    while not stop.is_set():
        t0 = time.perf_counter()
        session.get(url, headers=headers, timeout=30)
        taken.append(time.perf_counter() - t0)
    samples.put(taken)


def alternated(rounds, measures):
    """Each of `measures` (callables giving a tuple of figures) run once per round, in
    turn, after one warm-up round: per measure, the median of each figure."""
    for measure in measures:
        measure()
    taken = [[measure() for measure in measures] for _ in range(rounds)]
    return [tuple(statistics.median(figures) for figures in zip(*(r[i] for r in taken)))
            for i in range(len(measures))]


def percentiles(samples):
    samples = sorted(samples)
    return (statistics.median(samples) * 1000, samples[int(0.99 * (len(samples) - 1))] * 1000,
            samples[-1] * 1000)


def rss_cpu(pids, seconds):
    """(RSS MiB per process, CPU % of one core per process over `seconds`)."""
    def cpu(pid):
        fields = open("/proc/%d/stat" % pid).read().rsplit(")", 1)[1].split()
        return int(fields[11]) + int(fields[12])
    before = {p: cpu(p) for p in pids}
    time.sleep(seconds)
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for p in pids:
        rss = int(re.search(r"VmRSS:\s+(\d+)", open("/proc/%d/status" % p).read()).group(1))
        out[p] = (rss / 1024, 100.0 * (cpu(p) - before[p]) / tick / seconds)
    return out


class Deployment:
    """nginx -> uwsgi (API, 2 processes) and 2 runners, on PostgreSQL; token_file auth."""

    def __init__(self, box, state, database, runner_conf="", **conf):
        self.state = state
        self.tokens = ["%032x" % (i + 1) for i in range(PROJECTS)]
        tokens = state / "tokens"
        tokens.write_text("".join("%s project-%02d member\n" % (t, i)
                                  for i, t in enumerate(self.tokens)))
        tokens.chmod(0o600)
        self.uwsgi_port, self.nginx_port = server_mod.free_port(), server_mod.free_port()
        self.conf = server_mod.write_conf(
            state / "cloudpulse.conf", state / "cloudpulse", box, self.uwsgi_port,
            auth="token_file", periodic="endpoint_interval = 5m\n", extra=(
                "[api]\ntoken_file = %s\nmax_active_runs = 100\n"
                "max_active_runs_per_project = 5\n[rally]\nconnection = %s\n"
                "[coordination]\nbackend_url = %s\n%s"
                % (tokens, database.url.replace("postgresql://", "postgresql+psycopg2://"),
                   database.url, runner_conf)), **conf)
        env = {"CLOUDPULSE_CONFIG_FILE": str(self.conf)}
        self.socket_port = server_mod.free_port()   # nginx speaks uwsgi's protocol to it
        self.api = server_mod.Process([os.path.join(BIN, "uwsgi"), "--http-socket",
                         "127.0.0.1:%d" % self.uwsgi_port, "--socket",
                         "127.0.0.1:%d" % self.socket_port, "--processes", "2", "--threads", "8",
                         "--master", "--die-on-term", "--need-app", "--lazy-apps",
                         "--disable-logging", "--home", os.path.dirname(BIN), "--eval",
                         "from cloudpulse_api import wsgi; application = wsgi.init_application()"],
                        str(state / "uwsgi.log"), env)
        self.runners = [server_mod.Process([os.path.join(BIN, "cloudpulse-runner"), "--config-file",
                              str(self.conf)], str(state / ("runner-%d.log" % i)), env)
                        for i in range(2)]
        wait_http("http://127.0.0.1:%d/cpulse/types" % self.uwsgi_port)
        static = state / "static"
        static.mkdir()
        self.static = static
        nginx_conf = state / "nginx.conf"
        # worker_processes auto, as Debian's nginx.conf that cloudpulse-install's site
        # goes into: a worker per core
        nginx_conf.write_text(
            "daemon off;\nworker_processes auto;\npid %s/nginx.pid;\nerror_log %s/nginx.log;\n"
            "events { worker_connections 256; }\nhttp {\n  access_log off;\n"
            "  client_body_temp_path %s;\n  uwsgi_temp_path %s;\n"
            "  uwsgi_cache_path %s/cache keys_zone=results:4m max_size=64m;\n"
            "  server {\n    listen 127.0.0.1:%d;\n"
            "    location /static/ { alias %s/; default_type application/json; }\n"
            "    location /cpulse/ { include /etc/nginx/uwsgi_params;\n"
            "      uwsgi_pass 127.0.0.1:%d;\n"
            # an ended run, as the API says (X-Accel-Expires), per caller's token
            "      uwsgi_cache results;\n"
            "      uwsgi_cache_key $http_x_auth_token$request_method$request_uri;\n"
            "      uwsgi_ignore_headers Cache-Control; }\n"
            "  }\n}\n" % (state, state, state, state, state, self.nginx_port, static,
                          self.socket_port))
        self.nginx = server_mod.Process(["nginx", "-c", str(nginx_conf), "-p", str(state)],
                          str(state / "nginx.out"))
        self.url = "http://127.0.0.1:%d" % self.nginx_port
        wait_http(self.url + "/cpulse/types", self.auth(0))

    def auth(self, project):
        return {"X-Auth-Token": self.tokens[project]}

    def stop(self):
        for process in [self.nginx, *self.runners, self.api]:
            process.stop()


def finished_run(url, headers):
    handle = requests.post(url + "/cpulse/check", json={"type": "endpoint"}, headers=headers,
                           timeout=30).json()["handle"]
    resp = requests.get(url + "/cpulse/result", params={"handle": handle, "wait": 60},
                        headers=headers, timeout=90)
    assert resp.json()["state"] == "finished", resp.text
    return handle, resp.content


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3,
                        help="rounds of (a), (b) and uwsgi alone, one after another")
    args = parser.parse_args()
    if not shutil.which("wrk"):
        sys.exit("bench/api.py needs wrk: apt-get install wrk")
    box = cloudbox.CloudBox()
    box.up()
    state = pathlib.Path(tempfile.mkdtemp(prefix="cpulse-bench-api-"))
    database = PostgreSQL()
    rows = []
    deployment = embedded = None
    try:
        deployment = Deployment(box, state, database)
        headers = deployment.auth(0)
        handle, body = finished_run(deployment.url, headers)
        (deployment.static / "result.json").write_bytes(body)
        result_path = "/cpulse/result?handle=" + handle
        # Rounds alternate the paths, so that a moment's load (the runners' first
        # periodic run, the box's own work) falls on each alike; medians of the rounds.
        api, static, direct = alternated(args.rounds, [
            lambda: wrk(deployment.url + result_path, args.seconds, deployment.tokens[0]),
            lambda: wrk(deployment.url + "/static/result.json", args.seconds),
            lambda: wrk("http://127.0.0.1:%d%s" % (deployment.uwsgi_port, result_path),
                        args.seconds, deployment.tokens[0])])
        port = server_mod.free_port()
        proc, embedded_url = start_embedded(box, state, port)
        embedded = proc
        e_handle, _ = finished_run(embedded_url, {})
        waitress = wrk(embedded_url + "/cpulse/result?handle=" + e_handle, args.seconds)
        rows += [("(a) GET result: nginx -> uwsgi (2 processes)", api),
                 ("    the same, uwsgi without nginx", direct),
                 ("(b) nginx: the same document as a static file", static),
                 ("    embedded cloudpulse-server (waitress)", waitress)]

        # (c) GETs while 200 POSTs from 4 projects arrive at once
        def post(i):
            return requests.post(deployment.url + "/cpulse/check", json={"type": "endpoint"},
                                 headers=deployment.auth(1 + i % 4), timeout=30).status_code

        # The GETs come from a process of their own: timed in the storm's threads, they
        # would measure the bench's own GIL as much as the server.
        context = multiprocessing.get_context("spawn")
        go, stop, samples = context.Event(), context.Event(), context.Queue()
        getter = context.Process(target=time_gets, args=(
            deployment.url + result_path, headers, go, stop, samples))
        getter.start()
        time.sleep(3)   # its imports done
        go.set()
        with concurrent.futures.ThreadPoolExecutor(max_workers=48) as pool:
            codes = sorted(set(pool.map(post, range(200))))
        stop.set()
        storm = percentiles(samples.get(timeout=60))
        getter.join()

        # (e) idle, with the default intervals, once the storm's runs are over
        time.sleep(15)
        idle = {"API (uwsgi, each process)": rss_cpu(deployment.api.pids(), 20)}
        idle["runner"] = rss_cpu(deployment.runners[0].pids(), 20)
    finally:
        if embedded is not None:
            embedded.terminate()
            embedded.wait(timeout=60)
        if deployment is not None:
            deployment.stop()

    # (d) POST latency as the queue fills: one worker per runner, runs held by a listener
    # that never answers (each run lasts one API timeout)
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        deployment = Deployment(
            box, pathlib.Path(tempfile.mkdtemp(prefix="cpulse-bench-api-")), database,
            runner_conf="[runner]\nworkers = 1\n",
            horizon_url="http://127.0.0.1:%d/" % silent.getsockname()[1])
        try:
            posts = []
            for i in range(60):
                t0 = time.perf_counter()
                resp = requests.post(deployment.url + "/cpulse/check",
                                     json={"type": "endpoint"}, headers=deployment.auth(i),
                                     timeout=30)
                posts.append((time.perf_counter() - t0, resp.status_code))
        finally:
            deployment.stop()
    database.stop()

    print("\n%-52s %10s %9s %9s" % ("GET /cpulse/result of a finished run", "req/s", "p50 ms",
                                    "p99 ms"))
    for label, (rate, p50, p99) in rows:
        print("%-52s %10.0f %9.1f %9.1f" % (label, rate, p50, p99))
    print("(a)/(b) = %.2f of the static file's rate (goal >= 0.30); p99 %.1f ms (goal < 50)"
          % (api[0] / static[0], api[2]))
    print("(c) GET during 200 POSTs from 4 projects (POST answers %s): p50 %.1f, p99 %.1f, "
          "max %.1f ms (goal: within 100)" % (codes, *storm))
    tens = [statistics.median(t for t, _ in posts[i:i + 10]) * 1000
            for i in range(0, len(posts), 10)]
    print("(d) POST with the runners busy, median per 10 as the queue fills (0-10 ... "
          "50-60 runs): %s ms; last 10 / first 10 = %.2f (answers %s)"
          % (" ".join("%.1f" % t for t in tens), tens[-1] / tens[0],
             sorted({code for _, code in posts})))
    for what, per_pid in idle.items():
        print("(e) idle %s: %s" % (what, ", ".join("%.0f MiB %.2f %% CPU" % v
                                                    for v in per_pid.values())))


def start_embedded(box, state, port):
    from bench import fixtures
    return fixtures.start_server(box, str(state), port)


if __name__ == "__main__":
    main()
