"""The numpy reference interpreter: the oracle for tests, the constant folder's engine,
and the executor behind `device="reference"`.

Part of the IR core. A run has two steps. `concrete_types` runs every type rule
again on the concrete shapes of this call's inputs: that checks every size the
graph requires to agree and binds every symbolic dim, before anything computes.
`evaluate` then calls each node's numpy reference in topological order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from graphc.errors import DTypeError, InputError, InternalError, ShapeError
from graphc.ir import Graph, Node, Value, value_label
from graphc.ops.control import CONTROL_OPS, body_input_types
from graphc.ops.fused import body_types
from graphc.registry import lookup
from graphc.types import Sym, TensorType

ConcreteTypes = dict[int, tuple[TensorType, ...]]


def _where(n: Node) -> str:
    return f"{n.op}{f' at {n.origin}' if n.origin else ''}"


def bind_dims(
    symbolic: TensorType, concrete: TensorType, bindings: dict[Sym, int], what: str
) -> None:
    """Check `concrete` against `symbolic`, binding each Sym to its size on first sight."""
    if symbolic.ndim != concrete.ndim:
        raise InputError(f"{what}: expected rank {symbolic.ndim} ({symbolic}), got {concrete}")
    for axis, (dim, size) in enumerate(zip(symbolic.shape, concrete.shape, strict=True)):
        if isinstance(dim, Sym):
            bound = bindings.setdefault(dim, size)  # type: ignore[arg-type]
            if bound != size:
                raise InputError(
                    f"{what}: size {size} on axis {axis} contradicts size "
                    f"{bound} bound to {dim} elsewhere (expected {symbolic})"
                )
        elif dim != size:
            raise InputError(
                f"{what}: size {size} on axis {axis} contradicts the declared "
                f"{dim} (expected {symbolic}, got {concrete})"
            )


def concrete_types(
    g: Graph, sources: Mapping[int, TensorType], bindings: dict[Sym, int] | None = None
) -> ConcreteTypes:
    """Every node's types for this call's concrete source types.

    Raises InputError, naming the node and the user's line, where the concrete
    shapes break a requirement of the graph (unequal sizes that must match,
    an empty axis under max, ...).
    """
    bindings = {} if bindings is None else bindings
    result: ConcreteTypes = {}
    for n in g.nodes:
        if n.id in sources:
            types: tuple[TensorType, ...] = (sources[n.id],)
        elif n.op in ("placeholder", "variable"):
            raise InputError(f"no value for {n.op} {n.attrs['name']!r}")
        else:
            input_types = [result[v.node][v.index] for v in n.inputs]
            try:
                inferred = lookup(n.op).infer(*input_types, **n.attrs)
            except (ShapeError, DTypeError) as error:
                operands = "  with  ".join(
                    f"{value_label(g.node(v), v.index)}: {t}"
                    for v, t in zip(n.inputs, input_types, strict=True)
                )
                raise InputError(f"{_where(n)}: {error}\n    {operands}") from None
            types = inferred if isinstance(inferred, tuple) else (inferred,)
        for index, (symbolic, concrete) in enumerate(zip(n.types, types, strict=True)):
            bind_dims(symbolic, concrete, bindings, value_label(n, index))
        if n.op == "fused":
            _bind_body(g, n, [result[v.node][v.index] for v in n.inputs], bindings)
        elif n.op in CONTROL_OPS:
            # a body's run-time sizes, its own included: compiled code reads them too
            operand_types = [result[v.node][v.index] for v in n.inputs]
            for body, inputs in body_input_types(n.op, n.attrs, operand_types):
                body_sources = {v.node: t for v, t in zip(body.inputs, inputs, strict=True)}
                concrete_types(body, body_sources, bindings)
        result[n.id] = types
    return result


def _bind_body(g: Graph, n: Node, concrete: list[TensorType], bindings: dict[Sym, int]) -> None:
    """Bind the run-time sizes only a fused body's inner values have (a broadcast of two
    unrelated sizes, reduced away): the kernel iterates over them."""
    body = n.attrs["body"]
    symbolic = body_types(tuple(g.type_of(v) for v in n.inputs), body)
    actual = body_types(tuple(concrete), body)
    for index, (s, c) in enumerate(zip(symbolic, actual, strict=True)):
        bind_dims(s, c, bindings, f"{value_label(n, 0)} (fused value {index})")


def evaluate(
    g: Graph, sources: Mapping[int, np.ndarray], types: ConcreteTypes
) -> dict[Value, np.ndarray]:
    """Compute every node with its numpy reference; `sources` holds placeholder/variable values."""
    values: dict[Value, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for n in g.nodes:
            if n.id in sources:
                outputs: tuple[np.ndarray, ...] = (sources[n.id],)
            else:
                args = [values[v] for v in n.inputs]
                result = lookup(n.op).reference(*args, **n.attrs)
                outputs = (
                    tuple(np.asarray(r) for r in result)
                    if isinstance(result, tuple)
                    else (np.asarray(result),)
                )
            for value, array, expected in zip(n.outputs, outputs, types[n.id], strict=True):
                if array.dtype != expected.dtype or array.shape != expected.shape:
                    raise InternalError(
                        f"reference of {_where(n)} returned "
                        f"{array.dtype.name}{list(array.shape)}, expected {expected}"
                    )
                values[value] = array
    return values


def run(g: Graph, sources: Mapping[int, np.ndarray]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Run `g` on source values (placeholder and variable node id -> array).

    Returns the outputs and the new variable values, in the order of `g.updates`.
    """
    source_types = {
        node_id: TensorType(array.dtype, tuple(array.shape)) for node_id, array in sources.items()
    }
    types = concrete_types(g, source_types)
    values = evaluate(g, sources, types)
    return [values[v] for v in g.outputs], [values[v] for _, v in g.updates]
