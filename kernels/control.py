"""Lowering control flow: what both backends do to a graph's bodies before planning it.

Part of graphc.kernels. A backend writes each body of a control-flow node (cond, scan,
while_loop: graphc/ops/control.py) inline in the entry function, inside the loop or
branch that runs it, over the same `dims` array as the rest of the entry (the runtime
binds a body's run-time sizes with the graph's: interpret.concrete_types). An entry
takes the graph's array constants as parameters, and a body has no parameters of its
own, so `lift_constants` first turns every array constant of a body (one of more than
one element; scalar constants stay, written as literals) into an operand of its node,
fed by a constant node of the enclosing graph.
"""

from __future__ import annotations

import dataclasses
import itertools

from graphc.ir import Graph, Node, Value
from graphc.ops.control import CONTROL_OPS, bodies, placeholder_attrs
from graphc.ops.fused import body_types as fused_body_types
from graphc.registry import Attrs
from graphc.types import TensorType


def has_control_flow(g: Graph) -> bool:
    return any(n.op in CONTROL_OPS for n in g.nodes)


def body_types(g: Graph) -> list[TensorType]:
    """The types of every value inside the bodies of `g`'s control nodes, nested bodies
    included (their run-time sizes are slots of the entry's dims)."""
    types: list[TensorType] = []
    for n in g.nodes:
        for body in bodies(n.attrs):
            for m in body.nodes:
                types += m.types
                if m.op == "fused":  # (a fused group's inner values: its loop runs over them)
                    inputs = tuple(body.type_of(v) for v in m.inputs)
                    types += fused_body_types(inputs, m.attrs["body"])
            types += body_types(body)
    return types


def _is_array_constant(n: Node) -> bool:
    return n.op == "constant" and n.attrs["value"].array.size != 1


def lift_constants(g: Graph) -> Graph:
    """`g` with no array constant left in any body (see the module docstring); `g`
    itself when it has none. Node ids of `g` are kept (variables' states are found by
    them); the new constant nodes get fresh ids and come just before their node."""
    if not has_control_flow(g):
        return g
    fresh = itertools.count(max(n.id for n in g.nodes) + 1)
    nodes: list[Node] = []
    changed = False
    for n in g.nodes:
        bodies = {k: v for k, v in n.attrs.items() if isinstance(v, Graph)}
        if n.op not in CONTROL_OPS:
            nodes.append(n)
            continue
        bodies = {k: lift_constants(body) for k, body in bodies.items()}
        lifted: list[Node] = []  # the constants of all the node's bodies, each value once
        for body in bodies.values():
            for m in body.nodes:
                if _is_array_constant(m) and all(m.attrs != c.attrs for c in lifted):
                    lifted.append(m)
        if not lifted:
            nodes.append(n)
            continue
        changed = True
        outer = [dataclasses.replace(c, id=next(fresh), name=None) for c in lifted]
        nodes += outer
        attrs = {k: _as_inputs(body, lifted) for k, body in bodies.items()}
        inputs = (*n.inputs, *(c.outputs[0] for c in outer))
        nodes.append(dataclasses.replace(n, inputs=inputs, attrs=Attrs({**n.attrs, **attrs})))
    return g.replace(nodes=tuple(nodes), memory=g.memory) if changed else g


def _as_inputs(body: Graph, lifted: list[Node]) -> Graph:
    """`body` taking one more input per lifted constant (a placeholder where its own
    constant of that value was)."""
    fresh = itertools.count(max(n.id for n in body.nodes) + 1)
    placeholders = []
    for k, c in enumerate(lifted):
        attrs = Attrs(placeholder_attrs(f"lifted{k}", c.types[0]))
        placeholders.append(Node(next(fresh), "placeholder", (), attrs, c.types))
    replacing: dict[Value, Value] = {}
    kept: list[Node] = []
    for m in body.nodes:
        if _is_array_constant(m):
            k = next(i for i, c in enumerate(lifted) if c.attrs == m.attrs)
            replacing[m.outputs[0]] = placeholders[k].outputs[0]
        else:
            kept.append(m)

    def moved(v: Value) -> Value:
        return replacing.get(v, v)

    nodes = [
        *placeholders,
        *(dataclasses.replace(m, inputs=tuple(map(moved, m.inputs))) for m in kept),
    ]
    graph = Graph(
        tuple(nodes),
        (*body.inputs, *(p.outputs[0] for p in placeholders)),
        tuple(map(moved, body.outputs)),
    )
    return graph.renumbered()[0]
