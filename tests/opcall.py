"""Calling one registry entry directly, outside any graph: its type rule and its numpy
reference, checked against each other."""

from __future__ import annotations

import numpy as np

import graphc.ops  # noqa: F401 - registers every op
from graphc.registry import REGISTRY
from graphc.types import TensorType, type_of_array


def run_op(name: str, arrays: list[np.ndarray], attrs: dict) -> np.ndarray:
    """The op's reference result, after checking it has exactly the inferred type."""
    opdef = REGISTRY[name]
    frozen = opdef.check_attrs(attrs)
    inferred = opdef.infer(*(type_of_array(a) for a in arrays), **frozen)
    result = opdef.reference(*arrays, **frozen)
    assert isinstance(result, np.ndarray)
    assert type_of_array(result) == inferred
    return result


def infer(name: str, types: list[TensorType], attrs: dict) -> TensorType:
    """The op's type rule on `types`, with its attributes checked and defaulted."""
    opdef = REGISTRY[name]
    return opdef.infer(*types, **opdef.check_attrs(attrs))
