"""graphc.grad: every differentiable row of the op table against finite differences in
float64, broadcasting and reductions, second order, and the API's rules (ties, kinks,
integer paths, stop_gradient, errors)."""

from __future__ import annotations

import numpy as np
import opinfo
import pytest
from gradcheck import check_gradients, check_second_order

import graphc as gc


def _float64(dtypes: tuple[str, ...]) -> tuple[str, ...]:
    return tuple("float64" if d in opinfo.FLOATS else d for d in dtypes)


def _has_float_output(case: opinfo.OpCase, dtypes: tuple[str, ...]) -> bool:
    placeholders = [gc.placeholder(s, d) for s, d in zip(case.shapes[0], dtypes, strict=True)]
    outputs = case.build(*placeholders)
    outputs = outputs if isinstance(outputs, tuple | list) else (outputs,)
    return any(o.dtype.kind == "f" for o in outputs)


def _differentiable_params() -> list:
    """Every row and float64 dtype combination with a float input and a float output."""
    params = []
    for case in opinfo.CASES:
        combos = sorted({_float64(d) for d in case.dtypes if "float64" in _float64(d)})
        for dtypes in combos:
            if _has_float_output(case, dtypes) and case.id not in NOT_SMOOTH:
                params.append(pytest.param(case, dtypes, id=f"{case.id}-{'-'.join(dtypes)}"))
    return params


# continuous random inputs: the rows' own inputs force ties to test ordering
SMOOTH_INPUTS = {"topk", "sort"}
# rows whose derivative is deliberately not the finite difference: inputs placed on
# round's jumps, and stop_gradient, whose derivative is 0 by definition (tested below)
NOT_SMOOTH = {"round[halves]", "stop_gradient"}


@pytest.mark.parametrize(("case", "dtypes"), _differentiable_params())
def test_gradient_matches_finite_differences(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    for shapes in case.shapes:
        if case.name in SMOOTH_INPUTS:
            arrays = [rng.standard_normal(s) for s in shapes]
        else:
            arrays = case.inputs(rng, shapes, dtypes)
        steep = case.name in ("arcsin", "arccos", "tan")
        # a cast to float32 rounds: a linear map, so a large step measures it exactly
        rounds = case.name in ("cast", "astype")
        check_gradients(
            case.build,
            arrays,
            rng,
            eps=0.1 if rounds else 1e-6,
            rtol=1e-4 if steep or rounds else 1e-5,
        )


@pytest.mark.parametrize(
    ("shape_a", "shape_b"),
    [((2, 3), (3,)), ((2, 3), ()), ((2, 1), (1, 3)), ((4, 1, 3), (2, 1)), ((1,), (3, 1))],
)
@pytest.mark.parametrize("op", [gc.add, gc.multiply, gc.subtract, gc.divide, gc.maximum])
def test_broadcasting_gradients_sum_back(op, shape_a, shape_b, rng: np.random.Generator) -> None:
    arrays = [rng.uniform(1, 2, shape_a), rng.uniform(-2, -1, shape_b)]
    check_gradients(op, arrays, rng)


@pytest.mark.parametrize("axis", [None, 0, 1, 2, -1, (0, 1), (0, 2), (1, 2), (0, 1, 2), ()])
@pytest.mark.parametrize("name", ["sum", "mean", "prod", "max", "min", "logsumexp", "var", "std"])
def test_reductions_over_every_axis_combination(name: str, axis, rng: np.random.Generator) -> None:
    function = getattr(gc, name)
    x = rng.uniform(0.5, 1.5, (2, 3, 4)) * rng.choice([-1, 1], (2, 3, 4))
    for keepdims in (False, True):
        check_gradients(lambda t, k=keepdims: function(t, axis=axis, keepdims=k), [x], rng)


def test_unknown_dims_gradients() -> None:
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 3), "float64", name="x")
    b = gc.placeholder((None,), "float64", name="b")
    y = gc.sum((x * b[:, None] + gc.reshape(x, (-1,))[:3]) ** 2) + gc.mean(gc.cumsum(x))
    gx, gb = gc.grad(y, [x, b])
    f = gc.function([x, b], [gx, gb])
    for rows in (1, 4):
        xa, ba = rng.standard_normal((rows, 3)), rng.standard_normal(rows)
        static = [gc.placeholder(xa.shape, "float64"), gc.placeholder(ba.shape, "float64")]
        ys = gc.sum((static[0] * static[1][:, None] + gc.reshape(static[0], (-1,))[:3]) ** 2)
        ys = ys + gc.mean(gc.cumsum(static[0]))
        expected = gc.function(static, gc.grad(ys, static))(xa, ba)
        for got, want in zip(f(xa, ba), expected, strict=True):
            np.testing.assert_allclose(got, want, rtol=1e-12)


