"""Compiling a graph's kernels in several processes (runtime/compile.py): every process
takes the next unit from one shared counter, and what a child does not deliver is
compiled here."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import textwrap

import pytest

from graphc.runtime import compile as rc

fork_only = pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="needs os.fork"
)


def _take_all(claims: rc._Claims, total: int, pipe) -> None:  # type: ignore[no-untyped-def]
    taken = []
    while (index := claims.take(total)) is not None:
        taken.append(index)
    pipe.send(taken)


@fork_only
def test_shared_claims_hand_out_every_index_once_across_processes() -> None:
    total = 500
    claims = rc._Claims(shared=True)
    context = multiprocessing.get_context("fork")
    pipes, children = [], []
    for _ in range(2):
        mine, theirs = context.Pipe()
        child = context.Process(target=_take_all, args=(claims, total, theirs))
        child.start()
        pipes.append(mine)
        children.append(child)
    here = []
    while (index := claims.take(total)) is not None:
        here.append(index)
    taken = here + [i for pipe in pipes for i in pipe.recv()]
    for child in children:
        child.join(30)
        assert child.exitcode == 0
    assert sorted(taken) == list(range(total))
    assert claims.take(total) is None


def test_claims_alone_count_up_to_the_total() -> None:
    claims = rc._Claims(shared=False)
    assert [claims.take(3) for _ in range(5)] == [0, 1, 2, None, None]


SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import graphc as gc
    from graphc.runtime import compile as rc

    mode = sys.argv[1]
    if mode == "child-dies":
        # a child that takes two units and dies before compiling either
        def _child(work, claims=None):
            claims.take(len(work)), claims.take(len(work))
            os._exit(3)
        rc._child = _child

    x = gc.placeholder((None, 6), "float32", name="x")
    h = x
    for i in range(6):  # distinct kernels: each block's constant differs
        h = gc.tanh(h * (1.5 + i)) - gc.max(h, axis=0, keepdims=True) * 0.5
    f = gc.function([x], [h, gc.sum(h * h)], device="cpu")
    kernels = f._executable.generated.kernels
    report = rc.compile_kernels(kernels, processes=2)
    a = np.random.default_rng(0).standard_normal((4, 6)).astype(np.float32)
    got = f(a)
    want = gc.function([x], [h, gc.sum(h * h)], device="reference")(a)
    print(json.dumps({
        "kernels": sorted(k.name for k in kernels),
        "reported": sorted(c.name for c in report),
        "origins": sorted(c.origin for c in report),
        "close": all(np.allclose(g, w, rtol=1e-5, atol=1e-6) for g, w in zip(got, want)),
    }))
    """
)


def _run(tmp_path, mode: str) -> dict:  # type: ignore[no-untyped-def]
    env = {
        **os.environ,
        "GRAPHC_CACHE_DIR": str(tmp_path / mode),
        "NUMBA_CACHE_DIR": str(tmp_path / mode),
    }
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT, mode], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@fork_only
def test_two_processes_share_the_kernels_and_each_is_reported_once(tmp_path) -> None:
    result = _run(tmp_path, "shared")
    assert result["close"]
    assert len(result["kernels"]) >= 4
    assert result["reported"] == result["kernels"]
    # both processes compiled some: this one ("compiled") and the child ("worker")
    assert set(result["origins"]) == {"compiled", "worker"}, result


@fork_only
def test_units_a_dead_child_took_are_compiled_here(tmp_path) -> None:
    result = _run(tmp_path, "child-dies")
    assert result["close"]
    assert result["reported"] == result["kernels"]
    assert set(result["origins"]) == {"compiled"}, result


HELPERS = textwrap.dedent(
    """
    import json, sys
    import numpy as np
    import graphc as gc
    from graphc.kernels.cpu import arrays, lib, nn

    x = gc.placeholder((None, 2, 8, 8), "float32", name="x")
    w = gc.Variable(np.random.default_rng(1).standard_normal((3, 2, 3, 3)).astype(np.float32))
    h = gc.max_pool2d(gc.relu(gc.conv2d(x, w, padding=1)), 2)
    flat = gc.reshape(h, (-1, 48))
    both = gc.concatenate([flat, flat * 2.0], axis=1)
    loss = gc.sum(both * both)
    (gw,) = gc.grad(loss, [w])
    f = gc.function([x], [loss, gw], device="cpu", compile="eager")
    a = np.random.default_rng(0).standard_normal((4, 2, 8, 8)).astype(np.float32)
    got = f(a)
    want = gc.function([x], [loss, gw], device="reference")(a)
    overloads = {}
    for module in (arrays, lib, nn):
        for name, value in vars(module).items():
            if hasattr(value, "overloads") and value.overloads:
                overloads[module.__name__ + "." + name] = [str(s) for s in value.overloads]
    print(json.dumps({
        "close": all(np.allclose(g, r, rtol=1e-4, atol=1e-4) for g, r in zip(got, want)),
        "overloads": overloads,
        "helpers": sorted(c.name for c in f.report().kernels if c.what == "library helper"),
    }))
    """
)


def test_library_helpers_compile_once_beside_the_kernels(tmp_path) -> None:
    """compile="eager" compiles the library helpers the entry calls (conv, pooling,
    concatenation...) with the kernels, for the very types the compiled entry passes:
    none is compiled a second time for other types, or for literal values (a bare
    number in the entry would be typed as a literal, one compile per value)."""
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", HELPERS], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["close"]
    expected = {"graphc.kernels.cpu.nn.conv2d_c", "graphc.kernels.cpu.nn.max_pool2d_2x2_c"}
    assert expected <= set(result["helpers"]), result["helpers"]
    literal = {k: v for k, v in result["overloads"].items() if any("Literal" in s for s in v)}
    assert not literal, literal
    public = ("conv2d_c", "conv2d_grad_weight_c", "max_pool2d_2x2_c", "max_pool2d_grad_2x2_c")
    public += ("place",)
    twice = {
        k: v for k, v in result["overloads"].items() if k.rsplit(".", 1)[1] in public and len(v) > 1
    }
    assert not twice, twice


WARM = textwrap.dedent(
    """
    import sys
    import numpy as np
    import graphc as gc

    x = gc.placeholder((None, 8), "float32", name="x")
    y = gc.tanh(x) * 2 + gc.sum(x * x, axis=1, keepdims=True)
    f = gc.function([x], y, device="cpu", compile=sys.argv[1])
    out = f(np.linspace(-1, 1, 24, dtype=np.float32).reshape(3, 8))
    print(repr(float(out.sum())), "numba.np.arraymath" in sys.modules, f.compiled)
    """
)


def test_a_warm_process_loads_its_code_without_numbas_registries(tmp_path) -> None:
    """Code found in the disk cache is loaded without refreshing numba's target context
    (which imports every typing and lowering registry: 0.3 s of a warm first result);
    it runs and gives the same result as the code compiled in the first process."""
    env = {**os.environ, "GRAPHC_CACHE_DIR": str(tmp_path), "NUMBA_CACHE_DIR": str(tmp_path)}
    lines = []
    for mode in ("eager", "background"):
        done = subprocess.run(
            [sys.executable, "-c", WARM, mode], env=env, capture_output=True, text=True
        )
        assert done.returncode == 0, done.stderr[-3000:]
        lines.append(done.stdout.split())
    (cold_sum, cold_registries, _), (warm_sum, warm_registries, warm_mode) = lines
    assert cold_registries == "True"  # (compiling loads them)
    assert (warm_sum, warm_registries, warm_mode) == (cold_sum, "False", "native")
