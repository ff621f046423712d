"""Feeds: a call's arguments checked against a graph's signature before anything runs.

Part of graphc.runtime. `TensorSpec` is one input or output of a Function; a
`FeedChecker` collects a call's positional and keyword arguments, converts each to its
input's dtype (numpy's same_kind rule), binds every run-time size and checks that the
graph's sizes and updates agree, raising InputError before any kernel runs. Every
executable owns one (base.py): the compiled ones call it on their slow path, the
reference one on every call, and the Function collects keyword arguments with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from graphc import interpret
from graphc.errors import InputError
from graphc.ir import Graph
from graphc.state import VariableState
from graphc.types import Sym, TensorType, format_shape

_MISSING = object()  # an input slot no argument has filled yet


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of a Function: its name, dtype and shape (None: known at run time)."""

    name: str
    dtype: np.dtype
    shape: tuple[int | None, ...]

    @staticmethod
    def of(name: str, tensor_type: TensorType) -> TensorSpec:
        shape = tuple(None if isinstance(d, Sym) else d for d in tensor_type.shape)
        return TensorSpec(name, tensor_type.dtype, shape)

    def __str__(self) -> str:
        dims = ["?" if d is None else d for d in self.shape]
        return f"{self.name}: {self.dtype.name}{format_shape(dims)}"  # type: ignore[arg-type]


class FeedChecker:
    """Checks a call's feeds against a graph's signature before anything runs.

    Held by the executable, never by reference to the Function: a dropped Function is
    freed at once, with its executable and arenas.
    """

    def __init__(
        self,
        graph: Graph,
        inputs: tuple[TensorSpec, ...],
        states: Mapping[int, VariableState],
        device: str,
    ) -> None:
        self.graph = graph
        self.inputs = inputs
        self.device = device
        self._states = dict(states)
        self._input_types = tuple(graph.type_of(v) for v in graph.inputs)
        self._input_index = {spec.name: i for i, spec in enumerate(inputs)}

    def collect(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> list[Any]:
        """The feeds in input order, from positional and keyword arguments."""
        if len(args) > len(self.inputs):
            raise InputError(f"takes {len(self.inputs)} inputs, got {len(args)} positional")
        given: list[Any] = list(args) + [_MISSING] * (len(self.inputs) - len(args))
        for name, value in kwargs.items():
            index = self._input_index.get(name)
            if index is None:
                expected = ", ".join(repr(s.name) for s in self.inputs) or "none"
                raise InputError(f"unknown input {name!r}; the inputs are {expected}")
            if given[index] is not _MISSING:
                raise InputError(f"input {name!r} is given twice")
            given[index] = value
        missing = [s.name for s, v in zip(self.inputs, given, strict=True) if v is _MISSING]
        if missing:
            raise InputError(f"missing input(s) {missing}")
        return given

    def _convert(self, spec: TensorSpec, value: Any) -> np.ndarray:
        if self.device == "cuda":
            from graphc.runtime.cuda import device_feed, is_device_array

            if is_device_array(value):
                return device_feed(value, spec.name, spec.dtype)
        try:
            array = np.asarray(value)
        except (ValueError, TypeError) as error:
            raise InputError(f"input {spec.name!r}: cannot convert to an array: {error}") from None
        if array.dtype == spec.dtype:
            return array
        if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, spec.dtype, "same_kind"):
            raise InputError(
                f"input {spec.name!r} is {spec.dtype.name}; cannot cast "
                f"{array.dtype.name} to it (numpy same_kind casting)"
            )
        return array.astype(spec.dtype)

    def validate(
        self, args: tuple[Any, ...], kwargs: dict[str, Any], bindings: dict[Sym, int] | None = None
    ) -> tuple[dict[int, np.ndarray], interpret.ConcreteTypes]:
        """Every feed of this call, by placeholder node id, and every node's concrete
        types; raises InputError before anything is computed. Fills `bindings` with
        every run-time size."""
        given = self.collect(args, kwargs)
        bindings = {} if bindings is None else bindings
        sources: dict[int, np.ndarray] = {}
        for spec, value, ref, declared in zip(
            self.inputs, given, self.graph.inputs, self._input_types, strict=True
        ):
            array = self._convert(spec, value)
            interpret.bind_dims(
                declared, TensorType(array.dtype, array.shape), bindings, f"input {spec.name!r}"
            )
            sources[ref.node] = array
        source_types = {i: TensorType(a.dtype, a.shape) for i, a in sources.items()}
        for node_id in self._states:
            # (a variable's type is fixed: its state is read only when the call runs)
            source_types[node_id] = self.graph.node(node_id).types[0]
        types = interpret.concrete_types(self.graph, source_types, bindings)
        for variable_id, value in self.graph.updates:
            new_type = types[value.node][value.index]
            if new_type != source_types[variable_id]:
                raise InputError(
                    f"the update of variable {self._states[variable_id].name!r} "
                    f"({source_types[variable_id]}) computes {new_type}"
                )
        return sources, types

    def checked_feeds(self, feeds: tuple[Any, ...]) -> tuple[list[np.ndarray], dict[Sym, int]]:
        """An executable's slow path: full validation, converted feeds, every size."""
        bindings: dict[Sym, int] = {}
        sources, _ = self.validate(feeds, {}, bindings)
        return [sources[v.node] for v in self.graph.inputs], bindings
