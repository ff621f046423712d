"""Run the W1-W9 benchmarks and print tables of medians and ratios from this run.

    python bench/run.py [--quick] [--threads 1,2] [--only W1,W5,W7] [--out bench/results.json]

(`make bench` installs the `bench` extra, the peers, and runs it with the project's
virtual environment; `make bench BENCH_ARGS=--quick` passes flags.) For each thread
count, every system is measured in a fresh process (measure.py), pinned to that many
cores, whose NUMBA_NUM_THREADS, OMP_NUM_THREADS, OPENBLAS_NUM_THREADS and
MKL_NUM_THREADS are set to that count: graphc, numpy eager, and where they are installed
torch eager, jax.jit (on the CPU, with XLA_FLAGS holding XLA to the same count) and
onnxruntime, and the physical limits. OPENBLAS_CORETYPE is left as the user has it,
except in the limits process on an AVX-512 CPU, where the GEMMs-alone limit runs
OpenBLAS's SkylakeX kernels when the user set nothing. W5 times new processes
(w5_child.py) from exec to the first W2 loss. W7, W8 and W9, the training steps, are
steps.py's measurement at the same thread counts: graphc against torch eager,
torch.compile and jax.jit. The results also go to a JSON file. The exit status is 1 when
any measurement failed or was wrong.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import measure
import report
import steps
import timing
import workloads

HERE = Path(__file__).resolve().parent
CHILD_TIMEOUT_S = 600
W5_TIMEOUT_S = 300
W5_RUNS = 3  # processes per W5 row (1 with --quick), fewer when they are slow
W5_BUDGET_S = 20  # no new W5 process once a row's processes have taken about this long
W5_SYSTEMS = ("numpy", "torch", "graphc")  # (jax and onnxruntime: not measured)
STEPS_QUICK_RUNS = 5  # W7-W9 steps per median with --quick (steps.RUNS otherwise)
# the peers of W1-W6 and the modules each needs
PEER_MODULES = {"torch": ("torch",), "jax": ("jax",), "ort": ("onnxruntime", "onnx")}


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# --- the machine ------------------------------------------------------------------------


def _cpuinfo() -> dict[str, str]:
    """The fields of the first processor in /proc/cpuinfo ({} where there is none)."""
    try:
        with open("/proc/cpuinfo") as file:
            first = file.read().split("\n\n")[0]
    except OSError:
        return {}
    fields = (line.partition(":") for line in first.splitlines())
    return {key.strip(): value.strip() for key, _, value in fields}


def describe_machine() -> dict[str, Any]:
    """CPU model, usable cores and whether the CPU has AVX-512 (avx512f)."""
    cpuinfo = _cpuinfo()
    if "flags" in cpuinfo:
        avx512f = "avx512f" in cpuinfo["flags"].split()
        source = "/proc/cpuinfo"
    else:  # not Linux: ask LLVM, as numba does
        import llvmlite.binding

        avx512f = bool(llvmlite.binding.get_host_cpu_features().get("avx512f"))
        source = "llvmlite"
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpuinfo.get("model name") or platform.processor() or "unknown",
        "cores": cores,
        "avx512f": avx512f,
        "avx512f_from": source,
        "python": platform.python_version(),
        "executable": sys.executable,
    }


def gemm_coretype(machine: dict[str, Any]) -> tuple[str | None, str]:
    """The OPENBLAS_CORETYPE of the GEMMs-alone limit process, and a sentence saying why."""
    user_value = os.environ.get("OPENBLAS_CORETYPE")
    if user_value:
        return user_value, f"OPENBLAS_CORETYPE={user_value} (set by you, kept)"
    if machine["avx512f"]:
        return "SkylakeX", "OPENBLAS_CORETYPE=SkylakeX (the CPU has avx512f)"
    return None, "OpenBLAS's default kernels, OPENBLAS_CORETYPE unset (the CPU has no avx512f)"


def thread_environment(threads: int, system: str | None = None) -> dict[str, str]:
    """This process's environment with every thread pool limited to `threads`; for jax
    also XLA's (XLA_FLAGS, as steps.py sets them) and the CPU as its only platform."""
    env = dict(os.environ)
    env.update({name: str(threads) for name in timing.THREAD_VARIABLES})
    if system == "jax":
        env |= {"XLA_FLAGS": steps.xla_flags(threads), "JAX_PLATFORMS": "cpu"}
    return env


def installed_peers() -> dict[str, bool]:
    """{torch, jax, ort: whether everything it needs is importable in this python}."""
    return {
        peer: all(importlib.util.find_spec(module) is not None for module in modules)
        for peer, modules in PEER_MODULES.items()
    }


