"""Measure one system at one thread count, in this fresh process; write the results as JSON.

    python bench/measure.py --system graphc --threads 2 --out results.json [--quick]

run.py starts one such process per (system, thread count), with NUMBA_NUM_THREADS,
OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and MKL_NUM_THREADS set to the thread count
before anything loads (for jax also XLA_FLAGS, and JAX_PLATFORMS=cpu). Systems:
graphc, numpy, torch (eager), jax (jax.jit), ort (an onnxruntime InferenceSession with
intra_op_num_threads set to the thread count) and limits (the physical limits of
limits.py). Before a workload is timed, every system's result is checked against
numpy's; a workload that fails its check or raises is reported as an error instead of
a time, and the others still run. A workload a system cannot run (W2 in onnxruntime)
is reported as not applicable.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np
import timing
import workloads

WORKLOADS = ("W1", "W2", "W3 b256", "W3 b1", "W4", "W6")
SYSTEMS = ("graphc", "numpy", "torch", "jax", "ort", "limits")

# A preparation builds (and checks) one workload and returns the call to time plus
# what the check found; a limit measures itself and returns its result directly.
Prepared = tuple[Callable[[], Any], dict[str, Any]]


# --- graphc -----------------------------------------------------------------------------


def _graphc_preparations() -> dict[str, Callable[[], Prepared]]:
    import graphc_workloads as gw

    def w1() -> Prepared:
        x, y = workloads.w1_data()
        started = time.perf_counter()
        fn = gw.w1()
        first = fn(x, y)
        first_call_s = time.perf_counter() - started
        error = workloads.check_close("W1", first, workloads.numpy_w1(x, y), rtol=1e-4, atol=1e-5)
        return (lambda: fn(x, y)), {"check": error, "build_and_first_call_s": first_call_s}

    def w2() -> Prepared:
        params = workloads.mlp_params()
        images, labels = workloads.mlp_batch(workloads.W2_BATCH)
        started = time.perf_counter()
        step, variables = gw.w2_train_step(params)
        reference = params.copy()
        # two steps: the first loss checks the forward pass, the second the update
        first = step(images, labels)
        first_call_s = time.perf_counter() - started
        second = step(images, labels)
        losses = []
        for i, loss in enumerate((first, second)):
            wanted = workloads.numpy_train_step(reference, images, labels)
            losses.append(workloads.check_loss(f"W2 step {i + 1}", loss, wanted))
        for variable, wanted in zip(variables, reference.as_list(), strict=True):
            workloads.check_close(
                f"W2 {variable.name} after 2 steps", variable.value, wanted, rtol=1e-4, atol=1e-6
            )
        check = {"loss_relative_differences": losses, "first_loss": float(first)}
        return (lambda: step(images, labels)), check | {"build_and_first_call_s": first_call_s}

    def w3(batch: int) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            params = workloads.mlp_params()
            images, _ = workloads.mlp_batch(batch)
            fn = gw.w3_predict(params)
            wanted = workloads.numpy_mlp_forward(params, images)
            error = workloads.check_close(f"W3 b{batch}", fn(images), wanted, rtol=1e-3, atol=1e-4)
            return (lambda: fn(images)), {"check": error}

        return prepare

    def w4() -> Prepared:
        fn = gw.w4()
        x = workloads.w4_data()
        error = workloads.check_close("W4", fn(x), workloads.numpy_w4(x), rtol=0.0)
        return (lambda: fn(x)), {"check": error}

    def w6() -> Prepared:
        fn = gw.w6()
        x = workloads.w6_data()
        error = workloads.check_close("W6", fn(x), workloads.numpy_w6(x), rtol=1e-4, atol=1e-8)
        return (lambda: fn(x)), {"check": error}

    return {"W1": w1, "W2": w2, "W3 b256": w3(256), "W3 b1": w3(1), "W4": w4, "W6": w6}


# --- numpy eager ------------------------------------------------------------------------


def _numpy_preparations() -> dict[str, Callable[[], Prepared]]:
    def w1() -> Prepared:
        x, y = workloads.w1_data()
        return (lambda: workloads.numpy_w1(x, y)), {}

    def w2() -> Prepared:
        params = workloads.mlp_params()
        images, labels = workloads.mlp_batch(workloads.W2_BATCH)
        return (lambda: workloads.numpy_train_step(params, images, labels)), {}

    def w3(batch: int) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            params = workloads.mlp_params()
            images, _ = workloads.mlp_batch(batch)
            return (lambda: workloads.numpy_mlp_forward(params, images)), {}

        return prepare

    def w4() -> Prepared:
        x = workloads.w4_data()
        return (lambda: workloads.numpy_w4(x)), {}

    def w6() -> Prepared:
        x = workloads.w6_data()
        return (lambda: workloads.numpy_w6(x)), {}

    return {"W1": w1, "W2": w2, "W3 b256": w3(256), "W3 b1": w3(1), "W4": w4, "W6": w6}


# --- the peers: torch eager, jax.jit, onnxruntime ---------------------------------------


def _peer_preparations(
    peer: Any,
    as_numpy: Callable[[Any], np.ndarray],
    extra: tuple = (),
    parameters_now: Callable[[Any], list] = lambda parameters: parameters,
) -> dict[str, Callable[[], Prepared]]:
    """The preparations of a peer's workload module (torch_workloads, jax_workloads,
    ort_workloads): each builder is called with the shared data and `extra` (ORT's thread
    count), and its results, made numpy arrays by `as_numpy`, are checked against
    numpy's. A module without `w2_train_step` does not train (no W2)."""

    def w1() -> Prepared:
        x, y = workloads.w1_data()
        fn = peer.w1(x, y, *extra)
        error = workloads.check_close(
            "W1", as_numpy(fn()), workloads.numpy_w1(x, y), rtol=1e-4, atol=1e-5
        )
        return fn, {"check": error}

    def w2() -> Prepared:
        params = workloads.mlp_params()
        images, labels = workloads.mlp_batch(workloads.W2_BATCH)
        step, parameters = peer.w2_train_step(params, images, labels, *extra)
        reference = params.copy()
        losses = []
        for i in range(2):
            wanted = workloads.numpy_train_step(reference, images, labels)
            losses.append(workloads.check_loss(f"W2 step {i + 1}", step(), wanted))
        trained = zip(parameters_now(parameters), reference.as_list(), strict=True)
        for j, (parameter, wanted) in enumerate(trained):
            workloads.check_close(
                f"W2 parameter {j} after 2 steps",
                as_numpy(parameter),
                wanted,
                rtol=1e-4,
                atol=1e-6,
            )
        return step, {"loss_relative_differences": losses}

    def w3(batch: int) -> Callable[[], Prepared]:
        def prepare() -> Prepared:
            params = workloads.mlp_params()
            images, _ = workloads.mlp_batch(batch)
            fn = peer.w3_predict(params, images, *extra)
            wanted = workloads.numpy_mlp_forward(params, images)
            error = workloads.check_close(
                f"W3 b{batch}", as_numpy(fn()), wanted, rtol=1e-3, atol=1e-4
            )
            return fn, {"check": error}

        return prepare

    def w4() -> Prepared:  # (numpy in, numpy out, as graphc's call)
        x = workloads.w4_data()
        fn = peer.w4(x, *extra)
        return fn, {"check": workloads.check_close("W4", fn(), workloads.numpy_w4(x), rtol=0.0)}

    def w6() -> Prepared:
        x = workloads.w6_data()
        fn = peer.w6(x, *extra)
        error = workloads.check_close(
            "W6", as_numpy(fn()), workloads.numpy_w6(x), rtol=1e-4, atol=1e-8
        )
        return fn, {"check": error}

    preparations = {"W1": w1, "W2": w2, "W3 b256": w3(256), "W3 b1": w3(1), "W4": w4, "W6": w6}
    if not hasattr(peer, "w2_train_step"):
        del preparations["W2"]
    return preparations


