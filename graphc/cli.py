"""The `graphc` command: inspect, run, optimize, draw and time saved .graphc files.

Orchestration, on top of everything else. Each subcommand has --help. A user error
(a missing or malformed file, a wrong input) prints one line, `graphc: error: ...`,
and exits with status 1, without a traceback; argparse's usage errors exit with 2.

    graphc info FILE
    graphc run FILE --input NAME=PATH.npy ... [--output OUT.npz]
    graphc optimize FILE -o OUT [--report]
    graphc show FILE [-o graph.svg|graph.png|graph.dot]
    graphc bench FILE [--runs N] [--dim NAME=SIZE ...] [--profile [TRACE.json]]
"""

from __future__ import annotations

import argparse
import collections
import os
import shutil
import subprocess
import sys
import time
import zipfile
from collections.abc import Sequence
from typing import Any

import numpy as np

PRINT_LIMIT = 50  # outputs with at most this many elements are printed in full


class UserError(Exception):
    """A mistake of the command's user: reported as one line, exit status 1."""


# --------------------------------------------------------------------------------------
# info
# --------------------------------------------------------------------------------------


def _nbytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return str(n)


def _shape(shape: Sequence[Any]) -> str:
    return "[" + ",".join("?" if d is None else str(d) for d in shape) + "]"


def cmd_info(args: argparse.Namespace) -> None:
    from graphc import format as fileformat

    manifest, parts = fileformat.read(args.file)
    graph = parts["graph"]
    signature = manifest["signature"]
    print(f"file:        {args.file} ({_nbytes(os.path.getsize(args.file))})")
    print(f"format:      graphc format version {manifest['format_version']}")
    print(f"producer:    {manifest.get('producer')}")
    optimized = "optimized" if manifest.get("optimized") else "as defined (optimized on load)"
    print(f"graph:       {len(graph.nodes)} nodes, {optimized}")
    print("inputs:")
    for spec in signature["inputs"]:
        print(f"  {spec['name']}: {spec['dtype']}{_shape(spec['shape'])}")
    print("outputs:")
    for spec in signature["outputs"]:
        print(f"  {spec['name']}: {spec['dtype']}{_shape(spec['shape'])}")
    variables = list(parts["states"].values())
    total = sum(v.get_state().nbytes for v in variables)
    print(f"variables:   {len(variables)}, {_nbytes(total)}")
    for v in variables:
        array = v.get_state()
        state = "" if v.trainable else "  (not trainable)"
        print(f"  {v.name}: {array.dtype.name}{list(array.shape)}  {_nbytes(array.nbytes)}{state}")
    updates = len(graph.updates)
    print(f"updates:     {updates} (a training step)" if updates else "updates:     none")
    print("ops:")
    for op, count in sorted(collections.Counter(n.op for n in graph.nodes).items()):
        print(f"  {op:<24}{count}")


# --------------------------------------------------------------------------------------
# run
# --------------------------------------------------------------------------------------


def _read_array_file(path: str) -> dict[str, np.ndarray] | np.ndarray:
    try:
        loaded = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise UserError(f"input file {path!r} does not exist") from None
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise UserError(f"cannot read {path!r} as .npy or .npz: {error}") from None
    if isinstance(loaded, np.lib.npyio.NpzFile):
        with loaded:
            return {key: loaded[key] for key in loaded.files}
    return loaded


def _feeds(fn: Any, specs: Sequence[str]) -> dict[str, np.ndarray]:
    """`--input` values: NAME=PATH.npy, NAME=PATH.npz (its NAME array or its only one),
    or PATH.npz alone (its arrays by input name)."""
    names = [spec.name for spec in fn.inputs]
    feeds: dict[str, np.ndarray] = {}
    for item in specs:
        name, sep, path = item.partition("=")
        if not sep:
            content = _read_array_file(item)
            if not isinstance(content, dict):
                raise UserError(f"--input {item}: a .npy file needs a name, NAME={item}")
            feeds.update({k: v for k, v in content.items() if k in names})
            continue
        if name not in names:
            raise UserError(f"--input {item}: no input named {name!r}; the inputs are {names}")
        content = _read_array_file(path)
        if isinstance(content, dict):
            if name in content:
                content = content[name]
            elif len(content) == 1:
                (content,) = content.values()
            else:
                raise UserError(f"--input {item}: {path} has no array named {name!r}")
        feeds[name] = content
    missing = [n for n in names if n not in feeds]
    if missing:
        raise UserError(f"missing input(s) {missing}; give each as --input NAME=PATH.npy")
    return feeds


