"""Reductions: sum, prod, max, min, argmax, argmin, cumsum, and axis_size.

Part of the IR core. `axes` attributes are canonical: sorted, non-negative,
distinct (the front end normalizes what the user wrote). Result dtypes are
numpy's: sum, prod and cumsum of bool or int32 give int64. max, min, argmax and
argmin of an empty axis raise: a ShapeError at build time when the size is
known, an InputError at run time otherwise (the same rule runs on the concrete
shapes), never a garbage value.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.registry import NOT_DIFFERENTIABLE, AttrSpec, OpDef, register
from graphc.types import Dim, Shape, TensorType, dim_product, normalize_axis

REDUCE_ATTRS = {"axes": AttrSpec("ints"), "keepdims": AttrSpec("bool", False)}  # (never None)
REDUCTION = frozenset({"pure", "reduction"})


def _check_axes(shape: Shape, axes: tuple[int, ...]) -> None:
    if list(axes) != sorted(set(axes)) or any(not 0 <= a < len(shape) for a in axes):
        raise ShapeError(f"axes {axes} are not sorted distinct axes of a rank-{len(shape)} tensor")


def reduced_shape(shape: Shape, axes: tuple[int, ...], keepdims: bool) -> Shape:
    """The shape left after reducing `axes` (kept as size 1 with keepdims)."""
    _check_axes(shape, axes)
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(shape))
    return tuple(d for i, d in enumerate(shape) if i not in axes)


def _accumulator_dtype(dtype: np.dtype) -> np.dtype:
    """numpy's sum/prod/cumsum dtype: bool and small ints accumulate in int64."""
    return dtypes.int64 if dtype.kind in "bi" else dtype


def _infer_accumulate(x: TensorType, *, axes: tuple[int, ...], keepdims: bool) -> TensorType:
    return TensorType(_accumulator_dtype(x.dtype), reduced_shape(x.shape, axes, keepdims))


def _require_nonempty(shape: Shape, axes: tuple[int, ...], what: str) -> None:
    if any(shape[a] == 0 for a in axes):
        raise ShapeError(
            f"{what} of a zero-size axis has no identity (axes {axes} of "
            f"shape [{','.join(map(str, shape))}])"
        )


def _infer_extremum(x: TensorType, *, axes: tuple[int, ...], keepdims: bool) -> TensorType:
    shape = reduced_shape(x.shape, axes, keepdims)
    _require_nonempty(x.shape, axes, "max/min")
    return TensorType(x.dtype, shape)


