"""CPU backend: emits a kernel program as readable Python source and compiles it with numba.

Each kernel becomes generated source compiled with ``numba.njit`` (parallel ``prange`` loops
where the work is big enough), and the whole graph becomes one generated entry function, so
a call costs one dispatch rather than one per op. Emitters for non-elementwise ops (matmul,
reductions, ...) are looked up by op name. Installed as ``graphc.kernels.cpu``.
"""
