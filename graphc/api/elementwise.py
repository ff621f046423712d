"""Elementwise op functions: arithmetic, math, activations, comparisons and logic.

Part of the IR core's front end. Composites here are written the numerically
stable way: softplus never overflows, relu and abs have subgradient 0 at 0,
gelu uses erf exactly unless asked for the tanh approximation.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc import dtypes
from graphc.api._common import choice, fail
from graphc.errors import ArgumentError
from graphc.tensor import Tensor, as_tensor, as_tensors, build1

__all__ = [
    "abs",
    "add",
    "arccos",
    "arcsin",
    "arctan",
    "cast",
    "ceil",
    "clip",
    "cos",
    "cosh",
    "divide",
    "equal",
    "erf",
    "exp",
    "expm1",
    "floor",
    "floor_divide",
    "gelu",
    "greater",
    "greater_equal",
    "isfinite",
    "isinf",
    "isnan",
    "leaky_relu",
    "less",
    "less_equal",
    "log",
    "log1p",
    "logical_and",
    "logical_not",
    "logical_or",
    "maximum",
    "minimum",
    "mod",
    "multiply",
    "negative",
    "not_equal",
    "ones_like",
    "power",
    "relu",
    "round",
    "rsqrt",
    "sigmoid",
    "sign",
    "sin",
    "sinh",
    "softplus",
    "sqrt",
    "square",
    "stop_gradient",
    "subtract",
    "tan",
    "tanh",
    "where",
    "zeros_like",
]


def _unary(op: str, doc: str) -> Callable[[Any], Tensor]:
    def function(x: Any) -> Tensor:
        return build1(op, as_tensors(x))

    function.__doc__ = doc
    return function


def _binary(op: str, doc: str) -> Callable[[Any, Any], Tensor]:
    def function(a: Any, b: Any) -> Tensor:
        return build1(op, as_tensors(a, b))

    function.__doc__ = doc
    return function


add = _binary("add", "a + b, elementwise with broadcasting.")
subtract = _binary("sub", "a - b, elementwise with broadcasting.")
multiply = _binary("mul", "a * b, elementwise with broadcasting.")
divide = _binary("div", "a / b (true division: integers give float64).")
floor_divide = _binary("floor_divide", "a // b, rounding toward minus infinity.")
mod = _binary("mod", "a % b with the sign of b (numpy.mod).")
power = _binary("pow", "a ** b.")
maximum = _binary("maximum", "The elementwise maximum; NaN propagates.")
minimum = _binary("minimum", "The elementwise minimum; NaN propagates.")
equal = _binary("equal", "a == b, elementwise (bool).")
not_equal = _binary("not_equal", "a != b, elementwise (bool).")
less = _binary("less", "a < b, elementwise (bool).")
less_equal = _binary("less_equal", "a <= b, elementwise (bool).")
greater = _binary("greater", "a > b, elementwise (bool).")
greater_equal = _binary("greater_equal", "a >= b, elementwise (bool).")
logical_and = _binary("logical_and", "Elementwise logical and of the operands' truth values.")
logical_or = _binary("logical_or", "Elementwise logical or of the operands' truth values.")

negative = _unary("neg", "-x.")
abs = _unary("abs", "|x|.")
sign = _unary("sign", "-1, 0 or 1 by the sign of x (NaN stays NaN).")
sqrt = _unary("sqrt", "The square root.")
exp = _unary("exp", "e ** x.")
expm1 = _unary("expm1", "e ** x - 1, accurate near 0.")
log = _unary("log", "The natural logarithm.")
log1p = _unary("log1p", "log(1 + x), accurate near 0.")
sin = _unary("sin", "The sine.")
cos = _unary("cos", "The cosine.")
tan = _unary("tan", "The tangent.")
arcsin = _unary("arcsin", "The inverse sine.")
arccos = _unary("arccos", "The inverse cosine.")
arctan = _unary("arctan", "The inverse tangent.")
sinh = _unary("sinh", "The hyperbolic sine.")
cosh = _unary("cosh", "The hyperbolic cosine.")
tanh = _unary("tanh", "The hyperbolic tangent.")
erf = _unary("erf", "The error function.")
sigmoid = _unary("sigmoid", "1 / (1 + exp(-x)), without overflow.")
floor = _unary("floor", "The largest integer <= x.")
ceil = _unary("ceil", "The smallest integer >= x.")
round = _unary("round", "x rounded to the nearest integer, halves to even.")
logical_not = _unary("logical_not", "Elementwise logical not of x's truth values.")
isnan = _unary("isnan", "True where x is NaN.")
isinf = _unary("isinf", "True where x is +inf or -inf.")
isfinite = _unary("isfinite", "True where x is neither NaN nor infinite.")
stop_gradient = _unary("stop_gradient", "x itself, through which no gradient flows.")


def _dtype_name(dtype: Any) -> str:
    """A dtype argument as the name the IR stores; a bad one is an error at the user's line."""
    return np.dtype(dtype).name if isinstance(dtype, np.dtype) else str(dtype)


