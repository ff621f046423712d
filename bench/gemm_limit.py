"""The GEMMs of the W8 step alone, in graphc's BLAS and in PyTorch's, at one thread:
what bounds W8's step from below (its profile: GEMMs are about 70 % of it).

    python bench/gemm_limit.py          (torch from the bench extra)

Each shape is M x K x N of one float32 product the W8 step runs (the projections and
the MLP of a 128-channel, 4x-wide block over 8 x 64 tokens, and their weight
gradients). graphc's kernels call numba's np.dot, which calls the same OpenBLAS as
numpy's; torch calls its own (oneDNN/MKL) GEMM. Times are the best of 5 runs of 200
calls, into preallocated outputs.
"""

from __future__ import annotations

import os

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import time
from collections.abc import Callable

import numpy as np

SHAPES = (
    (512, 128, 128),
    (512, 128, 384),
    (512, 128, 512),
    (512, 512, 128),
    (128, 512, 128),
    (128, 512, 384),
    (128, 512, 512),
    (512, 128, 256),
)


def best_us(call: Callable[[], object], calls: int = 200, runs: int = 5) -> float:
    call()
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> None:
    import torch

    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    print(f"{'M x K x N':>16}  {'OpenBLAS us':>11}  {'torch us':>8}")
    totals = [0.0, 0.0]
    for m, k, n in SHAPES:
        a = rng.standard_normal((m, k)).astype(np.float32)
        b = rng.standard_normal((k, n)).astype(np.float32)
        out = np.empty((m, n), np.float32)
        ta, tb, tout = torch.from_numpy(a), torch.from_numpy(b), torch.from_numpy(out)
        ours = best_us(lambda a=a, b=b, out=out: np.dot(a, b, out))
        theirs = best_us(lambda ta=ta, tb=tb, tout=tout: torch.mm(ta, tb, out=tout))
        totals[0] += ours
        totals[1] += theirs
        print(f"{f'{m} x {k} x {n}':>16}  {ours:>11.1f}  {theirs:>8.1f}")
    print(f"{'all':>16}  {totals[0]:>11.1f}  {totals[1]:>8.1f}  (OpenBLAS / torch: "
          f"{totals[0] / totals[1]:.2f})")  # fmt: skip


if __name__ == "__main__":
    main()
