"""Device functions that generated CUDA kernels call: the float math of the elementwise
ops, and numpy's edge cases for division, modulo, powers, signs, rounding and
NaN-propagating extrema, as ``cuda.jit(device=True)`` functions.

Part of graphc.kernels. Generated code calls these by the same names on a GPU and on
numba's CUDA simulator (`scalar.CUDA` names one here for every float function), so CI
runs the kernel text a GPU runs; numba inlines device functions, which costs nothing on
a GPU. What differs is chosen here, once, at import: on a GPU the bodies call
``math``'s functions, which numba.cuda maps to libdevice (NaN and inf in, NaN and inf
out). On the simulator kernels run as Python, where ``math.log(0.0)`` raises: there the
bodies call numpy's functions, which follow IEEE like libdevice (and Python's erf, which
numpy lacks and which takes NaN and inf). `SIMULATED` says which one this process has.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from numba import config, cuda

from graphc.kernels import numpy_rules

SIMULATED = bool(config.ENABLE_CUDASIM)


def _pick(numpy_function: Callable[..., Any], math_function: Callable[..., Any]) -> Any:
    """numpy's scalar function on the simulator, math's (libdevice's) on a GPU."""
    return numpy_function if SIMULATED else math_function


def _array_power(x: Any, y: Any) -> Any:
    """numpy.power as its arrays compute it: numpy's float scalars take x ** 0.5 for
    sqrt(x), which gives -0.0 and NaN at -0.0 and -inf where arrays (and C's pow) give
    0.0 and inf."""
    return np.power(np.array([x]), np.array([y]))[0]


_exp = _pick(np.exp, math.exp)
_expm1 = _pick(np.expm1, math.expm1)
_log = _pick(np.log, math.log)
_log1p = _pick(np.log1p, math.log1p)
_sqrt = _pick(np.sqrt, math.sqrt)
_sin = _pick(np.sin, math.sin)
_cos = _pick(np.cos, math.cos)
_tan = _pick(np.tan, math.tan)
_arcsin = _pick(np.arcsin, math.asin)
_arccos = _pick(np.arccos, math.acos)
_arctan = _pick(np.arctan, math.atan)
_sinh = _pick(np.sinh, math.sinh)
_cosh = _pick(np.cosh, math.cosh)
_tanh = _pick(np.tanh, math.tanh)
_erf = math.erf  # numpy has none; Python's takes NaN and inf without raising
_power = _pick(_array_power, math.pow)
_floor = _pick(np.floor, math.floor)  # a float on both (numba.cuda's floor and ceil)
_ceil = _pick(np.ceil, math.ceil)
_fmod = _pick(np.fmod, math.fmod)
_copysign = _pick(np.copysign, math.copysign)
_isnan = _pick(np.isnan, math.isnan)
_isinf = _pick(np.isinf, math.isinf)
_isfinite = _pick(np.isfinite, math.isfinite)

device = cuda.jit(device=True)


# The float math of the elementwise ops (scalar.CUDA's functions), named as the ops are
# (numpy's names for abs and pow: absolute and power, below).


@device
def exp(x):
    return _exp(x)


@device
def expm1(x):
    return _expm1(x)


@device
def log(x):
    return _log(x)


@device
def log1p(x):
    return _log1p(x)


@device
def sqrt(x):
    return _sqrt(x)


@device
def sin(x):
    return _sin(x)


@device
def cos(x):
    return _cos(x)


@device
def tan(x):
    return _tan(x)


@device
def arcsin(x):
    return _arcsin(x)


@device
def arccos(x):
    return _arccos(x)


@device
def arctan(x):
    return _arctan(x)


@device
def sinh(x):
    return _sinh(x)


@device
def cosh(x):
    return _cosh(x)


@device
def tanh(x):
    return _tanh(x)


@device
def erf(x):
    return _erf(x)


@device
def floor(x):
    return _floor(x)


@device
def ceil(x):
    return _ceil(x)


@device
def absolute(x):
    """numpy.abs of a float (the op `abs`; named as numpy does, not to hide the builtin)."""
    return abs(x)


@device
def power(x, y):
    """numpy.power of floats (the op `pow`)."""
    return _power(x, y)


@device
def isnan(x):
    return _isnan(x)


@device
def isinf(x):
    return _isinf(x)


@device
def isfinite(x):
    return _isfinite(x)


@device
def sigmoid(x):
    """1 / (1 + exp(-x)) without overflow for large |x|."""
    if x >= 0:
        return 1 / (1 + _exp(-x))
    z = _exp(x)
    return z / (1 + z)


@device
def rint(x):
    """Round half to even (numpy.rint), the same arithmetic on a GPU and the simulator.
    The result keeps x's sign, as numpy's does: rint(-0.4) is -0.0."""
    r = _floor(x)
    d = x - r
    if d > 0.5 or (d == 0.5 and _fmod(r, 2.0) != 0):
        r += 1
    return _copysign(r, x)


# numpy's rules both targets share (kernels/numpy_rules.py)
maxnan = device(numpy_rules.maxnan)
minnan = device(numpy_rules.minnan)
ifloordiv = device(numpy_rules.ifloordiv)
imod = device(numpy_rules.imod)


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
        floored = _floor(div)
        if div - floored > 0.5:
            floored += 1.0
        return floored
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


_power_by_squaring = device(numpy_rules.power_by_squaring)
fsign = device(numpy_rules.fsign)


@device
def ipow(a, b):
    """numpy power on ints: repeated squaring with wrap-around; a negative exponent
    (which numpy refuses) gives 0, as no kernel can raise."""
    if b < 0:
        return a - a
    return _power_by_squaring(a, b)


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
