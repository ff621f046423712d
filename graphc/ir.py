"""The IR: `Value`, `Node`, `Graph` and `GraphBuilder`, the only way to make nodes.

Part of the IR core. Nodes are frozen; a graph keeps them in topological order
(every input is defined by an earlier node) and is never changed after it is
built: passes return new graphs. The builder infers each node's types when the
node is built, so shape and dtype errors surface at the user's line.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, GraphcError, ShapeError
from graphc.registry import Attrs, lookup
from graphc.types import TensorType


@dataclass(frozen=True, slots=True)
class Value:
    """One output of a node: `index` selects among a multi-output node's results."""

    node: int
    index: int = 0

    def __str__(self) -> str:
        return f"%{self.node}" if self.index == 0 else f"%{self.node}.{self.index}"


@dataclass(frozen=True, slots=True)
class Node:
    """One operation: op name, input values, attributes and inferred output types."""

    id: int
    op: str
    inputs: tuple[Value, ...]
    attrs: Attrs
    types: tuple[TensorType, ...]
    name: str | None = None
    origin: str | None = None  # the user's file:line where the node was built

    @property
    def outputs(self) -> tuple[Value, ...]:
        return tuple(Value(self.id, i) for i in range(len(self.types)))

    @property
    def type(self) -> TensorType:
        """The type of a single-output node."""
        return self.types[0]


@dataclass(frozen=True)
class MemoryPlan:
    """Where each temporary of a call lives: the plan_memory pass makes it, lowering uses it.

    buffers     the (dtype, element count) of each buffer of the per-call arena
    assignment  temporary value -> the index of the buffer it is computed into
    in_place    the values computed into the buffer of an input that dies at their node
    """

    buffers: tuple[tuple[str, Any], ...]
    assignment: tuple[tuple[Value, int], ...]
    in_place: tuple[Value, ...] = ()


@dataclass(frozen=True)
class Graph:
    """A whole computation: nodes in topological order, its signature and variable updates.

    inputs   placeholder values, in the order a caller passes them
    outputs  the values a call returns
    updates  (variable node id, new value) pairs, applied after the outputs
    memory   the buffer plan of plan_memory, or None; a pass that rebuilds nodes drops it
    """

    nodes: tuple[Node, ...]
    inputs: tuple[Value, ...] = ()
    outputs: tuple[Value, ...] = ()
    updates: tuple[tuple[int, Value], ...] = ()
    memory: MemoryPlan | None = None

    @cached_property
    def by_id(self) -> dict[int, Node]:
        return {n.id: n for n in self.nodes}

    @cached_property
    def users(self) -> dict[int, list[int]]:
        """node id -> ids of the nodes that read one of its outputs."""
        result: dict[int, list[int]] = {n.id: [] for n in self.nodes}
        for n in self.nodes:
            for v in n.inputs:
                result[v.node].append(n.id)
        return result

    @property
    def variables(self) -> tuple[Node, ...]:
        return tuple(n for n in self.nodes if n.op == "variable")

    def node(self, value: Value | int) -> Node:
        return self.by_id[value if isinstance(value, int) else value.node]

    def type_of(self, value: Value) -> TensorType:
        return self.by_id[value.node].types[value.index]

    def roots(self) -> tuple[Value, ...]:
        """The values the graph exists to compute: outputs and update values."""
        return self.outputs + tuple(v for _, v in self.updates)

    def ancestors(self, values: Iterable[Value]) -> set[int]:
        """Ids of the nodes that `values` depend on, including their own nodes."""
        seen: set[int] = set()
        stack = [v.node for v in values]
        while stack:
            node_id = stack.pop()
            if node_id in seen:
                continue
            seen.add(node_id)
            stack.extend(v.node for v in self.by_id[node_id].inputs)
        return seen

    def replace(self, **changes: Any) -> Graph:
        """A copy with `changes`; new nodes drop the memory plan, which named the old ones."""
        if "nodes" in changes and "memory" not in changes:
            changes["memory"] = None
        return dataclasses.replace(self, **changes)

    def __str__(self) -> str:
        from graphc.printer import format_graph

        return format_graph(self)

    def renumbered(self) -> tuple[Graph, dict[int, int]]:
        """This graph with its nodes numbered 0, 1, 2, ... in order, and the map from old
        ids to new. Two builds of the same computation number alike, so they generate the
        same code (and share it) whatever ids the builder gave them."""
        new_id = {n.id: i for i, n in enumerate(self.nodes)}
        if all(old == new for old, new in new_id.items()):
            return self, new_id

        def moved(v: Value) -> Value:
            return Value(new_id[v.node], v.index)

        nodes = tuple(
            dataclasses.replace(n, id=new_id[n.id], inputs=tuple(moved(v) for v in n.inputs))
            for n in self.nodes
        )
        memory = self.memory
        if memory is not None:
            assignment = tuple((moved(v), index) for v, index in memory.assignment)
            in_place = tuple(moved(v) for v in memory.in_place)
            memory = dataclasses.replace(memory, assignment=assignment, in_place=in_place)
        graph = Graph(
            nodes,
            tuple(moved(v) for v in self.inputs),
            tuple(moved(v) for v in self.outputs),
            tuple((new_id[variable], moved(v)) for variable, v in self.updates),
            memory,
        )
        return graph, new_id


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))
# in a source checkout the pipeline's later stages live beside graphc/, not inside it
_LIBRARY_DIRS = tuple(
    directory + os.sep
    for directory in (
        _PACKAGE_DIR,
        *(
            os.path.join(os.path.dirname(_PACKAGE_DIR), stage)
            for stage in ("passes", "kernels", "runtime")
        ),
    )
)


