"""Helpers shared by the front-end op functions: argument normalization with errors
that name the op and the user's line.

Part of the IR core's front end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np

from graphc.errors import ArgumentError, ArgumentTypeError, GraphcError, ShapeError
from graphc.ir import located
from graphc.types import normalize_axes, normalize_axis

T = TypeVar("T")


fail = located


def checked(op: str, compute: Callable[..., T], *args: Any) -> T:
    """`compute(*args)`, with a GraphcError it raises re-raised naming `op` and the line."""
    try:
        return compute(*args)
    except GraphcError as error:
        raise fail(op, type(error), str(error)) from None


def flag(op: str, name: str, value: Any) -> bool:
    """A yes/no argument (keepdims, ...): a bool, or an int as numpy takes it."""
    if isinstance(value, bool | np.bool_ | int | np.integer):
        return bool(value)
    raise fail(op, ArgumentTypeError, f"{name} must be a bool, got {value!r:.60}")


def choice(op: str, name: str, value: Any, options: tuple[str, ...]) -> str:
    """A string argument that must be one of `options`."""
    if not isinstance(value, str):
        raise fail(op, ArgumentTypeError, f"{name} must be a str, got {value!r:.60}")
    if value not in options:
        allowed = " or ".join(repr(o) for o in options)
        raise fail(op, ArgumentError, f"{name} must be {allowed}, got {value!r:.60}")
    return value


def axes_of(op: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """User axes (None, int or sequence) as canonical sorted non-negative axes."""
    return checked(op, normalize_axes, axis, ndim)


def axis_of(op: str, axis: Any, ndim: int) -> int:
    return checked(op, normalize_axis, axis, ndim)


def pair(op: str, name: str, value: Any) -> tuple[int, int]:
    """An int or a pair of ints as a pair (stride, kernel, dilation arguments)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if isinstance(value, tuple | list) and all(
        isinstance(v, int) and not isinstance(v, bool) for v in value
    ):
        if len(value) == 2:
            return (value[0], value[1])
        raise fail(op, ShapeError, f"{name} must be an int or a pair of ints, got {value!r:.60}")
    raise fail(op, ArgumentTypeError, f"{name} must be an int or a pair of ints, got {value!r:.60}")
