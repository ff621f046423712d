"""Row kernels: a fused "row" group (a softmax, a layer norm, a log-softmax, their
gradients) as the statements that compute one row, for both backends.

Part of graphc.kernels. A row group iterates over `shape`, whose last `k` axes are a
row. Each value of its flat list (operands, then body steps) is a *vector* (it runs
along the row) or a *row scalar* (one value per row: a reduction over the row, a
step over reductions, an operand of size 1 along the row). The statements of a row
are a few passes over it, *loops*:

- A reduction accumulates in the loop that computes its source; its value exists
  after that loop, so every vector step reading it runs in a later loop. A vector
  step runs in the first loop where all its arguments exist (`RowPlan.phase`).
- Row scalars are plain variables, computed between the loops as soon as their
  arguments exist.
- A vector that a later loop reads again is read back from where it was stored: its
  output array if it is a result, else (where the target allows scratch rows and its
  recomputation would call something costlier than arithmetic: exp, log, a division)
  a scratch row written in its own loop; otherwise it is computed again.

Sums and products of floats accumulate in float64; float32 ones add BLOCK values in
float32 first (numpy's float32 sums are pairwise: this keeps a row's sum as accurate).
Max and min propagate NaN as numpy does. The backends differ only in what `RowTarget`
says: how an operand is read, how loops, reductions and stores are spelled, and
whether scratch rows exist.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from graphc.kernels import scalar, text
from graphc.types import Shape, TensorType

REDUCTIONS = ("sum", "prod", "max", "min")
# ops as cheap to compute again as a row is to store and load: a value whose
# recomputation needs nothing else is never kept in a scratch row
CHEAP = frozenset(
    {"add", "sub", "mul", "neg", "where", "maximum", "minimum", "stop_gradient", "cast",
     "full_like", "zeros_like", "ones_like", "equal", "not_equal", "less", "less_equal",
     "greater", "greater_equal", "logical_and", "logical_or", "logical_not", "abs"}
)  # fmt: skip


def role(t: TensorType, shape: Shape, k: int) -> str:
    """ "vector" when `t` (broadcast into `shape`, aligned right) varies along the row
    axes (the last `k`), else "scalar"."""
    rank = len(shape)
    row_dims = [d for j, d in enumerate(t.shape) if rank - t.ndim + j >= rank - k]
    return "vector" if any(d != 1 for d in row_dims) else "scalar"


@dataclass(frozen=True)
class RowPlan:
    """Where each flat value of a row group is computed: `roles[v]` ("vector" or
    "scalar"), `phase[v]` (a vector's loop; a row scalar's first loop that may read
    it, 0 for operands), the loop count, which vectors later loops read back from a
    scratch row (`scratch`), and the results' positions by value (`stored`)."""

    roles: tuple[str, ...]
    phase: tuple[int, ...]
    loops: int
    scratch: frozenset[int]
    stored: dict[int, int]


def plan_rows(
    operands: tuple[TensorType, ...],
    body: tuple[tuple[str, tuple[int, ...], object], ...],
    value_types: tuple[TensorType, ...],
    results: tuple[int, ...],
    shape: Shape,
    k: int,
    scratch_rows: bool,
) -> RowPlan:
    """The RowPlan of a row group (see the module docstring)."""
    n = len(operands)
    roles = [role(t, shape, k) for t in value_types]
    phase = [0] * len(value_types)
    loops = 1
    for position, (op, args, _) in enumerate(body, start=n):
        first = max((phase[a] for a in args), default=0)
        if op in REDUCTIONS:
            roles[position] = "scalar"
            phase[position] = phase[args[0]] + 1  # accumulated in loop phase[args[0]]
            loops = max(loops, phase[args[0]] + 1)
        else:
            phase[position] = first
            if roles[position] == "vector":
                loops = max(loops, first + 1)
    stored = {value: r for r, value in enumerate(results)}
    read_later = {
        a
        for position, (op, args, _) in enumerate(body, start=n)
        for a in args
        if roles[a] == "vector" and a >= n and phase[a] < phase[position] - (op in REDUCTIONS)
    }
    scratch = frozenset(
        v
        for v in read_later
        if scratch_rows and v not in stored and _costly(v, n, body, roles, stored)
    )
    return RowPlan(tuple(roles), tuple(phase), loops, scratch, stored)


def _costly(v: int, n: int, body: tuple, roles: list[str], stored: dict[int, int]) -> bool:
    """Whether computing vector `v` again needs an op outside CHEAP."""
    stack, seen = [v], set()
    while stack:
        u = stack.pop()
        if u < n or u in seen or roles[u] != "vector":
            continue
        seen.add(u)
        op, args, _ = body[u - n]
        if op not in CHEAP:
            return True
        stack.extend(a for a in args if a not in stored)
    return False


