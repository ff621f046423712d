"""hoist: what a scan's steps need not compute again leaves its body. Loop-invariant
values are computed once before the loop; values of the scanned slices that an op can
compute for all the steps at once (elementwise, or a matmul by an invariant matrix) are
computed before the loop for every step; unread, duplicate or forwarded stacked results
are not stacked. Each case is compared with the unoptimized graph."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def _scans(f: gc.Function) -> list:
    return [n for n in f.graph.nodes if n.op == "scan"]


def _body_ops(scan) -> list[str]:
    return [n.op for n in scan.attrs["body"].nodes if n.op != "placeholder"]


def _same(outputs: list, inputs: list, feeds: list, device: str = "reference") -> gc.Function:
    optimized = gc.function(inputs, outputs, device=device)
    plain = gc.function(inputs, outputs, device="reference", optimize=False)
    for got, want in zip(optimized(*feeds), plain(*feeds), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-14)
    return optimized


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_loop_invariant_values_are_computed_once_before_the_loop(device: str, rng) -> None:
    x = gc.placeholder((None, 3), "float64", name="x")
    w = gc.Variable(rng.standard_normal(3), name="w")
    final, _ = gc.scan(lambda h, xt: (h * gc.exp(w) + xt, None), np.zeros(3), x)
    f = _same([final], [x], [rng.standard_normal((4, 3))], device)
    (scan,) = _scans(f)
    assert "exp" not in _body_ops(scan)  # exp(w) is an operand now
    assert any(n.op == "exp" for n in f.graph.nodes)


@pytest.mark.parametrize("reverse", [False, True])
def test_a_slices_matmul_by_a_weight_runs_for_all_steps_at_once(reverse: bool, rng) -> None:
    x = gc.placeholder((None, 2, 3), "float64", name="x")
    w = gc.Variable(rng.standard_normal((3, 4)), name="w")

    def step(h, xt):
        return gc.tanh(xt @ w + 1.0 + h), h

    final, ys = gc.scan(step, np.zeros((2, 4)), x, reverse=reverse)
    f = _same([final, ys], [x], [rng.standard_normal((5, 2, 3))])
    (scan,) = _scans(f)
    assert "matmul" not in _body_ops(scan)
    assert scan.attrs["n_xs"] == 2  # x, and the projection of every step
    (product,) = [
        n
        for n in f.graph.nodes
        if n.op == "matmul" or (n.op == "fused" and n.attrs["kind"] == "matmul")
    ]
    assert [f.graph.type_of(v).ndim for v in product.inputs[:2]] == [3, 2]  # one GEMM


def test_what_depends_on_the_carry_stays(rng) -> None:
    x = gc.placeholder((None, 3), "float64", name="x")
    final, _ = gc.scan(lambda h, xt: (gc.sin(h) * xt, None), np.ones(3), x)
    f = _same([final], [x], [rng.standard_normal((4, 3))])
    (scan,) = _scans(f)
    assert "sin" in _body_ops(scan) or "fused" in _body_ops(scan)


def test_stacked_results_not_read_twice_stacked_or_forwarded_are_dropped(rng) -> None:
    x = gc.placeholder((None, 3), "float64", name="x")
    w = gc.Variable(rng.standard_normal((3, 3)), name="w")

    def step(h, xt):
        h = gc.tanh(h @ w + xt)
        return h, (h, h, xt, h * 2.0)  # twice the same, a slice of x, one never read

    final, (a, b, c, _) = gc.scan(step, np.zeros(3), x)
    f = _same([final, a, b, c], [x], [rng.standard_normal((4, 3))])
    (scan,) = _scans(f)
    assert len(scan.types) == 2  # the carry and one stacked h
    assert "hoist" in str(f.report())
