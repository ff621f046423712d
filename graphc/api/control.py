"""Control flow in the graph: `cond`, `scan`, `while_loop` and `fori_loop`.

Part of the IR core's front end. Each construct traces the user's Python functions
once, on placeholders standing for their arguments, and keeps what they built as a
body sub-graph (graphc/ops/control.py). A value the functions read from outside (a
weight, an outer placeholder, a value of an enclosing body) becomes an explicit
operand of the node: the body gets a placeholder for it. Structures (a Tensor, or
tuples, lists and dicts of them, None for nothing) pass in and out as in JAX.

The gradient rules of the three ops build their graphs here too (`cond_vjp`,
`scan_vjp`, `while_vjp`): a scan's gradient is a reverse scan over the steps, which
reads the carries and the intermediate values the forward scan stacked for it (or,
with `checkpoint=True`, only the carries, computing the rest again).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, InternalError, ShapeError
from graphc.ir import Graph, GraphBuilder, Value, located
from graphc.ops.control import placeholder_attrs
from graphc.tensor import DEFAULT_BUILDER, Tensor, as_tensor, build, build1
from graphc.types import TensorType

__all__ = ["cond", "fori_loop", "scan", "while_loop"]


# --- structures of tensors --------------------------------------------------------------


def _flatten(op: str, tree: Any, what: str) -> tuple[list[Tensor], Any]:
    """The leaves of `tree` as Tensors (numbers and arrays become constants), and its
    shape: ("leaf",), ("none",), ("tuple" | "list", [...]) or ("dict", keys, [...])."""
    if tree is None:
        return [], ("none",)
    if isinstance(tree, tuple | list):
        leaves: list[Tensor] = []
        parts = []
        for index, item in enumerate(tree):
            items, part = _flatten(op, item, f"{what}[{index}]")
            leaves += items
            parts.append(part)
        return leaves, ("tuple" if isinstance(tree, tuple) else "list", parts)
    if isinstance(tree, dict):
        keys = sorted(tree)
        leaves, parts = [], []
        for key in keys:
            items, part = _flatten(op, tree[key], f"{what}[{key!r}]")
            leaves += items
            parts.append(part)
        return leaves, ("dict", tuple(keys), parts)
    try:
        return [as_tensor(tree)], ("leaf",)
    except (ArgumentTypeError, DTypeError):
        raise located(
            op,
            ArgumentTypeError,
            f"{what} must be a Tensor, a number, an array, or a tuple, list or dict of them; "
            f"got {type(tree).__name__}",
        ) from None


def _unflatten(shape: Any, leaves: Sequence[Any]) -> Any:
    rest = list(leaves)

    def take(part: Any) -> Any:
        kind = part[0]
        if kind == "leaf":
            return rest.pop(0)
        if kind == "none":
            return None
        if kind == "dict":
            return {key: take(p) for key, p in zip(part[1], part[2], strict=True)}
        items = [take(p) for p in part[1]]
        return tuple(items) if kind == "tuple" else items

    return take(shape)


def _describe(shape: Any) -> str:
    kind = shape[0]
    if kind in ("leaf", "none"):
        return "a Tensor" if kind == "leaf" else "None"
    if kind == "dict":
        return "a dict with keys " + ", ".join(map(repr, shape[1]))
    return f"a {kind} of {len(shape[1])}"


# --- bodies: tracing, inlining, differentiating ----------------------------------------


def _placeholders(types: Sequence[TensorType], prefix: str) -> list[Tensor]:
    return [
        build1("placeholder", [], placeholder_attrs(f"{prefix}{i}", t)) for i, t in enumerate(types)
    ]


@dataclasses.dataclass
class _Trace:
    """What tracing a function built: the body graph, the outer values it reads (its
    captures, the body's last inputs) and the structure of its result."""

    body: Graph
    captures: list[Tensor]
    shape: Any


def _extract(
    op: str,
    arguments: Sequence[Tensor],
    results: Sequence[Tensor],
    start: int,
    substitute: dict[Value, Tensor] | None = None,
) -> tuple[Graph, list[Tensor]]:
    """The body graph computing `results` from `arguments`: the nodes built since id
    `start`, copied with fresh ids. A value from before `start` is a capture: the body
    gets a placeholder for it. `substitute` maps values to arguments that stand for them."""
    substitute = dict(substitute or {})
    for argument in arguments:
        substitute[argument.ref] = argument
    inside: set[int] = set()
    captured: dict[Value, Tensor] = {}
    stack = [t.ref for t in results]
    while stack:
        value = stack.pop()
        if value in substitute or value.node in inside:
            continue
        if value.node < start:
            captured.setdefault(value, DEFAULT_BUILDER.tensor(value))
            continue
        node = DEFAULT_BUILDER.node(value)
        if node.op in ("placeholder", "variable"):
            raise located(
                op,
                ArgumentError,
                f"the function creates {node.op} {node.attrs['name']!r}; create it outside "
                "and use it inside (it becomes an operand)",
            )
        inside.add(node.id)
        stack.extend(node.inputs)
    builder = GraphBuilder()
    mapped: dict[Value, Value] = {}
    inputs = []
    sources = [*arguments, *captured.values()]
    for index, tensor in enumerate(sources):
        attrs = placeholder_attrs(f"in{index}", tensor.type)
        (value,) = builder.add("placeholder", [], attrs, origin=tensor.node.origin)
        inputs.append(value)
        mapped[tensor.ref] = value
    for value, argument in substitute.items():
        mapped.setdefault(value, mapped[argument.ref])
    for node_id in sorted(inside):
        node = DEFAULT_BUILDER.node(node_id)
        outputs = builder.add(
            node.op,
            [mapped[v] for v in node.inputs],
            node.attrs,
            name=node.name,
            origin=node.origin,
        )
        for old, new in zip(node.outputs, outputs, strict=True):
            mapped[old] = new
    graph = builder.build(inputs, [mapped[t.ref] for t in results])
    return graph.renumbered()[0], list(captured.values())


def _trace(op: str, fn: Callable[..., Any], types: Sequence[TensorType]) -> _Trace:
    """Call `fn` on placeholders of `types` and keep what it built as a body."""
    start = DEFAULT_BUILDER.next_id
    arguments = _placeholders(types, "arg")
    result = fn(*arguments)
    leaves, shape = _flatten(op, result, "the result")
    body, captures = _extract(op, arguments, leaves, start)
    return _Trace(body, captures, shape)


def inline(body: Graph, inputs: Sequence[Tensor]) -> tuple[list[Tensor], dict[Value, Tensor]]:
    """Build `body`'s nodes on the default graph with `inputs` for its inputs: its
    outputs, and every body value's Tensor."""
    if len(inputs) != len(body.inputs):
        raise InternalError(f"a body of {len(body.inputs)} inputs was given {len(inputs)}")
    tensors: dict[Value, Tensor] = dict(zip(body.inputs, inputs, strict=True))
    for node in body.nodes:
        if node.outputs[0] in tensors:
            continue
        made = DEFAULT_BUILDER.tensors(
            node.op,
            [tensors[v] for v in node.inputs],
            node.attrs,
            name=node.name,
            origin=node.origin,
        )
        tensors.update(zip(node.outputs, made, strict=True))
    return [tensors[v] for v in body.outputs], tensors


def _is_float(t: Tensor | TensorType) -> bool:
    return t.dtype.kind == "f"


def _types(body: Graph, values: Sequence[Value]) -> list[TensorType]:
    return [body.type_of(v) for v in values]


def _vjp(outputs: Sequence[Tensor], cotangents: Sequence[Tensor], wrt: Sequence[Tensor]) -> list:
    from graphc.autodiff import vjp

    return vjp(outputs, cotangents, wrt)


def _zeros_where_none(grads: Sequence[Tensor | None], like: Sequence[Tensor]) -> list[Tensor]:
    from graphc.api import zeros_like

    return [zeros_like(x) if g is None else g for g, x in zip(grads, like, strict=True)]


# --- cond -------------------------------------------------------------------------------


def cond(
    pred: Any, true_fn: Callable[..., Any], false_fn: Callable[..., Any], *operands: Any
) -> Any:
    """Run `true_fn(*operands)` if the bool scalar `pred` holds, else `false_fn(*operands)`.

    Only the branch taken runs. Both functions return the same structure (a Tensor, or a
    tuple, list or dict of them) with the same dtypes and shapes; a mismatch raises
    DTypeError or ShapeError naming both. Values the functions read from outside become
    operands of the node. Gradients flow through the branch taken.
    """
    pred = as_tensor(pred)
    if pred.dtype != np.bool_ or pred.shape != ():
        error = DTypeError if pred.dtype != np.bool_ else ShapeError
        raise located("cond", error, f"pred must be a bool scalar, got {pred.type}")
    for name, fn in (("true_fn", true_fn), ("false_fn", false_fn)):
        if not callable(fn):
            raise located("cond", ArgumentTypeError, f"{name} must be callable, got {fn!r:.60}")
    leaves, shape = _flatten("cond", tuple(operands), "operands")
    types = [t.type for t in leaves]

    def traced(fn: Callable[..., Any]) -> _Trace:
        return _trace("cond", lambda *args: fn(*_unflatten(shape, args)), types)

    taken, other = traced(true_fn), traced(false_fn)
    if taken.shape != other.shape:
        raise located(
            "cond",
            ShapeError,
            f"true_fn returns {_describe(taken.shape)}, false_fn {_describe(other.shape)}",
        )
    captures = _union(taken.captures, other.captures)
    true_body = _with_captures(taken, captures, len(leaves))
    false_body = _with_captures(other, captures, len(leaves))
    outputs = build(
        "cond", [pred, *leaves, *captures], {"true_body": true_body, "false_body": false_body}
    )
    return _unflatten(taken.shape, outputs)


def _union(first: Sequence[Tensor], second: Sequence[Tensor]) -> list[Tensor]:
    """The captures of two bodies, each value once, in the order first met."""
    seen = {t.ref: t for t in first}
    for t in second:
        seen.setdefault(t.ref, t)
    return list(seen.values())


def _with_captures(trace: _Trace, captures: Sequence[Tensor], n_arguments: int) -> Graph:
    """The traced body with inputs (*arguments, *captures), in the order `captures` gives
    (a body need not read all of them)."""
    if [c.ref for c in captures] == [c.ref for c in trace.captures]:
        return trace.body

    def wrapper(*args: Tensor) -> list[Tensor]:
        position = {c.ref: i for i, c in enumerate(captures)}
        own = {c.ref: args[n_arguments + position[c.ref]] for c in trace.captures}
        inputs = [*args[:n_arguments], *(own[c.ref] for c in trace.captures)]
        outputs, _ = inline(trace.body, inputs)
        return outputs

    types = [*(trace.body.type_of(v) for v in trace.body.inputs[:n_arguments])]
    types += [c.type for c in captures]
    start = DEFAULT_BUILDER.next_id
    arguments = _placeholders(types, "arg")
    body, extra = _extract("cond", arguments, wrapper(*arguments), start)
    if extra:
        raise InternalError("a re-traced branch read a value outside its operands")
    return body


def cond_vjp(pred: Tensor, operands: Sequence[Tensor], g: Sequence[Tensor], **attrs: Any) -> list:
    """The gradients of a cond's operands: a cond over the branches' own gradients."""
    wanted = [i for i, x in enumerate(operands) if _is_float(x)]
    if not wanted:
        return [None] * len(operands)
    bodies = [_body_vjp(attrs[key], wanted) for key in ("true_body", "false_body")]
    grads = build("cond", [pred, *operands, *g], {"true_body": bodies[0], "false_body": bodies[1]})
    result: list[Tensor | None] = [None] * len(operands)
    for i, gradient in zip(wanted, grads, strict=True):
        result[i] = gradient
    return result


def _body_vjp(body: Graph, wanted: Sequence[int]) -> Graph:
    """A body taking (*body inputs, *a cotangent per body output) and returning the
    gradients of the inputs `wanted`."""
    n = len(body.inputs)

    def fn(*args: Tensor) -> list[Tensor]:
        inputs, cotangents = list(args[:n]), list(args[n:])
        outputs, _ = inline(body, inputs)
        chosen = [inputs[i] for i in wanted]
        return _zeros_where_none(_vjp(outputs, cotangents, chosen), chosen)

    types = _types(body, body.inputs) + _types(body, body.outputs)
    trace = _trace("grad", fn, types)
    if trace.captures:
        raise InternalError("the gradient of a body read a value outside it")
    return trace.body


# --- scan -------------------------------------------------------------------------------


def scan(
    fn: Callable[[Any, Any], Any],
    init: Any,
    xs: Any = None,
    length: int | None = None,
    reverse: bool = False,
    checkpoint: bool = False,
) -> tuple[Any, Any]:
    """Loop `fn(carry, x) -> (carry, y)` over the leading axis of `xs`, as `jax.lax.scan`.

    Parameters
    ----------
    fn : callable
        Takes the carry and one slice of `xs` (None when there are no xs) and returns the
        new carry, of the same structure, dtypes and shapes, and a `y` (a structure, or
        None).
    init : Tensor or structure of Tensors
        The first carry.
    xs : Tensor or structure of Tensors, optional
        Scanned along axis 0; every leaf has the same leading size, which may be known
        only at run time.
    length : int, optional
        The number of steps, required when there are no xs.
    reverse : bool
        Run from the last step to the first (ys[t] still belongs to xs[t]).
    checkpoint : bool
        For the gradient, store only each step's carry and compute the step's other
        values again, instead of storing the values the gradient needs.

    Returns
    -------
    (final carry, ys)
        ys has the structure of `y`, each leaf stacked on a new leading axis.
    """
    if not callable(fn):
        raise located("scan", ArgumentTypeError, f"fn must be callable, got {fn!r:.60}")
    if length is not None and (
        not isinstance(length, int | np.integer) or isinstance(length, bool) or length < 0
    ):
        raise located("scan", ArgumentError, f"length must be an int >= 0, got {length!r:.60}")
    carry, carry_shape = _flatten("scan", init, "init")
    xs_leaves, xs_shape = _flatten("scan", xs, "xs")
    if not xs_leaves and length is None:
        raise located("scan", ArgumentError, "give xs or a length")
    for index, x in enumerate(xs_leaves):
        if x.ndim == 0:
            raise located(
                "scan", ShapeError, f"xs leaf {index} is {x.type}: it needs an axis to scan"
            )
    slice_types = [TensorType(x.dtype, x.type.shape[1:]) for x in xs_leaves]
    n_carry = len(carry)
    seen: dict[str, Any] = {}

    def step(*args: Tensor) -> list[Tensor]:
        c = _unflatten(carry_shape, args[:n_carry])
        x = _unflatten(xs_shape, args[n_carry:])
        result = fn(c, x)
        if not isinstance(result, tuple | list) or len(result) != 2:
            raise located("scan", ArgumentTypeError, "fn must return a pair (new carry, y)")
        new, new_shape = _flatten("scan", result[0], "the new carry")
        if new_shape != carry_shape:
            raise located(
                "scan",
                ShapeError,
                f"fn returns a carry of {_describe(new_shape)}, init is {_describe(carry_shape)}",
            )
        ys, seen["ys"] = _flatten("scan", result[1], "y")
        return [*new, *ys]

    trace = _trace("scan", step, [*(c.type for c in carry), *slice_types])
    attrs = {
        "body": trace.body,
        "n_carry": n_carry,
        "n_xs": len(xs_leaves),
        "length": None if length is None else int(length),
        "reverse": bool(reverse),
        "checkpoint": bool(checkpoint),
    }
    outputs = build("scan", [*carry, *xs_leaves, *trace.captures], attrs)
    return _unflatten(carry_shape, outputs[:n_carry]), _unflatten(seen["ys"], outputs[n_carry:])


def scan_vjp(
    inputs: Sequence[Tensor],
    g: Sequence[Tensor],
    *,
    body: Graph,
    n_carry: int,
    n_xs: int,
    length: int | None,
    reverse: bool,
    checkpoint: bool,
) -> list:
    """The gradients of a scan's operands: a scan of the steps' gradients in the other
    direction.

    A forward scan like the original (cse lets it replace the original) also stacks
    each step's carry and, unless `checkpoint`, the step's values that its gradient
    reads and that depend on the step (values of the captures alone are computed
    again). The reverse scan carries the carry's cotangent and the captures' summed
    gradients, and stacks the xs' gradients; a weight's gradient terms x^T @ g are not
    summed step by step: the reverse scan stacks x and g, and one GEMM over all the
    steps sums them after it (as an LSTM's weight gradient is computed)."""
    carry = list(inputs[:n_carry])
    xs = list(inputs[n_carry : n_carry + n_xs])
    captures = list(inputs[n_carry + n_xs :])
    n_ys = len(body.outputs) - n_carry
    g_carry, g_ys = list(g[:n_carry]), list(g[n_carry:])
    step_types = _types(body, body.inputs)
    fc = [i for i in range(n_carry) if _is_float(carry[i])]  # carries with gradients
    fcap = [i for i, c in enumerate(captures) if _is_float(c)]

    # the backward step, traced: (*g carry, *g captures, *carry_t, *x_t, *g y_t, *captures)
    back_types = [step_types[i] for i in fc] + [captures[i].type for i in fcap]
    back_types += step_types[: n_carry + n_xs] + _types(body, body.outputs[n_carry:])
    back_types += [c.type for c in captures]
    start = DEFAULT_BUILDER.next_id
    arguments = _placeholders(back_types, "arg")
    gc_in = arguments[: len(fc)]
    gcap_in = arguments[len(fc) : len(fc) + len(fcap)]
    rest = arguments[len(fc) + len(fcap) :]
    step_in = rest[: n_carry + n_xs]
    gy_in = rest[n_carry + n_xs : n_carry + n_xs + n_ys]
    cap_in = rest[n_carry + n_xs + n_ys :]
    forward_start = DEFAULT_BUILDER.next_id
    outputs, tensors = inline(body, [*step_in, *cap_in])
    gradient_start = DEFAULT_BUILDER.next_id
    seeds = [*(gc_in[fc.index(i)] if i in fc else None for i in range(n_carry)), *gy_in]
    wrt = [*step_in[:n_carry], *step_in[n_carry:], *cap_in]
    known = [(o, s) for o, s in zip(outputs, seeds, strict=True) if s is not None]
    grads = _vjp([o for o, _ in known], [s for _, s in known], wrt)
    grads = _zeros_where_none(grads, wrt)
    g_carry_prev = [grads[i] for i in fc]
    g_x = [grads[n_carry + i] for i in range(n_xs)]
    gemms, summed, sums = _capture_terms(
        [grads[n_carry + n_xs + i] for i in fcap], gcap_in, stack=not checkpoint
    )
    float_xs = [i for i in range(n_xs) if _is_float(xs[i])]
    back_results = [*g_carry_prev, *sums, *(g_x[i] for i in float_xs)]
    back_results += [a for _, a, _ in gemms] + [b for _, _, b in gemms]

    # the step's values the gradient reads: stack those that depend on the step
    body_value = {t.ref: v for v, t in tensors.items()}
    residuals: list[Value] = []
    if not checkpoint:
        varying = _depending_on(body, n_carry + n_xs)
        read = _read_by_gradient(back_results, forward_start, gradient_start)
        residuals = [v for v in read if v in body_value and body_value[v] in varying]
    residual_args = _placeholders([DEFAULT_BUILDER.type_of(v) for v in residuals], "res")
    substitute = dict(zip(residuals, residual_args, strict=True))
    # inputs as scan wants them: (*carry, *xs slices, *captures)
    body_inputs = [*gc_in, *(gcap_in[k] for k in summed), *step_in, *gy_in, *residual_args]
    body_inputs += cap_in
    back_body, extra = _extract("grad", body_inputs, back_results, start, substitute)
    if extra:
        raise InternalError("the gradient of a scan body read a value outside it")

    # the forward scan, also stacking the carries and the residuals
    extra_outputs = list(body.inputs[:n_carry])
    extra_outputs += [body_value[v] for v in residuals]
    stacking = dataclasses.replace(body, outputs=(*body.outputs, *extra_outputs))
    forward_attrs = dict(
        body=stacking,
        n_carry=n_carry,
        n_xs=n_xs,
        length=length,
        reverse=reverse,
        checkpoint=checkpoint,
    )
    forward = build("scan", [*carry, *xs, *captures], forward_attrs)
    stacked = list(forward[n_carry + n_ys :])
    carries, stacked_residuals = stacked[:n_carry], stacked[n_carry:]

    from graphc.api import zeros_like

    back_carry = [g_carry[i] for i in fc] + [zeros_like(captures[fcap[k]]) for k in summed]
    back_xs = [*carries, *xs, *g_ys, *stacked_residuals]
    back_attrs = dict(
        body=back_body,
        n_carry=len(back_carry),
        n_xs=len(back_xs),
        length=length,
        reverse=not reverse,
        checkpoint=checkpoint,
    )
    back = build("scan", [*back_carry, *back_xs, *captures], back_attrs)
    result: list[Tensor | None] = [None] * len(inputs)
    for k, i in enumerate(fc):
        result[i] = back[k]
    ys = back[len(back_carry) :]
    for k, i in enumerate(float_xs):
        result[n_carry + i] = ys[k]
    summed_totals = dict(zip(summed, back[len(fc) : len(back_carry)], strict=True))
    stacked = ys[len(float_xs) :]
    totals = _capture_totals(gemms, summed_totals, stacked, [captures[i] for i in fcap])
    for k, i in enumerate(fcap):
        result[n_carry + n_xs + i] = totals[k]
    return result


def _capture_terms(
    grads: Sequence[Tensor], accumulators: Sequence[Tensor], stack: bool
) -> tuple[list[tuple[int, Tensor, Tensor]], list[int], list[Tensor]]:
    """Split each capture's per-step gradient: its terms x^T @ g (a weight's), which the
    reverse scan stacks x and g for and one GEMM sums after it, as (capture k, x, g);
    the captures whose other terms the carry sums; and those sums (accumulator + terms).
    Without `stack` (a checkpointed scan stores no more than its carries), the carry
    sums every term."""
    gemms: list[tuple[int, Tensor, Tensor]] = []
    summed: list[int] = []
    sums: list[Tensor] = []
    for k, gradient in enumerate(grads):
        pairs, others = _gemm_terms(gradient) if stack else ([], [gradient])
        gemms += [(k, a, b) for a, b in pairs]
        if others:
            summed.append(k)
            total = accumulators[k]
            for term in others:
                total = total + term
            sums.append(total)
    return gemms, summed, sums


def _capture_totals(
    gemms: Sequence[tuple[int, Tensor, Tensor]],
    summed: dict[int, Tensor],
    stacked: Sequence[Tensor],
    captures: Sequence[Tensor],
) -> list[Tensor]:
    """Each capture's gradient after the reverse scan: the carry's sum and one GEMM over
    all the steps per stacked pair (the x's, then the g's, of `gemms` in `stacked`)."""
    from graphc.api import matmul, reshape, transpose, zeros_like

    totals: list[Tensor | None] = [summed.get(k) for k in range(len(captures))]
    xs_all, gs_all = stacked[: len(gemms)], stacked[len(gemms) :]
    for (k, a, g), a_all, g_all in zip(gemms, xs_all, gs_all, strict=True):
        flat_a = reshape(a_all, (-1, a.shape[-1]))
        term = matmul(transpose(flat_a), reshape(g_all, (-1, g.shape[-1])))
        previous = totals[k]
        totals[k] = term if previous is None else previous + term
    # (a capture the steps' gradient does not reach gets zeros)
    return [zeros_like(c) if t is None else t for t, c in zip(totals, captures, strict=True)]


def _gemm_terms(t: Tensor) -> tuple[list[tuple[Tensor, Tensor]], list[Tensor]]:
    """`t` as a sum of terms: those of the form transpose(x) @ g with x and g matrices of
    known columns (a weight's gradient), as (x, g) pairs, and the others."""
    node = t.node
    if node.op == "add" and all(DEFAULT_BUILDER.type_of(v) == t.type for v in node.inputs):
        pairs: list[tuple[Tensor, Tensor]] = []
        others: list[Tensor] = []
        for v in node.inputs:
            more, rest = _gemm_terms(DEFAULT_BUILDER.tensor(v))
            pairs += more
            others += rest
        return pairs, others
    if node.op == "matmul" and t.ndim == 2:
        left, right = (DEFAULT_BUILDER.tensor(v) for v in node.inputs)
        if left.op == "transpose" and left.node.attrs["perm"] == (1, 0) and right.ndim == 2:
            x = DEFAULT_BUILDER.tensor(left.node.inputs[0])
            if isinstance(x.shape[-1], int) and isinstance(right.shape[-1], int):
                return [(x, right)], []
    return [], [t]


def _depending_on(body: Graph, n_step: int) -> set[Value]:
    """The body's values that depend on its first `n_step` inputs (the step's carry and
    x slices), not on the captures alone."""
    varying = set(body.inputs[:n_step])
    for node in body.nodes:
        if any(v in varying for v in node.inputs):
            varying.update(node.outputs)
    return varying


def _read_by_gradient(
    results: Sequence[Tensor], forward_start: int, gradient_start: int
) -> list[Value]:
    """The values of the inlined forward step (nodes with ids from `forward_start` up to
    `gradient_start`) that the gradient's nodes read, in the order first met."""
    read: dict[Value, None] = {}
    seen: set[int] = set()
    stack = [t.ref for t in reversed(results)]
    while stack:
        value = stack.pop()
        if forward_start <= value.node < gradient_start:
            read.setdefault(value)
            continue
        if value.node < forward_start or value.node in seen:
            continue
        seen.add(value.node)
        stack.extend(reversed(DEFAULT_BUILDER.node(value).inputs))
    return list(read)


# --- while_loop and fori_loop -----------------------------------------------------------


def while_loop(
    cond_fn: Callable[[Any], Any],
    body_fn: Callable[[Any], Any],
    init: Any,
    max_iterations: int | None = None,
) -> Any:
    """Run `carry = body_fn(carry)` while `cond_fn(carry)` holds; the final carry.

    `cond_fn` returns a bool scalar. `body_fn` returns a carry of `init`'s structure,
    dtypes and shapes. With `max_iterations`, the loop stops after that many steps even
    if `cond_fn` still holds, and it is reverse-differentiable: its gradient runs the
    steps again as a scan of `max_iterations` steps, each masked once the loop has
    ended. Without it the loop is forward-only: asking for its gradient raises
    UnsupportedError.
    """
    for name, fn in (("cond_fn", cond_fn), ("body_fn", body_fn)):
        if not callable(fn):
            raise located(
                "while_loop", ArgumentTypeError, f"{name} must be callable, got {fn!r:.60}"
            )
    if max_iterations is not None and (
        not isinstance(max_iterations, int | np.integer)
        or isinstance(max_iterations, bool)
        or max_iterations < 0
    ):
        raise located(
            "while_loop",
            ArgumentError,
            f"max_iterations must be an int >= 0, got {max_iterations!r:.60}",
        )
    carry, shape = _flatten("while_loop", init, "init")
    types = [c.type for c in carry]
    test = _trace("while_loop", lambda *args: cond_fn(_unflatten(shape, args)), types)
    if test.shape != ("leaf",):
        raise located(
            "while_loop",
            ArgumentTypeError,
            f"cond_fn must return a bool scalar, not {_describe(test.shape)}",
        )
    (result_type,) = _types(test.body, test.body.outputs)
    if result_type.dtype != np.bool_ or result_type.shape != ():
        raise located(
            "while_loop", DTypeError, f"cond_fn must return a bool scalar, got {result_type}"
        )

    def step(*args: Tensor) -> list[Tensor]:
        new, new_shape = _flatten(
            "while_loop", body_fn(_unflatten(shape, args)), "body_fn's result"
        )
        if new_shape != shape:
            raise located(
                "while_loop",
                ShapeError,
                f"body_fn returns {_describe(new_shape)}, init is {_describe(shape)}",
            )
        return new

    body = _trace("while_loop", step, types)
    captures = _union(test.captures, body.captures)
    attrs = {
        "cond_body": _with_captures(test, captures, len(carry)),
        "body": _with_captures(body, captures, len(carry)),
        "n_carry": len(carry),
        "max_iterations": None if max_iterations is None else int(max_iterations),
    }
    return _unflatten(shape, build("while_loop", [*carry, *captures], attrs))


def while_vjp(
    inputs: Sequence[Tensor],
    g: Sequence[Tensor],
    *,
    cond_body: Graph,
    body: Graph,
    n_carry: int,
    max_iterations: int | None,
) -> list:
    """The gradients of a bounded while_loop's operands: those of the same loop written
    as a scan of `max_iterations` masked steps."""
    from graphc.errors import UnsupportedError

    if max_iterations is None:
        raise UnsupportedError(
            "while_loop without max_iterations is forward-only; give max_iterations to "
            "differentiate it (the gradient stores at most that many steps)"
        )
    from graphc.api import logical_and, where

    carry, captures = list(inputs[:n_carry]), list(inputs[n_carry:])

    def masked(running: Tensor, *rest: Tensor) -> list[Tensor]:
        values, held = list(rest[:n_carry]), list(rest[n_carry:])
        (test,), _ = inline(cond_body, [*values, *held])
        active = logical_and(running, test)
        new, _ = inline(body, [*values, *held])
        return [active, *(where(active, n, v) for n, v in zip(new, values, strict=True))]

    # the captures are operands of the scan (not captured again): each operand of the
    # while_loop keeps its own gradient even where one value fills two of them
    types = [
        TensorType(np.dtype(np.bool_), ()),
        *(t.type for t in carry),
        *(c.type for c in captures),
    ]
    trace = _trace("grad", masked, types)
    if trace.captures:
        raise InternalError("the masked steps of a while_loop read a value outside them")
    start = as_tensor(np.bool_(True))
    attrs = dict(
        body=trace.body,
        n_carry=1 + n_carry,
        n_xs=0,
        length=max_iterations,
        reverse=False,
        checkpoint=False,
    )
    operands = [start, *carry, *captures]
    grads = scan_vjp(operands, [start, *g], **attrs)
    return grads[1:]


def fori_loop(lower: Any, upper: Any, body_fn: Callable[[Any, Any], Any], init: Any) -> Any:
    """`carry = body_fn(i, carry)` for i from `lower` up to `upper` (excluded).

    With Python ints for the bounds it is a scan (reverse-differentiable) and `i` is an
    int64 scalar; with Tensor bounds it is a forward-only while_loop.
    """
    if all(isinstance(b, int | np.integer) and not isinstance(b, bool) for b in (lower, upper)):
        steps = max(0, int(upper) - int(lower))
        indices = np.arange(int(lower), int(lower) + steps, dtype=np.int64)
        final, _ = scan(lambda c, i: (body_fn(i, c), None), init, as_tensor(indices))
        return final
    lower_t, upper_t = as_tensor(lower), as_tensor(upper)
    if lower_t.dtype.kind not in "iu" or upper_t.dtype.kind not in "iu":
        raise located("fori_loop", DTypeError, "lower and upper must be integers")
    if lower_t.shape != () or upper_t.shape != ():
        raise located("fori_loop", ShapeError, "lower and upper must be scalars")
    from graphc.api import cast, less

    index = cast(lower_t, "int64")
    bound = cast(upper_t, "int64")
    final = while_loop(
        lambda state: less(state[0], bound),
        lambda state: (state[0] + np.int64(1), body_fn(state[0], state[1])),
        (index, init),
    )
    return final[1]
