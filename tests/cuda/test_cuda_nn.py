"""The CUDA neural-net kernels (graphc.kernels.cuda.nn) through graphc.grad, against the
reference interpreter: conv2d, conv_transpose2d, max_pool2d and avg_pool2d forward and
their VJPs (conv2d_grad_input, conv2d_grad_weight, max_pool2d_grad, avg_pool2d_grad)
over stride, asymmetric padding, dilation, groups, ceil_mode, count_include_pad, an
empty batch, sizes unknown until the call, ties, NaN and infinities in max pooling, and
a small CNN. In CI it runs on numba's CUDA simulator (tiny shapes: every thread is a
Python thread); unmodified on a GPU.

Each test compiles one function holding all of its cases: y = sum(op(inputs) * r) and
the gradient of y with respect to every input, for every case.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import graphc as gc
from graphc.tensor import build1

pytestmark = pytest.mark.cuda

DTYPES = ["float32", "float64"]

# (label, input arrays, the op on placeholders)
Case = tuple[str, list[np.ndarray], Callable[..., Any]]


def _tolerance(dtype: np.dtype) -> dict[str, float]:
    if dtype == np.float32:
        return {"rtol": 1e-5, "atol": 1e-5}
    return {"rtol": 1e-12, "atol": 1e-12}


def _compare(
    inputs: list[gc.Tensor], outputs: list[gc.Tensor], feeds: list[np.ndarray], labels: list[str]
) -> None:
    """The outputs on device="cuda" against device="reference", one compiled function each."""
    got = gc.function(inputs, outputs, device="cuda")(*feeds)
    want = gc.function(inputs, outputs, device="reference")(*feeds)
    assert len(got) == len(want) == len(labels)
    for label, g, w in zip(labels, got, want, strict=True):
        g, w = np.asarray(g), np.asarray(w)
        assert (g.shape, g.dtype) == (w.shape, w.dtype), label
        np.testing.assert_allclose(g, w, err_msg=label, equal_nan=True, **_tolerance(w.dtype))


def _check_grads(cases: list[Case], rng: np.random.Generator, symbolic: bool = False) -> None:
    """For every case, y = sum(op(*inputs) * r) with a random r, and dy/d(every input)."""
    inputs: list[gc.Tensor] = []
    outputs: list[gc.Tensor] = []
    feeds: list[np.ndarray] = []
    labels: list[str] = []
    for label, arrays, build in cases:
        ps = [gc.placeholder((None,) * a.ndim if symbolic else a.shape, a.dtype) for a in arrays]
        out = build(*ps)
        shape = gc.function(ps, out, device="reference")(*arrays).shape
        r_value = rng.standard_normal(shape).astype(arrays[0].dtype)
        r = gc.placeholder((None,) * len(shape) if symbolic else shape, r_value.dtype)
        # with unknown sizes, r gets out's (derived) sizes: y's gradient needs no sum_to
        y = gc.sum(out * (build1("reshape_like", [r, out]) if symbolic else r))
        grads = gc.grad(y, ps)
        inputs += [*ps, r]
        feeds += [*arrays, r_value]
        outputs += [y, *grads]
        labels += [f"{label}: y"] + [f"{label}: d/d input {i}" for i in range(len(ps))]
    _compare(inputs, outputs, feeds, labels)


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ convolutions

# (x shape, w shape, stride, padding, dilation, groups)
CONV2D_CASES = [
    ((2, 2, 5, 5), (3, 2, 3, 3), 1, 0, 1, 1),
    ((2, 3, 6, 5), (2, 3, 2, 3), (2, 1), ((0, 2), (1, 0)), 1, 1),  # drops a row
    ((1, 2, 6, 6), (2, 2, 2, 2), 2, ((1, 0), (0, 1)), 2, 1),
    ((2, 2, 5, 4), (4, 1, 3, 3), 2, 1, 1, 2),
    ((1, 3, 5, 5), (3, 1, 3, 3), 1, 1, (1, 2), 3),  # depthwise
    ((2, 1, 4, 5), (2, 1, 1, 1), (2, 3), 0, 1, 1),  # 1x1, drops columns
    ((1, 1, 2, 2), (1, 1, 3, 3), 1, 1, 1, 1),  # kernel larger than the input
    ((0, 2, 4, 4), (2, 2, 2, 2), 1, 0, 1, 1),  # empty batch: gw is zero
]


def _conv2d_cases(dtype: str, rng: np.random.Generator, cases: list[tuple]) -> list[Case]:
    result = []
    for x_shape, w_shape, stride, padding, dilation, groups in cases:
        opts = {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}
        arrays = [_normal(rng, x_shape, dtype), _normal(rng, w_shape, dtype)]
        result.append(
            (
                f"conv2d {x_shape} {w_shape} {opts}",
                arrays,
                lambda x, w, o=opts: gc.conv2d(x, w, **o),
            )
        )
    return result


def _conv2d_bias_case(dtype: str, rng: np.random.Generator) -> Case:
    arrays = [_normal(rng, s, dtype) for s in ((2, 2, 5, 4), (4, 1, 3, 3), (4,))]

    def build(x, w, b):
        return gc.conv2d(x, w, b, stride=2, padding=((1, 0), (0, 2)), groups=2)

    return ("conv2d with bias", arrays, build)


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv2d_grads(dtype: str, rng: np.random.Generator) -> None:
    cases = _conv2d_cases(dtype, rng, CONV2D_CASES)
    _check_grads([*cases, _conv2d_bias_case(dtype, rng)], rng)


def test_conv2d_grads_with_unknown_sizes(rng: np.random.Generator) -> None:
    _check_grads(_conv2d_cases("float32", rng, CONV2D_CASES[1:4]), rng, symbolic=True)


def test_conv2d_second_order(rng: np.random.Generator) -> None:
    """The gradient of <gx, v> runs conv2d_grad_input's rule (conv2d and
    conv2d_grad_weight with the same attributes) and that of gw's rule."""
    x_value = _normal(rng, (2, 2, 6, 5), "float64")
    w_value = _normal(rng, (4, 1, 3, 2), "float64")
    opts = {"stride": (2, 1), "padding": ((1, 0), (0, 2)), "dilation": (1, 2), "groups": 2}
    x = gc.placeholder(x_value.shape, "float64")
    w = gc.placeholder(w_value.shape, "float64")
    out = gc.conv2d(x, w, **opts)
    r = gc.constant(rng.standard_normal(out.type.shape))
    gx, gw = gc.grad(gc.sum(out * r), [x, w])
    z = gc.sum(gx * gc.constant(rng.standard_normal(x_value.shape))) + gc.sum(
        gw * gc.constant(rng.standard_normal(w_value.shape))
    )
    second = gc.grad(z, [x, w])
    _compare([x, w], [gx, gw, *second], [x_value, w_value], ["gx", "gw", "d2/dx", "d2/dw"])


