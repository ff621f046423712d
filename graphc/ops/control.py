"""Control flow: `cond`, `scan` and `while_loop`, whose bodies are sub-graphs.

Part of the IR core. A body is a `Graph` held as an attribute (kind "graph"). Its
inputs are placeholders and it has no variables or updates: everything a body reads
from outside is an explicit operand of the node (the front end, graphc/api/control.py,
turns the values a body captures into operands when it builds the node). So passes,
autodiff, the file format and the backends never look up an outer name.

Operand and result layouts (n_carry, n_xs and the bodies' signatures say where each
part ends):

    cond        (pred, *operands)              -> the branch's results
                both bodies: (*operands) -> results of equal types
    scan        (*carry, *xs, *captures)       -> (*final carry, *ys stacked on axis 0)
                body: (*carry, *x slices, *captures) -> (*new carry, *y)
    while_loop  (*carry, *captures)            -> final carry
                cond_body: (*carry, *captures) -> bool scalar
                body:      (*carry, *captures) -> new carry

The type rules type the bodies again on the operands' types (symbolic at build time,
concrete in a run), so a carry whose shape would change from step to step is refused
when the node is built, or when a call binds the sizes (both branches of a cond must
type on a call's sizes, though only the one taken runs). The references run the bodies
with the interpreter; the gradient rules build their graphs with the front end's
control-flow helpers (`api.control`, see graphc.autodiff.RuleAPI).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.errors import DTypeError, InputError, ShapeError
from graphc.ir import Graph
from graphc.registry import AttrSpec, OpDef, attr_kind, register
from graphc.types import Dim, TensorType

attr_kind("graph", lambda v: isinstance(v, Graph))

CONTROL_OPS = ("cond", "scan", "while_loop")


def bodies(attrs: Any) -> list[Graph]:
    """The sub-graphs among a node's attributes."""
    return [v for v in attrs.values() if isinstance(v, Graph)]


def placeholder_attrs(name: str, t: TensorType) -> dict[str, Any]:
    """The attributes of a body's placeholder `name` of type `t` (a run-time size keeps
    its name, so the body's size is the same as the operand's)."""
    shape = tuple(d if isinstance(d, int) else d.name for d in t.shape)
    return {"name": name, "dtype": t.dtype.name, "shape": shape}


def _retype(body: Graph, types: Sequence[TensorType], what: str) -> tuple[TensorType, ...]:
    """The types of `body`'s outputs when its inputs have `types`."""
    from graphc.interpret import concrete_types  # (the interpreter imports the ops)

    if len(types) != len(body.inputs):
        raise ShapeError(f"{what} takes {len(body.inputs)} inputs, got {len(types)}")
    for index, (v, t) in enumerate(zip(body.inputs, types, strict=True)):
        if body.type_of(v).dtype != t.dtype:
            raise DTypeError(
                f"{what}: input {index} is {t.dtype.name}, the body was built for {body.type_of(v)}"
            )
    sources = {v.node: t for v, t in zip(body.inputs, types, strict=True)}
    try:
        inferred = concrete_types(body, sources)
    except InputError as error:
        raise ShapeError(f"{what}: {error}") from None
    return tuple(inferred[v.node][v.index] for v in body.outputs)


def _same(kind: str, got: Sequence[TensorType], expected: Sequence[TensorType]) -> None:
    """Raise DTypeError/ShapeError naming both sides where `got` differs from `expected`."""
    if len(got) != len(expected):
        raise ShapeError(f"{kind}: {len(got)} values against {len(expected)}")
    for index, (a, b) in enumerate(zip(got, expected, strict=True)):
        if a.dtype != b.dtype:
            raise DTypeError(f"{kind}: value {index} is {a}, the other is {b}")
        if a.shape != b.shape:
            raise ShapeError(f"{kind}: value {index} is {a}, the other is {b}")


# --- cond ----------------------------------------------------------------------------


def _infer_cond(
    pred: TensorType, *operands: TensorType, true_body: Graph, false_body: Graph
) -> tuple[TensorType, ...]:
    if pred.dtype != np.bool_:
        raise DTypeError(f"pred must be a bool scalar, got {pred}")
    if pred.shape != ():
        raise ShapeError(f"pred must be a bool scalar (0-d), got {pred}")
    taken = _retype(true_body, operands, "true_fn")
    other = _retype(false_body, operands, "false_fn")
    _same("true_fn and false_fn return different types", taken, other)
    return taken


