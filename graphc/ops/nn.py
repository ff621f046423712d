"""Neural-net primitives: conv2d, conv_transpose2d, max_pool2d and avg_pool2d (NCHW), and
the vector-Jacobian products their gradients need: conv2d_grad_input, conv2d_grad_weight,
max_pool2d_grad and avg_pool2d_grad.

Part of the IR core. Each op follows PyTorch's semantics (torch.nn.functional) for
float32 and float64: cross-correlation, OIHW weights for conv2d and IOHW weights
for conv_transpose2d, -inf padding for max pooling, and PyTorch's output-size and
divisor rules for pooling. Attributes are canonical: every size is an (h, w) pair
and conv2d's padding is ((top, bottom), (left, right)); the front end turns an int
into a pair, fills `stride=None` with the kernel size, and adds any bias as a
separate op. Output sizes computed from an unknown size are derived `Sym`s; the
same rules run again on the concrete shapes at run time, so every size check here
also guards the run.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from graphc.errors import DTypeError, ShapeError, UnsupportedError
from graphc.registry import AttrSpec, OpDef, register
from graphc.types import Dim, TensorType, computed_dim, dim_product, type_of_array, unify_dims

Pair = tuple[int, int]


# ---------------------------------------------------------------- shared checks


def _check_floats(*types: TensorType) -> np.dtype:
    """The common float dtype of the operands; DTypeError for ints, bools or a mix."""
    for t in types:
        if t.dtype.kind != "f":
            raise DTypeError(f"accepts float32 or float64 only, got {t.dtype.name}")
    names = sorted({t.dtype.name for t in types})
    if len(names) > 1:
        raise DTypeError(f"operands must have one dtype, got {' and '.join(names)}; cast one")
    return types[0].dtype


def _check_rank4(t: TensorType, what: str) -> None:
    if t.ndim != 4:
        raise ShapeError(f"{what} must be 4-D, got rank {t.ndim} ({t})")


def _check_pair(value: tuple[int, ...], name: str, minimum: int) -> Pair:
    """An (h, w) attribute: exactly two ints, each at least `minimum`."""
    if len(value) != 2:
        raise ShapeError(f"{name} must be an (h, w) pair, got {value}")
    if any(v < minimum for v in value):
        raise ShapeError(f"{name} must be >= {minimum}, got {value}")
    return value[0], value[1]


def _check_groups(groups: int) -> None:
    if groups < 1:
        raise ShapeError(f"groups must be >= 1, got {groups}")


def _check_divisible(dim: Dim, groups: int, what: str) -> None:
    # an unknown size is checked at run time, when the same rule sees the number
    if isinstance(dim, int) and dim % groups != 0:
        raise ShapeError(f"{what} ({dim}) must be divisible by groups ({groups})")


def _check_kernel_dims(kh: Dim, kw: Dim) -> None:
    for size in (kh, kw):
        if isinstance(size, int) and size < 1:
            raise ShapeError(f"kernel sizes must be >= 1, got {kh}x{kw}")


def _check_spatial(h: Dim, w: Dim) -> None:
    # PyTorch rejects empty spatial dims (an empty batch is fine)
    for size in (h, w):
        if isinstance(size, int) and size < 1:
            raise ShapeError(f"input height and width must be >= 1, got {h}x{w}")


def _output_dim(kind: str, size: Callable[..., int], axis: str, *args: Dim | int) -> Dim:
    """`size(*args)` for one output axis, a derived Sym when an argument is unknown.

    Raises ShapeError when the known result is below 1. PyTorch agrees except for
    conv_transpose2d, where it returns an empty tensor for a size of exactly 0; an
    empty image is almost surely a mistake, so graphc says so at build time.
    """

    def checked(*known: int) -> int:
        result = size(*known)
        if result < 1:
            raise ShapeError(
                f"output {axis} would be {result} (input {axis} {known[0]}, "
                f"kernel {known[1]}): it must be at least 1"
            )
        return result

    return computed_dim(kind, checked, *args)


def _check_cotangent(g: TensorType, expected: TensorType, op: str) -> None:
    """g must have the forward op's output shape (unknown sizes are checked at run time)."""
    for axis, (have, want) in enumerate(zip(g.shape, expected.shape, strict=True)):
        try:
            unify_dims(have, want, f"axis {axis}")
        except ShapeError as error:
            raise ShapeError(
                f"g {g} must have the shape of {op}'s output {expected} ({error})"
            ) from None


