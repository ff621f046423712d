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