# --- measurement processes --------------------------------------------------------------


def run_measurement(
    system: str, threads: int, env: dict[str, str], args: argparse.Namespace
) -> dict:
    """Run measure.py for one system in a fresh process; its JSON, or an error for each."""
    selected = [name for name in measure.WORKLOADS if name in args.only]
    log(f"[threads={threads}] {system}")
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="graphc-bench-") as scratch:
        out = Path(scratch) / "out.json"
        command = [sys.executable, str(HERE / "measure.py"), "--system", system]
        command += ["--threads", str(threads), "--out", str(out), "--only", ",".join(selected)]
        if args.quick:
            command.append("--quick")
        with timing.OtherLoad() as load:
            try:
                finished = subprocess.run(
                    command,
                    env=env,
                    timeout=CHILD_TIMEOUT_S,
                    check=False,
                    preexec_fn=timing.pinned(threads),
                )
                failure = None if finished.returncode == 0 else f"exit {finished.returncode}"
            except subprocess.TimeoutExpired:
                failure = f"timed out after {CHILD_TIMEOUT_S} s"
        if failure is None and out.exists():
            output = json.loads(out.read_text())
        else:
            failure = failure or "wrote no results"
            output = {"system": system, "results": {name: {"error": failure} for name in selected}}
    for result in output["results"].values():
        result["other_load"] = load.share
    log(f"  ({system} process: {time.perf_counter() - started:.0f} s)")
    return output


def _time_to_first_loss(system: str, env: dict[str, str]) -> tuple[float, float]:
    """Seconds from exec of a new w5_child.py to its `loss` line, and that loss."""
    command = [sys.executable, str(HERE / "w5_child.py"), "--system", system]
    with tempfile.TemporaryFile() as errors:
        started = time.perf_counter()
        with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=errors) as child:
            deadline = threading.Timer(W5_TIMEOUT_S, child.kill)  # a hung child ends the read
            deadline.start()
            try:
                assert child.stdout is not None
                for raw in child.stdout:
                    if raw.startswith(b"loss "):
                        elapsed = time.perf_counter() - started
                        loss = float(raw.split()[1])
                        break
                else:
                    child.wait()
                    errors.seek(0)
                    tail = errors.read().decode(errors="replace").strip().splitlines()[-3:]
                    raise RuntimeError(f"exit status {child.returncode}: {' / '.join(tail)}")
                child.stdout.read()
                child.wait()
            finally:
                deadline.cancel()
    return elapsed, loss


def _w5_runs(
    system: str, env: dict[str, str], cache: str, fresh_cache: bool, runs: int, wanted: float
) -> dict:
    """Up to `runs` new processes (fewer once they have taken W5_BUDGET_S), each in a fresh
    empty cache directory under `cache` when `fresh_cache`, else in `cache` itself; every
    first loss is checked against numpy's `wanted` as soon as it arrives."""
    times, losses = [], []
    while len(times) < runs and (not times or sum(times) + max(times) <= W5_BUDGET_S):
        directory = tempfile.mkdtemp(prefix="graphc-w5-", dir=cache) if fresh_cache else cache
        child_env = env | {
            "GRAPHC_CACHE_DIR": directory,
            "NUMBA_CACHE_DIR": os.path.join(directory, "numba"),
        }
        elapsed, loss = _time_to_first_loss(system, child_env)
        workloads.check_loss(f"W5 {system}", loss, wanted)
        times.append(elapsed)
        losses.append(loss)
    return {
        "seconds": statistics.median(times),
        "runs": times,
        "losses": losses,
        "cache_dir": directory,
    }


def run_w5(system: str, threads: int, env: dict[str, str], runs: int) -> dict[str, dict]:
    """W5 cold and warm for one system; the first loss is checked against numpy's."""
    log(f"[threads={threads}] W5 {system}")
    params = workloads.mlp_params()
    wanted = workloads.numpy_train_step(params, *workloads.mlp_batch(workloads.W2_BATCH))
    with tempfile.TemporaryDirectory(prefix="graphc-w5-") as scratch, timing.OtherLoad() as load:
        try:
            cold = _w5_runs(system, env, scratch, True, runs, float(wanted))
            if system == "graphc":
                # warm: the cache the last cold run filled
                warm = _w5_runs(system, env, cold["cache_dir"], False, runs, float(wanted))
            else:
                warm = cold  # numpy and torch keep no compile cache: one measurement for both
        except AssertionError as error:
            failed = {"error": f"wrong result: {error}", "wrong": True}
            return {"W5 cold": failed, "W5 warm": failed}
        except RuntimeError as error:
            failed = {"error": str(error)}
            return {"W5 cold": failed, "W5 warm": failed}
    for result in (cold, warm):
        result.pop("cache_dir", None)
        result["other_load"] = load.share
    log(
        f"  {system:7s} W5       cold {cold['seconds']:.2f} s ({len(cold['runs'])} runs), "
        f"warm {warm['seconds']:.2f} s ({len(warm['runs'])} runs)"
    )
    return {"W5 cold": cold, "W5 warm": warm}


