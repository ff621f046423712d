"""plan_memory: assign the temporaries of a call to reusable buffers.

Part of graphc.passes. A temporary is a value computed during a call that is
neither fetched nor a variable's new state (those must be fresh arrays) nor a
view (a view reads its input's buffer, and keeps it alive). Liveness runs over
the node order: a buffer is free after the last read of every value stored in
it. A temporary takes a free buffer of the same dtype and element count, and an
elementwise node whose input of the same type dies at it computes in place.
Sizes may be known only at run time: two element counts match when they are
equal as symbolic expressions, so the plan holds for every size.

Stats: `temp_bytes_before` is what holding every temporary for the whole call
takes (what the reference interpreter does), `temp_bytes_after` the arena the
plan needs; unknown dims count as 1 in both.
"""

from __future__ import annotations

import numpy as np

from graphc.ir import Graph, MemoryPlan, Node, Value
from graphc.passes.manager import PassResult, graph_pass
from graphc.registry import lookup
from graphc.types import Dim, TensorType, dim_product


def _bytes(dtype: str, count: Dim) -> int:
    """Bytes of `count` elements, an unknown size counted as 1."""
    known = count if isinstance(count, int) else 1
    return np.dtype(dtype).itemsize * known


def _is_view(n: Node) -> bool:
    return "view" in lookup(n.op).traits


def _computes_in_place(n: Node) -> bool:
    traits = lookup(n.op).traits
    return (
        "elementwise" in traits or (n.op == "fused" and n.attrs["kind"] == "elementwise")
    ) and "source" not in traits


def _storage(g: Graph) -> dict[Value, Value]:
    """value -> the value whose buffer holds its data (a view's input, transitively)."""
    base: dict[Value, Value] = {}
    for n in g.nodes:
        for v in n.outputs:
            base[v] = base.get(n.inputs[0], n.inputs[0]) if _is_view(n) and n.inputs else v
    return base


def _last_reads(g: Graph, base: dict[Value, Value]) -> dict[Value, int]:
    """storage value -> position of the last node reading it or a view of it."""
    last: dict[Value, int] = {}
    for position, n in enumerate(g.nodes):
        for v in n.inputs:
            last[base[v]] = position
    return last


def _temporaries(g: Graph, base: dict[Value, Value]) -> set[Value]:
    escaping = {base[v] for v in g.roots()}  # fetched or new state, directly or as a view
    return {
        v
        for n in g.nodes
        if "source" not in lookup(n.op).traits and not _is_view(n)
        for v in n.outputs
        if v not in escaping
    }


@graph_pass("plan_memory")
def plan_memory(g: Graph) -> PassResult:
    """Give each temporary a buffer, reusing buffers whose contents are dead."""
    base = _storage(g)
    last = _last_reads(g, base)
    temporaries = _temporaries(g, base)
    buffers: list[tuple[str, Dim]] = []
    busy_until: list[int] = []  # buffer -> position of the last read of what it holds
    assignment: dict[Value, int] = {}
    in_place: list[Value] = []
    for position, n in enumerate(g.nodes):
        donated: set[int] = set()  # a dying input's buffer goes to one output only
        for v, value_type in zip(n.outputs, n.types, strict=True):
            if v not in temporaries:
                continue
            key = (value_type.dtype.name, dim_product(value_type.shape))
            donor = _dying_input(g, n, position, value_type, assignment, last, donated)
            if donor is not None:
                donated.add(donor)
                buffer = donor
                in_place.append(v)
            else:
                buffer = next(
                    (b for b, k in enumerate(buffers) if k == key and busy_until[b] < position),
                    None,
                )
                if buffer is None:
                    buffers.append(key)
                    busy_until.append(position)
                    buffer = len(buffers) - 1
            assignment[v] = buffer
            busy_until[buffer] = max(position, last.get(v, position))
    ordered = tuple(sorted(assignment.items(), key=lambda item: (item[0].node, item[0].index)))
    plan = MemoryPlan(tuple(buffers), ordered, tuple(in_place))
    before = sum(
        _bytes(t.dtype.name, dim_product(t.shape))
        for n in g.nodes
        for v, t in zip(n.outputs, n.types, strict=True)
        if v in temporaries
    )
    after = sum(_bytes(dtype, count) for dtype, count in buffers)
    stats = {
        "buffers": len(buffers),
        "reused": len(assignment) - len(buffers),
        "in_place": len(in_place),
        "temp_bytes_before": before,
        "temp_bytes_after": after,
    }
    return PassResult(g.replace(memory=plan), stats)


def _dying_input(
    g: Graph,
    n: Node,
    position: int,
    out: TensorType,
    assignment: dict[Value, int],
    last: dict[Value, int],
    donated: set[int],
) -> int | None:
    """For an elementwise node: the buffer of an input of the output's exact type that
    is a temporary read for the last time here, so the output may overwrite it (unless
    another output of the node already took it)."""
    if not _computes_in_place(n):
        return None
    for v in n.inputs:
        if (
            v in assignment
            and last.get(v) == position
            and g.type_of(v) == out
            and assignment[v] not in donated
        ):
            return assignment[v]
    return None
