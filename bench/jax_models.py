"""The compile-time workloads in jax (the peer of bench/compile_time.py): the chain,
W7, W8 and W9 with the same initial values and data as bench/models.py.

`first_step(workload)` times the first call of the jitted step: tracing plus XLA's
compile, plus one run. Imported only in a process whose python has jax.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def _gpt(jnp, jax, params, tokens, targets):  # type: ignore[no-untyped-def]
    import models

    V, T, C, H, L, B = (models.GPT[k] for k in "VTCHLB")
    D = C // H
    mask = jnp.triu(jnp.full((T, T), -1e9, jnp.float32), k=1)

    def ln(x, g, b):  # type: ignore[no-untyped-def]
        mean = x.mean(-1, keepdims=True)
        var = ((x - mean) ** 2).mean(-1, keepdims=True)
        return (x - mean) / jnp.sqrt(var + 1e-5) * g + b

    x = params["tok"][tokens] + params["pos"]
    for i in range(L):
        h = ln(x, params[f"ln1g{i}"], params[f"ln1b{i}"])
        qkv = h @ params[f"qkv{i}"] + params[f"qkvb{i}"]
        q, k, v = (p.reshape(B, T, H, D).transpose(0, 2, 1, 3) for p in jnp.split(qkv, 3, axis=-1))
        scores = q @ k.transpose(0, 1, 3, 2) * float(1.0 / np.sqrt(D)) + mask
        attended = jax.nn.softmax(scores, axis=-1) @ v
        x = x + attended.transpose(0, 2, 1, 3).reshape(B, T, C) @ params[f"proj{i}"]
        x = x + params[f"projb{i}"]
        h = ln(x, params[f"ln2g{i}"], params[f"ln2b{i}"])
        h = jax.nn.gelu(h @ params[f"fc{i}"] + params[f"fcb{i}"], approximate=False)
        x = x + h @ params[f"out{i}"] + params[f"outb{i}"]
    x = ln(x, params["lnfg"], params["lnfb"])
    logits = (x @ params["tok"].T).reshape(B * T, V)
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets.reshape(-1, 1), axis=1).mean()


def _lenet(jnp, jax, params, images, labels):  # type: ignore[no-untyped-def]
    def conv(x, w, b, pad):  # type: ignore[no-untyped-def]
        y = jax.lax.conv_general_dilated(x, w, (1, 1), [(pad, pad), (pad, pad)])
        return y + b[None, :, None, None]

    def pool(x):  # type: ignore[no-untyped-def]
        return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")

    h = pool(jax.nn.relu(conv(images, params["c1"], params["c1b"], 2)))
    h = pool(jax.nn.relu(conv(h, params["c2"], params["c2b"], 0))).reshape(-1, 400)
    h = jax.nn.relu(h @ params["f1"] + params["f1b"])
    h = jax.nn.relu(h @ params["f2"] + params["f2b"])
    logp = jax.nn.log_softmax(h @ params["f3"] + params["f3b"], axis=-1)
    return -jnp.take_along_axis(logp, labels.reshape(-1, 1), axis=1).mean()


def _lstm(jnp, jax, params, inputs, targets):  # type: ignore[no-untyped-def]
    """W9: the LSTM as jax.lax.scan, torch.nn.LSTM's gate order (i, f, g, o)."""
    import models

    B, H = models.LSTM["B"], models.LSTM["H"]
    bias = params["b_ih"] + params["b_hh"]

    def cell(state, x):  # type: ignore[no-untyped-def]
        h, c = state
        gates = x @ params["w_ih"].T + h @ params["w_hh"].T + bias
        i, f, g, o = (gates[:, k * H : (k + 1) * H] for k in range(4))
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h

    zeros = jnp.zeros((B, H), jnp.float32)
    _, hs = jax.lax.scan(cell, (zeros, zeros), inputs)
    return jnp.mean((hs @ params["head"] + params["headb"] - targets) ** 2)


