"""Scalar formulas of the elementwise ops: one element of each op as a numba
expression, numpy's result dtype and edge cases included, for each target.

Part of graphc.kernels. `FORMULAS` is the one table saying how each elementwise op
computes: the dtype it computes in (its output dtype, or the common dtype of its
inputs), and per kind of that dtype (float, int, unsigned, bool) a Python expression
over its operands. What differs between the backends is data of a `Target` (`CPU`,
`CUDA`): the function each float math op calls per dtype, and the alias of the module
of numpy-exact helpers (floor_divide, mod, int pow, sign, NaN-propagating extrema).
The CPU calls graphc's vectorizable implementations (`vm`, kernels/cpu/vmath.py)
and numpy's functions; CUDA calls device functions of kernels/cuda/lib.py (`cl`) only,
so a kernel's text is the same on a GPU and on numba's CUDA simulator.

`formula(op, args, in_dtypes, out_dtype, attrs, target)` returns an expression over
the operand expressions `args` whose value has exactly `out_dtype`: every result is
wrapped in the dtype's constructor, so int8 arithmetic wraps as numpy's does and
float32 stays float32. Operands are first converted to the dtype numpy computes in.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np


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


def _bits(dtype: np.dtype) -> str:
    return "32" if dtype == np.float32 else "64"


def _vmath(function: str) -> str:
    """The name of vmath's `function`, with "{bits}" for the float width: vm.exp32,
    vm.expm1_64 (a name ending in a digit takes an underscore before the width)."""
    joiner = "_" if function[-1].isdigit() else ""
    return f"vm.{function}{joiner}{{bits}}"


def vmath_name(function: str, dtype: np.dtype) -> str:
    """The vmath function (kernels/cpu/vmath.py) computing `function` in float `dtype`."""
    return _vmath(function).format(bits=_bits(dtype))


@dataclass(frozen=True, eq=False)
class Target:
    """What one backend's generated code calls: all that differs between targets.

    name       "cpu" or "cuda"
    lib        the alias, in generated code, of the module of numpy-exact helpers
               (fsign, ffloordiv, ifloordiv, fmod_numpy, imod, ipow, maxnan, minnan)
    functions  each float math function the formulas use (named as the ops are; rint
               for round) -> the function called, "{bits}" standing for the float's
               width (32 or 64)
    """

    name: str
    lib: str
    functions: Mapping[str, str]

    def function(self, name: str, dtype: np.dtype) -> str:
        """The function computing float math function `name` in float `dtype`."""
        return self.functions[name].format(bits=_bits(dtype))


CPU = Target(
    name="cpu",
    lib="lib",
    functions={
        # graphc's vectorizable implementations (kernels/cpu/vmath.py)
        **{
            f: _vmath(f)
            for f in ("exp", "log", "tanh", "sigmoid", "expm1", "log1p", "erf", "sin", "cos")
        },
        # numpy's, as numba compiles them
        "tan": "np.tan",
        "arcsin": "np.arcsin",
        "arccos": "np.arccos",
        "arctan": "np.arctan",
        "sinh": "np.sinh",
        "cosh": "np.cosh",
        "sqrt": "np.sqrt",
        "floor": "np.floor",
        "ceil": "np.ceil",
        "abs": "np.abs",
        "rint": "np.rint",
        "pow": "np.power",
        "isnan": "np.isnan",
        "isinf": "np.isinf",
        "isfinite": "np.isfinite",
    },
)
# Every float function is a device function of kernels/cuda/lib.py of the same name
# (numpy's names for abs and pow, which would shadow Python's builtins there): math's
# on a GPU, numpy's on the simulator, chosen inside lib, so the text is the same on both.
CUDA = Target(
    name="cuda",
    lib="cl",
    functions={f: f"cl.{f}" for f in CPU.functions} | {"abs": "cl.absolute", "pow": "cl.power"},
)
TARGETS = (CPU, CUDA)


@dataclass(frozen=True)
class Scalar:
    """How an elementwise op computes one element.

    computes_in  the compute dtype: "out" (the output dtype) or "common" (the inputs'
                 common dtype, for ops whose output is bool whatever they compare)
    formulas     the compute dtype's kind ("f" float, "i" int, "u" unsigned, "b" bool;
                 a key of several kinds holds their shared formula) -> a Python
                 expression over the converted operands {0}, {1}, {2}, where {lib} is
                 the target's helper module, {f[name]} its float function `name` in the
                 compute dtype, and {value} the attribute `value` as a literal of it
    operands     per operand, what it is converted to before the formula reads it: the
                 "compute" dtype, "bool", or nothing ("as is"); None: all to the
                 compute dtype
    """

    computes_in: str
    formulas: Mapping[str, str]
    operands: tuple[str, ...] | None = None

    def template(self, kind: str) -> str | None:
        return next((text for kinds, text in self.formulas.items() if kind in kinds), None)


def _in_out(**formulas: str) -> Scalar:
    """Computed in the output dtype, every operand converted to it first."""
    return Scalar("out", formulas)


def _in_common(**formulas: str) -> Scalar:
    """Computed in the inputs' common dtype, every operand converted to it first."""
    return Scalar("common", formulas)


