"""The emitter registry of the CPU backend: how each op becomes lines of generated source.

Part of graphc.kernels. The code generator (``codegen.py``) walks the kernel program
and, for each node, calls the emitter registered for its op with an ``Emitter``: the
writer of the graph's one generated entry function. An emitter reads the names of
its inputs' arrays and writes Python statements (numba nopython code) that compute
the node's outputs.

Two modes, chosen at registration:

- ``alloc=True`` (the default): before the emitter runs, the generator has bound each
  output to a C-contiguous array of the output's dtype and shape (an arena buffer or a
  fresh array); the emitter fills it completely (``e.out(node, i)`` names it).
- ``alloc=False``: the emitter binds each output itself with ``e.define(node, i, expr)``:
  views (``x.T``, reshapes) and results numba returns as new arrays.

Generated code sees these modules: ``np`` (numpy), ``numba``, ``prange``, ``vm``
(``graphc.kernels.cpu.vmath``) and every module registered with ``library``; emitters
refer to their own numba helpers through the module alias they registered.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

from graphc.ir import Node, Value
from graphc.types import Dim, TensorType


class Emitter(Protocol):
    """What an emitter may ask of the code generator."""

    def arg(self, value: Value) -> str:
        """The expression naming the array that holds `value` (any strides for views)."""

    def out(self, node: Node, index: int = 0) -> str:
        """The preallocated C-contiguous output array of an ``alloc=True`` op."""

    def define(self, node: Node, index: int, expression: str) -> None:
        """Bind output `index` of an ``alloc=False`` op to an array expression."""

    def dim(self, dim: Dim) -> str:
        """A size as an expression: an int literal or the variable holding a run-time size."""

    def shape(self, tensor_type: TensorType) -> str:
        """A shape as a tuple expression, e.g. ``(d0, 784)``."""

    def type_of(self, value: Value) -> TensorType:
        """The IR type of a value."""

    def line(self, statement: str) -> None:
        """Append one statement to the entry function."""

    def temp(self, hint: str = "t") -> str:
        """A fresh local variable name."""


EmitFn = Callable[[Emitter, Node], None]


@dataclass(frozen=True)
class EmitterEntry:
    emit: EmitFn
    alloc: bool


EMITTERS: dict[str, EmitterEntry] = {}
LIBRARIES: dict[str, str] = {}  # alias in generated code -> module path


def emits(*ops: str, alloc: bool = True) -> Callable[[EmitFn], EmitFn]:
    """Register the decorated function as the CPU emitter of `ops`."""

    def register(fn: EmitFn) -> EmitFn:
        for op in ops:
            if op in EMITTERS:
                raise ValueError(f"op {op!r} already has a CPU emitter")
            EMITTERS[op] = EmitterEntry(fn, alloc)
        return fn

    return register


def library(alias: str, module: str) -> None:
    """Make `module` importable as `alias` in generated code."""
    LIBRARIES[alias] = module


def int_tuple(values: Any) -> str:
    """A tuple literal of ints, e.g. ``(1, 2)`` or ``(3,)``."""
    items = [str(int(v)) for v in values]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
