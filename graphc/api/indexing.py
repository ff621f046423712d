"""`Tensor.__getitem__`: ints, negative indices, slices with steps, None, `...` and one
integer index tensor, with numpy's semantics.

Part of the IR core's front end. An index becomes, in order: one `slice` node for
the slices and the ints on known sizes; a `squeeze` (known size) or a `take`
(size known only at run time, so checked then) per int; `expand_dims` for None;
a `take` for the index tensor; and, where numpy moves the advanced-index
dimensions to the front (an int and the tensor separated by a slice), a transpose.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.api._common import fail
from graphc.errors import DTypeError, IndexOutOfRangeError, ShapeError
from graphc.tensor import Tensor, as_tensor, build1, constant


@dataclass
class _Entry:
    kind: str  # "int", "slice", "tensor", "new"
    value: Any = None
    axis: int = -1  # the input axis it consumes; -1 for "new"


def _classify(item: Any) -> _Entry:
    if item is None:
        return _Entry("new")
    if isinstance(item, bool | np.bool_):
        raise fail("getitem", DTypeError, "bool indices are not supported")
    if isinstance(item, int | np.integer):
        return _Entry("int", int(item))
    if isinstance(item, slice):
        for bound in (item.start, item.stop, item.step):
            if bound is not None and not isinstance(bound, int | np.integer):
                raise fail(
                    "getitem", DTypeError, f"slice bounds must be ints or None, got {bound!r}"
                )
        if item.step == 0:
            raise fail("getitem", ShapeError, "slice step cannot be zero")
        return _Entry("slice", item)
    if isinstance(item, Tensor | np.ndarray | list | tuple):
        tensor = as_tensor(item)
        if tensor.dtype.kind != "i":
            raise fail(
                "getitem",
                DTypeError,
                f"an index tensor must be int32 or int64 "
                f"(boolean masks are not supported), "
                f"got {tensor.dtype.name}",
            )
        return _Entry("tensor", tensor)
    raise fail("getitem", DTypeError, f"cannot index with {item!r}")


def _expand_ellipsis(items: tuple[Any, ...], ndim: int) -> list[_Entry]:
    if sum(item is Ellipsis for item in items) > 1:
        raise fail("getitem", IndexOutOfRangeError, "an index can only have one ellipsis")
    entries: list[_Entry | None] = [None if item is Ellipsis else _classify(item) for item in items]
    consumed = sum(1 for e in entries if e is not None and e.kind != "new")
    if consumed > ndim:
        raise fail(
            "getitem",
            IndexOutOfRangeError,
            f"too many indices: {consumed} for a rank-{ndim} tensor",
        )
    fill = [_Entry("slice", slice(None)) for _ in range(ndim - consumed)]
    if None in entries:
        position = entries.index(None)
        expanded = [*entries[:position], *fill, *entries[position + 1 :]]
    else:
        expanded = [*entries, *fill]
    axis = 0
    for entry in expanded:
        assert entry is not None
        if entry.kind != "new":
            entry.axis = axis
            axis += 1
    return expanded  # type: ignore[return-value]


def _basic_slice(x: Tensor, entries: list[_Entry]) -> Tensor:
    """One slice node for every slice, and for ints on axes of known size."""
    starts: list[int | None] = [None] * x.ndim
    stops: list[int | None] = [None] * x.ndim
    steps = [1] * x.ndim
    for entry in entries:
        if entry.kind == "slice":
            starts[entry.axis] = entry.value.start
            stops[entry.axis] = entry.value.stop
            steps[entry.axis] = 1 if entry.value.step is None else entry.value.step
        elif entry.kind == "int" and x.shape[entry.axis] is not None:
            size = x.shape[entry.axis]
            index = entry.value
            if not -size <= index < size:
                raise fail(
                    "getitem",
                    IndexOutOfRangeError,
                    f"index {index} is out of range for axis {entry.axis} of size {size}",
                )
            index %= size
            starts[entry.axis], stops[entry.axis] = index, index + 1
    if all(s is None for s in starts + stops) and all(s == 1 for s in steps):
        return x
    return build1(
        "slice", [x], {"starts": tuple(starts), "stops": tuple(stops), "steps": tuple(steps)}
    )


def getitem(x: Any, index: Any) -> Tensor:
    """x[index] with numpy's semantics, for the index forms graphc supports."""
    x = as_tensor(x)
    items = index if isinstance(index, tuple) else (index,)
    entries = _expand_ellipsis(items, x.ndim)
    tensors = [e for e in entries if e.kind == "tensor"]
    if len(tensors) > 1:
        raise fail(
            "getitem",
            DTypeError,
            "only one index tensor per index is supported; use take or take_along_axis",
        )
    result = _basic_slice(x, entries)
    # drop the int axes, highest first so that lower axis numbers stay valid
    for entry in sorted((e for e in entries if e.kind == "int"), key=lambda e: -e.axis):
        if x.shape[entry.axis] is not None:
            result = build1("squeeze", [result], {"axes": (entry.axis,)})
        else:
            position = constant(np.int64(entry.value))
            result = build1("take", [result, position], {"axis": entry.axis})
    # the remaining entries, in order, each stand for one axis of the result
    layout = [e for e in entries if e.kind != "int"]
    new_axes = tuple(i for i, e in enumerate(layout) if e.kind == "new")
    if new_axes:
        result = build1("expand_dims", [result], {"axes": new_axes})
    if not tensors:
        return result
    tensor_entry = tensors[0]
    position = layout.index(tensor_entry)
    result = build1("take", [result, tensor_entry.value], {"axis": position})
    # numpy puts the advanced-index dims first when the advanced indices (the ints and
    # the tensor) are not next to each other in the index
    advanced = [i for i, e in enumerate(entries) if e.kind in ("int", "tensor")]
    if advanced[-1] - advanced[0] + 1 != len(advanced) and position:
        width = tensor_entry.value.ndim
        moved = list(range(position, position + width))
        rest = [a for a in range(result.ndim) if a not in moved]
        result = build1("transpose", [result], {"perm": tuple(moved + rest)})
    return result
