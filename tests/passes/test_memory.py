"""plan_memory: buffers are reused only when their contents are dead, in place only where
safe, never for fetched values or new variable state; fewer bytes than holding everything."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import strategies
from hypothesis import given

import graphc as gc
from graphc.passes import PASSES, run_pipeline
from graphc.passes.memory import _last_reads, _storage
from graphc.verify import verify


def plan(inputs: list, outputs: object, passes: tuple = ("plan_memory",), **kwargs: object):
    # the graph as defined, whose node ids are the Tensors' (Function.graph is renumbered)
    g = gc.function(inputs, outputs, optimize=False, **kwargs).saved_form()[0]
    result, report = run_pipeline(g, passes, verify_each=True)
    return result, report.records[-1].stats


def assert_plan_is_safe(g: gc.Graph) -> None:
    """No buffer holds two values whose lives overlap (in place: the input dies as the
    output is born), and nothing fetched or stored escapes into a buffer."""
    assert g.memory is not None
    base = _storage(g)
    last = _last_reads(g, base)
    position = {n.id: i for i, n in enumerate(g.nodes)}
    in_place = set(g.memory.in_place)
    by_buffer: dict[int, list] = {}
    for value, buffer in g.memory.assignment:
        born = position[value.node]
        by_buffer.setdefault(buffer, []).append((born, max(born, last.get(value, born)), value))
    for lives in by_buffer.values():
        lives.sort(key=lambda life: life[0])
        for (born, end, _), (start, _, value) in itertools.pairwise(lives):
            assert born != start, "two outputs of one node share a buffer"
            assert end < start or (end == start and value in in_place)
    escaping = {base[v] for v in g.roots()}
    assert not escaping & {v for v, _ in g.memory.assignment}


def test_a_chain_reuses_two_buffers() -> None:
    x = gc.placeholder((1000,), "float32", name="x")
    y = gc.placeholder((1000,), "float32", name="y")
    out = gc.tanh(0.5 * x + y) * gc.sigmoid(y) - gc.exp(-x * x) + 0.1 * y
    g, stats = plan([x, y], out)
    assert_plan_is_safe(g)
    assert stats["temp_bytes_before"] == 10 * 4000  # every temporary held to the end
    assert stats["temp_bytes_after"] <= 2 * 4000
    assert stats["in_place"] > 0


def test_fetched_values_and_new_state_get_no_buffer() -> None:
    x = gc.placeholder((4,), "float64", name="x")
    v = gc.Variable(np.zeros(4), name="v")
    hidden = gc.exp(x)
    new_state = hidden * 2
    g, _ = plan([x], [gc.reshape(hidden, (2, 2))], updates={v: new_state})
    assert_plan_is_safe(g)
    planned = {value for value, _ in g.memory.assignment}
    assert hidden.ref not in planned  # fetched through a view
    assert new_state.ref not in planned


def test_views_keep_their_storage_alive() -> None:
    x = gc.placeholder((6,), "float64", name="x")
    a = gc.exp(x)
    view = gc.reshape(a, (2, 3))
    b = gc.sin(x)  # must not overwrite a while the view is still read below
    out = gc.sum(view, axis=1) + gc.sum(gc.reshape(b, (2, 3)), axis=1)
    g, _ = plan([x], out)
    assert_plan_is_safe(g)
    buffers = dict(g.memory.assignment)
    assert buffers[a.ref] != buffers[b.ref]


def test_plan_is_symbolic_for_unknown_sizes() -> None:
    x = gc.placeholder((None, 3), "float32", name="x")
    g, stats = plan([x], gc.sum(gc.exp(gc.tanh(x) * 2) + 1, axis=1))
    assert_plan_is_safe(g)
    assert stats["buffers"] == 1
    verify(g)
    np.testing.assert_allclose(
        gc.function([x], gc.sum(gc.exp(gc.tanh(x) * 2) + 1, axis=1), optimize=["plan_memory"])(
            np.ones((2, 3))
        ),
        np.full(2, 3 * (np.exp(np.tanh(1) * 2) + 1)),
        rtol=1e-6,
    )


def test_verifier_rejects_a_plan_that_does_not_fit() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    g, _ = plan([x], gc.exp(x) * 2 + 1)
    value, _ = g.memory.assignment[0]
    broken = g.replace(memory=gc.ir.MemoryPlan((("float32", 3),), ((value, 0),)))
    with pytest.raises(gc.VerifyError, match="memory plan"):
        verify(broken)


@given(case=strategies.graph_cases())
def test_plans_of_random_graphs_are_safe(case) -> None:
    placeholders, outputs = case.build(symbolic=True)
    g = gc.function(placeholders, outputs, optimize=False).graph
    for passes in (
        ("plan_memory",),
        ("fold", "simplify", "cse", "dce", "fuse", "dce", "plan_memory"),
    ):
        planned, report = run_pipeline(g, passes, verify_each=True)
        assert_plan_is_safe(planned)
        stats = report.records[-1].stats
        assert stats["temp_bytes_after"] <= stats["temp_bytes_before"]
    assert PASSES["plan_memory"](planned).graph.memory == planned.memory  # idempotent


def test_a_later_pass_drops_a_stale_plan() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    g, _ = plan([x], gc.exp(x) * 2 + 1)
    assert g.memory is not None
    again, _ = run_pipeline(g, ("dce", "fuse"), verify_each=True)
    assert again.memory is None


@pytest.mark.usefixtures("unfused_rows")
def test_two_outputs_of_one_node_never_share_a_dying_input() -> None:
    """A fused node with two results, both of its dying input's type: only one of them
    may compute in place (this once gave log_softmax a wrong answer)."""
    z = gc.placeholder((None, 3), "float32", name="z")
    out = gc.log_softmax(z @ np.ones((3, 3), np.float32), axis=-1)
    g = gc.function([z], out, device="reference").graph
    assert any(len(n.outputs) == 2 for n in g.nodes if n.op == "fused")
    assert_plan_is_safe(g)
