"""Function.profile: time per kernel and library call, a table and a Chrome trace, and
`graphc bench --profile`."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import graphc as gc


def _model() -> tuple[gc.Function, tuple[np.ndarray, ...], gc.Variable]:
    w = gc.Variable(np.full((6, 4), 0.1, np.float32), name="w")
    x = gc.placeholder((None, 6), "float32", name="x")
    h = gc.tanh(x @ w) * 2.0 + 1.0
    loss = gc.sum(gc.softmax(h, axis=1) * h)
    fn = gc.function([x], [loss, h], updates={w: w - 0.01 * gc.grad(loss, [w])[0]}, device="cpu")
    return fn, (np.linspace(-1, 1, 30, dtype=np.float32).reshape(5, 6),), w


def test_profile_times_every_kernel_of_real_calls() -> None:
    fn, feeds, w = _model()
    twin, _, w_twin = _model()
    profile = fn.profile(*feeds, runs=3)
    assert profile.runs == 3
    kernels = fn._executable.generated.kernels
    names = {row.name for row in profile.rows}
    # every kernel the entry calls shows up, as k<i>, with the ops it runs
    assert {f"k{i}" for i in range(len(kernels))} <= names
    for row in profile.rows:
        if row.name.startswith("k") and row.name[1:].isdigit():
            assert row.what == kernels[int(row.name[1:])].what
        assert row.calls % 3 == 0  # each statement once (or more) per call
        assert row.total >= 0
        assert row.mean == pytest.approx(row.total / row.calls)
        assert 0 <= row.share <= 1
    assert [r.total for r in profile.rows] == sorted((r.total for r in profile.rows), reverse=True)
    assert sum(r.total for r in profile.rows) <= profile.seconds
    assert any("float32[5,4]" in row.shape for row in profile.rows)
    # the calls were real: 1 untimed + 3 timed updates, as 4 calls of the twin
    for _ in range(4):
        twin(*feeds)
    np.testing.assert_array_equal(w.value, w_twin.value)
    # the table: a header line, a column line, then the rows slowest first
    lines = str(profile).splitlines()
    assert "3 call(s)" in lines[0]
    assert lines[1].split()[:4] == ["name", "op(s)", "shape", "calls"]
    assert len(lines) == 2 + len(profile.rows)
    assert lines[2].startswith(profile.rows[0].name or "(binding)")


def test_profile_writes_a_chrome_trace(tmp_path) -> None:
    fn, feeds, _ = _model()
    path = tmp_path / "trace.json"
    profile = fn.profile(*feeds, runs=2, trace=path)
    trace = json.loads(path.read_text())
    events = trace["traceEvents"]
    assert len(events) == sum(r.calls for r in profile.rows)
    assert {e["ph"] for e in events} == {"X"}
    assert all(e["dur"] >= 0 for e in events)
    starts = [e["ts"] for e in events]
    assert starts == sorted(starts)  # one thread, statements in order
    kernel_events = [e for e in events if e["cat"] == "kernel"]
    assert kernel_events
    assert all("op" in e["args"] and "shape" in e["args"] for e in events)


def test_profile_needs_the_cpu_and_a_count() -> None:
    x = gc.placeholder((3,), "float32", name="x")
    with pytest.raises(gc.DeviceError):
        gc.function([x], x + 1, device="reference").profile(np.ones(3, np.float32))
    fn = gc.function([x], x + 1, device="cpu")
    for runs in (0, 1.5, True):
        with pytest.raises(gc.ArgumentError):
            fn.profile(np.ones(3, np.float32), runs=runs)
    with pytest.raises(gc.InputError):  # feeds are checked as in a call
        fn.profile(np.ones(4, np.float32))
    profile = fn.profile(np.ones(3, np.float32), runs=1)
    assert profile.rows
    assert fn.compiled == "pending"  # profiling compiles the kernels only


def test_bench_command_profiles(tmp_path) -> None:
    fn, _, _ = _model()
    gc.save(tmp_path / "m.graphc", fn)
    trace = tmp_path / "t.json"
    done = subprocess.run(
        [
            *(sys.executable, "-m", "graphc", "bench", str(tmp_path / "m.graphc")),
            *("--device", "cpu", "--runs", "3", "--dim", "x.0=5", "--profile", str(trace)),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "share" in done.stdout
    assert "k0" in done.stdout
    assert json.loads(trace.read_text())["traceEvents"]
