"""Writing control flow into an entry function, for both targets.

Part of graphc.kernels. Each body of a cond, scan or while_loop is planned as a program
of its own and written inline by a body writer (`BodyWriting` mixed into the target's
entry writer: the entry's `dims` and kernel registry, its names prefixed), inside the
statement that runs it:

    cond        if <pred holds>: <true body>  else: <false body>
    scan        carries copied; ys allocated; for t in range(steps) (or reversed):
                <body on the carries, each xs row t and the captures>; ys row t = y;
                carry = new
    while_loop  carries copied; while True: stop at max_iterations; <cond body>; stop
                unless it holds; <body>; carry = new

A body's scalar constants are made once, before the loop or branch. Its results are
arrays of their own (outputs that are inputs or views are copied), so a carry never
aliases what the next step overwrites. What differs between targets, a writer says:

    body_writer(graph)       a BodyWriting writer of the target for `graph`
    operand(value)           a name of the value's array, bound before the loop
    holds(expr)              the Python truth of a bool 0-d array
    row(expr, t, ndim)       row t (axis 0) of an array of rank `ndim`, as an array
    store_row(a, t, expr, t) the statement writing `expr` into row t of `a`
    full(shape, literal)     a new array of `shape` filled with a scalar literal
    fresh(expr, index)       (body writer) result `index` as an array of its own
"""

from __future__ import annotations

import dataclasses
from typing import Any

from graphc.ir import Graph, Node, Value
from graphc.kernels import emit, text
from graphc.kernels import plan as planning
from graphc.kernels.scalar import literal
from graphc.ops.control import scan_length
from graphc.printer import format_node
from graphc.types import TensorType


def bound(w: Any, expression: str) -> str:
    """`expression` as a name: itself if it is one, else a temporary bound to it now
    (before a loop: an operand's copy or view is made once, not in every step)."""
    if expression.isidentifier():
        return expression
    name = w.temp("operand")
    w.line(f"{name} = {expression}")
    return name


def register(target: str) -> None:
    """Register this module's emitters of cond, scan and while_loop for `target`."""
    for op, function in (("cond", emit_cond), ("scan", emit_scan), ("while_loop", emit_while)):
        emit.emits(target, op, alloc=False)(function)


def body_program(body: Graph, outer: planning.Program) -> planning.Program:
    """The program of a body, its run-time sizes the enclosing program's slots."""
    return dataclasses.replace(planning.plan(body), dims=outer.dims)


class BodyWriting:
    """Mixed into a target's entry writer: writes one body's statements inline (the
    target's writer follows this class in the bases)."""

    prefix = ""

    def name(self, value: Value) -> str:
        return self.prefix + super().name(value)  # type: ignore[misc]

    def temp(self, hint: str = "t") -> str:
        return self.prefix + super().temp(hint)  # type: ignore[misc]

    def finished_lines(self) -> list[str]:
        """The statements written, as text (a target may keep placeholders among them)."""
        return list(self.lines)  # type: ignore[attr-defined]

    def statements(self, inputs: list[str]) -> tuple[list[str], list[str], list[str]]:
        """With the body's inputs bound to the arrays `inputs`: the statements to run once
        before the loop (its constants), the body's statements, and the expressions of
        its results."""
        w: Any = self
        program = w.program
        for node_id, expression in zip(program.inputs, inputs, strict=True):
            w.names[Value(node_id)] = expression
            w.contiguous[Value(node_id)] = True
        setup = []
        for node_id in program.constants:  # (array constants were lifted: one element each)
            t = w.graph.by_id[node_id].types[0]
            value = literal(w.graph.by_id[node_id].attrs["value"].array.reshape(-1)[0], t.dtype)
            name = w.name(Value(node_id))
            setup.append(f"{name} = {w.full(w.shape(t), value)}")
            w.names[Value(node_id)] = name
            w.contiguous[Value(node_id)] = True
        for node in program.steps:
            w.line(f"# {text.comment(format_node(node))}")
            entry = emit.emitter(w.target, node.op)
            if entry.alloc:
                for value in node.outputs:
                    w._allocate(value, {})
            entry.emit(w, node)
        returns, _, _ = w._returns()
        return setup, self.finished_lines(), list(returns)


