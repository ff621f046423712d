"""The kernel program's verifier: `verify_program(program)` raises VerifyError when a
program (plan.py) is inconsistent. `plan` runs it when GRAPHC_VERIFY is set, as the
pass manager runs the graph verifier (graphc/verify.py) after every pass.

Part of graphc.kernels.
"""

from __future__ import annotations

import numpy as np

from graphc.errors import GraphcError, VerifyError
from graphc.ir import Graph, Node, Value
from graphc.kernels.plan import (
    HOMES,
    LOOP_REDUCTIONS,
    SOURCE_HOMES,
    KernelRecord,
    Loop,
    Program,
    View,
    infer_step,
    normalized_axes,
    record_kind,
)
from graphc.printer import format_excerpt
from graphc.types import Shape, Sym, TensorType, format_shape, product_factors


def _fail(program: Program, node_id: int | None, reason: str) -> VerifyError:
    g = program.graph
    excerpt = f"\n{format_excerpt(g, node_id)}" if node_id in g.by_id else ""
    return VerifyError(f"kernel program: {reason}{excerpt}")


def _exists(g: Graph, v: Value) -> bool:
    node = g.by_id.get(v.node)
    return node is not None and 0 <= v.index < len(node.types)


def verify_program(program: Program) -> Program:
    """Raise VerifyError if `program` is inconsistent; return it otherwise.

    Checked: the sources are the graph's; every value has one known home, and a
    source the home of its kind; arena values sit in an existing buffer of their
    dtype that is large enough (where the sizes can be compared); "state" values
    have their variable's type; there is one kernel record per step, of the step's
    kind, and each reads only sources and values of earlier steps; a Loop's step
    types re-infer, its results exist and have the node's types, its reduction
    axes are axes of the reduced value; every Sym a type or an iteration shape uses
    has a dims slot."""
    _check_sources(program)
    _check_homes(program)
    _check_arena(program)
    _check_states(program)
    _check_kernels(program)
    _check_dims(program)
    return program


def _check_sources(program: Program) -> None:
    g = program.graph
    if program.inputs != tuple(v.node for v in g.inputs):
        raise _fail(program, None, f"inputs {program.inputs} are not the graph's inputs")
    for ids, op in ((program.variables, "variable"), (program.constants, "constant")):
        for node_id in ids:
            node = g.by_id.get(node_id)
            if node is None or node.op != op:
                raise _fail(program, node_id, f"%{node_id} is listed as a {op} but is not one")
    for i in program.copied_outputs:
        if not 0 <= i < len(g.outputs):
            raise _fail(program, None, f"copied output {i} is not an output position")


def _check_homes(program: Program) -> None:
    g = program.graph
    for n in g.nodes:
        for v in n.outputs:
            kind = program.home.get(v)
            if kind is None:
                raise _fail(program, n.id, f"{v} ({n.op}) has no home")
            if kind not in HOMES:
                raise _fail(program, n.id, f"{v} has the unknown home {kind!r}")
            if n.op in SOURCE_HOMES and kind != SOURCE_HOMES[n.op]:
                raise _fail(program, n.id, f"{v} is a {n.op} but its home is {kind!r}")
            if kind == "arena" and v not in program.arena_slot:
                raise _fail(program, n.id, f"{v} lives in the arena but has no buffer")
            if kind == "state" and v not in program.state_of:
                raise _fail(program, n.id, f"{v} is a new state but names no variable")
    for v in program.home:
        if not _exists(g, v):
            raise _fail(program, None, f"a home is given for {v}, which the graph lacks")


def _larger(value: TensorType, room: TensorType) -> bool:
    """Whether `value` has more elements than `room`, where that can be told: both sizes
    known, or products of the same run-time sizes with different known factors."""
    known, unknown = product_factors(value.shape)
    room_known, room_unknown = product_factors(room.shape)
    return sorted(unknown) == sorted(room_unknown) and known > room_known


