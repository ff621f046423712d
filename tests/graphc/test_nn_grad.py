"""Gradients of the nn primitives: the VJP ops' type rules and references, adjoint
identities, finite differences, and graphc.grad end to end (second order included).

The VJP primitives (conv2d_grad_input, conv2d_grad_weight, max_pool2d_grad and
avg_pool2d_grad) are checked against the forward references through the adjoint
identity <op(x), u> == <x, vjp(u)>, which holds for every x and u exactly when vjp is
the transpose of op; max pooling, which is not linear, by finite differences.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from opcall import infer, run_op

import graphc as gc
from graphc import dtypes
from graphc.autodiff import RuleAPI
from graphc.errors import DTypeError, GraphcError, ShapeError
from graphc.registry import REGISTRY
from graphc.tensor import build1
from graphc.types import Sym, TensorType

F64 = dtypes.float64
F32 = dtypes.float32


def inner(a: np.ndarray, b: np.ndarray) -> float:
    assert a.shape == b.shape
    return float(np.sum(a * b))


def normal(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    return rng.standard_normal(shape)


def distinct(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Values at least 0.1 apart, so that every window's maximum is unique and stays the
    maximum under a perturbation of 1e-6."""
    size = int(np.prod(shape))
    return (rng.permutation(size).reshape(shape) * 0.1 + rng.uniform(0, 0.01, shape)) - size / 20


def conv_attrs(stride=(1, 1), padding=((0, 0), (0, 0)), dilation=(1, 1), groups=1) -> dict:
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def transpose_attrs(
    stride=(1, 1), padding=(0, 0), output_padding=(0, 0), dilation=(1, 1), groups=1
) -> dict:
    return {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }


def pool_attrs(kernel, stride, padding=(0, 0), ceil_mode=False, **extra: Any) -> dict:
    return {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode, **extra}


