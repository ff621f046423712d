"""Shared test fixtures: a seeded random generator and the hypothesis profiles."""

from __future__ import annotations

import os
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, settings

os.environ.setdefault("GRAPHC_VERIFY", "1")  # verify the IR after every optimization pass
# Tests of the front end, autodiff and the passes run on the reference interpreter; the
# tests of the numba backend (tests/kernels, tests/runtime) ask for device="cpu".
os.environ.setdefault("GRAPHC_DEVICE", "reference")
os.environ.setdefault("GRAPHC_PARALLEL", "0")  # parallel loops: tests/runtime/test_threads.py
# compiled graphs are cached inside the checkout (ignored by git), not in the user's home
os.environ.setdefault(
    "GRAPHC_CACHE_DIR", str(Path(__file__).resolve().parent.parent / ".cache" / "graphc-tests")
)


def _simulator_shares_shared_arrays() -> None:
    """numba's simulator gives a block's threads one shared array by looking it up in a
    dict and creating it when missing, unlocked: two threads preempted in between get
    two arrays, and a block reduction sums half its values (seen once in a CI run).
    Make the lookup and creation one step."""
    import threading

    from numba import types
    from numba.cuda.simulator.kernelapi import FakeCUDAShared
    from numba.np import numpy_support

    unlocked = FakeCUDAShared.array
    lock = threading.Lock()

    def array(self: FakeCUDAShared, shape: object, dtype: object) -> object:
        if shape == 0:  # dynamic shared memory: one buffer, no lookup
            return unlocked(self, shape, dtype)
        if isinstance(dtype, types.Type):
            dtype = numpy_support.as_dtype(dtype)
        frame = sys._getframe(1)  # allocations are told apart by the calling line
        caller = (frame.f_code.co_filename, frame.f_lineno)
        with lock:
            allocated = self._allocations.get(caller)
            if allocated is None:
                allocated = self._allocations[caller] = np.empty(shape, dtype)
        return allocated

    FakeCUDAShared.array = array


if os.environ.get("NUMBA_ENABLE_CUDASIM") == "1":
    # numba's CUDA simulator runs each GPU thread as a Python thread while the launching
    # thread polls them; with the default 5 ms GIL switch interval every syncthreads
    # waits out the poller's slices (a training step of the MLP: 29 s, and 3.6 s here)
    sys.setswitchinterval(1e-4)
    _simulator_shares_shared_arrays()

settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> np.random.Generator:
    """A generator seeded by the test's name, so every test is reproducible on its own."""
    return np.random.default_rng(zlib.crc32(request.node.nodeid.encode()))


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked `cuda` need a GPU or numba's CUDA simulator (NUMBA_ENABLE_CUDASIM=1,
    which `make test` sets for its second pytest run); elsewhere they are skipped with
    the reason graphc gives for device="cuda"."""
    cuda_items = [item for item in items if item.get_closest_marker("cuda")]
    if not cuda_items:
        return
    from graphc.runtime.cuda import unavailable

    reason = unavailable()
    if reason is None:
        return
    skip = pytest.mark.skip(reason=f"no CUDA device: {reason}")
    for item in cuda_items:
        item.add_marker(skip)


@pytest.fixture
def unfused_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """No row kernels (passes/fuse.py): a softmax stays its max, exp, sum and divide
    loops, the graphs the tests of loop records, chunk groups and in-place loops read."""
    from graphc.passes import fuse

    monkeypatch.setattr(fuse, "MAX_ROW_REDUCTIONS", 0)
