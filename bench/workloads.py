"""The six benchmark workloads of shared/design/PERFORMANCE.md: sizes, data, numpy eager.

Every system (graphc, numpy, torch) and every physical limit starts from the same
seeded data, so a measurement process can rebuild it without talking to the others.
The numpy functions here are both the baseline that graphc must beat and the oracle
that graphc's and torch's results are checked against before anything is timed.
This module imports numpy only: a numpy baseline process never loads numba or torch.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

SEED = 0

W1_SIZE = 4_000_000  # x and y of W1, float32
MLP_SIZES = (784, 512, 512, 10)  # W2 and W3: 784 -> 512 -> 512 -> 10, ReLU between
W2_BATCH = 256
W3_BATCHES = (1, 256)
LEARNING_RATE = 0.01
W4_SIZE = 4
W6_SHAPE = (4096, 1024)


# --- data -------------------------------------------------------------------------------


def w1_data() -> tuple[np.ndarray, np.ndarray]:
    """W1's x and y: 4,000,000 float32 each."""
    rng = np.random.default_rng(SEED)
    x = rng.standard_normal(W1_SIZE, dtype=np.float32)
    y = rng.standard_normal(W1_SIZE, dtype=np.float32)
    return x, y


@dataclass
class MlpParams:
    """The weights of the W2/W3 net; `weights[i]` maps layer i to layer i + 1."""

    weights: list[np.ndarray]
    biases: list[np.ndarray]

    def as_list(self) -> list[np.ndarray]:
        """[w0, b0, w1, b1, w2, b2]: the order every system uses for its parameters."""
        return [a for pair in zip(self.weights, self.biases, strict=True) for a in pair]

    def copy(self) -> MlpParams:
        return MlpParams([w.copy() for w in self.weights], [b.copy() for b in self.biases])


def mlp_params() -> MlpParams:
    """He-initialized float32 weights and small random biases (so bias paths are checked)."""
    rng = np.random.default_rng(SEED + 1)
    weights, biases = [], []
    for fan_in, fan_out in itertools.pairwise(MLP_SIZES):
        scale = np.sqrt(2.0 / fan_in)
        weights.append((rng.standard_normal((fan_in, fan_out)) * scale).astype(np.float32))
        biases.append((rng.standard_normal(fan_out) * 0.01).astype(np.float32))
    return MlpParams(weights, biases)


def mlp_batch(batch: int) -> tuple[np.ndarray, np.ndarray]:
    """Images (batch, 784) float32 and integer labels (batch,) int64 in [0, 10)."""
    rng = np.random.default_rng(SEED + 2)
    images = rng.standard_normal((batch, MLP_SIZES[0]), dtype=np.float32)
    labels = rng.integers(0, MLP_SIZES[-1], size=batch, dtype=np.int64)
    return images, labels


def w4_data() -> np.ndarray:
    return np.arange(W4_SIZE, dtype=np.float32)


def w6_data() -> np.ndarray:
    rng = np.random.default_rng(SEED + 3)
    return rng.standard_normal(W6_SHAPE, dtype=np.float32) * np.float32(3.0)


# --- numpy eager: the baseline and the oracle ------------------------------------------


def numpy_w1(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """tanh(0.5*x + y) * sigmoid(y) - exp(-x*x) + 0.1*y, as a numpy user writes it."""
    return np.tanh(0.5 * x + y) * (1.0 / (1.0 + np.exp(-y))) - np.exp(-x * x) + 0.1 * y


def numpy_mlp_forward(params: MlpParams, images: np.ndarray) -> np.ndarray:
    """W3: the logits of the net."""
    h = images
    last = len(params.weights) - 1
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        h = h @ w + b
        if i < last:
            h = np.maximum(h, 0.0)
    return h


def numpy_train_step(params: MlpParams, images: np.ndarray, labels: np.ndarray) -> np.float32:
    """W2: forward, mean softmax cross-entropy, backward by hand, in-place SGD; the loss."""
    # forward, keeping what the backward pass needs
    activations = [images]
    pre_activations = []
    last = len(params.weights) - 1
    h = images
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        z = h @ w
        z += b
        if i < last:
            pre_activations.append(z)
            h = np.maximum(z, 0.0)
            activations.append(h)
        else:
            h = z
    logits = h
    batch = logits.shape[0]
    rows = np.arange(batch)
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    total = exp.sum(axis=1, keepdims=True)
    # loss_i = log(sum_j exp(s_ij)) - s_i,label
    loss = np.mean(np.log(total[:, 0]) - shifted[rows, labels])

    # d(mean loss)/d logits = (softmax - onehot) / batch
    grad = exp / total
    grad[rows, labels] -= 1.0
    grad *= np.float32(1.0 / batch)
    for i in range(last, -1, -1):
        grad_w = activations[i].T @ grad
        grad_b = grad.sum(axis=0)
        if i > 0:
            grad = grad @ params.weights[i].T
            grad *= pre_activations[i - 1] > 0
        params.weights[i] -= np.float32(LEARNING_RATE) * grad_w
        params.biases[i] -= np.float32(LEARNING_RATE) * grad_b
    return loss


def numpy_w4(x: np.ndarray) -> np.ndarray:
    return x + 1


def numpy_w6(x: np.ndarray) -> np.ndarray:
    """Row softmax, max-subtracted."""
    exp = np.exp(x - x.max(axis=-1, keepdims=True))
    exp /= exp.sum(axis=-1, keepdims=True)
    return exp


# --- checks -----------------------------------------------------------------------------


def check_close(
    what: str, got: object, want: np.ndarray, *, rtol: float, atol: float = 0.0
) -> float:
    """Raise AssertionError unless |got - want| <= atol + rtol*|want| everywhere (shape and
    dtype equal too); return the worst ratio of error to tolerance (<= 1 when it passes)."""
    got = np.asarray(got)
    want = np.asarray(want)
    if got.shape != want.shape or got.dtype != want.dtype:
        raise AssertionError(
            f"{what}: got {got.dtype}{list(got.shape)}, expected {want.dtype}{list(want.shape)}"
        )
    error = np.abs(got.astype(np.float64) - want.astype(np.float64))
    allowed = atol + rtol * np.abs(want.astype(np.float64))
    worst = float(np.max(error / np.maximum(allowed, 1e-300))) if error.size else 0.0
    if not np.isfinite(worst) or worst > 1.0:
        at = np.unravel_index(int(np.argmax(error - allowed)), error.shape) if error.size else ()
        raise AssertionError(
            f"{what}: differs from numpy beyond rtol={rtol}, atol={atol}: "
            f"max abs error {float(np.max(error)):.3g} (at {at}: got {got[at]!r}, "
            f"expected {want[at]!r})"
        )
    return worst


def check_loss(what: str, got: object, want: float, rtol: float = 1e-3) -> float:
    """The relative difference of two losses, raising AssertionError above `rtol`."""
    got_value = float(np.asarray(got))
    relative = abs(got_value - float(want)) / max(abs(float(want)), 1e-12)
    if not relative < rtol:
        raise AssertionError(
            f"{what}: loss {got_value!r}, numpy's {float(want)!r} ({relative:.2e})"
        )
    return relative