# (x shape, w shape, stride, padding, dilation, groups); several drop trailing input
# rows or columns (the floor in conv2d's size), which must get zero gradient
CONV2D_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 3, 6, 7), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 3, 7, 6), (2, 3, 2, 3), (2, 1), ((0, 2), (1, 0)), (1, 1), 1),  # drops a row
    ((1, 2, 9, 8), (3, 2, 3, 2), (2, 3), ((2, 1), (0, 3)), (2, 3), 1),  # drops rows/cols
    ((2, 4, 6, 6), (6, 2, 3, 1), (1, 1), ((1, 0), (0, 1)), (1, 1), 2),
    ((2, 4, 8, 7), (4, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 4),  # depthwise
    ((1, 3, 7, 7), (6, 1, 2, 3), (1, 2), ((0, 1), (2, 0)), (2, 1), 3),
    ((2, 6, 5, 9), (4, 3, 1, 4), (3, 2), ((3, 0), (0, 0)), (1, 2), 2),
    ((1, 2, 3, 3), (1, 2, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # one output pixel
    ((2, 2, 4, 5), (3, 2, 1, 1), (2, 3), ((0, 0), (0, 0)), (1, 1), 1),  # 1x1, drops cols
    ((1, 1, 2, 2), (1, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # kernel > input
    ((0, 2, 4, 4), (2, 2, 2, 2), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # empty batch
]

# (x shape, w shape, stride, padding, output_padding, dilation, groups)
CONV_TRANSPOSE_CASES = [
    ((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((2, 3, 4, 5), (3, 2, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1),
    ((2, 2, 3, 4), (2, 3, 2, 3), (3, 1), (0, 1), (2, 0), (1, 1), 1),
    ((1, 3, 4, 3), (3, 2, 3, 2), (1, 2), (2, 0), (0, 1), (2, 1), 1),
    ((2, 4, 3, 3), (4, 3, 3, 2), (2, 1), (1, 0), (1, 0), (1, 2), 2),  # op >= stride
    ((2, 4, 5, 4), (4, 1, 3, 3), (2, 2), (1, 1), (0, 1), (1, 1), 4),  # depthwise
    ((1, 3, 3, 4), (3, 2, 2, 3), (1, 1), (0, 1), (1, 0), (2, 2), 3),  # op >= stride, p = 0
    ((2, 6, 2, 3), (6, 2, 1, 4), (3, 2), (0, 1), (2, 1), (1, 1), 3),
    ((1, 2, 1, 1), (2, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),  # one input pixel
    ((1, 2, 3, 3), (2, 1, 3, 3), (1, 2), (2, 1), (2, 1), (3, 2), 1),  # op 2 at stride 1
    ((1, 2, 3, 4), (2, 2, 2, 2), (2, 1), (3, 1), (1, 1), (3, 2), 2),  # op = stride
    ((1, 2, 3, 4), (2, 2, 2, 2), (2, 1), (1, 1), (2, 1), (3, 2), 2),  # op = stride > padding
]

# (x shape, kernel, stride, padding, ceil_mode)
POOL_CASES = [
    ((1, 1, 4, 4), (2, 2), (2, 2), (0, 0), False),
    ((2, 3, 5, 7), (3, 3), (1, 1), (1, 1), False),  # overlapping windows
    ((2, 2, 5, 6), (3, 2), (2, 2), (1, 0), False),  # drops a row
    ((1, 2, 5, 6), (3, 2), (2, 2), (1, 1), True),  # ceil_mode: windows past the padding
    ((2, 1, 7, 5), (2, 3), (3, 2), (0, 1), True),
    ((1, 2, 6, 5), (3, 3), (2, 3), (1, 1), True),
    ((1, 1, 1, 1), (1, 1), (1, 1), (0, 0), False),
    ((1, 1, 2, 3), (2, 3), (1, 1), (1, 1), True),
]


# ------------------------------------------------------------- type rules and references


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV2D_CASES
)
def test_conv2d_vjp_types_match_references(x_shape, w_shape, stride, padding, dilation, groups):
    rng = np.random.default_rng(0)
    attrs = conv_attrs(stride, padding, dilation, groups)
    for dtype in (np.float32, np.float64):
        x, w = normal(rng, x_shape).astype(dtype), normal(rng, w_shape).astype(dtype)
        g = normal(rng, run_op("conv2d", [x, w], attrs).shape).astype(dtype)
        gx = run_op("conv2d_grad_input", [g, w, x], attrs)
        gw = run_op("conv2d_grad_weight", [x, g, w], attrs)
        assert (gx.shape, gx.dtype, gw.shape, gw.dtype) == (x.shape, dtype, w.shape, dtype)
    # `like` supplies only a shape: its dtype does not matter
    like = np.zeros(x_shape, np.int32)
    assert run_op("conv2d_grad_input", [g, w, like], attrs).dtype == np.float64


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "ceil_mode"), POOL_CASES)
def test_pool_vjp_types_match_references(x_shape, kernel, stride, padding, ceil_mode):
    rng = np.random.default_rng(1)
    attrs = pool_attrs(kernel, stride, padding, ceil_mode)
    for dtype in (np.float32, np.float64):
        x = normal(rng, x_shape).astype(dtype)
        g = normal(rng, run_op("max_pool2d", [x], attrs).shape).astype(dtype)
        gx = run_op("max_pool2d_grad", [x, g], attrs)
        assert (gx.shape, gx.dtype) == (x.shape, dtype)
        for include in (True, False):
            gx = run_op("avg_pool2d_grad", [g, x], {**attrs, "count_include_pad": include})
            assert (gx.shape, gx.dtype) == (x.shape, dtype)


def test_conv2d_vjp_types_with_unknown_sizes():
    n, h, width = Sym("n"), Sym("h"), Sym("w")
    attrs = conv_attrs((2, 2), ((1, 0), (1, 1)), (1, 1), 2)
    x = TensorType(F32, (n, 4, h, width))
    w = TensorType(F32, (6, 2, 3, 3))
    y = infer("conv2d", [x, w], attrs)
    assert infer("conv2d_grad_input", [y, w, x], attrs) == x
    assert infer("conv2d_grad_weight", [x, y, w], attrs) == w
    # a g whose sizes are other unknowns passes: the run-time rule compares the numbers
    g = TensorType(F32, (Sym("m"), 6, Sym("a"), Sym("b")))
    assert infer("conv2d_grad_input", [g, w, x], attrs) == x
    # an unknown kernel size
    w_unknown = TensorType(F32, (6, 2, Sym("k"), 3))
    y = infer("conv2d", [x, w_unknown], attrs)
    assert infer("conv2d_grad_weight", [x, y, w_unknown], attrs) == w_unknown
    # known sizes that conv2d cannot have produced fail even next to unknown ones
    with pytest.raises(ShapeError, match="conv2d's output"):
        infer("conv2d_grad_input", [TensorType(F32, (n, 5, Sym("a"), 4)), w, x], attrs)
    known_x = TensorType(F32, (n, 4, 8, 8))  # output 4x4
    with pytest.raises(ShapeError, match="conv2d's output"):
        infer("conv2d_grad_weight", [known_x, TensorType(F32, (n, 6, 4, 5)), w], attrs)


def test_pool_vjp_types_with_unknown_sizes():
    x = TensorType(F64, (Sym("n"), 3, Sym("h"), 9))
    attrs = pool_attrs((3, 3), (2, 2), (1, 1), True)
    y = infer("max_pool2d", [x], attrs)
    assert isinstance(y.shape[2], Sym)
    assert y.shape[3] == 5
    assert infer("max_pool2d_grad", [x, y], attrs) == x
    avg = {**attrs, "count_include_pad": False}
    assert infer("avg_pool2d_grad", [y, x], avg) == x
    with pytest.raises(ShapeError, match="max_pool2d's output"):
        infer("max_pool2d_grad", [x, y.with_shape((*y.shape[:3], 4))], attrs)
    with pytest.raises(ShapeError, match="avg_pool2d's output"):
        infer("avg_pool2d_grad", [y.with_shape((*y.shape[:3], 6)), x], avg)


def test_unknown_sizes_are_checked_at_run_time():
    g = gc.placeholder((None, 3, None, None), "float64", name="g")
    w = gc.placeholder((3, 2, 3, 3), "float64", name="w")
    x = gc.placeholder((None, 2, None, None), "float64", name="x")
    attrs = conv_attrs(stride=(2, 2))
    f = gc.function([g, w, x], build1("conv2d_grad_input", [g, w, x], attrs))
    result = f(np.ones((1, 3, 2, 2)), np.ones((3, 2, 3, 3)), np.ones((1, 2, 6, 5)))
    assert result.shape == (1, 2, 6, 5)
    with pytest.raises(gc.InputError, match="conv2d's output"):
        f(np.ones((1, 3, 2, 3)), np.ones((3, 2, 3, 3)), np.ones((1, 2, 6, 5)))


def test_vjp_type_errors():
    attrs = conv_attrs()
    x, w = TensorType(F64, (1, 2, 5, 5)), TensorType(F64, (3, 2, 3, 3))
    g = TensorType(F64, (1, 3, 3, 3))
    with pytest.raises(DTypeError, match="one dtype"):
        infer("conv2d_grad_input", [g.with_dtype(F32), w, x], attrs)
    with pytest.raises(DTypeError, match="float32 or float64"):
        infer("conv2d_grad_weight", [x.with_dtype(dtypes.int64), g, w], attrs)
    with pytest.raises(ShapeError, match="4-D"):
        infer("conv2d_grad_input", [g.with_shape((3, 3, 3)), w, x], attrs)
    with pytest.raises(ShapeError, match="4-D"):
        infer("conv2d_grad_weight", [x, g, w.with_shape((3, 2, 9))], attrs)
    with pytest.raises(ShapeError, match="conv2d's output"):
        infer("conv2d_grad_input", [g.with_shape((1, 3, 3, 4)), w, x], attrs)
    with pytest.raises(ShapeError, match="conv2d's output"):
        infer("conv2d_grad_weight", [x, g.with_shape((2, 3, 3, 3)), w], attrs)
    with pytest.raises(ShapeError, match=r"w\.shape"):  # the forward rule's own checks
        infer("conv2d_grad_input", [g, w, x.with_shape((1, 4, 5, 5))], attrs)
    pool = pool_attrs((2, 2), (2, 2))
    with pytest.raises(ShapeError, match="max_pool2d's output"):
        infer("max_pool2d_grad", [x, TensorType(F64, (1, 2, 3, 2))], pool)
    with pytest.raises(DTypeError, match="one dtype"):
        infer("max_pool2d_grad", [x, TensorType(F32, (1, 2, 2, 2))], pool)
    with pytest.raises(ShapeError, match="at most half"):
        infer("max_pool2d_grad", [x, TensorType(F64, (1, 2, 3, 3))], {**pool, "padding": (2, 2)})
    avg = {**pool, "count_include_pad": True}
    with pytest.raises(DTypeError, match="float32 or float64"):
        infer("avg_pool2d_grad", [TensorType(dtypes.int32, (1, 2, 2, 2)), x], avg)
    with pytest.raises(ShapeError, match="avg_pool2d's output"):
        infer("avg_pool2d_grad", [TensorType(F64, (1, 2, 2, 2)), x.with_shape((1, 2, 6, 6))], avg)
    # the references run the same rules on the concrete shapes
    with pytest.raises(ShapeError, match="conv2d's output"):
        REGISTRY["conv2d_grad_input"].reference(
            np.zeros((1, 3, 3, 4)), np.zeros((3, 2, 3, 3)), np.zeros((1, 2, 5, 5)), **attrs
        )


def test_conv2d_grad_input_gives_dropped_rows_zero():
    """stride 2 over 6 rows with a 3-row kernel reads rows 0..4: row 5 gets nothing."""
    rng = np.random.default_rng(2)
    x, w = normal(rng, (1, 1, 6, 6)), normal(rng, (1, 1, 3, 3))
    attrs = conv_attrs(stride=(2, 2))
    g = normal(rng, run_op("conv2d", [x, w], attrs).shape)
    gx = run_op("conv2d_grad_input", [g, w, x], attrs)
    assert np.all(gx[:, :, 5, :] == 0)
    assert np.all(gx[:, :, :, 5] == 0)
    assert np.all(gx[:, :, :5, :5] != 0)


def test_max_pool2d_grad_picks_the_first_maximum():
    """Ties go to the first position of the window (row-major), as PyTorch does; overlapping
    windows add up; padding never receives anything, even where the window is all -inf."""
    x = np.array([[[[1.0, 3.0, 3.0], [3.0, 0.0, 2.0], [-np.inf, -np.inf, 1.0]]]])
    attrs = pool_attrs((2, 2), (1, 1))
    g = np.array([[[[1.0, 10.0], [100.0, 1000.0]]]])
    gx = run_op("max_pool2d_grad", [x, g], attrs)
    expected = np.array([[[[0.0, 11.0, 0.0], [100.0, 0.0, 1000.0], [0.0, 0.0, 0.0]]]])
    np.testing.assert_array_equal(gx, expected)
    x = np.full((1, 1, 3, 3), -np.inf)
    gx = run_op("max_pool2d_grad", [x, np.ones((1, 1, 2, 2))], pool_attrs((2, 2), (2, 2), (1, 1)))
    # windows (padded) [-1,0]x[-1,0], [-1,0]x[1,2], ...: each gives 1 to its first real element
    np.testing.assert_array_equal(gx[0, 0], [[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 0.0]])


# ------------------------------------------------------------------ adjoint identities


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV2D_CASES
)
def test_conv2d_adjoint_identities(x_shape, w_shape, stride, padding, dilation, groups):
    rng = np.random.default_rng(3)
    attrs = conv_attrs(stride, padding, dilation, groups)
    x, w = normal(rng, x_shape), normal(rng, w_shape)
    y = run_op("conv2d", [x, w], attrs)
    u = normal(rng, y.shape)
    gx = run_op("conv2d_grad_input", [u, w, x], attrs)
    gw = run_op("conv2d_grad_weight", [x, u, w], attrs)
    assert inner(y, u) == pytest.approx(inner(x, gx), rel=1e-12, abs=1e-12)
    assert inner(y, u) == pytest.approx(inner(w, gw), rel=1e-12, abs=1e-12)


def rule_vjp(name: str, arrays: list[np.ndarray], attrs: dict, u: np.ndarray) -> list[Any]:
    """The op's grad rule, built on placeholders and evaluated by the reference executor."""
    inputs = [gc.placeholder(a.shape, a.dtype) for a in arrays]
    out = REGISTRY[name]
    y = build1(name, inputs, attrs)
    g = gc.placeholder(u.shape, u.dtype)
    grads = out.vjp(RuleAPI(y.builder), out.check_attrs(attrs), inputs, [y], [g])
    assert len(grads) == len(arrays)
    live = [t for t in grads if t is not None]
    results = iter(gc.function([*inputs, g], live, device="reference")(*arrays, u))
    return [None if t is None else next(results) for t in grads]


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "output_padding", "dilation", "groups"),
    CONV_TRANSPOSE_CASES,
)
def test_conv_transpose2d_rule_is_the_adjoint(
    x_shape, w_shape, stride, padding, output_padding, dilation, groups
):
    rng = np.random.default_rng(4)
    attrs = transpose_attrs(stride, padding, output_padding, dilation, groups)
    x, w = normal(rng, x_shape), normal(rng, w_shape)
    y = run_op("conv_transpose2d", [x, w], attrs)
    u = normal(rng, y.shape)
    gx, gw = rule_vjp("conv_transpose2d", [x, w], attrs, u)
    assert (gx.shape, gw.shape) == (x.shape, w.shape)
    assert inner(y, u) == pytest.approx(inner(x, gx), rel=1e-12, abs=1e-12)
    assert inner(y, u) == pytest.approx(inner(w, gw), rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "ceil_mode"), POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_avg_pool2d_adjoint_identity(
    x_shape, kernel, stride, padding, ceil_mode, count_include_pad
):
    rng = np.random.default_rng(5)
    attrs = pool_attrs(kernel, stride, padding, ceil_mode, count_include_pad=count_include_pad)
    x = normal(rng, x_shape)
    y = run_op("avg_pool2d", [x], attrs)
    u = normal(rng, y.shape)
    gx = run_op("avg_pool2d_grad", [u, x], attrs)
    assert inner(y, u) == pytest.approx(inner(x, gx), rel=1e-12, abs=1e-12)
    # and the rules say the same
    (rule_gx,) = rule_vjp("avg_pool2d", [x], attrs, u)
    np.testing.assert_allclose(rule_gx, gx, rtol=1e-14, atol=1e-14)
    v = normal(rng, x.shape)  # avg_pool2d_grad is linear: its own VJP is avg_pool2d
    rule_gu, like_grad = rule_vjp("avg_pool2d_grad", [u, x], attrs, v)
    assert like_grad is None
    assert inner(gx, v) == pytest.approx(inner(u, rule_gu), rel=1e-12, abs=1e-12)


# ------------------------------------------------------------------ finite differences

EPS = 1e-6


def directional(f, arrays: list[np.ndarray], directions: list[np.ndarray]) -> float:
    """The central difference of f along `directions`."""
    plus = f(*(a + EPS * d for a, d in zip(arrays, directions, strict=True)))
    minus = f(*(a - EPS * d for a, d in zip(arrays, directions, strict=True)))
    return (plus - minus) / (2 * EPS)


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "ceil_mode"), POOL_CASES)
def test_max_pool2d_grad_matches_finite_differences(x_shape, kernel, stride, padding, ceil_mode):
    rng = np.random.default_rng(6)
    attrs = pool_attrs(kernel, stride, padding, ceil_mode)
    x = distinct(rng, x_shape)
    r = normal(rng, run_op("max_pool2d", [x], attrs).shape)
    gx = run_op("max_pool2d_grad", [x, r], attrs)
    for _ in range(3):
        d = normal(rng, x.shape)
        fd = directional(lambda a: inner(run_op("max_pool2d", [a], attrs), r), [x], [d])
        assert fd == pytest.approx(inner(gx, d), rel=1e-7, abs=1e-8)
    (rule_gx,) = rule_vjp("max_pool2d", [x], attrs, r)
    np.testing.assert_array_equal(rule_gx, gx)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV2D_CASES[:10]
)
def test_conv2d_vjp_rules_match_finite_differences(
    x_shape, w_shape, stride, padding, dilation, groups
):
    """The gradient rules of conv2d_grad_input(g, w) and conv2d_grad_weight(x, g), against
    central differences of <v, vjp(...)> in a random direction."""
    rng = np.random.default_rng(7)
    attrs = conv_attrs(stride, padding, dilation, groups)
    x, w = normal(rng, x_shape), normal(rng, w_shape)
    g = normal(rng, run_op("conv2d", [x, w], attrs).shape)

    v = normal(rng, x.shape)
    dg, dw_g, like = rule_vjp("conv2d_grad_input", [g, w, x], attrs, v)
    assert like is None
    d_g, d_w = normal(rng, g.shape), normal(rng, w.shape)
    fd = directional(
        lambda g_, w_: inner(run_op("conv2d_grad_input", [g_, w_, x], attrs), v), [g, w], [d_g, d_w]
    )
    assert fd == pytest.approx(inner(dg, d_g) + inner(dw_g, d_w), rel=1e-7, abs=1e-8)

    v = normal(rng, w.shape)
    dx, dg, like = rule_vjp("conv2d_grad_weight", [x, g, w], attrs, v)
    assert like is None
    d_x = normal(rng, x.shape)
    fd = directional(
        lambda x_, g_: inner(run_op("conv2d_grad_weight", [x_, g_, w], attrs), v),
        [x, g],
        [d_x, d_g],
    )
    assert fd == pytest.approx(inner(dx, d_x) + inner(dg, d_g), rel=1e-7, abs=1e-8)


