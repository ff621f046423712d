"""graphc.kernels.cpu.nn: the numba neural-net kernels against the numpy references of
graphc.ops.nn, and the emitters that call them.

Every kernel runs in float32 and float64 over configurations of stride, asymmetric
padding, dilation, groups (depthwise too), kernel sizes, ceil_mode and count_include_pad,
on an empty batch and on zero channels, and once on strided views (float64 only: the
layout handling is the same for both dtypes and each layout is one more compile).
The convolutions must match within float tolerances (BLAS sums in its own order); the
pooling kernels add in the reference's order and must match bit for bit, NaNs, ties and
signed zeros included.

Each kernel writes into an output that starts as NaN (so a position it forgets shows)
and lies between two guard bands of a larger buffer (so a write out of bounds shows);
its inputs must come back unchanged. Each emitter is run on a real IR node with a fake
code generator that records the line it writes; the line is then evaluated with the
kernel module bound to ``nnk``, which catches a wrong argument order.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from graphc.ir import GraphBuilder, Node, Value
from graphc.kernels.cpu import nn as nnk
from graphc.kernels.cpu.emit import LIBRARIES
from graphc.kernels.emit import emitter as emitter_of
from graphc.registry import lookup

DTYPES = [np.float32, np.float64]
GUARD = 64  # elements of guard band on each side of an output
GUARD_VALUE = 7.5


def _reference(op: str, *arrays: np.ndarray, **attrs: Any) -> np.ndarray:
    return lookup(op).reference(*arrays, **attrs)


def _run(kernel: Any, inputs: tuple[np.ndarray, ...], like: np.ndarray, *numbers: int):
    """kernel(*inputs, out, *numbers) into a NaN-filled, guarded out of like's shape and
    dtype; checks the guards and the inputs, returns out."""
    size = like.size
    buffer = np.full(size + 2 * GUARD, GUARD_VALUE, like.dtype)
    buffer[GUARD : GUARD + size] = np.nan
    out = buffer[GUARD : GUARD + size].reshape(like.shape)
    copies = [a.copy() for a in inputs]
    kernel(*inputs, out, *numbers)
    assert (buffer[:GUARD] == GUARD_VALUE).all(), "wrote before out"
    assert (buffer[GUARD + size :] == GUARD_VALUE).all(), "wrote past out"
    for array, copy in zip(inputs, copies, strict=True):
        np.testing.assert_array_equal(array, copy, err_msg="an input changed")
    return out


def _close(dtype: type) -> dict[str, float]:
    """Tolerances for the convolutions (BLAS accumulates in its own order)."""
    return {"rtol": 2e-5, "atol": 2e-5} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-12}


def _assert_bitwise(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal values, NaN where NaN, and the same sign on every zero."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)
    np.testing.assert_array_equal(np.signbit(actual), np.signbit(expected))


def _normal(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    return rng.standard_normal(shape).astype(dtype)


# ------------------------------------------------------------------ convolutions

# (x shape, w shape, stride, ((top, bottom), (left, right)), dilation, groups)
CONV_CASES = {
    "3x3-pad1": ((2, 3, 6, 7), (4, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    "stride-asym-pad-dilation-groups": (
        (2, 4, 9, 8), (6, 2, 3, 2), (2, 1), ((1, 2), (0, 1)), (1, 2), 2,
    ),
    "depthwise-stride2": ((1, 4, 7, 7), (4, 1, 3, 3), (2, 2), ((1, 1), (1, 1)), (1, 1), 4),
    "depthwise-multiplier-dilated": (
        (2, 3, 6, 6), (6, 1, 2, 2), (1, 1), ((0, 0), (0, 0)), (2, 2), 3,
    ),
    "pointwise": ((2, 5, 4, 3), (3, 5, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 1),
    "pointwise-grouped": ((2, 4, 3, 3), (6, 2, 1, 1), (1, 1), ((0, 0), (0, 0)), (1, 1), 2),
    "1x1-stride2": ((1, 3, 5, 6), (2, 3, 1, 1), (2, 2), ((0, 0), (0, 0)), (1, 1), 1),
    "1x1-bottom-pad": ((1, 2, 3, 4), (2, 2, 1, 1), (1, 1), ((0, 1), (0, 2)), (1, 1), 1),
    "kernel-wider-than-input": ((1, 2, 3, 3), (2, 2, 5, 4), (1, 2), ((2, 2), (2, 1)), (1, 1), 1),
    "unread-rows-and-columns": ((1, 2, 8, 7), (3, 2, 2, 2), (3, 3), ((0, 0), (0, 0)), (1, 1), 1),
    "big-stride-and-padding": ((2, 2, 5, 5), (2, 2, 3, 3), (3, 4), ((3, 0), (1, 3)), (2, 1), 1),
    "batch-0": ((0, 3, 5, 5), (2, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    "channels-0": ((2, 0, 5, 5), (3, 0, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
    "out-channels-0": ((2, 3, 5, 5), (0, 3, 3, 3), (1, 1), ((1, 1), (1, 1)), (1, 1), 1),
}  # fmt: skip


def _conv_attrs(case: tuple) -> dict[str, Any]:
    _, _, stride, padding, dilation, groups = case
    return {"stride": stride, "padding": padding, "dilation": dilation, "groups": groups}


def _conv_numbers(attrs: dict[str, Any]) -> tuple[int, ...]:
    (sh, sw), ((top, _), (left, _)) = attrs["stride"], attrs["padding"]
    return (sh, sw, top, left, *attrs["dilation"], attrs["groups"])


def _conv_operands(case: tuple, dtype: type, rng: np.random.Generator):
    x = _normal(rng, case[0], dtype)
    w = _normal(rng, case[1], dtype)
    attrs = _conv_attrs(case)
    y = _reference("conv2d", x, w, **attrs)
    g = _normal(rng, y.shape, dtype)
    return x, w, g, y, attrs


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d(name: str, dtype: type, rng: np.random.Generator) -> None:
    x, w, _, y, attrs = _conv_operands(CONV_CASES[name], dtype, rng)
    out = _run(nnk.conv2d, (x, w), y, *_conv_numbers(attrs))
    np.testing.assert_allclose(out, y, **_close(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d_grad_input(name: str, dtype: type, rng: np.random.Generator) -> None:
    x, w, g, _, attrs = _conv_operands(CONV_CASES[name], dtype, rng)
    expected = _reference("conv2d_grad_input", g, w, x, **attrs)
    out = _run(nnk.conv2d_grad_input, (g, w), expected, *_conv_numbers(attrs))
    np.testing.assert_allclose(out, expected, **_close(dtype))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", CONV_CASES)
def test_conv2d_grad_weight(name: str, dtype: type, rng: np.random.Generator) -> None:
    x, w, g, _, attrs = _conv_operands(CONV_CASES[name], dtype, rng)
    expected = _reference("conv2d_grad_weight", x, g, w, **attrs)
    out = _run(nnk.conv2d_grad_weight, (x, g), expected, *_conv_numbers(attrs))
    np.testing.assert_allclose(out, expected, **_close(dtype))


def test_conv2d_grad_input_leaves_unread_pixels_zero(rng: np.random.Generator) -> None:
    """A 2x2 kernel at stride 3 over 8 rows and 7 columns never reads rows 2 and 5 nor
    columns 2, 5 and 6."""
    x, w, g, _, attrs = _conv_operands(CONV_CASES["unread-rows-and-columns"], np.float64, rng)
    out = _run(nnk.conv2d_grad_input, (g, w), x, *_conv_numbers(attrs))
    assert (out[:, :, [2, 5], :] == 0).all()
    assert (out[:, :, :, [2, 5, 6]] == 0).all()
    assert (out[:, :, [0, 1, 3, 4, 6, 7]][:, :, :, [0, 1, 3, 4]] != 0).all()


# (x shape, w shape (C, O/groups, kH, kW), stride, padding, output_padding, dilation, groups)
TRANSPOSE_CASES = {
    "3x3": ((2, 3, 4, 5), (3, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    "stride2-pad1-outpad1-groups": ((1, 4, 3, 4), (4, 3, 3, 3), (2, 2), (1, 1), (1, 1), (1, 1), 2),
    "asym-stride-dilation-outpad": ((2, 2, 3, 4), (2, 3, 2, 3), (3, 2), (1, 0), (2, 1), (2, 1), 1),
    "depthwise": ((1, 3, 4, 4), (3, 1, 3, 3), (2, 1), (1, 1), (0, 0), (1, 1), 3),
    "pointwise": ((2, 4, 3, 3), (4, 5, 1, 1), (1, 1), (0, 0), (0, 0), (1, 1), 1),
    "1x1-outpad-below-dilation": ((1, 2, 3, 3), (2, 2, 1, 1), (1, 1), (0, 0), (1, 1), (2, 2), 1),
    "batch-0": ((0, 2, 3, 3), (2, 2, 3, 3), (2, 2), (1, 1), (0, 0), (1, 1), 1),
    "channels-0": ((2, 0, 3, 3), (0, 2, 3, 3), (1, 1), (0, 0), (0, 0), (1, 1), 1),
}  # fmt: skip


def _transpose_attrs(case: tuple) -> dict[str, Any]:
    _, _, stride, padding, output_padding, dilation, groups = case
    return {
        "stride": stride,
        "padding": padding,
        "output_padding": output_padding,
        "dilation": dilation,
        "groups": groups,
    }


def _transpose_numbers(attrs: dict[str, Any]) -> tuple[int, ...]:
    return (*attrs["stride"], *attrs["padding"], *attrs["dilation"], attrs["groups"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", TRANSPOSE_CASES)
def test_conv_transpose2d(name: str, dtype: type, rng: np.random.Generator) -> None:
    case = TRANSPOSE_CASES[name]
    x, w = _normal(rng, case[0], dtype), _normal(rng, case[1], dtype)
    attrs = _transpose_attrs(case)
    expected = _reference("conv_transpose2d", x, w, **attrs)
    out = _run(nnk.conv_transpose2d, (x, w), expected, *_transpose_numbers(attrs))
    np.testing.assert_allclose(out, expected, **_close(dtype))


# ---------------------------------------------------------------------- pooling

# (x shape, kernel, stride, padding, ceil_mode)
POOL_CASES = {
    "2x2-stride2": ((2, 3, 8, 6), (2, 2), (2, 2), (0, 0), False),
    "3x3-stride1-pad1": ((2, 2, 6, 7), (3, 3), (1, 1), (1, 1), False),
    "3x3-stride2-pad1-ceil": ((1, 3, 8, 9), (3, 3), (2, 2), (1, 1), True),
    "3x2-asym-ceil": ((2, 2, 7, 6), (3, 2), (2, 1), (1, 1), True),
    "2x2-stride2-odd-ceil": ((1, 2, 5, 7), (2, 2), (2, 2), (0, 0), True),
    "gaps-between-windows": ((1, 2, 8, 9), (2, 2), (3, 4), (0, 1), False),
    "stride3-pad1-ceil": ((1, 1, 10, 11), (3, 4), (3, 3), (1, 2), True),
    "1x1": ((2, 2, 3, 4), (1, 1), (1, 1), (0, 0), False),
    "kernel-covers-input": ((1, 2, 3, 4), (3, 4), (1, 1), (1, 2), False),
    "batch-0": ((0, 3, 4, 4), (2, 2), (2, 2), (0, 0), False),
    "channels-0": ((2, 0, 4, 4), (3, 3), (1, 1), (1, 1), True),
}


def _pool_attrs(case: tuple) -> dict[str, Any]:
    _, kernel, stride, padding, ceil_mode = case
    return {"kernel": kernel, "stride": stride, "padding": padding, "ceil_mode": ceil_mode}


def _pool_numbers(attrs: dict[str, Any]) -> tuple[int, ...]:
    return (*attrs["kernel"], *attrs["stride"], *attrs["padding"])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", POOL_CASES)
def test_max_pool2d_and_grad(name: str, dtype: type, rng: np.random.Generator) -> None:
    case = POOL_CASES[name]
    x = _normal(rng, case[0], dtype)
    attrs = _pool_attrs(case)
    y = _reference("max_pool2d", x, **attrs)
    _assert_bitwise(_run(nnk.max_pool2d, (x,), y, *_pool_numbers(attrs)), y)
    g = _normal(rng, y.shape, dtype)
    expected = _reference("max_pool2d_grad", x, g, **attrs)
    _assert_bitwise(_run(nnk.max_pool2d_grad, (x, g), expected, *_pool_numbers(attrs)), expected)


@pytest.mark.parametrize("count_include_pad", [True, False])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", POOL_CASES)
def test_avg_pool2d_and_grad(
    name: str, dtype: type, count_include_pad: bool, rng: np.random.Generator
) -> None:
    case = POOL_CASES[name]
    x = _normal(rng, case[0], dtype)
    attrs = {**_pool_attrs(case), "count_include_pad": count_include_pad}
    numbers = (*_pool_numbers(attrs), int(count_include_pad))
    y = _reference("avg_pool2d", x, **attrs)
    _assert_bitwise(_run(nnk.avg_pool2d, (x,), y, *numbers), y)
    g = _normal(rng, y.shape, dtype)
    expected = _reference("avg_pool2d_grad", g, x, **attrs)
    _assert_bitwise(_run(nnk.avg_pool2d_grad, (g,), expected, *numbers), expected)


def _tied(rng: np.random.Generator, shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """Few distinct values (many ties, +0 and -0 among them), NaNs, +-inf."""
    values = np.array([-1.0, -0.0, 0.0, 1.0, np.inf, -np.inf, np.nan])
    odds = [0.2, 0.25, 0.3, 0.15, 0.03, 0.04, 0.03]
    return rng.choice(values, size=shape, p=odds).astype(dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name", ["2x2-stride2", "3x3-stride1-pad1", "3x2-asym-ceil"])
def test_max_pool2d_ties_nans_and_signed_zeros(
    name: str, dtype: type, rng: np.random.Generator
) -> None:
    """The forward max gives the later of -0 and +0 (numpy's np.maximum) and NaN when the
    window holds one; the gradient goes to the first maximum, or to the window's last
    NaN."""
    case = POOL_CASES[name]
    x = _tied(rng, (3, 4, *case[0][2:]), dtype)
    x[0, 0, : case[1][0], : case[1][1]] = np.nan  # a window (or more) of NaNs only
    x[0, 1] = -np.inf  # a plane of -inf: its maximum is -inf, at each window's first tap
    attrs = _pool_attrs(case)
    y = _reference("max_pool2d", x, **attrs)
    _assert_bitwise(_run(nnk.max_pool2d, (x,), y, *_pool_numbers(attrs)), y)
    g = _normal(rng, y.shape, dtype)
    expected = _reference("max_pool2d_grad", x, g, **attrs)
    _assert_bitwise(_run(nnk.max_pool2d_grad, (x, g), expected, *_pool_numbers(attrs)), expected)


def test_max_pool2d_several_nans_differ_in_sign_bits_only() -> None:
    """The one known difference: of several NaNs in a window the reference returns the
    first, the kernel the last (both NaN; only the sign and payload bits differ)."""
    x = np.array([[[[np.nan, -np.nan], [1.0, 2.0]]]])
    y = _reference("max_pool2d", x, kernel=(2, 2), stride=(2, 2), padding=(0, 0), ceil_mode=False)
    out = _run(nnk.max_pool2d, (x,), y, 2, 2, 2, 2, 0, 0)
    assert np.isnan(out).all()
    assert not np.signbit(y).any()
    assert np.signbit(out).all()


# ------------------------------------------------------------ strided inputs


def _strided(array: np.ndarray) -> np.ndarray:
    """A view with array's values and no contiguous layout: the last two axes swapped in
    memory, inside a buffer twice as wide."""
    n, c, h, w = array.shape
    base = np.zeros((n, c, w, 2 * h), array.dtype)
    view = base[:, :, :, ::2].transpose(0, 1, 3, 2)
    view[...] = array
    assert not view.flags.c_contiguous
    assert not view.flags.f_contiguous
    return view


def test_convolutions_of_strided_views(rng: np.random.Generator) -> None:
    close = _close(np.float64)
    case = CONV_CASES["stride-asym-pad-dilation-groups"]
    x, w, g, y, attrs = _conv_operands(case, np.float64, rng)
    numbers = _conv_numbers(attrs)
    out = _run(nnk.conv2d, (_strided(x), _strided(w)), y, *numbers)
    np.testing.assert_allclose(out, y, **close)
    expected = _reference("conv2d_grad_input", g, w, x, **attrs)
    out = _run(nnk.conv2d_grad_input, (_strided(g), _strided(w)), expected, *numbers)
    np.testing.assert_allclose(out, expected, **close)
    expected = _reference("conv2d_grad_weight", x, g, w, **attrs)
    out = _run(nnk.conv2d_grad_weight, (_strided(x), _strided(g)), expected, *numbers)
    np.testing.assert_allclose(out, expected, **close)

    case = TRANSPOSE_CASES["stride2-pad1-outpad1-groups"]
    x, w = _normal(rng, case[0], np.float64), _normal(rng, case[1], np.float64)
    attrs = _transpose_attrs(case)
    expected = _reference("conv_transpose2d", x, w, **attrs)
    strided = (_strided(x), _strided(w))
    out = _run(nnk.conv_transpose2d, strided, expected, *_transpose_numbers(attrs))
    np.testing.assert_allclose(out, expected, **close)


def test_pooling_of_strided_views(rng: np.random.Generator) -> None:
    case = POOL_CASES["3x2-asym-ceil"]
    x = _normal(rng, case[0], np.float64)
    attrs = _pool_attrs(case)
    numbers = _pool_numbers(attrs)
    y = _reference("max_pool2d", x, **attrs)
    _assert_bitwise(_run(nnk.max_pool2d, (_strided(x),), y, *numbers), y)
    g = _normal(rng, y.shape, np.float64)
    expected = _reference("max_pool2d_grad", x, g, **attrs)
    out = _run(nnk.max_pool2d_grad, (_strided(x), _strided(g)), expected, *numbers)
    _assert_bitwise(out, expected)
    y = _reference("avg_pool2d", x, **attrs, count_include_pad=False)
    _assert_bitwise(_run(nnk.avg_pool2d, (_strided(x),), y, *numbers, 0), y)
    expected = _reference("avg_pool2d_grad", g, x, **attrs, count_include_pad=False)
    _assert_bitwise(_run(nnk.avg_pool2d_grad, (_strided(g),), expected, *numbers, 0), expected)


# --------------------------------------------------------------------- emitters


class RecordingEmitter:
    """The part of the code generator's Emitter that these emitters use: names each
    value ``v<node id>``, each output ``out``, and records the lines; the types come
    from the graph being built."""

    def __init__(self, builder: GraphBuilder, threads: bool = False) -> None:
        self.lines: list[str] = []
        self.type_of = builder.type_of
        self.threads = threads

    def arg(self, value: Value) -> str:
        return f"v{value.node}"

    def out(self, node: Node, index: int = 0) -> str:
        assert index == 0
        return "out"

    def line(self, statement: str) -> None:
        self.lines.append(statement)


def _emit_and_eval(op: str, arrays: list[np.ndarray], attrs: dict[str, Any]) -> np.ndarray:
    """Build `op` on placeholders shaped like `arrays`, emit it, run the emitted line."""
    builder = GraphBuilder()
    inputs = [
        builder.add1("placeholder", (), {"name": f"p{i}", "dtype": a.dtype.name, "shape": a.shape})
        for i, a in enumerate(arrays)
    ]
    node = builder.node(builder.add1(op, inputs, attrs))
    emitter = RecordingEmitter(builder)
    assert emitter_of("cpu", op).alloc
    emitter_of("cpu", op).emit(emitter, node)
    (statement,) = emitter.lines
    assert statement.startswith(f"nnk.{op}_c(np.ascontiguousarray(")
    expected = _reference(op, *arrays, **attrs)
    out = np.full(expected.shape, np.nan, expected.dtype)
    namespace: dict[str, Any] = {"nnk": nnk, "np": np, "out": out}
    namespace.update({f"v{v.node}": a for v, a in zip(inputs, arrays, strict=True)})
    eval(statement, namespace)  # the emitted source is a call expression
    np.testing.assert_allclose(out, expected, **_close(expected.dtype.type))
    return out


def test_library_alias() -> None:
    assert LIBRARIES["nnk"] == "graphc.kernels.cpu.nn"


def _emit_operands(op: str, rng: np.random.Generator) -> tuple[list[np.ndarray], dict]:
    """Operands in the op's input order, and attrs whose numbers differ enough that a
    swapped argument changes the result."""
    dtype = np.float64
    if op.startswith("conv2d"):
        case = CONV_CASES["stride-asym-pad-dilation-groups"]
        x, w = _normal(rng, case[0], dtype), _normal(rng, case[1], dtype)
        attrs = {**_conv_attrs(case), "padding": ((2, 0), (1, 2))}
        g = _normal(rng, _reference("conv2d", x, w, **attrs).shape, dtype)
        by_op = {"conv2d": [x, w], "conv2d_grad_input": [g, w, x], "conv2d_grad_weight": [x, g, w]}
        return by_op[op], attrs
    if op == "conv_transpose2d":
        case = TRANSPOSE_CASES["asym-stride-dilation-outpad"]
        return [_normal(rng, case[0], dtype), _normal(rng, case[1], dtype)], _transpose_attrs(case)
    case = POOL_CASES["stride3-pad1-ceil"]
    attrs = _pool_attrs(case)
    x = _normal(rng, case[0], dtype)
    g = _normal(rng, _reference("max_pool2d", x, **attrs).shape, dtype)
    if op.startswith("avg"):
        attrs["count_include_pad"] = False
    by_op = {"max_pool2d": [x], "max_pool2d_grad": [x, g]}
    by_op |= {"avg_pool2d": [x], "avg_pool2d_grad": [g, x]}
    return by_op[op], attrs


OPS = [
    "conv2d",
    "conv2d_grad_input",
    "conv2d_grad_weight",
    "conv_transpose2d",
    "max_pool2d",
    "max_pool2d_grad",
    "avg_pool2d",
    "avg_pool2d_grad",
]


@pytest.mark.parametrize("op", OPS)
def test_emitter_line_runs_the_kernel(op: str, rng: np.random.Generator) -> None:
    arrays, attrs = _emit_operands(op, rng)
    _emit_and_eval(op, arrays, attrs)


def _intp(*numbers: int) -> str:
    return ", ".join(f"np.intp({n})" for n in numbers)


def test_emitted_numbers() -> None:
    """The attribute numbers in the kernels' order, as np.intp (a bare number would be a
    literal to numba, and the kernel would compile once more for each value), and no
    operand that only carries a shape."""
    builder = GraphBuilder()
    x = builder.add1("placeholder", (), {"name": "x", "dtype": "float32", "shape": (1, 4, 9, 9)})
    w = builder.add1("placeholder", (), {"name": "w", "dtype": "float32", "shape": (6, 2, 3, 2)})
    conv_attrs = {"stride": (2, 3), "padding": ((4, 5), (1, 0)), "dilation": (1, 2), "groups": 2}
    y = builder.add1("conv2d", (x, w), conv_attrs)
    grad_input = builder.add1("conv2d_grad_input", (y, w, x), conv_attrs)
    pool_attrs = {"kernel": (3, 2), "stride": (2, 1), "padding": (1, 0), "ceil_mode": True}
    pooled = builder.add1("avg_pool2d", (x,), {**pool_attrs, "count_include_pad": False})
    avg_grad = builder.add1(
        "avg_pool2d_grad", (pooled, x), {**pool_attrs, "count_include_pad": True}
    )
    conv = _intp(2, 3, 4, 1, 1, 2, 2)
    xc, wc, yc, pc = (f"np.ascontiguousarray(v{v.node})" for v in (x, w, y, pooled))
    expected = {
        y: f"nnk.conv2d_c({xc}, {wc}, out, {conv})",
        grad_input: f"nnk.conv2d_grad_input_c({yc}, {wc}, out, {conv})",
        pooled: f"nnk.avg_pool2d_c({xc}, out, {_intp(3, 2, 2, 1, 1, 0, 0)})",
        avg_grad: f"nnk.avg_pool2d_grad_c({pc}, out, {_intp(3, 2, 2, 1, 1, 0, 1)})",
    }
    for value, line in expected.items():
        node = builder.node(value)
        emitter = RecordingEmitter(builder)
        emitter_of("cpu", node.op).emit(emitter, node)
        assert emitter.lines == [line]


# ---- max_pool2d_grad over 2x2 windows at stride 2: the tiled kernel


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2, 8, 6), (2, 3, 7, 9), (1, 1, 2, 2), (0, 2, 4, 4)])
def test_the_2x2_pool_gradient_equals_the_reference_bit_for_bit(shape, dtype) -> None:
    """Ties (the first maximum wins), NaN (the last one wins), -0 in g (0 + g is +0) and
    an odd last row or column that no window covers (0)."""
    rng = np.random.default_rng(5)
    x = rng.integers(-2, 3, shape).astype(dtype)  # (many ties)
    if x.size:
        x.reshape(-1)[rng.integers(0, x.size, x.size // 7 + 1)] = np.nan
    g = rng.standard_normal((*shape[:2], shape[2] // 2, shape[3] // 2)).astype(dtype)
    if g.size:
        g.reshape(-1)[0] = -0.0
    attrs = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}
    want = np.asarray(_reference("max_pool2d_grad", x, g, **attrs), dtype)
    out = np.full(shape, np.nan, dtype)
    nnk.max_pool2d_grad_2x2_c(x, g, out)
    np.testing.assert_array_equal(out.view(f"u{out.itemsize}"), want.view(f"u{want.itemsize}"))
    # the general kernel agrees, bit for bit
    general = np.full(shape, np.nan, dtype)
    nnk.max_pool2d_grad(x, g, general, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(general.view(f"u{out.itemsize}"), out.view(f"u{out.itemsize}"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("shape", [(3, 2, 8, 6), (2, 3, 7, 9), (1, 1, 2, 2), (0, 2, 4, 4)])
def test_the_2x2_pool_equals_the_reference_bit_for_bit(shape, dtype) -> None:
    """NaN propagates, and of -0 and +0 the later tap wins, as numpy's maximum folds."""
    rng = np.random.default_rng(6)
    x = rng.integers(-1, 2, shape).astype(dtype) * rng.choice([0.0, 1.0], shape).astype(dtype)
    x[x == 0] = rng.choice([-0.0, 0.0], int((x == 0).sum()))  # (signed zeros, tied)
    if x.size:
        x.reshape(-1)[rng.integers(0, x.size, x.size // 9 + 1)] = np.nan
    attrs = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}
    want = np.asarray(_reference("max_pool2d", x, **attrs), dtype)
    out = np.full(want.shape, 7, dtype)
    nnk.max_pool2d_2x2_c(x, out)
    np.testing.assert_array_equal(out.view(f"u{out.itemsize}"), want.view(f"u{want.itemsize}"))
    general = np.full(want.shape, 7, dtype)
    nnk.max_pool2d(x, general, 2, 2, 2, 2, 0, 0)
    np.testing.assert_array_equal(general.view(f"u{out.itemsize}"), out.view(f"u{out.itemsize}"))


def test_the_2x2_pool_kernels_refuse_operands_that_do_not_fit() -> None:
    x = np.zeros((1, 1, 3, 3), np.float32)
    with pytest.raises(ValueError, match="shapes"):
        nnk.max_pool2d_grad_2x2_c(x, np.zeros((1, 1, 2, 2), np.float32), np.zeros_like(x))
    with pytest.raises(ValueError, match="shapes"):
        nnk.max_pool2d_2x2_c(x, np.zeros((1, 1, 2, 2), np.float32))
    four = np.zeros((2, 1, 4, 4), np.float32)  # (g for more images than x has)
    with pytest.raises(ValueError, match="shapes"):
        nnk.max_pool2d_grad_2x2_c(four[:1], np.zeros((2, 1, 2, 2), np.float32), four[:1])


@pytest.mark.parametrize(
    ("size", "pool", "tiled"),
    [
        (8, {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}, True),
        (7, {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}, True),
        (7, {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": True}, False),
        (8, {"kernel": (2, 2), "stride": (2, 2), "padding": (1, 1), "ceil_mode": False}, False),
        (8, {"kernel": (3, 3), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}, False),
        (8, {"kernel": (2, 2), "stride": (1, 1), "padding": (0, 0), "ceil_mode": False}, False),
    ],
)
def test_the_2x2_pool_kernels_are_emitted_where_windows_tile(size, pool, tiled) -> None:
    builder = GraphBuilder()
    x = builder.add1(
        "placeholder", (), {"name": "x", "dtype": "float32", "shape": (2, 3, size, size)}
    )
    y = builder.add1("max_pool2d", (x,), pool)
    grad = builder.add1("max_pool2d_grad", (x, y), pool)  # (y stands in for g: same type)
    emitter = RecordingEmitter(builder)
    emitter_of("cpu", "max_pool2d").emit(emitter, builder.node(y))
    (line,) = emitter.lines
    assert line.startswith("nnk.max_pool2d_2x2_c(" if tiled else "nnk.max_pool2d_c(")
    xs = np.random.default_rng(2).standard_normal((2, 3, size, size)).astype(np.float32)
    pooled = np.full(builder.node(y).type.shape, np.nan, np.float32)
    eval(line, {"nnk": nnk, "np": np, "out": pooled, f"v{x.node}": xs})
    np.testing.assert_array_equal(pooled, _reference("max_pool2d", xs, **pool))
    emitter = RecordingEmitter(builder)
    emitter_of("cpu", "max_pool2d_grad").emit(emitter, builder.node(grad))
    (line,) = emitter.lines
    assert line.startswith("nnk.max_pool2d_grad_2x2_c(" if tiled else "nnk.max_pool2d_grad_c(")
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((2, 3, size, size)).astype(np.float32)
    gs = rng.standard_normal(builder.node(y).type.shape).astype(np.float32)
    out = np.full(xs.shape, np.nan, np.float32)
    eval(line, {"nnk": nnk, "np": np, "out": out, f"v{x.node}": xs, f"v{y.node}": gs})
    np.testing.assert_array_equal(out, _reference("max_pool2d_grad", xs, gs, **pool))
