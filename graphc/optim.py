"""Optimizers as graph updates: `sgd`, `adam` and `clip_by_global_norm`.

Part of the IR core's front end. `sgd` and `adam` return an `updates` dict for
`graphc.function(..., updates=...)`; the slot state they need (momentum buffers,
moments, the step count) lives in Variables they create. Each update is written
from the old values only, so the whole step applies at once after the outputs.
Their arithmetic follows PyTorch's SGD and AdamW step for step.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from graphc.api.elementwise import cast, maximum, multiply, sqrt
from graphc.api.reduce import sum as reduce_sum
from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError
from graphc.ir import located
from graphc.tensor import Tensor, Variable, as_tensor

__all__ = ["adam", "clip_by_global_norm", "sgd"]


def _sequence(op: str, name: str, values: Any) -> list[Any]:
    if isinstance(values, Tensor) or not isinstance(values, Sequence):
        raise located(op, ArgumentTypeError, f"{name} must be a list, got {values!r:.60}")
    return list(values)


def _number(op: str, name: str, value: Any) -> float:
    """A hyperparameter that must be a real number."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise located(op, ArgumentTypeError, f"{name} must be a number, got {value!r:.60}")
    return float(value)


def _pairs(op: str, params: Sequence[Any], grads: Sequence[Any]) -> list[tuple[Variable, Tensor]]:
    params, grads = _sequence(op, "params", params), _sequence(op, "grads", grads)
    if len(params) != len(grads):
        raise located(op, ArgumentError, f"{len(params)} params but {len(grads)} grads")
    pairs = []
    for param, grad in zip(params, grads, strict=True):
        if not isinstance(param, Variable):
            raise located(
                op, ArgumentTypeError, f"{param!r} is not a Variable; only state is updated"
            )
        if param.dtype.kind != "f":
            raise located(op, DTypeError, f"{param!r} is not a float Variable")
        pairs.append((param, as_tensor(grad)))
    return pairs


def _scalar(value: Any, like: Tensor) -> Any:
    """A hyperparameter next to `like`: a Python number stays weak; a tensor is cast to
    like's dtype, so a float64 schedule never changes a float32 weight's dtype."""
    if isinstance(value, Tensor):
        if value.shape != ():
            raise located("optim", ArgumentError, f"a hyperparameter must be 0-d, got {value!r}")
        return cast(value, like.dtype)
    return _number("optim", "a hyperparameter", value)


def _slot(param: Variable, kind: str) -> Variable:
    return Variable(np.zeros_like(param.value), name=f"{param.name}/{kind}", trainable=False)


def sgd(
    params: Sequence[Variable],
    grads: Sequence[Any],
    lr: Any,
    momentum: float = 0.0,
    nesterov: bool = False,
    weight_decay: float = 0.0,
) -> dict[Variable, Tensor]:
    """Stochastic gradient descent, as PyTorch's SGD (dampening 0).

    g = grad + weight_decay * p; with momentum, buf = momentum * buf + g (buf starts at 0,
    so the first step uses g) and g = g + momentum * buf (nesterov) or buf; p = p - lr * g.

    Returns
    -------
    dict
        Variable -> new value, for `graphc.function(..., updates=...)`.
    """
    momentum = _number("sgd", "momentum", momentum)
    weight_decay = _number("sgd", "weight_decay", weight_decay)
    if nesterov and momentum <= 0:
        raise located("sgd", ArgumentError, "nesterov momentum needs momentum > 0")
    updates: dict[Variable, Tensor] = {}
    for param, grad in _pairs("sgd", params, grads):
        step = grad if weight_decay == 0 else grad + multiply(weight_decay, param)
        if momentum != 0:
            buffer = _slot(param, "momentum")
            new_buffer = multiply(momentum, buffer) + step
            updates[buffer] = new_buffer
            step = step + multiply(momentum, new_buffer) if nesterov else new_buffer
        updates[param] = param - multiply(_scalar(lr, param), step)
    return updates


def adam(
    params: Sequence[Variable],
    grads: Sequence[Any],
    lr: Any = 1e-3,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
) -> dict[Variable, Tensor]:
    """Adam with decoupled weight decay, as PyTorch's AdamW.

    p = p * (1 - lr * weight_decay); m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
    p = p - lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps), with t the step count.

    Returns
    -------
    dict
        Variable -> new value, including the moments and the step count.
    """
    if not isinstance(betas, Sequence) or len(betas) != 2:
        raise located("adam", ArgumentTypeError, f"betas must be a pair, got {betas!r:.60}")
    beta1, beta2 = (_number("adam", "betas", b) for b in betas)
    eps = _number("adam", "eps", eps)
    weight_decay = _number("adam", "weight_decay", weight_decay)
    if not (0 <= beta1 < 1 and 0 <= beta2 < 1) or eps < 0:
        raise located(
            "adam", ArgumentError, f"need 0 <= betas < 1 and eps >= 0, got {betas}, {eps}"
        )
    pairs = _pairs("adam", params, grads)
    count = Variable(np.array(0, "int64"), name="adam/step", trainable=False)
    new_count = count + 1
    updates: dict[Variable, Tensor] = {count: new_count}
    steps = cast(new_count, "float64")
    correction1 = 1 - beta1**steps
    root_correction2 = sqrt(1 - beta2**steps)
    for param, grad in pairs:
        rate = _scalar(lr, param)
        first, second = _slot(param, "adam_m"), _slot(param, "adam_v")
        new_first = multiply(beta1, first) + multiply(1 - beta1, grad)
        new_second = multiply(beta2, second) + multiply(1 - beta2, grad * grad)
        decayed = param if weight_decay == 0 else param * (1 - multiply(rate, weight_decay))
        denominator = sqrt(new_second) / cast(root_correction2, param.dtype) + eps
        step_size = multiply(rate, 1 / cast(correction1, param.dtype))
        updates[first], updates[second] = new_first, new_second
        updates[param] = decayed - step_size * (new_first / denominator)
    return updates


def clip_by_global_norm(grads: Sequence[Any], max_norm: float) -> tuple[list[Tensor], Tensor]:
    """Scale all gradients by max_norm / max(global_norm, max_norm), as TensorFlow's
    clip_by_global_norm; global_norm = sqrt(sum of every gradient's squares).

    Returns
    -------
    (clipped_grads, global_norm)
    """
    grads = [as_tensor(g) for g in _sequence("clip_by_global_norm", "grads", grads)]
    max_norm = _number("clip_by_global_norm", "max_norm", max_norm)
    if not grads:
        raise located("clip_by_global_norm", ArgumentError, "needs at least one gradient")
    if max_norm <= 0:
        raise located("clip_by_global_norm", ArgumentError, f"max_norm must be > 0, got {max_norm}")
    squares = [reduce_sum(g * g) for g in grads]
    total = squares[0]
    for square in squares[1:]:
        total = total + square
    global_norm = sqrt(total)
    scale = max_norm / maximum(global_norm, max_norm)
    return [g * cast(scale, g.dtype) for g in grads], global_norm
