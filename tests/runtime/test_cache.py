"""The on-disk compile cache: generated modules are real files named by their content
and the machine, written atomically; a new process that compiles a graph compiled
before loads numba's cached code instead of compiling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from graphc.runtime import cache

CHILD = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import graphc as gc

    x = gc.placeholder((None, 3), "float32", name="x")
    w = gc.Variable(np.arange(6, dtype=np.float32).reshape(3, 2), name="w")
    y = gc.sum(gc.tanh(x @ w) * 2.0, axis=1)
    f = gc.function([x], y, device="cpu")
    result = f(np.ones((4, 3), np.float32))
    entry = f._executable.entry
    print(json.dumps({
        "result": result.tolist(),
        "hits": sum(entry.stats.cache_hits.values()),
        "misses": sum(entry.stats.cache_misses.values()),
        "kernels": len(f._executable.generated.kernels),
    }))
    """
)


def _run_child(cache_dir: Path) -> dict:
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(cache_dir), "GRAPHC_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_second_process_loads_the_compiled_code(tmp_path: Path) -> None:
    first = _run_child(tmp_path)
    second = _run_child(tmp_path)
    assert first["misses"] == 1
    assert first["hits"] == 0
    assert second["hits"] == 1
    assert second["misses"] == 0
    assert first["result"] == second["result"]
    expected = (np.tanh(np.ones((4, 3)) @ np.arange(6).reshape(3, 2)) * 2).sum(axis=1)
    np.testing.assert_allclose(second["result"], expected, rtol=1e-5)
    files = sorted(p.name for p in tmp_path.glob("graphc_*.py"))
    machine = cache.file_name("graphc_x").removeprefix("graphc_x")  # "_<digest>.py"
    assert first["kernels"] >= 1
    assert len(files) == 1 + first["kernels"]  # the entry's module and one per kernel
    assert all(name.endswith(machine) for name in files)
    assert not list(tmp_path.glob(".tmp-*")), "temporary files left behind"


def test_a_damaged_module_is_rewritten_before_it_is_imported(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GRAPHC_CACHE_DIR", str(tmp_path))
    source = "VALUE = 42\n"
    path = tmp_path / cache.file_name("graphc_test_damaged")
    path.write_text("raise SystemExit('not the source')\n")
    module = cache.load(source, "graphc_test_damaged")
    assert module.VALUE == 42
    assert path.read_text() == source


def test_concurrent_writers_leave_one_whole_file(tmp_path: Path) -> None:
    script = textwrap.dedent(
        f"""
        import os
        os.environ["GRAPHC_CACHE_DIR"] = {str(tmp_path)!r}
        from graphc.runtime import cache
        source = "DATA = " + repr("x" * 200000) + "\\n"
        for i in range(20):
            module = cache.load(source, f"graphc_race_{{i}}")
            assert len(module.DATA) == 200000
        """
    )
    workers = [subprocess.Popen([sys.executable, "-c", script]) for _ in range(4)]
    assert all(worker.wait() == 0 for worker in workers)
    files = list(tmp_path.glob("graphc_race_*.py"))
    assert len(files) == 20
    assert not list(tmp_path.glob(".tmp-*"))
