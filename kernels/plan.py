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
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from graphc.ir import Graph, Node, Value
from graphc.registry import REGISTRY, lookup
from graphc.types import Sym, TensorType

ALIGN = 64  # bytes: each arena buffer starts on a cache line
# the ops every backend computes with its elementwise loop (one body step)
ELEMENTWISE_OPS = tuple(
    sorted(
        name
        for name, opdef in REGISTRY.items()
        if "elementwise" in opdef.traits and "source" not in opdef.traits
    )
)


@dataclass(frozen=True)
class Buffer:
    """One arena buffer: its dtype and the type of a value that fills it whole."""

    dtype: np.dtype
    sized_like: TensorType


@dataclass(frozen=True)
class Program:
    """What to run and where each value lives; see the module docstring."""

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

    def slot(self, sym: Sym) -> int:
        return self.dims.index(sym)


def _is_view(n: Node) -> bool:
    return "view" in lookup(n.op).traits


def _collect_dims(g: Graph) -> tuple[Sym, ...]:
    seen: dict[Sym, None] = {}
    for n in g.nodes:
        for t in n.types:
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
    """The kernel program of an optimized graph (one with or without a memory plan)."""
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
    return Program(
        graph=g,
        steps=tuple(steps),
        dims=_collect_dims(g),
        inputs=inputs,
        variables=tuple(variables),
        constants=tuple(constants),
        buffers=tuple(buffers),
        home=home,
        arena_slot=arena_slot,
        state_of=state_of,
        copied_outputs=frozenset(copied),
    )


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
