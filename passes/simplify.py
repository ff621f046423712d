"""simplify: algebraic identities and numerical-stability rewrites, to a fixpoint.

Part of graphc.passes, after `fold` and before `cse`. Each rule is a small function
from a node to a replacement value (or None), whose docstring's first line states
its identity; `apply_rules` runs them in walks until none fires, within a budget.

Every rule keeps three promises:
  * the result type never changes: dtype and shape, broadcasting included (`x * 1`
    is not `x` when the 1 broadcasts x to a bigger shape), so each rule compares the
    replacement's type with the node's before it fires;
  * values change by float rounding at most, and never from finite to NaN or inf:
    `x * 0 -> 0` is wrong for NaN or inf x and is not here; `x - x -> 0` would be
    right only for ints and is not here either. The one liberty taken is the sign
    of a zero result: `x + 0 -> x` keeps -0.0 where -0.0 + 0.0 gives +0.0 (the two
    compare equal), as XLA's simplifier does;
  * a rewrite of a stable form does not match again, so the pass is idempotent.

CANONICAL FORM the rules keep:
  * constants on the right of commutative ops (trait "commutative"): `1 + x`
    becomes `x + 1`, so later passes (cse) see one spelling. Rules still accept a
    constant on either side, since the swap may not have run yet in a given walk;
  * at most one transpose, reshape, cast, neg or stop_gradient in a row where the
    pair composes (a lossy cast followed by another cast is kept as is);
  * log of a sum of exponentials, and log of a softmax, in the max-subtracted form
    the front end's logsumexp and log_softmax build:
      m = stop_gradient(where(isfinite(max(x, axes, keepdims=True)), max, 0)),
    then log(sum(exp(x - m), axes, keepdims=True)) + m (squeezed unless keepdims).
    A log-sum-exp whose argument is already `x - m` is left alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.ir import Graph, Node, Value
from graphc.passes.manager import PassResult, graph_pass
from graphc.passes.rewrite import Rewriter, Rule, apply_rules, rule
from graphc.registry import REGISTRY
from graphc.types import TensorType

MAX_ROUNDS = 32

# Ops whose operands may be swapped, found by trait (not by a list of names).
COMMUTATIVE_OPS = tuple(sorted(name for name, d in REGISTRY.items() if "commutative" in d.traits))


# Helpers: reading constants and producers, comparing types, building nodes.


def constant_array(rw: Rewriter, v: Value) -> np.ndarray | None:
    """The array of `v` when a constant node produces it, else None."""
    n = rw.node(v)
    return n.attrs["value"].array if n.op == "constant" else None


def is_constant(rw: Rewriter, v: Value, c: float) -> bool:
    """Whether `v` is a constant whose every element equals `c` (-0.0 counts as 0)."""
    array = constant_array(rw, v)
    return array is not None and bool(np.all(array == c))


def producer(rw: Rewriter, v: Value, op: str) -> Node | None:
    """The node producing `v` when its op is `op`, else None."""
    n = rw.node(v)
    return n if n.op == op else None


def has_result_type(rw: Rewriter, v: Value, n: Node) -> bool:
    """Whether `v` has exactly the type (dtype and shape) of `n`'s result."""
    return rw.type_of(v) == n.types[0]


def is_float(t: TensorType) -> bool:
    return t.dtype.kind == "f"


def build(rw: Rewriter, n: Node, op: str, inputs: Sequence[Value], attrs: Any = None) -> Value:
    """A new node standing in for part of `n`; it keeps n's origin for error messages."""
    return rw.add1(op, inputs, attrs, origin=n.origin)


def build_constant(rw: Rewriter, n: Node, value: float, dtype: np.dtype) -> Value:
    return build(rw, n, "constant", [], {"value": np.asarray(value, dtype)})


def other_operand(rw: Rewriter, n: Node, c: float) -> Value | None:
    """The operand of binary `n` beside a constant `c` (either side), else None."""
    a, b = n.inputs
    if is_constant(rw, b, c):
        return a
    if is_constant(rw, a, c):
        return b
    return None


# The max-subtracted form of log-sum-exp.


