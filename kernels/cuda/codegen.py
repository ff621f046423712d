"""The CUDA code generator: a kernel program becomes one Python module of numba.cuda code.

Part of graphc.kernels. The module holds one ``@cuda.jit`` kernel per step of the
program (a fused group is one kernel) and `entry(stream, dims, arena, err, *inputs,
*variables, *constants)`: plain Python that binds the run-time sizes, carves
temporaries out of the device arena, launches the kernels in order on `stream` and
returns the fetched device arrays followed by the new variable states that were not
computed in place. Above each launch is the IR line it implements (Function.source).

Every device value is C-contiguous: reshapes are free views, and the ops that are
strided views on the CPU (transpose, slice, broadcast_to, split) copy. Kernels loop
over their work with a grid stride, so any grid computes the same result (launch.py).
A kernel that can find a bad index (take, gather) sets `err[0]` and reads a clamped
index; the runtime raises after the call.

Most ops are *map kernels* (`Writer.map`): one thread per point of an iteration
space, whose body an emitter writes. Reductions (`emit_reduction`) run one block per
output element with a tree reduction in shared memory; matmul (ops.py) is tiled.

The frame of the entry (names, storage, sources, returns, the arena) is the writer both
targets share (kernels/writer.py); this one adds kernels and launches. Emitters
register in the one registry of every target (kernels/emit.py). The module's text is
the same on numba's CUDA simulator as on a GPU, so CI runs what a GPU runs.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import Node, Value
from graphc.kernels import control_writer, rows, scalar, text, writer
from graphc.kernels import emit as emitters
from graphc.kernels import plan as planning
from graphc.kernels.control_writer import BodyWriting
from graphc.kernels.writer import EntryWriter
from graphc.ops.fused import body_types
from graphc.types import Dim, TensorType

# the same text on numba's simulator as on a GPU (the simulator ignores the cache)
DECORATOR = "@cuda.jit(cache=True)"
HEADER = '''"""graphc generated CUDA module: {what} (see Function.source)."""

import math

import numba
import numpy as np
from numba import cuda

from graphc.kernels.cuda import launch
from graphc.kernels.cuda import lib as cl

BLOCK = launch.BLOCK
TILE = launch.TILE
'''


@dataclass(frozen=True)
class Generated:
    """A generated module: its source and what the runtime needs to call it."""

    source: str
    program: planning.Program
    returns: tuple[Value, ...]  # what entry returns: outputs, then new states
    new_states: tuple[int, ...]  # variable node ids whose new array entry returns
    constants: tuple[int, ...]  # constant node ids the entry takes, after the variables
    checks: bool  # whether kernels may set err (a bad index)

    @property
    def listing(self) -> str:
        """Everything generated: this backend writes its kernels into the one module."""
        return self.source


# the CUDA backend's emitters, in the registry of every target (graphc/kernels/emit.py)
emits = functools.partial(emitters.emits, "cuda")


def numba_type(dtype: np.dtype) -> str:
    """The numba type of `dtype` as source text (for shared arrays)."""
    return "numba.boolean" if dtype.kind == "b" else f"numba.{np.dtype(dtype).name}"


class Writer(EntryWriter):
    """Writes the entry function (the frame: writer.py) and the kernels it launches."""

    target = "cuda"

    def __init__(self, program: planning.Program) -> None:
        super().__init__(program)
        self.kernels: list[str] = []
        self.checks = False

    # ---- the target's statements

    def carve(self, start: str, tensor_type: TensorType) -> str:
        dtype = scalar.ctor(tensor_type.dtype)
        return f"launch.carve(arena, {start}, {self.shape(tensor_type)}, {dtype}, stream)"

    def empty(self, tensor_type: TensorType) -> str:
        dtype = scalar.ctor(tensor_type.dtype)
        return f"launch.empty({self.shape(tensor_type)}, {dtype}, stream)"

    def copy(self, name: str) -> str:
        return f"launch.copy({name}, stream)"

    # ---- control flow (kernels/control_writer.py): a host loop launching kernels

    def body_writer(self, body: Any) -> Any:
        return BodyWriter(self, body)

    def operand(self, value: Value) -> str:
        """The device array of `value` (every device value is C-contiguous)."""
        return control_writer.bound(self, self.arg(value))

    def holds(self, expression: str) -> str:
        return f"launch.holds({expression})"

    def row(self, expression: str, t: str, ndim: int) -> str:
        return f"launch.row({expression}, {t})"

    def store_row(self, target: str, t: str, expression: str, row: TensorType) -> str:
        return f"launch.store({target}, {t}, {expression}, stream)"

    def full(self, shape: str, value: str) -> str:
        return f"launch.full({shape}, {value}, stream)"

    # ---- kernels

    def kernel(self, params: list[str], body: list[str], comment: str) -> str:
        """Add a kernel with `params` and `body` (unindented lines); its name."""
        name = f"k{len(self.kernels)}"
        lines = [DECORATOR, f"def {name}({', '.join(params)}):"]
        lines.append(f"    # {text.comment(comment)}")
        lines += text.indent(body)
        self.kernels.append("\n".join(lines) + "\n")
        return name

    def launch(self, kernel: str, count: str, args: list[str]) -> None:
        """Launch a 1-D grid-stride kernel over `count` items, when there are any."""
        n = self.temp("n")
        self.line(f"{n} = {count}")
        self.line(f"if {n} > 0:")
        self.line(f"    {kernel}[launch.grid({n}), BLOCK, stream]({', '.join([n, *args])})")

    def map(
        self,
        arrays: list[str],
        extents: list[str],
        body: list[str],
        comment: str,
        scalars: tuple[str, ...] = (),
    ) -> None:
        """A kernel running `body` once per point (j0, j1, ...) of the iteration space
        `extents` (entry expressions; n0, n1, ... in the body), with `arrays` as a0, a1,
        ... and `scalars` as e0, e1, ...; `err` is the error flag when self.checks."""
        rank = len(extents)
        params = ["n", *(f"n{k}" for k in range(rank)), *(f"a{i}" for i in range(len(arrays)))]
        params += [f"e{i}" for i in range(len(scalars))]
        uses_err = any("err" in line for line in body)
        if uses_err:
            params.append("err")
            self.checks = True
        lines = ["i = cuda.grid(1)", "while i < n:"]
        if rank:
            lines.append("    q = i")
            for k in range(rank - 1, 0, -1):
                lines += [f"    j{k} = q % n{k}", f"    q //= n{k}"]
            lines.append("    j0 = q")
        lines += text.indent(body)
        lines.append("    i += cuda.gridsize(1)")
        name = self.kernel(params, lines, comment)
        args = [*extents, *arrays, *scalars] + (["err"] if uses_err else [])
        self.launch(name, text.product(extents), args)

    def flat_arg(self, value: Value) -> str:
        """A value's device array, a 0-d one as one element (kernels index [0])."""
        name = self.arg(value)
        return f"launch.flat({name})" if self.type_of(value).ndim == 0 else name


