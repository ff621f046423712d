"""CUDA emitters of the neural-network ops: conv2d and its gradients, the transposed
convolution, and max and average pooling with their gradients. Each is a map kernel
(codegen.Writer.map) with one thread per output element.

Part of graphc.kernels. The numpy references in ``graphc.ops.nn`` are the specification
(NCHW, OIHW conv2d weights, IOHW conv_transpose2d weights). Every kernel is a *gather*:
a thread reads what its own output element depends on and writes that element once, so
there are no atomics and the result does not depend on the launch geometry.

- **conv2d** loops over its group's input channels and the kernel taps; taps in the
  padding are skipped.
- **conv2d_grad_input** and **conv_transpose2d** are one algorithm, the transpose of a
  conv2d: an element of the big image gathers, for each kernel tap, the grid position
  that tap maps back to (when the offset divides by the stride and lands in the grid).
- **conv2d_grad_weight**: a thread per weight tap sums x * g over the batch and the
  output pixels.
- **max_pool2d** folds numpy's ``np.maximum`` over the window's input elements
  (row-major; NaN propagates; the -inf padding never changes the result).
- **avg_pool2d** sums the window's input elements in row-major order and divides by the
  reference's divisor (the window clipped to the padded input with count_include_pad,
  else to the input), converted to the output dtype.
- **avg_pool2d_grad** and **max_pool2d_grad**: an input element gathers from each
  window holding it, tap by tap in the reference's order; max pooling's window gives
  its g only when the reference's scan picks this element (the first maximum, row-major,
  or the last NaN), which the thread finds by scanning that window.

Attributes are literals in the kernel source; sizes come from the arrays' shapes, so
run-time sizes need no extra arguments. Sums run in the output dtype.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from graphc.ir import Node
from graphc.kernels import scalar
from graphc.kernels.cuda.codegen import Writer, emits

POINT = "j0, j1, j2, j3"


class _Body:
    """Kernel body lines with a running indentation."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.depth = 0

    def add(self, *lines: str) -> None:
        self.lines += ["    " * self.depth + line for line in lines]

    def open(self, header: str) -> None:
        """A compound statement header; what follows is inside it."""
        self.add(header)
        self.depth += 1


def _forward_tap(
    body: _Body, axis: str, tap: str, out_index: str, stride: int, before: int, dilation: int
) -> None:
    """Open `for tap ...:` and `if` the input position `i<axis>` that output position
    `out_index` reads at that tap is inside the input (size `size_<axis>`)."""
    body.open(f"for {tap} in range(k{axis}):")
    body.add(f"i{axis} = {out_index} * {stride} - {before} + {tap} * {dilation}")
    body.open(f"if i{axis} >= 0 and i{axis} < size_{axis}:")


def _backward_tap(
    body: _Body, axis: str, tap: str, in_index: str, stride: int, before: int, dilation: int
) -> None:
    """Open `for tap ...:` and `if` the grid position `o<axis>` whose window reads input
    position `in_index` at that tap exists (the grid has `grid_<axis>` positions)."""
    body.open(f"for {tap} in range(k{axis}):")
    body.add(f"o{axis} = {in_index} + {before} - {tap} * {dilation}")
    if stride == 1:
        body.open(f"if o{axis} >= 0 and o{axis} < grid_{axis}:")
        return
    body.open(f"if o{axis} >= 0 and o{axis} % {stride} == 0:")
    body.add(f"o{axis} //= {stride}")
    body.open(f"if o{axis} < grid_{axis}:")


def _ctor(w: Writer, node: Node) -> str:
    return scalar.ctor(w.type_of(node.outputs[0]).dtype)


def _extents(w: Writer, node: Node) -> list[str]:
    return [w.dim(d) for d in w.type_of(node.outputs[0]).shape]


