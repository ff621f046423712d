"""Graph inputs: placeholders (fed per call), constants (baked in) and variables (state).

Part of the IR core. The reference interpreter supplies placeholder and variable
values itself; constants carry their array as the `value` attribute.
"""

from __future__ import annotations

import numpy as np

from graphc import dtypes
from graphc.errors import InternalError
from graphc.registry import NOT_DIFFERENTIABLE, AttrSpec, OpDef, register
from graphc.types import Sym, TensorType


def _no_reference(*_arrays: np.ndarray, **attrs: object) -> np.ndarray:
    raise InternalError(f"the interpreter supplies the value of {attrs.get('name')!r}")


def _infer_placeholder(*, name: str, dtype: str, shape: tuple[int | str, ...]) -> TensorType:
    return TensorType(
        dtypes.as_dtype(dtype), tuple(Sym(d) if isinstance(d, str) else d for d in shape)
    )


register(
    OpDef(
        "placeholder",
        _infer_placeholder,
        _no_reference,
        arity=0,
        attrs={"name": AttrSpec("str"), "dtype": AttrSpec("dtype"), "shape": AttrSpec("shape")},
        traits=frozenset({"source"}),
        grad=NOT_DIFFERENTIABLE,
        doc="A graph input fed at each call; a str dim is a size known at run time.",
    )
)


def _infer_constant(*, value: object) -> TensorType:
    array = value.array  # type: ignore[attr-defined]
    return TensorType(dtypes.as_dtype(array.dtype), tuple(int(d) for d in array.shape))


register(
    OpDef(
        "constant",
        _infer_constant,
        lambda *, value: value.array,
        arity=0,
        attrs={"value": AttrSpec("array")},
        traits=frozenset({"pure", "source"}),
        grad=NOT_DIFFERENTIABLE,
        doc="A value baked into the graph.",
    )
)


def _infer_variable(*, name: str, dtype: str, shape: tuple[int, ...]) -> TensorType:
    return TensorType(dtypes.as_dtype(dtype), tuple(shape))


register(
    OpDef(
        "variable",
        _infer_variable,
        _no_reference,
        arity=0,
        attrs={"name": AttrSpec("str"), "dtype": AttrSpec("dtype"), "shape": AttrSpec("ints")},
        traits=frozenset({"source", "stateful"}),
        grad=NOT_DIFFERENTIABLE,
        doc="State that lives across calls; its value is read at the start of a call.",
    )
)
