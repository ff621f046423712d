"""The kernel program's records, printer and verifier (kernels/plan.py): what each step
of a planned graph becomes (Loop, Library, View), its text form, and the verifier
passing on real programs and failing on programs broken one field at a time."""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pytest

import graphc as gc
from graphc.errors import VerifyError
from graphc.ir import Graph, GraphBuilder, Value
from graphc.kernels import plan as planning
from graphc.kernels.plan import (
    Buffer,
    Library,
    Loop,
    LoopStep,
    Operand,
    Program,
    Reduction,
    View,
)
from graphc.kernels.program_text import format_program
from graphc.kernels.verify import verify_program
from graphc.registry import Attrs
from graphc.types import Sym, TensorType

F32 = np.dtype("float32")


def program_of(inputs: list, outputs: object, **options: object) -> Program:
    """The program of a function's optimized graph (the default pipeline, memory plan
    included), built on the reference device so nothing is compiled."""
    return planning.plan(gc.function(inputs, outputs, device="reference", **options).graph)


def records(program: Program, kind: type) -> list:
    return [k for k in program.kernels if isinstance(k, kind)]


def chain() -> Program:
    x = gc.placeholder(("n",), "float32", name="x")
    y = gc.placeholder(("n",), "float32", name="y")
    return program_of([x, y], gc.tanh(0.5 * x + y) * gc.sigmoid(y))


def softmax() -> Program:
    x = gc.placeholder((None, 10), "float32", name="x")
    return program_of([x], gc.softmax(x, axis=-1))


def mlp_step() -> Program:
    rng = np.random.default_rng(0)
    x = gc.placeholder((None, 6), "float32", name="x")
    labels = gc.placeholder((None,), "int64", name="labels")
    w1 = gc.Variable(rng.normal(size=(6, 8)).astype("float32"), name="w1")
    b1 = gc.Variable(np.zeros(8, "float32"), name="b1")
    w2 = gc.Variable(rng.normal(size=(8, 3)).astype("float32"), name="w2")
    b2 = gc.Variable(np.zeros(3, "float32"), name="b2")
    logits = gc.tanh(x @ w1 + b1) @ w2 + b2
    loss = gc.mean(gc.softmax_cross_entropy(logits, labels))
    params = [w1, b1, w2, b2]
    updates = gc.optim.sgd(params, gc.grad(loss, params), 0.1)
    return program_of([x, labels], loss, updates=updates)


def cnn_step() -> Program:
    w = gc.Variable(np.full((3, 2, 3, 3), 0.1, np.float32), name="w")
    images = gc.placeholder((None, 2, 8, 8), "float32", name="images")
    h = gc.max_pool2d(gc.relu(gc.conv2d(images, w, padding=1)), 2)
    loss = gc.sum(h * h)
    return program_of([images], loss, updates={w: w - 0.001 * gc.grad(loss, [w])[0]})


# ------------------------------------------------------------------ records


def test_an_elementwise_chain_is_one_loop_with_a_scalar_operand() -> None:
    program = chain()
    (loop,) = program.kernels
    assert isinstance(loop, Loop)
    n = Sym("n")
    vector = TensorType(F32, (n,))
    x, y, half = loop.operands
    assert (x.value, x.type, x.is_scalar) == (Value(0), vector, False)
    assert (y.value, y.type, y.is_scalar) == (Value(1), vector, False)
    # the 0.5 the fuse pass copied into the body is a scalar operand, not a step
    assert half.is_scalar
    assert half.value is None
    assert half.type == TensorType(F32, ())
    assert half.scalar == 0.5
    assert half.scalar.dtype == F32
    assert [(s.op, s.args, s.type) for s in loop.body] == [
        ("mul", (0, 2), vector),
        ("add", (3, 1), vector),
        ("tanh", (4,), vector),
        ("sigmoid", (1,), vector),
        ("mul", (5, 6), vector),
    ]
    assert loop.body[0] == LoopStep("mul", (0, 2), Attrs(), vector)
    assert loop.results == (7,)
    assert loop.outputs == (Value(2),)
    assert loop.shape == (n,)
    assert loop.reduction is None
    assert loop.kind == "elementwise"
    assert loop.scalars == frozenset({2})
    assert loop.value_types == (vector, vector, TensorType(F32, ()), *[vector] * 5)