def _check_arena(program: Program) -> None:
    g, buffers = program.graph, program.buffers
    for i, buffer in enumerate(buffers):
        if np.dtype(buffer.dtype) != buffer.sized_like.dtype:
            raise _fail(
                program, None, f"buffer b{i} of {buffer.dtype} is sized like {buffer.sized_like}"
            )
    for v, index in program.arena_slot.items():
        if not _exists(g, v):
            raise _fail(program, None, f"{v} has an arena buffer but is not in the graph")
        if not 0 <= index < len(buffers):
            raise _fail(program, v.node, f"{v} lives in buffer b{index}; there are {len(buffers)}")
        t, buffer = g.type_of(v), buffers[index]
        if t.dtype != np.dtype(buffer.dtype):
            raise _fail(program, v.node, f"{v} ({t}) lives in b{index} of {buffer.dtype}")
        if _larger(t, buffer.sized_like):
            raise _fail(
                program,
                v.node,
                f"{v} ({t}) does not fit in b{index}, sized like {buffer.sized_like}",
            )


def _check_states(program: Program) -> None:
    g = program.graph
    for v, variable in program.state_of.items():
        node = g.by_id.get(variable)
        if node is None or node.op != "variable":
            raise _fail(program, v.node, f"{v} is computed into %{variable}, not a variable")
        if not _exists(g, v) or g.type_of(v) != node.types[0]:
            t = g.type_of(v) if _exists(g, v) else "nothing"
            raise _fail(
                program, v.node, f"{v} ({t}) is computed into %{variable} of {node.types[0]}"
            )
        if program.home.get(v) != "state":
            raise _fail(program, v.node, f"{v} is computed into %{variable} but lives elsewhere")


def _reads(record: KernelRecord) -> tuple[Value, ...]:
    if isinstance(record, Loop):
        return tuple(o.value for o in record.operands if o.value is not None)
    if isinstance(record, View):
        return (record.source, *record.like)
    return record.inputs


def _check_kernels(program: Program) -> None:
    g = program.graph
    if len(program.kernels) != len(program.steps):
        raise _fail(
            program,
            None,
            f"{len(program.steps)} steps but {len(program.kernels)} kernel records",
        )
    defined = {v for n in g.nodes if n.op in SOURCE_HOMES for v in n.outputs}
    for step, record in zip(program.steps, program.kernels, strict=True):
        if g.by_id.get(step.id) != step:
            raise _fail(program, None, f"step %{step.id} ({step.op}) is not a node of the graph")
        kind = record_kind(step)
        if not isinstance(record, kind) or record.node != step.id:
            raise _fail(
                program,
                step.id,
                f"%{step.id} ({step.op}) needs a {kind.__name__} record, has "
                f"a {type(record).__name__} of %{record.node}",
            )
        if record.outputs != step.outputs:
            raise _fail(program, step.id, f"the record of %{step.id} writes {record.outputs}")
        for v in (*step.inputs, *_reads(record)):
            if v not in defined:
                raise _fail(
                    program, step.id, f"%{step.id} reads {v}, not a source or an earlier result"
                )
        if isinstance(record, Loop):
            _check_loop(program, step, record)
        defined.update(step.outputs)


def _check_operands(program: Program, step: Node, loop: Loop) -> None:
    g = program.graph
    for i, o in enumerate(loop.operands):
        if o.constant is None:
            if o.value is None or o.value not in step.inputs:
                raise _fail(program, step.id, f"loop operand x{i} reads {o.value}, not an input")
            if o.type != g.type_of(o.value):
                raise _fail(
                    program,
                    step.id,
                    f"loop operand x{i} is {o.type}, {o.value} is {g.type_of(o.value)}",
                )
            continue
        array = o.constant.array
        if array.size != 1 or TensorType(array.dtype, array.shape) != o.type:
            raise _fail(
                program,
                step.id,
                f"loop operand x{i} of {o.type} holds a constant of "
                f"{array.dtype.name}{list(array.shape)}",
            )


def _check_body(program: Program, step: Node, loop: Loop) -> list[TensorType]:
    """Every step reads earlier values and re-infers its type; the flat value types."""
    types = [o.type for o in loop.operands]
    for k, s in enumerate(loop.body, start=len(types)):
        if any(not 0 <= a < k for a in s.args):
            raise _fail(
                program, step.id, f"loop step x{k} ({s.op}) reads {s.args}, not all earlier"
            )
        try:
            inferred = infer_step(s.op, [types[a] for a in s.args], s.attrs)
        except GraphcError as error:
            raise _fail(program, step.id, f"loop step x{k} ({s.op}): {error}") from None
        if inferred != s.type:
            raise _fail(
                program, step.id, f"loop step x{k} ({s.op}) stores {s.type} but infers {inferred}"
            )
        types.append(s.type)
    return types


