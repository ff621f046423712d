"""Errors: shape and dtype errors at the line that built the node, naming the op and its
operands; bad feeds rejected before anything runs; indices out of range never read."""

from __future__ import annotations

import re

import numpy as np
import pytest

import graphc as gc


def here() -> int:
    """The line number of the caller (for asserting the file:line in messages)."""
    import inspect

    return inspect.currentframe().f_back.f_lineno  # type: ignore[union-attr]


def test_shape_error_names_op_operands_and_line() -> None:
    h = gc.placeholder((32, 10), name="h")
    bias = gc.placeholder((12,), name="bias")
    line = here() + 2
    with pytest.raises(gc.ShapeError) as info:
        _ = h + bias
    message = str(info.value)
    assert message.startswith(f"add at test_errors.py:{line}: cannot broadcast")
    assert "h: float32[32,10]" in message
    assert "bias: float32[12]" in message
    assert isinstance(info.value, ValueError)


def test_dtype_error_is_a_type_error_at_the_line() -> None:
    flags = gc.placeholder((3,), "bool", name="flags")
    line = here() + 2
    with pytest.raises(gc.DTypeError) as info:
        gc.negative(flags)
    assert f"neg at test_errors.py:{line}" in str(info.value)
    assert "flags: bool[3]" in str(info.value)
    assert isinstance(info.value, TypeError)


@pytest.mark.parametrize(
    ("build", "error"),
    [
        (lambda: gc.matmul(gc.placeholder((2, 3)), gc.placeholder((4, 5))), gc.ShapeError),
        (lambda: gc.matmul(gc.placeholder(()), gc.placeholder((3,))), gc.ShapeError),
        (lambda: gc.sum(gc.placeholder((2, 3)), axis=2), gc.ShapeError),
        (lambda: gc.sum(gc.placeholder((2, 3)), axis=(0, -2)), gc.ShapeError),
        (lambda: gc.max(gc.placeholder((0, 3)), axis=0), gc.ShapeError),
        (lambda: gc.argmax(gc.placeholder((3, 0)), axis=1), gc.ShapeError),
        (lambda: gc.reshape(gc.placeholder((2, 3)), (4, 2)), gc.ShapeError),
        (lambda: gc.reshape(gc.placeholder((2, 3)), (-1, -1)), gc.ShapeError),
        (lambda: gc.reshape(gc.placeholder((2, 3)), (-1, 4)), gc.ShapeError),
        (lambda: gc.transpose(gc.placeholder((2, 3)), (0, 0)), gc.ShapeError),
        (lambda: gc.broadcast_to(gc.placeholder((3,)), (2, 4)), gc.ShapeError),
        (lambda: gc.squeeze(gc.placeholder((2, 3)), 0), gc.ShapeError),
        (lambda: gc.concatenate([gc.placeholder((2, 3)), gc.placeholder((2, 4))]), gc.ShapeError),
        (lambda: gc.concatenate([gc.placeholder((2, 3)), gc.placeholder((3,))]), gc.ShapeError),
        (lambda: gc.stack([gc.placeholder((2,)), gc.placeholder((3,))]), gc.ShapeError),
        (lambda: gc.split(gc.placeholder((5,)), 2), gc.ShapeError),
        (lambda: gc.split(gc.placeholder((5,)), 0), gc.ArgumentError),
        (lambda: gc.take(gc.placeholder((5,)), gc.placeholder((2,))), gc.DTypeError),
        (lambda: gc.one_hot(gc.placeholder((2,)), 3), gc.DTypeError),
        (lambda: gc.one_hot(gc.placeholder((2,), "int64"), -1), gc.ArgumentError),
        (lambda: gc.pad(gc.placeholder((2,)), -1), gc.ShapeError),
        (lambda: gc.pad(gc.placeholder((2, 3)), ((1, 1), (1, 1), (1, 1))), gc.ShapeError),
        (lambda: gc.tile(gc.placeholder((2,)), -1), gc.ShapeError),
        (lambda: gc.topk(gc.placeholder((3,)), 4), gc.ShapeError),
        (lambda: gc.topk(gc.placeholder((3,)), -1), gc.ArgumentError),
        (lambda: gc.cast(gc.placeholder((3,)), "float16"), gc.DTypeError),
        (lambda: gc.placeholder((3,), "complex64"), gc.DTypeError),
        (lambda: gc.placeholder((-1,)), gc.ShapeError),
        (lambda: gc.placeholder(3), gc.ShapeError),
        (lambda: gc.constant(np.zeros(3, np.uint8)), gc.DTypeError),
        (lambda: gc.placeholder((3,), "int32") + 2**40, gc.DTypeError),
        (lambda: gc.gelu(gc.placeholder((3,)), approximate="fast"), gc.ArgumentError),
        (lambda: gc.arange(gc.placeholder(())), gc.ArgumentTypeError),
        (lambda: gc.arange(0, 5, 0), gc.ArgumentError),
        (
            lambda: gc.softmax_cross_entropy(gc.placeholder((4, 3)), gc.placeholder((4,))),
            gc.DTypeError,
        ),
        (
            lambda: gc.softmax_cross_entropy(gc.placeholder((4, 3)), gc.placeholder((5,), "int64")),
            gc.ShapeError,
        ),
        (lambda: gc.layer_norm(gc.placeholder((2, 3)), axis=0), gc.ShapeError),
        (lambda: gc.layer_norm(gc.placeholder((2, 3)), gc.placeholder((2,))), gc.ShapeError),
        (
            lambda: gc.conv2d(gc.placeholder((1, 3, 5, 5)), gc.placeholder((2, 2, 3, 3))),
            gc.ShapeError,
        ),
        (
            lambda: gc.conv2d(
                gc.placeholder((1, 2, 5, 5)), gc.placeholder((2, 2, 3, 3)), stride=(1, 2, 3)
            ),
            gc.ShapeError,
        ),
        (lambda: gc.max_pool2d(gc.placeholder((1, 1, 4, 4)), 2, padding=2), gc.ShapeError),
        (lambda: gc.max_pool2d(gc.placeholder((1, 4, 4)), 2), gc.ShapeError),
        (lambda: gc.sign(gc.placeholder((2,), "bool")), gc.DTypeError),
        (lambda: gc.floor_divide(gc.placeholder((2,), "bool"), True), gc.DTypeError),
        (lambda: gc.where(gc.placeholder((2,), "bool"), gc.placeholder((3,)), 0.0), gc.ShapeError),
    ],
)
def test_build_time_errors(build, error) -> None:
    with pytest.raises(error) as info:
        build()
    assert re.search(r"at test_errors\.py:\d+", str(info.value)), str(info.value)