class BodyWriter(BodyWriting, Writer):
    """Writes one control-flow body's statements for an enclosing CUDA writer: its
    kernels join the module's, and its launches run in the host loop."""

    def __init__(self, outer: Writer, body: Any) -> None:
        super().__init__(control_writer.body_program(body, outer.program))
        self.kernels = outer.kernels  # (one list: names stay distinct)
        self.outer = outer
        self.prefix = outer.temp("b") + "_"

    def kernel(self, params: list[str], body: list[str], comment: str) -> str:
        name = super().kernel(params, body, comment)
        self.outer.checks = self.outer.checks or self.checks
        return name

    def map(self, *args: Any, **kwargs: Any) -> None:
        super().map(*args, **kwargs)
        self.outer.checks = self.outer.checks or self.checks

    def fresh(self, expression: str, index: int) -> str:
        return expression  # (device values are C-contiguous; results are not inputs)


def broadcast_index(t: TensorType, array: str, shape: tuple[Dim, ...], index: list[str]) -> str:
    """`array`'s element read at point `index` of an iteration space of `shape` into
    which `t` broadcasts (aligned right; a run-time size of 1 broadcasts too)."""
    if t.ndim == 0:
        return f"{array}[0]"
    rank = len(shape)
    parts = []
    for axis, d in enumerate(t.shape):
        k = rank - t.ndim + axis
        if d == 1:
            parts.append("0")
        elif d == shape[k]:
            parts.append(index[k])
        else:
            parts.append(f"min({index[k]}, {array}.shape[{axis}] - 1)")
    return f"{array}[{', '.join(parts)}]"


