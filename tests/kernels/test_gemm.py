"""Products as few, large GEMMs: a batched operand times a 2-D weight is one GEMM over
the batch folded into the rows, and the weight's gradient one GEMM over the batch
folded into the contracted axis (not a GEMM per batch entry, summed)."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def _products(f: gc.Function) -> list[tuple[int, ...]]:
    """The operand ranks of every product in the compiled graph (fused or not)."""
    graph = f._executable.generated.program.graph
    ranks = []
    for node in graph.nodes:
        if node.op == "matmul" or (node.op == "fused" and node.attrs["kind"] == "matmul"):
            ranks.append(tuple(graph.type_of(v).ndim for v in node.inputs[:2]))
    return ranks


def _linear(batch_shape: tuple) -> tuple[list, list]:
    rng = np.random.default_rng(0)
    x = gc.placeholder((*batch_shape, 6), "float32", name="x")
    w = gc.Variable(rng.standard_normal((6, 5)).astype(np.float32), name="w")
    b = gc.Variable(rng.standard_normal(5).astype(np.float32), name="b")
    loss = gc.sum(gc.tanh(x @ w + b) ** 2)
    return [x], [loss, *gc.grad(loss, [w, b, x])]


@pytest.mark.parametrize("batch_shape", [(None, 7), (2, None, 3)])
def test_a_batched_linear_layer_and_its_gradients_are_2d_gemms(batch_shape) -> None:
    inputs, outputs = _linear(batch_shape)
    f = gc.function(inputs, outputs, device="cpu")
    ranks = _products(f)
    assert len(ranks) == 3  # forward, input gradient, weight gradient
    batched = [r for r in ranks if max(r) > 2]
    assert len(batched) == 2  # (x @ w and g @ w^T: folded when run, see below)
    assert (2, 2) in ranks  # the weight gradient: one 2-D product, no batch to sum
    assert "matmul_batched" not in f.source
    reference = gc.function(inputs, outputs, device="reference")
    shape = (*(4 if d is None else d for d in batch_shape), 6)
    a = np.random.default_rng(1).standard_normal(shape).astype(np.float32)
    for got, want in zip(f(a), reference(a), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-5)


def test_the_weight_gradient_matches_finite_differences() -> None:
    rng = np.random.default_rng(2)
    x = gc.placeholder((3, 4, 6), "float64", name="x")
    w = gc.placeholder((6, 5), "float64", name="w")
    loss = gc.sum(gc.tanh(x @ w) ** 2)
    f = gc.function([x, w], gc.grad(loss, [w])[0], device="cpu")
    value = gc.function([x, w], loss, device="cpu")
    a, b = rng.standard_normal((3, 4, 6)), rng.standard_normal((6, 5)) * 0.5
    got = f(a, b)
    eps = 1e-6
    numeric = np.zeros_like(b)
    for index in np.ndindex(b.shape):
        up, down = b.copy(), b.copy()
        up[index] += eps
        down[index] -= eps
        numeric[index] = (value(a, up) - value(a, down)) / (2 * eps)
    np.testing.assert_allclose(got, numeric, rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("tokens", [0, 5, 300])
@pytest.mark.parametrize("rows", [3, 70, 130])
def test_a_fused_product_reads_a_transposed_operand_in_place(tokens, rows) -> None:
    # a weight gradient xᵀ @ g finished by an update: one GEMM that hands BLAS the
    # transpose (no copy of its rows, panel by panel), then the epilogue; more rows
    # than a panel (64), and an empty contracted axis (no tokens: the product is 0)
    x = gc.placeholder((None, rows), "float32", name="x")
    g = gc.placeholder((None, 4), "float32", name="g")
    w = gc.placeholder((rows, 4), "float32", name="w")
    update = w * 0.9 - 0.05 * (gc.transpose(x) @ g)
    f = gc.function([x, g, w], update, device="cpu")
    assert "lib.dot_span(" in f.source
    assert "lib.dot_rows(" not in f.source
    assert "np.ascontiguousarray" not in f.source
    rng = np.random.default_rng(tokens + rows)
    args = (
        rng.standard_normal((tokens, rows)).astype(np.float32),
        rng.standard_normal((tokens, 4)).astype(np.float32),
        rng.standard_normal((rows, 4)).astype(np.float32),
    )
    want = gc.function([x, g, w], update, device="reference")(*args)
    np.testing.assert_allclose(f(*args), want, rtol=2e-5, atol=2e-5)


@pytest.mark.parametrize(
    ("rows", "cols", "panel"), [(600, 6, 256), (150, 8192, 64), (70, 1024, 256)]
)
def test_a_fused_product_runs_by_panels_sized_to_its_width(rows, cols, panel) -> None:
    # panels of up to 1 MiB of product rows, within [64, 256] rows: several panels and a
    # partial last one (600 rows), the narrowest panel for a wide product, one panel
    from graphc.kernels.cpu import ops

    assert ops.panel_rows(cols, 4) == panel
    x = gc.placeholder((None, 5), "float32", name="x")
    w = gc.placeholder((5, cols), "float32", name="w")
    out = gc.relu(x @ w + 0.5)
    f = gc.function([x, w], out, device="cpu")
    assert f"by panels of {panel} rows" in f.source
    rng = np.random.default_rng(rows)
    args = (
        rng.standard_normal((rows, 5)).astype(np.float32),
        rng.standard_normal((5, cols)).astype(np.float32),
    )
    want = gc.function([x, w], out, device="reference")(*args)
    np.testing.assert_allclose(f(*args), want, rtol=2e-5, atol=2e-5)