def _conv_numbers(attrs: Mapping[str, Any]) -> tuple[int, int, int, int, int, int, int]:
    """conv2d's attributes: sh, sw, top, left, dh, dw, groups (bottom and right padding
    follow from the output's shape)."""
    (sh, sw), ((top, _), (left, _)) = attrs["stride"], attrs["padding"]
    dh, dw = attrs["dilation"]
    return int(sh), int(sw), int(top), int(left), int(dh), int(dw), int(attrs["groups"])


# ------------------------------------------------------------------ convolutions


@emits("conv2d")
def _conv2d(w: Writer, node: Node) -> None:
    # a0 = x (N, C, H, W), a1 = w (O, C/groups, kH, kW), a2 = out (N, O, outH, outW)
    sh, sw, top, left, dh, dw, groups = _conv_numbers(node.attrs)
    ctor = _ctor(w, node)
    body = _Body()
    body.add(
        "size_h = a0.shape[2]",
        "size_w = a0.shape[3]",
        "channels = a1.shape[1]",
        "kh = a1.shape[2]",
        "kw = a1.shape[3]",
        f"c0 = j1 // (a1.shape[0] // {groups}) * channels",
        f"acc = {ctor}(0)",
    )
    body.open("for ci in range(channels):")
    _forward_tap(body, "h", "ta", "j2", sh, top, dh)
    _forward_tap(body, "w", "tb", "j3", sw, left, dw)
    body.add("acc += a0[j0, c0 + ci, ih, iw] * a1[j1, ci, ta, tb]")
    body.depth = 0
    body.add(f"a2[{POINT}] = acc")
    x, weight = node.inputs
    w.map([w.arg(x), w.arg(weight), w.out(node)], _extents(w, node), body.lines, "conv2d")


def _transposed(
    w: Writer, node: Node, numbers: tuple[int, ...], weight_index: str, comment: str
) -> None:
    """out (N, groups * Co, H, W) of the transpose of a conv2d from out to the grid a0
    (N, groups * M, gridH, gridW) through the weight a1, read as a1[weight_index] with
    m the grid channel, co the output channel within its group, and (ta, tb) the tap."""
    sh, sw, top, left, dh, dw, groups = numbers
    body = _Body()
    body.add(
        "grid_h = a0.shape[2]",
        "grid_w = a0.shape[3]",
        "kh = a1.shape[2]",
        "kw = a1.shape[3]",
        f"per_group = a2.shape[1] // {groups}",
        f"grid_channels = a0.shape[1] // {groups}",
        "m0 = j1 // per_group * grid_channels",
        "co = j1 % per_group",
        f"acc = {_ctor(w, node)}(0)",
    )
    body.open("for mi in range(grid_channels):")
    body.add("m = m0 + mi")
    _backward_tap(body, "h", "ta", "j2", sh, top, dh)
    _backward_tap(body, "w", "tb", "j3", sw, left, dw)
    body.add(f"acc += a0[j0, m, oh, ow] * a1[{weight_index}]")
    body.depth = 0
    body.add(f"a2[{POINT}] = acc")
    grid, weight = node.inputs[:2]
    w.map([w.arg(grid), w.arg(weight), w.out(node)], _extents(w, node), body.lines, comment)


@emits("conv2d_grad_input")
def _conv2d_grad_input(w: Writer, node: Node) -> None:
    # g (N, O, outH, outW) is the grid, w (O, C/groups, kH, kW): weight [m, channel, tap];
    # like (x) only gives the output's shape
    _transposed(w, node, _conv_numbers(node.attrs), "m, co, ta, tb", "conv2d_grad_input")


@emits("conv_transpose2d")
def _conv_transpose2d(w: Writer, node: Node) -> None:
    # x (N, C, H, W) is the grid, w (C, O/groups, kH, kW): weight [m, channel, tap];
    # the padding is symmetric and output_padding is in the output's shape
    attrs = node.attrs
    (sh, sw), (ph, pw), (dh, dw) = attrs["stride"], attrs["padding"], attrs["dilation"]
    numbers = (int(sh), int(sw), int(ph), int(pw), int(dh), int(dw), int(attrs["groups"]))
    _transposed(w, node, numbers, "m, co, ta, tb", "conv_transpose2d")