def _describe(name: str, array: np.ndarray) -> str:
    if array.size <= PRINT_LIMIT:
        body = np.array2string(array, separator=", ", threshold=PRINT_LIMIT)
        return f"{name}: {array.dtype.name}{list(array.shape)} = {body}"
    summary = ""
    if array.dtype.kind in "biuf" and array.size:
        values = array.astype(np.float64)
        summary = f"  min {values.min():.6g}  mean {values.mean():.6g}  max {values.max():.6g}"
    return f"{name}: {array.dtype.name}{list(array.shape)}{summary}"


def cmd_run(args: argparse.Namespace) -> None:
    from graphc import load

    fn = load(args.file, device=args.device)
    feeds = _feeds(fn, args.input or [])
    results = fn(**feeds)
    arrays = _as_list(results)
    names = [spec.name for spec in fn.outputs]
    for name, array in zip(names, arrays, strict=True):
        print(_describe(name, np.asarray(array)))
    if args.output:
        _atomic_savez(args.output, dict(zip(names, arrays, strict=True)))
        print(f"wrote {len(arrays)} output(s) to {args.output}")


def _as_list(results: Any) -> list[np.ndarray]:
    if isinstance(results, dict):
        return list(results.values())
    if isinstance(results, list | tuple):
        return list(results)
    return [results]


def _atomic_savez(path: str, arrays: dict[str, np.ndarray]) -> None:
    temporary = f"{path}.tmp-{os.getpid()}.npz"
    try:
        np.savez(temporary, **arrays)
        os.replace(temporary, path)
    except OSError as error:
        raise UserError(f"cannot write {path!r}: {error.strerror or error}") from None
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# --------------------------------------------------------------------------------------
# optimize
# --------------------------------------------------------------------------------------


def cmd_optimize(args: argparse.Namespace) -> None:
    from graphc import load, save

    fn = load(args.file, device="reference")  # nothing to compile: the passes only
    optimized = fn.optimized()
    try:
        save(args.output, optimized)
    except OSError as error:
        raise UserError(f"cannot write {args.output!r}: {error.strerror or error}") from None
    before, after = len(fn.saved_form()[0].nodes), len(optimized.saved_form()[0].nodes)
    print(f"wrote {args.output}: {before} nodes -> {after} (optimized; loading skips the passes)")
    if args.report:
        print(fn.report())


# --------------------------------------------------------------------------------------
# show
# --------------------------------------------------------------------------------------


def _quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _type_label(t: Any) -> str:
    return f"{t.dtype.name}[{','.join(str(d) for d in t.shape)}]"


def to_dot(graph: Any, title: str = "graphc") -> str:
    """The graph in Graphviz's DOT language: one box per node (op and name), values'
    types on the edges, and each fused node drawn as a cluster of its steps."""
    lines = [
        f"digraph {_quote(title)} {{",
        "  rankdir=TB;",
        '  node [shape=box, style="rounded,filled", fillcolor="#f4f4f4", fontname="Helvetica"];',
        '  edge [fontname="Helvetica", fontsize=10];',
    ]
    fills = {"placeholder": "#d6eaff", "variable": "#ffe9c7", "constant": "#eeeeee"}
    source: dict[Any, str] = {}  # value -> the DOT node that computes it
    targets: dict[int, list[list[str]]] = {}  # node id -> per input, the DOT nodes reading it
    outputs = set(graph.outputs)
    for n in graph.nodes:
        if n.op == "fused":
            targets[n.id] = _fused_cluster(lines, n, source)
            continue
        for v in n.outputs:
            source[v] = f"n{n.id}"
        targets[n.id] = [[f"n{n.id}"] for _ in n.inputs]
        label = n.op if not n.name else f"{n.op}\n{n.name}"
        if n.op == "constant" and n.attrs["value"].array.size == 1:
            label = f"constant\n{n.attrs['value'].array.reshape(-1)[0].item()!r}"
        fill = "#d9f2d9" if any(v in outputs for v in n.outputs) else fills.get(n.op, "#f4f4f4")
        lines.append(f"  n{n.id} [label={_quote(label)}, fillcolor={_quote(fill)}];")
        for key, value in n.attrs.items():
            if hasattr(value, "nodes") and hasattr(value, "outputs"):  # a control-flow body
                first = _body_cluster(lines, f"n{n.id}_{key}", value, f"{n.op} %{n.id}: {key}")
                lines.append(f'  n{n.id} -> {first} [style=dotted, arrowhead=none, label="{key}"];')
    for n in graph.nodes:
        for v, readers in zip(n.inputs, targets[n.id], strict=True):
            label = _quote(_type_label(graph.type_of(v)))
            for reader in readers:
                lines.append(f"  {source[v]} -> {reader} [label={label}];")
    for i, v in enumerate(graph.outputs):
        lines.append(f'  out{i} [label="output {i}", shape=plaintext, style=""];')
        lines.append(f"  {source[v]} -> out{i} [label={_quote(_type_label(graph.type_of(v)))}];")
    for variable, v in graph.updates:
        lines.append(f'  {source[v]} -> n{variable} [style=dashed, label="update"];')
    lines.append("}")
    return "\n".join(lines) + "\n"


