"""Array kernels of the CPU backend: gathering, scattering, ordering, running sums and copies.

Part of graphc.kernels. The numba kernels here serve take, take_along_axis, index_add,
scatter_add, sort, argsort, topk, cumsum, concatenate, pad, tile, untile, slice_scatter
and sum_to; their emitters, at the bottom, are registered by op name and reached from
generated code as ``ak``.

One compiled kernel serves every rank. An op that works along one axis sees each operand
as a 3-D array ``(outer, axis, inner)``: ``outer`` is the product of the sizes before the
axis and ``inner`` the product of those after it, so a C-contiguous array of any rank
reshapes to it without a copy. The emitters make the inputs C-contiguous first
(``np.ascontiguousarray`` copies only views that are not) and reshape with explicit sizes,
never -1, which numba cannot infer for a zero-size array.

Ops that move whole blocks (tile, untile, sum_to) walk one C-ordered, flattened array and
read or accumulate into another whose element offsets follow the walk's coordinates on some
of the axes only (``broadcast_into`` and ``reduce_into``): broadcasting and its transpose,
summation; pad and slice_scatter write one array into a strided part of another
(``place_strided``).

Guarantees the references set and the kernels keep:

- Indices are checked before anything is written: an index outside ``[-size, size)``
  raises IndexError (numba does no bounds checking, so an unchecked index would read or
  write outside the array); a negative index counts from the end.
- sort, argsort and topk order floats as numpy does, NaN after every number (topk: NaN
  counts as the largest). argsort is stable, and topk keeps equal values in index order:
  both use a stable merge sort of their own. sort uses numba's in-place sort.
- Repeated indices of index_add and scatter_add accumulate in index order, as numpy's
  ``add.at`` does, and cumsum adds in order, so their float results equal numpy's bit for
  bit. untile and sum_to add in order too, where numpy sums pairwise: their float results
  may differ from numpy's in the last bits.
"""

from __future__ import annotations

import numpy as np

from graphc.ir import Node, Value
from graphc.kernels.cpu.emit import Emitter, emits, library
from graphc.kernels.cpu.jit import kernel
from graphc.types import Dim

RUN = 16  # the merge sort's insertion-sorted runs
SMALL_K = 16  # topk keeps a sorted list of its best k up to this k, else sorts the whole axis

Mask = bool | str  # whether a walk's axis belongs to the other array: known, or an expression

# small helpers inlined into each caller by numba: a separate numba function costs a
# compile 40-130 ms of its own (reduce_into: 0.56 s with them as functions)
_inline = kernel(inline="always")


# Indices: numpy's convention, a negative index counts from the end.


@_inline
def _in_range(indices, size):
    """Whether every index of the 1-D `indices` lies in [-size, size). A loop, not
    `indices.min()` and `.max()`: numba's reductions cost 0.35 s more to compile."""
    outside = False
    for i in range(indices.size):  # (without an early exit, the loop vectorizes)
        index = indices[i]
        outside |= (index < -size) | (index >= size)
    return not outside


@_inline
def _wrap(index, size):
    return index + size if index < 0 else index


# Shapes: the type rules and the run-time feed checks make operands agree; the kernels check
# again, cheaply, because numba does not, and a mismatch would reach outside an array.


@_inline
def _rows_match(a, b):
    """Whether two (outer, axis, inner) arrays agree off the middle axis."""
    return a.shape[0] == b.shape[0] and a.shape[2] == b.shape[2]


# Gathering and its transposes, the scatter-adds. Operands are (outer, axis, inner).


@kernel
def take(x, indices, out):
    """out[a, j, b] = x[a, indices[j], b]: numpy.take along the middle axis (indices 1-D)."""
    if not (_rows_match(x, out) and out.shape[1] == indices.size):
        raise ValueError("take: operand shapes do not match")
    size = x.shape[1]
    if not _in_range(indices, size):
        raise IndexError("take: an index is out of range for the axis")
    outer, count, inner = out.shape
    for a in range(outer):
        for j in range(count):
            source = _wrap(indices[j], size)
            for b in range(inner):
                out[a, j, b] = x[a, source, b]


