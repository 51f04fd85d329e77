"""One bounded parallel map for every check that fans out: over probes, nodes, backends,
and (next) hosts and VMs.

`fan_out(func, items)` calls `func(item)` for every item, at most `max_workers` at a
time, and returns one `ItemResult` per item, in the items' order: its value, or the
exception it raised, or a timeout when the item ran longer than `timeout` seconds.  An
item never raises out of the map, and one slow item never holds the others: when it
times out its slot goes to the next item.  Its thread cannot be killed; it runs on as a
daemon and whatever it returns later is dropped, which is why every call a check makes
carries its own timeout as well.
"""

import collections
import dataclasses
import threading
import time
import typing


class ItemTimeout(Exception):
    """An item of a fan-out ran longer than its timeout."""

    def __init__(self, timeout):
        super().__init__("no answer within %s s" % timeout)
        self.timeout = timeout


@dataclasses.dataclass(frozen=True)
class ItemResult:
    item: typing.Any
    value: typing.Any = None
    error: typing.Optional[BaseException] = None
    seconds: float = 0.0

    @property
    def ok(self):
        return self.error is None

    def get(self):
        """The value, or raise the item's exception."""
        if self.error is not None:
            raise self.error
        return self.value

    def value_or_error(self):
        return self.value if self.error is None else self.error


def fan_out(func, items, max_workers=8, timeout=None, name="cpulse"):
    """[ItemResult] for func over items, in order; see the module's docstring."""
    items = list(items)
    out = [None] * len(items)
    if not items:
        return out
    workers = max(1, min(int(max_workers), len(items)))
    cond = threading.Condition()
    pending = collections.deque(range(len(items)))
    running = {}   # index -> (started, deadline or None)

    def work(i):
        t0 = time.monotonic()
        try:
            value, error = func(items[i]), None
        except Exception as exc:   # the item's failure is its result
            value, error = None, exc
        with cond:
            if out[i] is None:   # else it already timed out: dropped
                out[i] = ItemResult(items[i], value, error, time.monotonic() - t0)
                running.pop(i, None)
                cond.notify()

    with cond:
        while pending or running:
            while pending and len(running) < workers:
                i = pending.popleft()
                now = time.monotonic()
                running[i] = (now, now + timeout if timeout else None)
                threading.Thread(target=work, args=(i,), name="%s-%d" % (name, i),
                                 daemon=True).start()
            deadlines = [d for _, d in running.values() if d is not None]
            cond.wait(max(0.0, min(deadlines) - time.monotonic()) if deadlines else None)
            now = time.monotonic()
            for i, (started, deadline) in list(running.items()):
                if deadline is not None and now >= deadline:
                    out[i] = ItemResult(items[i], None, ItemTimeout(timeout), now - started)
                    del running[i]
    return out


def fan_out_map(func, items, key, **kwargs):
    """{key(item): value or the exception it ended with} (timeouts as ItemTimeout)."""
    return {key(r.item): r.value_or_error() for r in fan_out(func, items, **kwargs)}
