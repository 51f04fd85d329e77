"""The cost of the history (issue 9): availability over 30 days of one-minute endpoint runs
(43,200 runs) through GET /cpulse/availability, and the database's size, against the
alternative of keeping one row per result of every run and computing from those.

    python bench/availability.py [--days 30] [--repeat 15] [--outages 40]

Both stores are SQLite files (the embedded server's database) filled with the same runs:
each an endpoint run as the check records it (keystone, glance, nova, neutron, cinder,
and nova-compute on three hosts), with `--outages` faults of 1 to 30 minutes at random
components and times, and a gap of an hour with no run (the server down).
(a) the history (cloudpulse_rally.history): run-length encoded spans, written by
    HistoryStore.record_run as the runner does, read by GET /cpulse/availability through
    the real app on a loopback HTTP server (werkzeug), 1h,24h,30d;
(b) one row per result of every run (what a store that keeps every run's results, as
    Rally's tables do, would have to read): the same windows computed from those rows,
    read with one indexed query, in Python.
Prints the medians side by side and the files' sizes.
"""

import argparse
import datetime
import logging
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import threading
import time

import requests
import sqlalchemy as sa
from werkzeug import serving

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, TOP)

from bench.timing import median  # noqa: E402
from bench.timing import timed  # noqa: E402
from cloudpulse import availability  # noqa: E402
from cloudpulse import conf as cp_conf  # noqa: E402
from cloudpulse import health  # noqa: E402
from cloudpulse import results  # noqa: E402
from cloudpulse_api import app as app_mod  # noqa: E402
from cloudpulse_api import service as service_mod  # noqa: E402
from cloudpulse_rally import history  # noqa: E402

ENDPOINT = results.CheckType.ENDPOINT
SERVICES = [("endpoint.keystone", "keystone"), ("endpoint.glance", "glance"),
            ("endpoint.neutron", "neutron"), ("endpoint.cinder", "cinder")] + [
    ("endpoint.nova", "nova-compute@compute-%d" % i) for i in (1, 2, 3)]
WINDOWS = (3600, 86400, 30 * 86400)


class Cloud:
    """What GET /cpulse/availability asks of a CloudChecks (its name, its hosts)."""

    name = "bench"

    def host_names(self):
        return frozenset()


class Service:
    """What GET /cpulse/availability asks of a CheckService (its history, its cloud)."""

    cloud = service_mod.CheckService.cloud

    def __init__(self, conf, store):
        self.conf, self.history, self.clouds = conf, store, {"bench": Cloud()}


def make_runs(days, outages, seed=7):
    start = results.utcnow().replace(second=0, microsecond=0) - datetime.timedelta(days=days)
    rng = random.Random(seed)
    minutes = days * 24 * 60
    faults = []   # (component index, first minute, last minute)
    for _ in range(outages):
        first = rng.randrange(minutes)
        faults.append((rng.randrange(len(SERVICES)), first, first + rng.randint(1, 30)))
    gap = range(minutes // 2, minutes // 2 + 60)   # the server down for an hour
    for minute in range(minutes):
        if minute in gap:
            continue
        at = start + datetime.timedelta(minutes=minute)
        down = {i for i, first, last in faults if first <= minute <= last}
        checks = [results.CheckResult(name, ENDPOINT, component,
                                      "failed" if i in down else "passed",
                                      "cannot connect: connection refused" if i in down
                                      else "", duration=0.05)
                  for i, (name, component) in enumerate(SERVICES)]
        yield results.CheckRun(handle="run-%d" % minute, check_types=[ENDPOINT],
                               state=results.RunState.FINISHED, created_at=at,
                               finished_at=at, results=checks)


def fill_history(path, runs, gaps):
    store = history.HistoryStore(sa.create_engine("sqlite:///%s" % path))
    samples = []
    for run in runs:
        t0 = time.perf_counter()
        with store.engine.begin() as conn:
            store.record_run(conn, run, "bench", gaps)
        samples.append(time.perf_counter() - t0)
    return store, samples


def fill_per_result(path, runs):
    db = sqlite3.connect(path)
    db.execute("create table results (key text, at timestamp, state text, details text)")
    db.execute("create index results_at on results (at)")
    for run in runs:
        keys = run.keys()
        rows = [(keys[id(r)], run.finished_at.isoformat(), health.state_of(r).value,
                 r.details) for r in run.results]
        rows.append(("endpoint", run.finished_at.isoformat(),
                     availability.type_state(run.results).value, ""))
        db.executemany("insert into results values (?, ?, ?, ?)", rows)
        db.commit()
    return db


def per_result_availability(db, now, gap):
    """The same windows from one row per result: spans rebuilt from the rows in order."""
    since = (now - datetime.timedelta(seconds=max(WINDOWS))).isoformat()
    spans, last = [], {}
    for key, at, state in db.execute("select key, at, state from results where at >= ? "
                                     "order by key, at", (since,)):
        at = datetime.datetime.fromisoformat(at)
        span = last.get(key)
        action, until = availability.extend(span, health.State(state), at, gap)
        if action == "extend":
            last[key] = span = availability.Span(key, ENDPOINT, "", span.state, span.since,
                                                 until, span.runs + 1)
            spans[-1] = span
        else:
            if span is not None and until is not None:
                spans[-1] = availability.Span(key, ENDPOINT, "", span.state, span.since,
                                              until, span.runs)
            last[key] = span = availability.Span(key, ENDPOINT, "", state, at, at)
            spans.append(span)
    return [availability.over_window(spans, w, 0.999, now) for w in WINDOWS]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--outages", type=int, default=40)
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.WARNING)   # a line per request
    work = tempfile.mkdtemp(prefix="bench-availability-")
    try:
        run(args, work)
    finally:
        shutil.rmtree(work)