def _cond(pred: np.ndarray, *operands: np.ndarray, true_body: Graph, false_body: Graph) -> Any:
    from graphc.interpret import run

    outputs, _ = run(true_body if bool(pred) else false_body, _sources(true_body, operands))
    return tuple(outputs)


def _cond_grad(api: Any, g: Any, out: Any, pred: Any, *operands: Any, **attrs: Any) -> list:
    return [None, *api.control.cond_vjp(pred, operands, g, **attrs)]


register(
    OpDef(
        "cond",
        _infer_cond,
        _cond,
        arity=None,
        attrs={"true_body": AttrSpec("graph"), "false_body": AttrSpec("graph")},
        traits=frozenset({"pure", "multiple_outputs", "control"}),
        grad=_cond_grad,
        doc="Runs true_body or false_body on the operands, as the bool scalar pred says.",
    )
)


# --- scan ----------------------------------------------------------------------------


def scan_length(xs: Sequence[TensorType], length: int | None) -> Dim:
    """The number of steps: `length`, or the leading size the xs share."""
    for index, x in enumerate(xs):
        if x.ndim == 0:
            raise ShapeError(f"xs[{index}] is {x}: a scanned value needs a leading axis")
    sizes = [x.shape[0] for x in xs]
    known = {s for s in sizes if isinstance(s, int)}
    if length is not None:
        known.add(length)
    if len(known) > 1:
        listed = ", ".join(str(x) for x in xs)
        raise ShapeError(
            f"the xs and length disagree on the number of steps: {listed}"
            + (f", length={length}" if length is not None else "")
        )
    if known:
        return known.pop()
    if not sizes:
        raise ShapeError("scan needs xs or a length")
    return sizes[0]


def _split_scan(types: Sequence[Any], n_carry: int, n_xs: int) -> tuple[list, list, list]:
    carry = list(types[:n_carry])
    return carry, list(types[n_carry : n_carry + n_xs]), list(types[n_carry + n_xs :])


def _infer_scan(
    *types: TensorType,
    body: Graph,
    n_carry: int,
    n_xs: int,
    length: int | None,
    reverse: bool,
    checkpoint: bool,
) -> tuple[TensorType, ...]:
    carry, xs, captures = _split_scan(types, n_carry, n_xs)
    steps = scan_length(xs, length)
    slices = [TensorType(x.dtype, x.shape[1:]) for x in xs]
    results = _retype(body, [*carry, *slices, *captures], "the scanned function")
    if len(results) < n_carry:
        raise ShapeError(
            f"the scanned function returns {len(results)} values for a carry of {n_carry}"
        )
    _same("the scanned function's new carry against the carry", results[:n_carry], carry)
    ys = [TensorType(y.dtype, (steps, *y.shape)) for y in results[n_carry:]]
    return (*carry, *ys)


def _scan(*arrays: np.ndarray, **attrs: Any) -> tuple[np.ndarray, ...]:
    from graphc.interpret import concrete_types, evaluate

    body, n_carry, n_xs = attrs["body"], attrs["n_carry"], attrs["n_xs"]
    reverse = attrs["reverse"]
    carry, xs, captures = _split_scan(arrays, n_carry, n_xs)
    steps = int(scan_length([TensorType(x.dtype, x.shape) for x in xs], attrs["length"]))
    # (the call's typing checked the carry; the body's types serve every step)
    operand_types = [TensorType(a.dtype, a.shape) for a in arrays]
    ((_, input_types),) = body_input_types("scan", attrs, operand_types)
    step_types = concrete_types(
        body, {v.node: t for v, t in zip(body.inputs, input_types, strict=True)}
    )
    ys = []
    for v in body.outputs[n_carry:]:
        y = step_types[v.node][v.index]
        ys.append(np.empty((steps, *y.shape), y.dtype))
    order = range(steps - 1, -1, -1) if reverse else range(steps)
    for t in order:
        step_inputs = [*carry, *(x[t] for x in xs), *captures]
        values = evaluate(body, _sources(body, step_inputs), step_types)
        results = [values[v] for v in body.outputs]
        carry = results[:n_carry]
        for y, result in zip(ys, results[n_carry:], strict=True):
            y[t] = result
    return (*(np.array(c, copy=True) for c in carry), *ys)


