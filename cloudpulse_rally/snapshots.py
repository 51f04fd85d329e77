"""The upgrade snapshots (cloudpulse.checks.upgrade), in the database the runs are kept in
(Rally's), beside the queue and the history: `cloudpulse_snapshots`, one row per snapshot,
scoped to the cloud and the project that took it.  A snapshot lives until it is deleted
(`DELETE /cpulse/snapshot`, `cpulse upgrade delete`): [retention] prunes runs, never the
record of what a cloud held before its upgrade."""

import dataclasses
import datetime
import json
import typing
import uuid

import sqlalchemy as sa

_METADATA = sa.MetaData()
_SNAPSHOTS = sa.Table(
    "cloudpulse_snapshots", _METADATA,
    sa.Column("handle", sa.String(36), primary_key=True),
    sa.Column("cloud", sa.String(255), nullable=False),
    sa.Column("project", sa.String(64), nullable=False),   # "": the server's own
    sa.Column("created_at", sa.DateTime, nullable=False),
    sa.Column("document", sa.Text, nullable=False),        # the snapshot, as JSON
    # A set CloudPulse created: the private key of its VMs (for the connections' pings),
    # never in an answer, a result or a log.
    sa.Column("secret", sa.Text, nullable=True),
    sa.Index("cloudpulse_snapshots_owner_idx", "cloud", "project", "created_at"),
)


@dataclasses.dataclass(frozen=True)
class StoredSnapshot:
    handle: str
    cloud: str
    project_id: typing.Optional[str]   # who took it; None: the server's own
    created_at: datetime.datetime
    document: dict
    secret: typing.Optional[str] = dataclasses.field(default=None, repr=False)

    @property
    def created(self):
        """What CloudPulse created for it (its `created` part), or None."""
        return self.document.get("created")


def _stored(row):
    return StoredSnapshot(
        handle=row.handle, cloud=row.cloud, project_id=row.project or None,
        created_at=row.created_at.replace(tzinfo=datetime.timezone.utc),
        document=json.loads(row.document), secret=row.secret)


class SnapshotStore:
    """The snapshots table over a SQLAlchemy engine (Rally's)."""

    def __init__(self, engine):
        self.engine = engine
        _METADATA.create_all(engine)   # idempotent
        present = {c["name"] for c in sa.inspect(engine).get_columns(_SNAPSHOTS.name)}
        if "secret" not in present:   # a table of the release before created sets
            with engine.begin() as conn:
                conn.execute(sa.text("ALTER TABLE %s ADD COLUMN secret TEXT"
                                     % _SNAPSHOTS.name))

    def add(self, cloud, project_id, document, created_at, handle=None, secret=None):
        """A new snapshot's handle (`handle`: the one of the run that made its set)."""
        handle = handle or str(uuid.uuid4())
        with self.engine.begin() as conn:
            conn.execute(_SNAPSHOTS.insert().values(
                handle=handle, cloud=cloud, project=project_id or "",
                created_at=created_at.astimezone(datetime.timezone.utc).replace(tzinfo=None),
                document=json.dumps(document, sort_keys=True), secret=secret))
        return handle

    def _owned(self, query, project_id, all_projects):
        return query if all_projects else query.where(_SNAPSHOTS.c.project == (project_id or ""))

    def get(self, handle, project_id=None, all_projects=False):
        """The StoredSnapshot of `handle` if `project_id` took it (any, with
        all_projects), else None."""
        with self.engine.connect() as conn:
            row = conn.execute(self._owned(sa.select(_SNAPSHOTS).where(
                _SNAPSHOTS.c.handle == handle), project_id, all_projects)).first()
        return _stored(row) if row is not None else None

    def newest(self, cloud, project_id=None):
        """The newest snapshot `project_id` took of `cloud`, or None."""
        with self.engine.connect() as conn:
            row = conn.execute(sa.select(_SNAPSHOTS).where(
                _SNAPSHOTS.c.cloud == cloud, _SNAPSHOTS.c.project == (project_id or ""))
                .order_by(_SNAPSHOTS.c.created_at.desc()).limit(1)).first()
        return _stored(row) if row is not None else None

    def list(self, cloud=None, project_id=None, all_projects=False):
        """[StoredSnapshot] newest first, of `cloud` (None: every cloud)."""
        query = self._owned(sa.select(_SNAPSHOTS), project_id, all_projects)
        if cloud is not None:
            query = query.where(_SNAPSHOTS.c.cloud == cloud)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(_SNAPSHOTS.c.created_at.desc())).all()
        return [_stored(row) for row in rows]

    def delete(self, handle, project_id=None, all_projects=False):
        """Whether the snapshot was there (and `project_id`'s) to delete."""
        with self.engine.begin() as conn:
            return conn.execute(self._owned(_SNAPSHOTS.delete().where(
                _SNAPSHOTS.c.handle == handle), project_id, all_projects)).rowcount > 0
