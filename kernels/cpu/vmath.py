"""Vectorizable math for the CPU backend: exp, expm1, log, log1p, tanh, sigmoid, erf, sin and
cos in plain arithmetic.

pip's llvmlite is built without Intel SVML, so ``math.exp`` and friends inside ``@njit``
compile to scalar libm calls and a fused elementwise loop that uses them does not vectorize
(PERFORMANCE.md, fact 1). The functions here use only arithmetic, comparisons and a few
bit reinterpretations (tiny numba ``@intrinsic`` bitcasts written with llvmlite), so once
inlined into a loop LLVM's loop vectorizer turns them into AVX2 / AVX-512 code.

The exp and tanh polynomials use ``muladd`` (LLVM's ``fmuladd``): fused multiply-adds on
CPUs that have them, a third faster there; the stated error bounds hold with and without.

Division goes through ``fdiv`` (a bare LLVM ``fdiv``): numba's ``/`` under the default
``error_model="python"`` branches to raise ZeroDivisionError, which blocks vectorization.

Each function exists for float32 and float64 (``exp32`` / ``exp64``, ...; ``expm1_32`` /
``expm1_64`` where the name ends in a digit); the float32 versions compute in float32
throughout, except erf32, sin32 and cos32, which evaluate in float64 (see below).
They are ``numba.njit(inline="always")`` and meant to be called from generated kernels
(``out[i] = vmath.exp32(x[i])``); calling them from Python works too but goes through a
numba dispatch per call.

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
- ``expm1``: musl/fdlibm ``expm1f`` / ``expm1``: x = k*ln2 + r (k by the shifter, with the
  reduction's rounding error c carried along), expm1(r) through fdlibm's rational form in
  r*r/2, then 2**k*(expm1(r) + 1 - 2**-k) arranged per k so that nothing cancels; every
  case is computed and one selected. x itself for |x| < 2**-25 / 2**-54 (keeps -0 and
  subnormals), exp(x) above 27*ln2 / 56*ln2 (inf past the overflow threshold), -1 below
  their negatives.
- ``log1p``: u = 1 + x rounded, then log(u) + (x - (u - 1))/u (the correction is the
  rounding error of u, divided by u); x itself where u == 1 (keeps -0, subnormals and tiny
  x exact), -inf at x = -1, NaN below -1.
- ``erf``: float32: in float64, x*Q(x*x) below 1.25 and +-P((|x| - 2.625)/1.375) below 4
  (polynomials fitted to within 5e-10, see ``_ERF32_Q``), +-1 from 4 on, rounded once to
  float32; no division and no exp, so a vector loop of it runs about 4x faster than the
  musl port it replaced (0.81 -> 0.21 ms for 262,144 values). float64: musl/fdlibm
  ``erf``: x + x*P/Q(x*x) below 0.84375, erx + P/Q(|x|-1)
  below 1.25, 1 - exp(-z*z - 0.5625)*exp((z-|x|)*(z+|x|) + R/S(1/x**2))/|x| below 6 (z is
  |x| with its low mantissa bits cleared, so z*z is exact), +-1 from 6 on; all ranges
  computed, one selected, the sign restored; 0.125*(8x + 8x*efx) below 2**-28 so that
  subnormals round once and -0 stays -0.
- ``sin`` / ``cos``: Cody-Waite reduction x = n*pi/2 + r (n by the shifter; no Payne-Hanek),
  then musl's kernels on |r| <= pi/4 and the quadrant n mod 4 picks +-sin r or +-cos r.
  float64: musl ``__rem_pio2``'s three-step reduction (pi/2 in 33+33+33+53 bits, always all
  three steps), exact products for |x| < 2**20*pi/2, then ``__sin`` / ``__cos`` on the
  double-double r. float32: x converted to float64, reduced with musl ``__rem_pio2f``'s
  25+53-bit pi/2 (exact products for |x| < 2**28), ``__sindf`` / ``__cosdf`` in float64,
  one rounding to float32. sin(x) = x below 2**-12 / 2**-27 (keeps -0 and subnormals),
  +-inf and NaN give NaN. Accurate for |x| < 2**28 (float32) and |x| < 2**20 (float64).
  Beyond that bound the reduction loses bits: the absolute error grows like |x|*2**-52
  (measured: <= 2.5e-4 up to 2**42 in float32, <= 1e-6 up to 2**34 in float64), so from
  about |x| = 2**50 the result has no accuracy at all; it is still finite and within
  [-1, 1] (the reduced argument is clamped to |r| <= 0.8).

Measured maximum errors against float64 numpy (float32 functions) and against numpy's
long double (float64 functions), stated as bounds in tests/kernels/test_vmath.py:
exp32 <= 1 ulp, log32 <= 1 ulp, tanh32 <= 2 ulp, sigmoid32 <= 2 ulp,
exp64 <= 2 ulp, log64 <= 1 ulp, tanh64 <= 2 ulp, sigmoid64 <= 2 ulp,
expm1_32 <= 1 ulp, log1p32 <= 1 ulp, erf32 <= 1 ulp, sin32 <= 1 ulp, cos32 <= 1 ulp,
expm1_64 <= 2 ulp, log1p64 <= 1 ulp, sin64 <= 1 ulp, cos64 <= 1 ulp (sin and cos within
their bounds above), erf64 <= 1 ulp against the C library's float64 erf (numpy has no
long double erf), so within 2 ulp of the true value.

Layering: part of ``graphc.kernels`` (installed from ``kernels/``); imports only numpy,
numba and llvmlite, never ``graphc.passes`` or ``graphc.runtime``, and not ``numba.cuda``.
"""

