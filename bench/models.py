"""W7 (LeNet-5 step), W8 (GPT step) and W9 (LSTM step) of PERFORMANCE.md as graphc
programs, and the chain of N identical blocks from the compile-time issue.

The initial values and data come from numpy (seeded), so the peer in jax_models.py
starts from identical weights; graphc is imported only by the builders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import graphc

# W8: vocabulary, context, width, heads, blocks, batch
GPT = {"V": 256, "T": 64, "C": 128, "H": 4, "L": 4, "B": 8}
LENET_BATCH = 128


def gpt_params(seed: int = 0) -> dict[str, np.ndarray]:
    V, T, C, L = GPT["V"], GPT["T"], GPT["C"], GPT["L"]
    rng = np.random.default_rng(seed)

    def normal(*shape: int) -> np.ndarray:
        return (0.02 * rng.standard_normal(shape)).astype(np.float32)

    params = {"tok": normal(V, C), "pos": normal(T, C)}
    for i in range(L):
        params |= {
            f"ln1g{i}": np.ones(C, np.float32),
            f"ln1b{i}": np.zeros(C, np.float32),
            f"qkv{i}": normal(C, 3 * C),
            f"qkvb{i}": np.zeros(3 * C, np.float32),
            f"proj{i}": normal(C, C),
            f"projb{i}": np.zeros(C, np.float32),
            f"ln2g{i}": np.ones(C, np.float32),
            f"ln2b{i}": np.zeros(C, np.float32),
            f"fc{i}": normal(C, 4 * C),
            f"fcb{i}": np.zeros(4 * C, np.float32),
            f"out{i}": normal(4 * C, C),
            f"outb{i}": np.zeros(C, np.float32),
        }
    params |= {"lnfg": np.ones(C, np.float32), "lnfb": np.zeros(C, np.float32)}
    return params


def gpt_batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    tokens = rng.integers(0, GPT["V"], (GPT["B"], GPT["T"] + 1))
    return tokens[:, :-1].astype(np.int64), tokens[:, 1:].astype(np.int64)


def gpt_step(compile: str = "eager") -> graphc.Function:
    """One AdamW step of the W8 GPT: (tokens, targets) -> mean cross-entropy."""
    import graphc

    V, T, C, H, L, B = (GPT[k] for k in "VTCHLB")
    D = C // H
    p = {name: graphc.Variable(value, name=name) for name, value in gpt_params().items()}
    tokens = graphc.placeholder((B, T), "int64", name="tokens")
    targets = graphc.placeholder((B, T), "int64", name="targets")
    mask = np.triu(np.full((T, T), -1e9, np.float32), k=1)
    x = graphc.take(p["tok"], tokens, axis=0) + p["pos"]
    for i in range(L):
        h = graphc.layer_norm(x, p[f"ln1g{i}"], p[f"ln1b{i}"])
        qkv = h @ p[f"qkv{i}"] + p[f"qkvb{i}"]
        q, k, v = (
            graphc.transpose(graphc.reshape(part, (B, T, H, D)), (0, 2, 1, 3))
            for part in graphc.split(qkv, 3, axis=-1)
        )
        # (a Python float: an np.float64 scale would promote the attention, and every
        # activation after it, to float64 under numpy's promotion rules; W8 is float32)
        scores = q @ graphc.transpose(k, (0, 1, 3, 2)) * float(1.0 / np.sqrt(D)) + mask
        attended = graphc.softmax(scores, axis=-1) @ v
        merged = graphc.reshape(graphc.transpose(attended, (0, 2, 1, 3)), (B, T, C))
        x = x + merged @ p[f"proj{i}"] + p[f"projb{i}"]
        h = graphc.layer_norm(x, p[f"ln2g{i}"], p[f"ln2b{i}"])
        h = graphc.gelu(h @ p[f"fc{i}"] + p[f"fcb{i}"])
        x = x + h @ p[f"out{i}"] + p[f"outb{i}"]
    x = graphc.layer_norm(x, p["lnfg"], p["lnfb"])
    logits = x @ graphc.transpose(p["tok"])
    loss = graphc.mean(
        graphc.softmax_cross_entropy(
            graphc.reshape(logits, (B * T, V)), graphc.reshape(targets, (B * T,))
        )
    )
    variables = list(p.values())
    grads = graphc.grad(loss, variables)
    updates = graphc.optim.adam(variables, grads, lr=3e-4)
    return graphc.function([tokens, targets], loss, updates=updates, compile=compile)


def lenet_params(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def uniform(fan_in: int, *shape: int) -> np.ndarray:
        bound = 1 / np.sqrt(fan_in)
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {
        "c1": uniform(25, 6, 1, 5, 5),
        "c1b": uniform(25, 6),
        "c2": uniform(150, 16, 6, 5, 5),
        "c2b": uniform(150, 16),
        "f1": uniform(400, 400, 120),
        "f1b": uniform(400, 120),
        "f2": uniform(120, 120, 84),
        "f2b": uniform(120, 84),
        "f3": uniform(84, 84, 10),
        "f3b": uniform(84, 10),
    }


def lenet_batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.standard_normal((LENET_BATCH, 1, 28, 28)).astype(np.float32)
    return images, rng.integers(0, 10, LENET_BATCH).astype(np.int64)


def lenet_step(compile: str = "eager") -> graphc.Function:
    """One SGD-with-momentum step (lr 0.05, momentum 0.9) of LeNet-5 (W7)."""
    import graphc

    p = {name: graphc.Variable(value, name=name) for name, value in lenet_params().items()}
    images = graphc.placeholder((None, 1, 28, 28), "float32", name="images")
    labels = graphc.placeholder((None,), "int64", name="labels")
    h = graphc.max_pool2d(graphc.relu(graphc.conv2d(images, p["c1"], p["c1b"], padding=2)), 2)
    h = graphc.max_pool2d(graphc.relu(graphc.conv2d(h, p["c2"], p["c2b"])), 2)
    h = graphc.reshape(h, (-1, 400))
    h = graphc.relu(h @ p["f1"] + p["f1b"])
    h = graphc.relu(h @ p["f2"] + p["f2b"])
    logits = h @ p["f3"] + p["f3b"]
    loss = graphc.mean(graphc.softmax_cross_entropy(logits, labels))
    variables = list(p.values())
    grads = graphc.grad(loss, variables)
    updates = graphc.optim.sgd(variables, grads, lr=0.05, momentum=0.9)
    return graphc.function([images, labels], loss, updates=updates, compile=compile)


# W9: batch, sequence, input, hidden, regression targets per step
LSTM = {"B": 32, "T": 64, "I": 128, "H": 256, "O": 16}


def lstm_params(seed: int = 0) -> dict[str, np.ndarray]:
    """torch.nn.LSTM's layout (gates i, f, g, o stacked in rows) and a linear head."""
    I, H, O = LSTM["I"], LSTM["H"], LSTM["O"]  # noqa: E741
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(H)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-bound, bound, shape).astype(np.float32)

    return {
        "w_ih": uniform(4 * H, I),
        "w_hh": uniform(4 * H, H),
        "b_ih": uniform(4 * H),
        "b_hh": uniform(4 * H),
        "head": uniform(H, O),
        "headb": uniform(O),
    }


