"""Elementwise ops: unary and binary math, comparisons, logic, `where`, `cast`, `full_like`.

Part of the IR core. Result dtypes are numpy's, found by asking the numpy ufunc
that defines each op (`resolve_ufunc`), so they match numpy by construction;
the one departure is that float math on bool gives float32 where numpy gives
float16, which graphc does not support. Shapes broadcast as numpy's do.
Weak Python scalars never reach the IR: the front end turns them into constants
of the dtype NEP 50 gives them next to the tensor operand.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, InputError
from graphc.registry import NOT_DIFFERENTIABLE, AttrSpec, OpDef, register
from graphc.types import TensorType, broadcast_shapes

Ufunc = Callable[..., np.ndarray]


def _infer_by(dtype_ufunc: np.ufunc) -> Callable[..., TensorType]:
    def infer(*types: TensorType) -> TensorType:
        dtype = dtypes.resolve_ufunc(dtype_ufunc, tuple(t.dtype for t in types))
        return TensorType(dtype, broadcast_shapes(*(t.shape for t in types)))

    return infer


def _reference_by(dtype_ufunc: np.ufunc, compute: Ufunc) -> Callable[..., np.ndarray]:
    def reference(*arrays: np.ndarray) -> np.ndarray:
        dtype = dtypes.resolve_ufunc(dtype_ufunc, tuple(a.dtype for a in arrays))
        if dtype.kind == "f":
            # numpy would compute float math on bool in float16; compute in the result dtype
            arrays = tuple(a.astype(dtype) if a.dtype.kind == "b" else a for a in arrays)
        return np.asarray(compute(*arrays)).astype(dtype, copy=False)

    return reference


def elementwise(
    name: str,
    ufunc: np.ufunc,
    *,
    compute: Ufunc | None = None,
    dtype_ufunc: np.ufunc | None = None,
    traits: frozenset[str] = frozenset(),
    doc: str = "",
    grad: Any = None,
) -> OpDef:
    """Register an elementwise op defined by a numpy ufunc (dtype rule and reference)."""
    rule = dtype_ufunc or ufunc
    return register(
        OpDef(
            name,
            _infer_by(rule),
            _reference_by(rule, compute or ufunc),
            arity=ufunc.nin,
            traits=frozenset({"pure", "elementwise"}) | traits,
            grad=grad,
            doc=doc or f"numpy.{ufunc.__name__}",
        )
    )


def _lazy_scipy(function_name: str) -> Ufunc:
    """A scipy.special ufunc, imported on first use to keep `import graphc` fast."""

    def compute(x: np.ndarray) -> np.ndarray:
        import scipy.special

        return getattr(scipy.special, function_name)(x)

    return compute


COMMUTATIVE = frozenset({"commutative"})
ZERO_DERIVATIVE = frozenset()  # marker: piecewise constant, the gradient is zero


# Gradient rules: grad(api, g, y, *inputs) with g the cotangent of y and `api` the front
# end to build with (see registry.OpDef). They may return a gradient in the broadcast
# output shape; autodiff sums it back to each input's shape.


def _safe(api: Any, x: Any, bad: Any) -> Any:
    """x with 1 where `bad` holds: a denominator that never makes inf or NaN, even in the
    branch `where` discards (its derivative would still multiply 0 by inf)."""
    return api.where(bad, 1, x)


def _sqrt_grad(api: Any, g: Any, y: Any, x: Any) -> list[Any]:
    at_zero = api.equal(y, 0)
    return [api.where(at_zero, 0, g * 0.5 / _safe(api, y, at_zero))]


def _pow_grad(api: Any, g: Any, y: Any, a: Any, b: Any) -> list[Any]:
    """d/da = b * a**(b-1) (0 where b == 0); d/db = y * log(a) (0 where a <= 0, whose log
    is not real: a**b is then only defined for integer b, constant in b)."""
    positive = api.greater(a, 0)
    da = api.where(api.equal(b, 0), 0, g * b * api.power(a, b - 1))
    db = api.where(positive, g * y * api.log(_safe(api, a, api.logical_not(positive))), 0)
    return [da, db]


def _extremum_grad(api: Any, g: Any, y: Any, a: Any, b: Any, *, first_wins: Any) -> list[Any]:
    """Ties split the gradient evenly between the two operands."""
    tie = api.equal(a, b)
    half = g * 0.5
    return [
        api.where(first_wins(a, b), g, api.where(tie, half, 0)),
        api.where(first_wins(b, a), g, api.where(tie, half, 0)),
    ]


UNARY_GRADS: dict[str, Any] = {
    "abs": lambda api, g, y, x: [g * api.sign(x)],  # 0 at 0
    "sign": ZERO_DERIVATIVE,
    "sqrt": _sqrt_grad,
    "exp": lambda api, g, y, x: [g * y],
    "expm1": lambda api, g, y, x: [g * (y + 1)],
    "log": lambda api, g, y, x: [g / x],
    "log1p": lambda api, g, y, x: [g / (x + 1)],
    "sin": lambda api, g, y, x: [g * api.cos(x)],
    "cos": lambda api, g, y, x: [-(g * api.sin(x))],
    "tan": lambda api, g, y, x: [g * (y * y + 1)],
    "arcsin": lambda api, g, y, x: [g / api.sqrt(1 - x * x)],
    "arccos": lambda api, g, y, x: [-(g / api.sqrt(1 - x * x))],
    "arctan": lambda api, g, y, x: [g / (x * x + 1)],
    "sinh": lambda api, g, y, x: [g * api.cosh(x)],
    "cosh": lambda api, g, y, x: [g * api.sinh(x)],
    "tanh": lambda api, g, y, x: [g * (1 - y * y)],
    "floor": ZERO_DERIVATIVE,
    "ceil": ZERO_DERIVATIVE,
    "logical_not": NOT_DIFFERENTIABLE,
    "isnan": NOT_DIFFERENTIABLE,
    "isinf": NOT_DIFFERENTIABLE,
    "isfinite": NOT_DIFFERENTIABLE,
}

BINARY_GRADS: dict[str, Any] = {
    "sub": lambda api, g, y, a, b: [g, -g],
    "div": lambda api, g, y, a, b: [g / b, -(g * y / b)],
    "floor_divide": ZERO_DERIVATIVE,
    "mod": lambda api, g, y, a, b: [g, -(g * api.floor_divide(a, b))],
    "less": NOT_DIFFERENTIABLE,
    "less_equal": NOT_DIFFERENTIABLE,
    "greater": NOT_DIFFERENTIABLE,
    "greater_equal": NOT_DIFFERENTIABLE,
}

COMMUTATIVE_GRADS: dict[str, Any] = {
    "add": lambda api, g, y, a, b: [g, g],
    "mul": lambda api, g, y, a, b: [g * b, g * a],
    "maximum": lambda api, g, y, a, b: _extremum_grad(api, g, y, a, b, first_wins=api.greater),
    "minimum": lambda api, g, y, a, b: _extremum_grad(api, g, y, a, b, first_wins=api.less),
    "equal": NOT_DIFFERENTIABLE,
    "not_equal": NOT_DIFFERENTIABLE,
    "logical_and": NOT_DIFFERENTIABLE,
    "logical_or": NOT_DIFFERENTIABLE,
}


def _rule(grad: Any) -> Any:
    """The OpDef.grad value for a table entry: ZERO_DERIVATIVE becomes a rule giving None."""
    if grad is ZERO_DERIVATIVE:
        return lambda api, g, y, *inputs: [None] * len(inputs)
    return grad


for _name, _ufunc in [
    ("abs", np.absolute),
    ("sign", np.sign),
    ("sqrt", np.sqrt),
    ("exp", np.exp),
    ("expm1", np.expm1),
    ("log", np.log),
    ("log1p", np.log1p),
    ("sin", np.sin),
    ("cos", np.cos),
    ("tan", np.tan),
    ("arcsin", np.arcsin),
    ("arccos", np.arccos),
    ("arctan", np.arctan),
    ("sinh", np.sinh),
    ("cosh", np.cosh),
    ("tanh", np.tanh),
    ("floor", np.floor),
    ("ceil", np.ceil),
    ("logical_not", np.logical_not),
    ("isnan", np.isnan),
    ("isinf", np.isinf),
    ("isfinite", np.isfinite),
]:
    elementwise(_name, _ufunc, grad=_rule(UNARY_GRADS[_name]))

for _name, _ufunc in [
    ("sub", np.subtract),
    ("div", np.true_divide),
    ("floor_divide", np.floor_divide),
    ("mod", np.remainder),
    ("less", np.less),
    ("less_equal", np.less_equal),
    ("greater", np.greater),
    ("greater_equal", np.greater_equal),
]:
    elementwise(_name, _ufunc, grad=_rule(BINARY_GRADS[_name]))

elementwise("neg", np.negative, grad=lambda api, g, y, x: [-g])
for _name, _ufunc in [
    ("add", np.add),
    ("mul", np.multiply),
    ("maximum", np.maximum),
    ("minimum", np.minimum),
    ("equal", np.equal),
    ("not_equal", np.not_equal),
    ("logical_and", np.logical_and),
    ("logical_or", np.logical_or),
]:
    elementwise(_name, _ufunc, traits=COMMUTATIVE, grad=_rule(COMMUTATIVE_GRADS[_name]))

elementwise(
    "erf",
    np.exp,
    compute=_lazy_scipy("erf"),
    doc="the error function (scipy.special.erf)",
    grad=lambda api, g, y, x: [g * (2 / math.sqrt(math.pi)) * api.exp(-(x * x))],
)
elementwise(
    "sigmoid",
    np.exp,
    compute=_lazy_scipy("expit"),
    doc="1 / (1 + exp(-x)). A primitive for numerical stability: its gradient "
    "y * (1 - y) stays finite where the composite's exp(-x) overflows.",
    grad=lambda api, g, y, x: [g * y * (1 - y)],
)


def _round_half_even(x: np.ndarray) -> np.ndarray:
    return np.rint(x) if x.dtype.kind == "f" else x


elementwise(
    "round",
    np.floor,
    compute=_round_half_even,
    doc="round half to even (numpy.round)",
    grad=_rule(ZERO_DERIVATIVE),
)


def _power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "ib" and b.dtype.kind in "ib" and np.any(b < 0):
        raise InputError("integers to negative integer powers are not allowed")
    return np.power(a, b)


elementwise("pow", np.power, compute=_power, grad=_pow_grad)


def _infer_where(condition: TensorType, a: TensorType, b: TensorType) -> TensorType:
    return TensorType(
        dtypes.promote(a.dtype, b.dtype), broadcast_shapes(condition.shape, a.shape, b.shape)
    )


def _where(condition: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = dtypes.promote(a.dtype, b.dtype)
    return np.asarray(np.where(condition.astype(bool), a, b)).astype(dtype, copy=False)


register(
    OpDef(
        "where",
        _infer_where,
        _where,
        arity=3,
        traits=frozenset({"pure", "elementwise"}),
        grad=lambda api, g, y, c, a, b: [None, api.where(c, g, 0), api.where(c, 0, g)],
        doc="numpy.where(condition, a, b); a non-bool condition is tested for non-zero",
    )
)


def _infer_cast(x: TensorType, *, dtype: str) -> TensorType:
    return TensorType(dtypes.as_dtype(dtype), x.shape)


register(
    OpDef(
        "cast",
        _infer_cast,
        lambda x, *, dtype: x.astype(dtype),
        arity=1,
        attrs={"dtype": AttrSpec("dtype")},
        traits=frozenset({"pure", "elementwise"}),
        grad=lambda api, g, y, x, *, dtype: [api.cast(g, x.dtype)],
        doc="x.astype(dtype) (unsafe casting, as numpy); a gradient flows only from and to "
        "float values",
    )
)


def _infer_full_like(x: TensorType, *, value: float, dtype: str) -> TensorType:
    resolved = dtypes.as_dtype(dtype)
    if np.asarray(value).astype(resolved) != value:
        raise DTypeError(f"cannot fill {resolved.name} with {value!r} without changing it")
    return TensorType(resolved, x.shape)


register(
    OpDef(
        "full_like",
        _infer_full_like,
        lambda x, *, value, dtype: np.full(x.shape, value, dtype=dtype),
        arity=1,
        attrs={"value": AttrSpec("scalar"), "dtype": AttrSpec("dtype")},
        traits=frozenset({"pure", "elementwise"}),
        grad=lambda api, g, y, x, **attrs: [None],
        doc="an array of x's shape filled with `value`; reads only x's shape",
    )
)

register(
    OpDef(
        "stop_gradient",
        lambda x: x,
        lambda x: x,
        arity=1,
        traits=frozenset({"pure", "elementwise"}),
        grad=NOT_DIFFERENTIABLE,
        doc="the identity, through which no gradient flows",
    )
)
