"""Lowering: turns an optimized graph into code that a backend can compile.

``plan`` turns a graph into a kernel program (typed Loop, Library and View records, the
buffer plan, run-time sizes) that both backends share; ``program_text`` prints it and
``verify`` checks it. ``cpu/`` emits it as Python source for ``numba.njit`` and ``cuda/``
for ``numba.cuda.jit``, through one entry writer (``writer``), one emitter registry keyed
by target and op (``emit``) and one table of scalar formulas (``scalar``), apart from the
backend-neutral op definitions in ``graphc.ops``. Installed as ``graphc.kernels``;
it imports only the graphc IR core, never ``graphc.passes`` or ``graphc.runtime``.
"""
