"""Rally as CloudPulse's engine and store: environment, tasks, results by handle.

A handle IS a Rally task UUID, tagged `cloudpulse`, `cloudpulse-type:<type>` and, when a
project asked for it, `cloudpulse-project:<project id>`, so a run survives a server
restart and `rally task report <handle>` shows it.

Two ways a check type runs:
- through the Rally engine (`rally.api` task.start of task_templates/<type>.yaml), for
  checks that need Rally's contexts and cleanup (functional, comprehensive, upgrade);
- recorded: light probes that create nothing (endpoint) run in-process on a warm
  connection and are written into the same task as the engine would write them (one
  subtask, one workload `CloudPulse.<type>`, one iteration with the results table), so
  Rally's per-task fixed cost (seconds) stays off the lightweight path.
"""

import datetime
import functools
import json
import logging
import os
import subprocess
import sys
import threading
import time

from cloudpulse import cloud
from cloudpulse import conf as cp_conf
from cloudpulse import results
from cloudpulse import suites
from cloudpulse_rally import report

LOG = logging.getLogger(__name__)

_API_LOCK = threading.Lock()
_API = {}


class RallyError(Exception):
    """Rally could not be set up or could not run a task; the message says why."""


class UnknownMarker(LookupError):
    """A list's marker is not the handle of a run the caller may list."""

    def __init__(self, marker):
        super().__init__("marker: no run %r" % marker)


def _begin_immediate(engine):
    """Every transaction on a SQLite Rally DB starts with BEGIN IMMEDIATE.

    oslo.db opens SQLite transactions with a deferred BEGIN: one that reads, then writes
    while another connection is writing, is refused at once with "database is locked"
    (SQLite does not wait when waiting would deadlock). The server writes from its HTTP
    threads and its run workers at the same time, so a run could crash that way. An
    immediate BEGIN takes the write lock up front; concurrent transactions then wait their
    turn (a few ms each) instead of failing.
    """
    import sqlalchemy

    # oslo.db's own "begin" listener emits the deferred BEGIN: replace it (its "commit" and
    # "rollback" listeners, which clear the same marker, stay).
    deferred = [fn for fn in engine.dispatch.begin
                if getattr(fn, "__name__", "") == "_sqlite_emit_begin"]
    if not deferred:
        raise RallyError("[rally] connection: this oslo.db opens SQLite transactions in a way "
                         "CloudPulse does not know; use MySQL or PostgreSQL")
    for fn in deferred:
        sqlalchemy.event.remove(engine, "begin", fn)

    def begin(conn):
        if "in_transaction" not in conn.info:   # the marker oslo.db's listeners keep
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            conn.info["in_transaction"] = True

    sqlalchemy.event.listen(engine, "begin", begin)


_STATE_DIR_MODE = 0o700   # the Rally DB holds the cloud's credential
_STATE_FILE_MODE = 0o600


def _sqlite_path(connection):
    prefix = "sqlite:///"
    return connection[len(prefix):] if connection.startswith(prefix) else None


def _owner_only(path, mode):
    """Make `path` no more open than `mode`; warn when it was."""
    if not path or not os.path.exists(path):
        return
    current = os.stat(path).st_mode & 0o777
    if current & ~mode:
        LOG.warning("%s was readable by others (mode %o): set to %o", path, current, mode)
        os.chmod(path, mode)


def secure_state(state_path, connection):
    """The state directory exists, owner-only; a SQLite DB in it is created owner-only
    before Rally opens it (and fixed, with a warning, when an older one is looser)."""
    os.makedirs(state_path, mode=_STATE_DIR_MODE, exist_ok=True)
    _owner_only(state_path, _STATE_DIR_MODE)
    db_path = _sqlite_path(connection)
    if db_path and not os.path.exists(db_path):
        os.close(os.open(db_path, os.O_WRONLY | os.O_CREAT, _STATE_FILE_MODE))
    _owner_only(db_path, _STATE_FILE_MODE)


