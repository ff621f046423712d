"""CPU emitters of the core ops: elementwise ops, fused groups, reductions, matmul and views.

Part of graphc.kernels. Importing this module registers these emitters and imports
the modules that register the rest (nn.py: convolutions and pools; arrays.py:
gathers, scatters, sorts, concatenation, padding). Views cost nothing: a transpose
or slice is a numba view, a reshape of a contiguous array too; kernels that read a
view index it with its strides.
"""

from __future__ import annotations

import numpy as np

from graphc.ir import Node, Value
from graphc.kernels.cpu import (  # noqa: F401  (their emitters register on import)
    arrays,
    control,
    loops,
    nn,
)
from graphc.kernels.cpu.codegen import (
    CONTIGUOUS_VIEWS,
    Arg,
    Writer,
    array_arg,
    emit_epilogue,
    emit_loop,
    loop_spec,
    operands_of,
    sizes_arg,
)
from graphc.kernels.cpu.emit import emits, int_tuple
from graphc.kernels.plan import LOOP_OPS
from graphc.registry import lookup
from graphc.types import Dim, TensorType

# A fused matmul computes PANEL_ROWS rows of its product, then runs its epilogue over
# them while they are in cache: as many rows as PANEL_BYTES of product hold, within
# [MIN, MAX]. Larger panels are larger, faster GEMMs (W3 b256, 784->512->512: 3.13 ms
# with 64 rows, 2.37 ms with 256; W8 the same either way); a wide product keeps them
# small enough to stay in the L2 cache.
PANEL_BYTES = 1 << 20
PANEL_ROWS_MIN, PANEL_ROWS_MAX = 64, 256


def panel_rows(cols: Dim, itemsize: int) -> int:
    """The rows of a product panel with `cols` columns of `itemsize` bytes."""
    if not isinstance(cols, int) or cols <= 0:
        return PANEL_ROWS_MIN
    rows = PANEL_BYTES // (cols * itemsize) // 8 * 8
    return max(PANEL_ROWS_MIN, min(PANEL_ROWS_MAX, rows))


@emits(*LOOP_OPS)
def _loop(w: Writer, node: Node) -> None:
    emit_loop(w, node)


@emits("fused")
def _fused(w: Writer, node: Node) -> None:
    if node.attrs["kind"] == "matmul":
        _fused_matmul(w, node)
    else:
        emit_loop(w, node)


@emits("argmax", "argmin")
def _argextreme(w: Writer, node: Node) -> None:
    (x,) = node.inputs
    t = w.type_of(x)
    axes = node.attrs["axis"]
    out = w.out(node)
    if axes is None:
        w.line(
            f"lib.argextreme3({w.contiguous_arg(x)}.reshape((1, {w.size(t)}, 1)), "
            f"{out}.reshape((1, 1)), {node.op == 'argmax'})"
        )
        return
    axis = axes % t.ndim
    outer = TensorType(t.dtype, t.shape[:axis])
    inner = TensorType(t.dtype, t.shape[axis + 1 :])
    shape3 = f"({w.size(outer)}, {w.dim(t.shape[axis])}, {w.size(inner)})"
    w.line(
        f"lib.argextreme3({w.contiguous_arg(x)}.reshape({shape3}), "
        f"{out}.reshape(({w.size(outer)}, {w.size(inner)})), {node.op == 'argmax'})"
    )


@emits("axis_size")
def _axis_size(w: Writer, node: Node) -> None:
    t = w.type_of(node.inputs[0])
    size = " * ".join(w.dim(t.shape[a]) for a in node.attrs["axes"]) or "1"
    w.line(f"{w.out(node)}[()] = {size}")


# ------------------------------------------------------------------------- views


@emits(*sorted(CONTIGUOUS_VIEWS), alloc=False)
def _reshape(w: Writer, node: Node) -> None:
    x = node.inputs[0]
    value = node.outputs[0]
    w.define(node, 0, f"{w.contiguous_arg(x)}.reshape({w.shape(w.type_of(value))})")
    w.contiguous[value] = True


