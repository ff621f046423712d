"""The nn primitives' type rules and numpy references against naive oracles.

Each oracle below is written from PyTorch's documented definitions
(torch.nn.Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d), one output element
(or, for the transposed convolution, one input element) at a time, so that it
shares no code and no vectorization trick with graphc/ops/nn.py.
"""

from __future__ import annotations

import numpy as np
import pytest
from opcall import infer, run_op
from oracles import (
    avg_pool2d_oracle,
    conv2d_oracle,
    conv_transpose2d_oracle,
    max_pool2d_oracle,
)

import graphc.ops  # noqa: F401  (registers every op)
from graphc import dtypes
from graphc.errors import DTypeError, ShapeError
from graphc.registry import REGISTRY
from graphc.types import Sym, TensorType

FLOATS = [np.float32, np.float64]


def tolerance(dtype: type) -> dict[str, float]:
    return {"rtol": 1e-5, "atol": 1e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def random_array(shape: tuple[int, ...], dtype: type, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------------- conv2d

# (x shape, w shape, stride, padding, dilation, groups)
CONV2D_CASES = [
    ((1, 1, 5, 5), (1, 1, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    ((2, 3, 6, 7), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    ((2, 3, 7, 6), (2, 3, 2, 3), (2, 1), ((0, 2), (1, 0)), (1, 1), 1),
    ((1, 2, 9, 8), (3, 2, 3, 2), (1, 2), ((2, 1), (0, 3)), (2, 3), 1),
    ((2, 4, 6, 6), (6, 2, 3, 1), (1, 1), ((1, 0), (0, 1)), (1, 1), 2),
    ((2, 4, 8, 7), (4, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 4),  # depthwise
    ((1, 3, 7, 7), (6, 1, 2, 3), (1, 2), ((0, 1), (2, 0)), (2, 1), 3),  # depthwise x2
    ((2, 6, 5, 9), (4, 3, 1, 4), (3, 2), ((3, 0), (0, 0)), (1, 2), 2),
    ((1, 2, 3, 3), (1, 2, 3, 3), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),  # one output pixel
    ((2, 2, 4, 5), (3, 2, 1, 1), (2, 3), ((0, 0), (0, 0)), (1, 1), 1),  # 1x1, strided
    ((1, 1, 2, 2), (1, 1, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),  # kernel > input
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "dilation", "groups"), CONV2D_CASES
)
def test_conv2d_matches_oracle(x_shape, w_shape, stride, padding, dilation, groups, dtype):
    x, w = random_array(x_shape, dtype, 0), random_array(w_shape, dtype, 1)
    attrs = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
    result = run_op("conv2d", [x, w], attrs)
    expected = conv2d_oracle(x.astype(np.float64), w.astype(np.float64), **attrs)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


def test_conv2d_default_attrs_are_a_plain_correlation():
    x, w = random_array((1, 2, 4, 4), np.float64, 2), random_array((3, 2, 2, 2), np.float64, 3)
    expected = conv2d_oracle(x, w, (1, 1), ((0, 0), (0, 0)), (1, 1), 1)
    np.testing.assert_allclose(run_op("conv2d", [x, w], {}), expected, rtol=1e-12)


def test_conv2d_symbolic_dims_give_derived_syms():
    n, h, width = Sym("n"), Sym("h"), Sym("w")
    x = TensorType(dtypes.float32, (n, 4, h, width))
    w = TensorType(dtypes.float32, (6, 2, 3, 3))
    attrs = {"stride": (2, 2), "padding": ((1, 1), (1, 1)), "groups": 2}
    out = infer("conv2d", [x, w], attrs)
    assert out.dtype == dtypes.float32
    assert out.shape[:2] == (n, 6)
    assert all(isinstance(d, Sym) for d in out.shape[2:])
    assert out.shape[2] != out.shape[3]  # derived from different input sizes
    assert infer("conv2d", [x, w], attrs) == out  # the same inputs derive the same Sym
    # unknown channels pass at build time; the run-time rule sees the numbers
    x_unknown = TensorType(dtypes.float32, (1, Sym("c"), 5, 5))
    assert infer("conv2d", [x_unknown, w], attrs).shape == (1, 6, 3, 3)


def test_conv2d_unknown_kernel_size_gives_derived_syms():
    x = TensorType(dtypes.float64, (2, 3, 8, 8))
    w = TensorType(dtypes.float64, (4, 3, Sym("k"), 3))
    out = infer("conv2d", [x, w], {})
    assert isinstance(out.shape[2], Sym)
    assert out.shape[3] == 6


# --------------------------------------------------------------- conv_transpose2d

# (x shape, w shape, stride, padding, output_padding, dilation, groups)
CONV_TRANSPOSE_CASES = [
    ((1, 1, 3, 3), (1, 1, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    ((2, 3, 4, 5), (3, 2, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 1),
    ((2, 2, 3, 4), (2, 3, 2, 3), (3, 1), (0, 1), (2, 0), (1, 1), 1),
    ((1, 3, 4, 3), (3, 2, 3, 2), (1, 2), (2, 0), (0, 1), (2, 1), 1),
    ((2, 4, 3, 3), (4, 3, 3, 2), (2, 1), (1, 0), (1, 0), (1, 2), 2),
    ((2, 4, 5, 4), (4, 1, 3, 3), (2, 2), (1, 1), (0, 1), (1, 1), 4),  # depthwise
    ((1, 3, 3, 4), (3, 2, 2, 3), (1, 1), (0, 1), (1, 0), (2, 2), 3),  # op < dilation
    ((2, 6, 2, 3), (6, 2, 1, 4), (3, 2), (0, 1), (2, 1), (1, 1), 3),
    ((1, 2, 1, 1), (2, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),  # one input pixel
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "output_padding", "dilation", "groups"),
    CONV_TRANSPOSE_CASES,
)
def test_conv_transpose2d_matches_oracle(
    x_shape, w_shape, stride, padding, output_padding, dilation, groups, dtype
):
    x, w = random_array(x_shape, dtype, 4), random_array(w_shape, dtype, 5)
    attrs = {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }
    result = run_op("conv_transpose2d", [x, w], attrs)
    expected = conv_transpose2d_oracle(x.astype(np.float64), w.astype(np.float64), **attrs)
    assert result.dtype == dtype
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "stride", "padding", "output_padding", "dilation", "groups"),
    CONV_TRANSPOSE_CASES,
)
def test_conv_transpose2d_is_the_adjoint_of_conv2d(
    x_shape, w_shape, stride, padding, output_padding, dilation, groups
):
    # <conv2d(y, w), x> == <y, conv_transpose2d(x, w)> for the same w, stride, padding,
    # dilation and groups: the defining property of the transposed convolution
    x, w = random_array(x_shape, np.float64, 6), random_array(w_shape, np.float64, 7)
    transposed = run_op(
        "conv_transpose2d",
        [x, w],
        {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "dilation": dilation,
            "groups": groups,
        },
    )
    y = random_array(transposed.shape, np.float64, 8)
    ph, pw = padding
    convolved = run_op(
        "conv2d",
        [y, w],
        {"stride": stride, "padding": ((ph, ph), (pw, pw)), "dilation": dilation, "groups": groups},
    )
    # output_padding >= stride (allowed when below the dilation) leaves conv2d rows that
    # no input element maps to; the adjoint pairs x only with the first H x W of them
    height, width = x.shape[2:]
    convolved = convolved[:, :, :height, :width]
    assert convolved.shape == x.shape
    assert np.sum(convolved * x) == pytest.approx(np.sum(y * transposed), rel=1e-10)


def test_conv_transpose2d_symbolic_dims():
    n, h = Sym("n"), Sym("h")
    x = TensorType(dtypes.float64, (n, 4, h, 5))
    w = TensorType(dtypes.float64, (4, 3, 3, 3))
    out = infer("conv_transpose2d", [x, w], {"stride": (2, 2), "groups": 2})
    assert out.shape[:2] == (n, 6)
    assert isinstance(out.shape[2], Sym)
    assert out.shape[3] == (5 - 1) * 2 + 2 + 1
    unknown_out = TensorType(dtypes.float64, (4, Sym("o"), 3, 3))
    assert isinstance(infer("conv_transpose2d", [x, unknown_out], {}).shape[1], Sym)


# ------------------------------------------------------------------------ pooling

# (x shape, kernel, stride, padding)
POOL_CASES = [
    ((1, 1, 4, 4), (2, 2), (2, 2), (0, 0)),
    ((2, 3, 5, 5), (2, 2), (2, 2), (0, 0)),  # ceil_mode adds a partial window
    ((2, 2, 7, 6), (3, 3), (2, 2), (1, 1)),
    ((1, 3, 6, 7), (3, 2), (2, 1), (1, 1)),
    ((2, 1, 5, 8), (2, 4), (3, 3), (1, 2)),
    ((1, 2, 5, 6), (3, 3), (3, 3), (1, 0)),  # ceil_mode window would start in the padding
    ((2, 2, 5, 4), (1, 1), (2, 3), (0, 0)),
    ((1, 1, 3, 3), (3, 3), (1, 1), (1, 1)),
    ((1, 2, 2, 3), (4, 2), (1, 2), (2, 1)),  # kernel taller than the input
]


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding"), POOL_CASES)
def test_max_pool2d_matches_oracle(x_shape, kernel, stride, padding, ceil_mode, dtype):
    x = random_array(x_shape, dtype, 9)
    attrs = {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}
    result = run_op("max_pool2d", [x], attrs)
    assert result.dtype == dtype
    np.testing.assert_array_equal(result, max_pool2d_oracle(x, **attrs).astype(dtype))


@pytest.mark.parametrize("dtype", FLOATS)
@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("ceil_mode", [False, True])
@pytest.mark.parametrize(("x_shape", "kernel", "stride", "padding"), POOL_CASES)
def test_avg_pool2d_matches_oracle(
    x_shape, kernel, stride, padding, ceil_mode, count_include_pad, dtype
):
    x = random_array(x_shape, dtype, 10)
    attrs = {
        "kernel": kernel,
        "stride": stride,
        "padding": padding,
        "ceil_mode": ceil_mode,
        "count_include_pad": count_include_pad,
    }
    result = run_op("avg_pool2d", [x], attrs)
    assert result.dtype == dtype
    expected = avg_pool2d_oracle(x.astype(np.float64), **attrs)
    np.testing.assert_allclose(result, expected, **tolerance(dtype))


def test_pool_output_sizes_follow_pytorch():
    # sizes PyTorch gives; the second and third show ceil_mode's partial window and
    # the rule that drops a window starting in the right padding
    for size, kernel, stride, padding, ceil_mode, expected in [
        (5, 2, 2, 0, False, 2),
        (5, 2, 2, 0, True, 3),
        (5, 3, 3, 1, True, 2),
        (7, 3, 2, 1, False, 4),
        (10, 1, 5, 0, True, 2),
    ]:
        x = TensorType(dtypes.float32, (1, 1, size, 4))
        attrs = {
            "kernel": (kernel, 1),
            "stride": (stride, 1),
            "padding": (padding, 0),
            "ceil_mode": ceil_mode,
        }
        assert infer("max_pool2d", [x], attrs).shape[2] == expected
        assert infer("avg_pool2d", [x], attrs).shape[2] == expected


def test_max_pool2d_propagates_nan_and_keeps_inf():
    x = np.arange(16, dtype=np.float32).reshape(1, 1, 4, 4)
    x[0, 0, 0, 1] = np.nan
    x[0, 0, 2:, 2:] = -np.inf
    result = run_op("max_pool2d", [x], {"kernel": (2, 2), "stride": (2, 2)})
    assert np.isnan(result[0, 0, 0, 0])
    assert result[0, 0, 0, 1] == 7
    assert result[0, 0, 1, 0] == 13
    assert result[0, 0, 1, 1] == -np.inf


def test_pool_symbolic_dims():
    n, h = Sym("n"), Sym("h")
    x = TensorType(dtypes.float64, (n, Sym("c"), h, 9))
    attrs = {"kernel": (3, 3), "stride": (2, 2), "padding": (1, 1), "ceil_mode": True}
    out = infer("avg_pool2d", [x], attrs)
    assert out.shape[:2] == (n, Sym("c"))
    assert isinstance(out.shape[2], Sym)
    assert out.shape[3] == 5
    # ceil_mode is part of the size rule, so it is part of the derived Sym
    floor_out = infer("avg_pool2d", [x], {**attrs, "ceil_mode": False})
    assert floor_out.shape[2] != out.shape[2]


# ------------------------------------------------------------------------- errors

F32, F64 = dtypes.float32, dtypes.float64


def t(shape, dtype=F32):
    return TensorType(dtype, shape)


@pytest.mark.parametrize(
    ("types", "attrs", "match"),
    [
        ([t((3, 5, 5)), t((1, 3, 3, 3))], {}, "4-D"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3, 1))], {}, "4-D"),
        ([t((1, 3, 5, 5)), t((1, 2, 3, 3))], {}, "channels"),
        ([t((1, 3, 5, 5)), t((2, 1, 3, 3))], {"groups": 2}, "divisible"),
        ([t((1, 4, 5, 5)), t((3, 2, 3, 3))], {"groups": 2}, "divisible"),
        ([t((1, 4, 5, 5)), t((4, 2, 3, 3))], {"groups": 1}, "channels"),
        ([t((1, 4, 5, 5)), t((4, 4, 3, 3))], {"groups": 0}, "groups"),
        ([t((1, 3, 2, 5)), t((1, 3, 3, 3))], {}, "height"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"dilation": (1, 3)}, "width"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"stride": (0, 1)}, "stride"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"stride": (1, 1, 1)}, "pair"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"dilation": (0, 1)}, "dilation"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"padding": ((0, -1), (0, 0))}, "padding"),
        ([t((1, 3, 5, 5)), t((1, 3, 3, 3))], {"padding": ((1, 1),)}, "padding"),
        ([t((1, 3, 5, 5)), t((1, 3, 0, 3))], {}, "kernel"),
        ([t((1, 3, 0, 5)), t((1, 3, 1, 1))], {}, "height"),
        # a known mismatch is caught even next to unknown dims
        ([t((Sym("n"), 3, Sym("h"), 5)), t((1, 2, 3, 3))], {}, "channels"),
    ],
)
def test_conv2d_shape_errors(types, attrs, match):
    with pytest.raises(ShapeError, match=match):
        infer("conv2d", types, attrs)


