"""API and runners apart, for real: a PostgreSQL (Debian's) holding Rally's database and
the queue, the API under uwsgi with two worker processes, two `cloudpulse-runner`s, tooz
coordinating them over the same PostgreSQL, checks run against the cloud in a box."""

import collections
import concurrent.futures
import os
import re
import secrets
import signal
import time

import requests

from tests.integration import server as server_mod

PROJECTS = 50
STORM_PROJECTS = 4   # more, for POSTs of the same run at once
TAKEN = re.compile(r"run ([0-9a-f-]{36}) \(([a-z, ]+) on \S+\) taken by runner (\S+)")


class Deployment:
    """uwsgi (2 processes) serving the API, and two runners, on one PostgreSQL."""

    def __init__(self, venv_bin, directory, box, database, **conf):
        self.venv_bin, self.dir = venv_bin, directory
        self.port = server_mod.free_port()
        self.url = "http://127.0.0.1:%d" % self.port
        self.tokens = [secrets.token_hex(16) for _ in range(PROJECTS + STORM_PROJECTS)]
        token_file = directory / "tokens"
        token_file.write_text("".join("%s project-%02d member\n" % (token, i)
                                      for i, token in enumerate(self.tokens)))
        token_file.chmod(0o600)
        self.conf = server_mod.write_conf(
            directory / "cloudpulse.conf", directory / "state", box, self.port,
            auth="token_file", extra=(
                "[api]\ntoken_file = %s\nmax_active_runs = 200\n"
                "max_active_runs_per_project = 5\n"
                "[rally]\nconnection = %s\n[coordination]\nbackend_url = %s\n"
                "[runner]\nworkers = 3\nheartbeat_interval = 1\ndead_after = 10\n"
                % (token_file, database.url.replace("postgresql://", "postgresql+psycopg2://"),
                   database.url)), **conf)
        self.processes = []
        self.api = self.start([os.path.join(venv_bin, "uwsgi"), "--http-socket",
                               "127.0.0.1:%d" % self.port, "--processes", "2", "--threads", "8",
                               "--master", "--die-on-term", "--need-app", "--lazy-apps",
                               "--home", os.path.dirname(venv_bin),
                               "--eval", "from cloudpulse_api import wsgi; "
                                         "application = wsgi.init_application()"], "uwsgi")
        self.runners = [self.start([os.path.join(venv_bin, "cloudpulse-runner"),
                                    "--config-file", str(self.conf)], "runner-%d" % i)
                        for i in range(2)]
        deadline = time.monotonic() + 90
        while True:
            try:
                if requests.get(self.url + "/cpulse/types", timeout=2,
                                headers=self.auth(0)).ok:
                    break
            except requests.RequestException:
                pass
            assert self.api.proc.poll() is None, self.api.text()
            assert time.monotonic() < deadline, "uwsgi did not start: " + self.api.text()
            time.sleep(0.3)

    def start(self, argv, name):
        process = server_mod.Process(argv, str(self.dir / (name + ".log")),
                          env={"CLOUDPULSE_CONFIG_FILE": str(self.conf)})
        self.processes.append(process)
        return process

    def auth(self, project):
        return {"X-Auth-Token": self.tokens[project]}

    def post(self, project, check_type="endpoint"):
        return requests.post(self.url + "/cpulse/check", json={"type": check_type},
                             headers=self.auth(project), timeout=30)

    def result(self, project, handle, wait=0):
        return requests.get(self.url + "/cpulse/result", params={"handle": handle,
                                                                  "wait": wait},
                            headers=self.auth(project), timeout=wait + 30).json()

    def taken(self):
        """[(handle, runner)] of every run a runner took, from the runners' logs."""
        return [(m.group(1), m.group(3)) for runner in self.runners
                for m in TAKEN.finditer(runner.text())]

    def stop(self):
        for process in reversed(self.processes):
            process.stop()


