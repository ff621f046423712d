"""CUDA backend: emits the same kernel program for ``numba.cuda.jit``.

Generates kernels and launchers for an NVIDIA GPU from the program that ``graphc.kernels``
plans; in CI it runs on numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``). Together with
``graphc.runtime.cuda`` this is the only place that imports ``numba.cuda``. Installed as
``graphc.kernels.cuda``.
"""
