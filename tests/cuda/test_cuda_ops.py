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
