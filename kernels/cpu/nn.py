"""CPU kernels for the neural-net ops of ``graphc.ops.nn`` (NCHW), and their emitters.

Part of graphc.kernels. Each public function is a numba kernel (``@kernel``) that the
generated entry function calls through the alias ``nnk``: it takes the input arrays (any
strides), a preallocated C-contiguous output ``out`` of the op's shape and dtype (float32
or float64), and the canonical attributes as plain ints, and fills ``out`` completely.
Sizes that the output's shape already fixes are not passed: the bottom and right padding
of conv2d and its VJPs, conv_transpose2d's output_padding, pooling's ceil_mode and the
shape-only ``like`` operands. The numpy references in ``graphc.ops.nn`` are the
specification; tests/kernels/test_cpu_nn.py checks every kernel against them.

Each public kernel ``K`` has a form ``K_c`` that takes C-contiguous inputs; ``K`` makes
its inputs C-contiguous (``np.ascontiguousarray``: a no-op for contiguous arrays, one
copy for a strided view) and calls it. Generated code calls ``K_c`` and makes the
inputs contiguous itself: in the entry, which compiles beside the calls, the copies
cost nothing before the first result, while the wrapper would be one more numba
function compiled first (0.2-0.35 s each).

Algorithms:

- **conv2d** is im2col + GEMM, per image and group: the receptive fields of the group's
  input channels become the columns of ``col`` (Cg*kH*kW rows, one column per output
  pixel; taps in the padding are 0), and ``out[n, group] = W[group] @ col`` is one BLAS
  call (numba's ``np.dot`` with an output array). A 1x1 kernel with stride 1 and no
  padding needs no im2col: the image itself is the column matrix.
- **conv2d_grad_weight** is ``sum over n of dY[n, group] @ col(x[n, group])^T``.
- **conv2d_grad_input** and **conv_transpose2d** are one algorithm, the transpose of
  conv2d: ``col = W[group]^T @ Y[n, group]`` (one GEMM), then col2im adds each column
  entry back to the input pixel it was read from, dropping the taps that fall in the
  padding. For conv_transpose2d, x plays conv2d's output grid and ``out`` its input
  image; its IOHW weight read per group is exactly conv2d's ``W[group]`` matrix.
- **Pooling** is direct loops, one output row at a time and one window tap at a time,
  with the innermost loop over the output width: each tap's range of output columns
  whose input column is inside the image is computed once per call
  (``_column_ranges``), so padding is never materialized and the inner loops have no
  bounds tests; they vectorize (see "Row primitives" below).
- **max_pool2d** folds numpy's ``np.maximum(running, tap)`` over the taps in row-major
  order, as the reference does: NaN propagates, and of -0 and +0 the later one wins.
  **max_pool2d_grad** picks each window's element as the reference's scan does (the
  first maximum, row-major, or the last NaN; see ``_pick_row``), then adds g to it.
- **avg_pool2d** sums the taps in row-major order and divides by the reference's divisor
  (the window clipped to the padded input with count_include_pad, else to the input),
  converted to the output dtype before the division. **avg_pool2d_grad** spreads
  ``g / divisor`` over each window.

The pooling kernels add in the reference's order (per position, tap by tap, row-major),
so in float32 and float64 they agree with the references bit for bit, signed zeros
included; one exception: a max_pool2d window holding several NaNs gives its last NaN
where the reference gives its first, which differs only in the NaN's sign and payload
bits. The convolutions differ from the references by BLAS's summation order only.

Every index comes from ranges clipped to the arrays' bounds (numba does not check
bounds), and every loop runs zero times on an empty batch or channel count.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from numba import prange, uint64

from graphc.ir import Node, Value
from graphc.kernels.cpu.emit import Emitter, emits, library
from graphc.kernels.cpu.jit import kernel
from graphc.kernels.cpu.lib import as_c

__all__ = [
    "avg_pool2d",
    "avg_pool2d_c",
    "avg_pool2d_grad",
    "avg_pool2d_grad_c",
    "conv2d",
    "conv2d_c",
    "conv2d_grad_input",
    "conv2d_grad_input_c",
    "conv2d_grad_weight",
    "conv2d_grad_weight_c",
    "conv_transpose2d",
    "conv_transpose2d_c",
    "max_pool2d",
    "max_pool2d_2x2_c",
    "max_pool2d_c",
    "max_pool2d_grad",
    "max_pool2d_grad_2x2_c",
    "max_pool2d_grad_c",
]


# ------------------------------------------------------------------ row primitives
#
# Every inner loop runs over a range [lo, hi) of output columns of one row, computed once
# per tap so that every position it touches lies inside its array (``_column_ranges``).
# Indices are cast to uint64: numba then emits no negative-index wraparound, which would
# keep LLVM from vectorizing the loop. A runtime stride of 1 is vectorized anyway (LLVM
# versions the loop on it); stride 2, the usual downsampling stride, is spelled as a
# constant so that its interleaved loads vectorize too. These helpers are inlined into
# their callers at numba level: a call per row would cost more than the row.

_row = kernel(inline="always")


@_row
def _copy_row(target, source, lo, hi, stride, offset):
    """target[j] = source[j*stride + offset] for j in [lo, hi)."""
    if stride == 2:
        for j in range(lo, hi):
            target[uint64(j)] = source[uint64(2 * j + offset)]
    else:
        for j in range(lo, hi):
            target[uint64(j)] = source[uint64(j * stride + offset)]


@_row
def _add_row(target, source, lo, hi, stride, offset):
    """target[j] += source[j*stride + offset] for j in [lo, hi)."""
    if stride == 2:
        for j in range(lo, hi):
            target[uint64(j)] += source[uint64(2 * j + offset)]
    else:
        for j in range(lo, hi):
            target[uint64(j)] += source[uint64(j * stride + offset)]


@_row
def _scatter_row(target, source, lo, hi, stride, offset):
    """target[j*stride + offset] += source[j] for j in [lo, hi)."""
    if stride == 2:
        for j in range(lo, hi):
            target[uint64(2 * j + offset)] += source[uint64(j)]
    else:
        for j in range(lo, hi):
            target[uint64(j * stride + offset)] += source[uint64(j)]


@_row
def _max_row(target, source, lo, hi, stride, offset):
    """target[j] = numpy's np.maximum(target[j], source[j*stride + offset]) for j in [lo, hi).

    numpy's maximum(a, b) is b unless a > b or a is NaN: a NaN wins, and a tie (-0 and +0)
    gives b. numba's np.maximum(a, b) gives a on a tie, so the operands are swapped; then
    only a NaN in both differs (numba gives source's), which shows in a NaN's sign and
    payload bits only. A select of loaded values: LLVM keeps it as blends (spelling out
    numpy's rule in a ternary compiles to masked stores, several times slower).
    """
    if stride == 2:
        for j in range(lo, hi):
            i = uint64(j)
            target[i] = np.maximum(source[uint64(2 * j + offset)], target[i])
    else:
        for j in range(lo, hi):
            i = uint64(j)
            target[i] = np.maximum(source[uint64(j * stride + offset)], target[i])


@_row
def _fill(vector, lo, hi, value):
    """vector[lo:hi] = value."""
    for j in range(lo, hi):
        vector[uint64(j)] = value


@_row
def _fill_zero(out):
    """out[...] = 0, for a C-contiguous array."""
    flat = out.reshape(out.size)
    _fill(flat, 0, flat.size, 0.0)


@_row
def _column_ranges(taps, step, first, stride, size, count):
    """For each tap b, the output columns [lo, hi) (rows of the result, a sub-range of
    [0, count)) whose input column j*stride + b*step + first lies inside [0, size)."""
    ranges = np.empty((taps, 2), np.int64)
    for b in range(taps):
        offset = b * step + first
        lo = 0 if offset >= 0 else (stride - 1 - offset) // stride
        last = size - 1 - offset  # the greatest j*stride allowed
        hi = min(last // stride + 1 if last >= 0 else 0, count)
        ranges[b, 0] = min(lo, hi)
        ranges[b, 1] = hi
    return ranges


@_row
def _is_pointwise(kh, kw, sh, sw, top, left, in_h, in_w, out_h, out_w):
    """Whether the convolution maps each pixel to itself: a 1x1 kernel, stride 1, no padding."""
    one_by_one = kh == 1 and kw == 1 and sh == 1 and sw == 1
    return one_by_one and top == 0 and left == 0 and in_h == out_h and in_w == out_w


# ------------------------------------------------------------- im2col and col2im


@kernel
def _im2col(x, n, c0, channels, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w, col):
    """col[(c*kh + a)*kw + b, oh*out_w + ow] = x[n, c0 + c, oh*sh - top + a*dh,
    ow*sw - left + b*dw], and 0 where that position is in the padding."""
    height, width = x.shape[2], x.shape[3]
    ranges = _column_ranges(kw, dw, -left, sw, width, out_w)
    for c in range(channels):
        plane = x[n, c0 + c]
        for a in range(kh):
            for b in range(kw):
                row = col[(c * kh + a) * kw + b]
                lo, hi = ranges[b, 0], ranges[b, 1]
                for oh in range(out_h):
                    ih = oh * sh - top + a * dh
                    line = row[oh * out_w : (oh + 1) * out_w]
                    if ih < 0 or ih >= height:
                        _fill(line, 0, out_w, 0.0)  # the whole row of taps is padding
                        continue
                    _fill(line, 0, lo, 0.0)
                    _copy_row(line, plane[ih], lo, hi, sw, b * dw - left)
                    _fill(line, hi, out_w, 0.0)


@kernel
def _col2im(col, image, n, c0, channels, kh, kw, sh, sw, top, left, dh, dw, grid_h, grid_w):
    """The transpose of ``_im2col``: image[n, c0 + c, oh*sh - top + a*dh, ow*sw - left + b*dw]
    += col[(c*kh + a)*kw + b, oh*grid_w + ow] for the positions inside the image."""
    height, width = image.shape[2], image.shape[3]
    ranges = _column_ranges(kw, dw, -left, sw, width, grid_w)
    for c in range(channels):
        plane = image[n, c0 + c]
        for a in range(kh):
            for b in range(kw):
                row = col[(c * kh + a) * kw + b]
                for oh in range(grid_h):
                    ih = oh * sh - top + a * dh
                    if 0 <= ih < height:
                        line = row[oh * grid_w : (oh + 1) * grid_w]
                        _scatter_row(plane[ih], line, ranges[b, 0], ranges[b, 1], sw, b * dw - left)


# ------------------------------------------------------------------ convolutions


@kernel
def conv2d_c(x, w, out, sh, sw, top, left, dh, dw, groups):
    """conv2d on C-contiguous x and w."""
    n_batch, _, height, width = x.shape
    out_channels, group_channels, kh, kw = w.shape
    out_h, out_w = out.shape[2], out.shape[3]
    per_group = out_channels // groups
    weights = w.reshape(groups, per_group, group_channels * kh * kw)
    images = x.reshape(n_batch, groups, group_channels, height * width)
    result = out.reshape(n_batch, groups, per_group, out_h * out_w)
    pointwise = _is_pointwise(kh, kw, sh, sw, top, left, height, width, out_h, out_w)
    taps = 0 if pointwise else group_channels * kh * kw  # no column buffer when pointwise
    buffer = np.empty((taps, out_h * out_w), out.dtype)
    for n in range(n_batch):
        for g in range(groups):
            col = images[n, g]  # a pointwise conv's column matrix is the image
            if not pointwise:
                _im2col(
                    x, n, g * group_channels, group_channels, kh, kw, sh, sw, top, left,
                    dh, dw, out_h, out_w, buffer,
                )  # fmt: skip
                col = buffer
            np.dot(weights[g], col, result[n, g])


@kernel
def conv2d(x, w, out, sh, sw, top, left, dh, dw, groups):
    """conv2d(x, w) into out (N, O, outH, outW); bottom and right padding follow from out."""
    xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
    conv2d_c(xc, wc, out, sh, sw, top, left, dh, dw, groups)


@kernel
def _add_into(target, values):
    """target += values, for two C-contiguous matrices of one shape."""
    for i in range(target.shape[0]):
        _add_row(target[i], values[i], 0, target.shape[1], 1, 0)


@kernel
def conv2d_grad_weight_c(x, g, out, sh, sw, top, left, dh, dw, groups):
    """conv2d_grad_weight on C-contiguous x and g."""
    n_batch, _, height, width = x.shape
    out_channels, group_channels, kh, kw = out.shape
    out_h, out_w = g.shape[2], g.shape[3]
    per_group = out_channels // groups
    taps = group_channels * kh * kw
    grads = g.reshape(n_batch, groups, per_group, out_h * out_w)
    images = x.reshape(n_batch, groups, group_channels, height * width)
    result = out.reshape(groups, per_group, taps)
    pointwise = _is_pointwise(kh, kw, sh, sw, top, left, height, width, out_h, out_w)
    _fill_zero(out)
    buffer = np.empty((0 if pointwise else taps, out_h * out_w), out.dtype)
    partial = np.empty((per_group, taps), out.dtype)
    for n in range(n_batch):
        for group in range(groups):
            col = images[n, group]  # a pointwise conv's column matrix is the image
            if not pointwise:
                _im2col(
                    x, n, group * group_channels, group_channels, kh, kw, sh, sw, top, left,
                    dh, dw, out_h, out_w, buffer,
                )  # fmt: skip
                col = buffer
            np.dot(grads[n, group], col.T, partial)
            _add_into(result[group], partial)


@kernel
def conv2d_grad_weight(x, g, out, sh, sw, top, left, dh, dw, groups):
    """conv2d's VJP with respect to w: out (O, C/groups, kH, kW) = sum over n of
    g[n, group] @ im2col(x[n, group])^T."""
    xc, gc = np.ascontiguousarray(x), np.ascontiguousarray(g)
    conv2d_grad_weight_c(xc, gc, out, sh, sw, top, left, dh, dw, groups)


@kernel
def _transposed_conv(weights, inputs, out, kh, kw, sh, sw, top, left, dh, dw, grid_h, grid_w):
    """out = col2im(weights[group]^T @ inputs[n, group]) per image and group.

    weights is (groups, M, Co*kh*kw), inputs (N, groups, M, grid_h*grid_w) and out
    (N, groups*Co, H, W): the transpose of a conv2d from out to a grid_h x grid_w grid
    whose weight matrix per group is weights[group].
    """
    n_batch, groups = inputs.shape[0], inputs.shape[1]
    taps = weights.shape[2]
    out_channels, height, width = out.shape[1], out.shape[2], out.shape[3]
    per_group = out_channels // groups
    result = out.reshape(n_batch, groups, per_group, height * width)
    pointwise = _is_pointwise(kh, kw, sh, sw, top, left, grid_h, grid_w, height, width)
    if not pointwise:
        _fill_zero(out)
    buffer = np.empty((0 if pointwise else taps, grid_h * grid_w), out.dtype)
    for n in range(n_batch):
        for g in range(groups):
            # pointwise: the columns are the output pixels themselves, so no col2im
            col = result[n, g] if pointwise else buffer
            np.dot(weights[g].T, inputs[n, g], col)
            if not pointwise:
                _col2im(
                    col, out, n, g * per_group, per_group, kh, kw, sh, sw, top, left, dh, dw,
                    grid_h, grid_w,
                )  # fmt: skip


@kernel
def conv2d_grad_input(g, w, out, sh, sw, top, left, dh, dw, groups):
    """conv2d's VJP with respect to x: out (x's shape N, C, H, W) = col2im(w^T @ g) per
    group; input pixels that conv2d never read get 0."""
    gc, wc = np.ascontiguousarray(g), np.ascontiguousarray(w)
    conv2d_grad_input_c(gc, wc, out, sh, sw, top, left, dh, dw, groups)


@kernel
def conv2d_grad_input_c(gc, wc, out, sh, sw, top, left, dh, dw, groups):
    """conv2d_grad_input on C-contiguous g and w."""
    n_batch, out_channels, out_h, out_w = gc.shape
    _, group_channels, kh, kw = wc.shape
    per_group = out_channels // groups
    weights = wc.reshape(groups, per_group, group_channels * kh * kw)
    grads = gc.reshape(n_batch, groups, per_group, out_h * out_w)
    _transposed_conv(weights, grads, out, kh, kw, sh, sw, top, left, dh, dw, out_h, out_w)


@kernel
def conv_transpose2d(x, w, out, sh, sw, ph, pw, dh, dw, groups):
    """conv_transpose2d(x, w) into out (N, O, outH, outW); w is IOHW (C, O/groups, kH, kW)
    and output_padding follows from out's shape."""
    xc, wc = np.ascontiguousarray(x), np.ascontiguousarray(w)
    conv_transpose2d_c(xc, wc, out, sh, sw, ph, pw, dh, dw, groups)


@kernel
def conv_transpose2d_c(xc, wc, out, sh, sw, ph, pw, dh, dw, groups):
    """conv_transpose2d on C-contiguous x and w."""
    n_batch, channels, height, width = xc.shape
    _, per_group, kh, kw = wc.shape
    group_channels = channels // groups
    weights = wc.reshape(groups, group_channels, per_group * kh * kw)
    images = xc.reshape(n_batch, groups, group_channels, height * width)
    _transposed_conv(weights, images, out, kh, kw, sh, sw, ph, pw, dh, dw, height, width)


# ---------------------------------------------------------------------- pooling


@_row
def _window_rows(oh, kh, sh, ph, height):
    """Window oh's first row in padded coordinates, and its input rows [lo, hi)."""
    start = oh * sh - ph
    return start, max(start, 0), min(start + kh, height)


@kernel
def max_pool2d_c(x, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d on a C-contiguous x."""
    n_batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    ranges = _column_ranges(kw, np.intp(1), -pw, sw, width, out_w)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out_h):
                row = out[n, c, oh]
                _fill(row, 0, out_w, -np.inf)
                _, lo_h, hi_h = _window_rows(oh, kh, sh, ph, height)
                for ih in range(lo_h, hi_h):
                    source = x[n, c, ih]
                    for b in range(kw):
                        _max_row(row, source, ranges[b, 0], ranges[b, 1], sw, b - pw)


@kernel
def max_pool2d_2x2_c(x, out):
    """max_pool2d for 2x2 windows at stride 2 without padding, every window inside x
    (C-contiguous x): numpy's maximum folded over the window's taps in row-major order,
    as the general kernel does (NaN propagates; of -0 and +0 the later wins), in one
    branch-free pass vectorized across a row of windows."""
    out_h, out_w = out.shape[2], out.shape[3]
    if 2 * out_h > x.shape[2] or 2 * out_w > x.shape[3] or out.shape[:2] != x.shape[:2]:
        raise ValueError("max_pool2d_2x2: operand shapes do not match")
    for n in range(x.shape[0]):
        for c in range(x.shape[1]):
            for oh in range(out_h):
                top, bottom, row = x[n, c, 2 * oh], x[n, c, 2 * oh + 1], out[n, c, oh]
                for ow in range(out_w):
                    left, right = uint64(2 * ow), uint64(2 * ow + 1)
                    # numpy's maximum(running, tap): tap unless running > tap or is NaN
                    best = top[left]
                    v = top[right]
                    best = best if (best > v) | (best != best) else v
                    v = bottom[left]
                    best = best if (best > v) | (best != best) else v
                    v = bottom[right]
                    row[uint64(ow)] = best if (best > v) | (best != best) else v


@kernel
def max_pool2d(x, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d(x) into out (N, C, outH, outW); ceil_mode follows from out's shape."""
    max_pool2d_c(np.ascontiguousarray(x), out, kh, kw, sh, sw, ph, pw)


@_row
def _pool_extent(start, size_k, size, padding, count_include_pad):
    """The reference's divisor along one axis for the window that starts at `start`."""
    end = min(start + size_k, size + padding)  # clipped to the padded input (ceil_mode)
    if count_include_pad:
        return end - start
    return min(end, size) - max(start, 0)


@kernel
def _pool_divisors(out, kh, kw, sh, sw, ph, pw, height, width, count_include_pad):
    """The (outH, outW) divisors of avg pooling, in out's dtype (the reference's cast)."""
    out_h, out_w = out.shape[2], out.shape[3]
    divisors = np.empty((out_h, out_w), out.dtype)
    for oh in range(out_h):
        rows = _pool_extent(oh * sh - ph, kh, height, ph, count_include_pad)
        for ow in range(out_w):
            divisors[oh, ow] = rows * _pool_extent(ow * sw - pw, kw, width, pw, count_include_pad)
    return divisors


@kernel
def avg_pool2d_c(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d on a C-contiguous x."""
    n_batch, channels, height, width = x.shape
    out_h, out_w = out.shape[2], out.shape[3]
    divisors = _pool_divisors(out, kh, kw, sh, sw, ph, pw, height, width, count_include_pad)
    ranges = _column_ranges(kw, np.intp(1), -pw, sw, width, out_w)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out_h):
                row = out[n, c, oh]
                _fill(row, 0, out_w, 0.0)
                _, lo_h, hi_h = _window_rows(oh, kh, sh, ph, height)
                for ih in range(lo_h, hi_h):
                    source = x[n, c, ih]
                    for b in range(kw):
                        _add_row(row, source, ranges[b, 0], ranges[b, 1], sw, b - pw)
                divisor = divisors[oh]
                for ow in range(out_w):
                    row[ow] = row[ow] / divisor[ow]


@kernel
def avg_pool2d(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d(x) into out (N, C, outH, outW); count_include_pad is 0 or 1."""
    avg_pool2d_c(np.ascontiguousarray(x), out, kh, kw, sh, sw, ph, pw, count_include_pad)


@kernel
def _scatter_by_tap(values, target, kh, kw, sh, sw, ph, pw, ranges):
    """target[oh*sh - ph + a, ow*sw - pw + b] += values[oh, ow] for every tap (a, b) inside
    target, in the reference's order: tap by tap, row-major (the windows of one tap never
    share a position)."""
    height = target.shape[0]
    for a in range(kh):
        for b in range(kw):
            for oh in range(values.shape[0]):
                ih = oh * sh - ph + a
                if 0 <= ih < height:
                    _scatter_row(target[ih], values[oh], ranges[b, 0], ranges[b, 1], sw, b - pw)


@kernel
def avg_pool2d_grad_c(g, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d_grad on a C-contiguous g."""
    n_batch, channels, height, width = out.shape
    out_h, out_w = g.shape[2], g.shape[3]
    divisors = _pool_divisors(g, kh, kw, sh, sw, ph, pw, height, width, count_include_pad)
    ranges = _column_ranges(kw, np.intp(1), -pw, sw, width, out_w)
    share = np.empty((out_h, out_w), out.dtype)
    _fill_zero(out)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out_h):
                for ow in range(out_w):
                    share[oh, ow] = g[n, c, oh, ow] / divisors[oh, ow]
            _scatter_by_tap(share, out[n, c], kh, kw, sh, sw, ph, pw, ranges)


@kernel
def avg_pool2d_grad(g, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d's VJP into out (x's shape): each window's g / divisor over the window."""
    avg_pool2d_grad_c(np.ascontiguousarray(g), out, kh, kw, sh, sw, ph, pw, count_include_pad)


@_row
def _last_nan(x, n, c, lo_h, start_h, hi_h, start_w, kw):
    """The tap ((ih - start_h)*kw + iw - start_w) of the last NaN of a window, row-major."""
    width = x.shape[3]
    found = -1
    for ih in range(lo_h, hi_h):
        for iw in range(max(start_w, 0), min(start_w + kw, width)):
            if x[n, c, ih, iw] != x[n, c, ih, iw]:
                found = (ih - start_h) * kw + iw - start_w
    return found


@kernel
def _pick_row(x, n, c, oh, kh, kw, sh, sw, ph, pw, ranges, marks, best, picked):
    """picked[ow] = the tap (a*kw + b) that the reference's scan picks in window (oh, ow):
    its first element (row-major), then each later one greater than the running maximum
    or NaN. That is the first tap holding the window's maximum, or the last NaN when there
    is one. best is scratch space of one output row.

    A data-dependent branch per element would mispredict on random data, so the maximum
    comes first (the forward kernel's vectorized rows), then the smallest matching tap
    (a branch-free np.minimum); only windows whose maximum is NaN, which matches nothing,
    are scanned again, for their last NaN.

    picked has x's float dtype and the tap numbers come from marks (marks[t] = t, in that
    dtype): one vector width for the whole loop, and a minimum of loaded floats stays a
    blend. (An int64 minimum became masked stores, slow on AMD; floats converted from
    ints in the loop became per-lane conversions.)
    """
    height = x.shape[2]
    out_w = picked.size
    start, lo_h, hi_h = _window_rows(oh, kh, sh, ph, height)
    _fill(best, 0, out_w, -np.inf)
    for ih in range(lo_h, hi_h):
        for b in range(kw):
            _max_row(best, x[n, c, ih], ranges[b, 0], ranges[b, 1], sw, b - pw)
    nowhere = kh * kw  # past every tap
    _fill(picked, 0, out_w, marks[nowhere])
    for ih in range(lo_h, hi_h):
        source = x[n, c, ih]
        for b in range(kw):
            tap = (ih - start) * kw + b
            hit, miss = marks[tap], marks[nowhere]
            for j in range(ranges[b, 0], ranges[b, 1]):
                i = uint64(j)
                holds_maximum = source[uint64(j * sw + b - pw)] == best[i]
                picked[i] = np.minimum(picked[i], hit if holds_maximum else miss)
    for ow in range(out_w):
        if picked[ow] == nowhere:
            picked[ow] = _last_nan(x, n, c, lo_h, start, hi_h, ow * sw - pw, kw)


@kernel
def _route_by_tap(picked, grads, target, kh, kw, sh, sw, ph, pw, ranges):
    """target[oh*sh - ph + a, ow*sw - pw + b] += grads[oh, ow] where window (oh, ow) picked
    tap (a, b), tap by tap in the reference's order (a position that several windows
    picked adds their g in that order). The other windows add 0, as the reference's
    np.where does; that keeps the loop free of branches."""
    height = target.shape[0]
    zero = target.dtype.type(0)
    for a in range(kh):
        for b in range(kw):
            tap = picked.dtype.type(a * kw + b)
            for oh in range(picked.shape[0]):
                ih = oh * sh - ph + a
                if ih < 0 or ih >= height:
                    continue
                chosen, source, line = picked[oh], grads[oh], target[ih]
                for j in range(ranges[b, 0], ranges[b, 1]):
                    i = uint64(j)
                    value = source[i]
                    line[uint64(j * sw + b - pw)] += value if chosen[i] == tap else zero


@kernel
def max_pool2d_grad_c(x, g, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d_grad on C-contiguous x and g."""
    n_batch, channels, _, width = x.shape
    out_h, out_w = g.shape[2], g.shape[3]
    ranges = _column_ranges(kw, np.intp(1), -pw, sw, width, out_w)
    best = np.empty(out_w, x.dtype)
    picked = np.empty((out_h, out_w), x.dtype)
    marks = np.empty(kh * kw + 1, x.dtype)
    for tap in range(marks.size):
        marks[tap] = tap
    _fill_zero(out)
    for n in range(n_batch):
        for c in range(channels):
            for oh in range(out_h):
                _pick_row(x, n, c, oh, kh, kw, sh, sw, ph, pw, ranges, marks, best, picked[oh])
            _route_by_tap(picked, g[n, c], out[n, c], kh, kw, sh, sw, ph, pw, ranges)


@kernel
def max_pool2d_grad_2x2_c(x, g, out):
    """max_pool2d_grad for 2x2 windows at stride 2 without padding, every window inside
    x (C-contiguous x and g): the windows tile x, so each position gets its window's g
    if the reference's scan picks it, else 0 (the 0 + g of its sum, signed zeros
    included), and positions no window covers (an odd last row or column) get 0. One
    branch-free pass, vectorized across a row of windows; the general kernel's per-tap
    passes took 2.5x longer on W7."""
    n_batch, channels, height, width = x.shape
    out_h, out_w = g.shape[2], g.shape[3]
    fits = 2 * out_h <= height and 2 * out_w <= width and g.shape[:2] == x.shape[:2]
    if not fits or out.shape != x.shape:
        raise ValueError("max_pool2d_grad_2x2: operand shapes do not match")
    zero, one, two, three = x.dtype.type(0), x.dtype.type(1), x.dtype.type(2), x.dtype.type(3)
    for n in range(n_batch):
        for c in range(channels):
            plane, target, grads = x[n, c], out[n, c], g[n, c]
            for ih in range(2 * out_h, height):
                _fill(target[ih], 0, width, 0.0)
            for oh in range(out_h):
                top, bottom = plane[2 * oh], plane[2 * oh + 1]
                above, below, row = target[2 * oh], target[2 * oh + 1], grads[oh]
                for ow in range(out_w):
                    left, right = uint64(2 * ow), uint64(2 * ow + 1)
                    # the scan: the first tap, then each later one greater or NaN (selects,
                    # no branches, and taps in x's dtype, one vector width: it vectorizes)
                    best = top[left]
                    v = top[right]
                    wins = (v > best) | (v != v)
                    tap = one if wins else zero
                    best = v if wins else best
                    v = bottom[left]
                    wins = (v > best) | (v != v)
                    tap = two if wins else tap
                    best = v if wins else best
                    v = bottom[right]
                    tap = three if (v > best) | (v != v) else tap
                    value = zero + row[uint64(ow)]
                    above[left] = value if tap == zero else zero
                    above[right] = value if tap == one else zero
                    below[left] = value if tap == two else zero
                    below[right] = value if tap == three else zero
                for ih in range(2 * oh, 2 * oh + 2):
                    _fill(target[ih], 2 * out_w, width, 0.0)


@kernel
def max_pool2d_grad(x, g, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d's VJP into out (x's shape): each window's g added to the element the
    reference picks (the first maximum, row-major, or the last NaN)."""
    max_pool2d_grad_c(np.ascontiguousarray(x), np.ascontiguousarray(g), out, kh, kw, sh, sw, ph, pw)


# ------------------------------------------------------------ on every thread
#
# Where graphc compiles parallel code (numba has more than one thread), the entry calls
# these forms ``K_par_c`` instead of ``K_c``: each runs its twin ``K_c`` on slices of the
# batch, the slices shared by the threads in a ``prange``. A batch entry's result
# depends on that entry alone, and each is computed by the same code either way, so the
# results are the twin's bit for bit (conv2d_grad_weight, which sums over the batch,
# keeps the twin's order of additions). The per-image GEMMs inside are small enough that
# OpenBLAS runs each on the calling thread. The Python entry that answers while the
# entry compiles calls the twins (runtime/interpreted.py): no parallel compile before
# the first result. W7's step on 2 threads: 10.5 -> 6.9 ms.

PIECES = 16  # slices of a batch, shared by the threads
TERMS = 1 << 22  # conv2d_grad_weight_par_c's per-image terms held at once, in numbers

_parallel = kernel(parallel=True)


@_row
def _piece(n_batch, piece):
    """The batch entries [lo, hi) of slice `piece` of PIECES (empty past the batch)."""
    step = (n_batch + PIECES - 1) // PIECES
    lo = min(piece * step, n_batch)
    return lo, min(lo + step, n_batch)


@_parallel
def conv2d_par_c(x, w, out, sh, sw, top, left, dh, dw, groups):
    """conv2d_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            xs, outs = as_c(x[lo:hi]), as_c(out[lo:hi])
            conv2d_c(xs, w, outs, sh, sw, top, left, dh, dw, groups)


@_parallel
def conv2d_grad_input_par_c(gc, wc, out, sh, sw, top, left, dh, dw, groups):
    """conv2d_grad_input_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(gc.shape[0], piece)
        if lo < hi:
            gs, outs = as_c(gc[lo:hi]), as_c(out[lo:hi])
            conv2d_grad_input_c(gs, wc, outs, sh, sw, top, left, dh, dw, groups)


@_parallel
def conv_transpose2d_par_c(xc, wc, out, sh, sw, ph, pw, dh, dw, groups):
    """conv_transpose2d_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(xc.shape[0], piece)
        if lo < hi:
            xs, outs = as_c(xc[lo:hi]), as_c(out[lo:hi])
            conv_transpose2d_c(xs, wc, outs, sh, sw, ph, pw, dh, dw, groups)


@_parallel
def conv2d_grad_weight_par_c(x, g, out, sh, sw, top, left, dh, dw, groups):
    """conv2d_grad_weight_c: each image's term (conv2d_grad_weight_c of that image
    alone) on some thread, a block of images at a time, then the terms added in image
    order, as the twin adds them."""
    n_batch, size = x.shape[0], out.size
    block = max(1, min(n_batch, TERMS // max(size, 1)))
    terms = np.empty((block, size), out.dtype)
    total = out.reshape(size)
    _fill(total, 0, size, 0.0)
    for first in range(0, n_batch, block):
        count = min(block, n_batch - first)
        for j in prange(count):
            n = first + j
            term = terms[j].reshape(out.shape)
            conv2d_grad_weight_c(
                as_c(x[n : n + 1]), as_c(g[n : n + 1]), term, sh, sw, top, left, dh, dw, groups
            )
        for j in range(count):
            _add_row(total, terms[j], 0, size, 1, 0)


@_parallel
def max_pool2d_par_c(x, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            max_pool2d_c(as_c(x[lo:hi]), as_c(out[lo:hi]), kh, kw, sh, sw, ph, pw)


@_parallel
def max_pool2d_2x2_par_c(x, out):
    """max_pool2d_2x2_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            max_pool2d_2x2_c(as_c(x[lo:hi]), as_c(out[lo:hi]))


@_parallel
def max_pool2d_grad_par_c(x, g, out, kh, kw, sh, sw, ph, pw):
    """max_pool2d_grad_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            xs, gs, outs = as_c(x[lo:hi]), as_c(g[lo:hi]), as_c(out[lo:hi])
            max_pool2d_grad_c(xs, gs, outs, kh, kw, sh, sw, ph, pw)


@_parallel
def max_pool2d_grad_2x2_par_c(x, g, out):
    """max_pool2d_grad_2x2_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            max_pool2d_grad_2x2_c(as_c(x[lo:hi]), as_c(g[lo:hi]), as_c(out[lo:hi]))


@_parallel
def avg_pool2d_par_c(x, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(x.shape[0], piece)
        if lo < hi:
            xs, outs = as_c(x[lo:hi]), as_c(out[lo:hi])
            avg_pool2d_c(xs, outs, kh, kw, sh, sw, ph, pw, count_include_pad)


@_parallel
def avg_pool2d_grad_par_c(g, out, kh, kw, sh, sw, ph, pw, count_include_pad):
    """avg_pool2d_grad_c over slices of the batch, on every thread."""
    for piece in prange(PIECES):
        lo, hi = _piece(g.shape[0], piece)
        if lo < hi:
            gs, outs = as_c(g[lo:hi]), as_c(out[lo:hi])
            avg_pool2d_grad_c(gs, outs, kh, kw, sh, sw, ph, pw, count_include_pad)


# --------------------------------------------------------------------- emitters

library("nnk", "graphc.kernels.cpu.nn")


def _ints(*values: int) -> str:
    """Attribute numbers as the kernels' trailing int arguments: ``np.intp(1), ...``. Not
    bare numbers: the compiled entry would type them as literals and compile the kernel
    once more for each combination of values, and for other types than the Python
    entry's (which compile="eager" compiles beforehand, in parallel)."""
    return ", ".join(f"np.intp({int(v)})" for v in values)


def _conv_args(attrs: Mapping[str, Any]) -> str:
    """conv2d's attributes as its kernels take them: sh, sw, top, left, dh, dw, groups."""
    (sh, sw), ((top, _), (left, _)) = attrs["stride"], attrs["padding"]
    return _ints(sh, sw, top, left, *attrs["dilation"], attrs["groups"])


def _pool_args(attrs: Mapping[str, Any]) -> str:
    """Pooling attributes as the kernels take them: kh, kw, sh, sw, ph, pw."""
    return _ints(*attrs["kernel"], *attrs["stride"], *attrs["padding"])


def _call(
    e: Emitter, node: Node, kernel_name: str, operands: tuple[Value, ...], attrs: str
) -> None:
    """The call of the kernel's form on C-contiguous operands, made contiguous in the
    entry: the public form's own np.ascontiguousarray would cost 0.2-0.35 s more to
    compile, before the first result, where the entry's compiles beside the calls."""
    arrays = ", ".join(f"np.ascontiguousarray({e.arg(v)})" for v in operands)
    e.line(f"nnk.{_form(e, operands[0], kernel_name)}({arrays}, {e.out(node)}, {attrs})")


def _form(e: Emitter, batched: Value, kernel_name: str) -> str:
    """The form of a kernel the entry calls: on every thread (``K_par_c``) where the
    entry may use threads and the batch (axis 0 of its first operand, `batched`) may
    have more than one entry, else ``K_c``."""
    batch = e.type_of(batched).shape[0]
    split = e.threads and not (isinstance(batch, int) and batch < 2)
    return f"{kernel_name}_par_c" if split else f"{kernel_name}_c"


@emits("conv2d")
def _emit_conv2d(e: Emitter, node: Node) -> None:
    x, w = node.inputs
    _call(e, node, "conv2d", (x, w), _conv_args(node.attrs))


@emits("conv2d_grad_input")
def _emit_conv2d_grad_input(e: Emitter, node: Node) -> None:
    g, w, _like = node.inputs  # like only carries x's shape, which out has
    _call(e, node, "conv2d_grad_input", (g, w), _conv_args(node.attrs))


@emits("conv2d_grad_weight")
def _emit_conv2d_grad_weight(e: Emitter, node: Node) -> None:
    x, g, _like = node.inputs  # like only carries w's shape, which out has
    _call(e, node, "conv2d_grad_weight", (x, g), _conv_args(node.attrs))


@emits("conv_transpose2d")
def _emit_conv_transpose2d(e: Emitter, node: Node) -> None:
    x, w = node.inputs
    attrs = node.attrs  # output_padding is in out's shape
    numbers = _ints(*attrs["stride"], *attrs["padding"], *attrs["dilation"], attrs["groups"])
    _call(e, node, "conv_transpose2d", (x, w), numbers)


@emits("max_pool2d")
def _emit_max_pool2d(e: Emitter, node: Node) -> None:
    (x,) = node.inputs
    if _tiles_2x2(e, node, x):
        xc = f"np.ascontiguousarray({e.arg(x)})"
        e.line(f"nnk.{_form(e, x, 'max_pool2d_2x2')}({xc}, {e.out(node)})")
        return
    _call(e, node, "max_pool2d", node.inputs, _pool_args(node.attrs))


def _tiles_2x2(e: Emitter, node: Node, x: Value) -> bool:
    """Whether a pool's windows are 2x2 at stride 2, unpadded, each inside x (so they
    tile it, but for an odd last row or column), with x's and the pooled sizes static."""
    attrs = node.attrs
    if not (attrs["kernel"] == attrs["stride"] == (2, 2) and attrs["padding"] == (0, 0)):
        return False
    pooled = node.type.shape if node.op == "max_pool2d" else e.type_of(node.inputs[1]).shape
    spatial = (*e.type_of(x).shape[2:], *pooled[2:])
    if not all(isinstance(d, int) for d in spatial):
        return False
    height, width, out_h, out_w = spatial
    return 2 * out_h <= height and 2 * out_w <= width  # (no window cut by ceil_mode)


@emits("max_pool2d_grad")
def _emit_max_pool2d_grad(e: Emitter, node: Node) -> None:
    x, g = node.inputs
    if _tiles_2x2(e, node, x):
        xc, gc = (f"np.ascontiguousarray({e.arg(v)})" for v in (x, g))
        e.line(f"nnk.{_form(e, x, 'max_pool2d_grad_2x2')}({xc}, {gc}, {e.out(node)})")
        return
    _call(e, node, "max_pool2d_grad", (x, g), _pool_args(node.attrs))


@emits("avg_pool2d")
def _emit_avg_pool2d(e: Emitter, node: Node) -> None:
    numbers = f"{_pool_args(node.attrs)}, {_ints(node.attrs['count_include_pad'])}"
    _call(e, node, "avg_pool2d", node.inputs, numbers)


@emits("avg_pool2d_grad")
def _emit_avg_pool2d_grad(e: Emitter, node: Node) -> None:
    g, _like = node.inputs  # like only carries x's shape, which out has
    numbers = f"{_pool_args(node.attrs)}, {_ints(node.attrs['count_include_pad'])}"
    _call(e, node, "avg_pool2d_grad", (g,), numbers)
