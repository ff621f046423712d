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
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import Node, Value
from graphc.kernels import plan as planning
from graphc.kernels import scalar, text
from graphc.kernels.cuda import launch, lib
from graphc.printer import format_node
from graphc.registry import lookup
from graphc.types import Dim, TensorType

DIALECT = scalar.CUDA
DECORATOR = "@cuda.jit" if lib.SIMULATED else "@cuda.jit(cache=True)"
HEADER = '''"""graphc generated CUDA module: {what} (see Function.source)."""

import math

import numba
import numpy as np
from numba import cuda

from graphc.kernels.cuda import launch
from graphc.kernels.cuda import lib as cl

BLOCK = {block}
TILE = {tile}
'''
REDUCTIONS = ("sum", "prod", "max", "min")


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


EMITTERS: dict[str, tuple[Any, bool]] = {}


def emits(*ops: str, alloc: bool = True) -> Any:
    """Register the decorated function as the CUDA emitter of `ops` (see cpu/emit.py:
    with alloc=True the output device arrays exist before the emitter runs)."""

    def register(fn: Any) -> Any:
        for op in ops:
            if op in EMITTERS:
                raise ValueError(f"op {op!r} already has a CUDA emitter")
            EMITTERS[op] = (fn, alloc)
        return fn

    return register


def numba_type(dtype: np.dtype) -> str:
    """The numba type of `dtype` as source text (for shared arrays)."""
    return "numba.boolean" if dtype.kind == "b" else f"numba.{np.dtype(dtype).name}"


def _tuple(items: list[str]) -> str:
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


class Writer:
    """Builds the entry function and the kernels it launches."""

    def __init__(self, program: planning.Program) -> None:
        self.program = program
        self.graph = program.graph
        self.lines: list[str] = []
        self.kernels: list[str] = []
        self.names: dict[Value, str] = {}
        self.used: set[Value] = set()
        self.checks = False
        self._counter = 0

    # ---- values and sizes

    def arg(self, value: Value) -> str:
        self.used.add(value)
        return self.names[value]

    def out(self, node: Node, index: int = 0) -> str:
        return self.names[Value(node.id, index)]

    def define(self, node: Node, index: int, expression: str) -> None:
        value = Value(node.id, index)
        name = self.name(value)
        self.line(f"{name} = {expression}")
        self.names[value] = name

    def name(self, value: Value) -> str:
        return f"v{value.node}" if value.index == 0 else f"v{value.node}_{value.index}"

    def dim(self, dim: Dim) -> str:
        return str(dim) if isinstance(dim, int) else f"d{self.program.slot(dim)}"

    def shape(self, tensor_type: TensorType) -> str:
        return _tuple([self.dim(d) for d in tensor_type.shape])

    def size(self, tensor_type: TensorType) -> str:
        return product([self.dim(d) for d in tensor_type.shape])

    def type_of(self, value: Value) -> TensorType:
        return self.graph.type_of(value)

    def line(self, statement: str) -> None:
        self.lines.append(statement)

    def temp(self, hint: str = "t") -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    # ---- kernels

    def kernel(self, params: list[str], body: list[str], comment: str) -> str:
        """Add a kernel with `params` and `body` (unindented lines); its name."""
        name = f"k{len(self.kernels)}"
        lines = [DECORATOR, f"def {name}({', '.join(params)}):"]
        lines.append(f"    # {text.comment(comment)}")
        lines += ["    " + line for line in body]
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
        lines += ["    " + line for line in body]
        lines.append("    i += cuda.gridsize(1)")
        name = self.kernel(params, lines, comment)
        args = [*extents, *arrays, *scalars] + (["err"] if uses_err else [])
        self.launch(name, product(extents), args)

    def flat_arg(self, value: Value) -> str:
        """A value's device array, a 0-d one as one element (kernels index [0])."""
        name = self.arg(value)
        return f"launch.flat({name})" if self.type_of(value).ndim == 0 else name


def product(factors: list[str]) -> str:
    """The product of size expressions; "1" for none."""
    known = 1
    rest = []
    for f in factors:
        if f.isdigit():
            known *= int(f)
        else:
            rest.append(f)
    if known == 0 or not rest:
        return str(known)
    return " * ".join(rest if known == 1 else [str(known), *rest])


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
    types = list(operand_types)
    for op, args, attrs in body:
        opdef = lookup(op)
        inferred = opdef.infer(*(types[a] for a in args), **opdef.check_attrs(attrs))
        types.append(inferred[0] if isinstance(inferred, tuple) else inferred)
    return types


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
            DIALECT,
        )
        lines.append(f"x{position} = {expression}")
    return lines, types


def scalar_constants(w: Writer, node: Node, body: tuple, results: tuple[int, ...]) -> tuple:
    """The node's operand values with its one-element constant inputs turned into
    constant steps at the start of the body (literals in the kernel)."""
    operands: list[Value] = []
    steps: list[tuple] = []
    where: dict[int, tuple[str, int]] = {}
    for i, v in enumerate(node.inputs):
        producer = w.graph.node(v)
        if producer.op == "constant" and producer.attrs["value"].array.size == 1:
            where[i] = ("step", len(steps))
            steps.append(("constant", (), producer.attrs))
        else:
            where[i] = ("operand", len(operands))
            operands.append(v)
    n_in, n_ops = len(node.inputs), len(operands)

    def moved(index: int) -> int:
        if index >= n_in:
            return index - n_in + n_ops + len(steps)
        kind, position = where[index]
        return position if kind == "operand" else n_ops + position

    new_body = tuple(steps) + tuple(
        (op, tuple(moved(a) for a in args), attrs) for op, args, attrs in body
    )
    return operands, new_body, tuple(moved(r) for r in results)


