"""The CPU code generator: a kernel program becomes one Python module of numba code.

Part of graphc.kernels. The module holds one `@numba.njit` function per loop kernel
(a fused group, or a single elementwise op or reduction) and one entry function,
`entry(dims, arena, *inputs, *variables, *constants)`, that binds sizes, carves
temporaries out of the arena, calls the kernels in order and returns the fetched
values followed by the new variable states that were not computed in place. Above
each statement of the entry is the IR line it implements. A call of a compiled
graph is one numba dispatch of `entry`.

Besides the entry the module defines `arena_bytes(dims)`, plain Python, which the
runtime calls once per new set of feed shapes to size the arena.

Emitters for ops outside this file register themselves in `emit.EMITTERS` (see
emit.py); importing `graphc.kernels.cpu.ops` loads them all.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.ir import Node, Value
from graphc.kernels import plan as planning
from graphc.kernels.cpu import emit, loops
from graphc.printer import format_node
from graphc.registry import lookup
from graphc.types import Dim, TensorType

FEED_SHAPE_ERROR = "graphc: a feed has the wrong shape"  # the runtime re-validates on it
CHUNKS = 64  # a parallel loop is split into at most this many pieces, shared by the threads
CONTIGUOUS_VIEWS = frozenset({"reshape", "reshape_like", "expand_dims", "squeeze"})
HEADER = '''"""graphc generated module: {what} (see Function.source)."""

import numba
import numpy as np
from numba import prange

from graphc.kernels.cpu import lib
from graphc.kernels.cpu import vmath as vm
{libraries}
'''


def _header(what: str) -> str:
    aliases = sorted(emit.LIBRARIES.items())
    libraries = "\n".join(f"import {module} as {alias}" for alias, module in aliases)
    return HEADER.replace("{what}", what).replace("{libraries}", libraries)


def module_name(source: str) -> str:
    """The importable name of a generated module: a digest of its text (the runtime's
    cache adds the machine to the file name, not to this)."""
    return "graphc_" + hashlib.sha256(source.encode()).hexdigest()[:24]


def kernel_module(functions: str) -> str:
    """A kernel module: the header, then the kernel's functions; `kernel` is the entry."""
    return _header("one loop kernel") + "\n\n" + functions.rstrip("\n") + "\n"


@dataclass(frozen=True)
class Generated:
    """A generated module: its source, digest, and what the runtime needs to call it."""

    source: str  # the entry module
    kernels: tuple[str, ...]  # the kernel modules it imports, loaded first
    program: planning.Program
    returns: tuple[Value, ...]  # what entry returns, in order: outputs, then new states
    new_states: tuple[int, ...]  # variable node ids whose new array entry returns
    parallel: bool  # whether the entry splits loops across threads
    constants: tuple[int, ...]  # constant node ids the entry takes, after the variables
    takes_dims: bool  # entry's first parameter is the dims array
    takes_arena: bool  # then the arena


