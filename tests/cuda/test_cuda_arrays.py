"""The CUDA array kernels (graphc/kernels/cuda/arrays.py) against the reference interpreter:
the ops that appear only in gradients (index_add, scatter_add, untile, sum_to,
slice_scatter, split_like) through graphc.grad, with static shapes and with every dim
unknown until the call; the forward ops' edge cases the op table does not reach; and
index checking: a bad index raises IndexOutOfRangeError, a negative one counts from the
end. In CI it runs on numba's CUDA simulator, so shapes are tiny and each test compiles
one function holding many checks.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.cuda


def _placeholders(arrays: Sequence[np.ndarray], symbolic: bool) -> list[gc.Tensor]:
    return [gc.placeholder((None,) * a.ndim if symbolic else a.shape, a.dtype) for a in arrays]


def _compare(
    build: Callable[..., list[gc.Tensor]],
    arrays: Sequence[np.ndarray],
    symbolic: bool,
    rtol: float = 1e-12,
) -> list[np.ndarray]:
    """build(*placeholders)'s outputs on device="cuda" equal the reference interpreter's
    (same shapes and dtypes; floats within rtol, NaN where it has NaN); the cuda results."""
    placeholders = _placeholders(arrays, symbolic)
    outputs = build(*placeholders)
    got = gc.function(placeholders, outputs, device="cuda")(*arrays)
    want = gc.function(placeholders, outputs, device="reference")(*arrays)
    for i, (g, w) in enumerate(zip(got, want, strict=True)):
        assert (g.shape, g.dtype) == (w.shape, w.dtype), i
        if w.dtype.kind == "f":
            np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol, err_msg=f"output {i}")
        else:
            np.testing.assert_array_equal(g, w, err_msg=f"output {i}")
    return got


def _weighted(y: gc.Tensor, rng: np.random.Generator, shape: tuple[int, ...]) -> gc.Tensor:
    """sum(y * w) for fixed random weights w of y's (run-time) shape."""
    return gc.sum(y * gc.constant(rng.standard_normal(shape), y.dtype))


def _with_grads(y: gc.Tensor, xs: Sequence[gc.Tensor]) -> list[gc.Tensor]:
    return [y, *gc.grad(y, list(xs))]


