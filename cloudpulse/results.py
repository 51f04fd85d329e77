"""The one result model: Rally/Tempest outcome -> stored result -> API JSON -> CLI.

A check produces `CheckResult`s; a run of one or more check types (one handle) is a
`CheckRun`.  Every layer converts to and from these classes with `to_dict()` /
`from_dict()`; nothing else carries results.
"""

import dataclasses
import datetime
import enum
import ipaddress
import re
import typing


class CheckType(str, enum.Enum):
    ENDPOINT = "endpoint"
    OPERATOR = "operator"
    FUNCTIONAL = "functional"
    COMPREHENSIVE = "comprehensive"
    UPGRADE = "upgrade"


class Status(str, enum.Enum):
    PASSED = "passed"
    FAILED = "failed"      # the cloud is unhealthy: the check found a fault
    SKIPPED = "skipped"    # not applicable here (no horizon, no admin rights, ...)
    ERROR = "error"        # the check itself could not run (bad config, crash)


class RunState(str, enum.Enum):
    QUEUED = "queued"
    RUNNING = "running"
    FINISHED = "finished"
    # The server stopped while the run was in flight; its partial results are kept.
    INTERRUPTED = "interrupted"


ENDED = (RunState.FINISHED, RunState.INTERRUPTED)   # a run in these states never changes


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def _iso(ts):
    return ts.isoformat(timespec="milliseconds") if ts else None


def parse_ts(value):
    """An ISO 8601 time as an aware datetime (a naive one is UTC); None and datetimes
    as they are."""
    if value is None or isinstance(value, datetime.datetime):
        return value
    ts = datetime.datetime.fromisoformat(value)
    return ts if ts.tzinfo else ts.replace(tzinfo=datetime.timezone.utc)


# Secrets must never reach a result, a log line or an error message, even when a
# library puts them in an exception text (URLs with credentials, token headers).
_SECRET_PATTERNS = [
    (re.compile(r"(?i)(password|passwd|secret|token|api[_-]?key)(['\"]?\s*[:=]\s*['\"]?)[^\s'\",&;}]+"),
     r"\1\2***"),
    (re.compile(r"(?i)(x-(?:auth|subject)-token['\"]?\s*[:=]\s*['\"]?)[^\s'\",}]+"), r"\1***"),
    (re.compile(r"(://[^/\s:@]+:)[^/\s@]+@"), r"\1***@"),
]


def redact(text):
    """Mask anything that looks like a secret in a free-form message."""
    if not text:
        return text
    for pattern, repl in _SECRET_PATTERNS:
        text = pattern.sub(repl, text)
    return text


# How the details of an error result start when the check was not run because something
# it needs failed first (keystone for the endpoint probes, a workload's earlier step): the
# blame is that other result's.
NOT_CHECKED = "not checked: "


@dataclasses.dataclass(frozen=True)
class CheckResult:
    """The outcome of one check against one component."""

    name: str                   # stable id, e.g. "endpoint.glance"
    check_type: CheckType
    component: str              # what is blamed or proven: "glance", "nova-compute@host1"
    status: Status
    details: str = ""           # what a person on call can act on; empty when passed
    duration: float = 0.0       # seconds
    started_at: typing.Optional[datetime.datetime] = None
    finished_at: typing.Optional[datetime.datetime] = None

    def __post_init__(self):
        object.__setattr__(self, "check_type", CheckType(self.check_type))
        object.__setattr__(self, "status", Status(self.status))
        object.__setattr__(self, "details", redact(self.details or ""))
        object.__setattr__(self, "started_at", parse_ts(self.started_at))
        object.__setattr__(self, "finished_at", parse_ts(self.finished_at))

    @property
    def ok(self):
        return self.status in (Status.PASSED, Status.SKIPPED)

    @property
    def not_checked(self):
        """Not run because something it needs failed first (blamed in its own result)."""
        return self.status == Status.ERROR and self.details.startswith(NOT_CHECKED)

    def to_dict(self):
        return {
            "name": self.name,
            "check_type": self.check_type.value,
            "component": self.component,
            "status": self.status.value,
            "details": self.details,
            "duration": round(self.duration, 4),
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
        }

    @classmethod
    def from_dict(cls, data):
        fields = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in fields})

    def member_view(self, hosts=()):
        """This result as a project member may see it: no host names, no node addresses
        (operator-only detail). "nova-compute@compute-3" -> "nova-compute"; a host named
        in `hosts` or written as name@host, and any IP address, is masked in details."""
        return dataclasses.replace(self, component=mask_hosts(self.component, hosts),
                                   details=mask_hosts(self.details, hosts))


