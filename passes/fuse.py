"""fuse: group elementwise chains into `fused` nodes, one kernel each.

Part of graphc.passes. Elementwise nodes join a group when they share its
iteration shape (inputs may broadcast into it) and joining creates no cycle: no
input from outside the group may depend on the group. A group whose shape differs
from the joining node's only in sizes known at run time (`x.0` against
`broadcast(x.0,y.0)`, equal in the usual case) joins too when nothing outside reads
its values: the kernel then evaluates them at each broadcast position. A group also absorbs
  - the reduction (sum, prod, max, min) that is the only reader of its one result,
    so `sum(x * x)` reads x once and allocates nothing ("reduction" kind), and
  - the matmul whose result only the group reads, as its epilogue ("matmul" kind).
Then row groups form ("row" kind): a reduction over trailing axes that keeps them
(softmax's max and sum, layer norm's means) merges with the groups around it that
run over the same rows: its input's shape ("vectors") or its own ("row scalars"),
with the same leading axes. Its kernel takes a row at a time through its passes
while the row is in cache (kernels/rows.py); a softmax, a layer norm, a log-softmax
and their gradients become a few such kernels (one reduction each) instead of a
kernel per step.
Scalar constants are copied into the bodies (free to duplicate); nothing else is
ever computed twice. A value of a group that is read outside it, or fetched, is a
result of the fused node. Groups of a single elementwise op stay plain nodes.
"""

from __future__ import annotations

import heapq

from graphc.ir import Graph, Node, Value
from graphc.passes.dce import live_nodes
from graphc.passes.manager import PassResult, graph_pass
from graphc.passes.rewrite import Rewriter
from graphc.registry import lookup
from graphc.types import Shape

ABSORBED_REDUCTIONS = frozenset({"sum", "prod", "max", "min"})


def _is_elementwise(n: Node) -> bool:
    traits = lookup(n.op).traits
    return "elementwise" in traits and "source" not in traits and len(n.types) == 1


def _is_scalar_constant(n: Node) -> bool:
    return n.op == "constant" and n.attrs["value"].array.size == 1  # (an empty one has no value)


class _Groups:
    """Which group each node belongs to, and the members of each group, in order."""

    def __init__(self, g: Graph) -> None:
        self.group_of: dict[int, int] = {}
        self.members: dict[int, list[Node]] = {}
        self.kind: dict[int, str] = {}
        self.shape: dict[int, Shape] = {}
        self.row: dict[int, tuple[Shape, int]] = {}  # a row group's (shape, row axes)
        self.position = {n.id: i for i, n in enumerate(g.nodes)}
        self.nodes = g.by_id

    def join(self, n: Node, group: int) -> None:
        self.group_of[n.id] = group
        self.members[group].append(n)

    def start(self, n: Node, kind: str = "elementwise") -> int:
        group = n.id
        self.members[group], self.kind[group] = [], kind
        self.shape[group] = n.types[0].shape
        self.join(n, group)
        return group

    def merged_is_acyclic(self, groups: list[int], n: Node | None) -> bool:
        """Whether `groups` and `n` can be one kernel: no input read from outside the union
        may depend on the union, in the graph where every group is already one unit (two
        groups that are each fine can still wait on each other)."""
        union = [m for group in groups for m in self.members[group]] + ([n] if n else [])
        inside = {m.id for m in union}
        outside = [v.node for m in union for v in m.inputs if v.node not in inside]
        return not self.reaches(outside, inside)

    def reaches(self, starts: list[int], targets: set[int]) -> bool:
        """Whether any of `starts` depends on a node of `targets`, a group counting as
        depending on everything any of its members depends on."""
        # dependencies point backwards in the node order: a unit that ends before the first
        # target cannot depend on any target, which keeps this search short
        first_target = min(self.position[t] for t in targets)
        seen: set[int] = set()
        stack = list(starts)
        while stack:
            node_id = stack.pop()
            if node_id in targets:
                return True
            if node_id in seen:
                continue
            group = self.group_of.get(node_id)
            unit = self.members[group] if group is not None else [self.nodes[node_id]]
            if max(self.position[m.id] for m in unit) < first_target:
                seen.update(m.id for m in unit)
                continue
            for member in unit:
                seen.add(member.id)
                stack.extend(v.node for v in member.inputs if v.node not in seen)
        return False

    def absorb(self, group: int, into: int) -> None:
        """Move every member of `group` into group `into`, keeping topological order."""
        for m in self.members.pop(group):
            self.group_of[m.id] = into
            self.members[into].append(m)
        self.members[into].sort(key=lambda m: self.position[m.id])
        del self.kind[group], self.shape[group]
        self.row.pop(group, None)


