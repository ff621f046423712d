"""The steady training step of W7 (LeNet CNN), W8 (GPT) and W9 (LSTM), graphc against
PyTorch eager, torch.compile and jax.jit, each in its own fresh process, in one run.

    python bench/steps.py [--only W7,W8,W9] [--runs 20] [--threads 1]
                          [--peer-python /path/to/python-with-torch-and-jax]

The peers run in this python where torch or jax is importable here (the `bench` extra
installs them; `make bench` and `make bench-steps` do), else in the python that
`--peer-python` names. graphc's step is timed after its compile (its cache is the
usual one: run compile_time.py for compile times); each figure is the median of
`runs` steps, the state of each step fed to the next. `--threads N` sets every
library's thread count (numba, BLAS, OpenMP, XLA) to N in every process and pins it to N
cores. jax runs on
the CPU (JAX_PLATFORMS=cpu). Machines differ: compare the ratios of one run. run.py
(`make bench`) prints this table too, after W1-W6, at each of its thread counts.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import timing

HERE = Path(__file__).resolve().parent
WORKLOADS = ("W7", "W8", "W9")
PEERS = ("torch", "torch.compile", "jax.jit")
RUNS = 20
CHILD_TIMEOUT_S = 1200


def xla_flags(threads: int) -> str:
    """XLA_FLAGS that hold XLA's CPU thread pools to `threads`."""
    return (
        f"--xla_cpu_multi_thread_eigen={'true' if threads > 1 else 'false'} "
        f"intra_op_parallelism_threads={threads}"
    )


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

    builders = {
        "W7": (models.lenet_step, models.lenet_batch),
        "W8": (models.gpt_step, models.gpt_batch),
        "W9": (models.lstm_step, models.lstm_batch),
    }
    build, batch = builders[workload]
    step, args = build(), batch()
    ms, loss = median_ms(lambda: step(*args), runs)
    return {"ms": ms, "loss": float(loss)}


def _child(python: str, system: str, workload: str, runs: int, threads: int | None) -> dict:
    env = dict(os.environ)
    if threads:
        for name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
            env[name] = str(threads)
        env["MKL_NUM_THREADS"] = str(threads)
        env["XLA_FLAGS"] = xla_flags(threads)
    if system == "jax.jit":
        env["JAX_PLATFORMS"] = "cpu"
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
    try:
        done = subprocess.run(
            [python, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=CHILD_TIMEOUT_S,
            check=False,
            preexec_fn=timing.pinned(threads),
        )
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {CHILD_TIMEOUT_S} s"}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def default_peers() -> tuple[str | None, tuple[str, ...]]:
    """This python and the peers importable in it (torch: eager and torch.compile; jax),
    or (None, ()) when it has neither."""
    peers = []
    if importlib.util.find_spec("torch") is not None:
        peers += ["torch", "torch.compile"]
    if importlib.util.find_spec("jax") is not None:
        peers.append("jax.jit")
    return (sys.executable if peers else None), tuple(peers)


def peers_for(peer_python: str | None) -> tuple[str | None, tuple[str, ...]]:
    """The python the peers run in and which peers: `peer_python` with all three when it
    is given, else this python with those it has."""
    return (peer_python, PEERS) if peer_python else default_peers()


def measure_steps(
    workloads: list[str],
    runs: int,
    threads: int | None,
    peer_python: str | None,
    peers: tuple[str, ...],
    log: Callable[[str], None] | None = None,
) -> list[tuple[str, dict[str, dict]]]:
    """[(workload, {system: {"ms", "loss"} or {"error"}})], each system in its own process."""
    rows = []
    for workload in workloads:
        found = {}
        for system in ("graphc", *peers):
            if log:
                log(f"[threads={threads or 'default'}] {workload} {system}")
            python = sys.executable if system == "graphc" else peer_python
            assert python is not None
            found[system] = _child(python, system, workload, runs, threads)
        rows.append((workload, found))
    return rows


def fastest_peer(found: dict[str, dict]) -> tuple[str, float] | None:
    """The peer with the shortest step that ran, and its ms."""
    times = [(s, r["ms"]) for s, r in found.items() if s != "graphc" and r.get("ms")]
    return min(times, key=lambda pair: pair[1], default=None)


def format_table(
    rows: list[tuple[str, dict[str, dict]]],
    runs: int,
    threads: int | None,
    peers: tuple[str, ...],
) -> str:
    """The table of steady steps: ms per system, graphc/fastest (below 1: graphc is
    faster) and each system's loss after the same steps (or its error)."""
    systems = ("graphc", *peers)
    lines = [
        f"W7-W9: the steady training step, ms (median of {runs}; threads: {threads or 'default'})",
        f"{'workload':<9}" + "".join(f"{s:>14}" for s in systems) + "  graphc/fastest  losses",
    ]
    for workload, found in rows:
        times = {s: found[s].get("ms") for s in systems}
        fastest = fastest_peer(found)
        graphc = times["graphc"]
        ratio = f"{graphc / fastest[1]:.2f}" if graphc and fastest else "-"
        cells = "".join(
            f"{t:>14.2f}" if t else f"{'ERROR' if 'error' in found[s] else '-':>14}"
            for s, t in times.items()
        )
        losses = " / ".join(str(found[s].get("loss", found[s].get("error"))) for s in systems)
        lines.append(f"{workload:<9}{cells}  {ratio:>14}  {losses}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--peer-python", default=None, help="a python with torch and jax (default: this one)"
    )
    options = parser.parse_args()
    peer_python, peers = peers_for(options.peer_python)
    workloads = [w.strip() for w in options.only.split(",") if w.strip()]
    rows = measure_steps(workloads, options.runs, options.threads, peer_python, peers)
    print(format_table(rows, options.runs, options.threads, peers))
    if not peers:
        print("peers: neither torch nor jax is importable here (pip install -e '.[bench]')")
    return 1 if any("error" in r for _, found in rows for r in found.values()) else 0


if __name__ == "__main__":
    sys.exit(main())
