"""numpy's rules for a few integer, sign and extremum scalar ops, as plain Python that both
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


def fsign(a):  # type: ignore[no-untyped-def]
    """numpy.sign on floats: NaN stays NaN, both zeros give 0.0, infinities give 1 or -1
    (the caller casts the float64 result back to the operand's dtype)."""
    if a > 0:
        return 1.0
    if a < 0:
        return -1.0
    return a - a  # NaN, or 0.0 for either zero


def power_by_squaring(a, b):  # type: ignore[no-untyped-def]
    """a ** b for ints, b >= 0, wrapping around as numpy's power does."""
    result = a - a + 1
    base = a
    e = b
    while e > 0:
        if e & 1:
            result = result * base
        base = base * base
        e >>= 1
    return result
