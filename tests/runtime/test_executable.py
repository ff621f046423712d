"""Calls of numba-compiled functions: feeds of any layout, validation before any kernel,
fresh outputs, arenas, variable updates in place, and the generated source."""

from __future__ import annotations

import numba
import numpy as np
import pytest
import strategies
from hypothesis import given, settings

import graphc as gc
from graphc.kernels.cpu import lib


def _compiled_and_reference(inputs, outputs, updates=None):
    return (
        gc.function(inputs, outputs, updates, device="cpu"),
        gc.function(inputs, outputs, updates, device="reference"),
    )


@pytest.fixture(scope="module")
def fused_fn():
    x = gc.placeholder((None, 5), "float32", name="x")
    y = gc.placeholder((5,), "float32", name="y")
    out = gc.tanh(x * 0.5 + y) * gc.sigmoid(y) - gc.exp(-x * x)
    return _compiled_and_reference([x, y], [out, gc.sum(out, axis=0), gc.max(out, axis=1)])


def _check(pair, *feeds):
    compiled, reference = pair
    for got, want in zip(compiled(*feeds), reference(*feeds), strict=True):
        assert got.shape == want.shape
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=2e-5, atol=2e-6)


@pytest.mark.parametrize(
    "layout", ["contiguous", "transposed", "strided", "negative", "broadcast", "fortran"]
)
def test_any_input_layout(fused_fn, layout: str, rng: np.random.Generator) -> None:
    base = rng.standard_normal((8, 10)).astype(np.float32)
    x = {
        "contiguous": base[:, :5].copy(),
        "transposed": base.T[:5].T,
        "strided": base[:, ::2],
        "negative": base[::-1, 4::-1],
        "broadcast": np.broadcast_to(base[0, :5], (8, 5)),
        "fortran": np.asfortranarray(base[:, :5]),
    }[layout]
    y = rng.standard_normal(5).astype(np.float32)
    _check(fused_fn, x, y)


def test_empty_and_other_sizes_reuse_one_compiled_entry(fused_fn, rng) -> None:
    y = rng.standard_normal(5).astype(np.float32)
    for rows in (0, 1, 3, 200):
        _check(fused_fn, rng.standard_normal((rows, 5)).astype(np.float32), y)
    assert len(fused_fn[0]._executable.entry.signatures) == 1


def test_nan_and_inf_propagate(fused_fn) -> None:
    x = np.array([[np.nan, np.inf, -np.inf, 0.0, -0.0]] * 2, np.float32)
    _check(fused_fn, x, np.zeros(5, np.float32))


def test_unknown_sizes_broadcast_at_run_time_inside_one_kernel(rng) -> None:
    """x.0 and y.0 are distinct unknown sizes: the graph is one fused kernel, and a feed
    of size 1 broadcasts against the other, on either side."""
    x = gc.placeholder((None, None), "float32", name="x")
    y = gc.placeholder((None, None), "float32", name="y")
    out = gc.tanh(0.5 * x + y) * gc.sigmoid(y) - gc.exp(-x * x) + 0.1 * y
    pair = _compiled_and_reference([x, y], [out])
    assert pair[0].source.count("= fused ") == 1
    for xs, ys in [((3, 70), (3, 70)), ((1, 70), (3, 70)), ((3, 1), (1, 70)), ((0, 4), (1, 4))]:
        _check(pair, *(rng.standard_normal(s).astype(np.float32) for s in (xs, ys)))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_row_max_and_min_propagate_nan_from_any_lane(dtype: str, rng) -> None:
    """The float max/min reductions vectorize with a NaN flag beside them: a NaN in any
    position of a row (any vector lane, the tail) gives NaN; -inf and +inf do not."""
    x = gc.placeholder((None, None), dtype, name="x")
    pair = _compiled_and_reference(
        [x], [gc.max(x, axis=1), gc.min(x, axis=1), gc.max(x), gc.min(x * 2)]
    )
    assert "lib.rmax" in pair[0].source
    assert "lib.rmin" in pair[0].source
    data = rng.standard_normal((40, 37)).astype(dtype)
    for row, column in enumerate(range(37)):
        data[row, column] = np.nan
    data[38, 5], data[39, 6] = -np.inf, np.inf
    _check(pair, data)
    _check(pair, data[37:])  # no NaN at all