# --- the run ----------------------------------------------------------------------------


def parse_arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"short budgets, one W5 run each, W7/W8 medians of {STEPS_QUICK_RUNS} steps",
    )
    parser.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    parser.add_argument(
        "--only",
        default="W1,W2,W3,W4,W5,W6,W7,W8,W9",
        help='comma-separated workloads (W3 means both batch sizes, W5 cold and warm; "W3 b1"'
        " one row)",
    )
    parser.add_argument("--out", default=str(HERE / "results.json"), help="the JSON results")
    args = parser.parse_args()
    args.threads = [int(t) for t in args.threads.split(",")]
    names = {name.strip() for name in args.only.split(",") if name.strip()}
    known = {*report.ROW_ORDER, *steps.WORKLOADS, "W3", "W5"}
    if names - known:
        parser.error(
            f"--only: unknown workload(s) {', '.join(sorted(names - known))}; "
            f"known: {', '.join(sorted(known))}"
        )
    if "W3" in names:
        names |= {"W3 b256", "W3 b1"}
    if "W5" in names:
        names |= {"W5 cold", "W5 warm"}
    args.only = names
    return args


def run_configurations(
    args: argparse.Namespace, machine: dict[str, Any], systems: list[str]
) -> dict[int, dict[str, dict]]:
    """{threads: {system: measure.py's output, with W5 merged into its results}}."""
    coretype, _ = gemm_coretype(machine)
    measured: dict[int, dict[str, dict]] = {}
    for threads in args.threads:
        env = thread_environment(threads)
        by_system: dict[str, dict] = {}
        if any(name in measure.WORKLOADS for name in args.only):
            limits_env = env if coretype is None else env | {"OPENBLAS_CORETYPE": coretype}
            by_system["limits"] = run_measurement("limits", threads, limits_env, args)
            for system in systems:
                system_env = thread_environment(threads, system)
                by_system[system] = run_measurement(system, threads, system_env, args)
        if "W5" in args.only:
            for system in (s for s in W5_SYSTEMS if s in systems):
                result = by_system.setdefault(system, {"system": system, "results": {}})
                runs = 1 if args.quick else W5_RUNS
                result["results"].update(run_w5(system, threads, env, runs))
        measured[threads] = by_system
    return measured


def build_rows(
    args: argparse.Namespace, measured: dict[int, dict[str, dict]], systems: list[str]
) -> list[report.Row]:
    rows = []
    for threads, by_system in measured.items():
        for workload in report.ROW_ORDER:
            if workload not in args.only:
                continue
            cells = {
                system: by_system[system]["results"].get(workload) if system in by_system else None
                for system in ("graphc", "numpy", *report.PEERS, "limits")
            }
            if workload.startswith("W5"):
                for system in (s for s in systems if s not in W5_SYSTEMS):
                    cells[system] = {"not_applicable": "W5 is measured for graphc, numpy, torch"}
            rows.append(report.make_row(workload, threads, cells))
    return rows


def run_steps(args: argparse.Namespace) -> dict[int, list[tuple[str, dict[str, dict]]]]:
    """W7, W8 and W9 (those --only selects): steps.py's measurement at each thread count."""
    selected = [name for name in steps.WORKLOADS if name in args.only]
    if not selected:
        return {}
    peer_python, peers = steps.default_peers()
    runs = STEPS_QUICK_RUNS if args.quick else steps.RUNS
    return {
        threads: steps.measure_steps(selected, runs, threads, peer_python, peers, log)
        for threads in args.threads
    }


def _blas_line(by_system: dict[str, dict], system: str) -> str | None:
    """The BLAS libraries one process loaded: whose copy, version, kernels picked."""
    blas = (by_system.get(system) or {}).get("environment", {}).get("blas")
    if not blas:
        return None
    described = []
    for lib in blas:
        path = lib.get("filepath") or ""
        owner = next((name for name in ("numpy", "scipy", "torch") if name in path), path)
        described.append(
            f"{owner}'s {lib.get('internal_api')} {lib.get('version')} "
            f"({lib.get('architecture')} kernels)"
        )
    return ", ".join(described)


