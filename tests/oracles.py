"""Naive oracles for the convolution and pooling ops, written from PyTorch's documented
definitions (torch.nn.Conv2d, ConvTranspose2d, MaxPool2d, AvgPool2d), one output
element (or, for the transposed convolution, one input element) at a time, so that
they share no code and no vectorization trick with graphc/ops/nn.py.

The `*_oracle` functions take canonical arguments (pairs); `conv2d`, `conv_transpose2d`,
`max_pool2d` and `avg_pool2d` take the user-facing forms graphc's functions take.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def conv2d_oracle(x, w, stride, padding, dilation, groups):
    """out[n, o, y, x] = the sum over i, a, b of
    xpad[n, g*I + i, y*sh + a*dh, x*sw + b*dw] * w[o, i, a, b], where g is o's group."""
    batch, channels, height, width = x.shape
    out_channels, in_per_group, kh, kw = w.shape
    (top, bottom), (left, right) = padding
    (sh, sw), (dh, dw) = stride, dilation
    out_h = (height + top + bottom - dh * (kh - 1) - 1) // sh + 1
    out_w = (width + left + right - dw * (kw - 1) - 1) // sw + 1
    padded = np.zeros((batch, channels, height + top + bottom, width + left + right))
    padded[:, :, top : top + height, left : left + width] = x
    out = np.zeros((batch, out_channels, out_h, out_w))
    out_per_group = out_channels // groups
    for n in range(batch):
        for o in range(out_channels):
            first = (o // out_per_group) * in_per_group  # the group's first input channel
            for y in range(out_h):
                for x_ in range(out_w):
                    rows = [y * sh + a * dh for a in range(kh)]
                    cols = [x_ * sw + b * dw for b in range(kw)]
                    window = padded[n, first : first + in_per_group][:, rows][:, :, cols]
                    out[n, o, y, x_] = np.sum(window * w[o])
    return out


def conv_transpose2d_oracle(x, w, stride, padding, output_padding, dilation, groups):
    """Each input element scatters x[n, c, i, j] * w[c, o, a, b] to output
    (i*sh + a*dh - ph, j*sw + b*dw - pw) of channel g*O + o; positions outside are dropped."""
    batch, channels, height, width = x.shape
    _, out_per_group, kh, kw = w.shape
    (sh, sw), (ph, pw), (oph, opw), (dh, dw) = stride, padding, output_padding, dilation
    out_h = (height - 1) * sh - 2 * ph + dh * (kh - 1) + oph + 1
    out_w = (width - 1) * sw - 2 * pw + dw * (kw - 1) + opw + 1
    out = np.zeros((batch, out_per_group * groups, out_h, out_w))
    in_per_group = channels // groups
    for n in range(batch):
        for c in range(channels):
            first = (c // in_per_group) * out_per_group  # the group's first output channel
            for i in range(height):
                for j in range(width):
                    for a in range(kh):
                        for b in range(kw):
                            y, x_ = i * sh + a * dh - ph, j * sw + b * dw - pw
                            if 0 <= y < out_h and 0 <= x_ < out_w:
                                out[n, first : first + out_per_group, y, x_] += (
                                    x[n, c, i, j] * w[c, :, a, b]
                                )
    return out


def pool_output_size(size, kernel, stride, padding, ceil_mode):
    """MaxPool2d's documented H_out, floor or ceil; with ceil_mode a window that
    would start in the right padding is dropped."""
    rounding = math.ceil if ceil_mode else math.floor
    count = rounding((size + 2 * padding - kernel) / stride) + 1
    if ceil_mode and (count - 1) * stride >= size + padding:
        count -= 1
    return count


def pool_windows(x, kernel, stride, padding, ceil_mode):
    """Yield (y, x, rows, cols, clipped_rows, clipped_cols) per output position: the
    window's rows/cols in padded bounds, and the same clipped to the real input."""
    height, width = x.shape[2:]
    out_h = pool_output_size(height, kernel[0], stride[0], padding[0], ceil_mode)
    out_w = pool_output_size(width, kernel[1], stride[1], padding[1], ceil_mode)
    for y in range(out_h):
        for x_ in range(out_w):
            row0, col0 = y * stride[0] - padding[0], x_ * stride[1] - padding[1]
            # a window may run past the right padding under ceil_mode: cut it there
            rows = [r for r in range(row0, row0 + kernel[0]) if r < height + padding[0]]
            cols = [c for c in range(col0, col0 + kernel[1]) if c < width + padding[1]]
            yield (
                y,
                x_,
                rows,
                cols,
                [r for r in rows if 0 <= r < height],
                [c for c in cols if 0 <= c < width],
            )


def max_pool2d_oracle(x, kernel, stride, padding, ceil_mode):
    windows = list(pool_windows(x, kernel, stride, padding, ceil_mode))
    out_h, out_w = windows[-1][0] + 1, windows[-1][1] + 1
    out = np.zeros((*x.shape[:2], out_h, out_w))
    for y, x_, _, _, rows, cols in windows:
        # -inf padding never wins, so the max over the real elements is the answer
        out[:, :, y, x_] = x[:, :, rows][:, :, :, cols].max(axis=(2, 3))
    return out


def avg_pool2d_oracle(x, kernel, stride, padding, ceil_mode, count_include_pad):
    windows = list(pool_windows(x, kernel, stride, padding, ceil_mode))
    out_h, out_w = windows[-1][0] + 1, windows[-1][1] + 1
    out = np.zeros((*x.shape[:2], out_h, out_w))
    for y, x_, rows, cols, real_rows, real_cols in windows:
        total = x[:, :, real_rows][:, :, :, real_cols].sum(axis=(2, 3))
        divisor = len(rows) * len(cols) if count_include_pad else len(real_rows) * len(real_cols)
        out[:, :, y, x_] = total / divisor
    return out


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)  # type: ignore[return-value]


def _padding_pairs(padding: Any) -> tuple[tuple[int, int], tuple[int, int]]:
    if isinstance(padding, tuple | list) and all(isinstance(p, tuple | list) for p in padding):
        return tuple(tuple(p) for p in padding)  # type: ignore[return-value]
    h, w = _pair(padding)
    return ((h, h), (w, w))


def conv2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    out = conv2d_oracle(x, w, _pair(stride), _padding_pairs(padding), _pair(dilation), groups)
    return out.astype(x.dtype)


def conv_transpose2d(
    x: np.ndarray,
    w: np.ndarray,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
) -> np.ndarray:
    out = conv_transpose2d_oracle(
        x, w, _pair(stride), _pair(padding), _pair(output_padding), _pair(dilation), groups
    )
    return out.astype(x.dtype)


def max_pool2d(
    x: np.ndarray, kernel: Any, stride: Any = None, padding: Any = 0, ceil_mode: bool = False
) -> np.ndarray:
    kernel = _pair(kernel)
    stride = kernel if stride is None else _pair(stride)
    return max_pool2d_oracle(x, kernel, stride, _pair(padding), ceil_mode).astype(x.dtype)


def avg_pool2d(
    x: np.ndarray,
    kernel: Any,
    stride: Any = None,
    padding: Any = 0,
    ceil_mode: bool = False,
    count_include_pad: bool = True,
) -> np.ndarray:
    kernel = _pair(kernel)
    stride = kernel if stride is None else _pair(stride)
    out = avg_pool2d_oracle(x, kernel, stride, _pair(padding), ceil_mode, count_include_pad)
    return out.astype(x.dtype)