def infer_types(operand_types: list[TensorType], body: tuple) -> list[TensorType]:
    """The types of the operands and then of every step's value."""
    return body_types(tuple(operand_types), body)


def body_lines(
    operand_types: list[TensorType],
    body: tuple,
    shape: tuple[Dim, ...],
    index: list[str],
) -> tuple[list[str], list[TensorType]]:
    """Statements computing x0, x1, ... (operands as a0, a1, ..., then each step) at
    point `index` of `shape`, and every value's type."""
    types = infer_types(operand_types, body)
    used = {a for _, args, _ in body for a in args}
    lines = [
        f"x{i} = {broadcast_index(t, f'a{i}', shape, index)}"
        for i, t in enumerate(operand_types)
        if i in used
    ]
    for position, (op, args, attrs) in enumerate(body, start=len(operand_types)):
        out_type = types[position]
        if op == "constant":
            value = attrs["value"].array.reshape(-1)[0]
            lines.append(f"x{position} = {scalar.literal(value, out_type.dtype)}")
            continue
        expression = scalar.formula(
            op,
            [f"x{a}" for a in args],
            [types[a].dtype for a in args],
            out_type.dtype,
            attrs,
            scalar.CUDA,
        )
        lines.append(f"x{position} = {expression}")
    return lines, types


def loop_body(loop: planning.Loop) -> tuple[list[Value], tuple, tuple[int, ...]]:
    """A Loop record (plan.py) as this backend's kernels read it: its array operands,
    and a body, over the flat list of those arrays and then each step's value, whose
    first steps are the Loop's scalar constants (literals in the kernel); its results."""
    arrays = [i for i, o in enumerate(loop.operands) if not o.is_scalar]
    scalars = [i for i, o in enumerate(loop.operands) if o.is_scalar]
    where = {old: new for new, old in enumerate(arrays + scalars)}
    n = len(loop.operands)
    where.update({n + k: n + k for k in range(len(loop.body))})
    constants = tuple(("constant", (), {"value": loop.operands[i].constant}) for i in scalars)
    body = constants + tuple(
        (step.op, tuple(where[a] for a in step.args), step.attrs) for step in loop.body
    )
    values = [loop.operands[i].value for i in arrays]
    return values, body, tuple(where[r] for r in loop.results)  # type: ignore[misc]


def emit_loop(w: Writer, node: Node) -> None:
    """The kernel of `node`'s plan.Loop record: one map kernel for an elementwise loop
    (its inputs broadcast), a block reduction for a reduction loop."""
    loop = w.records[node.id]
    operands, body, results = loop_body(loop)
    if loop.row:
        emit_rows(w, node, operands, body, results, loop.shape, loop.row)
    elif loop.reduction is None:
        arrays = [w.flat_arg(v) for v in operands]
        comment = " -> ".join(step[0] for step in body) or "copy"
        types = [w.type_of(v) for v in operands]
        elementwise_map(w, node, arrays, types, body, results, comment)
    else:
        op, (source,), attrs = body[-1]
        emit_reduction(w, node, operands, body[:-1], op, attrs, source)


def elementwise_map(
    w: Writer,
    node: Node,
    arrays: list[str],
    types: list[TensorType],
    body: tuple,
    results: tuple[int, ...],
    comment: str,
) -> None:
    """The map kernel of an elementwise `body` over operand `arrays` of `types`, writing
    the body's values `results` to the node's outputs."""
    shape = w.type_of(node.outputs[0]).shape
    index = [f"j{k}" for k in range(len(shape))]
    lines, value_types = body_lines(types, body, shape, index)
    arrays = list(arrays)
    target = "[0]" if not shape else f"[{', '.join(index)}]"
    for r, result in enumerate(results):
        out = w.type_of(node.outputs[r])
        value = f"x{result}"
        if value_types[result].dtype != out.dtype:
            value = f"{scalar.ctor(out.dtype)}({value})"
        if result < len(types) and not any(line.startswith(f"x{result} =") for line in lines):
            lines.append(
                f"x{result} = {broadcast_index(types[result], f'a{result}', shape, index)}"
            )
        lines.append(f"a{len(arrays)}{target} = {value}")
        arrays.append(f"launch.flat({w.out(node, r)})" if not shape else w.out(node, r))
    w.map(arrays, [w.dim(d) for d in shape], lines, comment)


