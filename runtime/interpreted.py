"""Running a graph's entry as Python over its compiled kernels, and profiling it.

Part of graphc.runtime. The CPU entry (kernels/cpu/codegen.py) is ordinary Python that
numba compiles: it binds sizes, carves the arena, and calls the kernels through
`lib.invoke`. Compiling a large entry is most of a large graph's compile time, while
its kernels compile in parallel (runtime/compile.py). This module runs the same entry
text as Python instead, with `lib.invoke` calling each kernel's compiled overload for
its declared types (the very code the compiled entry calls by address), so that a
function answers before its entry is compiled (`compile="background"`):

- every kernel runs the same machine code either way;
- the library helpers (BLAS, conv, gather...) are the same numba functions, and the
  glue between them (views, copies, allocations) is numpy's, which numba mirrors;

so the results are bit-identical (tests/runtime/test_background.py checks it on
whole training runs).

The same Python entry, with a clock around each statement, is `Function.profile`:
time per kernel and per library call, against the IR line each statement implements.
"""

from __future__ import annotations

import ast
import contextlib
import re
import time
import types as pytypes
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numba
import numpy as np
from numba.np import numpy_support

from graphc.errors import InternalError
from graphc.kernels.cpu import lib
from graphc.kernels.cpu.codegen import Generated, Kernel
from graphc.runtime import cache


class _Target:
    """One kernel as the Python entry calls it: its compiled overload's wrapper, after
    the checks numba's unboxing does not make (an array of another rank or dtype would
    be read with the wrong layout)."""

    __slots__ = ("_arrays", "_call", "name")

    def __init__(self, name: str, dispatcher: Any, argtypes: tuple) -> None:
        self._call = dispatcher.overloads[argtypes].entry_point
        self.name = name
        self._arrays = tuple(
            (i, numpy_support.as_dtype(t.dtype), t.ndim)
            for i, t in enumerate(argtypes)
            if isinstance(t, numba.types.Array)
        )

    def __call__(self, args: tuple[Any, ...]) -> Any:
        for i, dtype, ndim in self._arrays:
            a = args[i]
            if a.dtype != dtype or a.ndim != ndim:
                raise InternalError(
                    f"internal error: kernel {self.name} argument {i} is "
                    f"{a.dtype}[{a.ndim}-d], compiled for {dtype}[{ndim}-d]"
                )
        return self._call(*args)


_TARGETS: dict[str, _Target] = {}  # by symbol (see lib.register)


def _invoke(symbol: str, args: tuple[Any, ...]) -> Any:
    target = _TARGETS.get(symbol)
    if target is None:
        found = lib.registered(symbol)
        if found is None:
            raise InternalError(f"no kernel is registered as {symbol}")
        target = _TARGETS[symbol] = _Target(symbol, *found)
    return target(args)


def _same(array: Any) -> Any:
    return array


def _carve(arena: np.ndarray, start: int, stop: int, shape: tuple, dtype: Any) -> np.ndarray:
    return arena[start:stop].view(dtype).reshape(shape)


def _shim() -> pytypes.SimpleNamespace:
    """`lib` as the Python entry sees it: the intrinsics (which only compiled code can
    call) as Python functions, every other helper unchanged."""
    names = {k: v for k, v in vars(lib).items() if not k.startswith("__")}
    names.update(invoke=_invoke, as_c=_same, as_f=_same, as_a=_same, carve=_carve)
    return pytypes.SimpleNamespace(**names)


def python_entry(generated: Generated) -> Callable[..., Any]:
    """The entry function of `generated`, run as Python (see the module docstring), with
    each library helper on every thread replaced by its one-thread twin."""
    module, entry, _ = _entry_tree(generated)
    return _function(module, entry, **_one_thread(module))


