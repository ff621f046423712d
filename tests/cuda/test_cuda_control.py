"""Control flow on the CUDA backend (kernels/control_writer.py): the loop runs on the
host, launching its body's kernels, with the carries on the device. Against the
reference interpreter on numba's CUDA simulator, with tiny shapes: cond, scan (forward,
reverse, run-time length, gradients), while_loop, fori_loop, nested loops, and bodies
whose kernels check indices."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.cuda


def _compare(inputs: list, outputs: list, feeds: list) -> gc.Function:
    fn = gc.function(inputs, outputs, device="cuda")
    want = gc.function(inputs, outputs, device="reference")(*feeds)
    got = fn(*feeds)
    for g, r in zip(got, want, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-6)
    return fn


def test_a_scan_and_its_gradient_run_on_the_device(rng) -> None:
    x = gc.placeholder((None, 2, 3), "float32", name="x")
    w = gc.Variable(rng.standard_normal((3, 3)).astype(np.float32), name="w")

    def step(h, xt):
        h = gc.tanh(xt @ w + h * 0.5)
        return h, gc.sum(h)

    final, ys = gc.scan(step, np.zeros((2, 3), np.float32), x)
    loss = gc.sum(final) + gc.sum(ys)
    fn = _compare([x], [final, ys, *gc.grad(loss, [x, w])], [rng.standard_normal((4, 2, 3))])
    assert "for step_" in fn.source  # a host loop in the entry
    assert len(fn(np.zeros((0, 2, 3), np.float32))[1]) == 0  # zero steps


def test_reverse_scans_lengths_and_nested_loops_on_the_device(rng) -> None:
    x = gc.placeholder((None, 3), "float32", name="x")

    def outer(c, row):
        inner, _ = gc.scan(lambda a, e: (a * 0.5 + e, None), c, gc.reshape(row, (3, 1)))
        return inner, inner

    final, ys = gc.scan(outer, np.zeros(1, np.float32), x, reverse=True)
    counted, _ = gc.scan(lambda c, _: (c + 2.0, None), np.float32(1), length=3)
    _compare([x], [final, ys, counted], [rng.standard_normal((4, 3)).astype(np.float32)])


def test_cond_while_and_fori_on_the_device(rng) -> None:
    x = gc.placeholder((3,), "float32", name="x")
    n = gc.placeholder((), "int64", name="n")
    picked = gc.cond(gc.sum(x) > 0, lambda a: a * 2.0, lambda a: -a, x)
    doubled = gc.while_loop(lambda s: s[1] < n, lambda s: (s[0] * 2.0, s[1] + 1), (x, 0))
    looped = gc.fori_loop(0, 3, lambda i, c: c + gc.cast(i, "float32"), x)
    i = gc.placeholder((), "int64", name="i")
    taken = gc.cond(gc.sum(x) > 100.0, lambda a, k: gc.take(a, k), lambda a, k: a[0], x, i)
    feeds = [rng.standard_normal(3).astype(np.float32), np.int64(3), np.int64(1)]
    _compare([x, n, i], [picked, doubled[0], looped, taken], feeds)
    fn = gc.function([x, n, i], taken, device="cuda")
    with pytest.raises(IndexError):  # the taken branch's index check, on the device
        fn(np.full(3, 50.0, np.float32), np.int64(3), np.int64(7))
