"""The CPU code generator: a kernel program becomes Python modules of numba code.

Part of graphc.kernels. The entry module holds one `@numba.njit` function,
`entry(dims, arena, *inputs, *variables, *constants)`, that binds sizes, carves
temporaries out of the arena, runs the kernels in order and returns the fetched values
followed by the new variable states that were not computed in place. Above each
statement of the entry is the IR line it implements.

Each loop kernel (a fused group, or a single elementwise op or reduction; loops.py) is
a numba function, `kernel`, alone in a module named by a digest of its text, with the
exact types its call site passes (`Arg`, `Kernel`): equal kernels are one kernel,
compiled once per machine (runtime/compile.py) and shared by every graph and process.
The entry calls each through its address, `lib.invoke("<symbol>", (args,))`, so its
compiled code is not linked into the entry's again: the runtime registers each
kernel's address under its `Kernel.symbol` before the entry is compiled or loaded
(lib.register, runtime/compile.py). Run as Python, the same entry text drives the same
compiled kernels (runtime/interpreted.py): compile="background" and Function.profile.

Kernels that may be large run by chunks of rows in a `prange`; row-wise neighbours
share one (see _expand). Heavy numpy calls (array views of the arena, BLAS) go
through small helpers in lib.py, compiled and cached once per signature.

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
from graphc.kernels import scalar, text
from graphc.kernels.cpu import emit, inline, loops
from graphc.printer import format_node
from graphc.registry import lookup
from graphc.types import Dim, TensorType

CHUNKS = 64  # a parallel loop is split into at most this many pieces, shared by the threads
# numba turns only the explicit prange loop into parallel code, nothing else
PARALLEL_OPTIONS = {
    "prange": True,
    "numpy": False,
    "reduction": False,
    "setitem": False,
    "stencil": False,
    "fusion": False,
    "inplace_binop": False,
}
# kernels sharing one `prange` at most: a softmax's four. numba's compile time grows
# faster than a function's length, and short groups repeat: equal groups are one kernel
MAX_GROUP = 4
MAX_PARALLEL = 4  # a graph with at most this many chunkable kernels runs them all in parallel
PARALLEL_WEIGHT = 256  # else only those with this many elements per run-time size unit
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


Param = tuple  # a kernel parameter's type: see `Arg`


@dataclass(frozen=True)
class Arg:
    """One argument of a kernel call: the entry's expression and the parameter's type,
    one of ("array", dtype, ndim, layout "C" or "A"), ("scalar", dtype), ("index",)
    (an intp) and ("sizes", rank) (a tuple of intp). The call site casts each value to
    exactly that type (`call_expr`), so the kernel's signature is known before the
    entry is compiled, and the kernel can be compiled ahead, in another process."""

    expr: str
    param: Param

    cast: bool = True  # the expression's numba type may differ from `param`

    def call_expr(self) -> str:
        kind = self.param[0]
        if kind == "array" and self.cast:
            return f"lib.as_{self.param[3].lower()}({self.expr})"
        return self.expr  # already of its parameter's exact type


def array_arg(expr: str, t: TensorType, contiguous: bool) -> Arg:
    """An array argument. The values the writer knows to be C-contiguous (sources,
    arena and fresh arrays, contiguous reshapes of them) are typed as writable C arrays
    already; any other array is cast to the strided type."""
    return Arg(expr, ("array", t.dtype.name, t.ndim, "C" if contiguous else "A"), not contiguous)


def index_arg(expr: str) -> Arg:
    return Arg(expr, ("index",))


@dataclass(frozen=True)
class Kernel:
    """A compiled unit of the program: one numba function, `kernel`, alone in a module
    named by a digest of its text (kernels/text.py). Kernels with the same text are
    one kernel, compiled once per machine and shared by every graph and process."""

    name: str  # the module's name
    source: str  # the module's text (its comments name what the first graph used it for)
    params: tuple[Param, ...]  # the types it is called with
    what: str  # the ops it runs, for profiles and reports
    parallel: bool  # runs its chunks across threads (a `prange`)

    @property
    def symbol(self) -> str:
        """The name its address is registered under (lib.register): the module and
        the argument types, which tell the overloads of one module apart."""
        digest = hashlib.sha256(repr(self.params).encode()).hexdigest()[:12]
        return f"{self.name}_{digest}"


@dataclass(frozen=True)
class Generated:
    """A generated module: its source, digest, and what the runtime needs to call it."""

    source: str  # the entry module
    kernels: tuple[Kernel, ...]  # the kernel modules the entry calls, each once
    program: planning.Program
    returns: tuple[Value, ...]  # what entry returns, in order: outputs, then new states
    new_states: tuple[int, ...]  # variable node ids whose new array entry returns
    parallel: bool  # whether the entry splits loops across threads
    constants: tuple[int, ...]  # constant node ids the entry takes, after the variables
    takes_dims: bool  # entry's first parameter is the dims array
    takes_arena: bool  # then the arena

    @property
    def listing(self) -> str:
        """The entry module followed by every kernel module it calls."""
        parts = [self.source]
        modules = {k.name: k for k in self.kernels}  # (one module, several overloads)
        parts += [f"# ---- module {k.name}: {k.what}\n{k.source}" for k in modules.values()]
        return "\n\n".join(parts)


class Writer:
    """Builds the entry function; the `emit.Emitter` that emitters see."""

    def __init__(self, program: planning.Program, parallel: bool, min_parallel: int) -> None:
        self.program = program
        self.graph = program.graph
        self.parallel = parallel
        self.min_parallel = min_parallel
        self.lines: list[str] = []
        self.names: dict[Value, str] = {}
        self.contiguous: dict[Value, bool] = {}
        self.used: set[Value] = set()  # values some statement reads
        self.chunked: list[_Chunked] = []  # kernels that may run by chunks (see _expand)
        self.hoistable: set[int] = set()  # lines binding an output's storage
        # by module name and parameter types (one per overload), in order of first use;
        # the entry's comments call the i-th `k<i>`
        self.kernels: dict[tuple[str, tuple[Param, ...]], Kernel] = {}
        self.carved: dict[tuple[int, TensorType], str] = {}  # (buffer, type) -> its array
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
        return _tuple([self.dim(d) for d in tensor_type.shape])

    def sizes(self, tensor_type: TensorType) -> str:
        """The shape as a tuple whose items are never numba literals: a library function
        called with literal ints would be compiled again for every value."""
        return _tuple(
            [f"np.intp({d})" if isinstance(d, int) else self.dim(d) for d in tensor_type.shape]
        )

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

    def call_kernel(self, function: str, args: list[Arg], what: str, parallel: bool) -> str:
        """The statement calling `function` (the text of one numba function named
        `kernel`) with `args`; registers its module."""
        source = _header(f"kernel: {text.comment(what)}") + "\n\n" + function
        name = text.module_name(source)
        params = tuple(a.param for a in args)
        if (name, params) not in self.kernels:
            self.kernels[name, params] = Kernel(name, source, params, what, parallel)
        call = "".join(a.call_expr() + ", " for a in args)
        return f'lib.invoke("{self.kernels[name, params].symbol}", ({call}))'

    def run_kernel(
        self,
        source: str,
        args: list[Arg],
        extent: str,
        work: str,
        n: Arg,
        what: str,
        *,
        node: Node | None = None,
        rows: bool = True,
    ) -> None:
        """Run the `kernel` function of `source` (loop kernel functions; see loops.py) with
        `args` over [0, extent) of its first loop. Given the `node` it computes, a kernel
        whose work may be large can be split across threads; which ones are is decided
        once the whole entry is known (_expand).
        `rows`: chunk index i is row i of the node's outputs (it is in a flat loop over
        anything but a column), so it may share a `prange` with its row-wise neighbours."""
        small = work.isdigit() and int(work) < self.min_parallel
        chunk = _Chunked(source, args, extent, work, n, len(self.lines), node, rows, what)
        if not self.parallel or node is None or small:
            self.lines.append(_serial_call(self, chunk))
            return
        self.chunked.append(chunk)
        self.lines.append("")  # replaced by _expand


@dataclass(frozen=True)
class _Chunked:
    """A kernel call that may run by chunks on several threads, and where it goes."""

    source: str
    args: list[Arg]
    extent: str
    work: str
    n: Arg
    line: int
    node: Node | None  # whose inputs it reads and outputs it writes
    rows: bool  # chunk i is row i of its outputs
    what: str  # the ops it runs

    @property
    def weight(self) -> int:
        """The work's known factor: 10 for `10 * d0`."""
        known = 1
        for factor in self.work.split(" * "):
            if factor.isdigit():
                known *= int(factor)
        return known


