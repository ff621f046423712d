"""graphc.save and graphc.load: every op of the op table round-trips, a training function
keeps training, a new process runs a file without the defining code, saves are atomic,
and every released format version still loads and computes what it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import opinfo
import pytest

import graphc as gc
from graphc import format as fileformat

DATA = Path(__file__).resolve().parent.parent / "data"
ROWS = [pytest.param(case, id=case.id) for case in opinfo.CASES]


def _as_tuple(result):
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def _assert_same(got, want) -> None:
    for g, w in zip(_as_tuple(got), _as_tuple(want), strict=True):
        assert (g.shape, g.dtype) == (w.shape, w.dtype)
        np.testing.assert_array_equal(g, w)


@pytest.mark.parametrize("case", ROWS)
def test_every_op_round_trips(case: opinfo.OpCase, tmp_path: Path, rng) -> None:
    """The row's last shapes, static and with every dim unknown; the file as defined and
    the file `graphc optimize` writes (fused bodies, folded constants) give the same
    outputs as the function that was saved."""
    dtypes = case.dtypes[0]
    arrays = case.inputs(rng, case.shapes[-1], dtypes)
    placeholders = [gc.placeholder(a.shape, a.dtype, name=f"in{i}") for i, a in enumerate(arrays)]
    outputs = list(_as_tuple(case.build(*placeholders)))
    if case.symbolic:
        unknown = [
            gc.placeholder((None,) * a.ndim, a.dtype, name=f"sym{i}") for i, a in enumerate(arrays)
        ]
        placeholders += unknown
        outputs += _as_tuple(case.build(*unknown))
        arrays = arrays + arrays
    fn = gc.function(placeholders, outputs, device="reference")
    with np.errstate(all="ignore"):
        want = fn(*arrays)
        for saved in (fn, fn.optimized()):
            path = tmp_path / "f.graphc"
            gc.save(path, saved)
            loaded = gc.load(path, device="reference")
            assert [str(s) for s in loaded.inputs] == [str(s) for s in fn.inputs]
            assert [str(s) for s in loaded.outputs] == [str(s) for s in fn.outputs]
            _assert_same(loaded(*arrays), want)


def _training_step():
    rng = np.random.default_rng(3)
    x = gc.placeholder((None, 5), "float32", name="x")
    y = gc.placeholder((None,), "int64", name="y")
    w = gc.Variable(rng.standard_normal((5, 3)).astype("float32"), name="w")
    b = gc.Variable(np.zeros(3, "float32"), name="b")
    loss = gc.mean(gc.softmax_cross_entropy(gc.relu(x @ w + b), y))
    updates = gc.optim.adam([w, b], gc.grad(loss, [w, b]), lr=0.05)
    feeds = (rng.standard_normal((16, 5)).astype("float32"), rng.integers(0, 3, 16))
    return [w, b], feeds, (x, y, loss, updates)


@pytest.mark.parametrize("device", ["reference", "cpu"])
def test_a_saved_training_function_keeps_training(device: str, tmp_path: Path) -> None:
    params, feeds, (x, y, loss, updates) = _training_step()
    step = gc.function([x, y], loss, updates=updates, device=device)
    for _ in range(3):
        step(*feeds)
    gc.save(tmp_path / "step.graphc", step)
    loaded = gc.load(tmp_path / "step.graphc", device=device)
    original = [float(step(*feeds)) for _ in range(4)]
    resumed = [float(loaded(*feeds)) for _ in range(4)]
    assert resumed == original  # same state saved (Adam's moments and step too), same steps
    assert resumed[-1] < resumed[0]
    # the loaded function owns new variables: training it leaves the originals alone
    before = [p.value for p in params]
    loaded(*feeds)
    for p, value in zip(params, before, strict=True):
        np.testing.assert_array_equal(p.value, value)


def test_a_new_process_runs_the_file_without_the_defining_code(tmp_path: Path) -> None:
    _, feeds, (x, y, loss, updates) = _training_step()
    step = gc.function([x, y], {"loss": loss}, updates=updates, device="cpu")
    gc.save(tmp_path / "step.graphc", step)
    np.savez(tmp_path / "feeds.npz", x=feeds[0], y=feeds[1])
    want = [float(step(*feeds)["loss"]) for _ in range(2)]
    program = (
        "import json, sys, numpy as np, graphc\n"
        "fn = graphc.load(sys.argv[1])\n"
        "feeds = np.load(sys.argv[2])\n"
        "losses = [float(fn(x=feeds['x'], y=feeds['y'])['loss']) for _ in range(2)]\n"
        "assert not [m for m in sys.modules if 'test_save_load' in m or m == 'opinfo']\n"
        "print(json.dumps(losses))\n"
    )
    env = {**os.environ, "GRAPHC_DEVICE": "cpu"}
    done = subprocess.run(
        [sys.executable, "-c", program, str(tmp_path / "step.graphc"), str(tmp_path / "feeds.npz")],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == want


def test_signature_structure_and_names_survive(tmp_path: Path) -> None:
    a = gc.placeholder(("n", 2), "float64", name="a")
    b = gc.placeholder(("n",), "int32", name="b")
    for outputs in (a * 2, [a + 1, b], (b,), {"first": a, "second": b * 3}):
        fn = gc.function([a, b], outputs)
        gc.save(tmp_path / "f.graphc", fn)
        loaded = gc.load(str(tmp_path / "f.graphc"))  # a str path too
        feeds = (np.ones((3, 2)), np.arange(3, dtype="int32"))
        got, want = loaded(*feeds), fn(*feeds)
        assert type(got) is type(want)
        if isinstance(want, dict):
            assert list(got) == list(want)
            got, want = list(got.values()), list(want.values())
        _assert_same(got, want)
    with pytest.raises(gc.InputError):  # the shared size "n" is still enforced after load
        loaded(np.ones((3, 2)), np.arange(4, dtype="int32"))


def test_a_crash_mid_save_leaves_the_old_file_intact(tmp_path: Path, monkeypatch) -> None:
    x = gc.placeholder((3,), "float32", name="x")
    path = tmp_path / "model.graphc"
    gc.save(path, gc.function([x], x + 1))
    before = path.read_bytes()
    w = gc.Variable(np.ones((1000,), "float32"), name="big")

    def crash(*args, **kwargs):
        raise OSError("disk full (injected)")

    monkeypatch.setattr(np.lib.format, "write_array", crash)
    with pytest.raises(OSError, match="injected"):
        gc.save(path, gc.function([x], gc.sum(w) + x))
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.graphc"]  # no temporary left
    monkeypatch.undo()
    np.testing.assert_array_equal(gc.load(path)(np.zeros(3, "float32")), np.ones(3, "float32"))


def test_saving_needs_a_function(tmp_path: Path) -> None:
    with pytest.raises(gc.GraphcError, match=r"needs a graphc\.Function"):
        gc.save(tmp_path / "x.graphc", gc.placeholder((1,)))


@pytest.mark.parametrize("version", range(1, gc.FORMAT_VERSION + 1))
def test_every_released_format_version_still_loads(version: int) -> None:
    """tests/data/format_v<N>.graphc was written by make_golden.py when version N was
    current; it must load and compute exactly what it computed then, updates included."""
    fn = gc.load(DATA / f"format_v{version}.graphc")
    expected = np.load(DATA / f"format_v{version}_expected.npz")
    feeds = {"x": expected["x"], "labels": expected["labels"]}
    for call in range(2):
        got = fn(**feeds)
        for name, value in got.items():
            np.testing.assert_allclose(value, expected[f"{call}/{name}"], rtol=2e-6, atol=1e-7)


def test_the_manifest_is_plain_json_with_versions(tmp_path: Path) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    gc.save(tmp_path / "f.graphc", gc.function([x], x * np.float32(0.5)))
    with zipfile.ZipFile(tmp_path / "f.graphc") as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("graphc.json"))
    assert names[0] == "graphc.json"
    assert all(
        n == "graphc.json" or (n.startswith("arrays/") and n.endswith(".npy")) for n in names
    )
    assert manifest["format"] == "graphc"
    assert manifest["format_version"] == fileformat.FORMAT_VERSION
    assert manifest["producer"] == f"graphc {gc.__version__}"
