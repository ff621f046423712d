"""CPU emitters of control flow: cond, scan and while_loop run inside the entry function.

Part of graphc.kernels. Each body is planned as a program of its own and written inline
by a `BodyWriter` (the entry writer of this target, over the entry's `dims` and kernel
registry, its names prefixed), inside the `if`, `for` or `while` statement that runs it:

    cond        if pred[()]: <true body>  else: <false body>
    scan        carries copied; ys allocated; for t in range(steps) (or reversed):
                <body on the carries, each xs[t] and the captures>; ys[t] = y; carry = new
    while_loop  carries copied; while True: stop at max_iterations; <cond body>; stop
                unless it holds; <body>; carry = new

So the loop runs in compiled code, its body's kernels are the usual shared kernels
(compiled with the rest), and the Python entry (runtime/interpreted.py) runs the same
text. A body's results are fresh arrays (its outputs that are inputs or views are
copied), so a carry never aliases what the next step overwrites.
"""

from __future__ import annotations

import dataclasses

from graphc.ir import Graph, Node, Value
from graphc.kernels import emit, text
from graphc.kernels import plan as planning
from graphc.kernels.cpu.codegen import Writer, _expand
from graphc.kernels.cpu.emit import emits
from graphc.kernels.scalar import literal
from graphc.ops.control import scan_length
from graphc.types import TensorType


class BodyWriter(Writer):
    """Writes one body's statements for an enclosing writer (see the module docstring)."""

    def __init__(self, outer: Writer, body: Graph) -> None:
        program = dataclasses.replace(planning.plan(body), dims=outer.program.dims)
        super().__init__(program, outer.parallel, outer.min_parallel, outer.threads, outer.rows)
        self.kernels = outer.kernels  # (one registry: the entry's kernels, the bodies' too)
        self.prefix = outer.temp("b") + "_"

    def name(self, value: Value) -> str:
        return self.prefix + super().name(value)

    def temp(self, hint: str = "t") -> str:
        return self.prefix + super().temp(hint)

    def statements(self, inputs: list[str]) -> tuple[list[str], list[str]]:
        """The body's statements with its inputs bound to the C-contiguous arrays
        `inputs`, and the expressions of its results (fresh, C-contiguous arrays)."""
        program = self.program
        for node_id, expression in zip(program.inputs, inputs, strict=True):
            self.names[Value(node_id)] = expression
            self.contiguous[Value(node_id)] = True
        for node_id in program.constants:  # (array constants were lifted: one element each)
            node = self.graph.by_id[node_id]
            t = node.types[0]
            value = literal(node.attrs["value"].array.reshape(-1)[0], t.dtype)
            name = self.name(Value(node_id))
            self.line(f"{name} = np.full({self.shape(t)}, {value})")
            self.names[Value(node_id)] = name
            self.contiguous[Value(node_id)] = True
        for node in program.steps:
            self.line(f"# {text.comment(_node_line(node))}")
            entry = emit.emitter(self.target, node.op)
            if entry.alloc:
                for value in node.outputs:
                    self._allocate(value, {})
            entry.emit(self, node)
        returns, _, _ = self._returns()
        return _expand(self), list(returns)

    def fresh(self, expression: str, index: int) -> str:
        """Result `index`'s `expression` as a C-contiguous array of its own (a carry, or
        a branch's result: the variable holding it must have one type in numba)."""
        value = self.graph.outputs[index]
        if expression.endswith(".copy()"):
            return expression
        if self.type_of(value).ndim == 0:
            return f"{expression}.copy()"
        if self.is_contiguous(value) and self.program.home[value] == "fresh":
            return expression
        return f"np.ascontiguousarray({expression})"


def _node_line(node: Node) -> str:
    from graphc.printer import format_node

    return format_node(node)


def _indented(lines: list[str], depth: int = 1) -> list[str]:
    pad = "    " * depth
    return [pad + line for line in lines]


def _store(target: str, index: str, expression: str, t: TensorType) -> str:
    """`target[index] = expression`, a 0-d value stored as its element."""
    return f"{target}[{index}] = {expression}{'[()]' if t.ndim == 0 else ''}"


def _operands(w: Writer, values: tuple[Value, ...]) -> list[str]:
    """Names of C-contiguous arrays of `values`, bound before the loop or branch (a copy
    made for a strided operand is made once, not in every step)."""
    names = []
    for v in values:
        expression = w.contiguous_arg(v)
        if expression.isidentifier():
            names.append(expression)
            continue
        name = w.temp("operand")
        w.line(f"{name} = {expression}")
        names.append(name)
    return names


