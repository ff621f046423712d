"""Variable updates on device="cuda": no update lost under threads (cold and warm, new
state or in place), overlapping variable sets, and variables keeping their declared
dtype and shape however their updates alias outputs and each other. In CI on numba's
CUDA simulator (small counts: it runs each GPU thread as a Python thread)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import threads as helpers
import update_cases
from hypothesis import given, settings

import graphc as gc

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize("warm", [False, True], ids=["cold", "warm"])
@pytest.mark.parametrize("fetched", [True, False], ids=["fetched", "in_place"])
def test_threads_lose_no_increment(warm: bool, fetched: bool) -> None:
    size = 20 + 2 * warm + fetched
    helpers.assert_counts(4, 15, "cuda", fetched=fetched, warm=warm, size=size)


def test_overlapping_variable_sets_from_two_functions() -> None:
    a = gc.Variable(np.array(100.0), name="a")
    b = gc.Variable(np.array(0.0), name="b")
    c = gc.Variable(np.array(0.0), name="c")
    f = gc.function([], a + b, updates={a: a - 1.0, b: b + 1.0}, device="cuda")
    g = gc.function([], b + c, updates={c: c + 1.0, b: b - 1.0}, device="cuda")

    def work(i: int) -> None:
        fn = f if i % 2 else g
        for _ in range(10):
            fn()

    helpers.run_threads(4, work)
    assert (a.value, b.value, c.value) == (80.0, 0.0, 20.0)


def test_zero_d_update_equal_to_a_fetched_output() -> None:
    a = gc.Variable(np.array(2.0), name="a")
    b = gc.Variable(np.array(3.0), name="b")
    f = gc.function([], a * b, updates={a: a + b, b: a * b}, device="cuda")
    np.testing.assert_array_equal(f(), 6.0)
    assert (a.value.shape, b.value.shape) == ((), ())
    assert (a.value, b.value) == (5.0, 6.0)


@settings(max_examples=8)
@given(case=update_cases.update_cases(max_variables=3))
def test_variables_keep_their_types(case: update_cases.UpdateCase) -> None:
    update_cases.check_calls(case, "cuda")


def test_a_dropped_function_is_freed_and_the_same_graph_shares_its_code() -> None:
    import gc as garbage
    import weakref

    def build() -> gc.Function:
        x = gc.placeholder((None,), "float32", name="x")
        w = gc.Variable(np.ones(1, "float32"), name="w")
        return gc.function([x], x * w + 1.0, updates={w: w * 2.0}, device="cuda")

    first, second = build(), build()
    assert first._executable._entry is second._executable._entry
    np.testing.assert_array_equal(first(np.ones(3, "float32")), [2.0, 2.0, 2.0])
    garbage.collect()
    garbage.disable()  # freed by reference counting alone
    try:
        dead = weakref.ref(first), weakref.ref(first._executable)
        del first
        assert all(ref() is None for ref in dead)
    finally:
        garbage.enable()


def test_host_reads_after_device_updates_see_the_newest_value(tmp_path: Path) -> None:
    """The newest value lives on the device (a new array, or one written where it lies);
    every host read brings it home: Variable.value, a CPU function, graphc.save. Once
    read, the device copy stays current (no upload); a host write makes it stale."""
    from graphc.runtime.cuda import DEVICE_COPIES

    fetched = gc.Variable(np.zeros(3, "float32"), name="fetched")
    in_place = gc.Variable(np.zeros(3, "float32"), name="in_place")
    step = gc.function(
        [],
        [fetched, gc.sum(in_place * 0.0)],
        updates={fetched: fetched + 1.0, in_place: in_place + 2.0},
        device="cuda",
    )
    read_on_cpu = gc.function([], fetched + in_place, device="cpu")
    step(), step()
    for v in (fetched, in_place):
        assert v.state._array is None  # the host array was dropped
    np.testing.assert_array_equal(read_on_cpu(), [6.0, 6.0, 6.0])
    assert DEVICE_COPIES.current(fetched.state) is not None  # both, and equal
    assert fetched.state._array is not None
    gc.save(tmp_path / "step.graphc", step)
    step()
    gc.save(tmp_path / "again.graphc", step)
    saved = gc.load(tmp_path / "step.graphc", device="reference")
    np.testing.assert_array_equal(saved()[0], [2.0, 2.0, 2.0])
    saved = gc.load(tmp_path / "again.graphc", device="reference")
    np.testing.assert_array_equal(saved()[0], [3.0, 3.0, 3.0])
    np.testing.assert_array_equal(in_place.value, [6.0, 6.0, 6.0])
    in_place.assign(np.full(3, -1.0, "float32"))
    assert DEVICE_COPIES.current(in_place.state) is None  # stale: the next call uploads
    step()
    np.testing.assert_array_equal(in_place.value, [1.0, 1.0, 1.0])


def test_a_device_copy_is_freed_with_its_variable() -> None:
    """The table of device copies holds no variable alive: dropping the functions and
    the variable frees the state and its copy in device memory, by reference counting."""
    import gc as garbage
    import weakref

    from graphc.runtime.cuda import DEVICE_COPIES

    v = gc.Variable(np.ones(5, "float32"), name="v")
    step = gc.function([], v * 2.0, updates={v: v + 1.0}, device="cuda")
    read = gc.function([], v * 3.0, device="cuda")
    step()
    np.testing.assert_array_equal(read(), [6.0] * 5)
    copy = DEVICE_COPIES.current(v.state)
    assert copy is not None
    garbage.collect()
    garbage.disable()
    try:
        dead = weakref.ref(v.state), weakref.ref(copy)
        del v, step, read, copy
        assert all(ref() is None for ref in dead)
    finally:
        garbage.enable()