def _scan_grad(api: Any, g: Any, out: Any, *inputs: Any, **attrs: Any) -> list:
    return api.control.scan_vjp(inputs, g, **attrs)


register(
    OpDef(
        "scan",
        _infer_scan,
        _scan,
        arity=None,
        attrs={
            "body": AttrSpec("graph"),
            "n_carry": AttrSpec("int"),
            "n_xs": AttrSpec("int"),
            "length": AttrSpec("int_or_none", None),
            "reverse": AttrSpec("bool", False),
            "checkpoint": AttrSpec("bool", False),
        },
        traits=frozenset({"pure", "multiple_outputs", "control"}),
        grad=_scan_grad,
        doc="Runs body once per step, threading the carry and stacking the ys on axis 0.",
    )
)


# --- while_loop -----------------------------------------------------------------------


def _infer_while(
    *types: TensorType,
    cond_body: Graph,
    body: Graph,
    n_carry: int,
    max_iterations: int | None,
) -> tuple[TensorType, ...]:
    if max_iterations is not None and max_iterations < 0:
        raise ShapeError(f"max_iterations must be >= 0, got {max_iterations}")
    carry = list(types[:n_carry])
    tests = _retype(cond_body, types, "cond_fn")
    if len(tests) != 1 or tests[0].dtype != np.bool_ or tests[0].shape != ():
        listed = ", ".join(str(t) for t in tests)
        raise DTypeError(f"cond_fn must return one bool scalar, got ({listed})")
    results = _retype(body, types, "body_fn")
    _same("body_fn's new carry against the carry", results, carry)
    return tuple(carry)


def _while(
    *arrays: np.ndarray, cond_body: Graph, body: Graph, n_carry: int, max_iterations: int | None
) -> tuple[np.ndarray, ...]:
    from graphc.interpret import run

    carry, captures = list(arrays[:n_carry]), list(arrays[n_carry:])
    count = 0
    while max_iterations is None or count < max_iterations:
        (test,), _ = run(cond_body, _sources(cond_body, [*carry, *captures]))
        if not bool(test):
            break
        carry, _ = run(body, _sources(body, [*carry, *captures]))
        count += 1
    return tuple(np.array(c, copy=True) for c in carry)


def _while_grad(api: Any, g: Any, out: Any, *inputs: Any, **attrs: Any) -> list:
    return api.control.while_vjp(inputs, g, **attrs)


register(
    OpDef(
        "while_loop",
        _infer_while,
        _while,
        arity=None,
        attrs={
            "cond_body": AttrSpec("graph"),
            "body": AttrSpec("graph"),
            "n_carry": AttrSpec("int"),
            "max_iterations": AttrSpec("int_or_none", None),
        },
        traits=frozenset({"pure", "multiple_outputs", "control"}),
        grad=_while_grad,
        doc="Runs body while cond_body holds (at most max_iterations times, when given).",
    )
)


def body_input_types(
    n_op: str, attrs: Any, types: Sequence[TensorType]
) -> list[tuple[Graph, list[TensorType]]]:
    """Each body of a control node with the types of its inputs, for the node's operand
    `types` (symbolic, or a call's concrete types)."""
    if n_op == "cond":
        operands = list(types[1:])
        return [(attrs["true_body"], operands), (attrs["false_body"], operands)]
    if n_op == "scan":
        carry, xs, captures = _split_scan(types, attrs["n_carry"], attrs["n_xs"])
        slices = [TensorType(x.dtype, x.shape[1:]) for x in xs]
        return [(attrs["body"], [*carry, *slices, *captures])]
    return [(attrs["cond_body"], list(types)), (attrs["body"], list(types))]


def _sources(body: Graph, arrays: Sequence[np.ndarray]) -> dict[int, np.ndarray]:
    return {v.node: np.asarray(a) for v, a in zip(body.inputs, arrays, strict=True)}