@kernel
def take_along_axis(x, indices, out):
    """out[a, j, b] = x[a, indices[a, j, b], b]: numpy.take_along_axis (indices 3-D)."""
    if not (_rows_match(x, out) and indices.shape == out.shape):
        raise ValueError("take_along_axis: operand shapes do not match")
    size = x.shape[1]
    if not _in_range(indices.reshape(indices.size), size):
        raise IndexError("take_along_axis: an index is out of range for the axis")
    outer, count, inner = out.shape
    for a in range(outer):
        for j in range(count):
            for b in range(inner):
                out[a, j, b] = x[a, _wrap(indices[a, j, b], size), b]


@kernel
def index_add(g, indices, out):
    """out = 0, then out[a, indices[j], b] += g[a, j, b] for j in order (indices 1-D)."""
    if not (_rows_match(g, out) and g.shape[1] == indices.size):
        raise ValueError("index_add: operand shapes do not match")
    size = out.shape[1]
    if not _in_range(indices, size):
        raise IndexError("index_add: an index is out of range for the axis")
    _zero(out.reshape(out.size))
    outer, count, inner = g.shape
    for a in range(outer):
        for j in range(count):
            target = _wrap(indices[j], size)
            for b in range(inner):
                out[a, target, b] += g[a, j, b]


@kernel
def scatter_add(g, indices, out):
    """out = 0, then out[a, indices[a, j, b], b] += g[a, j, b] for j in order (indices 3-D)."""
    if not (_rows_match(g, out) and indices.shape == g.shape):
        raise ValueError("scatter_add: operand shapes do not match")
    size = out.shape[1]
    if not _in_range(indices.reshape(indices.size), size):
        raise IndexError("scatter_add: an index is out of range for the axis")
    _zero(out.reshape(out.size))
    outer, count, inner = g.shape
    for a in range(outer):
        for j in range(count):
            for b in range(inner):
                out[a, _wrap(indices[a, j, b], size), b] += g[a, j, b]


# Ordering. NaN != NaN is how a comparison spots a NaN in any dtype (ints and bools never).


@_inline
def _before(a, b, descending):
    """Whether a sorts strictly before b: ascending with NaN last, or descending with NaN
    first."""
    if descending:
        return a > b or (a != a and b == b)
    return a < b or (b != b and a == a)


@kernel
def _insertion_sort_runs(keys, order, descending):
    """Sort each run of RUN keys stably, moving `order` along."""
    n = keys.size
    for start in range(0, n, RUN):
        stop = min(start + RUN, n)
        for j in range(start + 1, stop):
            key = keys[j]
            item = order[j]
            p = j
            while p > start and _before(key, keys[p - 1], descending):
                keys[p] = keys[p - 1]
                order[p] = order[p - 1]
                p -= 1
            keys[p] = key
            order[p] = item


@kernel
def _merge_pass(keys, order, into_keys, into_order, width, descending):
    """Merge each pair of sorted runs of `width` into `into_*`; on ties the left run first."""
    n = keys.size
    for low in range(0, n, 2 * width):
        middle = min(low + width, n)
        high = min(low + 2 * width, n)
        i = low
        j = middle
        for t in range(low, high):
            if j < high and (i >= middle or _before(keys[j], keys[i], descending)):
                into_keys[t] = keys[j]
                into_order[t] = order[j]
                j += 1
            else:
                into_keys[t] = keys[i]
                into_order[t] = order[i]
                i += 1


@kernel
def _stable_sort(keys, order, spare_keys, spare_order, descending):
    """Sort `keys` stably (bottom-up merge sort), permuting `order` alike; spares: scratch."""
    _insertion_sort_runs(keys, order, descending)
    width = RUN
    in_spare = False
    while width < keys.size:
        if in_spare:
            _merge_pass(spare_keys, spare_order, keys, order, width, descending)
        else:
            _merge_pass(keys, order, spare_keys, spare_order, width, descending)
        in_spare = not in_spare
        width *= 2
    if in_spare:
        keys[:] = spare_keys
        order[:] = spare_order


