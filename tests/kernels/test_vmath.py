"""graphc.kernels.cpu.vmath: accuracy in ulps over the whole range, special values, and the
fact that a loop calling them vectorizes.

Every float32 function is checked at every 4096th float32 bit pattern (all signs and
exponents, NaNs included), random samples in its interesting domain and the points around
its range boundaries, against numpy in float64 rounded to float32. Every float64 function
is checked at every 2**44-th float64 bit pattern plus random samples and boundaries, against
numpy in long double (80-bit on x86) rounded to float64 where that is available, else
numpy's float64 functions with one more ulp allowed (and erf, which numpy lacks, against the
C library's float64 ``math.erf`` with one more ulp allowed). sin and cos are held to their
bound only below the documented argument bound (ACCURATE_BELOW); above it they must stay
finite and within [-1, 1]. The ulp distance compares the integer bit patterns (ordered so
that -0 and +0 coincide); infinities, NaNs and the sign must match exactly.
"""

from __future__ import annotations

import math
import re

import llvmlite.binding as llvm
import numba
import numpy as np
import pytest

from graphc.kernels.cpu import vmath

# Maximum error in ulps, as stated in vmath's docstring.
MAX_ULPS = {
    "exp32": 1,
    "log32": 1,
    "tanh32": 2,
    "sigmoid32": 2,
    "exp64": 2,
    "log64": 1,
    "tanh64": 2,
    "sigmoid64": 2,
    "expm1_32": 1,
    "log1p32": 1,
    "erf32": 1,
    "sin32": 1,
    "cos32": 1,
    "expm1_64": 2,
    "log1p64": 1,
    "erf64": 1,
    "sin64": 1,
    "cos64": 1,
}

# sin and cos: the Cody-Waite reduction is exact below these |x| (vmath's docstring).
ACCURATE_BELOW = {"sin32": 2.0**28, "cos32": 2.0**28, "sin64": 2.0**20, "cos64": 2.0**20}

LONG_DOUBLE_OK = np.finfo(np.longdouble).nmant >= 63


def _sigmoid_ref(x):
    """1/(1+e**-x) without overflow warnings: e**-|x| on both sides."""
    e = np.exp(-np.abs(x))
    return np.where(x < 0, e, 1) / (1 + e)


_math_erf = np.frompyfunc(math.erf, 1, 1)


def _erf_ref(x):
    """The C library's float64 erf, elementwise (numpy has no erf, in any precision)."""
    return _math_erf(x.astype(np.float64)).astype(np.float64)


REFERENCES = {
    "exp": np.exp,
    "log": np.log,
    "tanh": np.tanh,
    "sigmoid": _sigmoid_ref,
    "expm1": np.expm1,
    "log1p": np.log1p,
    "erf": _erf_ref,
    "sin": np.sin,
    "cos": np.cos,
}

# References computed in float64 only, even for the float64 functions (one more ulp).
NO_LONG_DOUBLE = {"erf"}


def family(name: str) -> str:
    """The function family of a vmath name: exp32 -> exp, expm1_64 -> expm1."""
    return name[:-2].rstrip("_")


def fname(fam: str, bits: int) -> str:
    """The vmath name of a family at a width: exp, 32 -> exp32; expm1, 32 -> expm1_32."""
    return f"{fam}_{bits}" if fam[-1].isdigit() else f"{fam}{bits}"


# Where each function's interesting values lie (random samples are drawn there).
DOMAINS = {
    "exp32": (-104.0, 89.0),
    "exp64": (-746.0, 710.0),
    "log32": (0.0, 4.0),
    "log64": (0.0, 4.0),
    "tanh32": (-10.0, 10.0),
    "tanh64": (-20.0, 20.0),
    "sigmoid32": (-105.0, 20.0),
    "sigmoid64": (-746.0, 40.0),
    "expm1_32": (-20.0, 89.0),
    "expm1_64": (-40.0, 710.0),
    "log1p32": (-1.0, 4.0),
    "log1p64": (-1.0, 4.0),
    "erf32": (-6.0, 6.0),
    "erf64": (-6.0, 6.0),
    "sin32": (-100.0, 100.0),
    "cos32": (-100.0, 100.0),
    "sin64": (-100.0, 100.0),
    "cos64": (-100.0, 100.0),
}

