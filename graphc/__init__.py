"""graphc: define a tensor computation once as a symbolic graph, then run it fast.

Public API re-exports only; see ../shared/design/API.md for the contract.
"""

from __future__ import annotations

from graphc import config

config.prefer_fast_blas()  # before anything loads scipy's OpenBLAS
config.quiet_blas_threads()

import graphc.ops  # noqa: F401 - registers every op
from graphc import optim
from graphc.api import *  # noqa: F403
from graphc.api import __all__ as _api_names
from graphc.autodiff import grad
from graphc.dtypes import bool_, float32, float64, int32, int64
from graphc.errors import (
    ArgumentError,
    ArgumentTypeError,
    DeviceError,
    DTypeError,
    FileError,
    FormatError,
    GraphcError,
    IndexOutOfRangeError,
    InputError,
    InputTypeError,
    InternalError,
    PassError,
    ShapeError,
    UnsupportedError,
    VerifyError,
)
from graphc.format import FORMAT_VERSION, load, save
from graphc.function import Function, TensorSpec, function
from graphc.ir import Graph, Node, Value
from graphc.tensor import Tensor, Variable, constant, placeholder

__version__ = "0.1.0"

__all__ = [
    *_api_names,
    "ArgumentError",
    "ArgumentTypeError",
    "DTypeError",
    "DeviceError",
    "FileError",
    "FORMAT_VERSION",
    "FormatError",
    "Function",
    "Graph",
    "GraphcError",
    "IndexOutOfRangeError",
    "InputError",
    "InputTypeError",
    "InternalError",
    "Node",
    "PassError",
    "ShapeError",
    "UnsupportedError",
    "Tensor",
    "TensorSpec",
    "Value",
    "Variable",
    "VerifyError",
    "bool_",
    "constant",
    "float32",
    "float64",
    "function",
    "grad",
    "optim",
    "int32",
    "int64",
    "load",
    "placeholder",
    "save",
]
