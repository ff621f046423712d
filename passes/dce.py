"""dce: keep only what the outputs and the variable updates need.

Part of graphc.passes. Placeholders always stay (they are the signature, and an
unused input is still validated); update targets stay; everything else must be
an ancestor of an output or of an update value.
"""

from __future__ import annotations

from graphc.ir import Graph, Node
from graphc.passes.manager import PassResult, graph_pass


def live_nodes(g: Graph) -> tuple[Node, ...]:
    """The nodes of `g` that its roots need, in their original order."""
    live = g.ancestors(g.roots())
    live |= {v.node for v in g.inputs} | {var for var, _ in g.updates}
    return tuple(n for n in g.nodes if n.id in live)


@graph_pass("dce")
def dce(g: Graph) -> PassResult:
    """Drop nodes that no output or variable update depends on."""
    kept = live_nodes(g)
    return PassResult(g.replace(nodes=kept), {"removed": len(g.nodes) - len(kept)})