def _expand(w: Writer) -> list[str]:
    """The entry's statements with each chunkable kernel written serially or in parallel.

    Row-wise neighbours (see _groups) share one `prange`: each thread runs all of them
    over its rows while those rows are in its cache (a softmax: max, exp, sum, divide).
    Numba compiles every `prange` loop as a function of its own, about a second each
    on this machine's class, so a graph gets parallel loops only where they pay: all
    its groups if it has at most MAX_PARALLEL, else those with at least
    PARALLEL_WEIGHT elements per run-time size unit."""
    groups = _groups(w)
    lines: list[str | None] = list(w.lines)
    for group in reversed(groups):
        first, last = group[0].line, group[-1].line
        weight = max(k.weight for k in group)
        if len(groups) <= MAX_PARALLEL or weight >= PARALLEL_WEIGHT:
            hoisted = [lines[i] for i in range(first, last) if i in w.hoistable]
            comments = {k.line: _comments(lines, first, k.line) for k in group}
            for i in range(first, last + 1):
                if i in w.hoistable or lines[i].lstrip().startswith("#") or not lines[i]:
                    lines[i] = None
            lines[first] = _parallel_call(w, group, hoisted, comments)  # type: ignore[assignment]
        else:
            for k in group:
                lines[k.line] = _serial_call(w, k)
    out: list[str] = []
    for line in lines:
        if isinstance(line, list):
            out += line
        elif line is not None:
            out.append(line)
    return out