def _torch_preparations() -> dict[str, Callable[[], Prepared]]:
    import torch_workloads

    return _peer_preparations(torch_workloads, lambda tensor: tensor.detach().numpy())


def _jax_preparations() -> dict[str, Callable[[], Prepared]]:
    import jax_workloads

    # (its step returns a function of the current parameters: jax replaces them)
    return _peer_preparations(jax_workloads, np.asarray, parameters_now=lambda now: now())


ORT_NOT_APPLICABLE = {"W2": "onnxruntime's InferenceSession does not train"}


def _ort_preparations(threads: int) -> dict[str, Callable[[], Prepared]]:
    import ort_workloads

    return _peer_preparations(ort_workloads, np.asarray, extra=(threads,))


# --- running ----------------------------------------------------------------------------


def _limit_measurements(budget_s: float) -> dict[str, Callable[[], dict[str, Any]]]:
    import limits

    return {
        "W1": lambda: limits.w1_bandwidth(budget_s),
        "W2": lambda: limits.gemms_alone(limits.w2_gemm_pairs(), budget_s),
        "W3 b256": lambda: limits.gemms_alone(limits.w3_gemm_pairs(256), budget_s),
        "W3 b1": lambda: limits.gemms_alone(limits.w3_gemm_pairs(1), budget_s),
        "W4": lambda: limits.w4_dispatch(budget_s),
        "W6": lambda: limits.w6_bandwidth(budget_s),
    }