def test_max_pool2d_grad_has_no_gradient():
    x = gc.placeholder((1, 1, 4, 4), "float64")
    y = gc.sum(gc.max_pool2d(x, 2))
    (gx,) = gc.grad(y, [x])
    with pytest.raises(GraphcError, match="second derivatives through max_pool2d"):
        gc.grad(gc.sum(gx * gx), [x])


# ------------------------------------------------------------------ graphc.grad end to end


def check_grad(build, arrays: list[np.ndarray], *, symbolic: bool = False, seed: int = 0) -> None:
    """graphc.grad of y = sum(build(*inputs) * r) against central differences of y along
    a random direction, for every input at once."""
    rng = np.random.default_rng(seed)
    inputs = [
        gc.placeholder((None,) * a.ndim if symbolic else a.shape, "float64", name=f"in{i}")
        for i, a in enumerate(arrays)
    ]
    out = build(*inputs)
    r_value = normal(rng, run_shape(inputs, out, arrays))
    r = gc.constant(r_value)
    y = gc.sum(out * r)
    grads = gc.grad(y, inputs)
    for gradient, x in zip(grads, inputs, strict=True):
        assert gradient.type.dtype == x.type.dtype
        assert gradient.ndim == x.ndim
    f = gc.function(inputs, y)
    computed = gc.function(inputs, grads)(*arrays)
    for value, a in zip(computed, arrays, strict=True):
        assert value.shape == a.shape
    directions = [normal(rng, a.shape) for a in arrays]
    fd = directional(lambda *xs: float(f(*xs)), arrays, directions)
    analytic = sum(inner(value, d) for value, d in zip(computed, directions, strict=True))
    assert fd == pytest.approx(analytic, rel=1e-6, abs=1e-7)