def rally_api(connection, state_path):
    """The process's rally.api.API on `connection`, DB created.  Rally's configuration and
    DB engine are process-wide: asking for another connection switches the process to it
    (the server only ever uses one; tests use several)."""
    with _API_LOCK:
        if connection in _API:
            return _API[connection]
        from rally import api as rally_api_mod
        from rally.common import db

        if _API:   # Rally's engine still points at the previous connection's DB
            db.api.engine_reset()
            _API.clear()

        secure_state(state_path, connection)
        rally_conf = os.path.join(state_path, "rally.conf")
        # The URL may hold a DB password: owner-only from the start.
        fd = os.open(rally_conf, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, _STATE_FILE_MODE)
        with os.fdopen(fd, "w") as f:
            f.write("[database]\nconnection = %s\n" % connection)
        _owner_only(rally_conf, _STATE_FILE_MODE)
        try:
            api = rally_api_mod.API(config_file=rally_conf, skip_db_check=True)
            if db.api.get_engine().dialect.name == "sqlite":
                _begin_immediate(db.api.get_engine())
            if db.schema.schema_revision() is None:
                db.schema.schema_create()
            else:
                db.schema.schema_upgrade()
            _owner_only(_sqlite_path(connection), 0o600)
        except RallyError:
            raise
        except Exception as exc:   # sqlalchemy, oslo.db and Rally each raise their own
            raise RallyError("[rally] connection: cannot set up the Rally database: %s"
                             % results.redact(str(exc).splitlines()[0])) from None
        _API[connection] = api
        return api


def load_plugins():
    """Every Rally plugin (Rally's, rally-openstack's, CloudPulse's), as the engine needs
    them.  Loaded when first needed, not at start: they weigh about 70 MiB, which an API
    process and a runner that only records light checks never use."""
    from rally import plugins
    plugins.load()


def env_spec(cloud_region, is_admin, store_password=True):
    """Rally existing@openstack spec from an openstacksdk CloudRegion.

    Rally's spec has no way to hold a credential but the password itself (no token, no
    application credential), and keeps the spec in its database.  Only the Rally
    engine needs it (the check types that create resources); without
    `store_password` the password is left out (an empty string, which the spec's schema
    accepts) and the recorded check types use the server's own connection."""
    auth = cloud_region.config["auth"]
    user = cloud.password_auth(auth["auth_url"], auth["username"],
                               auth["password"] if store_password else "",
                               auth.get("project_name"), auth.get("user_domain_name"),
                               auth.get("project_domain_name"))
    del user["auth_url"]   # the spec names it once, for every user
    verify = cloud_region.config.get("verify", True)
    spec = {"auth_url": auth["auth_url"],
            "region_name": cloud_region.get_region_name(),
            "endpoint_type": cloud_region.get_interface() or "public",
            "https_insecure": not verify,
            "https_cacert": cloud_region.config.get("cacert") or "",
            "users": [user]}
    if is_admin:
        spec["admin"] = dict(user)
    return {"existing@openstack": spec}


# The scenario a recorded check type's workload is named after, when not CloudPulse.<type>.
_RECORDED_SCENARIOS = {results.CheckType.UPGRADE: "CloudPulse.upgrade_verify"}