@pytest.mark.parametrize(
    "index",
    [5, -6, (0, 0, 0), (Ellipsis, 0, Ellipsis)],
)
def test_indexing_out_of_range_at_build_time(index: object) -> None:
    x = gc.placeholder((5, 2))
    with pytest.raises(gc.IndexOutOfRangeError) as info:
        _ = x[index]
    assert isinstance(info.value, IndexError)
    assert isinstance(info.value, gc.GraphcError)


@pytest.mark.parametrize(
    "index",
    [np.array([True, False]), 1.5, slice(0.5, 2), "a", (gc.constant([0]), gc.constant([1]))],
)
def test_unsupported_indices_are_clear_errors(index: object) -> None:
    x = gc.placeholder((2, 2))
    with pytest.raises(gc.GraphcError):
        _ = x[index]


def test_index_out_of_range_at_run_time_reads_nothing() -> None:
    x = gc.placeholder((None,), name="x")
    i = gc.placeholder((None,), "int64", name="i")
    f = gc.function([x, i], [gc.take(x, i), x[-1]])
    np.testing.assert_array_equal(f(np.arange(4.0), [3, -4])[0], [3.0, 0.0])
    for bad in ([4], [-5]):
        with pytest.raises(gc.IndexOutOfRangeError) as info:
            f(np.arange(4.0), bad)
        assert isinstance(info.value, IndexError)
    scalar_index = gc.function([x], x[3])
    with pytest.raises(IndexError):
        scalar_index(np.arange(3.0))
    assert scalar_index(np.arange(4.0)) == 3.0


def test_cross_entropy_label_out_of_range_raises() -> None:
    logits = gc.placeholder((None, 3))
    labels = gc.placeholder((None,), "int64")
    f = gc.function([logits, labels], gc.softmax_cross_entropy(logits, labels))
    with pytest.raises(gc.IndexOutOfRangeError):
        f(np.zeros((2, 3)), [0, 3])


def test_integer_negative_power_raises_like_numpy() -> None:
    a = gc.placeholder((2,), "int64")
    f = gc.function([a], a ** gc.constant(np.array([1, -1])))
    with pytest.raises(gc.InputError):
        f([2, 3])


@pytest.fixture(scope="module")
def f() -> gc.Function:
    x = gc.placeholder((None, 3), name="x")
    labels = gc.placeholder((None,), "int64", name="labels")
    return gc.function([x, labels], gc.sum(x, axis=1) + labels)


