"""Shape and gathering op functions: reshape, transpose, broadcast_to, expand_dims,
squeeze, concatenate, stack, split, take, take_along_axis, one_hot, pad, flip, tile,
arange, sort and topk.

Part of the IR core's front end. Arguments take numpy's forms and are normalized
here into the canonical attributes the primitives expect.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.api._common import axes_of, axis_of, fail
from graphc.api.elementwise import cast, equal
from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from graphc.tensor import Tensor, as_tensor, as_tensors, build, build1, constant

__all__ = [
    "arange",
    "argsort",
    "broadcast_to",
    "concatenate",
    "expand_dims",
    "flip",
    "one_hot",
    "pad",
    "reshape",
    "sort",
    "split",
    "squeeze",
    "stack",
    "take",
    "take_along_axis",
    "tile",
    "topk",
    "transpose",
]


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def _ints(op: str, name: str, values: Any) -> tuple[int, ...]:
    """An int or a sequence of ints as a tuple of ints."""
    if _is_int(values):
        return (int(values),)
    if isinstance(values, Sequence | np.ndarray) and all(_is_int(v) for v in values):
        return tuple(int(v) for v in values)
    raise fail(op, ShapeError, f"{name} must be an int or a sequence of ints, got {values!r}")


def reshape(x: Any, shape: Any) -> Tensor:
    """x with a new shape of the same number of elements (C order); one -1 is inferred."""
    x = as_tensor(x)
    if isinstance(shape, Sequence) and any(d is None for d in shape):
        raise fail("reshape", ShapeError, "use -1, not None, for the one inferred size")
    return build1("reshape", [x], {"shape": _ints("reshape", "shape", shape)})


def transpose(x: Any, axes: Sequence[int] | None = None) -> Tensor:
    """x with its axes permuted (reversed when `axes` is None)."""
    x = as_tensor(x)
    if axes is None:
        perm = tuple(reversed(range(x.ndim)))
    else:
        perm = tuple(axis_of("transpose", a, x.ndim) for a in _ints("transpose", "axes", axes))
        if sorted(perm) != list(range(x.ndim)):
            raise fail(
                "transpose", ShapeError, f"{tuple(axes)} is not a permutation of {x.ndim} axes"
            )
    return build1("transpose", [x], {"perm": perm})


def broadcast_to(x: Any, shape: Any) -> Tensor:
    """x broadcast to `shape` (known sizes), as numpy.broadcast_to."""
    x = as_tensor(x)
    if isinstance(shape, Sequence) and any(d is None for d in shape):
        raise fail(
            "broadcast_to",
            ShapeError,
            "the target shape needs known sizes; to follow another tensor's shape, "
            "add zeros_like(other)",
        )
    return build1("broadcast_to", [x], {"shape": _ints("broadcast_to", "shape", shape)})


def expand_dims(x: Any, axis: Any) -> Tensor:
    """x with size-1 axes inserted at `axis` (an int or a tuple, indexing the result)."""
    x = as_tensor(x)
    requested = _ints("expand_dims", "axis", axis)
    axes = axes_of("expand_dims", requested, x.ndim + len(requested))
    return build1("expand_dims", [x], {"axes": axes})


def squeeze(x: Any, axis: Any = None) -> Tensor:
    """x without the size-1 axes `axis`; None removes every axis known to have size 1."""
    x = as_tensor(x)
    if axis is None:
        axes = tuple(i for i, d in enumerate(x.type.shape) if d == 1)
    else:
        axes = axes_of("squeeze", _ints("squeeze", "axis", axis), x.ndim)
    return build1("squeeze", [x], {"axes": axes})


def _tensor_list(op: str, values: Any) -> tuple[Tensor, ...]:
    if isinstance(values, Tensor) or not isinstance(values, Sequence) or not values:
        raise fail(op, ShapeError, "needs a non-empty list or tuple of tensors")
    return as_tensors(*values)


def concatenate(xs: Sequence[Any], axis: int | None = 0) -> Tensor:
    """The tensors joined along an existing axis (None: flattened first)."""
    tensors = _tensor_list("concatenate", xs)
    if axis is None:
        tensors = tuple(reshape(t, (-1,)) for t in tensors)
        axis = 0
    if tensors[0].ndim == 0:
        raise fail("concatenate", ShapeError, "0-d tensors cannot be concatenated")
    return build1("concatenate", tensors, {"axis": axis_of("concatenate", axis, tensors[0].ndim)})


def stack(xs: Sequence[Any], axis: int = 0) -> Tensor:
    """The tensors (all of one shape) joined along a new axis."""
    tensors = _tensor_list("stack", xs)
    new_axis = axis_of("stack", axis, tensors[0].ndim + 1)
    expanded = [build1("expand_dims", [t], {"axes": (new_axis,)}) for t in tensors]
    return build1("concatenate", expanded, {"axis": new_axis})


def split(x: Any, indices_or_sections: Any, axis: int = 0) -> list[Tensor]:
    """x cut along `axis`: an int is a number of equal parts, a list holds cut points."""
    x = as_tensor(x)
    axis = axis_of("split", axis, x.ndim)
    if _is_int(indices_or_sections):
        if indices_or_sections <= 0:
            raise fail("split", ArgumentError, "the number of sections must be > 0")
        attrs = {"axis": axis, "sections": int(indices_or_sections)}
    else:
        attrs = {"axis": axis, "indices": _ints("split", "indices", indices_or_sections)}
    return list(build("split", [x], attrs))


def _index_tensor(op: str, indices: Any) -> Tensor:
    indices = as_tensor(indices)
    if indices.dtype.kind != "i":
        raise fail(op, DTypeError, f"indices must be int32 or int64, got {indices.dtype.name}")
    return indices


def take(x: Any, indices: Any, axis: int | None = None) -> Tensor:
    """Elements of x at `indices` along `axis` (None: of the flattened x); negative
    indices count from the end; an index out of range raises IndexOutOfRangeError."""
    x = as_tensor(x)
    indices = _index_tensor("take", indices)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return build1("take", [x, indices], {"axis": axis_of("take", axis, x.ndim)})


def take_along_axis(x: Any, indices: Any, axis: int | None) -> Tensor:
    """numpy.take_along_axis: pick along `axis` with indices of x's rank."""
    x = as_tensor(x)
    indices = _index_tensor("take_along_axis", indices)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return build1(
        "take_along_axis", [x, indices], {"axis": axis_of("take_along_axis", axis, x.ndim)}
    )