from __future__ import annotations

import numba
import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = [
    "cos32",
    "cos64",
    "erf32",
    "erf64",
    "exp32",
    "exp64",
    "expm1_32",
    "expm1_64",
    "fdiv",
    "float32_as_int32",
    "float64_as_int64",
    "int32_as_float32",
    "int64_as_float64",
    "log1p32",
    "log1p64",
    "log32",
    "log64",
    "sigmoid32",
    "sigmoid64",
    "sin32",
    "sin64",
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


@intrinsic
def muladd(typingctx, a, b, c):
    """``a * b + c`` as LLVM's ``fmuladd``: one fused multiply-add where the CPU has one
    (rounded once), a multiply and an add where it has not.

    Polynomials evaluated with it run about a third faster on FMA machines. The ulp bounds
    stated below hold either way, so results may differ between machines only within them.
    """
    if not isinstance(a, types.Float) or a != b or a != c:
        return None

    def codegen(context, builder, signature, args):
        ty = args[0].type
        name = "llvm.fmuladd.f32" if ty == ir.FloatType() else "llvm.fmuladd.f64"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(ty, [ty] * 3), name)
        return builder.call(fn, args)

    return a(a, b, c), codegen


# ---------------------------------------------------------------------------------------
# Constants. numba types a Python float literal as float64, so every constant used in a
# float32 function is a module-level np.float32 (frozen into the code as a float32).
# ---------------------------------------------------------------------------------------

F32 = np.float32
F64 = np.float64

_ZERO_F = F32(0.0)
_ONE_F = F32(1.0)
_TWO_F = F32(2.0)
_HALF_F = F32(0.5)
_INF_F = F32(np.inf)
_NAN_F = F32(np.nan)
_ZERO_D = F64(0.0)
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
    # Clamping keeps k in range; +inf saturates, NaN fails both tests and stays NaN.
    if x > _EXP32_HI:
        x = _EXP32_HI
    # Where the result is 0 (-inf too), it is computed from x = 0 and replaced: the
    # scaling below would multiply into subnormals, which the CPU does at a fraction of
    # its speed (a causal mask's -1e9 scores made a softmax's exp 9x slower).
    zero = x < _EXP32_LO
    if zero:
        x = _ZERO_F
    t = x * _LOG2E_F + _SHIFT_F  # round(x / ln2) lands in the low mantissa bits of t
    kf = t - _SHIFT_F
    r = x - kf * _LN2_HI_F
    r = r - kf * _LN2_LO_F
    p = muladd(muladd(muladd(_EXP32_P0, r, _EXP32_P1), r, _EXP32_P2), r, _EXP32_P3)
    p = muladd(p, r, _EXP32_P4)
    p = muladd(muladd(p, r, _EXP32_P5) * r, r, r) + _ONE_F
    # 2**k as two normal factors: p*2**k1 is exact, the second product rounds once
    # (to a subnormal, to 0 or to inf where the result lies there).
    # k1 = round(k/2) through the shifter too: an integer k >> 1 would be done in int64
    # (numba widens integer arithmetic), which AVX2 has no vector arithmetic shift for.
    k = float32_as_int32(t) - _SHIFT_F_BITS
    k1 = float32_as_int32(kf * _HALF_F + _SHIFT_F) - _SHIFT_F_BITS
    k2 = k - k1
    result = p * int32_as_float32((k1 + 127) << 23) * int32_as_float32((k2 + 127) << 23)
    return _ZERO_F if zero else result