# (x shape, w shape, stride, padding, output_padding, dilation, groups)
CONV_TRANSPOSE_CASES = [
    ((2, 2, 3, 3), (2, 3, 3, 3), 1, 0, 0, 1, 1),
    ((2, 2, 3, 4), (2, 2, 3, 2), 2, 1, 1, 1, 2),
    ((1, 1, 4, 3), (1, 2, 2, 3), (1, 2), (1, 0), 0, 2, 1),
    ((1, 2, 3, 3), (2, 1, 3, 3), (1, 2), (2, 1), (2, 1), (3, 2), 1),  # op 2 at stride 1
    ((2, 3, 2, 3), (3, 1, 2, 2), (3, 2), (0, 1), (2, 1), 1, 3),  # depthwise
]


def _conv_transpose2d_cases(dtype: str, rng: np.random.Generator) -> list[Case]:
    result = []
    for x_shape, w_shape, stride, padding, output_padding, dilation, groups in CONV_TRANSPOSE_CASES:
        opts = {
            "stride": stride,
            "padding": padding,
            "output_padding": output_padding,
            "dilation": dilation,
            "groups": groups,
        }
        arrays = [_normal(rng, x_shape, dtype), _normal(rng, w_shape, dtype)]
        result.append(
            (
                f"conv_transpose2d {x_shape} {w_shape} {opts}",
                arrays,
                lambda x, w, o=opts: gc.conv_transpose2d(x, w, **o),
            )
        )
    return result


@pytest.mark.parametrize("dtype", DTYPES)
def test_conv_transpose2d_grads(dtype: str, rng: np.random.Generator) -> None:
    _check_grads(_conv_transpose2d_cases(dtype, rng), rng)


# ---------------------------------------------------------------------- pooling

# (x shape, kernel, stride, padding, ceil_mode)
POOL_CASES = [
    ((2, 2, 4, 4), 2, 2, 0, False),
    ((2, 2, 5, 6), 3, 1, 1, False),  # overlapping windows
    ((2, 2, 5, 6), (3, 2), 2, (1, 0), False),  # drops a row
    ((1, 2, 5, 6), (3, 2), 2, 1, True),  # ceil_mode: windows past the padding
    ((2, 1, 6, 5), (2, 3), (3, 2), (0, 1), True),
    ((1, 2, 6, 5), 3, (2, 3), 1, True),
    ((1, 1, 1, 1), 1, 1, 0, False),
]