def record_workload(task, check_type, task_args, check_results, started, finished,
                    description):
    """Write CheckResults into a Rally task (rally.common.objects.Task) as the engine
    would have: one subtask, one workload `CloudPulse.<type>`, one iteration whose
    output is the results table, atomic actions per check, the failure-rate SLA."""
    # the SLA plugin's own module: Rally's plugins are not all loaded here
    from rally.plugins.task.sla import failure_rate
    from rally.task import sla as rally_sla
    sla_config = {failure_rate.FailureRate.get_name(): {"max": 0}}
    subtask = task.add_subtask(title=check_type.value)
    workload = subtask.add_workload(
        name=_RECORDED_SCENARIOS.get(check_type, "CloudPulse.%s" % check_type.value), description=description, position=0,
        runner={"times": 1, "concurrency": 1}, runner_type="constant",
        contexts={}, hooks=[], sla=sla_config, args=task_args)
    bad = [r for r in check_results if not r.ok]
    iteration = {
        "timestamp": started, "duration": finished - started, "idle_duration": 0.0,
        "error": (["ChecksFailed", "; ".join("%s: %s" % (r.name, r.details)
                                              for r in bad), ""] if bad else []),
        "output": {"additive": [], "complete": [report.to_output(check_results)]},
        "atomic_actions": report.atomic_actions(check_results),
    }
    sla_checker = rally_sla.SLAChecker({"sla": sla_config})
    sla_checker.add_iteration(iteration)
    workload.add_workload_data(0, {"raw": [iteration]})
    workload.set_results(
        load_duration=finished - started, full_duration=finished - started,
        start_time=started, contexts_results=[], sla_results=sla_checker.results())
    subtask.update_status("finished")


def create_env_from_stdin():
    """The child's side of _create_env_apart: {connection, state_path, name, spec} on
    standard input."""
    from rally.env import env_mgr
    asked = json.load(sys.stdin)
    rally_api(asked["connection"], asked["state_path"])
    env_mgr.EnvManager.create(asked["name"], asked["spec"],
                              description="created by CloudPulse")


def _python():
    """This environment's Python (under uwsgi, sys.executable is uwsgi)."""
    if os.path.basename(sys.executable).startswith("python"):
        return sys.executable
    return os.path.join(sys.prefix, "bin", "python3")


def _create_env_apart(connection, state_path, name, spec):
    """Create the Rally env in a process of its own: Rally loads every plugin for it (its
    existing@openstack platform checks the spec), 40 MiB that this process would keep
    for good.  The spec (its password) and the database URL go through a pipe, never a
    command line."""
    child = subprocess.run(
        [_python(), "-c", "from cloudpulse_rally import tasks; tasks.create_env_from_stdin()"],
        input=json.dumps({"connection": connection, "state_path": state_path, "name": name,
                          "spec": spec}),
        capture_output=True, text=True, timeout=300)
    if child.returncode != 0:
        last = (child.stderr.strip().splitlines() or ["no message"])[-1]
        raise RallyError("[rally] cannot create the Rally environment %s: %s"
                         % (name, results.redact(last)))