class Writer:
    """Builds the entry function; the `emit.Emitter` that emitters see."""

    def __init__(self, program: planning.Program, parallel: bool, min_parallel: int) -> None:
        self.program = program
        self.graph = program.graph
        self.parallel = parallel
        self.min_parallel = min_parallel
        self.lines: list[str] = []
        self.kernels: list[str] = []  # kernel module sources
        self.imports: list[tuple[str, str]] = []  # (kernel module source, alias)
        self.names: dict[Value, str] = {}
        self.contiguous: dict[Value, bool] = {}
        self.used: set[Value] = set()  # values some statement reads
        self.uses_prange = False
        self._counter = 0

    # ---- the Emitter protocol

    def arg(self, value: Value) -> str:
        self.used.add(value)
        return self.names[value]

    def out(self, node: Node, index: int = 0) -> str:
        return self.names[Value(node.id, index)]

    def define(self, node: Node, index: int, expression: str) -> None:
        value = Value(node.id, index)
        name = self._name(value)
        self.line(f"{name} = {expression}")
        self.names[value] = name
        self.contiguous.setdefault(value, False)

    def dim(self, dim: Dim) -> str:
        return str(dim) if isinstance(dim, int) else f"d{self.program.slot(dim)}"

    def shape(self, tensor_type: TensorType) -> str:
        dims = [self.dim(d) for d in tensor_type.shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def type_of(self, value: Value) -> TensorType:
        return self.graph.type_of(value)

    def line(self, statement: str) -> None:
        self.lines.append(statement)

    def temp(self, hint: str = "t") -> str:
        self._counter += 1
        return f"{hint}_{self._counter}"

    # ---- helpers for the emitters of this backend

    def _name(self, value: Value) -> str:
        return f"v{value.node}" if value.index == 0 else f"v{value.node}_{value.index}"

    def is_contiguous(self, value: Value) -> bool:
        return self.contiguous.get(value, False)

    def contiguous_arg(self, value: Value) -> str:
        name = self.arg(value)
        if self.is_contiguous(value) or self.type_of(value).ndim == 0:
            return name  # (numba's ascontiguousarray makes a 0-d array 1-d)
        return f"np.ascontiguousarray({name})"

    def kernel(self, source: str) -> str:
        """Add a kernel module (its functions' source) and return the name the entry
        calls its `kernel` function by. Identical kernels of any graph share one
        module, compiled once."""
        text = kernel_module(source)
        alias = f"k{len(self.kernels)}"
        self.kernels.append(text)
        self.imports.append((text, alias))
        return alias

    def size(self, tensor_type: TensorType) -> str:
        """The element count: an int literal when every dim is known."""
        known = 1
        factors = []
        for d in tensor_type.shape:
            if isinstance(d, int):
                known *= d
            else:
                factors.append(self.dim(d))
        if not factors or known == 0:
            return str(known)
        return " * ".join(factors if known == 1 else [str(known), *factors])

    def call_chunked(self, call: str, extent: str, work: str) -> None:
        """Run `call` (a format string with `{lo}` and `{hi}`) over [0, extent), split
        across threads when compiled for it and the work is big enough."""
        small = work.isdigit() and int(work) < self.min_parallel
        if not self.parallel or small:
            self.line(call.format(lo="0", hi=extent))
            return
        self.uses_prange = True
        n, step = self.temp("n"), self.temp("step")
        self.line(f"{n} = {extent}")
        self.line(f"if {n} > 1 and {work} >= {self.min_parallel}:")
        # a fixed number of chunks: numba.get_num_threads() would make the entry uncacheable
        self.line(f"    {step} = ({n} + {CHUNKS - 1}) // {CHUNKS}")
        self.line(f"    for c in prange(({n} + {step} - 1) // {step}):")
        self.line(f"        {call.format(lo=f'c * {step}', hi=f'min(c * {step} + {step}, {n})')}")
        self.line("else:")
        self.line(f"    {call.format(lo='0', hi=n)}")


def _dtype(dtype: np.dtype) -> str:
    return "np.bool_" if dtype.kind == "b" else f"np.{dtype.name}"


def _allocate(w: Writer, value: Value, offsets: dict[int, str]) -> None:
    """Bind `value` to its storage before its node runs (alloc-mode ops)."""
    program = w.program
    t = w.type_of(value)
    name = w._name(value)
    home = program.home[value]
    if home == "arena":
        buffer = program.arena_slot[value]
        start = offsets[buffer]
        count = w.size(t)
        w.line(
            f"{name} = arena[{start}:{start} + {t.dtype.itemsize} * {count}]"
            f".view({_dtype(t.dtype)}).reshape({w.shape(t)})"
        )
    elif home == "state":
        w.line(f"{name} = {w.names[Value(program.state_of[value])]}")
    else:
        w.line(f"{name} = np.empty({w.shape(t)}, {_dtype(t.dtype)})")
    w.names[value] = name
    w.contiguous[value] = True


def _arena_layout(w: Writer) -> tuple[dict[int, str], str]:
    """Each buffer's byte offset (an expression of d-variables) and the total size."""
    offsets: dict[int, str] = {}
    total = "0"
    for i, buffer in enumerate(w.program.buffers):
        offsets[i] = f"o{i}"
        w.line(f"o{i} = {total}")
        count = w.size(buffer.sized_like)
        align = planning.ALIGN
        total = f"(o{i} + ({buffer.dtype.itemsize} * {count} + {align - 1}) // {align} * {align})"
    return offsets, total


def _bind_sources(w: Writer, params: list[str]) -> None:
    program, g = w.program, w.graph
    for k, node_id in enumerate(program.inputs):
        name = f"in{k}"
        params.append(name)
        node = g.by_id[node_id]
        for axis, d in enumerate(node.types[0].shape):
            if isinstance(d, int):
                w.line(f"if {name}.shape[{axis}] != {d}:")
                w.line(f'    raise ValueError("{FEED_SHAPE_ERROR}")')
        w.names[Value(node_id)] = name
        w.contiguous[Value(node_id)] = True
    for k, node_id in enumerate(program.variables):
        params.append(f"var{k}")
        w.names[Value(node_id)] = f"var{k}"
        w.contiguous[Value(node_id)] = True
    for k, node_id in enumerate(program.constants):
        w.names[Value(node_id)] = f"const{k}"
        w.contiguous[Value(node_id)] = True


def _returns(w: Writer) -> tuple[list[str], tuple[Value, ...], tuple[int, ...]]:
    """The entry's return expressions: outputs (copied where they must be fresh), then
    the new states of updates not computed in place."""
    program, g = w.program, w.graph
    exprs, values = [], []
    for i, v in enumerate(g.outputs):
        name = w.names[v]
        exprs.append(f"{name}.copy()" if i in program.copied_outputs else name)
        values.append(v)
    fetched = set(g.outputs)
    new_states, seen = [], set()
    for variable, v in g.updates:
        if program.home[v] == "state":
            continue
        name = w.names[v]
        fresh = program.home[v] == "fresh" and v not in fetched and v not in seen
        exprs.append(name if fresh else f"np.ascontiguousarray({name}).copy()")
        values.append(v)
        new_states.append(variable)
        seen.add(v)
    return exprs, tuple(values), tuple(new_states)


def generate(program: planning.Program, *, parallel: bool, min_parallel: int) -> Generated:
    """The module source of `program` (see the module docstring)."""
    from graphc.kernels.cpu import ops  # noqa: F401  (registers every emitter and library)

    w = Writer(program, parallel, min_parallel)
    params: list[str] = []
    # the sources' types: two graphs share an entry (and its compiled code) only if equal
    for node_id in (*program.inputs, *program.variables, *program.constants):
        w.line(f"# {format_node(w.graph.by_id[node_id])}")
    for k, sym in enumerate(program.dims):
        w.line(f"d{k} = dims[{k}]  # {sym}")
    _bind_sources(w, params)
    offsets, _ = _arena_layout(w)
    for node in program.steps:
        w.line(f"# {format_node(node)}")
        entry = emit.EMITTERS.get(node.op)
        if entry is None:
            raise NotImplementedError(f"the CPU backend has no emitter for op {node.op!r}")
        if entry.alloc:
            for value in node.outputs:
                _allocate(w, value, offsets)
        entry.emit(w, node)
    exprs, values, new_states = _returns(w)
    constants = tuple(i for i in program.constants if Value(i) in w.used)
    params += [w.names[Value(i)] for i in constants]
    takes = (bool(program.dims), bool(program.buffers))
    params = [
        name for name, wanted in zip(("dims", "arena"), takes, strict=True) if wanted
    ] + params
    if len(exprs) == 1:
        w.line(f"return {exprs[0]}")
    else:
        w.line("return (" + ", ".join(exprs) + ("," if len(exprs) == 1 else "") + ")")
    source = _assemble(w, params)
    return Generated(
        source,
        tuple(w.kernels),
        program,
        values,
        new_states,
        w.uses_prange,
        constants,
        *takes,
    )


def _arena_function(w: Writer) -> list[str]:
    lines = ["def arena_bytes(dims):", '    """Bytes of arena one call needs."""']
    for k in range(len(w.program.dims)):
        lines.append(f"    d{k} = int(dims[{k}])")
    shadow = Writer(w.program, False, 0)
    _, total = _arena_layout(shadow)
    lines += ["    " + line for line in shadow.lines]
    lines.append(f"    return {total}")
    return lines


def _assemble(w: Writer, params: list[str]) -> str:
    imports = "\n".join(
        f"from {module_name(text)} import kernel as {alias}" for text, alias in w.imports
    )
    parts = [_header("the entry function of one graph") + imports]
    options = 'cache=True, nogil=True, error_model="numpy"'
    if w.uses_prange:
        options += ", parallel=True"
    body = "\n".join("    " + line for line in w.lines)
    parts.append(f"@numba.njit({options})\ndef entry({', '.join(params)}):\n{body}\n")
    parts.append("\n".join(_arena_function(w)) + "\n")
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts)


