"""Shape ops: reshape, transpose, broadcast_to, expand_dims, squeeze, concatenate,
split, slice, pad and tile.

Part of the IR core. Attributes are canonical (non-negative axes, a full
permutation, one entry per axis for slices and pads); the front end
normalizes what the user wrote, numpy's forms included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.registry import AttrSpec, OpDef, register
from graphc.types import (
    Dim,
    Shape,
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


# Gradient rules: grad(api, g, y, *inputs, **attrs), g the cotangent of y (a tuple for
# split), `api` the front end to build with (see registry.OpDef).
# Shape ops move values around, so their gradients move the cotangent back.


def _pad_grad(
    api: Any, g: Any, y: Any, x: Any, *, pad_width: tuple[tuple[int, int], ...], value: float
) -> list[Any]:
    starts = tuple(before for before, _ in pad_width)
    stops = tuple(-after if after else None for _, after in pad_width)
    return [api.build1("slice", [g], {"starts": starts, "stops": stops, "steps": (1,) * x.ndim})]


def _transpose_grad(api: Any, g: Any, y: Any, x: Any, *, perm: tuple[int, ...]) -> list[Any]:
    inverse = tuple(int(i) for i in np.argsort(perm))
    return [api.build1("transpose", [g], {"perm": inverse})]


SHAPE_GRADS: dict[str, Any] = {
    "reshape": lambda api, g, y, x, *, shape: [api.build1("reshape_like", [g, x])],
    "transpose": _transpose_grad,
    "broadcast_to": lambda api, g, y, x, *, shape: [g],  # autodiff sums it back to x's shape
    "expand_dims": lambda api, g, y, x, *, axes: [api.build1("squeeze", [g], {"axes": axes})],
    "squeeze": lambda api, g, y, x, *, axes: [api.build1("expand_dims", [g], {"axes": axes})],
    "concatenate": lambda api, g, y, *xs, axis: list(
        api.build("split_like", [g, *xs], {"axis": axis})
    ),
    "split": lambda api, g, y, x, *, axis, sections, indices: [api.concatenate(list(g), axis)],
    "slice": lambda api, g, y, x, **bounds: [api.build1("slice_scatter", [g, x], bounds)],
    "pad": _pad_grad,
    "tile": lambda api, g, y, x, *, reps: [api.build1("untile", [g, x], {"reps": reps})],
}


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
        grad=SHAPE_GRADS["reshape"],
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
        grad=SHAPE_GRADS["transpose"],
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
        grad=SHAPE_GRADS["broadcast_to"],
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
        grad=SHAPE_GRADS["expand_dims"],
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
        grad=SHAPE_GRADS["squeeze"],
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
        grad=SHAPE_GRADS["concatenate"],
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
        traits=VIEW | {"multiple_outputs"},
        grad=SHAPE_GRADS["split"],
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
        grad=SHAPE_GRADS["slice"],
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
        grad=SHAPE_GRADS["pad"],
        doc="numpy.pad in constant mode; (before, after) per axis",
    )
)


def _tiled_layout(shape: Shape, reps: tuple[int, ...]) -> tuple[Shape, tuple[int, ...]]:
    """tile's view of a shape: both padded with leading 1s to one rank."""
    ndim = max(len(shape), len(reps))
    return (1,) * (ndim - len(shape)) + shape, (1,) * (ndim - len(reps)) + reps


def _infer_tile(x: TensorType, *, reps: tuple[int, ...]) -> TensorType:
    if any(r < 0 for r in reps):
        raise ShapeError(f"tile repetitions must be >= 0, got {reps}")
    shape, full_reps = _tiled_layout(x.shape, reps)
    return x.with_shape(dim_product((d, r)) for d, r in zip(shape, full_reps, strict=True))


register(
    OpDef(
        "tile",
        _infer_tile,
        lambda x, *, reps: np.tile(x, reps),
        arity=1,
        attrs={"reps": AttrSpec("ints")},
        grad=SHAPE_GRADS["tile"],
        doc="numpy.tile",
    )
)


# Gradients, and the shape-reading primitives they need: their sizes may be known only at
# run time, so the primitives take a `like` input whose shape they copy.


def _infer_sum_to(g: TensorType, like: TensorType) -> TensorType:
    if like.ndim > g.ndim:
        raise ShapeError(f"cannot sum {format_shape(g.shape)} to {format_shape(like.shape)}")
    for target, size in zip(like.shape, g.shape[g.ndim - like.ndim :], strict=True):
        if target != 1:
            unify_dims(
                target, size, f"cannot sum {format_shape(g.shape)} to {format_shape(like.shape)}"
            )
    return TensorType(g.dtype, like.shape)


def _sum_to(g: np.ndarray, like: np.ndarray) -> np.ndarray:
    leading = tuple(range(g.ndim - like.ndim))
    result = g.sum(axis=leading) if leading else g
    broadcast = tuple(
        i
        for i, (t, s) in enumerate(zip(like.shape, result.shape, strict=True))
        if t == 1 and s != 1
    )
    return np.asarray(result.sum(axis=broadcast, keepdims=True)).astype(g.dtype, copy=False)


