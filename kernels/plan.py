"""The kernel program: an optimized graph as an ordered list of kernels, a buffer plan
and the bindings a call needs. Both backends lower from it.

Part of graphc.kernels. `plan(graph)` decides, for every value of the graph, where
its data lives during a call:

  input      a feed, passed to the entry function (C-contiguous, validated before)
  variable   a variable's current array
  constant   a constant, passed to the entry function as an array
  arena      a buffer of the per-call arena (the memory plan's temporaries)
  fresh      a new array allocated each call: fetched values and new variable states
  state      a variable's new value computed straight into the variable's own array
             (an update whose kernel is the last reader of the old value)
  view       a view of another value's data (transpose, slice, reshape, ...)
  returned   an array the op's kernel returns (its emitter allocates it)

and the order the kernels run in (the graph's node order). Run-time sizes (`Sym`s)
become slots of one int64 array, `dims`, that the runtime fills once per new set
of feed shapes; every size in generated code is a literal or a slot.

It also says what each step computes, once for both backends, as a typed record in
`Program.kernels` (parallel to `Program.steps`):

  Loop       an elementwise op, a reduction (sum, prod, max, min) or a fused group of
             kind elementwise, reduction or row: operands (arrays, or scalar constants
             the kernel takes as literals), body steps with their types, results,
             iteration shape and the closing reduction (a row group: the count of
             trailing axes its reductions run over, kernels/rows.py)
  Library    any other computing op (matmul, conv2d, sort, gather, a fused matmul...)
  View       an op with the "view" trait (transpose, slice, reshape, split, ...)

`format_program` prints a program (`str(program)`) and `verify_program` checks it;
`plan` runs the verifier when GRAPHC_VERIFY is set, as the pass manager verifies
every pass.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graphc import config
from graphc.errors import InternalError
from graphc.ir import Graph, Node, Value
from graphc.kernels.control import body_types as body_types_of_control
from graphc.kernels.control import lift_constants
from graphc.ops.fused import body_types
from graphc.registry import REGISTRY, Attrs, ConstArray, lookup
from graphc.types import Shape, Sym, TensorType

ALIGN = 64  # bytes: each arena buffer starts on a cache line
# the ops every backend computes with its elementwise loop (one body step)
ELEMENTWISE_OPS = tuple(
    sorted(
        name
        for name, opdef in REGISTRY.items()
        if "elementwise" in opdef.traits and "source" not in opdef.traits
    )
)
# the reductions a loop kernel ends with (argmax and argmin are library ops)
LOOP_REDUCTIONS = ("max", "min", "prod", "sum")
# the ops a Loop record describes alone: every backend registers its loop emitter for them
LOOP_OPS = (*ELEMENTWISE_OPS, *LOOP_REDUCTIONS)
HOMES = frozenset({"input", "variable", "constant", "arena", "fresh", "state", "view", "returned"})


@dataclass(frozen=True)
class Buffer:
    """One arena buffer: its dtype and the type of a value that fills it whole."""

    dtype: np.dtype
    sized_like: TensorType


# ------------------------------------------------------------------ kernel records


@dataclass(frozen=True)
class Operand:
    """One operand of a Loop: an array value of the graph, or a scalar constant.

    A scalar constant is a one-element constant, either an input of the node or a
    `constant` step of a fused body. Backends pass it as a literal or a scalar
    parameter, never as an array, so kernels that differ only in their constants can
    be one kernel. Its `type` keeps the constant's own shape ((), (1,), (1, 1), ...),
    which still takes part in broadcasting."""

    type: TensorType
    value: Value | None = None  # the array read; None for a scalar constant
    constant: ConstArray | None = None  # a scalar constant's one-element array

    @property
    def is_scalar(self) -> bool:
        return self.constant is not None

    @property
    def scalar(self) -> np.generic:
        """A scalar constant's value: a numpy scalar of exactly `type.dtype`."""
        if self.constant is None:
            raise InternalError(f"operand {self.value} is an array, not a scalar constant")
        return self.constant.array.reshape(-1)[0]


