"""Every op of the registry lowers on every target: CONTRIBUTING.md's checklist for a
new op, enforced. The emitters of both targets live in one registry keyed by (target,
op) (kernels/emit.py); here every op has an entry on every target, and every row of
the op table (tests/opinfo.py) generates, on every target, a module that Python
compiles. (The op table itself, tests/optable.py, runs each row against numpy.)"""

from __future__ import annotations

import os
import subprocess
import sys

import opinfo
import pytest

import graphc as gc
from graphc.kernels import emit, plan
from graphc.kernels.plan import SOURCE_HOMES
from graphc.registry import REGISTRY

COMPUTING = sorted(name for name in REGISTRY if name not in SOURCE_HOMES)
TARGETS = sorted(emit.TARGETS)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("name", COMPUTING)
def test_every_op_has_an_emitter_on_every_target(name: str, target: str) -> None:
    assert name in emit.ops(target), f"op {name!r}: no {target} emitter (see CONTRIBUTING.md)"


def test_the_registry_refuses_a_second_emitter_and_an_unknown_target() -> None:
    with pytest.raises(ValueError, match="already has a cpu emitter"):
        emit.emits("cpu", "add")(lambda w, node: None)
    with pytest.raises(ValueError, match="unknown target"):
        emit.emits("tpu", "add")
    with pytest.raises(NotImplementedError, match="no emitter for op 'no_such_op'"):
        emit.emitter("cpu", "no_such_op")


def _generate(target: str, program: plan.Program) -> str:
    if target == "cpu":
        from graphc.kernels.cpu import codegen

        return codegen.generate(program, parallel=True, min_parallel=1).listing
    from graphc.kernels.cuda import codegen as cuda_codegen

    return cuda_codegen.generate(program).listing


def _program(case: opinfo.OpCase, symbolic: bool) -> plan.Program:
    dtypes, shapes = case.dtypes[0], case.shapes[0]
    placeholders = [
        gc.placeholder((None,) * len(shape) if symbolic else shape, dtype)
        for shape, dtype in zip(shapes, dtypes, strict=True)
    ]
    result = case.build(*placeholders)
    outputs = list(result) if isinstance(result, tuple | list) else [result]
    return plan.plan(gc.function(placeholders, outputs, device="reference").graph)


@pytest.mark.parametrize("target", TARGETS)
@pytest.mark.parametrize("case", opinfo.CASES, ids=lambda case: case.id)
def test_every_op_table_row_generates_a_module_python_compiles(
    case: opinfo.OpCase, target: str
) -> None:
    for symbolic in (False, True) if case.symbolic else (False,):
        program = _program(case, symbolic)
        source = _generate(target, program)
        compile(source, f"<{case.id} on {target}>", "exec")
        for node in program.steps:
            assert f"= {node.op}" in source  # each step's IR line heads its statements


def _cuda_listing(simulated: bool) -> str:
    """The CUDA module of a small training step, generated in a fresh process."""
    script = (
        "import numpy as np\n"
        "import graphc as gc\n"
        "from graphc.kernels import plan\n"
        "from graphc.kernels.cuda import codegen\n"
        "x = gc.placeholder((None, 6), 'float32', name='x')\n"
        "w = gc.Variable(np.ones((6, 3), 'float32'), name='w')\n"
        "loss = gc.mean(gc.logsumexp(gc.sin(x @ w) * 0.5, axis=1) + gc.sqrt(gc.abs(x)).sum())\n"
        "(gw,) = gc.grad(loss, [w])\n"
        "f = gc.function([x], loss, updates={w: w - 0.1 * gw}, device='reference')\n"
        "print(codegen.generate(plan.plan(f.graph)).listing, end='')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "NUMBA_ENABLE_CUDASIM"}
    if simulated:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_cuda_text_is_the_same_on_the_simulator_as_on_a_gpu() -> None:
    """CI runs CUDA code on numba's simulator only: it must be the text a GPU runs."""
    simulated = _cuda_listing(simulated=True)
    assert "@cuda.jit(cache=True)" in simulated
    assert "cl.sin(" in simulated
    assert simulated == _cuda_listing(simulated=False)