def lstm_batch(seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A (T, B, I) sequence and (T, B, O) targets."""
    B, T, I, O = LSTM["B"], LSTM["T"], LSTM["I"], LSTM["O"]  # noqa: E741
    rng = np.random.default_rng(seed)
    inputs = rng.standard_normal((T, B, I)).astype(np.float32)
    return inputs, rng.standard_normal((T, B, O)).astype(np.float32)


def lstm_step(compile: str = "eager") -> graphc.Function:
    """One SGD step (lr 0.1) of an LSTM (W9) with a linear head on every step's hidden
    state and a mean squared error, the LSTM written with graphc.scan."""
    import graphc

    B, H = LSTM["B"], LSTM["H"]
    p = {name: graphc.Variable(value, name=name) for name, value in lstm_params().items()}
    inputs = graphc.placeholder((None, B, LSTM["I"]), "float32", name="inputs")
    targets = graphc.placeholder((None, B, LSTM["O"]), "float32", name="targets")
    w_ih, w_hh = graphc.transpose(p["w_ih"]), graphc.transpose(p["w_hh"])
    bias = p["b_ih"] + p["b_hh"]

    def cell(state, x):
        h, c = state
        gates = x @ w_ih + h @ w_hh + bias
        i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
        c = graphc.sigmoid(f) * c + graphc.sigmoid(i) * graphc.tanh(g)
        h = graphc.sigmoid(o) * graphc.tanh(c)
        return (h, c), h

    zeros = np.zeros((B, H), np.float32)
    _, hs = graphc.scan(cell, (zeros, zeros), inputs)
    predictions = hs @ p["head"] + p["headb"]
    loss = graphc.mean((predictions - targets) ** 2)
    variables = list(p.values())
    updates = graphc.optim.sgd(variables, graphc.grad(loss, variables), lr=0.1)
    return graphc.function([inputs, targets], loss, updates=updates, compile=compile)


def chain(blocks: int, compile: str = "eager") -> graphc.Function:
    """N blocks of `tanh(h * c_i + 0.5)` then subtracting the row max; only c_i differs."""
    import graphc

    x = graphc.placeholder((None, 256), "float32", name="x")
    h = x
    for i in range(blocks):
        h = graphc.tanh(h * (1.0 + 0.01 * i) + 0.5)
        h = h - graphc.max(h, axis=1, keepdims=True)
    return graphc.function([x], h, compile=compile)


def chain_batch() -> np.ndarray:
    return np.random.default_rng(0).standard_normal((64, 256)).astype(np.float32)
