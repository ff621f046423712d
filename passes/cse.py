"""cse: merge structurally equal pure nodes.

Part of graphc.passes. Two pure nodes with the same op, the same (merged) inputs
and equal attributes compute the same values; the later one is dropped and its
users read the first. Operands of commutative ops are compared as a set. Equal
constants merge too (compared bit for bit). Stateful nodes, placeholders and
variables never merge.
"""

from __future__ import annotations

from graphc.ir import Graph, Node, Value
from graphc.passes.dce import live_nodes
from graphc.passes.manager import PassResult, graph_pass
from graphc.passes.rewrite import Rewriter
from graphc.registry import lookup


@graph_pass("cse")
def cse(g: Graph) -> PassResult:
    """Make every structurally equal pure node read the first of its kind."""
    rewriter = Rewriter(g)
    seen: dict[tuple, tuple[Value, ...]] = {}
    merged = 0
    for n in g.nodes:
        kept = rewriter.keep(n)
        traits = lookup(kept.op).traits
        if "pure" not in traits or "stateful" in traits or kept.op == "placeholder":
            continue
        inputs: tuple = kept.inputs
        if "commutative" in traits:
            inputs = tuple(sorted(inputs, key=lambda v: (v.node, v.index)))
        key = (kept.op, inputs, kept.attrs, kept.types)
        first = seen.setdefault(key, kept.outputs)
        if first != kept.outputs:
            for old, new in zip(n.outputs, first, strict=True):
                rewriter.replace(old, new)
            merged += 1
    new = rewriter.finish()
    new, scans = _merge_stacking_scans(new)
    stats = {"merged": merged} | ({"scans": scans} if scans else {})
    return PassResult(new.replace(nodes=live_nodes(new)), stats)


def _without_body(n: Node) -> dict:
    return {k: v for k, v in n.attrs.items() if k != "body"}


def _extends(longer: Node, shorter: Node) -> bool:
    """Whether scan `longer` computes everything scan `shorter` does, as its first
    results: the same operands and attributes, and a body that is `shorter`'s with
    more outputs after its own."""
    a, b = shorter.attrs["body"], longer.attrs["body"]
    return (
        longer.inputs == shorter.inputs
        and _without_body(longer) == _without_body(shorter)
        and len(b.outputs) > len(a.outputs)
        and b.outputs[: len(a.outputs)] == a.outputs
        and b.inputs == a.inputs
        and b.nodes == a.nodes
    )


def _merge_stacking_scans(g: Graph) -> tuple[Graph, int]:
    """A scan whose results another scan computes too (a gradient's forward scan stacks
    more of each step: graphc/api/control.scan_vjp) is dropped: the longer scan takes its
    place in the order and its users read the longer one's first results."""
    scans = [n for n in g.nodes if n.op == "scan"]
    taken: dict[int, Node] = {}  # shorter scan id -> the scan replacing it
    for shorter in scans:
        for longer in scans:
            free = longer.id not in taken and all(t is not shorter for t in taken.values())
            if free and _extends(longer, shorter):
                taken[shorter.id] = longer
                break
    if not taken:
        return g, 0
    rewriter = Rewriter(g)
    moved = {longer.id for longer in taken.values()}
    for n in g.nodes:
        if n.id in moved:
            continue
        longer = taken.get(n.id)
        if longer is None:
            rewriter.keep(n)
            continue
        kept = rewriter.keep(longer)  # (its operands are the shorter one's: defined here)
        for old, new in zip(n.outputs, kept.outputs, strict=False):
            rewriter.replace(old, new)
        for old, new in zip(longer.outputs, kept.outputs, strict=True):
            rewriter.replace(old, new)
    graph = rewriter.finish()
    return graph, len(taken)
