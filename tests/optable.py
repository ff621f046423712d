"""The op table (tests/opinfo.py) run by a compiled backend against the reference
interpreter: every row, in float32 and float64 where the row takes them (its first
dtypes otherwise), with static shapes and with every dim unknown until the call;
plus NaN and inf flowing through. tests/kernels/test_cpu_ops.py runs it on the CPU,
tests/cuda/test_cuda_ops.py on the GPU (or numba's CUDA simulator).

One compiled function per row and dtype holds the row's shapes under test, so the
compile cost is paid once per row rather than once per shape.
"""

from __future__ import annotations

import warnings
import zlib
from typing import Any

import numpy as np
import opinfo
import pytest

import graphc as gc


def _dtypes_of(case: opinfo.OpCase) -> list[tuple[str, ...]]:
    floats = [d for d in case.dtypes if all(x in ("float32", "float64") for x in d)]
    return floats or list(case.dtypes[:1])


PARAMS = [
    pytest.param(case, dtypes, id=f"{case.id}-{'-'.join(dtypes) or 'none'}")
    for case in opinfo.CASES
    for dtypes in _dtypes_of(case)
]


def _as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def _tolerance(case: opinfo.OpCase, dtype: np.dtype) -> dict[str, float]:
    if dtype.kind != "f":
        return {"rtol": 0, "atol": 0}
    if case.rtol is not None:
        return {"rtol": case.rtol, "atol": case.rtol}
    # the backend's exp/log/tanh/... are accurate to a few ulps, not bit-equal to numpy's
    return {"rtol": 2e-5, "atol": 2e-6} if dtype == np.float32 else {"rtol": 1e-12, "atol": 1e-13}


def _compare(case: opinfo.OpCase, groups: list[tuple[list[np.ndarray], bool]], device: str) -> None:
    """One compiled function over every (inputs, symbolic) group, against the reference."""
    placeholders: list[gc.Tensor] = []
    outputs: list[gc.Tensor] = []
    for arrays, symbolic in groups:
        ps = [gc.placeholder((None,) * a.ndim if symbolic else a.shape, a.dtype) for a in arrays]
        placeholders += ps
        outputs += _as_tuple(case.build(*ps))
    feeds = [a for arrays, _ in groups for a in arrays]
    compiled = gc.function(placeholders, outputs, device=device)
    reference = gc.function(placeholders, outputs, device="reference")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        want = reference(*feeds)
    got = compiled(*feeds)
    for g, w in zip(got, want, strict=True):
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        bad = ~np.isclose(g, w, equal_nan=True, **_tolerance(case, g.dtype))
        assert not bad.any(), (np.argwhere(bad)[:4], g[bad][:4], w[bad][:4])


def _special(rng: np.random.Generator, array: np.ndarray) -> np.ndarray:
    if array.dtype.kind != "f" or array.size == 0:
        return array
    out = array.copy()
    flat = out.reshape(-1)
    picks = rng.choice(flat.size, size=min(3, flat.size), replace=False)
    for index, value in zip(picks, (np.nan, np.inf, -np.inf), strict=False):
        flat[index] = value
    return out


def check_row(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator, device: str
) -> None:
    """Static shapes: the row's last (usually its widest broadcast) and one more chosen by
    the row's name, so the table as a whole covers every shape kind (0-d, empty, size-1
    broadcasting) without compiling every shape of every row; NaN and inf in the last
    shape; and the row's first shape with every dim unknown until the call."""
    shapes = case.shapes
    other = shapes[zlib.crc32(case.id.encode()) % len(shapes)]
    groups = [(case.inputs(rng, shapes[-1], dtypes), False)]
    if other != shapes[-1]:
        groups.append((case.inputs(rng, other, dtypes), False))
    if case.special_values:
        special = [_special(rng, a) for a in case.inputs(rng, shapes[-1], dtypes)]
        groups.append((special, False))
    if case.symbolic:
        groups.append((case.inputs(rng, shapes[0], dtypes), True))
    _compare(case, groups, device)
