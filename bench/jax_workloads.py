"""The workloads in jax under jax.jit on the CPU: a peer graphc is compared with.

Imported only in a process whose environment has JAX_PLATFORMS=cpu and the thread
settings of its configuration (measure.py and run.py see to that). Inputs are put on
the device once, before timing, as torch_workloads.py does with torch.from_numpy,
except W4, whose call goes numpy in -> numpy out like graphc's. Every timed call
waits for its result (`.block_until_ready()`): jax dispatches asynchronously.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import workloads


def w1(x: np.ndarray, y: np.ndarray) -> Callable[[], jax.Array]:
    xj, yj = jnp.asarray(x), jnp.asarray(y)

    @jax.jit
    def fn(x, y):  # type: ignore[no-untyped-def]
        return jnp.tanh(0.5 * x + y) * jax.nn.sigmoid(y) - jnp.exp(-x * x) + 0.1 * y

    return lambda: fn(xj, yj).block_until_ready()


def _parameters(params: workloads.MlpParams) -> list[jax.Array]:
    return [jnp.asarray(a) for a in params.as_list()]


def _logits(parameters: list[jax.Array], images: jax.Array) -> jax.Array:
    h = images
    layers = len(parameters) // 2
    for i in range(layers):
        h = h @ parameters[2 * i] + parameters[2 * i + 1]
        if i < layers - 1:
            h = jax.nn.relu(h)
    return h


def _loss(parameters: list[jax.Array], images: jax.Array, labels: jax.Array) -> jax.Array:
    """Mean softmax cross-entropy of the logits."""
    logp = jax.nn.log_softmax(_logits(parameters, images), axis=-1)
    return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()


def w2_train_step(
    params: workloads.MlpParams, images: np.ndarray, labels: np.ndarray
) -> tuple[Callable[[], jax.Array], Callable[[], list[jax.Array]]]:
    """jax.grad and SGD in one jitted step; returns (step, current parameters). step()
    gives the loss. The old parameters' buffers are donated to the new ones, so the
    weights are updated in place as numpy's, torch's and graphc's are."""
    state = {"parameters": _parameters(params)}
    images_j = jnp.asarray(images)
    labels_j = jnp.asarray(labels.astype(np.int32))  # (jax's default integers are 32-bit)

    @functools.partial(jax.jit, donate_argnums=0)
    def sgd_step(parameters, images, labels):  # type: ignore[no-untyped-def]
        loss, grads = jax.value_and_grad(_loss)(parameters, images, labels)
        rate = workloads.LEARNING_RATE
        return loss, [p - rate * g for p, g in zip(parameters, grads, strict=True)]

    def step() -> jax.Array:
        loss, state["parameters"] = sgd_step(state["parameters"], images_j, labels_j)
        jax.block_until_ready(state["parameters"])
        return loss.block_until_ready()

    return step, lambda: state["parameters"]


def w3_predict(params: workloads.MlpParams, images: np.ndarray) -> Callable[[], jax.Array]:
    parameters = _parameters(params)
    images_j = jnp.asarray(images)
    fn = jax.jit(_logits)
    return lambda: fn(parameters, images_j).block_until_ready()


def w4(x: np.ndarray) -> Callable[[], np.ndarray]:
    """numpy in, numpy out, as graphc's call."""
    fn = jax.jit(lambda x: x + 1)
    return lambda: np.asarray(fn(x).block_until_ready())


def w6(x: np.ndarray) -> Callable[[], jax.Array]:
    xj = jnp.asarray(x)
    fn = jax.jit(lambda x: jax.nn.softmax(x, axis=-1))
    return lambda: fn(xj).block_until_ready()