@pytest.mark.parametrize(
    ("types", "attrs", "match"),
    [
        ([t((1, 3, 5)), t((3, 1, 3, 3))], {}, "4-D"),
        ([t((1, 3, 5, 5)), t((2, 1, 3, 3))], {}, "channels"),
        ([t((1, 3, 5, 5)), t((3, 1, 3, 3))], {"groups": 2}, "divisible"),
        ([t((1, 3, 5, 5)), t((3, 1, 3, 3))], {"groups": 0}, "groups"),
        (
            [t((1, 3, 5, 5)), t((3, 1, 3, 3))],
            {"stride": (2, 2), "output_padding": (2, 0)},
            "output_padding",
        ),
        ([t((1, 3, 5, 5)), t((3, 1, 3, 3))], {"output_padding": (1, 0)}, "output_padding"),
        ([t((1, 3, 5, 5)), t((3, 1, 3, 3))], {"padding": (-1, 0)}, "padding"),
        ([t((1, 3, 1, 5)), t((3, 1, 1, 3))], {"padding": (1, 0)}, "height"),
        ([t((1, 3, 5, 5)), t((3, 1, 3, 3))], {"stride": (0, 1)}, "stride"),
    ],
)
def test_conv_transpose2d_shape_errors(types, attrs, match):
    with pytest.raises(ShapeError, match=match):
        infer("conv_transpose2d", types, attrs)


