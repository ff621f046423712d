"""fold: evaluate constant subgraphs once, at compile time, with the numpy reference.

Part of graphc.passes. A pure node whose inputs are all constants becomes a
constant, and so does an op that reads only its input's shape (full_like,
axis_size) when that shape is known. Folding never inflates the graph: a result
is baked in only when it is no bigger than its inputs together, or tiny (so a
scalar broadcast to a large array stays a broadcast). A node whose reference
raises (an index out of range, say) is left to fail at run time, as it would
without the pass.
"""

from __future__ import annotations

import math

import numpy as np

from graphc.errors import GraphcError
from graphc.ir import Graph, Node
from graphc.passes.dce import live_nodes
from graphc.passes.manager import PassResult, graph_pass
from graphc.passes.rewrite import Rewriter
from graphc.registry import lookup

SMALL = 64  # elements a folded result may have whatever its inputs' size
SHAPE_READERS = frozenset({"full_like", "axis_size"})  # ops that read only a shape


def _constant_inputs(n: Node, rewriter: Rewriter) -> tuple[list[np.ndarray], int] | None:
    """The input arrays and their total size, when every input is a constant; an op that
    reads only a shape gets a stand-in of that shape (counted as size 0)."""
    arrays, size = [], 0
    for v in n.inputs:
        producer = rewriter.node(v)
        value_type = producer.types[v.index]
        if producer.op == "constant":
            arrays.append(producer.attrs["value"].array)
            size += arrays[-1].size
        elif n.op in SHAPE_READERS and value_type.is_static:
            arrays.append(np.broadcast_to(np.zeros((), value_type.dtype), value_type.shape))
        else:
            return None
    return arrays, size


def _worth_baking(n: Node, input_size: int) -> bool:
    """Static results no bigger than their inputs together, or tiny: never inflate."""
    if not all(t.is_static for t in n.types):
        return False
    return sum(math.prod(t.shape) for t in n.types) <= max(input_size, SMALL)


@graph_pass("fold")
def fold(g: Graph) -> PassResult:
    """Replace constant-only pure nodes by the constants they compute."""
    rewriter = Rewriter(g)
    folded = 0
    for n in g.nodes:
        kept = rewriter.keep(n)
        opdef = lookup(kept.op)
        if "pure" not in opdef.traits or "source" in opdef.traits or not kept.inputs:
            continue
        found = _constant_inputs(kept, rewriter)
        if found is None or not _worth_baking(kept, found[1]):
            continue
        arrays = found[0]
        try:
            with np.errstate(all="ignore"):
                result = opdef.reference(*arrays, **kept.attrs)
        except (GraphcError, ValueError, IndexError, ZeroDivisionError):
            continue
        results = result if isinstance(result, tuple) else (result,)
        for old, array in zip(n.outputs, results, strict=True):
            rewriter.replace(
                old, rewriter.add1("constant", [], {"value": np.asarray(array)}, origin=kept.origin)
            )
        folded += 1
    new = rewriter.finish()
    return PassResult(new.replace(nodes=live_nodes(new)), {"folded": folded})