def _comments(lines: list, start: int, stop: int) -> list[str]:
    """The IR comment lines in [start, stop) that belong to the kernel at `stop`."""
    found: list[str] = []
    for i in range(stop - 1, start, -1):
        line = lines[i]
        if isinstance(line, str) and line.lstrip().startswith("#"):
            found.insert(0, line)
        elif isinstance(line, str) and line:
            continue
        else:
            break
    return found


def _groups(w: Writer) -> list[list[_Chunked]]:
    """Consecutive chunkable kernels that can run chunk by chunk together: the same
    extent, chunks that are rows of their outputs, nothing between them but comments
    and output bindings, every value one of them made read by the others only in its
    own rows, and no two of their values sharing storage unless of the same type (so a
    row of one is the same bytes as that row of the other)."""
    groups: list[list[_Chunked]] = []
    for k in w.chunked:
        last = groups[-1] if groups else None
        if last is not None and len(last) < MAX_GROUP and _joins(w, last, k):
            last.append(k)
        else:
            groups.append([k])
    return groups


def _joins(w: Writer, group: list[_Chunked], k: _Chunked) -> bool:
    previous = group[-1]
    if not (k.rows and previous.rows) or k.extent != previous.extent:
        return False
    between = range(previous.line + 1, k.line)
    if any(not (i in w.hoistable or w.lines[i].lstrip().startswith("#")) for i in between):
        return False
    made = {v for m in group for v in m.node.outputs}
    return _reads_own_rows(w, k, made) and _storage_agrees(w, [*group, k], made)


def _reads_own_rows(w: Writer, k: _Chunked, made: set[Value]) -> bool:
    """Whether `k` reads each value in `made` only in the rows it is computing."""
    out = w.type_of(k.node.outputs[0])
    rank = _iteration_rank(w, k)
    for v in k.node.inputs:
        if v in made:
            t = w.type_of(v)
            if not t.ndim or t.ndim != rank or not out.ndim or t.shape[0] != out.shape[0]:
                return False
    return True


def _storage_agrees(w: Writer, members: list[_Chunked], made: set[Value]) -> bool:
    """Whether values of `members` that share storage all have one type, and none of the
    values they make is a view (whose rows could be another value's)."""
    storage: dict[tuple, TensorType] = {}
    for m in members:
        for v in (*m.node.inputs, *m.node.outputs):
            home = w.program.home.get(v)
            if home == "view" and v in made:
                return False
            if home == "arena":
                key: tuple = ("arena", w.program.arena_slot[v])
            elif home == "state":
                key = ("state", w.program.state_of[v])
            else:
                continue
            if storage.setdefault(key, w.type_of(v)) != w.type_of(v):
                return False
    return True


