"""The kernel program as text: `format_program(program)`, which `str(program)` gives.

Part of graphc.kernels. The sources with their homes, the dims slots, the arena
buffers, one block per kernel record (plan.py: a Loop with its operands, typed body
steps and results; a Library or View call on one line), then what a call returns and
the variable updates, in the notation of the graph printer (graphc/printer.py).
"""

from __future__ import annotations

import numpy as np

from graphc.ir import Value
from graphc.kernels.plan import Library, Loop, Program, View
from graphc.registry import Attrs
from graphc.types import format_shape


def _where(program: Program, v: Value) -> str:
    """Where value `v` lives, as the printer says it: `arena b2`, `state of %1`, ..."""
    kind = program.home.get(v, "no home")
    if kind == "arena" and v in program.arena_slot:
        return f"arena b{program.arena_slot[v]}"
    if kind == "state" and v in program.state_of:
        return f"state of %{program.state_of[v]}"
    return kind


def _typed(program: Program, v: Value) -> str:
    """`float32[n,4] (arena b0)`: a value's type and home."""
    node = program.graph.by_id.get(v.node)
    t = node.types[v.index] if node is not None and v.index < len(node.types) else "?"
    return f"{t} ({_where(program, v)})"


def _attrs_text(attrs: Attrs) -> str:
    return f" {attrs!r}" if attrs else ""


def _source_line(program: Program, node_id: int) -> str:
    n = program.graph.by_id[node_id]
    v = Value(node_id)
    label = f"{v} {n.name}" if n.name else str(v)
    if n.op == "constant":
        label += f" = {n.attrs['value']!r}"
    return f"  source {label}: {_typed(program, v)}"


def _loop_lines(program: Program, loop: Loop) -> list[str]:
    outputs = ", ".join(str(v) for v in loop.outputs)
    what = " -> ".join(s.op for s in loop.body) or "copy"
    head = f"  {outputs} = loop over {format_shape(loop.shape)}"
    if loop.reduction is not None:
        r = loop.reduction
        keep = ", keepdims" if r.keepdims else ""
        head += f", {r.op} of x{r.source} over axes {r.axes}{keep}"
    lines = [f"{head}: {what}"]
    for i, o in enumerate(loop.operands):
        if o.constant is not None:
            lines.append(f"      x{i} = {o.scalar} : {o.type}  (scalar)")
        else:
            lines.append(f"      x{i} = {o.value} : {o.type}  ({_where(program, o.value)})")
    for k, s in enumerate(loop.body, start=len(loop.operands)):
        args = ", ".join(f"x{a}" for a in s.args)
        lines.append(f"      x{k} = {s.op} {args}{_attrs_text(s.attrs)} : {s.type}")
    for v, r in zip(loop.outputs, loop.results, strict=False):
        lines.append(f"      {v} <- x{r} : {_typed(program, v)}")
    return lines


def _library_line(program: Program, record: Library) -> str:
    outputs = ", ".join(str(v) for v in record.outputs)
    inputs = ", ".join(str(v) for v in record.inputs)
    if record.op == "fused":  # its body, briefly: the attributes would fill lines
        steps = " -> ".join(step[0] for step in record.attrs["body"])
        what, attrs = f"fused {record.attrs['kind']} [{steps}]", ""
    else:
        what, attrs = record.op, _attrs_text(record.attrs)
    types = ", ".join(_typed(program, v) for v in record.outputs)
    return f"  {outputs} = library {what} {inputs}{attrs} : {types}"


def _view_line(program: Program, record: View) -> str:
    outputs = ", ".join(str(v) for v in record.outputs)
    inputs = ", ".join(str(v) for v in (record.source, *record.like))
    types = ", ".join(_typed(program, v) for v in record.outputs)
    return f"  {outputs} = view {record.op} {inputs}{_attrs_text(record.attrs)} : {types}"


def format_program(program: Program) -> str:
    """The program as text: its sources with their homes, the dims slots, the arena
    buffers, one block per kernel (a Loop with its operands, typed body steps and
    results; a Library or View call on one line), then what a call returns and
    the variable updates."""
    g = program.graph
    lines = ["program:"]
    for node_id in (*program.inputs, *program.variables, *program.constants):
        lines.append(_source_line(program, node_id))
    slots = ", ".join(f"d{k} = {sym}" for k, sym in enumerate(program.dims))
    lines.append(f"  dims: {slots or 'none'}")
    for i, buffer in enumerate(program.buffers):
        lines.append(f"  buffer b{i}: {np.dtype(buffer.dtype).name} sized like {buffer.sized_like}")
    for record in program.kernels:
        if isinstance(record, Loop):
            lines += _loop_lines(program, record)
        elif isinstance(record, View):
            lines.append(_view_line(program, record))
        else:
            lines.append(_library_line(program, record))
    returned = [
        f"{v} (copied)" if i in program.copied_outputs else str(v) for i, v in enumerate(g.outputs)
    ]
    lines.append("  return " + ", ".join(returned))
    lines += [f"  update %{var} <- {v} ({_where(program, v)})" for var, v in g.updates]
    return "\n".join(lines)
