"""The dtypes graphc supports and their promotion rules (numpy 2, NEP 50).

Part of the IR core. dtype names are numpy's names and dtypes are `numpy.dtype` objects.
Promotion between two tensors is numpy's; Python scalars are weak: they take the
tensor's dtype when their kind fits (`float32 * 0.5` stays float32).
"""

from __future__ import annotations

import numpy as np

from graphc.errors import DTypeError

float32 = np.dtype("float32")
float64 = np.dtype("float64")
int32 = np.dtype("int32")
int64 = np.dtype("int64")
bool_ = np.dtype("bool")

SUPPORTED: tuple[np.dtype, ...] = (float32, float64, int32, int64, bool_)
FLOATS: tuple[np.dtype, ...] = (float32, float64)
INTS: tuple[np.dtype, ...] = (int32, int64)
NUMERIC: tuple[np.dtype, ...] = (*FLOATS, *INTS)
_NAMES = ", ".join(d.name for d in SUPPORTED)


def as_dtype(dtype: object) -> np.dtype:
    """Return the supported numpy dtype named by `dtype` (a name, numpy dtype or type)."""
    try:
        resolved = np.dtype(dtype)  # type: ignore[call-overload]
    except TypeError as error:
        raise DTypeError(f"{dtype!r} is not a dtype; graphc supports {_NAMES}") from error
    if resolved not in SUPPORTED:
        raise DTypeError(f"dtype {resolved.name} is not supported; graphc supports {_NAMES}")
    return resolved


def is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f"


def is_int(dtype: np.dtype) -> bool:
    return dtype.kind == "i"


def is_bool(dtype: np.dtype) -> bool:
    return dtype.kind == "b"


def promote(*dtypes: np.dtype) -> np.dtype:
    """Promote tensor dtypes as numpy does (all operands strong)."""
    return np.result_type(*dtypes)


def weak_scalar_dtype(value: bool | int | float, other: np.dtype | None) -> np.dtype:
    """The dtype a Python scalar takes next to a tensor of dtype `other` (NEP 50).

    Without a tensor beside it, a Python scalar gets numpy's default dtype
    (bool, int64 or float64).
    """
    if other is None:
        return as_dtype(np.asarray(value).dtype)
    return as_dtype(np.result_type(other, value))


def float_result(dtype: np.dtype) -> np.dtype:
    """The float dtype numpy's float math (exp, sqrt, /) gives for `dtype`.

    numpy gives float16 for bool; float16 is not supported, so bool gives float32.
    """
    if dtype.kind == "f":
        return dtype
    return float32 if dtype.kind == "b" else float64


def resolve_ufunc(ufunc: np.ufunc, dtypes: tuple[np.dtype, ...]) -> np.dtype:
    """The output dtype numpy's `ufunc` gives for input dtypes, restricted to SUPPORTED.

    Raises DTypeError where numpy has no loop (bool negative) or where numpy's
    result is an unsupported narrow integer (bool // bool is int8 in numpy).
    """
    try:
        resolved = ufunc.resolve_dtypes((*dtypes, None))[-1]
    except (TypeError, np.exceptions.DTypePromotionError) as error:
        names = ", ".join(d.name for d in dtypes)
        raise DTypeError(f"numpy's {ufunc.__name__} does not accept ({names})") from error
    if resolved == np.float16:
        return float32
    if resolved not in SUPPORTED:
        names = ", ".join(d.name for d in dtypes)
        raise DTypeError(
            f"{ufunc.__name__} of ({names}) gives {resolved.name} in numpy, which graphc "
            f"does not support; cast the operands to int32, int64 or a float first"
        )
    return resolved