@kernel
def sort(x, out):
    """out = x sorted ascending along the middle axis, NaN last (numpy.sort)."""
    if x.shape != out.shape:
        raise ValueError("sort: operand shapes do not match")
    outer, size, inner = x.shape
    lane = np.empty(size, x.dtype)
    for a in range(outer):
        for b in range(inner):
            for j in range(size):
                lane[j] = x[a, j, b]
            lane.sort()
            for j in range(size):
                out[a, j, b] = lane[j]


@kernel
def argsort(x, out):
    """out = the int64 positions that sort x along the middle axis: stable, NaN last."""
    if x.shape != out.shape:
        raise ValueError("argsort: operand shapes do not match")
    outer, size, inner = x.shape
    keys = np.empty(size, x.dtype)
    spare_keys = np.empty(size, x.dtype)
    order = np.empty(size, np.int64)
    spare_order = np.empty(size, np.int64)
    for a in range(outer):
        for b in range(inner):
            for j in range(size):
                keys[j] = x[a, j, b]
                order[j] = j
            _stable_sort(keys, order, spare_keys, spare_order, False)
            for j in range(size):
                out[a, j, b] = order[j]


@kernel
def _top_by_insertion(lane, top, top_index):
    """The len(top) largest of `lane`, largest first, in a sorted list kept by insertion;
    a value enters only ahead of smaller ones, so equal values stay in index order."""
    k = top.size
    count = 0
    for j in range(lane.size):
        value = lane[j]
        if count < k:
            p = count
            count += 1
        elif _before(value, top[k - 1], True):
            p = k - 1
        else:
            continue
        while p > 0 and _before(value, top[p - 1], True):
            top[p] = top[p - 1]
            top_index[p] = top_index[p - 1]
            p -= 1
        top[p] = value
        top_index[p] = j


@kernel
def topk(x, values, indices):
    """The k = values.shape[1] largest along the middle axis, largest first; NaN counts as
    the largest and equal values keep index order. indices are int64."""
    outer, size, inner = x.shape
    k = values.shape[1]
    if not (_rows_match(x, values) and values.shape == indices.shape):
        raise ValueError("topk: operand shapes do not match")
    if k > size:
        raise ValueError("topk: k is larger than the axis")
    if k == 0:
        return
    keys = np.empty(size, x.dtype)
    order = np.empty(size, np.int64)
    spare_keys = np.empty(size, x.dtype)
    spare_order = np.empty(size, np.int64)
    for a in range(outer):
        for b in range(inner):
            for j in range(size):
                keys[j] = x[a, j, b]
                order[j] = j
            if k <= SMALL_K:
                _top_by_insertion(keys, spare_keys[:k], spare_order[:k])
                for j in range(k):
                    values[a, j, b] = spare_keys[j]
                    indices[a, j, b] = spare_order[j]
            else:
                _stable_sort(keys, order, spare_keys, spare_order, True)
                for j in range(k):
                    values[a, j, b] = keys[j]
                    indices[a, j, b] = order[j]


# Running sums and copies.


@kernel
def cumsum(x, out):
    """out[a, j, b] = x[a, 0, b] + ... + x[a, j, b], added in order in out's dtype."""
    if x.shape != out.shape:
        raise ValueError("cumsum: operand shapes do not match")
    outer, size, inner = x.shape
    for a in range(outer):
        for j in range(size):
            if j == 0:
                for b in range(inner):
                    out[a, 0, b] = x[a, 0, b]
            else:
                for b in range(inner):
                    out[a, j, b] = out[a, j - 1, b] + x[a, j, b]


