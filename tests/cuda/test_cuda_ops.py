"""The op table (tests/opinfo.py) on the CUDA backend, against the reference interpreter
(see tests/optable.py). In CI it runs on numba's CUDA simulator; unmodified on a GPU.
"""

from __future__ import annotations

import numpy as np
import opinfo
import optable
import pytest

pytestmark = pytest.mark.cuda


@pytest.mark.parametrize(("case", "dtypes"), optable.PARAMS)
def test_cuda_matches_reference(
    case: opinfo.OpCase, dtypes: tuple[str, ...], rng: np.random.Generator
) -> None:
    optable.check_row(case, dtypes, rng, "cuda")


def test_an_empty_constant_in_an_elementwise_chain() -> None:
    import graphc as gc

    x = gc.placeholder((1, 3), "float64", name="x")
    empty = np.zeros((0, 3))
    fn = gc.function([x], [gc.exp(x * empty + 1.0), gc.sum(x * empty, axis=0)], device="cuda")
    product, total = fn(np.ones((1, 3)))
    assert product.shape == (0, 3)
    np.testing.assert_array_equal(total, np.zeros(3))
