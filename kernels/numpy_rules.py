"""numpy's rules for a few integer and extremum scalar ops, as plain Python that both
targets compile: kernels/cpu/lib.py with numba.njit, kernels/cuda/lib.py as CUDA device
functions. Generated kernels reach them through those modules (`lib.maxnan`,
`cl.maxnan`), never here.

Part of graphc.kernels. The compile cache digests this file with the target libraries
(runtime/cache.py), since generated modules are cached with these callees compiled in.
"""

from __future__ import annotations


def maxnan(a, b):  # type: ignore[no-untyped-def]
    """numpy.maximum: NaN wins; of two equal values (0.0 and -0.0) the second."""
    return a if (a > b or a != a) else b


def minnan(a, b):  # type: ignore[no-untyped-def]
    """numpy.minimum: NaN wins; of two equal values (0.0 and -0.0) the second."""
    return a if (a < b or a != a) else b


def ifloordiv(a, b):  # type: ignore[no-untyped-def]
    """numpy floor_divide on ints: 0 for a zero divisor; MIN // -1 wraps."""
    if b == 0:
        return a - a
    if b == -1:
        return -a
    return a // b


def imod(a, b):  # type: ignore[no-untyped-def]
    """numpy remainder on ints: the divisor's sign; 0 for a zero divisor."""
    if b == 0 or b == -1:
        return a - a
    return a % b
