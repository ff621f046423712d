"""Train an MLP classifier on scikit-learn's 8x8 handwritten digits with graphc.

Shows the static-graph training loop: define the model and its loss once, take
gradients with graphc.grad, turn Adam's updates into one compiled training step,
then call it on mini-batches. The dataset ships inside scikit-learn (no download).
Then save the trained classifier with its accuracy as one .graphc file, beside the
test images and labels as .npy files, for `graphc run` to evaluate in a new process:

    python examples/train_digits.py [OUT_DIR]      # default: build/demo
    graphc run OUT_DIR/digits.graphc --input x=OUT_DIR/test_images.npy \
        --input y=OUT_DIR/test_labels.npy

`make demo` does both.
"""

import os
import sys
import time

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

import graphc

EPOCHS = 30
BATCH = 64
rng = np.random.default_rng(0)

digits = load_digits()
images = (digits.data / 16.0).astype("float32")  # 1797 images of 64 pixels in [0, 1]
train_x, test_x, train_y, test_y = train_test_split(
    images, digits.target, test_size=0.25, random_state=0, stratify=digits.target
)


def dense(fan_in: int, fan_out: int, name: str) -> tuple[graphc.Variable, graphc.Variable]:
    """He-initialized weights and zero biases."""
    scale = np.sqrt(2.0 / fan_in)
    weights = (rng.standard_normal((fan_in, fan_out)) * scale).astype("float32")
    return (
        graphc.Variable(weights, name=f"{name}/w"),
        graphc.Variable(np.zeros(fan_out, "float32"), name=f"{name}/b"),
    )


# Define the model once.
x = graphc.placeholder((None, 64), "float32", name="x")
y = graphc.placeholder((None,), "int64", name="y")
w1, b1 = dense(64, 128, "hidden")
w2, b2 = dense(128, 10, "output")
logits = graphc.relu(x @ w1 + b1) @ w2 + b2
loss = graphc.mean(graphc.softmax_cross_entropy(logits, y))

params = [w1, b1, w2, b2]
updates = graphc.optim.adam(params, graphc.grad(loss, params), lr=3e-3)
train_step = graphc.function([x, y], loss, updates=updates)
predictions = graphc.argmax(logits, axis=1)
predict = graphc.function([x], predictions)
# what the saved file computes: the accuracy on labelled images, and the predictions
evaluate = graphc.function(
    [x, y],
    {
        "accuracy": graphc.mean(graphc.equal(predictions, y).astype("float32")),
        "predictions": predictions,
    },
)


def accuracy(inputs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predict(inputs) == labels))


start = time.perf_counter()
for epoch in range(1, EPOCHS + 1):
    order = rng.permutation(len(train_x))
    losses = [
        train_step(train_x[batch], train_y[batch])
        for batch in np.array_split(order, len(order) // BATCH)
    ]
    if epoch == 1 or epoch % 10 == 0:
        print(f"epoch {epoch:2d}: mean loss {np.mean(losses):.4f}")
elapsed = time.perf_counter() - start

print(
    f"train accuracy {accuracy(train_x, train_y):.4f}, "
    f"test accuracy {accuracy(test_x, test_y):.4f} "
    f"({len(train_x)} training images, {EPOCHS} epochs in {elapsed:.1f} s)"
)

out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.join("build", "demo")
os.makedirs(out_dir, exist_ok=True)
model_path = os.path.join(out_dir, "digits.graphc")
graphc.save(model_path, evaluate)  # the graph and the trained weights; no Python code
np.save(os.path.join(out_dir, "test_images.npy"), test_x)
np.save(os.path.join(out_dir, "test_labels.npy"), test_y.astype("int64"))
print(f"saved {model_path} ({os.path.getsize(model_path) / 1024:.0f} KiB) and the test set")
