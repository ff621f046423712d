"""CUDA emitters of the elementwise ops, fused groups, reductions, reshapes and matmul.

Part of graphc.kernels. Importing this module (and nn.py, arrays.py) registers every
emitter of the CUDA target in the one registry (kernels/emit.py).
"""

from __future__ import annotations

from graphc.ir import Node
from graphc.kernels import control_writer, scalar
from graphc.kernels.cuda import arrays as _arrays  # noqa: F401  (registers the array ops)
from graphc.kernels.cuda.codegen import (
    Writer,
    elementwise_map,
    emit_loop,
    emit_reduction,
    emits,
    infer_types,
    numba_type,
)
from graphc.kernels.plan import LOOP_OPS
from graphc.types import TensorType


@emits(*LOOP_OPS)
def _loop(w: Writer, node: Node) -> None:
    emit_loop(w, node)


@emits("argmax", "argmin")
def _argextreme(w: Writer, node: Node) -> None:
    emit_reduction(w, node, list(node.inputs), (), node.op, node.attrs, 0)


@emits("fused")
def _fused(w: Writer, node: Node) -> None:
    if node.attrs["kind"] == "matmul":
        _fused_matmul(w, node)
    else:
        emit_loop(w, node)


@emits("reshape", "reshape_like", "expand_dims", "squeeze", alloc=False)
def _reshape(w: Writer, node: Node) -> None:
    # every device value is C-contiguous: a reshape is a view
    w.define(node, 0, f"{w.arg(node.inputs[0])}.reshape({w.shape(w.type_of(node.outputs[0]))})")


# ------------------------------------------------------------------ matmul


def _as_batched(t: TensorType, first: bool) -> tuple:
    """The operand's shape as (*batch, rows, cols): a 1-D `a` is a row, a 1-D `b` a column."""
    if t.ndim == 1:
        return (1, t.shape[0]) if first else (t.shape[0], 1)
    return t.shape


