"""Reverse-mode differentiation as a graph transformation: `graphc.grad`.

Part of the IR core. One reverse sweep over the nodes between the wrt tensors and
y, in reverse topological order, calls each op's gradient rule (OpDef.grad), which
builds the vector-Jacobian product with the symbolic API. Gradients are therefore
ordinary graph values: they can be fetched, optimized, compiled, saved and
differentiated again. Rules may return a gradient in the broadcast output shape;
`fit_to` sums it back to the input's shape here, once, for every rule. Only float
values carry gradients: paths through integer and bool values contribute nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from graphc.api.elementwise import add, cast, ones_like, zeros_like
from graphc.errors import ArgumentTypeError, DTypeError, ShapeError, UnsupportedError
from graphc.ir import Node, Value, located
from graphc.registry import NOT_DIFFERENTIABLE, lookup
from graphc.tensor import DEFAULT_BUILDER, Tensor, as_tensor, build1
from graphc.types import Sym


def _is_float(value: Value) -> bool:
    return DEFAULT_BUILDER.type_of(value).dtype.kind == "f"


def fit_to(g: Tensor, x: Tensor) -> Tensor:
    """g summed over the axes along which x was broadcast, and cast to x's dtype."""
    if g.dtype != x.dtype:
        g = cast(g, x.dtype)
    g_shape, x_shape = g.type.shape, x.type.shape
    if g_shape == x_shape:
        return g
    leading = len(g_shape) - len(x_shape)
    pairs = list(zip(x_shape, g_shape[leading:], strict=True))
    if any(isinstance(xd, Sym) and xd != gd for xd, gd in pairs):
        # x's size is known only at run time: whether it was broadcast is decided then
        return build1("sum_to", [g, x])
    broadcast = tuple(leading + i for i, (xd, gd) in enumerate(pairs) if xd == 1 and gd != 1)
    if broadcast:
        g = build1("sum", [g], {"axes": broadcast, "keepdims": True})
    if leading:
        g = build1("sum", [g], {"axes": tuple(range(leading)), "keepdims": False})
    return g


def _needed_nodes(y: Value, wrt: set[int]) -> list[Node]:
    """The nodes on a path from a wrt value to y, in topological (id) order."""
    ancestors: set[int] = set()
    stack = [y.node]
    while stack:
        node_id = stack.pop()
        if node_id not in ancestors:
            ancestors.add(node_id)
            stack.extend(v.node for v in DEFAULT_BUILDER.node(node_id).inputs)
    depends: set[int] = set()
    for node_id in sorted(ancestors):
        node = DEFAULT_BUILDER.node(node_id)
        if node_id in wrt or any(v.node in depends for v in node.inputs):
            depends.add(node_id)
    return [DEFAULT_BUILDER.node(i) for i in sorted(depends)]


def _or_zeros(cotangent: Tensor | None, x: Tensor) -> Tensor:
    return zeros_like(x) if cotangent is None else cotangent


def _vjp(node: Node, cotangents: dict[Value, Tensor]) -> list[Any]:
    """The node's gradient rule applied to its outputs' cotangents (zeros where missing)."""
    opdef = lookup(node.op)
    if opdef.grad is None:
        raise UnsupportedError(f"{node.op} has no gradient rule yet")
    outputs = [DEFAULT_BUILDER.tensor(v) for v in node.outputs]
    gs = [_or_zeros(cotangents.get(v), t) for v, t in zip(node.outputs, outputs, strict=True)]
    inputs = [DEFAULT_BUILDER.tensor(v) for v in node.inputs]
    if "multiple_outputs" not in opdef.traits:
        return list(opdef.grad(gs[0], outputs[0], *inputs, **node.attrs))
    return list(opdef.grad(tuple(gs), tuple(outputs), *inputs, **node.attrs))


def grad(y: Any, xs: Sequence[Any]) -> list[Tensor]:
    """Reverse-mode gradients of a scalar `y` with respect to each of `xs`.

    Parameters
    ----------
    y : Tensor
        A 0-d float tensor.
    xs : sequence of Tensors
        Placeholders, Variables or intermediate tensors, all float. One that does not
        affect y gets zeros of its shape.

    Returns
    -------
    list of Tensor
        Symbolic gradients, one per x, of x's shape and dtype.
    """
    y = as_tensor(y)
    if y.type.shape != ():
        raise located("grad", ShapeError, f"y must be a scalar (0-d), got {y.type}")
    if y.dtype.kind != "f":
        raise located("grad", DTypeError, f"y must be a float, got {y.type}")
    if isinstance(xs, Tensor) or not isinstance(xs, Sequence):
        raise located("grad", ArgumentTypeError, "xs must be a list of tensors")
    xs = [as_tensor(x) for x in xs]
    for x in xs:
        if x.dtype.kind != "f":
            label = x.name or f"%{x.ref.node} ({x.op})"
            raise located(
                "grad",
                DTypeError,
                f"cannot differentiate with respect to {label}: {x.type} is not a float",
            )
    wrt = {x.ref.node for x in xs}
    cotangents: dict[Value, Tensor] = {y.ref: ones_like(y)}
    for node in reversed(_needed_nodes(y.ref, wrt)):
        if not any(v in cotangents for v in node.outputs) or not node.inputs:
            continue
        if lookup(node.op).grad is NOT_DIFFERENTIABLE:
            continue
        for value, contribution in zip(node.inputs, _vjp(node, cotangents), strict=True):
            if contribution is None or not _is_float(value):
                continue
            contribution = fit_to(as_tensor(contribution), DEFAULT_BUILDER.tensor(value))
            previous = cotangents.get(value)
            cotangents[value] = contribution if previous is None else add(previous, contribution)
    return [_or_zeros(cotangents.get(x.ref), x) for x in xs]