def _sum_to_grad(api: Any, g: Any, y: Any, x: Any, like: Any) -> list[Any]:
    return [api.add(g, api.zeros_like(x, g.dtype)), None]


register(
    OpDef(
        "sum_to",
        _infer_sum_to,
        _sum_to,
        arity=2,
        grad=_sum_to_grad,
        doc="g summed over the axes along which `like` was broadcast to g's shape "
        "(the transpose of broadcasting; reads only like's shape)",
    )
)


def _infer_reshape_like(x: TensorType, like: TensorType) -> TensorType:
    source, target = dim_product(x.shape), dim_product(like.shape)
    if isinstance(source, int) and isinstance(target, int) and source != target:
        raise ShapeError(f"cannot reshape {format_shape(x.shape)} to {format_shape(like.shape)}")
    return TensorType(x.dtype, like.shape)


register(
    OpDef(
        "reshape_like",
        _infer_reshape_like,
        lambda x, like: x.reshape(like.shape),
        arity=2,
        traits=VIEW,
        grad=lambda api, g, y, x, like: [api.build1("reshape_like", [g, x]), None],
        doc="x reshaped to like's shape (reads only like's shape)",
    )
)


def _infer_split_like(x: TensorType, *likes: TensorType, axis: int) -> tuple[TensorType, ...]:
    if not 0 <= axis < x.ndim or any(like.ndim != x.ndim for like in likes):
        raise ShapeError(f"split_like needs rank-{x.ndim} likes and an axis of them")
    unify_dims(
        x.shape[axis],
        dim_sum(like.shape[axis] for like in likes),
        "the pieces must add up to x along the axis",
    )
    return tuple(
        x.with_shape((*x.shape[:axis], like.shape[axis], *x.shape[axis + 1 :])) for like in likes
    )


def _split_like(x: np.ndarray, *likes: np.ndarray, axis: int) -> tuple[np.ndarray, ...]:
    cuts = np.cumsum([like.shape[axis] for like in likes])[:-1]
    return tuple(np.split(x, cuts, axis=axis))


register(
    OpDef(
        "split_like",
        _infer_split_like,
        _split_like,
        arity=None,
        attrs={"axis": AttrSpec("int")},
        traits=VIEW | {"multiple_outputs"},
        grad=lambda api, g, y, x, *likes, axis: [
            api.concatenate(list(g), axis),
            *([None] * len(likes)),
        ],
        doc="x cut along `axis` into pieces as long as each like (the transpose of "
        "concatenate; reads only the likes' shapes)",
    )
)


def _infer_slice_scatter(g: TensorType, like: TensorType, **bounds: Any) -> TensorType:
    sliced = _infer_slice(like, **bounds)
    for a, b in zip(sliced.shape, g.shape, strict=True):
        unify_dims(a, b, "g must have the shape of the slice")
    if g.ndim != like.ndim:
        raise ShapeError("g must have the rank of like")
    return TensorType(g.dtype, like.shape)


def _slice_scatter(g: np.ndarray, like: np.ndarray, **bounds: Any) -> np.ndarray:
    result = np.zeros(like.shape, g.dtype)
    index = tuple(
        slice(*b) for b in zip(bounds["starts"], bounds["stops"], bounds["steps"], strict=True)
    )
    result[index] = g
    return result


SLICE_ATTRS = {
    "starts": AttrSpec("slice_bounds"),
    "stops": AttrSpec("slice_bounds"),
    "steps": AttrSpec("ints"),
}

register(
    OpDef(
        "slice_scatter",
        _infer_slice_scatter,
        _slice_scatter,
        arity=2,
        attrs=SLICE_ATTRS,
        grad=lambda api, g, y, x, like, **bounds: [api.build1("slice", [g], bounds), None],
        doc="zeros of like's shape with g written into the slice (the transpose of slice)",
    )
)


def _infer_untile(g: TensorType, like: TensorType, *, reps: tuple[int, ...]) -> TensorType:
    tiled = _infer_tile(like, reps=reps)
    if tiled.ndim != g.ndim:
        raise ShapeError(f"g {format_shape(g.shape)} is not {format_shape(like.shape)} tiled")
    for a, b in zip(tiled.shape, g.shape, strict=True):
        unify_dims(a, b, "g must have the tiled shape")
    return TensorType(g.dtype, like.shape)


def _untile(g: np.ndarray, like: np.ndarray, *, reps: tuple[int, ...]) -> np.ndarray:
    shape, full_reps = _tiled_layout(like.shape, reps)
    interleaved = [d for pair in zip(full_reps, shape, strict=True) for d in pair]
    summed = g.reshape(interleaved).sum(axis=tuple(range(0, 2 * len(shape), 2)))
    return np.asarray(summed.reshape(like.shape)).astype(g.dtype, copy=False)


register(
    OpDef(
        "untile",
        _infer_untile,
        _untile,
        arity=2,
        attrs={"reps": AttrSpec("ints")},
        grad=lambda api, g, y, x, like, *, reps: [api.tile(g, reps), None],
        doc="the sum of g's tiles, in like's shape (the transpose of tile)",
    )
)
