"""`cloudpulse-server` run for real over the cloud in a box, for the API and CLI tests; the
processes of a deployment (uwsgi, runners, nginx), stopped by PID; a webhook receiver."""

import http.server
import json
import os
import signal
import socket
import subprocess
import threading
import time

import requests
import yaml

from tests.integration.conftest import TIMEOUT


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def keystone_authtoken(box):
    """[keystone_authtoken] validating tokens as the box's admin (a deployment would use
    a service user of its own)."""
    auth = yaml.safe_load(open(box.clouds_yaml))["clouds"][box.admin_cloud]["auth"]
    return ("[keystone_authtoken]\nauth_type = password\nwww_authenticate_uri = %s\n"
            "auth_url = %s\nusername = %s\npassword = %s\nproject_name = %s\n"
            "user_domain_name = %s\nproject_domain_name = %s\n"
            % (auth["auth_url"], auth["auth_url"], auth["username"], auth["password"],
               auth["project_name"], auth["user_domain_name"],
               auth["project_domain_name"]))


def write_conf(path, state, box, port, auth="noauth", periodic="endpoint_interval = -1\n",
               extra="", cloud=None, clouds_file=None, timeout=TIMEOUT, horizon_url=None,
               clouds=None):
    """A cloudpulse.conf for a server over the box (owner-only: it may hold a password):
    checking `cloud` (default: the box's admin entry), or the clouds.yaml entries
    `clouds`."""
    which = ("clouds = %s" % ", ".join(clouds) if clouds
             else "cloud = %s" % (cloud or box.admin_cloud))
    path.write_text(
        "[DEFAULT]\nstate_path = %s\n[api]\nport = %d\nauth_strategy = %s\n"
        "[cloud]\n%s\nclouds_file = %s\nhorizon_url = %s\ntimeout = %s\n"
        "%s[periodic]\n%s%s"
        % (state, port, auth, which, clouds_file or box.clouds_yaml,
           horizon_url or box.horizon_url, timeout,
           keystone_authtoken(box) if auth == "keystone" else "", periodic, extra))
    path.chmod(0o600)
    return path


class Server:
    """auth: [api] auth_strategy; noauth (every caller admin, loopback only) unless a
    test is about access."""

    def __init__(self, venv_bin, state, box, **conf):
        self.venv_bin, self.state, self.box = venv_bin, state, box
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.conf = write_conf(state / ("cloudpulse-%d.conf" % self.port), state, box,
                               self.port, **conf)
        self.log = open(state / ("server-%d.log" % self.port), "w")
        self.proc = subprocess.Popen(
            [os.path.join(venv_bin, "cloudpulse-server"), "--config-file", str(self.conf)],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            try:   # any answer (a 401 too) says the server is up
                requests.get(self.url + "/cpulse/types", timeout=1)
                return
            except requests.RequestException:
                assert self.proc.poll() is None, (state / self.log.name).read_text()
                assert time.monotonic() < deadline, "server did not start"
                time.sleep(0.2)

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=60)
        self.log.close()

    def kill(self):
        """SIGKILL to the server and every process it started (Rally's runner forks its
        iterations), as systemd kills a service's control group: nothing of the server's
        own shutdown runs, and no run finishes."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=60)
        self.log.close()

    def log_text(self):
        return open(self.log.name).read()


class Process:
    """A process of a deployment (uwsgi, a runner, the image's entrypoint), its log kept,
    stopped by PID (its process group)."""

    def __init__(self, argv, log, env=None):
        self.log = log
        self.proc = subprocess.Popen(argv, stdout=open(log, "w"), stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})),
                                     start_new_session=True)

    def text(self):
        return open(self.log).read()

    def pids(self):
        """The process and those it started (uwsgi's workers)."""
        found = subprocess.run(["pgrep", "-g", str(self.proc.pid)], capture_output=True,
                               text=True).stdout.split()
        return [int(pid) for pid in found]

    def signal(self, signum):
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signum)

    def stop(self, timeout=60):
        self.signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.signal(signal.SIGKILL)
            self.proc.wait()


class WebhookReceiver:
    """A real HTTP receiver of notifications on 127.0.0.1: every POST kept (when it came,
    its headers, its JSON), answered 200; `down()` closes its socket (connections are
    refused), `up()` listens again on the same port."""

    def __init__(self):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.received = []   # [(time.time(), headers, raw body, document)]
        self._lock = threading.Condition()
        self._server = None
        self.up()

    def _handler(self):
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                with receiver._lock:
                    receiver.received.append((time.time(), dict(self.headers), body,
                                              json.loads(body)))
                    receiver._lock.notify_all()
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass
        return Handler

    def up(self):
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", self.port),
                                                       self._handler())
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def down(self):
        self._server.shutdown()
        self._server.server_close()

    def documents(self):
        with self._lock:
            return [doc for _, _, _, doc in self.received]

    def wait(self, predicate, timeout):
        """Until predicate(documents) holds (its value), or AssertionError after
        `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                docs = [doc for _, _, _, doc in self.received]
                value = predicate(docs)
                if value:
                    return value
                left = deadline - time.monotonic()
                assert left > 0, "no such notification in %s s: %s" % (timeout, docs)
                self._lock.wait(left)


class Prometheus:
    """A real Prometheus (Debian's) on 127.0.0.1 scraping `target` (host:port) every
    second at `metrics_path` (None: Prometheus' default, /metrics), its data in `state`;
    stopped by PID."""

    def __init__(self, state, target, metrics_path=None, bearer_token=None):
        self.port = free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        job = {"job_name": "cloudpulse", "scrape_interval": "1s", "scrape_timeout": "1s",
               "static_configs": [{"targets": [target]}]}
        if metrics_path:
            job["metrics_path"] = metrics_path
        if bearer_token:
            job["authorization"] = {"credentials": bearer_token}
        config = state / "prometheus.yml"
        config.write_text(yaml.safe_dump({"global": {"scrape_interval": "1s"},
                                          "scrape_configs": [job]}))
        self.process = Process(
            ["prometheus", "--config.file=%s" % config,
             "--storage.tsdb.path=%s" % (state / "prometheus-data"),
             "--web.listen-address=127.0.0.1:%d" % self.port], str(state / "prometheus.log"))
        deadline = time.monotonic() + 30
        while True:
            try:
                if requests.get(self.url + "/-/ready", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            assert time.monotonic() < deadline, self.process.text()[-2000:]
            time.sleep(0.2)

    def query(self, expression):
        """[(labels, value)] of an instant PromQL query."""
        doc = requests.get(self.url + "/api/v1/query", params={"query": expression},
                           timeout=10).json()
        assert doc["status"] == "success", doc
        return [(item["metric"], float(item["value"][1])) for item in doc["data"]["result"]]

    def target_health(self):
        doc = requests.get(self.url + "/api/v1/targets", timeout=10).json()
        return [(t["health"], t["lastError"]) for t in doc["data"]["activeTargets"]]

    def stop(self):
        self.process.stop(timeout=30)


def chromium(url, profile, screenshot=None, size=(1280, 900)):
    """The DOM of `url` as Debian's headless Chromium renders it, its profile in the
    directory `profile` (a screenshot of it too when `screenshot` is a path)."""
    argv = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu",
            "--window-size=%d,%d" % size, "--user-data-dir=%s" % profile]
    if screenshot:
        subprocess.run(argv + ["--screenshot=%s" % screenshot, url], check=True,
                       capture_output=True, timeout=60)
    return subprocess.run(argv + ["--dump-dom", url], check=True, capture_output=True,
                          text=True, timeout=60).stdout
