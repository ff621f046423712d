"""Helpers for tests that call compiled functions from several threads at once."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import numpy as np

import graphc as gc


def run_threads(count: int, work: Callable[[int], Any], timeout: float = 300.0) -> None:
    """Run `work(i)` for i in range(count), each in its own thread, all released at
    once; re-raise the first error; fail if a thread is still running after `timeout`
    seconds (a deadlock)."""
    start = threading.Barrier(count)
    errors: list[BaseException] = []

    def body(i: int) -> None:
        try:
            start.wait()
            work(i)
        except BaseException as error:  # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=body, args=(i,), daemon=True) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout)
    alive = [t.name for t in threads if t.is_alive()]
    assert not alive, f"threads {alive} still running after {timeout} s: a deadlock?"
    if errors:
        raise errors[0]


def counter_program(
    device: str, *, fetched: bool, size: int = 1, step: float = 1.0
) -> tuple[gc.Variable, gc.Function]:
    """A counter and a function that adds `step` to it: the counter is fetched (its update
    is a new array) or not (its update is computed in place on the CPU)."""
    counter = gc.Variable(np.zeros(size), name="counter")
    output = counter if fetched else gc.sum(counter * 0.0)
    return counter, gc.function([], output, updates={counter: counter + step}, device=device)


def assert_counts(
    threads: int, calls: int, device: str, *, fetched: bool, warm: bool, size: int = 1
) -> None:
    """`threads` threads each call an increment `calls` times; not one update is lost."""
    counter, increment = counter_program(device, fetched=fetched, size=size)
    if warm:
        increment()

    def work(_: int) -> None:
        for _ in range(calls):
            increment()

    run_threads(threads, work)
    expected = threads * calls + (1 if warm else 0)
    np.testing.assert_array_equal(counter.value, np.full(size, float(expected)))