def emit_rows(
    w: Writer,
    node: Node,
    operands: list[Value],
    body: tuple,
    results: tuple[int, ...],
    shape: tuple[Dim, ...],
    k: int,
) -> None:
    """The kernel of a row group (kernels/rows.py): one thread per row, which takes its
    row through the group's loops; a vector read again in a later loop is computed
    again or read back from its output (a thread has no scratch row)."""
    types = [w.type_of(v) for v in operands]
    value_types = tuple(infer_types(types, body))
    rank, lead = len(shape), len(shape) - k
    index = [f"j{a}" for a in range(rank)]
    plan = rows.plan_rows(tuple(types), body, value_types, results, shape, k, False)

    def store(r: int, vector: bool) -> str:
        point = index if vector else index[:lead] + ["0"] * k
        return f"r{r}[{', '.join(point)}]"

    target = rows.RowTarget(
        load=lambda i: broadcast_index(types[i], f"a{i}", shape, index),
        index=lambda axis: index[axis],
        extent=lambda axis: f"n{axis}",
        store=store,
        scratch=lambda v: "",  # (never asked for: no scratch rows)
        target=scalar.CUDA,
        combine=lambda op, a, b, dtype: _combine(op, a, b, dtype),
        nan_blind=False,
    )
    statements = rows.row_statements(plan, tuple(types), body, value_types, shape, k, target)
    lines = ["i = cuda.grid(1)", "while i < n:", "    q = i"]
    for axis in range(lead - 1, 0, -1):
        lines += [f"    j{axis} = q % n{axis}", f"    q //= n{axis}"]
    lines.append("    j0 = q")
    lines += text.indent(statements)
    lines.append("    i += cuda.gridsize(1)")
    params = ["n", *(f"n{a}" for a in range(rank)), *(f"a{i}" for i in range(len(operands)))]
    params += [f"r{r}" for r in range(len(results))]
    comment = " -> ".join(step[0] for step in body)
    name = w.kernel(params, lines, comment)
    args = [*(w.dim(d) for d in shape), *(w.flat_arg(v) for v in operands)]
    args += [w.out(node, r) for r in range(len(results))]
    w.launch(name, text.product([w.dim(d) for d in shape[:lead]]), args)


def _combine(op: str, a: str, b: str, dtype: np.dtype) -> str:
    if op == "sum":
        return f"({a} | {b})" if dtype.kind == "b" else f"({a} + {b})"
    if op == "prod":
        return f"({a} & {b})" if dtype.kind == "b" else f"({a} * {b})"
    return f"cl.{op}nan({a}, {b})"


def reduce_axes(attrs: Any, rank: int) -> tuple[int, ...]:
    axes = attrs.get("axes", attrs.get("axis"))
    if axes is None:
        return tuple(range(rank))
    if isinstance(axes, int):
        axes = (axes,)
    return tuple(sorted(a % rank for a in axes)) if rank else ()


def _unravel(names: list[str], axes: list[int], flat: str) -> list[str]:
    """Lines setting j<axis> for `axes` (C order) from the flat index `flat`."""
    if not axes:
        return []
    lines = [f"q = {flat}"]
    for k in reversed(axes[1:]):
        lines += [f"{names[k]} = q % n{k}", f"q //= n{k}"]
    lines.append(f"{names[axes[0]]} = q")
    return lines