def _body_cluster(lines: list[str], prefix: str, body: Any, title: str, depth: int = 1) -> str:
    """A control-flow body as a cluster of its nodes (nested bodies as nested clusters),
    its inputs numbered as the node's operands; returns the DOT name of its first node."""
    pad = "  " * (depth + 1)
    lines.append(f"{'  ' * depth}subgraph cluster_{prefix} {{")
    lines.append(f'{pad}label={_quote(title)}; style="rounded,dashed";')
    names = {n.id: f"{prefix}_{n.id}" for n in body.nodes}
    inputs = {v.node: i for i, v in enumerate(body.inputs)}
    outputs = {v.node for v in body.outputs}
    for n in body.nodes:
        label = f"input {inputs[n.id]}" if n.id in inputs else n.op
        fill = "#d9f2d9" if n.id in outputs else "#d6eaff" if n.id in inputs else "#f4f4f4"
        lines.append(f"{pad}{names[n.id]} [label={_quote(label)}, fillcolor={_quote(fill)}];")
        for key, value in n.attrs.items():
            if hasattr(value, "nodes") and hasattr(value, "outputs"):
                inner = f"{prefix}_{n.id}_{key}"
                first = _body_cluster(lines, inner, value, f"{n.op}: {key}", depth + 1)
                lines.append(f"{pad}{names[n.id]} -> {first} [style=dotted, arrowhead=none];")
        for v in n.inputs:
            lines.append(f"{pad}{names[v.node]} -> {names[n.id]};")
    lines.append(f"{'  ' * depth}}}")
    return names[body.nodes[0].id]


def _fused_cluster(lines: list[str], n: Any, source: dict[Any, str]) -> list[list[str]]:
    """A fused node's steps as a cluster. Records the step computing each of its results
    in `source`; returns, per input of the node, the steps that read it."""
    title = f"fused %{n.id} ({n.attrs['kind']})"
    lines.append(f"  subgraph cluster_{n.id} {{")
    lines.append(f'    label={_quote(title)}; style="rounded,dashed";')
    readers: list[list[str]] = [[] for _ in n.inputs]
    step_of: dict[int, str] = {}  # body value index -> the step computing it
    position = len(n.inputs)
    for k, (op, args, attrs) in enumerate(n.attrs["body"]):
        step = f"f{n.id}_{k}"
        label = op
        if op == "constant" and attrs["value"].array.size == 1:
            label = f"{attrs['value'].array.reshape(-1)[0].item()!r}"
        lines.append(f'    {step} [label={_quote(label)}, fillcolor="#fff6d6"];')
        for a in args:
            if a < len(n.inputs):
                readers[a].append(step)
            else:
                lines.append(f"    {step_of[a]} -> {step};")
        step_of[position] = step
        position += 1
    lines.append("  }")
    for v, result in zip(n.outputs, n.attrs["results"], strict=True):
        source[v] = step_of.get(result, f"f{n.id}_0")
    return readers


