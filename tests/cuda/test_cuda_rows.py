"""Row kernels on the CUDA backend (kernels/cuda/codegen.emit_rows, one thread per row)
against the reference interpreter: softmax, log-softmax, layer norm and cross-entropy,
forward and backward, rows over two axes, NaN and infinities. In CI on numba's CUDA
simulator, with tiny shapes."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.cuda


def _compare(inputs: list, outputs: list, feeds: list, rtol: float, atol: float) -> None:
    fn = gc.function(inputs, outputs, device="cuda")
    assert any(n.op == "fused" and n.attrs["kind"] == "row" for n in fn.graph.nodes)
    got = fn(*feeds)
    want = gc.function(inputs, outputs, device="reference", optimize=False)(*feeds)
    for g, w in zip(got, want, strict=True):
        np.testing.assert_allclose(np.asarray(g), w, rtol=rtol, atol=atol, equal_nan=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_layer_norm_and_cross_entropy_with_gradients(dtype: str) -> None:
    rng = np.random.default_rng(3)
    x = gc.placeholder((None, 6), dtype, name="x")
    gamma = gc.placeholder((6,), dtype, name="gamma")
    labels = gc.placeholder((None,), "int32", name="labels")
    ys = [gc.softmax(x), gc.log_softmax(x), gc.layer_norm(x, gamma, gamma * 0.5)]
    loss = gc.mean(gc.softmax_cross_entropy(x, labels))
    for y in ys:
        loss = loss + gc.sum(y * y)
    outputs = [*ys, loss, *gc.grad(loss, [x, gamma])]
    feeds = [
        rng.standard_normal((3, 6)).astype(dtype),
        rng.standard_normal(6).astype(dtype),
        rng.integers(0, 6, 3).astype("int32"),
    ]
    tolerance = 2e-5 if dtype == "float32" else 1e-11
    _compare([x, gamma, labels], outputs, feeds, tolerance, tolerance)


def test_rows_over_two_axes_with_nan_and_infinities() -> None:
    x = gc.placeholder((2, 2, 3), "float32", name="x")
    feed = np.array(
        [[[1, np.nan, 2], [-np.inf, -np.inf, -np.inf]], [[np.inf, 0, 1], [0, 1, 2]]],
        np.float32,
    )
    shifted = x - gc.max(x, axis=(1, 2), keepdims=True)
    _compare([x], [gc.softmax(x), shifted], [feed], 1e-6, 1e-7)