@dataclass(frozen=True)
class LoopStep:
    """One step of a Loop's body: `op` with `attrs` over the flat values `args`
    (indices into the Loop's operands, then the earlier steps' values); its value,
    of type `type`, is the next one of the flat list."""

    op: str
    args: tuple[int, ...]
    attrs: Attrs
    type: TensorType


@dataclass(frozen=True)
class Reduction:
    """The reduction that ends a Loop's body: `op` over `axes` (sorted, non-negative
    axes of the iteration shape) of the flat value `source`, keeping the reduced axes
    as size 1 when `keepdims`."""

    op: str
    axes: tuple[int, ...]
    source: int
    keepdims: bool


@dataclass(frozen=True)
class Loop:
    """A loop kernel: an elementwise op, a reduction, or a fused elementwise or
    reduction group, as one description.

    The flat value list is the operands, then one value per body step. Result i
    (an index into that list) is written to `outputs[i]`, the node's output i. An
    elementwise loop runs over `shape`, its outputs' shape, reading each operand with
    numpy broadcasting. A reduction loop runs over `shape`, the shape of the reduced
    value (`reduction.source`); its last body step is the reduction itself."""

    node: int  # the node it computes
    operands: tuple[Operand, ...]
    body: tuple[LoopStep, ...]
    results: tuple[int, ...]
    outputs: tuple[Value, ...]
    shape: Shape  # the iteration space
    reduction: Reduction | None = None
    row: int = 0  # a row group: its reductions run over the last `row` axes of `shape`

    @property
    def kind(self) -> str:
        if self.row:
            return "row"
        return "elementwise" if self.reduction is None else "reduction"

    @property
    def value_types(self) -> tuple[TensorType, ...]:
        """The type of every flat value: operands, then steps."""
        return tuple(o.type for o in self.operands) + tuple(s.type for s in self.body)

    @property
    def scalars(self) -> frozenset[int]:
        """The operand positions that are scalar constants."""
        return frozenset(i for i, o in enumerate(self.operands) if o.is_scalar)

    @property
    def prologue(self) -> tuple[LoopStep, ...]:
        """The elementwise steps: the body without its closing reduction."""
        return self.body if self.reduction is None else self.body[:-1]

    @property
    def fused_body(self) -> tuple[tuple[str, tuple[int, ...], Attrs], ...]:
        """The body as (op, args, attrs) triples, the form of a fused node's body."""
        return tuple((s.op, s.args, s.attrs) for s in self.body)


@dataclass(frozen=True)
class Library:
    """A step a backend computes with an emitter of its own (matmul, conv2d, sort,
    take, pad, argmax, a fused matmul with its epilogue, ...): `op` with `attrs`
    over `inputs`, writing `outputs`."""

    node: int
    op: str
    attrs: Attrs
    inputs: tuple[Value, ...]
    outputs: tuple[Value, ...]


@dataclass(frozen=True)
class View:
    """A step with the "view" trait: `outputs` are views of `source`'s data (on the
    CPU; the CUDA backend copies the strided ones). `like` holds the inputs that only
    give a shape (reshape_like, split_like)."""

    node: int
    op: str
    attrs: Attrs
    source: Value
    outputs: tuple[Value, ...]
    like: tuple[Value, ...] = ()


KernelRecord = Loop | Library | View


