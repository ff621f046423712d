"""Fused loops vectorize: the W1 body, whose two operands may broadcast against each
other at run time (sizes known only then), reads both at unit stride (the entry
broadcasts an operand whose size differs, in the rare call where it does), compiles to
packed float vectors without gathers, and gives the reference's results whichever
operand broadcasts."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from llvmlite import binding as llvm

import graphc as gc
from graphc.runtime import compile as rc


def _w1() -> tuple[list, gc.Tensor]:
    x = gc.placeholder((None,), "float32", name="x")
    y = gc.placeholder((None,), "float32", name="y")
    return [x, y], gc.tanh(0.5 * x + y) * gc.sigmoid(y) - gc.exp(-x * x) + 0.1 * y


def test_a_run_time_broadcast_loop_is_vectorized(monkeypatch: pytest.MonkeyPatch) -> None:
    if not llvm.get_host_cpu_features().get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the 8-lane float vectors are not expected")
    if numba.config.BOUNDSCHECK:
        pytest.skip("NUMBA_BOUNDSCHECK=1: a bounds check on each read keeps the loop scalar")
    monkeypatch.setenv("GRAPHC_PARALLEL", "0")  # (one serial loop to read)
    inputs, out = _w1()
    f = gc.function(inputs, out, device="cpu")
    (kernel,) = f._executable.generated.kernels
    assert "a0[np.uint64(i0)]" in kernel.source
    assert "a1[np.uint64(i0)]" in kernel.source
    assert "np.broadcast_to(" in f.source  # (the entry's fallback for differing sizes)
    fresh = numba.njit(nogil=True, error_model="numpy")(rc.kernel_dispatcher(kernel).py_func)
    signature = rc.signature(kernel)
    fresh.compile(signature)
    llvm_ir = fresh.inspect_llvm(signature)
    assert re.search(r"fmul (?:fast )?<(?:8|16) x float>", llvm_ir), "no packed float multiply"
    # (read as a[i * s] with a run-time stride s of 0 or 1, the loads became gathers,
    # 2.5x slower than unit-stride loads)
    assert "gather" not in fresh.inspect_asm(signature), "gathered loads"


@pytest.mark.parametrize(
    ("n_x", "n_y"), [(37, 37), (1, 37), (37, 1), (1, 1), (0, 0), (0, 1), (1, 0)]
)
def test_run_time_broadcasts_give_the_reference_results(n_x: int, n_y: int) -> None:
    inputs, out = _w1()
    f = gc.function(inputs, out, device="cpu")
    reference = gc.function(inputs, out, device="reference")
    rng = np.random.default_rng(n_x * 100 + n_y)
    a = rng.standard_normal(n_x).astype(np.float32)
    b = rng.standard_normal(n_y).astype(np.float32)
    np.testing.assert_allclose(f(a, b), reference(a, b), rtol=1e-5, atol=1e-6)


def test_a_flat_loop_over_lo_hi_is_vectorized(monkeypatch: pytest.MonkeyPatch) -> None:
    """A flat loop runs over [lo, hi): its index is unsigned, else numba's negative-index
    wraparound keeps it scalar (a ReLU's gradient, `where` over the forward's mask in
    place of the incoming gradient, ran 20x slower)."""
    if not llvm.get_host_cpu_features().get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the 8-lane float vectors are not expected")
    if numba.config.BOUNDSCHECK:
        pytest.skip("NUMBA_BOUNDSCHECK=1: a bounds check on each read keeps the loop scalar")
    monkeypatch.setenv("GRAPHC_PARALLEL", "0")
    images = gc.placeholder((None, 2, 8, 8), "float32", name="images")
    w = gc.Variable(np.random.default_rng(4).standard_normal((3, 2, 3, 3)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(images, w, padding=1)), 2)
    grad = gc.grad(gc.sum(h * h), [w])[0]
    f = gc.function([images], grad, device="cpu")
    kernel = next(k for k in f._executable.generated.kernels if k.what == "where")
    assert "range(lo, hi)" in kernel.source
    assert "[np.uint64(i0)]" in kernel.source
    fresh = numba.njit(nogil=True, error_model="numpy")(rc.kernel_dispatcher(kernel).py_func)
    signature = rc.signature(kernel)
    fresh.compile(signature)
    assert re.search(r"<(?:8|16) x float>", fresh.inspect_llvm(signature)), "no float vectors"
    a = np.random.default_rng(5).standard_normal((3, 2, 8, 8)).astype(np.float32)
    reference = gc.function([images], grad, device="reference")
    np.testing.assert_allclose(f(a), reference(a), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("op", ["max", "min"])
def test_a_float_max_or_min_reduction_is_vectorized(monkeypatch: pytest.MonkeyPatch, op) -> None:
    """A row max (softmax's first pass) folds with LLVM's maxnum and no-NaN flags: a vector
    reduction, its NaN tracked apart (a select written in Python stayed scalar, 3.5x
    slower); the results, NaN rows included, are the reference's."""
    if not llvm.get_host_cpu_features().get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the 8-lane float vectors are not expected")
    if numba.config.BOUNDSCHECK:
        pytest.skip("NUMBA_BOUNDSCHECK=1: a bounds check on each read keeps the loop scalar")
    monkeypatch.setenv("GRAPHC_PARALLEL", "0")
    x = gc.placeholder((None, 300), "float32", name="x")
    out = getattr(gc, op)(x, axis=1)
    f = gc.function([x], out, device="cpu")
    (kernel,) = f._executable.generated.kernels
    fresh = numba.njit(nogil=True, error_model="numpy")(rc.kernel_dispatcher(kernel).py_func)
    signature = rc.signature(kernel)
    fresh.compile(signature)
    vector = rf"@llvm\.{op}num\.v(?:8|16)f32|@llvm\.vector\.reduce\.f{op}\.v(?:8|16)f32"
    assert re.search(vector, fresh.inspect_llvm(signature)), "no vector max/min"
    a = np.random.default_rng(6).standard_normal((9, 300)).astype(np.float32)
    a[2, 299], a[4, 0] = np.nan, np.nan
    np.testing.assert_array_equal(f(a), gc.function([x], out, device="reference")(a))
