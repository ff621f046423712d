"""Vectorizable math for the CPU backend: exp, log, tanh and sigmoid in plain arithmetic.

pip's llvmlite is built without Intel SVML, so ``math.exp`` and friends inside ``@njit``
compile to scalar libm calls and a fused elementwise loop that uses them does not vectorize
(PERFORMANCE.md, fact 1). The functions here use only arithmetic, comparisons and a few
bit reinterpretations (tiny numba ``@intrinsic`` bitcasts written with llvmlite), so once
inlined into a loop LLVM's loop vectorizer turns them into AVX2 / AVX-512 code.

Division goes through ``fdiv`` (a bare LLVM ``fdiv``): numba's ``/`` under the default
``error_model="python"`` branches to raise ZeroDivisionError, which blocks vectorization.

Each function exists for float32 and float64 (``exp32`` / ``exp64``, ...); the float32
versions compute in float32 throughout. They are ``numba.njit(inline="always")`` and meant
to be called from generated kernels (``out[i] = vmath.exp32(x[i])``); calling them from
Python works too but goes through a numba dispatch per call.

Methods (all correct for +-inf, NaN, +-0 and subnormal inputs and outputs):

- ``exp``: x = k*ln2 + r with a Cody-Waite hi/lo split of ln2 and k rounded with the
  1.5*2**p shifter; e**r by a polynomial (float32, Cephes ``expf``) or a rational function
  (float64, Cephes ``exp``); the scale 2**k is written into the exponent bits, split into
  two factors so that results in the subnormal range round once and overflow gives inf.
- ``log``: exponent and mantissa read through the bits (subnormals scaled up first), the
  mantissa reduced to [sqrt(1/2), sqrt(2)), then log(1+f) through s = f/(2+f) and the
  musl/fdlibm polynomials.
- ``tanh``: an odd polynomial / rational function for |x| < 0.625 (exact for tiny x and
  keeps -0), 1 - 2/(exp(2|x|)+1) with the sign restored above; both computed, one selected.
- ``sigmoid``: e = exp(-|x|), then 1/(1+e) for x >= 0 and e/(1+e) for x < 0, so neither
  side overflows and tiny results (down to subnormals) keep their relative accuracy.

Measured maximum errors against float64 numpy (float32 functions) and against numpy's
long double (float64 functions), stated as bounds in tests/kernels/test_vmath.py:
exp32 <= 1 ulp, log32 <= 1 ulp, tanh32 <= 2 ulp, sigmoid32 <= 2 ulp,
exp64 <= 2 ulp, log64 <= 1 ulp, tanh64 <= 2 ulp, sigmoid64 <= 2 ulp.

Layering: part of ``graphc.kernels`` (installed from ``kernels/``); imports only numpy,
numba and llvmlite, never ``graphc.passes`` or ``graphc.runtime``, and not ``numba.cuda``.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.extending import intrinsic

__all__ = [
    "exp32",
    "exp64",
    "fdiv",
    "float32_as_int32",
    "float64_as_int64",
    "int32_as_float32",
    "int64_as_float64",
    "log32",
    "log64",
    "sigmoid32",
    "sigmoid64",
    "tanh32",
    "tanh64",
    "vectorizable",
]


def vectorizable(fn):
    """Compile ``fn`` for inlining into vectorized loops: always inlined, strict IEEE."""
    return numba.njit(inline="always", fastmath=False, cache=False)(fn)


# ---------------------------------------------------------------------------------------
# Bit reinterpretation (no conversion): a single LLVM ``bitcast``.
# ---------------------------------------------------------------------------------------


def _resize_int(builder, value, bits):
    """``value`` (an LLVM integer) truncated or sign-extended to ``bits`` bits."""
    width = value.type.width
    if width > bits:
        return builder.trunc(value, ir.IntType(bits))
    if width < bits:
        return builder.sext(value, ir.IntType(bits))
    return value


@intrinsic
def float32_as_int32(typingctx, x):
    """The bits of a float32 as an int32."""
    if x != types.float32:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(32))

    return types.int32(types.float32), codegen


@intrinsic
def int32_as_float32(typingctx, i):
    """The float32 whose bits are the low 32 bits of the integer ``i``."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(_resize_int(builder, args[0], 32), ir.FloatType())

    return types.float32(i), codegen


@intrinsic
def float64_as_int64(typingctx, x):
    """The bits of a float64 as an int64."""
    if x != types.float64:
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], ir.IntType(64))

    return types.int64(types.float64), codegen


@intrinsic
def int64_as_float64(typingctx, i):
    """The float64 whose bits are the integer ``i`` (sign-extended to 64 bits)."""
    if not isinstance(i, types.Integer):
        return None

    def codegen(context, builder, signature, args):
        return builder.bitcast(_resize_int(builder, args[0], 64), ir.DoubleType())

    return types.float64(i), codegen


