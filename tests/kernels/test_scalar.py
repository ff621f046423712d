"""kernels/scalar.py, the table of scalar formulas, on every target.

Every elementwise op has a formula for every dtype combination its registry entry
accepts; the CUDA text calls nothing that differs between a GPU and numba's CUDA
simulator; and the formulas, evaluated as Python on edge values, give the op's numpy
reference: bit for bit (NaN, infinities and the sign of zero included), float math
within a few ulps. On the CPU numba's helpers are callable from Python; on the
simulator so are the CUDA device functions (on a GPU they are not: that test skips).
The op table (tests/kernels/test_cpu_ops.py, tests/cuda/test_cuda_ops.py) runs every op
end to end through compiled kernels.
"""

from __future__ import annotations

import ast
import inspect
import itertools
import math
import re
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from graphc import dtypes
from graphc.errors import DTypeError
from graphc.kernels import scalar
from graphc.kernels.cpu import lib as cpu_lib
from graphc.kernels.cpu import vmath
from graphc.kernels.plan import ELEMENTWISE_OPS
from graphc.registry import REGISTRY, Attrs
from graphc.types import TensorType

# Sample values of each attribute kind an elementwise op has; infer rejects the ones a
# dtype cannot hold (full_like of 2.5 in int32), as it rejects dtypes.
ATTRIBUTE_SAMPLES: dict[str, tuple[Any, ...]] = {
    "dtype": tuple(d.name for d in dtypes.SUPPORTED),
    "scalar": (0, 1, -2.5, math.nan, -math.inf, True),
}
# Values every op meets: signed zeros, halves (round half to even), signs for the
# remainder's rule, NaN and infinities, and the ints' extremes.
FLOAT_EDGES = (0.0, -0.0, 0.5, -0.5, 1.5, -2.5, 3.0, -7.0, 100.0, math.nan, math.inf, -math.inf)
BOOL_EDGES = (False, True)
# Ops whose float results may differ from numpy's in the last bits (graphc's vmath on the
# CPU, libdevice on a GPU); all other results must be numpy's exactly.
APPROXIMATE = {
    "exp",
    "expm1",
    "log",
    "log1p",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "sigmoid",
    "erf",
    "pow",  # C's powf is not correctly rounded
}
# Operand values above which sin and cos (of an int, say) lose accuracy in vmath, as
# documented there (ACCURATE_BELOW), and in libdevice.
APPROXIMATE_BELOW = 1e4


def _attribute_choices(op: str) -> Iterator[dict[str, Any]]:
    specs = REGISTRY[op].attrs
    for kind in (spec.kind for spec in specs.values()):
        if kind not in ATTRIBUTE_SAMPLES:
            pytest.fail(f"{op}: add sample values of attribute kind {kind!r} to this test")
    for values in itertools.product(*(ATTRIBUTE_SAMPLES[s.kind] for s in specs.values())):
        yield dict(zip(specs, values, strict=True))


def signatures(op: str) -> list[tuple[tuple[np.dtype, ...], Attrs, np.dtype]]:
    """Every (input dtypes, attributes, output dtype) the registry entry of `op` accepts."""
    opdef = REGISTRY[op]
    assert isinstance(opdef.arity, int), f"{op}: an elementwise op has a fixed arity"
    accepted = []
    for in_dtypes in itertools.product(dtypes.SUPPORTED, repeat=opdef.arity):
        for attrs in _attribute_choices(op):
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore", RuntimeWarning)  # nan cast to an int
                    out = opdef.infer(*(TensorType(d, (3,)) for d in in_dtypes), **attrs)
            except DTypeError:
                continue
            accepted.append((in_dtypes, opdef.check_attrs(attrs), out.dtype))
    return accepted


def _arguments(arity: int) -> list[str]:
    return [f"x{i}" for i in range(arity)]


def test_the_table_holds_exactly_the_elementwise_ops() -> None:
    assert sorted(scalar.FORMULAS) == sorted(ELEMENTWISE_OPS)