@kernel
def place(source, out, start):
    """out[a, start + j, b] = source[a, j, b], cast to out's dtype (one concatenate input)."""
    outer, count, inner = source.shape
    if not (_rows_match(source, out) and start >= 0 and start + count <= out.shape[1]):
        raise ValueError("concatenate: operand shapes do not match")
    # each row source[a] is one contiguous run, and so is its place in out[a]
    rows = source.reshape((outer, count * inner))
    out_rows = out.reshape((outer, out.shape[1] * inner))
    first = start * inner
    for a in range(outer):
        for j in range(count * inner):
            out_rows[a, first + j] = rows[a, j]


@_inline
def _masked_strides(shape, mask):
    """Element strides, over `shape`, of the C-ordered array whose axes are the masked
    ones (mask[axis] != 0); the other axes get stride 0."""
    strides = np.empty(shape.size, np.int64)
    stride = 1
    for axis in range(shape.size - 1, -1, -1):
        strides[axis] = stride if mask[axis] else 0
        if mask[axis]:
            stride *= shape[axis]
    return strides


@_inline
def _origin(rank):
    """The odometer of a walk over `rank` axes, at its start: zeros. (A loop: numba's
    np.zeros and fill cost a compile about 0.1 s each, where the first use is paid.)"""
    index = np.empty(rank, np.int64)
    for axis in range(rank):
        index[axis] = 0
    return index


@_inline
def _zero(out):
    """out[:] = 0, for a flat array."""
    for i in range(out.size):
        out[i] = 0


@_inline
def _walk_fits(walked, other, shape, mask):
    """Whether `walked` has the elements of `shape` and `other` those of its masked axes."""
    total = 1
    masked = 1
    for axis in range(shape.size):
        total *= shape[axis]
        if mask[axis]:
            masked *= shape[axis]
    return shape.size == mask.size and walked.size == total and other.size == masked


@_inline
def _advance(index, offset, shape, strides):
    """Step the odometer `index` over all axes but the last; returns the new offset."""
    axis = shape.size - 2
    while axis >= 0:
        index[axis] += 1
        offset += strides[axis]
        if index[axis] < shape[axis]:
            return offset
        offset -= strides[axis] * shape[axis]
        index[axis] = 0
        axis -= 1
    return offset


@kernel
def broadcast_into(source, out, shape, mask):
    """out (flat, C order over `shape`) = source (flat, C order over the masked axes of
    `shape`) broadcast along the unmasked ones. `shape` and `mask` are int64 arrays."""
    if not _walk_fits(out, source, shape, mask):
        raise ValueError("broadcast_into: operand shapes do not match")
    if out.size == 0:
        return
    strides = _masked_strides(shape, mask)
    inner = shape[shape.size - 1]
    step = strides[shape.size - 1]
    index = _origin(shape.size)
    offset = np.int64(0)  # (a literal 0 would compile _advance once more for it)
    for p in range(0, out.size, inner):
        for j in range(inner):
            out[p + j] = source[offset + j * step]
        offset = _advance(index, offset, shape, strides)


@kernel
def reduce_into(source, out, shape, mask):
    """out (flat, C order over the masked axes of `shape`) = the sum of source (flat, C order
    over `shape`) over the unmasked axes, added in order in out's dtype."""
    if not _walk_fits(source, out, shape, mask):
        raise ValueError("reduce_into: operand shapes do not match")
    _zero(out)
    if source.size == 0:
        return
    strides = _masked_strides(shape, mask)
    inner = shape[shape.size - 1]
    step = strides[shape.size - 1]
    index = _origin(shape.size)
    offset = np.int64(0)  # (a literal 0 would compile _advance once more for it)
    for p in range(0, source.size, inner):
        if step == 0:  # the last axis is summed: add it up in a register
            total = out[offset]
            for j in range(inner):
                total += source[p + j]
            out[offset] = total
        else:
            for j in range(inner):
                out[offset + j * step] += source[p + j]
        offset = _advance(index, offset, shape, strides)


