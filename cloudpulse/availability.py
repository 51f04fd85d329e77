"""Availability against the SLA, from the stored history (docs/availability.md).

Pure logic over `Span`s: no database, no HTTP.  A key's history (a check key such as
"endpoint.glance", or a check type's own key, "endpoint", for its runs as a whole) is a
list of spans, each one state seen from `since` (the first run that saw it) to `until`
(the run that saw it last, or the first run that saw another state: a state holds until
a run sees it change).  A run later than `max_gap` after the last one starts a new span,
and the time between them is unknown (no run looked).

Over a window:
- up is passed time, down is failed time; error time (the check could not run: a bad
  config, an exhausted quota, a crash) and unknown time count as neither: never as
  uptime, and never against the cloud;
- availability = up / (up + down), over the measured time;
- the error budget of an SLO (e.g. 0.999) is (1 - SLO) of the measured time; what is
  left of it is that less the down time (negative: the SLO is missed);
- outages are the failed (and error) spans in the window, clipped to it.
"""

import dataclasses
import datetime
import enum
import typing

from cloudpulse import health
from cloudpulse import results


@dataclasses.dataclass(frozen=True)
class Span:
    """One state of one key, from `since` to `until`."""

    key: str
    check_type: results.CheckType
    component: str            # "" for a check type's own key
    state: health.State
    since: datetime.datetime
    until: datetime.datetime
    runs: int = 1             # runs that saw it
    details: str = ""         # the newest run's details in that state
    duration: float = 0.0     # the newest run's check duration (seconds)
    handle: str = ""          # the newest run that saw it

    def __post_init__(self):
        object.__setattr__(self, "check_type", results.CheckType(self.check_type))
        object.__setattr__(self, "state", health.State(self.state))


def type_state(check_results):
    """A check type's own state in one run from its results: failed when any check found
    a fault, else error when any could not run, else passed; None without results."""
    if not check_results:
        return None
    states = {health.state_of(r) for r in check_results}
    for state in (health.State.FAILED, health.State.ERROR):
        if state in states:
            return state
    return health.State.PASSED


def extend(last, state, at, max_gap):
    """How a run of `state` at `at` writes a key's history whose newest span is `last`
    (None: none yet): ("extend", new until) when it goes on with `last`, or ("open",
    until of `last` or None) when a new span starts at `at` (after a change, `last` held
    until `at`; after a gap longer than `max_gap` seconds, `last` ends where it was)."""
    if last is None:
        return "open", None
    if (at - last.until).total_seconds() > max_gap:
        return "open", last.until
    if last.state == state:
        return "extend", at
    return "open", at


@dataclasses.dataclass(frozen=True)
class Outage:
    key: str
    state: health.State      # failed, or error (could not check)
    start: datetime.datetime
    end: datetime.datetime
    ongoing: bool             # still in that state at the window's end
    details: str

    @property
    def seconds(self):
        return (self.end - self.start).total_seconds()

    def to_dict(self):
        return {"key": self.key, "state": self.state.value,
                "start": _iso(self.start), "end": _iso(self.end),
                "seconds": round(self.seconds, 3), "ongoing": self.ongoing,
                "details": self.details}

    @classmethod
    def from_dict(cls, data):
        return cls(key=data["key"], state=health.State(data["state"]),
                   start=results.parse_ts(data["start"]), end=results.parse_ts(data["end"]),
                   ongoing=data["ongoing"], details=data["details"])


@dataclasses.dataclass(frozen=True)
class Availability:
    """One key over one window."""

    key: str
    check_type: results.CheckType
    component: str
    window: int                      # seconds
    up: float                        # seconds passed
    down: float                      # seconds failed
    error: float                     # seconds the check could not run
    unknown: float                   # seconds no run looked
    slo: float                       # e.g. 0.999
    outages: typing.Tuple[Outage, ...] = ()

    @property
    def measured(self):
        return self.up + self.down

    @property
    def ratio(self):
        """up / (up + down), or None when nothing was measured in the window."""
        return self.up / self.measured if self.measured else None

    @property
    def budget(self):
        """Seconds of downtime the SLO allows over the measured time."""
        return (1.0 - self.slo) * self.measured

    @property
    def budget_left(self):
        """Seconds of that budget left (negative: the SLO is missed)."""
        return self.budget - self.down

    @property
    def slo_met(self):
        return None if self.ratio is None else self.ratio >= self.slo

    def to_dict(self):
        return {
            "key": self.key, "check_type": self.check_type.value,
            "component": self.component or None, "window": self.window,
            "availability": None if self.ratio is None else round(self.ratio, 6),
            "slo": self.slo, "slo_met": self.slo_met,
            "up_seconds": round(self.up, 3), "down_seconds": round(self.down, 3),
            "error_seconds": round(self.error, 3), "unknown_seconds": round(self.unknown, 3),
            "error_budget_seconds": round(self.budget, 3),
            "error_budget_left_seconds": round(self.budget_left, 3),
            "error_budget_left": (round(self.budget_left / self.budget, 6)
                                  if self.budget else None),
            "outages": [o.to_dict() for o in self.outages],
        }

    @classmethod
    def from_dict(cls, data):
        return cls(key=data["key"], check_type=results.CheckType(data["check_type"]),
                   component=data["component"] or "", window=data["window"],
                   up=data["up_seconds"], down=data["down_seconds"],
                   error=data["error_seconds"], unknown=data["unknown_seconds"],
                   slo=data["slo"],
                   outages=tuple(Outage.from_dict(o) for o in data["outages"]))

    def member_view(self, hosts=()):
        """As a project member may read it (CheckResult.member_view's masking)."""
        return dataclasses.replace(
            self, key=results.mask_hosts(self.key, hosts),
            component=results.mask_hosts(self.component, hosts),
            outages=tuple(dataclasses.replace(o, key=results.mask_hosts(o.key, hosts),
                                              details=results.mask_hosts(o.details, hosts))
                          for o in self.outages))


