"""How long graphc takes from `graphc.function` to the first result: the compile-time
targets of the compile-time issue, against jax.jit where jax is installed.

    python bench/compile_time.py                      # every workload, cold and warm
    python bench/compile_time.py --only chain40,W8
    python bench/compile_time.py --peer-python /path/to/python-with-jax

Each measurement is a new process. "auto" is the default, compile="auto", cold:
GRAPHC_CACHE_DIR and NUMBA_CACHE_DIR point at a new empty directory, so every kernel and
every library helper is compiled; past 1,000 characters of entry code (every workload
here) the first calls are answered from the Python entry over the compiled kernels
while the entry compiles in another process, and "auto nat" is the time until the
compiled entry answers (`fn.wait()`). "eager" is compile="eager", cold: everything,
the entry included, compiled before the first result. "warm": a second process, in
the default mode, on the cache the eager one filled. The targets are checked on the
default mode. The time is from just before the graph is defined (after the imports) to
the first result; W5 is the whole process, from exec to the first loss (its definition
in PERFORMANCE.md). Each process caches bytecode, as Python does by default
(PYTHONDONTWRITEBYTECODE is dropped). jax's time is its first jitted step (tracing and
XLA compile), in its own process, from jax's cache disabled. Machines differ: compare
the ratios of one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
WORKLOADS = ("chain5", "chain10", "chain20", "chain40", "W5", "W7", "W8", "W9")
TARGETS = {"chain40": 3.0, "W5": 3.0, "W7": 5.0, "W8": 10.0, "W9": 10.0}  # cold, seconds
WARM_TARGETS = {"W5": 0.6}


def child(spec: str) -> dict:
    """Run in the measured process: build, call once, report. `spec` is the workload,
    then ":" and the compile mode (the default: "auto")."""
    import numpy as np

    workload, _, mode = spec.partition(":")
    mode = mode or "auto"
    sys.path.insert(0, str(HERE))
    start = time.perf_counter()
    if workload == "W5":
        import graphc_workloads
        import workloads

        step, _ = graphc_workloads.w2_train_step(workloads.mlp_params(), compile=mode)
        args = workloads.mlp_batch(workloads.W2_BATCH)
    else:
        import models

        if workload.startswith("chain"):
            step, args = models.chain(int(workload[5:]), mode), (models.chain_batch(),)
        elif workload == "W7":
            step, args = models.lenet_step(mode), models.lenet_batch()
        elif workload == "W9":
            step, args = models.lstm_step(mode), models.lstm_batch()
        else:
            step, args = models.gpt_step(mode), models.gpt_batch()
    built = time.perf_counter()
    result = np.asarray(step(*args))
    done = time.perf_counter()
    print("FIRST", flush=True)  # (the parent's clock: W5 counts from exec to here)
    report = step.report()
    kernels = getattr(report, "kernels", ())  # (what an older graphc reports)
    measured = {
        "seconds": done - start,
        "define": built - start,
        "result": float(result.reshape(-1)[0]),
        "kernels": len(kernels),
        "origins": getattr(report, "origins", {}),
        "entry": getattr(report, "entry_seconds", None),
        "answered_by": getattr(step, "compiled", "native"),
    }
    if measured["answered_by"] == "interpreted":
        step.wait()
        measured["native_after"] = time.perf_counter() - start
        again = np.asarray(step(*args))  # (the second step: updates applied once)
        measured["native_result"] = float(again.reshape(-1)[0])
    return measured


def jax_child(workload: str) -> dict:
    import jax_models

    return jax_models.first_step(workload)


def _run(python: str, workload: str, env: dict[str, str], peer: bool) -> dict:
    flag = "--jax-child" if peer else "--child"
    # as Python runs by default, and as an installed package is: with the bytecode of
    # every module cached (graphc's generated modules too), whatever this shell says
    env = {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}
    start = time.perf_counter()
    with subprocess.Popen(
        [python, str(Path(__file__)), flag, workload],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,  # (one pipe: read to the end, it cannot fill up)
        text=True,
    ) as done:
        first, lines = None, []
        for line in done.stdout or ():
            if line.strip() == "FIRST":
                first = time.perf_counter() - start
            lines.append(line)
        done.wait(timeout=1800)
    wall = time.perf_counter() - start
    if done.returncode != 0 or not lines:
        return {"error": [line.strip() for line in lines[-1:]] or ["failed"]}
    measured = json.loads(lines[-1])
    measured["process"] = wall
    measured["first_process"] = first if first is not None else wall
    return measured


def measure(workload: str, peer_python: str | None) -> dict:
    row: dict = {"workload": workload}
    with tempfile.TemporaryDirectory(prefix="graphc-compile-") as cache:
        env = {
            **os.environ,
            "GRAPHC_CACHE_DIR": str(Path(cache) / "graphc"),
            "NUMBA_CACHE_DIR": str(Path(cache) / "numba"),
        }
        row["eager"] = _run(sys.executable, f"{workload}:eager", env, peer=False)
        row["warm"] = _run(sys.executable, f"{workload}:auto", env, peer=False)
    with tempfile.TemporaryDirectory(prefix="graphc-compile-") as cache:
        env = {
            **os.environ,
            "GRAPHC_CACHE_DIR": str(Path(cache) / "graphc"),
            "NUMBA_CACHE_DIR": str(Path(cache) / "numba"),
        }
        row["auto"] = _run(sys.executable, f"{workload}:auto", env, peer=False)
    if peer_python and workload != "W5":
        env = {**os.environ, "JAX_ENABLE_COMPILATION_CACHE": "false", "JAX_PLATFORMS": "cpu"}
        row["jax"] = _run(peer_python, workload, env, peer=True)
    return row


def _seconds(measured: dict | None, workload: str) -> str:
    if not measured:
        return "-"
    if "error" in measured:
        return "ERROR"
    value = measured["first_process"] if workload == "W5" else measured["seconds"]
    return f"{value:.2f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default=",".join(WORKLOADS))
    parser.add_argument("--peer-python", default=None, help="a python with jax (default: ours)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--jax-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default=None, help="write the rows as JSON here")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(args.child)))
        return 0
    if args.jax_child:
        sys.path.insert(0, str(HERE))
        print(json.dumps(jax_child(args.jax_child)))
        return 0
    peer = args.peer_python
    if peer is None:
        probe = subprocess.run([sys.executable, "-c", "import jax"], capture_output=True)
        peer = sys.executable if probe.returncode == 0 else None
    rows = [measure(w, peer) for w in args.only.split(",") if w]
    print(
        f"{'workload':10s} {'auto s':>8s} {'auto nat':>8s} {'eager s':>8s} {'warm s':>8s} "
        f"{'jax s':>8s} {'kernels':>8s}  target (default mode)"
    )
    failed = False
    for row in rows:
        w = row["workload"]
        auto, eager, warm = row["auto"], row["eager"], row["warm"]
        failed |= any("error" in m for m in (auto, eager, warm))
        target = TARGETS.get(w)
        met = ""
        if target is not None and "error" not in auto:
            value = auto["first_process"] if w == "W5" else auto["seconds"]
            met = f"cold <= {target:g} s: {'met' if value <= target else 'NOT met'}"
        if w in WARM_TARGETS and "error" not in warm:
            met += f"; warm <= {WARM_TARGETS[w]:g} s: " + (
                "met" if warm["first_process"] <= WARM_TARGETS[w] else "NOT met"
            )
        native = auto.get("native_after")
        print(
            f"{w:10s} {_seconds(auto, w):>8s} {'-' if native is None else f'{native:.2f}':>8s} "
            f"{_seconds(eager, w):>8s} {_seconds(warm, w):>8s} "
            f"{_seconds(row.get('jax'), w):>8s} {eager.get('kernels', '-')!s:>8s}  {met}"
        )
    print("W5: whole process, exec to first loss; others: graph definition to first result")
    print(
        'auto: the default, compile="auto", cold (past 1,000 characters of entry code, the'
        " first result comes from the Python entry); auto nat: until the compiled entry"
        ' answers ("-": it answered the first call); eager: compile="eager", cold'
    )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=2))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
