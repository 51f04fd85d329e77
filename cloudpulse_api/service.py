"""The facade's engine room: start check runs in the background, answer by handle,
and run each check type periodically at its configured interval."""

import collections
import logging
import os
import threading
import time

from cloudpulse.checks import endpoint
from cloudpulse.checks import runner
from cloudpulse.checks import service_states
from cloudpulse.checks import operator
from cloudpulse.checks.operator import upgrade_status
from cloudpulse.checks import upgrade
from cloudpulse.checks import workload
from cloudpulse.checks.upgrade import created
from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import coordination
from cloudpulse import logs
from cloudpulse import results
from cloudpulse import suites
from cloudpulse_rally import history
from cloudpulse_rally import notifications
from cloudpulse_rally import queue
from cloudpulse_rally import snapshots
from cloudpulse_rally import tasks

LOG = logging.getLogger(__name__)

ALL = "all"
FINISHED_RUNS = 1000   # runs that ended an API process keeps in memory for GETs
HOSTS_TTL = 300      # seconds a list of the cloud's hosts serves the member view


def _endpoint_results(cloud_checks, args, claimed):
    return endpoint.run_endpoint_checks(
        cloud_checks.conn, services=args.get("services", endpoint.SERVICES),
        horizon_url=args.get("horizon_url"), timeout=args["timeout"])


def _operator_results(cloud_checks, args, claimed):
    # The map loaded (and validated) at start; the server's connection serves the
    # control-plane check (admin: compared with the map; otherwise skipped).
    return operator.run_operator_checks(
        cloud_checks.operator_map, operator.settings_from_args(args),
        checks=args.get("checks") or tuple(operator.CHECKS),
        api_connection=cloud_checks.conn, api_timeout=args["timeout"],
        **operator.probe_options_from_args(args))


def _upgrade_results(cloud_checks, args, claimed):
    """The verify of the snapshot the run names, else of the newest its project took of
    this cloud (read with the server's credentials, filtered by the snapshot's scope);
    with `watch` (seconds), the watch of its workloads instead, until then or until the
    API stops it."""
    if "create" in claimed.args:
        return _create_results(cloud_checks, args, claimed)
    if "remove" in claimed.args:
        return _remove_results(cloud_checks, claimed)
    store = cloud_checks.snapshots
    named = claimed.args.get("snapshot")
    if named:
        # the API let the run name it (an admin may name any project's)
        stored = store.get(named, all_projects=True)
        if stored is None:
            return upgrade.no_snapshot("snapshot %s was deleted before its run started"
                                       % named, results.Status.ERROR)
    else:
        stored = store.newest(cloud_checks.name, claimed.project_id)
        if stored is None:
            return upgrade.no_snapshot(
                "no snapshot of this project on cloud %s to verify: take one first "
                "(POST /cpulse/snapshot, cpulse upgrade snapshot)" % cloud_checks.name)
    if "watch" in claimed.args:
        return _watch_results(cloud_checks, stored, claimed)
    return upgrade.verify(cloud_checks.conn, stored.document, stored.handle,
                          timeout=args["timeout"], secret=stored.secret,
                          readiness=cloud_checks.readiness)


def _create_results(cloud_checks, args, claimed):
    """The set a snapshot creates (create true), in the project of the run: with the
    server's credentials in its own project, through the caller's keystone trust in
    another (the API's cloud.delegate; deleted when the run ends).  Made with the
    functional check's steps, proven, and recorded as the snapshot of the run's own
    handle; removed again when a step fails."""
    trust_id = claimed.args.get("trust_id")
    try:
        conn = cloud.on_behalf(cloud_checks.conn, trust_id) if trust_id else cloud_checks.conn
    except cloud.CloudConfigError as exc:
        return upgrade.no_snapshot("create: %s" % exc, results.Status.ERROR)
    spec = created.parse(claimed.args["create"], args["upgrade_cidr"],
                         args["max_created_vms"])
    settings = workload.WorkloadSettings(
        api_timeout=float(args["timeout"]), runs_dir=args["runs_dir"], volume_size=0,
        **{opt: args[opt] for opt in _WORKLOAD_OPTS if opt in args and opt != "cidr"})

    def record(made):
        # read as every snapshot is, with the server's own credentials (a member's
        # trust would not show the VMs' hosts)
        document = upgrade.take(cloud_checks.conn, upgrade.Scope(conn.current_project_id),
                                timeout=args["timeout"], only=made.ids)
        document["created"] = made.document()
        cloud_checks.snapshots.add(cloud_checks.name, claimed.project_id, document,
                                   upgrade.taken_at(document), handle=claimed.handle,
                                   secret=made.private_key)
    try:
        return created.CreatedSet(conn, settings, claimed.handle, spec, record,
                                  trust_id=trust_id, sweeper_conn=cloud_checks.conn).run()
    finally:
        if trust_id:   # the set is removed and verified with the server's own credentials
            try:
                conn.identity.delete_trust(trust_id, ignore_missing=True)
            except Exception as exc:   # noqa: BLE001 - said; the sweeper cannot see it
                LOG.warning("run %s: could not delete trust %s: %s", claimed.handle,
                            trust_id, runner.describe_error(exc))
            conn.close()


