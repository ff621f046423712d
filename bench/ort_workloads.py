"""The inference workloads in onnxruntime on the CPU: a peer graphc is compared with.

Each workload is an ONNX model built here with onnx.helper (weights as initializers,
the batch dimension symbolic) and run by an InferenceSession on the CPU execution
provider with `intra_op_num_threads` set to the configuration's thread count and
`inter_op_num_threads` to 1; every other session option keeps its default (graph
optimizations on). Each call is `session.run`: numpy arrays in, numpy arrays out.
W2 is training, which onnxruntime's inference sessions do not do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import onnx
import onnxruntime as ort
import workloads
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
IR_VERSION = 8  # the IR version of opset 17: any onnxruntime since 1.13 loads it
FLOAT = TensorProto.FLOAT


def _model(
    nodes: list[onnx.NodeProto],
    inputs: list[onnx.ValueInfoProto],
    output: onnx.ValueInfoProto,
    constants: dict[str, np.ndarray],
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes,
        "graphc_bench",
        inputs,
        [output],
        initializer=[numpy_helper.from_array(value, name) for name, value in constants.items()],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = IR_VERSION
    onnx.checker.check_model(model)
    return model


def session(model: onnx.ModelProto, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


def _runner(model: onnx.ModelProto, threads: int, feeds: dict[str, np.ndarray]) -> Callable:
    run = session(model, threads).run
    return lambda: run(None, feeds)[0]


def _scalar(value: float) -> np.ndarray:
    return np.array(value, dtype=np.float32)


def w1_model() -> onnx.ModelProto:
    """tanh(0.5*x + y) * sigmoid(y) - exp(-x*x) + 0.1*y, x and y of any length."""
    node = helper.make_node
    nodes = [
        node("Mul", ["x", "half"], ["half_x"]),
        node("Add", ["half_x", "y"], ["inner"]),
        node("Tanh", ["inner"], ["tanh"]),
        node("Sigmoid", ["y"], ["sigmoid"]),
        node("Mul", ["tanh", "sigmoid"], ["product"]),
        node("Mul", ["x", "x"], ["square"]),
        node("Neg", ["square"], ["negative"]),
        node("Exp", ["negative"], ["gauss"]),
        node("Sub", ["product", "gauss"], ["difference"]),
        node("Mul", ["tenth", "y"], ["tenth_y"]),
        node("Add", ["difference", "tenth_y"], ["out"]),
    ]
    inputs = [helper.make_tensor_value_info(name, FLOAT, ["n"]) for name in ("x", "y")]
    output = helper.make_tensor_value_info("out", FLOAT, ["n"])
    return _model(nodes, inputs, output, {"half": _scalar(0.5), "tenth": _scalar(0.1)})


def mlp_model(params: workloads.MlpParams) -> onnx.ModelProto:
    """The W3 net's logits: Gemm, Relu, Gemm, Relu, Gemm, for any batch size."""
    nodes, constants = [], {}
    h = "images"
    last = len(params.weights) - 1
    for i, (w, b) in enumerate(zip(params.weights, params.biases, strict=True)):
        constants |= {f"w{i}": w, f"b{i}": b}
        z = "logits" if i == last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [h, f"w{i}", f"b{i}"], [z]))
        if i < last:
            h = f"h{i}"
            nodes.append(helper.make_node("Relu", [z], [h]))
    sizes = workloads.MLP_SIZES
    inputs = [helper.make_tensor_value_info("images", FLOAT, ["batch", sizes[0]])]
    output = helper.make_tensor_value_info("logits", FLOAT, ["batch", sizes[-1]])
    return _model(nodes, inputs, output, constants)


def w4_model() -> onnx.ModelProto:
    size = workloads.W4_SIZE
    nodes = [helper.make_node("Add", ["x", "one"], ["y"])]
    inputs = [helper.make_tensor_value_info("x", FLOAT, [size])]
    output = helper.make_tensor_value_info("y", FLOAT, [size])
    return _model(nodes, inputs, output, {"one": _scalar(1.0)})


def w6_model() -> onnx.ModelProto:
    columns = workloads.W6_SHAPE[1]
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=-1)]
    inputs = [helper.make_tensor_value_info("x", FLOAT, ["rows", columns])]
    output = helper.make_tensor_value_info("y", FLOAT, ["rows", columns])
    return _model(nodes, inputs, output, {})


def w1(x: np.ndarray, y: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    return _runner(w1_model(), threads, {"x": x, "y": y})


def w3_predict(
    params: workloads.MlpParams, images: np.ndarray, threads: int
) -> Callable[[], np.ndarray]:
    return _runner(mlp_model(params), threads, {"images": images})


def w4(x: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    return _runner(w4_model(), threads, {"x": x})


def w6(x: np.ndarray, threads: int) -> Callable[[], np.ndarray]:
    return _runner(w6_model(), threads, {"x": x})
