"""The `graphc` command, run as users run it: a subprocess of the installed entry point
(`python -m graphc`, the same main() as the console script)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import graphc as gc
from graphc.cli import to_dot

COMMANDS = ("info", "run", "optimize", "show", "bench")


def graphc(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "GRAPHC_DEVICE": "reference"}
    return subprocess.run(
        [sys.executable, "-m", "graphc", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=env,
        check=False,
        timeout=300,
    )


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A small classifier with a training step's updates: x -> logits, probabilities."""
    tmp = tmp_path_factory.mktemp("cli")
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.Variable(rng.standard_normal((4, 3)).astype("float32"), name="w")
    logits = x @ w
    fn = gc.function(
        [x],
        {"logits": logits, "probs": gc.softmax(logits, axis=-1), "total": gc.sum(logits)},
        updates={w: w * np.float32(0.9)},
    )
    gc.save(tmp / "model.graphc", fn)
    np.save(tmp / "x.npy", rng.standard_normal((2, 4)).astype("float32"))
    np.save(tmp / "big.npy", rng.standard_normal((40, 4)).astype("float32"))
    np.savez(tmp / "inputs.npz", x=np.ones((2, 4), "float32"))
    (tmp / "notes.txt").write_text("not an array")
    return tmp / "model.graphc"


def _expected(model: Path, x: np.ndarray) -> dict[str, np.ndarray]:
    return gc.load(model, device="reference")(x)


def _one_line_error(done: subprocess.CompletedProcess, text: str) -> None:
    assert done.returncode == 1, done
    assert done.stderr.startswith("graphc: error:"), done.stderr
    assert text in done.stderr
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("command", COMMANDS)
def test_every_subcommand_has_help(command: str, model: Path) -> None:
    done = graphc(command, "--help", cwd=model.parent)
    assert done.returncode == 0
    assert f"usage: graphc {command}" in done.stdout


def test_info_shows_signature_ops_variables_and_versions(model: Path) -> None:
    done = graphc("info", model.name, cwd=model.parent)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert f"graphc format version {gc.FORMAT_VERSION}" in out
    assert f"graphc {gc.__version__}" in out
    assert "x: float32[?,4]" in out
    assert "probs: float32[?,3]" in out
    assert "w: float32[4, 3]  48 B" in out
    assert "updates:     1 (a training step)" in out
    assert any(line.split() == ["matmul", "1"] for line in out.splitlines())


def test_run_prints_small_outputs_and_writes_npz(model: Path) -> None:
    x = np.load(model.parent / "x.npy")
    want = _expected(model, x)
    done = graphc("run", model.name, "--input", "x=x.npy", "-o", "out.npz", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "probs: float32[2, 3] = [[" in done.stdout
    assert "wrote 3 output(s) to out.npz" in done.stdout
    with np.load(model.parent / "out.npz") as got:
        assert sorted(got.files) == ["logits", "probs", "total"]
        for name, value in want.items():
            np.testing.assert_allclose(got[name], value, rtol=1e-6)


def test_run_reads_npz_inputs_and_summarizes_large_outputs(model: Path) -> None:
    done = graphc("run", model.name, "--input", "inputs.npz", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "total: float32[] =" in done.stdout
    done = graphc("run", model.name, "-i", "x=big.npy", cwd=model.parent)
    assert "logits: float32[40, 3]  min " in done.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "model.graphc"], "missing input(s) ['x']"),
        (["run", "model.graphc", "--input", "y=x.npy"], "no input named 'y'"),
        (["run", "model.graphc", "--input", "x=nothere.npy"], "does not exist"),
        (["run", "model.graphc", "--input", "x=notes.txt"], "cannot read"),
        (["run", "model.graphc", "--input", "x=model.graphc"], "has no array named 'x'"),
        (["run", "model.graphc", "--input", "x=inputs.npz", "--device", "tpu"], "device"),
        (["info", "missing.graphc"], "missing.graphc"),
        (["info", "x.npy"], "not a graphc file"),
        (["show", "model.graphc", "-o", "graph.txt"], "must end in"),
        (["bench", "model.graphc", "--dim", "x.0=many"], "expected NAME=SIZE"),
        (["bench", "model.graphc", "--dim", "y.0=3"], "no input size is named 'y.0'"),
    ],
)
def test_user_errors_print_one_line_and_exit_1(model: Path, args, message: str) -> None:
    _one_line_error(graphc(*args, cwd=model.parent), message)


