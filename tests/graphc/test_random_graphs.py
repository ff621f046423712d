"""Random valid graphs (tests/strategies.py) against numpy, the oracle: results, inferred
types, unknown dims, the verifier and printer, and repeated calls.

The number of examples comes from the loaded hypothesis profile (tests/conftest.py:
"ci" by default, HYPOTHESIS_PROFILE=dev for more).
"""

from __future__ import annotations

import numpy as np
import pytest
import strategies
from hypothesis import given
from hypothesis import strategies as st

from graphc.verify import verify


def assert_identical(actual: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, shape and values bit for bit (NaN equal to NaN)."""
    assert actual.dtype == expected.dtype
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected, strict=True)


@pytest.mark.parametrize("family", sorted(strategies.FAMILIES))
@given(data=st.data())
def test_result_matches_numpy(family: str, data: st.DataObject) -> None:
    """Graphs of all ops, and graphs of one family, which reach its rarer cases more often."""
    case = data.draw(strategies.graph_cases(ops=strategies.FAMILIES[family]), label="case")
    fn, _ = case.compile()
    results = case.results(fn(*case.feeds()))
    assert len(results) == len(case.expected)
    for got, want in zip(results, case.expected, strict=True):
        strategies.assert_matches(got, want)


@given(case=strategies.graph_cases())
def test_inferred_type_agrees_with_numpy(case: strategies.GraphCase) -> None:
    """The static type: numpy's dtype and rank, numpy's size wherever a dim is known;
    with every input dim declared, every output dim is known."""
    _, outputs = case.build(symbolic=True)
    for tensor, want in zip(outputs, case.expected, strict=True):
        assert tensor.dtype == want.dtype
        assert tensor.ndim == len(want.shape)
        assert all(d is None or d == w for d, w in zip(tensor.shape, want.shape, strict=True))
    _, outputs = case.build(symbolic=False)
    for tensor, want in zip(outputs, case.expected, strict=True):
        assert tensor.dtype == want.dtype
        assert tensor.shape == want.shape


@given(case=strategies.graph_cases(unknown_dims=True))
def test_unknown_dims_give_identical_results(case: strategies.GraphCase) -> None:
    """Declaring dims None instead of their sizes changes nothing a call returns."""
    feeds = case.feeds()
    static = case.results(case.compile(symbolic=False)[0](*feeds))
    symbolic = case.results(case.compile(symbolic=True)[0](*feeds))
    for a, b in zip(symbolic, static, strict=True):
        assert_identical(a, b)


@given(case=strategies.graph_cases())
def test_graph_verifies_and_prints_one_line_per_node(case: strategies.GraphCase) -> None:
    fn, _ = case.compile()
    graph = fn.graph
    assert verify(graph) is graph
    lines = str(graph).splitlines()
    assert len(lines) == 1 + len(graph.nodes) + 1 + len(graph.updates)
    assert lines[0].startswith("graph(")
    assert lines[0].endswith(":")
    for node, line in zip(graph.nodes, lines[1:], strict=False):
        assert line.startswith(f"  %{node.id}")
        assert f" = {node.op}" in line
    assert lines[len(graph.nodes) + 1].startswith("  return %")


def strided(array: np.ndarray) -> np.ndarray:
    """A non-contiguous view holding the same values (a 0-d or empty array as is)."""
    if array.ndim == 0 or array.size == 0:
        return array
    return np.repeat(array, 2, axis=-1)[..., ::2]


@given(case=strategies.graph_cases())
def test_calls_repeat_and_return_fresh_arrays(case: strategies.GraphCase) -> None:
    """Two calls on the same inputs agree; each returns arrays of its own, aliasing
    neither the other call's results, nor each other, nor the inputs, which stay intact;
    non-contiguous feeds give the same results."""
    fn, _ = case.compile()
    feeds = case.feeds()
    first = case.results(fn(*feeds))
    second = case.results(fn(**{i.name: a for i, a in zip(case.inputs, feeds, strict=True)}))
    kept = [r.copy() for r in second]
    for a, b in zip(first, second, strict=True):
        assert_identical(a, b)
    results = first + second
    for n, result in enumerate(results):
        assert not any(np.shares_memory(result, other) for other in results[n + 1 :])
        assert not any(np.shares_memory(result, feed) for feed in feeds)
    for result in first:
        result[...] = 7  # fits every dtype the graphs compute
    for result, copy in zip(second, kept, strict=True):
        assert_identical(result, copy)
    for feed, given_input in zip(feeds, case.inputs, strict=True):
        assert_identical(feed, given_input.array)
    for a, b in zip(case.results(fn(*map(strided, feeds))), kept, strict=True):
        assert_identical(a, b)
