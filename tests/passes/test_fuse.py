"""The fuse pass: how many kernels known graphs become, multi-output groups, reduction
prologues and matmul epilogues, no cycles, and preserved results on random graphs."""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import pytest
import strategies
from hypothesis import given

import graphc as gc
from graphc import interpret
from graphc.ir import GraphBuilder
from graphc.passes import PASSES, run_pipeline
from graphc.registry import Attrs
from graphc.verify import verify

PIPELINE = ("fold", "cse", "dce", "fuse", "dce")


def optimized(inputs: list, outputs: object) -> gc.Graph:
    graph = gc.function(inputs, outputs, optimize=False).graph
    return run_pipeline(graph, PIPELINE, verify_each=True)[0]


def histogram(g: gc.Graph) -> Counter:
    return Counter(n.op for n in g.nodes)


def fused_kinds(g: gc.Graph) -> list[str]:
    return sorted(n.attrs["kind"] for n in g.nodes if n.op == "fused")


def run(g: gc.Graph, feeds: list[np.ndarray]) -> list[np.ndarray]:
    return interpret.run(g, {v.node: a for v, a in zip(g.inputs, feeds, strict=True)})[0]


def test_the_w1_chain_is_one_kernel() -> None:
    # a shared dim name tells graphc that x and y have one length: one iteration space
    x = gc.placeholder(("n",), "float32", name="x")
    y = gc.placeholder(("n",), "float32", name="y")
    out = gc.tanh(0.5 * x + y) * gc.sigmoid(y) - gc.exp(-x * x) + 0.1 * y
    g = optimized([x, y], out)
    assert histogram(g) == Counter(placeholder=2, fused=1)
    assert fused_kinds(g) == ["elementwise"]
    feeds = [np.linspace(-3, 3, 7, dtype="float32"), np.linspace(2, -2, 7, dtype="float32")]
    unfused = gc.function([x, y], out, optimize=False)
    np.testing.assert_array_equal(run(g, feeds)[0], unfused(*feeds))


def test_a_reduction_absorbs_its_elementwise_prologue() -> None:
    x = gc.placeholder((None, 8), "float64", name="x")
    g = optimized([x], gc.sum(x * x, axis=1))
    assert histogram(g) == Counter(placeholder=1, fused=1)
    assert fused_kinds(g) == ["reduction"]
    feed = np.arange(16.0).reshape(2, 8)
    np.testing.assert_array_equal(run(g, [feed])[0], (feed * feed).sum(axis=1))


def test_a_matmul_absorbs_its_epilogue() -> None:
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.Variable(np.ones((4, 3), "float32"), name="w")
    b = gc.Variable(np.arange(3, dtype="float32"), name="b")
    g = optimized([x], gc.relu(x @ w + b))
    assert fused_kinds(g) == ["matmul"]
    assert "matmul" not in histogram(g)


def test_intermediates_needed_elsewhere_become_extra_results() -> None:
    x = gc.placeholder((5,), "float64", name="x")
    hidden = gc.exp(x) * 2
    g = optimized([x], [gc.tanh(hidden) + 1, hidden, gc.sum(hidden)])
    (node,) = [n for n in g.nodes if n.op == "fused"]
    assert len(node.types) == 2  # the fetched intermediate is a second result
    feed = np.linspace(-1, 1, 5)
    results = run(g, [feed])
    np.testing.assert_allclose(results[1], np.exp(feed) * 2)
    np.testing.assert_allclose(results[0], np.tanh(np.exp(feed) * 2) + 1)


