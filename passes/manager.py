"""The pass manager: named passes, explicit pipelines, verification and the report.

Part of graphc.passes. A pass is a function Graph -> PassResult registered under a
short name with `@graph_pass`. `run_pipeline` runs a tuple of names in order; after
each pass it verifies the IR (in tests and with GRAPHC_VERIFY=1), records a row of
the report, prints the IR when GRAPHC_DUMP names the pass, and turns any failure
into a PassError with an IR excerpt. Never log-and-continue.
"""

from __future__ import annotations

import dataclasses
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from graphc import config
from graphc.errors import ArgumentError, GraphcError, PassError, VerifyError
from graphc.ir import Graph
from graphc.printer import format_graph
from graphc.registry import Attrs
from graphc.verify import verify

DEFAULT_PIPELINE = (
    "fold",  # evaluate constant subgraphs with the numpy reference
    "simplify",  # algebraic identities and stability rewrites, to a fixpoint
    "cse",  # merge structurally equal pure nodes
    "hoist",  # compute out of a scan's body what its steps need not compute again
    "dce",  # drop what no output or update needs
    "fuse",  # group elementwise chains (with a reduction or a matmul) into fused nodes
    "dce",
    "plan_memory",  # assign temporaries to reusable buffers, in place where safe
)


# passes that also run inside control-flow bodies (each body on its own, with the same
# inputs and outputs); a body's values are fresh arrays each step (kernels/cpu/control.py),
# so plan_memory does not
BODY_PASSES = frozenset({"fold", "simplify", "cse", "hoist", "dce", "fuse"})


@dataclass(frozen=True)
class PassResult:
    """A pass's new graph and its own counts (folded, merged, removed, ...)."""

    graph: Graph
    stats: dict[str, int] = field(default_factory=dict)


PassFunction = Callable[[Graph], PassResult]
PASSES: dict[str, PassFunction] = {}


def graph_pass(name: str) -> Callable[[PassFunction], PassFunction]:
    """Decorator: register a pass under `name` (the name used in pipelines and reports)."""

    def register(function: PassFunction) -> PassFunction:
        if name in PASSES:
            raise ArgumentError(f"pass {name!r} is registered twice")
        PASSES[name] = function
        return function

    return register


@dataclass(frozen=True)
class PassRecord:
    """One row of the report."""

    name: str
    nodes_before: int
    nodes_after: int
    seconds: float
    stats: dict[str, int]


@dataclass(frozen=True)
class PassReport:
    """What each pass of a pipeline did, in order; `str()` is a table."""

    records: tuple[PassRecord, ...] = ()

    def __repr__(self) -> str:
        return str(self)

    def __str__(self) -> str:
        if not self.records:
            return "no optimization passes ran"
        lines = [f"{'pass':<12} {'nodes':>13} {'ms':>8}  details"]
        for r in self.records:
            details = ", ".join(f"{k} {v}" for k, v in sorted(r.stats.items())) or "-"
            lines.append(
                f"{r.name:<12} {r.nodes_before:>5} -> {r.nodes_after:<5} "
                f"{r.seconds * 1000:>8.2f}  {details}"
            )
        return "\n".join(lines)


def structural_key(g: Graph) -> tuple:
    """Everything that defines a graph, for checking that a pass left its input alone."""
    return (
        tuple((n.id, n.op, n.inputs, n.attrs, n.types) for n in g.nodes),
        g.inputs,
        g.outputs,
        g.updates,
    )


def _in_bodies(result: PassResult, name: str, checking: bool) -> PassResult:
    """`result` with pass `name` run inside every control-flow body of its graph too
    (nested bodies included); its stats gain "bodies": how many bodies it changed."""
    changed = 0
    nodes = []
    for node in result.graph.nodes:
        bodies = {k: v for k, v in node.attrs.items() if isinstance(v, Graph)}
        if not bodies:
            nodes.append(node)
            continue
        new = {}
        for key, body in bodies.items():
            optimized, _ = run_pipeline(body, (name,), verify_each=checking)
            if structural_key(optimized) != structural_key(body):
                new[key] = optimized.renumbered()[0]
        if new:
            changed += len(new)
            node = dataclasses.replace(node, attrs=Attrs({**node.attrs, **new}))
        nodes.append(node)
    if not changed:
        return result
    stats = {**result.stats, "bodies": changed}
    return PassResult(result.graph.replace(nodes=tuple(nodes)), stats)


def run_pipeline(
    g: Graph, names: Sequence[str], *, verify_each: bool | None = None
) -> tuple[Graph, PassReport]:
    """Run the named passes in order; return the final graph and the report."""
    unknown = [name for name in names if name not in PASSES]
    if unknown:
        raise PassError(f"unknown pass(es) {unknown}; passes are {sorted(PASSES)}")
    checking = config.verify_passes() if verify_each is None else verify_each
    dump = config.dump_after()
    records = []
    for name in names:
        before = structural_key(g) if checking else None
        start = time.perf_counter()
        try:
            result = PASSES[name](g)
            if name in BODY_PASSES:
                result = _in_bodies(result, name, checking)
            if checking:
                verify(result.graph)
        except VerifyError as error:
            raise PassError(f"pass {name} produced an invalid graph: {error}") from error
        except GraphcError as error:
            raise PassError(f"pass {name} failed: {error}\n{format_graph(g)}") from error
        if checking and structural_key(g) != before:
            raise PassError(f"pass {name} changed its input graph")
        records.append(
            PassRecord(
                name,
                len(g.nodes),
                len(result.graph.nodes),
                time.perf_counter() - start,
                dict(result.stats),
            )
        )
        g = result.graph
        if name in dump:
            print(f"--- IR after {name}\n{format_graph(g)}", file=sys.stderr)  # noqa: T201
    return g, PassReport(tuple(records))