# Boundaries to probe with their neighbours (overflow, underflow, branch switches, 1).
BOUNDARIES = {
    "exp": [
        88.72283935546875,
        709.782712893384,
        -87.33654,
        -103.972076,
        -708.3964185322641,
        -745.1332191019412,
        -103.27893,
        -744.44007,
        0.0,
        1.0,
    ],
    "log": [1.0, 0.0, 1.1754944e-38, 2.2250738585072014e-308, 0.70710677, 1.4142135],
    "tanh": [0.625, -0.625, 0.0, 9.0, 19.0],
    "sigmoid": [0.0, -87.33654, -88.72284, -103.97208, -708.39642, -745.13321],
    # +-ln2/2 and +-1.5*ln2 (the k = 0 and k = +-1 cases), +-27*ln2, +-56*ln2, overflow.
    "expm1": [
        0.0,
        0.34657359,
        -0.34657359,
        1.0397208,
        -1.0397208,
        -0.25,
        18.714973875,
        -18.714973875,
        38.816242111356935,
        -38.816242111356935,
        88.72283935546875,
        709.782712893384,
        2.0**-25,
        2.0**-54,
    ],
    "log1p": [-1.0, 0.0, 1.0, -0.5, 2.0**-24, 2.0**-53, 1.0e30],
    "erf": [0.0, 2.0**-28, 0.84375, -0.84375, 1.25, -1.25, 1 / 0.35, -1 / 0.35, 6.0, -6.0],
    "sin": [0.0, 2.0**-12, 2.0**-27, np.pi / 4, np.pi / 2, np.pi, 1.5 * np.pi, 2 * np.pi],
    "cos": [0.0, np.pi / 4, np.pi / 2, np.pi, 1.5 * np.pi, 2 * np.pi, 1.0e5 * np.pi],
}


def _loop(fn, dtype):
    """A compiled ``out[i] = fn(x[i])`` loop over 1-d arrays of ``dtype``."""
    nbtype = numba.from_dtype(np.dtype(dtype))

    @numba.njit((nbtype[:], nbtype[:]))
    def loop(x, out):
        for i in range(x.shape[0]):
            out[i] = fn(x[i])

    return loop


_LOOPS: dict[str, object] = {}


def apply(name: str, x: np.ndarray) -> np.ndarray:
    """vmath.<name> applied elementwise to ``x`` through a compiled loop (compiled once)."""
    if name not in _LOOPS:
        _LOOPS[name] = _loop(getattr(vmath, name), x.dtype)
    out = np.empty_like(x)
    _LOOPS[name](x, out)
    return out


def reference(name: str, x: np.ndarray) -> tuple[np.ndarray, int]:
    """The correctly rounded result (up to the reference's own error) and extra ulps."""
    ref = REFERENCES[family(name)]
    with np.errstate(all="ignore"):
        if x.dtype == np.float32:
            return ref(x.astype(np.float64)).astype(np.float32), 0
        if LONG_DOUBLE_OK and family(name) not in NO_LONG_DOUBLE:
            return ref(x.astype(np.longdouble)).astype(np.float64), 0
        return ref(x), 1


def ordered(a: np.ndarray) -> np.ndarray:
    """Bit patterns mapped to integers that increase with the value (-0 and +0 both 0)."""
    bits = a.view(np.int32 if a.dtype == np.float32 else np.int64).astype(np.int64)
    magnitude = bits & np.int64(np.iinfo(np.int32 if a.dtype == np.float32 else np.int64).max)
    return np.where(bits < 0, -magnitude, magnitude)


def ulp_distance(got: np.ndarray, want: np.ndarray) -> np.ndarray:
    """Distance in ulps between non-NaN arrays of one float dtype of matching signs."""
    a, b = ordered(got), ordered(want)
    same_sign = (a >= 0) == (b >= 0)
    # Opposite signs only meet around zero; elsewhere they would overflow the subtraction.
    return np.where(same_sign, np.abs(a - np.where(same_sign, b, a)), np.abs(a) + np.abs(b))


