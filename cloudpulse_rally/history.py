"""The history that availability is computed from (cloudpulse.availability), in the
database the runs are kept in (Rally's), beside the queue and the health states:

- `cloudpulse_history`: per (cloud, project, key), one row per span of one state
  (run-length encoded: a key that stays healthy for a month is one row, however many runs
  saw it), the newest marked.  Rally's own records of the runs are pruned by [retention];
  this history is kept [availability] history_days, so a 30-day window outlives them and
  never reads them.

A run's spans are written in the transaction that takes it off the queue, with its health
transitions (RunQueue.finished(..., also=...)): once per run, whatever the runners.
"""

import datetime

import sqlalchemy as sa

from cloudpulse import availability
from cloudpulse import health
from cloudpulse import results

_METADATA = sa.MetaData()
_HISTORY = sa.Table(
    "cloudpulse_history", _METADATA,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("cloud", sa.String(255), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),   # "": the server's own runs
    sa.Column("key", sa.String(255), nullable=False),
    sa.Column("check_type", sa.String(32), nullable=False),
    sa.Column("component", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16), nullable=False),
    sa.Column("since", sa.DateTime, nullable=False),
    sa.Column("until", sa.DateTime, nullable=False),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("duration", sa.Float, nullable=False),
    sa.Column("handle", sa.String(36), nullable=False),
    sa.Column("newest", sa.Boolean, nullable=False),
    sa.Index("cloudpulse_history_window_idx", "cloud", "project", "until"),
    sa.Index("cloudpulse_history_newest_idx", "cloud", "project", "newest", "key"),
)


def _naive(ts):
    return ts.astimezone(datetime.timezone.utc).replace(tzinfo=None)


def _aware(ts):
    return ts.replace(tzinfo=datetime.timezone.utc) if ts else None


def _span(row):
    return availability.Span(
        key=row.key, check_type=row.check_type, component=row.component, state=row.state,
        since=_aware(row.since), until=_aware(row.until), runs=row.runs,
        details=row.details, duration=row.duration, handle=row.handle)


def observations(run):
    """[(key, check type, component, state, details, duration)] an ended run adds to the
    history: each result that says something of its component, and each check type's own
    state in the run (key: the type's name).  None of an interrupted run: the server
    stopped, not the cloud."""
    seen = health.run_observations(run)
    entries = [(key, r.check_type, r.component, health.state_of(r), r.details, r.duration)
               for key, r in seen if not r.not_checked]
    for check_type in run.check_types:
        of_type = [r for _, r in seen if r.check_type == check_type]
        state = availability.type_state(of_type)
        if state is not None:
            failing = [r for r in of_type if not r.ok and not r.not_checked]
            entries.append((check_type.value, check_type, "", state,
                            "; ".join("%s: %s" % (r.component, r.details) for r in failing),
                            sum(r.duration for r in of_type)))
    return entries


class HistoryStore:
    """The history table over a SQLAlchemy engine (Rally's)."""

    def __init__(self, engine):
        self.engine = engine
        _METADATA.create_all(engine)   # idempotent: the table and indexes if missing

    def record_run(self, conn, run, cloud, max_gaps, at=None):
        """Add an ended CheckRun's observations to the history on `conn` (a
        transaction); `max_gaps`: {CheckType: seconds after which a run starts a new
        span (the time between is unknown)}.  The number of keys written."""
        entries = observations(run)
        if not entries:
            return 0
        at = at or run.finished_at or results.utcnow()
        project = run.project_id or ""
        newest = {row.key: row for row in conn.execute(
            sa.select(_HISTORY).where(
                _HISTORY.c.cloud == cloud, _HISTORY.c.project == project,
                _HISTORY.c.newest.is_(True),
                _HISTORY.c.key.in_([entry[0] for entry in entries])).with_for_update())}
        for key, check_type, component, state, details, duration in entries:
            row = newest.get(key)
            action, until = availability.extend(_span(row) if row else None, state, at,
                                                max_gaps[check_type])
            latest = {"details": details, "duration": duration, "handle": run.handle}
            if action == "extend":
                conn.execute(_HISTORY.update().where(_HISTORY.c.id == row.id).values(
                    until=_naive(until), runs=row.runs + 1, **latest))
                continue
            if row is not None:
                conn.execute(_HISTORY.update().where(_HISTORY.c.id == row.id).values(
                    until=_naive(until), newest=False))
            conn.execute(_HISTORY.insert().values(
                cloud=cloud, project=project, key=key, check_type=check_type.value,
                component=component, state=state.value, since=_naive(at), until=_naive(at),
                runs=1, newest=True, **latest))
        return len(entries)

    def spans(self, cloud, project_id, since):
        """The Spans of `project_id`'s runs (None: the server's own) on `cloud` that end
        at or after `since` (an aware datetime)."""
        with self.engine.connect() as conn:
            return [_span(row) for row in conn.execute(sa.select(_HISTORY).where(
                _HISTORY.c.cloud == cloud, _HISTORY.c.project == (project_id or ""),
                _HISTORY.c.until >= _naive(since)))]

    def report(self, cloud, project_id, windows, slo, check_type=None, now=None):
        """The availability.Report of `project_id`'s runs (None: the server's own) on
        `cloud` over `windows` (seconds) ending `now`: every key, or `check_type`'s."""
        now = now or results.utcnow()
        spans = self.spans(cloud, project_id, now - datetime.timedelta(seconds=max(windows)))
        if check_type is not None:
            spans = [s for s in spans if s.check_type == check_type]
        return availability.Report(
            cloud=cloud, project_id=project_id, at=now, slo=slo,
            windows=tuple((w, tuple(availability.over_window(spans, w, slo, now)))
                          for w in windows))

    def latest(self, cloud, project_id):
        """{key: (newest Span, when it last passed or None)} of `project_id`'s runs."""
        project = project_id or ""
        where = (_HISTORY.c.cloud == cloud, _HISTORY.c.project == project)
        with self.engine.connect() as conn:
            passed = dict(conn.execute(
                sa.select(_HISTORY.c.key, sa.func.max(_HISTORY.c.until))
                .where(*where, _HISTORY.c.state == health.State.PASSED.value)
                .group_by(_HISTORY.c.key)).all())
            return {row.key: (_span(row), _aware(passed.get(row.key)))
                    for row in conn.execute(sa.select(_HISTORY).where(
                        *where, _HISTORY.c.newest.is_(True)))}

    def status(self, cloud, project_id, check_types, max_gaps, now=None, unless_run=()):
        """The availability.CloudStatus of `project_id`'s runs (None: the server's own);
        the types of `unless_run` only once they have run."""
        newest = {key: span for key, (span, _) in self.latest(cloud, project_id).items()}
        return availability.CloudStatus(cloud, project_id, tuple(availability.statuses(
            check_types, newest, now or results.utcnow(), max_gaps, unless_run)))

    def prune(self, older_than):
        """Delete the spans that ended before `older_than` (an aware datetime): their
        number."""
        with self.engine.begin() as conn:
            return conn.execute(_HISTORY.delete().where(
                _HISTORY.c.until < _naive(older_than),
                _HISTORY.c.newest.is_(False))).rowcount