@vectorizable
def exp64(x):
    """e**x in float64 (max error 2 ulp); inf above 709.78, subnormals and 0 below -708.4."""
    x = F64(x)
    if x > _EXP64_HI:
        x = _EXP64_HI
    zero = x < _EXP64_LO  # (as in exp32: no subnormal products where the result is 0)
    if zero:
        x = _ZERO_D
    t = x * _LOG2E_D + _SHIFT_D
    kf = t - _SHIFT_D
    r = x - kf * _LN2_HI_D
    r = r - kf * _LN2_LO_D
    rr = r * r
    px = r * muladd(muladd(_EXP64_P0, rr, _EXP64_P1), rr, _EXP64_P2)
    qx = muladd(muladd(muladd(_EXP64_Q0, rr, _EXP64_Q1), rr, _EXP64_Q2), rr, _EXP64_Q3)
    p = _ONE_D + _TWO_D * fdiv(px, qx - px)
    k = float64_as_int64(t) - _SHIFT_D_BITS
    k1 = float64_as_int64(kf * _HALF_D + _SHIFT_D) - _SHIFT_D_BITS
    k2 = k - k1
    result = p * int64_as_float64((k1 + 1023) << 52) * int64_as_float64((k2 + 1023) << 52)
    return _ZERO_D if zero else result


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
    small = muladd(muladd(muladd(_TANH32_P0, z, _TANH32_P1), z, _TANH32_P2), z, _TANH32_P3)
    small = muladd(small, z, _TANH32_P4)
    small = muladd(x * z, small, x)
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
    num = muladd(muladd(_TANH64_P0, z, _TANH64_P1), z, _TANH64_P2)
    den = muladd(muladd(z + _TANH64_Q0, z, _TANH64_Q1), z, _TANH64_Q2)
    small = muladd(x * z, fdiv(num, den), x)
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


# ---------------------------------------------------------------------------------------
# expm1 (musl / fdlibm expm1f and expm1, every branch computed and one selected)
# ---------------------------------------------------------------------------------------

_THREE_F = F32(3.0)
_SIX_F = F32(6.0)
_THREE_D = F64(3.0)
_SIX_D = F64(6.0)
_QUARTER_F = F32(0.25)
_QUARTER_D = F64(0.25)

_EXPM1_32_BIG = F32(18.714973875)  # 27*ln2: above, expm1 = exp; below its negative, -1
_EXPM1_32_TINY = F32(2.0**-25)  # below, expm1(x) = x (also keeps -0 and subnormals)
_EXPM1_32_Q1 = F32(-3.3333212137e-2)
_EXPM1_32_Q2 = F32(1.5807170421e-3)

_EXPM1_64_BIG = F64(38.816242111356935)  # 56*ln2
_EXPM1_64_TINY = F64(2.0**-54)
_EXPM1_64_Q1 = F64(-3.33333333333331316428e-02)
_EXPM1_64_Q2 = F64(1.58730158725481460165e-03)
_EXPM1_64_Q3 = F64(-7.93650757867487942473e-05)
_EXPM1_64_Q4 = F64(4.00821782732936239552e-06)
_EXPM1_64_Q5 = F64(-2.01099218183624371326e-07)


@vectorizable
def expm1_32(x):
    """e**x - 1 in float32 (max error 1 ulp); x below 2**-25 (keeps -0), -1 at -inf."""
    x = F32(x)
    xc = x
    if xc > _EXPM1_32_BIG:
        xc = _EXPM1_32_BIG
    if xc < -_EXPM1_32_BIG:
        xc = -_EXPM1_32_BIG
    t = xc * _LOG2E_F + _SHIFT_F
    kf = t - _SHIFT_F
    k = float32_as_int32(t) - _SHIFT_F_BITS  # in [-27, 27]
    hi = xc - kf * _LOG32_LN2_HI  # exact: kf is a small integer, ln2_hi has 16 bits
    lo = kf * _LOG32_LN2_LO
    r = hi - lo
    c = (hi - r) - lo
    hfx = _HALF_F * r
    hxs = r * hfx
    r1 = _ONE_F + hxs * (_EXPM1_32_Q1 + hxs * _EXPM1_32_Q2)
    t3 = _THREE_F - r1 * hfx
    e = hxs * fdiv(r1 - t3, _SIX_F - r * t3)
    e = r * (e - c) - c
    e = e - hxs
    twopk = int32_as_float32((k + 127) << 23)
    twomk = int32_as_float32((127 - k) << 23)
    res = (r - (e + twomk) + _ONE_F) * twopk  # 23 <= k
    if k < 23:
        res = (r - e + (_ONE_F - twomk)) * twopk
    if k < 2:
        res = _ONE_F + _TWO_F * (r - e)
        if r < -_QUARTER_F:
            res = -_TWO_F * (e - (r + _HALF_F))
    if k < 1:
        res = r - e
    if k < 0:
        res = _HALF_F * (r - e) - _HALF_F
    if k < -1:
        res = (r - e + _ONE_F) * twopk - _ONE_F
    if x > _EXPM1_32_BIG:
        res = exp32(x)  # e**x > 2**27: subtracting 1 changes nothing; inf above 88.72
    if x < -_EXPM1_32_BIG:
        res = -_ONE_F  # e**x < 2**-27: rounds to -1
    ax = -x if x < 0 else x
    return x if ax < _EXPM1_32_TINY else res