def _one_thread(module: Any) -> dict[str, pytypes.SimpleNamespace]:
    """The entry module's library aliases with each helper ``K_par_c`` (on every thread,
    a parallel compile) bound to its twin ``K_c``, which gives the same results bit for
    bit (kernels/cpu/nn.py): the Python entry answers before the compiled entry, and
    calling the twins spares the parallel compiles before the first result."""
    aliases = {}
    for alias in _library_aliases(module):
        names = dict(vars(vars(module)[alias]))
        for name in list(names):
            twin = name.removesuffix("_par_c") + "_c"
            if name.endswith("_par_c") and twin in names:
                names[name] = names[twin]
        aliases[alias] = pytypes.SimpleNamespace(**names)
    return aliases


# ------------------------------------------------------------------ profiling


@dataclass(frozen=True)
class Statement:
    """One timed statement of the entry: what it calls ("k3" for the entry's fourth
    kernel, else the function, e.g. "lib.matmul_batched" or "np.ascontiguousarray";
    "" for plain bindings), the ops it runs and the shape it produces (from the IR
    line above it)."""

    name: str
    what: str
    shape: str


_KERNEL = re.compile(r"lib\.invoke\(\"(\w+)\",")
_CALLEE = re.compile(r"([A-Za-z_][\w.]*)\(")
_IR = re.compile(r"^\s*# %[\d.]+(?:, %[\d.]+)* = ([\w.]+)")  # an IR line (graphc.printer)


def _ir_parts(ir: str) -> tuple[str, str]:
    """The op and the result types of an IR line."""
    match = _IR.match(ir)
    if match is None:
        return "", ""
    body = ir.strip()[2:].split("  # ")[0]  # (without the location after it)
    return match.group(1), body.rsplit(" : ", 1)[1] if " : " in body else ""


def _statement(line: str, ir: str, kernels: Sequence[Kernel]) -> Statement:
    op, shape = _ir_parts(ir)
    head = line.lstrip()
    if head.startswith(("for ", "while ")) or (head.startswith("if ") and op == "cond"):
        # a control-flow node's loop or branch, its body's kernels and all: one statement
        return Statement("(loop)" if op != "cond" else "(branch)", op, shape)
    found = _KERNEL.search(line)
    if found:
        index = [k.symbol for k in kernels].index(found.group(1))
        return Statement(f"k{index}", kernels[index].what, shape)
    if line.lstrip().startswith("if "):
        return Statement("(feed check)", op, shape)
    code = line.split("=", 1)[1] if re.match(r"^\s*[\w, ]+=[^=]", line) else line
    callee = _CALLEE.search(code)
    name = callee.group(1) if callee else ""
    if name in ("np.intp", "np.float32", "np.float64"):
        name = ""
    return Statement(name, op, shape)


def profiled_entry(
    generated: Generated, clock: Callable[[], int], record: Callable[[int, int], None]
) -> tuple[Callable[..., Any], list[Statement]]:
    """The Python entry with `record(i, start)` after statement i (each top-level
    statement of the entry but its `return`), and what each statement is."""
    module, entry, lines = _entry_tree(generated)
    statements: list[Statement] = []
    body: list[ast.stmt] = []
    for stmt in entry.body:
        if isinstance(stmt, ast.Return):
            body.append(stmt)
            continue
        index = len(statements)
        ir = ""
        for k in range(stmt.lineno - 2, -1, -1):  # the IR line above the statement
            if _IR.match(lines[k]):
                ir = lines[k]
                break
            if lines[k].lstrip().startswith("def "):
                break
        text = "\n".join(lines[stmt.lineno - 1 : (stmt.end_lineno or stmt.lineno)])
        statements.append(_statement(text, ir, generated.kernels))
        start = ast.parse("_start_ = _clock_()").body[0]
        mark = ast.parse(f"_record_({index}, _start_)").body[0]
        body += [start, stmt, mark]
    entry.body = body
    function = _function(module, entry, _clock_=clock, _record_=record)
    return function, statements


