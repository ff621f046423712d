"""The IR: symbolic dims, types, the builder, the printer, the verifier and the registry."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import graphc as gc
from graphc import interpret
from graphc.ir import GraphBuilder, Value
from graphc.registry import NOT_DIFFERENTIABLE, REGISTRY, Attrs, ConstArray
from graphc.types import Sym, TensorType, broadcast_shapes, dim_product, dim_sum
from graphc.verify import verify

n, m = Sym("n"), Sym("m")


def test_unknown_dims_are_equal_only_when_known_to_be() -> None:
    assert Sym("n") == n
    assert n != m
    assert broadcast_shapes((n, 3), (n, 1)) == (n, 3)
    assert broadcast_shapes((n,), (3,)) == (3,)
    assert broadcast_shapes((n,), (1,)) == (n,)
    assert broadcast_shapes((n,), (m,)) == broadcast_shapes((m,), (n,)) != (n,)
    with pytest.raises(gc.ShapeError):
        broadcast_shapes((2,), (3,))


def test_derived_dims_are_canonical() -> None:
    assert dim_sum([n, 2, m, 3]) == dim_sum([m, 5, n])
    assert dim_product([n, 4]) == dim_product([4, n]) != dim_product([n, 2])
    assert dim_product([n, 0]) == 0
    assert dim_sum([n]) == n
    assert dim_product([n]) == n


def test_symbolic_shapes_flow_through_ops() -> None:
    x = gc.placeholder((None, 784), name="x")
    assert x.reshape(-1, 28, 28).shape == (None, 28, 28)
    assert x.reshape(-1, 28, 28).type.shape[0] == x.type.shape[0]  # the same size, known
    assert gc.concatenate([x, x]).shape == (None, 784)
    assert (x[1:] + x[1:]).shape == (None, 784)
    assert gc.reshape(x, (-1,)).reshape(-1, 784).type.shape[0] == x.type.shape[0]


def test_types_print_compactly() -> None:
    assert str(TensorType(np.dtype("float32"), (n, 10))) == "float32[n,10]"
    assert str(TensorType(np.dtype("int64"), ())) == "int64[]"


def test_attrs_are_frozen_canonical_and_hashable() -> None:
    a = Attrs({"axes": [1, 0], "keepdims": np.bool_(True), "dtype": np.dtype("float32")})
    assert a == {"axes": (1, 0), "keepdims": True, "dtype": "float32"}
    assert hash(a) == hash(Attrs({"dtype": "float32", "keepdims": True, "axes": (1, 0)}))
    with pytest.raises(TypeError):
        a["axes"] = 3  # type: ignore[index]


def test_const_arrays_compare_bit_for_bit() -> None:
    assert ConstArray(np.array([np.nan])) == ConstArray(np.array([np.nan]))
    assert ConstArray(np.array([0.0])) != ConstArray(np.array([-0.0]))
    assert ConstArray(np.array([1], "int32")) != ConstArray(np.array([1], "int64"))
    frozen = ConstArray(np.arange(3))
    assert not frozen.array.flags.writeable


def test_nodes_are_frozen_and_graphs_are_values() -> None:
    x = gc.placeholder((2,), name="x")
    f = gc.function([x], gc.exp(x))
    node = f.graph.nodes[-1]
    with pytest.raises(dataclasses.FrozenInstanceError):
        node.op = "log"  # type: ignore[misc]
    before = str(f.graph)
    gc.function([x], gc.log(x) + gc.exp(x))  # building more does not touch f's graph
    assert str(f.graph) == before


def test_graph_holds_only_what_outputs_and_updates_need() -> None:
    x = gc.placeholder((2,), name="x")
    _unused = gc.sin(x) * 100
    v = gc.Variable(np.zeros(2, "float32"), name="v")
    f = gc.function([x], gc.exp(x), updates={v: v + 1})
    ops = sorted(node.op for node in f.graph.nodes)
    assert ops == ["add", "constant", "exp", "placeholder", "variable"]
    assert [node.attrs["name"] for node in f.graph.variables] == ["v"]
    ids = [node.id for node in f.graph.nodes]
    assert ids == sorted(ids)


def test_printer_shows_one_line_per_node() -> None:
    x = gc.placeholder((None, 10), name="x")
    w = gc.Variable(np.zeros((10, 4), "float32"), name="w")
    f = gc.function([x], gc.tanh(x @ w), optimize=False)
    text = str(f.graph)
    lines = text.splitlines()
    # a Function's graph is numbered 0, 1, ... in order, whatever the builder's ids
    assert [n.id for n in f.graph.nodes] == list(range(len(f.graph.nodes)))
    assert lines[0] == "graph(%0 x: float32[x.0,10]) -> (float32[x.0,4]):"
    assert len(lines) == len(f.graph.nodes) + 2
    assert any(line.strip().startswith(f"%{f.graph.outputs[0].node} = tanh %") for line in lines)
    assert "matmul" in text
    assert lines[-1].startswith("  return %")
    assert "@ test_ir.py:" in text


def _graph() -> gc.Graph:
    x = gc.placeholder((3,), name="x")
    return gc.function([x], gc.exp(x) * 2).graph


def test_verify_accepts_built_graphs() -> None:
    assert verify(_graph()) is not None


@pytest.mark.parametrize(
    ("breakage", "match"),
    [
        (lambda g: g.replace(nodes=g.nodes[::-1]), "no earlier node defines"),
        (lambda g: g.replace(nodes=g.nodes + g.nodes[-1:]), "used twice"),
        (lambda g: g.replace(outputs=(Value(10**9),)), "is not defined"),
        (lambda g: g.replace(inputs=g.outputs), "not a placeholder"),
        (
            lambda g: g.replace(
                nodes=(
                    *g.nodes[:-1],
                    dataclasses.replace(
                        g.nodes[-1], types=(TensorType(np.dtype("float64"), (3,)),)
                    ),
                )
            ),
            "infers",
        ),
        (
            lambda g: g.replace(
                nodes=(*g.nodes[:-1], dataclasses.replace(g.nodes[-1], attrs=Attrs({"bogus": 1})))
            ),
            "unknown attribute",
        ),
        (
            lambda g: g.replace(
                nodes=(
                    *g.nodes[:-1],
                    dataclasses.replace(g.nodes[-1], inputs=(Value(g.nodes[0].id, 3),) * 2),
                )
            ),
            "has 1 outputs",
        ),
    ],
)
def test_verify_rejects_broken_graphs(breakage, match: str) -> None:
    with pytest.raises(gc.VerifyError, match=match) as info:
        verify(breakage(_graph()))
    assert ">>" in str(info.value) or "not defined" in str(info.value)


def test_builder_checks_arity_and_attributes() -> None:
    b = GraphBuilder()
    x = b.add1("placeholder", [], {"name": "x", "dtype": "float32", "shape": (2,)})
    with pytest.raises(gc.GraphcError, match="takes 2 inputs"):
        b.add("add", [x])
    with pytest.raises(gc.ArgumentError, match="missing attribute"):
        b.add("sum", [x], {"keepdims": True})
    with pytest.raises(gc.ArgumentError, match="is not a bool"):
        b.add("sum", [x], {"axes": (0,), "keepdims": 1})
    with pytest.raises(gc.GraphcError, match="unknown op"):
        b.add("frobnicate", [x])
    graph = b.build([x], [b.add1("sum", [x], {"axes": (0,)})])
    assert verify(graph) is graph


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_registry_entry_is_complete(name: str) -> None:
    """Every op has a type rule, a numpy reference, an arity, traits, a doc, and a gradient
    rule or an explicit NOT_DIFFERENTIABLE (a missing rule is a visible decision)."""
    opdef = REGISTRY[name]
    assert opdef.name == name
    assert callable(opdef.infer)
    assert callable(opdef.reference)
    assert opdef.arity is None or opdef.arity >= 0
    assert opdef.traits, "traits drive the passes: say at least pure or stateful"
    assert opdef.doc
    assert opdef.grad is NOT_DIFFERENTIABLE or callable(opdef.grad)
    if "elementwise" in opdef.traits:
        assert "pure" in opdef.traits
    for spec in opdef.attrs.values():
        assert spec.default is not None or spec.kind in ("axes", "int_or_none")


def test_interpreter_runs_a_graph_with_its_updates() -> None:
    x = gc.placeholder((None,), name="x")
    v = gc.Variable(np.array([1.0, 2.0]), name="v")
    f = gc.function([x], gc.sum(x) * 2, updates={v: v + x})
    feed = np.array([3.0, 4.0])
    (x_id,), (v_id,) = [v.node for v in f.graph.inputs], [n.id for n in f.graph.variables]
    outputs, updates = interpret.run(f.graph, {x_id: feed, v_id: v.value})
    np.testing.assert_array_equal(outputs[0], 14.0)
    np.testing.assert_array_equal(updates[0], [4.0, 6.0])
    with pytest.raises(gc.InputError, match="no value for variable 'v'"):
        interpret.run(f.graph, {x_id: feed})