@_inline
def _strided_fits(source, out, shape, starts, steps, out_shape):
    """Whether source has the elements of `shape`, out those of `out_shape`, and every
    starts + index * steps lies inside out_shape."""
    rank = shape.size
    if not (starts.size == rank and steps.size == rank and out_shape.size == rank):
        return False
    total = 1
    out_total = 1
    for axis in range(rank):
        total *= shape[axis]
        out_total *= out_shape[axis]
    if source.size != total or out.size != out_total:
        return False
    for axis in range(rank):
        last = starts[axis] + (shape[axis] - 1) * steps[axis]
        inside = 0 <= starts[axis] < out_shape[axis] and 0 <= last < out_shape[axis]
        if total and not inside:
            return False
    return True


@kernel
def place_strided(source, out, shape, starts, steps, out_shape):
    """out[starts + index * steps] = source[index] for every index of `shape` (both arrays
    flat and C-ordered, out over `out_shape`): pad's interior and slice_scatter's slice.
    The int64 arrays `starts` and `steps` hold one in-range start and one step per axis."""
    if not _strided_fits(source, out, shape, starts, steps, out_shape):
        raise ValueError("place_strided: the strided part does not fit the output")
    if source.size == 0:
        return
    strides = _masked_strides(out_shape, np.ones(out_shape.size, np.int64))
    offset = np.int64(0)  # (a literal 0 would compile _advance once more for it)
    for axis in range(shape.size):
        offset += starts[axis] * strides[axis]
        strides[axis] *= steps[axis]
    inner = shape[shape.size - 1]
    step = strides[shape.size - 1]
    index = _origin(shape.size)
    for p in range(0, source.size, inner):
        for j in range(inner):
            out[offset + j * step] = source[p + j]
        offset = _advance(index, offset, shape, strides)


@kernel
def slice_start(size, start, step):
    """The first index of range(size)[start::step] as Python normalizes it (start not None);
    only used when the slice is not empty."""
    if start < 0:
        start += size
        if start < 0:
            start = -1 if step < 0 else 0
    elif start >= size:
        start = size - 1 if step < 0 else size
    return start


# Emitters: the generated code views each operand as the kernels expect.

library("ak", "graphc.kernels.cpu.arrays")


def _product(e: Emitter, dims: tuple[Dim, ...] | list[Dim]) -> str:
    """The number of elements of `dims` as an expression: known sizes multiplied here."""
    known = 1
    names: list[str] = []
    for dim in dims:
        if isinstance(dim, int):
            known *= dim
        else:
            names.append(e.dim(dim))
    if known == 0 or not names:
        return str(known)
    factors = names if known == 1 else [*names, str(known)]
    return factors[0] if len(factors) == 1 else "(" + " * ".join(factors) + ")"


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _three(e: Emitter, shape: tuple[Dim, ...], start: int, stop: int | None = None) -> str:
    """The 3-D view (outer, middle, inner) of `shape` whose middle axis spans
    shape[start:stop] (one axis by default)."""
    stop = start + 1 if stop is None else stop
    parts = [shape[:start], shape[start:stop], shape[stop:]]
    return _tuple([_product(e, part) for part in parts])


def _contiguous(e: Emitter, value: Value, view: str, hint: str = "c") -> str:
    """A temporary naming `value` as a C-contiguous array reshaped to `view`."""
    name = e.temp(hint)
    e.line(f"{name} = np.ascontiguousarray({e.arg(value)}).reshape({view})")
    return name


def _flat(e: Emitter, value: Value, hint: str = "c") -> str:
    return _contiguous(e, value, _tuple([_product(e, e.type_of(value).shape)]), hint)


def _out_view(e: Emitter, node: Node, index: int, view: str) -> str:
    return f"{e.out(node, index)}.reshape({view})"