def square(x: Any) -> Tensor:
    """x * x."""
    x = as_tensor(x)
    return multiply(x, x)


def rsqrt(x: Any) -> Tensor:
    """1 / sqrt(x)."""
    return divide(1, sqrt(x))


def where(condition: Any, a: Any, b: Any) -> Tensor:
    """Elements of `a` where `condition` is true, else of `b` (all three broadcast)."""
    condition = as_tensor(condition, like=dtypes.bool_)
    a, b = as_tensors(a, b)
    return build1("where", (condition, a, b))


def cast(x: Any, dtype: Any) -> Tensor:
    """x converted to `dtype` (numpy's unsafe casting: floats truncate toward zero)."""
    return build1("cast", [as_tensor(x)], {"dtype": _dtype_name(dtype)})


def zeros_like(x: Any, dtype: Any = None) -> Tensor:
    """Zeros of x's shape, of x's dtype unless `dtype` is given."""
    x = as_tensor(x)
    return build1(
        "full_like", [x], {"value": 0, "dtype": _dtype_name(x.dtype if dtype is None else dtype)}
    )


def ones_like(x: Any, dtype: Any = None) -> Tensor:
    """Ones of x's shape, of x's dtype unless `dtype` is given."""
    x = as_tensor(x)
    return build1(
        "full_like", [x], {"value": 1, "dtype": _dtype_name(x.dtype if dtype is None else dtype)}
    )


def clip(x: Any, lo: Any = None, hi: Any = None) -> Tensor:
    """minimum(maximum(x, lo), hi); a bound of None is not applied."""
    result = as_tensor(x)
    if lo is not None:
        result = maximum(result, lo)
    if hi is not None:
        result = minimum(result, hi)
    return result


def relu(x: Any) -> Tensor:
    """max(x, 0); NaN stays NaN and the subgradient at 0 is 0."""
    x = as_tensor(x)
    return where(less_equal(x, 0), 0, x)


def leaky_relu(x: Any, alpha: float = 0.01) -> Tensor:
    """x where x > 0, else alpha * x."""
    x = as_tensor(x)
    return where(greater(x, 0), x, multiply(alpha, x))


def softplus(x: Any) -> Tensor:
    """log(1 + exp(x)), as max(x, 0) + log1p(exp(-|x|)) so that nothing overflows."""
    x = as_tensor(x)
    return add(relu(x), log1p(exp(negative(abs(x)))))


def gelu(x: Any, approximate: str = "none") -> Tensor:
    """x * Phi(x): exactly with erf, or with PyTorch's tanh form when approximate="tanh"."""
    x = as_tensor(x)
    approximate = choice("gelu", "approximate", approximate, ("none", "tanh"))
    if approximate == "none":
        return multiply(multiply(0.5, x), add(1, erf(multiply(x, 1 / math.sqrt(2)))))
    if approximate == "tanh":
        cube = multiply(multiply(x, x), x)
        inner = multiply(math.sqrt(2 / math.pi), add(x, multiply(0.044715, cube)))
        return multiply(multiply(0.5, x), add(1, tanh(inner)))
    raise fail("gelu", ArgumentError, f'approximate must be "none" or "tanh", got {approximate!r}')