def _check_loop(program: Program, step: Node, loop: Loop) -> None:
    _check_operands(program, step, loop)
    types = _check_body(program, step, loop)
    if len(loop.results) != len(step.types):
        raise _fail(
            program, step.id, f"loop has {len(loop.results)} results for {len(step.types)} outputs"
        )
    for i, r in enumerate(loop.results):
        if not 0 <= r < len(types):
            raise _fail(program, step.id, f"loop result {i} is x{r}, of {len(types)} values")
        if types[r] != step.types[i]:
            raise _fail(
                program, step.id, f"loop result x{r} is {types[r]}, output {i} is {step.types[i]}"
            )
    if loop.row:
        expected = _check_rows(program, step, loop, types)
    elif loop.reduction is None:
        if loop.body and loop.body[-1].op in LOOP_REDUCTIONS:
            raise _fail(program, step.id, f"loop ends in {loop.body[-1].op} but has no reduction")
        expected = step.types[0].shape
    else:
        expected = _check_reduction(program, step, loop, types)
    if tuple(loop.shape) != tuple(expected):
        raise _fail(
            program,
            step.id,
            f"loop runs over {format_shape(loop.shape)}, not {format_shape(expected)}",
        )


def _check_rows(program: Program, step: Node, loop: Loop, types: list[TensorType]) -> Shape:
    """A row loop: every reduction runs over the last `row` axes of the loop's shape and
    keeps them, and every step's value has that shape or one value per row."""
    shape, k = tuple(loop.shape), loop.row
    rank = len(shape)
    if not 0 < k < rank or loop.reduction is not None:
        raise _fail(program, step.id, f"row loop over {format_shape(shape)} with {k} row axes")
    trailing = tuple(range(rank - k, rank))
    per_row = shape[: rank - k] + (1,) * k
    for index, s in enumerate(loop.body, start=len(loop.operands)):
        if s.op in LOOP_REDUCTIONS and (
            tuple(types[s.args[0]].shape) != shape
            or normalized_axes(s.attrs["axes"], rank) != trailing
            or not s.attrs["keepdims"]
        ):
            raise _fail(program, step.id, f"row loop step x{index} ({s.op}) is not over its rows")
        if tuple(s.type.shape) not in (shape, per_row):
            raise _fail(
                program,
                step.id,
                f"row loop step x{index} is {s.type}, not over {format_shape(shape)}",
            )
    return shape


def _check_reduction(program: Program, step: Node, loop: Loop, types: list[TensorType]) -> Shape:
    """The reduction is the last step, over axes of its source; the source's shape."""
    r = loop.reduction
    last = loop.body[-1] if loop.body else None
    if r is None or last is None or (last.op, last.args) != (r.op, (r.source,)):
        raise _fail(program, step.id, f"loop reduction {r} is not its last step")
    shape = types[r.source].shape
    if any(not 0 <= a < len(shape) for a in r.axes) or list(r.axes) != sorted(set(r.axes)):
        raise _fail(
            program,
            step.id,
            f"loop reduction axes {r.axes} are not sorted axes of {format_shape(shape)}",
        )
    if r.axes != normalized_axes(last.attrs["axes"], len(shape)):
        raise _fail(program, step.id, f"loop reduction axes {r.axes} differ from its step's")
    return shape


def _check_dims(program: Program) -> None:
    slots = set(program.dims)
    if len(slots) != len(program.dims):
        raise _fail(program, None, f"dims {program.dims} name a size twice")

    def check(shape: Shape, node_id: int | None, what: str) -> None:
        for d in shape:
            if isinstance(d, Sym) and d not in slots:
                raise _fail(program, node_id, f"{what} uses the size {d}, which has no dims slot")

    for n in program.graph.nodes:
        for v, t in zip(n.outputs, n.types, strict=True):
            check(t.shape, n.id, f"the type of {v}")
    for record in program.kernels:
        if isinstance(record, Loop):
            check(record.shape, record.node, f"the loop of %{record.node}")
    for i, buffer in enumerate(program.buffers):
        check(buffer.sized_like.shape, None, f"buffer b{i}")