@emits("take")
def emit_take(e: Emitter, node: Node) -> None:
    x, indices = node.inputs
    axis = node.attrs["axis"]
    count = e.type_of(indices).ndim
    x3 = _contiguous(e, x, _three(e, e.type_of(x).shape, axis), "x")
    flat = _flat(e, indices, "indices")
    out3 = _out_view(e, node, 0, _three(e, node.type.shape, axis, axis + count))
    e.line(f"ak.take({x3}, {flat}, {out3})")


def _broadcast_view(
    e: Emitter, value: Value, target: tuple[Dim, ...], axis: int, broadcast: bool, hint: str
) -> str:
    """`value` as (outer, axis, inner), first broadcast to `target` where its sizes may
    differ (statically unequal dims) and broadcasting is allowed."""
    shape = e.type_of(value).shape
    expression = e.arg(value)
    if broadcast and shape != target:
        shape_text = _tuple([e.dim(d) for d in target])
        expression = f"np.broadcast_to({expression}, {shape_text})"
    name = e.temp(hint)
    view = _three(e, target, axis)
    e.line(f"{name} = np.ascontiguousarray({expression}).reshape({view})")
    return name


@emits("take_along_axis")
def emit_take_along_axis(e: Emitter, node: Node) -> None:
    x, indices = node.inputs
    axis, broadcast = node.attrs["axis"], node.attrs["broadcast"]
    out_shape = node.type.shape
    x_shape = e.type_of(x).shape
    # x keeps its own size along the axis; off the axis both take the result's sizes
    x_target = (*out_shape[:axis], x_shape[axis], *out_shape[axis + 1 :])
    if not broadcast:
        x_target, indices_target = x_shape, e.type_of(indices).shape
    else:
        indices_target = out_shape
    x3 = _broadcast_view(e, x, x_target, axis, broadcast, "x")
    indices3 = _broadcast_view(e, indices, indices_target, axis, broadcast, "indices")
    out3 = _out_view(e, node, 0, _three(e, out_shape, axis))
    e.line(f"ak.take_along_axis({x3}, {indices3}, {out3})")


@emits("index_add")
def emit_index_add(e: Emitter, node: Node) -> None:
    g, indices, _like = node.inputs
    axis = node.attrs["axis"]
    count = e.type_of(indices).ndim
    g3 = _contiguous(e, g, _three(e, e.type_of(g).shape, axis, axis + count), "g")
    flat = _flat(e, indices, "indices")
    out3 = _out_view(e, node, 0, _three(e, node.type.shape, axis))
    e.line(f"ak.index_add({g3}, {flat}, {out3})")


@emits("scatter_add")
def emit_scatter_add(e: Emitter, node: Node) -> None:
    g, indices, _like = node.inputs
    axis = node.attrs["axis"]
    g_shape = e.type_of(g).shape
    g3 = _contiguous(e, g, _three(e, g_shape, axis), "g")
    # indices broadcast to g's shape off the axis (the type rule allows size 1 there)
    indices3 = _broadcast_view(e, indices, g_shape, axis, True, "indices")
    out3 = _out_view(e, node, 0, _three(e, node.type.shape, axis))
    e.line(f"ak.scatter_add({g3}, {indices3}, {out3})")


@emits("sort", "argsort", "cumsum")
def emit_along_axis(e: Emitter, node: Node) -> None:
    (x,) = node.inputs
    axis = node.attrs["axis"]
    view = _three(e, e.type_of(x).shape, axis)
    x3 = _contiguous(e, x, view, "x")
    e.line(f"ak.{node.op}({x3}, {_out_view(e, node, 0, view)})")


@emits("topk")
def emit_topk(e: Emitter, node: Node) -> None:
    (x,) = node.inputs
    axis = node.attrs["axis"]
    x3 = _contiguous(e, x, _three(e, e.type_of(x).shape, axis), "x")
    view = _three(e, node.types[0].shape, axis)
    values3, indices3 = _out_view(e, node, 0, view), _out_view(e, node, 1, view)
    e.line(f"ak.topk({x3}, {values3}, {indices3})")