@pytest.mark.usefixtures("unfused_rows")
def test_a_softmax_has_reduction_loops_over_its_rows() -> None:
    program = softmax()
    reductions = [k for k in records(program, Loop) if k.reduction is not None]
    rows = Sym("x.0")
    assert [(k.reduction.op, k.reduction.axes, k.reduction.keepdims) for k in reductions] == [
        ("max", (1,), True),
        ("sum", (1,), True),
    ]
    for loop in reductions:
        assert loop.shape == (rows, 10)  # the reduced value's shape, not the result's
        assert loop.reduction.source == 0
        assert loop.body[-1].type == TensorType(F32, (rows, 1))
        assert loop.kind == "reduction"
        assert loop.prologue == ()
    final = program.kernels[-1]
    assert isinstance(final, Loop)
    assert final.reduction is None
    assert [s.op for s in final.body] == ["div"]
    assert final.shape == (rows, 10)


def test_a_fused_reduction_keeps_its_prologue_in_the_body() -> None:
    x = gc.placeholder((None, 8), "float64", name="x")
    (loop,) = program_of([x], gc.sum(x * x, axis=1)).kernels
    assert [s.op for s in loop.body] == ["mul", "sum"]
    assert loop.reduction == Reduction("sum", (1,), 1, False)
    assert loop.shape == (Sym("x.0"), 8)
    assert [s.op for s in loop.prologue] == ["mul"]
    assert loop.results == (2,)
    assert loop.fused_body == (
        ("mul", (0, 0), Attrs()),
        ("sum", (1,), Attrs({"axes": (1,), "keepdims": False})),
    )


def test_a_matmul_is_a_library_record_and_a_transpose_a_view() -> None:
    a = gc.placeholder((3, 4), "float32", name="a")
    b = gc.placeholder((4, 5), "float32", name="b")
    program = program_of([a, b], [gc.transpose(a @ b), gc.exp(a)])
    library, view, loop = program.kernels
    assert library == Library(2, "matmul", Attrs(), (Value(0), Value(1)), (Value(2),))
    assert view == View(3, "transpose", Attrs({"perm": (1, 0)}), Value(2), (Value(3),))
    assert isinstance(loop, Loop)


def test_a_fused_matmul_is_a_library_record_with_its_body() -> None:
    x = gc.placeholder((None, 4), "float32", name="x")
    w = gc.Variable(np.ones((4, 3), "float32"), name="w")
    (record,) = program_of([x], gc.relu(x @ w)).kernels
    assert isinstance(record, Library)
    assert (record.op, record.attrs["kind"]) == ("fused", "matmul")
    assert record.inputs == (Value(0), Value(1))


def test_a_one_element_constant_input_is_a_scalar_and_an_empty_one_an_array() -> None:
    builder = GraphBuilder()
    x = builder.add1("placeholder", [], {"name": "x", "dtype": "float64", "shape": (0, 3)})
    two = builder.add1("constant", [], {"value": np.full((1, 1), 2.0)})
    empty = builder.add1("constant", [], {"value": np.zeros((0, 3))})
    out = builder.add1("mul", [builder.add1("add", [x, two]), empty])
    program = planning.plan(builder.build([x], [out]))
    add, mul = program.kernels
    scalar = add.operands[1]
    assert scalar.value is None
    assert scalar.type == TensorType(np.dtype("float64"), (1, 1))  # it still broadcasts
    assert scalar.scalar == 2.0
    assert add.scalars == frozenset({1})
    assert mul.operands[1] == Operand(TensorType(np.dtype("float64"), (0, 3)), empty)
    assert mul.scalars == frozenset()


def _twins() -> Graph:
    """One graph holding each single-op kernel beside the one-step fused group that
    computes the same thing."""
    builder = GraphBuilder()
    x = builder.add1("placeholder", [], {"name": "x", "dtype": "float32", "shape": ("n", 3)})
    half = np.array(0.5, np.float32)
    product = builder.add1("mul", [x, builder.add1("constant", [], {"value": half})])
    body = (("constant", (), Attrs({"value": half})), ("mul", (0, 1), Attrs()))
    (fused_product,) = builder.add(
        "fused", [x], {"body": body, "results": (2,), "kind": "elementwise"}
    )
    total = builder.add1("sum", [x], {"axes": (1,)})
    reduce = (("sum", (0,), Attrs({"axes": (1,), "keepdims": False})),)
    (fused_total,) = builder.add(
        "fused", [x], {"body": reduce, "results": (1,), "kind": "reduction"}
    )
    return builder.build([x], [product, fused_product, total, fused_total])