class RallyTasks:
    """The facade's view of Rally: create a run, execute it, read it back."""

    def __init__(self, conf):
        self.conf = conf
        self.api = rally_api(cp_conf.rally_connection(conf), conf.state_path)
        self._envs = {}   # cloud -> the uuid of its Rally env; None: the first one's

    @property
    def env_uuid(self):
        """The Rally env of the first cloud ensured."""
        return self._envs.get(None)

    # -- environment ---------------------------------------------------------------
    def ensure_env(self, spec, cloud=None, first=True):
        """The Rally env of a checked cloud, named [rally] env_name for the `first` cloud
        and env_name-<cloud> for the others; a changed cloud gets a new env (history
        kept)."""
        from rally import exceptions as rally_exc
        from rally.env import env_mgr

        name = self.conf.rally.env_name if first else "%s-%s" % (
            self.conf.rally.env_name, cloud)
        try:
            env = env_mgr.EnvManager.get(name)
        except rally_exc.DBRecordNotFound:
            env = None
        if env is not None:
            stored = {k: v for k, v in env.cached_data["spec"].items()
                      if not k.startswith("!")}
            if stored != spec:
                old = "%s-%d" % (name, int(time.time()))
                LOG.info("cloud credentials changed: Rally env %s renamed %s", name, old)
                env.rename(old)
                env = None
        if env is None:
            from rally import plugins
            if plugins.PLUGINS_LOADED:   # nothing left to spare
                env_mgr.EnvManager.create(name, spec, description="created by CloudPulse")
            else:
                _create_env_apart(cp_conf.rally_connection(self.conf),
                                  self.conf.state_path, name, spec)
            env = env_mgr.EnvManager.get(name)
        self._envs[cloud] = env.uuid
        if first:
            self._envs[None] = env.uuid
        return env.uuid

    # -- runs ------------------------------------------------------------------------
    def create_run(self, check_types, project_id=None, handle=None, cloud=None):
        """A queued run of `check_types` on `cloud` (None: the first) asked for by
        `project_id` (None: the server's), its handle `handle` (a new one when None)."""
        # What api.task.create does, less its per-call environment lookup: ensure_env
        # already proved the environment, and this sits on the POST's path.
        from rally.common import objects
        attributes = {"uuid": handle} if handle else {}
        return objects.Task(env_uuid=self._envs[cloud],
                            tags=report.run_tags(check_types, project_id, cloud),
                            **attributes)["uuid"]

    @staticmethod
    def discard_run(handle):
        """Delete a run that was never queued."""
        _delete_run(handle)

    @staticmethod
    def engine():
        """The SQLAlchemy engine of Rally's database (CloudPulse's queue lives there)."""
        from rally.common.db import api as db_api
        return db_api.get_engine()

    def get_run(self, handle):
        """The CheckRun of a handle, or None when no such CloudPulse task exists."""
        from rally import exceptions as rally_exc
        try:
            task = self.api.task.get(handle, detailed=True)
        except (rally_exc.DBRecordNotFound, rally_exc.NotFoundException):
            return None
        if report.TAG not in (task.get("tags") or []):
            return None
        return report.task_to_run(task)

    def interrupted(self, older_than=0):
        """Handles of the CloudPulse tasks not finished, made more than `older_than`
        seconds ago (asked of the database: it does not read every run kept)."""
        return _unfinished_runs(older_than)

    def last_run_at(self, check_type, cloud=None, first=True):
        """When the newest run of `check_type` on `cloud` was created (UTC datetime), or
        None; the `first` cloud's runs include those that name no cloud (made before
        runs were labelled with theirs)."""
        return _last_run_at(report.TYPE_TAG_PREFIX + check_type.value,
                            report.CLOUD_TAG_PREFIX + cloud if cloud else None, first)

    def list_runs(self, check_type=None, state=None, since=None, project_id=None,
                  all_projects=False, marker=None, limit=50, cloud=None):
        """RunSummaries of the runs, newest first, at most `limit`: of `check_type`, on
        `cloud`, in `state`, created at or after `since` (an aware datetime), of
        `project_id` (None
        with all_projects: every run, the server's own included; None without: none),
        after the handle `marker` (the last of the previous page).  UnknownMarker when
        `marker` is not a run so listed.  A few queries, whatever the number of runs."""
        if project_id is None and not all_projects:
            return []
        return [report.task_summary(**run) for run in _list_tasks(
            report.TYPE_TAG_PREFIX + check_type.value if check_type else report.TAG,
            ([report.PROJECT_TAG_PREFIX + project_id] if project_id else [])
            + ([report.CLOUD_TAG_PREFIX + cloud] if cloud else []),
            state, since, marker, limit)]

    def prune(self, max_age_days, max_per_type):
        """Delete the finished runs older than `max_age_days` days, and those beyond the
        newest `max_per_type` of any check type (0: no such limit): their handles."""
        stale = _stale_runs(max_age_days, max_per_type)
        for handle in stale:
            _delete_run(handle)
        return stale

    def mark_interrupted(self, handle, why):
        from rally.common import objects
        task = objects.Task.get(handle)
        task.set_failed(report.INTERRUPTED, why, "")

    def render(self, check_type, task_args):
        """The Rally task config (dict) of a check type's template with its arguments."""
        import yaml
        template_path, template = suites.load_template(check_type, self.conf)
        rendered = self.api.task.render_template(
            task_template=template, template_dir=os.path.dirname(template_path),
            **task_args)
        return yaml.safe_load(rendered)

    def start_engine(self, handle, typed_args, cloud=None):
        """Run the Rally tasks of [(check_type, task_args)] as one task, the handle's, in
        the Rally env of `cloud` (None: the first)."""
        from rally import exceptions as rally_exc
        load_plugins()
        configs = [self.render(t, args) for t, args in typed_args]
        config = dict(configs[0])
        config["title"] = "CloudPulse %s checks" % ", ".join(t.value for t, _ in typed_args)
        config["subtasks"] = [s for c in configs for s in c["subtasks"]]
        try:
            self.api.task.start(deployment=self._envs[cloud], config=config, task=handle)
        except rally_exc.RallyException as exc:
            # Rally stores validation failures and crashes on the task itself.
            LOG.warning("rally task %s failed: %s", handle, results.redact(str(exc)))

    def record(self, handle, check_type, task_args, check_results, started, finished):
        """Write one recorded workload into the handle's task (the light path)."""
        from rally.common import objects
        record_workload(objects.Task.get(handle), check_type, task_args, check_results,
                        started, finished, "recorded by the CloudPulse server")

    def set_running(self, handle):
        from rally.common import objects
        objects.Task.get(handle).update_status("running")

    def set_finished(self, handle):
        from rally.common import objects
        objects.Task.get(handle).update_status("finished")


