"""The IR verifier: checks a graph's invariants and shows the IR around a failure.

Part of the IR core. Checked: node ids are unique; every input is defined by an
earlier node (topological order, hence no cycle); attributes match the op's schema;
re-running the type rule reproduces the stored types; inputs are placeholders;
outputs exist; every update targets a variable with the value's exact type.
"""

from __future__ import annotations

from graphc.errors import GraphcError, VerifyError
from graphc.ir import Graph, Node, Value
from graphc.printer import format_excerpt
from graphc.registry import lookup
from graphc.types import dim_product


def _fail(g: Graph, node_id: int | None, reason: str) -> VerifyError:
    excerpt = f"\n{format_excerpt(g, node_id)}" if node_id is not None else ""
    return VerifyError(f"{reason}{excerpt}")


def _check_node(g: Graph, n: Node, defined: dict[int, Node]) -> None:
    for v in n.inputs:
        producer = defined.get(v.node)
        if producer is None:
            raise _fail(g, n.id, f"%{n.id} uses {v}, which no earlier node defines")
        if not 0 <= v.index < len(producer.types):
            raise _fail(
                g, n.id, f"%{n.id} uses {v}, but %{v.node} has {len(producer.types)} outputs"
            )
    try:
        opdef = lookup(n.op)
        attrs = opdef.check_attrs(n.attrs)
        if attrs != n.attrs:
            raise VerifyError(f"attributes {n.attrs!r} are not in canonical form {attrs!r}")
        if opdef.arity is not None and len(n.inputs) != opdef.arity:
            raise VerifyError(f"{n.op} takes {opdef.arity} inputs, has {len(n.inputs)}")
        inferred = opdef.infer(*(defined[v.node].types[v.index] for v in n.inputs), **n.attrs)
    except GraphcError as error:
        raise _fail(g, n.id, f"%{n.id} ({n.op}): {error}") from None
    inferred = inferred if isinstance(inferred, tuple) else (inferred,)
    for key, value in n.attrs.items():
        if isinstance(value, Graph):
            _check_body(g, n, key, value)
    if inferred != n.types:
        stored = ", ".join(map(str, n.types))
        again = ", ".join(map(str, inferred))
        raise _fail(g, n.id, f"%{n.id} ({n.op}) stores types ({stored}) but infers ({again})")


def _check_body(g: Graph, n: Node, key: str, body: Graph) -> None:
    """A control-flow body is a valid graph of its own, and self-contained: only
    placeholders it lists as inputs, no variables, no updates (what it reads from
    outside is an operand of the node)."""
    try:
        verify(body)
        listed = {v.node for v in body.inputs}
        for node in body.nodes:
            if node.op == "variable" or (node.op == "placeholder" and node.id not in listed):
                raise VerifyError(f"%{node.id} is a {node.op} the body does not take as input")
        if body.updates:
            raise VerifyError("the body updates variables")
    except VerifyError as error:
        raise _fail(g, n.id, f"%{n.id} ({n.op}), body {key}: {error}") from None


def verify(g: Graph) -> Graph:
    """Raise VerifyError if `g` breaks an IR invariant; return `g` otherwise."""
    defined: dict[int, Node] = {}
    for n in g.nodes:
        if n.id in defined:
            raise _fail(g, n.id, f"node id %{n.id} is used twice")
        _check_node(g, n, defined)
        defined[n.id] = n

    _check_signature(g, defined)
    if g.memory is not None:
        _check_memory(g)
    return g


def _check_signature(g: Graph, defined: dict[int, Node]) -> None:
    """Inputs are placeholders; outputs exist; updates target variables with their dtype."""

    def exists(v: Value) -> bool:
        return v.node in defined and 0 <= v.index < len(defined[v.node].types)

    for v in g.inputs:
        if not exists(v) or defined[v.node].op != "placeholder":
            raise _fail(g, v.node if v.node in defined else None, f"input {v} is not a placeholder")
    for v in g.outputs:
        if not exists(v):
            raise _fail(g, None, f"output {v} is not defined")
    for var, v in g.updates:
        if var not in defined or defined[var].op != "variable":
            raise _fail(g, None, f"update target %{var} is not a variable")
        if not exists(v):
            raise _fail(g, var, f"update value {v} is not defined")
        if g.type_of(v).dtype != defined[var].type.dtype:
            raise _fail(
                g,
                v.node,
                f"update of %{var} has type {g.type_of(v)}, variable is {defined[var].type}",
            )


def _check_memory(g: Graph) -> None:
    """Every planned value exists and fits its buffer's dtype and element count."""
    buffers = g.memory.buffers  # type: ignore[union-attr]
    for value, buffer in g.memory.assignment:  # type: ignore[union-attr]
        if value.node not in g.by_id or not 0 <= buffer < len(buffers):
            raise _fail(
                g, None, f"the memory plan places {value} in buffer {buffer}, which does not exist"
            )
        value_type = g.type_of(value)
        if (value_type.dtype.name, dim_product(value_type.shape)) != buffers[buffer]:
            raise _fail(
                g,
                value.node,
                f"the memory plan puts {value} ({value_type}) in "
                f"buffer {buffer} of {buffers[buffer]}",
            )
