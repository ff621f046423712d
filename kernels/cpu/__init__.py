"""CPU backend: emits a kernel program as readable Python source and compiles it with numba.

Each loop kernel becomes generated source compiled with ``numba.njit``, and the whole graph
becomes one generated entry function (parallel ``prange`` loops over the big kernels when
numba has several threads), so a call costs one dispatch rather than one per op. Emitters
are looked up by op name (emit.py). Installed as ``graphc.kernels.cpu``.

Threading: numba's default ``workqueue`` layer aborts the process when two Python threads
run parallel code at once, so graphc selects a thread-safe layer (``omp`` or ``tbb``:
numba's "threadsafe" choice) unless the user chose one with NUMBA_THREADING_LAYER, and
compiles no parallel code when neither is installed.
"""

from __future__ import annotations

import functools
import os

import numba


@functools.cache
def threadsafe_layer() -> bool:
    """Select a thread-safe threading layer; False if none can be loaded."""
    if "NUMBA_THREADING_LAYER" in os.environ:
        return numba.config.THREADING_LAYER in ("omp", "tbb", "safe", "threadsafe")
    for module in ("omppool", "tbbpool"):
        try:
            __import__(f"numba.np.ufunc.{module}")
        except ImportError:
            continue
        numba.config.THREADING_LAYER = "threadsafe"
        return True
    return False