@dataclasses.dataclass(frozen=True)
class Report:
    """GET /cpulse/availability: every key of one cloud and project over each window."""

    cloud: str
    project_id: typing.Optional[str]   # None: the server's own (periodic) runs
    at: datetime.datetime               # the windows end here
    slo: float
    windows: typing.Tuple[typing.Tuple[int, typing.Tuple[Availability, ...]], ...]

    def to_api(self):
        return {"cloud": self.cloud, "project_id": self.project_id, "timestamp": _iso(self.at),
                "slo": self.slo,
                "windows": [{"window": seconds, "checks": [a.to_dict() for a in checks]}
                            for seconds, checks in self.windows]}

    def member_view(self, hosts=()):
        return dataclasses.replace(self, windows=tuple(
            (seconds, tuple(a.member_view(hosts) for a in checks))
            for seconds, checks in self.windows))

    @classmethod
    def from_api(cls, data):
        return cls(cloud=data["cloud"], project_id=data["project_id"],
                   at=results.parse_ts(data["timestamp"]), slo=data["slo"],
                   windows=tuple((w["window"], tuple(Availability.from_dict(a)
                                                     for a in w["checks"]))
                                 for w in data["windows"]))


def over_window(spans, window, slo, now):
    """[Availability] of every key in `spans` (any order) over the `window` seconds that
    end at `now`, ordered by key."""
    start = now - datetime.timedelta(seconds=window)
    by_key = {}
    for span in spans:
        by_key.setdefault(span.key, []).append(span)
    return [_one_key(sorted(by_key[key], key=lambda s: s.since), window, slo, start, now)
            for key in sorted(by_key)]


def _one_key(spans, window, slo, start, end):
    seconds = {state: 0.0 for state in health.State}
    outages = []
    for span in spans:
        if span.until < start or span.since > end:
            continue
        lo, hi = max(span.since, start), min(span.until, end)
        seconds[span.state] += max(0.0, (hi - lo).total_seconds())
        if not span.state.ok:
            ongoing = span is spans[-1]
            if (outages and outages[-1].state == span.state and outages[-1].end == lo):
                outages[-1] = dataclasses.replace(outages[-1], end=hi, ongoing=ongoing,
                                                  details=span.details)
            else:
                outages.append(Outage(span.key, span.state, lo, hi, ongoing, span.details))
    known = sum(seconds.values())
    first = spans[0]
    return Availability(key=first.key, check_type=first.check_type,
                        component=first.component, window=int(window),
                        up=seconds[health.State.PASSED], down=seconds[health.State.FAILED],
                        error=seconds[health.State.ERROR],
                        unknown=max(0.0, window - known), slo=slo, outages=tuple(outages))


def bars(spans, end, segment, count, slo):
    """[(segment start, Availability or None)]: one key's `spans` over `count` segments
    of `segment` seconds ending at `end`, oldest first (None: no run in it)."""
    answer = []
    for i in range(count):
        segment_end = end - datetime.timedelta(seconds=(count - 1 - i) * segment)
        found = over_window(spans, segment, slo, segment_end)
        item = found[0] if found and found[0].measured + found[0].error else None
        answer.append((segment_end - datetime.timedelta(seconds=segment), item))
    return answer


def changes(spans, since, limit):
    """The newest `limit` spans that began at or after `since`, newest first: each is a
    key's state changing (or first seen)."""
    recent = [s for s in spans if s.since >= since]
    return sorted(recent, key=lambda s: (s.since, s.key), reverse=True)[:limit]