def _entry_tree(generated: Generated) -> tuple[Any, ast.FunctionDef, list[str]]:
    """The entry module, the entry's syntax tree (undecorated) and the source lines."""
    module = cache.load_generated(generated.source)
    tree = ast.parse(generated.source)
    entry = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "entry")
    entry.decorator_list = []
    return module, entry, generated.source.splitlines()


def _function(module: Any, entry: ast.FunctionDef, **names: Any) -> Callable[..., Any]:
    """The (rewritten) entry as a Python function, in its module's namespace."""
    code = compile(ast.fix_missing_locations(ast.Module([entry], [])), "<graphc entry>", "exec")
    namespace = {**vars(module), "lib": _shim(), **names}
    exec(code, namespace)  # the entry's own text, as this process generated it
    return namespace["entry"]


def helper_calls(generated: Generated, args: Sequence[Any]) -> list[tuple[Any, tuple]]:
    """The numba library helpers (BLAS, convolutions, gathers...) a call with `args`
    makes, each with the types it passes: found by a dry run
    of the Python entry in which every statement that is a bare call (a kernel, or a
    helper writing into its outputs) is recorded instead of run, and the rest (views,
    allocations, the small helpers whose result is used) runs on `args`, which it may
    overwrite. They can then compile in parallel, with the kernels, before the first
    call (runtime/compile.py)."""
    module, entry, _ = _entry_tree(generated)
    found: list[tuple[Any, tuple]] = []

    def dry(function: Any, arguments: tuple[Any, ...]) -> None:
        function = getattr(function, "dispatcher", function)
        if _is_dispatcher(function):
            argtypes = tuple(function.typeof_pyval(a) for a in arguments)
            if (function, argtypes) not in found:
                found.append((function, argtypes))

    body: list[ast.stmt] = []
    for stmt in entry.body:
        call = stmt.value if isinstance(stmt, ast.Expr) else None
        if isinstance(call, ast.Call):
            if call.keywords or any(isinstance(a, ast.Starred) for a in call.args):
                continue
            arguments = ast.Tuple(call.args, ast.Load())
            stmt = ast.Expr(ast.Call(ast.Name("_dry_", ast.Load()), [call.func, arguments], []))
        body.append(stmt)
    entry.body = body
    # no compiled code runs on the garbage values (it does not check bounds): the dry
    # run stops at the first helper whose result is used; a statement may also fail on
    # garbage; what was found so far stands
    guarded = {alias: _Guarded(twins) for alias, twins in _one_thread(module).items()}
    guarded["lib"] = _Guarded(_shim())
    with contextlib.suppress(Exception):
        _function(module, entry, _dry_=dry, **guarded)(*args)
    return found


def _is_dispatcher(value: Any) -> bool:
    return hasattr(value, "overloads") and hasattr(value, "typeof_pyval")


class _Stop(Exception):
    """Ends a dry run (see helper_calls)."""


class _Guarded:
    """A library module as the dry run sees it: its numba functions stop the run when
    called (a bare call of one is recorded before that: see helper_calls)."""

    def __init__(self, namespace: Any) -> None:
        self._namespace = namespace

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._namespace, name)
        return _Stopper(value) if _is_dispatcher(value) else value


class _Stopper:
    def __init__(self, dispatcher: Any) -> None:
        self.dispatcher = dispatcher

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise _Stop


def _library_aliases(module: Any) -> list[str]:
    """The names under which the entry module imports library modules of graphc."""
    return [
        name
        for name, value in vars(module).items()
        if isinstance(value, pytypes.ModuleType)
        and value.__name__.startswith("graphc.")
        and name != "lib"
    ]


@dataclass(frozen=True)
class ProfileRow:
    """Time spent in one kernel or library function during the profiled calls."""

    name: str  # "k3" (a kernel) or the function called
    what: str  # the op(s) it runs
    shape: str  # the shape of what it produces
    calls: int  # over all profiled runs
    total: float  # seconds, over all profiled runs
    share: float  # of the time of the whole calls

    @property
    def mean(self) -> float:
        return self.total / self.calls if self.calls else 0.0