def samples(name: str, rng: np.random.Generator) -> np.ndarray:
    """Dense bit-pattern sweep + random values in the domain + boundary neighbourhoods."""
    if name.endswith("32"):
        dtype, itype = np.float32, np.uint32
        sweep = np.arange(0, 2**32, 4096, dtype=np.uint64).astype(itype).view(dtype)
    else:
        dtype, itype = np.float64, np.uint64
        sweep = (np.arange(0, 2**20, dtype=np.uint64) << np.uint64(44)).view(dtype)
    lo, hi = DOMAINS[name]
    uniform = rng.uniform(lo, hi, 200_000).astype(dtype)
    near_zero = (rng.standard_normal(20_000) * 10.0 ** rng.uniform(-40, 0, 20_000)).astype(dtype)
    edges = np.array(BOUNDARIES[family(name)], dtype=dtype)
    steps = np.arange(-64, 65)
    around = np.concatenate([_neighbours(e, steps) for e in edges])
    specials = np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=dtype)
    tiny = np.array([np.finfo(dtype).smallest_subnormal, np.finfo(dtype).smallest_normal])
    parts = [sweep, uniform, near_zero, around, specials, tiny, -tiny.astype(dtype)]
    if name in ACCURATE_BELOW:
        parts.append(_near_multiples_of_pi_2(dtype, ACCURATE_BELOW[name], rng))
    return np.concatenate(parts)


def _near_multiples_of_pi_2(dtype, bound: float, rng: np.random.Generator) -> np.ndarray:
    """The floats nearest n*pi/2 and one ulp either side, below ``bound``: where the
    reduction cancels most."""
    n = np.concatenate([np.arange(1, 20_000), rng.integers(1, int(bound / 1.5707964), 50_000)])
    base = (n * (np.longdouble(np.pi) / 2)).astype(dtype)
    x = np.concatenate([base, np.nextafter(base, dtype(0)), np.nextafter(base, dtype(np.inf))])
    x = np.concatenate([x, -x])
    return x[np.abs(x) < bound]


def _neighbours(edge: np.floating, steps: np.ndarray) -> np.ndarray:
    """The floats ``steps`` ulps away from ``edge``."""
    if edge.dtype == np.float32:
        base = ordered(np.array([edge]))[0]
        o = base + steps
        bits = np.where(o < 0, (-o) | np.int64(0x80000000), o).astype(np.uint32)
        return bits.view(np.float32)
    base = ordered(np.array([edge]))[0]
    o = base + steps
    sign = np.where(o < 0, np.uint64(1) << np.uint64(63), np.uint64(0))
    return (np.abs(o).astype(np.uint64) | sign).view(np.float64)


NAMES = list(MAX_ULPS)


@pytest.mark.parametrize("name", NAMES)
def test_max_ulp_error_over_the_whole_range(name: str, rng: np.random.Generator) -> None:
    x = samples(name, rng)
    if name in ACCURATE_BELOW:
        x = x[~(np.abs(x) >= ACCURATE_BELOW[name])]  # NaNs stay
    got = apply(name, x)
    want, extra = reference(name, x)
    nan = np.isnan(want)
    np.testing.assert_array_equal(np.isnan(got), nan, err_msg=f"{name}: NaN where not expected")
    got, want, xs = got[~nan], want[~nan], x[~nan]
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want), err_msg=f"{name}: inf")
    nonzero = (got != 0) & (want != 0)
    np.testing.assert_array_equal(
        np.signbit(got[nonzero]), np.signbit(want[nonzero]), err_msg=f"{name}: sign"
    )
    dist = ulp_distance(got, want)
    worst = int(np.argmax(dist))
    assert dist[worst] <= MAX_ULPS[name] + extra, (
        f"{name}: {dist[worst]} ulps at x={xs[worst]!r}: got {got[worst]!r}, want {want[worst]!r}"
    )


INF, NAN = np.inf, np.nan

# (function family, input, exact expected output); each is checked in float32 and float64.
SPECIALS = [
    ("exp", 0.0, 1.0),
    ("exp", -0.0, 1.0),
    ("exp", INF, INF),
    ("exp", -INF, 0.0),
    ("exp", NAN, NAN),
    ("exp", 1000.0, INF),
    ("exp", -1000.0, 0.0),
    ("log", 0.0, -INF),
    ("log", -0.0, -INF),
    ("log", 1.0, 0.0),
    ("log", -1.0, NAN),
    ("log", -INF, NAN),
    ("log", INF, INF),
    ("log", NAN, NAN),
    ("tanh", 0.0, 0.0),
    ("tanh", -0.0, -0.0),
    ("tanh", INF, 1.0),
    ("tanh", -INF, -1.0),
    ("tanh", 100.0, 1.0),
    ("tanh", -100.0, -1.0),
    ("tanh", NAN, NAN),
    ("sigmoid", 0.0, 0.5),
    ("sigmoid", -0.0, 0.5),
    ("sigmoid", INF, 1.0),
    ("sigmoid", -INF, 0.0),
    ("sigmoid", NAN, NAN),
    ("expm1", 0.0, 0.0),
    ("expm1", -0.0, -0.0),
    ("expm1", INF, INF),
    ("expm1", -INF, -1.0),
    ("expm1", NAN, NAN),
    ("expm1", 1000.0, INF),
    ("expm1", -1000.0, -1.0),
    ("log1p", 0.0, 0.0),
    ("log1p", -0.0, -0.0),
    ("log1p", -1.0, -INF),
    ("log1p", -2.0, NAN),
    ("log1p", -INF, NAN),
    ("log1p", INF, INF),
    ("log1p", NAN, NAN),
    ("erf", 0.0, 0.0),
    ("erf", -0.0, -0.0),
    ("erf", INF, 1.0),
    ("erf", -INF, -1.0),
    ("erf", 10.0, 1.0),
    ("erf", -10.0, -1.0),
    ("erf", NAN, NAN),
    ("sin", 0.0, 0.0),
    ("sin", -0.0, -0.0),
    ("sin", INF, NAN),
    ("sin", -INF, NAN),
    ("sin", NAN, NAN),
    ("cos", 0.0, 1.0),
    ("cos", -0.0, 1.0),
    ("cos", INF, NAN),
    ("cos", -INF, NAN),
    ("cos", NAN, NAN),
]