def test_fifty_runs_from_two_api_processes_are_each_executed_once(
        venv_bin, tmp_path, box, database):
    deployment = Deployment(venv_bin, tmp_path, box, database)
    try:
        # the same run asked for at once through both API processes: one run a project
        with concurrent.futures.ThreadPoolExecutor(max_workers=16) as pool:
            storm = list(pool.map(lambda i: (i % STORM_PROJECTS, deployment.post(
                PROJECTS + i % STORM_PROJECTS)), range(40)))
        assert {resp.status_code for _, resp in storm} == {202}, [r.text for _, r in storm]
        assert sorted(len({resp.json()["handle"] for p, resp in storm if p == project})
                      for project in range(STORM_PROJECTS)) == [1] * STORM_PROJECTS
        with concurrent.futures.ThreadPoolExecutor(max_workers=10) as pool:
            posts = list(pool.map(deployment.post, range(PROJECTS)))
        assert {p.status_code for p in posts} == {202}, [p.text for p in posts]
        handles = [p.json()["handle"] for p in posts]
        assert len(set(handles)) == PROJECTS
        docs = [deployment.result(i, handle, wait=120) for i, handle in enumerate(handles)]
        assert {d["state"] for d in docs} == {"finished"}, docs
        taken = collections.Counter(handle for handle, _ in deployment.taken())
        assert {taken[h] for h in handles} == {1}, taken
        # both runners took runs; both API processes answered (uwsgi's log names pids)
        assert len({runner for _, runner in deployment.taken()}) == 2
        assert len(set(re.findall(r"\[pid: (\d+)\|app: \d+\|req:",
                                  deployment.api.text()))) == 2
    finally:
        deployment.stop()


def test_a_runner_killed_mid_run_leaves_its_run_interrupted_and_the_rest_finish(
        venv_bin, tmp_path, box, database, silent_horizon):
    deployment = Deployment(venv_bin, tmp_path, box, database, horizon_url=silent_horizon,
                            timeout=8)
    try:
        handles = [deployment.post(i).json()["handle"] for i in range(4)]
        first = box.wait_for(lambda: deployment.taken(), timeout=30, interval=0.2)
        handle, runner_id = first[0]
        victim = next(r for r in deployment.runners if runner_id in r.text())
        victim.signal(signal.SIGKILL)
        docs = {h: deployment.result(handles.index(h), h, wait=90) for h in handles}
        assert docs[handle]["state"] == "interrupted", docs[handle]
        assert "runner stopped" in str(docs[handle]["tests_failed"])
        # What the others took finished; every other run was the killed runner's, which
        # may have claimed one without living to log it (seen in CI): interrupted.
        by_others = {h for h, r in deployment.taken() if r != runner_id}
        assert by_others and {docs[h]["state"] for h in by_others} == {"finished"}, docs
        for h in set(handles) - by_others:
            assert docs[h]["state"] == "interrupted", docs[h]
            assert "runner stopped" in str(docs[h]["tests_failed"])
    finally:
        deployment.stop()


def test_one_periodic_interval_across_two_runners_gives_one_run(
        venv_bin, tmp_path, box, database):
    deployment = Deployment(venv_bin, tmp_path, box, database,
                            periodic="endpoint_interval = 6s\njitter = 0\n")
    try:
        time.sleep(20)
        started = [m.group(1) for runner in deployment.runners for m in re.finditer(
            r"periodic endpoint check of \S+ started: ([0-9a-f-]{36})", runner.text())]
        # one run every 6 s from the two runners together, never one from each
        assert len(started) >= 3 and len(set(started)) == len(started), started
        created = sorted(float(row) for row in database.sql(
            "select extract(epoch from created_at) from tasks where uuid in (%s)"
            % ",".join("'%s'" % h for h in started), database.name).split())
        gaps = [b - a for a, b in zip(created, created[1:])]
        assert min(gaps) >= 0.9 * 6, gaps
    finally:
        deployment.stop()