def print_notes(
    machine: dict[str, Any],
    measured: dict[int, dict[str, dict]],
    rows: list[report.Row],
    missing: dict[str, str],
    measured_steps: dict[int, list[tuple[str, dict[str, dict]]]],
) -> None:
    _, coretype_text = gemm_coretype(machine)
    print()
    if rows:
        print("limit: W1/W6 the faster of np.add (W1) or np.copyto (W6) and a numba prange")
        print("       add/copy at the row's thread count; W2/W3 the same GEMMs alone (np.dot);")
        print("       W4 a numba dispatch of the same x + 1.")
        print(f"GEMMs-alone limit: {coretype_text}.")
        first = next(iter(measured.values()), {})
        for system in ("limits", "numpy", "torch", "jax", "ort", "graphc"):
            line = _blas_line(first, system)
            if line:
                print(f"BLAS in the {system} process: {line}")
        print("jax: jax.jit on the CPU; ort: an onnxruntime InferenceSession (CPU, intra-op")
        print("     threads = thr, inter-op 1) of an ONNX model of the workload; n/a: W2 is")
        print("     training, which onnxruntime does not do; W5 is measured for graphc, numpy")
        print("     and torch only. graphc/fastest peer: below 1, graphc is faster.")
        print("others: the largest share of all CPUs that other processes took while the row's")
        print("        processes ran; above ~10 % its times are unreliable (spinning thread pools")
        print("        lose a core), so rerun on an idle machine.")
        busy = [row for row in rows if row.other_load is not None and row.other_load > 0.1]
        if busy:
            print(f"WARNING: {len(busy)} row(s) measured while other processes were busy.")
    for system, note in missing.items():
        print(f"{system}: {note} (make bench installs the peers: pip install -e '.[bench]').")
    for row in rows:
        for system, error in row.errors.items():
            print(f"{row.workload} at {row.threads} thread(s), {system}: {error[:300]}")
    for threads, step_rows in measured_steps.items():
        for workload, found in step_rows:
            for system, result in found.items():
                if "error" in result:
                    print(f"{workload} at {threads} thread(s), {system}: {result['error'][:300]}")


def main() -> int:
    args = parse_arguments()
    started = time.perf_counter()
    machine = describe_machine()
    installed = installed_peers()
    missing = {peer: "not installed" for peer, found in installed.items() if not found}
    systems = ["numpy", *(peer for peer in report.PEERS if installed[peer]), "graphc"]
    log(
        f"{machine['cpu']}, {machine['cores']} cores, avx512f: {machine['avx512f']}; "
        f"threads {args.threads}; {'quick' if args.quick else 'full'} run"
    )
    measured = run_configurations(args, machine, systems)
    rows = build_rows(args, measured, systems)
    measured_steps = run_steps(args)

    print()
    print(
        f"graphc benchmarks (bench/): {machine['cpu']}, {machine['cores']} cores, "
        f"Python {machine['python']}; medians, {'quick' if args.quick else 'full'} run"
    )
    if rows:
        print(report.format_table(rows, missing))
        print()
        print("graphc against the fastest peer (torch eager, jax.jit, onnxruntime) of each row")
        print(report.format_peer_table(rows))
    if measured_steps:
        _, step_peers = steps.default_peers()
        runs = STEPS_QUICK_RUNS if args.quick else steps.RUNS
        for threads, step_rows in measured_steps.items():
            print()
            print(steps.format_table(step_rows, runs, threads, step_peers))
        if not step_peers:
            print("W7/W8 peers: neither torch nor jax is installed (make bench installs them).")
    print_notes(machine, measured, rows, missing, measured_steps)
    elapsed = time.perf_counter() - started
    output = {
        "machine": machine,
        "arguments": {"quick": args.quick, "threads": args.threads, "only": sorted(args.only)},
        "gemm_limit_coretype": gemm_coretype(machine)[1],
        "peers": {peer: "not installed" if peer in missing else "installed" for peer in installed},
        "rows": [row.as_dict() for row in rows],
        "measurements": {str(threads): by_system for threads, by_system in measured.items()},
        "steps": {str(threads): dict(step_rows) for threads, step_rows in measured_steps.items()},
        "elapsed_s": elapsed,
    }
    Path(args.out).write_text(json.dumps(output, indent=1, ensure_ascii=False) + "\n")
    print(f"\n{elapsed:.0f} s in all; results written to {args.out}")
    steps_failed = any(
        "error" in result
        for step_rows in measured_steps.values()
        for _, found in step_rows
        for result in found.values()
    )
    return 1 if steps_failed or any(row.errors for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