@emits("concatenate")
def emit_concatenate(e: Emitter, node: Node) -> None:
    axis = node.attrs["axis"]
    out3 = e.temp("out")
    e.line(f"{out3} = {_out_view(e, node, 0, _three(e, node.type.shape, axis))}")
    offset: list[Dim] = []  # the sizes along the axis of the inputs placed so far
    for x in node.inputs:
        shape = e.type_of(x).shape
        x3 = _contiguous(e, x, _three(e, shape, axis), "x")
        start = _sum(e, offset)
        e.line(f"ak.place({x3}, {out3}, np.intp({start}))")  # (not a literal: see nnk._ints)
        offset.append(shape[axis])


def _sum(e: Emitter, dims: list[Dim]) -> str:
    known = sum(d for d in dims if isinstance(d, int))
    names = [e.dim(d) for d in dims if not isinstance(d, int)]
    terms = [*names, str(known)] if known or not names else names
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


def _literal(value: bool | float, dtype: np.dtype) -> str:
    """`value` cast to `dtype` as numpy casts it, as a literal of that dtype."""
    with np.errstate(invalid="ignore", over="ignore"):
        item = np.asarray(value).astype(dtype).item()
    if dtype.kind == "b":
        return repr(bool(item))
    if dtype.kind in "iu":
        return f"np.{dtype.name}({int(item)})"
    number = float(item)
    if np.isnan(number):
        text = "np.nan"
    elif np.isinf(number):
        text = "np.inf" if number > 0 else "-np.inf"
    else:
        text = repr(number)
    return f"np.{dtype.name}({text})"


def _int_array(items: list[str]) -> str:
    return f"np.array({_tuple(items)}, dtype=np.int64)"


def _emit_fill(e: Emitter, node: Node, value: str) -> None:
    # through a flat view: numba has no fill() for 0-d arrays
    e.line(f"{_out_view(e, node, 0, _tuple([_product(e, node.type.shape)]))}.fill({value})")


def _emit_place(e: Emitter, node: Node, source: Value, starts: list[str], steps: list[int]) -> None:
    """out[starts + index * steps] = source[index], source walked in C order; rank 0 as 1."""
    shape = e.type_of(source).shape
    out_shape = node.type.shape
    if not shape:
        shape, out_shape, starts, steps = (1,), (1,), ["0"], [1]
    flat = _flat(e, source, "x")
    out = _out_view(e, node, 0, _tuple([_product(e, node.type.shape)]))
    arguments = [
        _int_array([e.dim(d) for d in shape]),
        _int_array(starts),
        _int_array([str(step) for step in steps]),
        _int_array([e.dim(d) for d in out_shape]),
    ]
    e.line(f"ak.place_strided({flat}, {out}, {', '.join(arguments)})")


@emits("pad")
def emit_pad(e: Emitter, node: Node) -> None:
    (x,) = node.inputs
    _emit_fill(e, node, _literal(node.attrs["value"], node.type.dtype))
    befores = [str(before) for before, _after in node.attrs["pad_width"]]
    _emit_place(e, node, x, befores, [1] * len(befores))


def _slice_start(e: Emitter, size: Dim, start: int | None, step: int) -> str:
    """The first index of a slice along an axis of `size`, as an expression."""
    if isinstance(size, int):
        return str(range(size)[slice(start, None, step)].start) if size else "0"
    if start is None:
        return "0" if step > 0 else f"({e.dim(size)} - 1)"
    return f"ak.slice_start({e.dim(size)}, {start}, {step})"


@emits("slice_scatter")
def emit_slice_scatter(e: Emitter, node: Node) -> None:
    g, _like = node.inputs
    _emit_fill(e, node, "0")
    bounds = zip(node.type.shape, node.attrs["starts"], node.attrs["steps"], strict=True)
    starts = [_slice_start(e, size, start, step) for size, start, step in bounds]
    _emit_place(e, node, g, starts, list(node.attrs["steps"]))


