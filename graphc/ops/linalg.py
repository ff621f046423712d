"""Linear algebra: matmul with numpy's semantics (1-D, 2-D and batched N-D).

Part of the IR core. `dot` is a front-end composite over matmul (graphc/api/linalg.py).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import ShapeError
from graphc.registry import OpDef, register
from graphc.types import TensorType, broadcast_shapes, unify_dims


def _infer_matmul(a: TensorType, b: TensorType) -> TensorType:
    if a.ndim == 0 or b.ndim == 0:
        raise ShapeError("matmul does not accept 0-d operands (use multiply)")
    dtype = dtypes.resolve_ufunc(np.matmul, (a.dtype, b.dtype))
    a_shape = (1, *a.shape) if a.ndim == 1 else a.shape
    b_shape = (*b.shape, 1) if b.ndim == 1 else b.shape
    unify_dims(
        a_shape[-1], b_shape[-2], "matmul contracts the last axis of a with the second-to-last of b"
    )
    batch = broadcast_shapes(a_shape[:-2], b_shape[:-2])
    shape = (*batch, a_shape[-2], b_shape[-1])
    if b.ndim == 1:
        shape = shape[:-1]
    if a.ndim == 1:
        shape = (*shape[:-2], shape[-1]) if b.ndim > 1 else shape[:-1]
    return TensorType(dtype, shape)


def _matmul(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    dtype = dtypes.resolve_ufunc(np.matmul, (a.dtype, b.dtype))
    return np.asarray(np.matmul(a, b)).astype(dtype, copy=False)


def _swap_last(api: Any, x: Any) -> Any:
    perm = (*range(x.ndim - 2), x.ndim - 1, x.ndim - 2)
    return api.build1("transpose", [x], {"perm": perm})


def _matmul_grad(api: Any, g: Any, y: Any, a: Any, b: Any) -> list[Any]:
    """ga = g @ b^T, gb = a^T @ g, with 1-D operands viewed as a row / column matrix.
    Batch broadcasting is undone by autodiff, which sums each back to its input's shape."""
    a2 = a if a.ndim > 1 else api.expand_dims(a, 0)
    b2 = b if b.ndim > 1 else api.expand_dims(b, -1)
    g2 = g
    if a.ndim == 1:
        g2 = api.expand_dims(g2, -2 if b.ndim > 1 else 0)
    if b.ndim == 1:
        g2 = api.expand_dims(g2, -1)
    ga = api.matmul(g2, _swap_last(api, b2))
    if b.ndim == 2 and a.ndim > 2 and all(isinstance(d, int) for d in (a.shape[-1], b.shape[1])):
        # a weight shared by a batch: the sum over the batch of a^T @ g is one GEMM over
        # the batch folded into the contracted axis, not a GEMM per batch entry summed
        flat_a = api.reshape(a, (-1, a.shape[-1]))
        gb = api.matmul(_swap_last(api, flat_a), api.reshape(g, (-1, b.shape[1])))
    else:
        gb = api.matmul(_swap_last(api, a2), g2)
    if a.ndim == 1:
        ga = api.squeeze(api.build1("sum_to", [ga, a2]), 0)
    if b.ndim == 1:
        gb = api.squeeze(api.build1("sum_to", [gb, b2]), -1)
    return [ga, gb]


register(OpDef("matmul", _infer_matmul, _matmul, arity=2, grad=_matmul_grad, doc="numpy.matmul"))