def emit_matmul(w: Writer, a_value, b_value, out: str, out_type: TensorType, comment: str) -> None:
    """out = a @ b (numpy.matmul, batch dims broadcast) with a tiled shared-memory kernel:
    a TILE x TILE block per output tile, the grid's z over the batch."""
    a_type, b_type = w.type_of(a_value), w.type_of(b_value)
    a_shape, b_shape = _as_batched(a_type, True), _as_batched(b_type, False)
    rank = max(len(a_shape), len(b_shape))
    batch_rank = rank - 2
    a_full = (1,) * (rank - len(a_shape)) + tuple(a_shape)
    b_full = (1,) * (rank - len(b_shape)) + tuple(b_shape)
    batch_out = []
    for k in range(batch_rank):
        da, db = a_full[k], b_full[k]
        batch_out.append(db if da == 1 else da)
    dtype = out_type.dtype
    ctor = scalar.ctor(dtype)
    add = "|" if dtype.kind == "b" else "+"
    mul = "&" if dtype.kind == "b" else "*"
    zero = scalar.literal(0, dtype)
    lines = [
        f"sa = cuda.shared.array((TILE, TILE), {numba_type(dtype)})",
        f"sb = cuda.shared.array((TILE, TILE), {numba_type(dtype)})",
        "tx = cuda.threadIdx.x",
        "ty = cuda.threadIdx.y",
        "m = a.shape[a.ndim - 2]",
        "kk = a.shape[a.ndim - 1]",
        "nn = b.shape[b.ndim - 1]",
        "z = cuda.blockIdx.z",
        "while z < nb:",
    ]
    inner = ["q = z"]
    for k in range(batch_rank - 1, -1, -1):
        inner += [f"z{k} = q % out.shape[{k}]", f"q //= out.shape[{k}]"]
    ai = [f"min(z{k}, a.shape[{k}] - 1)" for k in range(batch_rank)]
    bi = [f"min(z{k}, b.shape[{k}] - 1)" for k in range(batch_rank)]
    oi = [f"z{k}" for k in range(batch_rank)]
    inner += [
        "y0 = cuda.blockIdx.y",
        "while y0 * TILE < m:",
        "    x0 = cuda.blockIdx.x",
        "    while x0 * TILE < nn:",
        "        row = y0 * TILE + ty",
        "        col = x0 * TILE + tx",
        f"        acc = {zero}",
        "        for p0 in range(0, kk, TILE):",
        "            p = p0 + tx",
        f"            sa[ty, tx] = {ctor}(a[{', '.join([*ai, 'row', 'p'])}]) "
        f"if row < m and p < kk else {zero}",
        "            p = p0 + ty",
        f"            sb[ty, tx] = {ctor}(b[{', '.join([*bi, 'p', 'col'])}]) "
        f"if p < kk and col < nn else {zero}",
        "            cuda.syncthreads()",
        "            for t in range(TILE):",
        f"                acc = acc {add} (sa[ty, t] {mul} sb[t, tx])",
        "            cuda.syncthreads()",
        "        if row < m and col < nn:",
        f"            out[{', '.join([*oi, 'row', 'col'])}] = acc",
        "        x0 += cuda.gridDim.x",
        "    y0 += cuda.gridDim.y",
        "z += cuda.gridDim.z",
    ]
    lines += ["    " + line for line in inner]
    name = w.kernel(["nb", "a", "b", "out"], lines, comment)
    a_name, b_name = w.arg(a_value), w.arg(b_value)
    out_shape = (*batch_out, a_full[-2], b_full[-1])

    def shaped(name: str, shape: tuple) -> str:
        return f"{name}.reshape({w.shape(TensorType(dtype, shape))})"

    nb = "1"
    for d in batch_out:
        nb = f"{nb} * {w.dim(d)}"
    rows, cols = w.dim(a_full[-2]), w.dim(b_full[-1])
    count = w.temp("n")
    w.line(f"{count} = {nb} * {rows} * {cols}")
    w.line(f"if {count} > 0:")
    w.line(
        f"    {name}[(launch.tiles({cols}), launch.tiles({rows}), "
        f"min({nb}, launch.MAX_TILES)), (TILE, TILE), stream]({nb}, {shaped(a_name, a_full)}, "
        f"{shaped(b_name, b_full)}, {shaped(out, out_shape)})"
    )
    # (an empty contraction writes zeros: acc starts at 0)


@emits("matmul")
def _matmul(w: Writer, node: Node) -> None:
    a, b = node.inputs
    emit_matmul(w, a, b, w.out(node), w.type_of(node.outputs[0]), "matmul")


def _fused_matmul(w: Writer, node: Node) -> None:
    """A matmul and its elementwise epilogue: the product into a temporary, then one map
    kernel over the rest of the body with the product as one more operand."""
    body, results = node.attrs["body"], node.attrs["results"]
    n_in = len(node.inputs)
    position = next(i for i, step in enumerate(body) if step[0] == "matmul")
    _, (ia, ib), _ = body[position]
    input_types = [w.type_of(v) for v in node.inputs]
    product_type = infer_types(input_types, body)[n_in + position]
    temp = w.temp("product")
    dtype = scalar.ctor(product_type.dtype)
    w.line(f"{temp} = launch.empty({w.shape(product_type)}, {dtype}, stream)")
    emit_matmul(w, node.inputs[ia], node.inputs[ib], temp, product_type, "matmul (fused)")

    def moved(v: int) -> int:  # the body's values with the product as operand n_in
        if v < n_in or v > n_in + position:
            return v
        return n_in if v == n_in + position else v + 1

    epilogue = tuple(
        (op, tuple(moved(a) for a in args), attrs)
        for i, (op, args, attrs) in enumerate(body)
        if i != position
    )
    operand_types = [*input_types, product_type]
    arrays = [w.flat_arg(v) for v in node.inputs] + [temp]
    comment = " -> ".join(step[0] for step in epilogue) or "copy"
    results = tuple(moved(v) for v in results)
    elementwise_map(
        w, node, arrays, operand_types, epilogue, results, f"matmul epilogue: {comment}"
    )


# ------------------------------------------------------------------ control flow

control_writer.register("cuda")
