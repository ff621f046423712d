"""graphc.optim against hand-written numpy references of PyTorch's SGD and AdamW, step for
step, and clip_by_global_norm against TensorFlow's definition."""

from __future__ import annotations

import numpy as np
import pytest

import graphc as gc


def quadratic_problem(dtype: str = "float64"):
    """Two weights and a loss whose gradient depends on them: 0.5 |A w - b|^2 + sum(c * v^2)."""
    rng = np.random.default_rng(7)
    a = rng.standard_normal((5, 3)).astype(dtype)
    b = rng.standard_normal(5).astype(dtype)
    c = rng.uniform(0.5, 2, 2).astype(dtype)
    w0, v0 = rng.standard_normal(3).astype(dtype), rng.standard_normal(2).astype(dtype)

    def loss_and_grads(w: np.ndarray, v: np.ndarray) -> tuple[float, list[np.ndarray]]:
        residual = a @ w - b
        return 0.5 * residual @ residual + np.sum(c * v * v), [a.T @ residual, 2 * c * v]

    w = gc.Variable(w0, name="w")
    v = gc.Variable(v0, name="v")
    residual = gc.constant(a) @ w - gc.constant(b)
    loss = 0.5 * gc.sum(residual * residual) + gc.sum(gc.constant(c) * v * v)
    return (w, v), loss, [w0, v0], loss_and_grads


def sgd_reference(params, grads, state, lr, momentum, nesterov, weight_decay):
    new_params = []
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        g = g + weight_decay * p
        if momentum:
            state[i] = g if state.get(i) is None else momentum * state[i] + g
            g = g + momentum * state[i] if nesterov else state[i]
        new_params.append(p - lr * g)
    return new_params


def adam_reference(params, grads, state, step, lr, betas, eps, weight_decay):
    b1, b2 = betas
    new_params = []
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = state.get(i, (np.zeros_like(p), np.zeros_like(p)))
        p = p * (1 - lr * weight_decay)
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        state[i] = (m, v)
        denominator = np.sqrt(v) / np.sqrt(1 - b2**step) + eps
        new_params.append(p - lr / (1 - b1**step) * m / denominator)
    return new_params


@pytest.mark.parametrize(
    ("momentum", "nesterov", "weight_decay"),
    [(0.0, False, 0.0), (0.9, False, 0.0), (0.9, True, 0.0), (0.5, False, 0.1), (0.0, False, 0.2)],
)
def test_sgd_matches_pytorch_step_for_step(
    momentum: float, nesterov: bool, weight_decay: float
) -> None:
    params, loss, values, loss_and_grads = quadratic_problem()
    updates = gc.optim.sgd(
        params,
        gc.grad(loss, list(params)),
        lr=0.05,
        momentum=momentum,
        nesterov=nesterov,
        weight_decay=weight_decay,
    )
    step = gc.function([], loss, updates=updates)
    state: dict = {}
    for _ in range(5):
        expected_loss, grads = loss_and_grads(*values)
        np.testing.assert_allclose(step(), expected_loss, rtol=1e-12)
        values = sgd_reference(values, grads, state, 0.05, momentum, nesterov, weight_decay)
        for param, value in zip(params, values, strict=True):
            np.testing.assert_allclose(param.value, value, rtol=1e-12)


@pytest.mark.parametrize(
    ("betas", "eps", "weight_decay"), [((0.9, 0.999), 1e-8, 0.0), ((0.8, 0.99), 1e-3, 0.01)]
)
def test_adam_matches_pytorch_adamw_step_for_step(
    betas: tuple, eps: float, weight_decay: float
) -> None:
    params, loss, values, loss_and_grads = quadratic_problem()
    updates = gc.optim.adam(
        params, gc.grad(loss, list(params)), lr=0.1, betas=betas, eps=eps, weight_decay=weight_decay
    )
    step = gc.function([], loss, updates=updates)
    state: dict = {}
    for count in range(1, 7):
        expected_loss, grads = loss_and_grads(*values)
        np.testing.assert_allclose(step(), expected_loss, rtol=1e-12)
        values = adam_reference(values, grads, state, count, 0.1, betas, eps, weight_decay)
        for param, value in zip(params, values, strict=True):
            np.testing.assert_allclose(param.value, value, rtol=1e-12)


def test_learning_rate_may_be_a_fed_tensor_and_keeps_float32() -> None:
    params, loss, values, _ = quadratic_problem("float32")
    lr = gc.placeholder((), "float64", name="lr")
    step = gc.function(
        [lr], loss, updates=gc.optim.sgd(params, gc.grad(loss, list(params)), lr, momentum=0.9)
    )
    step(0.0)
    for param, value in zip(params, values, strict=True):
        np.testing.assert_array_equal(param.value, value)
        assert param.value.dtype == np.float32
    before = float(step(0.01))
    assert float(step(0.01)) < before
    adam_step = gc.function(
        [lr], loss, updates=gc.optim.adam(params, gc.grad(loss, list(params)), lr)
    )
    assert all(p.value.dtype == np.float32 for p in params)
    first = float(adam_step(0.05))
    for _ in range(20):
        last = float(adam_step(0.05))
    assert last < first


def test_clip_by_global_norm() -> None:
    a = gc.placeholder((2,), "float64")
    b = gc.placeholder((3,), "float32")
    (ca, cb), norm = gc.optim.clip_by_global_norm([a, b], 1.0)
    f = gc.function([a, b], [ca, cb, norm])
    got_a, got_b, got_norm = f(np.array([3.0, 0.0]), np.array([0.0, 4.0, 0.0], "float32"))
    np.testing.assert_allclose(got_norm, 5.0)
    np.testing.assert_allclose(got_a, [0.6, 0.0])
    np.testing.assert_allclose(got_b, [0.0, 0.8, 0.0], rtol=1e-6)
    assert got_b.dtype == np.float32
    small = f(np.array([0.3, 0.0]), np.zeros(3, "float32"))
    np.testing.assert_allclose(small[0], [0.3, 0.0])  # under the limit: unchanged


def test_optimizer_errors() -> None:
    params, loss, _, _ = quadratic_problem()
    grads = gc.grad(loss, list(params))
    with pytest.raises(gc.ArgumentError):
        gc.optim.sgd(params, grads[:1], 0.1)
    with pytest.raises(gc.GraphcError, match="not a Variable"):
        gc.optim.sgd([gc.constant(1.0)], grads[:1], 0.1)
    with pytest.raises(gc.ArgumentError, match="nesterov"):
        gc.optim.sgd(params, grads, 0.1, nesterov=True)
    with pytest.raises(gc.ArgumentError):
        gc.optim.adam(params, grads, betas=(1.0, 0.9))
    with pytest.raises(gc.ArgumentError):
        gc.optim.clip_by_global_norm(grads, 0.0)