@dataclass(frozen=True)
class Program:
    """What to run and where each value lives; see the module docstring.

    `kernels[i]` is the record of `steps[i]`; `str(program)` prints it all."""

    graph: Graph
    steps: tuple[Node, ...]  # the nodes that compute, in order
    dims: tuple[Sym, ...]  # slot k of the dims array holds dims[k]
    inputs: tuple[int, ...]  # placeholder node ids, in call order
    variables: tuple[int, ...]  # variable node ids, in entry-argument order
    constants: tuple[int, ...]  # constant node ids passed as arrays
    buffers: tuple[Buffer, ...]
    home: dict[Value, str] = field(repr=False)  # value -> kind (see the module docstring)
    arena_slot: dict[Value, int] = field(repr=False)  # arena value -> buffer index
    state_of: dict[Value, int] = field(repr=False)  # "state" value -> variable node id
    copied_outputs: frozenset[int] = frozenset()  # output positions that need a copy
    kernels: tuple[KernelRecord, ...] = ()  # one record per step, in order

    def slot(self, sym: Sym) -> int:
        return self.dims.index(sym)

    def __str__(self) -> str:
        from graphc.kernels.program_text import format_program

        return format_program(self)


def _is_view(n: Node) -> bool:
    return "view" in lookup(n.op).traits


def _collect_dims(g: Graph, kernels: tuple[KernelRecord, ...]) -> tuple[Sym, ...]:
    """Every run-time size of the graph's values, fused bodies' inner values included
    (a kernel iterates over them; the runtime binds them: interpret.concrete_types)."""
    seen: dict[Sym, None] = {}
    types = [t for n in g.nodes for t in n.types] + body_types_of_control(g)
    for record in kernels:
        if isinstance(record, Loop):
            types += record.value_types
        elif record.op == "fused":  # a matmul and its epilogue
            inputs = tuple(g.type_of(v) for v in record.inputs)
            types += body_types(inputs, record.attrs["body"])
    for t in types:
        for d in t.shape:
            if isinstance(d, Sym):
                seen.setdefault(d, None)
    return tuple(seen)


def _elementwise_kernel(n: Node) -> bool:
    traits = lookup(n.op).traits
    if n.op == "fused":
        return n.attrs["kind"] == "elementwise"
    return "elementwise" in traits and "source" not in traits


def _state_updates(g: Graph, position: dict[int, int], fetched: set[Value]) -> dict[Value, int]:
    """Updates computed straight into the variable's array: the update's node is an
    elementwise kernel of the variable's type, nothing reads the variable after it,
    the variable is not fetched, and the value is not fetched or another update."""
    readers: dict[int, list[int]] = {}
    viewers: dict[int, int] = {}  # node id of a view -> the variable it views
    for n in g.nodes:
        for v in n.inputs:
            base = viewers.get(v.node, v.node)
            readers.setdefault(base, []).append(n.id)
            if _is_view(n):
                viewers[n.id] = base
    fetched_nodes = {viewers.get(v.node, v.node) for v in fetched}
    chosen: dict[Value, int] = {}
    targets = [value for _, value in g.updates]
    for variable, value in g.updates:
        n = g.node(value)
        if (
            not _elementwise_kernel(n)
            or value in fetched
            or targets.count(value) > 1
            or variable in fetched_nodes
            or g.type_of(value) != g.node(variable).types[0]
            or any(position[r] > position[n.id] for r in readers.get(variable, []))
        ):
            continue
        chosen[value] = variable
    return chosen


SOURCE_HOMES = {"placeholder": "input", "variable": "variable", "constant": "constant"}


def _home(n: Node, v: Value, state_of: dict[Value, int], arena_slot: dict[Value, int]) -> str:
    if n.op in SOURCE_HOMES:
        return SOURCE_HOMES[n.op]
    if v in state_of:
        return "state"
    if v in arena_slot:
        return "arena"
    return "view" if _is_view(n) else "fresh"