# ------------------------------------------------------------------ gradients


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_gather_gradients(symbolic: bool, rng: np.random.Generator) -> None:
    """take -> index_add, take_along_axis -> scatter_add (indices broadcast or not),
    sort -> argsort and scatter_add, topk -> scatter_add."""
    x = rng.standard_normal((3, 4))
    rows = np.array([[2, 0], [-1, 2], [0, 0]])  # repeats and a negative index accumulate
    cols = np.array([3, -4, 1, 3, 3])
    along = np.array([[1, -1, 1], [0, 2, 2], [3, 3, -4]])
    along_row = np.array([[0, 3, -2, 0, 1]])  # broadcast along the first axis

    def build(x, rows, cols, along, along_row):
        terms = [
            _weighted(gc.take(x, rows, axis=0), rng, (3, 2, 4)),
            _weighted(gc.take(x, cols, axis=1), rng, (3, 5)),
            _weighted(gc.take_along_axis(x, along, axis=1), rng, (3, 3)),
            _weighted(gc.take_along_axis(x, along_row, axis=1), rng, (3, 5)),
            _weighted(gc.sort(x, axis=0), rng, (3, 4)),
            _weighted(gc.sort(x, axis=1), rng, (3, 4)),
            _weighted(gc.topk(x, 2, axis=1)[0], rng, (3, 2)),
            _weighted(gc.topk(x, 3, axis=0)[0], rng, (3, 4)),
        ]
        return [y for term in terms for y in _with_grads(term, [x])]

    _compare(build, [x, rows, cols, along, along_row], symbolic)


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_shape_gradients(symbolic: bool, rng: np.random.Generator) -> None:
    """tile -> untile, getitem -> slice_scatter, concatenate -> split_like, split ->
    concatenate, pad -> slice, cumsum -> flipped cumsums."""
    x = rng.standard_normal((3, 4))
    z = rng.standard_normal((3, 2))

    def build(x, z):
        terms = [
            _weighted(gc.tile(x, (2, 1, 3)), rng, (2, 3, 12)),
            _weighted(gc.tile(x, (2,)), rng, (3, 8)),
            _weighted(x[1::2, ::-1], rng, (1, 4)),
            _weighted(x[-2:, 3:0:-2], rng, (2, 2)),
            _weighted(x[:, 1:3], rng, (3, 2)),
            _weighted(gc.concatenate([x, z, x], axis=1), rng, (3, 10)),
            _weighted(gc.split(x, [1, 3], axis=1)[1], rng, (3, 2)),
            _weighted(gc.pad(x, ((1, 0), (2, 1))), rng, (4, 7)),
            _weighted(gc.cumsum(x, axis=1), rng, (3, 4)),
        ]
        return [y for term in terms for y in _with_grads(term, [x, z])]

    _compare(build, [x, z], symbolic)


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_broadcast_gradients_sum_to(symbolic: bool, rng: np.random.Generator) -> None:
    """Broadcasting adds: their gradients sum back to each operand's shape (sum_to), over
    leading axes and size-1 axes; with unknown dims the size-1 axes are found at run
    time."""
    x = rng.standard_normal((2, 3, 4))
    row = rng.standard_normal(4)
    column = rng.standard_normal((3, 1))
    middle = rng.standard_normal((2, 1, 4))
    single = rng.standard_normal((1, 1, 1))
    scalar = np.array(0.5)

    def build(x, row, column, middle, single, scalar):
        y = (x + row) * (column + middle) - single * scalar
        inputs = [x, row, column, middle, single, scalar]
        return _with_grads(_weighted(y, rng, (2, 3, 4)), inputs)

    _compare(build, [x, row, column, middle, single, scalar], symbolic)


# ------------------------------------------------------------------ forward edge cases


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_forward_edge_cases(symbolic: bool, rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 5)).astype(np.float32)
    ties = np.array([[1.0, np.nan, 3.0, 3.0, -0.0, np.nan, 0.0, 3.0]], np.float32)
    ints = rng.integers(-5, 5, (2, 3)).astype(np.int32)
    flags = rng.random((2, 3)) < 0.5
    empty = np.zeros((0, 3), np.float32)

    def build(x, ties, ints, flags, empty):
        return [
            *gc.split(x, [3, 1], axis=1),  # a cut below the previous one: an empty piece
            *gc.split(x, [-2], axis=1),
            x[::-2, -1:-6:-2],
            x[5:, :],  # empty
            gc.flip(x),
            *gc.topk(ties, 6),  # NaN counts as largest; ties keep index order
            gc.sort(ties),
            gc.argsort(ties),  # stable, NaN last
            gc.cumsum(ints, axis=0),  # int32 accumulates in int64
            gc.cumsum(flags, axis=1),
            gc.concatenate([ints, x[:2, :3], flags], axis=0),  # promoted to float32
            gc.pad(ints, ((0, 1), (2, 0)), constant_values=-7),
            gc.pad(flags, 1, constant_values=1),
            gc.tile(gc.sum(x), (2, 3)),  # a 0-d tile
            gc.take(x, gc.constant(np.int64(-2)), axis=1),  # a 0-d index
            gc.mean(x, axis=0),  # axis_size with unknown dims
            gc.var(x, axis=(0, 1)),
            gc.sort(empty, axis=0),
            gc.cumsum(empty, axis=1),
            gc.take(empty, gc.constant(np.array([2, 0])), axis=1),
        ]

    got = _compare(build, [x, ties, ints, flags, empty], symbolic, rtol=1e-6)
    np.testing.assert_array_equal(got[9][0], [1, 5, 2, 3, 7, 0])


