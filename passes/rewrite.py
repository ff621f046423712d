"""Rebuilding graphs, and the driver for local rewrite rules.

Part of graphc.passes. `Rewriter` copies a graph node by node into a new one,
substituting values as it goes; `apply_rules` runs rules (small functions from a
node to a replacement value, indexed by the ops they track) to a fixpoint within
a budget, and raises PassError naming the rules still firing when it runs out.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from graphc.errors import PassError
from graphc.ir import Graph, GraphBuilder, Node, Value
from graphc.passes.dce import live_nodes


class Rewriter:
    """Copies a graph in topological order into a new one, with substitutions.

    `keep(node)` copies a node (rebuilt with a fresh id if an input was substituted);
    `add(...)` builds a new node; `replace(old, new)` makes every later use of `old`
    read `new`. `finish()` returns the new graph; nodes nothing uses stay until dce.
    """

    def __init__(self, g: Graph) -> None:
        self.source = g
        self.builder = GraphBuilder(g.nodes)
        self.nodes: list[Node] = []
        self.mapping: dict[Value, Value] = {}

    def value(self, v: Value) -> Value:
        """What `v` reads in the new graph."""
        return self.mapping.get(v, v)

    def node(self, v: Value | int) -> Node:
        """The node that defines `v` in the new graph (substitutions followed)."""
        return self.builder.node(self.value(v) if isinstance(v, Value) else v)

    def type_of(self, v: Value) -> Any:
        return self.builder.type_of(self.value(v))

    def keep(self, n: Node) -> Node:
        inputs = tuple(self.value(v) for v in n.inputs)
        if inputs == n.inputs:
            self.nodes.append(n)
            return n
        outputs = self.add(n.op, inputs, n.attrs, name=n.name, origin=n.origin)
        for old, new in zip(n.outputs, outputs, strict=True):
            self.mapping[old] = new
        return self.builder.node(outputs[0])

    def add(
        self,
        op: str,
        inputs: Sequence[Value],
        attrs: Any = None,
        *,
        name: str | None = None,
        origin: str | None = None,
    ) -> tuple[Value, ...]:
        outputs = self.builder.add(
            op, [self.value(v) for v in inputs], attrs, name=name, origin=origin
        )
        self.nodes.append(self.builder.node(outputs[0]))
        return outputs

    def add1(self, op: str, inputs: Sequence[Value], attrs: Any = None, **kwargs: Any) -> Value:
        (value,) = self.add(op, inputs, attrs, **kwargs)
        return value

    def replace(self, old: Value, new: Value) -> None:
        self.mapping[old] = self.value(new)

    def finish(self) -> Graph:
        g = self.source
        return Graph(
            tuple(self.nodes),
            tuple(self.value(v) for v in g.inputs),
            tuple(self.value(v) for v in g.outputs),
            tuple((var, self.value(v)) for var, v in g.updates),
        )


@dataclass(frozen=True)
class Rule:
    """A local rewrite: `apply(node, rewriter)` returns a replacement value or None.

    The first line of the function's docstring states the identity it applies. A rule
    may build new nodes through the rewriter before returning the value to use.
    """

    name: str
    ops: frozenset[str]
    apply: Callable[[Node, Rewriter], Value | None]


def rule(*ops: str) -> Callable[[Callable[[Node, Rewriter], Value | None]], Rule]:
    """Decorator: make a function a Rule tracking `ops`."""

    def wrap(function: Callable[[Node, Rewriter], Value | None]) -> Rule:
        return Rule(function.__name__, frozenset(ops), function)

    return wrap


def apply_rules(
    g: Graph, rules: Iterable[Rule], *, max_rounds: int = 32
) -> tuple[Graph, dict[str, int]]:
    """Apply `rules` in walks over the graph until none fires; count firings per rule.

    Raises PassError naming the rules that still fired when `max_rounds` ran out.
    """
    by_op: dict[str, list[Rule]] = {}
    for r in rules:
        for op in r.ops:
            by_op.setdefault(op, []).append(r)
    counts: dict[str, int] = {}
    for _ in range(max_rounds):
        fired: dict[str, int] = {}
        rewriter = Rewriter(g)
        for n in g.nodes:
            kept = rewriter.keep(n)
            for r in by_op.get(kept.op, ()):
                replacement = r.apply(kept, rewriter)
                if replacement is not None and replacement != kept.outputs[0]:
                    rewriter.replace(n.outputs[0], replacement)
                    fired[r.name] = fired.get(r.name, 0) + 1
                    break
        if not fired:
            return g, counts
        for name, count in fired.items():
            counts[name] = counts.get(name, 0) + count
        finished = rewriter.finish()
        g = finished.replace(nodes=live_nodes(finished))
    raise PassError(f"rules still firing after {max_rounds} rounds: {sorted(fired)}")