@pytest.mark.parametrize("op", ["max_pool2d", "avg_pool2d"])
@pytest.mark.parametrize(
    ("shape", "attrs", "match"),
    [
        ((3, 5, 5), {}, "4-D"),
        ((1, 3, 5, 5), {"padding": (2, 0)}, "half the kernel"),
        ((1, 3, 5, 5), {"kernel": (2, 4), "padding": (1, 3)}, "half the kernel"),
        ((1, 3, 2, 5), {"kernel": (3, 3), "padding": (0, 0)}, "height"),
        ((1, 3, 5, 5), {"kernel": (0, 3)}, "kernel"),
        ((1, 3, 5, 5), {"stride": (1, 0)}, "stride"),
        ((1, 3, 5, 5), {"padding": (-1, 0)}, "padding"),
        ((1, 3, 5, 5), {"kernel": (3,)}, "pair"),
    ],
)
def test_pool_shape_errors(op, shape, attrs, match):
    attrs = {"kernel": (3, 3), "stride": (1, 1), **attrs}
    with pytest.raises(ShapeError, match=match):
        infer(op, [t(shape)], attrs)


@pytest.mark.parametrize("bad", [dtypes.int32, dtypes.int64, dtypes.bool_])
def test_non_float_inputs_are_dtype_errors(bad):
    with pytest.raises(DTypeError):
        infer("conv2d", [t((1, 3, 5, 5), bad), t((1, 3, 3, 3))], {})
    with pytest.raises(DTypeError):
        infer("conv2d", [t((1, 3, 5, 5)), t((1, 3, 3, 3), bad)], {})
    with pytest.raises(DTypeError):
        infer("conv_transpose2d", [t((1, 3, 5, 5), bad), t((3, 1, 3, 3), bad)], {})
    pool = {"kernel": (2, 2), "stride": (2, 2)}
    with pytest.raises(DTypeError):
        infer("max_pool2d", [t((1, 3, 4, 4), bad)], pool)
    with pytest.raises(DTypeError):
        infer("avg_pool2d", [t((1, 3, 4, 4), bad)], pool)


@pytest.mark.parametrize("op", ["conv2d", "conv_transpose2d"])
def test_mixed_float_dtypes_are_dtype_errors(op):
    with pytest.raises(DTypeError, match="float32 and float64"):
        infer(op, [t((1, 3, 5, 5), F32), t((3, 3, 3, 3), F64)], {})


def test_reference_checks_shapes_like_infer():
    # constant folding calls the reference directly; it must not return garbage either
    x = np.zeros((1, 3, 2, 2), np.float32)
    with pytest.raises(ShapeError):
        REGISTRY["conv2d"].reference(
            x,
            np.zeros((1, 3, 3, 3), np.float32),
            stride=(1, 1),
            padding=((0, 0), (0, 0)),
            dilation=(1, 1),
            groups=1,
        )