def test_a_wrong_shape_is_an_input_error(model: Path) -> None:
    np.save(model.parent / "wrong.npy", np.ones((2, 5), "float32"))
    done = graphc("run", model.name, "-i", "x=wrong.npy", cwd=model.parent)
    _one_line_error(done, "input 'x'")


def test_optimize_writes_a_file_that_loads_without_the_passes(model: Path) -> None:
    done = graphc("optimize", model.name, "-o", "fast.graphc", "--report", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "wrote fast.graphc" in done.stdout
    assert "fuse" in done.stdout
    fast = gc.load(model.parent / "fast.graphc", device="reference")
    assert [r.name for r in fast.report().records] == ["plan_memory"]
    assert any(n.op == "fused" for n in fast.saved_form()[0].nodes)
    x = np.load(model.parent / "x.npy")
    got = fast(x)  # one call: each call applies the update to w
    for name, value in _expected(model, x).items():
        np.testing.assert_allclose(got[name], value, rtol=1e-6)
    info = graphc("info", "fast.graphc", cwd=model.parent)
    assert "optimized" in info.stdout
    assert "fused" in info.stdout


def test_show_writes_dot_with_fused_clusters_and_shapes(model: Path) -> None:
    done = graphc("show", model.name, "-o", "graph.dot", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    dot = (model.parent / "graph.dot").read_text()
    assert dot.startswith('digraph "model.graphc" {')
    assert dot.rstrip().endswith("}")
    assert "subgraph cluster_" in dot  # a fused group
    assert 'label="float32[x.0,3]"' in dot  # shapes on the edges
    printed = graphc("show", model.name, "--as-defined", cwd=model.parent)
    assert "cluster" not in printed.stdout
    assert "softmax" not in printed.stdout
    assert printed.stdout.count("->") > 5


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")
def test_show_renders_svg_through_graphviz(model: Path) -> None:
    done = graphc("show", model.name, "-o", "graph.svg", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "<svg" in (model.parent / "graph.svg").read_text()


def test_show_without_graphviz_says_how_to_get_it(model: Path) -> None:
    env_path = model.parent / "empty-bin"
    env_path.mkdir(exist_ok=True)
    env = {**os.environ, "PATH": str(env_path), "GRAPHC_DEVICE": "reference"}
    done = subprocess.run(
        [sys.executable, "-m", "graphc", "show", model.name, "-o", "graph.png"],
        capture_output=True,
        text=True,
        cwd=model.parent,
        env=env,
        check=False,
    )
    _one_line_error(done, "needs Graphviz's `dot` program")
    assert "-o graph.dot" in done.stderr


def test_bench_prints_median_and_spread(model: Path) -> None:
    done = graphc("bench", model.name, "--dim", "x.0=8", "--runs", "5", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "x[8, 4]" in done.stdout
    assert "median" in done.stdout
    assert "spread (25%-75%)" in done.stdout


def test_bench_gives_unknown_sizes_a_default_and_says_so(model: Path) -> None:
    done = graphc("bench", model.name, "--runs", "3", cwd=model.parent)
    assert done.returncode == 0, done.stderr
    assert "by default: x.0=1 (set them with --dim NAME=SIZE)" in done.stdout
    assert "x[1, 4]" in done.stdout
    assert "median" in done.stdout


def test_bench_says_when_the_default_sizes_do_not_fit(tmp_path: Path) -> None:
    """A graph that needs an even size: the default 1 cannot run, and the message says
    which sizes were tried and how to choose others."""
    x = gc.placeholder((None,), "float32", name="x")
    gc.save(tmp_path / "pairs.graphc", gc.function([x], gc.reshape(x, (-1, 2)).sum(axis=1)))
    _one_line_error(graphc("bench", "pairs.graphc", cwd=tmp_path), "choose others with --dim")
    done = graphc("bench", "pairs.graphc", "--dim", "x.0=6", "--runs", "2", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "x[6]" in done.stdout


def test_to_dot_draws_every_node_and_edge() -> None:
    x = gc.placeholder((2,), "float32", name="x")
    fn = gc.function([x], gc.exp(x) * 2 + 1)
    dot = to_dot(fn.graph)
    fused = [n for n in fn.graph.nodes if n.op == "fused"]
    assert len(fused) == 1
    for op, *_ in fused[0].attrs["body"]:
        assert f'label="{op}"' in dot or op == "constant"
    assert "output 0" in dot
    assert 'label="float32[2]"' in dot
