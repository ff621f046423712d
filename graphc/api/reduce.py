"""Reduction op functions: sum, mean, prod, max, min, argmax, argmin, logsumexp, var,
std and cumsum.

Part of the IR core's front end. mean, var, std and logsumexp are composites;
integer inputs are computed in float64, as numpy does.
"""

from __future__ import annotations

from typing import Any

from graphc import dtypes
from graphc.api._common import axes_of, axis_of, flag
from graphc.api.elementwise import (
    add,
    divide,
    exp,
    isfinite,
    log,
    maximum,
    multiply,
    sqrt,
    stop_gradient,
    subtract,
    where,
)
from graphc.tensor import Tensor, as_tensor, build1, constant
from graphc.types import dim_product

__all__ = [
    "argmax",
    "argmin",
    "count",
    "cumsum",
    "logsumexp",
    "max",
    "mean",
    "min",
    "prod",
    "std",
    "sum",
    "var",
]


def _reduce(op: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    x = as_tensor(x)
    axes, keep = axes_of(op, axis, x.ndim), flag(op, "keepdims", keepdims)
    return build1(op, [x], {"axes": axes, "keepdims": keep})


def sum(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The sum over `axis` (None: all; an int or a tuple); bool and int32 sum in int64."""
    return _reduce("sum", x, axis, keepdims)


def prod(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The product over `axis`; bool and int32 multiply in int64."""
    return _reduce("prod", x, axis, keepdims)


def max(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The maximum over `axis`; NaN propagates; an empty axis is an error."""
    return _reduce("max", x, axis, keepdims)


def min(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The minimum over `axis`; NaN propagates; an empty axis is an error."""
    return _reduce("min", x, axis, keepdims)


def _arg(op: str, x: Any, axis: Any, keepdims: bool) -> Tensor:
    x = as_tensor(x)
    normalized = None if axis is None else axis_of(op, axis, x.ndim)
    return build1(op, [x], {"axis": normalized, "keepdims": flag(op, "keepdims", keepdims)})


def argmax(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """int64 index of the first maximum along `axis` (None: of the flattened array)."""
    return _arg("argmax", x, axis, keepdims)


def argmin(x: Any, axis: int | None = None, keepdims: bool = False) -> Tensor:
    """int64 index of the first minimum along `axis` (None: of the flattened array)."""
    return _arg("argmin", x, axis, keepdims)


def cumsum(x: Any, axis: int | None = None) -> Tensor:
    """The running sum along `axis` (None: over the flattened array)."""
    x = as_tensor(x)
    if axis is None:
        x, axis = build1("reshape", [x], {"shape": (-1,)}), 0
    return build1("cumsum", [x], {"axis": axis_of("cumsum", axis, x.ndim)})


def count(x: Any, axis: Any = None, dtype: Any = "int64") -> Tensor:
    """The number of elements of x over `axis`, as a 0-d tensor of `dtype`.

    A constant when the sizes are known at build time; else read from x's shape at run time.
    """
    x = as_tensor(x)
    axes = axes_of("count", axis, x.ndim)
    resolved = dtypes.as_dtype(dtype)
    size = dim_product(x.type.shape[a] for a in axes)
    if isinstance(size, int):
        return constant(size, resolved)
    return build1("axis_size", [x], {"axes": axes, "dtype": resolved.name})


def as_float(x: Any) -> Tensor:
    """x in numpy's float dtype for statistics: ints and bool become float64."""
    x = as_tensor(x)
    return x if dtypes.is_float(x.dtype) else build1("cast", [x], {"dtype": "float64"})


def mean(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """The arithmetic mean over `axis`; integers give float64; an empty axis gives NaN."""
    x = as_float(x)
    return divide(sum(x, axis, keepdims), count(x, axis, x.dtype))


def var(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """The variance over `axis`, dividing by max(n - ddof, 0) as numpy does."""
    x = as_float(x)
    centered = subtract(x, mean(x, axis, keepdims=True))
    total = sum(multiply(centered, centered), axis, keepdims)
    return divide(total, maximum(subtract(count(x, axis, x.dtype), ddof), 0))


def std(x: Any, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
    """The standard deviation: sqrt(var(x, axis, ddof))."""
    return sqrt(var(x, axis, ddof, keepdims))


def finite_max(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    """max over `axes` (kept as size 1) with non-finite maxima replaced by 0, gradient-free.

    Subtracting it before exp keeps exp from overflowing; replacing an infinite
    maximum by 0 keeps inf - inf from making NaN where the answer is +-inf.
    """
    top = build1("max", [x], {"axes": axes, "keepdims": True})
    return stop_gradient(where(isfinite(top), top, 0))


def logsumexp(x: Any, axis: Any = None, keepdims: bool = False) -> Tensor:
    """log(sum(exp(x))) over `axis`, computed without overflow."""
    x = as_float(x)
    axes = axes_of("logsumexp", axis, x.ndim)
    shift = finite_max(x, axes)
    total = build1("sum", [exp(subtract(x, shift))], {"axes": axes, "keepdims": True})
    result = add(log(total), shift)
    if flag("logsumexp", "keepdims", keepdims):
        return result
    return build1("squeeze", [result], {"axes": axes})