def finite_max(rw: Rewriter, n: Node, x: Value, axes: tuple[int, ...]) -> Value:
    """stop_gradient(where(isfinite(m), m, 0)) with m = max(x, axes, keepdims=True).

    Subtracting it keeps exp from overflowing; replacing a non-finite max by 0 keeps
    inf - inf from making NaN where the answer is +-inf (the front end's finite_max).
    """
    top = build(rw, n, "max", [x], {"axes": axes, "keepdims": True})
    finite = build(rw, n, "isfinite", [top])
    zero = build_constant(rw, n, 0, rw.type_of(x).dtype)
    return build(rw, n, "stop_gradient", [build(rw, n, "where", [finite, top, zero])])


def is_finite_max_of(rw: Rewriter, m: Value, x: Value, axes: tuple[int, ...]) -> bool:
    """Whether `m` is the `finite_max` of x over `axes` (as built here or by the front end)."""
    guard = producer(rw, m, "stop_gradient")
    choice = producer(rw, guard.inputs[0], "where") if guard is not None else None
    if choice is None:
        return False
    condition, top, zero = choice.inputs
    finite = producer(rw, condition, "isfinite")
    top_node = producer(rw, top, "max")
    return (
        finite is not None
        and finite.inputs[0] == top
        and top_node is not None
        and top_node.inputs[0] == x
        and top_node.attrs["axes"] == axes
        and top_node.attrs["keepdims"]
        and is_constant(rw, zero, 0)
    )


def is_max_shifted(rw: Rewriter, v: Value, axes: tuple[int, ...]) -> bool:
    """Whether `v` is x - finite_max(x, axes): its exp cannot overflow."""
    difference = producer(rw, v, "sub")
    return difference is not None and is_finite_max_of(
        rw, difference.inputs[1], difference.inputs[0], axes
    )


def has_static_nonempty_axes(t: TensorType, axes: tuple[int, ...]) -> bool:
    """Whether every axis in `axes` has a known size > 0 (max of an empty axis raises,
    where the sum it guards would give 0), and there is at least one."""
    return bool(axes) and all(isinstance(t.shape[a], int) and t.shape[a] > 0 for a in axes)


# Identities of arithmetic.


@rule("mul")
def mul_by_one(n: Node, rw: Rewriter) -> Value | None:
    """x * 1 -> x (either side), when the result type is unchanged."""
    x = other_operand(rw, n, 1)
    return x if x is not None and has_result_type(rw, x, n) else None


@rule("add")
def add_zero(n: Node, rw: Rewriter) -> Value | None:
    """x + 0 -> x (either side), when the result type is unchanged.

    For floats, -0.0 + 0.0 is +0.0 and the rewrite keeps -0.0: equal, sign aside.
    """
    x = other_operand(rw, n, 0)
    return x if x is not None and has_result_type(rw, x, n) else None


@rule("sub")
def sub_zero(n: Node, rw: Rewriter) -> Value | None:
    """x - 0 -> x, when the result type is unchanged."""
    x, zero = n.inputs
    return x if is_constant(rw, zero, 0) and has_result_type(rw, x, n) else None


@rule("div")
def div_by_one(n: Node, rw: Rewriter) -> Value | None:
    """x / 1 -> x, when the result type is unchanged (int / 1 is float: kept)."""
    x, one = n.inputs
    return x if is_constant(rw, one, 1) and has_result_type(rw, x, n) else None


@rule("pow")
def pow_one(n: Node, rw: Rewriter) -> Value | None:
    """x ** 1 -> x, when the result type is unchanged."""
    x, exponent = n.inputs
    return x if is_constant(rw, exponent, 1) and has_result_type(rw, x, n) else None


@rule("pow")
def pow_two(n: Node, rw: Rewriter) -> Value | None:
    """x ** 2 -> x * x, when the result type is x's (x * x then has it too)."""
    x, exponent = n.inputs
    if not (is_constant(rw, exponent, 2) and has_result_type(rw, x, n)):
        return None
    return build(rw, n, "mul", [x, x])


