"""Control flow on the CUDA backend: not lowered yet, so a function with a scan, cond
or while_loop is refused, before anything compiles, with an error that names the
devices that run it."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.cuda


def test_cuda_refuses_control_flow_clearly() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    final, _ = gc.scan(lambda c, e: (c + e, None), gc.constant(np.float32(0)), x)
    with pytest.raises(NotImplementedError, match="device='cuda' cannot run control flow"):
        gc.function([x], final, device="cuda")
