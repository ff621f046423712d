"""The op families; importing this package registers every op.

Part of the IR core. One file per family; each op is defined once.
"""

from __future__ import annotations

from graphc.ops import control, elementwise, fused, index, linalg, nn, reduce, shape, source

__all__ = ["control", "elementwise", "fused", "index", "linalg", "nn", "reduce", "shape", "source"]
