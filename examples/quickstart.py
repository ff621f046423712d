"""Quickstart: define a computation once as a symbolic graph, then run it many times.

Shows placeholders with a size known only at run time, Variables (state kept across
calls), a function returning a dict, an update applied after each call, a shape
error caught where the graph is defined, and the IR graphc runs.
Run it with `make demo`.
"""

import numpy as np

import graphc

rng = np.random.default_rng(0)

# 1. Define. Nothing is computed here: these lines build a graph.
x = graphc.placeholder((None, 4), "float32", name="x")  # None: the batch size, known per call
W = graphc.Variable(rng.standard_normal((4, 3)).astype("float32"), name="W")
b = graphc.Variable(np.zeros(3, "float32"), name="b")
seen = graphc.Variable(np.array(0, "int64"), name="seen")  # how many rows were classified

logits = x @ W + b
outputs = {
    "probabilities": graphc.softmax(logits),
    "label": graphc.argmax(logits, axis=1),
    "margin": graphc.max(logits, axis=1) - graphc.min(logits, axis=1),
}

# 2. Compile once: the signature is checked, the graph is extracted and verified.
classify = graphc.function([x], outputs, updates={seen: seen + graphc.count(x, axis=0)})

# 3. Run many times, with numpy arrays in and numpy arrays out.
for batch_size in (2, 5):
    batch = rng.standard_normal((batch_size, 4)).astype("float32")
    result = classify(batch)
    print(
        f"batch of {batch_size}: labels {result['label']}, "
        f"row sums {np.round(result['probabilities'].sum(axis=1), 6)}"
    )
print(f"rows classified so far: {seen.value}")

# 4. Mistakes are caught where the graph is defined, naming the op and the line.
try:
    x @ graphc.placeholder((5, 2), name="wrong")
except graphc.ShapeError as error:
    print(f"\ncaught at definition time:\n  {error}")

# ... and bad inputs are rejected before anything runs.
try:
    classify(np.ones((2, 5), "float32"))
except graphc.InputError as error:
    print(f"caught before running:\n  {error}")

# 5. The graph that runs, one line per node.
print(f"\n{classify.graph}")