@emits("transpose", alloc=False)
def _transpose(w: Writer, node: Node) -> None:
    x, perm = w.arg(node.inputs[0]), node.attrs["perm"]
    if perm == (1, 0):
        w.define(node, 0, f"{x}.T")  # numba types it F-contiguous: BLAS reads it as is
    else:
        w.define(node, 0, f"np.transpose({x}, {int_tuple(perm)})")


@emits("broadcast_to", alloc=False)
def _broadcast_to(w: Writer, node: Node) -> None:
    shape = w.shape(w.type_of(node.outputs[0]))
    w.define(node, 0, f"np.broadcast_to({w.arg(node.inputs[0])}, {shape})")


def _bound(value: int | None) -> str:
    return "" if value is None else str(value)


@emits("slice", alloc=False)
def _slice(w: Writer, node: Node) -> None:
    a = node.attrs
    parts = [
        f"{_bound(start)}:{_bound(stop)}:{step}"
        for start, stop, step in zip(a["starts"], a["stops"], a["steps"], strict=True)
    ]
    index = ", ".join(parts) if parts else "()"
    w.define(node, 0, f"{w.arg(node.inputs[0])}[{index}]")


def _cut(w: Writer, size: Dim, cut: int) -> str:
    """Where numpy.split's cut index `cut` falls on an axis of `size` (clipped to it)."""
    if isinstance(size, int):
        return str(slice(cut, None).indices(size)[0])
    n = w.dim(size)
    return f"min({cut}, {n})" if cut >= 0 else f"max({n} + ({cut}), 0)"


@emits("split", "split_like", alloc=False)
def _split(w: Writer, node: Node) -> None:
    x = node.inputs[0]
    axis = node.attrs["axis"]
    size = w.type_of(x).shape[axis]
    # numpy.split cuts at (0, *indices): a cut below the previous one gives an empty
    # piece, and the next piece starts at its own cut, not where the last one ended
    cuts = (node.attrs.get("indices") or ()) if node.op == "split" else ()
    starts = ["0", *(_cut(w, size, cut) for cut in cuts)] if cuts else None
    start = "0"
    for i, t in enumerate(node.types):
        if starts is not None:
            start = starts[i]
        stop = f"{start} + {w.dim(t.shape[axis])}"
        index = [":"] * t.ndim
        index[axis] = f"{start}:{stop}"
        w.define(node, i, f"{w.arg(x)}[{', '.join(index)}]")
        start = f"({stop})"


# ------------------------------------------------------------------------ matmul


def _np(dtype: np.dtype) -> str:
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


def _converted(w: Writer, value: Value, dtype: np.dtype) -> str:
    """The operand's array in the product's dtype, contiguous or F-contiguous (a 2-D
    transpose of a contiguous array, which BLAS reads transposed)."""
    return _converted_arg(w, value, dtype).expr


def _converted_arg(w: Writer, value: Value, dtype: np.dtype) -> Arg:
    """`_converted` as a kernel argument: C- or F-contiguous."""
    name = w.arg(value)
    t = TensorType(dtype, w.type_of(value).shape)
    if w.type_of(value).dtype != dtype:
        return array_arg(f"np.ascontiguousarray({name}).astype({_np(dtype)})", t, True)
    node = w.graph.node(value)
    if w.is_contiguous(value):
        return array_arg(name, t, True)
    if node.op == "transpose" and node.attrs["perm"] == (1, 0) and w.is_contiguous(node.inputs[0]):
        return Arg(name, ("array", dtype.name, t.ndim, "F"))
    return array_arg(f"np.ascontiguousarray({name})", t, True)


def _matrix_dims(t: TensorType, first: bool) -> tuple:
    """An operand's (rows, cols): a 1-D left operand is a row, a 1-D right one a column."""
    if t.ndim >= 2:
        return tuple(t.shape[-2:])
    return (1, t.shape[0]) if first else (t.shape[0], 1)


