"""Runtime: executes lowered code, the last stage of the pipeline.

Holds the ``Executable`` (signature, feed validation before any kernel runs, calls that are
safe from several threads, variable updates), buffer allocation from the memory plan,
variables' state, device memory and host-device transfers (``cuda``), and the on-disk
compile cache keyed by generated source, numba's version and the CPU. Installed as
``graphc.runtime``; it imports the graphc IR core and ``graphc.kernels``, never
``graphc.passes``.
"""