# -- queries Rally's API has no call for (they go to its tables through its session) ------
def _with_session(func):
    """func(session, *args) in a session of Rally's database (its own with_session,
    imported when called: Rally's modules are heavy to import)."""
    @functools.wraps(func)
    def call(*args):
        from rally.common.db import api as db_api
        return db_api.with_session(func)(*args)
    return call


def _cloudpulse_tasks(session, *columns, tag=report.TAG):
    from rally.common.db import models
    from rally import consts
    return (session.query(*columns)
            .join(models.Tag, models.Tag.uuid == models.Task.uuid)
            .filter(models.Tag.type == consts.TagType.TASK, models.Tag.tag == tag))


@_with_session
def _unfinished_runs(session, older_than):
    from rally.common.db import models
    cutoff = datetime.datetime.utcnow() - datetime.timedelta(seconds=older_than)
    return [row.uuid for row in _cloudpulse_tasks(session, models.Task.uuid).filter(
        models.Task.status.in_(sorted(report.RUNNING)), models.Task.created_at <= cutoff)]


@_with_session
def _last_run_at(session, type_tag, cloud_tag, untagged_too):
    import sqlalchemy as sa
    from rally.common.db import models
    from rally import consts
    runs = _cloudpulse_tasks(session, models.Task.created_at, tag=type_tag)
    if cloud_tag:
        tagged = session.query(models.Tag.uuid).filter(models.Tag.type == consts.TagType.TASK)
        mine = models.Task.uuid.in_(tagged.filter(models.Tag.tag == cloud_tag))
        if untagged_too:
            mine = sa.or_(mine, models.Task.uuid.notin_(tagged.filter(
                models.Tag.tag.like(report.CLOUD_TAG_PREFIX + "%"))))
        runs = runs.filter(mine)
    row = runs.order_by(models.Task.created_at.desc()).first()
    return row.created_at.replace(tzinfo=datetime.timezone.utc) if row else None