@rule("pow")
def pow_half(n: Node, rw: Rewriter) -> Value | None:
    """x ** 0.5 -> sqrt(x), for float x of the result type.

    numpy computes a power by a single-element exponent 0.5 as sqrt, so then sqrt(x) is
    the reference bit for bit. With a full array of 0.5 numpy calls C pow, whose
    pow(-inf, 0.5) is +inf where sqrt(-inf) is NaN: that case gets
    where(isinf(x), abs(x), sqrt(x)).
    """
    x, exponent = n.inputs
    if not (is_constant(rw, exponent, 0.5) and is_float(n.types[0])):
        return None
    if not has_result_type(rw, x, n):
        return None
    root = build(rw, n, "sqrt", [x])
    if any(d != 1 for d in rw.type_of(exponent).shape):  # more than one element
        infinite = build(rw, n, "isinf", [x])
        return build(rw, n, "where", [infinite, build(rw, n, "abs", [x]), root])
    return root


@rule("neg")
def neg_of_neg(n: Node, rw: Rewriter) -> Value | None:
    """-(-x) -> x."""
    inner = producer(rw, n.inputs[0], "neg")
    if inner is None or not has_result_type(rw, inner.inputs[0], n):
        return None
    return inner.inputs[0]


@rule("sub")
def sub_of_neg(n: Node, rw: Rewriter) -> Value | None:
    """x - (-y) -> x + y, when the result type is unchanged (it is exact in IEEE)."""
    x, negated = n.inputs
    inner = producer(rw, negated, "neg")
    if inner is None:
        return None
    total = build(rw, n, "add", [x, inner.inputs[0]])
    return total if has_result_type(rw, total, n) else None


@rule(*COMMUTATIVE_OPS)
def constants_to_right(n: Node, rw: Rewriter) -> Value | None:
    """c op x -> x op c for a commutative op, when c is a constant and x is not."""
    a, b = n.inputs
    if constant_array(rw, a) is None or constant_array(rw, b) is not None:
        return None
    swapped = rw.add1(n.op, [b, a], n.attrs, name=n.name, origin=n.origin)
    return swapped if has_result_type(rw, swapped, n) else None


# Shape and dtype identities.


@rule("transpose")
def identity_transpose(n: Node, rw: Rewriter) -> Value | None:
    """transpose(x, (0, 1, ..., k)) -> x."""
    perm = n.attrs["perm"]
    return n.inputs[0] if perm == tuple(range(len(perm))) else None


@rule("transpose")
def transpose_of_transpose(n: Node, rw: Rewriter) -> Value | None:
    """transpose(transpose(x, p), q) -> transpose(x, p[q]), or x when p[q] is the identity."""
    inner = producer(rw, n.inputs[0], "transpose")
    if inner is None:
        return None
    p, q = inner.attrs["perm"], n.attrs["perm"]
    composed = tuple(p[i] for i in q)  # result axis j is x's axis p[q[j]]
    x = inner.inputs[0]
    if composed == tuple(range(len(composed))):
        return x
    return build(rw, n, "transpose", [x], {"perm": composed})


@rule("reshape")
def reshape_to_own_shape(n: Node, rw: Rewriter) -> Value | None:
    """reshape(x, s) -> x, when x already has the result's shape."""
    x = n.inputs[0]
    return x if has_result_type(rw, x, n) else None


@rule("reshape")
def reshape_of_reshape(n: Node, rw: Rewriter) -> Value | None:
    """reshape(reshape(x, s1), s2) -> reshape(x, s2), when the result type is unchanged."""
    inner = producer(rw, n.inputs[0], "reshape")
    if inner is None:
        return None
    direct = build(rw, n, "reshape", [inner.inputs[0]], n.attrs)
    # with symbolic sizes the -1 of s2 may infer a differently spelled dim: then keep both
    return direct if has_result_type(rw, direct, n) else None


@rule("squeeze")
def squeeze_of_expand_dims(n: Node, rw: Rewriter) -> Value | None:
    """squeeze(expand_dims(x, axes), axes) -> x."""
    inner = producer(rw, n.inputs[0], "expand_dims")
    if inner is None or inner.attrs["axes"] != n.attrs["axes"]:
        return None
    x = inner.inputs[0]
    return x if has_result_type(rw, x, n) else None


