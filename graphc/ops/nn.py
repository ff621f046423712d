"""Neural-net primitives: conv2d, conv_transpose2d, max_pool2d and avg_pool2d (NCHW).

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

import numpy as np

from graphc.errors import DTypeError, ShapeError
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


register(
    OpDef(
        "conv2d",
        _infer_conv2d,
        _conv2d,
        arity=2,
        attrs={
            "stride": AttrSpec("ints", (1, 1)),
            "padding": AttrSpec("int_pairs", ((0, 0), (0, 0))),
            "dilation": AttrSpec("ints", (1, 1)),
            "groups": AttrSpec("int", 1),
        },
        traits=frozenset({"pure"}),
        doc="torch.nn.functional.conv2d without bias: NCHW input, OIHW weight (I = C/groups), "
        "cross-correlation; padding is ((top, bottom), (left, right))",
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
    pads = [(0, 0), (0, 0)]
    for size, count, k, s, p in zip(
        x.shape[2:], out.shape[2:], kernel, stride, padding, strict=True
    ):
        reach = (count - 1) * s + k  # one past the last window, in padded coordinates
        pads.append((p, max(reach - p - size, 0)))
    return np.pad(x, pads, constant_values=value)


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


POOL_ATTRS = {
    "kernel": AttrSpec("ints"),
    "stride": AttrSpec("ints"),
    "padding": AttrSpec("ints", (0, 0)),
    "ceil_mode": AttrSpec("bool", False),
}

register(
    OpDef(
        "max_pool2d",
        _infer_pool2d,
        _max_pool2d,
        arity=1,
        attrs=POOL_ATTRS,
        traits=frozenset({"pure"}),
        doc="torch.nn.functional.max_pool2d (dilation 1): pads with -inf; NaN propagates",
    )
)
register(
    OpDef(
        "avg_pool2d",
        _infer_avg_pool2d,
        _avg_pool2d,
        arity=1,
        attrs={**POOL_ATTRS, "count_include_pad": AttrSpec("bool", True)},
        traits=frozenset({"pure"}),
        doc="torch.nn.functional.avg_pool2d: the divisor counts the padding inside the padded "
        "bounds with count_include_pad, else only the input elements in the window",
    )
)
