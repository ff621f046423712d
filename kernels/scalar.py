"""Scalar formulas of the elementwise ops: one element of each op as a numba
expression, numpy's result dtype and edge cases included, for either backend.

Part of graphc.kernels. `formula(op, args, in_dtypes, out_dtype, attrs)` returns an
expression over the operand expressions `args` whose value has exactly `out_dtype`
(every result is wrapped in the dtype's constructor, so int8 arithmetic wraps as
numpy's does and float32 stays float32). Operands are first converted to the dtype
numpy computes in. Transcendental float functions use graphc's vectorizable
implementations (`vm`, kernels/cpu/vmath.py); numpy's integer division and modulo
rules come from `lib`. A `Dialect` names what a backend's generated code calls: the CPU's
`vm`/`lib` (the default) or the CUDA backend's device functions.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

VMATH = {"exp", "log", "tanh", "sigmoid", "expm1", "log1p", "erf", "sin", "cos"}
LIBM = {
    "tan": "np.tan",
    "arcsin": "np.arcsin",
    "arccos": "np.arccos",
    "arctan": "np.arctan",
    "sinh": "np.sinh",
    "cosh": "np.cosh",
    "sqrt": "np.sqrt",
    "floor": "np.floor",
    "ceil": "np.ceil",
}
ARITHMETIC = {"add": "+", "sub": "-", "mul": "*"}
COMPARISON = {
    "less": "<",
    "less_equal": "<=",
    "greater": ">",
    "greater_equal": ">=",
    "equal": "==",
    "not_equal": "!=",
}


def ctor(dtype: np.dtype) -> str:
    """The numba expression converting a scalar to `dtype`."""
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


def literal(value: Any, dtype: np.dtype) -> str:
    """A scalar constant of `dtype` as source text."""
    if dtype.kind == "b":
        return "True" if bool(value) else "False"
    if dtype.kind == "f":
        v = float(value)
        if math.isnan(v):
            text = "np.nan"
        elif math.isinf(v):
            text = "np.inf" if v > 0 else "-np.inf"
        else:
            text = repr(v)
        return f"np.{dtype.name}({text})"
    return f"np.{dtype.name}({int(value)})"


def vmath_name(function: str, dtype: np.dtype) -> str:
    bits = "32" if dtype == np.float32 else "64"
    joiner = "_" if function[-1].isdigit() else ""
    return f"vm.{function}{joiner}{bits}"


CPU_FUNCTIONS = {"abs": "np.abs", "rint": "np.rint", "pow": "np.power"}


def _cpu_function(function: str, dtype: np.dtype) -> str:
    if function in VMATH:
        return vmath_name(function, dtype)
    if function in ("isnan", "isinf", "isfinite"):
        return f"np.{function}"
    return LIBM.get(function) or CPU_FUNCTIONS[function]


@dataclass(frozen=True)
class Dialect:
    """What generated code calls: `function(name, float_dtype)` names a float function
    (exp, log, ..., abs, rint, pow, isnan, isinf, isfinite; the ops' names) and `lib` is
    the alias of the module of numpy-exact helpers (fsign, ffloordiv, ifloordiv,
    fmod_numpy, imod, ipow, maxnan, minnan)."""

    function: Callable[[str, np.dtype], str]
    lib: str


CPU = Dialect(_cpu_function, "lib")


def _as(dtype: np.dtype, expression: str, from_dtype: np.dtype) -> str:
    if from_dtype == dtype:
        return expression
    if dtype.kind == "b":
        return f"({expression} != 0)"
    return f"{ctor(dtype)}({expression})"


def _common(dtypes: list[np.dtype]) -> np.dtype:
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


def _unary(op: str, a: str, dtype: np.dtype, d: Dialect) -> str | None:
    """Unary ops computed in `dtype` (the operand already has it)."""
    if (op in VMATH or op in LIBM) and dtype.kind == "f":
        return f"{d.function(op, dtype)}({a})"
    if op in ("floor", "ceil"):
        return a
    if op == "neg":
        return f"(-{a})"
    if op == "abs":
        return (
            a
            if dtype.kind in "bu"
            else (f"{d.function('abs', dtype)}({a})" if dtype.kind == "f" else f"abs({a})")
        )
    if op == "sign":
        if dtype.kind == "f":
            return f"{d.lib}.fsign({a})"
        return f"(({a} > 0) - ({a} < 0))"
    if op == "round":
        return f"{d.function('rint', dtype)}({a})" if dtype.kind == "f" else a
    if op in ("stop_gradient",):
        return a
    return None


def _binary(op: str, a: str, b: str, dtype: np.dtype, d: Dialect) -> str | None:
    """Binary ops computed in `dtype` (both operands already have it)."""
    if op in ARITHMETIC:
        if dtype.kind == "b":
            return f"({a} | {b})" if op == "add" else (f"({a} & {b})" if op == "mul" else None)
        return f"({a} {ARITHMETIC[op]} {b})"
    if op == "div":
        return f"({a} / {b})"
    if op == "floor_divide":
        name = "ffloordiv" if dtype.kind == "f" else "ifloordiv"
        return f"{d.lib}.{name}({a}, {b})"
    if op == "mod":
        return f"{d.lib}.{'fmod_numpy' if dtype.kind == 'f' else 'imod'}({a}, {b})"
    if op == "pow":
        return (
            f"{d.function('pow', dtype)}({a}, {b})"
            if dtype.kind == "f"
            else f"{d.lib}.ipow({a}, {b})"
        )
    if op == "maximum":
        return f"{d.lib}.maxnan({a}, {b})"
    if op == "minimum":
        return f"{d.lib}.minnan({a}, {b})"
    return None


def formula(
    op: str,
    args: list[str],
    in_dtypes: list[np.dtype],
    out_dtype: np.dtype,
    attrs: Any,
    dialect: Dialect = CPU,
) -> str:
    """One element of elementwise `op` as an expression of exactly `out_dtype`."""
    expression = _formula(op, args, in_dtypes, out_dtype, attrs, dialect)
    return f"{ctor(out_dtype)}({expression})"


def _formula(
    op: str, args: list[str], in_dtypes: list[np.dtype], out: np.dtype, attrs: Any, d: Dialect
) -> str:
    if op == "cast":
        (a,), (t,) = args, in_dtypes
        return f"({a} != 0)" if out.kind == "b" else a
    if op == "full_like":
        return literal(attrs["value"], out)
    if op == "where":
        c, a, b = args
        condition = _as(np.dtype(bool), c, in_dtypes[0])
        return f"({_as(out, a, in_dtypes[1])} if {condition} else {_as(out, b, in_dtypes[2])})"
    if op in COMPARISON:
        common = _common(in_dtypes)
        a, b = (_as(common, x, t) for x, t in zip(args, in_dtypes, strict=True))
        return f"({a} {COMPARISON[op]} {b})"
    if op in ("logical_and", "logical_or"):
        a, b = (_as(np.dtype(bool), x, t) for x, t in zip(args, in_dtypes, strict=True))
        return f"({a} {'&' if op == 'logical_and' else '|'} {b})"
    if op == "logical_not":
        return f"(not {_as(np.dtype(bool), args[0], in_dtypes[0])})"
    if op in ("isnan", "isinf", "isfinite"):
        (a,), (t,) = args, in_dtypes
        if t.kind != "f":
            return "True" if op == "isfinite" else "False"
        return f"{d.function(op, t)}({a})"
    converted = [_as(out, x, t) for x, t in zip(args, in_dtypes, strict=True)]
    if len(converted) == 1:
        result = _unary(op, converted[0], out, d)
    elif len(converted) == 2:
        result = _binary(op, converted[0], converted[1], out, d)
    else:
        result = None
    if result is None:
        raise NotImplementedError(f"no scalar formula for {op} on {in_dtypes} -> {out}")
    return result


def identity(op: str, dtype: np.dtype) -> str:
    """The starting value of reduction `op` (sum, prod, max, min) in `dtype`, as source."""
    if op == "sum":
        return literal(0, dtype)
    if op == "prod":
        return literal(1, dtype)
    if dtype.kind == "f":
        return literal(-np.inf if op == "max" else np.inf, dtype)
    if dtype.kind == "b":
        return literal(op == "min", dtype)
    info = np.iinfo(dtype)
    return literal(info.min if op == "max" else info.max, dtype)
