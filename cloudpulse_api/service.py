"""The facade's engine room: start check runs in the background, answer by handle,
and run each check type periodically at its configured interval."""

import concurrent.futures
import logging
import os
import random
import threading
import time

from cloudpulse.checks import endpoint
from cloudpulse.checks import runner
from cloudpulse.checks import service_states
from cloudpulse.checks import workload
from cloudpulse.checks import operator
from cloudpulse import cloud
from cloudpulse import results
from cloudpulse import suites
from cloudpulse_rally import tasks

LOG = logging.getLogger(__name__)

ALL = "all"
PRUNE_EVERY = 3600   # seconds between two prunings of the runs past [retention]
HOSTS_TTL = 300      # seconds a list of the cloud's hosts serves the member view


def _endpoint_results(service, args):
    return endpoint.run_endpoint_checks(
        service.conn, services=args.get("services", endpoint.SERVICES),
        horizon_url=args.get("horizon_url"), timeout=args["timeout"])


def _operator_results(service, args):
    # The map loaded (and validated) at start; the server's connection serves the
    # control-plane check (admin: compared with the map; otherwise skipped).
    return operator.run_operator_checks(
        service.operator_map, operator.settings_from_args(args),
        checks=args.get("checks") or tuple(operator.CHECKS), api_connection=service.conn,
        api_timeout=args["timeout"], **operator.probe_options_from_args(args))


# Light check types (they create nothing) run in-process on the server's warm connection
# and are recorded into Rally: {type: function(service, task_args) -> [CheckResult]}.
# The other types go through the Rally engine (contexts, cleanup).
RECORDED = {results.CheckType.ENDPOINT: _endpoint_results,
            results.CheckType.OPERATOR: _operator_results}

# cloudpulse.conf options passed to a suite's task arguments (suite values win; a later
# group wins over an earlier one): {check type: [(group, options), ...]}.
_WORKLOAD_OPTS = ("image_file", "flavor", "external_network", "ssh_user", "image_disk_format",
                  "cidr", "boot_timeout", "ping_timeout")
_CONF_ARGS = {
    results.CheckType.OPERATOR: [("operator", (
        "service_map", "known_hosts_file", "ssh_key_file", "ssh_user", "connect_timeout",
        "command_timeout", "max_parallel_nodes", "strict_host_key_checking",
        "haproxy_backend_probes", "ca_file"))],
    results.CheckType.FUNCTIONAL: [
        ("functional", _WORKLOAD_OPTS + ("volume_size", "ping_via"))],
    results.CheckType.COMPREHENSIVE: [
        ("comprehensive", ("cidr", "max_parallel_boots", "probe_timeout", "jumbo_mtu")),
        ("functional", _WORKLOAD_OPTS)],
}
# The types that boot VMs: offered when [functional] names an image and a flavor.
_WORKLOAD_TYPES = (results.CheckType.FUNCTIONAL, results.CheckType.COMPREHENSIVE)


class QueueFull(Exception):
    """max_active_runs runs are queued or running, or max_active_runs_per_project of
    the asking project's."""
    retry_after = 10   # seconds a client is told to wait before it tries again

    def __init__(self, active, project_id=None):
        super().__init__(
            "%d runs of project %s are queued or running ([api] max_active_runs_per_project)"
            % (active, project_id) if project_id else
            "%d runs are queued or running ([api] max_active_runs)" % active)


class UnknownCheckType(ValueError):
    def __init__(self, value, allowed):
        super().__init__("type: %r is not a check type; allowed: %s"
                         % (value, ", ".join(allowed)))
        self.allowed = allowed