@_with_session
def _stale_runs(session, max_age_days, max_per_type):
    from rally.common.db import models
    finished = models.Task.status.notin_(sorted(report.RUNNING))
    stale = set()
    if max_age_days:
        cutoff = datetime.datetime.utcnow() - datetime.timedelta(days=max_age_days)
        stale.update(row.uuid for row in _cloudpulse_tasks(session, models.Task.uuid)
                     .filter(finished, models.Task.created_at < cutoff))
    if max_per_type:
        for check_type in results.CheckType:
            stale.update(row.uuid for row in _cloudpulse_tasks(
                session, models.Task.uuid, tag=report.TYPE_TAG_PREFIX + check_type.value)
                .filter(finished).order_by(models.Task.created_at.desc())
                .offset(max_per_type))
    return sorted(stale)


def _naive_utc(ts):
    """Rally's DB keeps naive UTC datetimes."""
    return ts.astimezone(datetime.timezone.utc).replace(tzinfo=None)


@_with_session
def _list_tasks(session, tag, also_tags, state, since, marker, limit):
    """list_runs' three queries: the page of tasks, their tags, their iteration counts
    ([{"task": row, "tags": [...], "iterations": n}]: plain data, as Rally's session
    returns)."""
    import sqlalchemy as sa
    from rally.common.db import models
    from rally import consts
    task = models.Task
    runs = _cloudpulse_tasks(session, task.id, task.uuid, task.status,
                             task.validation_result, task.pass_sla, task.created_at,
                             task.updated_at, tag=tag)
    for also in also_tags:   # the project's, the cloud's
        runs = runs.filter(task.uuid.in_(session.query(models.Tag.uuid).filter(
            models.Tag.type == consts.TagType.TASK, models.Tag.tag == also)))
    if marker:
        last = runs.filter(task.uuid == marker).first()
        if last is None:
            raise UnknownMarker(marker)
        runs = runs.filter(sa.or_(task.created_at < last.created_at, sa.and_(
            task.created_at == last.created_at, task.id < last.id)))
    if since:
        runs = runs.filter(task.created_at >= _naive_utc(since))
    if state:
        runs = runs.filter(_state_filter(task, state))
    rows = runs.order_by(task.created_at.desc(), task.id.desc()).limit(limit).all()
    uuids = [row.uuid for row in rows]
    tags, iterations = {}, {}
    if uuids:
        for row in session.query(models.Tag.uuid, models.Tag.tag).filter(
                models.Tag.type == consts.TagType.TASK, models.Tag.uuid.in_(uuids)):
            tags.setdefault(row.uuid, []).append(row.tag)
        iterations = dict(session.query(
            models.Workload.task_uuid, sa.func.sum(models.Workload.total_iteration_count))
            .filter(models.Workload.task_uuid.in_(uuids))
            .group_by(models.Workload.task_uuid).all())
    def aware(ts):   # to the second, as Rally's task.get gives a run's times
        return ts.replace(microsecond=0, tzinfo=datetime.timezone.utc)
    return [{"task": dict(row._mapping, created_at=aware(row.created_at),
                          updated_at=aware(row.updated_at)),
             "tags": tags.get(row.uuid, []), "iterations": iterations.get(row.uuid) or 0}
            for row in rows]


def _state_filter(task, state):
    """The SQL condition of a RunState on Rally's tasks table (report.run_state's rule)."""
    import sqlalchemy as sa
    running = sorted(report.RUNNING)
    # set_failed (mark_interrupted) stores {"etype": ..., ...} as json.dumps writes it:
    # the one way to tell an interrupted run in SQL without reading every row.
    interrupted = sa.func.coalesce(sa.type_coerce(task.validation_result, sa.Text),
                                   "").like(
        '{"etype": "%s"%%' % report.INTERRUPTED)
    return {
        results.RunState.QUEUED: task.status == "init",
        results.RunState.RUNNING: task.status.in_([s for s in running if s != "init"]),
        results.RunState.FINISHED: sa.and_(task.status.notin_(running),
                                           sa.not_(interrupted)),
        results.RunState.INTERRUPTED: sa.and_(task.status.notin_(running), interrupted),
    }[state]


def _delete_run(handle):
    from rally.common import objects
    objects.Task.delete_by_uuid(handle)