@vectorizable
def expm1_64(x):
    """e**x - 1 in float64 (max error 2 ulp); x below 2**-54 (keeps -0), -1 at -inf."""
    x = F64(x)
    xc = x
    if xc > _EXPM1_64_BIG:
        xc = _EXPM1_64_BIG
    if xc < -_EXPM1_64_BIG:
        xc = -_EXPM1_64_BIG
    t = xc * _LOG2E_D + _SHIFT_D
    kf = t - _SHIFT_D
    k = float64_as_int64(t) - _SHIFT_D_BITS  # in [-56, 56]
    hi = xc - kf * _LOG64_LN2_HI  # exact: ln2_hi has 32 bits
    lo = kf * _LOG64_LN2_LO
    r = hi - lo
    c = (hi - r) - lo
    hfx = _HALF_D * r
    hxs = r * hfx
    r1 = _ONE_D + hxs * (
        _EXPM1_64_Q1
        + hxs * (_EXPM1_64_Q2 + hxs * (_EXPM1_64_Q3 + hxs * (_EXPM1_64_Q4 + hxs * _EXPM1_64_Q5)))
    )
    t3 = _THREE_D - r1 * hfx
    e = hxs * fdiv(r1 - t3, _SIX_D - r * t3)
    e = r * (e - c) - c
    e = e - hxs
    twopk = int64_as_float64((k + 1023) << 52)
    twomk = int64_as_float64((1023 - k) << 52)
    res = (r - (e + twomk) + _ONE_D) * twopk  # 20 <= k
    if k < 20:
        res = (r - e + (_ONE_D - twomk)) * twopk
    if k < 2:
        res = _ONE_D + _TWO_D * (r - e)
        if r < -_QUARTER_D:
            res = -_TWO_D * (e - (r + _HALF_D))
    if k < 1:
        res = r - e
    if k < 0:
        res = _HALF_D * (r - e) - _HALF_D
    if k < -1:
        res = (r - e + _ONE_D) * twopk - _ONE_D
    if x > _EXPM1_64_BIG:
        res = exp64(x)
    if x < -_EXPM1_64_BIG:
        res = -_ONE_D
    ax = -x if x < 0 else x
    return x if ax < _EXPM1_64_TINY else res


# ---------------------------------------------------------------------------------------
# log1p: u = 1 + x rounded, log1p(x) = log(u) + (x - (u - 1)) / u
# ---------------------------------------------------------------------------------------


@vectorizable
def log1p32(x):
    """log(1 + x) in float32 (max error 1 ulp); keeps -0, -inf at -1, NaN below -1."""
    x = F32(x)
    u = _ONE_F + x
    res = log32(u) + fdiv(x - (u - _ONE_F), u)  # the rounding error of u corrected
    if not u < _INF_F:  # +inf and NaN
        res = u
    if u == 0:  # x == -1 exactly (no other x rounds 1 + x to 0)
        res = -_INF_F
    return x if u == _ONE_F else res


@vectorizable
def log1p64(x):
    """log(1 + x) in float64 (max error 1 ulp); keeps -0, -inf at -1, NaN below -1."""
    x = F64(x)
    u = _ONE_D + x
    res = log64(u) + fdiv(x - (u - _ONE_D), u)
    if not u < _INF_D:
        res = u
    if u == 0:
        res = -_INF_D
    return x if u == _ONE_D else res


# ---------------------------------------------------------------------------------------
# erf (musl / fdlibm erff and erf: three ranges, all computed, one selected)
# ---------------------------------------------------------------------------------------