@intrinsic
def fdiv(typingctx, a, b):
    """IEEE ``a / b`` of two floats of one type, without numba's zero-division check.

    numba's ``/`` raises ZeroDivisionError under the default ``error_model="python"``, and
    that branch keeps the loop from vectorizing; this is a bare ``fdiv`` whatever the error
    model of the function it is inlined into.
    """
    if not isinstance(a, types.Float) or a != b:
        return None

    def codegen(context, builder, signature, args):
        return builder.fdiv(args[0], args[1])

    return a(a, b), codegen


# ---------------------------------------------------------------------------------------
# Constants. numba types a Python float literal as float64, so every constant used in a
# float32 function is a module-level np.float32 (frozen into the code as a float32).
# ---------------------------------------------------------------------------------------

F32 = np.float32
F64 = np.float64

_ONE_F = F32(1.0)
_TWO_F = F32(2.0)
_HALF_F = F32(0.5)
_INF_F = F32(np.inf)
_NAN_F = F32(np.nan)
_ONE_D = F64(1.0)
_TWO_D = F64(2.0)
_HALF_D = F64(0.5)
_INF_D = F64(np.inf)
_NAN_D = F64(np.nan)

# exp32: Cephes expf (e**r = 1 + r + r*r*P(r) on |r| <= ln2/2).
_EXP32_HI = F32(89.0)  # above ln(FLT_MAX) = 88.72: the result is inf
_EXP32_LO = F32(-104.0)  # below ln(2**-150) = -103.97: the result rounds to 0
_LOG2E_F = F32(1.44269504088896341)
_SHIFT_F = F32(12582912.0)  # 1.5 * 2**23: adding it rounds to an integer in the low bits
_SHIFT_F_BITS = 0x4B400000
_LN2_HI_F = F32(0.693359375)
_LN2_LO_F = F32(-2.12194440e-4)
_EXP32_P0 = F32(1.9875691500e-4)
_EXP32_P1 = F32(1.3981999507e-3)
_EXP32_P2 = F32(8.3334519073e-3)
_EXP32_P3 = F32(4.1665795894e-2)
_EXP32_P4 = F32(1.6666665459e-1)
_EXP32_P5 = F32(5.0000001201e-1)

# exp64: Cephes exp (e**r = 1 + 2*r*P(r*r) / (Q(r*r) - r*P(r*r))).
_EXP64_HI = F64(710.0)  # above ln(DBL_MAX) = 709.78
_EXP64_LO = F64(-746.0)  # below ln(2**-1075) = -745.13
_LOG2E_D = F64(1.4426950408889634073599)
_SHIFT_D = F64(6755399441055744.0)  # 1.5 * 2**52
_SHIFT_D_BITS = 0x4338000000000000
_LN2_HI_D = F64(6.93145751953125e-1)
_LN2_LO_D = F64(1.42860682030941723212e-6)
_EXP64_P0 = F64(1.26177193074810590878e-4)
_EXP64_P1 = F64(3.02994407707441961300e-2)
_EXP64_P2 = F64(9.99999999999999999910e-1)
_EXP64_Q0 = F64(3.00198505138664455042e-6)
_EXP64_Q1 = F64(2.52448340349684104192e-3)
_EXP64_Q2 = F64(2.27265548208155028766e-1)
_EXP64_Q3 = F64(2.00000000000000000009e0)

# log32: musl logf.
_FLT_MIN = F32(1.17549435e-38)
_TWO25_F = F32(33554432.0)  # 2**25
_KADJ32 = F32(2.0**23 + 127)  # subtracted from 2**23 + biased exponent to give k
_KADJ32_SUB = F32(2.0**23 + 127 + 25)  # ... for subnormals scaled by 2**25
_LOG32_LN2_HI = F32(6.9313812256e-01)
_LOG32_LN2_LO = F32(9.0580006145e-06)
_LOG32_LG1 = F32(0.66666662693)
_LOG32_LG2 = F32(0.40000972152)
_LOG32_LG3 = F32(0.28498786688)
_LOG32_LG4 = F32(0.24279078841)

# log64: musl log.
_DBL_MIN = F64(2.2250738585072014e-308)
_TWO54_D = F64(18014398509481984.0)  # 2**54
_KADJ64 = F64(2.0**52 + 1023)
_KADJ64_SUB = F64(2.0**52 + 1023 + 54)
_LOG64_LN2_HI = F64(6.93147180369123816490e-01)
_LOG64_LN2_LO = F64(1.90821492927058770002e-10)
_LOG64_LG1 = F64(6.666666666666735130e-01)
_LOG64_LG2 = F64(3.999999999940941908e-01)
_LOG64_LG3 = F64(2.857142874366239149e-01)
_LOG64_LG4 = F64(2.222219843214978396e-01)
_LOG64_LG5 = F64(1.818357216161805012e-01)
_LOG64_LG6 = F64(1.531383769920937332e-01)
_LOG64_LG7 = F64(1.479819860511658591e-01)

