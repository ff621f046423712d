"""Neural-network op functions: softmax, log_softmax, softmax_cross_entropy, layer_norm,
conv2d, conv_transpose2d, max_pool2d and avg_pool2d.

Part of the IR core's front end. softmax and log_softmax subtract the maximum
before exp; cross-entropy goes through log_softmax; convolutions and pools
follow PyTorch's arguments and semantics.
"""

from __future__ import annotations

from typing import Any

from graphc.api._common import axes_of, fail, pair
from graphc.api.elementwise import add, divide, exp, log, multiply, negative, sqrt, subtract
from graphc.api.reduce import as_float, finite_max, mean
from graphc.errors import DTypeError, ShapeError
from graphc.tensor import Tensor, as_tensor, build1
from graphc.types import unify_dims

__all__ = [
    "avg_pool2d",
    "conv2d",
    "conv_transpose2d",
    "layer_norm",
    "log_softmax",
    "max_pool2d",
    "softmax",
    "softmax_cross_entropy",
]


def _sum_kept(x: Tensor, axes: tuple[int, ...]) -> Tensor:
    return build1("sum", [x], {"axes": axes, "keepdims": True})


def softmax(x: Any, axis: Any = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along `axis`, with the maximum subtracted first."""
    x = as_float(x)
    axes = axes_of("softmax", axis, x.ndim)
    shifted = exp(subtract(x, finite_max(x, axes)))
    return divide(shifted, _sum_kept(shifted, axes))


def log_softmax(x: Any, axis: Any = -1) -> Tensor:
    """x - logsumexp(x) along `axis`, as (x - max) - log(sum(exp(x - max)))."""
    x = as_float(x)
    axes = axes_of("log_softmax", axis, x.ndim)
    shifted = subtract(x, finite_max(x, axes))
    return subtract(shifted, log(_sum_kept(exp(shifted), axes)))


def softmax_cross_entropy(logits: Any, labels: Any) -> Tensor:
    """The per-example loss -log_softmax(logits)[..., label] for integer labels over the
    last axis of `logits` (labels have logits' shape without the last axis)."""
    logits = as_tensor(logits)
    labels = as_tensor(labels)
    if labels.dtype.kind != "i":
        raise fail(
            "softmax_cross_entropy",
            DTypeError,
            f"labels must be int32 or int64 class indices, got {labels.dtype.name}",
        )
    if logits.ndim < 1 or labels.ndim != logits.ndim - 1:
        raise fail(
            "softmax_cross_entropy",
            ShapeError,
            f"labels {labels.type} must have the shape of logits {logits.type} "
            f"without its last axis",
        )
    for a, b in zip(logits.type.shape[:-1], labels.type.shape, strict=True):
        try:
            unify_dims(a, b, "labels and logits disagree")
        except ShapeError as error:
            raise fail(
                "softmax_cross_entropy",
                ShapeError,
                f"{error}: logits {logits.type}, labels {labels.type}",
            ) from None
    log_probabilities = log_softmax(logits, -1)
    column = build1("expand_dims", [labels], {"axes": (labels.ndim,)})
    picked = build1(
        "take_along_axis",
        [log_probabilities, column],
        {"axis": logits.ndim - 1, "broadcast": False},
    )
    return negative(build1("squeeze", [picked], {"axes": (logits.ndim - 1,)}))


def layer_norm(
    x: Any, gamma: Any = None, beta: Any = None, axis: Any = -1, eps: float = 1e-5
) -> Tensor:
    """(x - mean) / sqrt(var + eps) over trailing `axis`, then * gamma + beta."""
    x = as_float(x)
    axes = axes_of("layer_norm", axis, x.ndim)
    if axes != tuple(range(x.ndim - len(axes), x.ndim)):
        raise fail("layer_norm", ShapeError, f"axis {axis} must be trailing axes of {x.type}")
    normalized_shape = x.type.shape[x.ndim - len(axes) :]
    centered = subtract(x, mean(x, axes, keepdims=True))
    variance = mean(multiply(centered, centered), axes, keepdims=True)
    result = divide(centered, sqrt(add(variance, eps)))
    for name, parameter in (("gamma", gamma), ("beta", beta)):
        if parameter is None:
            continue
        parameter = as_tensor(parameter)
        if parameter.ndim != len(normalized_shape) or any(
            isinstance(a, int) and isinstance(b, int) and a != b
            for a, b in zip(parameter.type.shape, normalized_shape, strict=True)
        ):
            raise fail(
                "layer_norm",
                ShapeError,
                f"{name} {parameter.type} must have the normalized shape {list(normalized_shape)}",
            )
        result = multiply(result, parameter) if name == "gamma" else add(result, parameter)
    return result


def _padding_pairs(op: str, padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    """An int, an (h, w) pair, or ((top, bottom), (left, right))."""
    if (
        isinstance(padding, tuple | list)
        and len(padding) == 2
        and all(isinstance(p, tuple | list) for p in padding)
    ):
        top, bottom = pair(op, "padding", tuple(padding[0]))
        left, right = pair(op, "padding", tuple(padding[1]))
        return ((top, bottom), (left, right))
    h, w = pair(op, "padding", padding)
    return ((h, h), (w, w))


def _add_bias(y: Tensor, bias: Any) -> Tensor:
    if bias is None:
        return y
    bias = as_tensor(bias)
    if bias.ndim != 1:
        raise fail("conv2d", ShapeError, f"bias must be 1-D (out channels), got {bias.type}")
    return add(y, build1("expand_dims", [bias], {"axes": (1, 2)}))


def conv2d(
    x: Any,
    w: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """2-D convolution (cross-correlation) of NCHW `x` with OIHW `w`, PyTorch's semantics."""
    x, w = as_tensor(x), as_tensor(w)
    attrs = {
        "stride": pair("conv2d", "stride", stride),
        "padding": _padding_pairs("conv2d", padding),
        "dilation": pair("conv2d", "dilation", dilation),
        "groups": groups,
    }
    return _add_bias(build1("conv2d", [x, w], attrs), bias)


def conv_transpose2d(
    x: Any,
    w: Any,
    bias: Any = None,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> Tensor:
    """The transpose of conv2d for NCHW `x` and IOHW `w`, PyTorch's semantics."""
    x, w = as_tensor(x), as_tensor(w)
    op = "conv_transpose2d"
    attrs = {
        "stride": pair(op, "stride", stride),
        "padding": pair(op, "padding", padding),
        "output_padding": pair(op, "output_padding", output_padding),
        "dilation": pair(op, "dilation", dilation),
        "groups": groups,
    }
    return _add_bias(build1(op, [x, w], attrs), bias)


def _pool_attrs(op: str, kernel: Any, stride: Any, padding: Any, ceil_mode: bool) -> dict[str, Any]:
    kernel_pair = pair(op, "kernel", kernel)
    return {
        "kernel": kernel_pair,
        "stride": kernel_pair if stride is None else pair(op, "stride", stride),
        "padding": pair(op, "padding", padding),
        "ceil_mode": bool(ceil_mode),
    }


def max_pool2d(
    x: Any, kernel: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False
) -> Tensor:
    """The maximum over each window of NCHW `x`, padding with -inf (PyTorch's semantics)."""
    attrs = _pool_attrs("max_pool2d", kernel, stride, padding, ceil_mode)
    return build1("max_pool2d", [as_tensor(x)], attrs)


def avg_pool2d(
    x: Any,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> Tensor:
    """The mean over each window of NCHW `x` (PyTorch's semantics)."""
    attrs = _pool_attrs("avg_pool2d", kernel, stride, padding, ceil_mode)
    attrs["count_include_pad"] = bool(count_include_pad)
    return build1("avg_pool2d", [as_tensor(x)], attrs)