HOST_MASK = "<host>"
ADDRESS_MASK = "<address>"
_AT_HOST = re.compile(r"@[\w.:-]+")
_IPV4 = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])")
_IPV6 = re.compile(r"(?<![\w:.])[0-9a-fA-F]*:[0-9a-fA-F:]*(?![\w:])")


def mask_hosts(text, hosts):
    """`text` as a project member may read it: hosts (`hosts`, name@host) and
    addresses masked."""
    if not text:
        return text
    text = _AT_HOST.sub("", text)
    for host in sorted(hosts, key=len, reverse=True):   # compute-10 before compute-1
        text = re.sub(r"(?<![\w.-])%s(?![\w-])" % re.escape(host), HOST_MASK, text)
    text = _IPV4.sub(ADDRESS_MASK, text)
    return _IPV6.sub(lambda m: ADDRESS_MASK if _is_ipv6(m.group(0)) else m.group(0), text)


def _is_ipv6(text):
    try:
        ipaddress.IPv6Address(text)
        return True
    except ValueError:   # a time of day (12:03:10), a MAC address
        return False


def _component_key(result):
    """"operator.rabbitmq" + "rabbitmq@node2" -> "operator.rabbitmq@node2"; a component
    that is not named after the check: "operator.services" + "keystone@node1" ->
    "operator.services/keystone@node1"."""
    kind, _, subject = result.name.rpartition(".")
    component = result.component
    if component == subject:
        return result.name
    if component.startswith((subject + "@", subject + "/")):
        return "%s.%s" % (kind, component) if kind else component
    return "%s/%s" % (result.name, component)


def _typed_run_fields(run):
    """A CheckRun's or RunSummary's check types, state and times as the model's types
    (they may come as the API's strings)."""
    run.check_types = [CheckType(t) for t in run.check_types]
    run.state = RunState(run.state)
    run.created_at = parse_ts(run.created_at)
    run.finished_at = parse_ts(run.finished_at)


# The check types that send packets through the cloud.
DATA_PLANE = (CheckType.FUNCTIONAL, CheckType.COMPREHENSIVE)
# How a data-plane check starts the details of a host it skips for its control plane.
CONTROL_PLANE_DEGRADED = "control plane degraded"