def plan(g: Graph) -> Program:
    """The kernel program of an optimized graph (one with or without a memory plan).
    Control-flow bodies lose their array constants to operands first (control.py)."""
    g = lift_constants(g)
    position = {n.id: i for i, n in enumerate(g.nodes)}
    fetched = set(g.outputs)
    state_of = _state_updates(g, position, fetched)
    arena_slot = dict(g.memory.assignment) if g.memory is not None else {}
    buffers: list[Buffer] = []
    if g.memory is not None:
        sized: dict[int, TensorType] = {}
        for value, index in g.memory.assignment:
            sized.setdefault(index, g.type_of(value))
        buffers = [
            Buffer(np.dtype(dtype), sized[i]) for i, (dtype, _) in enumerate(g.memory.buffers)
        ]
    home: dict[Value, str] = {}
    inputs = tuple(v.node for v in g.inputs)
    variables, constants, steps = [], [], []
    for n in g.nodes:
        for v in n.outputs:
            home[v] = _home(n, v, state_of, arena_slot)
        if n.op == "variable":
            variables.append(n.id)
        elif n.op == "constant":
            constants.append(n.id)
        elif n.op != "placeholder":
            steps.append(n)
    # an output is returned as its own fresh array; anything else is copied
    claimed: set[Value] = set()
    copied = set()
    for i, v in enumerate(g.outputs):
        if home[v] != "fresh" or v in claimed:
            copied.add(i)
        claimed.add(v)
    kernels = tuple(kernel_record(g, n) for n in steps)
    program = Program(
        graph=g,
        steps=tuple(steps),
        dims=_collect_dims(g, kernels),
        inputs=inputs,
        variables=tuple(variables),
        constants=tuple(constants),
        buffers=tuple(buffers),
        home=home,
        arena_slot=arena_slot,
        state_of=state_of,
        copied_outputs=frozenset(copied),
        kernels=kernels,
    )
    if config.verify_passes():
        from graphc.kernels.verify import verify_program

        verify_program(program)
    return program


# ------------------------------------------------------------------ building the records


def record_kind(n: Node) -> type:
    """Which record describes step `n`: Loop, View or Library."""
    if n.op in LOOP_OPS or (n.op == "fused" and n.attrs["kind"] != "matmul"):
        return Loop
    return View if _is_view(n) else Library


def kernel_record(g: Graph, n: Node) -> KernelRecord:
    """The record of step `n` of `g`."""
    kind = record_kind(n)
    if kind is Loop:
        return _loop(g, n)
    if kind is View:
        return View(n.id, n.op, n.attrs, n.inputs[0], n.outputs, n.inputs[1:])
    return Library(n.id, n.op, n.attrs, n.inputs, n.outputs)


def _is_scalar_constant(n: Node) -> bool:
    return n.op == "constant" and n.attrs["value"].array.size == 1  # (an empty one has none)


def infer_step(op: str, types: list[TensorType], attrs: Attrs) -> TensorType:
    """The type of one loop step's value (a loop step has exactly one)."""
    opdef = lookup(op)
    inferred = opdef.infer(*types, **opdef.check_attrs(attrs))
    inferred = inferred if isinstance(inferred, tuple) else (inferred,)
    if len(inferred) != 1:
        raise InternalError(f"loop step {op} has {len(inferred)} results, not one")
    return inferred[0]


@functools.lru_cache(maxsize=4096)
def _step_type(op: str, types: tuple[TensorType, ...], attrs: Attrs) -> TensorType:
    """`_infer_step`, remembered: the layers of a model repeat the same steps, and
    every compile plans its graph (the verifier infers afresh)."""
    return infer_step(op, list(types), attrs)