def test_feeds_are_cast_or_rejected_before_any_kernel(fused_fn) -> None:
    compiled, _ = fused_fn
    y = np.ones(5, np.float32)
    _check(fused_fn, np.ones((2, 5), np.float64), y)  # same_kind cast
    _check(fused_fn, [[1, 2, 3, 4, 5]], [1, 2, 3, 4, 5])  # lists and ints convert
    with pytest.raises(gc.InputError, match="y"):
        compiled(np.ones((2, 5), np.float32), np.ones(4, np.float32))
    with pytest.raises(gc.InputError, match="rank"):
        compiled(np.ones(5, np.float32), y)
    with pytest.raises(gc.InputError, match="cast"):
        compiled(np.ones((2, 5), np.complex64), y)
    readonly = np.ones((2, 5), np.float32)
    readonly.flags.writeable = False
    _check(fused_fn, readonly, y)


def test_static_shapes_are_checked_inside_the_entry() -> None:
    x = gc.placeholder((4,), "float32", name="x")
    f = gc.function([x], x + 1, device="cpu")
    np.testing.assert_array_equal(f(np.arange(4, dtype=np.float32)), np.arange(1, 5))
    with pytest.raises(gc.InputError, match="x"):
        f(np.arange(5, dtype=np.float32))
    # (the one-output dispatch of such a graph sends what it cannot take to the general
    # path: another dtype, a list, a strided view)
    for feed in (np.arange(4.0), [0, 1, 2, 3], np.arange(8, dtype=np.float32)[::2] / 2):
        got = f(feed)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, np.arange(1, 5))
    with pytest.raises(gc.InputError, match="cast"):
        f(np.arange(4, dtype=np.complex64))
    # the entry says so with its own exception type, which the runtime answers with the
    # full check of the feeds (and its message), on the general path too
    run = f._executable
    with pytest.raises(lib.FeedShapeError):
        run.entry(np.arange(5, dtype=np.float32), *run._constants)
    w = gc.Variable(np.ones(4, np.float32), name="w")
    g = gc.function([x], x * w, updates={w: w + 1.0}, device="cpu")
    g(np.ones(4, np.float32))
    with pytest.raises(gc.InputError, match="contradicts the declared 4"):
        g(np.ones(5, np.float32))
    np.testing.assert_array_equal(w.value, [2, 2, 2, 2])  # the bad call changed nothing


def test_outputs_are_fresh_arrays() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    f = gc.function([x], [x, x.T, x * 2, x * 2], device="cpu")
    a = np.ones(3, np.float32)
    first = f(a)
    assert not any(np.shares_memory(o, a) for o in first)
    assert not np.shares_memory(first[2], first[3])
    second = f(a)
    assert not any(np.shares_memory(o, p) for o in first for p in second)


def test_variables_update_in_place_and_from_old_values() -> None:
    w = gc.Variable(np.arange(4, dtype=np.float32), name="w")
    v = gc.Variable(np.ones(4, np.float32), name="v")
    x = gc.placeholder((4,), "float32", name="x")
    f = gc.function([x], gc.sum(w * x), updates={w: w - 0.5 * x, v: v + w}, device="cpu")
    array = w.get_state()
    out = f(np.ones(4, np.float32))
    assert float(out) == 6.0
    np.testing.assert_allclose(w.value, np.arange(4) - 0.5)
    np.testing.assert_allclose(v.value, 1 + np.arange(4))  # the old w
    f(np.ones(4, np.float32))
    np.testing.assert_allclose(w.value, np.arange(4) - 1.0)
    np.testing.assert_allclose(v.value, 1 + np.arange(4) + np.arange(4) - 0.5)
    del array


