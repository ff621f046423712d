"""The workloads in PyTorch eager on the CPU: the peer graphc is compared with.

Inputs are converted from the shared numpy data once, before timing (torch.from_numpy
shares memory), except W4, whose call goes numpy in -> numpy out like graphc's.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import workloads


def w1(x: np.ndarray, y: np.ndarray) -> Callable[[], torch.Tensor]:
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)

    def run() -> torch.Tensor:
        return torch.tanh(0.5 * xt + yt) * torch.sigmoid(yt) - torch.exp(-xt * xt) + 0.1 * yt

    return run


def _parameters(params: workloads.MlpParams, requires_grad: bool) -> list[torch.Tensor]:
    return [torch.tensor(a, requires_grad=requires_grad) for a in params.as_list()]


def _logits(images: torch.Tensor, parameters: list[torch.Tensor]) -> torch.Tensor:
    h = images
    layers = len(parameters) // 2
    for i in range(layers):
        h = torch.addmm(parameters[2 * i + 1], h, parameters[2 * i])
        if i < layers - 1:
            h = torch.relu(h)
    return h


def w2_train_step(
    params: workloads.MlpParams, images: np.ndarray, labels: np.ndarray
) -> tuple[Callable[[], float], list[torch.Tensor]]:
    """Autograd step with in-place SGD; returns (step, parameters). step() gives the loss."""
    parameters = _parameters(params, requires_grad=True)
    images_t, labels_t = torch.from_numpy(images), torch.from_numpy(labels)

    def step() -> float:
        loss = torch.nn.functional.cross_entropy(_logits(images_t, parameters), labels_t)
        loss.backward()
        with torch.no_grad():
            for p in parameters:
                p.sub_(p.grad, alpha=workloads.LEARNING_RATE)
                p.grad = None
        return loss.item()

    return step, parameters


def w3_predict(params: workloads.MlpParams, images: np.ndarray) -> Callable[[], torch.Tensor]:
    parameters = _parameters(params, requires_grad=False)
    images_t = torch.from_numpy(images)

    def run() -> torch.Tensor:
        with torch.inference_mode():
            return _logits(images_t, parameters)

    return run


def w4(x: np.ndarray) -> Callable[[], np.ndarray]:
    """numpy in, numpy out, as graphc's call: from_numpy and .numpy() share memory."""

    def run() -> np.ndarray:
        return (torch.from_numpy(x) + 1).numpy()

    return run


def w6(x: np.ndarray) -> Callable[[], torch.Tensor]:
    xt = torch.from_numpy(x)

    def run() -> torch.Tensor:
        return torch.softmax(xt, dim=-1)

    return run