class Verdict(str, enum.Enum):
    HEALTHY = "healthy"       # its newest run passed
    UNHEALTHY = "unhealthy"   # its newest run found a fault
    UNKNOWN = "unknown"       # never run, too long ago (max_gap), or it could not check


@dataclasses.dataclass(frozen=True)
class Failing:
    """A component whose newest result is not ok."""

    key: str
    component: str
    state: health.State
    since: datetime.datetime
    details: str

    def to_dict(self):
        return {"key": self.key, "component": self.component, "state": self.state.value,
                "since": _iso(self.since), "details": self.details}

    @classmethod
    def from_dict(cls, data):
        return cls(key=data["key"], component=data["component"],
                   state=health.State(data["state"]), since=results.parse_ts(data["since"]),
                   details=data["details"])


@dataclasses.dataclass(frozen=True)
class TypeStatus:
    """A check type's verdict now, since when, and what fails."""

    check_type: results.CheckType
    verdict: Verdict
    since: typing.Optional[datetime.datetime]      # its newest run's state first seen
    last_run: typing.Optional[datetime.datetime]
    failing: typing.Tuple[Failing, ...] = ()

    def to_dict(self):
        return {"check_type": self.check_type.value, "verdict": self.verdict.value,
                "since": _iso(self.since), "last_run": _iso(self.last_run),
                "failing": [f.to_dict() for f in self.failing]}

    @classmethod
    def from_dict(cls, data):
        return cls(check_type=results.CheckType(data["check_type"]),
                   verdict=Verdict(data["verdict"]), since=results.parse_ts(data["since"]),
                   last_run=results.parse_ts(data["last_run"]),
                   failing=tuple(Failing.from_dict(f) for f in data["failing"]))

    def member_view(self, hosts=()):
        return dataclasses.replace(self, failing=tuple(
            dataclasses.replace(f, key=results.mask_hosts(f.key, hosts),
                                component=results.mask_hosts(f.component, hosts),
                                details=results.mask_hosts(f.details, hosts))
            for f in self.failing))


def statuses(check_types, newest, now, max_gaps, unless_run=()):
    """[TypeStatus] of `check_types` from each key's newest Span (`newest`: {key:
    Span}); a type whose newest run is older than its max gap is unknown, and so is one
    never run, but for those of `unless_run`, then left out."""
    answer = []
    for check_type in check_types:
        span = newest.get(check_type.value)
        if span is None:
            if check_type not in unless_run:
                answer.append(TypeStatus(check_type, Verdict.UNKNOWN, None, None))
            continue
        fresh = (now - span.until).total_seconds() <= max_gaps[check_type]
        if not fresh or span.state == health.State.ERROR:
            verdict = Verdict.UNKNOWN
        else:
            verdict = Verdict.HEALTHY if span.state.ok else Verdict.UNHEALTHY
        # a component not checked by the newest run (keystone failed first) keeps what
        # it was last seen to be, while that is recent enough
        failing = tuple(
            Failing(key, s.component, s.state, s.since, s.details)
            for key, s in sorted(newest.items())
            if s.check_type == check_type and key != check_type.value and not s.state.ok
            and (now - s.until).total_seconds() <= max_gaps[check_type])
        answer.append(TypeStatus(check_type, verdict, span.since, span.until, failing))
    return answer


@dataclasses.dataclass(frozen=True)
class CloudStatus:
    """GET /cpulse/status: one cloud's verdict per check type."""

    cloud: str
    project_id: typing.Optional[str]   # None: the server's own (periodic) runs
    checks: typing.Tuple[TypeStatus, ...]

    @property
    def verdict(self):
        """The cloud's: unhealthy when a type is, else unknown when a type is, else
        healthy."""
        verdicts = {c.verdict for c in self.checks}
        for verdict in (Verdict.UNHEALTHY, Verdict.UNKNOWN):
            if verdict in verdicts:
                return verdict
        return Verdict.HEALTHY

    def to_dict(self):
        return {"cloud": self.cloud, "project_id": self.project_id,
                "verdict": self.verdict.value, "checks": [c.to_dict() for c in self.checks]}

    @classmethod
    def from_dict(cls, data):
        return cls(cloud=data["cloud"], project_id=data["project_id"],
                   checks=tuple(TypeStatus.from_dict(c) for c in data["checks"]))

    def member_view(self, hosts=()):
        return dataclasses.replace(self, checks=tuple(c.member_view(hosts)
                                                      for c in self.checks))


def format_period(seconds):
    """3600 -> "1h", 2592000 -> "30d", 90 -> "90s": the largest unit that divides it."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return "%d%s" % (seconds // size, unit)
    return "%ds" % seconds


def _iso(ts):
    return ts.isoformat(timespec="seconds") if ts else None
