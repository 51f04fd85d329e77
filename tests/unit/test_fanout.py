"""The one bounded parallel map (cloudpulse.fanout), with real threads and real sleeps."""

import threading
import time

from cloudpulse import fanout


def test_results_keep_order_values_and_errors():
    def func(n):
        if n == 3:
            raise ValueError("three")
        time.sleep(0.01 * (5 - n))
        return n * n

    out = fanout.fan_out(func, range(5), max_workers=5)
    assert [r.item for r in out] == [0, 1, 2, 3, 4]
    assert [r.value for r in out if r.ok] == [0, 1, 4, 16]
    assert isinstance(out[3].error, ValueError) and str(out[3].error) == "three"


def test_parallelism_is_bounded():
    lock, now, peak = threading.Lock(), [0], [0]

    def func(_):
        with lock:
            now[0] += 1
            peak[0] = max(peak[0], now[0])
        time.sleep(0.05)
        with lock:
            now[0] -= 1

    t0 = time.monotonic()
    fanout.fan_out(func, range(9), max_workers=3)
    assert peak[0] == 3
    assert time.monotonic() - t0 >= 0.15   # three rounds of three


def test_a_hung_item_times_out_and_frees_its_slot():
    release = threading.Event()

    def func(n):
        if n == 0:
            release.wait(10)   # hangs past its timeout
            return "late"
        return n

    t0 = time.monotonic()
    out = fanout.fan_out(func, range(4), max_workers=1, timeout=0.3)
    elapsed = time.monotonic() - t0
    release.set()
    assert isinstance(out[0].error, fanout.ItemTimeout)
    assert str(out[0].error) == "no answer within 0.3 s"
    assert [r.value for r in out[1:]] == [1, 2, 3]   # the slot went on to the others
    assert elapsed < 1.0, elapsed


def test_empty_and_map_form():
    assert fanout.fan_out(lambda x: x, []) == []
    assert fanout.fan_out_map(lambda x: 1 / x, [1, 0], key=str)["1"] == 1.0
    assert isinstance(fanout.fan_out_map(lambda x: 1 / x, [1, 0], key=str)["0"],
                      ZeroDivisionError)