@emits("conv2d_grad_weight")
def _conv2d_grad_weight(w: Writer, node: Node) -> None:
    # a0 = x (N, C, H, W), a1 = g (N, O, outH, outW), a2 = out (O, C/groups, kH, kW)
    sh, sw, top, left, dh, dw, groups = _conv_numbers(node.attrs)
    body = _Body()
    body.add(
        "size_h = a0.shape[2]",
        "size_w = a0.shape[3]",
        f"c = j0 // (a2.shape[0] // {groups}) * a2.shape[1] + j1",
        f"acc = {_ctor(w, node)}(0)",
    )
    body.open("for nb in range(a0.shape[0]):")
    body.open("for oh in range(a1.shape[2]):")
    body.add(f"ih = oh * {sh} - {top} + j2 * {dh}")
    body.open("if ih >= 0 and ih < size_h:")
    body.open("for ow in range(a1.shape[3]):")
    body.add(f"iw = ow * {sw} - {left} + j3 * {dw}")
    body.open("if iw >= 0 and iw < size_w:")
    body.add("acc += a0[nb, c, ih, iw] * a1[nb, j0, oh, ow]")
    body.depth = 0
    body.add(f"a2[{POINT}] = acc")
    x, g = node.inputs[:2]
    w.map([w.arg(x), w.arg(g), w.out(node)], _extents(w, node), body.lines, "conv2d_grad_weight")


# ---------------------------------------------------------------------- pooling


def _pool_numbers(attrs: Mapping[str, Any]) -> tuple[int, int, int, int, int, int]:
    """Pooling's kh, kw, sh, sw, ph, pw (ceil_mode follows from the output's shape)."""
    return tuple(int(v) for v in (*attrs["kernel"], *attrs["stride"], *attrs["padding"]))


def _pool_prologue(body: _Body, numbers: tuple[int, ...], x: str) -> None:
    kh, kw, _, _, _, _ = numbers
    body.add(f"kh = {kh}", f"kw = {kw}", f"size_h = {x}.shape[2]", f"size_w = {x}.shape[3]")


@emits("max_pool2d")
def _max_pool2d(w: Writer, node: Node) -> None:
    # a0 = x (N, C, H, W), a1 = out (N, C, outH, outW)
    numbers = _pool_numbers(node.attrs)
    _, _, sh, sw, ph, pw = numbers
    body = _Body()
    _pool_prologue(body, numbers, "a0")
    body.add(f"acc = {_ctor(w, node)}(-np.inf)")
    _forward_tap(body, "h", "ta", "j2", sh, ph, 1)
    _forward_tap(body, "w", "tb", "j3", sw, pw, 1)
    body.add("v = a0[j0, j1, ih, iw]")
    body.open("if v > acc or v != v:")  # np.maximum: a NaN wins, and stays
    body.add("acc = v")
    body.depth = 0
    body.add(f"a1[{POINT}] = acc")
    w.map([w.arg(node.inputs[0]), w.out(node)], _extents(w, node), body.lines, "max_pool2d")


def _divisor(
    body: _Body, numbers: tuple[int, ...], include_pad: bool, out_h: str, out_w: str
) -> None:
    """`divisor`: the element count avg pooling divides window (out_h, out_w) by."""
    kh, kw, sh, sw, ph, pw = numbers
    for axis, index, k, s, p in (("h", out_h, kh, sh, ph), ("w", out_w, kw, sw, pw)):
        body.add(
            f"start_{axis} = {index} * {s} - {p}",
            f"end_{axis} = min(start_{axis} + {k}, size_{axis} + {p})",
        )
        if include_pad:
            body.add(f"count_{axis} = end_{axis} - start_{axis}")
        else:
            body.add(f"count_{axis} = min(end_{axis}, size_{axis}) - max(start_{axis}, 0)")
    body.add("divisor = count_h * count_w")


