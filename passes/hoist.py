"""hoist: take out of a scan's body what does not need the loop.

Part of graphc.passes. In a scan's body, a value computed from the captures alone
(loop-invariant) is computed once before the loop and becomes a capture; a value
computed from the scanned slices and the captures, by an op that can run on all the
steps at once, is computed before the loop for every step (one large kernel instead of
one small one per step: an LSTM's input projection becomes one GEMM) and becomes a
scanned value. What depends on the carry stays in the body.

An op runs on all the steps at once when adding the step axis in front of its scanned
operands gives the per-step result for every step in front of its own:

  - an elementwise op whose scanned operands have the result's rank (the others, of no
    greater rank, broadcast against every step alike);
  - a matmul of a scanned left operand of rank 2 or more by a loop-invariant matrix.

Only the values the body still needs come out (its frontier); scalar constants stay
in the body, and a value made of constants alone is fold's business.
"""

from __future__ import annotations

from graphc.errors import GraphcError
from graphc.ir import Graph, GraphBuilder, Node, Value
from graphc.ops.control import placeholder_attrs
from graphc.passes.manager import PassResult, graph_pass
from graphc.passes.rewrite import Rewriter
from graphc.registry import Attrs, lookup

INVARIANT, BATCHED, CONSTANT, STEP = "invariant", "batched", "constant", "step"


def _kind(body: Graph, n: Node, kinds: dict[int, str]) -> str:
    """How node `n` of a scan body depends on the loop (the inputs' kinds are known)."""
    traits = lookup(n.op).traits
    if n.op == "constant":
        return CONSTANT
    if "pure" not in traits or "stateful" in traits or n.op == "placeholder" or not n.inputs:
        return STEP
    found = {kinds[v.node] for v in n.inputs}
    if STEP in found:
        return STEP
    if BATCHED not in found:
        return INVARIANT if INVARIANT in found else CONSTANT
    return BATCHED if _batchable(body, n, kinds) else STEP


def _batchable(body: Graph, n: Node, kinds: dict[int, str]) -> bool:
    rank = n.types[0].ndim
    ranks = [(kinds[v.node], body.type_of(v).ndim) for v in n.inputs]
    if "elementwise" in lookup(n.op).traits and len(n.types) == 1:
        return all(r == rank if k == BATCHED else r <= rank for k, r in ranks)
    if n.op == "matmul":
        (left, left_rank), (right, right_rank) = ranks
        return left == BATCHED and left_rank >= 2 and right != BATCHED and right_rank == 2
    return False


def _hoist_scan(rw: Rewriter, n: Node) -> tuple[Value, ...] | None:
    """Build the hoisted values and the new scan through `rw`; None if nothing moves."""
    attrs = n.attrs
    body: Graph = attrs["body"]
    n_carry, n_xs = attrs["n_carry"], attrs["n_xs"]
    kinds: dict[int, str] = {}
    for position, v in enumerate(body.inputs):
        kinds[v.node] = (
            STEP if position < n_carry else BATCHED if position < n_carry + n_xs else INVARIANT
        )
    for m in body.nodes:
        if m.id not in kinds:
            kinds[m.id] = _kind(body, m, kinds)
    inputs_of = set(v.node for v in body.inputs)
    # the frontier: hoistable values the loop still reads (a step node, or an output)
    readers = [
        v for m in body.nodes if kinds[m.id] == STEP and m.id not in inputs_of for v in m.inputs
    ]
    frontier = [
        v
        for v in dict.fromkeys([*readers, *body.outputs])
        if kinds[v.node] in (INVARIANT, BATCHED) and v.node not in inputs_of
    ]
    if not frontier:
        return None
    outer: dict[Value, Value] = dict(zip(body.inputs, (rw.value(v) for v in n.inputs), strict=True))
    needed = _ancestors(body, frontier, inputs_of)
    for m in body.nodes:
        if m.id not in needed:
            continue
        try:
            made = rw.add(m.op, [outer[v] for v in m.inputs], m.attrs, name=m.name, origin=m.origin)
        except GraphcError:
            return None  # (a type rule refused the batched form: leave the body as it is)
        outer.update(zip(m.outputs, made, strict=True))
    new_xs = [v for v in frontier if kinds[v.node] == BATCHED]
    new_captures = [v for v in frontier if kinds[v.node] == INVARIANT]
    new_body = _rebuilt(body, n_carry, n_xs, new_xs, new_captures)
    operands = [rw.value(v) for v in n.inputs]
    operands = [
        *operands[: n_carry + n_xs],
        *(outer[v] for v in new_xs),
        *operands[n_carry + n_xs :],
        *(outer[v] for v in new_captures),
    ]
    new_attrs = Attrs({**attrs, "body": new_body, "n_xs": n_xs + len(new_xs)})
    return rw.add("scan", operands, new_attrs, name=n.name, origin=n.origin)