# ------------------------------------------------------------------ loop kernels


Operand = tuple[str, TensorType, bool]  # name in the entry, type, known C-contiguous


def operands_of(w: Writer, node: Node) -> list[Operand]:
    return [(w.arg(v), w.type_of(v), w.is_contiguous(v)) for v in node.inputs]


def _inline_scalar_constants(
    w: Writer, node: Node, body: tuple, results: tuple[int, ...]
) -> tuple[list[Operand], tuple, tuple[int, ...]]:
    """Operands of `node` with its one-element constant inputs turned into constant steps
    at the start of the body (literals in the loop, not arrays passed in)."""
    operands: list[Operand] = []
    steps: list[tuple] = []
    where: dict[int, tuple[str, int]] = {}
    for i, v in enumerate(node.inputs):
        producer = w.graph.node(v)
        if producer.op == "constant" and producer.attrs["value"].array.size <= 1:
            where[i] = ("step", len(steps))
            steps.append(("constant", (), producer.attrs))
        else:
            where[i] = ("operand", len(operands))
            operands.append((w.arg(v), w.type_of(v), w.is_contiguous(v)))
    if not steps:
        return operands, body, results
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


def loop_spec(
    w: Writer,
    name: str,
    operands: list[Operand],
    body: tuple,
    results: tuple[int, ...],
    shape: Any,
    panel: int | None = None,
) -> loops.LoopSpec:
    """The LoopSpec of `body` over `operands`, iterating over `shape`."""
    value_types = [t for _, t, _ in operands]
    for op, args, attrs in body:
        opdef = lookup(op)
        inferred = opdef.infer(*(value_types[a] for a in args), **opdef.check_attrs(attrs))
        value_types.extend(inferred if isinstance(inferred, tuple) else (inferred,))
    return loops.LoopSpec(
        name=name,
        operands=tuple(t for _, t, _ in operands),
        contiguous=tuple(c for _, _, c in operands),
        body=tuple(body),
        value_types=tuple(value_types),
        results=results,
        shape=tuple(shape),
        panel=panel,
    )


