"""The entry writer both code generators share: the frame of one generated entry function.

Part of graphc.kernels. An `EntryWriter` walks a kernel program (plan.py) and writes
the statements of the function that runs it once: each source's IR line, the run-time
sizes bound from the `dims` array, the sources' names, the arena's offsets, then per
step its IR line, the storage of its outputs (arena, in-place state or a fresh array)
and what its emitter (emit.py) writes, and last the values returned: fetched outputs
(copied where they must be fresh) and the new states of updates not computed in place.
`arena_function` writes `arena_bytes(dims)`, which sizes the arena.

A target subclasses it with what only it does: `target`, the `carve`, `empty` and
`copy` expressions, `check_input`, `bind`, and whatever its emitters ask of it. The
CPU writer adds kernel modules and threads (cpu/codegen.py), the CUDA writer kernels
and launches (cuda/codegen.py). Each then wraps the body in its own function and module.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from graphc.ir import Node, Value
from graphc.kernels import emit, text
from graphc.kernels import plan as planning
from graphc.printer import format_node
from graphc.types import Dim, TensorType


@dataclass(frozen=True)
class Body:
    """What `EntryWriter.write` made, besides its lines."""

    params: tuple[str, ...]  # the sources the entry takes: inputs, variables, used constants
    returns: tuple[str, ...]  # the returned expressions, in order
    values: tuple[Value, ...]  # what they are: outputs, then new states
    new_states: tuple[int, ...]  # variable node ids whose new array is returned
    constants: tuple[int, ...]  # constant node ids the entry takes, after the variables


def dim_name(program: planning.Program, dim: Dim) -> str:
    """A size as an expression: an int literal or the variable holding a run-time size."""
    return str(dim) if isinstance(dim, int) else f"d{program.slot(dim)}"


def size_of(program: planning.Program, tensor_type: TensorType) -> str:
    """The element count of `tensor_type`: an int literal when every dim is known."""
    return text.product([dim_name(program, d) for d in tensor_type.shape])


class EntryWriter:
    """Writes the body of the entry function of `program` (see the module docstring).
    Its methods up to `temp` are what emitters may ask of any target."""

    target: ClassVar[str]  # the emitters' target (emit.py)

    def __init__(self, program: planning.Program) -> None:
        self.program = program
        self.graph = program.graph
        self.lines: list = []  # statements (a target may keep placeholders among them)
        self.names: dict[Value, str] = {}
        self.contiguous: dict[Value, bool] = {}  # values known to be C-contiguous
        self.used: set[Value] = set()  # values some statement reads
        self.carved: dict[tuple[int, TensorType], str] = {}  # (buffer, type) -> its array
        # each step's kernel record (plan.py), by node id
        self.records = {record.node: record for record in program.kernels}
        self._counter = 0

    # ---- what emitters see

    def arg(self, value: Value) -> str:
        """The expression naming the array that holds `value`."""
        self.used.add(value)
        return self.names[value]

    def out(self, node: Node, index: int = 0) -> str:
        """The preallocated output array of an alloc=True op."""
        return self.names[Value(node.id, index)]

    def define(self, node: Node, index: int, expression: str) -> None:
        """Bind output `index` of an alloc=False op to an array expression."""
        value = Value(node.id, index)
        name = self.name(value)
        self.line(f"{name} = {expression}")
        self.names[value] = name
        self.contiguous.setdefault(value, False)

    def name(self, value: Value) -> str:
        return f"v{value.node}" if value.index == 0 else f"v{value.node}_{value.index}"

    def dim(self, dim: Dim) -> str:
        return dim_name(self.program, dim)

    def shape(self, tensor_type: TensorType) -> str:
        """A shape as a tuple expression, e.g. ``(d0, 784)``."""
        return text.tuple_expr([self.dim(d) for d in tensor_type.shape])

    def size(self, tensor_type: TensorType) -> str:
        return size_of(self.program, tensor_type)

    def type_of(self, value: Value) -> TensorType:
        return self.graph.type_of(value)

    def line(self, statement: str) -> None:
        """Append one statement to the entry function."""
        self.lines.append(statement)

    def temp(self, hint: str = "t") -> str:
        """A fresh local variable name."""
        self._counter += 1
        return f"{hint}_{self._counter}"

    def is_contiguous(self, value: Value) -> bool:
        return self.contiguous.get(value, False)

    # ---- what a target says

    def check_input(self, name: str, node: Node) -> None:
        """Statements checking feed `name` of placeholder `node` (none by default)."""

    def carve(self, start: str, tensor_type: TensorType) -> str:
        """The expression of an array of `tensor_type` at byte `start` of the arena."""
        raise NotImplementedError

    def empty(self, tensor_type: TensorType) -> str:
        """The expression of a new array of `tensor_type`."""
        raise NotImplementedError

    def copy(self, name: str) -> str:
        """The expression of a fresh copy of array `name`."""
        raise NotImplementedError

    def bind(self, statement: str) -> None:
        """Append a statement binding an output's storage (it reads nothing, so a target
        may move it)."""
        self.line(statement)

    # ---- the frame

    def write(self) -> Body:
        """Write the entry's statements (see the module docstring)."""
        program = self.program
        for node_id in (*program.inputs, *program.variables, *program.constants):
            self.line(f"# {text.comment(format_node(self.graph.by_id[node_id]))}")
        for k, sym in enumerate(program.dims):
            self.line(f"d{k} = dims[{k}]  # {text.comment(str(sym))}")
        params = self._bind_sources()
        layout, offsets, _ = planning.arena_layout(program, self.size)
        self.lines += layout
        for node in program.steps:
            self.line(f"# {text.comment(format_node(node))}")
            entry = emit.emitter(self.target, node.op)
            if entry.alloc:
                for value in node.outputs:
                    self._allocate(value, offsets)
            entry.emit(self, node)
        returns, values, new_states = self._returns()
        constants = tuple(i for i in program.constants if Value(i) in self.used)
        params += [self.names[Value(i)] for i in constants]
        return Body(tuple(params), tuple(returns), values, new_states, constants)

    def _bind_sources(self) -> list[str]:
        """Name the sources; the parameters inputs and variables arrive as."""
        program, params = self.program, []
        sources = [("in", program.inputs), ("var", program.variables), ("const", program.constants)]
        for kind, ids in sources:
            for k, node_id in enumerate(ids):
                name = f"{kind}{k}"
                if kind == "in":
                    self.check_input(name, self.graph.by_id[node_id])
                if kind != "const":  # (a constant is a parameter only where it is used)
                    params.append(name)
                self.names[Value(node_id)] = name
                self.contiguous[Value(node_id)] = True
        return params

    def _allocate(self, value: Value, offsets: dict[int, str]) -> None:
        """Bind `value` to its storage before its node runs (alloc=True ops). The same
        bytes as the same type are one array."""
        program = self.program
        t = self.type_of(value)
        name = self.name(value)
        home = program.home[value]
        if home == "arena":
            buffer = program.arena_slot[value]
            if (buffer, t) in self.carved:
                self.names[value] = self.carved[buffer, t]
                self.contiguous[value] = True
                return
            self.carved[buffer, t] = name
            expression = self.carve(offsets[buffer], t)
        elif home == "state":
            expression = self.names[Value(program.state_of[value])]
        else:
            expression = self.empty(t)
        self.bind(f"{name} = {expression}")
        self.names[value] = name
        self.contiguous[value] = True

    def _returns(self) -> tuple[list[str], tuple[Value, ...], tuple[int, ...]]:
        """The returned expressions: outputs (copied where they must be fresh), then the
        new states of updates not computed in place."""
        program, g = self.program, self.graph
        exprs, values = [], []
        for i, v in enumerate(g.outputs):
            name = self.arg(v)  # (marks a returned constant as a parameter)
            exprs.append(self.copy(name) if i in program.copied_outputs else name)
            values.append(v)
        fetched = set(g.outputs)
        new_states, seen = [], set()
        for variable, v in g.updates:
            if program.home[v] == "state":
                continue
            name = self.arg(v)
            fresh = program.home[v] == "fresh" and v not in fetched and v not in seen
            exprs.append(name if fresh else self.copy(name))
            values.append(v)
            new_states.append(variable)
            seen.add(v)
        return exprs, tuple(values), tuple(new_states)


def arena_function(program: planning.Program, what: str) -> str:
    """`arena_bytes(dims)`, plain Python: the bytes of `what` one call needs."""
    lines = ["def arena_bytes(dims):", f'    """Bytes of {what} one call needs."""']
    lines += [f"    d{k} = int(dims[{k}])" for k in range(len(program.dims))]
    layout, _, total = planning.arena_layout(program, lambda t: size_of(program, t))
    lines += ["    " + line for line in layout]
    lines.append(f"    return {total}")
    return "\n".join(lines) + "\n"