class Profile:
    """What `Function.profile` measured: `rows` (ProfileRow, slowest first), `runs`
    (calls profiled), `seconds` (their total wall time) and `events` (one per timed
    statement: name, what, start and duration in seconds). str() is a table;
    `save_trace(path)` writes a Chrome trace (Perfetto and chrome://tracing open it)."""

    def __init__(
        self, rows: list[ProfileRow], runs: int, seconds: float, events: list[tuple]
    ) -> None:
        self.rows = rows
        self.runs = runs
        self.seconds = seconds
        self.events = events

    def __str__(self) -> str:
        head = (
            f"{self.runs} call(s), {self.seconds / max(self.runs, 1) * 1e3:.3f} ms each "
            "(statements timed one by one, through the Python entry)"
        )
        table = [("name", "op(s)", "shape", "calls", "total ms", "mean us", "share")]
        for r in self.rows:
            table.append(
                (
                    r.name or "(binding)",
                    _clip(r.what, 48),
                    _clip(r.shape, 28),
                    str(r.calls),
                    f"{r.total * 1e3:.3f}",
                    f"{r.mean * 1e6:.1f}",
                    f"{r.share:.1%}",
                )
            )
        widths = [max(len(row[c]) for row in table) for c in range(len(table[0]))]
        out = [head]
        for row in table:
            out.append("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)))
        return "\n".join(out)

    def trace(self) -> dict:
        """The Chrome trace event format: one complete event per timed statement."""
        events = [
            {
                "name": name or "(binding)",
                "cat": "kernel" if name.startswith("k") and name[1:].isdigit() else "library",
                "ph": "X",
                "ts": start * 1e6,
                "dur": duration * 1e6,
                "pid": 1,
                "tid": 1,
                "args": {"op": what, "shape": shape},
            }
            for name, what, shape, start, duration in self.events
        ]
        return {"traceEvents": events, "displayTimeUnit": "ms"}

    def save_trace(self, path: Any) -> None:
        """Write `trace()` as JSON to `path`."""
        import json

        with open(path, "w", encoding="utf-8") as file:
            json.dump(self.trace(), file)


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def _sized(shape: str, sizes: dict[str, int]) -> str:
    """`shape` (result types as the IR prints them) with the run-time sizes filled in."""
    if not sizes:
        return shape
    return re.sub(r"[^\[\],\s]+", lambda m: str(sizes.get(m.group(0), m.group(0))), shape)


def profile(
    run: Callable[[Callable[..., Any]], None],
    generated: Generated,
    runs: int,
    sizes: dict[str, int],
) -> Profile:
    """Profile `runs` calls: `run(entry)` makes one call with the given entry function;
    `sizes` are the run-time sizes of these calls, by name."""
    marks: list[tuple[int, int, int]] = []
    clock = time.perf_counter_ns

    def record(index: int, start: int) -> None:
        marks.append((index, start, clock() - start))

    entry, statements = profiled_entry(generated, clock, record)
    statements = [Statement(s.name, s.what, _sized(s.shape, sizes)) for s in statements]
    run(entry)  # once untimed: library helpers compile for the Python entry's types
    marks.clear()
    began = clock()
    for _ in range(runs):
        run(entry)
    seconds = (clock() - began) / 1e9
    totals: dict[Statement, list[float]] = {}
    for index, _, duration in marks:
        entry_total = totals.setdefault(statements[index], [0, 0.0])
        entry_total[0] += 1
        entry_total[1] += duration / 1e9
    rows = [
        ProfileRow(s.name, s.what, s.shape, int(c), t, t / seconds if seconds else 0.0)
        for s, (c, t) in totals.items()
    ]
    rows.sort(key=lambda r: r.total, reverse=True)
    events = [
        (statements[i].name, statements[i].what, statements[i].shape, (s - began) / 1e9, d / 1e9)
        for i, s, d in marks
    ]
    return Profile(rows, runs, seconds, events)