def test_unknown_sizes_that_may_broadcast_fuse_into_one_kernel() -> None:
    """exp(x) and exp(y) have sizes x.0 and y.0; their sum broadcast(x.0,y.0). Nothing else
    reads them, so one kernel computes all of it, evaluating exp(x) at each broadcast
    position when x turns out to have size 1."""
    x = gc.placeholder((None,), "float32", name="x")
    y = gc.placeholder((None,), "float32", name="y")
    g = optimized([x, y], gc.exp(x) * 2 + gc.exp(y) * 3)
    assert histogram(g)["fused"] == 1
    for xs, ys in [(5, 5), (1, 5), (5, 1)]:
        a = np.linspace(-1, 1, xs, dtype="float32")
        b = np.linspace(0, 2, ys, dtype="float32")
        (result,) = run(g, [a, b])
        np.testing.assert_allclose(result, np.exp(a) * 2 + np.exp(b) * 3, rtol=1e-6)


def test_a_value_read_elsewhere_keeps_its_own_unknown_size() -> None:
    """exp(x) is also fetched: it must be a result of its own size, so it stays apart."""
    x = gc.placeholder((None,), "float32", name="x")
    y = gc.placeholder((None,), "float32", name="y")
    ex = gc.exp(x) * 2
    g = optimized([x, y], [ex + gc.exp(y) * 3, ex])
    assert histogram(g)["fused"] == 2
    for node in (n for n in g.nodes if n.op == "fused"):
        assert len({t.shape for t in node.types}) == 1


def test_different_shapes_stay_in_different_kernels() -> None:
    x = gc.placeholder((3, 4), "float64", name="x")
    row = gc.placeholder((4,), "float64", name="row")
    small = gc.exp(row) * 2  # shape (4,)
    big = gc.tanh(x) + small  # shape (3, 4): reads small, broadcast
    g = optimized([x, row], big * 3)
    assert histogram(g)["fused"] == 2


def test_groups_never_wait_on_each_other() -> None:
    """a and b may fuse, and c and d may fuse, but not both: b's group would wait on c's
    group through sum(b), which d reads, while c reads a."""
    x = gc.placeholder((4,), "float64", name="x")
    a = gc.exp(x)
    b = gc.sin(x) * 2
    c = a * 3 + gc.sum(b)
    d = gc.cos(c) * 4 + a
    g = optimized([x], d)
    verify(g)
    feed = np.linspace(0, 1, 4)
    np.testing.assert_allclose(run(g, [feed])[0], gc.function([x], d, optimize=False)(feed))


def test_gradients_of_layer_norm_fuse_without_cycles() -> None:
    x = gc.placeholder((2, 4), "float64", name="x")
    y = gc.sum(gc.layer_norm(x) * gc.constant(np.arange(8.0).reshape(2, 4)))
    (gx,) = gc.grad(y, [x])
    (gxx,) = gc.grad(gc.sum(gx * gx), [x])
    g = optimized([x], [gx, gxx])
    # first and second derivatives: the row-wise steps land in row kernels
    assert _row_nodes(g)
    feed = np.random.default_rng(0).standard_normal((2, 4))
    reference = gc.function([x], [gx, gxx], optimize=False)(feed)
    for got, want in zip(run(g, [feed]), reference, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-10)


def test_fuse_reports_what_it_formed() -> None:
    x = gc.placeholder((None, 8), "float32", name="x")
    f = gc.function([x], [gc.sum(x * x), gc.tanh(x) * 2])
    rows = {r.name: r for r in f.report().records}
    assert rows["fuse"].stats["kernels"] == 2
    assert rows["fuse"].stats["reductions_fused"] == 1


@given(case=strategies.graph_cases())
def test_fuse_preserves_results_and_is_idempotent(case) -> None:
    placeholders, outputs = case.build(symbolic=True)
    g = gc.function(placeholders, outputs, optimize=False).graph
    fused = PASSES["fuse"](g).graph
    verify(fused)
    feeds = case.feeds()
    for got, want in zip(run(fused, feeds), run(g, feeds), strict=True):
        np.testing.assert_array_equal(got, want)
    again = PASSES["fuse"](fused)
    assert again.stats["kernels"] == 0
    assert histogram(again.graph) == histogram(fused)