def first_step(workload: str) -> dict:
    start = time.perf_counter()
    import jax
    import jax.numpy as jnp
    import models

    imported = time.perf_counter()
    if workload.startswith("chain"):
        blocks = int(workload[5:])

        @jax.jit
        def step(x):  # type: ignore[no-untyped-def]
            h = x
            for i in range(blocks):
                h = jnp.tanh(h * (1.0 + 0.01 * i) + 0.5)
                h = h - h.max(axis=1, keepdims=True)
            return h

        args: tuple = (models.chain_batch(),)
    elif workload in ("W7", "W8", "W9"):
        step, state, data = _training_step(workload)
        args = (*state, *data)
    else:
        raise ValueError(f"no jax version of {workload}")
    defined = time.perf_counter()
    out = step(*args)
    first = jax.tree.leaves(out)[0]
    jax.block_until_ready(first)
    done = time.perf_counter()
    return {
        "seconds": done - defined,
        "import": imported - start,
        "result": float(np.asarray(first).reshape(-1)[0]),
    }


def _training_step(workload: str) -> tuple[Any, tuple, tuple]:
    """W7's or W8's jitted training step, its initial state and its data: the step takes
    (*state, *data) and returns (loss, *new state)."""
    import jax
    import jax.numpy as jnp
    import models

    loss_fn = {"W7": _lenet, "W8": _gpt, "W9": _lstm}[workload]
    params = {"W7": models.lenet_params, "W8": models.gpt_params, "W9": models.lstm_params}[
        workload
    ]()
    data = {"W7": models.lenet_batch, "W8": models.gpt_batch, "W9": models.lstm_batch}[workload]()
    zeros = jax.tree.map(np.zeros_like, params)
    if workload == "W9":

        @jax.jit
        def sgd_step(p, a, b):  # type: ignore[no-untyped-def]
            loss, g = jax.value_and_grad(lambda q: loss_fn(jnp, jax, q, a, b))(p)
            return loss, jax.tree.map(lambda pi, gi: pi - 0.1 * gi, p, g)

        return sgd_step, (params,), data
    if workload == "W7":

        @jax.jit
        def step(p, m, a, b):  # type: ignore[no-untyped-def]
            loss, g = jax.value_and_grad(lambda q: loss_fn(jnp, jax, q, a, b))(p)
            m = jax.tree.map(lambda mi, gi: 0.9 * mi + gi, m, g)
            return loss, jax.tree.map(lambda pi, mi: pi - 0.05 * mi, p, m), m

        return step, (params, zeros), data

    @jax.jit
    def adam_step(p, m, v, t, a, b):  # type: ignore[no-untyped-def]
        loss, g = jax.value_and_grad(lambda q: loss_fn(jnp, jax, q, a, b))(p)
        t = t + 1
        m = jax.tree.map(lambda mi, gi: 0.9 * mi + 0.1 * gi, m, g)
        v = jax.tree.map(lambda vi, gi: 0.999 * vi + 0.001 * gi * gi, v, g)
        c1, c2 = 1 - 0.9**t, 1 - 0.999**t
        p = jax.tree.map(
            lambda pi, mi, vi: pi - 3e-4 * (mi / c1) / (jnp.sqrt(vi / c2) + 1e-8), p, m, v
        )
        return loss, p, m, v, t

    return adam_step, (params, zeros, zeros, 0.0), data


def steady_step(workload: str, runs: int) -> dict:
    """The median time of one jitted step of W7 or W8 after the first (compiled) one,
    with the step's outputs fed back as the next step's state, as a training loop does."""
    import jax
    import steps

    step, state, data = _training_step(workload)

    def once() -> Any:
        nonlocal state
        loss, *new_state = step(*state, *data)
        jax.block_until_ready(loss)
        state = tuple(new_state)
        return loss

    ms, loss = steps.median_ms(once, runs)
    return {"ms": ms, "loss": float(loss)}
