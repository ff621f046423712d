"""Loop kernels computed in place of an operand (the memory plan reuses the operand's
array for the result) write into that operand's array: one parameter, not two arrays
that overlap, so that LLVM's overlap check does not send the loop down its scalar
path."""

from __future__ import annotations

import re

import numba
import numpy as np
import pytest
from llvmlite import binding as llvm

import graphc as gc
from graphc.runtime import compile as rc


def _softmax_step() -> tuple[gc.Function, gc.Function]:
    x = gc.placeholder((None, 64), "float32", name="x")
    w = gc.Variable(np.random.default_rng(0).standard_normal((64, 64)).astype(np.float32))
    h = x @ w  # (a temporary: the plan may compute in its place)
    e = gc.exp(h - gc.max(h, axis=-1, keepdims=True))
    y = e / gc.sum(e, axis=-1, keepdims=True)
    loss = gc.sum(y * y)
    outputs = [loss, gc.grad(loss, [w])[0]]
    return gc.function([x], outputs, device="cpu"), gc.function([x], outputs, device="reference")


def _in_place(kernel) -> list[str]:  # type: ignore[no-untyped-def]
    """The operands a loop kernel's source stores into."""
    return re.findall(r"^\s+(a\d+)\[[^\]]*\] = ", kernel.source, re.MULTILINE)


@pytest.mark.usefixtures("unfused_rows")
def test_results_in_place_of_an_operand_are_stored_into_it() -> None:
    f, reference = _softmax_step()
    kernels = f._executable.generated.kernels
    in_place = [k for k in kernels if _in_place(k)]
    assert in_place, [k.source for k in kernels]
    for kernel in in_place:
        stored = set(_in_place(kernel))
        header = re.search(r"def kernel\((.*)\):", kernel.source).group(1)  # type: ignore[union-attr]
        params = [p.strip() for p in header.split(",")]
        assert stored <= set(params)
        assert len(params) == len(kernel.params)
    a = np.random.default_rng(1).standard_normal((37, 64)).astype(np.float32)
    for got, want in zip(f(a), reference(a), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=1e-5)


@pytest.mark.usefixtures("unfused_rows")
def test_an_in_place_loop_is_vectorized() -> None:
    features = llvm.get_host_cpu_features()
    if not features.get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the 8-lane float vectors are not expected")
    f, _ = _softmax_step()
    # (the softmax gradient's add -> add -> mul -> neg, stored into two of its operands)
    kernel = next(k for k in f._executable.generated.kernels if len(set(_in_place(k))) == 2)
    fresh = numba.njit(nogil=True, error_model="numpy")(rc.kernel_dispatcher(kernel).py_func)
    signature = rc.signature(kernel)
    fresh.compile(signature)
    llvm_ir = fresh.inspect_llvm(signature)
    assert re.search(r"<(?:8|16) x float>", llvm_ir), "no packed float vectors"