@dataclasses.dataclass
class CheckRun:
    """One handle: the checks of one or more types started together."""

    handle: str
    check_types: typing.List[CheckType]
    state: RunState = RunState.QUEUED
    created_at: datetime.datetime = dataclasses.field(default_factory=utcnow)
    finished_at: typing.Optional[datetime.datetime] = None
    results: typing.List[CheckResult] = dataclasses.field(default_factory=list)
    # The project that asked for the run; None: the server's own (periodic, noauth).
    project_id: typing.Optional[str] = None
    # The cloud checked (its clouds.yaml entry, as the server names it); None: unlabelled.
    cloud: typing.Optional[str] = None

    def __post_init__(self):
        _typed_run_fields(self)

    @property
    def failed(self):
        return [r for r in self.results if not r.ok]

    @property
    def passed(self):
        return [r for r in self.results if r.status == Status.PASSED]

    @property
    def skipped(self):
        return [r for r in self.results if r.status == Status.SKIPPED]

    @property
    def errors(self):
        """The results of checks that could not run (a subset of `failed`)."""
        return [r for r in self.results if r.status == Status.ERROR]

    @property
    def healthy(self):
        """True when the run finished and found nothing wrong."""
        return (self.state == RunState.FINISHED and bool(self.results)
                and not self.failed)

    def verdict(self):
        """One line an operator acts on: "healthy", or which plane is failing and where.
        A run whose data-plane checks (functional, comprehensive) pass while control-plane
        checks fail reads "data plane forwarding, control plane degraded on host X": the
        VMs there still carry traffic, new ones will not get ports."""
        if self.state != RunState.FINISHED:
            return self.state.value
        if self.healthy and not self._degraded_hosts():
            return "healthy"
        data = [r for r in self.failed if r.check_type in DATA_PLANE]
        control = [r for r in self.failed if r.check_type not in DATA_PLANE]
        parts = []
        if any(r.check_type in DATA_PLANE for r in self.results):
            keys = self.keys()
            parts.append("data plane failing: %s" % ", ".join(keys[id(r)] for r in data)
                         if data else "data plane forwarding")
        hosts = sorted({r.component.split("@", 1)[1] for r in control if "@" in r.component}
                       | self._degraded_hosts())
        if hosts:
            parts.append("control plane degraded on %s" % ", ".join(hosts))
        elif control:
            parts.append("control plane failing: %s" % ", ".join(
                sorted({r.component for r in control})))
        return ", ".join(parts)

    def _degraded_hosts(self):
        """Hosts a data-plane check left out because their control plane is degraded."""
        return {r.component for r in self.skipped
                if r.details.startswith(CONTROL_PLANE_DEGRADED)}

    def keys(self):
        """{id(result): key}: each result's key in tests_failed / tests_passed, unique in
        the run.  A check that reports one result keeps its name ("endpoint.glance"); one
        that reports several (one per node or component) names the component too:
        "operator.rabbitmq@node2", "operator.haproxy/keystone_api/node2",
        "operator.services/keystone@node1"."""
        counts = {}
        for r in self.results:
            counts[r.name] = counts.get(r.name, 0) + 1
        keys, seen = {}, set()
        for r in self.results:
            key = r.name if counts[r.name] == 1 else _component_key(r)
            base, n = key, 1
            while key in seen:   # the same component twice: never two equal keys
                n += 1
                key = "%s#%d" % (base, n)
            seen.add(key)
            keys[id(r)] = key
        return keys

    def hosts(self):
        """The hosts this run's results name as a component's "@host"."""
        return {r.component.split("@", 1)[1] for r in self.results if "@" in r.component}

    def member_view(self, hosts=()):
        """The run as a project member may see it: every result's member view, with
        `hosts` (the cloud's, as the server knows them) and the hosts any result names
        masked in every result."""
        hosts = self.hosts() | set(hosts)
        return dataclasses.replace(self, results=[r.member_view(hosts)
                                                  for r in self.results])

    def summary(self):
        """The run as a list of runs shows it (GET /cpulse/results)."""
        return RunSummary(handle=self.handle, check_types=self.check_types,
                          state=self.state, healthy=self.healthy,
                          created_at=self.created_at, finished_at=self.finished_at,
                          project_id=self.project_id, cloud=self.cloud)

    def to_api(self):
        """The REST API's /cpulse/result document (the product spec's shape, plus detail):
        the run's summary, its verdict and its results."""
        keys = self.keys()
        return {
            **self.summary().to_api(),
            "verdict": self.verdict(),
            "tests_failed": [{keys[id(r)]: r.details} for r in self.failed],
            "tests_passed": [keys[id(r)] for r in self.passed],
            "tests_skipped": [{keys[id(r)]: r.details} for r in self.skipped],
            "results": [dict(r.to_dict(), key=keys[id(r)]) for r in self.results],
        }

    @classmethod
    def from_api(cls, data):
        return cls(handle=data["handle"], check_types=data["check_types"],
                   state=data["state"], created_at=data["created_at"],
                   finished_at=data.get("finished_at"),
                   results=[CheckResult.from_dict(r) for r in data["results"]],
                   project_id=data.get("project_id"), cloud=data.get("cloud"))


@dataclasses.dataclass
class RunSummary:
    """One run in a list of runs: what it checked, whose it is and how it ended, without
    its results (a list is read from the runs' records, never from every run's results)."""

    handle: str
    check_types: typing.List[CheckType]
    state: RunState
    healthy: bool   # as CheckRun.healthy: finished, and every check passed or skipped
    created_at: datetime.datetime
    finished_at: typing.Optional[datetime.datetime] = None
    project_id: typing.Optional[str] = None
    cloud: typing.Optional[str] = None

    def __post_init__(self):
        _typed_run_fields(self)

    def to_api(self):
        return {
            "handle": self.handle,
            "cloud": self.cloud,
            "project_id": self.project_id,
            "timestamp": _iso(self.finished_at or self.created_at),
            "state": self.state.value,
            "check_types": [t.value for t in self.check_types],
            "healthy": self.healthy,
            "created_at": _iso(self.created_at),
            "finished_at": _iso(self.finished_at),
        }

    @classmethod
    def from_api(cls, data):
        return cls(handle=data["handle"], check_types=data["check_types"],
                   state=data["state"], healthy=data["healthy"],
                   created_at=data["created_at"], finished_at=data.get("finished_at"),
                   project_id=data.get("project_id"), cloud=data.get("cloud"))
