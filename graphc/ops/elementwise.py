"""Elementwise ops: unary and binary math, comparisons, logic, `where`, `cast`, `full_like`.

Part of the IR core. Result dtypes are numpy's, found by asking the numpy ufunc
that defines each op (`resolve_ufunc`), so they match numpy by construction;
the one departure is that float math on bool gives float32 where numpy gives
float16, which graphc does not support. Shapes broadcast as numpy's do.
Weak Python scalars never reach the IR: the front end turns them into constants
of the dtype NEP 50 gives them next to the tensor operand.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, InputError
from graphc.registry import AttrSpec, OpDef, register
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
    ("sub", np.subtract),
    ("div", np.true_divide),
    ("floor_divide", np.floor_divide),
    ("mod", np.remainder),
    ("less", np.less),
    ("less_equal", np.less_equal),
    ("greater", np.greater),
    ("greater_equal", np.greater_equal),
]:
    elementwise(_name, _ufunc)

elementwise("neg", np.negative)
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
    elementwise(_name, _ufunc, traits=COMMUTATIVE)

elementwise("erf", np.exp, compute=_lazy_scipy("erf"), doc="the error function (scipy.special.erf)")
elementwise(
    "sigmoid",
    np.exp,
    compute=_lazy_scipy("expit"),
    doc="1 / (1 + exp(-x)). A primitive for numerical stability: its gradient "
    "y * (1 - y) stays finite where the composite's exp(-x) overflows.",
)


def _round_half_even(x: np.ndarray) -> np.ndarray:
    return np.rint(x) if x.dtype.kind == "f" else x


elementwise("round", np.floor, compute=_round_half_even, doc="round half to even (numpy.round)")


def _power(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    if a.dtype.kind in "ib" and b.dtype.kind in "ib" and np.any(b < 0):
        raise InputError("integers to negative integer powers are not allowed")
    return np.power(a, b)


elementwise("pow", np.power, compute=_power)


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
        doc="x.astype(dtype) (unsafe casting, as numpy)",
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
        doc="the identity, through which no gradient flows",
    )
)
