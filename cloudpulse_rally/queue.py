"""The runs queued or running, in the database the runs are kept in (Rally's), so that any
number of API processes and `cloudpulse-runner` processes share them.

One row per run queued or running (`cloudpulse_queue`); the run itself (its results) is
the Rally task of the same handle.  The database does the coordination:
- a project's run of the same check types on the same cloud with the same arguments (an
  upgrade run's snapshot, its watch) already queued or running is found by the unique
  (cloud, project, types, args) key, so two API processes never start the same run twice;
- a runner claims the oldest queued run with `SELECT ... FOR UPDATE SKIP LOCKED` (on
  SQLite, where one process serves, transactions take the write lock up front);
- a runner beats a heartbeat into the runs it holds; a run whose runner stopped beating
  (or whose process is gone, on this machine) is handed back as interrupted;
- a run that lasts until told (an upgrade watch) is told by its row: the API marks it to
  stop, its runner looks.
"""

import collections
import datetime
import json
import os
import socket
import threading
import time
import uuid

from oslo_db import exception as db_exc
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc

from cloudpulse import results

QUEUED, RUNNING = "queued", "running"
WAKE_EVERY = 0.2   # seconds between two looks at the database of a waiting client

_METADATA = sa.MetaData()
_QUEUE = sa.Table(
    "cloudpulse_queue", _METADATA,
    sa.Column("handle", sa.String(36), primary_key=True),
    sa.Column("cloud", sa.String(255), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),   # "": the server's own run
    sa.Column("check_types", sa.String(255), nullable=False),   # sorted, comma-joined
    # what the run was asked with, as canonical JSON (an upgrade run's snapshot and
    # watch); "": nothing
    sa.Column("args", sa.String(255), nullable=False, server_default=""),
    sa.Column("stop", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("runner", sa.String(255)),
    sa.Column("heartbeat_at", sa.DateTime),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.UniqueConstraint("cloud", "project", "check_types", "args",
                        name="uniq_cloudpulse_queue0run"),
    sa.Index("cloudpulse_queue_state_idx", "state", "created_at"),
)


def _add_new_columns(engine, cloud):
    """A queue table made by an older release (before runs named their cloud, or their
    arguments): rebuilt with the new columns and the key that includes them, its runs in
    flight kept (as `cloud`'s, with no arguments), in one transaction."""
    if not sa.inspect(engine).has_table(_QUEUE.name):
        return
    present = {c["name"] for c in sa.inspect(engine).get_columns(_QUEUE.name)}
    added = {name: value for name, value in (("cloud", cloud), ("args", ""), ("stop", False))
             if name not in present}
    if not added:
        return
    old = sa.Table(_QUEUE.name, sa.MetaData(), *[sa.Column(c.name, c.type) for c in _QUEUE.columns
                                                 if c.name not in added])
    with engine.begin() as conn:
        rows = [dict(row._mapping) for row in conn.execute(sa.select(old))]
        conn.execute(sa.text("DROP TABLE %s" % _QUEUE.name))   # its index and key too
        _METADATA.create_all(conn)
        if rows:
            conn.execute(_QUEUE.insert(), [dict(row, **added) for row in rows])


# A run a runner claimed: what it executes, and for whom.
Claimed = collections.namedtuple("Claimed", "handle check_types cloud project_id args")


def args_key(args):
    """A run's arguments ({} or None: none) as the key's canonical JSON."""
    return json.dumps(args, sort_keys=True, separators=(",", ":")) if args else ""


class QueueFull(Exception):
    """max_active runs are queued or running, or max_per_project of one project's."""
    retry_after = 10   # seconds a client is told to wait before it tries again

    def __init__(self, active, project_id=None):
        super().__init__(
            "%d runs of project %s are queued or running ([api] max_active_runs_per_project)"
            % (active, project_id) if project_id else
            "%d runs are queued or running ([api] max_active_runs)" % active)


def _utcnow():
    return datetime.datetime.utcnow()


def types_key(check_types):
    return ",".join(sorted(t.value for t in check_types))


def runner_id():
    """This process, as a runner: host, pid and a random part (pids are reused)."""
    return "%s:%d:%s" % (socket.gethostname(), os.getpid(), uuid.uuid4().hex[:8])


def _local_process_gone(runner):
    """Whether `runner` ran on this machine in a process that no longer exists."""
    host, _, rest = runner.partition(":")
    pid = rest.partition(":")[0]
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    return False


class RunQueue:
    """The queue over a SQLAlchemy engine (Rally's)."""

    def __init__(self, engine, first_cloud=""):
        """`first_cloud`: the cloud of the runs a queue made before runs named their
        cloud holds."""
        self.engine = engine
        _add_new_columns(engine, first_cloud)
        _METADATA.create_all(engine)   # idempotent: the table and index if missing
        self._finished = threading.Condition()   # runs finished by this process
        self._queued = threading.Condition()     # runs queued by this process

    # -- the API's side ------------------------------------------------------------------
    def active(self, project_id, check_types, cloud="", args=None):
        """The handle of the project's run of these types on `cloud` (with `args`)
        queued or running, or None."""
        with self.engine.connect() as conn:
            return conn.execute(sa.select(_QUEUE.c.handle).where(
                _QUEUE.c.cloud == cloud, _QUEUE.c.project == (project_id or ""),
                _QUEUE.c.check_types == types_key(check_types),
                _QUEUE.c.args == args_key(args))).scalar()

    def add(self, check_types, project_id, max_active, max_per_project, create_run,
            discard_run, cloud="", args=None):
        """(handle, new): a new queued run on `cloud` (`create_run(handle)` records it
        first), or the project's run of the same types on that cloud with the same `args`
        already queued or running (then what create_run made is
        undone by `discard_run(handle)` when another process queued the same an instant
        before).  QueueFull beyond `max_active` runs, or `max_per_project` of the
        project's."""
        existing = self.active(project_id, check_types, cloud, args)
        if existing is not None:
            return existing, False
        with self.engine.connect() as conn:
            active = conn.execute(sa.select(sa.func.count()).select_from(_QUEUE)).scalar()
            mine = conn.execute(sa.select(sa.func.count()).select_from(_QUEUE).where(
                _QUEUE.c.project == project_id)).scalar() if project_id else 0
        if active >= max_active or mine >= max_per_project:
            # The run that filled the queue may be this very one, queued by another
            # request an instant after the lookup above: then it is the answer.
            existing = self.active(project_id, check_types, cloud, args)
            if existing is not None:
                return existing, False
            raise QueueFull(active) if active >= max_active else QueueFull(mine, project_id)
        handle = str(uuid.uuid4())
        create_run(handle)
        try:
            with self.engine.begin() as conn:
                conn.execute(_QUEUE.insert().values(
                    handle=handle, cloud=cloud, project=project_id or "", state=QUEUED,
                    check_types=types_key(check_types), args=args_key(args),
                    created_at=_utcnow()))
        except (sa_exc.IntegrityError, db_exc.DBDuplicateEntry):
            # another API process (or thread) queued it an instant before
            discard_run(handle)
            existing = self.active(project_id, check_types, cloud, args)
            if existing is None:
                raise
            return existing, False
        with self._queued:
            self._queued.notify_all()
        return handle, True

    def in_flight(self, handle):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(_QUEUE.c.handle).where(
                _QUEUE.c.handle == handle)).scalar() is not None

    def wait_finished(self, handle, timeout):
        """Until the run is no longer queued or running, or `timeout` seconds: at once
        when this process runs it, within WAKE_EVERY seconds when another does."""
        deadline = time.monotonic() + timeout
        while self.in_flight(handle):
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            with self._finished:
                self._finished.wait(min(left, WAKE_EVERY))
        return True

    def active_types(self, cloud=""):
        """[(project or None, frozenset of check type values)] queued or running on
        `cloud`."""
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(_QUEUE.c.project, _QUEUE.c.check_types).where(
                _QUEUE.c.cloud == cloud)).all()
        return [(row.project or None, frozenset(row.check_types.split(","))) for row in rows]

    # -- the runners' side ---------------------------------------------------------------
    def claim(self, runner):
        """The Claimed of the oldest queued run, now `runner`'s, or None."""
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(_QUEUE)
                .where(_QUEUE.c.state == QUEUED).order_by(_QUEUE.c.created_at).limit(1)
                .with_for_update(skip_locked=True)).first()
            if row is None:
                return None
            claimed = conn.execute(_QUEUE.update().where(
                _QUEUE.c.handle == row.handle, _QUEUE.c.state == QUEUED).values(
                state=RUNNING, runner=runner, heartbeat_at=_utcnow())).rowcount
        if not claimed:
            return None
        return Claimed(row.handle, [results.CheckType(t) for t in row.check_types.split(",")],
                       row.cloud, row.project or None, json.loads(row.args) if row.args else {})

    def args_in_flight(self, handle):
        """The arguments of a run queued or running ({}: none), or None when it is not."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_QUEUE.c.args).where(
                _QUEUE.c.handle == handle)).first()
        if row is None:
            return None
        return json.loads(row.args) if row.args else {}

    def request_stop(self, handle):
        """Tell a run in flight that lasts until told (a watch) to stop: whether it was
        in flight."""
        with self.engine.begin() as conn:
            return conn.execute(_QUEUE.update().where(_QUEUE.c.handle == handle).values(
                stop=True)).rowcount > 0

    def stop_requested(self, handle):
        with self.engine.connect() as conn:
            return bool(conn.execute(sa.select(_QUEUE.c.stop).where(
                _QUEUE.c.handle == handle)).scalar())

    def wait_queued(self, timeout):
        """Until this process queues a run, or `timeout` seconds (other processes' runs
        are found by the next claim)."""
        with self._queued:
            self._queued.wait(timeout)

    def heartbeat(self, runner):
        with self.engine.begin() as conn:
            conn.execute(_QUEUE.update().where(_QUEUE.c.runner == runner).values(
                heartbeat_at=_utcnow()))

    def finished(self, handle, also=None):
        """The run off the queue; `also(conn)` first, in the same transaction (what
        must be written exactly when the run is done: its notifications)."""
        with self.engine.begin() as conn:
            if also is not None:
                also(conn)
            conn.execute(_QUEUE.delete().where(_QUEUE.c.handle == handle))
        with self._finished:
            self._finished.notify_all()

    def queued_count(self):
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(_QUEUE).where(
                _QUEUE.c.state == QUEUED)).scalar()

    def take_dead(self, dead_after):
        """Handles of the runs whose runner stopped: no heartbeat for `dead_after`
        seconds, or its process gone from this machine; their rows are removed."""
        cutoff = _utcnow() - datetime.timedelta(seconds=dead_after)
        with self.engine.begin() as conn:
            rows = conn.execute(sa.select(_QUEUE.c.handle, _QUEUE.c.runner, _QUEUE.c.heartbeat_at)
                                .where(_QUEUE.c.state == RUNNING)
                                .with_for_update(skip_locked=True)).all()
            dead = [row.handle for row in rows
                    if row.heartbeat_at < cutoff or _local_process_gone(row.runner)]
            if dead:
                conn.execute(_QUEUE.delete().where(_QUEUE.c.handle.in_(dead)))
        return dead

    def handles(self):
        with self.engine.connect() as conn:
            return set(conn.execute(sa.select(_QUEUE.c.handle)).scalars())
