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

The frame of the entry (names, storage, sources, returns, the arena) is the writer both
targets share (kernels/writer.py); this one adds kernel modules and threads. Emitters
register in the one registry of every target (kernels/emit.py); importing
`graphc.kernels.cpu.ops` loads this target's.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from typing import Any

from graphc.ir import Node, Value
from graphc.kernels import emit as emitters
from graphc.kernels import plan as planning
from graphc.kernels import scalar, text, writer
from graphc.kernels.cpu import emit, inline, loops
from graphc.kernels.writer import EntryWriter
from graphc.ops.fused import body_types
from graphc.types import TensorType

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
# and at most this many calls of vectorized math (vm.exp32, vm.tanh32...) between them:
# a group's members are pasted into one function, whose parallel compile grows faster
# than its length (chain40's row kernels, a tanh each: 3.95 s to the first result two
# to a group, 2.64 s one to a group; a softmax's max and exp kernels still pair)
MAX_GROUP_MATH = 1
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
    # the entry's code in characters, without comments and indentation: what numba's
    # compile time of the entry grows with (runtime/executable.AUTO_BACKGROUND)
    size: int = 0

    @property
    def listing(self) -> str:
        """The entry module followed by every kernel module it calls."""
        parts = [self.source]
        modules = {k.name: k for k in self.kernels}  # (one module, several overloads)
        parts += [f"# ---- module {k.name}: {k.what}\n{k.source}" for k in modules.values()]
        return "\n\n".join(parts)


class Binding(str):
    """An entry statement that binds an output's storage: it reads nothing, so it may
    move up, out of a group of kernels sharing one `prange` (_expand)."""


class Writer(EntryWriter):
    """Writes the entry function: the frame (writer.py) and, for this target, kernel
    modules called through their addresses, which may run by chunks on threads."""

    target = "cpu"

    def __init__(
        self,
        program: planning.Program,
        parallel: bool,
        min_parallel: int,
        threads: bool = False,
        rows: bool = False,
    ) -> None:
        super().__init__(program)
        self.parallel = parallel  # loop kernels split across threads
        self.threads = threads  # library helpers (convolutions, pools) split across threads
        self.rows = rows  # row-wise neighbours run chunk by chunk on one thread too
        self.min_parallel = min_parallel
        # by module name and parameter types (one per overload), in order of first use;
        # the entry's comments call the i-th `k<i>`
        self.kernels: dict[tuple[str, tuple[Param, ...]], Kernel] = {}

    # ---- the target's statements

    def check_input(self, name: str, node: Node) -> None:
        for axis, d in enumerate(node.types[0].shape):
            if isinstance(d, int):
                self.line(f"if {name}.shape[{axis}] != {d}:")
                self.line('    raise lib.FeedShapeError("a feed has the wrong shape")')

    def carve(self, start: str, tensor_type: TensorType) -> str:
        count = self.size(tensor_type)
        stop = f"{start} + {tensor_type.dtype.itemsize} * {count}"
        if start.isdigit() and count.isdigit():
            stop = str(int(start) + tensor_type.dtype.itemsize * int(count))
        if start.isdigit():  # (a library function called with int literals is compiled
            # again for every value)
            start, stop = f"np.intp({start})", f"np.intp({stop})"
        dtype = scalar.ctor(tensor_type.dtype)
        return f"lib.carve(arena, {start}, {stop}, {self.sizes(tensor_type)}, {dtype})"

    def empty(self, tensor_type: TensorType) -> str:
        return f"np.empty({self.shape(tensor_type)}, {scalar.ctor(tensor_type.dtype)})"

    def copy(self, name: str) -> str:
        return f"{name}.copy()"  # (C-contiguous; 0-d stays 0-d)

    def bind(self, statement: str) -> None:
        self.lines.append(Binding(statement))

    # ---- control flow (kernels/control_writer.py)

    def body_writer(self, body: Any) -> Any:
        from graphc.kernels.cpu.control import BodyWriter

        return BodyWriter(self, body)

    def operand(self, value: Value) -> str:
        """A C-contiguous array of `value`, bound before a loop or branch."""
        from graphc.kernels.control_writer import bound

        return bound(self, self.contiguous_arg(value))

    def holds(self, expression: str) -> str:
        return f"{expression}[()]"

    def row(self, expression: str, t: str, ndim: int) -> str:
        # (a 1-d array's item is a scalar: a body takes a 0-d array)
        return f"{expression}[{t}:{t} + 1].reshape(())" if ndim == 1 else f"{expression}[{t}]"

    def store_row(self, target: str, t: str, expression: str, row: TensorType) -> str:
        return f"{target}[{t}] = {expression}{'[()]' if row.ndim == 0 else ''}"

    def full(self, shape: str, value: str) -> str:
        return f"np.full({shape}, {value})"

    # ---- for the emitters of this backend

    def sizes(self, tensor_type: TensorType) -> str:
        """The shape as a tuple whose items are never numba literals: a library function
        called with literal ints would be compiled again for every value."""
        return text.tuple_expr(
            [f"np.intp({d})" if isinstance(d, int) else self.dim(d) for d in tensor_type.shape]
        )

    def contiguous_arg(self, value: Value) -> str:
        name = self.arg(value)
        if self.is_contiguous(value) or self.type_of(value).ndim == 0:
            return name  # (numba's ascontiguousarray makes a 0-d array 1-d)
        return f"np.ascontiguousarray({name})"

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
        chunk = _Chunked(source, args, extent, work, n, node, rows, what)
        if node is None or small:
            self.line(_serial_call(self, chunk))
        else:  # written alone, or with its row-wise neighbours, by _expand
            self.lines.append(chunk)


