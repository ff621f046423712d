"""cse: merge structurally equal pure nodes.

Part of graphc.passes. Two pure nodes with the same op, the same (merged) inputs
and equal attributes compute the same values; the later one is dropped and its
users read the first. Operands of commutative ops are compared as a set. Equal
constants merge too (compared bit for bit). Stateful nodes, placeholders and
variables never merge.
"""

from __future__ import annotations

from graphc.ir import Graph, Value
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
    return PassResult(new.replace(nodes=live_nodes(new)), {"merged": merged})
