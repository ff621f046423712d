"""The GraphcError family: every error graphc raises on purpose derives from GraphcError.

Sits at the bottom of the IR core; every other module may raise these. Each class is
also the builtin exception a Python user would catch for that kind of mistake, so
`except ValueError:` around a call catches a bad shape as well as numpy's own, and
`except graphc.GraphcError:` catches everything graphc raises on purpose. The base
class itself is never raised (a test walks the package for `raise GraphcError(`).

    class                 also a              for
    ShapeError            ValueError         shapes that do not fit an op
    DTypeError            TypeError          a dtype an op does not accept
    InputError            ValueError         a feed (or a function's use of its inputs)
    InputTypeError        TypeError          a function's input that is not a placeholder
    IndexOutOfRangeError  IndexError         an index outside the array it indexes
    ArgumentError         ValueError         an argument value graphc does not accept
    ArgumentTypeError     TypeError          an argument of the wrong kind
    FormatError           ValueError         a path that is not a readable .graphc file
    FileError             OSError            a file graphc cannot write
    DeviceError           RuntimeError       a device that cannot run here
    UnsupportedError      NotImplementedError  something graphc does not do (yet)
    InternalError         RuntimeError       a broken invariant: a bug in graphc
    VerifyError           RuntimeError       a graph that breaks an IR invariant
    PassError             RuntimeError       an optimization pass that failed
"""

from __future__ import annotations


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose (never raised itself)."""


class ShapeError(GraphcError, ValueError):
    """Shapes that do not fit an op, raised when the node is built."""


class DTypeError(GraphcError, TypeError):
    """A dtype an op does not accept, or a value of an unsupported dtype."""


class InputError(GraphcError, ValueError):
    """A feed (or a graph's use of its inputs) that cannot run; raised before any kernel runs."""


class InputTypeError(InputError, TypeError):
    """A function input of the wrong kind (a Variable or a computed Tensor where a
    placeholder belongs); an InputError, and a TypeError."""


class IndexOutOfRangeError(GraphcError, IndexError):
    """An index outside the array it indexes; nothing is ever read outside an array."""


class ArgumentError(GraphcError, ValueError):
    """An argument value an op does not accept (an unknown mode, a negative count, ...)."""


class ArgumentTypeError(GraphcError, TypeError):
    """An argument of the wrong kind (a list where a dict belongs, a Tensor where a
    concrete value belongs, a symbolic Tensor used as a Python bool, ...)."""


class FormatError(GraphcError, ValueError):
    """A .graphc file that is malformed, truncated, hostile or of an unknown version, or a
    path that is not a readable file at all (a directory, say)."""

    def __init__(self, path: object, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = path
        self.reason = reason


class FileError(GraphcError, OSError):
    """A file graphc cannot write (a missing folder, no permission, a full disk): an
    OSError with the errno and file name of the failure underneath."""


class DeviceError(GraphcError, RuntimeError):
    """A device that cannot run here (no GPU, no driver), or a call that needs another."""


class UnsupportedError(GraphcError, NotImplementedError):
    """Something graphc does not do (yet), such as a gradient an op has no rule for."""


class InternalError(GraphcError, RuntimeError):
    """A broken invariant inside graphc: a bug, to be reported, never the user's mistake."""


class VerifyError(InternalError):
    """A graph that breaks an IR invariant (a bug in a pass or in the builder)."""


class PassError(InternalError):
    """An optimization pass that failed or did not converge."""
