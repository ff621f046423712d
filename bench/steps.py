"""The steady training step of W7 (LeNet CNN) and W8 (GPT), graphc against PyTorch
eager, torch.compile and jax.jit where a python with them is given, each in its own
fresh process, in one run.

    python bench/steps.py [--only W7,W8] [--runs 20] [--threads 1]
                          [--peer-python /path/to/python-with-torch-and-jax]

graphc's step is timed after its compile (its cache is the usual one: run
compile_time.py for compile times); each figure is the median of `runs` steps, the
state of each step fed to the next. `--threads N` sets every library's thread count
(numba, BLAS, OpenMP, XLA) to N in both processes. Machines differ: compare the ratios
of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def median_ms(step_once: Callable[[], Any], runs: int) -> tuple[float, Any]:
    """The median milliseconds of `runs` calls of `step_once` after two untimed ones
    (the first compiles, the second settles), and the last call's result."""
    times = []
    result = None
    for i in range(runs + 2):
        start = time.perf_counter()
        result = step_once()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3, result


def graphc_steady(workload: str, runs: int) -> dict:
    sys.path.insert(0, str(HERE))
    import models

    step = models.lenet_step() if workload == "W7" else models.gpt_step()
    args = models.lenet_batch() if workload == "W7" else models.gpt_batch()
    ms, loss = median_ms(lambda: step(*args), runs)
    return {"ms": ms, "loss": float(loss)}


def _child(python: str, system: str, workload: str, runs: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
        env["XLA_FLAGS"] = (
            f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
            f"intra_op_parallelism_threads={threads}"
        )
    call = {
        "graphc": f"steps.graphc_steady({workload!r}, {runs})",
        "jax.jit": f"jax_models.steady_step({workload!r}, {runs})",
        "torch": f"torch_models.steady_step({workload!r}, {runs})",
        "torch.compile": f"torch_models.steady_step({workload!r}, {runs}, compiled=True)",
    }[system]
    module = {"graphc": "steps", "jax.jit": "jax_models"}.get(system, "torch_models")
    code = (
        f"import sys, json; sys.path.insert(0, {str(HERE)!r}); import {module}; "
        f"print(json.dumps({call}))"
    )
    done = subprocess.run(
        [python, "-c", code], env=env, capture_output=True, text=True, timeout=1200
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="W7,W8")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--peer-python", default=None)
    options = parser.parse_args()
    peers = ("torch", "torch.compile", "jax.jit") if options.peer_python else ()
    rows = []
    for workload in options.only.split(","):
        found = {
            "graphc": _child(sys.executable, "graphc", workload, options.runs, options.threads)
        }
        for peer in peers:
            found[peer] = _child(options.peer_python, peer, workload, options.runs, options.threads)
        rows.append((workload, found))
    threads = options.threads or "default"
    print(f"steady step, ms (median of {options.runs}; threads: {threads})")
    systems = ("graphc", *peers)
    print(f"{'workload':<9}" + "".join(f"{s:>14}" for s in systems) + "  graphc/fastest  losses")
    for workload, found in rows:
        times = {s: found[s].get("ms") for s in systems}
        fastest = min((t for s, t in times.items() if s != "graphc" and t), default=None)
        ratio = f"{times['graphc'] / fastest:.2f}" if times["graphc"] and fastest else "-"
        cells = "".join(f"{t:>14.2f}" if t else f"{'-':>14}" for t in times.values())
        losses = " / ".join(str(found[s].get("loss", found[s].get("error"))) for s in systems)
        print(f"{workload:<9}{cells}  {ratio:>14}  {losses}")


if __name__ == "__main__":
    main()