@dataclass(frozen=True)
class RowTarget:
    """How one backend spells a row kernel's statements.

    load(i)             the expression reading operand i at the current point
    index(axis)         the name of the index along `axis`
    extent(axis)        the size of `axis`, as an expression
    store(r, vector)    the target of result r at the current point (a row scalar's
                        at the row's first element)
    scratch(v)          the scratch row of value v at the current point
    target              the formula target (scalar.CPU, scalar.CUDA)
    combine(op, a, b, dtype)    a reduction step (sum, prod: may reassociate)
    nan_blind           max and min accumulate NaN-blind with a separate NaN flag
                        (lib.rmax: vectorizes) instead of a NaN-propagating step
    block               float32 sums of a one-axis row add BLOCK values in float32,
                        then that partial sum in float64 (see BLOCK)
    """

    load: Callable[[int], str]
    index: Callable[[int], str]
    extent: Callable[[int], str]
    store: Callable[[int, bool], str]
    scratch: Callable[[int], str]
    target: scalar.Target
    combine: Callable[[str, str, str, np.dtype], str]
    nan_blind: bool
    block: bool = False


# A float32 sum accumulated in float64 value by value made LLVM vectorize the whole
# loop at the width of a float64 vector, exp included: a softmax's exp-and-sum loop ran
# at half speed (4.4 ms per 4M values, 2.0 ms blocked). BLOCK values are added in
# float32 (numpy's pairwise sum adds its blocks of 128 the same way, in 8 lanes), and
# the blocks' sums in float64.
BLOCK = 128


def _accumulator(op: str, out: np.dtype) -> np.dtype:
    return np.dtype(np.float64) if op in ("sum", "prod") and out.kind == "f" else out


def row_statements(
    plan: RowPlan,
    operands: tuple[TensorType, ...],
    body: tuple[tuple[str, tuple[int, ...], object], ...],
    value_types: tuple[TensorType, ...],
    shape: Shape,
    k: int,
    t: RowTarget,
) -> list[str]:
    """The statements computing one row (the leading indices are bound already)."""
    n = len(operands)
    lines: list[str] = []
    done: set[int] = set()  # row scalars computed so far

    for q in range(plan.loops):
        lines += _scalars(plan, q, done, n, body, value_types, t)
        reductions = [
            p for p, (op, args, _) in enumerate(body, start=n)
            if op in REDUCTIONS and plan.phase[args[0]] == q
        ]  # fmt: skip
        computed = [
            v for v in range(n, len(value_types))
            if plan.roles[v] == "vector" and plan.phase[v] == q
        ]  # fmt: skip
        wanted = set(computed) | {body[p - n][1][0] for p in reductions}
        inner = _vector_lines(plan, q, sorted(wanted), n, body, value_types, t)
        blocked = (
            t.block and k == 1 and any(_split_sum(body[p - n], value_types, p) for p in reductions)
        )
        starts, partial, closing = _accumulate(reductions, n, body, value_types, t, blocked, inner)
        for v in computed:
            if v in plan.scratch:
                inner.append(f"{t.scratch(v)} = x{v}")
            if v in plan.stored:
                inner.append(f"{t.store(plan.stored[v], True)} = x{v}")
        lines += starts + _loop(q, inner, partial, closing, blocked, len(shape), k, t)
        for p in reductions:
            lines.append(f"x{p} = {_total(body[p - n][0], value_types[p].dtype, p, t)}")
            done.add(p)
            if p in plan.stored:
                lines.append(f"{t.store(plan.stored[p], False)} = x{p}")
    lines += _scalars(plan, plan.loops, done, n, body, value_types, t)
    return lines


def _scalars(
    plan: RowPlan,
    level: int,
    done: set[int],
    n: int,
    body: tuple,
    value_types: tuple[TensorType, ...],
    t: RowTarget,
) -> list[str]:
    """Statements computing (and storing, if results) the row scalars not yet in `done`
    that loop `level` may read: operands, and steps over earlier reductions."""
    lines = []
    for v in range(len(value_types)):
        if plan.roles[v] != "scalar" or v in done or plan.phase[v] > level:
            continue
        if v < n:
            lines.append(f"x{v} = {t.load(v)}")
        elif body[v - n][0] not in REDUCTIONS:
            lines.append(f"x{v} = {_formula(v, n, body, value_types, t)}")
        else:
            continue
        done.add(v)
        if v in plan.stored:
            lines.append(f"{t.store(plan.stored[v], False)} = x{v}")
    return lines