_ERF_SMALL = 0.84375  # below: x + x*P(x*x)/Q(x*x)
_ERF_MID = 1.25  # below: erx + P(|x|-1)/Q(|x|-1)
_ERF_SPLIT = 1.0 / 0.35  # the tail's two rational functions meet here
_ERF_BIG = 6.0  # above: +-1
_ERF_TINY = 2.0**-28  # below: x*(1 + efx), as 0.125*(8x + efx8*x) so subnormals round once
_ERF_ERX = 8.45062911510467529297e-01
_ERF_EFX8 = 1.02703333676410069053e00
_ERF_PP = (
    1.28379167095512558561e-01,
    -3.25042107247001499370e-01,
    -2.84817495755985104766e-02,
    -5.77027029648944159157e-03,
    -2.37630166566501626084e-05,
)
_ERF_QQ = (
    3.97917223959155352819e-01,
    6.50222499887672944485e-02,
    5.08130628187576562776e-03,
    1.32494738004321644526e-04,
    -3.96022827877536812320e-06,
)
_ERF_PA = (
    -2.36211856075265944077e-03,
    4.14856118683748331666e-01,
    -3.72207876035701323847e-01,
    3.18346619901161753674e-01,
    -1.10894694282396677476e-01,
    3.54783043256182359371e-02,
    -2.16637559486879084300e-03,
)
_ERF_QA = (
    1.06420880400844228286e-01,
    5.40397917702171048937e-01,
    7.18286544141962662868e-02,
    1.26171219808761642112e-01,
    1.36370839120290507362e-02,
    1.19844998467991074170e-02,
)
_ERF_RA = (
    -9.86494403484714822705e-03,
    -6.93858572707181764372e-01,
    -1.05586262253232909814e01,
    -6.23753324503260060396e01,
    -1.62396669462573470355e02,
    -1.84605092906711035994e02,
    -8.12874355063065934246e01,
    -9.81432934416914548592e00,
)
_ERF_SA = (
    1.96512716674392571292e01,
    1.37657754143519042600e02,
    4.34565877475229228821e02,
    6.45387271733267880336e02,
    4.29008140027567833386e02,
    1.08635005541779435134e02,
    6.57024977031928170135e00,
    -6.04244152148580987438e-02,
)
_ERF_RB = (
    -9.86494292470009928597e-03,
    -7.99283237680523006574e-01,
    -1.77579549177547519889e01,
    -1.60636384855821916062e02,
    -6.37566443368389627722e02,
    -1.02509513161107724954e03,
    -4.83519191608651397019e02,
)
_ERF_SB = (
    3.03380607434824582924e01,
    3.25792512996573918826e02,
    1.53672958608443695994e03,
    3.19985821950859553908e03,
    2.55305040643316442583e03,
    4.74528541206955367215e02,
    -2.24409524465858183362e01,
)

# erf32 computes in float64 with two polynomials fitted to math.erf (Chebyshev least
# squares): erf(x) = x*Q(x*x) for |x| < 1.25 (relative error 4.6e-11) and erf(|x|) =
# P((|x| - 2.625) / 1.375) for 1.25 <= |x| < 4 (absolute error 4.0e-10); the one rounding
# to float32 (half an ulp) dominates. Branch-free: 24 multiply-adds and no division or
# exp, where musl's erff takes six divisions and two exps per element in a vector loop.
_ERF32_Q = (
    1.1283791670596088,
    -0.3761263852739631,
    0.11283785187705847,
    -0.026865738720107685,
    0.0052225294406237415,
    -0.0008520845615835924,
    0.00011744919483678553,
    -1.2827830636492473e-05,
    8.317819506142321e-07,
)
_ERF32_P = (
    0.9997946238682698,
    0.0015783278445956703,
    -0.005696727230899264,
    0.012713219041554678,
    -0.01935429588073399,
    0.020730126583451566,
    -0.015174959856881979,
    0.006328379002227203,
    0.0004056413034428337,
    -0.002685610318961612,
    0.0018698568903256388,
    -0.0003360585766840599,
    -0.00041279408547613894,
    0.00025747641825756847,
    1.871106419716037e-05,
    -3.5931864562862835e-05,
)
_EQ0, _EQ1, _EQ2, _EQ3, _EQ4, _EQ5, _EQ6, _EQ7, _EQ8 = (F64(v) for v in _ERF32_Q)
(_EP0, _EP1, _EP2, _EP3, _EP4, _EP5, _EP6, _EP7,
 _EP8, _EP9, _EP10, _EP11, _EP12, _EP13, _EP14, _EP15) = (F64(v) for v in _ERF32_P)  # fmt: skip
_ERF_NEAR_D, _ERF_ONE_D = F64(1.25), F64(4.0)
_ERF_CENTER_D, _ERF_SCALE_D = F64(2.625), F64(1 / 1.375)

