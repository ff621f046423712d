"""The few GRAPHC_* environment flags, defined and documented in one place.

Part of the IR core. Read at call time, so tests may set them per test.

GRAPHC_VERIFY=1         run the IR verifier after every optimization pass
GRAPHC_DUMP=fold,fuse   print the IR after the named passes (to stderr)
GRAPHC_DEVICE=reference  the device of graphc.function when none is given (default cpu)
GRAPHC_CACHE_DIR=path   where compiled graphs are cached (default ~/.cache/graphc)
GRAPHC_PARALLEL=auto    compile parallel loops: auto (when numba has >1 thread), 1 or 0
GRAPHC_PARALLEL_MIN=n   the smallest loop, in elements, split across threads (65536)
GRAPHC_COMPILE_WORKERS=n  processes compiling kernels at once (default: the usable CPUs,
                        at most 8; read by runtime/compile.py)
"""

from __future__ import annotations

import os
import sys


def verify_passes() -> bool:
    return os.environ.get("GRAPHC_VERIFY", "") not in ("", "0")


def dump_after() -> frozenset[str]:
    return frozenset(n.strip() for n in os.environ.get("GRAPHC_DUMP", "").split(",") if n.strip())


def parallel_mode() -> str:
    """GRAPHC_PARALLEL: "auto" (default: parallel loops when numba has more than one
    thread), "1" (always compile them) or "0" (never)."""
    value = os.environ.get("GRAPHC_PARALLEL", "auto").strip().lower()
    return value if value in ("auto", "0", "1") else "auto"


def parallel_min_elements() -> int:
    """GRAPHC_PARALLEL_MIN: the smallest loop (in elements) split across threads."""
    try:
        return max(1, int(os.environ.get("GRAPHC_PARALLEL_MIN", "65536")))
    except ValueError:
        return 65536


def _has_avx512() -> bool:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as handle:
            for line in handle:
                if line.startswith("flags"):
                    return " avx512f " in f" {line.split(':', 1)[-1].strip()} "
    except OSError:
        pass
    return False


def prefer_fast_blas() -> None:
    """On an AVX-512 CPU, ask OpenBLAS for its AVX-512 (SkylakeX) kernels.

    OpenBLAS detects some AVX-512 CPUs (AMD Zen 4/5) as Haswell and runs their GEMMs at
    half speed; `OPENBLAS_CORETYPE` overrides the detection, but only if it is set
    before the library loads. graphc's compiled matmuls call scipy's OpenBLAS (through
    numba), which loads on the first compiled matmul, so setting it when graphc is
    imported is early enough. A value the user set is never changed.
    """
    if "OPENBLAS_CORETYPE" in os.environ or "scipy.linalg" in sys.modules:
        return
    if _has_avx512():
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"


BLAS_THREAD_TIMEOUT = "20"  # 2**20 cycles: about 0.3 ms


def quiet_blas_threads() -> None:
    """Let OpenBLAS's idle threads sleep 2**20 cycles (about 0.3 ms) after a GEMM,
    where its default is 2**28 (about 0.1 s) of spinning.

    graphc's convolutions and pools split a batch across numba's threads, between
    GEMMs that OpenBLAS threads with its own pool; threads spinning in that pool took
    the cores from numba's (W7's step on 2 threads: 26-36 ms against 6.9 ms with the
    shorter spin, and 10.5 ms with the helpers on one thread). The shorter spin still
    spans the gaps between a graph's back-to-back GEMMs (W8's step unchanged). Like
    OPENBLAS_CORETYPE, it is read when the library loads (scipy's OpenBLAS, which
    graphc's compiled matmuls call, loads on the first one); a value the user set is
    never changed.
    """
    if "OPENBLAS_THREAD_TIMEOUT" in os.environ or "scipy.linalg" in sys.modules:
        return
    os.environ["OPENBLAS_THREAD_TIMEOUT"] = BLAS_THREAD_TIMEOUT


def default_device() -> str:
    return os.environ.get("GRAPHC_DEVICE", "").strip() or "cpu"