def _loop(g: Graph, n: Node) -> Loop:
    """The Loop of an elementwise op, a reduction or a fused elementwise/reduction/row group.

    A single op is the one-step body `op(x0, x1, ...)`. Every one-element constant (an
    input, or a `constant` step of the body) becomes a scalar operand: the inputs keep
    their positions, the constant steps follow them, and the body is renumbered."""
    n_in = len(n.inputs)
    if n.op == "fused":
        body, results = n.attrs["body"], n.attrs["results"]
    else:
        body, results = ((n.op, tuple(range(n_in)), n.attrs),), (n_in,)
    operands: list[Operand] = []
    for v in n.inputs:
        producer = g.by_id[v.node]
        t = producer.types[v.index]
        if _is_scalar_constant(producer):
            operands.append(Operand(t, constant=producer.attrs["value"]))
        else:
            operands.append(Operand(t, v))
    where = {i: i for i in range(n_in)}  # flat index in the body -> flat index here
    for k, (op, _, attrs) in enumerate(body):
        if op == "constant" and attrs["value"].array.size == 1:
            array = attrs["value"].array
            where[n_in + k] = len(operands)
            operands.append(Operand(TensorType(array.dtype, array.shape), constant=attrs["value"]))
    types = [o.type for o in operands]
    steps: list[LoopStep] = []
    for k, (op, args, attrs) in enumerate(body):
        if n_in + k in where:
            continue  # a scalar constant, now an operand
        moved = tuple(where[a] for a in args)
        step = LoopStep(op, moved, attrs, _step_type(op, tuple(types[a] for a in moved), attrs))
        where[n_in + k] = len(types)
        types.append(step.type)
        steps.append(step)
    results = tuple(where[r] for r in results)
    if n.op == "fused" and n.attrs["kind"] == "row":
        first = next(s for s in steps if s.op in LOOP_REDUCTIONS)
        shape = types[first.args[0]].shape
        row = len(normalized_axes(first.attrs["axes"], len(shape)))
        return Loop(n.id, tuple(operands), tuple(steps), results, n.outputs, shape, row=row)
    if steps and steps[-1].op in LOOP_REDUCTIONS:
        last = steps[-1]
        (source,) = last.args
        shape = types[source].shape
        axes = normalized_axes(last.attrs["axes"], len(shape))
        reduction = Reduction(last.op, axes, source, bool(last.attrs["keepdims"]))
        return Loop(n.id, tuple(operands), tuple(steps), results, n.outputs, shape, reduction)
    return Loop(n.id, tuple(operands), tuple(steps), results, n.outputs, n.types[0].shape)


def normalized_axes(axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
    return tuple(sorted({a % rank for a in axes})) if rank else ()


def source_types(program: Program) -> str:
    """A statement naming the dtype and rank of every source the entry may take.

    The runtime compiles a module's text without its comments, and modules with the
    same text are one module (runtime/cache.py). numba compiles an entry for the types
    of its first call only; this statement keeps two graphs that differ only in their
    sources' dtypes or ranks in two modules."""
    parts = []
    for kind, ids in (
        ("in", program.inputs),
        ("var", program.variables),
        ("const", program.constants),
    ):
        for k, node_id in enumerate(ids):
            t = program.graph.by_id[node_id].types[0]
            parts.append(f"{kind}{k}: {t.dtype.name} {t.ndim}-d")
    return f'SOURCE_TYPES = "{", ".join(parts)}"\n'


def arena_layout(
    program: Program, size: Callable[[TensorType], str]
) -> tuple[list[str], dict[int, str], str]:
    """Statements binding each arena buffer's byte offset to `o<i>` (from the element
    counts `size` gives as expressions of the run-time sizes), those names, and the
    expression of the total: both code generators carve their arenas this way. While
    every size before a buffer is known, its offset is a literal and needs no statement."""
    lines: list[str] = []
    offsets: dict[int, str] = {}
    total = "0"
    for i, buffer in enumerate(program.buffers):
        count = size(buffer.sized_like)
        itemsize = buffer.dtype.itemsize
        if total.isdigit():
            offsets[i] = total
            if count.isdigit():
                padded = (itemsize * int(count) + ALIGN - 1) // ALIGN * ALIGN
                total = str(int(total) + padded)
                continue
        else:
            offsets[i] = f"o{i}"
            lines.append(f"o{i} = {total}")
        total = f"({offsets[i]} + ({itemsize} * {count} + {ALIGN - 1}) // {ALIGN} * {ALIGN})"
    return lines, offsets, total
