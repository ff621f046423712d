"""The pass manager and the fold, cse and dce passes: expected graphs, preserved results
on random graphs (gradients included), verification, idempotence and the report."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import strategies
from hypothesis import given

import graphc as gc
from graphc import interpret
from graphc.passes import DEFAULT_PIPELINE, PASSES, run_pipeline
from graphc.passes.manager import PassResult, graph_pass
from graphc.verify import verify


def histogram(g: gc.Graph) -> Counter:
    return Counter(n.op for n in g.nodes)


def unoptimized(inputs: list, outputs: object, **kwargs: object) -> gc.Graph:
    return gc.function(inputs, outputs, optimize=False, **kwargs).graph


def run(g: gc.Graph, feeds: list[np.ndarray], variables: dict | None = None) -> list:
    sources = {v.node: a for v, a in zip(g.inputs, feeds, strict=True)}
    sources.update(variables or {})
    return interpret.run(g, sources)[0]


def test_fold_evaluates_constant_subgraphs() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    scale = gc.exp(gc.constant(np.float32(0.0))) * 2  # == 2, known at compile time
    g = unoptimized([x], x * scale + gc.sum(gc.constant(np.arange(3.0, dtype="float32"))))
    result = PASSES["fold"](g)
    assert result.stats["folded"] == 3  # exp, the product and the sum
    assert histogram(result.graph) == Counter(placeholder=1, constant=2, mul=1, add=1)
    feed = np.array([1.0, 2.0, 3.0], "float32")
    np.testing.assert_array_equal(run(result.graph, [feed])[0], run(g, [feed])[0])


def test_fold_never_inflates_the_graph() -> None:
    x = gc.placeholder((1000, 1000), "float32")
    big = gc.broadcast_to(gc.constant(np.float32(1.0)), (1000, 1000))
    g = unoptimized([x], x + big)
    assert PASSES["fold"](g).stats["folded"] == 0
    small = gc.broadcast_to(gc.constant(np.float32(1.0)), (4, 4))
    assert PASSES["fold"](unoptimized([x], x[:4, :4] + small)).stats["folded"] == 1


def test_fold_reads_known_shapes_and_leaves_runtime_errors_alone() -> None:
    x = gc.placeholder((4, 3), "float64")
    g = unoptimized([x], gc.mean(x) + gc.sum(gc.zeros_like(x)))
    folded = PASSES["fold"](gc.function([x], gc.ones_like(x) * x, optimize=False).graph)
    assert "full_like" not in histogram(folded.graph)
    bad = gc.take(gc.constant([1.0, 2.0]), gc.constant(5))
    kept = PASSES["fold"](unoptimized([], bad))
    assert "take" in histogram(kept.graph)
    with pytest.raises(gc.IndexOutOfRangeError):
        gc.function([], bad)()
    assert run(g, [np.ones((4, 3))])[0] == 1.0


def test_fold_keeps_variables_and_placeholders() -> None:
    v = gc.Variable(np.ones(2), name="v")
    x = gc.placeholder((2,), "float64", name="x")
    g = unoptimized([x], v * 2 + x * gc.constant(3.0))
    folded = PASSES["fold"](g).graph
    assert histogram(folded) == histogram(g)


def test_cse_merges_equal_pure_nodes_and_commutes() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    y = gc.placeholder((3,), "float64", name="y")
    a = gc.exp(x) + gc.exp(x)
    b = x * y + y * x  # commutative operands merge
    c = gc.constant([1.0, 2.0, 3.0]) + gc.constant([1.0, 2.0, 3.0])
    g = unoptimized([x, y], [a, b, c])
    result = PASSES["cse"](g)
    assert result.stats["merged"] == 3
    assert histogram(result.graph)["exp"] == 1
    assert histogram(result.graph)["mul"] == 1
    assert histogram(result.graph)["constant"] == 1
    feeds = [np.array([1.0, 2.0, 3.0]), np.array([0.5, -1.0, 2.0])]
    for got, want in zip(run(result.graph, feeds), run(g, feeds), strict=True):
        np.testing.assert_array_equal(got, want)


def test_cse_never_merges_state_or_inputs() -> None:
    v = gc.Variable(np.zeros(2), name="v")
    w = gc.Variable(np.zeros(2), name="w")
    a = gc.placeholder((2,), "float64", name="a")
    b = gc.placeholder((2,), "float64", name="b")
    g = unoptimized([a, b], [v + a, w + b])
    assert PASSES["cse"](g).stats["merged"] == 0
    negative_zero = gc.constant(np.array([-0.0])) + gc.constant(np.array([0.0]))
    assert PASSES["cse"](unoptimized([], negative_zero)).stats["merged"] == 0


def test_dce_keeps_only_what_outputs_and_updates_need() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    unused_input = gc.placeholder((2,), "float64", name="unused")
    v = gc.Variable(np.zeros(3), name="v")
    expensive = gc.exp(gc.sin(x)) * 100  # not fetched
    wanted = gc.tanh(x)
    g = gc.function([x, unused_input], [wanted, expensive], optimize=False).graph
    pruned_graph = g.replace(outputs=g.outputs[:1])
    result = PASSES["dce"](pruned_graph)
    assert result.stats["removed"] >= 4
    assert "exp" not in histogram(result.graph)
    assert "sin" not in histogram(result.graph)
    assert histogram(result.graph)["placeholder"] == 2
    f = gc.function([x], wanted, updates={v: v + x})
    assert histogram(f.graph) == Counter(placeholder=1, variable=1, tanh=1, add=1)
    f(np.ones(3))
    np.testing.assert_array_equal(v.value, np.ones(3))


def test_function_fetching_one_output_computes_only_its_ancestors() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    big = gc.exp(x) * gc.sin(x) + gc.cos(x)
    _ = big
    f = gc.function([x], gc.tanh(x))
    assert histogram(f.graph) == Counter(placeholder=1, tanh=1)


def test_report_rows() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    f = gc.function([x], gc.sin(x) * gc.exp(gc.constant(1.0)) + gc.sin(x))
    report = f.report()
    assert [r.name for r in report.records] == list(f.pipeline)
    rows = {r.name: r for r in report.records}
    assert rows["fold"].stats["folded"] >= 1
    assert rows["cse"].nodes_after < rows["cse"].nodes_before
    text = str(report)
    assert text.splitlines()[0].split()[:3] == ["pass", "nodes", "ms"]
    assert "folded" in text
    assert "merged" in text
    assert str(gc.function([x], x, optimize=False).report()) == "no optimization passes ran"
    with pytest.raises(gc.ArgumentError, match="unknown pass"):
        gc.function([x], x, optimize=["vectorize"])


def test_manager_raises_on_a_broken_pass_and_dumps_ir(capsys: pytest.CaptureFixture) -> None:
    @graph_pass("test_break_outputs")
    def break_outputs(g: gc.Graph) -> PassResult:
        return PassResult(g.replace(outputs=(gc.Value(10**9),)))

    @graph_pass("test_mutate_nothing_but_fail")
    def fail(g: gc.Graph) -> PassResult:
        raise gc.ShapeError("boom")

    try:
        x = gc.placeholder((2,), "float64", name="x")
        g = unoptimized([x], x + 1)
        with pytest.raises(gc.PassError, match="invalid graph"):
            run_pipeline(g, ["test_break_outputs"], verify_each=True)
        with pytest.raises(gc.PassError, match="boom") as info:
            run_pipeline(g, ["test_mutate_nothing_but_fail"])
        assert "graph(" in str(info.value)
        with pytest.raises(gc.PassError, match="unknown pass"):
            run_pipeline(g, ["nonsense"])
    finally:
        del PASSES["test_break_outputs"], PASSES["test_mutate_nothing_but_fail"]


def test_dump_prints_ir_after_named_passes(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("GRAPHC_DUMP", "cse")
    x = gc.placeholder((2,), "float64", name="x")
    gc.function([x], x + x)
    err = capsys.readouterr().err
    assert "--- IR after cse" in err
    assert "--- IR after fold" not in err


PIPELINES = [("fold",), ("cse",), ("dce",), ("fold", "cse", "dce")]


@pytest.mark.parametrize("names", PIPELINES, ids=["+".join(p) for p in PIPELINES])
@given(case=strategies.graph_cases())
def test_passes_preserve_results_verify_and_are_idempotent(names: tuple, case) -> None:
    placeholders, outputs = case.build(symbolic=True)
    g = unoptimized(placeholders, outputs)
    optimized, _ = run_pipeline(g, names, verify_each=True)
    verify(optimized)
    feeds = case.feeds()
    for got, want in zip(run(optimized, feeds), run(g, feeds), strict=True):
        np.testing.assert_array_equal(got, want)
    again, _ = run_pipeline(optimized, names, verify_each=True)
    assert histogram(again) == histogram(optimized)
    assert len(again.nodes) == len(optimized.nodes)


@given(case=strategies.graph_cases(ops=strategies.FAMILIES["elementwise"]))
def test_passes_preserve_gradient_graphs(case) -> None:
    placeholders, outputs = case.build(symbolic=False)
    floats = [p for p in placeholders if p.dtype.kind == "f"]
    terms = [gc.sum(o) for o in outputs if o.dtype.kind == "f"]
    if not floats or not terms:
        return
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    grads = gc.grad(total, floats)
    g = unoptimized(placeholders, grads)
    feeds = case.feeds()
    for pipeline in (("fold", "cse", "dce"), DEFAULT_PIPELINE):
        optimized, _ = run_pipeline(g, pipeline, verify_each=True)
        with np.errstate(all="ignore"):
            for got, want in zip(run(optimized, feeds), run(g, feeds), strict=True):
                # simplify may trade x**2 for x*x or log(1+x) for log1p(x): rounding only
                np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, equal_nan=True)


@given(case=strategies.graph_cases())
def test_the_default_pipeline_preserves_results(case) -> None:
    placeholders, outputs = case.build(symbolic=True)
    g = unoptimized(placeholders, outputs)
    optimized, report = run_pipeline(g, DEFAULT_PIPELINE, verify_each=True)
    assert [r.name for r in report.records] == list(DEFAULT_PIPELINE)
    for got, want in zip(run(optimized, case.feeds()), case.expected, strict=True):
        strategies.assert_matches(got, want)


def test_cse_lets_a_gradients_stacking_scan_replace_the_forward_scan() -> None:
    """The gradient of a scan runs a forward scan that also stacks what the backward
    needs; the plain forward scan computes a prefix of its results, and cse drops it."""
    x = gc.placeholder((None, 3), "float64", name="x")
    w = gc.Variable(np.eye(3), name="w")
    _, hs = gc.scan(lambda h, xt: (gc.tanh(xt @ w + h),) * 2, np.zeros(3), x)
    loss = gc.sum(hs)
    outputs = [loss, *gc.grad(loss, [w])]
    unmerged = gc.function([x], outputs, device="reference", optimize=("dce",))
    merged = gc.function([x], outputs, device="reference", optimize=("cse", "dce"))

    def forward_scans(f) -> int:
        return sum(1 for n in f.graph.nodes if n.op == "scan" and not n.attrs["reverse"])

    assert forward_scans(unmerged) == 2
    assert forward_scans(merged) == 1
    assert "scans 1" in str(merged.report())
    xv = np.random.default_rng(0).standard_normal((5, 3))
    for a, b in zip(unmerged(xv), merged(xv), strict=True):
        np.testing.assert_array_equal(a, b)
