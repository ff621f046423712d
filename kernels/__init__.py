"""Lowering: turns an optimized graph into code that a backend can compile.

``plan`` turns a graph into a small kernel program (kernels, buffer plan, launch shapes) that
both backends share; ``cpu/`` emits it as Python source for ``numba.njit`` and ``cuda/`` for
``numba.cuda.jit``. Emitters for non-elementwise ops are registered here by op name, apart
from the backend-neutral op definitions in ``graphc.ops``. Installed as ``graphc.kernels``;
it imports only the graphc IR core, never ``graphc.passes`` or ``graphc.runtime``.
"""
