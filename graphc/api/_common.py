"""Helpers shared by the front-end op functions: argument normalization with errors
that name the op and the user's line.

Part of the IR core's front end.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from graphc.errors import ShapeError
from graphc.ir import located
from graphc.types import normalize_axes, normalize_axis

T = TypeVar("T")


fail = located


def checked(op: str, compute: Callable[..., T], *args: Any) -> T:
    """`compute(*args)`, with a ShapeError it raises re-raised naming `op` and the line."""
    try:
        return compute(*args)
    except ShapeError as error:
        raise fail(op, ShapeError, str(error)) from None


def axes_of(op: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """User axes (None, int or sequence) as canonical sorted non-negative axes."""
    return checked(op, normalize_axes, axis, ndim)


def axis_of(op: str, axis: Any, ndim: int) -> int:
    return checked(op, normalize_axis, axis, ndim)


def pair(op: str, name: str, value: Any) -> tuple[int, int]:
    """An int or a pair of ints as a pair (stride, kernel, dilation arguments)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value, value)
    if (
        isinstance(value, tuple | list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        return (value[0], value[1])
    raise fail(op, ShapeError, f"{name} must be an int or a pair of ints, got {value!r}")
