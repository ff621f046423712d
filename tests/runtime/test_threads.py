"""Several Python threads calling one compiled function at once, with parallel loops
compiled in: numba's default workqueue threading layer would abort the process here;
graphc selects a thread-safe layer (omp or tbb)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(
    """
    import threading
    import numba
    import numpy as np
    import graphc as gc

    x = gc.placeholder((None, 256), "float32", name="x")
    y = gc.softmax(gc.tanh(x * 0.5) + 1.0, axis=-1)
    f = gc.function([x], [y, gc.sum(y * y)], device="cpu")
    src = f.source
    assert "prange" in src and "parallel={" in src, "no parallel loop was compiled"
    rng = np.random.default_rng(0)
    feeds = [rng.standard_normal((512 + 64 * i, 256)).astype(np.float32) for i in range(8)]
    expected = [gc.function([x], [y, gc.sum(y * y)], device="reference")(a) for a in feeds]
    errors = []

    def work(i):
        try:
            for _ in range(20):
                got = f(feeds[i])
                for g, e in zip(got, expected[i]):
                    np.testing.assert_allclose(g, e, rtol=1e-4, atol=1e-6)
        except Exception as error:  # reported by the parent
            errors.append(repr(error))

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors
    print("layer", numba.threading_layer())
    """
)


def test_eight_threads_call_one_parallel_function() -> None:
    env = {
        **os.environ,
        "GRAPHC_PARALLEL": "1",
        "GRAPHC_PARALLEL_MIN": "4096",
        "NUMBA_NUM_THREADS": "2",
    }
    env.pop("NUMBA_THREADING_LAYER", None)
    done = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    layer = done.stdout.split("layer")[-1].strip()
    assert layer in ("omp", "tbb"), layer