def emit_reduction(
    w: Writer,
    node: Node,
    operands: list[Value],
    prologue: tuple,
    op: str,
    attrs: Any,
    source: int,
) -> None:
    """out = `op` (sum, prod, max, min, argmax, argmin) over the reduced axes of value
    `source` of the elementwise `prologue` over `operands`: one block per output
    element, a strided partial reduction per thread, then a tree in shared memory."""
    types = [w.type_of(v) for v in operands]
    shape = infer_types(types, prologue)[source].shape  # the prologue's iteration space
    rank = len(shape)
    axes = reduce_axes(attrs, rank)
    kept = [k for k in range(rank) if k not in axes]
    index = [f"j{k}" for k in range(rank)]
    lines, value_types = body_lines(types, prologue, shape, index)
    if source < len(types):
        lines.append(f"x{source} = {broadcast_index(types[source], f'a{source}', shape, index)}")
    in_dtype = value_types[source].dtype
    out_dtype = w.type_of(node.outputs[0]).dtype
    arg = op in ("argmax", "argmin")
    if arg:
        acc_dtype = in_dtype
        extreme = "max" if op == "argmax" else "min"
    else:
        wide = op in ("sum", "prod") and out_dtype.kind == "f"
        acc_dtype = np.dtype(np.float64) if wide else out_dtype
        extreme = op
    ctor = scalar.ctor(acc_dtype)
    n_out = text.product([w.dim(shape[k]) for k in kept])
    m = text.product([w.dim(shape[k]) for k in axes])
    body = [f"sh = cuda.shared.array(BLOCK, {numba_type(acc_dtype)})"]
    if arg:
        body.append("si = cuda.shared.array(BLOCK, numba.int64)")
    body += ["t = cuda.threadIdx.x", "o = cuda.blockIdx.x", "while o < n_out:"]
    inner = [*_unravel(index, kept, "o"), f"acc = {scalar.identity(extreme, acc_dtype)}"]
    if arg:
        inner.append("best = m")
    inner += ["r = t", "while r < m:"]
    step = [*_unravel(index, list(axes), "r"), *lines, f"x = {ctor}(x{source})"]
    if arg:
        step += [
            "if cl.better(x, r, acc, best, " + ("True" if extreme == "max" else "False") + "):"
        ]
        step += ["    acc = x", "    best = r"]
    else:
        step.append(f"acc = {_combine(op, 'acc', 'x', acc_dtype)}")
    step.append("r += BLOCK")
    inner += ["    " + line for line in step]
    inner += ["sh[t] = acc"] + (["si[t] = best"] if arg else []) + ["cuda.syncthreads()"]
    inner += ["s = BLOCK // 2", "while s > 0:", "    if t < s:"]
    if arg:
        flag = "True" if extreme == "max" else "False"
        inner += [
            f"        if cl.better(sh[t + s], si[t + s], sh[t], si[t], {flag}):",
            "            sh[t] = sh[t + s]",
            "            si[t] = si[t + s]",
        ]
        total = "si[0]"
    else:
        inner.append(f"        sh[t] = {_combine(op, 'sh[t]', 'sh[t + s]', acc_dtype)}")
        total = "sh[0]"
    inner += ["    cuda.syncthreads()", "    s //= 2", "if t == 0:"]
    inner += [f"    r0[o] = {scalar.ctor(out_dtype)}({total})", "cuda.syncthreads()"]
    inner.append("o += cuda.gridDim.x")
    body += ["    " + line for line in inner]
    params = ["n_out", "m", *(f"n{k}" for k in range(rank))]
    params += [f"a{i}" for i in range(len(operands))] + ["r0"]
    comment = " -> ".join([*(s[0] for s in prologue), op])
    name = w.kernel(params, body, comment)
    arrays = [w.flat_arg(v) for v in operands]
    count = w.temp("n")
    w.line(f"{count} = {n_out}")
    w.line(f"if {count} > 0:")
    args = [count, m, *(w.dim(d) for d in shape), *arrays, f"launch.flat({w.out(node)})"]
    w.line(f"    {name}[min({count}, launch.MAX_BLOCKS), BLOCK, stream]({', '.join(args)})")


# ------------------------------------------------------------------ the module


def generate(program: planning.Program) -> Generated:
    """The module source of `program` (see the module docstring)."""
    w = Writer(program)
    body = w.write()
    w.line(f"return {text.tuple_expr(list(body.returns))}")
    params = ["stream", "dims", "arena", "err", *body.params]
    statements = "\n".join(text.indent(w.lines))
    parts = [
        HEADER.format(what="the kernels and entry of one graph"),
        planning.source_types(program),
        *w.kernels,
        f"def entry({', '.join(params)}):\n{statements}\n",
        writer.arena_function(program, "device arena"),
    ]
    source = "\n\n".join(p.rstrip("\n") + "\n" for p in parts)
    return Generated(source, program, body.values, body.new_states, body.constants, w.checks)