class CheckService:
    def __init__(self, conf, connection=None):
        self.conf = conf
        self.types = suites.available_types(conf)
        self.suites = {t: suites.load_suite(t, conf) for t in self.types}
        self._validate_suites()
        self.operator_map = self._load_operator_map()
        self._offer_workloads()
        self.conn = connection or cloud.connect(
            conf.cloud.cloud, conf.cloud.clouds_file, conf.cloud.timeout,
            conf.cloud.region_name)
        self.rally = tasks.RallyTasks(conf)
        self.is_admin = self._is_admin()
        # The password goes into Rally's database only when Rally's engine will log in
        # with it (the check types that are not recorded in-process).
        self.rally.ensure_env(tasks.env_spec(
            self.conn.config, self.is_admin,
            store_password=any(t not in RECORDED for t in self.types)))
        self._pool = concurrent.futures.ThreadPoolExecutor(
            max_workers=conf.api.workers, thread_name_prefix="cpulse-run")
        self._stop = threading.Event()
        self._periodic = None
        self._done = {}   # handle -> Event, for runs queued or running in this process
        # (project id or None, frozenset of check types) -> the handle queued or running
        self._active = {}
        self._lock = threading.Lock()
        self._long_polls = threading.BoundedSemaphore(conf.api.max_long_polls)
        self._hosts = (-HOSTS_TTL - 1, frozenset())   # (listed at, host names)
        self._hosts_lock = threading.Lock()
        self._recover()

    def _validate_suites(self):
        suite = self.suites.get(results.CheckType.ENDPOINT)
        if suite is not None:
            try:
                endpoint.check_services(suite.get("services", endpoint.SERVICES))
            except ValueError as exc:
                raise suites.SuiteError("suite endpoint.yaml: %s" % exc) from None

    def _load_operator_map(self):
        """The operator checks' service map, validated now: a bad one stops the server
        with the key it is about; without one the operator type is not offered."""
        if results.CheckType.OPERATOR not in self.types:
            return None
        args = self.task_args(results.CheckType.OPERATOR)
        try:
            operator.validate_checks(args.get("checks") or ())
        except ValueError as exc:
            raise suites.SuiteError("suite operator.yaml: %s" % exc) from None
        if not args.get("service_map"):
            LOG.info("operator checks not offered: no [operator] service_map")
            self.types.remove(results.CheckType.OPERATOR)
            return None
        try:
            return operator.servicemap.load(args["service_map"])
        except operator.ServiceMapError as exc:
            raise suites.SuiteError("[operator] %s" % exc) from None

    def _offer_workloads(self):
        """The types that boot VMs (functional, comprehensive) are offered when their
        arguments name an image and a flavor ([functional] image_file and flavor, or the
        suite's); the image is checked now, naming the option."""
        for check_type in [t for t in _WORKLOAD_TYPES if t in self.types]:
            args = self.task_args(check_type)
            if not args.get("image_file") or not args.get("flavor"):
                LOG.info("%s checks not offered: no [functional] image_file and flavor",
                         check_type.value)
                self.types.remove(check_type)
            elif not os.path.isfile(args["image_file"]):
                raise suites.SuiteError("[functional] image_file: %s is not a file"
                                        % args["image_file"])

    def _is_admin(self):
        try:
            return service_states.can_read_states(self.conn)
        except Exception as exc:
            LOG.warning("cannot tell whether the configured user is admin (%s); assuming "
                        "not", runner.describe_error(exc, self.conf.cloud.timeout,
                                                     cloud=self.conn.config.name))
            return False

    def _recover(self):
        # Runs in flight when the previous server stopped: keep what they recorded.
        for handle in self.rally.interrupted():
            self.rally.mark_interrupted(handle, "the CloudPulse server stopped during the run")

    @property
    def runs_dir(self):
        return os.path.join(self.conf.state_path, "runs")

    def start_sweeper(self):
        """Remove, in the background, what workload runs killed with a previous server
        left in the cloud (every workload run also sweeps before it starts)."""
        if not any(t in self.types for t in _WORKLOAD_TYPES):
            return None

        def sweep():
            try:
                removed = workload.sweep(self.conn, workload.RunRegistry(self.runs_dir))
                LOG.info("sweeper at start: %s", "removed %s" % ", ".join(removed)
                         if removed else "nothing left by dead runs")
            except Exception as exc:
                LOG.warning("sweeper at start failed: %s", runner.describe_error(
                    exc, self.conf.cloud.timeout, cloud=self.conn.config.name))
        thread = threading.Thread(target=sweep, name="cpulse-sweeper", daemon=True)
        thread.start()
        return thread

    # -- API -------------------------------------------------------------------------
    def parse_types(self, value):
        allowed = [t.value for t in self.types] + [ALL]
        if value == ALL:
            return list(self.types)
        if isinstance(value, str) and value in allowed:
            return [results.CheckType(value)]
        raise UnknownCheckType(value, allowed)

    def submit(self, check_types, project_id=None):
        """(handle, new): a new run of `check_types` for `project_id` (None: the
        server's own), or that project's run of the same types already queued or
        running (a second one would only add load on the cloud).  QueueFull when
        max_active_runs are queued or running, or max_active_runs_per_project of the
        project's."""
        key = (project_id, frozenset(check_types))
        with self._lock:
            handle = self._active.get(key)
            if handle is not None:
                return handle, False
            if len(self._done) >= self.conf.api.max_active_runs:
                raise QueueFull(len(self._done))
            if project_id is not None:
                mine = sum(1 for project, _ in self._active if project == project_id)
                if mine >= self.conf.api.max_active_runs_per_project:
                    raise QueueFull(mine, project_id)
            handle = self.rally.create_run(check_types, project_id)
            self._done[handle] = threading.Event()
            self._active[key] = handle
        self._pool.submit(self._execute, handle, check_types)
        return handle, True

    def get(self, handle, wait=0.0):
        """The run of a handle (None: no such run); with wait, first up to `wait`
        seconds for it to finish (a long poll: the client learns the result the moment
        it is recorded).  Beyond max_long_polls waiting at once, answered at once:
        waiting clients never hold every request thread."""
        done = self._done.get(handle)
        if wait > 0 and done is not None and self._long_polls.acquire(blocking=False):
            try:
                done.wait(wait)
            finally:
                self._long_polls.release()
        return self.rally.get_run(handle)

    def list_runs(self, **filters):
        """The runs' summaries, newest first (RallyTasks.list_runs' filters)."""
        return self.rally.list_runs(**filters)

    def host_names(self):
        """The cloud's host names (service_states.host_names), masked in what a project
        member reads: listed at most every HOSTS_TTL seconds; the last list when the
        cloud does not answer."""
        with self._hosts_lock:
            listed_at, hosts = self._hosts
            if time.monotonic() - listed_at > HOSTS_TTL:
                try:
                    hosts = frozenset(service_states.host_names(self.conn))
                except Exception as exc:
                    LOG.warning("cannot list the cloud's hosts for the member view: %s",
                                runner.describe_error(exc, self.conf.cloud.timeout,
                                                      cloud=self.conn.config.name))
                self._hosts = (time.monotonic(), hosts)
            return hosts

    def task_args(self, check_type):
        args = dict(self.suites[check_type])
        args.setdefault("timeout", self.conf.cloud.timeout)
        args.setdefault("horizon_url", self.conf.cloud.horizon_url)
        for group, names in _CONF_ARGS.get(check_type, ()):
            for opt in names:
                if getattr(self.conf[group], opt) is not None:
                    args.setdefault(opt, getattr(self.conf[group], opt))
        if check_type in _WORKLOAD_TYPES:
            args.setdefault("runs_dir", self.runs_dir)
        return args

    def engine_args(self, check_type):
        """The task arguments of a run through Rally's engine."""
        args = self.task_args(check_type)
        if check_type == results.CheckType.FUNCTIONAL:
            # operator mode: a tenant's workload in a project made for the run
            args.setdefault("new_tenant", self.is_admin)
        return args

    def _execute(self, handle, check_types):
        try:
            engine_types = [t for t in check_types if t not in RECORDED]
            for check_type in check_types:
                if check_type in RECORDED:
                    self._run_recorded(handle, check_type)
            if engine_types:
                # One Rally task per handle: the engine runs the remaining types in it.
                self.rally.start_engine(
                    handle, [(t, self.engine_args(t)) for t in engine_types])
            else:
                self.rally.set_finished(handle)
        except Exception:
            LOG.exception("check run %s crashed", handle)
            self.rally.mark_interrupted(handle, "the run crashed; see the server log")
        finally:
            with self._lock:
                self._active = {k: h for k, h in self._active.items() if h != handle}
                self._done.pop(handle).set()

    def _run_recorded(self, handle, check_type):
        args = self.task_args(check_type)
        self.rally.set_running(handle)
        started = time.time()
        check_results = RECORDED[check_type](self, args)
        self.rally.record(handle, check_type, args, check_results, started, time.time())

    # -- periodic ----------------------------------------------------------------------
    def start_periodic(self, intervals):
        """Submit each type every `intervals[type]` seconds until stop(), each time up to
        [periodic] jitter of the interval late; the first time one interval after the
        type's last recorded run (at once when it is overdue), not one after this start.
        Also prunes the runs past [retention], now and every PRUNE_EVERY seconds."""
        intervals = {t: s for t, s in intervals.items() if t in self.types}

        def loop():
            self._prune()
            next_prune = time.monotonic() + PRUNE_EVERY
            due = {t: self._first_due(t, s) for t, s in intervals.items()}
            for t, when in due.items():
                LOG.info("periodic %s check: every %d s, next in %d s", t.value,
                         intervals[t], when - time.monotonic())
            while not self._stop.is_set():
                now = time.monotonic()
                if now >= next_prune:
                    self._prune()
                    next_prune = now + PRUNE_EVERY
                for t, when in due.items():
                    if now >= when:
                        due[t] = now + intervals[t] + self._jitter(intervals[t])
                        self._submit_periodic(t)
                self._stop.wait(max(0.1, min([next_prune, *due.values()]) - time.monotonic()))

        self._periodic = threading.Thread(target=loop, name="cpulse-periodic", daemon=True)
        self._periodic.start()

    def _jitter(self, interval):
        return random.uniform(0, self.conf.periodic.jitter * interval)

    def _first_due(self, check_type, interval):
        """time.monotonic() when a type is first due: one interval after its last run."""
        last = self.rally.last_run_at(check_type)
        since = (results.utcnow() - last).total_seconds() if last else interval
        return time.monotonic() + max(0.0, interval - since) + self._jitter(interval)

    def _submit_periodic(self, check_type):
        with self._lock:   # never two runs of a type at once, an `all` run included
            busy = next((h for (_, types), h in self._active.items()
                         if check_type in types), None)
        if busy is not None:
            LOG.info("periodic %s check: run %s still in flight", check_type.value, busy)
            return
        try:
            handle, new = self.submit([check_type])
        except QueueFull as exc:
            LOG.warning("periodic %s check skipped: %s", check_type.value, exc)
            return
        LOG.info("periodic %s check %s: %s", check_type.value,
                 "started" if new else "already in flight", handle)

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

    def stop(self, wait=True):
        self._stop.set()
        self._pool.shutdown(wait=wait)