def test_single_ops_make_the_same_loop_as_one_step_fused_groups() -> None:
    program = planning.plan(_twins())
    product, fused_product, total, fused_total = program.kernels

    def anonymous(loop: Loop) -> Loop:
        return dataclasses.replace(loop, node=-1, outputs=())

    assert anonymous(product) == anonymous(fused_product)
    assert anonymous(total) == anonymous(fused_total)
    assert product.operands[1].is_scalar
    assert total.reduction is not None
    assert product != total


# ------------------------------------------------------------------ the printer


def test_the_printer_shows_sources_dims_and_the_fused_loop() -> None:
    text = format_program(chain())
    assert text == str(chain())
    expected = [
        "program:",
        "  source %0 x: float32[n] (input)",
        "  source %1 y: float32[n] (input)",
        "  dims: d0 = n",
        "  %2 = loop over [n]: mul -> add -> tanh -> sigmoid -> mul",
        "      x0 = %0 : float32[n]  (input)",
        "      x1 = %1 : float32[n]  (input)",
        "      x2 = 0.5 : float32[]  (scalar)",
        "      x3 = mul x0, x2 : float32[n]",
        "      x4 = add x3, x1 : float32[n]",
        "      x5 = tanh x4 : float32[n]",
        "      x6 = sigmoid x1 : float32[n]",
        "      x7 = mul x5, x6 : float32[n]",
        "      %2 <- x7 : float32[n] (fresh)",
        "  return %2",
    ]
    assert text.splitlines() == expected


@pytest.mark.usefixtures("unfused_rows")
def test_the_printer_shows_buffers_reductions_libraries_views_and_updates() -> None:
    program = mlp_step()
    lines = str(program).splitlines()
    assert program.buffers
    for i, buffer in enumerate(program.buffers):
        assert f"  buffer b{i}: {buffer.dtype.name} sized like {buffer.sized_like}" in lines
    assert "  source %2 w1: float32[6,8] (variable)" in lines
    assert "  dims: d0 = x.0, d1 = labels.0" in lines
    # node ids and buffer numbers depend on the passes: `%N` and `bN` stand for any
    expected = [
        "  %N = library fused matmul [matmul -> add] %N, %N, %N : float32[x.0,3] (arena bN)",
        "  %N = view transpose %4 {perm=(1, 0)} : float32[3,8] (view)",
        "  %N = loop over [x.0,3], max of x0 over axes (1,), keepdims: max",
        "      x0 = 1.0 : float32[]  (scalar)",
        "  update %3 <- %N (state of %3)",
    ]
    for text in expected:
        pattern = re.escape(text).replace("%N", r"%\d+").replace("bN", r"b\d+")
        assert any(re.fullmatch(pattern, line) for line in lines), text


# ------------------------------------------------------------------ the verifier


@pytest.mark.parametrize(
    "build", [chain, softmax, mlp_step, cnn_step], ids=["chain", "softmax", "mlp", "cnn"]
)
def test_the_verifier_passes_real_programs(build) -> None:
    program = build()
    assert verify_program(program) is program
    assert len(program.kernels) == len(program.steps)
    assert [k.node for k in program.kernels] == [n.id for n in program.steps]


def test_the_training_programs_use_the_memory_plan_and_every_record_kind() -> None:
    for program in (mlp_step(), cnn_step()):
        assert program.buffers
        assert program.arena_slot
    assert {type(k) for k in mlp_step().kernels} == {Loop, Library, View}
    ops = {k.op for k in records(cnn_step(), Library)}
    assert {"conv2d", "max_pool2d", "max_pool2d_grad", "conv2d_grad_weight"} <= ops


def _loop_index(program: Program, predicate=lambda loop: True) -> int:
    return next(i for i, k in enumerate(program.kernels) if isinstance(k, Loop) and predicate(k))


def _with_kernel(program: Program, index: int, record: object) -> Program:
    kernels = list(program.kernels)
    kernels[index] = record
    return dataclasses.replace(program, kernels=tuple(kernels))