def emit_loop(
    w: Writer,
    node: Node,
    body: tuple,
    results: tuple[int, ...],
    operands: list[Operand] | None = None,
) -> None:
    """An elementwise or reduction loop kernel for `node`, and its call from the entry."""
    if operands is None:
        operands, body, results = _inline_scalar_constants(w, node, body, results)
    name = "kernel"
    args = [operand[0] for operand in operands]
    comment = " -> ".join(step[0] for step in body)
    out_type = w.type_of(node.outputs[0])
    if body[-1][0] in loops.REDUCTIONS:
        (_, (source,), _) = body[-1]
        prologue = loop_spec(w, name, operands, body[:-1], (), ())
        shape = prologue.value_types[source].shape
        spec = loop_spec(w, name, operands, body, results, shape)
        _, axes = spec.reduction  # type: ignore[misc]
        kept = TensorType(out_type.dtype, tuple(d for k, d in enumerate(shape) if k not in axes))
        args.append(f"{w.out(node)}.reshape({w.shape(kept)})")
        alias = w.kernel(loops.reduction_source(spec, comment))
        call = (
            f"{alias}({', '.join(args)}, {{lo}}, {{hi}}, {w.shape(TensorType(kept.dtype, shape))})"
        )
        if shape and 0 not in axes and not spec.flat:
            w.call_chunked(call, w.dim(shape[0]), w.size(TensorType(out_type.dtype, shape)))
        else:
            w.line(call.format(lo="0", hi=w.dim(shape[0]) if shape else "1"))
        return
    shape = out_type.shape
    spec = loop_spec(w, name, operands, body, results, shape)
    args += [w.out(node, i) for i in range(len(results))]
    alias = w.kernel(loops.elementwise_source(spec, comment))
    call = f"{alias}({', '.join(args)}, {{lo}}, {{hi}}, {w.shape(out_type)})"
    if not shape:
        w.line(call.format(lo="0", hi="1"))
    elif spec.flat:
        w.call_chunked(call, w.size(out_type), w.size(out_type))
    else:
        w.call_chunked(call, w.dim(shape[0]), w.size(out_type))
