"""Control flow: cond, scan, while_loop and fori_loop, against plain Python loops over
numpy, with gradients against finite differences (first and second order, nested
loops, a cond inside a scan), and their errors. Every test runs twice: on the
reference interpreter and on the CPU backend, whose entry function runs the loops
(kernels/cpu/control.py)."""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_gradients, check_second_order

import graphc as gc
from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, InputError, ShapeError


@pytest.fixture(autouse=True, params=["reference", "cpu"])
def device(request, monkeypatch) -> str:
    """The device every function of the test is built for (the default device)."""
    monkeypatch.setenv("GRAPHC_DEVICE", request.param)
    return request.param


def _rnn_numpy(xs: np.ndarray, w: np.ndarray, h0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    h, ys = h0, []
    for x in xs:
        h = np.tanh(x @ w + h)
        ys.append(h.sum())
    return h, np.array(ys)


# --- cond --------------------------------------------------------------------------------


def test_cond_runs_the_branch_the_predicate_picks() -> None:
    x = gc.placeholder((3,), "float64", name="x")
    p = gc.placeholder((), "bool", name="p")
    out = gc.cond(p, lambda a: (a * 2.0, {"s": a.sum()}), lambda a: (a - 1.0, {"s": a.max()}), x)
    f = gc.function([p, x], [out[0], out[1]["s"]])
    xv = np.array([1.0, 5.0, -2.0])
    doubled, total = f(True, xv)
    np.testing.assert_array_equal(doubled, xv * 2)
    assert total == xv.sum()
    shifted, largest = f(False, xv)
    np.testing.assert_array_equal(shifted, xv - 1)
    assert largest == xv.max()


def test_cond_runs_only_the_branch_taken() -> None:
    # the false branch reads index i of x, out of range for i = 5: it must not run when p holds
    x = gc.placeholder((3,), "float64", name="x")
    i = gc.placeholder((), "int64", name="i")
    p = gc.placeholder((), "bool", name="p")
    out = gc.cond(p, lambda a, k: a.sum(), lambda a, k: gc.take(a, k), x, i)
    f = gc.function([p, x, i], out)
    assert f(True, np.ones(3), np.int64(5)) == 3.0
    with pytest.raises(IndexError):
        f(False, np.ones(3), np.int64(5))
    assert f(False, np.arange(3.0), np.int64(2)) == 2.0


def test_cond_captures_outer_values_as_operands() -> None:
    x = gc.placeholder((2,), "float64", name="x")
    w = gc.Variable(np.array([3.0, 4.0]), name="w")
    p = gc.placeholder((), "bool", name="p")
    y = gc.cond(p, lambda: x * w, lambda: x + 1.0)
    node = y.node
    assert node.op == "cond"
    assert len(node.inputs) == 3  # pred, x and w: what the branches read is explicit
    f = gc.function([p, x], [y, *gc.grad(gc.sum(y * y), [x, w])])
    value, gx, gw = f(True, np.array([1.0, 2.0]))
    np.testing.assert_allclose(value, [3.0, 8.0])
    np.testing.assert_allclose(gx, 2 * np.array([3.0, 8.0]) * [3.0, 4.0])
    np.testing.assert_allclose(gw, 2 * np.array([3.0, 8.0]) * [1.0, 2.0])
    value, gx, gw = f(False, np.array([1.0, 2.0]))
    np.testing.assert_allclose(gx, 2 * np.array([2.0, 3.0]))
    np.testing.assert_array_equal(gw, [0.0, 0.0])


@pytest.mark.parametrize("taken", [True, False])
def test_cond_gradients_match_finite_differences(taken: bool, rng) -> None:
    def build(a, b):
        return gc.cond(
            gc.constant(taken),
            lambda u, v: (gc.sin(u) * v, gc.exp(v).sum()),
            lambda u, v: (u * u + v, (u * v).sum()),
            a,
            b,
        )

    arrays = [rng.standard_normal(4), rng.standard_normal(4)]
    check_gradients(build, arrays, rng)
    check_second_order(build, arrays, rng)


def test_cond_errors_name_both_branches() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    p = gc.placeholder((), "bool", name="p")
    with pytest.raises(DTypeError, match="pred must be a bool"):
        gc.cond(x.sum(), lambda a: a, lambda a: a, x)
    with pytest.raises(ShapeError, match="pred must be a bool scalar"):
        gc.cond(x > 0, lambda a: a, lambda a: a, x)
    with pytest.raises(DTypeError, match="true_fn and false_fn"):
        gc.cond(p, lambda a: a, lambda a: gc.cast(a, "float64"), x)
    with pytest.raises(ShapeError, match="true_fn and false_fn"):
        gc.cond(p, lambda a: a, lambda a: a[:2], x)
    with pytest.raises(ShapeError, match="true_fn returns a tuple of 2, false_fn a Tensor"):
        gc.cond(p, lambda a: (a, a), lambda a: a, x)
    with pytest.raises(ArgumentTypeError, match="callable"):
        gc.cond(p, 3, lambda a: a, x)


# --- scan --------------------------------------------------------------------------------


def test_scan_matches_a_python_loop_with_a_run_time_length(rng) -> None:
    x = gc.placeholder((None, 3), "float64", name="x")
    w = gc.Variable(rng.standard_normal((3, 3)) / 3, name="w")

    def step(h, xt):
        h = gc.tanh(xt @ w + h)
        return h, h.sum()

    final, ys = gc.scan(step, np.zeros(3), x)
    f = gc.function([x], [final, ys])
    for steps in (5, 1):
        xv = rng.standard_normal((steps, 3))
        expected_h, expected_ys = _rnn_numpy(xv, w.value, np.zeros(3))
        got_h, got_ys = f(xv)
        np.testing.assert_allclose(got_h, expected_h, rtol=1e-12)
        np.testing.assert_allclose(got_ys, expected_ys, rtol=1e-12)


def test_scan_of_zero_steps_returns_the_initial_carry_and_empty_ys() -> None:
    x = gc.placeholder((None, 2), "float32", name="x")
    final, ys = gc.scan(lambda c, xt: (c + xt, xt * 2.0), gc.constant(np.ones(2, np.float32)), x)
    f = gc.function([x], [final, ys])
    got_final, got_ys = f(np.zeros((0, 2), np.float32))
    np.testing.assert_array_equal(got_final, [1.0, 1.0])
    assert got_ys.shape == (0, 2)
    assert got_ys.dtype == np.float32


def test_scan_structures_reverse_and_length() -> None:
    xs = {"a": np.arange(4.0), "b": np.arange(4.0) * 10}

    def step(carry, x):
        total, count = carry
        return (total + x["a"] * x["b"], count + 1), [total, x["b"]]

    (total, count), (before, b) = gc.scan(step, (0.0, np.int64(0)), xs, reverse=True)
    f = gc.function([], [total, count, before, b])
    got_total, got_count, got_before, got_b = f()
    assert got_total == sum(a * b for a, b in zip(xs["a"], xs["b"], strict=True))
    assert got_count == 4
    # reverse: the last step runs first, and ys[t] still belongs to xs[t]
    np.testing.assert_array_equal(got_b, xs["b"])
    np.testing.assert_array_equal(got_before, [140.0, 130.0, 90.0, 0.0])

    final, ys = gc.scan(lambda c, _: (c * 2.0, None), 1.0, length=5)
    assert ys is None
    assert gc.function([], final)() == 32.0


def test_scan_gradients_with_respect_to_init_xs_and_captures(rng) -> None:
    w0 = rng.standard_normal((3, 3)) / 2

    def build(h0, xs, w):
        def step(h, xt):
            h = gc.tanh(xt @ w + h * 0.5)
            return h, gc.sin(h).sum()

        return gc.scan(step, h0, xs)

    arrays = [rng.standard_normal(3), rng.standard_normal((4, 3)), w0]
    check_gradients(build, arrays, rng)


@pytest.mark.parametrize("checkpoint", [False, True])
def test_scan_second_order_gradients(checkpoint: bool, rng) -> None:
    def build(h0, xs):
        return gc.scan(lambda h, x: (gc.tanh(h * x + 0.3), h * h), h0, xs, checkpoint=checkpoint)

    arrays = [rng.standard_normal(2), rng.standard_normal((3, 2))]
    check_gradients(build, arrays, rng)
    check_second_order(build, arrays, rng)


def test_checkpoint_stores_only_the_carries(rng) -> None:
    def stacked(checkpoint: bool) -> int:
        xs = gc.placeholder((5, 3), "float64", name="xs")
        final, _ = gc.scan(
            lambda h, x: (gc.tanh(gc.exp(h) * x), None), np.zeros(3), xs, checkpoint=checkpoint
        )
        (gx,) = gc.grad(final.sum(), [xs])
        f = gc.function([xs], gx, optimize=())
        scans = [n for n in f.graph.nodes if n.op == "scan"]
        forward = max(scans, key=lambda n: len(n.types))
        return len(forward.types)

    # forward: the carry; the carries; unless checkpointing, the step's values
    assert stacked(checkpoint=True) == 2
    assert stacked(checkpoint=False) > 2


def test_nested_scans_and_a_cond_inside_a_scan(rng) -> None:
    def build(xs, v):
        def outer(c, row):
            inner, _ = gc.scan(lambda a, e: (a * gc.cos(e) + v, None), c, row)
            picked = gc.cond(inner.sum() > 0, lambda u: u * u, lambda u: -u, inner)
            return picked, inner

        return gc.scan(outer, gc.zeros_like(v), xs)

    arrays = [rng.standard_normal((3, 4)), rng.standard_normal(())]
    check_gradients(build, arrays, rng)
    check_second_order(build, arrays, rng)


def test_scan_errors() -> None:
    x = gc.placeholder((4, 2), "float32", name="x")
    init = gc.constant(np.zeros(2, np.float32))
    with pytest.raises(DTypeError, match="new carry"):
        gc.scan(lambda c, xt: (gc.cast(c + xt, "float64"), None), init, x)
    with pytest.raises(ShapeError, match="new carry"):
        gc.scan(lambda c, xt: (gc.concatenate([c, xt]), None), init, x)
    with pytest.raises(ShapeError, match="returns a carry of a tuple"):
        gc.scan(lambda c, xt: ((c, c), None), init, x)
    with pytest.raises(ArgumentTypeError, match="pair"):
        gc.scan(lambda c, xt: c, init, x)
    with pytest.raises(ArgumentError, match="give xs or a length"):
        gc.scan(lambda c, xt: (c, None), init)
    with pytest.raises(ShapeError, match="needs an axis"):
        gc.scan(lambda c, xt: (c, None), init, gc.constant(np.float32(1)))
    with pytest.raises(ShapeError, match="disagree"):
        gc.scan(lambda c, xt: (c, None), init, [x, gc.constant(np.zeros((3, 2), np.float32))])
    with pytest.raises(ArgumentError, match="create it outside"):
        gc.scan(lambda c, xt: (c + gc.Variable(np.zeros(2, np.float32)), None), init, x)


def test_scan_lengths_known_only_at_run_time_must_agree() -> None:
    a = gc.placeholder((None,), "float64", name="a")
    b = gc.placeholder((None,), "float64", name="b")
    final, _ = gc.scan(lambda c, x: (c + x[0] * x[1], None), 0.0, [a, b])
    f = gc.function([a, b], final)
    assert f(np.ones(3), np.full(3, 2.0)) == 6.0
    with pytest.raises(InputError, match=r"disagree|cannot broadcast sizes 3 and 4"):
        f(np.ones(3), np.ones(4))


# --- while_loop and fori_loop ------------------------------------------------------------


def _newton_sqrt(a):
    def body(state):
        x, _ = state
        new = 0.5 * (x + a / x)
        return new, gc.abs(new - x)

    x, _ = gc.while_loop(
        lambda s: gc.max(s[1]) > 1e-12, body, (a, gc.ones_like(a)), max_iterations=50
    )
    return x


def test_while_loop_matches_a_python_loop() -> None:
    n = gc.placeholder((), "int64", name="n")
    total, i = gc.while_loop(lambda s: s[1] < n, lambda s: (s[0] + s[1], s[1] + 1), (0, 0))
    f = gc.function([n], [total, i])
    assert [int(v) for v in f(np.int64(10))] == [45, 10]
    assert [int(v) for v in f(np.int64(-3))] == [0, 0]


def test_while_loop_stops_at_max_iterations() -> None:
    count = gc.while_loop(lambda c: c >= 0, lambda c: c + 1, 0, max_iterations=7)
    assert gc.function([], count)() == 7


def test_a_bounded_while_loop_is_differentiable() -> None:
    a = gc.placeholder((3,), "float64", name="a")
    root = _newton_sqrt(a)
    (da,) = gc.grad(root.sum(), [a])
    f = gc.function([a], [root, da])
    av = np.array([2.0, 9.0, 0.25])
    got, grad = f(av)
    np.testing.assert_allclose(got, np.sqrt(av), rtol=1e-12)
    np.testing.assert_allclose(grad, 0.5 / np.sqrt(av), rtol=1e-9)


def test_a_bounded_while_loop_matches_finite_differences(rng) -> None:
    def build(a, b):
        return gc.while_loop(
            lambda s: s[1] < 4, lambda s: (gc.sin(s[0]) * b + a, s[1] + 1), (a, 0), max_iterations=6
        )[0]

    check_gradients(build, [rng.standard_normal(3), rng.standard_normal(3)], rng)


def test_an_unbounded_while_loop_refuses_its_gradient() -> None:
    a = gc.placeholder((), "float64", name="a")
    x = gc.while_loop(lambda v: v < 10.0, lambda v: v * 2.0, a)
    with pytest.raises(gc.GraphcError, match="max_iterations"):
        gc.grad(x, [a])


def test_while_loop_errors() -> None:
    with pytest.raises(DTypeError, match="bool scalar"):
        gc.while_loop(lambda c: c, lambda c: c + 1.0, 0.0)
    with pytest.raises(ShapeError, match="body_fn returns a tuple"):
        gc.while_loop(lambda c: c < 1.0, lambda c: (c, c), 0.0)
    with pytest.raises(DTypeError, match="new carry"):
        gc.while_loop(lambda c: c < 1, lambda c: c + 0.5, 0)
    with pytest.raises(ArgumentError, match="max_iterations"):
        gc.while_loop(lambda c: c < 1, lambda c: c + 1, 0, max_iterations=-1)


def test_fori_loop_with_int_and_tensor_bounds(rng) -> None:
    x = gc.placeholder((3,), "float64", name="x")
    y = gc.fori_loop(1, 4, lambda i, c: c * gc.cast(i, "float64") + 1.0, x)
    (gx,) = gc.grad(y.sum(), [x])
    n = gc.placeholder((), "int32", name="n")
    z = gc.fori_loop(0, n, lambda i, c: c + gc.cast(i, "float64"), x)
    f = gc.function([x, n], [y, gx, z])
    xv = rng.standard_normal(3)
    expected = xv
    for i in range(1, 4):
        expected = expected * i + 1
    got_y, got_gx, got_z = f(xv, np.int32(5))
    np.testing.assert_allclose(got_y, expected)
    np.testing.assert_allclose(got_gx, np.full(3, 6.0))
    np.testing.assert_allclose(got_z, xv + 10)


# --- the IR ------------------------------------------------------------------------------


def test_bodies_print_as_indented_regions_and_verify() -> None:
    from graphc.verify import verify

    x = gc.placeholder((None,), "float32", name="x")
    final, _ = gc.scan(lambda c, e: (c + e, None), gc.constant(np.float32(0)), x)
    f = gc.function([x], final, optimize=())
    text = str(f.graph)
    assert "body=@body" in text
    assert "    @body graph(" in text
    assert "      %2 = add" in text or "add" in text.split("@body graph(")[1]
    verify(f.graph)


def test_the_verifier_refuses_a_body_with_a_variable() -> None:
    import dataclasses

    from graphc.errors import VerifyError
    from graphc.verify import verify

    x = gc.placeholder((2,), "float64", name="x")
    final, _ = gc.scan(lambda c, e: (c + e, None), np.zeros(2), gc.stack([x, x]))
    f = gc.function([x], final, optimize=())
    graph = f.graph
    node = next(n for n in graph.nodes if n.op == "scan")
    body = node.attrs["body"]
    w = gc.Variable(np.zeros(2), name="inside")
    rogue = dataclasses.replace(body, nodes=(*body.nodes, dataclasses.replace(w.node, id=99)))
    from graphc.registry import Attrs

    bad = dataclasses.replace(node, attrs=Attrs({**node.attrs, "body": rogue}))
    broken = graph.replace(nodes=tuple(bad if n.id == node.id else n for n in graph.nodes))
    with pytest.raises(VerifyError, match="variable"):
        verify(broken)


def test_the_signatures_are_api_mds() -> None:
    import inspect

    def names(fn) -> list[str]:
        return list(inspect.signature(fn).parameters)

    assert names(gc.cond) == ["pred", "true_fn", "false_fn", "operands"]
    assert names(gc.scan) == ["fn", "init", "xs", "length", "reverse", "checkpoint"]
    assert names(gc.while_loop) == ["cond_fn", "body_fn", "init", "max_iterations"]
    assert names(gc.fori_loop) == ["lower", "upper", "body_fn", "init"]
    defaults = inspect.signature(gc.scan).parameters
    assert [defaults[k].default for k in ("xs", "length", "reverse", "checkpoint")] == [
        None,
        None,
        False,
        False,
    ]


def test_fold_simplify_cse_and_dce_run_inside_bodies(rng) -> None:
    x = gc.placeholder((None, 3), "float64", name="x")

    def step(h, xt):
        unused = gc.sin(xt)  # noqa: F841 (dead: never part of the body)
        a = gc.exp(xt) * 1.0 + 0.0  # simplify: exp(xt)
        b = gc.exp(xt)  # cse: the same exp
        k = gc.constant(2.0) * gc.constant(3.0)  # fold: 6
        return h + a + b * k, None

    final, _ = gc.scan(step, np.zeros(3), x)
    f = gc.function([x], final, optimize=("fold", "simplify", "cse", "dce"))
    (scan,) = [n for n in f.graph.nodes if n.op == "scan"]
    ops = [n.op for n in scan.attrs["body"].nodes]
    assert ops.count("exp") == 1
    assert "sin" not in ops
    assert ops.count("mul") == 1  # b * 6 only
    constants = [n for n in scan.attrs["body"].nodes if n.op == "constant"]
    assert [float(c.attrs["value"].array) for c in constants] == [6.0]
    assert "bodies" in str(f.report())
    xv = rng.standard_normal((4, 3))
    np.testing.assert_allclose(f(xv), (np.exp(xv) * 7).sum(0), rtol=1e-12)


def test_fuse_runs_inside_bodies(rng) -> None:
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.Variable(rng.standard_normal((4, 4)).astype(np.float32), name="w")

    def step(h, xt):
        z = xt @ w + h
        return gc.sigmoid(z) * gc.tanh(z) + 0.5 * h, gc.softmax(z, axis=-1)

    final, ys = gc.scan(step, np.zeros(4, np.float32), x)
    outputs = [final, ys, *gc.grad(final.sum() + ys[:, 0].sum(), [x, w])]
    f = gc.function([x], outputs)
    (scan, *_) = [n for n in f.graph.nodes if n.op == "scan"]
    assert any(n.op == "fused" for n in scan.attrs["body"].nodes)
    plain = gc.function([x], outputs, device="reference", optimize=False)
    xv = rng.standard_normal((5, 4)).astype(np.float32)
    for got, want in zip(f(xv), plain(xv), strict=True):
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)