# tanh32: Cephes tanhf for |x| < 0.625.
_TANH_SMALL_F = F32(0.625)
_TANH32_P0 = F32(-5.70498872745e-3)
_TANH32_P1 = F32(2.06390887954e-2)
_TANH32_P2 = F32(-5.37397155531e-2)
_TANH32_P3 = F32(1.33314422036e-1)
_TANH32_P4 = F32(-3.33332819422e-1)

# tanh64: Cephes tanh for |x| < 0.625 (x + x*z*P(z)/Q(z), Q monic).
_TANH_SMALL_D = F64(0.625)
_TANH64_P0 = F64(-9.64399179425052238628e-1)
_TANH64_P1 = F64(-9.92877231001918586564e1)
_TANH64_P2 = F64(-1.61468768441708447952e3)
_TANH64_Q0 = F64(1.12811678491632931402e2)
_TANH64_Q1 = F64(2.23548839060100448583e3)
_TANH64_Q2 = F64(4.84406305325125486048e3)


# ---------------------------------------------------------------------------------------
# exp
# ---------------------------------------------------------------------------------------


@vectorizable
def exp32(x):
    """e**x in float32 (max error 1 ulp); inf above 88.72, subnormals and 0 below -87.3."""
    x = F32(x)
    # Clamping keeps k in range; +-inf saturate, NaN fails both tests and stays NaN.
    if x > _EXP32_HI:
        x = _EXP32_HI
    if x < _EXP32_LO:
        x = _EXP32_LO
    t = x * _LOG2E_F + _SHIFT_F  # round(x / ln2) lands in the low mantissa bits of t
    kf = t - _SHIFT_F
    r = x - kf * _LN2_HI_F
    r = r - kf * _LN2_LO_F
    p = ((((_EXP32_P0 * r + _EXP32_P1) * r + _EXP32_P2) * r + _EXP32_P3) * r + _EXP32_P4) * r
    p = ((p + _EXP32_P5) * r) * r + r + _ONE_F
    # 2**k as two normal factors: p*2**k1 is exact, the second product rounds once
    # (to a subnormal, to 0 or to inf where the result lies there).
    # k1 = round(k/2) through the shifter too: an integer k >> 1 would be done in int64
    # (numba widens integer arithmetic), which AVX2 has no vector arithmetic shift for.
    k = float32_as_int32(t) - _SHIFT_F_BITS
    k1 = float32_as_int32(kf * _HALF_F + _SHIFT_F) - _SHIFT_F_BITS
    k2 = k - k1
    return p * int32_as_float32((k1 + 127) << 23) * int32_as_float32((k2 + 127) << 23)


@vectorizable
def exp64(x):
    """e**x in float64 (max error 2 ulp); inf above 709.78, subnormals and 0 below -708.4."""
    x = F64(x)
    if x > _EXP64_HI:
        x = _EXP64_HI
    if x < _EXP64_LO:
        x = _EXP64_LO
    t = x * _LOG2E_D + _SHIFT_D
    kf = t - _SHIFT_D
    r = x - kf * _LN2_HI_D
    r = r - kf * _LN2_LO_D
    rr = r * r
    px = r * ((_EXP64_P0 * rr + _EXP64_P1) * rr + _EXP64_P2)
    qx = ((_EXP64_Q0 * rr + _EXP64_Q1) * rr + _EXP64_Q2) * rr + _EXP64_Q3
    p = _ONE_D + _TWO_D * fdiv(px, qx - px)
    k = float64_as_int64(t) - _SHIFT_D_BITS
    k1 = float64_as_int64(kf * _HALF_D + _SHIFT_D) - _SHIFT_D_BITS
    k2 = k - k1
    return p * int64_as_float64((k1 + 1023) << 52) * int64_as_float64((k2 + 1023) << 52)


# ---------------------------------------------------------------------------------------
# log
# ---------------------------------------------------------------------------------------


