"""CUDA emitters of the array ops: copies that are views on the CPU (transpose,
broadcast_to, slice, split, split_like), concatenate, pad, tile and its transpose untile,
sums to a shape, gathers (take, take_along_axis) and their transposes the scatter-adds
(index_add, scatter_add, slice_scatter), sorting (sort, argsort, topk), cumulative sums
and axis_size. Each is a map kernel (codegen.Writer.map), except sum_to with sizes known
when compiling: a block reduction (codegen.emit_reduction).

Part of graphc.kernels. Every device value is C-contiguous, so an op working along one
axis sees its operands as 3-D (outer, axis, inner) views: reshapes, free.

Guarantees, as on the CPU (kernels/cpu/arrays.py):

- A negative index counts from the end; an index outside [-size, size) sets the error
  flag (the runtime raises IndexOutOfRangeError after the call) and is never read or
  written through. take and index_add check their indices even when the result is
  empty, as numpy does.
- The scatter-adds are gathers: one thread per output element adds, in index order,
  the elements that land on it. No atomics: the results are deterministic and equal
  numpy's add.at bit for bit. cumsum adds in order in its output dtype, as numpy does.
- sort, argsort and topk find each element's place by counting the elements of its row
  that precede it (cl.precedes: stable, NaN last; topk descending, NaN first, equal
  values in index order): n steps per element, and topk stops counting at k.
- untile (and sum_to with sizes known only at run time) add in order, where numpy sums
  pairwise: float results may differ in the last bits.
"""

from __future__ import annotations

import numpy as np

from graphc.ir import Node
from graphc.kernels import scalar
from graphc.kernels.cuda.codegen import Writer, broadcast_index, emit_reduction, emits
from graphc.kernels.text import product
from graphc.types import Dim, TensorType