def cmd_show(args: argparse.Namespace) -> None:
    from graphc import load

    fn = load(args.file, device="reference")
    graph = fn.saved_form()[0] if args.as_defined else fn.graph
    dot = to_dot(graph, os.path.basename(args.file))
    if not args.output:
        sys.stdout.write(dot)
        return
    extension = os.path.splitext(args.output)[1].lower().lstrip(".")
    if extension == "dot":
        _write_text(args.output, dot)
    elif extension in ("svg", "png", "pdf"):
        program = shutil.which("dot")
        if program is None:
            raise UserError(
                f"writing .{extension} needs Graphviz's `dot` program, which is not installed: "
                "install Graphviz (apt install graphviz, brew install graphviz, or "
                "https://graphviz.org/download) or write DOT text with -o graph.dot"
            )
        done = subprocess.run(
            [program, f"-T{extension}", "-o", args.output],
            input=dot.encode(),
            capture_output=True,
            check=False,
        )
        if done.returncode != 0:
            raise UserError(f"dot failed: {done.stderr.decode(errors='replace').strip()}")
    else:
        raise UserError(f"-o {args.output}: the file must end in .svg, .png, .pdf or .dot")
    print(f"wrote {args.output}")


def _write_text(path: str, text: str) -> None:
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
    except OSError as error:
        raise UserError(f"cannot write {path!r}: {error.strerror or error}") from None


# --------------------------------------------------------------------------------------
# bench
# --------------------------------------------------------------------------------------


DEFAULT_SIZE = 1  # what `graphc bench` feeds for a size known only at run time, unless --dim


def run_time_sizes(fn: Any) -> list[str]:
    """The names of the sizes a function's inputs leave to run time, in input order."""
    names: dict[str, None] = {}
    for value in fn.graph.inputs:
        for d in fn.graph.type_of(value).shape:
            if not isinstance(d, int):
                names.setdefault(str(d), None)
    return list(names)


def _random_inputs(fn: Any, sizes: dict[str, int]) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    feeds = {}
    for value, spec in zip(fn.graph.inputs, fn.inputs, strict=True):
        declared = fn.graph.type_of(value)
        shape = [d if isinstance(d, int) else sizes[str(d)] for d in declared.shape]
        if spec.dtype.kind == "f":
            feeds[spec.name] = rng.standard_normal(shape).astype(spec.dtype)
        elif spec.dtype.kind == "b":
            feeds[spec.name] = rng.random(shape) < 0.5
        else:
            feeds[spec.name] = rng.integers(0, 2, shape).astype(spec.dtype)
    return feeds


def _bench_sizes(fn: Any, given: Sequence[str]) -> tuple[dict[str, int], list[str]]:
    """Every run-time size of fn's inputs: from --dim NAME=SIZE, else DEFAULT_SIZE; and
    the names that took the default."""
    names = run_time_sizes(fn)
    sizes: dict[str, int] = {}
    for item in given:
        name, sep, value = item.partition("=")
        if not sep or not value.isdigit():
            raise UserError(f"--dim {item}: expected NAME=SIZE, e.g. --dim x.0=64")
        if name not in names:
            known = ", ".join(names) or "none"
            raise UserError(f"--dim {item}: no input size is named {name!r}; they are: {known}")
        sizes[name] = int(value)
    defaulted = [name for name in names if name not in sizes]
    sizes.update({name: DEFAULT_SIZE for name in defaulted})
    return sizes, defaulted


