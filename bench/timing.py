"""Timing shared by the benchmarks: wall-clock samples of a callable, and their median."""

import statistics
import time


def timed(func, repeat):
    """Wall-clock seconds of `repeat` calls of func()."""
    samples = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        func()
        samples.append(time.perf_counter() - t0)
    return samples


def median(samples):
    return statistics.median(samples)