def test_broadcast_decided_at_run_time_sums_back() -> None:
    a = gc.placeholder((None,), "float64", name="a")
    b = gc.placeholder((None,), "float64", name="b")
    ga, gb = gc.grad(gc.sum(a * b), [a, b])
    f = gc.function([a, b], [ga, gb])
    got_a, got_b = f(np.array([2.0]), np.array([1.0, 2.0, 3.0]))
    np.testing.assert_array_equal(got_a, [6.0])
    np.testing.assert_array_equal(got_b, [2.0, 2.0, 2.0])
    got_a, got_b = f(np.array([1.0, 2.0]), np.array([5.0, 7.0]))
    np.testing.assert_array_equal(got_a, [5.0, 7.0])


SECOND_ORDER = [
    ("tanh", lambda x: gc.tanh(x), (3,)),
    ("exp*sin", lambda x: gc.exp(x) * gc.sin(x), (2, 3)),
    ("sigmoid", lambda x: gc.sigmoid(x), (4,)),
    ("log_softmax", lambda x: gc.log_softmax(x), (2, 5)),
    ("matmul", lambda a, b: gc.tanh(a @ b), (2, 3), (3, 2)),
    ("divide", lambda a, b: a / b, (3,), (3,)),
    ("power", lambda a, b: gc.power(a, b), (3,), (3,)),
    ("layer_norm", lambda x: gc.layer_norm(x), (2, 4)),
    ("logsumexp", lambda x: gc.logsumexp(x, axis=1), (3, 4)),
    ("gather", lambda x: gc.take(x, gc.constant([2, 0, 2]), axis=1) ** 2, (2, 3)),
    ("softplus", lambda x: gc.softplus(x), (5,)),
]


@pytest.mark.parametrize("row", SECOND_ORDER, ids=[r[0] for r in SECOND_ORDER])
def test_second_order(row, rng: np.random.Generator) -> None:
    _, build, *shapes = row
    arrays = [rng.uniform(0.5, 2.0, s) for s in shapes]
    check_second_order(build, arrays, rng)


def test_third_order_of_a_polynomial() -> None:
    x = gc.placeholder((), "float64")
    (d1,) = gc.grad(x**4, [x])
    (d2,) = gc.grad(d1, [x])
    (d3,) = gc.grad(d2, [x])
    assert gc.function([x], [d1, d2, d3])(2.0) == [32.0, 48.0, 48.0]


def run(y: gc.Tensor, xs: list, feeds: list) -> list[np.ndarray]:
    inputs = [x for x in xs if x.op == "placeholder"]
    return gc.function(inputs, gc.grad(y, xs))(*feeds)


def test_subgradients_at_kinks() -> None:
    x = gc.placeholder((3,), "float64")
    zero_one = np.array([0.0, 1.0, -1.0])
    np.testing.assert_array_equal(run(gc.sum(gc.relu(x)), [x], [zero_one])[0], [0, 1, 0])
    np.testing.assert_array_equal(run(gc.sum(gc.abs(x)), [x], [zero_one])[0], [0, 1, -1])
    a = gc.placeholder((3,), "float64")
    b = gc.placeholder((3,), "float64")
    ga, gb = gc.function([a, b], gc.grad(gc.sum(gc.maximum(a, b)), [a, b]))(
        np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    )
    np.testing.assert_array_equal(ga, [0.5, 0, 1])
    np.testing.assert_array_equal(gb, [0.5, 1, 0])
    ga, gb = gc.function([a, b], gc.grad(gc.sum(gc.minimum(a, b)), [a, b]))(
        np.array([1.0, 2.0, 3.0]), np.array([1.0, 5.0, 0.0])
    )
    np.testing.assert_array_equal(ga, [0.5, 1, 0])
    ties = run(gc.max(x), [x], [np.array([2.0, 2.0, 1.0])])[0]
    np.testing.assert_array_equal(ties, [0.5, 0.5, 0])


def test_gradients_stay_finite_where_the_forward_value_is() -> None:
    x = gc.placeholder((3,), "float64")
    y = gc.placeholder((3,), "float64")
    at = np.array([0.0, 0.0, 4.0])
    assert np.isfinite(run(gc.sum(gc.sqrt(x)), [x], [at])[0]).all()
    assert np.isfinite(run(gc.sum(gc.sqrt(x * x)), [x], [at])[0]).all()
    ga, gb = gc.function([x, y], gc.grad(gc.sum(gc.power(x, y)), [x, y]))(
        np.array([0.0, 0.0, -2.0]), np.array([2.0, 0.0, 2.0])
    )
    np.testing.assert_array_equal(ga, [0.0, 0.0, -4.0])
    assert np.isfinite(gb).all()
    big = np.array([800.0, -800.0, 0.0])
    for build in (gc.sigmoid, gc.softplus, lambda t: gc.logsumexp(t), gc.softmax, gc.log_softmax):
        assert np.isfinite(
            run(gc.sum(build(x) * gc.constant([1.0, 2.0, 3.0])), [x], [big])[0]
        ).all()
    for build in (lambda t: gc.prod(t), lambda t: gc.prod(t * t)):
        assert np.isfinite(run(build(x), [x], [np.array([0.0, 2.0, 3.0])])[0]).all()


