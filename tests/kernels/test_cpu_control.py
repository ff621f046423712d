"""Control flow on the CPU backend (kernels/cpu/control.py): the loops and branches run
inside the compiled entry, bodies' kernels are the shared kernels, the Python entry
that answers first gives the same bits, and array constants of bodies become operands
(kernels/control.lift_constants). tests/graphc/test_control.py runs every construct on
this backend too, against Python loops and finite differences."""

from __future__ import annotations

import numpy as np

import graphc as gc
from graphc.kernels.control import lift_constants


def _rnn(steps: int | None = None):
    x = gc.placeholder((steps, 3), "float32", name="x")
    w = gc.Variable(np.linspace(-1, 1, 9, dtype=np.float32).reshape(3, 3), name="w")
    bias = gc.constant(np.array([0.1, -0.2, 0.3], np.float32))  # an array constant of the body

    def step(h, xt):
        h = gc.tanh(xt @ w + h + bias)
        return h, h.sum()

    final, ys = gc.scan(step, np.zeros(3, np.float32), x)
    loss = final.sum() + ys.sum()
    return [x], [final, ys, loss, *gc.grad(loss, [x, w])]


def test_the_entry_runs_the_loop_itself() -> None:
    x = gc.placeholder((None,), "float32", name="x")
    final, ys = gc.scan(lambda c, e: (c + e, c * e), gc.constant(np.float32(0)), x)
    f = gc.function([x], [final, ys], device="cpu", compile="eager")
    entry = f.source.split("def entry(", 1)[1].split("\ndef ", 1)[0]
    assert "for step_" in entry  # the loop is compiled with the entry, not run in Python
    got_final, got_ys = f(np.arange(5, dtype=np.float32))
    assert got_final == 10.0
    np.testing.assert_array_equal(got_ys, [0.0, 0.0, 2.0, 9.0, 24.0])
    assert f.compiled == "native"


def test_the_python_entry_and_the_compiled_entry_agree_bit_for_bit(rng) -> None:
    inputs, outputs = _rnn()
    eager = gc.function(inputs, outputs, device="cpu", compile="eager")
    background = gc.function(inputs, outputs, device="cpu", compile="background")
    reference = gc.function(inputs, outputs, device="reference")
    xv = rng.standard_normal((6, 3)).astype(np.float32)
    first = background(xv)  # (the Python entry, while the native one compiles)
    for a, b, r in zip(eager(xv), first, reference(xv), strict=True):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=2e-6)


def test_body_array_constants_become_operands() -> None:
    inputs, outputs = _rnn(steps=4)
    f = gc.function(inputs, outputs, device="reference")
    lifted = lift_constants(f.graph)
    scans = [n for n in lifted.nodes if n.op == "scan"]
    assert scans
    for node in scans:
        for m in node.attrs["body"].nodes:
            assert m.op != "constant" or m.attrs["value"].array.size == 1
    before = {n.id for n in f.graph.nodes}
    assert before <= {n.id for n in lifted.nodes}  # ids kept: variables are found by them
    assert lift_constants(lifted) is lifted  # nothing left to lift


def test_run_time_sizes_inside_bodies_are_bound(rng) -> None:
    # the body's own run-time size (a concatenation's, 2k) is a slot of the entry's dims
    x = gc.placeholder((None, "k"), "float64", name="x")
    n = gc.placeholder(("k",), "float64", name="n")

    def step(c, row):
        both = gc.concatenate([c, row * 2.0])
        return c + row, gc.sum(gc.exp(both))

    final, ys = gc.scan(step, n, x)
    f = gc.function([x, n], [final, ys], device="cpu", compile="eager")
    (scan,) = [m for m in f.graph.nodes if m.op == "scan"]
    inner = [t for m in scan.attrs["body"].nodes for t in m.types]
    outer = {d for m in f.graph.nodes for t in m.types for d in t.shape}
    assert any(d not in outer and not isinstance(d, int) for t in inner for d in t.shape)
    g = gc.function([x, n], [final, ys], device="reference")
    for rows, cols in ((3, 4), (1, 2), (0, 5)):
        xv, nv = rng.standard_normal((rows, cols)), rng.standard_normal(cols)
        for a, b in zip(f(xv, nv), g(xv, nv), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-12)


def test_strided_operands_are_made_contiguous_once_not_every_step(rng) -> None:
    x = gc.placeholder((None, 4, 3), "float32", name="x")
    w = gc.Variable(rng.standard_normal((5, 3)).astype(np.float32), name="w")
    final, _ = gc.scan(lambda h, xt: (h + xt @ gc.transpose(w), None), np.zeros((4, 5), "f4"), x)
    f = gc.function([x], final, device="cpu", compile="eager")
    entry = f.source.split("def entry(", 1)[1].split("\ndef ", 1)[0]
    loop = entry.split("for step_", 1)[1]
    assert "ascontiguousarray" not in loop  # the transposed weight is copied before the loop
    xv = rng.standard_normal((6, 4, 3)).astype(np.float32)
    np.testing.assert_allclose(f(xv), (xv @ w.value.T).sum(0), rtol=1e-5)


def test_the_profile_shows_a_loop_as_one_statement(rng) -> None:
    inputs, outputs = _rnn()
    f = gc.function(inputs, outputs, device="cpu", compile="eager")
    table = str(f.profile(rng.standard_normal((5, 3)).astype(np.float32), runs=2))
    loops = [line for line in table.splitlines() if line.startswith("(loop)")]
    assert loops  # the forward and backward scans, not their first kernels
    assert all(" scan " in line for line in loops)