def _ancestors(body: Graph, values: list[Value], stop: set[int]) -> set[int]:
    """The body nodes `values` need, not counting the body's inputs."""
    seen: set[int] = set()
    stack = [v.node for v in values]
    while stack:
        node_id = stack.pop()
        if node_id in seen or node_id in stop:
            continue
        seen.add(node_id)
        stack.extend(v.node for v in body.node(node_id).inputs)
    return seen


def _rebuilt(
    body: Graph, n_carry: int, n_xs: int, new_xs: list[Value], new_captures: list[Value]
) -> Graph:
    """`body` reading `new_xs` (one slice per step) after its scanned inputs and
    `new_captures` after its captures, instead of computing them."""
    builder = GraphBuilder()
    mapped: dict[Value, Value] = {}

    def placeholder(v: Value, name: str) -> Value:
        attrs = placeholder_attrs(name, body.type_of(v))
        (made,) = builder.add("placeholder", [], attrs, origin=body.node(v).origin)
        return made

    inputs = [placeholder(v, f"in{i}") for i, v in enumerate(body.inputs[: n_carry + n_xs])]
    inputs += [placeholder(v, f"hoisted{i}") for i, v in enumerate(new_xs)]
    inputs += [
        placeholder(v, f"in{n_carry + n_xs + i}")
        for i, v in enumerate(body.inputs[n_carry + n_xs :])
    ]
    inputs += [placeholder(v, f"invariant{i}") for i, v in enumerate(new_captures)]
    sources = [
        *body.inputs[: n_carry + n_xs],
        *new_xs,
        *body.inputs[n_carry + n_xs :],
        *new_captures,
    ]
    mapped.update(zip(sources, inputs, strict=True))
    for m in body.nodes:
        if all(v in mapped for v in m.outputs) or m.op == "placeholder":
            continue
        made = builder.add(
            m.op, [mapped[v] for v in m.inputs], m.attrs, name=m.name, origin=m.origin
        )
        mapped.update(zip(m.outputs, made, strict=True))
    graph = builder.build(inputs, [mapped[v] for v in body.outputs])
    return graph.renumbered()[0]


def _trim_outputs(rw: Rewriter, n: Node, used: set[Value]) -> Node | None:
    """Drop the stacked results of scan `n` that nobody reads, read the scanned operand
    itself where a stacked result is its own slices, and stack a value once where the
    body returns it twice: the new scan, built through `rw`, or None if none applies."""
    attrs = n.attrs
    body: Graph = attrs["body"]
    n_carry, n_xs = attrs["n_carry"], attrs["n_xs"]
    xs_of = {v: n.inputs[n_carry + i] for i, v in enumerate(body.inputs[n_carry : n_carry + n_xs])}
    kept: list[int] = []  # the ys kept, by index among the node's outputs
    first: dict[Value, int] = {}
    plan: dict[int, Value | int] = {}  # output index -> the operand it is, or the kept twin
    for index in range(n_carry, len(n.outputs)):
        value = body.outputs[index]
        if Value(n.id, index) not in used:
            continue
        if value in xs_of:
            plan[index] = xs_of[value]
        elif value in first:
            plan[index] = first[value]
        else:
            first[value] = index
            kept.append(index)
    if len(kept) == len(n.outputs) - n_carry:
        return None
    outputs = (*body.outputs[:n_carry], *(body.outputs[i] for i in kept))
    new_body = body.replace(outputs=outputs)
    made = rw.add(
        "scan", list(n.inputs), Attrs({**attrs, "body": new_body}), name=n.name, origin=n.origin
    )
    position = {index: n_carry + k for k, index in enumerate(kept)}
    for index in range(len(n.outputs)):
        old = Value(n.id, index)
        if index < n_carry:
            rw.replace(old, made[index])
        elif index in position:
            rw.replace(old, made[position[index]])
        elif index in plan:
            target = plan[index]
            rw.replace(
                old, rw.value(target) if isinstance(target, Value) else made[position[target]]
            )
    return rw.node(made[0])


@graph_pass("hoist")
def hoist(g: Graph) -> PassResult:
    """Move what a scan's steps do not need to do again out of its body, and drop or
    forward the stacked results that need no stacking."""
    used = {v for n in g.nodes for v in n.inputs} | set(g.outputs)
    used |= {v for _, v in g.updates}
    rw = Rewriter(g)
    moved = trimmed = 0
    for n in g.nodes:
        if n.op != "scan":
            rw.keep(n)
            continue
        trim = _trim_outputs(rw, n, used)
        trimmed += trim is not None
        scan = n if trim is None else trim
        made = _hoist_scan(rw, scan)
        if made is None:
            if trim is None:
                rw.keep(n)
            continue
        for old, new in zip(scan.outputs, made, strict=True):
            rw.replace(old, new)
        moved += 1
    stats = {"scans": moved} | ({"trimmed": trimmed} if trimmed else {})
    return PassResult(rw.finish(), stats)
