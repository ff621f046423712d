"""Random training-step-like graphs for the tests of variable updates: 0-d and n-d
Variables whose updates alias fetched outputs, other updates, other variables and the
variables themselves, with a numpy model of every call.

`update_cases()` draws an `UpdateCase`; `check_calls(case, device)` builds the function
on `device`, calls it a few times and checks, after every call, each output and each
variable against the model: values, and exactly the declared dtype and shape.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from hypothesis import strategies as st

import graphc as gc

SHAPES = ((), (1,), (3,), (2, 3), (3, 2))
DTYPES = ("float32", "float64", "int64")
# numpy's result dtype: a Python scalar next to an array keeps the array's dtype (NEP 50)
Env = dict[str, np.ndarray]


@dataclass
class Expr:
    """A symbolic value and the numpy computation of the same value."""

    tensor: gc.Tensor
    compute: Callable[[Env], np.ndarray]
    text: str


@dataclass
class UpdateCase:
    """Variables, fetched outputs and updates, with their numpy model."""

    initial: dict[str, np.ndarray]
    variables: dict[str, gc.Variable]
    outputs: list[Expr]
    updates: dict[str, Expr]

    def __repr__(self) -> str:
        variables = ", ".join(f"{k}: {v.dtype}{list(v.shape)}" for k, v in self.initial.items())
        outputs = ", ".join(e.text for e in self.outputs)
        updates = ", ".join(f"{k} <- {e.text}" for k, e in self.updates.items())
        return f"UpdateCase(vars [{variables}]; outputs [{outputs}]; updates [{updates}])"


def _same_type(a: np.ndarray, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    return np.asarray(a).astype(dtype).reshape(shape)


class _Builder:
    def __init__(self, draw: Any, variables: dict[str, tuple[str, tuple[int, ...]]]) -> None:
        self.draw = draw
        self.types = variables
        self.tensors: dict[str, gc.Variable] = {}
        self.made: list[Expr] = []  # every expression built, for reuse (aliasing)

    def variable(self, name: str) -> Expr:
        return Expr(self.tensors[name], lambda env: env[name], name)

    def of_type(self, dtype: str, shape: tuple[int, ...], depth: int) -> Expr:
        """An expression of exactly this dtype and shape."""
        draw = self.draw
        reuse = [e for e in self.made if e.tensor.dtype == dtype and e.tensor.shape == shape]
        same = [n for n, t in self.types.items() if t == (dtype, shape)]
        choices = ["variable"] if same else []
        choices += ["reuse"] if reuse else []
        if depth > 0:
            choices += ["scalar_op", "binary", "reduce", "reshape", "transpose", "cast"]
        kind = draw(st.sampled_from(choices or ["cast"]))
        expr = getattr(self, f"_{kind}")(dtype, shape, depth, same, reuse)
        if expr is None:
            expr = self._cast(dtype, shape, depth, same, reuse)
        self.made.append(expr)
        return expr

    def _variable(self, dtype, shape, depth, same, reuse) -> Expr:
        return self.variable(self.draw(st.sampled_from(same)))

    def _reuse(self, dtype, shape, depth, same, reuse) -> Expr:
        return self.draw(st.sampled_from(reuse))

    def _scalar_op(self, dtype, shape, depth, same, reuse) -> Expr:
        a = self.of_type(dtype, shape, depth - 1)
        op, number = self.draw(st.sampled_from([("add", 1), ("mul", 2), ("sub", 3)]))
        fn = {"add": np.add, "mul": np.multiply, "sub": np.subtract}[op]
        symbolic = {"add": gc.add, "mul": gc.multiply, "sub": gc.subtract}[op]
        return Expr(
            symbolic(a.tensor, number),
            lambda env: _same_type(fn(a.compute(env), number), dtype, shape),
            f"{op}({a.text}, {number})",
        )

    def _binary(self, dtype, shape, depth, same, reuse) -> Expr:
        a = self.of_type(dtype, shape, depth - 1)
        # the other operand: the same type, or a 0-d one that broadcasts
        other_shape = self.draw(st.sampled_from([shape, ()]))
        b = self.of_type(dtype, other_shape, depth - 1)
        op = self.draw(st.sampled_from(["add", "mul", "maximum"]))
        fn = {"add": np.add, "mul": np.multiply, "maximum": np.maximum}[op]
        symbolic = {"add": gc.add, "mul": gc.multiply, "maximum": gc.maximum}[op]
        operands = self.draw(st.sampled_from([(a, b), (b, a)]))
        x, y = operands
        return Expr(
            symbolic(x.tensor, y.tensor),
            lambda env: _same_type(fn(x.compute(env), y.compute(env)), dtype, shape),
            f"{op}({x.text}, {y.text})",
        )

    def _reduce(self, dtype, shape, depth, same, reuse) -> Expr | None:
        if shape != () or (dtype == "float32" and self.draw(st.booleans())):
            return None
        source_shape = self.draw(st.sampled_from(SHAPES))
        a = self.of_type(dtype, source_shape, depth - 1)
        return Expr(
            gc.sum(a.tensor),
            lambda env: _same_type(np.sum(a.compute(env)), dtype, shape),
            f"sum({a.text})",
        )

    def _reshape(self, dtype, shape, depth, same, reuse) -> Expr | None:
        size = int(np.prod(shape))
        sources = [s for s in SHAPES if int(np.prod(s)) == size and s != shape]
        if not sources:
            return None
        a = self.of_type(dtype, self.draw(st.sampled_from(sources)), depth - 1)
        return Expr(
            gc.reshape(a.tensor, shape),
            lambda env: a.compute(env).reshape(shape),
            f"reshape({a.text}, {shape})",
        )

    def _transpose(self, dtype, shape, depth, same, reuse) -> Expr | None:
        if len(shape) != 2:
            return None
        a = self.of_type(dtype, shape[::-1], depth - 1)
        return Expr(a.tensor.T, lambda env: a.compute(env).T, f"{a.text}.T")

    def _cast(self, dtype, shape, depth, same, reuse) -> Expr:
        source_dtype = self.draw(st.sampled_from([d for d in DTYPES if d != dtype]))
        source_names = [n for n, t in self.types.items() if t == (source_dtype, shape)]
        if depth > 0 or source_names:
            a = (
                self.of_type(source_dtype, shape, depth - 1)
                if depth > 0
                else self.variable(self.draw(st.sampled_from(source_names)))
            )
        else:  # nothing of this type at all: a constant
            value = np.ones(shape, dtype)
            return Expr(gc.constant(value), lambda env: value, f"ones{list(shape)}")
        return Expr(
            a.tensor.astype(dtype),
            lambda env: a.compute(env).astype(dtype),
            f"cast({a.text}, {dtype})",
        )


@st.composite
def update_cases(draw: Any, max_variables: int = 4) -> UpdateCase:
    count = draw(st.integers(1, max_variables))
    types = {
        f"v{i}": (draw(st.sampled_from(DTYPES)), draw(st.sampled_from(SHAPES)))
        for i in range(count)
    }
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    initial = {
        name: rng.integers(-2, 3, shape).astype(dtype) for name, (dtype, shape) in types.items()
    }
    builder = _Builder(draw, types)
    builder.tensors = {name: gc.Variable(array, name=name) for name, array in initial.items()}
    updates: dict[str, Expr] = {}
    targets = draw(st.lists(st.sampled_from(sorted(types)), min_size=1, unique=True))
    for name in targets:
        dtype, shape = types[name]
        updates[name] = builder.of_type(dtype, shape, draw(st.integers(0, 2)))
    outputs = draw(
        st.lists(
            st.sampled_from(builder.made + [builder.variable(n) for n in types]),
            min_size=1,
            max_size=4,
        )
    )
    return UpdateCase(initial, builder.tensors, outputs, updates)


def check_calls(case: UpdateCase, device: str, calls: int = 2) -> None:
    """Build the case's function on `device`, call it `calls` times, and check every
    output and every variable after each call against the numpy model."""
    fn = gc.function(
        [],
        [e.tensor for e in case.outputs],
        updates={case.variables[k]: e.tensor for k, e in case.updates.items()},
        device=device,
    )
    env = {k: v.copy() for k, v in case.initial.items()}
    for call in range(calls):
        results = fn()
        for expr, got in zip(case.outputs, results, strict=True):
            _assert_same(got, expr.compute(env), f"call {call}: output {expr.text}")
        env = {**env, **{k: e.compute(env) for k, e in case.updates.items()}}
        for name, variable in case.variables.items():
            _assert_same(variable.value, env[name], f"call {call}: variable {name}")


def _assert_same(got: np.ndarray, want: np.ndarray, where: str) -> None:
    assert isinstance(got, np.ndarray), where
    assert got.dtype == want.dtype, f"{where}: dtype {got.dtype}, expected {want.dtype}"
    assert got.shape == want.shape, f"{where}: shape {got.shape}, expected {want.shape}"
    if want.dtype.kind == "f":
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6, err_msg=where)
    else:
        np.testing.assert_array_equal(got, want, err_msg=where)