def run(args, work):
    conf_file = os.path.join(work, "cloudpulse.conf")
    with open(conf_file, "w") as f:
        f.write("[DEFAULT]\nstate_path = %s\n[api]\nauth_strategy = noauth\n" % work)
    conf = cp_conf.load(["--config-file", conf_file], default_config_files=[])
    gaps = cp_conf.max_gaps(conf)
    history_db, raw_db = os.path.join(work, "history.sqlite"), os.path.join(work, "raw.sqlite")

    t0 = time.perf_counter()
    store, record_samples = fill_history(history_db, make_runs(args.days, args.outages), gaps)
    fill_seconds = time.perf_counter() - t0
    raw = fill_per_result(raw_db, make_runs(args.days, args.outages))
    runs = len(record_samples)

    app = app_mod.create_app(Service(conf, store))
    server = serving.make_server("127.0.0.1", 0, app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = "http://127.0.0.1:%d/cpulse/availability" % server.server_port
    session = requests.Session()

    def via_api():
        answer = session.get(url, params={"window": "1h,24h,30d"}, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    doc = via_api()
    api = timed(via_api, args.repeat)
    now = results.utcnow()
    raw_samples = timed(lambda: per_result_availability(raw, now, gaps[ENDPOINT]),
                        max(3, args.repeat // 5))
    server.shutdown()

    spans = sa.create_engine("sqlite:///%s" % history_db).connect().execute(
        sa.text("select count(*) from cloudpulse_history")).scalar()
    rows = raw.execute("select count(*) from results").fetchone()[0]
    month = {c["key"]: c for c in doc["windows"][2]["checks"]}
    print("%d one-minute endpoint runs over %d days, %d outages, %d keys"
          % (runs, args.days, args.outages, len(month)))
    print("| path | median ms | rows | database |")
    print("|---|---|---|---|")
    print("| (a) GET /cpulse/availability 1h,24h,30d, the history | %.1f | %d spans | %.2f MiB |"
          % (1000 * median(api), spans, os.path.getsize(history_db) / 2**20))
    print("| (b) the same from one row per result | %.1f | %d rows | %.2f MiB |"
          % (1000 * median(raw_samples), rows, os.path.getsize(raw_db) / 2**20))
    print("(b)/(a) = %.0fx; recording one run into the history: median %.2f ms "
          "(%d runs in %.0f s)" % (median(raw_samples) / median(api),
                                   1000 * median(record_samples), runs, fill_seconds))
    endpoint = month["endpoint"]
    print("30 d of the type as a whole: availability %.5f, %d outages, %.0f s down, "
          "%.0f s unknown" % (endpoint["availability"], len(endpoint["outages"]),
                              endpoint["down_seconds"], endpoint["unknown_seconds"]))


if __name__ == "__main__":
    main()