def _arena_value(program: Program) -> Value:
    return next(v for v, kind in program.home.items() if kind == "arena")


def test_an_arena_slot_out_of_range_fails() -> None:
    program = mlp_step()
    v = _arena_value(program)
    broken = {**program.arena_slot, v: len(program.buffers)}
    with pytest.raises(VerifyError, match=rf"{v} lives in buffer b{len(program.buffers)}"):
        verify_program(dataclasses.replace(program, arena_slot=broken))


def test_a_buffer_of_the_wrong_dtype_fails() -> None:
    program = mlp_step()
    v = _arena_value(program)
    index = program.arena_slot[v]
    buffers = list(program.buffers)
    wide = buffers[index].sized_like.with_dtype(np.dtype("float64"))
    buffers[index] = Buffer(np.dtype("float64"), wide)
    with pytest.raises(VerifyError, match=rf"lives in b{index} of float64"):
        verify_program(dataclasses.replace(program, buffers=tuple(buffers)))


def test_a_buffer_smaller_than_its_value_fails() -> None:
    program = mlp_step()
    # a value of x.0 * 8 elements in a buffer sized like a column of x.0: a symbolic
    # product with the same run-time factor and a smaller known one
    v = next(
        v
        for v, kind in program.home.items()
        if kind == "arena" and program.graph.type_of(v).shape == (Sym("x.0"), 8)
    )
    index = program.arena_slot[v]
    buffers = list(program.buffers)
    buffers[index] = Buffer(F32, TensorType(F32, (Sym("x.0"), 1)))
    with pytest.raises(VerifyError, match=r"does not fit in b"):
        verify_program(dataclasses.replace(program, buffers=tuple(buffers)))


def test_a_loop_step_with_a_wrong_type_fails() -> None:
    program = chain()
    (loop,) = program.kernels
    step = loop.body[2]
    wrong = dataclasses.replace(step, type=step.type.with_dtype(np.dtype("float64")))
    body = (*loop.body[:2], wrong, *loop.body[3:])
    broken = _with_kernel(program, 0, dataclasses.replace(loop, body=body))
    with pytest.raises(VerifyError, match=r"x5 \(tanh\) stores float64\[n\] but infers float32"):
        verify_program(broken)


def test_loop_results_out_of_range_fail() -> None:
    program = chain()
    (loop,) = program.kernels
    broken = _with_kernel(program, 0, dataclasses.replace(loop, results=(99,)))
    with pytest.raises(VerifyError, match=r"loop result 0 is x99, of 8 values"):
        verify_program(broken)


@pytest.mark.usefixtures("unfused_rows")
def test_a_loop_result_of_another_type_fails() -> None:
    program = softmax()
    index = _loop_index(program, lambda k: k.reduction is not None)
    loop = program.kernels[index]
    broken = _with_kernel(program, index, dataclasses.replace(loop, results=(0,)))
    with pytest.raises(VerifyError, match=r"loop result x0 is float32\[x.0,10\], output 0 is"):
        verify_program(broken)


def test_a_step_reading_a_later_value_fails() -> None:
    program = softmax()
    later = program.steps[-1].outputs[0]
    index = _loop_index(program)
    loop = program.kernels[index]
    operands = (dataclasses.replace(loop.operands[0], value=later), *loop.operands[1:])
    broken = _with_kernel(program, index, dataclasses.replace(loop, operands=operands))
    with pytest.raises(VerifyError, match=rf"reads {later}, not a source or an earlier result"):
        verify_program(broken)


@pytest.mark.usefixtures("unfused_rows")
def test_reduction_axes_out_of_range_fail() -> None:
    program = softmax()
    index = _loop_index(program, lambda k: k.reduction is not None)
    loop = program.kernels[index]
    reduction = dataclasses.replace(loop.reduction, axes=(2,))
    broken = _with_kernel(program, index, dataclasses.replace(loop, reduction=reduction))
    with pytest.raises(VerifyError, match=r"axes \(2,\) are not sorted axes of \[x.0,10\]"):
        verify_program(broken)


def test_a_missing_or_unknown_home_fails() -> None:
    program = chain()
    home = dict(program.home)
    del home[Value(2)]
    with pytest.raises(VerifyError, match=r"%2 \(fused\) has no home"):
        verify_program(dataclasses.replace(program, home=home))
    with pytest.raises(VerifyError, match=r"%2 has the unknown home 'heap'"):
        verify_program(dataclasses.replace(program, home={**program.home, Value(2): "heap"}))