@rule("expand_dims")
def expand_dims_of_squeeze(n: Node, rw: Rewriter) -> Value | None:
    """expand_dims(squeeze(x, axes), axes) -> x, when x's squeezed axes are known to be 1."""
    inner = producer(rw, n.inputs[0], "squeeze")
    if inner is None or inner.attrs["axes"] != n.attrs["axes"]:
        return None
    x = inner.inputs[0]
    return x if has_result_type(rw, x, n) else None


@rule("cast")
def cast_to_own_dtype(n: Node, rw: Rewriter) -> Value | None:
    """cast(x, dtype) -> x, when x already has that dtype."""
    x = n.inputs[0]
    return x if has_result_type(rw, x, n) else None


def is_lossless_cast(source: np.dtype, target: np.dtype) -> bool:
    """Whether every value of `source` is exactly representable in `target`.

    Stricter than numpy's "safe" casting, which calls int64 -> float64 safe although
    float64 holds only 53 bits of an int64.
    """
    if source == target or source.kind == "b":
        return True
    if target.kind == "b":
        return False
    if source.kind == target.kind:
        return target.itemsize >= source.itemsize
    if source.kind == "i" and target.kind == "f":
        value_bits = source.itemsize * 8 - 1  # the sign bit is not part of the magnitude
        return np.finfo(target).nmant + 1 >= value_bits
    return False


@rule("cast")
def cast_of_lossless_cast(n: Node, rw: Rewriter) -> Value | None:
    """cast(cast(x, a), b) -> cast(x, b) (or x when b is x's dtype), when x -> a is lossless.

    A lossless first cast keeps x's value exactly, so casting that value to b is
    casting x to b.
    """
    inner = producer(rw, n.inputs[0], "cast")
    if inner is None:
        return None
    x = inner.inputs[0]
    if not is_lossless_cast(rw.type_of(x).dtype, inner.types[0].dtype):
        return None
    if has_result_type(rw, x, n):
        return x
    return build(rw, n, "cast", [x], n.attrs)


@rule("stop_gradient")
def stop_gradient_twice(n: Node, rw: Rewriter) -> Value | None:
    """stop_gradient(stop_gradient(x)) -> stop_gradient(x)."""
    inner = producer(rw, n.inputs[0], "stop_gradient")
    return n.inputs[0] if inner is not None else None


@rule("where")
def where_constant_condition(n: Node, rw: Rewriter) -> Value | None:
    """where(c, a, b) -> a when constant c is all true (b when all false), when that branch
    has the result type."""
    condition, a, b = n.inputs
    array = constant_array(rw, condition)
    if array is None:
        return None
    truth = array.astype(bool)  # as the reference: a non-bool condition tests non-zero
    if bool(np.all(truth)):
        branch = a
    elif not bool(np.any(truth)):
        branch = b
    else:
        return None
    return branch if has_result_type(rw, branch, n) else None


# The identity of a reduction depends on the op (argmax over a size-1 axis is 0, not x),
# so this rule names its ops rather than testing the "reduction" trait.
@rule("sum", "prod", "max", "min")
def reduce_over_unit_axes(n: Node, rw: Rewriter) -> Value | None:
    """sum/prod/max/min(x, axes) -> x, when every reduced axis has size 1 (or there are
    none) and the result type is x's (so keepdims, and no int32 -> int64 widening)."""
    x = n.inputs[0]
    axes = n.attrs["axes"]
    if axes is None or any(rw.type_of(x).shape[a] != 1 for a in axes):
        return None
    return x if has_result_type(rw, x, n) else None


# Numerical stability.


@rule("log")
def log_of_one_plus(n: Node, rw: Rewriter) -> Value | None:
    """log(1 + x) -> log1p(x) (either operand order), for float x of the sum's type."""
    total = producer(rw, n.inputs[0], "add")
    if total is None:
        return None
    x = other_operand(rw, total, 1)
    if x is None or not is_float(rw.type_of(x)) or rw.type_of(x) != total.types[0]:
        return None
    return build(rw, n, "log1p", [x])


@rule("sub")
def exp_minus_one(n: Node, rw: Rewriter) -> Value | None:
    """exp(x) - 1 -> expm1(x), when the result type is exp(x)'s."""
    power, one = n.inputs
    growth = producer(rw, power, "exp")
    if growth is None or not is_constant(rw, one, 1) or growth.types[0] != n.types[0]:
        return None
    return build(rw, n, "expm1", [growth.inputs[0]])


