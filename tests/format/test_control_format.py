"""Control flow in files (format version 2): bodies round-trip through save and load,
and a crafted body (a variable inside, a placeholder it does not take, a dangling
reference, a body that does not type) raises FormatError."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

import graphc as gc


def _model() -> gc.Function:
    x = gc.placeholder((None, 3), "float64", name="x")
    w = gc.Variable(np.eye(3) * 0.5, name="w")
    final, ys = gc.scan(lambda h, xt: (gc.tanh(xt @ w + h), h.sum()), np.zeros(3), x)
    flipped = gc.cond(final.sum() > 0, lambda a: a * 2.0, lambda a: -a, final)
    root = gc.while_loop(lambda s: s[1] < 4, lambda s: (s[0] * 0.5 + 1.0, s[1] + 1), (ys, 0))
    (gw,) = gc.grad(flipped.sum() + ys.sum(), [w])
    return gc.function([x], [flipped, ys, root[0], gw], device="reference")


@pytest.fixture(scope="module")
def saved(tmp_path_factory) -> tuple[gc.Function, Path]:
    fn = _model()
    path = tmp_path_factory.mktemp("control") / "model.graphc"
    gc.save(path, fn)
    return fn, path


def test_bodies_round_trip(saved, rng) -> None:
    fn, path = saved
    loaded = gc.load(path, device="reference")
    xv = rng.standard_normal((4, 3))
    for original, again in zip(fn(xv), loaded(xv), strict=True):
        np.testing.assert_array_equal(original, again)
    ops = {n.op for n in loaded.graph.nodes}
    assert {"scan", "cond", "while_loop"} <= ops


def test_a_file_with_control_flow_runs_on_the_cpu(saved, rng) -> None:
    fn, path = saved
    loaded = gc.load(path, device="cpu")
    xv = rng.standard_normal((4, 3))
    for original, again in zip(fn(xv), loaded(xv), strict=True):
        np.testing.assert_allclose(again, original, rtol=1e-12, atol=1e-14)


def _first_body(manifest: dict) -> dict:
    for node in manifest["graph"]["nodes"]:
        for value in node["attrs"].values():
            if isinstance(value, dict) and "graph" in value:
                return value["graph"]
    raise AssertionError("no body in the file")


def _crafted(tmp: Path, path: Path, change) -> Path:
    source = zipfile.ZipFile(path)
    manifest = json.loads(source.read("graphc.json"))
    change(_first_body(manifest))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        target.writestr("graphc.json", json.dumps(manifest))
        for name in source.namelist():
            if name != "graphc.json":
                target.writestr(name, source.read(name))
    crafted = tmp / "crafted.graphc"
    crafted.write_bytes(out.getvalue())
    return crafted


def _variable_inside(body: dict) -> None:
    body["nodes"].append(
        {
            "id": 900,
            "op": "variable",
            "inputs": [],
            "attrs": {"name": "v", "dtype": "float64", "shape": []},
            "types": [{"dtype": "float64", "shape": []}],
        }
    )


def _unlisted_placeholder(body: dict) -> None:
    body["inputs"] = body["inputs"][:-1]


def _dangling(body: dict) -> None:
    body["nodes"][-1]["inputs"] = [[777, 0]]


def _wrong_types(body: dict) -> None:
    body["nodes"][-1]["types"] = [{"dtype": "int32", "shape": [5]}]


def _not_a_graph(body: dict) -> None:
    body.pop("outputs")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (_variable_inside, "no variables"),
        (_unlisted_placeholder, "inputs are its placeholders"),
        (_dangling, "no earlier node defines"),
        (_wrong_types, "declares types"),
        (_not_a_graph, "outputs"),
    ],
)
def test_crafted_bodies_raise_format_error(saved, tmp_path: Path, change, reason: str) -> None:
    _, path = saved
    with pytest.raises(gc.FormatError, match=reason):
        gc.load(_crafted(tmp_path, path, change), device="reference")


def test_graphc_show_draws_bodies_as_clusters(saved, tmp_path: Path) -> None:
    import subprocess
    import sys

    _, path = saved
    done = subprocess.run(
        [sys.executable, "-m", "graphc", "show", str(path), "-o", str(tmp_path / "g.dot")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    dot = (tmp_path / "g.dot").read_text()
    for title in ('"scan %', '"cond %', '"while_loop %', "cond_body", "true_body"):
        assert title in dot
    assert dot.count("subgraph cluster_") >= 5  # a scan's, a cond's two, a while_loop's two