def _indented(lines: list[str]) -> list[str]:
    return ["    " + line for line in lines]


def _carries(w: Any, values: tuple[Value, ...]) -> list[str]:
    """Copies of the initial carries (a carry is replaced, never written into, but an
    input must not come back as an output)."""
    names = []
    for v in values:
        name = w.temp("carry")
        w.line(f"{name} = {w.copy(w.arg(v))}")
        names.append(name)
    return names


def _outputs(w: Any, node: Node, names: list[str], first: int = 0) -> None:
    for k, name in enumerate(names):
        w.define(node, first + k, name)
        w.contiguous[Value(node.id, first + k)] = True


def emit_cond(w: Any, node: Node) -> None:
    pred, operands = node.inputs[0], node.inputs[1:]
    arrays = [w.operand(v) for v in operands]
    results = [w.temp("picked") for _ in node.outputs]
    branches = []
    for key in ("true_body", "false_body"):
        body = w.body_writer(node.attrs[key])
        setup, lines, outs = body.statements(arrays)
        w.lines += setup  # (the constants of both branches, before the `if`)
        picks = [
            f"{r} = {body.fresh(o, i)}" for i, (r, o) in enumerate(zip(results, outs, strict=True))
        ]
        branches.append(_indented(lines + picks))
    w.line(f"if {w.holds(w.arg(pred))}:")
    w.lines += branches[0]
    w.line("else:")
    w.lines += branches[1]
    _outputs(w, node, results)


def emit_scan(w: Any, node: Node) -> None:
    attrs = node.attrs
    n_carry, n_xs = attrs["n_carry"], attrs["n_xs"]
    xs_values = node.inputs[n_carry : n_carry + n_xs]
    xs = [w.operand(v) for v in xs_values]
    captures = [w.operand(v) for v in node.inputs[n_carry + n_xs :]]
    steps = w.dim(scan_length([w.type_of(v) for v in xs_values], attrs["length"]))
    carries = _carries(w, node.inputs[:n_carry])
    ys = []
    for value in node.outputs[n_carry:]:
        name = w.temp("ys")
        w.line(f"{name} = {w.empty(w.type_of(value))}")
        ys.append((name, w.type_of(value)))
    t = w.temp("step")
    slices = [w.row(x, t, w.type_of(v).ndim) for x, v in zip(xs, xs_values, strict=True)]
    body = w.body_writer(attrs["body"])
    setup, lines, outs = body.statements([*carries, *slices, *captures])
    stores = [
        w.store_row(name, t, out, TensorType(y.dtype, y.shape[1:]))
        for (name, y), out in zip(ys, outs[n_carry:], strict=True)
    ]
    updates = [
        f"{c} = {body.fresh(o, i)}"
        for i, (c, o) in enumerate(zip(carries, outs[:n_carry], strict=True))
    ]
    w.lines += setup
    order = f"range({steps} - 1, -1, -1)" if attrs["reverse"] else f"range({steps})"
    w.line(f"for {t} in {order}:")
    w.lines += _indented(lines + stores + updates)
    _outputs(w, node, carries)
    _outputs(w, node, [name for name, _ in ys], n_carry)


def emit_while(w: Any, node: Node) -> None:
    attrs = node.attrs
    n_carry = attrs["n_carry"]
    captures = [w.operand(v) for v in node.inputs[n_carry:]]
    carries = _carries(w, node.inputs[:n_carry])
    count = w.temp("count")
    test = w.body_writer(attrs["cond_body"])
    test_setup, test_lines, (holds,) = test.statements([*carries, *captures])
    body = w.body_writer(attrs["body"])
    body_setup, body_lines, outs = body.statements([*carries, *captures])
    loop: list[str] = []
    if attrs["max_iterations"] is not None:
        loop += [f"if {count} >= {attrs['max_iterations']}:", "    break"]
    loop += [*test_lines, f"if not {w.holds(holds)}:", "    break", *body_lines]
    loop += [
        f"{c} = {body.fresh(o, i)}" for i, (c, o) in enumerate(zip(carries, outs, strict=True))
    ]
    loop.append(f"{count} += 1")
    w.lines += [*test_setup, *body_setup, f"{count} = 0", "while True:"]
    w.lines += _indented(loop)
    _outputs(w, node, carries)