@dataclass(frozen=True)
class _Chunked:
    """A kernel call that may run by chunks on several threads: a placeholder among the
    entry's statements until _expand writes it."""

    source: str
    args: list[Arg]
    extent: str
    work: str
    n: Arg
    node: Node  # whose inputs it reads and outputs it writes
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


def _is_comment(item: object) -> bool:
    return isinstance(item, str) and item.lstrip().startswith("#")


def _expand(w: Writer) -> list[str]:
    """The entry's statements with each chunkable kernel written serially or in parallel.

    Row-wise neighbours (see _joins) share one `prange`: each thread runs all of them
    over its rows while those rows are in its cache (a softmax: max, exp, sum, divide).
    Numba compiles every `prange` loop as a function of its own, about a second each
    on this machine's class, so a graph gets parallel loops only where they pay: all
    its groups if it has at most MAX_PARALLEL, else those with at least
    PARALLEL_WEIGHT elements per run-time size unit."""
    pieces = _grouped(w)
    groups = [p for p in pieces if isinstance(p, list)]
    out: list[str] = []
    for piece in pieces:
        if not isinstance(piece, list):
            out.append(piece)
            continue
        members = [k for k in piece if isinstance(k, _Chunked)]
        weight = max(k.weight for k in members)
        parallel = w.parallel and (len(groups) <= MAX_PARALLEL or weight >= PARALLEL_WEIGHT)
        if parallel or (w.rows and len(members) > 1):
            # (on one thread too, neighbours run chunk by chunk while the chunk is in
            # cache: W6's softmax on one thread, five passes over 16 MB: 6.8 -> 4.9-5.6 ms)
            out += [item for item in piece if isinstance(item, Binding)]
            out += _parallel_call(w, piece, parallel)
        else:
            out += [_serial_call(w, k) if isinstance(k, _Chunked) else k for k in piece]
    return out


def _grouped(w: Writer) -> list:
    """The entry's statements, each group of chunkable kernels that can run chunk by
    chunk together gathered in a list: its members and the comments and storage
    bindings between them (nothing else may come between). Members have the same
    extent and chunks that are rows of their outputs; every value one of them made is
    read by the others only in its own rows, and no two of their values share storage
    unless of the same type (so a row of one is the same bytes as that row of the
    other)."""
    pieces: list = []
    group: list | None = None  # the open group, from its first member to its last
    tail: list = []  # comments and bindings after the open group's last member
    for item in w.lines:
        if isinstance(item, _Chunked):
            members = [k for k in group or () if isinstance(k, _Chunked)]
            if group is not None and _fits(members, item) and _joins(w, members, item):
                group += [*tail, item]
            else:
                if group is not None:
                    pieces.append(group)
                pieces += tail
                group = [item]
            tail = []
        elif group is not None and (_is_comment(item) or isinstance(item, Binding)):
            tail.append(item)
        else:
            if group is not None:
                pieces.append(group)
                group = None
            pieces += [*tail, item]
            tail = []
    if group is not None:
        pieces.append(group)
    return pieces + tail


