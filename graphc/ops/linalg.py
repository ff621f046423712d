"""Linear algebra: matmul with numpy's semantics (1-D, 2-D and batched N-D).

Part of the IR core. `dot` is a front-end composite over matmul (graphc/api/linalg.py).
"""

from __future__ import annotations

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


register(OpDef("matmul", _infer_matmul, _matmul, arity=2, doc="numpy.matmul"))
