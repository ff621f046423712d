"""Random scan bodies (hypothesis): chains of elementwise ops over the carry, the step's
slice and a captured weight, run by graphc.scan on the reference interpreter and the CPU
backend, against the same chain run by a Python loop over numpy; forward, reverse and
zero-step scans. The CPU backend's gradients must match the interpreter's."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc as gc

OPS = ("add", "sub", "mul", "tanh", "sin", "maximum", "where_positive")
NUMPY = {
    "add": np.add,
    "sub": np.subtract,
    "mul": np.multiply,
    "tanh": lambda a, _: np.tanh(a),
    "sin": lambda a, _: np.sin(a),
    "maximum": np.maximum,
    "where_positive": lambda a, b: np.where(a > 0, a, b),
}
GRAPHC = {
    "add": gc.add,
    "sub": gc.subtract,
    "mul": gc.multiply,
    "tanh": lambda a, _: gc.tanh(a),
    "sin": lambda a, _: gc.sin(a),
    "maximum": gc.maximum,
    "where_positive": lambda a, b: gc.where(gc.greater(a, 0.0), a, b),
}


@st.composite
def bodies(draw):
    """A chain of steps (op, a, b) over the values (carry, x, w, earlier steps)."""
    steps = []
    for k in range(draw(st.integers(1, 6))):
        available = 3 + k
        a = draw(st.integers(0, available - 1))
        b = draw(st.integers(0, available - 1))
        steps.append((draw(st.sampled_from(OPS)), a, b))
    return steps


def _run(steps, functions, c, x, w):
    values = [c, x, w]
    for op, a, b in steps:
        values.append(functions[op](values[a], values[b]))
    return values[-1]


def _numpy_scan(steps, xs, w, reverse):
    c, ys = np.zeros(3), [None] * len(xs)
    for t in reversed(range(len(xs))) if reverse else range(len(xs)):
        y = _run(steps, NUMPY, c, xs[t], w)
        c, ys[t] = np.tanh(y), y
    return c, np.array(ys).reshape(len(xs), 3)


def _graph(steps, reverse):
    xs = gc.placeholder((None, 3), "float64", name="xs")
    w = gc.placeholder((3,), "float64", name="w")

    def step(c, x):
        y = _run(steps, GRAPHC, c, x, w) + gc.zeros_like(c)  # (a (3,) value even if constant)
        return gc.tanh(y), y

    final, ys = gc.scan(step, np.zeros(3), xs, reverse=reverse)
    loss = gc.sum(final) + gc.sum(ys * ys)
    return [xs, w], [final, ys, *gc.grad(loss, [xs, w])]


@settings(max_examples=40, deadline=None)
@given(steps=bodies(), length=st.integers(0, 4), reverse=st.booleans(), seed=st.integers(0, 99))
def test_random_bodies_match_a_python_loop(steps, length, reverse, seed) -> None:
    rng = np.random.default_rng(seed)
    xs, w = rng.standard_normal((length, 3)), rng.standard_normal(3)
    inputs, outputs = _graph(steps, reverse)
    final, ys, *_ = gc.function(inputs, outputs, device="reference")(xs, w)
    want_final, want_ys = _numpy_scan(steps, xs, w, reverse)
    np.testing.assert_allclose(final, want_final, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ys, want_ys, rtol=1e-12, atol=1e-12)


@settings(max_examples=8, deadline=None)
@given(steps=bodies(), length=st.integers(0, 4), reverse=st.booleans(), seed=st.integers(0, 99))
def test_random_bodies_compile_for_the_cpu(steps, length, reverse, seed) -> None:
    rng = np.random.default_rng(seed)
    xs, w = rng.standard_normal((length, 3)), rng.standard_normal(3)
    inputs, outputs = _graph(steps, reverse)
    want = gc.function(inputs, outputs, device="reference")(xs, w)
    got = gc.function(inputs, outputs, device="cpu")(xs, w)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-10, atol=1e-12)