def run_shape(inputs, out, arrays) -> tuple[int, ...]:
    return gc.function(inputs, out)(*arrays).shape


STRIDES = [(1, 1), (2, 1), (2, 3)]
PADDINGS = [((0, 0), (0, 0)), ((1, 0), (2, 1)), ((2, 2), (0, 1))]
DILATIONS = [(1, 1), (2, 1)]
GROUPS = [1, 2]


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    list(itertools.product(STRIDES, PADDINGS, DILATIONS, GROUPS)),
)
def test_grad_conv2d_end_to_end(stride, padding, dilation, groups):
    rng = np.random.default_rng(8)
    x, w = normal(rng, (2, 4, 7, 8)), normal(rng, (6, 4 // groups, 3, 2))

    def build(x, w):
        return gc.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)

    check_grad(build, [x, w], seed=9)


def test_grad_conv2d_with_bias_and_unknown_sizes():
    rng = np.random.default_rng(10)
    arrays = [normal(rng, (2, 4, 7, 6)), normal(rng, (4, 2, 3, 3)), normal(rng, (4,))]

    def build(x, w, b):
        return gc.conv2d(x, w, b, stride=2, padding=((1, 0), (0, 2)), groups=2)

    check_grad(build, arrays, symbolic=True, seed=11)


@pytest.mark.parametrize(
    ("stride", "padding", "output_padding", "dilation", "groups"),
    [
        ((1, 1), (0, 0), (0, 0), (1, 1), 1),
        ((2, 2), (1, 0), (1, 1), (1, 1), 1),
        ((3, 2), (2, 1), (2, 0), (1, 2), 2),
        ((1, 2), (0, 1), (1, 1), (2, 2), 2),  # output padding of a whole stride
        ((1, 1), (0, 2), (2, 1), (3, 2), 1),  # ... which slices g at padding 0
        ((2, 1), (3, 1), (1, 1), (3, 2), 2),
    ],
)
@pytest.mark.parametrize("symbolic", [False, True])
def test_grad_conv_transpose2d_end_to_end(
    stride, padding, output_padding, dilation, groups, symbolic
):
    rng = np.random.default_rng(12)
    x, w = normal(rng, (2, 4, 3, 4)), normal(rng, (4, 6 // groups, 3, 2))

    def build(x, w):
        return gc.conv_transpose2d(
            x,
            w,
            stride=stride,
            padding=padding,
            output_padding=output_padding,
            dilation=dilation,
            groups=groups,
        )

    check_grad(build, [x, w], symbolic=symbolic, seed=13)


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "ceil_mode"), POOL_CASES)
def test_grad_max_pool2d_end_to_end(x_shape, kernel, stride, padding, ceil_mode):
    x = distinct(np.random.default_rng(14), x_shape)

    def build(x):
        return gc.max_pool2d(x, kernel, stride, padding, ceil_mode)

    check_grad(build, [x], seed=15)


@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding", "ceil_mode"), POOL_CASES)
@pytest.mark.parametrize("count_include_pad", [True, False])
def test_grad_avg_pool2d_end_to_end(x_shape, kernel, stride, padding, ceil_mode, count_include_pad):
    x = normal(np.random.default_rng(16), x_shape)

    def build(x):
        return gc.avg_pool2d(x, kernel, stride, padding, ceil_mode, count_include_pad)

    check_grad(build, [x], symbolic=True, seed=17)


@pytest.mark.parametrize(
    ("stride", "padding", "dilation", "groups"),
    [
        ((1, 1), ((0, 0), (0, 0)), (1, 1), 1),
        ((2, 1), ((1, 0), (2, 1)), (1, 2), 2),
        ((2, 3), ((2, 2), (0, 1)), (2, 1), 2),
    ],
)
def test_second_order_conv2d(stride, padding, dilation, groups):
    """d/dw of sum(grad_x(sum(conv2d(x, w) * r)) * r2) against central differences in w
    (and d/dx, which is zero: grad_x does not depend on x)."""
    rng = np.random.default_rng(18)
    x_value, w_value = normal(rng, (2, 4, 7, 8)), normal(rng, (6, 4 // groups, 3, 2))
    x = gc.placeholder(x_value.shape, "float64", name="x")
    w = gc.placeholder(w_value.shape, "float64", name="w")
    out = gc.conv2d(x, w, stride=stride, padding=padding, dilation=dilation, groups=groups)
    r = gc.constant(normal(rng, gc.function([x, w], out)(x_value, w_value).shape))
    (gx,) = gc.grad(gc.sum(out * r), [x])
    z = gc.sum(gx * gc.constant(normal(rng, x_value.shape)))
    dz_dw, dz_dx = gc.grad(z, [w, x])
    f = gc.function([x, w], z)
    dw_value, dx_value = gc.function([x, w], [dz_dw, dz_dx])(x_value, w_value)
    assert dw_value.shape == w_value.shape
    np.testing.assert_array_equal(dx_value, 0)
    d = normal(rng, w_value.shape)
    fd = directional(lambda w_: float(f(x_value, w_)), [w_value], [d])
    assert fd == pytest.approx(inner(dw_value, d), rel=1e-6, abs=1e-7)
    # the same through the weight's gradient: d/dx of sum(grad_w * r3)
    (gw,) = gc.grad(gc.sum(out * r), [w])
    z2 = gc.sum(gw * gc.constant(normal(rng, w_value.shape)))
    (dz2_dx,) = gc.grad(z2, [x])
    f2 = gc.function([x, w], z2)
    dx2_value = gc.function([x, w], dz2_dx)(x_value, w_value)
    d = normal(rng, x_value.shape)
    fd = directional(lambda x_: float(f2(x_, w_value)), [x_value], [d])
    assert fd == pytest.approx(inner(dx2_value, d), rel=1e-6, abs=1e-7)


def test_second_order_avg_pool2d():
    rng = np.random.default_rng(19)
    x_value = normal(rng, (1, 2, 5, 6))
    x = gc.placeholder(x_value.shape, "float64", name="x")
    r = gc.constant(normal(rng, (1, 2, 3, 4)))
    pooled = gc.avg_pool2d(x, 3, 2, 1, ceil_mode=True, count_include_pad=False)
    (gx,) = gc.grad(gc.sum(pooled * pooled * r), [x])
    f = gc.function([x], gx)
    (hessian_vector,) = gc.grad(gc.sum(gx * gc.constant(np.ones(x_value.shape))), [x])
    d = normal(rng, x_value.shape)
    hv = gc.function([x], hessian_vector)(x_value)
    fd = directional(lambda x_: float(np.sum(f(x_))), [x_value], [d])
    assert fd == pytest.approx(inner(hv, d), rel=1e-6, abs=1e-7)
