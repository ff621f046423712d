"""The executable seam (runtime/base.py) behaves the same on every backend: feed shapes
checked once are remembered (the shape key) and skip the full check; a feed that
contradicts them, or that the entry could misread, takes the full check, which raises
InputError before any kernel runs; arenas are per thread; new states are installed.
The CUDA cases run on numba's simulator (NUMBA_ENABLE_CUDASIM=1), or a GPU."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import threads as helpers

import graphc as gc
from graphc.runtime import base

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]


class Counted:
    """A function that counts the calls it answered and those it raised for (wrapping an
    entry or the full feed check: numba's dispatcher refuses other argument types before
    anything runs, with a TypeError)."""

    def __init__(self, function: Callable[..., Any]) -> None:
        self.function = function
        self.calls = 0
        self.raised = 0

    def __call__(self, *args: Any) -> Any:
        try:
            result = self.function(*args)
        except Exception:
            self.raised += 1
            raise
        self.calls += 1
        return result


def _program(device: str) -> tuple[gc.Variable, gc.Function, Counted, Counted]:
    """x: float32[n, 3] and s: float32[n] (one run-time size), a variable updated by each
    call; the function, after one call, with its entry and full check counted."""
    x = gc.placeholder((None, 3), "float32", name="x")
    s = gc.placeholder((None,), "float32", name="s")
    w = gc.Variable(np.zeros(3, "float32"), name="w")
    fn = gc.function([x, s], x * gc.reshape(s, (-1, 1)) + w, updates={w: w + 1.0}, device=device)
    fn(np.ones((2, 3), "float32"), np.ones(2, "float32"))  # compiles
    executable = fn._executable
    entry = executable._entry = Counted(executable._entry)
    check = executable.feeds.checked_feeds = Counted(executable.feeds.checked_feeds)
    return w, fn, entry, check


@pytest.mark.parametrize("device", DEVICES)
def test_shapes_seen_before_skip_the_full_check(device: str) -> None:
    w, fn, entry, check = _program(device)
    x, s = np.ones((2, 3), "float32"), np.full(2, 2.0, "float32")
    np.testing.assert_array_equal(fn(x, s), np.full((2, 3), 3.0))
    assert (entry.calls, check.calls) == (1, 0)  # the first call's shapes
    np.testing.assert_array_equal(fn(np.ones((4, 3), "float32"), np.ones(4, "float32")), 3.0)
    assert (entry.calls, check.calls) == (2, 1)  # new shapes: checked, then remembered
    fn(np.ones((4, 3), "float32"), np.ones(4, "float32"))
    assert (entry.calls, check.calls) == (3, 1)
    np.testing.assert_array_equal(w.value, [4.0, 4.0, 4.0])


@pytest.mark.parametrize("device", DEVICES)
def test_a_wrong_shape_after_a_good_one_raises_before_any_kernel(device: str) -> None:
    w, fn, entry, check = _program(device)
    good = (np.ones((2, 3), "float32"), np.ones(2, "float32"))
    fn(*good)
    bad = [
        ((np.ones((2, 3), "float32"), np.ones(3, "float32")), "s"),  # n bound to 2 by x
        ((np.ones((2, 4), "float32"), np.ones(2, "float32")), "x"),  # the declared 3
        ((np.ones((2, 3, 1), "float32"), np.ones(2, "float32")), "rank"),
        ((np.ones((2, 3), "complex64"), np.ones(2, "float32")), "cast"),
    ]
    for feeds, match in bad:
        with pytest.raises(gc.InputError, match=match):
            fn(*feeds)
    assert entry.calls == 1  # no bad call reached the entry
    assert (check.calls, check.raised) == (0, len(bad))
    np.testing.assert_array_equal(w.value, [2.0, 2.0, 2.0])  # nothing changed but two calls
    fn(*good)
    assert entry.calls == 2


@pytest.mark.parametrize("device", DEVICES)
def test_a_wrong_shape_for_a_declared_size_raises_before_any_kernel(device: str) -> None:
    """No run-time sizes: the CPU entry checks the feeds' shapes itself (raising before
    its first kernel), the CUDA runtime by the shape key; either way the full check
    then says what is wrong."""
    x = gc.placeholder((4,), "float32", name="x")
    w = gc.Variable(np.zeros(4, "float32"), name="w")
    fn = gc.function([x], x + w, updates={w: w + x}, device=device)
    fn(np.ones(4, "float32"))
    for feed in (np.ones(5, "float32"), np.ones((1, 4), "float32"), np.ones(3, "float64")):
        with pytest.raises(gc.InputError, match="x"):
            fn(feed)
    np.testing.assert_array_equal(w.value, [1.0, 1.0, 1.0, 1.0])  # no kernel ran
    np.testing.assert_array_equal(fn(np.full(4, 2.0, "float32")), [3.0, 3.0, 3.0, 3.0])


@pytest.mark.parametrize("device", DEVICES)
def test_feeds_the_entry_could_misread_take_the_full_check(device: str) -> None:
    """Shapes seen before, but another dtype (cast by numpy's same_kind rule), a
    non-contiguous layout or a list: the full check converts them."""
    _, fn, entry, check = _program(device)
    strided = np.arange(12, dtype="float32").reshape(2, 6)[:, ::2]
    s = np.array([1.0, 2.0], "float32")
    want = strided * s[:, None]
    calls = [(strided.astype("float64"), s), (strided, s), (strided.tolist(), s)]
    for k, feeds in enumerate(calls):
        np.testing.assert_array_equal(fn(*feeds), want + 1.0 + k)
    assert (entry.calls, check.calls) == (3, 3)


@pytest.mark.parametrize("device", DEVICES)
def test_the_shape_keys_are_bounded(device: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(base, "MAX_SHAPE_KEYS", 3)
    _, fn, entry, _ = _program(device)
    for n in range(1, 9):
        np.testing.assert_array_equal(
            fn(np.ones((n, 3), "float32"), np.ones(n, "float32")), np.full((n, 3), n + 1.0)
        )
        assert 1 <= len(fn._executable._bound) <= 3
    assert entry.calls == 8


@pytest.mark.parametrize("device", DEVICES)
def test_each_thread_has_an_arena_of_its_own(device: str) -> None:
    """Threads calling at once with different sizes each carve temporaries out of their
    own arena: every result is right."""
    x = gc.placeholder((None, 8), "float64", name="x")
    fn = gc.function([x], gc.sum(gc.tanh(x @ np.ones((8, 8))) * 2.0, axis=1), device=device)
    sizes = [3, 17]
    fn(np.ones((1, 8)))

    def work(i: int) -> None:
        n = sizes[i % 2]
        feed = np.full((n, 8), 0.01 * (i + 1))
        want = np.sum(np.tanh(feed @ np.ones((8, 8))) * 2.0, axis=1)
        for _ in range(3 if device == "cuda" else 30):
            np.testing.assert_allclose(fn(feed), want, rtol=1e-12)

    helpers.run_threads(4, work)


@pytest.mark.parametrize("device", [*DEVICES, "reference"])
def test_new_states_are_installed_after_the_outputs(device: str) -> None:
    """The outputs are computed from the old values; then every update lands, whether
    it comes back as a new array or is computed where the value lies."""
    a = gc.Variable(np.array([1.0, 2.0]), name="a")
    b = gc.Variable(np.array([10.0, 20.0]), name="b")
    fn = gc.function([], [a * 1.0, gc.sum(b * 0.0)], updates={a: a + b, b: b * 2.0}, device=device)
    first = fn()
    np.testing.assert_array_equal(first[0], [1.0, 2.0])
    np.testing.assert_array_equal(fn()[0], [11.0, 22.0])
    np.testing.assert_array_equal(a.value, [31.0, 62.0])
    np.testing.assert_array_equal(b.value, [40.0, 80.0])
    assert fn.compiled == ("reference" if device == "reference" else "native")