def emit_elementwise(w: Writer, node: Node, body: tuple, results: tuple[int, ...]) -> None:
    """One map kernel computing the results of an elementwise `body` over the node's
    inputs (broadcast), written to the node's outputs."""
    operands, body, results = scalar_constants(w, node, body, results)
    arrays = [w.flat_arg(v) for v in operands]
    comment = " -> ".join(step[0] for step in body) or "copy"
    elementwise_map(w, node, arrays, [w.type_of(v) for v in operands], body, results, comment)


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
    n_out = product([w.dim(shape[k]) for k in kept])
    m = product([w.dim(shape[k]) for k in axes])
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


def _allocate(w: Writer, value: Value, offsets: dict[int, str]) -> None:
    program = w.program
    t = w.type_of(value)
    name = w.name(value)
    home = program.home[value]
    dtype = scalar.ctor(t.dtype)
    if home == "arena":
        start = offsets[program.arena_slot[value]]
        w.line(f"{name} = launch.carve(arena, {start}, {w.shape(t)}, {dtype}, stream)")
    elif home == "state":
        w.line(f"{name} = {w.names[Value(program.state_of[value])]}")
    else:
        w.line(f"{name} = launch.empty({w.shape(t)}, {dtype}, stream)")
    w.names[value] = name


def _arena_layout(w: Writer) -> tuple[dict[int, str], str]:
    """Each buffer's byte offset (an expression of d-variables) and the total size."""
    lines, offsets, total = planning.arena_layout(w.program, w.size)
    w.lines += lines
    return offsets, total


def _bind_sources(w: Writer, params: list[str]) -> None:
    program = w.program
    for k, node_id in enumerate(program.inputs):
        params.append(f"in{k}")
        w.names[Value(node_id)] = f"in{k}"
    for k, node_id in enumerate(program.variables):
        params.append(f"var{k}")
        w.names[Value(node_id)] = f"var{k}"
    for k, node_id in enumerate(program.constants):
        w.names[Value(node_id)] = f"const{k}"


def _returns(w: Writer) -> tuple[list[str], tuple[Value, ...], tuple[int, ...]]:
    program, g = w.program, w.graph
    exprs, values = [], []
    for i, v in enumerate(g.outputs):
        name = w.arg(v)
        exprs.append(f"launch.copy({name}, stream)" if i in program.copied_outputs else name)
        values.append(v)
    fetched = set(g.outputs)
    new_states, seen = [], set()
    for variable, v in g.updates:
        if program.home[v] == "state":
            continue
        name = w.arg(v)
        fresh = program.home[v] == "fresh" and v not in fetched and v not in seen
        exprs.append(name if fresh else f"launch.copy({name}, stream)")
        values.append(v)
        new_states.append(variable)
        seen.add(v)
    return exprs, tuple(values), tuple(new_states)


def generate(program: planning.Program) -> Generated:
    """The module source of `program` (see the module docstring)."""
    from graphc.kernels.cuda import nn, ops  # noqa: F401  (registers every emitter)

    w = Writer(program)
    params: list[str] = []
    for node_id in (*program.inputs, *program.variables, *program.constants):
        w.line(f"# {text.comment(format_node(w.graph.by_id[node_id]))}")
    for k, sym in enumerate(program.dims):
        w.line(f"d{k} = dims[{k}]  # {text.comment(str(sym))}")
    _bind_sources(w, params)
    offsets, _ = _arena_layout(w)
    for node in program.steps:
        w.line(f"# {text.comment(format_node(node))}")
        entry = EMITTERS.get(node.op)
        if entry is None:
            raise NotImplementedError(f"the CUDA backend has no emitter for op {node.op!r}")
        emit, alloc = entry
        if alloc:
            for value in node.outputs:
                _allocate(w, value, offsets)
        emit(w, node)
    exprs, values, new_states = _returns(w)
    constants = tuple(i for i in program.constants if Value(i) in w.used)
    params += [w.names[Value(i)] for i in constants]
    w.line("return " + _tuple(exprs))
    header = HEADER.format(
        what="the kernels and entry of one graph", block=launch.BLOCK, tile=launch.TILE
    )
    body = "\n".join("    " + line for line in w.lines)
    entry_source = f"def entry({', '.join(['stream', 'dims', 'arena', 'err', *params])}):\n{body}\n"
    parts = [header, planning.source_types(program), *w.kernels, entry_source]
    parts.append(_arena_function(w))
    source = "\n\n".join(p.rstrip("\n") + "\n" for p in parts)
    return Generated(source, program, values, new_states, constants, w.checks)


def _arena_function(w: Writer) -> str:
    lines = ["def arena_bytes(dims):", '    """Bytes of device arena one call needs."""']
    for k in range(len(w.program.dims)):
        lines.append(f"    d{k} = int(dims[{k}])")
    shadow = Writer(w.program)
    _, total = _arena_layout(shadow)
    lines += ["    " + line for line in shadow.lines]
    lines.append(f"    return {total}")
    return "\n".join(lines) + "\n"
