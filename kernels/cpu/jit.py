"""How the CPU backend compiles: one numba decorator for every hand-written kernel.

Part of graphc.kernels. ``kernel`` is ``numba.njit`` with the options every graphc
kernel shares: ``cache=True`` (compiled code persists on disk across processes),
``nogil=True`` (Python threads may call compiled functions at once) and
``error_model="numpy"`` (float division by zero gives inf or NaN as numpy does, and
does not branch to raise, which would block vectorization).
"""

from __future__ import annotations

import functools

import numba

OPTIONS = {"cache": True, "nogil": True, "error_model": "numpy"}

kernel = functools.partial(numba.njit, **OPTIONS)