_ERF_SMALL_D, _ERF_MID_D, _ERF_SPLIT_D, _ERF_BIG_D, _ERF_TINY_D = (
    F64(v) for v in (_ERF_SMALL, _ERF_MID, _ERF_SPLIT, _ERF_BIG, _ERF_TINY)
)
_ERF_ERX_D, _ERF_EFX8_D = F64(_ERF_ERX), F64(_ERF_EFX8)
_EPP0_D, _EPP1_D, _EPP2_D, _EPP3_D, _EPP4_D = (F64(v) for v in _ERF_PP)
_EQQ1_D, _EQQ2_D, _EQQ3_D, _EQQ4_D, _EQQ5_D = (F64(v) for v in _ERF_QQ)
_EPA0_D, _EPA1_D, _EPA2_D, _EPA3_D, _EPA4_D, _EPA5_D, _EPA6_D = (F64(v) for v in _ERF_PA)
_EQA1_D, _EQA2_D, _EQA3_D, _EQA4_D, _EQA5_D, _EQA6_D = (F64(v) for v in _ERF_QA)
_ERA0_D, _ERA1_D, _ERA2_D, _ERA3_D, _ERA4_D, _ERA5_D, _ERA6_D, _ERA7_D = (F64(v) for v in _ERF_RA)
_ESA1_D, _ESA2_D, _ESA3_D, _ESA4_D, _ESA5_D, _ESA6_D, _ESA7_D, _ESA8_D = (F64(v) for v in _ERF_SA)
_ERB0_D, _ERB1_D, _ERB2_D, _ERB3_D, _ERB4_D, _ERB5_D, _ERB6_D = (F64(v) for v in _ERF_RB)
_ESB1_D, _ESB2_D, _ESB3_D, _ESB4_D, _ESB5_D, _ESB6_D, _ESB7_D = (F64(v) for v in _ERF_SB)
_EIGHTH_D, _EIGHT_D, _ERF_C_D = F64(0.125), F64(8.0), F64(0.5625)


@vectorizable
def erf32(x):
    """erf in float32 (max error 1 ulp), in float64 and rounded once: x*Q(x*x) below
    1.25, +-P((|x| - 2.625) / 1.375) below 4, +-1 from 4 on (erfc(4) is below half an
    ulp of 1); keeps -0 and NaN."""
    d = F64(x)
    a = -d if d < 0 else d
    s = d * d
    q = muladd(s, _EQ8, _EQ7)
    q = muladd(s, q, _EQ6)
    q = muladd(s, q, _EQ5)
    q = muladd(s, q, _EQ4)
    q = muladd(s, q, _EQ3)
    q = muladd(s, q, _EQ2)
    q = muladd(s, q, _EQ1)
    q = muladd(s, q, _EQ0)
    u = (a - _ERF_CENTER_D) * _ERF_SCALE_D
    p = muladd(u, _EP15, _EP14)
    p = muladd(u, p, _EP13)
    p = muladd(u, p, _EP12)
    p = muladd(u, p, _EP11)
    p = muladd(u, p, _EP10)
    p = muladd(u, p, _EP9)
    p = muladd(u, p, _EP8)
    p = muladd(u, p, _EP7)
    p = muladd(u, p, _EP6)
    p = muladd(u, p, _EP5)
    p = muladd(u, p, _EP4)
    p = muladd(u, p, _EP3)
    p = muladd(u, p, _EP2)
    p = muladd(u, p, _EP1)
    p = muladd(u, p, _EP0)
    one = _ONE_D
    if a >= _ERF_ONE_D:
        p = one
    if d < 0:
        p = -p
    res = p
    if a < _ERF_NEAR_D:
        res = d * q
    if not a <= _INF_D:  # NaN
        res = d
    return F32(res)