def _remove_results(cloud_checks, claimed):
    """The removal of what a snapshot created, then of the snapshot (kept, to try
    again, while something of its set is left)."""
    handle = claimed.args["remove"]
    stored = cloud_checks.snapshots.get(handle, all_projects=True)
    if stored is None:
        return upgrade.no_snapshot("snapshot %s was deleted before its removal run started"
                                   % handle)
    started = results.utcnow()
    removed, problems = created.remove(cloud_checks.conn, stored.created)
    if not problems:
        cloud_checks.snapshots.delete(handle, all_projects=True)
    return [upgrade.removal_result(handle, removed, problems, started)]


def _watch_results(cloud_checks, stored, claimed):
    limits = cloud_checks.conf.upgrade
    minor = claimed.args.get("minor", False)   # a minor update may cut nothing
    started = results.utcnow()
    named = upgrade.labels(stored.document["resources"]).get("vm", {})
    with created.inside_pings(stored.document, stored.secret, named) as inside:
        watched = upgrade.watch(
            upgrade.watch_targets(stored.document),
            min(claimed.args["watch"], limits.max_watch),
            should_stop=lambda: cloud_checks.stop_requested(claimed.handle), inside=inside)
    return upgrade.watch_results(stored.document, stored.handle, watched, started,
                                 0.0 if minor else limits.max_outage,
                                 0.0 if minor else limits.max_loss)


# Light check types (they create nothing) run in-process on the server's warm connection
# to the cloud and are recorded into Rally:
# {type: function(CloudChecks, task_args, queue.Claimed) -> [CheckResult]}.
# The other types go through the Rally engine (contexts, cleanup).
RECORDED = {results.CheckType.ENDPOINT: _endpoint_results,
            results.CheckType.OPERATOR: _operator_results,
            results.CheckType.UPGRADE: _upgrade_results}

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
    # a snapshot that creates its set (create true) builds it as the functional check
    results.CheckType.UPGRADE: [("upgrade", ("max_created_vms",)),
                                ("functional", _WORKLOAD_OPTS)],
}
# The types that boot VMs: offered when [functional] names an image and a flavor.
_WORKLOAD_TYPES = (results.CheckType.FUNCTIONAL, results.CheckType.COMPREHENSIVE)


class UnknownCheckType(ValueError):
    def __init__(self, value, allowed):
        super().__init__("type: %r is not a check type; allowed: %s"
                         % (value, ", ".join(allowed)))
        self.allowed = allowed


class StartFailed(Exception):
    """A command could not start: the message to print, and its exit code."""

    def __init__(self, message, exit_code):
        super().__init__(message)
        self.exit_code = exit_code


def start(prog, argv, make=lambda service: None):
    """(conf, CheckService, make(service)) of a command line (oslo.config's arguments,
    and --debug), logging set up; StartFailed saying why not: exit 2 for a bad
    configuration, 1 for anything else."""
    logs.setup("--debug" in argv)
    argv = [a for a in argv if a != "--debug"]
    try:
        conf = cp_conf.load(argv)
        service = CheckService(conf)
        return conf, service, make(service)
    except (cp_conf.ConfigError, suites.SuiteError, cloud.CloudConfigError,
            tasks.RallyError) as exc:
        raise StartFailed("%s: %s" % (prog, exc), 2) from None
    except Exception as exc:
        LOG.debug("start failed", exc_info=True)
        raise StartFailed("%s: cannot start: %s: %s" % (
            prog, type(exc).__name__, results.redact(str(exc))), 1) from None


class UnknownCloud(ValueError):
    def __init__(self, value, allowed):
        super().__init__("cloud: %r is not a cloud this server checks; allowed: %s"
                         % (value, ", ".join(allowed)))
        self.allowed = allowed


