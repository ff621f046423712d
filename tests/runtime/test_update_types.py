"""Variables keep their declared dtype and shape after every update, however the passes
merge, fuse or compute in place the value that updates them: random graphs of 0-d and
n-d Variables whose updates alias fetched outputs, each other and other variables,
checked against a numpy model after every call."""

from __future__ import annotations

import numpy as np
import pytest
import update_cases
from hypothesis import given, settings

import graphc as gc


@given(case=update_cases.update_cases())
def test_reference_keeps_types(case: update_cases.UpdateCase) -> None:
    update_cases.check_calls(case, "reference")


@settings(max_examples=25)
@given(case=update_cases.update_cases())
def test_cpu_keeps_types(case: update_cases.UpdateCase) -> None:
    update_cases.check_calls(case, "cpu")


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_zero_d_update_equal_to_a_fetched_output(device: str) -> None:
    """The issue's program: b's update equals the output, and the two are merged."""
    a = gc.Variable(np.array(2.0), name="a")
    b = gc.Variable(np.array(3.0), name="b")
    f = gc.function([], a * b, updates={a: a + b, b: a * b}, device=device)
    np.testing.assert_array_equal(f(), 6.0)
    assert a.value.shape == ()
    assert b.value.shape == ()
    assert a.value == 5.0
    assert b.value == 6.0


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_update_by_a_transposed_view_is_contiguous(device: str) -> None:
    w = gc.Variable(np.arange(6.0).reshape(2, 3), name="w")
    u = gc.Variable(np.zeros((3, 2)), name="u")
    f = gc.function([], [w], updates={u: w.T}, device=device)
    f()
    assert u.value.shape == (3, 2)
    assert u.get_state().flags.c_contiguous
    np.testing.assert_array_equal(u.value, np.arange(6.0).reshape(2, 3).T)


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_fortran_ordered_values_are_stored_c_ordered(device: str) -> None:
    """An initial value or an assigned array in Fortran order (or a transposed view) is
    stored C-ordered, as compiled code reads it; two graphs over variables that differ
    only in the order of their initial values share code and both run."""
    f_order = gc.Variable(np.asfortranarray(np.arange(6.0).reshape(2, 3)), name="f")
    c_order = gc.Variable(np.arange(6.0).reshape(2, 3), name="c")
    assert f_order.get_state().flags.c_contiguous
    first = gc.function([], gc.sum(f_order * 2.0), updates={f_order: f_order + 1.0}, device=device)
    second = gc.function([], gc.sum(c_order * 2.0), updates={c_order: c_order + 1.0}, device=device)
    np.testing.assert_array_equal(first(), 30.0)
    np.testing.assert_array_equal(second(), 30.0)
    c_order.assign(np.ones((3, 2)).T * 5.0)  # a transposed view
    assert c_order.get_state().flags.c_contiguous
    np.testing.assert_array_equal(second(), 60.0)
    np.testing.assert_array_equal(c_order.value, np.full((2, 3), 6.0))
