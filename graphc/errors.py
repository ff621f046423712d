"""The GraphcError family: every error graphc raises on purpose derives from GraphcError.

Sits at the bottom of the IR core; every other module may raise these.
"""

from __future__ import annotations


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit an op, raised when the node is built."""


class DTypeError(GraphcError, TypeError):
    """A dtype an op does not accept, or a value of an unsupported dtype."""


class InputError(GraphcError, ValueError):
    """A feed (or a graph's use of its inputs) that cannot run; raised before any kernel runs."""


class IndexOutOfRangeError(GraphcError, IndexError):
    """An index outside the array it indexes; nothing is ever read outside an array."""


class ArgumentError(GraphcError, ValueError):
    """An argument value an op does not accept (an unknown mode, a negative count, ...)."""


class FormatError(GraphcError, ValueError):
    """A .graphc file that is malformed, truncated, hostile or of an unknown version."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class VerifyError(GraphcError):
    """A graph that breaks an IR invariant (a bug in a pass or in the builder)."""


class PassError(GraphcError):
    """An optimization pass that failed or did not converge."""