def _carries(w: Writer, values: tuple[Value, ...]) -> list[str]:
    """Fresh copies of the initial carries (a carry is replaced, never written into,
    but an input must not come back as an output)."""
    names = []
    for v in values:
        name = w.temp("carry")
        w.line(f"{name} = {w.arg(v)}.copy()")
        names.append(name)
    return names


def _outputs(w: Writer, node: Node, names: list[str], first: int = 0) -> None:
    for k, name in enumerate(names):
        w.define(node, first + k, name)
        w.contiguous[Value(node.id, first + k)] = True


@emits("cond", alloc=False)
def _cond(w: Writer, node: Node) -> None:
    pred, operands = node.inputs[0], node.inputs[1:]
    arrays = _operands(w, operands)
    results = [w.temp("picked") for _ in node.outputs]
    for keyword, key in (("if", "true_body"), ("else", "false_body")):
        body = BodyWriter(w, node.attrs[key])
        lines, outs = body.statements(arrays)
        w.line(f"if {w.arg(pred)}[()]:" if keyword == "if" else "else:")
        picks = [
            f"{r} = {body.fresh(o, i)}" for i, (r, o) in enumerate(zip(results, outs, strict=True))
        ]
        w.lines += _indented(lines + picks)
    _outputs(w, node, results)


@emits("scan", alloc=False)
def _scan(w: Writer, node: Node) -> None:
    attrs = node.attrs
    n_carry, n_xs = attrs["n_carry"], attrs["n_xs"]
    carry_in = node.inputs[:n_carry]
    xs = _operands(w, node.inputs[n_carry : n_carry + n_xs])
    captures = _operands(w, node.inputs[n_carry + n_xs :])
    steps = w.dim(
        scan_length([w.type_of(v) for v in node.inputs[n_carry : n_carry + n_xs]], attrs["length"])
    )
    carries = _carries(w, carry_in)
    ys = []
    for value in node.outputs[n_carry:]:
        name = w.temp("ys")
        w.line(f"{name} = {w.empty(w.type_of(value))}")
        ys.append((name, w.type_of(value)))
    t = w.temp("step")
    body = BodyWriter(w, attrs["body"])
    slices = [
        f"{x}[{t}:{t} + 1].reshape(())" if w.type_of(v).ndim == 1 else f"{x}[{t}]"
        for x, v in zip(xs, node.inputs[n_carry : n_carry + n_xs], strict=True)
    ]  # (a 1-d array's item is a scalar: the body takes a 0-d array)
    lines, outs = body.statements([*carries, *slices, *captures])
    order = f"range({steps} - 1, -1, -1)" if attrs["reverse"] else f"range({steps})"
    w.line(f"for {t} in {order}:")
    stores = [
        _store(name, t, out, TensorType(y.dtype, y.shape[1:]))
        for (name, y), out in zip(ys, outs[n_carry:], strict=True)
    ]
    updates = [
        f"{c} = {body.fresh(o, i)}"
        for i, (c, o) in enumerate(zip(carries, outs[:n_carry], strict=True))
    ]
    w.lines += _indented(lines + stores + updates)
    _outputs(w, node, carries)
    _outputs(w, node, [name for name, _ in ys], n_carry)


@emits("while_loop", alloc=False)
def _while_loop(w: Writer, node: Node) -> None:
    attrs = node.attrs
    n_carry = attrs["n_carry"]
    captures = _operands(w, node.inputs[n_carry:])
    carries = _carries(w, node.inputs[:n_carry])
    count = w.temp("count")
    w.line(f"{count} = 0")
    test = BodyWriter(w, attrs["cond_body"])
    test_lines, (holds,) = test.statements([*carries, *captures])
    body = BodyWriter(w, attrs["body"])
    body_lines, outs = body.statements([*carries, *captures])
    loop: list[str] = []
    if attrs["max_iterations"] is not None:
        loop += [f"if {count} >= {attrs['max_iterations']}:", "    break"]
    loop += [*test_lines, f"if not {holds}[()]:", "    break"]
    loop += [
        *body_lines,
        *(f"{c} = {body.fresh(o, i)}" for i, (c, o) in enumerate(zip(carries, outs, strict=True))),
    ]
    loop.append(f"{count} += 1")
    w.line("while True:")
    w.lines += _indented(loop)
    _outputs(w, node, carries)