def test_a_state_of_another_type_fails() -> None:
    program = mlp_step()
    (v, variable) = next(iter(program.state_of.items()))
    other = next(
        i for i in program.variables if program.graph.by_id[i].type != program.graph.type_of(v)
    )
    broken = {**program.state_of, v: other}
    with pytest.raises(VerifyError, match=rf"is computed into %{other} of"):
        verify_program(dataclasses.replace(program, state_of=broken))
    assert program.graph.by_id[variable].type == program.graph.type_of(v)


@pytest.mark.usefixtures("unfused_rows")
def test_kernels_not_parallel_to_steps_fail() -> None:
    program = softmax()
    with pytest.raises(VerifyError, match=r"5 steps but 4 kernel records"):
        verify_program(dataclasses.replace(program, kernels=program.kernels[:-1]))
    swapped = (program.kernels[1], program.kernels[0], *program.kernels[2:])
    with pytest.raises(VerifyError, match=r"needs a Loop record, has a Loop of %2"):
        verify_program(dataclasses.replace(program, kernels=swapped))


def test_dims_missing_a_size_fail() -> None:
    program = chain()
    with pytest.raises(VerifyError, match=r"uses the size n, which has no dims slot"):
        verify_program(dataclasses.replace(program, dims=()))


def test_a_size_only_a_fused_body_has_gets_a_dims_slot() -> None:
    """A reduction over the broadcast of two unrelated run-time sizes iterates over a
    size no node's type has: the program gives it a dims slot (and verifies)."""
    builder = GraphBuilder()
    a = builder.add1("placeholder", [], {"name": "a", "dtype": "float32", "shape": ("a",)})
    b = builder.add1("placeholder", [], {"name": "b", "dtype": "float32", "shape": ("b",)})
    body = (("mul", (0, 1), Attrs()), ("sum", (2,), Attrs({"axes": (0,), "keepdims": False})))
    (total,) = builder.add("fused", [a, b], {"body": body, "results": (3,), "kind": "reduction"})
    program = planning.plan(builder.build([a, b], [total]))
    assert [str(d) for d in program.dims] == ["a", "b", "broadcast(a,b)"]
    assert verify_program(program) is program
    with pytest.raises(VerifyError, match=r"the loop of %2 uses the size broadcast\(a,b\)"):
        verify_program(dataclasses.replace(program, dims=program.dims[:2]))


@pytest.mark.parametrize("device", ["cpu", "reference"])
def test_a_reduction_over_two_unrelated_sizes_runs(device: str) -> None:
    """sum(x * y) with two run-time sizes: the fused kernel iterates over their
    broadcast, bound per call; sizes that do not broadcast raise before it runs."""
    x = gc.placeholder((None,), "float32", name="x")
    y = gc.placeholder((None,), "float32", name="y")
    f = gc.function([x, y], gc.sum(x * y), device=device)
    for nx, ny in ((3, 3), (1, 4), (5, 1)):
        a, b = np.arange(1, nx + 1, dtype=np.float32), np.full(ny, 2, np.float32)
        assert f(a, b) == np.sum(a * b)
    with pytest.raises(gc.InputError, match="cannot broadcast sizes 2 and 3"):
        f(np.ones(2, np.float32), np.ones(3, np.float32))


def test_a_step_record_of_the_wrong_kind_fails() -> None:
    program = chain()
    (loop,) = program.kernels
    library = Library(
        loop.node, "fused", program.steps[0].attrs, program.steps[0].inputs, loop.outputs
    )
    with pytest.raises(VerifyError, match=r"needs a Loop record, has a Library of %2"):
        verify_program(_with_kernel(program, 0, library))


def test_a_scalar_operand_must_hold_its_constant() -> None:
    program = chain()
    (loop,) = program.kernels
    wrong = Operand(TensorType(np.dtype("float64"), ()), constant=loop.operands[2].constant)
    operands = (*loop.operands[:2], wrong)
    with pytest.raises(VerifyError, match=r"operand x2 of float64\[\] holds a constant of float32"):
        verify_program(_with_kernel(program, 0, dataclasses.replace(loop, operands=operands)))
