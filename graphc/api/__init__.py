"""The symbolic op functions users call (`graphc.add`, `graphc.softmax`, ...).

Part of the IR core's front end. Each function accepts Tensors, Variables, numpy
arrays and Python numbers, and builds primitive nodes of the registry; the
composites (mean, softmax, gelu, ...) are written here over primitives, the
numerically stable way.
"""

from __future__ import annotations

from graphc.api import control, elementwise, nn, reduce, shape
from graphc.api.control import *  # noqa: F403
from graphc.api.elementwise import *  # noqa: F403
from graphc.api.indexing import getitem
from graphc.api.linalg import dot, matmul
from graphc.api.nn import *  # noqa: F403
from graphc.api.reduce import *  # noqa: F403
from graphc.api.shape import *  # noqa: F403

__all__ = [
    *control.__all__,
    *elementwise.__all__,
    *nn.__all__,
    *reduce.__all__,
    *shape.__all__,
    "dot",
    "getitem",
    "matmul",
]
