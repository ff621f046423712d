"""Gathering and ordering: take, take_along_axis, sort and topk.

Part of the IR core. Indices are int32 or int64; a negative index counts from
the end. An index out of range raises IndexOutOfRangeError (a GraphcError and
an IndexError) before anything is read: nothing is ever read outside an array.
"""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, IndexOutOfRangeError, ShapeError
from graphc.registry import AttrSpec, OpDef, register
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
        doc="the k largest values along an axis and their int64 indices",
    )
)