def user_origin() -> str | None:
    """The `file:line` of the innermost caller outside graphc's own code."""
    frame = sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_LIBRARY_DIRS):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None
    return f"{os.path.basename(frame.f_code.co_filename)}:{frame.f_lineno}"


def located(op: str, error_type: type[GraphcError], message: str) -> GraphcError:
    """An error of `error_type` naming `op` and the user's line, ready to raise."""
    origin = user_origin()
    return error_type(f"{op}{f' at {origin}' if origin else ''}: {message}")


def value_label(node: Node, index: int = 0) -> str:
    """How errors name a value: the user's name when there is one, else `%id (op)`."""
    label = node.name or f"%{node.id} ({node.op})"
    return f"{label}[{index}]" if len(node.types) > 1 else label


def describe_value(node: Node, index: int = 0) -> str:
    """`label: type` for error messages."""
    return f"{value_label(node, index)}: {node.types[index]}"


class GraphBuilder:
    """Makes nodes: checks attributes, infers types, assigns increasing ids.

    Ids increase in build order and every input is built before its user, so
    sorting nodes by id is a topological order.
    """

    def __init__(self, nodes: Iterable[Node] = ()) -> None:
        self._nodes: dict[int, Node] = {n.id: n for n in nodes}
        self._next_id = max(self._nodes, default=-1) + 1
        self._lock = threading.Lock()

    def node(self, value: Value | int) -> Node:
        return self._nodes[value if isinstance(value, int) else value.node]

    def type_of(self, value: Value) -> TensorType:
        return self._nodes[value.node].types[value.index]

    @property
    def next_id(self) -> int:
        """The id the next node will get: every node built from now on has one at least
        this large (control flow uses it to tell a body's nodes from the values it reads)."""
        return self._next_id

    def add(
        self,
        op: str,
        inputs: Sequence[Value] = (),
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        origin: str | None = None,
    ) -> tuple[Value, ...]:
        """Build one node of `op` and return its output values.

        Raises ShapeError/DTypeError naming the op, its operands and the user's line.
        """
        node = self.make(op, inputs, attrs, name=name, origin=origin)
        self._nodes[node.id] = node
        return node.outputs

    def make(
        self,
        op: str,
        inputs: Sequence[Value] = (),
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        origin: str | None = None,
    ) -> Node:
        """A new node of `op` with the next id, checked and typed but not yet kept."""
        opdef = lookup(op)
        origin = origin or user_origin()
        inputs = tuple(inputs)
        if opdef.arity is not None and len(inputs) != opdef.arity:
            raise ArgumentTypeError(f"{op} takes {opdef.arity} inputs, got {len(inputs)}")
        input_types = tuple(self.type_of(v) for v in inputs)
        try:
            frozen = opdef.check_attrs(attrs or {})
            inferred = opdef.infer(*input_types, **frozen)
        except (ShapeError, DTypeError, ArgumentError, ArgumentTypeError) as error:
            operands = "  with  ".join(describe_value(self.node(v), v.index) for v in inputs)
            message = f"{op}{f' at {origin}' if origin else ''}: {error}"
            if operands:
                message += f"\n    {operands}"
            raise type(error)(message) from None
        types = inferred if isinstance(inferred, tuple) else (inferred,)
        with self._lock:
            node_id = self._next_id
            self._next_id += 1
        return Node(node_id, op, inputs, frozen, types, name, origin)

    def add1(
        self,
        op: str,
        inputs: Sequence[Value] = (),
        attrs: Mapping[str, Any] | None = None,
        *,
        name: str | None = None,
        origin: str | None = None,
    ) -> Value:
        """`add` for an op with exactly one output."""
        (value,) = self.add(op, inputs, attrs, name=name, origin=origin)
        return value

    def build(
        self,
        inputs: Sequence[Value],
        outputs: Sequence[Value],
        updates: Sequence[tuple[int, Value]] = (),
    ) -> Graph:
        """The graph of every node that `inputs`, `outputs` and `updates` need, in id order."""
        found: dict[int, Node] = {}
        stack = [v.node for v in (*inputs, *outputs)]
        stack += [node_id for var, value in updates for node_id in (var, value.node)]
        while stack:
            node_id = stack.pop()
            if node_id not in found:
                node = found[node_id] = self.node(node_id)
                stack.extend(v.node for v in node.inputs)
        nodes = tuple(found[i] for i in sorted(found))
        return Graph(nodes, tuple(inputs), tuple(outputs), tuple(updates))