def _reduce_reference(function: str):
    numpy_function = getattr(np, function)

    def reference(x: np.ndarray, *, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        dtype = _accumulator_dtype(x.dtype) if function in ("sum", "prod") else x.dtype
        kwargs = {"dtype": dtype} if function in ("sum", "prod") else {}
        result = numpy_function(x, axis=axes, keepdims=keepdims, **kwargs)
        return np.asarray(result).astype(dtype, copy=False)

    return reference


def expand_reduced(api: Any, g: Any, axes: tuple[int, ...], keepdims: bool) -> Any:
    """A reduction's cotangent with the reduced axes back as size 1."""
    if keepdims or not axes:
        return g
    return api.expand_dims(g, axes)


def broadcast_like(api: Any, g: Any, x: Any) -> Any:
    """g broadcast to x's shape (x is read for its shape only)."""
    return api.add(g, api.zeros_like(x, g.dtype))


def _sum_grad(
    api: Any, g: Any, y: Any, x: Any, *, axes: tuple[int, ...], keepdims: bool
) -> list[Any]:
    return [broadcast_like(api, expand_reduced(api, g, axes, keepdims), x)]


def _prod_grad(
    api: Any, g: Any, y: Any, x: Any, *, axes: tuple[int, ...], keepdims: bool
) -> list[Any]:
    """d prod / d x_i = the product of the others, computed without dividing by zero:
    with no zero in the slice it is prod / x_i; with one zero, the zero's entry is the
    product of the rest and the others get 0; with two or more zeros everything is 0."""
    is_zero = api.equal(x, 0)
    nonzero = api.where(is_zero, 1, x)
    product_of_nonzero = api.prod(nonzero, axes, keepdims=True)
    zeros = api.sum(api.cast(is_zero, "int64"), axes, keepdims=True)
    others = api.where(
        api.equal(zeros, 0),
        product_of_nonzero / nonzero,
        api.where(api.logical_and(api.equal(zeros, 1), is_zero), product_of_nonzero, 0),
    )
    return [api.multiply(expand_reduced(api, g, axes, keepdims), others)]


def _extremum_grad(
    api: Any, g: Any, y: Any, x: Any, *, axes: tuple[int, ...], keepdims: bool
) -> list[Any]:
    """The gradient goes to the positions holding the extremum, split evenly among ties."""
    hits = api.equal(x, expand_reduced(api, y, axes, keepdims))
    count = api.sum(api.cast(hits, g.dtype), axes, keepdims=True)
    return [api.where(hits, expand_reduced(api, g, axes, keepdims) / count, 0)]


register(
    OpDef(
        "sum",
        _infer_accumulate,
        _reduce_reference("sum"),
        arity=1,
        attrs=REDUCE_ATTRS,
        traits=REDUCTION,
        grad=_sum_grad,
        doc="numpy.sum",
    )
)
register(
    OpDef(
        "prod",
        _infer_accumulate,
        _reduce_reference("prod"),
        arity=1,
        attrs=REDUCE_ATTRS,
        traits=REDUCTION,
        grad=_prod_grad,
        doc="numpy.prod",
    )
)
register(
    OpDef(
        "max",
        _infer_extremum,
        _reduce_reference("max"),
        arity=1,
        attrs=REDUCE_ATTRS,
        traits=REDUCTION,
        grad=_extremum_grad,
        doc="numpy.max (NaN propagates)",
    )
)
register(
    OpDef(
        "min",
        _infer_extremum,
        _reduce_reference("min"),
        arity=1,
        attrs=REDUCE_ATTRS,
        traits=REDUCTION,
        grad=_extremum_grad,
        doc="numpy.min (NaN propagates)",
    )
)


def _infer_arg(x: TensorType, *, axis: int | None, keepdims: bool) -> TensorType:
    if axis is None:
        _require_nonempty(x.shape, tuple(range(x.ndim)), "argmax/argmin")
        if x.ndim == 0:
            return TensorType(dtypes.int64, ())
        return TensorType(dtypes.int64, (1,) * x.ndim if keepdims else ())
    axis = normalize_axis(axis, x.ndim)
    _require_nonempty(x.shape, (axis,), "argmax/argmin")
    return TensorType(dtypes.int64, reduced_shape(x.shape, (axis,), keepdims))


def _arg_reference(function: str):
    numpy_function = getattr(np, function)

    def reference(x: np.ndarray, *, axis: int | None, keepdims: bool) -> np.ndarray:
        return np.asarray(numpy_function(x, axis=axis, keepdims=keepdims)).astype(np.int64)

    return reference


ARG_ATTRS = {"axis": AttrSpec("int_or_none"), "keepdims": AttrSpec("bool", False)}
register(
    OpDef(
        "argmax",
        _infer_arg,
        _arg_reference("argmax"),
        arity=1,
        attrs=ARG_ATTRS,
        traits=REDUCTION,
        grad=NOT_DIFFERENTIABLE,
        doc="numpy.argmax: int64, the first maximum wins; NaN counts as the maximum",
    )
)
register(
    OpDef(
        "argmin",
        _infer_arg,
        _arg_reference("argmin"),
        arity=1,
        attrs=ARG_ATTRS,
        traits=REDUCTION,
        grad=NOT_DIFFERENTIABLE,
        doc="numpy.argmin: int64, the first minimum wins; NaN counts as the minimum",
    )
)


def _infer_cumsum(x: TensorType, *, axis: int) -> TensorType:
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for rank {x.ndim}")
    return TensorType(_accumulator_dtype(x.dtype), x.shape)


def _cumsum_grad(api: Any, g: Any, y: Any, x: Any, *, axis: int) -> list[Any]:
    """The transpose of a running sum is a running sum from the other end."""
    return [api.flip(api.cumsum(api.flip(g, axis), axis), axis)]


def _cumsum(x: np.ndarray, *, axis: int) -> np.ndarray:
    dtype = _accumulator_dtype(x.dtype)
    return np.asarray(np.cumsum(x, axis=axis, dtype=dtype))


register(
    OpDef(
        "cumsum",
        _infer_cumsum,
        _cumsum,
        arity=1,
        attrs={"axis": AttrSpec("int")},
        traits=frozenset({"pure"}),
        grad=_cumsum_grad,
        doc="numpy.cumsum along one axis (the front end flattens for axis=None)",
    )
)


def _infer_axis_size(x: TensorType, *, axes: tuple[int, ...], dtype: str) -> TensorType:
    _check_axes(x.shape, axes)
    return TensorType(dtypes.as_dtype(dtype), ())


def _axis_size(x: np.ndarray, *, axes: tuple[int, ...], dtype: str) -> np.ndarray:
    sizes: list[Dim] = [x.shape[a] for a in axes]
    return np.asarray(dim_product(sizes), dtype=dtype)


register(
    OpDef(
        "axis_size",
        _infer_axis_size,
        _axis_size,
        arity=1,
        attrs={"axes": AttrSpec("ints"), "dtype": AttrSpec("dtype")},
        traits=frozenset({"pure"}),
        grad=NOT_DIFFERENTIABLE,
        doc="the number of elements along `axes` (reads only the shape); "
        "the front end uses a constant instead when the sizes are known",
    )
)
