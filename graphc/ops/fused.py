"""The `fused` op: a group of ops run as one kernel, holding its sub-graph.

Part of the IR core. The fuse pass makes these nodes; lowering turns each into one
kernel. The sub-graph is an attribute, `body`: a tuple of steps (op, args, attrs)
over a flat list of values that starts with the fused node's inputs and grows by
each step's outputs; `args` and `results` index that list. `kind` says what the
kernel is: "elementwise" (a broadcast loop), "reduction" (an elementwise
prologue feeding a reduction), "matmul" (a matmul and its elementwise
epilogue) or "row" (elementwise steps and reductions over trailing axes that
keep them, run a row at a time: a softmax, a layer norm). Its type rule and
numpy reference evaluate the body step by step, so passes are testable without
compiling anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc.errors import ArgumentError, DTypeError, ShapeError, UnsupportedError
from graphc.registry import Attrs, AttrSpec, OpDef, lookup, register
from graphc.types import TensorType

KINDS = ("elementwise", "reduction", "matmul", "row")
Step = tuple[str, tuple[int, ...], Attrs]


def _values_after(inputs: tuple[Any, ...], body: tuple[Step, ...], evaluate: Any) -> list[Any]:
    """The flat value list: the inputs, then every step's outputs in order."""
    values = list(inputs)
    for op, args, attrs in body:
        if any(not 0 <= a < len(values) for a in args):
            raise ArgumentError(f"fused step {op} reads a value not yet defined: {args}")
        try:
            result = evaluate(lookup(op), [values[a] for a in args], attrs)
        except (ShapeError, DTypeError) as error:
            # name the fused member that failed: the user wrote that op, not "fused"
            raise type(error)(f"{op} (fused): {error}") from None
        values.extend(result if isinstance(result, tuple) else (result,))
    return values


def _pick(values: list[Any], results: tuple[int, ...]) -> tuple[Any, ...]:
    if not results or any(not 0 <= r < len(values) for r in results):
        raise ArgumentError(f"fused results {results} are not values of the body")
    return tuple(values[r] for r in results)


def body_types(types: tuple[TensorType, ...], body: tuple[Step, ...]) -> list[TensorType]:
    """The type of every value of the flat list: `types` (the inputs'), then each step's."""
    return _values_after(
        types, body, lambda opdef, args, attrs: opdef.infer(*args, **opdef.check_attrs(attrs))
    )


def _infer_fused(
    *types: TensorType, body: tuple[Step, ...], results: tuple[int, ...], kind: str
) -> tuple[TensorType, ...]:
    if kind not in KINDS:
        raise ArgumentError(f"fused kind must be one of {KINDS}, got {kind!r}")
    return _pick(body_types(types, body), results)


def _fused(
    *arrays: np.ndarray, body: tuple[Step, ...], results: tuple[int, ...], kind: str
) -> tuple[np.ndarray, ...]:
    values = _values_after(arrays, body, lambda opdef, args, attrs: opdef.reference(*args, **attrs))
    return tuple(np.asarray(v) for v in _pick(values, results))


def _no_gradient(*args: Any, **attrs: Any) -> list[Any]:
    raise UnsupportedError("fused nodes exist only in optimized graphs: differentiate first")


register(
    OpDef(
        "fused",
        _infer_fused,
        _fused,
        arity=None,
        attrs={"body": AttrSpec("body"), "results": AttrSpec("ints"), "kind": AttrSpec("str")},
        traits=frozenset({"pure", "fused", "multiple_outputs"}),
        grad=_no_gradient,
        doc="a group of ops fused into one kernel; evaluates its body step by step",
    )
)