@vectorizable
def log32(x):
    """Natural log in float32 (max error 1 ulp); -inf at +-0, NaN below 0, inf at inf."""
    x = F32(x)
    # Subnormals: scale into the normal range and take the scale back out of k.
    sub = x < _FLT_MIN
    xs = x * _TWO25_F if sub else x
    kadj = _KADJ32_SUB if sub else _KADJ32
    ix = float32_as_int32(xs) + (0x3F800000 - 0x3F3504F3)
    # k as a float without an int64 -> float conversion (none in AVX2): the biased
    # exponent written into the mantissa of 2**23, minus 2**23, the bias and the scaling.
    dk = int32_as_float32(((ix >> 23) & 0xFF) + 0x4B000000) - kadj
    m = int32_as_float32((ix & 0x007FFFFF) + 0x3F3504F3)  # in [sqrt(1/2), sqrt(2))
    f = m - _ONE_F
    s = fdiv(f, _TWO_F + f)
    z = s * s
    w = z * z
    big_r = z * (_LOG32_LG1 + w * _LOG32_LG3) + w * (_LOG32_LG2 + w * _LOG32_LG4)
    hfsq = _HALF_F * f * f
    res = s * (hfsq + big_r) + dk * _LOG32_LN2_LO - hfsq + f + dk * _LOG32_LN2_HI
    if not x < _INF_F:  # +inf and NaN return themselves
        res = x
    if x < 0:
        res = _NAN_F
    if x == 0:
        res = -_INF_F
    return res


@vectorizable
def log64(x):
    """Natural log in float64 (max error 1 ulp); -inf at +-0, NaN below 0, inf at inf."""
    x = F64(x)
    sub = x < _DBL_MIN
    xs = x * _TWO54_D if sub else x
    kadj = _KADJ64_SUB if sub else _KADJ64
    ix = float64_as_int64(xs) + ((0x3FF00000 - 0x3FE6A09E) << 32)
    dk = int64_as_float64(((ix >> 52) & 0x7FF) + 0x4330000000000000) - kadj
    m = int64_as_float64((ix & 0x000FFFFFFFFFFFFF) + (0x3FE6A09E << 32))
    f = m - _ONE_D
    hfsq = _HALF_D * f * f
    s = fdiv(f, _TWO_D + f)
    z = s * s
    w = z * z
    t1 = w * (_LOG64_LG2 + w * (_LOG64_LG4 + w * _LOG64_LG6))
    t2 = z * (_LOG64_LG1 + w * (_LOG64_LG3 + w * (_LOG64_LG5 + w * _LOG64_LG7)))
    res = s * (hfsq + (t1 + t2)) + dk * _LOG64_LN2_LO - hfsq + f + dk * _LOG64_LN2_HI
    if not x < _INF_D:
        res = x
    if x < 0:
        res = _NAN_D
    if x == 0:
        res = -_INF_D
    return res


# ---------------------------------------------------------------------------------------
# tanh and sigmoid
# ---------------------------------------------------------------------------------------


@vectorizable
def tanh32(x):
    """tanh in float32 (max error 2 ulp); exact for tiny x, keeps -0, +-1 at +-inf."""
    x = F32(x)
    ax = -x if x < 0 else x
    z = x * x
    small = (((_TANH32_P0 * z + _TANH32_P1) * z + _TANH32_P2) * z + _TANH32_P3) * z + _TANH32_P4
    small = x + x * z * small
    big = _ONE_F - fdiv(_TWO_F, exp32(ax + ax) + _ONE_F)  # 1 at +inf: exp gives inf
    if x < 0:
        big = -big
    res = small if ax < _TANH_SMALL_F else big
    return x if x == 0 else res  # -0 + 0 would be +0


@vectorizable
def tanh64(x):
    """tanh in float64 (max error 2 ulp); exact for tiny x, keeps -0, +-1 at +-inf."""
    x = F64(x)
    ax = -x if x < 0 else x
    z = x * x
    num = (_TANH64_P0 * z + _TANH64_P1) * z + _TANH64_P2
    den = ((z + _TANH64_Q0) * z + _TANH64_Q1) * z + _TANH64_Q2
    small = x + x * z * fdiv(num, den)
    big = _ONE_D - fdiv(_TWO_D, exp64(ax + ax) + _ONE_D)
    if x < 0:
        big = -big
    res = small if ax < _TANH_SMALL_D else big
    return x if x == 0 else res  # -0 + 0 would be +0


@vectorizable
def sigmoid32(x):
    """1 / (1 + e**-x) in float32 (max error 2 ulp); 0 at -inf, 1 at inf, 0.5 at +-0."""
    x = F32(x)
    e = exp32(x if x < 0 else -x)  # e**-|x|, never overflows
    num = e if x < 0 else _ONE_F
    return fdiv(num, _ONE_F + e)


@vectorizable
def sigmoid64(x):
    """1 / (1 + e**-x) in float64 (max error 2 ulp); 0 at -inf, 1 at inf, 0.5 at +-0."""
    x = F64(x)
    e = exp64(x if x < 0 else -x)
    num = e if x < 0 else _ONE_D
    return fdiv(num, _ONE_D + e)
