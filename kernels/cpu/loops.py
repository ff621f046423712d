"""Loop kernels: elementwise bodies (one op or a fused chain) over a broadcast iteration
space, optionally ending in a reduction, as numba source.

Part of graphc.kernels. A kernel reads its operands with numpy broadcasting: an
operand axis of size 1 is read at index 0, an axis of the iteration size at the loop
index, and an axis whose size is only known at run time at `index * (size != 1)` (the
entry spans such operands over the loop first, codegen._unit_strides, so that only a
matmul epilogue's operands still come here: gathered loads are slow).
When every operand covers the whole iteration space and is C-contiguous, the loops
collapse into one flat loop. The first loop runs over [lo, hi) so the entry function
can split it across threads. Every value in the body has its exact dtype (see
scalar.py), so the loop's arithmetic is numpy's. Reductions accumulate float32 sums
and products in float64 and combine with `lib.radd` / `lib.rmul`, which lets LLVM
vectorize them (lib.py says how).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc.kernels import rows, scalar
from graphc.kernels.plan import LOOP_REDUCTIONS
from graphc.types import Shape, TensorType

DECORATOR = '@numba.njit(cache=True, nogil=True, error_model="numpy")'
INLINED = '@numba.njit(cache=True, nogil=True, error_model="numpy", inline="always")'


@dataclass(frozen=True)
class LoopSpec:
    """A loop kernel: operands, body steps over the flat value list, what it writes."""

    name: str
    operands: tuple[TensorType, ...]
    contiguous: tuple[bool, ...]
    body: tuple[tuple[str, tuple[int, ...], Any], ...]
    value_types: tuple[TensorType, ...]  # every flat value: operands, then step outputs
    results: tuple[int, ...]
    shape: Shape  # the iteration space; its sizes come in as the tuple `n`
    panel: int | None = None  # an operand holding only rows [lo, hi), read at row i0 - lo
    scalars: frozenset[int] = frozenset()  # operands passed as one scalar, not an array
    # per result, the operand it is written into (the same array, read and written at
    # the same index: the memory plan computed it in place), else None. One array, not
    # two that may overlap: LLVM vectorizes such a loop, where the overlap check it
    # inserts between two parameters fails and sends the loop down its scalar path.
    into: tuple[int | None, ...] = ()
    row: int = 0  # a row group: its reductions run over the last `row` axes (rows.py)

    def target(self, result: int) -> str:
        """The array result `result` is stored into."""
        operand = self.into[result] if self.into else None
        return f"r{result}" if operand is None else f"a{operand}"

    @property
    def reduction(self) -> tuple[str, tuple[int, ...]] | None:
        op, _, attrs = self.body[-1]
        if op not in LOOP_REDUCTIONS or self.row:
            return None
        rank = len(self.shape)
        return op, tuple(sorted(a % rank for a in attrs["axes"]))

    def extent(self, axis: int) -> str:
        return f"n[{axis}]"

    @property
    def flat(self) -> bool:
        """One flat loop: every operand and result spans the iteration space contiguously."""
        if len(self.shape) < 2 or self.panel is not None:
            return False
        arrays = [
            (t, c)
            for i, (t, c) in enumerate(zip(self.operands, self.contiguous, strict=True))
            if i not in self.scalars
        ]
        whole = bool(arrays) and all(t.shape == self.shape and c for t, c in arrays)
        reduction = self.reduction
        return (
            whole and not self.row and (reduction is None or len(reduction[1]) == len(self.shape))
        )


# The first axis runs over [lo, hi), which LLVM cannot tell is not negative: a signed
# index there keeps numba's negative-index wraparound in the loop, and a flat or 1-D
# loop (whose innermost loop that is) then stays scalar; unsigned, it vectorizes (a
# flat `where` over 600k elements: 2.6 -> 0.12 ms).
FIRST = "np.uint64(i0)"


def _axis(k: int) -> str:
    """The index of iteration axis `k`."""
    return FIRST if k == 0 else f"i{k}"


def _index(spec: LoopSpec, operand: int, pre: list[str], flat: bool, axis: Any = None) -> str:
    axis = axis or _axis
    t = spec.operands[operand]
    if flat:
        return f"[{FIRST}]"
    if t.ndim == 0:
        return "[()]"
    rank = len(spec.shape)
    parts = []
    for j, d in enumerate(t.shape):
        k = rank - t.ndim + j
        if operand == spec.panel and k == 0:
            parts.append("i0 - lo")
        elif d == 1:
            parts.append("0")
        elif d == spec.shape[k]:
            parts.append(axis(k))
        else:
            # broadcast or not, as the run-time size says: the stride 0 or 1 and the
            # index are unsigned, so that numba adds no negative-index wraparound and
            # LLVM vectorizes the loop behind a run-time test of the stride (a signed
            # index kept the W1 loop scalar, 4x slower)
            step = f"s{operand}_{j}"
            pre.append(f"{step} = np.uint64(1 if a{operand}.shape[{j}] != 1 else 0)")
            parts.append(f"np.uint64(i{k}) * {step}")
    return "[" + ", ".join(parts) + "]"


def _body_lines(spec: LoopSpec, pre: list[str], flat: bool, steps: int) -> list[str]:
    """Statements computing flat values: loads of the used operands, then each step."""
    used = {a for _, args, _ in spec.body for a in args} | set(spec.results)
    lines = []
    n_operands = len(spec.operands)
    for i in range(n_operands):
        if i in used and i in spec.scalars:
            pre.append(f"x{i} = a{i}")
        elif i in used and spec.operands[i].ndim == 0:
            pre.append(f"x{i} = a{i}.item()")  # loop-invariant
        elif i in used:
            lines.append(f"x{i} = a{i}{_index(spec, i, pre, flat)}")
    position = n_operands
    for op, args, attrs in spec.body[:steps]:
        out_type = spec.value_types[position]
        if op == "constant":
            value = attrs["value"].array.reshape(-1)[0]
            pre.append(f"x{position} = {scalar.literal(value, out_type.dtype)}")
        else:
            expression = scalar.formula(
                op,
                [f"x{a}" for a in args],
                [spec.value_types[a].dtype for a in args],
                out_type.dtype,
                attrs,
            )
            lines.append(f"x{position} = {expression}")
        position += 1
    return lines


def _loops(axes: list[int], spec: LoopSpec, first_from_lo: bool) -> list[str]:
    lines = []
    for depth, k in enumerate(axes):
        bounds = "lo, hi" if (first_from_lo and depth == 0 and k == 0) else spec.extent(k)
        lines.append("    " * depth + f"for i{k} in range({bounds}):")
    return lines


def _indent(lines: list[str], depth: int) -> list[str]:
    return ["    " * depth + line for line in lines]


def elementwise_source(spec: LoopSpec, comment: str) -> str:
    """The kernel `name(a0.., r0.., lo, hi, n)` writing each result over [lo, hi) of the
    first axis (of the flat index in a flat loop); `n` holds the iteration sizes."""
    pre: list[str] = []
    flat = spec.flat
    rank = len(spec.shape)
    body = _body_lines(spec, pre, flat, len(spec.body))
    stores = []
    for r, value in enumerate(spec.results):
        if rank == 0:
            index = "[()]"
        elif flat:
            index = f"[{FIRST}]"
        else:
            index = "[" + ", ".join(_axis(k) for k in range(rank)) + "]"
        stores.append(f"{spec.target(r)}{index} = x{value}")
    lines = []
    if flat:
        pre += _flatten(spec)
        for r in _own_results(spec):
            pre.append(f"r{r} = r{r}.reshape(r{r}.size)")
        lines += ["for i0 in range(lo, hi):", *_indent(body + stores, 1)]
    elif rank == 0:
        lines += body + stores
    else:
        lines += _loops(list(range(rank)), spec, True) + _indent(body + stores, rank)
    return _function(spec, comment, pre, lines)


def _flatten(spec: LoopSpec) -> list[str]:
    """Statements viewing each array operand as 1-d, for a flat loop."""
    arrays = [i for i in range(len(spec.operands)) if i not in spec.scalars]
    return [f"a{i} = a{i}.reshape(a{i}.size)" for i in arrays]


def _own_results(spec: LoopSpec) -> list[int]:
    """The results with an array of their own (not written into an operand)."""
    return [r for r in range(len(spec.results)) if spec.target(r) == f"r{r}"]


def _function(spec: LoopSpec, comment: str, pre: list[str], lines: list[str]) -> str:
    params = [f"a{i}" for i in range(len(spec.operands))]
    params += [f"r{r}" for r in _own_results(spec)]
    head = [DECORATOR, f"def {spec.name}({', '.join([*params, 'lo', 'hi', 'n'])}):"]
    head.append(f"    # {comment}")
    unique_pre = list(dict.fromkeys(pre))  # hoisted statements, each once, in order
    return "\n".join(head + _indent(unique_pre + lines, 1)) + "\n"


def _combine(op: str, acc: str, value: str) -> str:
    return {
        "sum": f"lib.radd({acc}, {value})",
        "prod": f"lib.rmul({acc}, {value})",
        "max": f"lib.maxnan({acc}, {value})",
        "min": f"lib.minnan({acc}, {value})",
    }[op]


def _tracks_nan(op: str, dtype: np.dtype) -> bool:
    """Whether a scalar accumulator for `op` keeps its NaN flag apart: a float max or min
    accumulates with ``lib.rmax``/``rmin`` (which vectorize but need not propagate NaN)
    and ORs ``x != x`` into ``nan``, a reduction that vectorizes too."""
    return op in ("max", "min") and dtype.kind == "f"


def _accumulate(op: str, dtype: np.dtype, value: str) -> list[str]:
    """Statements folding `value` into the scalar accumulator `acc`."""
    if _tracks_nan(op, dtype):
        return [f"xa = {value}", f"acc = lib.r{op}(acc, xa)", "nan |= xa != xa"]
    return [f"acc = {_combine(op, 'acc', value)}"]


def _start(op: str, dtype: np.dtype) -> list[str]:
    return [f"acc = {scalar.identity(op, dtype)}"] + (
        ["nan = False"] if _tracks_nan(op, dtype) else []
    )


def _total(op: str, dtype: np.dtype) -> str:
    """The accumulated value: NaN where a NaN was seen (numpy's max and min)."""
    if _tracks_nan(op, dtype):
        return f"({scalar.literal(np.nan, dtype)} if nan else acc)"
    return "acc"


def reduction_source(spec: LoopSpec, comment: str) -> str:
    """The kernel writing r0 (the kept axes) = reduction of the body over its axes.

    Loops run in the iteration space's order; the trailing run of reduced axes
    accumulates into a scalar, every other reduced axis into r0 itself."""
    op, axes = spec.reduction  # type: ignore[misc]
    rank = len(spec.shape)
    flat = spec.flat
    out_dtype = spec.value_types[-1].dtype
    acc_dtype = (
        np.dtype(np.float64) if op in ("sum", "prod") and out_dtype.kind == "f" else out_dtype
    )
    pre: list[str] = []
    body = _body_lines(spec, pre, flat, len(spec.body) - 1)
    (_, (source,), _) = spec.body[-1]
    value = f"{scalar.ctor(acc_dtype)}(x{source})"
    if flat:
        pre += _flatten(spec)
        first = min(i for i in range(len(spec.operands)) if i not in spec.scalars)
        lines = [*_start(op, acc_dtype), f"for i0 in range(a{first}.size):"]
        lines += _indent([*body, *_accumulate(op, acc_dtype, value)], 1)
        lines.append(f"r0[()] = {scalar.ctor(out_dtype)}({_total(op, acc_dtype)})")
        return _function(spec, comment, pre, lines)
    suffix = rank
    while suffix > 0 and suffix - 1 in axes:
        suffix -= 1
    kept = [k for k in range(rank) if k not in axes]
    target = "r0[" + (", ".join(_axis(k) for k in kept) if kept else "()") + "]"
    prefix_reduces = any(k < suffix for k in axes)
    lines = []
    if prefix_reduces:
        window = "r0[lo:hi]" if kept and kept[0] == 0 else "r0"
        lines.append(f"{window}.fill({scalar.identity(op, out_dtype)})")
    loops = _loops(list(range(suffix)), spec, True)
    inner = []
    if suffix < rank:
        inner += _start(op, acc_dtype)
        inner += _loops(list(range(suffix, rank)), spec, False)
        inner += _indent([*body, *_accumulate(op, acc_dtype, value)], rank - suffix)
        total = _total(op, acc_dtype)
        merged = (
            _combine(op, f"{scalar.ctor(acc_dtype)}({target})", total) if prefix_reduces else total
        )
        inner.append(f"{target} = {scalar.ctor(out_dtype)}({merged})")
    elif not axes:  # a reduction over no axes copies its operand
        inner += [*body, f"{target} = {scalar.ctor(out_dtype)}(x{source})"]
    else:
        inner += body
        inner.append(f"{target} = {scalar.ctor(out_dtype)}({_combine(op, target, f'x{source}')})")
    lines += loops + _indent(inner, suffix)
    return _function(spec, comment, pre, lines)


def row_source(spec: LoopSpec, comment: str) -> str:
    """The kernel `name(a0.., r0.., lo, hi, n)` running rows [lo, hi) of the first axis of
    a row group (rows.py), each row through its loops while it is in cache. A vector
    that a later loop reads again and that is costly to compute again is kept in a
    scratch row, one per kernel call."""
    rank, k = len(spec.shape), spec.row
    lead = rank - k
    plan = rows.plan_rows(
        spec.operands, spec.body, spec.value_types, spec.results, spec.shape, k, True
    )
    pre: list[str] = []

    def axis(k: int) -> str:  # (unsigned: the blocked loop's index is not known >= 0)
        return f"np.uint64(i{k})" if k >= lead else _axis(k)

    point = [axis(a) for a in range(rank)]
    row_sizes = [spec.extent(a) for a in range(lead, rank)]

    def load(i: int) -> str:
        if i in spec.scalars:
            return f"a{i}"
        if spec.operands[i].ndim == 0:
            return f"a{i}.item()"  # (as _body_lines reads it: the inliner's form)
        return f"a{i}{_index(spec, i, pre, False, axis)}"

    def store(r: int, vector: bool) -> str:
        index = point if vector else point[:lead] + ["0"] * k
        return f"r{r}[{', '.join(index)}]"

    def scratch(v: int) -> str:
        dtype = scalar.ctor(spec.value_types[v].dtype)
        pre.append(f"s{v} = np.empty(({', '.join(row_sizes)},), {dtype})")
        return f"s{v}[{', '.join(point[lead:])}]"

    target = rows.RowTarget(
        load=load,
        index=lambda axis: f"i{axis}",
        extent=spec.extent,
        store=store,
        scratch=scratch,
        target=scalar.CPU,
        combine=lambda op, acc, value, dtype: _combine(op, acc, value),
        nan_blind=True,
        block=True,
    )
    row = rows.row_statements(
        plan, spec.operands, spec.body, spec.value_types, spec.shape, k, target
    )
    lines = _loops(list(range(lead)), spec, True) + _indent(row, lead)
    return _function(spec, comment, pre, lines)