@rule("log")
def stable_logsumexp(n: Node, rw: Rewriter) -> Value | None:
    """log(sum(exp(x), axes)) -> log(sum(exp(x - m), axes, keepdims=True)) + m, squeezed
    unless keepdims, with m the finite max of x over axes: no overflow for large x.

    Only for float x, known non-empty axes, and x not already shifted by its max.
    """
    total = producer(rw, n.inputs[0], "sum")
    growth = producer(rw, total.inputs[0], "exp") if total is not None else None
    if total is None or growth is None:
        return None
    x = growth.inputs[0]
    axes, keepdims = total.attrs["axes"], total.attrs["keepdims"]
    x_type = rw.type_of(x)
    if not (is_float(x_type) and growth.types[0] == x_type):
        return None
    if not has_static_nonempty_axes(x_type, axes) or is_max_shifted(rw, x, axes):
        return None
    shift = finite_max(rw, n, x, axes)
    shifted = build(rw, n, "exp", [build(rw, n, "sub", [x, shift])])
    kept = build(rw, n, "sum", [shifted], {"axes": axes, "keepdims": True})
    result = build(rw, n, "add", [build(rw, n, "log", [kept]), shift])
    if not keepdims:
        result = build(rw, n, "squeeze", [result], {"axes": axes})
    return result if has_result_type(rw, result, n) else None


@rule("log")
def stable_log_softmax(n: Node, rw: Rewriter) -> Value | None:
    """log(exp(z) / sum(exp(z), axes, keepdims=True)) -> s - log(sum(exp(s), axes,
    keepdims=True)) with s = z - m, m the finite max of z over axes: no overflow.

    When z is already max-shifted (the front end's softmax), the existing sum is reused:
    log(e / sum(e)) -> z - log(sum(e)).
    """
    ratio = producer(rw, n.inputs[0], "div")
    if ratio is None:
        return None
    e, denominator = ratio.inputs
    growth = producer(rw, e, "exp")
    total = producer(rw, denominator, "sum")
    if growth is None or total is None or not total.attrs["keepdims"]:
        return None
    summed = producer(rw, total.inputs[0], "exp")  # e itself, or an equal exp before cse
    if summed is None or summed.inputs != growth.inputs:
        return None
    z, axes = growth.inputs[0], total.attrs["axes"]
    z_type = rw.type_of(z)
    if not (is_float(z_type) and growth.types[0] == z_type):
        return None
    if is_max_shifted(rw, z, axes):
        result = build(rw, n, "sub", [z, build(rw, n, "log", [denominator])])
    elif has_static_nonempty_axes(z_type, axes):
        shifted = build(rw, n, "sub", [z, finite_max(rw, n, z, axes)])
        kept = build(
            rw, n, "sum", [build(rw, n, "exp", [shifted])], {"axes": axes, "keepdims": True}
        )
        result = build(rw, n, "sub", [shifted, build(rw, n, "log", [kept])])
    else:
        return None
    return result if has_result_type(rw, result, n) else None


# Order matters only within one walk (the first rule that fires on a node wins);
# identities come before the canonical swap so `1 * x` goes straight to x.
RULES: tuple[Rule, ...] = (
    mul_by_one,
    add_zero,
    sub_zero,
    div_by_one,
    pow_one,
    pow_two,
    pow_half,
    neg_of_neg,
    sub_of_neg,
    exp_minus_one,
    identity_transpose,
    transpose_of_transpose,
    reshape_to_own_shape,
    reshape_of_reshape,
    squeeze_of_expand_dims,
    expand_dims_of_squeeze,
    cast_to_own_dtype,
    cast_of_lossless_cast,
    stop_gradient_twice,
    where_constant_condition,
    reduce_over_unit_axes,
    log_of_one_plus,
    stable_logsumexp,
    stable_log_softmax,
    constants_to_right,
)


@graph_pass("simplify")
def simplify(g: Graph) -> PassResult:
    """Apply RULES to a fixpoint; stats count firings per rule, and "rewrites" in all."""
    simplified, counts = apply_rules(g, RULES, max_rounds=MAX_ROUNDS)
    return PassResult(simplified, {"rewrites": sum(counts.values()), **counts})