def _differ_in_unknown_sizes(a: Shape, b: Shape) -> bool:
    """Whether two shapes of one rank differ only where both sizes are known at run time."""
    return len(a) == len(b) and all(
        x == y or (not isinstance(x, int) and not isinstance(y, int))
        for x, y in zip(a, b, strict=True)
    )


def _form_elementwise_groups(g: Graph, groups: _Groups) -> None:
    """Each elementwise node joins (and merges) the groups of its producers that share its
    shape, as long as no input from outside the merged group depends on it."""
    readers = _readers(g)

    def joinable(group: int, n: Node) -> bool:
        if groups.shape[group] == n.types[0].shape:
            return True
        inside = {m.id for m in groups.members[group]} | {n.id}
        return _differ_in_unknown_sizes(groups.shape[group], n.types[0].shape) and all(
            readers.get(v, set()) <= inside for m in groups.members[group] for v in m.outputs
        )

    for n in g.nodes:
        if not _is_elementwise(n):
            continue
        candidates = sorted(
            {
                groups.group_of[v.node]
                for v in n.inputs
                if v.node in groups.group_of and joinable(groups.group_of[v.node], n)
            }
        )
        chosen: list[int] = []
        for group in candidates:
            if groups.merged_is_acyclic([*chosen, group], n):
                chosen.append(group)
        if not chosen:
            groups.start(n)
            continue
        for group in chosen[1:]:
            groups.absorb(group, into=chosen[0])
        groups.shape[chosen[0]] = n.types[0].shape
        groups.join(n, chosen[0])


def _readers(g: Graph) -> dict[Value, set[int]]:
    """value -> ids of the nodes reading it; fetched and update values get reader -1."""
    readers: dict[Value, set[int]] = {}
    for n in g.nodes:
        for v in n.inputs:
            readers.setdefault(v, set()).add(n.id)
    for v in g.roots():
        readers.setdefault(v, set()).add(-1)
    return readers


def _results(group: list[Node], readers: dict[Value, set[int]]) -> list[Value]:
    inside = {m.id for m in group}
    return [v for m in group for v in m.outputs if readers.get(v, set()) - inside]


def _absorb_matmul(g: Graph, groups: _Groups, group: int, readers: dict[Value, set[int]]) -> bool:
    """Put first in the group a matmul whose result only the group reads (its epilogue)."""
    members = groups.members[group]
    inside = {m.id for m in members}
    for member in members:
        for v in member.inputs:
            producer = g.by_id[v.node]
            if producer.op != "matmul" or producer.id in groups.group_of:
                continue
            # the matmul runs first in the kernel: its inputs must not come from the group
            independent = not groups.reaches([p.node for p in producer.inputs], inside)
            if (
                readers[v] <= inside
                and independent
                and producer.types[0].shape == groups.shape[group]
            ):
                groups.group_of[producer.id] = group
                members.insert(0, producer)
                groups.kind[group] = "matmul"
                return True
    return False


def _absorb_reduction(
    g: Graph, groups: _Groups, group: int, readers: dict[Value, set[int]]
) -> None:
    """Put last in the group the reduction that is the only reader of its only result."""
    results = _results(groups.members[group], readers)
    if len(results) != 1 or len(readers[results[0]]) != 1:
        return
    (reader,) = readers[results[0]]
    if reader != -1 and g.by_id[reader].op in ABSORBED_REDUCTIONS:
        groups.join(g.by_id[reader], group)
        groups.kind[group] = "reduction"


# a row group holds at most this many reductions: each is one more pass over the row,
# and a longer kernel costs more to compile than it saves (a chain of 40 row-wise
# blocks became one kernel of 40 passes: 60 s to compile; in groups of 6, 4.5 s for 5
# blocks). With one, a softmax is two row kernels (its max; then exp, sum and divide),
# which the entry runs chunk by chunk together where it splits rows (codegen._grouped)
MAX_ROW_REDUCTIONS = 1
RowShape = tuple[Shape, int]  # a row group's iteration shape and its count of row axes