def _iteration_rank(w: Writer, k: _Chunked) -> int:
    """The rank of the kernel's iteration space: its inputs' broadcast rank."""
    return max([w.type_of(v).ndim for v in k.node.inputs] + [0])


def _serial_call(w: Writer, k: _Chunked) -> str:
    """The call of kernel `k` over its whole extent, on the calling thread."""
    args = [*k.args, index_arg("0"), index_arg(k.extent), k.n]
    return w.call_kernel(k.source, args, k.what, parallel=False)


def _parallel_call(
    w: Writer,
    group: list[_Chunked],
    hoisted: list[str],
    comments: dict[int, list[str]],
) -> list[str]:
    """A kernel running a `prange` over chunks of [0, extent) that runs every kernel of
    `group` on each chunk in turn (one chunk when the work is small), and its call.
    The members' bodies are pasted into the loop (inline.py); the function's names
    depend only on its text, so equal groups in any graph are one kernel."""
    first = group[0]
    params: list[str] = []
    args: list[Arg] = []

    def param(arg: Arg) -> str:
        # one parameter per argument, even where two are the same array: the function's
        # text must not depend on which of its arrays a graph happens to share
        params.append(f"p{len(params)}")
        args.append(arg)
        return params[-1]

    work = " + ".join(f"({k.work})" for k in group) if len(group) > 1 else first.work
    count, total = param(index_arg(first.extent)), param(index_arg(work))
    inliner = inline.Inliner()
    body = ["lo = c * step", "hi = min(lo + step, count)"]
    for j, k in enumerate(group):
        names = [param(a) for a in k.args]
        sizes = param(k.n)
        if j:
            body += comments.get(k.line, [])
        body += inliner.statements(k.source, [*names, "lo", "hi", sizes])
    options = f'cache=True, nogil=True, error_model="numpy", parallel={PARALLEL_OPTIONS}'
    function = [
        f"@numba.njit({options})",
        f"def kernel({', '.join(params)}):",
        *["    " + line for line in comments.get(first.line, [])],
        f"    count = {count}",
        # a fixed number of chunks: numba.get_num_threads() would make it uncacheable
        f"    step = max(1, (count + {CHUNKS - 1}) // {CHUNKS}) "
        f"if {total} >= {w.min_parallel} else max(1, count)",
        "    for c in prange((count + step - 1) // step):",
        *["        " + line for line in body],
    ]
    what = " | ".join(k.what for k in group)
    return [*hoisted, w.call_kernel("\n".join(function) + "\n", args, what, parallel=True)]


def _tuple(items: list[str]) -> str:
    """A tuple expression of `items`: `(a,)` for one."""
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"


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
        carved = (buffer, t)
        if carved in w.carved:  # the same bytes as the same array: one binding
            w.names[value] = w.carved[carved]
            w.contiguous[value] = True
            return
        w.carved[carved] = name
        w.hoistable.add(len(w.lines))  # binding storage reads nothing: may move up (_expand)
        start = offsets[buffer]
        count = w.size(t)
        stop = f"{start} + {t.dtype.itemsize} * {count}"
        if start.isdigit() and count.isdigit():
            stop = str(int(start) + t.dtype.itemsize * int(count))
        if start.isdigit():  # (a library function called with int literals is compiled
            # again for every value)
            start, stop = f"np.intp({start})", f"np.intp({stop})"
        w.line(f"{name} = lib.carve(arena, {start}, {stop}, {w.sizes(t)}, {_dtype(t.dtype)})")
    elif home == "state":
        w.hoistable.add(len(w.lines))
        w.line(f"{name} = {w.names[Value(program.state_of[value])]}")
    else:
        w.hoistable.add(len(w.lines))
        w.line(f"{name} = np.empty({w.shape(t)}, {_dtype(t.dtype)})")
    w.names[value] = name
    w.contiguous[value] = True


