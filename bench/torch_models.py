"""W7 (LeNet-5 step), W8 (GPT step) and W9 (torch.nn.LSTM step) in PyTorch, eager and
under torch.compile: the peers of bench/models.py, from the same initial values and data.

`steady_step(workload, runs, compiled)` times one training step (forward, backward,
optimizer) after two warm-up steps; with `compiled`, the loss function runs under
torch.compile (its backward through AOTAutograd), the optimizer eagerly, as a model
wrapped in torch.compile trains. Imported only in a process whose python has torch.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np


def _gpt(torch, p, tokens, targets):  # type: ignore[no-untyped-def]
    import models

    F = torch.nn.functional
    V, T, C, H, L, B = (models.GPT[k] for k in "VTCHLB")
    D = C // H
    mask = torch.triu(torch.full((T, T), -1e9), diagonal=1)
    x = p["tok"][tokens] + p["pos"]
    for i in range(L):
        h = F.layer_norm(x, (C,), p[f"ln1g{i}"], p[f"ln1b{i}"], eps=1e-5)
        qkv = h @ p[f"qkv{i}"] + p[f"qkvb{i}"]
        q, k, v = (t.reshape(B, T, H, D).transpose(1, 2) for t in qkv.split(C, dim=-1))
        scores = q @ k.transpose(-1, -2) * float(1.0 / np.sqrt(D)) + mask
        attended = torch.softmax(scores, dim=-1) @ v
        x = x + attended.transpose(1, 2).reshape(B, T, C) @ p[f"proj{i}"] + p[f"projb{i}"]
        h = F.layer_norm(x, (C,), p[f"ln2g{i}"], p[f"ln2b{i}"], eps=1e-5)
        h = F.gelu(h @ p[f"fc{i}"] + p[f"fcb{i}"])
        x = x + h @ p[f"out{i}"] + p[f"outb{i}"]
    x = F.layer_norm(x, (C,), p["lnfg"], p["lnfb"], eps=1e-5)
    logits = (x @ p["tok"].T).reshape(B * T, V)
    return F.cross_entropy(logits, targets.reshape(B * T))


def _lenet(torch, p, images, labels):  # type: ignore[no-untyped-def]
    F = torch.nn.functional
    h = F.max_pool2d(F.relu(F.conv2d(images, p["c1"], p["c1b"], padding=2)), 2)
    h = F.max_pool2d(F.relu(F.conv2d(h, p["c2"], p["c2b"])), 2).reshape(-1, 400)
    h = F.relu(h @ p["f1"] + p["f1b"])
    h = F.relu(h @ p["f2"] + p["f2b"])
    return F.cross_entropy(h @ p["f3"] + p["f3b"], labels)


def _lstm_module(torch, raw):  # type: ignore[no-untyped-def]
    """torch.nn.LSTM with W9's weights, and the head's parameters."""
    import models

    lstm = torch.nn.LSTM(models.LSTM["I"], models.LSTM["H"])
    with torch.no_grad():
        for name in ("w_ih", "w_hh", "b_ih", "b_hh"):
            getattr(lstm, f"{name.replace('w_', 'weight_').replace('b_', 'bias_')}_l0").copy_(
                torch.from_numpy(raw[name])
            )
    head = {k: torch.tensor(raw[k], requires_grad=True) for k in ("head", "headb")}
    return lstm, head


def _lstm_step(torch, runs: int, compiled: bool) -> dict:  # type: ignore[no-untyped-def]
    """W9: torch.nn.LSTM (eager, or its loss under torch.compile) and SGD."""
    import models
    import steps

    lstm, head = _lstm_module(torch, models.lstm_params())
    inputs, targets = (torch.from_numpy(d) for d in models.lstm_batch())

    def loss_fn(x, y):  # type: ignore[no-untyped-def]
        hs, _ = lstm(x)
        return ((hs @ head["head"] + head["headb"] - y) ** 2).mean()

    if compiled:
        loss_fn = torch.compile(loss_fn)
    optimizer = torch.optim.SGD([*lstm.parameters(), *head.values()], lr=0.1)

    def once() -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(inputs, targets)
        loss.backward()
        optimizer.step()
        return loss

    ms, loss = steps.median_ms(once, runs)
    return {"ms": ms, "loss": float(loss)}


def steady_step(workload: str, runs: int, compiled: bool = False) -> dict:
    import models
    import steps
    import torch

    threads = os.environ.get("OMP_NUM_THREADS")
    if threads:
        torch.set_num_threads(int(threads))
    if workload == "W9":
        return _lstm_step(torch, runs, compiled)
    raw = models.lenet_params() if workload == "W7" else models.gpt_params()
    data = models.lenet_batch() if workload == "W7" else models.gpt_batch()
    params = {k: torch.tensor(v, requires_grad=True) for k, v in raw.items()}
    inputs = [torch.from_numpy(d) for d in data]
    model = _lenet if workload == "W7" else _gpt

    def loss_fn(*args):  # type: ignore[no-untyped-def]
        return model(torch, params, *args)

    if compiled:
        loss_fn = torch.compile(loss_fn)
    if workload == "W7":
        optimizer = torch.optim.SGD(params.values(), lr=0.05, momentum=0.9)
    else:
        optimizer = torch.optim.Adam(params.values(), lr=3e-4, betas=(0.9, 0.999), eps=1e-8)

    def once() -> Any:
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(*inputs)
        loss.backward()
        optimizer.step()
        return loss

    ms, loss = steps.median_ms(once, runs)
    return {"ms": ms, "loss": float(loss)}