def test_product_gradient_with_zeros() -> None:
    x = gc.placeholder((4,), "float64")
    got = run(gc.prod(x), [x], [np.array([0.0, 2.0, 3.0, 4.0])])[0]
    np.testing.assert_array_equal(got, [24.0, 0.0, 0.0, 0.0])
    got = run(gc.prod(x), [x], [np.array([0.0, 2.0, 0.0, 4.0])])[0]
    np.testing.assert_array_equal(got, [0.0, 0.0, 0.0, 0.0])


def test_cross_entropy_gradient_is_softmax_minus_one_hot() -> None:
    logits = gc.placeholder((None, 4), "float64")
    labels = gc.placeholder((None,), "int64")
    loss = gc.sum(gc.softmax_cross_entropy(logits, labels))
    (g,) = gc.grad(loss, [logits])
    values = np.array([[1.0, 2.0, 3.0, 4.0], [1000.0, 0.0, -1000.0, 5.0]])
    got = gc.function([logits, labels], g)(values, np.array([3, 2]))
    shifted = np.exp(values - values.max(axis=1, keepdims=True))
    expected = shifted / shifted.sum(axis=1, keepdims=True) - np.eye(4)[[3, 2]]
    np.testing.assert_allclose(got, expected, atol=1e-15)


def test_accumulation_intermediates_and_unaffected_inputs() -> None:
    x = gc.placeholder((), "float64", name="x")
    z = gc.placeholder((2,), "float64", name="z")
    h = x * x
    y = h * 3 + gc.sin(h) + x
    gx, gh, gz = gc.grad(y, [x, h, z])
    got = gc.function([x, z], [gx, gh, gz])(1.5, np.ones(2))
    h_value = 1.5**2
    np.testing.assert_allclose(got[1], 3 + np.cos(h_value))
    np.testing.assert_allclose(got[0], (3 + np.cos(h_value)) * 3.0 + 1)
    np.testing.assert_array_equal(got[2], [0.0, 0.0])


def test_variables_and_placeholders_get_gradients() -> None:
    w = gc.Variable(np.array([1.0, 2.0]), name="w")
    x = gc.placeholder((2,), "float64", name="x")
    gw, gx = gc.grad(gc.sum(w * x * x), [w, x])
    got_w, got_x = gc.function([x], [gw, gx])(np.array([3.0, 4.0]))
    np.testing.assert_array_equal(got_w, [9.0, 16.0])
    np.testing.assert_array_equal(got_x, [6.0, 16.0])


def test_integer_paths_and_stop_gradient_contribute_nothing() -> None:
    x = gc.placeholder((3,), "float64")
    through_int = gc.cast(gc.cast(x, "int64"), "float64")
    picked = gc.take(x, gc.argmax(x))  # the gradient flows through take, not argmax
    y = (
        gc.sum(through_int)
        + picked
        + gc.sum(gc.stop_gradient(x) * x)
        + gc.sum(gc.where(x > 0, x, 0))
    )
    (g,) = gc.grad(y, [x])
    got = gc.function([x], g)(np.array([1.0, -2.0, 3.0]))
    np.testing.assert_array_equal(got, [1 + 1, -2, 1 + 3 + 1])


def test_grad_errors() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    with pytest.raises(gc.ShapeError, match="scalar"):
        gc.grad(x * 2, [x])
    with pytest.raises(gc.DTypeError, match="not a float"):
        gc.grad(gc.sum(x), [gc.placeholder((2,), "int64", name="i")])
    with pytest.raises(gc.DTypeError):
        gc.grad(gc.sum(gc.cast(x, "int64")), [x])
    with pytest.raises(gc.GraphcError):
        gc.grad(gc.sum(x), x)


def test_gradients_are_graph_values() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    (g,) = gc.grad(gc.sum(gc.tanh(x)), [x])
    assert g.dtype == np.float32
    assert g.shape == (None,)
    f = gc.function([x], g, optimize=False)
    assert any(node.op == "tanh" for node in f.graph.nodes)
    np.testing.assert_allclose(f(np.zeros(3, "float32")), np.ones(3))


def _placeholder_of(graph: object, name: str) -> gc.Tensor:
    (t,) = graph.tensors(  # type: ignore[attr-defined]
        "placeholder", [], {"name": name, "dtype": "float32", "shape": (3,)}
    )
    return t


def test_grad_refuses_a_tensor_of_another_graph() -> None:
    from graphc.tensor import DefaultGraph

    other = _placeholder_of(DefaultGraph(), "elsewhere")
    x = gc.placeholder((3,), "float32", name="x")
    y = gc.sum(x * x)
    assert other.builder is not y.builder
    with pytest.raises(gc.ArgumentError, match="belongs to another graph than y"):
        gc.grad(y, [other])
    (gx,) = gc.grad(y, [x])  # the graph's own tensor still works
    assert gx.builder is y.builder


def test_an_op_refuses_inputs_from_two_graphs() -> None:
    from graphc.tensor import DefaultGraph

    other = _placeholder_of(DefaultGraph(), "elsewhere")
    x = gc.placeholder((3,), "float32", name="x")
    with pytest.raises(gc.ArgumentError, match="belongs to another graph"):
        x + other