def _arena_layout(w: Writer) -> tuple[dict[int, str], str]:
    """Each buffer's byte offset (an expression of d-variables) and the total size."""
    lines, offsets, total = planning.arena_layout(w.program, w.size)
    w.lines += lines
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
                w.line('    raise lib.FeedShapeError("a feed has the wrong shape")')
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
        name = w.arg(v)  # (marks a returned constant as a parameter)
        exprs.append(f"{name}.copy()" if i in program.copied_outputs else name)
        values.append(v)
    fetched = set(g.outputs)
    new_states, seen = [], set()
    for variable, v in g.updates:
        if program.home[v] == "state":
            continue
        name = w.arg(v)
        fresh = program.home[v] == "fresh" and v not in fetched and v not in seen
        exprs.append(name if fresh else f"{name}.copy()")  # (C-contiguous; 0-d stays 0-d)
        values.append(v)
        new_states.append(variable)
        seen.add(v)
    return exprs, tuple(values), tuple(new_states)


BLAS_OPS = frozenset(
    {"matmul", "conv2d", "conv2d_grad_input", "conv2d_grad_weight", "conv_transpose2d"}
)


def _calls_blas(program: planning.Program) -> bool:
    """Whether the graph runs GEMMs through OpenBLAS. OpenBLAS threads them with its own
    pool, whose threads spin between calls; numba's OpenMP pool beside it fought them
    for the cores (W2 at 2 threads: 38.8 ms with parallel loops, 10.2 ms without), so
    such a graph leaves the threading to BLAS and runs its loops serially."""
    return any(
        n.op in BLAS_OPS or (n.op == "fused" and n.attrs["kind"] == "matmul") for n in program.steps
    )


