"""Host-side helpers the generated CUDA entry calls: launch sizes, device buffers carved
out of the per-call arena, fresh device arrays and device-to-device copies.

Part of graphc.kernels. The launch geometry lives here, so generated code and the
hand-written emitters agree on it:

- BLOCK threads per block for 1-D kernels (a power of two: block reductions halve it);
- TILE x TILE threads per block for matmul tiles;
- at most MAX_BLOCKS blocks: every kernel loops over its work with a grid stride, so
  any grid computes the same result.

On numba's CUDA simulator every thread is a Python thread, so the simulator gets small
blocks and grids; the kernels, and what they compute, are the same.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import cuda

from graphc.kernels.cuda.lib import SIMULATED

BLOCK = 8 if SIMULATED else 256
TILE = 4 if SIMULATED else 16
MAX_BLOCKS = 2 if SIMULATED else 65535
MAX_TILES = 2 if SIMULATED else 1024  # matmul blocks along each grid axis


def grid(n: int) -> int:
    """Blocks for a grid-stride kernel over n items (n > 0)."""
    return min((n + BLOCK - 1) // BLOCK, MAX_BLOCKS)


def tiles(n: int) -> int:
    """Blocks of TILE along one axis of a matmul grid over n (at least one)."""
    return min(max((n + TILE - 1) // TILE, 1), MAX_TILES)


def empty(shape: tuple[int, ...], dtype: Any, stream: Any) -> Any:
    """A new C-contiguous device array."""
    return cuda.device_array(shape, dtype=dtype, stream=stream)


def carve(arena: Any, start: int, shape: tuple[int, ...], dtype: Any, stream: Any) -> Any:
    """The arena's bytes from `start` as a C-contiguous device array of `shape` and `dtype`."""
    count = 1
    for d in shape:
        count *= d
    if count == 0:
        return cuda.device_array(shape, dtype=dtype, stream=stream)
    itemsize = np.dtype(dtype).itemsize
    return arena[start : start + itemsize * count].view(dtype).reshape(shape)


def copy(array: Any, stream: Any) -> Any:
    """A new device array holding `array`'s values."""
    result = cuda.device_array(array.shape, dtype=array.dtype, stream=stream)
    if array.size:
        result.copy_to_device(array, stream=stream)
    return result


def flat(array: Any) -> Any:
    """A contiguous device array as 1-D (a 0-d one as one element), without copying."""
    return array.reshape(max(array.size, 1) if array.ndim == 0 else array.size)


# ---- control flow (kernels/control_writer.py): the loop runs on the host, launching
# its body's kernels, with the carries on the device


def row(array: Any, t: int) -> Any:
    """Row `t` (axis 0) of a C-contiguous device array, as a device view of the rest of
    its shape (a 0-d array for a 1-d one)."""
    return array[t : t + 1].reshape(array.shape[1:])


def store(array: Any, t: int, value: Any, stream: Any) -> None:
    """Write device array `value` into row `t` of `array`."""
    if value.size:
        flat(row(array, t)).copy_to_device(flat(value), stream=stream)


def full(shape: tuple[int, ...], value: Any, stream: Any) -> Any:
    """A new device array of `shape` filled with the scalar `value` (of its dtype)."""
    return cuda.to_device(np.full(shape, value), stream=stream)


def holds(array: Any) -> bool:
    """The truth of a bool 0-d device array (the host waits for it)."""
    return bool(array.copy_to_host().reshape(-1)[0])