def _blocks(dims: list[tuple[Dim, Mask]]) -> list[tuple[list[Dim], Mask]]:
    """The walk's axes with size-1 axes dropped and neighbours of one known mask merged
    (their sizes listed together); an axis with a run-time mask is never merged."""
    blocks: list[tuple[list[Dim], Mask]] = []
    for dim, mask in dims:
        if dim == 1:
            continue
        previous = blocks[-1][1] if blocks else None
        if isinstance(mask, bool) and isinstance(previous, bool) and previous == mask:
            blocks[-1][0].append(dim)
        else:
            blocks.append(([dim], mask))
    return blocks


def _shape_and_mask(e: Emitter, dims: list[tuple[Dim, Mask]]) -> tuple[str, str]:
    """int64 array expressions of the merged walk shape and its mask (at least one axis)."""
    blocks = _blocks(dims) or [([1], True)]
    sizes = [_product(e, block) for block, _ in blocks]
    masks = [str(int(mask)) if isinstance(mask, bool) else mask for _, mask in blocks]
    return (
        f"np.array({_tuple(sizes)}, dtype=np.int64)",
        f"np.array({_tuple(masks)}, dtype=np.int64)",
    )


def _tile_layout(shape: tuple[Dim, ...], reps: tuple[int, ...]) -> list[tuple[Dim, bool]]:
    """tile's axes interleaved: (reps[k], unmasked) then (shape[k], masked) for each k, both
    padded with leading 1s to one rank. The tiled array is this walk in C order."""
    ndim = max(len(shape), len(reps))
    shape = (1,) * (ndim - len(shape)) + shape
    reps = (1,) * (ndim - len(reps)) + reps
    return [pair for r, d in zip(reps, shape, strict=True) for pair in ((r, False), (d, True))]


@emits("tile")
def emit_tile(e: Emitter, node: Node) -> None:
    (x,) = node.inputs
    shape, mask = _shape_and_mask(e, _tile_layout(e.type_of(x).shape, node.attrs["reps"]))
    source = _flat(e, x, "x")
    out = _out_view(e, node, 0, _tuple([_product(e, node.type.shape)]))
    e.line(f"ak.broadcast_into({source}, {out}, {shape}, {mask})")


@emits("untile")
def emit_untile(e: Emitter, node: Node) -> None:
    g, like = node.inputs
    layout = _tile_layout(e.type_of(like).shape, node.attrs["reps"])
    shape, mask = _shape_and_mask(e, layout)
    source = _flat(e, g, "g")
    out = _out_view(e, node, 0, _tuple([_product(e, node.type.shape)]))
    e.line(f"ak.reduce_into({source}, {out}, {shape}, {mask})")


def _sum_to_layout(e: Emitter, g: tuple[Dim, ...], like: tuple[Dim, ...]) -> list[tuple[Dim, Mask]]:
    """g's axes, each masked when it is kept: the leading axes are summed, and so is an axis
    where like has size 1 (decided at run time when like's size is not known)."""
    leading = len(g) - len(like)
    layout: list[tuple[Dim, Mask]] = [(d, False) for d in g[:leading]]
    for g_dim, like_dim in zip(g[leading:], like, strict=True):
        if g_dim == like_dim or (isinstance(like_dim, int) and like_dim != 1):
            layout.append((g_dim, True))
        elif isinstance(like_dim, int):
            layout.append((g_dim, False))
        else:
            layout.append((g_dim, f"int({e.dim(g_dim)} == {e.dim(like_dim)})"))
    return layout


@emits("sum_to")
def emit_sum_to(e: Emitter, node: Node) -> None:
    g, like = node.inputs
    g_shape = e.type_of(g).shape
    shape, mask = _shape_and_mask(e, _sum_to_layout(e, g_shape, e.type_of(like).shape))
    source = _flat(e, g, "g")
    out = _out_view(e, node, 0, _tuple([_product(e, node.type.shape)]))
    e.line(f"ak.reduce_into({source}, {out}, {shape}, {mask})")
