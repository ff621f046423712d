"""device="cuda" where no GPU is usable: a clear GraphcError when the function is
compiled or loaded, and one error line from the `graphc` command; never a crash.
(The CUDA backend itself is tested in tests/cuda/, on a GPU or numba's simulator.)"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.runtime import cuda as runtime_cuda

REASON = "no NVIDIA GPU and CUDA driver were found; use device='cpu'"


@pytest.fixture
def no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runtime_cuda, "unavailable", lambda: REASON)


def test_function_says_why(no_gpu: None) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    with pytest.raises(gc.GraphcError, match="device='cuda': no NVIDIA GPU"):
        gc.function([x], x + 1.0, device="cuda")


def test_load_says_why(no_gpu: None, tmp_path: Path) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    path = tmp_path / "f.graphc"
    gc.save(path, gc.function([x], x + 1.0, device="reference"))
    with pytest.raises(gc.GraphcError, match="device='cuda': no NVIDIA GPU"):
        gc.load(path, device="cuda")


def _without_simulator() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}


def test_a_process_without_a_gpu_gets_the_error_not_a_crash(tmp_path: Path) -> None:
    """In a process of its own (numba reads the environment once): where this machine
    has no GPU, compiling for cuda raises GraphcError naming the device; with one, it
    runs and computes."""
    code = (
        "import numpy as np, graphc as gc\n"
        "x = gc.placeholder((2,), 'float32', name='x')\n"
        "try:\n"
        "    f = gc.function([x], x + 1.0, device='cuda')\n"
        "except gc.GraphcError as error:\n"
        "    print('refused:', error)\n"
        "else:\n"
        "    print('ran:', f(np.array([1.0, 2.0], 'float32')))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=_without_simulator()
    )
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert out.startswith("refused: device='cuda': ") or out.startswith("ran: [2. 3.]"), out


def test_the_command_prints_one_line(tmp_path: Path) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    path = tmp_path / "f.graphc"
    gc.save(path, gc.function([x], x + 1.0, device="reference"))
    np.save(tmp_path / "x.npy", np.ones(2, "float32"))
    command = [sys.executable, "-m", "graphc", "run", str(path), "--device", "cuda"]
    command += ["--input", f"x={tmp_path / 'x.npy'}"]
    done = subprocess.run(command, capture_output=True, text=True, env=_without_simulator())
    if done.returncode == 0:  # a machine with a GPU
        assert "2." in done.stdout
    else:
        assert done.returncode == 1
        assert done.stderr.startswith("graphc: error: device='cuda': "), done.stderr
        assert "Traceback" not in done.stderr
