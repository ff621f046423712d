"""The benchmarks pin each measurement process to its row's thread count of cores
(bench/timing.py): a library that sizes its pool from the machine, as XLA's loops do,
must not take a second core in a one-thread row."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "bench_timing", Path(__file__).resolve().parents[1] / "bench" / "timing.py"
)
assert _SPEC is not None
assert _SPEC.loader is not None
timing = sys.modules["bench_timing"] = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(timing)

pytestmark = pytest.mark.skipif(
    not hasattr(os, "sched_getaffinity"), reason="the platform cannot pin processes"
)


def test_a_row_of_fewer_threads_than_cores_is_pinned_to_that_many():
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        pytest.skip("one core: nothing to pin")
    assert timing.cores_for(1) == {allowed[0]}
    assert timing.cores_for(len(allowed) - 1) == set(allowed[:-1])
    assert timing.cores_for(len(allowed)) is None  # every core: no pinning
    assert timing.cores_for(None) is None
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(sorted(os.sched_getaffinity(0)))"],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=timing.pinned(1),
    )
    assert child.stdout.strip() == str([allowed[0]])
    assert timing.pinned(len(allowed)) is None