def _math(k: _Chunked) -> int:
    return k.source.count("vm.")


def _fits(members: list[_Chunked], k: _Chunked) -> bool:
    """Whether `k` may join a group of `members` (MAX_GROUP, MAX_GROUP_MATH)."""
    math = sum(_math(m) for m in members) + _math(k)
    return len(members) < MAX_GROUP and math <= MAX_GROUP_MATH


def _joins(w: Writer, group: list[_Chunked], k: _Chunked) -> bool:
    previous = group[-1]
    if not (k.rows and previous.rows) or k.extent != previous.extent:
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


def _parallel_call(w: Writer, piece: list, parallel: bool = True) -> list[str]:
    """The call of a kernel running a `prange` over chunks of [0, extent) that runs every
    kernel of the group `piece` (_grouped) on each chunk in turn (one chunk when the work
    is small); not `parallel`: a `range`, on the calling thread. The members' bodies are
    pasted into the loop (inline.py), each after the IR comments that came before it;
    the function's names depend only on its text, so equal groups in any graph are one
    kernel."""
    group: list[_Chunked] = []
    comments: list[list[str]] = []  # the IR comments before each member
    pending: list[str] = []
    for item in piece:
        if isinstance(item, _Chunked):
            group.append(item)
            comments.append(pending)
            pending = []
        elif _is_comment(item):
            pending.append(item)
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
    for k, before in zip(group, comments, strict=True):
        names = [param(a) for a in k.args]
        sizes = param(k.n)
        body += before
        body += inliner.statements(k.source, [*names, "lo", "hi", sizes])
    options = 'cache=True, nogil=True, error_model="numpy"'
    if parallel:
        options += f", parallel={PARALLEL_OPTIONS}"
    function = [
        f"@numba.njit({options})",
        f"def kernel({', '.join(params)}):",
        f"    count = {count}",
        # a fixed number of chunks: numba.get_num_threads() would make it uncacheable
        f"    step = max(1, (count + {CHUNKS - 1}) // {CHUNKS}) "
        f"if {total} >= {w.min_parallel} else max(1, count)",
        f"    for c in {'prange' if parallel else 'range'}((count + step - 1) // step):",
        *["        " + line for line in body],
    ]
    what = " | ".join(k.what for k in group)
    return [w.call_kernel("\n".join(function) + "\n", args, what, parallel=parallel)]


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


def _comment(line: str) -> bool:
    return line.lstrip().startswith("#")


def generate(program: planning.Program, *, parallel: bool, min_parallel: int) -> Generated:
    """The module source of `program` (see the module docstring)."""
    emitters.load(Writer.target)  # (and the libraries every module imports)
    # (the helpers split a batch across threads, each slice's small GEMMs on its own
    # thread: they run beside OpenBLAS's pool, which sleeps soon after its GEMMs, see
    # graphc/config.py; loop kernels split in graphs that call BLAS fought that pool)
    # (and row groups on one thread only where no GEMM runs: in graphs that call BLAS,
    # larger graphs, the larger group functions cost more to compile than they saved:
    # W7's first result rose 0.2-0.3 s)
    blas = _calls_blas(program)
    w = Writer(program, parallel and not blas, min_parallel, threads=parallel, rows=not blas)
    body = w.write()
    takes = (bool(program.dims), bool(program.buffers))
    params = [name for name, wanted in zip(("dims", "arena"), takes, strict=True) if wanted]
    params += body.params
    returns = list(body.returns)
    w.line(f"return {returns[0]}" if len(returns) == 1 else f"return {text.tuple_expr(returns)}")
    statements = "\n".join(text.indent(_expand(w)))  # (writes the chunked kernels' calls)
    kernels = "\n".join(
        f"# k{i}: {kernel.symbol}, {text.comment(kernel.what)}"
        for i, kernel in enumerate(w.kernels.values())
    )
    options = 'cache=True, nogil=True, error_model="numpy"'
    parts = [
        _header("the entry function of one graph"),
        planning.source_types(program),
        kernels,
        f"@numba.njit({options})\ndef entry({', '.join(params)}):\n{statements}\n",
        writer.arena_function(program, "arena"),
    ]
    source = "\n\n".join(p.rstrip("\n") + "\n" for p in parts if p)
    return Generated(
        source,
        tuple(w.kernels.values()),
        program,
        body.values,
        body.new_states,
        any(k.parallel for k in w.kernels.values()),
        body.constants,
        *takes,
        sum(len(line.strip()) for line in statements.splitlines() if not _comment(line)),
    )


