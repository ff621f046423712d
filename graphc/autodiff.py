"""Reverse-mode differentiation as a graph transformation: `graphc.grad`.

Part of the IR core. One reverse sweep over the nodes between the wrt tensors and
y, in reverse topological order, calls each op's gradient rule (OpDef.grad, through
OpDef.vjp), which builds the vector-Jacobian product with the symbolic API. Gradients
are therefore ordinary graph values: they can be fetched, optimized, compiled, saved and
differentiated again. Rules may return a gradient in the broadcast output shape;
`fit_to` sums it back to the input's shape here, once, for every rule. Only float
values carry gradients: paths through integer and bool values contribute nothing.

The sweep works on the graph it is given (the one y belongs to) and hands each rule a
`RuleAPI` to build with, so that the op modules never import the front end.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import graphc.api
from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, ShapeError
from graphc.ir import Node, Value, located
from graphc.registry import NOT_DIFFERENTIABLE, lookup
from graphc.tensor import DefaultGraph, Tensor, as_tensor
from graphc.types import Sym


class RuleAPI:
    """What a gradient rule builds with: its first argument, `api`.

    `api.where`, `api.matmul`, ... are the op functions of graphc.api (they build on the
    default graph, as Tensor operators do); `api.build` and `api.build1` add a node of an
    op that has no public function (slice_scatter, conv2d_grad_input, ...) to `builder`.
    """

    __slots__ = ("builder",)

    def __init__(self, builder: DefaultGraph) -> None:
        self.builder = builder

    def __getattr__(self, name: str) -> Any:
        if name in graphc.api.__all__:
            return getattr(graphc.api, name)
        raise AttributeError(
            f"gradient rules build with the op functions of graphc.api, build and build1; "
            f"{name!r} is none of them"
        )

    @property
    def control(self) -> Any:
        """graphc.api.control: what the control-flow ops' rules build their gradients with
        (bodies traced, inlined and differentiated)."""
        import graphc.api.control

        return graphc.api.control

    def build(
        self, op: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None
    ) -> tuple[Tensor, ...]:
        """Add a node of `op` and return its outputs."""
        return self.builder.tensors(op, inputs, attrs)

    def build1(
        self, op: str, inputs: Sequence[Tensor], attrs: dict[str, Any] | None = None
    ) -> Tensor:
        """`build` for an op with one output."""
        (tensor,) = self.build(op, inputs, attrs)
        return tensor


def _is_float(builder: DefaultGraph, value: Value) -> bool:
    return builder.type_of(value).dtype.kind == "f"


def fit_to(api: RuleAPI, g: Tensor, x: Tensor) -> Tensor:
    """g summed over the axes along which x was broadcast, and cast to x's dtype."""
    if g.dtype != x.dtype:
        g = api.cast(g, x.dtype)
    g_shape, x_shape = g.type.shape, x.type.shape
    if g_shape == x_shape:
        return g
    leading = len(g_shape) - len(x_shape)
    pairs = list(zip(x_shape, g_shape[leading:], strict=True))
    if any(isinstance(xd, Sym) and xd != gd for xd, gd in pairs):
        # x's size is known only at run time: whether it was broadcast is decided then
        return api.build1("sum_to", [g, x])
    broadcast = tuple(leading + i for i, (xd, gd) in enumerate(pairs) if xd == 1 and gd != 1)
    if broadcast:
        g = api.build1("sum", [g], {"axes": broadcast, "keepdims": True})
    if leading:
        g = api.build1("sum", [g], {"axes": tuple(range(leading)), "keepdims": False})
    return g


def _needed_nodes(builder: DefaultGraph, ys: Sequence[Value], wrt: set[int]) -> list[Node]:
    """The nodes on a path from a wrt value to one of ys, in topological (id) order."""
    ancestors: set[int] = set()
    stack = [y.node for y in ys]
    while stack:
        node_id = stack.pop()
        if node_id not in ancestors:
            ancestors.add(node_id)
            stack.extend(v.node for v in builder.node(node_id).inputs)
    depends: set[int] = set()
    for node_id in sorted(ancestors):
        node = builder.node(node_id)
        if node_id in wrt or any(v.node in depends for v in node.inputs):
            depends.add(node_id)
    return [builder.node(i) for i in sorted(depends)]


def _or_zeros(api: RuleAPI, cotangent: Tensor | None, x: Tensor) -> Tensor:
    return api.zeros_like(x) if cotangent is None else cotangent


def _vjp(api: RuleAPI, node: Node, cotangents: dict[Value, Tensor]) -> list[Any]:
    """The node's gradient rule applied to its outputs' cotangents (zeros where missing);
    the node is one of api.builder's."""
    outputs = [api.builder.tensor(v) for v in node.outputs]
    gs = [_or_zeros(api, cotangents.get(v), t) for v, t in zip(node.outputs, outputs, strict=True)]
    inputs = [api.builder.tensor(v) for v in node.inputs]
    return lookup(node.op).vjp(api, node.attrs, inputs, outputs, gs)


def _reverse_sweep(builder: DefaultGraph, y: Tensor, xs: list[Tensor]) -> list[Tensor]:
    """The gradients of y with respect to xs, all values of `builder`, built into it."""
    api = RuleAPI(builder)
    cotangents = _sweep(api, {y.ref: api.ones_like(y)}, xs)
    return [_or_zeros(api, cotangents.get(x.ref), x) for x in xs]


def _sweep(api: RuleAPI, seeds: dict[Value, Tensor], xs: Sequence[Tensor]) -> dict[Value, Tensor]:
    """Every cotangent reached from the `seeds` (value -> its cotangent), back to xs."""
    builder = api.builder
    wrt = {x.ref.node for x in xs}
    cotangents = dict(seeds)
    for node in reversed(_needed_nodes(builder, list(seeds), wrt)):
        if not any(v in cotangents for v in node.outputs) or not node.inputs:
            continue
        if lookup(node.op).grad is NOT_DIFFERENTIABLE:
            continue
        for value, contribution in zip(node.inputs, _vjp(api, node, cotangents), strict=True):
            if contribution is None or not _is_float(builder, value):
                continue
            contribution = fit_to(api, as_tensor(contribution), builder.tensor(value))
            previous = cotangents.get(value)
            cotangents[value] = (
                contribution if previous is None else api.add(previous, contribution)
            )
    return cotangents


def vjp(
    ys: Sequence[Tensor], cotangents: Sequence[Tensor], xs: Sequence[Tensor]
) -> list[Tensor | None]:
    """The vector-Jacobian product: the gradients, with respect to each of xs, of the sum
    over ys of <y, its cotangent>; None for an x that no y depends on (through floats).
    What control flow's gradient rules differentiate a body with."""
    if not ys:
        return [None] * len(xs)
    api = RuleAPI(ys[0].builder)
    seeds: dict[Value, Tensor] = {}
    for y, cotangent in zip(ys, cotangents, strict=True):
        if not _is_float(api.builder, y.ref):
            continue
        previous = seeds.get(y.ref)
        seeds[y.ref] = cotangent if previous is None else api.add(previous, cotangent)
    reached = _sweep(api, seeds, xs)
    return [reached.get(x.ref) for x in xs]


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
        label = x.name or f"%{x.ref.node} ({x.op})"
        if x.dtype.kind != "f":
            raise located(
                "grad",
                DTypeError,
                f"cannot differentiate with respect to {label}: {x.type} is not a float",
            )
        if x.builder is not y.builder:
            raise located("grad", ArgumentError, f"{label} belongs to another graph than y")
    return _reverse_sweep(y.builder, y, xs)
