"""A character-level LSTM written with graphc.scan, trained on Python's own docstrings,
then sampled with graphc.fori_loop.

The text is the docstrings of a few standard-library modules (no download). The model
reads a window of characters and predicts each next one: an LSTM cell inside
graphc.scan, a linear head, softmax cross-entropy, Adam. graphc differentiates through
the scan and compiles the loop into the training step. The script prints the loss
against the unigram entropy (what a model that ignores the context can reach), then
generates text with the trained weights, one character per step of a fori_loop that
carries the LSTM state and the text written so far.

    python examples/char_rnn.py [STEPS]      # default 1000 training steps
"""

from __future__ import annotations

import inspect
import sys
import time

import numpy as np

import graphc

HIDDEN, WINDOW, BATCH, SAMPLE = 128, 32, 32, 240
MODULES = ("collections", "functools", "itertools", "textwrap", "string", "random", "json")


def corpus() -> str:
    """The docstrings of MODULES and their public members, as one text."""
    parts = []
    for name in MODULES:
        module = __import__(name)
        parts.append(inspect.getdoc(module) or "")
        for member_name, member in sorted(vars(module).items()):
            if not member_name.startswith("_"):
                doc = inspect.getdoc(member)
                if doc and doc != inspect.getdoc(type(member)):
                    parts.append(doc)
    return "\n\n".join(p for p in parts if p)


def lstm_cell(weights: dict, state: tuple, x: graphc.Tensor) -> tuple:
    """One LSTM step (gates i, f, g, o as in torch.nn.LSTM) on a batch of inputs."""
    h, c = state
    gates = x @ weights["w_x"] + h @ weights["w_h"] + weights["b"]
    i, f, g, o = (gates[..., k * HIDDEN : (k + 1) * HIDDEN] for k in range(4))
    c = graphc.sigmoid(f) * c + graphc.sigmoid(i) * graphc.tanh(g)
    return graphc.sigmoid(o) * graphc.tanh(c), c


def main(steps: int = 1000) -> tuple[float, float, str]:
    """Train for `steps` steps and sample: the final loss (mean of the last 50 steps),
    the unigram entropy, and the sampled text."""
    text = corpus()
    vocab = sorted(set(text))
    codes = np.array([vocab.index(ch) for ch in text], np.int64)
    counts = np.bincount(codes, minlength=len(vocab)) / len(codes)
    unigram = float(-(counts[counts > 0] * np.log(counts[counts > 0])).sum())
    print(f"{len(text)} characters, {len(vocab)} symbols; unigram entropy {unigram:.3f} nats")

    rng = np.random.default_rng(0)
    scale = 1 / np.sqrt(HIDDEN)

    def uniform(*shape: int) -> np.ndarray:
        return rng.uniform(-scale, scale, shape).astype(np.float32)

    weights = {
        "w_x": graphc.Variable(uniform(len(vocab), 4 * HIDDEN), name="w_x"),
        "w_h": graphc.Variable(uniform(HIDDEN, 4 * HIDDEN), name="w_h"),
        "b": graphc.Variable(np.zeros(4 * HIDDEN, np.float32), name="b"),
        "head": graphc.Variable(uniform(HIDDEN, len(vocab)), name="head"),
        "head_b": graphc.Variable(np.zeros(len(vocab), np.float32), name="head_b"),
    }

    # training: windows (time-major) of characters and the characters that follow them
    window = graphc.placeholder((WINDOW, None), "int64", name="window")
    following = graphc.placeholder((WINDOW, None), "int64", name="following")
    inputs = graphc.one_hot(window, len(vocab))
    zeros = graphc.zeros_like(inputs[0, :, :1]) * np.zeros(HIDDEN, np.float32)

    def step(state, x):
        h, c = lstm_cell(weights, state, x)
        return (h, c), h

    _, hs = graphc.scan(step, (zeros, zeros), inputs)
    logits = hs @ weights["head"] + weights["head_b"]
    loss = graphc.mean(graphc.softmax_cross_entropy(logits, following))
    params = list(weights.values())
    updates = graphc.optim.adam(params, graphc.grad(loss, params), lr=0.01)
    train = graphc.function([window, following], loss, updates=updates)

    started = time.perf_counter()
    losses = []
    for k in range(steps):
        starts = rng.integers(0, len(codes) - WINDOW - 1, BATCH)
        batch = np.stack([codes[s : s + WINDOW + 1] for s in starts], axis=1)
        losses.append(float(train(batch[:-1], batch[1:])))
        if k % 50 == 0 or k == steps - 1:
            recent = np.mean(losses[-50:])
            print(f"step {k:4d}  loss {recent:.3f}  ({time.perf_counter() - started:.1f} s)")
    final = float(np.mean(losses[-50:]))
    print(f"final loss {final:.3f} nats against the unigram entropy {unigram:.3f}")

    # sampling: a fori_loop carries the state, the last character and the text so far;
    # Gumbel noise fed in picks each next character from the softmax (temperature 0.8)
    noise = graphc.placeholder((SAMPLE, len(vocab)), "float32", name="noise")
    first = graphc.placeholder((), "int64", name="first")
    positions = graphc.arange(SAMPLE, dtype="int64")
    h0 = graphc.zeros_like(weights["b"][:HIDDEN])

    def write(i, carry):
        h, c, last, written = carry
        x = graphc.one_hot(last, len(vocab))
        h, c = lstm_cell(weights, (h, c), x)
        scores = (h @ weights["head"] + weights["head_b"]) / 0.8
        chosen = graphc.argmax(scores + graphc.take(noise, i, axis=0), axis=0)
        return h, c, chosen, graphc.where(graphc.equal(positions, i), chosen, written)

    start = (h0, h0, first, graphc.zeros_like(positions))
    _, _, _, written = graphc.fori_loop(0, SAMPLE, write, start)
    sample = graphc.function([first, noise], written)
    gumbel = -np.log(-np.log(rng.uniform(1e-9, 1.0, (SAMPLE, len(vocab))))).astype(np.float32)
    generated = sample(np.int64(vocab.index("T")), gumbel)
    written = "T" + "".join(vocab[c] for c in generated)
    print("sample:\n" + written)
    return final, unigram, written


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1000)