# ---------------------------------------------------------------------- conv2d


def _conv_size(size: int, kernel: int, before: int, after: int, stride: int, dilation: int) -> int:
    """Convolution output size: how many strides the dilated kernel takes over the padded input."""
    return (size + before + after - dilation * (kernel - 1) - 1) // stride + 1


def _infer_conv2d(
    x: TensorType,
    w: TensorType,
    *,
    stride: tuple[int, ...],
    padding: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    groups: int,
) -> TensorType:
    _check_rank4(x, "x (N, C, H, W)")
    _check_rank4(w, "w (O, C/groups, kH, kW)")
    dtype = _check_floats(x, w)
    sh, sw = _check_pair(stride, "stride", 1)
    dh, dw = _check_pair(dilation, "dilation", 1)
    if len(padding) != 2:
        raise ShapeError(f"padding must be ((top, bottom), (left, right)), got {padding}")
    top, bottom = _check_pair(padding[0], "padding", 0)
    left, right = _check_pair(padding[1], "padding", 0)
    _check_groups(groups)
    n, c, h, width = x.shape
    o, i, kh, kw = w.shape
    _check_spatial(h, width)
    _check_kernel_dims(kh, kw)
    _check_divisible(c, groups, "input channels")
    _check_divisible(o, groups, "output channels")
    unify_dims(c, dim_product((i, groups)), "input channels must equal w.shape[1] * groups")
    out_h = _output_dim("conv2d_size", _conv_size, "height", h, kh, top, bottom, sh, dh)
    out_w = _output_dim("conv2d_size", _conv_size, "width", width, kw, left, right, sw, dw)
    return TensorType(dtype, (n, o, out_h, out_w))


def _window_slice(offset: int, stride: int, count: int) -> slice:
    """Positions offset, offset + stride, ... (`count` of them) along one axis."""
    return slice(offset, offset + stride * (count - 1) + 1, stride)


