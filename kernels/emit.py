"""The emitter registry: how each op becomes generated source, on each target.

Part of graphc.kernels. One table, keyed by (target, op). A code generator walks the
kernel program (plan.py) and, for each step, calls the emitter registered for its
target and op with its writer (writer.py; the target's writer adds what only that
target has: kernel modules and threads on the CPU, launches on CUDA). An emitter reads
the names of its inputs' arrays and writes statements that compute the node's outputs.

Two modes, chosen at registration:

- ``alloc=True`` (the default): before the emitter runs, the writer has bound each
  output to a C-contiguous array of the output's dtype and shape (an arena buffer or a
  fresh array); the emitter fills it completely (``w.out(node, i)`` names it).
- ``alloc=False``: the emitter binds each output itself with ``w.define(node, i, expr)``:
  views (``x.T``, reshapes) and results returned as new arrays.

A target's emitters live in its own package and register on import: `load(target)`
imports them. tests/kernels/test_completeness.py checks that every op of the registry
has an emitter on every target (CONTRIBUTING.md: adding an op).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# target -> the modules whose import registers all of its emitters
TARGETS: dict[str, tuple[str, ...]] = {
    "cpu": ("graphc.kernels.cpu.ops",),
    "cuda": ("graphc.kernels.cuda.ops", "graphc.kernels.cuda.nn"),
}

EmitFn = Callable[[Any, Any], None]  # (the target's writer, the node)


@dataclass(frozen=True)
class EmitterEntry:
    emit: EmitFn
    alloc: bool


EMITTERS: dict[tuple[str, str], EmitterEntry] = {}


def emits(target: str, *ops: str, alloc: bool = True) -> Callable[[EmitFn], EmitFn]:
    """Register the decorated function as the emitter of `ops` on `target`."""
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; targets are {sorted(TARGETS)}")

    def register(fn: EmitFn) -> EmitFn:
        for op in ops:
            if (target, op) in EMITTERS:
                raise ValueError(f"op {op!r} already has a {target} emitter")
            EMITTERS[target, op] = EmitterEntry(fn, alloc)
        return fn

    return register


def load(target: str) -> None:
    """Import every module that registers an emitter of `target`."""
    for module in TARGETS[target]:
        importlib.import_module(module)


def emitter(target: str, op: str) -> EmitterEntry:
    """The emitter of `op` on `target` (its modules loaded)."""
    load(target)
    entry = EMITTERS.get((target, op))
    if entry is None:
        raise NotImplementedError(f"the {target} backend has no emitter for op {op!r}")
    return entry


def ops(target: str) -> frozenset[str]:
    """The ops `target` has an emitter for."""
    load(target)
    return frozenset(op for t, op in EMITTERS if t == target)
