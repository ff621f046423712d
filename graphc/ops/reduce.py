"""Reductions: sum, prod, max, min, argmax, argmin, cumsum, and axis_size.

Part of the IR core. `axes` attributes are canonical: sorted, non-negative,
distinct (the front end normalizes what the user wrote). Result dtypes are
numpy's: sum, prod and cumsum of bool or int32 give int64. max, min, argmax and
argmin of an empty axis raise: a ShapeError at build time when the size is
known, an InputError at run time otherwise (the same rule runs on the concrete
shapes), never a garbage value.
"""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.registry import NOT_DIFFERENTIABLE, AttrSpec, OpDef, register
from graphc.types import Dim, Shape, TensorType, dim_product, normalize_axis

REDUCE_ATTRS = {"axes": AttrSpec("axes"), "keepdims": AttrSpec("bool", False)}
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


register(
    OpDef(
        "sum",
        _infer_accumulate,
        _reduce_reference("sum"),
        arity=1,
        attrs=REDUCE_ATTRS,
        traits=REDUCTION,
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


def _infer_cumsum(x: TensorType, *, axis: int | None) -> TensorType:
    dtype = _accumulator_dtype(x.dtype)
    if axis is None:
        return TensorType(dtype, (dim_product(x.shape),))
    normalize_axis(axis, x.ndim)
    return TensorType(dtype, x.shape)


def _cumsum(x: np.ndarray, *, axis: int | None) -> np.ndarray:
    dtype = _accumulator_dtype(x.dtype)
    return np.asarray(np.cumsum(x, axis=axis, dtype=dtype))


register(
    OpDef(
        "cumsum",
        _infer_cumsum,
        _cumsum,
        arity=1,
        attrs={"axis": AttrSpec("int_or_none")},
        traits=frozenset({"pure"}),
        doc="numpy.cumsum; axis None runs over the flattened array",
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