def _row_of(g: Graph, n: Node) -> RowShape | None:
    """(shape, k) of a reduction over the k trailing axes of its input that keeps them,
    with at least one leading axis and a row that is not all size 1; else None."""
    if n.op not in ABSORBED_REDUCTIONS or not n.attrs.get("keepdims"):
        return None
    shape = tuple(g.type_of(n.inputs[0]).shape)
    rank = len(shape)
    axes = tuple(sorted({a % rank for a in n.attrs["axes"]})) if rank else ()
    k = len(axes)
    if not 0 < k < rank or axes != tuple(range(rank - k, rank)):
        return None
    if all(d == 1 for d in shape[rank - k :]) or all(d == 1 for d in shape[: rank - k]):
        return None
    return shape, k


def row_role(t_shape: Shape, row: RowShape) -> str | None:
    """How a value of `t_shape` takes part in rows of `row`: "vector" (it has the row
    axes), "scalar" (one value per row), or None (it does not run over these rows)."""
    shape, k = row
    lead = len(shape) - k
    if len(t_shape) != len(shape) or tuple(t_shape[:lead]) != tuple(shape[:lead]):
        return None
    if tuple(t_shape[lead:]) == tuple(shape[lead:]):
        return "vector"
    return "scalar" if all(d == 1 for d in t_shape[lead:]) else None


def _fits_rows(g: Graph, groups: _Groups, group: int, row: RowShape) -> bool:
    """Whether every member of `group` runs over the rows of `row`."""
    kind = groups.kind[group]
    members = groups.members[group]
    if kind == "row":
        return groups.row[group] == row
    if kind == "reduction":
        body, last = members[:-1], members[-1]
        return _row_of(g, last) == row and all(
            row_role(m.types[0].shape, row) == "vector" for m in body
        )
    return kind == "elementwise" and all(row_role(m.types[0].shape, row) for m in members)


def _neighbours(g: Graph, groups: _Groups, group: int, readers: dict[Value, set[int]]) -> list[int]:
    """The groups that feed `group` or read it, in node order."""
    found: set[int] = set()
    for m in groups.members[group]:
        ids = [v.node for v in m.inputs] + [r for v in m.outputs for r in readers.get(v, ())]
        found.update(groups.group_of[i] for i in ids if i in groups.group_of)
    found.discard(group)
    return sorted(found, key=lambda other: groups.position[groups.members[other][0].id])


def _form_row_groups(g: Graph, groups: _Groups) -> None:
    """Grow a row group from each reduction that keeps its trailing axes (_row_of): it
    takes in every neighbouring group that runs over the same rows, while no outside
    node comes between (the union stays acyclic) and it holds at most MAX_ROW_REDUCTIONS
    reductions. A full group takes no group that feeds another of these rows'
    reductions: that one starts the next row group (a chain of row-wise blocks splits
    into equal groups, one kernel up to their constants)."""
    readers = _readers(g)
    rows = [(n, row) for n in g.nodes if (row := _row_of(g, n)) is not None]
    for n, _ in rows:
        if n.id not in groups.group_of:
            groups.start(n, kind="reduction")
    for n, row in rows:
        seed = groups.group_of[n.id]
        if not _fits_rows(g, groups, seed, row):
            continue
        grown = False
        changed = True
        while changed:
            changed = False
            for other in _neighbours(g, groups, seed, readers):
                if _joins_rows(g, groups, seed, other, row, readers):
                    groups.absorb(other, into=seed)
                    grown = changed = True
        if grown or groups.kind[seed] == "row":
            groups.kind[seed], groups.shape[seed] = "row", row[0]
            groups.row[seed] = row


def _reductions(groups: _Groups, group: int) -> int:
    return sum(m.op in ABSORBED_REDUCTIONS for m in groups.members[group])


def _joins_rows(
    g: Graph, groups: _Groups, seed: int, other: int, row: RowShape, readers: dict
) -> bool:
    """Whether row group `seed` takes in its neighbour `other` (see _form_row_groups)."""
    if not _fits_rows(g, groups, other, row):
        return False
    held = _reductions(groups, seed)
    if held + _reductions(groups, other) > MAX_ROW_REDUCTIONS:
        return False
    if held == MAX_ROW_REDUCTIONS:
        fed = {r for m in groups.members[other] for v in m.outputs for r in readers.get(v, ())}
        if any(r >= 0 and groups.group_of.get(r) != seed and _row_of(g, g.by_id[r]) == row
               for r in fed):  # fmt: skip
            return False
    return groups.merged_is_acyclic([seed, other], None)


