"""The notification outbox on a real PostgreSQL (Debian's), as several runners share it:
runners claiming at once never take the same delivery (FOR UPDATE SKIP LOCKED and the
lease), and every one is taken; a run's transitions, and its history, are written on
PostgreSQL too."""

import concurrent.futures
import datetime
import time

import sqlalchemy as sa

from cloudpulse import results
from cloudpulse_rally import history
from cloudpulse_rally import notifications

DELIVERIES = 200
RUNNERS = 4
SETTINGS = notifications.Settings(
    cloud="box", thresholds={}, reminder_interval=0,
    configured_urls=tuple("http://127.0.0.1:%d/hook" % port for port in range(1, 11)),
    result_url="http://api/r?handle=%s")


def _failing_run(handle, components):
    return results.CheckRun(handle, [results.CheckType.ENDPOINT],
                            state=results.RunState.FINISHED, results=[
        results.CheckResult(name="endpoint.%s" % c, check_type="endpoint", component=c,
                            status="failed", details="cannot connect: refused")
        for c in components])


def test_runners_claiming_at_once_never_take_one_delivery_twice(database):
    url = database.url.replace("postgresql://", "postgresql+psycopg2://")
    stores = [notifications.NotificationStore(sa.create_engine(url))
              for _ in range(RUNNERS)]
    # 20 transitions x 10 configured webhooks
    with stores[0].engine.begin() as conn:
        made = stores[0].record_run(conn, _failing_run("h1", ["c%02d" % i for i in range(20)]),
                                    SETTINGS)
    assert len(made) == 20 and len(stores[0].outbox()) == DELIVERIES

    def drain(store):
        taken = []
        while True:
            batch = store.claim(lease=60, limit=7)
            if not batch:
                return taken
            taken += [d.id for d in batch]
            time.sleep(0.01)   # sending them

    with concurrent.futures.ThreadPoolExecutor(RUNNERS) as pool:
        taken = list(pool.map(drain, stores))
    every = [d for runner in taken for d in runner]
    assert len(every) == len(set(every)) == DELIVERIES
    assert sum(1 for runner in taken if runner) > 1   # they did share the work
    # leased: nobody takes them again before the lease ends; after it, once
    assert stores[1].claim(lease=60) == []
    later = results.utcnow() + datetime.timedelta(seconds=61)
    assert len(stores[2].claim(lease=60, now=later, limit=DELIVERIES)) == DELIVERIES


def test_a_runs_history_is_written_and_read_on_postgresql(database):
    """The availability history (cloudpulse_rally.history) on PostgreSQL: spans extended,
    opened on a change, and an outage read back over a window."""
    url = database.url.replace("postgresql://", "postgresql+psycopg2://")
    store = history.HistoryStore(sa.create_engine(url))
    start = results.utcnow().replace(microsecond=0) - datetime.timedelta(minutes=10)
    gaps = {t: 600 for t in results.CheckType}
    for minute in range(10):
        run = _failing_run("m%d" % minute, ["glance"]) if 3 <= minute < 6 else \
            results.CheckRun("m%d" % minute, [results.CheckType.ENDPOINT],
                             state=results.RunState.FINISHED, results=[results.CheckResult(
                                 name="endpoint.glance", check_type="endpoint",
                                 component="glance", status="passed")])
        run.finished_at = start + datetime.timedelta(minutes=minute)
        with store.engine.begin() as conn:
            store.record_run(conn, run, "box", gaps)
    report = store.report("box", None, [3600], 0.999)
    glance = {a.key: a for a in report.windows[0][1]}["endpoint.glance"]
    assert glance.down == 180 and [o.seconds for o in glance.outages] == [180.0]
    assert sorted(s.runs for s in store.spans("box", None, start)
                  if s.key == "endpoint.glance") == [3, 3, 4]