class CheckService:
    """The checks of every cloud this server checks ([cloud] clouds, or the one [cloud]
    cloud), over one Rally database: one queue, one history, one outbox for them all."""

    def __init__(self, conf, connection=None):
        self.conf = conf
        self.coordinator = coordination.Coordinator(conf)
        settings = cp_conf.clouds(conf)
        clouds = [CloudChecks(conf, s, connection if i == 0 else None)
                  for i, s in enumerate(settings)]
        # Once at a time, however many API and runner processes start together: the
        # database's schema, the Rally environments and the queue's table.
        with self.coordinator.lock("setup"):
            self.rally = tasks.RallyTasks(conf)
            for i, checks in enumerate(clouds):
                checks.rally = self.rally
                # The password goes into Rally's database only when Rally's engine will
                # log in with it (the check types that are not recorded in-process).
                self.rally.ensure_env(tasks.env_spec(
                    checks.conn.config, checks.is_admin,
                    store_password=any(t not in RECORDED for t in checks.types)),
                    cloud=checks.name, first=i == 0)
            self.queue = queue.RunQueue(self.rally.engine(), first_cloud=clouds[0].name)
            self.notifications = notifications.NotificationStore(self.rally.engine())
            self.history = history.HistoryStore(self.rally.engine())
            self.snapshots = snapshots.SnapshotStore(self.rally.engine())
        for checks in clouds:
            checks.snapshots = self.snapshots
            checks.stop_requested = self.queue.stop_requested
        # conf.clouds() refused an entry named twice: a cloud's name is its entry
        self.clouds = collections.OrderedDict((c.name, c) for c in clouds)
        self._long_polls = threading.BoundedSemaphore(conf.api.max_long_polls)
        self._finished_runs = collections.OrderedDict()   # handle -> CheckRun, LRU
        self._runs_lock = threading.Lock()

    def cloud(self, name=None):
        """The CloudChecks of the cloud named `name` (None: the first, the default);
        UnknownCloud naming those there are."""
        if name is None:
            return next(iter(self.clouds.values()))
        if isinstance(name, str) and name in self.clouds:
            return self.clouds[name]
        raise UnknownCloud(name, list(self.clouds))

    def checks_of(self, run):
        """The CloudChecks of the cloud a run checked (the first for a run that names
        none, or a cloud no longer configured)."""
        return self.clouds.get(run.cloud) or self.cloud()

    @property
    def types(self):
        """The check types offered on any of the clouds, in CheckType order."""
        offered = {t for c in self.clouds.values() for t in c.types}
        return [t for t in results.CheckType if t in offered]

    # -- API -------------------------------------------------------------------------
    def parse_types(self, value, cloud=None):
        """[CheckType] of a request's `type` (a type or `all`) on `cloud`'s checks
        (None: the first cloud's); UnknownCheckType naming those allowed."""
        types = self.cloud(cloud).types
        allowed = [t.value for t in types] + [ALL]
        if value == ALL:
            return list(types)
        if isinstance(value, str) and value in allowed:
            return [results.CheckType(value)]
        raise UnknownCheckType(value, allowed)

    def submit(self, check_types, project_id=None, cloud=None, args=None):
        """(handle, new): a new queued run of `check_types` on `cloud` (None: the
        first) for `project_id` (None: the server's own), or that project's run of the
        same types on that cloud already queued or running (a second one would only add
        load on the cloud).  `args`: what the run is asked with, beyond its types (an
        upgrade run's snapshot, default the project's newest on that cloud when the run
        starts; its watch).  queue.QueueFull when max_active_runs are queued or
        running, or max_active_runs_per_project of the project's.  A runner
        (cloudpulse_api.run_worker) takes it from the queue."""
        name = self.cloud(cloud).name
        return self.queue.add(
            check_types, project_id, self.conf.api.max_active_runs,
            self.conf.api.max_active_runs_per_project,
            lambda handle: self.rally.create_run(check_types, project_id, handle, name),
            self.rally.discard_run, cloud=name, args=args)

    def get(self, handle, wait=0.0):
        """The run of a handle (None: no such run); with wait, first up to `wait`
        seconds for it to finish (a long poll: the client learns the result as soon as
        it is recorded).  Beyond max_long_polls waiting at once, answered at once:
        waiting clients never hold every request thread."""
        with self._runs_lock:
            if handle in self._finished_runs:
                self._finished_runs.move_to_end(handle)
                return self._finished_runs[handle]
        if wait > 0 and self._long_polls.acquire(blocking=False):
            try:
                self.queue.wait_finished(handle, wait)
            finally:
                self._long_polls.release()
        run = self.rally.get_run(handle)
        if run is not None and run.state in results.ENDED and self.queue.in_flight(handle):
            _not_over_yet(run)
        elif run is not None and run.state in results.ENDED:
            # A run that ended never changes: read once from Rally's tables (several
            # queries and JSON) and kept for the next GETs, the newest FINISHED_RUNS.
            with self._runs_lock:
                self._finished_runs[handle] = run
                while len(self._finished_runs) > FINISHED_RUNS:
                    self._finished_runs.popitem(last=False)
        return run

    def list_runs(self, **filters):
        """The runs' summaries, newest first (RallyTasks.list_runs' filters)."""
        runs = self.rally.list_runs(**filters)
        if any(run.state in results.ENDED for run in runs):
            in_flight = self.queue.handles()
            for run in runs:
                if run.state in results.ENDED and run.handle in in_flight:
                    _not_over_yet(run)
        return runs