@vectorizable
def erf64(x):
    """erf in float64 (max error 2 ulp); keeps -0, +-1 at +-inf and for |x| >= 6."""
    x = F64(x)
    ax = -x if x < 0 else x
    z = x * x
    r = _EPP0_D + z * (_EPP1_D + z * (_EPP2_D + z * (_EPP3_D + z * _EPP4_D)))
    s = _ONE_D + z * (_EQQ1_D + z * (_EQQ2_D + z * (_EQQ3_D + z * (_EQQ4_D + z * _EQQ5_D))))
    small = x + x * fdiv(r, s)
    tiny = _EIGHTH_D * (_EIGHT_D * x + _ERF_EFX8_D * x)
    s = ax - _ONE_D
    p = _EPA5_D + s * _EPA6_D
    p = _EPA0_D + s * (_EPA1_D + s * (_EPA2_D + s * (_EPA3_D + s * (_EPA4_D + s * p))))
    q = _EQA4_D + s * (_EQA5_D + s * _EQA6_D)
    q = _ONE_D + s * (_EQA1_D + s * (_EQA2_D + s * (_EQA3_D + s * q)))
    mid = _ERF_ERX_D + fdiv(p, q)
    s = fdiv(_ONE_D, ax * ax)
    ra = _ERA4_D + s * (_ERA5_D + s * (_ERA6_D + s * _ERA7_D))
    ra = _ERA0_D + s * (_ERA1_D + s * (_ERA2_D + s * (_ERA3_D + s * ra)))
    sa = _ESA4_D + s * (_ESA5_D + s * (_ESA6_D + s * (_ESA7_D + s * _ESA8_D)))
    sa = _ONE_D + s * (_ESA1_D + s * (_ESA2_D + s * (_ESA3_D + s * sa)))
    rb = _ERB3_D + s * (_ERB4_D + s * (_ERB5_D + s * _ERB6_D))
    rb = _ERB0_D + s * (_ERB1_D + s * (_ERB2_D + s * rb))
    sb = _ESB4_D + s * (_ESB5_D + s * (_ESB6_D + s * _ESB7_D))
    sb = _ONE_D + s * (_ESB1_D + s * (_ESB2_D + s * (_ESB3_D + s * sb)))
    rs = fdiv(ra, sa) if ax < _ERF_SPLIT_D else fdiv(rb, sb)
    hz = int64_as_float64(float64_as_int64(ax) & -4294967296)  # low 32 bits cleared
    e = exp64(-hz * hz - _ERF_C_D) * exp64((hz - ax) * (hz + ax) + rs)
    tail = _ONE_D - fdiv(e, ax)
    res = _ONE_D
    if ax < _ERF_BIG_D:
        res = tail
    if ax < _ERF_MID_D:
        res = mid
    if x < 0:
        res = -res
    if ax < _ERF_SMALL_D:
        res = small
    if ax < _ERF_TINY_D:
        res = tiny
    if not ax <= _INF_D:
        res = x
    return res


# ---------------------------------------------------------------------------------------
# sin and cos: Cody-Waite reduction by pi/2 (no Payne-Hanek), musl's kernels
# ---------------------------------------------------------------------------------------

_INVPIO2_D = F64(6.36619772367581382433e-01)
_R_CLAMP_D = F64(0.8)  # |r| <= pi/4 + a rounding below the bound; caps garbage above it
# float32: reduced and evaluated in float64 (musl __rem_pio2f, __sindf, __cosdf).
_PIO2_1_25 = F64(1.57079631090164184570e00)  # 25 bits: fn*_PIO2_1_25 exact for fn < 2**28
_PIO2_1T_25 = F64(1.58932547735281966916e-08)
_SIN32_TINY = F32(2.0**-12)  # below, sin(x) = x in float32
_SINDF_S1 = F64(float.fromhex("-0x15555554cbac77p-55"))
_SINDF_S2 = F64(float.fromhex("0x111110896efbb2p-59"))
_SINDF_S3 = F64(float.fromhex("-0x1a00f9e2cae774p-65"))
_SINDF_S4 = F64(float.fromhex("0x16cd878c3b46a7p-71"))
_COSDF_C0 = F64(float.fromhex("-0x1ffffffd0c5e81p-54"))
_COSDF_C1 = F64(float.fromhex("0x155553e1053a42p-57"))
_COSDF_C2 = F64(float.fromhex("-0x16c087e80f1e27p-62"))
_COSDF_C3 = F64(float.fromhex("0x199342e0ee5069p-68"))
# float64: three-step reduction (musl __rem_pio2 medium path, always all three steps).
_PIO2_1 = F64(1.57079632673412561417e00)  # 33 bits: fn*_PIO2_1 exact for fn < 2**20
_PIO2_2 = F64(6.07710050630396597660e-11)
_PIO2_2T = F64(2.02226624879595063154e-21)
_PIO2_3 = F64(2.02226624871116645580e-21)
_PIO2_3T = F64(8.47842766036889956997e-32)
_SIN64_TINY = F64(2.0**-27)
_SIN64_S1 = F64(-1.66666666666666324348e-01)
_SIN64_S2 = F64(8.33333333332248946124e-03)
_SIN64_S3 = F64(-1.98412698298579493134e-04)
_SIN64_S4 = F64(2.75573137070700676789e-06)
_SIN64_S5 = F64(-2.50507602534068634195e-08)
_SIN64_S6 = F64(1.58969099521155010221e-10)
_COS64_C1 = F64(4.16666666666666019037e-02)
_COS64_C2 = F64(-1.38888888888741095749e-03)
_COS64_C3 = F64(2.48015872894767294178e-05)
_COS64_C4 = F64(-2.75573143513906633035e-07)
_COS64_C5 = F64(2.08757232129817482790e-09)
_COS64_C6 = F64(-1.13596475577881948265e-11)


