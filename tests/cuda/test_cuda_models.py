"""Whole models and the device runtime on device="cuda", against the reference executor
and the CPU backend: MLP gradients, training the digits classifier, variables that stay
on the device, feeds and outputs that stay on the device, loading a saved file, and
calls from several threads. In CI on numba's CUDA simulator; unmodified on a GPU.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

import graphc as gc

pytestmark = pytest.mark.cuda


def _mlp(x: gc.Tensor, y: gc.Tensor, params: list[gc.Variable]) -> gc.Tensor:
    w1, b1, w2, b2 = params
    logits = gc.relu(x @ w1 + b1) @ w2 + b2
    return gc.mean(gc.softmax_cross_entropy(logits, y))


def _params(rng: np.random.Generator, sizes: tuple[int, int, int], dtype: str) -> list:
    n_in, hidden, n_out = sizes
    return [
        gc.Variable((rng.standard_normal((n_in, hidden)) * 0.5).astype(dtype), name="w1"),
        gc.Variable(np.zeros(hidden, dtype), name="b1"),
        gc.Variable((rng.standard_normal((hidden, n_out)) * 0.5).astype(dtype), name="w2"),
        gc.Variable(np.zeros(n_out, dtype), name="b2"),
    ]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_mlp_gradients_match_the_reference(rng: np.random.Generator, dtype: str) -> None:
    x = gc.placeholder((None, 5), dtype, name="x")
    y = gc.placeholder((None,), "int64", name="y")
    params = _params(rng, (5, 7, 3), dtype)
    loss = _mlp(x, y, params)
    outputs = [loss, *gc.grad(loss, params)]
    on_gpu = gc.function([x, y], outputs, device="cuda")
    reference = gc.function([x, y], outputs, device="reference")
    for batch in (4, 1):
        feeds = (rng.standard_normal((batch, 5)).astype(dtype), rng.integers(0, 3, batch))
        tolerance = 1e-5 if dtype == "float32" else 1e-12
        for got, want in zip(on_gpu(*feeds), reference(*feeds), strict=True):
            np.testing.assert_allclose(got, want, rtol=tolerance, atol=tolerance)


def test_mlp_gradient_matches_finite_differences(rng: np.random.Generator) -> None:
    x = gc.placeholder((3, 4), "float64", name="x")
    w = gc.placeholder((4, 2), "float64", name="w")
    loss = gc.sum(gc.tanh(x @ w) ** 2)
    f = gc.function([x, w], [loss, gc.grad(loss, [w])[0]], device="cuda")
    xs, ws = rng.standard_normal((3, 4)), rng.standard_normal((4, 2))
    _, gw = f(xs, ws)
    direction = rng.standard_normal((4, 2))
    eps = 1e-6
    numeric = (f(xs, ws + eps * direction)[0] - f(xs, ws - eps * direction)[0]) / (2 * eps)
    np.testing.assert_allclose(np.sum(gw * direction), numeric, rtol=1e-6)


def _digits(n_train: int) -> tuple[np.ndarray, ...]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images = (digits.data / 16.0).astype("float32")
    labels = digits.target.astype("int64")
    return images[:n_train], labels[:n_train], images[n_train:], labels[n_train:]


BATCH = 16


def _train_digits(device: str, steps: int) -> tuple[list[float], list[np.ndarray], float]:
    """The digits example (an MLP trained with Adam), smaller (the simulator runs every
    GPU thread in Python): its losses, weights and accuracy on 100 test images after
    `steps` mini-batches of 16."""
    train_x, train_y, test_x, test_y = _digits(BATCH * steps)
    test_x, test_y = test_x[:100], test_y[:100]
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 64), "float32", name="x")
    y = gc.placeholder((None,), "int64", name="y")
    params = _params(rng, (64, 16, 10), "float32")
    loss = _mlp(x, y, params)
    updates = gc.optim.adam(params, gc.grad(loss, params), lr=1e-2)
    train_step = gc.function([x, y], loss, updates=updates, device=device)
    w1, b1, w2, b2 = params
    predictions = gc.argmax(gc.relu(x @ w1 + b1) @ w2 + b2, axis=1)
    accuracy = gc.function(
        [x, y], gc.mean(gc.equal(predictions, y).astype("float32")), device=device
    )
    losses = [
        float(train_step(train_x[i : i + BATCH], train_y[i : i + BATCH]))
        for i in range(0, BATCH * steps, BATCH)
    ]
    return losses, [p.value for p in params], float(accuracy(test_x, test_y))


def test_digits_training_matches_the_cpu() -> None:
    """Training on the GPU takes the same steps as on the CPU: the same losses, weights
    and accuracy (to float32 rounding), and it learns."""
    losses, weights, accuracy = _train_digits("cuda", 6)
    cpu_losses, cpu_weights, cpu_accuracy = _train_digits("cpu", 6)
    np.testing.assert_allclose(losses, cpu_losses, rtol=1e-4)
    for got, want in zip(weights, cpu_weights, strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-5)
    assert abs(accuracy - cpu_accuracy) <= 0.01
    assert losses[-1] < losses[0] * 0.75
    assert accuracy > 0.2  # twice chance, after 96 images


def test_variables_stay_on_the_device() -> None:
    v = gc.Variable(np.arange(4, dtype="float32"), name="v")
    step = gc.function([], v, updates={v: v + 1.0}, device="cuda")
    double = gc.function([], v * 2.0, device="cuda")
    on_cpu = gc.function([], v * 10.0, device="cpu")
    np.testing.assert_array_equal(step(), [0, 1, 2, 3])
    step()
    assert v.state._array is None  # the new state lives only on the device ...
    np.testing.assert_array_equal(double(), [4, 6, 8, 10])  # ... shared by cuda functions
    np.testing.assert_array_equal(on_cpu(), [20, 30, 40, 50])  # ... copied back when read
    np.testing.assert_array_equal(v.value, [2, 3, 4, 5])
    v.assign(np.full(4, 7, "float32"))  # a host assignment reaches the device
    np.testing.assert_array_equal(step(), [7, 7, 7, 7])
    np.testing.assert_array_equal(double(), [16, 16, 16, 16])


def test_an_update_on_the_cpu_reaches_the_device() -> None:
    v = gc.Variable(np.zeros(3, "float64"), name="counter")
    on_gpu = gc.function([], v, updates={v: v + 1.0}, device="cuda")
    on_cpu = gc.function([], v, updates={v: v + 10.0}, device="cpu")
    on_gpu()  # 0 -> 1 on the device
    on_cpu()  # 1 -> 11 on the host (in place)
    np.testing.assert_array_equal(on_gpu(), [11, 11, 11])
    np.testing.assert_array_equal(v.value, [12, 12, 12])


def test_device_feeds_and_device_outputs() -> None:
    from numba import cuda

    x = gc.placeholder((None, 3), "float32", name="x")
    f = gc.function([x], {"y": x * 2.0, "s": gc.sum(x)}, device="cuda")
    host = np.arange(6, dtype="float32").reshape(2, 3)
    on_device = f.run_on_device(cuda.to_device(host))
    assert set(on_device) == {"y", "s"}
    assert not any(isinstance(v, np.ndarray) for v in on_device.values())
    np.testing.assert_array_equal(on_device["y"].copy_to_host(), host * 2)
    chained = f(on_device["y"])  # a device output fed back, without a copy
    np.testing.assert_array_equal(chained["y"], host * 4)
    assert float(chained["s"]) == float(np.sum(host * 2))
    with pytest.raises(gc.InputError, match="float32"):
        f(cuda.to_device(host.astype("float64")))
    with pytest.raises(gc.InputError, match="x"):
        f(cuda.to_device(np.zeros((2, 4), "float32")))
    with pytest.raises(gc.GraphcError, match="device='cuda'"):
        gc.function([x], x, device="cpu").run_on_device(host)


def test_wrong_host_feeds_raise_before_any_kernel() -> None:
    x = gc.placeholder((None, 3), "float32", name="x")
    n = gc.placeholder((None,), "float32", name="n")
    f = gc.function([x, n], x + gc.reshape(n, (-1, 1)), device="cuda")
    np.testing.assert_array_equal(f(np.ones((2, 3)), np.ones(2)), np.full((2, 3), 2.0))
    with pytest.raises(gc.InputError):
        f(np.ones((2, 4)), np.ones(2))
    with pytest.raises(gc.InputError):
        f(np.ones((2, 3)), np.ones(3))
    assert f(np.ones((2, 3), "int64"), np.ones(2)).dtype == np.float32  # cast same_kind
    labels = gc.placeholder((2,), "int64", name="labels")
    g = gc.function([labels], labels + 1, device="cuda")
    with pytest.raises(gc.InputError, match="labels"):
        g(np.ones(2, "float32"))  # float into an int placeholder


def test_save_and_load_on_cuda(tmp_path: Path, rng: np.random.Generator) -> None:
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.Variable(rng.standard_normal((4, 2)).astype("float32"), name="w")
    f = gc.function([x], gc.softmax(x @ w), updates={w: w * 0.5}, device="cuda")
    path = tmp_path / "model.graphc"
    gc.save(path, f)
    loaded = gc.load(path, device="cuda", compile="background")  # (compiles eagerly)
    assert loaded.device == "cuda"
    assert loaded.compiled == "pending"
    feed = rng.standard_normal((3, 4)).astype("float32")
    np.testing.assert_allclose(loaded(feed), f(feed), rtol=1e-6)
    np.testing.assert_allclose(loaded(feed), f(feed), rtol=1e-6)  # both halved w again
    assert loaded.compiled == "native"
    assert loaded.wait(timeout=0) is True
    with pytest.raises(gc.DeviceError):
        loaded.profile(feed)


def test_graphc_run_on_cuda(tmp_path: Path) -> None:
    x = gc.placeholder((2,), "float32", name="x")
    path = tmp_path / "double.graphc"
    gc.save(path, gc.function([x], {"doubled": x * 2.0}, device="reference"))
    np.save(tmp_path / "x.npy", np.array([1.5, -2.0], "float32"))
    command = [sys.executable, "-m", "graphc", "run", str(path), "--device", "cuda"]
    command += ["--input", f"x={tmp_path / 'x.npy'}"]
    done = subprocess.run(command, capture_output=True, text=True, env=os.environ, check=False)
    assert done.returncode == 0, done.stderr
    assert "doubled" in done.stdout
    assert "3." in done.stdout
    assert "-4." in done.stdout


def test_calls_from_several_threads(rng: np.random.Generator) -> None:
    x = gc.placeholder((None, 8), "float32", name="x")
    w = gc.Variable(rng.standard_normal((8, 8)).astype("float32"), name="w")
    f = gc.function([x], gc.tanh(x @ w), device="cuda")
    feeds = [rng.standard_normal((3, 8)).astype("float32") for _ in range(4)]
    want = [np.tanh(a @ w.value) for a in feeds]
    got: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        got[i] = f(feeds[i])

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(4):
        np.testing.assert_allclose(got[i], want[i], rtol=1e-5, atol=1e-6)


def test_the_source_is_cuda_code() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    f = gc.function([x], gc.exp(x) + 1.0, device="cuda")
    assert "@cuda.jit" in f.source
    assert "def entry(stream" in f.source
    assert "exp" in f.source
