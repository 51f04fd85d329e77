"""Health transitions kept and pushed, in the database the runs are kept in (Rally's),
beside the run queue (cloudpulse_rally.queue) and in its style (docs/notifications.md):

- `cloudpulse_health`: the current state of every (cloud, project, check key)
  (cloudpulse.health.ComponentState); "" project: the server's own runs;
- `cloudpulse_webhooks`: the webhooks registered through the API (their secrets: the
  database is owner-only, as it holds the cloud's credential already);
- `cloudpulse_outbox`: one row per notification and webhook until it is delivered.  A
  runner claims due rows with `SELECT ... FOR UPDATE SKIP LOCKED` and leases them (their
  next attempt moved past the send's timeout), so runners never send one row at once.

A run's transitions are written in the transaction that takes the run off the queue
(`RunQueue.finished(..., also=...)`): a run is either done with its notifications queued,
or still on the queue (and interrupted, when its runner died: the next run then finds the
same change, as the stored state is unchanged).
"""

import dataclasses
import datetime
import uuid

import sqlalchemy as sa

from cloudpulse import health
from cloudpulse import results
from cloudpulse import webhook

CONFIGURED = "config"   # the outbox's webhook column for [notifications] webhooks

_METADATA = sa.MetaData()
_HEALTH = sa.Table(
    "cloudpulse_health", _METADATA,
    sa.Column("cloud", sa.String(255), primary_key=True),
    sa.Column("project", sa.String(64), primary_key=True),
    sa.Column("key", sa.String(255), primary_key=True),
    sa.Column("check_type", sa.String(32), nullable=False),
    sa.Column("component", sa.String(255), nullable=False),
    sa.Column("state", sa.String(16)),    # None: seen failing, not yet confirmed
    sa.Column("cause", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("since", sa.DateTime, nullable=False),
    sa.Column("handle", sa.String(36), nullable=False),
    sa.Column("notified_at", sa.DateTime),
    sa.Column("pending_state", sa.String(16)),
    sa.Column("pending_cause", sa.Text),
    sa.Column("pending_count", sa.Integer, nullable=False, default=0),
    sa.Column("pending_since", sa.DateTime),
)
_WEBHOOKS = sa.Table(
    "cloudpulse_webhooks", _METADATA,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),   # who registered it
    sa.Column("all_projects", sa.Boolean, nullable=False),  # admin: every transition
    sa.Column("secret", sa.String(255), nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
)
_OUTBOX = sa.Table(
    "cloudpulse_outbox", _METADATA,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("notification_id", sa.String(36), nullable=False),
    sa.Column("webhook", sa.String(36), nullable=False),   # an id, or CONFIGURED
    sa.Column("url", sa.String(2048), nullable=False),
    sa.Column("body", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("next_attempt_at", sa.DateTime, nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, default=0),
    sa.Column("last_error", sa.Text),
    sa.Index("cloudpulse_outbox_due_idx", "next_attempt_at"),
)


def _utcnow():
    return datetime.datetime.utcnow()


def _naive(ts):
    return ts.astimezone(datetime.timezone.utc).replace(tzinfo=None) if ts else None


def _aware(ts):
    return ts.replace(tzinfo=datetime.timezone.utc) if ts else None


@dataclasses.dataclass(frozen=True)
class Webhook:
    id: str
    url: str
    project_id: str      # "" : registered by a caller of no project (noauth)
    all_projects: bool
    created_at: datetime.datetime
    secret: str = dataclasses.field(default="", repr=False)   # never in answers or logs

    def to_api(self):
        return {"id": self.id, "url": self.url, "project_id": self.project_id or None,
                "all_projects": self.all_projects,
                "created_at": _aware(self.created_at).isoformat(timespec="seconds")}


@dataclasses.dataclass(frozen=True)
class Delivery:
    """An outbox row claimed for sending."""

    id: str
    notification_id: str
    webhook: str
    url: str
    body: bytes
    attempts: int
    created_at: datetime.datetime


@dataclasses.dataclass(frozen=True)
class Settings:
    """What record_run needs to know besides the run."""

    cloud: str
    thresholds: dict          # {CheckType: health.Thresholds}
    reminder_interval: float  # seconds; 0: no reminders
    configured_urls: tuple    # [notifications] webhooks: admin scope
    result_url: str           # "...?handle=%s"


def _to_state(row):
    def condition(state, cause):
        return health.Condition(state, cause or "") if state else None
    return health.ComponentState(
        key=row.key, check_type=row.check_type, component=row.component,
        condition=condition(row.state, row.cause), details=row.details,
        since=_aware(row.since), handle=row.handle, notified_at=_aware(row.notified_at),
        pending=condition(row.pending_state, row.pending_cause),
        pending_count=row.pending_count, pending_since=_aware(row.pending_since))


def _from_state(state):
    return {"check_type": state.check_type.value, "component": state.component,
            "state": state.condition.state.value if state.condition else None,
            "cause": state.condition.cause if state.condition else "",
            "details": state.details, "since": _naive(state.since), "handle": state.handle,
            "notified_at": _naive(state.notified_at),
            "pending_state": state.pending.state.value if state.pending else None,
            "pending_cause": state.pending.cause if state.pending else None,
            "pending_count": state.pending_count,
            "pending_since": _naive(state.pending_since)}


def _member_transition(transition, hosts):
    """The transition as a member of its project may read it (CheckRun.member_view's
    masking: no host names, no node addresses)."""
    masked = transition.result.member_view(hosts)
    return dataclasses.replace(transition, key=results.mask_hosts(transition.key, hosts),
                               component=masked.component, details=masked.details)


class NotificationStore:
    """The three tables over a SQLAlchemy engine (Rally's)."""

    def __init__(self, engine):
        self.engine = engine
        _METADATA.create_all(engine)   # idempotent: the tables and index if missing

    # -- transitions, in the transaction that ends a run ---------------------------------
    def record_run(self, conn, run, settings, hosts=(), now=None):
        """Apply an ended CheckRun's results to the stored states on `conn` (a
        transaction), queue a notification per transition for every webhook that may
        read it; the transitions."""
        observations = health.run_observations(run)
        if not observations:
            return []
        now = now or results.utcnow()
        project = run.project_id or ""
        rows = {row.key: row for row in conn.execute(
            sa.select(_HEALTH).where(_HEALTH.c.cloud == settings.cloud,
                                     _HEALTH.c.project == project,
                                     _HEALTH.c.key.in_([k for k, _ in observations]))
            .with_for_update())}
        transitions = []
        for key, result in observations:
            previous = _to_state(rows[key]) if key in rows else None
            state, transition = health.observe(
                previous, key, result, run.handle, now,
                settings.thresholds.get(result.check_type, health.Thresholds()),
                settings.reminder_interval)
            if state is None:   # a component never seen, not checked now
                continue
            values = _from_state(state)
            if key in rows:
                conn.execute(_HEALTH.update().where(
                    _HEALTH.c.cloud == settings.cloud, _HEALTH.c.project == project,
                    _HEALTH.c.key == key).values(**values))
            else:
                conn.execute(_HEALTH.insert().values(cloud=settings.cloud, project=project,
                                                     key=key, **values))
            if transition is not None:
                transitions.append(transition)
        if transitions:
            self._queue(conn, run, transitions, settings, hosts, now)
        return transitions

    def _queue(self, conn, run, transitions, settings, hosts, now):
        targets = [(CONFIGURED, url, False) for url in settings.configured_urls]
        where = _WEBHOOKS.c.all_projects
        if run.project_id:   # a member's webhook: its project's runs only
            where = sa.or_(where, _WEBHOOKS.c.project == run.project_id)
        targets += [(row.id, row.url, not row.all_projects) for row in conn.execute(
            sa.select(_WEBHOOKS.c.id, _WEBHOOKS.c.url, _WEBHOOKS.c.all_projects)
            .where(where))]
        hosts = run.hosts() | set(hosts)
        for transition in transitions:
            notification_id = str(uuid.uuid4())
            full = masked = None
            for webhook_id, url, member in targets:
                if member:
                    masked = masked or webhook.encode(webhook.document(
                        notification_id, _member_transition(transition, hosts),
                        settings.cloud, run.project_id, settings.result_url % run.handle,
                        now))
                else:
                    full = full or webhook.encode(webhook.document(
                        notification_id, transition, settings.cloud, run.project_id,
                        settings.result_url % run.handle, now))
                conn.execute(_OUTBOX.insert().values(
                    id=str(uuid.uuid4()), notification_id=notification_id,
                    webhook=webhook_id, url=url,
                    body=(masked if member else full).decode(),
                    created_at=_naive(now), next_attempt_at=_naive(now), attempts=0))

    def states(self, cloud=None):
        """Every stored ComponentState: [(cloud, project or None, state)]."""
        query = sa.select(_HEALTH)
        if cloud is not None:
            query = query.where(_HEALTH.c.cloud == cloud)
        with self.engine.connect() as conn:
            return [(row.cloud, row.project or None, _to_state(row))
                    for row in conn.execute(query)]

    # -- the outbox -------------------------------------------------------------------
    def claim(self, lease, limit=10, now=None):
        """Due deliveries, oldest first, leased for `lease` seconds (another runner
        takes them only after the lease, when this one died sending)."""
        now = _naive(now or results.utcnow())
        with self.engine.begin() as conn:
            rows = conn.execute(
                sa.select(_OUTBOX).where(_OUTBOX.c.next_attempt_at <= now)
                .order_by(_OUTBOX.c.next_attempt_at, _OUTBOX.c.created_at).limit(limit)
                .with_for_update(skip_locked=True)).all()
            if rows:
                conn.execute(_OUTBOX.update().where(
                    _OUTBOX.c.id.in_([row.id for row in rows])).values(
                    next_attempt_at=now + datetime.timedelta(seconds=lease)))
        return [Delivery(id=row.id, notification_id=row.notification_id,
                         webhook=row.webhook, url=row.url, body=row.body.encode(),
                         attempts=row.attempts, created_at=_aware(row.created_at))
                for row in rows]

    def delivered(self, delivery_id):
        with self.engine.begin() as conn:
            conn.execute(_OUTBOX.delete().where(_OUTBOX.c.id == delivery_id))

    def retry(self, delivery_id, attempts, error, next_attempt_at):
        with self.engine.begin() as conn:
            conn.execute(_OUTBOX.update().where(_OUTBOX.c.id == delivery_id).values(
                attempts=attempts, last_error=error[:1000],
                next_attempt_at=_naive(next_attempt_at)))

    def next_due(self):
        """When the earliest delivery is due (aware datetime), or None."""
        with self.engine.connect() as conn:
            return _aware(conn.execute(sa.select(sa.func.min(
                _OUTBOX.c.next_attempt_at))).scalar())

    def outbox(self):
        """[(notification_id, url, attempts, last_error)] not yet delivered."""
        with self.engine.connect() as conn:
            return [tuple(row) for row in conn.execute(sa.select(
                _OUTBOX.c.notification_id, _OUTBOX.c.url, _OUTBOX.c.attempts,
                _OUTBOX.c.last_error).order_by(_OUTBOX.c.created_at))]

    # -- webhooks registered through the API --------------------------------------------
    def add_webhook(self, url, project_id, all_projects, secret):
        hook = Webhook(id=str(uuid.uuid4()), url=url, project_id=project_id or "",
                       all_projects=all_projects, created_at=_utcnow(), secret=secret)
        with self.engine.begin() as conn:
            conn.execute(_WEBHOOKS.insert().values(
                id=hook.id, url=url, project=hook.project_id, all_projects=all_projects,
                secret=secret, created_at=hook.created_at))
        return hook

    def webhooks(self, project_id=None, all_projects=False):
        """The webhooks registered by `project_id`'s callers, or every one."""
        query = sa.select(_WEBHOOKS).order_by(_WEBHOOKS.c.created_at)
        if not all_projects:
            query = query.where(_WEBHOOKS.c.project == (project_id or ""))
        with self.engine.connect() as conn:
            return [_webhook(row) for row in conn.execute(query)]

    def webhook(self, webhook_id):
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_WEBHOOKS).where(
                _WEBHOOKS.c.id == webhook_id)).first()
        return _webhook(row) if row else None

    def delete_webhook(self, webhook_id):
        """The webhook and what its outbox still held."""
        with self.engine.begin() as conn:
            conn.execute(_OUTBOX.delete().where(_OUTBOX.c.webhook == webhook_id))
            conn.execute(_WEBHOOKS.delete().where(_WEBHOOKS.c.id == webhook_id))


def _webhook(row):
    return Webhook(id=row.id, url=row.url, project_id=row.project,
                   all_projects=bool(row.all_projects), created_at=row.created_at,
                   secret=row.secret)