def test_every_target_names_the_same_float_functions() -> None:
    assert set(scalar.CPU.functions) == set(scalar.CUDA.functions)
    assert [t.name for t in scalar.TARGETS] == ["cpu", "cuda"]


@pytest.mark.parametrize("target", scalar.TARGETS, ids=lambda t: t.name)
@pytest.mark.parametrize("op", ELEMENTWISE_OPS)
def test_every_accepted_dtype_has_a_formula(op: str, target: scalar.Target) -> None:
    accepted = signatures(op)
    assert accepted, f"{op}: the registry accepts no dtype"
    for in_dtypes, attrs, out in accepted:
        text = scalar.formula(op, _arguments(len(in_dtypes)), list(in_dtypes), out, attrs, target)
        assert text.startswith(f"{scalar.ctor(out)}("), text  # exactly the output dtype
        ast.parse(text, mode="eval")


def test_an_unknown_op_or_dtype_has_no_formula() -> None:
    f32, b = np.dtype("float32"), np.dtype(bool)
    with pytest.raises(NotImplementedError, match="no scalar formula for conv"):
        scalar.formula("conv", ["x0"], [f32], f32, Attrs())
    with pytest.raises(NotImplementedError, match="no scalar formula for sub"):
        scalar.formula("sub", ["x0", "x1"], [b, b], b, Attrs())


def _cuda_texts() -> list[str]:
    return [
        scalar.formula(op, _arguments(len(ins)), list(ins), out, attrs, scalar.CUDA)
        for op in ELEMENTWISE_OPS
        for ins, attrs, out in signatures(op)
    ]