# ------------------------------------------------------------------ index checks


@pytest.mark.parametrize("symbolic", [False, True], ids=["static", "symbolic"])
def test_index_out_of_range_raises(symbolic: bool, rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3))
    good_take, good_along = np.array([2, -3, -1]), np.array([[0], [-3]])

    def build(x, take_indices, along_indices):
        taken = gc.take(x, take_indices, axis=1)
        along = gc.take_along_axis(x, along_indices, axis=1)
        return [taken, along, *gc.grad(_weighted(taken, rng, (2, 3)), [x])]

    placeholders = _placeholders([x, good_take, good_along], symbolic)
    outputs = build(*placeholders)
    f = gc.function(placeholders, outputs, device="cuda")
    taken, along, _ = f(x, good_take, good_along)
    np.testing.assert_array_equal(taken, x[:, [2, 0, 2]])  # negatives count from the end
    np.testing.assert_array_equal(along, [[x[0, 0]], [x[1, 0]]])
    for bad in (3, -4, 1000):
        with pytest.raises(gc.IndexOutOfRangeError):
            f(x, np.array([0, bad, 1]), good_along)
        with pytest.raises(gc.IndexOutOfRangeError):
            f(x, good_take, np.array([[bad], [0]]))
    # the error flag is reset: a good call after a bad one runs
    np.testing.assert_array_equal(f(x, good_take, good_along)[0], taken)

    # the scatter-adds alone (gradients, without their forward gathers) check too
    def scatter(x, take_indices, along_indices):
        taken = _weighted(gc.take(x, take_indices, axis=0), rng, (2, 3))
        along = _weighted(gc.take_along_axis(x, along_indices, axis=0), rng, (1, 3))
        return gc.grad(taken + along, [x])

    placeholders = _placeholders([x, np.array([1, -2]), np.array([[0, 1, -1]])], symbolic)
    f = gc.function(placeholders, scatter(*placeholders), device="cuda")
    f(x, np.array([1, -2]), np.array([[0, 1, -1]]))
    with pytest.raises(gc.IndexOutOfRangeError):
        f(x, np.array([1, 2]), np.array([[0, 1, -1]]))
    with pytest.raises(gc.IndexOutOfRangeError):
        f(x, np.array([1, 0]), np.array([[0, -3, 1]]))


def test_index_checked_when_the_result_is_empty() -> None:
    """numpy checks every index even when nothing is gathered."""
    x = gc.placeholder((None, None), "float32")
    indices = gc.placeholder((None,), "int64")
    f = gc.function([x, indices], gc.take(x, indices, axis=1), device="cuda")
    assert f(np.zeros((0, 2), np.float32), np.array([1, -2])).shape == (0, 2)
    with pytest.raises(gc.IndexOutOfRangeError):
        f(np.zeros((0, 2), np.float32), np.array([2]))
    with pytest.raises(gc.IndexOutOfRangeError):
        f(np.zeros((3, 0), np.float32), np.array([0]))


def test_transpose_of_every_rank() -> None:
    """Transposes of rank 0 to 3 (unoptimized, so no pass removes the 0-d one)."""
    arrays = [np.float32(3.0), np.arange(3.0), np.arange(6.0).reshape(2, 3)]
    arrays.append(np.arange(24.0).reshape(2, 3, 4))
    placeholders = [gc.placeholder(np.shape(a), "float64") for a in arrays]
    outputs = [gc.transpose(p) for p in placeholders]
    outputs.append(gc.transpose(placeholders[3], (1, 2, 0)))
    f = gc.function(placeholders, outputs, device="cuda", optimize=False)
    wants = [np.transpose(a) for a in arrays] + [np.transpose(arrays[3], (1, 2, 0))]
    for got, want in zip(f(*arrays), wants, strict=True):
        np.testing.assert_array_equal(got, want)
