"""The op table (tests/opinfo.py) on the numba CPU backend, against the reference
interpreter (see tests/optable.py): about 480 compiled functions, a few minutes on 2
cores.
"""

from __future__ import annotations

import numpy as np
import opinfo
import optable
import pytest


@pytest.mark.parametrize(("case", "dtypes"), optable.PARAMS)
def test_numba_matches_reference(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    optable.check_row(case, dtypes, rng, "cpu")


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_an_empty_constant_in_an_elementwise_chain(device: str) -> None:
    """An empty constant is an operand, never a literal: it has no element to inline
    (the gradient of a product with an empty operand built one, and crashed codegen)."""
    import graphc as gc

    x = gc.placeholder((1, 3), "float64", name="x")
    empty = np.zeros((0, 3))
    fn = gc.function([x], [gc.exp(x * empty + 1.0), gc.sum(x * empty, axis=0)], device=device)
    product, total = fn(np.ones((1, 3)))
    assert product.shape == (0, 3)
    np.testing.assert_array_equal(total, np.zeros(3))