def one_hot(indices: Any, depth: int, dtype: Any = "float32") -> Tensor:
    """indices.shape + (depth,), 1 at each index and 0 elsewhere; an index outside
    [0, depth) gives an all-zero row."""
    indices = _index_tensor("one_hot", indices)
    if not _is_int(depth) or depth < 0:
        raise fail("one_hot", ArgumentError, f"depth must be an int >= 0, got {depth!r}")
    try:
        positions = constant(np.arange(int(depth), dtype=indices.dtype))
    except (ValueError, OverflowError, MemoryError) as error:
        raise fail("one_hot", ArgumentError, f"depth {depth}: {error}") from None
    column = build1("expand_dims", [indices], {"axes": (indices.ndim,)})
    return cast(equal(column, positions), dtype)


def _pad_width(op: str, pad_width: Any, ndim: int) -> tuple[tuple[int, int], ...]:
    """numpy's forms of pad_width: n, (n,), (before, after), ((b, a),), or one pair per axis."""
    try:
        array = np.asarray(pad_width)
    except (ValueError, TypeError, OverflowError):
        array = np.asarray(None)  # refused below
    if array.dtype.kind not in "iu" or array.ndim > 2 or (array.ndim == 2 and array.shape[1] != 2):
        raise fail(op, ShapeError, f"pad_width must be ints in numpy's forms, got {pad_width!r}")
    try:
        pairs = np.broadcast_to(array.reshape(-1, 2) if array.ndim == 2 else array, (ndim, 2))
    except ValueError:
        raise fail(op, ShapeError, f"pad_width {pad_width!r} does not fit {ndim} axes") from None
    return tuple((int(b), int(a)) for b, a in pairs)


def pad(x: Any, pad_width: Any, constant_values: float = 0) -> Tensor:
    """x padded with `constant_values` (numpy.pad, constant mode)."""
    x = as_tensor(x)
    if not isinstance(constant_values, int | float | np.number):
        raise fail("pad", ArgumentTypeError, "constant_values must be a number")
    try:
        value = np.asarray(constant_values).astype(x.dtype).item()
    except (OverflowError, TypeError, ValueError) as error:
        raise fail("pad", ArgumentError, f"constant_values {constant_values!r}: {error}") from None
    return build1("pad", [x], {"pad_width": _pad_width("pad", pad_width, x.ndim), "value": value})


def flip(x: Any, axis: Any = None) -> Tensor:
    """x with the order of elements reversed along `axis` (None: every axis)."""
    x = as_tensor(x)
    axes = axes_of("flip", axis, x.ndim)
    starts = tuple(None for _ in range(x.ndim))
    steps = tuple(-1 if a in axes else 1 for a in range(x.ndim))
    return build1("slice", [x], {"starts": starts, "stops": starts, "steps": steps})


def tile(x: Any, reps: Any) -> Tensor:
    """x repeated `reps` times along each axis (numpy.tile)."""
    return build1("tile", [as_tensor(x)], {"reps": _ints("tile", "reps", reps)})


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> Tensor:
    """numpy.arange as a constant; the arguments must be numbers."""
    for value in (start, stop, step):
        if value is not None and not isinstance(value, int | float | np.number):
            raise fail("arange", ArgumentTypeError, f"arange takes numbers only, got {value!r:.60}")
    if start is None:
        raise fail("arange", ArgumentTypeError, "arange needs a start (or a stop) number")
    try:
        values = np.arange(start, stop, step) if stop is not None else np.arange(start, step=step)
    except (ValueError, ZeroDivisionError, OverflowError, MemoryError) as error:
        raise fail("arange", ArgumentError, str(error)) from None
    return constant(values, dtype)


def sort(x: Any, axis: int | None = -1) -> Tensor:
    """x sorted ascending along `axis` (None: the flattened x); NaN sorts last."""
    x = as_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return build1("sort", [x], {"axis": axis_of("sort", axis, x.ndim)})


def argsort(x: Any, axis: int | None = -1) -> Tensor:
    """int64 indices that sort x ascending along `axis` (stable; NaN last; None: flattened)."""
    x = as_tensor(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    return build1("argsort", [x], {"axis": axis_of("argsort", axis, x.ndim)})


def topk(x: Any, k: int, axis: int = -1) -> tuple[Tensor, Tensor]:
    """The k largest values along `axis`, largest first, and their int64 indices."""
    x = as_tensor(x)
    if not _is_int(k) or k < 0:
        raise fail("topk", ArgumentError, f"k must be an int >= 0, got {k!r}")
    values, indices = build("topk", [x], {"k": int(k), "axis": axis_of("topk", axis, x.ndim)})
    return values, indices
