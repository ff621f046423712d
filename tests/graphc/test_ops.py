"""Every row of the op table (tests/opinfo.py), for every dtype it accepts: the inferred
type equals numpy's, the reference result equals numpy's, with static and with
unknown-until-run-time dims, and NaN/inf flow as numpy's do."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import opinfo
import pytest

import graphc as gc
from graphc.ops.control import CONTROL_OPS

PARAMS = [
    pytest.param(case, dtypes, id=f"{case.id}-{'-'.join(dtypes) or 'none'}")
    for case in opinfo.CASES
    for dtypes in case.dtypes
]


def as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def expected_outputs(case: opinfo.OpCase, arrays: Sequence[np.ndarray]) -> tuple[np.ndarray, ...]:
    """numpy's answer; float math on bool, which numpy does in float16, redone in float32."""
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
        outputs = tuple(np.asarray(o) for o in as_tuple(case.oracle(*arrays)))
        if any(o.dtype == np.float16 for o in outputs):
            widened = [a.astype(np.float32) if a.dtype == bool else a for a in arrays]
            outputs = tuple(np.asarray(o) for o in as_tuple(case.oracle(*widened)))
    return outputs


def tolerance(case: opinfo.OpCase, dtype: np.dtype) -> dict[str, float]:
    if dtype.kind != "f":
        return {"rtol": 0, "atol": 0}
    if case.rtol is not None:
        return {"rtol": case.rtol, "atol": case.rtol}
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-11, "atol": 1e-12}


def run_case(
    case: opinfo.OpCase, arrays: list[np.ndarray], symbolic: bool = False
) -> tuple[np.ndarray, ...]:
    placeholders = [
        gc.placeholder((None,) * a.ndim if symbolic else a.shape, a.dtype) for a in arrays
    ]
    outputs = as_tuple(case.build(*placeholders))
    return as_tuple(gc.function(placeholders, list(outputs))(*arrays))


def assert_matches(
    case: opinfo.OpCase, actual: Sequence[np.ndarray], expected: Sequence[np.ndarray]
) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        assert got.shape == want.shape
        want_dtype = np.float32 if want.dtype == np.float16 else want.dtype
        assert got.dtype == want_dtype
        np.testing.assert_allclose(
            got, want.astype(want_dtype), equal_nan=True, **tolerance(case, got.dtype)
        )


@pytest.mark.parametrize(("case", "dtypes"), PARAMS)
def test_inferred_type_matches_numpy(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    for shapes in case.shapes:
        arrays = case.inputs(rng, shapes, dtypes)
        placeholders = [gc.placeholder(a.shape, a.dtype) for a in arrays]
        outputs = as_tuple(case.build(*placeholders))
        for tensor, want in zip(outputs, expected_outputs(case, arrays), strict=True):
            assert tensor.shape == want.shape, shapes
            assert tensor.dtype == (np.float32 if want.dtype == np.float16 else want.dtype)


@pytest.mark.parametrize(("case", "dtypes"), PARAMS)
def test_reference_matches_numpy(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    for shapes in case.shapes:
        arrays = case.inputs(rng, shapes, dtypes)
        assert_matches(case, run_case(case, arrays), expected_outputs(case, arrays))


@pytest.mark.parametrize(("case", "dtypes"), [p for p in PARAMS if p.values[0].symbolic])
def test_unknown_dims_match_numpy(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    """The same rows with every dim None at build time: sizes are bound at run time."""
    for shapes in case.shapes:
        arrays = case.inputs(rng, shapes, dtypes)
        assert_matches(case, run_case(case, arrays, symbolic=True), expected_outputs(case, arrays))


def with_special_values(rng: np.random.Generator, array: np.ndarray) -> np.ndarray:
    """A copy of a float array with about a third of its entries NaN, +inf or -inf."""
    if array.dtype.kind != "f" or array.size == 0:
        return array
    special = np.array([np.nan, np.inf, -np.inf], array.dtype)
    mask = rng.random(array.shape) < 0.35
    return np.where(mask, rng.choice(special, size=array.shape), array)


SPECIAL = [
    p for p in PARAMS if p.values[0].special_values and any(d in opinfo.FLOATS for d in p.values[1])
]


@pytest.mark.parametrize(("case", "dtypes"), SPECIAL)
def test_nan_and_inf_match_numpy(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    for shapes in case.shapes:
        arrays = [with_special_values(rng, a) for a in case.inputs(rng, shapes, dtypes)]
        assert_matches(case, run_case(case, arrays), expected_outputs(case, arrays))


def test_every_api_op_has_a_row() -> None:
    covered = {case.name for case in opinfo.CASES}
    missing = [name for name in opinfo.API_OPS if name not in covered]
    assert not missing
    assert all(callable(getattr(gc, name)) for name in opinfo.API_OPS)


def _differentiated(
    placeholders: list[gc.Tensor], outputs: tuple[gc.Tensor, ...]
) -> list[gc.Tensor]:
    """The gradients of the float outputs' sum with respect to the float inputs."""
    floats = [p for p in placeholders if p.dtype.kind == "f"]
    terms = [gc.sum(o) for o in outputs if o.dtype.kind == "f"]
    if not floats or not terms:
        return []
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return gc.grad(total, floats)


def test_every_registered_op_is_exercised_by_the_table(rng: np.random.Generator) -> None:
    """Building every row's graph, and its gradient (whose primitives the gradient checks
    of tests/graphc/test_grad.py verify), reaches every primitive in the registry."""
    seen: set[str] = set()
    for case in opinfo.CASES:
        arrays = case.inputs(rng, case.shapes[0], case.dtypes[0])
        for symbolic in (False, True) if case.symbolic else (False,):
            placeholders = [
                gc.placeholder((None,) * a.ndim if symbolic else a.shape, a.dtype) for a in arrays
            ]
            outputs = as_tuple(case.build(*placeholders))
            fetched = list(outputs) + _differentiated(placeholders, outputs)
            graph = gc.function(placeholders, fetched, optimize=False).graph
            seen |= {n.op for n in graph.nodes}
    seen.add("variable")  # exercised by the Variable tests
    seen.add("fused")  # made by the fuse pass: tests/passes/test_fuse.py
    seen.update(CONTROL_OPS)  # bodies are functions, not table rows: tests/graphc/test_control.py
    assert sorted(set(gc.registry.REGISTRY) - seen) == []
