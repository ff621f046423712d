"""Shape ops: reshape, transpose, broadcast_to, expand_dims, squeeze, concatenate,
split, slice, pad and tile.

Part of the IR core. Attributes are canonical (non-negative axes, a full
permutation, one entry per axis for slices and pads); the front end
normalizes what the user wrote, numpy's forms included.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.registry import AttrSpec, OpDef, register
from graphc.types import (
    Dim,
    Sym,
    TensorType,
    computed_dim,
    derived,
    dim_product,
    dim_sum,
    format_shape,
    product_factors,
    unify_dims,
)

VIEW = frozenset({"pure", "view"})


def _infer_reshape(x: TensorType, *, shape: tuple[int, ...]) -> TensorType:
    if sum(d == -1 for d in shape) > 1 or any(d < -1 for d in shape):
        raise ShapeError(f"reshape target {shape} may hold one -1 and sizes >= 0 only")
    target_known = int(np.prod([d for d in shape if d != -1]))
    source_known, source_unknown = product_factors(x.shape)
    total = dim_product(x.shape)
    if -1 not in shape:
        if isinstance(total, int) and total != target_known:
            raise ShapeError(
                f"cannot reshape {total} elements {format_shape(x.shape)} "
                f"into {format_shape(shape)}"
            )
        return x.with_shape(shape)
    if target_known == 0:
        raise ShapeError(f"cannot infer -1 in {format_shape(shape)}: the other sizes are zero")
    if isinstance(total, int):
        if total % target_known:
            raise ShapeError(
                f"cannot reshape {total} elements {format_shape(x.shape)} "
                f"into {format_shape(shape)}"
            )
        missing: Dim = total // target_known
    elif source_known % target_known == 0:
        missing = dim_product([*map(Sym, source_unknown), source_known // target_known])
    else:
        missing = derived("div", total, target_known)
    return x.with_shape(missing if d == -1 else d for d in shape)


def _reshape(x: np.ndarray, *, shape: tuple[int, ...]) -> np.ndarray:
    return x.reshape(shape)


register(
    OpDef(
        "reshape",
        _infer_reshape,
        _reshape,
        arity=1,
        attrs={"shape": AttrSpec("ints")},
        traits=VIEW,
        doc="numpy.reshape (C order); one -1 allowed",
    )
)


def _infer_transpose(x: TensorType, *, perm: tuple[int, ...]) -> TensorType:
    if sorted(perm) != list(range(x.ndim)):
        raise ShapeError(f"{perm} is not a permutation of the {x.ndim} axes")
    return x.with_shape(x.shape[p] for p in perm)


register(
    OpDef(
        "transpose",
        _infer_transpose,
        lambda x, *, perm: np.transpose(x, perm),
        arity=1,
        attrs={"perm": AttrSpec("ints")},
        traits=VIEW,
        doc="numpy.transpose",
    )
)


def _infer_broadcast_to(x: TensorType, *, shape: tuple[int, ...]) -> TensorType:
    if len(shape) < x.ndim or any(d < 0 for d in shape):
        raise ShapeError(f"cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}")
    for source, target in zip(x.shape, shape[len(shape) - x.ndim :], strict=True):
        if source != 1:
            unify_dims(
                source, target, f"cannot broadcast {format_shape(x.shape)} to {format_shape(shape)}"
            )
    return x.with_shape(shape)


register(
    OpDef(
        "broadcast_to",
        _infer_broadcast_to,
        lambda x, *, shape: np.broadcast_to(x, shape),
        arity=1,
        attrs={"shape": AttrSpec("ints")},
        traits=VIEW,
        doc="numpy.broadcast_to",
    )
)


def _infer_expand_dims(x: TensorType, *, axes: tuple[int, ...]) -> TensorType:
    ndim = x.ndim + len(axes)
    if sorted(set(axes)) != list(axes) or any(not 0 <= a < ndim for a in axes):
        raise ShapeError(f"axes {axes} are not sorted distinct axes of the rank-{ndim} result")
    dims = iter(x.shape)
    return x.with_shape(1 if i in axes else next(dims) for i in range(ndim))


register(
    OpDef(
        "expand_dims",
        _infer_expand_dims,
        lambda x, *, axes: np.expand_dims(x, axes),
        arity=1,
        attrs={"axes": AttrSpec("ints")},
        traits=VIEW,
        doc="numpy.expand_dims; axes index the result",
    )
)


def _infer_squeeze(x: TensorType, *, axes: tuple[int, ...]) -> TensorType:
    if sorted(set(axes)) != list(axes) or any(not 0 <= a < x.ndim for a in axes):
        raise ShapeError(f"axes {axes} are not sorted distinct axes of rank {x.ndim}")
    for a in axes:
        unify_dims(x.shape[a], 1, f"cannot squeeze axis {a} of {format_shape(x.shape)}")
    return x.with_shape(d for i, d in enumerate(x.shape) if i not in axes)


register(
    OpDef(
        "squeeze",
        _infer_squeeze,
        lambda x, *, axes: np.squeeze(x, axes),
        arity=1,
        attrs={"axes": AttrSpec("ints")},
        traits=VIEW,
        doc="numpy.squeeze of size-1 axes",
    )
)


def _infer_concatenate(*xs: TensorType, axis: int) -> TensorType:
    if not xs:
        raise ShapeError("needs at least one array")
    first = xs[0]
    if first.ndim == 0 or not 0 <= axis < first.ndim:
        raise ShapeError(f"axis {axis} is out of range for rank {first.ndim}")
    shape = list(first.shape)
    for x in xs[1:]:
        if x.ndim != first.ndim:
            raise ShapeError(f"all inputs need rank {first.ndim}, one has rank {x.ndim}")
        for i, d in enumerate(x.shape):
            if i != axis:
                shape[i] = unify_dims(shape[i], d, f"sizes along axis {i} must match")
    shape[axis] = dim_sum(x.shape[axis] for x in xs)
    return TensorType(dtypes.promote(*(x.dtype for x in xs)), tuple(shape))


def _concatenate(*xs: np.ndarray, axis: int) -> np.ndarray:
    dtype = dtypes.promote(*(x.dtype for x in xs))
    return np.concatenate([x.astype(dtype, copy=False) for x in xs], axis=axis)


register(
    OpDef(
        "concatenate",
        _infer_concatenate,
        _concatenate,
        arity=None,
        attrs={"axis": AttrSpec("int")},
        doc="numpy.concatenate",
    )
)


def slice_length(size: int, start: int | None, stop: int | None, step: int) -> int:
    """The length of range(size)[start:stop:step] (numpy's clamping rules)."""
    return len(range(*slice(start, stop, step).indices(size)))


def _slice_dim(size: Dim, start: int | None, stop: int | None, step: int) -> Dim:
    if start is None and stop is None and step == 1:
        return size
    return computed_dim("slice", slice_length, size, start, stop, step)


def _split_points(size: int, sections: int, indices: tuple[int, ...]) -> list[tuple[int, int]]:
    """(start, stop) of each piece, as numpy.split cuts them."""
    if sections:
        if size % sections:
            raise ShapeError(f"cannot split size {size} into {sections} equal sections")
        cuts = [size // sections * i for i in range(1, sections)]
    else:
        cuts = list(indices)
    bounds = [0, *cuts, size]
    return [(bounds[i], bounds[i + 1]) for i in range(len(bounds) - 1)]


def _infer_split(
    x: TensorType, *, axis: int, sections: int, indices: tuple[int, ...]
) -> tuple[TensorType, ...]:
    if not 0 <= axis < x.ndim:
        raise ShapeError(f"axis {axis} is out of range for rank {x.ndim}")
    if sections < 0 or (sections and indices):
        raise ShapeError("split takes a positive number of sections or cut indices, not both")
    size = x.shape[axis]
    if isinstance(size, Sym):
        if sections:
            piece = computed_dim("divide_evenly", lambda n, k: n // k, size, sections)
            dims: list[Dim] = [piece] * sections
        else:
            bounds = [None, *indices, None]
            dims = [_slice_dim(size, bounds[i], bounds[i + 1], 1) for i in range(len(bounds) - 1)]
    else:
        dims = [
            slice_length(size, start, stop, 1)
            for start, stop in _split_points(size, sections, indices)
        ]
    return tuple(x.with_shape((*x.shape[:axis], d, *x.shape[axis + 1 :])) for d in dims)


def _split(
    x: np.ndarray, *, axis: int, sections: int, indices: tuple[int, ...]
) -> tuple[np.ndarray, ...]:
    return tuple(np.split(x, sections or list(indices), axis=axis))


register(
    OpDef(
        "split",
        _infer_split,
        _split,
        arity=1,
        attrs={
            "axis": AttrSpec("int"),
            "sections": AttrSpec("int", 0),
            "indices": AttrSpec("ints", ()),
        },
        traits=VIEW,
        doc="numpy.split: `sections` equal parts, or cut at `indices` (sections=0)",
    )
)


def _check_per_axis(x: TensorType, **per_axis: Sequence[object]) -> None:
    for key, values in per_axis.items():
        if len(values) != x.ndim:
            raise ShapeError(f"{key} has {len(values)} entries for a rank-{x.ndim} tensor")


def _infer_slice(
    x: TensorType,
    *,
    starts: tuple[int | None, ...],
    stops: tuple[int | None, ...],
    steps: tuple[int, ...],
) -> TensorType:
    _check_per_axis(x, starts=starts, stops=stops, steps=steps)
    if any(s == 0 for s in steps):
        raise ShapeError("slice step cannot be zero")
    bounds = zip(x.shape, starts, stops, steps, strict=True)
    return x.with_shape(_slice_dim(d, start, stop, step) for d, start, stop, step in bounds)


def _slice(
    x: np.ndarray,
    *,
    starts: tuple[int | None, ...],
    stops: tuple[int | None, ...],
    steps: tuple[int, ...],
) -> np.ndarray:
    return x[tuple(slice(*bounds) for bounds in zip(starts, stops, steps, strict=True))]


register(
    OpDef(
        "slice",
        _infer_slice,
        _slice,
        arity=1,
        attrs={
            "starts": AttrSpec("slice_bounds"),
            "stops": AttrSpec("slice_bounds"),
            "steps": AttrSpec("ints"),
        },
        traits=VIEW,
        doc="basic slicing x[start:stop:step, ...], one entry per axis",
    )
)


def _infer_pad(
    x: TensorType, *, pad_width: tuple[tuple[int, int], ...], value: float
) -> TensorType:
    _check_per_axis(x, pad_width=pad_width)
    if any(w < 0 for pair in pad_width for w in pair):
        raise ShapeError(f"pad widths must be >= 0, got {pad_width}")
    return x.with_shape(
        dim_sum((d, before, after)) for d, (before, after) in zip(x.shape, pad_width, strict=True)
    )


def _pad(x: np.ndarray, *, pad_width: tuple[tuple[int, int], ...], value: float) -> np.ndarray:
    return np.pad(x, pad_width, mode="constant", constant_values=np.asarray(value).astype(x.dtype))


register(
    OpDef(
        "pad",
        _infer_pad,
        _pad,
        arity=1,
        attrs={"pad_width": AttrSpec("int_pairs"), "value": AttrSpec("scalar", 0)},
        doc="numpy.pad in constant mode; (before, after) per axis",
    )
)


def _infer_tile(x: TensorType, *, reps: tuple[int, ...]) -> TensorType:
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile repetitions must be >= 0, got {reps}")
    ndim = max(x.ndim, len(reps))
    shape = (1,) * (ndim - x.ndim) + x.shape
    full_reps = (1,) * (ndim - len(reps)) + reps
    return x.with_shape(dim_product((d, r)) for d, r in zip(shape, full_reps, strict=True))


register(
    OpDef(
        "tile",
        _infer_tile,
        lambda x, *, reps: np.tile(x, reps),
        arity=1,
        attrs={"reps": AttrSpec("ints")},
        doc="numpy.tile",
    )
)
