"""The workloads as graphc programs, compiled with `graphc.function(..., device="cpu")`.

Each builder defines the graph the way a user would (placeholders with an unknown
batch size, Variables for the weights, graphc.grad and graphc.optim.sgd for the step)
and returns the compiled Function.
"""

from __future__ import annotations

import workloads

import graphc

DEVICE = "cpu"


def w1() -> graphc.Function:
    x = graphc.placeholder((None,), "float32", name="x")
    y = graphc.placeholder((None,), "float32", name="y")
    out = graphc.tanh(0.5 * x + y) * graphc.sigmoid(y) - graphc.exp(-x * x) + 0.1 * y
    return graphc.function([x, y], out, device=DEVICE)


def _mlp_variables(params: workloads.MlpParams) -> list[graphc.Variable]:
    variables = []
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        variables += [graphc.Variable(w, name=f"w{i}"), graphc.Variable(b, name=f"b{i}")]
    return variables


def _mlp_logits(images: graphc.Tensor, variables: list[graphc.Variable]) -> graphc.Tensor:
    h = images
    layers = len(variables) // 2
    for i in range(layers):
        h = h @ variables[2 * i] + variables[2 * i + 1]
        if i < layers - 1:
            h = graphc.relu(h)
    return h


def w2_train_step(
    params: workloads.MlpParams, compile: str = "eager"
) -> tuple[graphc.Function, list[graphc.Variable]]:
    """One SGD step of the MLP: returns the loss and updates the weights."""
    images = graphc.placeholder((None, workloads.MLP_SIZES[0]), "float32", name="images")
    labels = graphc.placeholder((None,), "int64", name="labels")
    variables = _mlp_variables(params)
    logits = _mlp_logits(images, variables)
    loss = graphc.mean(graphc.softmax_cross_entropy(logits, labels))
    grads = graphc.grad(loss, variables)
    updates = graphc.optim.sgd(variables, grads, lr=workloads.LEARNING_RATE)
    step = graphc.function([images, labels], loss, updates=updates, device=DEVICE, compile=compile)
    return step, variables


def w3_predict(params: workloads.MlpParams) -> graphc.Function:
    """The net's logits, for any batch size."""
    images = graphc.placeholder((None, workloads.MLP_SIZES[0]), "float32", name="images")
    logits = _mlp_logits(images, _mlp_variables(params))
    return graphc.function([images], logits, device=DEVICE)


def w4() -> graphc.Function:
    x = graphc.placeholder((workloads.W4_SIZE,), "float32", name="x")
    return graphc.function([x], x + 1, device=DEVICE)


def w6() -> graphc.Function:
    x = graphc.placeholder((None, workloads.W6_SHAPE[1]), "float32", name="x")
    return graphc.function([x], graphc.softmax(x, axis=-1), device=DEVICE)
