"""Runtime: executes lowered code, the last stage of the pipeline.

Holds the executables: one base (``base``: feed validation before any kernel runs, the
shape-key cache, per-thread arenas, update locks, installing new states) under the CPU
one (``executable``), the CUDA one (``cuda``: streams, transfers and the device copies of
variables, which the runtime owns) and the reference one; compiling kernels
(``compile``), the interpreted entry and profiles (``interpreted``), and the on-disk
compile cache keyed by generated source, numba's version and the CPU. Installed as
``graphc.runtime``; it imports the graphc IR core and ``graphc.kernels``, never
``graphc.passes``.
"""
