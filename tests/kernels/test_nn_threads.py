"""The neural-net helpers on every thread (``K_par_c`` in graphc.kernels.cpu.nn): bit for
bit their one-thread twins ``K_c`` on batches smaller and larger than the number of
slices, empty ones included; the emitters choose them only where the entry may use
threads and the batch may hold more than one entry; the Python entry that answers while
the entry compiles calls the twins (tests/runtime/test_background.py checks that it
agrees with the compiled entry bit for bit); and graphc asks OpenBLAS's idle threads to
sleep soon (graphc.config.quiet_blas_threads)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from graphc import config
from graphc.ir import GraphBuilder
from graphc.kernels.cpu import nn as nnk
from graphc.kernels.emit import emitter as emitter_of

CONV = (1, 2, 1, 0, 1, 1, 2)  # sh, sw, top, left, dh, dw, groups
POOL = (3, 2, 2, 1, 1, 0)  # kh, kw, sh, sw, ph, pw


def _same(twin, threaded, inputs, like, *numbers) -> None:
    """threaded(*inputs, out, *numbers) gives twin's out bit for bit, whatever was in it."""
    want = np.full(like.shape, np.nan, like.dtype)
    got = np.full(like.shape, 7.5, like.dtype)
    twin(*inputs, want, *numbers)
    threaded(*inputs, got, *numbers)
    np.testing.assert_array_equal(got, want)
    assert np.array_equal(np.signbit(got), np.signbit(want))


