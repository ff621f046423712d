"""Write the golden file of the current format version: `python tests/data/make_golden.py`.

Run it once per released FORMAT_VERSION (never again for an old one): the test suite
checks that every golden file here still loads and still computes what it computed when
it was written (`format_v<N>_expected.npz`).

The model: a small MLP training step (Adam updates, a dict of outputs), a softmax with
unknown batch size and a few attribute kinds (axes, keepdims, a constant array, NaN).
Since version 2 it also holds control flow (a scan over the batch, a cond and a bounded
while_loop) and their gradients, so it is built for device="reference", the device that
runs control flow.
"""

from __future__ import annotations

import os

import numpy as np

import graphc as gc

HERE = os.path.dirname(os.path.abspath(__file__))


def build() -> tuple[gc.Function, dict[str, np.ndarray]]:
    rng = np.random.default_rng(7)
    x = gc.placeholder(("batch", 6), "float32", name="x")
    labels = gc.placeholder(("batch",), "int64", name="labels")
    w = gc.Variable(rng.standard_normal((6, 4)).astype("float32"), name="w")
    b = gc.Variable(np.zeros(4, "float32"), name="b")
    table = gc.constant(np.array([1.0, np.nan, -0.0, np.inf], "float32"))
    logits = gc.tanh(x @ w + b) * 2.0
    _, running = gc.scan(lambda total, row: (total + row, total), gc.zeros_like(b), logits)
    scale = gc.while_loop(lambda s: s < 1.5, lambda s: s * 1.25, gc.sum(b * b) + 0.5, 8)
    logits = gc.cond(gc.sum(running) > 0.0, lambda a, s: a * s, lambda a, s: a - s, logits, scale)
    loss = gc.mean(gc.softmax_cross_entropy(logits, labels))
    updates = gc.optim.adam([w, b], gc.grad(loss, [w, b]), lr=0.05)
    outputs = {
        "loss": loss,
        "probs": gc.softmax(logits, axis=-1),
        "masked": gc.where(gc.isfinite(table), table, 0.0) + gc.sum(logits, axis=0),
        "top": gc.argmax(logits, axis=1),
    }
    step = gc.function([x, labels], outputs, updates=updates, device="reference")
    feeds = {
        "x": rng.standard_normal((5, 6)).astype("float32"),
        "labels": rng.integers(0, 4, 5).astype("int64"),
    }
    return step, feeds


def main() -> None:
    step, feeds = build()
    version = gc.FORMAT_VERSION
    gc.save(os.path.join(HERE, f"format_v{version}.graphc"), step)
    expected = {}
    for call in range(2):  # two calls: the second shows the updates were applied
        for name, value in step(**feeds).items():
            expected[f"{call}/{name}"] = value
    np.savez(os.path.join(HERE, f"format_v{version}_expected.npz"), **feeds, **expected)


if __name__ == "__main__":
    main()
