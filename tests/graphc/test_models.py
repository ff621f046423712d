"""Whole models: gradients of an MLP with cross-entropy, a small CNN, layer norm and an
attention head against finite differences; training lowers the loss; the digits
example reaches its accuracy."""

from __future__ import annotations

import itertools
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
from gradcheck import check_gradients

import graphc as gc

LABELS = np.array([2, 0, 1, 2])


def mlp(x: gc.Tensor, w1: gc.Tensor, b1: gc.Tensor, w2: gc.Tensor, b2: gc.Tensor) -> gc.Tensor:
    hidden = gc.tanh(x @ w1 + b1)
    return gc.mean(gc.softmax_cross_entropy(hidden @ w2 + b2, gc.constant(LABELS)))


def test_mlp_with_cross_entropy(rng: np.random.Generator) -> None:
    shapes = [(4, 5), (5, 6), (6,), (6, 3), (3,)]
    check_gradients(mlp, [rng.standard_normal(s) for s in shapes], rng)


def cnn(x: gc.Tensor, w1: gc.Tensor, w2: gc.Tensor, dense: gc.Tensor) -> gc.Tensor:
    h = gc.relu(gc.conv2d(x, w1, padding=1))
    h = gc.max_pool2d(h, 2)
    h = gc.tanh(gc.conv2d(h, w2, stride=1, padding=((1, 0), (0, 1)), groups=2))
    h = gc.avg_pool2d(h, 2, stride=1)
    logits = gc.reshape(h, (2, -1)) @ dense
    return gc.mean(gc.softmax_cross_entropy(logits, gc.constant(np.array([1, 0]))))


def test_small_cnn(rng: np.random.Generator) -> None:
    arrays = [
        rng.standard_normal((2, 1, 6, 6)),
        rng.standard_normal((4, 1, 3, 3)) * 0.5,
        rng.standard_normal((4, 2, 2, 2)) * 0.5,
        rng.standard_normal((16, 2)),
    ]
    check_gradients(cnn, arrays, rng, rtol=1e-4)


def test_layer_norm_block(rng: np.random.Generator) -> None:
    def block(x: gc.Tensor, gamma: gc.Tensor, beta: gc.Tensor, w: gc.Tensor) -> gc.Tensor:
        return gc.sum(gc.gelu(gc.layer_norm(x, gamma, beta) @ w) ** 2)

    arrays = [
        rng.standard_normal((3, 4, 5)),
        rng.standard_normal(5),
        rng.standard_normal(5),
        rng.standard_normal((5, 2)),
    ]
    check_gradients(block, arrays, rng)


def test_attention_head(rng: np.random.Generator) -> None:
    def attention(x: gc.Tensor, wq: gc.Tensor, wk: gc.Tensor, wv: gc.Tensor) -> gc.Tensor:
        q, k, v = x @ wq, x @ wk, x @ wv  # batched matmul: x is (batch, tokens, features)
        scores = q @ gc.transpose(k, (0, 2, 1)) / np.sqrt(4.0)
        return gc.sum(gc.softmax(scores, axis=-1) @ v)

    arrays = [rng.standard_normal((2, 5, 6))] + [rng.standard_normal((6, 4)) for _ in range(3)]
    check_gradients(attention, arrays, rng)


def test_training_lowers_the_loss() -> None:
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((64, 5)).astype("float32")
    labels = (inputs[:, 0] + inputs[:, 1] > 0).astype("int64")
    x = gc.placeholder((None, 5), "float32")
    y = gc.placeholder((None,), "int64")
    w = gc.Variable(np.zeros((5, 2), "float32"))
    b = gc.Variable(np.zeros(2, "float32"))
    loss = gc.mean(gc.softmax_cross_entropy(x @ w + b, y))
    step = gc.function([x, y], loss, updates=gc.optim.sgd([w, b], gc.grad(loss, [w, b]), 0.5))
    losses = [float(step(inputs, labels)) for _ in range(30)]
    assert losses[0] == np.float32(np.log(2))
    assert losses[-1] < 0.5 * losses[0]
    assert all(later <= earlier for earlier, later in itertools.pairwise(losses))


def test_digits_example_reaches_95_percent() -> None:
    script = Path(__file__).resolve().parents[2] / "examples" / "train_digits.py"
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600, check=True
    )
    accuracy = float(re.search(r"test accuracy (\d\.\d+)", result.stdout).group(1))
    assert accuracy >= 0.95, result.stdout
