"""Every op of the registry lowers on every target: CONTRIBUTING.md's checklist for a
new op, enforced. (The op table, tests/optable.py, runs each one against numpy.)"""

from __future__ import annotations

import pytest

from graphc.kernels.cpu import emit
from graphc.kernels.plan import SOURCE_HOMES
from graphc.registry import REGISTRY

COMPUTING = sorted(name for name in REGISTRY if name not in SOURCE_HOMES)


def _cuda_emitters() -> dict:
    from graphc.kernels.cuda import codegen, nn, ops  # noqa: F401  (registers the emitters)

    return codegen.EMITTERS


@pytest.mark.parametrize("name", COMPUTING)
def test_every_op_has_a_cpu_emitter(name: str) -> None:
    from graphc.kernels.cpu import ops  # noqa: F401  (registers the emitters)

    assert name in emit.EMITTERS, f"op {name!r}: no CPU emitter (see CONTRIBUTING.md)"


@pytest.mark.parametrize("name", COMPUTING)
def test_every_op_has_a_cuda_emitter(name: str) -> None:
    assert name in _cuda_emitters(), f"op {name!r}: no CUDA emitter (see CONTRIBUTING.md)"