@pytest.mark.parametrize("bits", [32, 64])
@pytest.mark.parametrize(("family", "x", "want"), SPECIALS)
def test_special_values_exactly(family: str, x: float, want: float, bits: int) -> None:
    dtype = np.float32 if bits == 32 else np.float64
    got = apply(fname(family, bits), np.array([x], dtype=dtype))[0]
    assert got.dtype == dtype
    if np.isnan(want):
        assert np.isnan(got)
    else:
        assert got == want
        assert np.signbit(got) == np.signbit(want), f"{family}{bits}({x}) = {got}: sign of zero"


@pytest.mark.parametrize("bits", [32, 64])
def test_subnormal_inputs_and_outputs(bits: int) -> None:
    dtype = np.float32 if bits == 32 else np.float64
    info = np.finfo(dtype)
    tiny, small = info.smallest_subnormal, info.smallest_normal
    subnormals = np.array([tiny, 3 * tiny, small / 3, small / 2**10], dtype=dtype)
    # tanh is exact (x itself) on subnormals and keeps their sign.
    for x in (subnormals, -subnormals):
        np.testing.assert_array_equal(apply(f"tanh{bits}", x), x)
    # exp and log: subnormal inputs give 1 and finite logs; outputs reach the subnormals.
    np.testing.assert_array_equal(apply(f"exp{bits}", subnormals), np.ones(4, dtype))
    logs = apply(f"log{bits}", subnormals)
    want, _ = reference(f"log{bits}", subnormals)
    assert np.all(ulp_distance(logs, want) <= 1)
    lowest = np.log(np.float64(tiny))  # exp of this is the smallest subnormal
    x = np.array([lowest, lowest + 5.0, lowest + 10.0], dtype=dtype)
    for name in (f"exp{bits}", f"sigmoid{bits}"):
        got = apply(name, x)
        assert np.all((got > 0) & (got < small)), f"{name}: {got} not subnormal"
        assert np.all(ulp_distance(got, reference(name, x)[0]) <= 1)
    assert apply(f"exp{bits}", np.array([lowest - 1.0], dtype=dtype))[0] == 0


@pytest.mark.parametrize("bits", [32, 64])
def test_exp_overflow_threshold(bits: int) -> None:
    dtype = np.float32 if bits == 32 else np.float64
    x = _neighbours(dtype(np.log(np.finfo(dtype).max)), np.arange(-8, 9))
    with np.errstate(over="ignore"):
        want, _ = reference(f"exp{bits}", x)
    assert np.isfinite(want).any()
    assert np.isinf(want).any()
    got = apply(f"exp{bits}", x)
    np.testing.assert_array_equal(np.isinf(got), np.isinf(want))
    assert np.all(ulp_distance(got[np.isfinite(got)], want[np.isfinite(want)]) <= 1)


def test_exp32_loop_vectorizes() -> None:
    """The compiled loop uses packed float vectors and no libm call (AVX2 or AVX-512)."""
    features = llvm.get_host_cpu_features()
    if not features.get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the 8-lane float vectors are not expected")
    loop = _loop(vmath.exp32, np.float32)
    signature = loop.signatures[0]
    llvm_ir = loop.inspect_llvm(signature)
    # 256-bit (AVX2, or AVX-512 CPUs that prefer 256-bit vectors) or 512-bit float math.
    assert re.search(r"fmul (?:fast )?<(?:8|16) x float>", llvm_ir), "no packed float multiply"
    assert not re.search(r"@(?:llvm\.exp\.|expf|exp\b|__expf)", llvm_ir), "a libm exp call"
    assert re.search(r"\b[yz]mm\d+\b", loop.inspect_asm(signature)), "no ymm/zmm registers"