@vectorizable
def _sincos32_parts(x):
    """(sin r, cos r, n) in float64 with x = n*pi/2 + r, |r| <= pi/4 (|x| < 2**28)."""
    xd = F64(x)
    t = xd * _INVPIO2_D + _SHIFT_D
    fn = t - _SHIFT_D
    n = float64_as_int64(t) - _SHIFT_D_BITS
    r = xd - fn * _PIO2_1_25 - fn * _PIO2_1T_25
    if r > _R_CLAMP_D:
        r = _R_CLAMP_D
    if r < -_R_CLAMP_D:
        r = -_R_CLAMP_D
    z = r * r
    w = z * z
    s = z * r
    sr = (r + s * (_SINDF_S1 + z * _SINDF_S2)) + s * w * (_SINDF_S3 + z * _SINDF_S4)
    cr = ((_ONE_D + z * _COSDF_C0) + w * _COSDF_C1) + (w * z) * (_COSDF_C2 + z * _COSDF_C3)
    return sr, cr, n


@vectorizable
def sin32(x):
    """sin in float32 (max error 1 ulp for |x| < 2**28, see the module docstring); keeps -0."""
    x = F32(x)
    sr, cr, n = _sincos32_parts(x)
    res = cr if (n & 1) == 1 else sr
    if (n & 2) == 2:
        res = -res
    ax = -x if x < 0 else x
    return x if ax < _SIN32_TINY else F32(res)


@vectorizable
def cos32(x):
    """cos in float32 (max error 1 ulp for |x| < 2**28, see the module docstring)."""
    x = F32(x)
    sr, cr, n = _sincos32_parts(x)
    res = sr if (n & 1) == 1 else cr
    if ((n + 1) & 2) == 2:
        res = -res
    return F32(res)


@vectorizable
def _sincos64_parts(x):
    """(sin r, cos r, n) with x = n*pi/2 + r, |r| <= pi/4 (|x| < 2**20 * pi/2)."""
    t = x * _INVPIO2_D + _SHIFT_D
    fn = t - _SHIFT_D
    n = float64_as_int64(t) - _SHIFT_D_BITS
    r = x - fn * _PIO2_1  # exact
    # Second and third steps: r - w carries x - fn*pi/2 to about 150 bits.
    t = r
    w = fn * _PIO2_2
    r = t - w
    w = fn * _PIO2_2T - ((t - r) - w)
    t = r
    w = fn * _PIO2_3
    r = t - w
    w = fn * _PIO2_3T - ((t - r) - w)
    y0 = r - w
    y1 = (r - y0) - w
    if y0 > _R_CLAMP_D:
        y0 = _R_CLAMP_D
        y1 = F64(0.0)
    if y0 < -_R_CLAMP_D:
        y0 = -_R_CLAMP_D
        y1 = F64(0.0)
    z = y0 * y0
    w = z * z
    # __sin(y0, y1, 1)
    rr = _SIN64_S2 + z * (_SIN64_S3 + z * _SIN64_S4) + z * w * (_SIN64_S5 + z * _SIN64_S6)
    v = z * y0
    sr = y0 - ((z * (_HALF_D * y1 - v * rr) - y1) - v * _SIN64_S1)
    # __cos(y0, y1)
    rr = z * (_COS64_C1 + z * (_COS64_C2 + z * _COS64_C3)) + w * w * (
        _COS64_C4 + z * (_COS64_C5 + z * _COS64_C6)
    )
    hz = _HALF_D * z
    w = _ONE_D - hz
    cr = w + (((_ONE_D - w) - hz) + (z * rr - y0 * y1))
    return sr, cr, n


@vectorizable
def sin64(x):
    """sin in float64 (max error 1 ulp for |x| < 2**20, see the module docstring); keeps -0."""
    x = F64(x)
    sr, cr, n = _sincos64_parts(x)
    res = cr if (n & 1) == 1 else sr
    if (n & 2) == 2:
        res = -res
    ax = -x if x < 0 else x
    return x if ax < _SIN64_TINY else res


@vectorizable
def cos64(x):
    """cos in float64 (max error 1 ulp for |x| < 2**20, see the module docstring)."""
    x = F64(x)
    sr, cr, n = _sincos64_parts(x)
    res = sr if (n & 1) == 1 else cr
    if ((n + 1) & 2) == 2:
        res = -res
    return res