def generate(program: planning.Program, *, parallel: bool, min_parallel: int) -> Generated:
    """The module source of `program` (see the module docstring)."""
    from graphc.kernels.cpu import ops  # noqa: F401  (registers every emitter and library)

    w = Writer(program, parallel and not _calls_blas(program), min_parallel)
    params: list[str] = []
    # the sources' types: two graphs share an entry (and its compiled code) only if equal
    for node_id in (*program.inputs, *program.variables, *program.constants):
        w.line(f"# {text.comment(format_node(w.graph.by_id[node_id]))}")
    for k, sym in enumerate(program.dims):
        w.line(f"d{k} = dims[{k}]  # {text.comment(str(sym))}")
    _bind_sources(w, params)
    offsets, _ = _arena_layout(w)
    for node in program.steps:
        w.line(f"# {text.comment(format_node(node))}")
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
    source, parallel_loops = _assemble(w, params)
    return Generated(
        source,
        tuple(w.kernels.values()),
        program,
        values,
        new_states,
        parallel_loops,
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


def _assemble(w: Writer, params: list[str]) -> tuple[str, bool]:
    """The entry module's source, and whether it runs kernels across threads."""
    lines = _expand(w)
    imports = "\n".join(
        f"# k{i}: {kernel.symbol}, {text.comment(kernel.what)}"
        for i, kernel in enumerate(w.kernels.values())
    )
    parts = [_header("the entry function of one graph"), planning.source_types(w.program)]
    if imports:
        parts.append(imports)
    options = 'cache=True, nogil=True, error_model="numpy"'
    body = "\n".join("    " + line for line in lines)
    parts.append(f"@numba.njit({options})\ndef entry({', '.join(params)}):\n{body}\n")
    parts.append("\n".join(_arena_function(w)) + "\n")
    parallel = any(k.parallel for k in w.kernels.values())
    return "\n\n".join(p.rstrip("\n") + "\n" for p in parts), parallel


# ------------------------------------------------------------------ loop kernels


Operand = tuple[str, TensorType, bool]  # name in the entry, type, known C-contiguous


def operands_of(w: Writer, node: Node) -> list[Operand]:
    return [(w.arg(v), w.type_of(v), w.is_contiguous(v)) for v in node.inputs]


def _scalar_parameters(
    w: Writer, node: Node, body: tuple, results: tuple[int, ...]
) -> tuple[list[Operand], list[str], tuple, tuple[int, ...]]:
    """`node`'s operands and body with every one-element constant (an input, or a step
    the fusion pass copied into the body) turned into a scalar parameter of the kernel:
    kernels that differ only in their constants are one kernel. Returns the operands,
    the literal passed for each scalar operand (None for arrays), body and results."""
    operands: list[Operand] = []
    literals: list[str | None] = []
    where: dict[int, int] = {}  # old flat index -> new flat index (operands first)
    for i, v in enumerate(node.inputs):
        producer = w.graph.node(v)
        where[i] = len(operands)
        operands.append((w.arg(v), w.type_of(v), w.is_contiguous(v)))
        single = producer.op == "constant" and producer.attrs["value"].array.size == 1
        literals.append(_literal(producer.attrs, w.type_of(v)) if single else None)
    kept: list[tuple] = []
    n_in = len(node.inputs)
    constant_steps = []
    for k, (op, _, attrs) in enumerate(body):
        if op == "constant" and attrs["value"].array.size == 1:
            constant_steps.append((n_in + k, attrs))
    for index, attrs in constant_steps:
        t = TensorType(attrs["value"].array.dtype, tuple(attrs["value"].array.shape))
        where[index] = len(operands)
        operands.append(("", t, True))
        literals.append(_literal(attrs, t))
    constant_indices = {index for index, _ in constant_steps}
    for k, step in enumerate(body):
        if n_in + k not in constant_indices:
            where[n_in + k] = len(operands) + len(kept)
            kept.append(step)
    new_body = tuple((op, tuple(where[a] for a in args), attrs) for op, args, attrs in kept)
    return operands, literals, new_body, tuple(where[r] for r in results)


def _literal(attrs: dict, t: TensorType) -> str:
    """A scalar argument of exactly `t`'s dtype (a bare True would be a literal type)."""
    text = scalar.literal(attrs["value"].array.reshape(-1)[0], t.dtype)
    return f"np.bool_({text})" if t.dtype.kind == "b" else text


def loop_spec(
    w: Writer,
    name: str,
    operands: list[Operand],
    body: tuple,
    results: tuple[int, ...],
    shape: Any,
    panel: int | None = None,
    scalars: frozenset[int] = frozenset(),
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
        scalars=scalars,
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
        operands, literals, body, results = _scalar_parameters(w, node, body, results)
    else:
        literals = [None] * len(operands)
    scalars = frozenset(i for i, lit in enumerate(literals) if lit is not None)
    name = "kernel"
    args = [
        Arg(lit, ("scalar", t.dtype.name)) if lit is not None else array_arg(expr, t, c)
        for (expr, t, c), lit in zip(operands, literals, strict=True)
    ]
    what = " -> ".join(step[0] for step in body)
    out_type = w.type_of(node.outputs[0])
    if body[-1][0] in loops.REDUCTIONS:
        (_, (source,), _) = body[-1]
        prologue = loop_spec(w, name, operands, body[:-1], (), (), scalars=scalars)
        shape = prologue.value_types[source].shape
        spec = loop_spec(w, name, operands, body, results, shape, scalars=scalars)
        _, axes = spec.reduction  # type: ignore[misc]
        kept = TensorType(out_type.dtype, tuple(d for k, d in enumerate(shape) if k not in axes))
        args.append(array_arg(f"{w.out(node)}.reshape({w.shape(kept)})", kept, True))
        source = loops.reduction_source(spec, what)
        n = sizes_arg(w, shape)
        if shape and 0 not in axes and not spec.flat:
            work = w.size(TensorType(out_type.dtype, shape))
            w.run_kernel(source, args, w.dim(shape[0]), work, n, what, node=node)
        else:
            w.run_kernel(source, args, w.dim(shape[0]) if shape else "1", "0", n, what)
        return
    shape = out_type.shape
    spec = loop_spec(w, name, operands, body, results, shape, scalars=scalars)
    outputs = [Value(node.id, i) for i in range(len(results))]
    args += [array_arg(w.out(node, v.index), w.type_of(v), True) for v in outputs]
    source = loops.elementwise_source(spec, what)
    n = sizes_arg(w, shape)
    if not shape:
        w.run_kernel(source, args, "1", "0", n, what)
    elif spec.flat:
        rows = all(d == 1 for d in shape[1:])  # a column: flat index i is row i
        size = w.size(out_type)
        w.run_kernel(source, args, size, size, n, what, node=node, rows=rows)
    else:
        w.run_kernel(source, args, w.dim(shape[0]), w.size(out_type), n, what, node=node)


def sizes_arg(w: Writer, shape: Any) -> Arg:
    """The iteration sizes `n` of a loop kernel, a tuple of intp."""
    items = [str(d) if isinstance(d, int) else w.dim(d) for d in shape]  # (lib.invoke
    # types int literals as intp)
    return Arg(text.tuple_expr(items), ("sizes", len(items)))