def _batched(w: Writer, value: Value, batch: tuple, dtype: np.dtype, first: bool) -> str:
    """A 3-D (batch, rows, cols) operand whose batch is the product's or 1."""
    t = w.type_of(value)
    rows, cols = _matrix_dims(t, first)
    own = tuple(t.shape[:-2]) if t.ndim >= 2 else ()
    name = w.contiguous_arg(value)
    if t.dtype != dtype:
        name = f"{name}.astype({_np(dtype)})"
    matrix = f"{w.dim(rows)}, {w.dim(cols)}"
    if all(d == 1 for d in own):
        return f"{name}.reshape((1, {matrix}))"
    size = w.size(TensorType(dtype, batch))
    if own == batch:
        return f"{name}.reshape(({size}, {matrix}))"
    full = w.shape(TensorType(dtype, (*batch, rows, cols)))
    padded = w.shape(TensorType(dtype, (*((1,) * (len(batch) - len(own))), *own, rows, cols)))
    return (
        f"np.ascontiguousarray(np.broadcast_to({name}.reshape({padded}), {full}))"
        f".reshape(({size}, {matrix}))"
    )


def emit_product(w: Writer, a: Value, b: Value, out: str, out_type: TensorType) -> None:
    """out = a @ b (numpy.matmul) into the C-contiguous array `out` of `out_type`."""
    dtype = out_type.dtype
    ta, tb = w.type_of(a), w.type_of(b)
    rows, cols = _matrix_dims(ta, True)[0], _matrix_dims(tb, False)[1]
    blas = dtype.kind == "f"
    if ta.ndim <= 2 and tb.ndim <= 2:
        am = _converted(w, a, dtype) if ta.ndim == 2 else _batched(w, a, (), dtype, True) + "[0]"
        bm = _converted(w, b, dtype) if tb.ndim == 2 else _batched(w, b, (), dtype, False) + "[0]"
        target = f"{out}.reshape(({w.dim(rows)}, {w.dim(cols)}))"
        kernel = "lib.dot" if blas else "lib.matmul_loops"
        w.line(f"{kernel}({am}, {bm}, {target})")
        return
    if blas and ta.ndim > 2 and tb.ndim == 2:
        # (..., M, K) @ (K, N): the batch folds into the rows, one GEMM of
        # (batch * M, K) @ (K, N) instead of a GEMM per batch entry
        rows_all = w.size(TensorType(dtype, tuple(ta.shape[:-1])))
        am = w.contiguous_arg(a)
        if ta.dtype != dtype:
            am = f"{am}.astype({_np(dtype)})"
        am = f"{am}.reshape(({rows_all}, {w.dim(ta.shape[-1])}))"
        target = f"{out}.reshape(({rows_all}, {w.dim(cols)}))"
        w.line(f"lib.dot({am}, {_converted(w, b, dtype)}, {target})")
        return
    both = ta.ndim >= 2 and tb.ndim >= 2
    batch = tuple(out_type.shape[:-2] if both else out_type.shape[:-1])
    a3 = _batched(w, a, batch, dtype, True)
    b3 = _batched(w, b, batch, dtype, False)
    size = w.size(TensorType(dtype, batch))
    target = f"{out}.reshape(({size}, {w.dim(rows)}, {w.dim(cols)}))"
    kernel = "lib.matmul_batched" if blas else "lib.matmul_batched_loops"
    w.line(f"{kernel}({a3}, {b3}, {target})")


@emits("matmul")
def _matmul(w: Writer, node: Node) -> None:
    a, b = node.inputs
    emit_product(w, a, b, w.out(node), w.type_of(node.outputs[0]))


def _without_product(body: tuple, n_in: int) -> tuple[int, tuple, dict[int, int]]:
    """The matmul step's position, the epilogue steps, and how flat indices move when the
    product becomes operand `n_in` (constant steps may precede the matmul)."""
    position = next(i for i, step in enumerate(body) if step[0] == "matmul")
    product = n_in + position
    moved = {product: n_in}
    for index in range(n_in, product):
        moved[index] = index + 1
    epilogue = tuple(
        (op, tuple(moved.get(x, x) for x in args), attrs)
        for i, (op, args, attrs) in enumerate(body)
        if i != position
    )
    return position, epilogue, moved