@emits("avg_pool2d")
def _avg_pool2d(w: Writer, node: Node) -> None:
    # a0 = x (N, C, H, W), a1 = out (N, C, outH, outW)
    numbers = _pool_numbers(node.attrs)
    _, _, sh, sw, ph, pw = numbers
    ctor = _ctor(w, node)
    body = _Body()
    _pool_prologue(body, numbers, "a0")
    _divisor(body, numbers, bool(node.attrs["count_include_pad"]), "j2", "j3")
    body.add(f"acc = {ctor}(0)")
    _forward_tap(body, "h", "ta", "j2", sh, ph, 1)
    _forward_tap(body, "w", "tb", "j3", sw, pw, 1)
    body.add("acc += a0[j0, j1, ih, iw]")
    body.depth = 0
    body.add(f"a1[{POINT}] = acc / {ctor}(divisor)")
    w.map([w.arg(node.inputs[0]), w.out(node)], _extents(w, node), body.lines, "avg_pool2d")


@emits("avg_pool2d_grad")
def _avg_pool2d_grad(w: Writer, node: Node) -> None:
    # a0 = g (N, C, outH, outW), a1 = out (x's shape N, C, H, W); like only gives the shape
    numbers = _pool_numbers(node.attrs)
    _, _, sh, sw, ph, pw = numbers
    ctor = _ctor(w, node)
    body = _Body()
    _pool_prologue(body, numbers, "a1")
    body.add("grid_h = a0.shape[2]", "grid_w = a0.shape[3]", f"acc = {ctor}(0)")
    _backward_tap(body, "h", "ta", "j2", sh, ph, 1)
    _backward_tap(body, "w", "tb", "j3", sw, pw, 1)
    _divisor(body, numbers, bool(node.attrs["count_include_pad"]), "oh", "ow")
    body.add(f"acc += a0[j0, j1, oh, ow] / {ctor}(divisor)")
    body.depth = 0
    body.add(f"a1[{POINT}] = acc")
    w.map([w.arg(node.inputs[0]), w.out(node)], _extents(w, node), body.lines, "avg_pool2d_grad")


def _pick(body: _Body, numbers: tuple[int, ...]) -> None:
    """`picked`: the tap (a * kw + b) the reference's scan picks in window (oh, ow) of
    a0: its first input element (row-major), then each later one that is greater than
    the running maximum or NaN."""
    _, _, sh, sw, ph, pw = numbers
    depth = body.depth
    body.add("picked = -1", "best = a0[j0, j1, 0, 0]")
    _forward_tap(body, "h", "sa", "oh", sh, ph, 1)
    _forward_tap(body, "w", "sb", "ow", sw, pw, 1)
    body.add("v = a0[j0, j1, ih, iw]")
    body.open("if picked < 0 or v > best or v != v:")
    body.add("best = v", "picked = sa * kw + sb")
    body.depth = depth


@emits("max_pool2d_grad")
def _max_pool2d_grad(w: Writer, node: Node) -> None:
    # a0 = x (N, C, H, W), a1 = g (N, C, outH, outW), a2 = out (x's shape)
    numbers = _pool_numbers(node.attrs)
    _, _, sh, sw, ph, pw = numbers
    body = _Body()
    _pool_prologue(body, numbers, "a0")
    body.add("grid_h = a1.shape[2]", "grid_w = a1.shape[3]", f"acc = {_ctor(w, node)}(0)")
    _backward_tap(body, "h", "ta", "j2", sh, ph, 1)
    _backward_tap(body, "w", "tb", "j3", sw, pw, 1)
    _pick(body, numbers)
    body.open("if picked == ta * kw + tb:")
    body.add("acc += a1[j0, j1, oh, ow]")
    body.depth = 0
    body.add(f"a2[{POINT}] = acc")
    x, g = node.inputs
    w.map([w.arg(x), w.arg(g), w.out(node)], _extents(w, node), body.lines, "max_pool2d_grad")