@pytest.mark.parametrize("bits", [32, 64])
def test_subnormals_expm1_log1p_erf_sin_cos(bits: int) -> None:
    """expm1, log1p and sin return subnormal x itself (sign kept), cos 1, erf within 1 ulp."""
    dtype = np.float32 if bits == 32 else np.float64
    info = np.finfo(dtype)
    tiny, small = info.smallest_subnormal, info.smallest_normal
    subnormals = np.array([tiny, 3 * tiny, small / 3, small / 2**10], dtype=dtype)
    for x in (subnormals, -subnormals):
        for fam in ("expm1", "log1p", "sin"):
            got = apply(fname(fam, bits), x)
            np.testing.assert_array_equal(got, x, err_msg=fam)
            np.testing.assert_array_equal(np.signbit(got), np.signbit(x), err_msg=fam)
        np.testing.assert_array_equal(apply(f"cos{bits}", x), np.ones(4, dtype))
        got = apply(f"erf{bits}", x)
        assert np.all(ulp_distance(got, reference(f"erf{bits}", x)[0]) <= 1)


@pytest.mark.parametrize("bits", [32, 64])
def test_log1p_at_and_below_minus_one(bits: int) -> None:
    dtype = np.float32 if bits == 32 else np.float64
    x = _neighbours(dtype(-1.0), np.arange(-4, 5))  # ordered: -1 - 4 ulp ... -1 + 4 ulp
    got = apply(f"log1p{bits}", x)
    assert np.all(np.isnan(got[x < -1]))
    assert got[x == -1][0] == -np.inf
    above = x > -1
    assert np.all(ulp_distance(got[above], reference(f"log1p{bits}", x[above])[0]) <= 1)


@pytest.mark.parametrize("name", sorted(ACCURATE_BELOW))
def test_sin_cos_beyond_the_accurate_bound(name: str, rng: np.random.Generator) -> None:
    """Above the reduction's bound: still finite and within [-1, 1] (accuracy not promised)."""
    dtype = np.float32 if name.endswith("32") else np.float64
    info = np.finfo(dtype)
    magnitude = 2.0 ** rng.uniform(np.log2(ACCURATE_BELOW[name]), info.maxexp, 100_000)
    magnitude = np.minimum(magnitude, info.max)  # no rounding up to inf in float32
    x = np.concatenate([magnitude, -magnitude, [info.max, -info.max]]).astype(dtype)
    got = apply(name, x)
    assert np.all(np.isfinite(got)), f"{name}: non-finite result for a finite x"
    assert np.all(np.abs(got) <= 1), f"{name}: |result| > 1"


# (function, the type the loop's float math is done in): erf32, sin32 and cos32 work in
# float64.
VECTORIZED = [
    ("expm1_32", "float"),
    ("log1p32", "float"),
    ("erf32", "double"),
    ("sin32", "double"),
    ("cos32", "double"),
    ("expm1_64", "double"),
    ("sin64", "double"),
]


@pytest.mark.parametrize(("name", "lane"), VECTORIZED)
def test_more_loops_vectorize(name: str, lane: str) -> None:
    """Packed float vectors, ymm/zmm registers and no libm call (AVX2 or AVX-512)."""
    features = llvm.get_host_cpu_features()
    if not features.get("avx2", False):
        pytest.skip("the host CPU has no AVX2: the packed vectors are not expected")
    loop = _loop(getattr(vmath, name), np.float32 if name.endswith("32") else np.float64)
    signature = loop.signatures[0]
    llvm_ir = loop.inspect_llvm(signature)
    lanes = "(?:8|16)" if lane == "float" else "(?:4|8)"
    assert re.search(rf"fmul (?:fast )?<{lanes} x {lane}>", llvm_ir), "no packed multiply"
    libm = r"@(?:llvm\.(?:exp|log|sin|cos)\.|(?:exp|expm1|log|log1p|erf|sin|cos)f?\b)"
    assert not re.search(libm, llvm_ir), "a libm call"
    assert re.search(r"\b[yz]mm\d+\b", loop.inspect_asm(signature)), "no ymm/zmm registers"