def test_an_update_that_is_the_last_reader_is_computed_in_place() -> None:
    w = gc.Variable(np.arange(4, dtype=np.float32), name="w")
    x = gc.placeholder((4,), "float32", name="x")
    f = gc.function([x], gc.sum(w * x), updates={w: w - 0.5 * x}, device="cpu")
    array = w.get_state()
    assert float(f(np.ones(4, np.float32))) == 6.0
    assert w.get_state() is array  # no new array: the kernel wrote into the old one
    np.testing.assert_allclose(array, np.arange(4) - 0.5)


def test_index_errors_raise_without_crashing() -> None:
    x = gc.placeholder((5,), "float32", name="x")
    i = gc.placeholder((None,), "int64", name="i")
    f = gc.function([x, i], gc.take(x, i), device="cpu")
    np.testing.assert_array_equal(f(np.arange(5, dtype=np.float32), [4, -5]), [4, 0])
    with pytest.raises(IndexError):
        f(np.arange(5, dtype=np.float32), [5])


def test_source_shows_the_ir_above_each_statement() -> None:
    x = gc.placeholder((None, 3), "float32", name="x")
    f = gc.function([x], gc.relu(x @ np.ones((3, 2), np.float32)) + 1.0, device="cpu")
    source = f.source
    assert "def entry(" in source
    assert source.count("def entry(") == 1
    # the matmul's kernel: panels, each finished by its epilogue's loop, in a module of its own
    (kernel,) = f._executable.generated.kernels
    assert kernel.symbol.startswith(kernel.name)
    assert f'lib.invoke("{kernel.symbol}", (' in source  # called at its address
    assert f"# k0: {kernel.symbol}" in source
    assert "def kernel(" in source
    assert "for " in source
    assert "lib.dot_rows(" in source
    assert "# %" in source
    assert "matmul" in source
    assert gc.function([x], x * 2, device="reference").source == ""


@pytest.mark.slow
@settings(max_examples=25)
@given(case=strategies.graph_cases())
def test_random_graphs_compiled_match_numpy(case: strategies.GraphCase) -> None:
    """Random programs of the public API (tests/strategies.py), compiled by the numba
    backend, against numpy's step-by-step evaluation (its error allowances)."""
    fn, _ = case.compile(symbolic=True, device="cpu")
    results = case.results(fn(*case.feeds()))
    for got, want in zip(results, case.expected, strict=True):
        strategies.assert_matches(got, want)


@pytest.mark.parametrize("name", ["a\nb", "a\u2028b", "a\x0cb", "a\x85b", "a\rb"])
def test_names_with_line_breaks_compile(name: str) -> None:
    """User names appear in comments of the generated code, escaped: a line break in one
    neither breaks the code nor changes what it computes."""
    x = gc.placeholder((None, 3), "float64", name=name)
    w = gc.Variable(np.full(3, 2.0), name=f"w{name}")
    fn = gc.function([x], gc.sum(x * w, axis=1), updates={w: w + 1.0}, device="cpu")
    np.testing.assert_array_equal(fn(np.ones((2, 3))), [6.0, 6.0])
    np.testing.assert_array_equal(fn(np.ones((2, 3))), [9.0, 9.0])


def test_kernels_are_called_only_with_the_types_they_were_compiled_for() -> None:
    """lib.invoke calls a kernel through an address, which cannot check its arguments
    at run time: typing refuses an unregistered kernel and any other argument types."""
    x = gc.placeholder((3,), "float64", name="x")
    f = gc.function([x], gc.tanh(x) * 2.0, device="cpu")
    np.testing.assert_allclose(f(np.ones(3)), np.tanh(np.ones(3)) * 2.0)
    (kernel,) = f._executable.generated.kernels
    assert lib.registered(kernel.symbol) is not None
    symbol = kernel.symbol

    @numba.njit
    def unknown(a):  # type: ignore[no-untyped-def]
        lib.invoke("graphc_no_such_kernel", (a,))

    @numba.njit
    def other_types(a):  # type: ignore[no-untyped-def]
        lib.invoke(symbol, (a, a))

    with pytest.raises(numba.core.errors.TypingError, match="no kernel is registered"):
        unknown(np.zeros(3))
    with pytest.raises(numba.core.errors.TypingError, match="is called with"):
        other_types(np.zeros(3, np.float32))