def _run_one(system: str, name: str, job: Callable[[], Any], budget_s: float) -> dict[str, Any]:
    started = time.perf_counter()
    try:
        if system == "limits":
            result = job()
        else:
            fn, check = job()
            measured = timing.measure(fn, budget_s)
            result = {"seconds": measured.median_s, "timing": measured.as_dict(), **check}
    except AssertionError as error:
        traceback.print_exc()
        result = {"error": f"wrong result: {error}", "wrong": True}
    except Exception as error:
        traceback.print_exc()
        result = {"error": f"{type(error).__name__}: {error}"}
    elapsed = time.perf_counter() - started
    shown = f"{result['seconds'] * 1e3:.3f} ms" if "seconds" in result else result["error"][:200]
    print(f"  {system:7s} {name:8s} {shown}  ({elapsed:.1f} s)", file=sys.stderr, flush=True)
    return result


def _environment(system: str, threads: int) -> dict[str, Any]:
    """What this process ran with: thread settings as seen here, versions, the BLAS core."""
    info: dict[str, Any] = {
        "threads": threads,
        "env": {
            name: os.environ.get(name) for name in (*timing.THREAD_VARIABLES, "OPENBLAS_CORETYPE")
        },
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    if "numba" in sys.modules:
        import numba

        info["numba"] = numba.__version__
        info["numba_threads"] = numba.get_num_threads()
        info["numba_threading_layer"] = _numba_threading_layer()
    if "torch" in sys.modules:
        import torch

        info["torch"] = torch.__version__
        info["torch_threads"] = torch.get_num_threads()
    if "jax" in sys.modules:
        import jax

        info["jax"] = jax.__version__
        info["jax_devices"] = [str(device) for device in jax.devices()]
        info["env"] |= {name: os.environ.get(name) for name in ("XLA_FLAGS", "JAX_PLATFORMS")}
    if "onnxruntime" in sys.modules:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
        info["ort_intra_op_threads"] = threads
    if "graphc" in sys.modules:
        import graphc

        info["graphc"] = graphc.__version__
    info["blas"] = _blas_info()
    return info


def _numba_threading_layer() -> str | None:
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # no parallel code has run in this process
        return None


def _blas_info() -> list[dict[str, Any]] | None:
    """The BLAS libraries loaded here, with the kernels (architecture) OpenBLAS picked."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return None
    keep = ("internal_api", "version", "architecture", "num_threads", "filepath")
    return [
        {k: lib.get(k) for k in keep} for lib in threadpool_info() if lib.get("user_api") == "blas"
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--system", required=True, choices=SYSTEMS)
    parser.add_argument("--threads", type=int, required=True)
    parser.add_argument("--out", required=True, help="where to write the JSON results")
    parser.add_argument("--quick", action="store_true", help="short time budgets")
    parser.add_argument("--only", default=",".join(WORKLOADS), help="comma-separated workloads")
    args = parser.parse_args()
    budget_s = 0.15 if args.quick else 0.5
    selected = [name.strip() for name in args.only.split(",")]

    if args.system == "torch":
        import torch

        torch.set_num_threads(args.threads)
    if args.system == "jax":
        # before jax loads: the CPU only, and the configuration's threads (run.py sets both)
        os.environ["JAX_PLATFORMS"] = "cpu"
        if "XLA_FLAGS" not in os.environ:
            import steps

            os.environ["XLA_FLAGS"] = steps.xla_flags(args.threads)
    jobs: dict[str, Callable[[], Any]]
    not_applicable: dict[str, str] = {}
    if args.system == "limits":
        jobs = _limit_measurements(budget_s)
    elif args.system == "ort":
        jobs, not_applicable = _ort_preparations(args.threads), ORT_NOT_APPLICABLE
    else:
        preparations = {
            "graphc": _graphc_preparations,
            "numpy": _numpy_preparations,
            "torch": _torch_preparations,
            "jax": _jax_preparations,
        }
        jobs = preparations[args.system]()
    results = {
        name: (
            {"not_applicable": not_applicable[name]}
            if name in not_applicable
            else _run_one(args.system, name, jobs[name], budget_s)
        )
        for name in WORKLOADS
        if name in selected
    }
    output = {
        "system": args.system,
        "environment": _environment(args.system, args.threads),
        "results": results,
    }
    with open(args.out, "w") as file:
        json.dump(output, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