def test_the_cuda_text_is_the_same_on_a_gpu_and_on_the_simulator() -> None:
    """What differs between the two is chosen inside kernels/cuda/lib.py: the CUDA
    formulas call only its device functions (`cl.`), builtins that mean the same in
    Python and in numba.cuda, and numpy's dtype constructors and constants, never
    `math` or numpy's functions; and scalar.py cannot ask which one runs (it imports
    neither numba nor the CUDA backend)."""
    texts = _cuda_texts()
    dotted = {m.groups() for t in texts for m in re.finditer(r"\b([A-Za-z_]\w*)\.(\w+)", t)}
    assert {module for module, _ in dotted} == {"np", "cl"}
    constructors = {scalar.ctor(d).removeprefix("np.") for d in dtypes.SUPPORTED}
    assert {name for module, name in dotted if module == "np"} <= constructors | {"nan", "inf"}
    builtins = {m.group(1) for t in texts for m in re.finditer(r"(?<![.\w])([A-Za-z_]\w*)\(", t)}
    assert builtins <= {"abs", "int"}
    assert all("math." not in t and "vm." not in t for t in texts)

    tree = ast.parse(inspect.getsource(scalar))
    imported = {
        alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    } | {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
    assert not {name for name in imported if name and ("numba" in name or "cuda" in name)}


def test_every_cuda_function_is_a_device_function_of_the_cuda_library() -> None:
    from graphc.kernels.cuda import lib

    called = {m.group(1) for t in _cuda_texts() for m in re.finditer(r"\bcl\.(\w+)\(", t)} | {
        name.removeprefix("cl.") for name in scalar.CUDA.functions.values()
    }
    device_function = type(lib.maxnan)
    for name in sorted(called):
        assert isinstance(getattr(lib, name, None), device_function), f"cl.{name}"


def _edges(dtype: np.dtype) -> list[Any]:
    if dtype.kind == "f":
        return [dtype.type(v) for v in FLOAT_EDGES]
    if dtype.kind == "b":
        return [np.bool_(v) for v in BOOL_EDGES]
    info = np.iinfo(dtype)
    return [dtype.type(v) for v in (0, 1, -1, 2, 3, -7, info.min, info.max)]


def _allowed(op: str, row: tuple[Any, ...], out: np.dtype, target: scalar.Target) -> bool:
    """Whether numpy defines the result: no negative integer powers (numpy raises), no
    casts of NaN, infinities or out-of-range floats to ints (unspecified in C); float
    math at the operands where it is accurate. And whether Python's evaluation computes
    what a kernel does: numpy's float scalars (which evaluating a CPU formula calls; a
    CPU kernel calls C's pow) take x ** 0.5 for sqrt(x), wrong at -0.0 and -inf."""
    if op == "pow" and all(np.dtype(type(v)).kind in "bi" for v in row):
        return row[1] >= 0
    if op == "pow" and target is scalar.CPU and row[1] == 0.5:
        return False
    if op in APPROXIMATE:
        return all(not np.isfinite(v) or abs(float(v)) < APPROXIMATE_BELOW for v in row)
    if op == "cast" and out.kind in "iu" and np.dtype(type(row[0])).kind == "f":
        info = np.iinfo(out)
        return bool(np.isfinite(row[0]) and info.min <= row[0] <= info.max)
    return True


def _same(got: np.ndarray, want: np.ndarray, approximate: bool) -> np.ndarray:
    """Where got is want: bit for bit (NaN is NaN; -0.0 is not 0.0), or within the op
    table's tolerance for float math."""
    if got.dtype.kind != "f":
        return got == want
    if approximate:
        tolerance = {"rtol": 2e-5, "atol": 2e-6} if got.dtype == np.float32 else {"rtol": 1e-12}
        return np.isclose(got, want, equal_nan=True, **tolerance)
    both_nan = np.isnan(got) & np.isnan(want)
    same_sign = np.signbit(got) == np.signbit(want)
    return both_nan | ((got == want) & same_sign)


def check_against_numpy(op: str, target: scalar.Target, namespace: dict[str, Any]) -> None:
    """Evaluate every formula of `op` on `target` at the edge values of its operands'
    dtypes and compare it with the op's numpy reference (the sign of a zero result too)."""
    opdef = REGISTRY[op]
    for in_dtypes, attrs, out in signatures(op):
        args = _arguments(len(in_dtypes))
        text = scalar.formula(op, args, list(in_dtypes), out, attrs, target)
        code = compile(text, f"<{target.name} formula of {op}>", "eval")
        rows = [
            row
            for row in itertools.product(*(_edges(d) for d in in_dtypes))
            if _allowed(op, row, out, target)
        ]
        columns = [
            np.array(c, dtype=d) for c, d in zip(zip(*rows, strict=True), in_dtypes, strict=True)
        ]
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            want = opdef.reference(*columns, **attrs)
            got = np.array(
                [eval(code, namespace, dict(zip(args, row, strict=True))) for row in rows],
                dtype=out,
            )
        bad = ~_same(got, want, op in APPROXIMATE)
        assert not bad.any(), (
            f"{text} with {[d.name for d in in_dtypes]}",
            [rows[i] for i in np.flatnonzero(bad)[:4]],
            got[bad][:4],
            want[bad][:4],
        )


class AsInKernels:
    """A module of numba functions called from Python, with their results typed as in a
    kernel: numba hands an int64 result to Python as an int, which numpy's int32()
    refuses when it is out of range, where a kernel's conversion wraps (as numpy's do)."""

    def __init__(self, module: Any) -> None:
        self.module = module

    def __getattr__(self, name: str) -> Any:
        function = getattr(self.module, name)

        def call(*args: Any) -> Any:
            result = function(*args)
            return np.int64(result) if type(result) is int else result

        return call


CPU_NAMESPACE = {"np": np, "vm": vmath, "lib": AsInKernels(cpu_lib)}


@pytest.mark.parametrize("op", ELEMENTWISE_OPS)
def test_cpu_formulas_give_numpy_results_at_edge_values(op: str) -> None:
    check_against_numpy(op, scalar.CPU, CPU_NAMESPACE)


@pytest.mark.cuda
@pytest.mark.parametrize("op", ELEMENTWISE_OPS)
def test_cuda_formulas_give_numpy_results_at_edge_values(op: str) -> None:
    from graphc.kernels.cuda import lib

    if not lib.SIMULATED:
        pytest.skip("device functions are callable from Python only on the CUDA simulator")
    check_against_numpy(op, scalar.CUDA, {"np": np, "cl": lib})