class TestFeeds:
    """Every bad feed raises InputError before anything runs."""

    def test_good_feeds(self, f: gc.Function) -> None:
        out = f(np.ones((2, 3)), np.array([1, 2]))
        np.testing.assert_array_equal(out, [4.0, 5.0])
        assert out.dtype == np.float64  # float32 + int64 promotes to float64, as numpy

    @pytest.mark.parametrize(
        ("args", "kwargs", "match"),
        [
            ((np.ones((2, 3)),), {}, r"missing input\(s\) \['labels'\]"),
            ((), {"x": np.ones((2, 3)), "labels": [1, 2], "y": 1}, "unknown input 'y'"),
            ((np.ones((2, 3)), [1, 2], 3), {}, "takes 2 inputs, got 3"),
            ((np.ones((2, 3)),), {"x": np.ones((2, 3))}, "'x' is given twice"),
            ((np.ones(3), [1]), {}, "expected rank 2"),
            ((np.ones((2, 4)), [1, 2]), {}, "contradicts the declared 3"),
            ((np.ones((2, 3)), [1, 2, 3]), {}, "cannot broadcast sizes 2 and 3"),
            ((np.ones((2, 3)), [1.5, 2.5]), {}, "cannot cast float64"),
            ((np.ones((2, 3), complex), [1, 2]), {}, "cannot cast complex128"),
            ((np.array([["a"] * 3] * 2), [1, 2]), {}, "cannot cast"),
            (([[1, 2, 3], [1, 2]], [1, 2]), {}, "cannot convert"),
        ],
    )
    def test_bad_feeds(self, f: gc.Function, args: tuple, kwargs: dict, match: str) -> None:
        with pytest.raises(gc.InputError, match=match):
            f(*args, **kwargs)

    def test_same_kind_casts_are_accepted(self, f: gc.Function) -> None:
        out = f(np.ones((1, 3), np.float64), np.array([1], np.int32))
        np.testing.assert_array_equal(out, [4.0])
        np.testing.assert_array_equal(f([[True, False, True]], [0]), [2.0])

    def test_non_contiguous_feeds(self, f: gc.Function) -> None:
        big = np.arange(24.0).reshape(4, 6)
        view = big[::2, ::2]
        labels = np.array([0, 0, 9])[::2]
        np.testing.assert_array_equal(f(view, labels), view.sum(axis=1) + labels)


def test_unknown_dims_broadcast_at_run_time_as_numpy() -> None:
    a = gc.placeholder((None,), name="a")
    b = gc.placeholder((None,), name="b")
    f = gc.function([a, b], a * b)
    assert f(np.ones(5), np.full(1, 2.0)).shape == (5,)
    assert f(np.ones(0), np.ones(1)).shape == (0,)
    with pytest.raises(gc.InputError, match="cannot broadcast sizes 5 and 3"):
        f(np.ones(5), np.ones(3))


def test_run_time_requirements_name_the_node() -> None:
    x = gc.placeholder((None, None), name="x")
    w = gc.placeholder((None, 4), name="w")
    f = gc.function([x, w], x @ w)
    assert f(np.ones((2, 3)), np.ones((3, 4))).shape == (2, 4)
    with pytest.raises(gc.InputError) as info:
        f(np.ones((2, 3)), np.ones((5, 4)))
    message = str(info.value)
    assert "matmul at test_errors.py:" in message
    assert "x: float32[2,3]" in message
    assert "w: float32[5,4]" in message


def test_max_of_run_time_empty_axis_is_an_input_error() -> None:
    x = gc.placeholder((None,))
    f = gc.function([x], [gc.max(x), gc.argmin(x)])
    with pytest.raises(gc.InputError, match="zero-size"):
        f(np.ones(0))
    assert f(np.array([2.0, 1.0]))[1] == 1


def test_named_dims_are_shared_between_inputs() -> None:
    x = gc.placeholder(("batch", 3), name="x")
    y = gc.placeholder(("batch",), "int64", name="y")
    f = gc.function([x, y], gc.softmax_cross_entropy(x, y))
    assert f(np.zeros((4, 3)), np.zeros(4, "int64")).shape == (4,)
    with pytest.raises(gc.InputError, match="batch"):
        f(np.zeros((4, 3)), np.zeros(5, "int64"))


def test_bool_of_a_tensor_is_an_error() -> None:
    x = gc.placeholder(())
    with pytest.raises(gc.GraphcError, match="truth value"):
        bool(x > 0)
