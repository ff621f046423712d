"""Row kernels (kernels/rows.py): softmax, log-softmax, layer norm, cross-entropy and
their gradients, fused into "row" kernels, compiled for the CPU and compared
with the reference interpreter; rows over several axes, broadcast operands, NaN and
infinities, row scalars as results, long float32 rows (the blocked float64 sum),
symbolic and empty batches; the kernel's plan (what a later loop reads back) and its
text (exp once per element, unit-stride loops)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from gradcheck import check_gradients

import graphc as gc
from graphc.kernels import plan as planning
from graphc.kernels import rows
from graphc.kernels.verify import verify_program
from graphc.passes import fuse
from graphc.types import TensorType


def _compare(
    inputs: list[gc.Tensor],
    outputs: list[gc.Tensor],
    feeds: list[np.ndarray],
    rtol: float = 2e-6,
    atol: float = 1e-6,
    fused: bool = True,
) -> gc.Function:
    """The outputs compiled for the CPU against the reference interpreter's; with `fused`,
    at least one row group must have formed."""
    fn = gc.function(inputs, outputs, device="cpu")
    kinds = [n.attrs["kind"] for n in fn.graph.nodes if n.op == "fused"]
    assert ("row" in kinds) == fused, kinds
    got = fn(*feeds)
    want = gc.function(inputs, outputs, device="reference", optimize=False)(*feeds)
    got = got if isinstance(got, list | tuple) else [got]
    want = want if isinstance(want, list | tuple) else [want]
    for g, w in zip(got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, equal_nan=True)
    return fn


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(7)


ROWS = [1, 3, 129, 300]  # one value (no row kernel), fewer and more than a sum's block


@pytest.mark.parametrize("width", ROWS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_softmax_log_softmax_and_layer_norm_forward_and_backward(
    width: int, dtype: str, rng: np.random.Generator
) -> None:
    x = gc.placeholder((None, width), dtype, name="x")
    gamma = gc.placeholder((width,), dtype, name="gamma")
    beta = gc.placeholder((width,), dtype, name="beta")
    r = gc.placeholder((None, width), dtype, name="r")
    ys = [gc.softmax(x), gc.log_softmax(x), gc.layer_norm(x, gamma, beta)]
    loss = sum((gc.sum(y * r) for y in ys), gc.constant(0.0, dtype))
    grads = gc.grad(loss, [x, gamma, beta])
    feeds = [rng.standard_normal((5, width)).astype(dtype) * 3 for _ in range(1)]
    feeds += [rng.standard_normal(width).astype(dtype), rng.standard_normal(width).astype(dtype)]
    feeds.append(rng.standard_normal((5, width)).astype(dtype))
    tolerance = {"rtol": 2e-5, "atol": 2e-5} if dtype == "float32" else {}
    _compare([x, gamma, beta, r], [*ys, *grads], feeds, **tolerance, fused=width > 1)


def test_cross_entropy_loss_and_gradient_over_a_3d_batch(rng: np.random.Generator) -> None:
    logits = gc.placeholder((None, 4, 11), "float32", name="logits")
    labels = gc.placeholder((None, 4), "int64", name="labels")
    loss = gc.mean(gc.softmax_cross_entropy(logits, labels))
    feeds = [rng.standard_normal((3, 4, 11)).astype("float32"), rng.integers(0, 11, (3, 4))]
    _compare([logits, labels], [loss, *gc.grad(loss, [logits])], feeds)


def test_rows_over_two_axes_and_broadcast_operands(rng: np.random.Generator) -> None:
    x = gc.placeholder((2, 3, 5, 7), "float64", name="x")
    per_row = gc.placeholder((2, 3, 1, 1), "float64", name="per_row")
    column = gc.placeholder((7,), "float64", name="column")
    normed = gc.layer_norm(x * column + per_row, axis=(-2, -1))
    shifted = x - gc.max(x, axis=(2, 3), keepdims=True) * per_row
    feeds = [rng.standard_normal(s) for s in ((2, 3, 5, 7), (2, 3, 1, 1), (7,))]
    fn = _compare([x, per_row, column], [normed, shifted], feeds, rtol=1e-12, atol=1e-12)
    assert "for i3 in range(" in fn.source
    assert "for b" not in fn.source


def test_row_scalars_are_results_too(rng: np.random.Generator) -> None:
    x = gc.placeholder((None, 9), "float32", name="x")
    total = gc.sum(gc.exp(x), axis=-1, keepdims=True)
    top = gc.max(x, axis=-1, keepdims=True)
    out = gc.exp(x) / total - top
    feeds = [rng.standard_normal((6, 9)).astype("float32")]
    fn = _compare([x], [out, total, top], feeds)
    assert sum(n.op == "fused" for n in fn.graph.nodes) == 1


def test_nan_and_infinities_follow_numpy() -> None:
    x = gc.placeholder((None, 4), "float32", name="x")
    feed = np.array(
        [
            [1.0, np.nan, 2.0, 3.0],
            [-np.inf, -np.inf, -np.inf, -np.inf],
            [np.inf, 0.0, 1.0, 2.0],
            [-np.inf, 1.0, 2.0, -np.inf],
            [-0.0, 0.0, -0.0, 0.0],
        ],
        np.float32,
    )
    max_kept = gc.max(x, axis=-1, keepdims=True)
    min_kept = gc.min(x, axis=-1, keepdims=True)
    _compare([x], [gc.softmax(x), gc.log_softmax(x), x - max_kept, x - min_kept], [feed])


def test_long_float32_rows_keep_their_sum_accurate(rng: np.random.Generator) -> None:
    # 2**17 values near 1: a float32 running sum would drift by ~1e-3 relative
    x = gc.placeholder((2, 1 << 17), "float32", name="x")
    total = gc.sum(x, axis=-1, keepdims=True)
    out = x / total
    feed = (1 + 1e-3 * rng.standard_normal((2, 1 << 17))).astype(np.float32)
    fn = gc.function([x], [out, total], device="cpu")
    got_out, got_total = fn(feed)
    exact = feed.astype(np.float64).sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(got_total, exact, rtol=1e-7)
    np.testing.assert_allclose(got_out, feed / exact, rtol=2e-7)


def test_a_symbolic_batch_and_an_empty_one(rng: np.random.Generator) -> None:
    x = gc.placeholder((None, 6), "float32", name="x")
    fn = gc.function([x], gc.softmax(x), device="cpu")
    for batch in (0, 1, 33):
        feed = rng.standard_normal((batch, 6)).astype("float32")
        want = gc.function([x], gc.softmax(x), device="reference", optimize=False)(feed)
        np.testing.assert_allclose(fn(feed), want, rtol=2e-6, atol=1e-7)


@pytest.mark.parametrize(
    "build",
    [
        lambda x, g: gc.softmax(x),
        lambda x, g: gc.log_softmax(x * g),
        lambda x, g: gc.layer_norm(x, g, g * 0.5),
    ],
    ids=["softmax", "log_softmax", "layer_norm"],
)
def test_gradients_match_finite_differences(
    build: Callable[..., Any], rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHC_DEVICE", "cpu")  # (the compiled row kernels)
    probe = gc.placeholder((2,), "float64")
    assert gc.function([probe], probe * 2).device == "cpu"
    arrays = [rng.standard_normal((3, 5)), rng.standard_normal(5)]
    check_gradients(build, arrays, rng)


def test_softmax_computes_exp_once_per_element() -> None:
    x = gc.placeholder((None, 64), "float32", name="x")
    fn = gc.function([x], gc.softmax(x), device="cpu")
    modules = fn.source.split("# ---- module")[1:]
    assert sum(module.count("vm.exp32(") for module in modules) == 1  # (a scratch row)
    assert any("np.empty((" in module for module in modules)
    fused = [n for n in fn.graph.nodes if n.op == "fused"]
    assert [n.attrs["kind"] for n in fused] == ["row", "row"]


def test_the_plan_reads_results_back_and_recomputes_cheap_values() -> None:
    f32 = np.dtype(np.float32)
    vector, per_row = TensorType(f32, (4, 8)), TensorType(f32, (4, 1))
    # x0: operand; x1 = x0 * x0 (cheap); x2 = exp(x1) (a result); x3 = sum(x2);
    # x4 = x1 / x3 and x5 = x2 * x3: later loops read x1 (again) and x2 (stored)
    body = (
        ("mul", (0, 0), {}),
        ("exp", (1,), {}),
        ("sum", (2,), {"axes": (1,), "keepdims": True}),
        ("div", (1, 3), {}),
        ("mul", (2, 3), {}),
    )
    types = (vector, vector, vector, per_row, vector, vector)
    plan = rows.plan_rows((vector,), body, types, (2, 4, 5), (4, 8), 1, True)
    assert plan.roles == ("vector", "vector", "vector", "scalar", "vector", "vector")
    assert plan.phase == (0, 0, 0, 1, 1, 1)
    assert plan.loops == 2
    assert plan.scratch == frozenset()  # x1 is cheap to compute again; x2 is a result
    assert plan.stored == {2: 0, 4: 1, 5: 2}
    costly = rows.plan_rows((vector,), body, types, (4, 5), (4, 8), 1, True)
    assert costly.scratch == frozenset({2})  # exp, not a result: kept in a scratch row
    assert rows.plan_rows((vector,), body, types, (4, 5), (4, 8), 1, False).scratch == frozenset()


def test_the_program_holds_a_row_loop_and_the_verifier_checks_it() -> None:
    x = gc.placeholder((None, 10), "float32", name="x")
    graph = gc.function([x], gc.softmax(x), device="reference").graph
    program = planning.plan(graph)
    loops = [k for k in program.kernels if isinstance(k, planning.Loop)]
    assert [(k.kind, k.row, k.reduction) for k in loops] == [("row", 1, None)] * 2
    loop = loops[-1]
    assert loop.shape == graph.type_of(graph.outputs[0]).shape
    assert "loop over" in str(program)
    verify_program(program)
    wrong = dataclasses.replace(loop, row=2)  # two row axes: no leading axis is left
    broken = dataclasses.replace(program, kernels=(*program.kernels[:-1], wrong))
    with pytest.raises(gc.VerifyError, match="with 2 row axes"):
        verify_program(broken)


def test_long_chains_of_row_blocks_are_split_into_row_groups() -> None:
    # 20 row-wise blocks: row groups of at most MAX_ROW_REDUCTIONS reductions each
    x = gc.placeholder((None, 16), "float32", name="x")
    h = x
    for i in range(20):
        h = gc.tanh(h * (1.0 + 0.01 * i) + 0.5)
        h = h - gc.max(h, axis=1, keepdims=True)
    fn = gc.function([x], h, device="cpu")
    groups = [n for n in fn.graph.nodes if n.op == "fused" and n.attrs["kind"] == "row"]
    assert len(groups) == -(-20 // fuse.MAX_ROW_REDUCTIONS)
    for group in groups:
        reductions = [step for step in group.attrs["body"] if step[0] == "max"]
        assert 0 < len(reductions) <= fuse.MAX_ROW_REDUCTIONS
    a = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    want = gc.function([x], h, device="reference", optimize=False)(a)
    np.testing.assert_allclose(fn(a), want, rtol=1e-5, atol=1e-6)