@pytest.mark.parametrize("batch", [0, 1, 5, 37])
def test_every_threaded_helper_gives_its_twins_bits(batch: int) -> None:
    rng = np.random.default_rng(batch)

    def normal(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    x, w = normal(batch, 4, 9, 8), normal(6, 2, 3, 3)  # two groups
    conv = np.empty((batch, 6, 9, 4), np.float32)
    g = normal(*conv.shape)
    g[:, 0] = -0.0  # (signed zeros survive the same way)
    _same(nnk.conv2d_c, nnk.conv2d_par_c, (x, w), conv, *CONV)
    _same(nnk.conv2d_grad_input_c, nnk.conv2d_grad_input_par_c, (g, w), x, *CONV)
    _same(nnk.conv2d_grad_weight_c, nnk.conv2d_grad_weight_par_c, (x, g), w, *CONV)
    wt = normal(4, 3, 3, 3)
    transposed = np.empty((batch, 3, 17, 16), np.float32)
    numbers = (2, 2, 1, 1, 1, 1, 1)
    _same(nnk.conv_transpose2d_c, nnk.conv_transpose2d_par_c, (x, wt), transposed, *numbers)
    x[:, 1, 2, 3] = np.nan
    pooled = np.empty((batch, 4, 5, 7), np.float32)
    _same(nnk.max_pool2d_c, nnk.max_pool2d_par_c, (x,), pooled, *POOL)
    _same(nnk.avg_pool2d_c, nnk.avg_pool2d_par_c, (x,), pooled, *POOL, 1)
    gp = normal(*pooled.shape)
    _same(nnk.max_pool2d_grad_c, nnk.max_pool2d_grad_par_c, (x, gp), x, *POOL)
    _same(nnk.avg_pool2d_grad_c, nnk.avg_pool2d_grad_par_c, (gp,), x, *POOL, 0)
    tiles = np.empty((batch, 4, 4, 4), np.float32)
    _same(nnk.max_pool2d_2x2_c, nnk.max_pool2d_2x2_par_c, (x,), tiles)
    gt = normal(*tiles.shape)
    _same(nnk.max_pool2d_grad_2x2_c, nnk.max_pool2d_grad_2x2_par_c, (x, gt), x)


def test_the_weight_gradient_adds_its_terms_in_the_twins_order_block_by_block() -> None:
    # 64*64*16*16 weights: nnk.TERMS holds 4 images' terms, so 5 images take two blocks
    assert nnk.TERMS // (64 * 64 * 16 * 16) == 4
    rng = np.random.default_rng(3)
    x = rng.standard_normal((5, 64, 16, 16)).astype(np.float32)
    g = rng.standard_normal((5, 64, 1, 1)).astype(np.float32)
    like = np.empty((64, 64, 16, 16), np.float32)
    _same(nnk.conv2d_grad_weight_c, nnk.conv2d_grad_weight_par_c, (x, g), like, *[1] * 4, 0, 0, 1)


def _placeholder(builder: GraphBuilder, name: str, shape: tuple):
    return builder.add1("placeholder", (), {"name": name, "dtype": "float32", "shape": shape})


class _Lines:
    """The emitters' view of the code generator: types from the graph, lines recorded."""

    def __init__(self, builder: GraphBuilder, threads: bool) -> None:
        self.lines: list[str] = []
        self.type_of = builder.type_of
        self.threads = threads

    def arg(self, value) -> str:
        return f"v{value.node}"

    def out(self, node, index: int = 0) -> str:
        return "out"

    def line(self, statement: str) -> None:
        self.lines.append(statement)


@pytest.mark.parametrize(
    ("threads", "batch", "form"),
    [(True, "n", "_par_c("), (True, 8, "_par_c("), (True, 1, "_c("), (False, 8, "_c(")],
)
def test_the_emitters_split_a_batch_only_with_threads_and_more_than_one_entry(
    threads: bool, batch: int | str, form: str
) -> None:
    builder = GraphBuilder()
    x = _placeholder(builder, "x", (batch, 2, 8, 8))
    # one output channel: the weight gradient's own first axis does not count, the
    # batch of x does
    w = _placeholder(builder, "w", (1, 2, 3, 3))
    attrs = {"stride": (1, 1), "padding": ((0, 0), (0, 0)), "dilation": (1, 1), "groups": 1}
    conv = builder.add1("conv2d", (x, w), attrs)
    weight_grad = builder.add1("conv2d_grad_weight", (x, conv, w), attrs)
    pool = {"kernel": (2, 2), "stride": (2, 2), "padding": (0, 0), "ceil_mode": False}
    pooled = builder.add1("max_pool2d", (x,), pool)
    emitted = (
        (conv, "nnk.conv2d"),
        (weight_grad, "nnk.conv2d_grad_weight"),
        (pooled, "nnk.max_pool2d_2x2"),
    )
    for value, name in emitted:
        emitter = _Lines(builder, threads)
        emitter_of("cpu", builder.node(value).op).emit(emitter, builder.node(value))
        (line,) = emitter.lines
        assert line.startswith(name + form)


def test_graphc_asks_openblas_threads_to_sleep_soon_unless_told_otherwise(monkeypatch) -> None:
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT", raising=False)
    monkeypatch.delitem(sys.modules, "scipy.linalg", raising=False)
    config.quiet_blas_threads()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == config.BLAS_THREAD_TIMEOUT
    monkeypatch.setenv("OPENBLAS_THREAD_TIMEOUT", "28")
    config.quiet_blas_threads()
    assert os.environ["OPENBLAS_THREAD_TIMEOUT"] == "28"  # the user's value stands
    monkeypatch.delenv("OPENBLAS_THREAD_TIMEOUT")
    monkeypatch.setitem(sys.modules, "scipy.linalg", sys)  # (loaded: too late to matter)
    config.quiet_blas_threads()
    assert "OPENBLAS_THREAD_TIMEOUT" not in os.environ


BENCH = Path(__file__).resolve().parents[2] / "bench"
CACHED_ENTRY = """
import sys

import numpy as np

sys.path.insert(0, sys.argv[1])
import models  # (bench/models.py: W7, the LeNet step, whose entry calls conv2d_par_c)

step = models.lenet_step("eager")
assert "_par_c(" in step.source
loss = step(*models.lenet_batch())
print("ok", float(np.asarray(loss).reshape(-1)[0]))
"""


def test_an_entry_calling_threaded_helpers_runs_when_loaded_from_the_cache(tmp_path) -> None:
    """The second process loads the entry from numba's cache without compiling any
    threaded code: graphc must start numba's thread pool itself first (it once called
    the pool through a null address and crashed)."""
    env = {
        **os.environ,
        "GRAPHC_CACHE_DIR": str(tmp_path),
        "NUMBA_NUM_THREADS": "2",
        "GRAPHC_PARALLEL": "1",
        "GRAPHC_DEVICE": "cpu",
    }
    # (the library's own numba cache where it always is: with an empty one, the second
    # process loaded a threaded helper from it, which started the pool by chance)
    env.pop("NUMBA_CACHE_DIR", None)
    results = []
    for _ in range(2):
        done = subprocess.run(
            [sys.executable, "-c", CACHED_ENTRY, str(BENCH)],
            env=env,
            capture_output=True,
            text=True,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(done.stdout.split()[-1])
    assert results[0] == results[1]