def _ties(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    """Small integers: most windows hold their maximum more than once."""
    return rng.integers(-2, 2, shape).astype(dtype)


def _max_pool_cases(dtype: str, rng: np.random.Generator) -> list[Case]:
    result = []
    for x_shape, kernel, stride, padding, ceil_mode in POOL_CASES:
        label = f"max_pool2d {x_shape} {kernel} {stride} {padding} {ceil_mode}"
        result.append(
            (
                label,
                [_ties(rng, x_shape, dtype)],
                lambda x, k=kernel, s=stride, p=padding, c=ceil_mode: gc.max_pool2d(x, k, s, p, c),
            )
        )
    return result


def _avg_pool_cases(dtype: str, rng: np.random.Generator) -> list[Case]:
    result = []
    for x_shape, kernel, stride, padding, ceil_mode in POOL_CASES:
        for include in (True, False):
            label = f"avg_pool2d {x_shape} {kernel} {stride} {padding} {ceil_mode} {include}"

            def build(x, k=kernel, s=stride, p=padding, c=ceil_mode, i=include):
                return gc.avg_pool2d(x, k, s, p, c, i)

            result.append((label, [_normal(rng, x_shape, dtype)], build))
    return result


@pytest.mark.parametrize("dtype", DTYPES)
def test_max_pool2d_grads_with_ties(dtype: str, rng: np.random.Generator) -> None:
    _check_grads(_max_pool_cases(dtype, rng), rng)


@pytest.mark.parametrize("dtype", DTYPES)
def test_avg_pool2d_grads(dtype: str, rng: np.random.Generator) -> None:
    _check_grads(_avg_pool_cases(dtype, rng), rng)


def test_pool_grads_with_unknown_sizes(rng: np.random.Generator) -> None:
    cases = _max_pool_cases("float32", rng)[2:4] + _avg_pool_cases("float32", rng)[4:8]
    _check_grads(cases, rng, symbolic=True)


def test_max_pool2d_with_nan_and_infinities(rng: np.random.Generator) -> None:
    """max_pool2d and max_pool2d_grad (called directly, as NaN in x makes y NaN) on windows
    holding ties, NaNs (the forward gives NaN; the gradient goes to the last NaN) and
    infinities (-inf everywhere in a window: its first element)."""
    values = np.array([0.0, 1.0, 1.0, np.nan, np.inf, -np.inf, -np.inf, -np.inf])
    inputs, outputs, feeds, labels = [], [], [], []
    for kernel, stride, padding, ceil_mode in ((2, 2, 0, False), (3, 1, 1, False), (3, 2, 1, True)):
        x_value = rng.choice(values, (2, 2, 5, 5)).astype("float32")
        x_value[1, 1] = -np.inf  # every window of a channel: only -inf
        x = gc.placeholder(x_value.shape, "float32")
        y = gc.max_pool2d(x, kernel, stride, padding, ceil_mode)
        g_value = _normal(rng, y.type.shape, "float32")
        g = gc.placeholder(g_value.shape, "float32")
        attrs = {
            "kernel": (kernel, kernel),
            "stride": (stride, stride),
            "padding": (padding, padding),
            "ceil_mode": ceil_mode,
        }
        inputs += [x, g]
        feeds += [x_value, g_value]
        outputs += [y, build1("max_pool2d_grad", [x, g], attrs)]
        labels += [f"max_pool2d {attrs}", f"max_pool2d_grad {attrs}"]
    _compare(inputs, outputs, feeds, labels)


# ---------------------------------------------------------------------- a small CNN


@pytest.mark.parametrize("dtype", DTYPES)
def test_small_cnn_grads(dtype: str, rng: np.random.Generator) -> None:
    """conv (+ bias) -> relu -> max_pool -> dense (+ bias) -> softmax cross-entropy (of
    one-hot labels): the mean loss and its gradient with respect to the images and every
    parameter."""
    shapes = [(2, 1, 6, 6), (3, 1, 3, 3), (3,), (27, 4), (4,)]
    arrays = [_normal(rng, s, dtype) for s in shapes]
    one_hot = np.eye(4, dtype=dtype)[[1, 3]]
    x, w1, b1, dense, b2, labels = (gc.placeholder(a.shape, dtype) for a in [*arrays, one_hot])
    h = gc.relu(gc.conv2d(x, w1, b1, padding=1))
    h = gc.max_pool2d(h, 2)
    logits = gc.reshape(h, (2, -1)) @ dense + b2
    loss = -gc.mean(gc.sum(gc.log_softmax(logits) * labels, axis=-1))
    grads = gc.grad(loss, [x, w1, b1, dense, b2])
    names = ["loss", "d/dx", "d/dw1", "d/db1", "d/ddense", "d/db2"]
    _compare([x, w1, b1, dense, b2, labels], [loss, *grads], [*arrays, one_hot], names)
