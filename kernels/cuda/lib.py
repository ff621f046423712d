"""Device functions that generated CUDA kernels call, and the names of the float math
they use: numpy's edge cases for division, modulo, powers, signs, rounding and
NaN-propagating extrema, as ``cuda.jit(device=True)`` functions.

Part of graphc.kernels. On a GPU the float functions are ``math``'s, which numba.cuda
maps to libdevice (NaN and inf in, NaN and inf out). On numba's CUDA simulator kernels
run as Python, where ``math.log(0.0)`` raises: there the same names are numpy's scalar
functions, which follow IEEE like libdevice. `SIMULATED` says which one this process has.
"""

from __future__ import annotations

import math

import numpy as np
from numba import config, cuda

SIMULATED = bool(config.ENABLE_CUDASIM)

# graphc op name -> the function generated code calls on a GPU (numba.cuda's math)
GPU_MATH = {
    "exp": "math.exp",
    "log": "math.log",
    "tanh": "math.tanh",
    "expm1": "math.expm1",
    "log1p": "math.log1p",
    "erf": "math.erf",
    "sin": "math.sin",
    "cos": "math.cos",
    "tan": "math.tan",
    "arcsin": "math.asin",
    "arccos": "math.acos",
    "arctan": "math.atan",
    "sinh": "math.sinh",
    "cosh": "math.cosh",
    "sqrt": "math.sqrt",
    "floor": "math.floor",
    "ceil": "math.ceil",
    "abs": "abs",
    "rint": "cl.rint",
    "pow": "math.pow",
    "isnan": "math.isnan",
    "isinf": "math.isinf",
    "isfinite": "math.isfinite",
    "sigmoid": "cl.sigmoid",
}
# ... and on the simulator (numpy's scalar functions: no exceptions on NaN or inf)
SIMULATOR_MATH = {
    **{op: f"np.{op}" for op in GPU_MATH},
    "erf": "math.erf",  # numpy has none; Python's takes NaN and inf
    "pow": "np.power",
    "rint": "np.rint",
    "sigmoid": "cl.sigmoid",
}


def function(name: str, dtype: np.dtype) -> str:
    """The float function `name` for generated code in this process (see the module doc)."""
    return (SIMULATOR_MATH if SIMULATED else GPU_MATH)[name]


_floor = np.floor if SIMULATED else math.floor
_fmod = np.fmod if SIMULATED else math.fmod
_copysign = np.copysign if SIMULATED else math.copysign
_exp = np.exp if SIMULATED else math.exp
_isinf = np.isinf if SIMULATED else math.isinf

device = cuda.jit(device=True)


@device
def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1 / (1 + _exp(-x))
    z = _exp(x)
    return z / (1 + z)


@device
def rint(x):
    """Round half to even (numpy.rint), on a GPU where numba exposes no rint."""
    r = _floor(x)
    d = x - r
    if d > 0.5 or (d == 0.5 and _fmod(r, 2.0) != 0):
        r += 1
    return r


@device
def maxnan(a, b):
    """numpy.maximum: NaN wins."""
    return a if (a >= b or a != a) else b


@device
def minnan(a, b):
    """numpy.minimum: NaN wins."""
    return a if (a <= b or a != a) else b


@device
def ifloordiv(a, b):
    """numpy floor_divide on ints: 0 for a zero divisor; MIN // -1 wraps."""
    if b == 0:
        return a - a
    if b == -1:
        return -a
    q = a // b
    return q


@device
def imod(a, b):
    """numpy remainder on ints: the divisor's sign; 0 for a zero divisor."""
    if b == 0 or b == -1:
        return a - a
    return a % b


@device
def _floor_quotient(a, b):
    """numpy's floor quotient of floats (npy_divmod), for a nonzero b."""
    if a != a or b != b or _isinf(a):
        return a - a + np.nan
    mod = _fmod(a, b)
    div = (a - mod) / b
    if mod != 0 and (b < 0) != (mod < 0):
        div -= 1.0
    if div != 0:
        floor = _floor(div)
        if div - floor > 0.5:
            floor += 1.0
        return floor
    return _copysign(div - div, a / b)


@device
def _remainder(a, b):
    """numpy's remainder of floats (npy_divmod), for a nonzero b."""
    if a != a or b != b or _isinf(a):
        return a - a + np.nan
    mod = _fmod(a, b)
    if mod != 0:
        if (b < 0) != (mod < 0):
            mod += b
        return mod
    return _copysign(mod - mod, b)


@device
def fmod_numpy(a, b):
    """numpy remainder on floats (the sign of the divisor)."""
    if b == 0:
        return a - a + np.nan
    return _remainder(a, b)


@device
def ffloordiv(a, b):
    """numpy floor_divide on floats."""
    if b == 0:
        return a / b  # inf or NaN: kernels compile with numpy's error model
    return _floor_quotient(a, b)


@device
def ipow(a, b):
    """numpy power on ints: repeated squaring with wrap-around; a negative exponent
    (which numpy refuses) gives 0, as no kernel can raise."""
    result = a - a + 1
    if b < 0:
        return result - result
    base = a
    e = b
    while e > 0:
        if e & 1:
            result = result * base
        base = base * base
        e >>= 1
    return result


@device
def fsign(a):
    """numpy.sign on floats: NaN stays NaN, zeros stay zero, infinities give 1 or -1."""
    if a > 0:
        return 1.0
    if a < 0:
        return -1.0
    return a


@device
def better(v, i, best_v, best_i, find_max):
    """Whether element (v, i) beats (best_v, best_i) for argmax (argmin when not
    find_max): the first NaN wins, then the extremum, then the lower index."""
    if best_v != best_v:
        return v != v and i < best_i
    if v != v:
        return True
    if v == best_v:
        return i < best_i
    return (v > best_v) if find_max else (v < best_v)


@device
def wrap(index, size):
    """numpy's index convention: a negative index counts from the end. -1 for an index
    outside [-size, size), which the kernel reports (err) instead of reading."""
    t = np.int64(index)
    if t < 0:
        t += size
    if t < 0 or t >= size:
        return np.int64(-1)
    return t


@device
def before(a, b, descending):
    """Whether a sorts strictly before b: ascending with NaN last, or descending with NaN
    first (NaN != NaN spots a NaN in any dtype; ints and bools never are)."""
    if descending:
        return a > b or (a != a and b == b)
    return a < b or (b != b and a == a)


@device
def precedes(a, i, b, j, descending):
    """Whether element (a, at index i) comes before (b, at j) in a stable sort: the value's
    order first, then, among equal values (NaNs all equal), the lower index. A strict
    total order, so the number of elements preceding one is its place in the sort."""
    if before(a, b, descending):
        return True
    return i < j and not before(b, a, descending)
