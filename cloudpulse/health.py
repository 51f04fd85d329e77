"""Health transitions: the current state of every (cloud, project, check key), and what
changes it (docs/notifications.md).

Pure logic over `CheckResult`s: no database, no HTTP.  `observe()` takes a component's
stored state and its newest result and answers its next state and, when the change is
confirmed, the `Transition` to notify:

- a transition is ok -> not ok ("failed"), not ok -> ok ("recovered"), or a failure whose
  cause changed ("changed"): its status, or what its details say once URLs, numbers, ids
  and request ids are masked ("timeout after 3 s" and "timeout after 10 s" are one cause);
- flapping: a fault must be seen in `fail_after` consecutive results before it is told,
  a recovery or another cause in `recover_after` (a service that starts again answers
  503s a moment before it answers: one recovery, not a change then a recovery); a result
  back to the confirmed condition forgets the pending one;
- a fault still there after `reminder_interval` seconds since its last notification
  brings a "reminder";
- a result "not checked" because something it needs failed first (keystone, for every
  other endpoint probe) says nothing of its component: the blame, and the notice, are the
  failed one's.
"""

import dataclasses
import datetime
import enum
import re
import typing

from cloudpulse import results


class State(str, enum.Enum):
    PASSED = "passed"   # passed, or skipped (not applicable is not a fault)
    FAILED = "failed"   # the check found a fault
    ERROR = "error"     # the check could not run

    @property
    def ok(self):
        return self == State.PASSED


class Event(str, enum.Enum):
    FAILED = "failed"          # ok (or never seen) -> not ok
    RECOVERED = "recovered"    # not ok -> ok
    CHANGED = "changed"        # not ok -> not ok, another cause
    REMINDER = "reminder"      # still not ok, reminder_interval after the last notice


# What varies between two runs of one fault without changing it: the URL called, request
# and other ids, hex digests, numbers (durations, counts, ports).  An HTTP status stays: a
# 500 and a 503 are two causes.
_VOLATILE = [
    # The URL: a server's first call after its start goes to the service's root (version
    # discovery), the next ones to /v2/images; the component says which service it is.
    (re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s)\"',]*[^\s)\"',:]"), "<url>"),
    (re.compile(r"\breq-[0-9a-f-]{36}\b"), "req-<id>"),
    (re.compile(r"\b[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}\b",
                re.IGNORECASE), "<id>"),
    (re.compile(r"\b[0-9a-f]{16,}\b", re.IGNORECASE), "<id>"),
    (re.compile(r"(?<!HTTP )(?<![\w])\d+(?:\.\d+)?"), "#"),
]


def cause_of(result):
    """A failing result's typed identity, beside its key: its status and its details
    with what varies between runs of the same fault masked; "" when it is ok."""
    state = state_of(result)
    if state.ok:
        return ""
    text = result.details or ""
    for pattern, repl in _VOLATILE:
        text = pattern.sub(repl, text)
    return "%s: %s" % (state.value, text)


def state_of(result):
    if result.ok:
        return State.PASSED
    return State.ERROR if result.status == results.Status.ERROR else State.FAILED


@dataclasses.dataclass(frozen=True)
class Condition:
    """What a component is: its state and, when not ok, the cause."""

    state: State
    cause: str = ""

    def __post_init__(self):
        object.__setattr__(self, "state", State(self.state))

    @classmethod
    def of(cls, result):
        return cls(state_of(result), cause_of(result))


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """Consecutive results before a new condition is a transition."""

    fail_after: int = 1      # ok -> not ok: told at the first failing run
    recover_after: int = 2   # not ok -> ok, or another cause: a fault that comes and goes
                             # (or says other things while its service starts) stays one

    def needed(self, old, new):
        """Results of condition `new` in a row before it replaces `old` (None: none)."""
        urgent = not new.state.ok and (old is None or old.state.ok)
        return self.fail_after if urgent else self.recover_after


