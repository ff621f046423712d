"""Gathering and ordering: take, take_along_axis, sort and topk.

Part of the IR core. Indices are int32 or int64; a negative index counts from
the end. An index out of range raises IndexOutOfRangeError (a GraphcError and
an IndexError) before anything is read: nothing is ever read outside an array.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, IndexOutOfRangeError, ShapeError
from graphc.registry import NOT_DIFFERENTIABLE, AttrSpec, OpDef, register
from graphc.types import Dim, TensorType, broadcast_dim, unify_dims

AXIS = {"axis": AttrSpec("int")}


def _check_axis(x: TensorType, axis: int) -> None:
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for rank {x.ndim}")


def _check_indices_dtype(indices: TensorType) -> None:
    if indices.dtype.kind != "i":
        raise DTypeError(f"indices must be int32 or int64, got {indices.dtype.name}")


def checked_indices(indices: np.ndarray, size: int, what: str) -> np.ndarray:
    """`indices` with negatives wrapped; raises IndexOutOfRangeError outside [-size, size)."""
    indices = indices.astype(np.int64, copy=False)
    if indices.size and (indices.min() < -size or indices.max() >= size):
        bad = indices[(indices < -size) | (indices >= size)].flat[0]
        raise IndexOutOfRangeError(f"{what}: index {bad} is out of range for size {size}")
    return np.where(indices < 0, indices + size, indices)


# Gradient rules: gathering routes the cotangent back to where each value came from.


def _take_grad(api: Any, g: Any, y: Any, x: Any, indices: Any, *, axis: int) -> list[Any]:
    return [api.build1("index_add", [g, indices, x], {"axis": axis}), None]


def _take_along_axis_grad(
    api: Any, g: Any, y: Any, x: Any, indices: Any, *, axis: int, broadcast: bool
) -> list[Any]:
    # the scatter has g's shape off the axis; autodiff sums it back over broadcast dims
    return [api.build1("scatter_add", [g, indices, x], {"axis": axis}), None]


def _sort_grad(api: Any, g: Any, y: Any, x: Any, *, axis: int) -> list[Any]:
    order = api.build1("argsort", [x], {"axis": axis})
    return [api.build1("scatter_add", [g, order, x], {"axis": axis})]


def _topk_grad(api: Any, g: Any, y: Any, x: Any, *, k: int, axis: int) -> list[Any]:
    (values_grad, _), (_, indices) = g, y
    return [api.build1("scatter_add", [values_grad, indices, x], {"axis": axis})]


def _infer_take(x: TensorType, indices: TensorType, *, axis: int) -> TensorType:
    _check_axis(x, axis)
    _check_indices_dtype(indices)
    return x.with_shape((*x.shape[:axis], *indices.shape, *x.shape[axis + 1 :]))


def _take(x: np.ndarray, indices: np.ndarray, *, axis: int) -> np.ndarray:
    return np.take(x, checked_indices(indices, x.shape[axis], "take"), axis=axis)


register(
    OpDef(
        "take",
        _infer_take,
        _take,
        arity=2,
        attrs=AXIS,
        grad=_take_grad,
        doc="numpy.take along one axis (the front end flattens for axis=None)",
    )
)


def _infer_take_along_axis(
    x: TensorType, indices: TensorType, *, axis: int, broadcast: bool
) -> TensorType:
    _check_axis(x, axis)
    _check_indices_dtype(indices)
    if indices.ndim != x.ndim:
        raise ShapeError(f"indices need the rank of x ({x.ndim}), got rank {indices.ndim}")

    def other_dim(x_dim: Dim, i_dim: Dim) -> Dim:
        if broadcast:
            return broadcast_dim(x_dim, i_dim)
        return unify_dims(x_dim, i_dim, "indices and x must agree off the axis")

    shape = tuple(
        i_dim if a == axis else other_dim(x_dim, i_dim)
        for a, (x_dim, i_dim) in enumerate(zip(x.shape, indices.shape, strict=True))
    )
    return x.with_shape(shape)


def _take_along_axis(
    x: np.ndarray, indices: np.ndarray, *, axis: int, broadcast: bool
) -> np.ndarray:
    wrapped = checked_indices(indices, x.shape[axis], "take_along_axis")
    return np.take_along_axis(x, wrapped, axis=axis)


register(
    OpDef(
        "take_along_axis",
        _infer_take_along_axis,
        _take_along_axis,
        arity=2,
        attrs={**AXIS, "broadcast": AttrSpec("bool", True)},
        grad=_take_along_axis_grad,
        doc="numpy.take_along_axis; with broadcast=False the non-axis sizes must be "
        "equal (cross-entropy's labels), not merely broadcastable",
    )
)


def _infer_sort(x: TensorType, *, axis: int) -> TensorType:
    _check_axis(x, axis)
    return x


register(
    OpDef(
        "sort",
        _infer_sort,
        lambda x, *, axis: np.sort(x, axis=axis),
        arity=1,
        attrs=AXIS,
        grad=_sort_grad,
        doc="numpy.sort, ascending, NaN last",
    )
)


def _infer_topk(x: TensorType, *, k: int, axis: int) -> tuple[TensorType, TensorType]:
    _check_axis(x, axis)
    if k < 0:
        raise ShapeError(f"k must be >= 0, got {k}")
    if isinstance(x.shape[axis], int) and k > x.shape[axis]:
        raise ShapeError(f"k={k} is larger than the size {x.shape[axis]} of axis {axis}")
    shape = (*x.shape[:axis], k, *x.shape[axis + 1 :])
    return x.with_shape(shape), TensorType(dtypes.int64, shape)


def _topk(x: np.ndarray, *, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """The k largest along `axis`, largest first; NaN counts as largest; ties keep index order."""
    size = x.shape[axis]
    if k > size:
        raise ShapeError(f"k={k} is larger than the size {size} of axis {axis}")
    # a stable ascending sort of the reversed axis, read backwards, is a descending
    # sort in which equal values keep their original order
    ascending = np.argsort(np.flip(x, axis), axis=axis, kind="stable")
    order = (size - 1) - np.flip(ascending, axis)
    indices = np.take(order, np.arange(k), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices.astype(np.int64)


register(
    OpDef(
        "topk",
        _infer_topk,
        _topk,
        arity=1,
        attrs={"k": AttrSpec("int"), "axis": AttrSpec("int")},
        grad=_topk_grad,
        traits=frozenset({"pure", "multiple_outputs"}),
        doc="the k largest values along an axis and their int64 indices",
    )
)


# The transposes of gathering, for gradients: scatter-adds into zeros of like's shape.


def _infer_index_add(
    g: TensorType, indices: TensorType, like: TensorType, *, axis: int
) -> TensorType:
    taken = _infer_take(like, indices, axis=axis)
    if taken.ndim != g.ndim:
        raise ShapeError(f"g must have the shape of take(like, indices), {taken}")
    for a, b in zip(taken.shape, g.shape, strict=True):
        unify_dims(a, b, "g must have the shape of take(like, indices)")
    return TensorType(g.dtype, like.shape)


def _index_add(g: np.ndarray, indices: np.ndarray, like: np.ndarray, *, axis: int) -> np.ndarray:
    result = np.zeros(like.shape, g.dtype)
    wrapped = checked_indices(indices, like.shape[axis], "index_add")
    np.add.at(result, (slice(None),) * axis + (wrapped,), g)  # repeated indices accumulate
    return result


register(
    OpDef(
        "index_add",
        _infer_index_add,
        _index_add,
        arity=3,
        attrs=AXIS,
        grad=lambda api, g, y, gy, indices, like, *, axis: [
            api.take(g, indices, axis),
            None,
            None,
        ],
        doc="zeros of like's shape with g's slices added at `indices` along `axis` "
        "(the transpose of take)",
    )
)


def _infer_scatter_add(
    g: TensorType, indices: TensorType, like: TensorType, *, axis: int
) -> TensorType:
    _check_axis(g, axis)
    _check_indices_dtype(indices)
    if indices.ndim != g.ndim or like.ndim != g.ndim:
        raise ShapeError("g, indices and like need one rank")
    unify_dims(indices.shape[axis], g.shape[axis], "indices and g must agree along the axis")
    for a, (i_dim, g_dim) in enumerate(zip(indices.shape, g.shape, strict=True)):
        if a != axis and i_dim != 1:
            unify_dims(i_dim, g_dim, "indices must broadcast to g off the axis")
    return g.with_shape((*g.shape[:axis], like.shape[axis], *g.shape[axis + 1 :]))


def _scatter_add(g: np.ndarray, indices: np.ndarray, like: np.ndarray, *, axis: int) -> np.ndarray:
    shape = (*g.shape[:axis], like.shape[axis], *g.shape[axis + 1 :])
    result = np.zeros(shape, g.dtype)
    wrapped = np.broadcast_to(checked_indices(indices, like.shape[axis], "scatter_add"), g.shape)
    grid = list(np.ix_(*(np.arange(n) for n in g.shape))) if g.ndim else []
    grid[axis] = wrapped
    np.add.at(result, tuple(grid), g)
    return result


register(
    OpDef(
        "scatter_add",
        _infer_scatter_add,
        _scatter_add,
        arity=3,
        attrs=AXIS,
        grad=lambda api, g, y, gy, indices, like, *, axis: [
            api.take_along_axis(g, indices, axis),
            None,
            None,
        ],
        doc="zeros with like's size along `axis` (g's elsewhere), g added at `indices` "
        "along the axis (the transpose of take_along_axis)",
    )
)


def _argsort(x: np.ndarray, *, axis: int) -> np.ndarray:
    return np.argsort(x, axis=axis, kind="stable").astype(np.int64)


def _infer_argsort(x: TensorType, *, axis: int) -> TensorType:
    _check_axis(x, axis)
    return x.with_dtype(dtypes.int64)


register(
    OpDef(
        "argsort",
        _infer_argsort,
        _argsort,
        arity=1,
        attrs=AXIS,
        grad=NOT_DIFFERENTIABLE,
        doc="numpy.argsort, stable: the int64 indices that sort x ascending, NaN last",
    )
)
