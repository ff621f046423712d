"""Physical limits measured on the same arrays in the same run: what no system can beat.

- W1, W6: the memory-bandwidth time of moving the workload's bytes once: np.add(x, y,
  out=z) for W1 and np.copyto for W6, and the same as a numba prange loop (which uses
  every thread of the configuration); the limit is the faster of the two.
- W2, W3: the workload's GEMMs alone, through np.dot on preallocated outputs: all
  eight matmuls of W2's forward + backward step, W3's three forward ones. The process
  that runs this module gets OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs (see run.py).
- W4: a numba dispatch of the same `x + 1`, the floor of any compiled call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba
import numpy as np
import timing
import workloads


@numba.njit(parallel=True, cache=False)
def _parallel_add(x: np.ndarray, y: np.ndarray, out: np.ndarray) -> None:
    for i in numba.prange(x.size):
        out[i] = x[i] + y[i]


@numba.njit(parallel=True, cache=False)
def _parallel_copy(source: np.ndarray, out: np.ndarray) -> None:
    for i in numba.prange(source.size):
        out[i] = source[i]


@numba.njit(cache=False)
def _add_one(x: np.ndarray) -> np.ndarray:
    return x + 1


def _bandwidth(
    numpy_fn: Callable[[], Any], numba_fn: Callable[[], Any], budget_s: float
) -> dict[str, Any]:
    by_numpy = timing.measure(numpy_fn, budget_s)
    by_numba = timing.measure(numba_fn, budget_s)
    best = min(by_numpy.median_s, by_numba.median_s)
    return {
        "seconds": best,
        "how": "numpy" if best == by_numpy.median_s else "numba prange",
        "numpy": by_numpy.as_dict(),
        "numba_prange": by_numba.as_dict(),
    }


def w1_bandwidth(budget_s: float) -> dict[str, Any]:
    x, y = workloads.w1_data()
    out = np.empty_like(x)
    return _bandwidth(lambda: np.add(x, y, out=out), lambda: _parallel_add(x, y, out), budget_s) | {
        "what": "np.add(x, y, out=z) / numba prange add, 48 MB moved"
    }


def w6_bandwidth(budget_s: float) -> dict[str, Any]:
    x = workloads.w6_data()
    out = np.empty_like(x)
    return _bandwidth(
        lambda: np.copyto(out, x), lambda: _parallel_copy(x.ravel(), out.ravel()), budget_s
    ) | {"what": "np.copyto / numba prange copy, 32 MB moved"}


def _dot_plan(pairs: list[tuple[np.ndarray, np.ndarray]]) -> Callable[[], None]:
    """np.dot(a, b, out=c) for each pair, into preallocated C-contiguous outputs."""
    plan = [(a, b, np.empty((a.shape[0], b.shape[1]), np.float32)) for a, b in pairs]

    def run() -> None:
        for a, b, out in plan:
            np.dot(a, b, out=out)

    return run


def _flops(pairs: list[tuple[np.ndarray, np.ndarray]]) -> float:
    return float(sum(2 * a.shape[0] * a.shape[1] * b.shape[1] for a, b in pairs))


def w2_gemm_pairs() -> list[tuple[np.ndarray, np.ndarray]]:
    """The operands of W2's matmuls, with the values of a real step (transposes as views)."""
    params = workloads.mlp_params()
    images, _ = workloads.mlp_batch(workloads.W2_BATCH)
    activations = [images]
    for w, b in zip(params.weights[:-1], params.biases[:-1], strict=True):
        activations.append(np.maximum(activations[-1] @ w + b, 0.0))
    rng = np.random.default_rng(workloads.SEED + 4)
    grads = [
        rng.standard_normal((workloads.W2_BATCH, n), dtype=np.float32) * np.float32(1e-3)
        for n in workloads.MLP_SIZES[1:]
    ]
    forward = [(activations[i], w) for i, w in enumerate(params.weights)]
    weight_grads = [(activations[i].T, grads[i]) for i in range(len(params.weights))]
    # the gradient wrt the images is never needed: no matmul for layer 0's input
    input_grads = [(grads[i], params.weights[i].T) for i in range(1, len(params.weights))]
    return forward + weight_grads + input_grads


def w3_gemm_pairs(batch: int) -> list[tuple[np.ndarray, np.ndarray]]:
    params = workloads.mlp_params()
    images, _ = workloads.mlp_batch(batch)
    activations = [images]
    for w, b in zip(params.weights[:-1], params.biases[:-1], strict=True):
        activations.append(np.maximum(activations[-1] @ w + b, 0.0))
    return [(activations[i], w) for i, w in enumerate(params.weights)]


def gemms_alone(pairs: list[tuple[np.ndarray, np.ndarray]], budget_s: float) -> dict[str, Any]:
    measured = timing.measure(_dot_plan(pairs), budget_s)
    flops = _flops(pairs)
    return {
        "seconds": measured.median_s,
        "how": f"{len(pairs)} np.dot",
        "gflop": flops / 1e9,
        "gflop_per_s": flops / measured.median_s / 1e9,
        "timing": measured.as_dict(),
    }


def w4_dispatch(budget_s: float) -> dict[str, Any]:
    x = workloads.w4_data()
    _add_one(x)
    measured = timing.measure(lambda: _add_one(x), budget_s)
    return {"seconds": measured.median_s, "how": "numba dispatch", "timing": measured.as_dict()}
