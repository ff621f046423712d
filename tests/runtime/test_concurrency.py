"""Variable updates under concurrency: each call's updates are atomic with respect to
every other call that updates the same variables, on every device, from the first call
(the compile) on; calls that update nothing take no lock."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest
import threads as helpers

import graphc as gc

DEVICES = ["cpu", "reference"]


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("fetched", [True, False], ids=["fetched", "in_place"])
def test_threads_lose_no_increment(device: str, warm: bool, fetched: bool) -> None:
    # a size of its own per case: the cold cases compile code no other test loaded
    size = 3 + 2 * warm + fetched + 10 * (device == "cpu")
    helpers.assert_counts(8, 150, device, fetched=fetched, warm=warm, size=size)


@pytest.mark.parametrize("device", DEVICES)
def test_a_loaded_function_loses_no_increment(tmp_path: Path, device: str) -> None:
    counter = gc.Variable(np.zeros(()), name="counter")
    gc.save(tmp_path / "counter.graphc", gc.function([], counter, {counter: counter + 1.0}))
    loaded = gc.load(tmp_path / "counter.graphc", device=device)  # no call before the threads

    def work(_: int) -> None:
        for _ in range(100):
            loaded()

    helpers.run_threads(8, work)
    np.testing.assert_array_equal(loaded(), 800.0)


@pytest.mark.parametrize("device", DEVICES)
def test_overlapping_variable_sets_from_two_functions(device: str) -> None:
    """f moves one unit from a to b, g from b to c, in threads of their own: every
    transfer lands and the total is kept. Updates listed in opposite orders do not
    deadlock: locks are taken in one global order."""
    a = gc.Variable(np.array(10_000.0), name="a")
    b = gc.Variable(np.array(0.0), name="b")
    c = gc.Variable(np.array(0.0), name="c")
    f = gc.function([], a + b, updates={a: a - 1.0, b: b + 1.0}, device=device)
    g = gc.function([], b + c, updates={c: c + 1.0, b: b - 1.0}, device=device)
    calls = 150

    def work(i: int) -> None:
        fn = f if i % 2 else g
        for _ in range(calls):
            fn()

    helpers.run_threads(8, work)
    assert a.value == 10_000.0 - 4 * calls
    assert b.value == 0.0
    assert c.value == 4 * calls


@pytest.mark.parametrize("device", DEVICES)
def test_updates_of_one_call_are_seen_together(device: str) -> None:
    """A call that updates x and y to the same new value, under threads: a reader
    holding the same locks (Variable.value takes them one at a time, a function that
    updates both takes both) never sees one updated without the other."""
    x = gc.Variable(np.zeros(4), name="x")
    y = gc.Variable(np.zeros(4), name="y")
    step = gc.function([], [x, y], updates={x: x + 1.0, y: y + 1.0}, device=device)
    seen: list[tuple[np.ndarray, np.ndarray]] = []

    def work(i: int) -> None:
        for _ in range(100):
            got_x, got_y = step()
            seen.append((got_x, got_y))

    helpers.run_threads(6, work)
    assert all(np.array_equal(got_x, got_y) for got_x, got_y in seen)
    assert sorted(float(got_x[0]) for got_x, _ in seen) == [float(k) for k in range(600)]


@pytest.mark.parametrize("device", DEVICES)
def test_calls_that_update_nothing_take_no_lock(device: str) -> None:
    w = gc.Variable(np.ones(3), name="w")
    read = gc.function([], w * 2.0, device=device)
    write = gc.function([], w, updates={w: w + 1.0}, device=device)
    read(), write()  # compiled
    finished = threading.Event()

    def blocked_write() -> None:
        write()
        finished.set()

    with w.state.update_lock:  # as if another call were updating w
        np.testing.assert_array_equal(read(), [4.0, 4.0, 4.0])  # runs at once
        writer = threading.Thread(target=blocked_write, daemon=True)
        writer.start()
        time.sleep(0.2)
        assert not finished.is_set()  # waits for the update in progress
    writer.join(60)
    assert finished.is_set()
    np.testing.assert_array_equal(w.value, [3.0, 3.0, 3.0])


def test_value_and_assign_wait_for_an_update_in_progress() -> None:
    w = gc.Variable(np.zeros(2), name="w")
    done = threading.Event()

    def assign() -> None:
        w.assign(np.ones(2))
        done.set()

    with w.state.update_lock:
        thread = threading.Thread(target=assign, daemon=True)
        thread.start()
        time.sleep(0.1)
        assert not done.is_set()
    thread.join(60)
    np.testing.assert_array_equal(w.value, [1.0, 1.0])


def test_save_reads_values_under_the_locks(tmp_path: Path) -> None:
    """graphc.save while a training thread updates two variables together: every file
    holds two equal values (never one updated and one not)."""
    x = gc.Variable(np.zeros(1000), name="x")
    y = gc.Variable(np.zeros(1000), name="y")
    step = gc.function([], [], updates={x: x + 1.0, y: y + 1.0}, device="cpu")
    step()
    stop = threading.Event()

    def train() -> None:
        while not stop.is_set():
            step()

    trainer = threading.Thread(target=train, daemon=True)
    trainer.start()
    try:
        for k in range(20):
            gc.save(tmp_path / f"m{k}.graphc", step)
    finally:
        stop.set()
        trainer.join(60)
    for k in range(20):
        saved = gc.load(tmp_path / f"m{k}.graphc", device="reference")
        states = list(saved.variables_by_node().values())
        values = [s.get_state() for s in states]
        np.testing.assert_array_equal(values[0], values[1])


def test_an_in_place_update_leaves_no_stale_device_copy() -> None:
    """A reader that takes no lock (a CUDA call reading the variable) may upload the host
    array while an in-place CPU update is writing it; the update marks the value changed
    when it ends, so that copy is not current and the next reader uploads the new values.
    The reader is simulated here: mid-call, it keeps a copy of the half-updated array as
    the device copy (the table of device copies needs no GPU)."""
    from graphc.runtime.cuda import DEVICE_COPIES

    w = gc.Variable(np.zeros(4), name="w")
    step = gc.function([], gc.sum(w * 0.0), updates={w: w + 1.0}, device="cpu")
    step()
    executable = step._executable
    assert executable._in_place  # the update is computed in place
    entry = executable._entry
    taken = []

    def entry_with_a_reader(*args: object) -> object:
        taken.append(DEVICE_COPIES.read(w.state, lambda host: host.copy()))  # mid-write
        return entry(*args)

    executable._entry = entry_with_a_reader
    step()
    assert len(taken) == 1
    assert DEVICE_COPIES.current(w.state) is None  # the copy taken mid-write is not kept
    np.testing.assert_array_equal(w.value, [2.0, 2.0, 2.0, 2.0])
    np.testing.assert_array_equal(DEVICE_COPIES.read(w.state, np.copy), [2.0, 2.0, 2.0, 2.0])