@emits("transpose")
def _transpose(w: Writer, node: Node) -> None:
    perm = node.attrs["perm"]
    out_type = w.type_of(node.outputs[0])
    index = [""] * len(perm)
    for k, axis in enumerate(perm):
        index[axis] = f"j{k}"
    target = [f"j{k}" for k in range(len(perm))]
    w.map(
        [w.flat_arg(node.inputs[0]), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        [f"a1{_at(target)} = a0{_at(index)}"],
        f"transpose {tuple(perm)}",
    )


@emits("broadcast_to")
def _broadcast_to(w: Writer, node: Node) -> None:
    out_type = w.type_of(node.outputs[0])
    shape = out_type.shape
    index = [f"j{k}" for k in range(len(shape))]
    source = broadcast_index(w.type_of(node.inputs[0]), "a0", shape, index)
    target = f"[{', '.join(index)}]" if shape else "[0]"
    w.map(
        [w.flat_arg(node.inputs[0]), w.out(node) if shape else f"launch.flat({w.out(node)})"],
        [w.dim(d) for d in shape],
        [f"a1{target} = {source}"],
        "broadcast_to",
    )


# ------------------------------------------------------------------ helpers


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


def _at(index: list[str]) -> str:
    """A subscript at point `index`; [0] for a 0-d value seen as one element."""
    return f"[{', '.join(index)}]" if index else "[0]"


def _points(rank: int) -> list[str]:
    return [f"j{k}" for k in range(rank)]


def _sizes3(w: Writer, shape: tuple[Dim, ...], start: int, stop: int | None = None) -> list[str]:
    """The sizes (outer, middle, inner) of `shape` seen as 3-D with the middle axis
    spanning shape[start:stop] (one axis by default): every device value is C-contiguous,
    so it reshapes to that without a copy."""
    stop = start + 1 if stop is None else stop
    parts = [shape[:start], shape[start:stop], shape[stop:]]
    return [product([w.dim(d) for d in part]) for part in parts]


def _view3(
    w: Writer, array: str, shape: tuple[Dim, ...], start: int, stop: int | None = None
) -> str:
    return f"{array}.reshape({_tuple(_sizes3(w, shape, start, stop))})"


def _out(w: Writer, node: Node, index: int = 0) -> str:
    """Output `index`'s device array, a 0-d one as one element."""
    name = w.out(node, index)
    return f"launch.flat({name})" if not node.types[index].shape else name


def _positive(extent: str) -> bool:
    return extent.isdigit() and int(extent) > 0


def _padded(extents: list[str], array: str, axes: list[int]) -> tuple[list[str], str]:
    """Extents of a kernel that checks indices: those of `axes` at least 1, so the
    indices are checked even when the output is empty (as numpy checks them), and the
    condition under which point j lies inside `array` along them."""
    padded = list(extents)
    inside = []
    for k in axes:
        if not _positive(extents[k]):
            padded[k] = f"max({extents[k]}, 1)"
            inside.append(f"j{k} < {array}.shape[{k}]")
    return padded, " and ".join(inside) or "True"


def _aligned(t: TensorType, array: str, shape: tuple[Dim, ...], index: list[str]) -> list[str]:
    """The subscripts of `array` (type `t`, the rank of `shape`) at point `index` of
    `shape`, into which it broadcasts (a run-time size of 1 broadcasts too)."""
    parts = []
    for k, d in enumerate(t.shape):
        if d == 1:
            parts.append("0")
        elif d == shape[k]:
            parts.append(index[k])
        else:
            parts.append(f"min({index[k]}, {array}.shape[{k}] - 1)")
    return parts


def _slice_start(w: Writer, size: Dim, start: int | None, step: int) -> str:
    """The first index of range(size)[start::step] as an entry expression (it matters
    only when the slice is not empty)."""
    if isinstance(size, int):
        return str(slice(start, None, step).indices(size)[0])
    if start is None:
        return "0" if step > 0 else f"({w.dim(size)} - 1)"
    name = w.temp("start")
    w.line(f"{name} = slice({start}, None, {step}).indices({w.dim(size)})[0]")
    return name


def _scalar(expression: str, scalars: list[str]) -> str:
    """`expression` as a kernel value: a literal as is, else the next scalar argument."""
    if expression.lstrip("-").isdigit():
        return expression
    scalars.append(expression)
    return f"e{len(scalars) - 1}"


def _literal(value: bool | float, dtype: np.dtype) -> str:
    """`value` cast to `dtype` as numpy casts it, as a literal."""
    with np.errstate(invalid="ignore", over="ignore"):
        item = np.asarray(value).astype(dtype).item()
    return scalar.literal(item, dtype)


def _zero(dtype: np.dtype) -> str:
    return scalar.literal(0, dtype)


# ------------------------------------------------------------------ sizes and copies


@emits("axis_size")
def _axis_size(w: Writer, node: Node) -> None:
    t = w.type_of(node.inputs[0])
    size = product([w.dim(t.shape[a]) for a in node.attrs["axes"]])
    ctor = scalar.ctor(node.types[0].dtype)
    w.map([_out(w, node)], [], [f"a0[0] = {ctor}(e0)"], "axis_size", scalars=(size,))


def _piece(
    w: Writer, node: Node, index: int, x_type: TensorType, axis: int, start: str, comment: str
) -> None:
    """Output `index` = x[..., start : start + its size, ...] along `axis`."""
    out_type = node.types[index]
    x3 = _view3(w, w.arg(node.inputs[0]), x_type.shape, axis)
    out3 = _view3(w, w.out(node, index), out_type.shape, axis)
    scalars: list[str] = []
    at = _scalar(start, scalars)
    read = "j1" if at == "0" else f"{at} + j1"
    w.map(
        [x3, out3],
        _sizes3(w, out_type.shape, axis),
        [f"a1[j0, j1, j2] = a0[j0, {read}, j2]"],
        comment,
        scalars=tuple(scalars),
    )


@emits("slice")
def _slice(w: Writer, node: Node) -> None:
    x_type = w.type_of(node.inputs[0])
    out_type = node.types[0]
    a = node.attrs
    index = _points(out_type.ndim)
    scalars: list[str] = []
    source = []
    for k, (size, start, step) in enumerate(
        zip(x_type.shape, a["starts"], a["steps"], strict=True)
    ):
        first = _scalar(_slice_start(w, size, start, step), scalars)
        moved = index[k] if step == 1 else f"{index[k]} * {step}"
        source.append(moved if first == "0" else f"{first} + {moved}")
    w.map(
        [w.flat_arg(node.inputs[0]), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        [f"a1{_at(index)} = a0{_at(source)}"],
        "slice",
        scalars=tuple(scalars),
    )


@emits("split")
def _split(w: Writer, node: Node) -> None:
    x_type = w.type_of(node.inputs[0])
    axis, sections, indices = node.attrs["axis"], node.attrs["sections"], node.attrs["indices"]
    size = x_type.shape[axis]
    if sections:
        piece = w.dim(node.types[0].shape[axis])
        starts = ["0", *(f"{i} * {piece}" for i in range(1, sections))]
        if piece.isdigit():
            starts = [str(i * int(piece)) for i in range(sections)]
    else:
        # numpy.split cuts x[bound_i : bound_i+1] with bounds (0, *indices, None): a cut
        # below the previous one gives an empty piece, and the next starts at the cut
        starts = ["0", *(_slice_start(w, size, cut, 1) for cut in indices)]
    for i, start in enumerate(starts):
        _piece(w, node, i, x_type, axis, start, f"split: piece {i}")


@emits("split_like")
def _split_like(w: Writer, node: Node) -> None:
    x_type = w.type_of(node.inputs[0])
    axis = node.attrs["axis"]
    offset: list[Dim] = []
    for i, like in enumerate(node.inputs[1:]):
        _piece(w, node, i, x_type, axis, _sum(w, offset), f"split_like: piece {i}")
        offset.append(w.type_of(like).shape[axis])


def _sum(w: Writer, dims: list[Dim]) -> str:
    known = sum(d for d in dims if isinstance(d, int))
    terms = [w.dim(d) for d in dims if not isinstance(d, int)]
    if known or not terms:
        terms.append(str(known))
    return terms[0] if len(terms) == 1 else "(" + " + ".join(terms) + ")"


@emits("concatenate")
def _concatenate(w: Writer, node: Node) -> None:
    axis = node.attrs["axis"]
    out_type = node.types[0]
    ctor = scalar.ctor(out_type.dtype)
    out3 = _view3(w, w.out(node), out_type.shape, axis)
    offset: list[Dim] = []
    for i, x in enumerate(node.inputs):
        shape = w.type_of(x).shape
        scalars: list[str] = []
        at = _scalar(_sum(w, offset), scalars)
        target = "j1" if at == "0" else f"{at} + j1"
        w.map(
            [_view3(w, w.arg(x), shape, axis), out3],
            _sizes3(w, shape, axis),
            [f"a1[j0, {target}, j2] = {ctor}(a0[j0, j1, j2])"],
            f"concatenate: input {i}",
            scalars=tuple(scalars),
        )
        offset.append(shape[axis])


@emits("pad")
def _pad(w: Writer, node: Node) -> None:
    out_type = node.types[0]
    index = _points(out_type.ndim)
    inside, source = [], []
    for k, (before, _after) in enumerate(node.attrs["pad_width"]):
        moved = f"j{k} - {before}" if before else f"j{k}"
        source.append(moved)
        inside.append(f"0 <= {moved} < a0.shape[{k}]" if before else f"j{k} < a0.shape[{k}]")
    fill = _literal(node.attrs["value"], out_type.dtype)
    body = [
        f"if {' and '.join(inside) or 'True'}:",
        f"    a1{_at(index)} = a0{_at(source)}",
        "else:",
        f"    a1{_at(index)} = {fill}",
    ]
    w.map(
        [w.flat_arg(node.inputs[0]), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        body,
        "pad",
    )


# ------------------------------------------------------------------ tile and its sums


def _tile_layout(shape: tuple[Dim, ...], reps: tuple[int, ...]) -> tuple[int, tuple[int, ...]]:
    """How many leading 1s tile puts in front of `shape` (ops/shape.py _tiled_layout),
    and the repetitions per axis of the tiled rank."""
    ndim = max(len(shape), len(reps))
    return ndim - len(shape), (1,) * (ndim - len(reps)) + tuple(reps)


@emits("tile")
def _tile(w: Writer, node: Node) -> None:
    x_type = w.type_of(node.inputs[0])
    lead, reps = _tile_layout(x_type.shape, node.attrs["reps"])
    out_type = node.types[0]
    index = _points(out_type.ndim)
    source = []
    for a, d in enumerate(x_type.shape):
        k = lead + a
        if d == 1:
            source.append("0")
        elif reps[k] == 1:
            source.append(index[k])
        else:
            source.append(f"{index[k]} % a0.shape[{a}]")
    w.map(
        [w.flat_arg(node.inputs[0]), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        [f"a1{_at(index)} = a0{_at(source)}"],
        f"tile {tuple(reps)}",
    )


def _digits(names: list[str], radices: list[str], flat: str) -> list[str]:
    """Lines setting each of `names` to its digit of `flat` (C order, mixed radices)."""
    if not names:
        return []
    lines = [f"q = {flat}"]
    for name, radix in reversed(list(zip(names[1:], radices[1:], strict=True))):
        lines += [f"{name} = q % {radix}", f"q //= {radix}"]
    return [*lines, f"{names[0]} = q"]


@emits("untile")
def _untile(w: Writer, node: Node) -> None:
    g, like = node.inputs
    out_type = node.types[0]
    lead, reps = _tile_layout(w.type_of(like).shape, node.attrs["reps"])
    index = _points(out_type.ndim)
    # g's element of tile (r_0, r_1, ...) at point j of out: r_k * size_k + j_k per axis
    tiled = [k for k, r in enumerate(reps) if r != 1]
    source = []
    for k, r in enumerate(reps):
        if k < lead:
            source.append(f"r{k}" if r != 1 else "0")
        elif r == 1:
            source.append(index[k - lead])
        else:
            source.append(f"r{k} * a1.shape[{k - lead}] + {index[k - lead]}")
    count = int(np.prod(reps, dtype=np.int64))
    loop = _digits([f"r{k}" for k in tiled], [str(reps[k]) for k in tiled], "t")
    ctor = scalar.ctor(out_type.dtype)
    body = [
        f"acc = {_zero(out_type.dtype)}",
        f"for t in range({count}):",
        *("    " + line for line in loop),
        f"    acc = {ctor}(acc + a0{_at(source)})",
        f"a1{_at(index)} = acc",
    ]
    w.map(
        [w.flat_arg(g), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        body,
        f"untile {tuple(reps)}",
    )


def _sum_to_axes(g: tuple[Dim, ...], like: tuple[Dim, ...]) -> list[bool | None]:
    """Per axis of g whether sum_to sums it: the leading axes and those where like has
    size 1; None where that is known only at run time (like's size is not g's)."""
    leading = len(g) - len(like)
    summed: list[bool | None] = [True] * leading
    for g_dim, like_dim in zip(g[leading:], like, strict=True):
        if g_dim == like_dim or g_dim == 1:
            summed.append(False)
        elif isinstance(like_dim, int):
            summed.append(like_dim == 1)
        else:
            summed.append(None)
    return summed


@emits("sum_to")
def _sum_to(w: Writer, node: Node) -> None:
    g, like = node.inputs
    g_shape = w.type_of(g).shape
    summed = _sum_to_axes(g_shape, w.type_of(like).shape)
    if None not in summed:
        # a block reduction over the summed axes: out's elements are the kept ones, in order
        axes = tuple(k for k, s in enumerate(summed) if s)
        emit_reduction(w, node, [g], (), "sum", {"axes": axes}, 0)
        return
    # some axis is summed or not by run-time sizes: a thread per element of out adds up
    # the elements of g that map to it; along an axis summed, out's index is 0
    leading = len(g_shape) - node.types[0].ndim
    index = _points(node.types[0].ndim)
    walked, extents, source = [], [], []
    for k, s in enumerate(summed):
        if s is False:
            source.append(index[k - leading])
            continue
        walked.append(f"i{k}")
        if k < leading:
            extents.append(f"a0.shape[{k}]")
            source.append(f"i{k}")
        else:
            a = k - leading
            extents.append(
                f"a0.shape[{k}]"
                if s
                else f"(a0.shape[{k}] if a1.shape[{a}] != a0.shape[{k}] else 1)"
            )
            source.append(f"i{k} + {index[a]}")
    body = [
        *(f"m{k} = {e}" for k, e in enumerate(extents)),
        f"acc = {_zero(node.types[0].dtype)}",
        f"for t in range({' * '.join(f'm{k}' for k in range(len(extents)))}):",
        *("    " + line for line in _digits(walked, [f"m{k}" for k in range(len(extents))], "t")),
        f"    acc = {scalar.ctor(node.types[0].dtype)}(acc + a0{_at(source)})",
        f"a1{_at(index)} = acc",
    ]
    w.map(
        [w.flat_arg(g), _out(w, node)],
        [w.dim(d) for d in node.types[0].shape],
        body,
        "sum_to",
    )


# ------------------------------------------------------------------ gathers and scatters
# A bad index sets err[0] (the runtime raises IndexOutOfRangeError after the call) and
# reads nothing. The scatter-adds are gathers: a thread per output element adds up, in
# index order, the elements that land on it (deterministic: no atomics).


@emits("take")
def _take(w: Writer, node: Node) -> None:
    x, indices = node.inputs
    axis = node.attrs["axis"]
    x_shape, out_shape = w.type_of(x).shape, node.types[0].shape
    count = w.type_of(indices).ndim
    extents, inside = _padded(_sizes3(w, out_shape, axis, axis + count), "a2", [0, 2])
    body = [
        "t = cl.wrap(a1[j1], a0.shape[1])",
        "if t < 0:",
        "    err[0] = 1",
        f"elif {inside}:",
        "    a2[j0, j1, j2] = a0[j0, t, j2]",
    ]
    arrays = [
        _view3(w, w.arg(x), x_shape, axis),
        f"launch.flat({w.arg(indices)})",
        _view3(w, w.out(node), out_shape, axis, axis + count),
    ]
    w.map(arrays, extents, body, f"take (axis {axis})")


@emits("index_add")
def _index_add(w: Writer, node: Node) -> None:
    g, indices, _like = node.inputs
    axis = node.attrs["axis"]
    out_shape = node.types[0].shape
    count = w.type_of(indices).ndim
    extents, inside = _padded(_sizes3(w, out_shape, axis), "a2", [0, 1, 2])
    ctor = scalar.ctor(node.types[0].dtype)
    body = [
        f"acc = {_zero(node.types[0].dtype)}",
        "for p in range(a1.shape[0]):",
        "    t = cl.wrap(a1[p], a2.shape[1])",
        "    if t < 0:",
        "        err[0] = 1",
        "    elif t == j1:",
        f"        acc = {ctor}(acc + a0[j0, p, j2])",
        f"if {inside}:",
        "    a2[j0, j1, j2] = acc",
    ]
    arrays = [
        _view3(w, w.arg(g), w.type_of(g).shape, axis, axis + count),
        f"launch.flat({w.arg(indices)})",
        _view3(w, w.out(node), out_shape, axis),
    ]
    w.map(arrays, extents, body, f"index_add (axis {axis})")


@emits("take_along_axis")
def _take_along_axis(w: Writer, node: Node) -> None:
    x, indices = node.inputs
    axis = node.attrs["axis"]
    shape = node.types[0].shape
    index = _points(len(shape))
    source = _aligned(w.type_of(x), "a0", shape, index)
    source[axis] = "t"
    body = [
        f"t = cl.wrap(a1{_at(_aligned(w.type_of(indices), 'a1', shape, index))}, a0.shape[{axis}])",
        "if t < 0:",
        "    err[0] = 1",
        "else:",
        f"    a2{_at(index)} = a0{_at(source)}",
    ]
    w.map(
        [w.arg(x), w.arg(indices), w.out(node)],
        [w.dim(d) for d in shape],
        body,
        f"take_along_axis (axis {axis})",
    )


@emits("scatter_add")
def _scatter_add(w: Writer, node: Node) -> None:
    g, indices, _like = node.inputs
    axis = node.attrs["axis"]
    g_type, out_type = w.type_of(g), node.types[0]
    index = _points(out_type.ndim)
    # g's element p along the axis, and its index, at point j of out off the axis
    source = list(index)
    source[axis] = "p"
    where = _aligned(w.type_of(indices), "a1", g_type.shape, source)
    extents, inside = _padded([w.dim(d) for d in out_type.shape], "a2", [axis])
    ctor = scalar.ctor(out_type.dtype)
    body = [
        f"acc = {_zero(out_type.dtype)}",
        f"for p in range(a0.shape[{axis}]):",
        f"    t = cl.wrap(a1{_at(where)}, a2.shape[{axis}])",
        "    if t < 0:",
        "        err[0] = 1",
        f"    elif t == j{axis}:",
        f"        acc = {ctor}(acc + a0{_at(source)})",
        f"if {inside}:",
        f"    a2{_at(index)} = acc",
    ]
    w.map([w.arg(g), w.arg(indices), w.out(node)], extents, body, f"scatter_add (axis {axis})")


@emits("slice_scatter")
def _slice_scatter(w: Writer, node: Node) -> None:
    out_type = node.types[0]
    a = node.attrs
    index = _points(out_type.ndim)
    scalars: list[str] = []
    lines, inside, source = [], [], []
    for k, (size, start, step) in enumerate(
        zip(out_type.shape, a["starts"], a["steps"], strict=True)
    ):
        first = _scalar(_slice_start(w, size, start, step), scalars)
        lines.append(f"q{k} = j{k}" if first == "0" else f"q{k} = j{k} - {first}")
        if step == 1:
            inside.append(f"0 <= q{k} < a0.shape[{k}]")
            source.append(f"q{k}")
        else:
            inside.append(f"q{k} % {step} == 0 and 0 <= q{k} // {step} < a0.shape[{k}]")
            source.append(f"q{k} // {step}")
    body = [
        *lines,
        f"if {' and '.join(inside) or 'True'}:",
        f"    a1{_at(index)} = a0{_at(source)}",
        "else:",
        f"    a1{_at(index)} = {_zero(out_type.dtype)}",
    ]
    w.map(
        [w.flat_arg(node.inputs[0]), _out(w, node)],
        [w.dim(d) for d in out_type.shape],
        body,
        "slice_scatter",
        scalars=tuple(scalars),
    )


# ------------------------------------------------------------------ along one axis


@emits("cumsum")
def _cumsum(w: Writer, node: Node) -> None:
    x = node.inputs[0]
    axis = node.attrs["axis"]
    shape = w.type_of(x).shape
    dtype = node.types[0].dtype
    ctor = scalar.ctor(dtype)
    outer, _, inner = _sizes3(w, shape, axis)
    body = [  # a thread per row, adding in order in the output's dtype, as numpy does
        f"acc = {_zero(dtype)}",
        "for p in range(a0.shape[1]):",
        f"    acc = {ctor}(acc + {ctor}(a0[j0, p, j1]))",
        "    a1[j0, p, j1] = acc",
    ]
    arrays = [_view3(w, w.arg(x), shape, axis), _view3(w, w.out(node), shape, axis)]
    w.map(arrays, [outer, inner], body, f"cumsum (axis {axis})")


def _emit_ranked(
    w: Writer, node: Node, descending: bool, writes: list[str], comment: str, k: int = 0
) -> None:
    """A thread per element v of x (a0, as 3-D around the axis) counts the elements of
    its row that precede it in a stable sort (NaN last ascending, first descending): that
    is its place r in the sorted row (every element has its own). Then `writes`, lines
    that may use v, its position j1 and r, store into the outputs a1, a2, ... With k > 0
    only the first k places matter: the count stops there."""
    x = node.inputs[0]
    axis = node.attrs["axis"]
    shape = w.type_of(x).shape
    body = [
        "v = a0[j0, j1, j2]",
        "r = 0",
        "for p in range(n1):",
        f"    if cl.precedes(a0[j0, p, j2], p, v, j1, {descending}):",
        "        r += 1",
        *([f"        if r >= {k}:", "            break"] if k else []),
        *writes,
    ]
    arrays = [_view3(w, w.arg(x), shape, axis)]
    arrays += [_view3(w, w.out(node, i), t.shape, axis) for i, t in enumerate(node.types)]
    w.map(arrays, _sizes3(w, shape, axis), body, f"{comment} (axis {axis})")


@emits("sort")
def _sort(w: Writer, node: Node) -> None:
    _emit_ranked(w, node, False, ["a1[j0, r, j2] = v"], "sort")


@emits("argsort")
def _argsort(w: Writer, node: Node) -> None:
    _emit_ranked(w, node, False, ["a1[j0, r, j2] = j1"], "argsort")


@emits("topk")
def _topk(w: Writer, node: Node) -> None:
    # (the runtime checks k against a run-time axis size before the call)
    k = node.attrs["k"]
    if k:
        writes = [f"if r < {k}:", "    a1[j0, r, j2] = v", "    a2[j0, r, j2] = j1"]
        _emit_ranked(w, node, True, writes, f"topk k={k}", k)
