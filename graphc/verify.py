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
            raise GraphcError(f"attributes {n.attrs!r} are not in canonical form {attrs!r}")
        if opdef.arity is not None and len(n.inputs) != opdef.arity:
            raise GraphcError(f"{n.op} takes {opdef.arity} inputs, has {len(n.inputs)}")
        inferred = opdef.infer(*(defined[v.node].types[v.index] for v in n.inputs), **n.attrs)
    except GraphcError as error:
        raise _fail(g, n.id, f"%{n.id} ({n.op}): {error}") from None
    inferred = inferred if isinstance(inferred, tuple) else (inferred,)
    if inferred != n.types:
        stored = ", ".join(map(str, n.types))
        again = ", ".join(map(str, inferred))
        raise _fail(g, n.id, f"%{n.id} ({n.op}) stores types ({stored}) but infers ({again})")


def verify(g: Graph) -> Graph:
    """Raise VerifyError if `g` breaks an IR invariant; return `g` otherwise."""
    defined: dict[int, Node] = {}
    for n in g.nodes:
        if n.id in defined:
            raise _fail(g, n.id, f"node id %{n.id} is used twice")
        _check_node(g, n, defined)
        defined[n.id] = n

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
    return g
