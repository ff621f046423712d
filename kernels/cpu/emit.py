"""What the CPU backend's emitters see: the `Emitter` protocol, the libraries generated
code imports, and `emits`, which registers a CPU emitter in the one registry of every
target (graphc/kernels/emit.py, which also says what alloc=True and alloc=False mean).

Part of graphc.kernels. Generated code sees these modules: ``np`` (numpy), ``numba``,
``prange``, ``lib`` (graphc.kernels.cpu.lib), ``vm`` (graphc.kernels.cpu.vmath) and
every module registered with ``library``; emitters refer to their own numba helpers
through the module alias they registered.
"""

from __future__ import annotations

import functools
from typing import Any, Protocol

from graphc.ir import Node, Value
from graphc.kernels import emit as registry
from graphc.types import Dim, TensorType


class Emitter(Protocol):
    """What an emitter may ask of the code generator."""

    threads: bool  # whether the entry may run library helpers on every thread (prange)

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


# the CPU backend's emitters, in the registry of every target (graphc/kernels/emit.py)
emits = functools.partial(registry.emits, "cpu")
LIBRARIES: dict[str, str] = {}  # alias in generated code -> module path


def library(alias: str, module: str) -> None:
    """Make `module` importable as `alias` in generated code."""
    LIBRARIES[alias] = module


def int_tuple(values: Any) -> str:
    """A tuple literal of ints, e.g. ``(1, 2)`` or ``(3,)``."""
    items = [str(int(v)) for v in values]
    return "(" + ", ".join(items) + ("," if len(items) == 1 else "") + ")"