def _fused_matmul(w: Writer, node: Node) -> None:
    """A matmul and its epilogue. 2-D float products run by panels of rows (panel_rows), each
    finished by the epilogue while in cache; others compute the product whole first."""
    body, results = node.attrs["body"], node.attrs["results"]
    n_in = len(node.inputs)
    position, epilogue, moved = _without_product(body, n_in)
    ia, ib = body[position][1]
    a, b = node.inputs[ia], node.inputs[ib]
    product = lookup(body[position][0]).infer(w.type_of(a), w.type_of(b))
    results = tuple(moved.get(r, r) for r in results)
    if product.dtype.kind == "f" and w.type_of(a).ndim == 2 and w.type_of(b).ndim == 2:
        _panel_kernel(w, node, (ia, ib), product, epilogue, results)
        return
    temp = w.temp("product")
    w.line(f"{temp} = np.empty({w.shape(product)}, {_np(product.dtype)})")
    emit_product(w, a, b, temp, product)
    operands = [*operands_of(w, node), (temp, product, True)]
    emit_epilogue(w, node, epilogue, results, operands)


def _panel_kernel(
    w: Writer,
    node: Node,
    pair: tuple[int, int],
    product: TensorType,
    epilogue: tuple,
    results: tuple[int, ...],
) -> None:
    n_in = len(node.inputs)
    ia, ib = pair
    operands = [*operands_of(w, node), ("panel", product, True)]
    spec = loop_spec("epilogue", operands, epilogue, results, product.shape, panel=n_in)
    steps = " -> ".join(s[0] for s in epilogue)
    inputs = [f"a{i}" for i in range(n_in)]
    outs = [f"r{r}" for r in range(len(results))]
    dtype = _np(product.dtype)
    args = [array_arg(w.arg(v), w.type_of(v), w.is_contiguous(v)) for v in node.inputs]
    args[ia] = _converted_arg(w, node.inputs[ia], product.dtype)
    args[ib] = _converted_arg(w, node.inputs[ib], product.dtype)
    if args[ia].param[3] == "F":
        # a transpose (a weight gradient's xᵀ): BLAS reads it in place in one product,
        # where panels would copy each panel's rows first (512x512x128: 0.45 against
        # 0.76 ms); the epilogue then runs over the product, which stays in cache
        lines = [
            f"    # a{ia} @ a{ib} whole (a{ia} is a transpose BLAS reads in place), then the"
            " epilogue",
            f"    mm = lib.scratch(hi - lo, a{ib}.shape[1], {dtype})",
            f"    lib.dot_span(a{ia}, a{ib}, mm, lo, hi)",
            f"    epilogue({', '.join([*inputs, 'mm', *outs])}, lo, hi, n)",
        ]
    else:
        rows = panel_rows(product.shape[-1], product.dtype.itemsize)
        lines = [
            f"    # a{ia} @ a{ib} by panels of {rows} rows, each finished by the epilogue",
            f"    mm = lib.scratch(min({rows}, hi - lo), a{ib}.shape[1], {dtype})",
            f"    for start in range(lo, hi, {rows}):",
            f"        stop = min(start + {rows}, hi)",
            f"        lib.dot_rows(a{ia}, a{ib}, mm, start, stop)",
            f"        epilogue({', '.join([*inputs, 'mm', *outs])}, start, stop, n)",
        ]
    panel = "\n".join(
        [loops.DECORATOR, f"def kernel({', '.join(inputs + outs)}, lo, hi, n):", *lines]
    )
    # the epilogue is inlined into the panel loop by numba: one numba function less to
    # compile (about 0.1 s)
    epilogue_source = loops.elementwise_source(spec, f"matmul -> {steps}")
    epilogue_source = epilogue_source.replace(loops.DECORATOR, loops.INLINED, 1)
    source = epilogue_source + "\n\n" + panel
    args += [
        array_arg(w.out(node, i), w.type_of(node.outputs[i]), True) for i in range(len(results))
    ]
    extent, n = w.dim(product.shape[0]), sizes_arg(w, product.shape)
    # no node: never split across threads, BLAS runs each panel's product on its own
    w.run_kernel(source, args, extent, w.size(product), n, f"matmul -> {steps}")