def _loop(
    q: int,
    inner: list[str],
    partial: list[str],
    closing: list[str],
    blocked: bool,
    rank: int,
    k: int,
    t: RowTarget,
) -> list[str]:
    """Loop q over the row: nested loops over the row axes, or (blocked) blocks of
    BLOCK values along the one row axis, each block's partial sums added at its end."""
    if not blocked:
        headers = [
            "    " * depth + f"for {t.index(axis)} in range({t.extent(axis)}):"
            for depth, axis in enumerate(range(rank - k, rank))
        ]
        return headers + text.indent(inner, k)
    i, size = t.index(rank - 1), t.extent(rank - 1)
    lines = [f"for b{q} in range(0, {size}, {BLOCK}):", *text.indent(partial)]
    lines.append(f"    for {i} in range(b{q}, min(b{q} + {BLOCK}, {size})):")
    return lines + text.indent(inner, 2) + text.indent(closing)


def _accumulate(
    reductions: list[int],
    n: int,
    body: tuple,
    value_types: tuple[TensorType, ...],
    t: RowTarget,
    blocked: bool,
    inner: list[str],
) -> tuple[list[str], list[str], list[str]]:
    """Each reduction's accumulating statement, added to the loop body `inner`; the
    statements starting the accumulators before the loop, and (blocked) starting each
    block's partial sums and adding them at the block's end."""
    starts: list[str] = []
    partial: list[str] = []
    closing: list[str] = []
    for p in reductions:
        op, (source,), _ = body[p - n]
        acc = _accumulator(op, value_types[p].dtype)
        value = f"{scalar.ctor(acc)}(x{source})"
        starts.append(f"acc{p} = {scalar.identity(op, acc)}")
        if blocked and _split_sum(body[p - n], value_types, p):
            narrow = value_types[source].dtype
            partial.append(f"part{p} = {scalar.identity(op, narrow)}")
            inner.append(f"part{p} = {t.combine(op, f'part{p}', f'x{source}', narrow)}")
            wide = f"{scalar.ctor(acc)}(part{p})"
            closing.append(f"acc{p} = {t.combine(op, f'acc{p}', wide, acc)}")
        elif t.nan_blind and op in ("max", "min") and acc.kind == "f":
            starts.append(f"nan{p} = False")
            inner += [f"xa{p} = {value}", f"acc{p} = lib.r{op}(acc{p}, xa{p})",
                      f"nan{p} |= xa{p} != xa{p}"]  # fmt: skip
        else:
            inner.append(f"acc{p} = {t.combine(op, f'acc{p}', value, acc)}")
    return starts, partial, closing


def _total(op: str, out: np.dtype, p: int, t: RowTarget) -> str:
    """Reduction p's value once its loop is done: NaN where a NaN-blind max saw one."""
    acc = _accumulator(op, out)
    total = f"acc{p}"
    if t.nan_blind and op in ("max", "min") and acc.kind == "f":
        total = f"({scalar.literal(np.nan, acc)} if nan{p} else acc{p})"
    return f"{scalar.ctor(out)}({total})"


def _split_sum(step: tuple, value_types: tuple[TensorType, ...], p: int) -> bool:
    """Whether reduction `step` (value p) is a float32 sum or product kept in float64."""
    op, (source,), _ = step
    wide = _accumulator(op, value_types[p].dtype) != value_types[p].dtype
    return wide and value_types[source].dtype == np.float32


def _vector_lines(
    plan: RowPlan,
    q: int,
    wanted: list[int],
    n: int,
    body: tuple,
    value_types: tuple[TensorType, ...],
    t: RowTarget,
) -> list[str]:
    """Statements giving every vector in `wanted` its value at the current point of
    loop q, with the vectors they read: loaded, computed, or read back (a result or a
    scratch row from an earlier loop)."""
    needed: set[int] = set()
    stack = list(wanted)
    while stack:
        v = stack.pop()
        if v in needed or plan.roles[v] != "vector":
            continue
        needed.add(v)
        if v >= n and not (plan.phase[v] < q and (v in plan.stored or v in plan.scratch)):
            stack.extend(body[v - n][1])
    lines = []
    for v in sorted(needed):
        if v < n:
            lines.append(f"x{v} = {t.load(v)}")
        elif plan.phase[v] < q and v in plan.stored:
            lines.append(f"x{v} = {t.store(plan.stored[v], True)}")
        elif plan.phase[v] < q and v in plan.scratch:
            lines.append(f"x{v} = {t.scratch(v)}")
        else:
            lines.append(f"x{v} = {_formula(v, n, body, value_types, t)}")
    return lines


def _formula(v: int, n: int, body: tuple, value_types: tuple[TensorType, ...], t: RowTarget) -> str:
    op, args, attrs = body[v - n]
    if op == "constant":
        return scalar.literal(attrs["value"].array.reshape(-1)[0], value_types[v].dtype)
    return scalar.formula(
        op,
        [f"x{a}" for a in args],
        [value_types[a].dtype for a in args],
        value_types[v].dtype,
        attrs,
        t.target,
    )