def test_errors_inside_a_fused_body_name_the_member_op() -> None:
    builder = GraphBuilder()
    a = builder.add1("placeholder", [], {"name": "a", "dtype": "float64", "shape": (3,)})
    b = builder.add1("placeholder", [], {"name": "b", "dtype": "float64", "shape": (2,)})
    body = (("exp", (0,), Attrs()), ("mul", (2, 1), Attrs()))
    with pytest.raises(gc.ShapeError, match=r"mul \(fused\): cannot broadcast sizes 3 and 2"):
        builder.add("fused", [a, b], {"body": body, "results": (3,), "kind": "elementwise"})


def _row_nodes(g: gc.Graph) -> list:
    return [n for n in g.nodes if n.op == "fused" and n.attrs["kind"] == "row"]


def test_softmax_is_two_row_kernels() -> None:
    # one reduction a row group (MAX_ROW_REDUCTIONS): the max, then exp, sum and divide
    x = gc.placeholder((None, 10), "float32", name="x")
    g = optimized([x], gc.softmax(x))
    assert histogram(g) == Counter(placeholder=1, fused=2)
    first, second = _row_nodes(g)
    assert next(step[0] for step in first.attrs["body"] if step[0] != "constant") == "max"
    ops = [step[0] for step in second.attrs["body"]]
    assert ops == ["sub", "exp", "sum", "div"]
    feed = np.random.default_rng(0).standard_normal((3, 10)).astype("float32")
    want = gc.function([x], gc.softmax(x), optimize=False)(feed)
    np.testing.assert_allclose(run(g, [feed])[0], want, rtol=1e-6)


def test_layer_norm_and_its_gradient_are_row_kernels() -> None:
    x = gc.placeholder((None, 4, 16), "float64", name="x")
    gamma = gc.placeholder((16,), "float64", name="gamma")
    y = gc.layer_norm(x, gamma)
    g = optimized([x, gamma], [y, *gc.grad(gc.sum(y * y), [x, gamma])])
    rows_ = _row_nodes(g)
    # forward and backward: every row-wise op is in a row kernel; gamma's gradient sums
    # over the batch axes, which is no row of these
    assert rows_
    assert all(n.op != "sum" or n.attrs["axes"] != (2,) for n in g.nodes)
    assert not [n for n in g.nodes if n.op in ("sub", "div", "sqrt", "mean", "max")]
    feeds = [np.random.default_rng(1).standard_normal(s) for s in ((2, 4, 16), (16,))]
    want = gc.function([x, gamma], [y, *gc.grad(gc.sum(y * y), [x, gamma])], optimize=False)
    for got, expected in zip(run(g, feeds), want(*feeds), strict=True):
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize(
    "reduce",
    [
        lambda x: gc.sum(x, axis=0, keepdims=True),  # not the trailing axes
        lambda x: gc.expand_dims(gc.sum(x, axis=1), 1),  # dropped, then put back
        lambda x: gc.sum(x, keepdims=True),  # every axis: no leading axis to split
    ],
    ids=["leading-axis", "no-keepdims", "all-axes"],
)
def test_only_trailing_kept_reductions_make_rows(reduce: Any) -> None:
    x = gc.placeholder((6, 5), "float32", name="x")
    g = optimized([x], gc.exp(x) * 2 - reduce(gc.exp(x)))
    assert not _row_nodes(g)


def test_a_row_group_never_waits_on_itself() -> None:
    # y reads a gather of the row group's own result: merging it in would be a cycle
    x = gc.placeholder((4, 8), "float32", name="x")
    shifted = x - gc.max(x, axis=1, keepdims=True)
    picked = gc.take(shifted, gc.constant(np.array([1, 0, 3, 2])), axis=0)
    y = gc.exp(picked) / gc.sum(gc.exp(picked), axis=1, keepdims=True) + shifted
    g = optimized([x], y)
    verify(g)
    feed = np.random.default_rng(2).standard_normal((4, 8)).astype("float32")
    want = gc.function([x], y, optimize=False)(feed)
    np.testing.assert_allclose(run(g, [feed])[0], want, rtol=1e-6, atol=1e-7)
    assert len(_row_nodes(g)) >= 2