class CloudChecks:
    """One checked cloud: its connection, check types, suites, service map and the
    arguments of its runs; it executes the runs claimed for it."""

    def __init__(self, conf, settings, connection=None):
        self.conf, self.settings = conf, settings
        self.timeout = settings.timeout
        self.types = suites.available_types(conf, settings.scenarios_dir)
        self.suites = {t: suites.load_suite(t, conf, settings.scenarios_dir)
                       for t in self.types}
        self._validate_suites()
        self.operator_map = self._load_operator_map()
        self._offer_workloads()
        self.conn = connection or cloud.connect(
            settings.cloud, settings.clouds_file, settings.timeout, settings.region_name)
        # Results and history are labelled with the clouds.yaml entry's name.
        self.name = settings.name or self.conn.config.name
        self.is_admin = self._is_admin()
        self.rally = None       # the server's RallyTasks, set by CheckService
        self.snapshots = None   # and its SnapshotStore
        self.stop_requested = None   # and its queue's: handle -> told to stop (a watch)
        self._hosts = (-HOSTS_TTL - 1, frozenset())   # (listed at, host names)
        self._hosts_lock = threading.Lock()

    def __repr__(self):
        return "CloudChecks(%r)" % self.name

    def _where(self):
        # the option a message names: this cloud's own section when it has one
        return ("[cloud:%s] " % self.settings.name) if self.conf.cloud.clouds else ""

    def _validate_suites(self):
        suite = self.suites.get(results.CheckType.ENDPOINT)
        if suite is not None:
            try:
                endpoint.check_services(suite.get("services", endpoint.SERVICES))
            except ValueError as exc:
                raise suites.SuiteError("%ssuite endpoint.yaml: %s" % (self._where(), exc)) \
                    from None

    def _load_operator_map(self):
        """The operator checks' service map, validated now: a bad one stops the server
        with the key it is about; without one the operator type is not offered."""
        if results.CheckType.OPERATOR not in self.types:
            return None
        args = self.task_args(results.CheckType.OPERATOR)
        try:
            operator.validate_checks(args.get("checks") or ())
        except ValueError as exc:
            raise suites.SuiteError("%ssuite operator.yaml: %s" % (self._where(), exc)) \
                from None
        if not args.get("service_map"):
            LOG.info("%soperator checks not offered: no [operator] service_map",
                     self._where())
            self.types.remove(results.CheckType.OPERATOR)
            return None
        try:
            return operator.servicemap.load(args["service_map"])
        except operator.ServiceMapError as exc:
            raise suites.SuiteError("%s[operator] %s" % (self._where(), exc)) from None

    def _offer_workloads(self):
        """The types that boot VMs (functional, comprehensive) are offered when their
        arguments name an image and a flavor ([functional] image_file and flavor, or the
        suite's); the image is checked now, naming the option."""
        for check_type in [t for t in _WORKLOAD_TYPES if t in self.types]:
            args = self.task_args(check_type)
            if not args.get("image_file") or not args.get("flavor"):
                LOG.info("%s%s checks not offered: no [functional] image_file and flavor",
                         self._where(), check_type.value)
                self.types.remove(check_type)
            elif not os.path.isfile(args["image_file"]):
                raise suites.SuiteError("%s[functional] image_file: %s is not a file"
                                        % (self._where(), args["image_file"]))

    def _is_admin(self):
        try:
            return service_states.can_read_states(self.conn)
        except Exception as exc:
            LOG.warning("cannot tell whether the configured user of cloud %s is admin "
                        "(%s); assuming not", self.name,
                        runner.describe_error(exc, self.timeout, cloud=self.name))
            return False

    @property
    def runs_dir(self):
        """Where its workload runs note what they create (the sweeper's): one directory
        per cloud, so that each cloud's sweeper removes only its own."""
        if not self.conf.cloud.clouds or self.settings.name == self.conf.cloud.clouds[0]:
            return os.path.join(self.conf.state_path, "runs")
        return os.path.join(self.conf.state_path, "runs-%s" % _file_name(self.settings.name))

    @property
    def intervals(self):
        """{CheckType: seconds} of the types it runs periodically (its own intervals,
        else [periodic]'s), of those it offers."""
        return {t: s for t, s in cp_conf.intervals(self.conf, self.settings).items()
                if t in self.types}

    @property
    def max_gaps(self):
        return cp_conf.max_gaps(self.conf, self.settings)

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
                    LOG.warning("cannot list the hosts of cloud %s for the member view: "
                                "%s", self.name,
                                runner.describe_error(exc, self.timeout, cloud=self.name))
                self._hosts = (time.monotonic(), hosts)
            return hosts

    def task_args(self, check_type):
        args = dict(self.suites[check_type])
        args.setdefault("timeout", self.settings.timeout)
        args.setdefault("horizon_url", self.settings.horizon_url)
        if check_type == results.CheckType.OPERATOR and self.settings.service_map:
            args.setdefault("service_map", self.settings.service_map)
        for group, names in _CONF_ARGS.get(check_type, ()):
            for opt in names:
                if getattr(self.conf[group], opt) is not None:
                    args.setdefault(opt, getattr(self.conf[group], opt))
        if check_type in _WORKLOAD_TYPES + (results.CheckType.UPGRADE,):
            args.setdefault("runs_dir", self.runs_dir)
        if check_type == results.CheckType.UPGRADE:
            args.setdefault("upgrade_cidr", self.conf.upgrade.cidr)
        return args

    @property
    def readiness(self):
        """() -> {service@node: Readiness} of the control plane's own upgrade checks
        over SSH ([operator] service_map's nodes), or None without a map."""
        if self.operator_map is None:
            return None
        settings = operator.settings_from_args(self.task_args(results.CheckType.OPERATOR))
        return lambda: upgrade_status.read_all(self.operator_map, settings)

    @property
    def creates_sets(self):
        """Whether a snapshot may create its set here: the functional check's image and
        flavor are configured."""
        args = self.task_args(results.CheckType.UPGRADE)
        return bool(args.get("image_file") and args.get("flavor"))

    def engine_args(self, check_type):
        """The task arguments of a run through Rally's engine."""
        args = self.task_args(check_type)
        if check_type == results.CheckType.FUNCTIONAL:
            # operator mode: a tenant's workload in a project made for the run
            args.setdefault("new_tenant", self.is_admin)
        return args

    def execute(self, claimed):
        """Run a claimed run's checks (a queue.Claimed) and record them in its Rally
        task; a crash is recorded as the run's interruption, never raised."""
        handle = claimed.handle
        try:
            engine_types = [t for t in claimed.check_types if t not in RECORDED]
            for check_type in claimed.check_types:
                if check_type in RECORDED:
                    self._run_recorded(claimed, check_type)
            if engine_types:
                # One Rally task per handle: the engine runs the remaining types in it.
                self.rally.start_engine(
                    handle, [(t, self.engine_args(t)) for t in engine_types], self.name)
            else:
                self.rally.set_finished(handle)
        except Exception:
            LOG.exception("check run %s crashed", handle)
            self.rally.mark_interrupted(handle, "the run crashed; see the server log")

    def _run_recorded(self, claimed, check_type):
        args = self.task_args(check_type)
        self.rally.set_running(claimed.handle)
        started = time.time()
        check_results = RECORDED[check_type](self, args, claimed)
        self.rally.record(claimed.handle, check_type, args, check_results, started,
                          time.time())


def _file_name(name):
    """A cloud's name as a file name (clouds.yaml names are any string)."""
    return "".join(c if c.isalnum() or c in "._-" else "_" for c in name)


def _not_over_yet(run):
    """A run whose end Rally has recorded while it is still on the queue (its runner
    records its health transitions as it takes it off) is still running to a client:
    a POST of the same types would be handed this very run until it is off."""
    run.state = results.RunState.RUNNING
    if isinstance(run, results.RunSummary):
        run.healthy = False
