"""Adaptive timing: warm up, then the median of enough repetitions to fill a time budget.

Used inside each measurement process. Slow calls (ms) are timed one per sample; fast
calls (µs) are timed as loops of many calls per sample, so timer overhead and jitter
stay negligible, and the sample's mean per call is what enters the median.
"""

from __future__ import annotations

import math
import os
import resource
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

MIN_SAMPLES = 5
MAX_SAMPLES = 2000
SAMPLE_FLOOR_S = 2e-3  # a sample shorter than this is a loop of calls
# run.py sets each of these to the configuration's thread count before a process starts
THREAD_VARIABLES = (
    "NUMBA_NUM_THREADS",
    "OMP_NUM_THREADS",
    "OPENBLAS_NUM_THREADS",
    "MKL_NUM_THREADS",
)


def cores_for(threads: int | None) -> set[int] | None:
    """The first `threads` of the cores this process may run on: where a measurement
    process of that thread count is pinned. None (no pinning) when `threads` is None,
    covers every core, or the platform cannot pin. Libraries that size their own pools
    from the machine (XLA's loops run on every core whatever its flags say) then hold to
    the row's thread count too."""
    if not threads or not hasattr(os, "sched_getaffinity"):
        return None
    allowed = sorted(os.sched_getaffinity(0))
    return set(allowed[:threads]) if threads < len(allowed) else None


def pinned(threads: int | None) -> Callable[[], None] | None:
    """A `preexec_fn` for subprocess that pins the child to `cores_for(threads)`, or None."""
    cores = cores_for(threads)
    if cores is None:
        return None
    return lambda: os.sched_setaffinity(0, cores)


@dataclass(frozen=True)
class Timing:
    """Seconds per call: the median and the spread of the samples."""

    median_s: float
    min_s: float
    max_s: float
    samples: int
    calls_per_sample: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def measure(fn: Callable[[], Any], budget_s: float, warmup_s: float | None = None) -> Timing:
    """Time `fn()`: warm up (at least 3 calls), then sample for about `budget_s` seconds."""
    warmup_s = budget_s / 5 if warmup_s is None else warmup_s
    fastest = math.inf
    calls = 0
    start = time.perf_counter()
    while calls < 3 or time.perf_counter() - start < warmup_s:
        before = time.perf_counter()
        fn()
        fastest = min(fastest, time.perf_counter() - before)
        calls += 1
    per_sample = max(1, math.ceil(SAMPLE_FLOOR_S / max(fastest, 1e-9)))
    samples = int(budget_s / (per_sample * max(fastest, 1e-9)))
    samples = max(MIN_SAMPLES, min(MAX_SAMPLES, samples))
    times = []
    loop = range(per_sample)
    for _ in range(samples):
        before = time.perf_counter()
        for _ in loop:
            fn()
        times.append((time.perf_counter() - before) / per_sample)
    return Timing(statistics.median(times), min(times), max(times), samples, per_sample)


class OtherLoad:
    """The share of the machine's CPU time that other processes took during a `with` block.

    Measured from /proc/stat (all CPUs, hypervisor steal included) minus the CPU time of
    this process and of the children it waited for inside the block; None off Linux. A
    share above a few percent means the timings of that block are unreliable: spinning
    thread pools collapse when another process takes a core (PERFORMANCE.md, fact 5).
    """

    share: float | None = None

    def __enter__(self) -> OtherLoad:
        self._start = (_machine_busy_s(), _own_cpu_s(), time.perf_counter())
        return self

    def __exit__(self, *exc_info: object) -> None:
        busy, own, wall = _machine_busy_s(), _own_cpu_s(), time.perf_counter()
        if busy is None or self._start[0] is None:
            return
        capacity = (wall - self._start[2]) * (os.cpu_count() or 1)
        others = (busy - self._start[0]) - (own - self._start[1])
        self.share = max(0.0, others / capacity) if capacity > 0 else None


def _machine_busy_s() -> float | None:
    try:
        with open("/proc/stat") as file:
            fields = [int(v) for v in file.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    busy = sum(fields[:3]) + sum(fields[5:8])
    return busy / os.sysconf("SC_CLK_TCK")


def _own_cpu_s() -> float:
    total = 0.0
    for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN):
        usage = resource.getrusage(who)
        total += usage.ru_utime + usage.ru_stime
    return total