# ------------------------------------------------------------------ loop kernels


Operand = tuple[str, TensorType, bool]  # name in the entry, type, known C-contiguous


def operands_of(w: Writer, node: Node) -> list[Operand]:
    return [(w.arg(v), w.type_of(v), w.is_contiguous(v)) for v in node.inputs]


def _scalar_arg(operand: planning.Operand) -> Arg:
    """A scalar constant as an argument of exactly its dtype (a bare True would be a
    literal type): kernels that differ only in their constants are one kernel."""
    text_ = scalar.literal(operand.scalar, operand.type.dtype)
    if operand.type.dtype.kind == "b":
        text_ = f"np.bool_({text_})"
    return Arg(text_, ("scalar", operand.type.dtype.name))


def _operand_arg(w: Writer, operand: planning.Operand) -> Arg:
    if operand.is_scalar:
        return _scalar_arg(operand)
    v = operand.value
    return array_arg(w.arg(v), operand.type, w.is_contiguous(v))


def loop_spec(
    name: str,
    operands: list[Operand],
    body: tuple,
    results: tuple[int, ...],
    shape: Any,
    panel: int | None = None,
) -> loops.LoopSpec:
    """The LoopSpec of `body` over array `operands`, iterating over `shape` (a fused
    matmul's epilogue, whose operands include the product)."""
    value_types = body_types(tuple(t for _, t, _ in operands), body)
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


# ops computed by vectorized math (kernels/cpu/vmath.py): a loop of them over a strided
# operand, whose strides numba learns only at run time, runs them one element at a time
# (an LSTM's gates, 32x256 slices of a 32x1024 product: 5.3 ns a sigmoid against 0.6)
VECTOR_MATH_OPS = frozenset(
    {"exp", "expm1", "log", "log1p", "sin", "cos", "tanh", "sigmoid", "erf", "pow"}
)


def _contiguous_operands(w: Writer, loop: planning.Loop) -> list[Arg]:
    """The loop's arguments; a strided array operand is copied to a C-contiguous one
    first when the body runs vectorized math (the copy costs less than the scalar
    math it saves)."""
    costly = any(step.op in VECTOR_MATH_OPS for step in loop.body)
    args = []
    for o in loop.operands:
        if costly and not o.is_scalar and o.type.ndim and not w.is_contiguous(o.value):
            args.append(array_arg(f"np.ascontiguousarray({w.arg(o.value)})", o.type, True))
        else:
            args.append(_operand_arg(w, o))
    return args


def emit_loop(w: Writer, node: Node) -> None:
    """The loop kernel of `node` (its plan.Loop record) and its call from the entry."""
    loop = w.records[node.id]
    args = _contiguous_operands(w, loop)
    spec = loops.LoopSpec(
        name="kernel",
        operands=tuple(o.type for o in loop.operands),
        contiguous=tuple(a.param[0] != "array" or a.param[3] == "C" for a in args),
        body=loop.fused_body,
        value_types=loop.value_types,
        results=loop.results,
        shape=tuple(loop.shape),
        scalars=loop.scalars,
        row=loop.row,
    )
    _loop_call(w, node, spec, args)


def emit_epilogue(
    w: Writer, node: Node, body: tuple, results: tuple[int, ...], operands: list[Operand]
) -> None:
    """The loop kernel of an elementwise `body` over array `operands` writing `node`'s
    outputs (a fused matmul's epilogue over its inputs and the product)."""
    shape = w.type_of(node.outputs[0]).shape
    spec = loop_spec("kernel", operands, body, results, shape)
    _loop_call(w, node, spec, [array_arg(e, t, c) for e, t, c in operands])


