"""A runner: takes queued runs from the database and executes them; runs the periodic
checks and the sweeper.  Any number of runners share one database (cloudpulse_rally.queue):
each run is executed once, each periodic check is started once (a tooz lock), and the runs
of a runner that dies are interrupted by the others.

    cloudpulse-runner --config-file /etc/cloudpulse/cloudpulse.conf

`cloudpulse-server` embeds one runner beside its API (one process, SQLite by default).
"""

import concurrent.futures
import datetime
import logging
import random
import signal
import sys
import threading
import time

from cloudpulse.checks import runner as check_runner
from cloudpulse.checks import workload
from cloudpulse import results
from cloudpulse_api import notifier as notifier_mod
from cloudpulse_api import service as service_mod
from cloudpulse_rally import queue

LOG = logging.getLogger(__name__)

CLAIM_EVERY = 1.0    # seconds between two looks for queued runs when idle
PRUNE_EVERY = 3600   # seconds between two prunings of the runs past [retention]
ORPHAN_GRACE = 60    # seconds a run may exist without its queue row (being queued)


class RunWorker:
    """Executes the runs of `service` (a CheckService) that this process claims."""

    def __init__(self, service, coordinator):
        self.service = service
        self.conf = service.conf
        self.queue = service.queue
        self.rally = service.rally
        self.coordinator = coordinator
        self.id = queue.runner_id()
        self._workers = self.conf.runner.workers
        self._free = threading.Semaphore(self._workers)
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=self._workers, thread_name_prefix="cpulse-run")
        self._stop = threading.Event()     # no new claims (runs in flight finish)
        self._drain = False                # with stop: still take what is queued
        self._stopped = threading.Event()  # the runs in flight are recorded
        self._threads = {}   # by name
        self.notifier = notifier_mod.Notifier(service)

    def start(self):
        """Claim and execute, beat, and run the periodic checks of every cloud."""
        self.interrupt_dead_runs()
        self._start("cpulse-claim", self._claim_loop)
        self._start("cpulse-heartbeat", self._heartbeat_loop)
        # delivers while the last runs are recorded too, until they are
        self._start("cpulse-notify", self.notifier.run, self._stopped)
        self._start("cpulse-periodic", self._periodic_loop,
                    {(checks.name, t): seconds for checks in self.service.clouds.values()
                     for t, seconds in checks.intervals.items()})
        for checks in self.service.clouds.values():
            self.start_sweeper(checks)

    def _start(self, name, target, *args):
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self._threads[name] = thread

    def stop(self, drain=False):
        """Stop claiming (with `drain`, once nothing is queued), and wait for the runs
        in flight to be recorded."""
        self._drain = drain
        self._stop.set()
        self._threads["cpulse-claim"].join()   # no claim after this
        self._pool.shutdown(wait=True)
        self._stopped.set()

    # -- claiming and executing ---------------------------------------------------------
    def _claiming(self):
        return not self._stop.is_set() or (self._drain and self.queue.queued_count() > 0)

    def _claim_loop(self):
        while self._claiming():
            self._free.acquire()   # a worker free for the run about to be claimed
            claimed = None
            try:
                if self._claiming():   # a stop may have come while every worker was busy
                    claimed = self.queue.claim(self.id)
            except Exception:
                LOG.exception("claiming a queued run failed")
            if claimed is None:
                self._free.release()
                self.queue.wait_queued(0.1 if self._stop.is_set() else CLAIM_EVERY)
                continue
            LOG.info("run %s (%s on %s) taken by runner %s", claimed.handle,
                     ", ".join(t.value for t in claimed.check_types), claimed.cloud, self.id)
            self._pool.submit(self._execute, claimed)

    def _execute(self, claimed):
        handle = claimed.handle
        try:
            try:
                checks = self.service.cloud(claimed.cloud)
            except service_mod.UnknownCloud:
                LOG.warning("run %s: cloud %s is no longer configured: interrupted",
                            handle, claimed.cloud)
                self.rally.mark_interrupted(handle, "its cloud is no longer configured")
            else:
                checks.execute(claimed)
        finally:
            try:
                self._finish(handle)
            finally:
                self._free.release()

    def _finish(self, handle):
        """The run off the queue, its health transitions and its history recorded in the
        same transaction (docs/notifications.md, docs/availability.md); off the queue
        anyway when they cannot be."""
        try:
            run = self.rally.get_run(handle)

            def record(conn):
                if run is not None:
                    checks = self.service.checks_of(run)
                    self.notifier.record(conn, run, checks)
                    self.service.history.record_run(conn, run, checks.name, checks.max_gaps)
            self.queue.finished(handle, also=record)
        except Exception:
            LOG.exception("run %s: recording its health transitions and history failed",
                          handle)
            self.queue.finished(handle)
        self.notifier.wake()

    # -- runners that died --------------------------------------------------------------
    def _heartbeat_loop(self):
        # Beats until the runs in flight are recorded, also while stopping.
        while not self._stopped.wait(self.conf.runner.heartbeat_interval):
            try:
                self.queue.heartbeat(self.id)
                if not self._stop.is_set():
                    self.interrupt_dead_runs()
            except Exception:
                LOG.exception("heartbeat failed")

    def interrupt_dead_runs(self):
        """Runs whose runner stopped (no heartbeat, or its process gone from this
        machine), and runs that lost their queue row, become interrupted; what a dead
        workload run left in the cloud is the sweeper's (every workload run sweeps)."""
        for handle in self.queue.take_dead(self.conf.runner.dead_after):
            LOG.warning("run %s: its runner stopped during the run: interrupted", handle)
            self.rally.mark_interrupted(handle, "its runner stopped during the run")
        queued = self.queue.handles()
        for handle in self.rally.interrupted(older_than=ORPHAN_GRACE):
            if handle not in queued:
                self.rally.mark_interrupted(
                    handle, "the CloudPulse server stopped during the run")

    # -- periodic checks ----------------------------------------------------------------
    def _periodic_loop(self, intervals):
        """Submit each (cloud, type) every `intervals[cloud, type]` seconds, up to
        [periodic] jitter of the interval late, one interval after the type's last
        recorded run on that cloud (at once when it is overdue), never while a run of
        that type on that cloud is in flight; with several runners, each check once (the
        due time is read again under a tooz lock).  Also prunes the runs past
        [retention], now and every PRUNE_EVERY seconds."""
        self._prune()
        next_prune = time.monotonic() + PRUNE_EVERY
        due = {t: self._next_due(t, s) for t, s in intervals.items()}
        for (cloud, t), when in due.items():
            LOG.info("periodic %s check of %s: every %d s, next in %d s", t.value, cloud,
                     intervals[cloud, t], when - time.monotonic())
        while not self._stop.is_set():
            now = time.monotonic()
            if now >= next_prune:
                self._prune()
                next_prune = now + PRUNE_EVERY
            for t, when in due.items():
                if now >= when:
                    self._submit_periodic(t, intervals[t])
                    due[t] = self._next_due(t, intervals[t])
            self._stop.wait(max(0.1, min([next_prune, *due.values()]) - time.monotonic()))

    def _jitter(self, interval):
        return random.uniform(0, self.conf.periodic.jitter * interval)

    def _since_last(self, due_key, interval):
        cloud, check_type = due_key
        last = self.rally.last_run_at(check_type, cloud,
                                      first=cloud == self.service.cloud().name)
        return (results.utcnow() - last).total_seconds() if last else interval

    def _next_due(self, due_key, interval):
        """time.monotonic() when a (cloud, type) is next due: one interval after its
        last run."""
        return (time.monotonic() + max(0.0, interval - self._since_last(due_key, interval))
                + self._jitter(interval))

    def _submit_periodic(self, due_key, interval):
        cloud, check_type = due_key
        what = "periodic %s check of %s" % (check_type.value, cloud)
        try:
            with self.coordinator.lock("periodic"):
                # another runner may have started it an instant ago
                if self._since_last(due_key, interval) < interval * 0.9:
                    return
                busy = [types for _, types in self.queue.active_types(cloud)
                        if check_type.value in types]
                if busy:   # never two runs of a type at once, an `all` run included
                    LOG.info("%s: a run of it is still in flight", what)
                    return
                handle, new = self.service.submit([check_type], cloud=cloud)
        except queue.QueueFull as exc:
            LOG.warning("%s skipped: %s", what, exc)
            return
        except Exception:
            LOG.exception("%s could not be queued", what)
            return
        LOG.info("%s %s: %s", what, "started" if new else "already in flight", handle)

    def _prune(self):
        retention = self.conf.retention
        try:
            pruned = self.rally.prune(retention.max_age_days, retention.max_runs_per_type)
        except Exception:
            LOG.exception("pruning old runs failed")
            return
        if pruned:
            LOG.info("pruned %d runs past [retention] (max_age_days %d, max_runs_per_type "
                     "%d)", len(pruned), retention.max_age_days, retention.max_runs_per_type)
        days = self.conf.availability.history_days
        try:
            spans = self.service.history.prune(
                results.utcnow() - datetime.timedelta(days=days))
        except Exception:
            LOG.exception("pruning the availability history failed")
            return
        if spans:
            LOG.info("pruned %d spans of history past [availability] history_days %d",
                     spans, days)

    # -- the sweeper --------------------------------------------------------------------
    def start_sweeper(self, checks):
        """Remove, in the background, what workload runs on the cloud of `checks` (a
        CloudChecks) that died on this machine left in it (every workload run also
        sweeps before it starts)."""
        if not any(t in checks.types for t in results.DATA_PLANE):
            return

        def sweep():
            try:
                removed = workload.sweep(checks.conn, workload.RunRegistry(checks.runs_dir))
                LOG.info("sweeper at start of %s: %s", checks.name, "removed %s" % ", ".join(
                    removed) if removed else "nothing left by dead runs")
            except Exception as exc:
                LOG.warning("sweeper at start of %s failed: %s", checks.name,
                            check_runner.describe_error(exc, checks.timeout,
                                                        cloud=checks.name))
        self._start("cpulse-sweeper-%s" % checks.name, sweep)


def main(argv=None):
    """`cloudpulse-runner`: a runner without the API (the API under uwsgi, for one)."""
    try:
        conf, service, _ = service_mod.start(
            "cloudpulse-runner", sys.argv[1:] if argv is None else argv)
    except service_mod.StartFailed as exc:
        print(exc, file=sys.stderr)
        return exc.exit_code
    worker = RunWorker(service, service.coordinator)
    stopping = threading.Event()

    def shutdown(signum, frame):
        LOG.info("signal %s: finishing the runs in flight, then stopping", signum)
        stopping.set()
    signal.signal(signal.SIGTERM, shutdown)
    signal.signal(signal.SIGINT, shutdown)
    worker.start()
    LOG.info("CloudPulse runner %s (%d workers; check types: %s)", worker.id,
             conf.runner.workers, ", ".join(t.value for t in service.types))
    stopping.wait()
    worker.stop(drain=False)
    service.coordinator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