def _absorb_reductions_and_matmuls(g: Graph, groups: _Groups) -> None:
    readers = _readers(g)
    for group in list(groups.members):
        if not _absorb_matmul(g, groups, group, readers):
            _absorb_reduction(g, groups, group, readers)


def _units_in_order(g: Graph, groups: _Groups, fused: set[int]) -> list[list[Node]]:
    """Plain nodes and fused groups, topologically ordered (groups as single units)."""
    unit_of = {
        n.id: (groups.group_of[n.id] if groups.group_of.get(n.id) in fused else n.id)
        for n in g.nodes
    }
    units: dict[int, list[Node]] = {}
    for n in g.nodes:
        units.setdefault(unit_of[n.id], []).append(n)
    position = {unit: min(groups.position[n.id] for n in nodes) for unit, nodes in units.items()}
    needs = {u: {unit_of[v.node] for n in ns for v in n.inputs} - {u} for u, ns in units.items()}
    users: dict[int, list[int]] = {u: [] for u in units}
    for unit, deps in needs.items():
        for dep in deps:
            users[dep].append(unit)
    waiting = {u: len(d) for u, d in needs.items()}
    ready = [(position[u], u) for u, count in waiting.items() if count == 0]
    heapq.heapify(ready)
    ordered = []
    while ready:
        _, unit = heapq.heappop(ready)
        ordered.append(units[unit])
        for user in users[unit]:
            waiting[user] -= 1
            if waiting[user] == 0:
                heapq.heappush(ready, (position[user], user))
    return ordered


def _emit_group(
    members: list[Node], kind: str, rewriter: Rewriter, readers: dict[Value, set[int]]
) -> None:
    """One fused node for a group: its body, external inputs and results."""
    inside = {m.id for m in members}
    index: dict[Value, int] = {}
    external: list[Value] = []
    body = []
    steps: list[tuple] = []
    for member in members:
        for v in member.inputs:
            if v in index or v.node in inside:
                continue
            producer = rewriter.node(v)
            if _is_scalar_constant(producer):
                steps.append((producer, v))
            else:
                index[v] = len(external)
                external.append(v)
    count = len(external)
    for producer, v in steps:
        body.append(("constant", (), producer.attrs))
        index[v] = count
        count += 1
    for member in members:
        body.append((member.op, tuple(index[v] for v in member.inputs), member.attrs))
        for v in member.outputs:
            index[v] = count
            count += 1
    results = _results(members, readers)
    outputs = rewriter.add(
        "fused",
        external,
        {
            "body": tuple(body),
            "results": tuple(index[v] for v in results),
            "kind": kind,
        },
        origin=members[-1].origin,
    )
    for old, new in zip(results, outputs, strict=True):
        rewriter.replace(old, new)


@graph_pass("fuse")
def fuse(g: Graph) -> PassResult:
    """Group elementwise chains, their reductions, matmul epilogues and row-wise
    chains (softmax, layer norm) into fused nodes."""
    groups = _Groups(g)
    _form_elementwise_groups(g, groups)
    _absorb_reductions_and_matmuls(g, groups)
    _form_row_groups(g, groups)
    fused = {
        group
        for group, members in groups.members.items()
        if len([m for m in members if not _is_scalar_constant(m)]) >= 2
    }
    readers = _readers(g)
    rewriter = Rewriter(g)
    for unit in _units_in_order(g, groups, fused):
        group = groups.group_of.get(unit[0].id)
        if group in fused:
            _emit_group(unit, groups.kind[group], rewriter, readers)
        else:
            for n in unit:
                rewriter.keep(n)
    new = rewriter.finish()
    stats = {
        "kernels": len(fused),
        "nodes_fused": sum(len(groups.members[group]) for group in fused),
        "reductions_fused": sum(groups.kind[group] == "reduction" for group in fused),
        "matmul_epilogues": sum(groups.kind[group] == "matmul" for group in fused),
        "row_kernels": sum(groups.kind[group] == "row" for group in fused),
    }
    return PassResult(new.replace(nodes=live_nodes(new)), stats)
