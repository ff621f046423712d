"""Linear algebra op functions: matmul and dot.

Part of the IR core's front end. `dot` is a composite over matmul that follows
numpy.dot, which differs from matmul for N-D operands.
"""

from __future__ import annotations

from typing import Any

from graphc.api.elementwise import multiply
from graphc.tensor import Tensor, as_tensors, build1


def matmul(a: Any, b: Any) -> Tensor:
    """The matrix product with numpy's semantics: 1-D, 2-D and batched N-D."""
    return build1("matmul", as_tensors(a, b))


def dot(a: Any, b: Any) -> Tensor:
    """numpy.dot: a product for 0-d operands, matmul up to 2-D, and for N-D a sum over
    the last axis of a and the second-to-last of b (result a.shape[:-1] + b.shape[:-2]
    + b.shape[-1:]).
    """
    a, b = as_tensors(a, b)
    if a.ndim == 0 or b.ndim == 0:
        return multiply(a, b)
    if b.ndim <= 2:
        return matmul(a, b)
    # give a one unit axis per batch axis of b (plus the row axis matmul expects), so that
    # matmul's batch broadcasting pairs every leading index of a with every one of b
    batch = b.ndim - 2
    lead = a.ndim - 1
    expanded = build1("expand_dims", [a], {"axes": tuple(range(lead, lead + batch + 1))})
    product = matmul(expanded, b)  # a.shape[:-1] + b.shape[:-2] + (1, m)
    return build1("squeeze", [product], {"axes": (product.ndim - 2,)})