def _conv2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: tuple[int, ...],
    padding: tuple[tuple[int, int], ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    out = _infer_conv2d(
        type_of_array(x),
        type_of_array(w),
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
    )
    n, _, out_h, out_w = out.shape
    o, i, kh, kw = w.shape
    (sh, sw), (dh, dw) = stride, dilation
    padded = np.pad(x, ((0, 0), (0, 0), *padding))
    # split channels into groups: x[n, g, i, h, w] meets w[g, o/g, i, kh, kw]
    grouped_x = padded.reshape(n, groups, i, *padded.shape[2:])
    grouped_w = w.reshape(groups, o // groups, i, kh, kw)
    result = np.zeros((n, groups, o // groups, out_h, out_w), dtype=out.dtype)
    # one kernel tap at a time: every output pixel reads the input at its window start
    # plus the tap's dilated offset, so a tap is one strided slice contracted over i
    for a in range(kh):
        for b in range(kw):
            patch = grouped_x[
                :, :, :, _window_slice(a * dh, sh, out_h), _window_slice(b * dw, sw, out_w)
            ]
            result += np.einsum("ngihw,goi->ngohw", patch, grouped_w[:, :, :, a, b])
    return result.reshape(out.shape).astype(out.dtype, copy=False)


CONV2D_ATTRS = {
    "stride": AttrSpec("ints", (1, 1)),
    "padding": AttrSpec("int_pairs", ((0, 0), (0, 0))),
    "dilation": AttrSpec("ints", (1, 1)),
    "groups": AttrSpec("int", 1),
}

register(
    OpDef(
        "conv2d",
        _infer_conv2d,
        _conv2d,
        arity=2,
        attrs=CONV2D_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, g, y, x, w, **attrs: [
            api.build1("conv2d_grad_input", [g, w, x], attrs),
            api.build1("conv2d_grad_weight", [x, g, w], attrs),
        ],
        doc="torch.nn.functional.conv2d without bias: NCHW input, OIHW weight (I = C/groups), "
        "cross-correlation; padding is ((top, bottom), (left, right))",
    )
)


def _infer_conv2d_grad_input(
    g: TensorType,
    w: TensorType,
    like: TensorType,
    **conv: Any,
) -> TensorType:
    _check_rank4(g, "g (N, O, outH, outW)")
    _check_rank4(like, "like (x's shape N, C, H, W)")
    dtype = _check_floats(g, w)
    forward = _infer_conv2d(
        TensorType(dtype, like.shape),
        w,
        **conv,
    )
    _check_cotangent(g, forward, "conv2d")
    return TensorType(dtype, like.shape)


def _conv2d_grad_input(
    g: np.ndarray,
    w: np.ndarray,
    like: np.ndarray,
    **conv: Any,
) -> np.ndarray:
    out = _infer_conv2d_grad_input(
        type_of_array(g),
        type_of_array(w),
        type_of_array(like),
        **conv,
    )
    n, o, out_h, out_w = g.shape
    _, i, kh, kw = w.shape
    _, _, h, width = like.shape
    (sh, sw), (dh, dw) = conv["stride"], conv["dilation"]
    (top, bottom), (left, right) = conv["padding"]
    groups = conv["groups"]
    # conv2d's transpose scatters each output pixel's g back over the window it read;
    # rows and columns that conv2d's floor division never read stay zero
    full = np.zeros((n, groups, i, h + top + bottom, width + left + right), dtype=out.dtype)
    grouped_g = g.reshape(n, groups, o // groups, out_h, out_w)
    grouped_w = w.reshape(groups, o // groups, i, kh, kw)
    for a in range(kh):
        for b in range(kw):
            full[:, :, :, _window_slice(a * dh, sh, out_h), _window_slice(b * dw, sw, out_w)] += (
                np.einsum("ngohw,goi->ngihw", grouped_g, grouped_w[:, :, :, a, b])
            )
    cropped = full[:, :, :, top : top + h, left : left + width]
    return cropped.reshape(out.shape).astype(out.dtype, copy=False)


def _infer_conv2d_grad_weight(
    x: TensorType,
    g: TensorType,
    like: TensorType,
    **conv: Any,
) -> TensorType:
    _check_rank4(g, "g (N, O, outH, outW)")
    _check_rank4(like, "like (w's shape O, C/groups, kH, kW)")
    dtype = _check_floats(x, g)
    forward = _infer_conv2d(
        x,
        TensorType(dtype, like.shape),
        **conv,
    )
    _check_cotangent(g, forward, "conv2d")
    return TensorType(dtype, like.shape)


def _conv2d_grad_weight(
    x: np.ndarray,
    g: np.ndarray,
    like: np.ndarray,
    **conv: Any,
) -> np.ndarray:
    out = _infer_conv2d_grad_weight(
        type_of_array(x),
        type_of_array(g),
        type_of_array(like),
        **conv,
    )
    n, o, out_h, out_w = g.shape
    _, i, kh, kw = like.shape
    (sh, sw), (dh, dw), groups = conv["stride"], conv["dilation"], conv["groups"]
    padded = np.pad(x, ((0, 0), (0, 0), *conv["padding"]))
    grouped_x = padded.reshape(n, groups, i, *padded.shape[2:])
    grouped_g = g.reshape(n, groups, o // groups, out_h, out_w)
    result = np.zeros((groups, o // groups, i, kh, kw), dtype=out.dtype)
    # tap (a, b) of the weight met the same strided slice of x that conv2d read for it
    for a in range(kh):
        for b in range(kw):
            patch = grouped_x[
                :, :, :, _window_slice(a * dh, sh, out_h), _window_slice(b * dw, sw, out_w)
            ]
            result[:, :, :, a, b] = np.einsum("ngihw,ngohw->goi", patch, grouped_g)
    return result.reshape(out.shape).astype(out.dtype, copy=False)


# Both VJPs are bilinear; with u the cotangent of their output, <u, grad_input(g, w)> and
# <u, grad_weight(x, g)> are both <conv2d(., .), g>, whence their own gradients.
register(
    OpDef(
        "conv2d_grad_input",
        _infer_conv2d_grad_input,
        _conv2d_grad_input,
        arity=3,
        attrs=CONV2D_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, u, y, g, w, like, **attrs: [
            api.build1("conv2d", [u, w], attrs),
            api.build1("conv2d_grad_weight", [u, g, w], attrs),
            None,
        ],
        doc="the VJP of conv2d (same attrs) with respect to x: g (conv2d's output shape) "
        "scattered back through w, with like's shape (only like's shape is read) and g's "
        "dtype; input rows and columns conv2d never read get zero",
    )
)
register(
    OpDef(
        "conv2d_grad_weight",
        _infer_conv2d_grad_weight,
        _conv2d_grad_weight,
        arity=3,
        attrs=CONV2D_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, u, y, x, g, like, **attrs: [
            api.build1("conv2d_grad_input", [g, u, x], attrs),
            api.build1("conv2d", [x, u], attrs),
            None,
        ],
        doc="the VJP of conv2d (same attrs) with respect to w: x correlated with g (conv2d's "
        "output shape), with like's shape (only like's shape is read) and x's dtype",
    )
)


# ------------------------------------------------------------- conv_transpose2d


def _conv_transpose_size(
    size: int, kernel: int, padding: int, output_padding: int, stride: int, dilation: int
) -> int:
    """PyTorch's ConvTranspose2d output size: the size a conv2d would map back to `size`."""
    return (size - 1) * stride - 2 * padding + dilation * (kernel - 1) + output_padding + 1


def _infer_conv_transpose2d(
    x: TensorType,
    w: TensorType,
    *,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> TensorType:
    _check_rank4(x, "x (N, C, H, W)")
    _check_rank4(w, "w (C, O/groups, kH, kW)")
    dtype = _check_floats(x, w)
    sh, sw = _check_pair(stride, "stride", 1)
    ph, pw = _check_pair(padding, "padding", 0)
    oph, opw = _check_pair(output_padding, "output_padding", 0)
    dh, dw = _check_pair(dilation, "dilation", 1)
    # output_padding picks one of the sizes a strided conv2d maps to the same input size;
    # PyTorch bounds it so that the extra rows stay within one stride or dilation step
    for extra, s, d in ((oph, sh, dh), (opw, sw, dw)):
        if extra >= s and extra >= d:
            raise ShapeError(
                f"output_padding {output_padding} must be smaller than the "
                f"stride {stride} or the dilation {dilation}"
            )
    _check_groups(groups)
    n, c, h, width = x.shape
    w_c, o_per_group, kh, kw = w.shape
    _check_spatial(h, width)
    _check_kernel_dims(kh, kw)
    _check_divisible(c, groups, "input channels")
    unify_dims(c, w_c, "input channels must equal w.shape[0]")
    out_h = _output_dim(
        "conv_transpose2d_size", _conv_transpose_size, "height", h, kh, ph, oph, sh, dh
    )
    out_w = _output_dim(
        "conv_transpose2d_size", _conv_transpose_size, "width", width, kw, pw, opw, sw, dw
    )
    return TensorType(dtype, (n, dim_product((o_per_group, groups)), out_h, out_w))


def _conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    *,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> np.ndarray:
    out = _infer_conv_transpose2d(
        type_of_array(x),
        type_of_array(w),
        stride=stride,
        padding=padding,
        output_padding=output_padding,
        dilation=dilation,
        groups=groups,
    )
    n, c, h, width = x.shape
    _, o_per_group, kh, kw = w.shape
    _, _, out_h, out_w = out.shape
    (sh, sw), (dh, dw), (ph, pw) = stride, dilation, padding
    # the transpose of conv2d scatters: input pixel (y, x) adds w * x[y, x] to the
    # window it would have been read from. Build the uncropped output (padding and
    # output_padding included; rows beyond the last window stay zero), then crop.
    full = np.zeros((n, groups, o_per_group, out_h + 2 * ph, out_w + 2 * pw), dtype=out.dtype)
    grouped_x = x.reshape(n, groups, c // groups, h, width)
    grouped_w = w.reshape(groups, c // groups, o_per_group, kh, kw)
    for a in range(kh):
        for b in range(kw):
            contribution = np.einsum("ngihw,gio->ngohw", grouped_x, grouped_w[:, :, :, a, b])
            full[:, :, :, _window_slice(a * dh, sh, h), _window_slice(b * dw, sw, width)] += (
                contribution
            )
    cropped = full[:, :, :, ph : ph + out_h, pw : pw + out_w]
    return cropped.reshape(out.shape).astype(out.dtype, copy=False)


def _conv_transpose2d_grad(
    api: Any,
    g: Any,
    y: Any,
    x: Any,
    w: Any,
    *,
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    output_padding: tuple[int, ...],
    dilation: tuple[int, ...],
    groups: int,
) -> list[Any]:
    """conv_transpose2d(., w) is the adjoint of conv2d(., w) (w's IOHW read as OIHW) with
    the same stride, dilation and groups and padding p on both sides: gx = conv2d(g, w),
    gw = conv2d_grad_weight(g, x, like=w).

    That conv2d maps g back to x's size H plus output_padding // stride rows: output
    padding may reach a whole stride when it is below the dilation. Those trailing rows of
    g lie past every row x wrote to, so they are dropped: first from conv2d's bottom
    padding, then, if that runs out, by slicing them off g.
    """
    pads: list[tuple[int, int]] = []
    stops: list[int | None] = [None, None]
    for p, extra, s in zip(padding, output_padding, stride, strict=True):
        after = p - s * (extra // s)  # the bottom (right) padding that drops those rows
        pads.append((p, max(after, 0)))
        stops.append(after if after < 0 else None)
    if any(stops):
        g = api.build1(
            "slice", [g], {"starts": (None,) * 4, "stops": tuple(stops), "steps": (1,) * 4}
        )
    attrs = {"stride": stride, "padding": tuple(pads), "dilation": dilation, "groups": groups}
    return [api.build1("conv2d", [g, w], attrs), api.build1("conv2d_grad_weight", [g, x, w], attrs)]


register(
    OpDef(
        "conv_transpose2d",
        _infer_conv_transpose2d,
        _conv_transpose2d,
        arity=2,
        attrs={
            "stride": AttrSpec("ints", (1, 1)),
            "padding": AttrSpec("ints", (0, 0)),
            "output_padding": AttrSpec("ints", (0, 0)),
            "dilation": AttrSpec("ints", (1, 1)),
            "groups": AttrSpec("int", 1),
        },
        traits=frozenset({"pure"}),
        grad=_conv_transpose2d_grad,
        doc="torch.nn.functional.conv_transpose2d without bias: NCHW input, IOHW weight "
        "(I = C, O = out channels / groups); padding is symmetric per axis",
    )
)


# --------------------------------------------------------------------- pooling


def _pool_size(size: int, kernel: int, padding: int, stride: int, ceil_mode: bool) -> int:
    """PyTorch's pooling output size (pooling_output_shape, dilation 1)."""
    span = size + 2 * padding - kernel
    count = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    # with ceil_mode the last window must still start inside the input or the left padding
    if ceil_mode and (count - 1) * stride >= size + padding:
        count -= 1
    return count


def _infer_pool2d(
    x: TensorType,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    ceil_mode: bool,
) -> TensorType:
    _check_rank4(x, "x (N, C, H, W)")
    dtype = _check_floats(x)
    kh, kw = _check_pair(kernel, "kernel", 1)
    sh, sw = _check_pair(stride, "stride", 1)
    ph, pw = _check_pair(padding, "padding", 0)
    # PyTorch's bound; it also guarantees every window holds at least one input element
    if ph > kh // 2 or pw > kw // 2:
        raise ShapeError(f"padding {padding} must be at most half the kernel {kernel}")
    n, c, h, width = x.shape
    _check_spatial(h, width)
    out_h = _output_dim("pool2d_size", _pool_size, "height", h, kh, ph, sh, ceil_mode)
    out_w = _output_dim("pool2d_size", _pool_size, "width", width, kw, pw, sw, ceil_mode)
    return TensorType(dtype, (n, c, out_h, out_w))


def _window_pads(
    shape: tuple[int, ...],
    out: TensorType,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
) -> list[tuple[int, int]]:
    """The np.pad widths of `_pad_for_windows` for an input of `shape`."""
    pads = [(0, 0), (0, 0)]
    for size, count, k, s, p in zip(shape[2:], out.shape[2:], kernel, stride, padding, strict=True):
        reach = (count - 1) * s + k  # one past the last window, in padded coordinates
        pads.append((p, max(reach - p - size, 0)))
    return pads


def _pad_for_windows(
    x: np.ndarray,
    out: TensorType,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    value: float,
) -> np.ndarray:
    """x padded with `value`: `padding` before, and after as far as the last window reaches.

    With ceil_mode the last window may run past the right padding; padding it too
    lets every window be a plain slice.
    """
    return np.pad(x, _window_pads(x.shape, out, kernel, stride, padding), constant_values=value)


def _kernel_taps(
    padded: np.ndarray, out: TensorType, kernel: tuple[int, ...], stride: tuple[int, ...]
) -> Iterator[np.ndarray]:
    """Each kernel tap's strided view: element [.., i, j] is that tap of window (i, j)."""
    _, _, out_h, out_w = out.shape
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            yield padded[
                :, :, _window_slice(a, stride[0], out_h), _window_slice(b, stride[1], out_w)
            ]


def _max_pool2d(
    x: np.ndarray,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    ceil_mode: bool,
) -> np.ndarray:
    out = _infer_pool2d(
        type_of_array(x), kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode
    )
    padded = _pad_for_windows(x, out, kernel, stride, padding, -np.inf)
    result = np.full(out.shape, -np.inf, dtype=out.dtype)
    for tap in _kernel_taps(padded, out, kernel, stride):
        np.maximum(result, tap, out=result)  # np.maximum propagates NaN, as PyTorch does
    return result


def _pool_divisors(
    size: int, count: int, kernel: int, stride: int, padding: int, count_include_pad: bool
) -> np.ndarray:
    """Per output position along one axis, the number of elements PyTorch divides by.

    The window is first clipped to the padded input (start + kernel may pass it under
    ceil_mode); with count_include_pad that is the divisor, else the window is clipped
    again to the real input.
    """
    start = np.arange(count) * stride - padding
    end = np.minimum(start + kernel, size + padding)
    if count_include_pad:
        return end - start
    return np.minimum(end, size) - np.maximum(start, 0)


def _avg_pool2d(
    x: np.ndarray,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    ceil_mode: bool,
    count_include_pad: bool,
) -> np.ndarray:
    out = _infer_pool2d(
        type_of_array(x), kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode
    )
    padded = _pad_for_windows(x, out, kernel, stride, padding, 0.0)
    total = np.zeros(out.shape, dtype=out.dtype)
    for tap in _kernel_taps(padded, out, kernel, stride):
        total += tap
    rows, cols = (
        _pool_divisors(size, count, k, s, p, count_include_pad)
        for size, count, k, s, p in zip(
            x.shape[2:], out.shape[2:], kernel, stride, padding, strict=True
        )
    )
    # the window is a rectangle, so its element count is rows x cols
    divisor = np.outer(rows, cols).astype(out.dtype)
    return (total / divisor).astype(out.dtype, copy=False)


def _infer_avg_pool2d(
    x: TensorType,
    *,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    ceil_mode: bool,
    count_include_pad: bool,
) -> TensorType:
    del count_include_pad  # changes values only
    return _infer_pool2d(x, kernel=kernel, stride=stride, padding=padding, ceil_mode=ceil_mode)


def _scatter_taps(
    shape: tuple[int, ...],
    dtype: np.dtype,
    out: TensorType,
    kernel: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    tap_values: Callable[[int, int], np.ndarray],
) -> np.ndarray:
    """The transpose of `_kernel_taps`: adds `tap_values(a, b)` (one value per window)
    into the padded input at tap (a, b) of every window, then drops the padding."""
    pads = _window_pads(shape, out, kernel, stride, padding)
    full = np.zeros(
        [size + before + after for size, (before, after) in zip(shape, pads, strict=True)], dtype
    )
    _, _, out_h, out_w = out.shape
    for a in range(kernel[0]):
        for b in range(kernel[1]):
            # windows are at least one stride apart, so one tap's positions are distinct
            full[:, :, _window_slice(a, stride[0], out_h), _window_slice(b, stride[1], out_w)] += (
                tap_values(a, b)
            )
    (top, _), (left, _) = pads[2:]
    return full[:, :, top : top + shape[2], left : left + shape[3]]


def _infer_max_pool2d_grad(
    x: TensorType,
    g: TensorType,
    **pool: Any,
) -> TensorType:
    _check_rank4(g, "g (max_pool2d's output shape)")
    dtype = _check_floats(x, g)
    forward = _infer_pool2d(x, **pool)
    _check_cotangent(g, forward, "max_pool2d")
    return TensorType(dtype, x.shape)


def _max_pool2d_grad(
    x: np.ndarray,
    g: np.ndarray,
    **pool: Any,
) -> np.ndarray:
    out = _infer_max_pool2d_grad(
        type_of_array(x),
        type_of_array(g),
        **pool,
    )
    kernel, stride, padding = pool["kernel"], pool["stride"], pool["padding"]
    forward = TensorType(out.dtype, g.shape)
    padded = _pad_for_windows(x, forward, kernel, stride, padding, -np.inf)
    # which positions are input elements (padding never wins, even against -inf)
    real = _pad_for_windows(np.ones(x.shape, bool), forward, kernel, stride, padding, False)
    # PyTorch's scan: the first input element of the window (row-major), then each later
    # one that is greater than the running maximum or NaN
    best = np.full(g.shape, -np.inf, dtype=out.dtype)
    chosen = np.full(g.shape, -1)
    taps = list(
        zip(
            _kernel_taps(padded, forward, kernel, stride),
            _kernel_taps(real, forward, kernel, stride),
            strict=True,
        )
    )
    for index, (values, valid) in enumerate(taps):
        wins = valid & ((chosen < 0) | (values > best) | np.isnan(values))
        best = np.where(wins, values, best)
        chosen = np.where(wins, index, chosen)
    result = _scatter_taps(
        x.shape,
        out.dtype,
        forward,
        kernel,
        stride,
        padding,
        lambda a, b: np.where(chosen == a * kernel[1] + b, g, 0),
    )
    return result.astype(out.dtype, copy=False)


def _infer_avg_pool2d_grad(
    g: TensorType,
    like: TensorType,
    count_include_pad: bool,
    **pool: Any,
) -> TensorType:
    del count_include_pad  # changes values, not types
    _check_rank4(g, "g (avg_pool2d's output shape)")
    _check_rank4(like, "like (x's shape N, C, H, W)")
    dtype = _check_floats(g)
    forward = _infer_pool2d(TensorType(dtype, like.shape), **pool)
    _check_cotangent(g, forward, "avg_pool2d")
    return TensorType(dtype, like.shape)


def _avg_pool2d_grad(
    g: np.ndarray,
    like: np.ndarray,
    count_include_pad: bool,
    **pool: Any,
) -> np.ndarray:
    out = _infer_avg_pool2d_grad(
        type_of_array(g),
        type_of_array(like),
        count_include_pad=count_include_pad,
        **pool,
    )
    kernel, stride, padding = pool["kernel"], pool["stride"], pool["padding"]
    forward = TensorType(out.dtype, g.shape)
    rows, cols = (
        _pool_divisors(size, count, k, s, p, count_include_pad)
        for size, count, k, s, p in zip(
            like.shape[2:], g.shape[2:], kernel, stride, padding, strict=True
        )
    )
    share = g / np.outer(rows, cols).astype(out.dtype)  # each window's g, spread evenly
    result = _scatter_taps(
        like.shape, out.dtype, forward, kernel, stride, padding, lambda a, b: share
    )
    return result.astype(out.dtype, copy=False)


POOL_ATTRS = {
    "kernel": AttrSpec("ints"),
    "stride": AttrSpec("ints"),
    "padding": AttrSpec("ints", (0, 0)),
    "ceil_mode": AttrSpec("bool", False),
}
AVG_POOL_ATTRS = {**POOL_ATTRS, "count_include_pad": AttrSpec("bool", True)}


def _max_pool2d_grad_grad(*args: Any, **attrs: Any) -> list[Any]:
    raise UnsupportedError("second derivatives through max_pool2d are not supported")


register(
    OpDef(
        "max_pool2d",
        _infer_pool2d,
        _max_pool2d,
        arity=1,
        attrs=POOL_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, g, y, x, **attrs: [api.build1("max_pool2d_grad", [x, g], attrs)],
        doc="torch.nn.functional.max_pool2d (dilation 1): pads with -inf; NaN propagates",
    )
)
register(
    OpDef(
        "avg_pool2d",
        _infer_avg_pool2d,
        _avg_pool2d,
        arity=1,
        attrs=AVG_POOL_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, g, y, x, **attrs: [api.build1("avg_pool2d_grad", [g, x], attrs)],
        doc="torch.nn.functional.avg_pool2d: the divisor counts the padding inside the padded "
        "bounds with count_include_pad, else only the input elements in the window",
    )
)
register(
    OpDef(
        "max_pool2d_grad",
        _infer_max_pool2d_grad,
        _max_pool2d_grad,
        arity=2,
        attrs=POOL_ATTRS,
        traits=frozenset({"pure"}),
        grad=_max_pool2d_grad_grad,
        doc="the VJP of max_pool2d (same attrs) with respect to x: each window's g goes to "
        "the input element PyTorch picks (the first maximum, row-major within the window, or "
        "its last NaN); overlapping windows add up; x's shape and dtype",
    )
)
register(
    OpDef(
        "avg_pool2d_grad",
        _infer_avg_pool2d_grad,
        _avg_pool2d_grad,
        arity=2,
        attrs=AVG_POOL_ATTRS,
        traits=frozenset({"pure"}),
        grad=lambda api, u, y, g, like, **attrs: [api.build1("avg_pool2d", [u], attrs), None],
        doc="the VJP of avg_pool2d (same attrs) with respect to x: each window's g divided by "
        "its divisor and spread over the window, with like's shape (only like's shape is "
        "read) and g's dtype",
    )
)
