"""Kernels pasted into the entry: renamed locals, parameters bound once, nested calls
inlined; and which chunkable kernels a graph runs in parallel."""

from __future__ import annotations

import textwrap

import numpy as np

import graphc as gc
from graphc.kernels.cpu import codegen
from graphc.kernels.cpu.inline import Inliner

KERNEL = textwrap.dedent(
    """
    @numba.njit(cache=True)
    def helper(a0, r0, start, stop):
        for i in range(start, stop):
            r0[i] = a0[i] * 2

    @numba.njit(cache=True)
    def kernel(a0, r0, lo, hi, n):
        # a comment
        a0 = a0.reshape(a0.size)
        total = 0
        for start in range(lo, hi, 4):
            helper(a0, r0, start, min(start + 4, hi))
            total += 1
    """
)


def _run(lines: list[str], **names: object) -> dict:
    scope = dict(names)
    exec("\n".join(lines), {"min": min, "range": range}, scope)  # the test runs the statements
    return scope


def test_inlined_kernel_does_what_the_call_did() -> None:
    lines = Inliner().statements(KERNEL, ["x.T", "out", "0", "hi", "(n0,)"])
    source = "\n".join(lines)
    # a renamed parameter that the body reassigns is bound once; names pass through
    assert source.startswith("k1_a0 = x.T\n")
    assert "out[" in source
    assert "k1_r0" not in source
    assert "k2_" in source  # the helper's locals have their own prefix
    assert "helper(" not in source
    x = np.arange(6.0).reshape(2, 3)
    out = np.zeros(6)
    scope = _run(lines, x=x, out=out, hi=6, n0=6)
    np.testing.assert_array_equal(out, x.T.reshape(-1) * 2)
    assert scope["k1_total"] == 2


def test_two_calls_do_not_share_names() -> None:
    inliner = Inliner()
    first = inliner.statements(KERNEL, ["x", "out", "0", "3", "(n0,)"])
    second = inliner.statements(KERNEL, ["x", "out", "3", "6", "(n0,)"])
    assert {line.split(" = ")[0] for line in first if " = " in line}.isdisjoint(
        {line.split(" = ")[0] for line in second if " = " in line}
    )
    out = np.zeros(6)
    _run(first + second, x=np.arange(6.0), out=out, n0=6)
    np.testing.assert_array_equal(out, np.arange(6.0) * 2)


def test_a_graph_is_one_compiled_function() -> None:
    x = gc.placeholder((None, 8), "float32", name="x")
    y = gc.softmax(gc.tanh(x) @ np.ones((8, 4), np.float32), axis=-1)
    f = gc.function([x], [y, gc.sum(y)], device="cpu")
    assert f.source.count("@numba.njit") == 1
    a = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    ref = gc.function([x], [y, gc.sum(y)], device="reference")(a)
    for got, want in zip(f(a), ref, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def _chunked(work: str) -> codegen._Chunked:
    return codegen._Chunked("", [], "d0", work, "(d0,)", 0, node=None, rows=False)


def test_weight_is_the_known_factor_of_the_work() -> None:
    assert _chunked("10 * d0").weight == 10
    assert _chunked("d0 * d1").weight == 1
    assert _chunked("4 * 256 * d0").weight == 1024


def test_parallel_loops_only_where_they_pay(monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_PARALLEL", "1")
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN", "64")  # several chunks even for small tests
    x = gc.placeholder((None,), "float32", name="x")
    one = gc.function([x], gc.tanh(x) * 2.0 + x, device="cpu")
    assert one.source.count("prange(") == 1  # a lone elementwise kernel: parallel
    r = gc.placeholder((None, 4), "float32", name="r")
    # kernels working row by row share one prange
    h = r
    for _ in range(codegen.MAX_PARALLEL + 1):
        h = gc.exp(h - gc.max(h, axis=1, keepdims=True))
    rows = gc.function([r], h, device="cpu")
    rows_reference = gc.function([r], h, device="reference")
    assert rows.source.count("prange(") == 1
    # separated by column sums (not split by rows): too many small loops to compile
    # a parallel version of each
    h = r
    for _ in range(codegen.MAX_PARALLEL + 1):
        h = gc.exp(h - gc.max(h, axis=0, keepdims=True))
    many = gc.function([r], h, device="cpu")
    many_reference = gc.function([r], h, device="reference")
    assert "prange(" not in many.source
    a = np.random.default_rng(1).standard_normal((300, 4)).astype(np.float32)
    for f, reference in ((rows, rows_reference), (many, many_reference)):
        np.testing.assert_allclose(f(a), reference(a), rtol=1e-5, atol=1e-6)


def test_a_graph_that_calls_blas_leaves_threading_to_blas(monkeypatch) -> None:
    """OpenBLAS threads the GEMMs with its own spinning pool: the same softmax that gets a
    prange alone runs serially next to a matmul, and computes the same."""
    monkeypatch.setenv("GRAPHC_PARALLEL", "1")
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN", "64")
    r = gc.placeholder((None, 8), "float32", name="r")
    alone = gc.function([r], gc.softmax(r, axis=1), device="cpu")
    assert "prange(" in alone.source
    w = np.random.default_rng(2).standard_normal((8, 8)).astype(np.float32)
    after_matmul = gc.function([r], gc.softmax(r @ w, axis=1), device="cpu")
    assert codegen.BLAS_OPS & {n.op for n in after_matmul.graph.nodes} or any(
        n.op == "fused" and n.attrs["kind"] == "matmul" for n in after_matmul.graph.nodes
    )
    assert "prange(" not in after_matmul.source
    a = np.random.default_rng(3).standard_normal((300, 8)).astype(np.float32)
    want = gc.function([r], gc.softmax(r @ w, axis=1), device="reference")(a)
    np.testing.assert_allclose(after_matmul(a), want, rtol=1e-5, atol=1e-6)
