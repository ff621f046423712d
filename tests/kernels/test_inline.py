"""Kernels pasted into a parallel group: renamed locals, parameters bound once, nested
calls inlined; equal kernels shared; and which chunkable kernels run in parallel."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

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


def _chain(blocks: int) -> gc.Tensor:
    x = gc.placeholder((None, 16), "float32", name="x")
    h = x
    for i in range(blocks):
        h = gc.tanh(h * (1.0 + 0.01 * i) + 0.5)
        h = h - gc.max(h, axis=1, keepdims=True)
    return x, h


@pytest.mark.usefixtures("unfused_rows")
def test_kernels_that_differ_only_in_constants_are_one_kernel(monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_PARALLEL", "0")
    x, h = _chain(12)
    f = gc.function([x], h, device="cpu")
    kernels = f._executable.generated.kernels
    # 24 loops, 4 kernels: the first block's tanh, then row-wise neighbours holding one
    # tanh each (MAX_GROUP_MATH): a row max, the next block and its row max; the same
    # group again and again (the constant is a parameter); the last group ending in the
    # final subtraction
    assert len(kernels) == 4, [k.what for k in kernels]
    assert kernels[2].what == "sub -> mul -> add -> tanh | max"
    assert f.source.count("def entry(") == 1
    assert all(k.name in f.source for k in kernels)
    a = np.random.default_rng(0).standard_normal((5, 16)).astype(np.float32)
    want = gc.function([x], h, device="reference")(a)
    np.testing.assert_allclose(f(a), want, rtol=1e-5, atol=1e-6)


OVERLOADS = textwrap.dedent(
    """
    import json
    import numpy as np
    import graphc as gc

    x = gc.placeholder((None, 8), "float32", name="x")
    w = np.random.default_rng(4).standard_normal((8, 4)).astype(np.float32)
    y = gc.softmax(gc.tanh(x) @ w, axis=-1)
    outputs = [y, gc.sum(y), gc.sum(gc.transpose(x) * 2.0, axis=1)]  # (a strided view too)
    f = gc.function([x], outputs, device="cpu")
    a = np.random.default_rng(0).standard_normal((5, 8)).astype(np.float32)
    got = f(a)
    want = gc.function([x], outputs, device="reference")(a)
    counts = {
        k.what: len(__import__(k.name).kernel.overloads) for k in f._executable.generated.kernels
    }
    print(json.dumps({
        "counts": counts,
        "close": all(np.allclose(g, r, rtol=1e-5, atol=1e-6) for g, r in zip(got, want)),
        "reported": sorted(c.name for c in f.report().kernels),
        "kernels": sorted(k.name for k in f._executable.generated.kernels),
        "origins": sorted({c.origin for c in f.report().kernels}),
    }))
    """
)


def test_each_kernel_is_compiled_once_for_the_types_its_call_passes(tmp_path) -> None:
    """Kernels are compiled before the entry, for the signature the code generator
    declared; the entry's calls must find exactly that signature (a second overload
    would be a second compile, during the entry's). In a new process, so that no other
    graph shares these kernels."""
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path), "GRAPHC_PARALLEL": "1"}
    done = subprocess.run(
        [sys.executable, "-c", OVERLOADS], env=env, capture_output=True, text=True, check=True
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["close"]
    assert result["counts"]
    assert all(n == 1 for n in result["counts"].values()), result
    # every kernel is reported; so are the library helpers, compiled beside the kernels
    helpers = [name for name in result["reported"] if name.startswith("graphc.kernels.")]
    assert sorted(set(result["reported"]) - set(helpers)) == result["kernels"]
    # a second process finds every kernel in the disk cache, and loads it itself
    done = subprocess.run(
        [sys.executable, "-c", OVERLOADS], env=env, capture_output=True, text=True, check=True
    )
    again = json.loads(done.stdout.strip().splitlines()[-1])
    assert again["close"]
    assert again["origins"] == ["cache"], again


def _chunked(work: str) -> codegen._Chunked:
    sizes = codegen.Arg("(d0,)", ("sizes", 1))
    return codegen._Chunked("", [], "d0", work, sizes, node=None, rows=False, what="")


def test_weight_is_the_known_factor_of_the_work() -> None:
    assert _chunked("10 * d0").weight == 10
    assert _chunked("d0 * d1").weight == 1
    assert _chunked("4 * 256 * d0").weight == 1024


@pytest.mark.usefixtures("unfused_rows")
def test_parallel_loops_only_where_they_pay(monkeypatch) -> None:
    monkeypatch.setenv("GRAPHC_PARALLEL", "1")
    monkeypatch.setenv("GRAPHC_PARALLEL_MIN", "64")  # several chunks even for small tests
    x = gc.placeholder((None,), "float32", name="x")
    one = gc.function([x], gc.tanh(x) * 2.0 + x, device="cpu")
    assert one.source.count("prange(") == 1  # a lone elementwise kernel: parallel
    r = gc.placeholder((None, 4), "float32", name="r")
    # kernels working row by row share one prange
    h = r
    blocks = codegen.MAX_PARALLEL - 1
    for _ in range(blocks):
        h = gc.exp(h - gc.max(h, axis=1, keepdims=True))
    rows = gc.function([r], h, device="cpu")
    rows_reference = gc.function([r], h, device="reference")
    groups = rows._executable.generated.kernels
    assert all(k.parallel for k in groups)
    assert all(k.source.count("prange(") == 1 for k in groups)
    # 2 kernels a block, in groups holding at most MAX_GROUP_MATH exps (one block each)
    calls = [line for line in rows.source.splitlines() if line.strip().startswith("lib.invoke(")]
    assert codegen.MAX_GROUP_MATH == 1
    assert len(calls) == blocks
    # separated by column sums (not split by rows): too many small loops to compile
    # a parallel version of each
    h = r
    blocks = codegen.MAX_PARALLEL + 1
    for _ in range(blocks):
        h = gc.exp(h - gc.max(h, axis=0, keepdims=True))
    many = gc.function([r], h, device="cpu")
    many_reference = gc.function([r], h, device="reference")
    assert "prange(" not in many.source
    # the blocks share their kernels: the middle ones compute in place of the one before
    calls = [line for line in many.source.splitlines() if line.strip().startswith("lib.invoke(")]
    assert len(calls) == 2 * blocks
    assert len(many._executable.generated.kernels) < blocks
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


@pytest.mark.usefixtures("unfused_rows")
def test_row_wise_neighbours_share_a_chunk_loop_on_one_thread_too(monkeypatch) -> None:
    """Without threads, a softmax's kernels still run chunk by chunk of rows, each chunk
    through all of them while it is in cache (a `range`, no `prange`); a graph that
    calls BLAS keeps its kernels apart (larger groups cost more compile than they save)."""
    monkeypatch.setenv("GRAPHC_PARALLEL", "0")
    r = gc.placeholder((None, 8), "float32", name="r")
    alone = gc.function([r], gc.softmax(r, axis=1), device="cpu")
    assert "prange(" not in alone.source
    groups = [k for k in alone._executable.generated.kernels if " | " in k.what]
    assert len(groups) == 1
    assert groups[0].what.startswith("max | ")
    assert not groups[0].parallel
    assert "for c in range(" in groups[0].source
    w = np.random.default_rng(2).standard_normal((8, 8)).astype(np.float32)
    after_matmul = gc.function([r], gc.softmax(r @ w, axis=1), device="cpu")
    assert not [k for k in after_matmul._executable.generated.kernels if " | " in k.what]
    rng = np.random.default_rng(3)
    for rows in (0, 1, 300, 5000):  # (one chunk, and 64 chunks of 79 or 78 rows)
        a = rng.standard_normal((rows, 8)).astype(np.float32)
        a[rows // 2 :, 3] = np.nan if rows else 0.0
        want = gc.function([r], gc.softmax(r, axis=1), device="reference")(a)
        np.testing.assert_allclose(alone(a), want, rtol=1e-5, atol=1e-6)