def _loop_call(w: Writer, node: Node, spec: loops.LoopSpec, args: list[Arg]) -> None:
    """Write the loop kernel `spec` and run it with `args` and the node's outputs."""
    spec, args = _unit_strides(w, spec, args)
    what = " -> ".join(step[0] for step in spec.body)
    out_type = w.type_of(node.outputs[0])
    shape = spec.shape
    n = sizes_arg(w, shape)
    if spec.row:  # (its outputs: the iteration shape, or one value per row)
        for index in range(len(spec.results)):
            expr, t = w.out(node, index), w.type_of(Value(node.id, index))
            args = [*args, array_arg(expr, t, True)]
        work = w.size(TensorType(out_type.dtype, shape))
        w.run_kernel(loops.row_source(spec, what), args, w.dim(shape[0]), work, n, what, node=node)
        return
    reduction = spec.reduction
    if reduction is not None:
        _, axes = reduction
        kept = TensorType(out_type.dtype, tuple(d for k, d in enumerate(shape) if k not in axes))
        args = [*args, array_arg(f"{w.out(node)}.reshape({w.shape(kept)})", kept, True)]
        source = loops.reduction_source(spec, what)
        if shape and 0 not in axes and not spec.flat:
            work = w.size(TensorType(out_type.dtype, shape))
            w.run_kernel(source, args, w.dim(shape[0]), work, n, what, node=node)
        else:
            w.run_kernel(source, args, w.dim(shape[0]) if shape else "1", "0", n, what)
        return
    into: list[int | None] = []
    for index in range(len(spec.results)):
        expr, t = w.out(node, index), w.type_of(Value(node.id, index))
        into.append(_written_into(spec, args, expr, t))
        if into[-1] is None:
            args = [*args, array_arg(expr, t, True)]
    spec = replace(spec, into=tuple(into))
    source = loops.elementwise_source(spec, what)
    if not shape:
        w.run_kernel(source, args, "1", "0", n, what)
    elif spec.flat:
        rows = all(d == 1 for d in shape[1:])  # a column: flat index i is row i
        size = w.size(out_type)
        w.run_kernel(source, args, size, size, n, what, node=node, rows=rows)
    else:
        w.run_kernel(source, args, w.dim(shape[0]), w.size(out_type), n, what, node=node)


def _unit_strides(
    w: Writer, spec: loops.LoopSpec, args: list[Arg]
) -> tuple[loops.LoopSpec, list[Arg]]:
    """`spec` and `args` with every operand spanning the loop along each axis whose size
    only the run time tells apart from the loop's or 1 (x.0 against y.0 in x + y): the
    entry broadcasts such an operand and copies it, in the rare call whose sizes differ,
    so that the kernel reads every operand at unit stride. (Read as a[i * s] with s 0
    or 1, LLVM vectorized the loads into gathers: W1 19.5 ms, 7.9 ms at unit stride.)"""
    operands, args = list(spec.operands), list(args)
    rank = len(spec.shape)
    read = {a for _, step_args, _ in spec.body for a in step_args}  # (a fused product's
    # own operands come along unread)
    for i, t in enumerate(spec.operands):
        if i not in read or i in spec.scalars or i == spec.panel or not 0 < t.ndim <= rank:
            continue
        loop = spec.shape[rank - t.ndim :]
        full = tuple(
            size if d not in (1, size) and not isinstance(d, int) else d
            for d, size in zip(t.shape, loop, strict=True)
        )
        if full == tuple(t.shape):
            continue
        operands[i] = TensorType(t.dtype, full)
        name, shape = w.temp("spanning"), w.shape(operands[i])
        w.line(f"{name} = {args[i].expr}")
        w.line(f"if {name}.shape != {shape}:")
        w.line(f"    {name} = np.ascontiguousarray(np.broadcast_to({name}, {shape}))")
        args[i] = replace(args[i], expr=name)
    return replace(spec, operands=tuple(operands)), args


def _written_into(spec: loops.LoopSpec, args: list[Arg], expr: str, t: TensorType) -> int | None:
    """The operand whose array an elementwise result `expr` of type `t` is (the memory
    plan put the result in place of it), read at the index the result is written at:
    of the same type, spanning the whole iteration space contiguously."""
    for i, arg in enumerate(args[: len(spec.operands)]):
        if (
            arg.expr == expr
            and i not in spec.scalars
            and spec.contiguous[i]
            and spec.operands[i] == t
            and tuple(t.shape) == tuple(spec.shape)
        ):
            return i
    return None


def sizes_arg(w: Writer, shape: Any) -> Arg:
    """The iteration sizes `n` of a loop kernel, a tuple of intp."""
    items = [str(d) if isinstance(d, int) else w.dim(d) for d in shape]  # (lib.invoke
    # types int literals as intp)
    return Arg(text.tuple_expr(items), ("sizes", len(items)))