FORMULAS: dict[str, Scalar] = {
    # arithmetic; on bools numpy's add is `or` and its multiply `and`
    "add": _in_out(fiu="({0} + {1})", b="({0} | {1})"),
    "sub": _in_out(fiu="({0} - {1})"),
    "mul": _in_out(fiu="({0} * {1})", b="({0} & {1})"),
    "div": _in_out(f="({0} / {1})"),
    "neg": _in_out(fiu="(-{0})"),
    # numpy's rules for zero divisors, signs of remainders, negative powers and NaN
    "floor_divide": _in_out(f="{lib}.ffloordiv({0}, {1})", iu="{lib}.ifloordiv({0}, {1})"),
    "mod": _in_out(f="{lib}.fmod_numpy({0}, {1})", iu="{lib}.imod({0}, {1})"),
    "pow": _in_out(f="{f[pow]}({0}, {1})", iu="{lib}.ipow({0}, {1})"),
    "maximum": _in_out(fiub="{lib}.maxnan({0}, {1})"),
    "minimum": _in_out(fiub="{lib}.minnan({0}, {1})"),
    # int(...): numpy's bools, which the CUDA simulator computes with, do not subtract
    "sign": _in_out(f="{lib}.fsign({0})", iu="(int({0} > 0) - int({0} < 0))"),
    "abs": _in_out(f="{f[abs]}({0})", i="abs({0})", ub="{0}"),
    # rounding: integers and bools are already whole
    "floor": _in_out(f="{f[floor]}({0})", iub="{0}"),
    "ceil": _in_out(f="{f[ceil]}({0})", iub="{0}"),
    "round": _in_out(f="{f[rint]}({0})", iub="{0}"),
    # float math (the output of an int or bool operand is a float)
    "sqrt": _in_out(f="{f[sqrt]}({0})"),
    "exp": _in_out(f="{f[exp]}({0})"),
    "expm1": _in_out(f="{f[expm1]}({0})"),
    "log": _in_out(f="{f[log]}({0})"),
    "log1p": _in_out(f="{f[log1p]}({0})"),
    "sin": _in_out(f="{f[sin]}({0})"),
    "cos": _in_out(f="{f[cos]}({0})"),
    "tan": _in_out(f="{f[tan]}({0})"),
    "arcsin": _in_out(f="{f[arcsin]}({0})"),
    "arccos": _in_out(f="{f[arccos]}({0})"),
    "arctan": _in_out(f="{f[arctan]}({0})"),
    "sinh": _in_out(f="{f[sinh]}({0})"),
    "cosh": _in_out(f="{f[cosh]}({0})"),
    "tanh": _in_out(f="{f[tanh]}({0})"),
    "sigmoid": _in_out(f="{f[sigmoid]}({0})"),
    "erf": _in_out(f="{f[erf]}({0})"),
    # comparisons and tests: bool out, computed in the inputs' dtype
    "less": _in_common(fiub="({0} < {1})"),
    "less_equal": _in_common(fiub="({0} <= {1})"),
    "greater": _in_common(fiub="({0} > {1})"),
    "greater_equal": _in_common(fiub="({0} >= {1})"),
    "equal": _in_common(fiub="({0} == {1})"),
    "not_equal": _in_common(fiub="({0} != {1})"),
    "isnan": _in_common(f="{f[isnan]}({0})", iub="False"),
    "isinf": _in_common(f="{f[isinf]}({0})", iub="False"),
    "isfinite": _in_common(f="{f[isfinite]}({0})", iub="True"),
    # logic: the output is bool, so the operands are tested for non-zero first
    "logical_and": _in_out(b="({0} & {1})"),
    "logical_or": _in_out(b="({0} | {1})"),
    "logical_not": _in_out(b="(not {0})"),
    # selection, conversion, constants
    "where": Scalar("out", {"fiub": "({1} if {0} else {2})"}, ("bool", "compute", "compute")),
    "cast": Scalar("out", {"fiu": "{0}", "b": "({0} != 0)"}, ("as is",)),
    "full_like": Scalar("out", {"fiub": "{value}"}, ("as is",)),
    "stop_gradient": _in_out(fiub="{0}"),
}


def _as(dtype: np.dtype, expression: str, from_dtype: np.dtype) -> str:
    if from_dtype == dtype:
        return expression
    if dtype.kind == "b":
        return f"({expression} != 0)"
    return f"{ctor(dtype)}({expression})"


def _common(dtypes: list[np.dtype]) -> np.dtype:
    return np.result_type(*dtypes) if dtypes else np.dtype(np.float64)


def formula(
    op: str,
    args: list[str],
    in_dtypes: list[np.dtype],
    out_dtype: np.dtype,
    attrs: Any,
    target: Target = CPU,
) -> str:
    """One element of elementwise `op` as an expression of exactly `out_dtype`."""
    missing = f"no scalar formula for {op} on {in_dtypes} -> {out_dtype}"
    entry = FORMULAS.get(op)
    if entry is None:
        raise NotImplementedError(missing)
    compute = out_dtype if entry.computes_in == "out" else _common(in_dtypes)
    template = entry.template(compute.kind)
    if template is None:
        raise NotImplementedError(missing)
    conversions = entry.operands or ("compute",) * len(args)
    operands = [
        x if to == "as is" else _as(np.dtype(bool) if to == "bool" else compute, x, t)
        for x, t, to in zip(args, in_dtypes, conversions, strict=True)
    ]
    functions = (
        {name: target.function(name, compute) for name in target.functions}
        if compute.kind == "f"
        else {}
    )
    value = literal(attrs["value"], compute) if attrs and "value" in attrs else None
    expression = template.format(*operands, lib=target.lib, f=functions, value=value)
    return f"{ctor(out_dtype)}({expression})"


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