def cmd_bench(args: argparse.Namespace) -> None:
    from graphc import load
    from graphc.errors import InputError

    fn = load(args.file, device=args.device)
    sizes, defaulted = _bench_sizes(fn, args.dim or [])
    feeds = _random_inputs(fn, sizes)
    print(f"{args.file} on {fn.device}")
    if defaulted:
        chosen = ", ".join(f"{name}={sizes[name]}" for name in defaulted)
        print(f"sizes known only at run time, by default: {chosen} (set them with --dim NAME=SIZE)")
    start = time.perf_counter()
    try:
        fn(**feeds)  # the first call may compile
    except InputError as error:
        tried = ", ".join(f"{name}={size}" for name, size in sizes.items())
        first_line = str(error).splitlines()[0]
        raise UserError(f"{first_line} (sizes {tried}; choose others with --dim)") from None
    first = time.perf_counter() - start
    fn.wait()  # time the compiled entry (a large graph's first calls may run from Python)
    times = []
    for _ in range(args.runs):
        start = time.perf_counter()
        fn(**feeds)
        times.append(time.perf_counter() - start)
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    shapes = ", ".join(f"{k}{list(v.shape)}" for k, v in feeds.items())
    print(f"inputs {shapes}")
    print(f"first call {first * 1e3:.3f} ms; {args.runs} calls after it:")
    print(
        f"median {median * 1e6:.1f} us, spread (25%-75%) {q1 * 1e6:.1f}-{q3 * 1e6:.1f} us, "
        f"min {min(times) * 1e6:.1f} us"
    )
    if args.profile is not None:
        if fn.device != "cpu":
            raise UserError(f"--profile times CPU kernels; this function runs on {fn.device}")
        ordered = [feeds[spec.name] for spec in fn.inputs]
        profile = fn.profile(*ordered, runs=args.runs, trace=args.profile or None)
        print(profile)
        if args.profile:
            print(f"Chrome trace written to {args.profile}")


# --------------------------------------------------------------------------------------
# the command
# --------------------------------------------------------------------------------------


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a count >= 1, got {text!r}")
    return int(text)


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(
        prog="graphc", description="Inspect, run, optimize, draw and time saved .graphc files."
    )
    sub = top.add_subparsers(dest="command", required=True, metavar="COMMAND")

    info = sub.add_parser("info", help="signature, op counts, variables and versions of a file")
    info.add_argument("file", help="a .graphc file")
    info.set_defaults(run=cmd_info)

    run = sub.add_parser("run", help="run a saved function on .npy/.npz inputs")
    run.add_argument("file", help="a .graphc file")
    run.add_argument(
        "--input",
        "-i",
        action="append",
        metavar="NAME=PATH",
        help="an input: NAME=PATH.npy, NAME=PATH.npz, or PATH.npz holding inputs by name",
    )
    run.add_argument("--output", "-o", metavar="OUT.npz", help="also write the outputs here")
    run.add_argument("--device", default=None, help="cpu (default), cuda or reference")
    run.set_defaults(run=cmd_run)

    optimize = sub.add_parser("optimize", help="write the optimized graph to a new file")
    optimize.add_argument("file", help="a .graphc file")
    optimize.add_argument("-o", "--output", required=True, metavar="OUT", help="the new file")
    optimize.add_argument("--report", action="store_true", help="print what each pass did")
    optimize.set_defaults(run=cmd_optimize)

    show = sub.add_parser("show", help="draw the graph (DOT, or SVG/PNG through Graphviz)")
    show.add_argument("file", help="a .graphc file")
    show.add_argument("-o", "--output", metavar="FILE", help="graph.svg, graph.png or graph.dot")
    show.add_argument(
        "--as-defined", action="store_true", help="the graph as saved, not the optimized one"
    )
    show.set_defaults(run=cmd_show)

    bench = sub.add_parser("bench", help="time repeated runs on random inputs")
    bench.add_argument("file", help="a .graphc file")
    bench.add_argument("--runs", type=_positive, default=100, help="timed calls (default 100)")
    bench.add_argument(
        "--dim",
        action="append",
        metavar="NAME=SIZE",
        help=(
            "a size known only at run time, by the name `graphc info` shows (e.g. x.0=64); "
            f"each one not given is {DEFAULT_SIZE}"
        ),
    )
    bench.add_argument("--device", default=None, help="cpu (default), cuda or reference")
    bench.add_argument(
        "--profile",
        nargs="?",
        const="",
        default=None,
        metavar="TRACE.json",
        help="then time each kernel over the runs (a table; with a path, a Chrome trace too)",
    )
    bench.set_defaults(run=cmd_bench)
    return top


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from graphc.errors import GraphcError

    try:
        args.run(args)
    except (UserError, GraphcError) as error:
        print(f"graphc: error: {error}".splitlines()[0], file=sys.stderr)
        return 1
    except FileNotFoundError as error:
        print(f"graphc: error: {error.filename}: no such file", file=sys.stderr)
        return 1
    except BrokenPipeError:  # `graphc show FILE | head`
        return 0
    except OSError as error:
        print(f"graphc: error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