@dataclasses.dataclass(frozen=True)
class ComponentState:
    """The stored state of one (cloud, project, key)."""

    key: str                       # the result's key in its run: "endpoint.glance"
    check_type: results.CheckType
    component: str
    condition: typing.Optional[Condition]   # the confirmed one; None: not yet
    details: str                   # the newest result's details in that condition
    since: datetime.datetime       # when the condition was first seen
    handle: str                    # the newest run that saw it
    notified_at: typing.Optional[datetime.datetime] = None   # the last notice of it
    pending: typing.Optional[Condition] = None   # seen, not yet confirmed
    pending_count: int = 0
    pending_since: typing.Optional[datetime.datetime] = None

    def __post_init__(self):
        object.__setattr__(self, "check_type", results.CheckType(self.check_type))


@dataclasses.dataclass(frozen=True)
class Transition:
    """A confirmed change (or a reminder) of one component, to notify."""

    event: Event
    key: str
    check_type: results.CheckType
    component: str
    old: typing.Optional[Condition]   # None: never seen before (a fault at start)
    new: Condition
    details: str
    first_seen: datetime.datetime     # when the new condition was first seen
    handle: str                       # the run that confirmed it
    result: results.CheckResult       # that run's result


def observe(previous, key, result, handle, at, thresholds=Thresholds(),
            reminder_interval=0):
    """(ComponentState, Transition or None) after `result` (of run `handle`, recorded
    `at`) for a component whose stored state is `previous` (None: never seen; so is the
    answer for a result not checked of a component never seen)."""
    if result.not_checked:
        # something it needs failed first, which its own result tells: no news of this
        # component (one hung keystone is one notice, not one per service)
        return previous, None
    seen = Condition.of(result)
    if previous is not None and previous.condition == seen:
        state = dataclasses.replace(previous, details=result.details, handle=handle,
                                    pending=None, pending_count=0, pending_since=None)
        if (not seen.state.ok and reminder_interval > 0 and previous.notified_at
                and (at - previous.notified_at).total_seconds() >= reminder_interval):
            state = dataclasses.replace(state, notified_at=at)
            return state, _transition(Event.REMINDER, key, result, handle, previous.condition,
                                      state)
        return state, None
    if previous is not None and previous.pending == seen:
        count, first = previous.pending_count + 1, previous.pending_since
    else:
        count, first = 1, at
    if (previous is None or previous.condition is None) and seen.state.ok:
        # a component first seen healthy: its state, nothing to tell
        return _new_state(key, result, seen, handle, first, None), None
    if count < thresholds.needed(previous.condition if previous else None, seen):
        if previous is None:   # a fault at first sight, not yet confirmed
            previous = _new_state(key, result, None, handle, first, None)
        return dataclasses.replace(previous, pending=seen, pending_count=count,
                                   pending_since=first, handle=handle), None
    old = previous.condition if previous else None
    state = _new_state(key, result, seen, handle, first, at)
    if seen.state.ok:
        event = Event.RECOVERED
    elif old is None or old.state.ok:
        event = Event.FAILED
    else:
        event = Event.CHANGED
    return state, _transition(event, key, result, handle, old, state)


def _new_state(key, result, condition, handle, since, notified_at):
    return ComponentState(key=key, check_type=result.check_type, component=result.component,
                          condition=condition, details=result.details, since=since,
                          handle=handle, notified_at=notified_at)


def _transition(event, key, result, handle, old, state):
    return Transition(event=event, key=key, check_type=result.check_type,
                      component=result.component, old=old, new=state.condition,
                      details=result.details, first_seen=state.since, handle=handle,
                      result=result)


def run_observations(run):
    """[(key, CheckResult)] of an ended run that say something about the cloud: none of
    an interrupted run (the server stopped, not the cloud)."""
    if run.state != results.RunState.FINISHED:
        return []
    keys = run.keys()
    return [(keys[id(r)], r) for r in run.results]
