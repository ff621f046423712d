"""Hypothesis strategies for random valid graphs, each paired with numpy's answer.

The shared machinery of STYLE.md "Testing habits" item 3. `graph_cases()` draws a
small program written against the public API only (`graphc.placeholder`,
operators, `graphc.*` op functions, with Tensors, numpy arrays, numpy scalars
and Python scalars as operands), the arrays it is fed, and numpy's evaluation of
the same program, computed step by step while drawing: the oracle.

Every drawn program is valid by construction, for the concrete shapes and for
the declared ones (some placeholder dims are declared None): operands broadcast,
axes are in range, reshape targets hold the same number of elements, `max` and
`min` never reduce an empty axis, `sqrt`, `log` and `/` get operands kept away
from zero (`abs(x) + 0.5`), and a `where` condition only compares values that
involve no float rounding, so that a rounding difference cannot flip a branch.

Tolerance. Each numpy value carries an elementwise error allowance (`Val.error`):
every float op may round its result by `rtol * |result|` at its own dtype's
rtol (1e-5 for float32, 1e-12 for float64; sums and matmuls by `rtol * n *
sum(|terms|)`), and the errors of its operands propagate to first order
(`d(a * b) = b da + a db`). A single op is thus held to a plain `rtol`; a graph
gets more room where it cancels (`a - b` with a ~ b), amplifies (`exp`,
products), or computes in float32 before promoting to float64.
`assert_matches` checks `|actual - expected| <= error`, and ints exactly.

Use:

    @given(case=strategies.graph_cases())            # or graph_cases(ops=FAMILIES[...])
    def test_something(case):
        fn, outputs = case.compile()                 # graphc.function(...) of the program
        for got, want in zip(case.results(fn(*case.feeds())), case.expected):
            strategies.assert_matches(got, want)

A failing case prints as a Python script that rebuilds the graph and calls it.
"""

from __future__ import annotations

import operator
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import permutations
from typing import Any

import numpy as np
from hypothesis import strategies as st
from opinfo import random_array

import graphc as gc

Shape = tuple[int, ...]
Env = list[Any]  # the Tensors of the steps so far, indexed like the values v0, v1, ...

MAX_RANK = 4  # inputs have rank 0..3; expand_dims, matmul and broadcasting may add one
DIMS = st.sampled_from((2, 1, 3, 4, 2, 3, 1))  # small; 1 broadcasts
DIMS_OR_EMPTY = st.sampled_from((2, 1, 3, 4, 2, 0, 3, 1))  # in one case of four: 0 in 8 dims
DTYPES = st.sampled_from(("float32", "float64", "float32", "float64", "int32", "int64"))
SCALARS = (0.5, 2, -1.5, 3, -1, 0.25, 0, 2.0)  # Python scalars: weak (NEP 50)
NONZERO_SCALARS = (2, -0.5, 4.0, 3, -2.0)
NUMPY_SCALARS = (np.float32(0.5), np.float64(-1.5), np.int32(2), np.int64(-3))  # strong
RTOL = {np.dtype("float32"): 1e-5, np.dtype("float64"): 1e-12}
SPECIAL = np.array([np.nan, np.inf, -np.inf])


# ---------------------------------------------------------------- numpy's side


@dataclass(frozen=True)
class Val:
    """numpy's value of one expression.

    array  the value itself
    error  float64, elementwise: how far a correct implementation may be from `array`
           (non-finite: unbounded, not compared)
    exact  computed without float rounding (inputs, ints, abs, max, slicing, ...)
    """

    array: np.ndarray
    error: np.ndarray
    exact: bool

    @staticmethod
    def leaf(value: Any) -> Val:
        array = np.asarray(value)
        return Val(array, np.zeros(array.shape), True)

    @property
    def shape(self) -> Shape:
        return self.array.shape

    @property
    def dtype(self) -> np.dtype:
        return self.array.dtype


def _abs(value: Any) -> np.ndarray:
    return np.abs(np.asarray(value, dtype=np.float64))


def _rtol(dtype: np.dtype) -> float:
    """The relative error one op may add in `dtype` (0 for ints: they are exact)."""
    return RTOL.get(np.dtype(dtype), 0.0)


def _derived(value: Any, exact: bool, *error_terms: Any) -> Val:
    """The Val of a computed value: the propagated error terms, plus its own rounding."""
    array = np.asarray(value)
    error = _rtol(array.dtype) * _abs(array)
    for term in error_terms:
        error = error + term
    return Val(array, np.array(np.broadcast_to(error, array.shape), dtype=np.float64), exact)


def _is_int(val: Val) -> bool:
    return val.dtype.kind == "i"


def assert_matches(actual: Any, expected: Val) -> None:
    """actual equals numpy's value: dtype and shape exactly; ints exactly; floats within
    `expected.error`, with NaN and +-inf where numpy has them."""
    want = expected.array
    assert isinstance(actual, np.ndarray), f"expected a numpy array, got {type(actual)}"
    assert actual.dtype == want.dtype, f"dtype {actual.dtype}, numpy gives {want.dtype}"
    assert actual.shape == want.shape, f"shape {actual.shape}, numpy gives {want.shape}"
    if want.dtype.kind != "f":
        np.testing.assert_array_equal(actual, want)
        return
    special = ~np.isfinite(want)
    np.testing.assert_array_equal(actual[special], want[special])  # NaN where numpy has NaN
    tolerance = expected.error
    checked = ~special & np.isfinite(tolerance)
    error = np.abs(actual[checked].astype(np.float64) - want[checked])
    bad = ~(error <= tolerance[checked])  # NaN where numpy has a number is bad too
    if bad.any():
        raise AssertionError(
            f"{int(bad.sum())} of {want.size} values differ beyond the allowed error:\n"
            f"actual   {actual[checked][bad]}\nexpected {want[checked][bad]}\n"
            f"allowed  {tolerance[checked][bad]}"
        )


# ---------------------------------------------------------------- the drawn program


@dataclass(frozen=True)
class Input:
    """A placeholder: its name, the array fed to it and its declared shape (None: unknown)."""

    name: str
    array: np.ndarray
    declared: tuple[int | None, ...]


@dataclass(frozen=True)
class Operand:
    """One argument of an op: `get(env)` is what graphc gets, `np_arg` what numpy gets
    (a Python scalar stays a Python scalar: weak), `val` its value and error."""

    text: str
    val: Val
    np_arg: Any
    get: Callable[[Env], Any]
    is_tensor: bool = False


@dataclass(frozen=True, repr=False)
class GraphCase:
    """A drawn program: inputs, steps (one value each), outputs and numpy's answers.

    `build()` replays the steps through graphc; `expected` holds numpy's values of
    the outputs. `repr` is a script that rebuilds and runs the graph, for bug reports.
    """

    inputs: tuple[Input, ...]
    steps: tuple[Callable[[Env, dict[str, Any]], Any], ...]
    lines: tuple[str, ...]
    outputs: tuple[int, ...]
    labels: tuple[str, ...]
    expected: tuple[Val, ...]
    as_list: bool

    @property
    def has_unknown_dims(self) -> bool:
        return any(d is None for i in self.inputs for d in i.declared)

    def build(self, symbolic: bool = True) -> tuple[list[Any], list[Any]]:
        """(placeholders, output Tensors); `symbolic=False` declares every dim."""
        placeholders = {
            i.name: gc.placeholder(
                i.declared if symbolic else i.array.shape, i.array.dtype, name=i.name
            )
            for i in self.inputs
        }
        env: Env = []
        for step in self.steps:
            env.append(step(env, placeholders))
        return list(placeholders.values()), [env[o] for o in self.outputs]

    def compile(self, symbolic: bool = True, **options: Any) -> tuple[gc.Function, list[Any]]:
        """(the Function, its output Tensors), returning a list or a single array."""
        placeholders, outputs = self.build(symbolic)
        fn = gc.function(placeholders, outputs if self.as_list else outputs[0], **options)
        return fn, outputs

    def feeds(self) -> list[np.ndarray]:
        """Fresh copies of the input arrays, in the Function's input order."""
        return [i.array.copy() for i in self.inputs]

    def results(self, returned: Any) -> list[Any]:
        """What a call returned, as a list in output order."""
        return list(returned) if self.as_list else [returned]

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:
        printer.text(repr(self))  # hypothesis's pretty printer: show the script

    def __repr__(self) -> str:
        def shape_text(shape: Sequence[int | None]) -> str:
            return f"({', '.join(map(str, shape))}{',' if len(shape) == 1 else ''})"

        script = ["import numpy as np", "from numpy import inf, nan", "import graphc as gc"]
        script += [
            f"{i.name} = gc.placeholder({shape_text(i.declared)}, {i.array.dtype.name!r}, "
            f"name={i.name!r})"
            for i in self.inputs
        ]
        script += self.lines
        outputs = [self.labels[o] for o in self.outputs]
        result = f"[{', '.join(outputs)}]" if self.as_list else outputs[0]
        script.append(f"f = gc.function([{', '.join(i.name for i in self.inputs)}], {result})")
        script.append(f"f({', '.join(array_text(i.array) for i in self.inputs)})")
        return "GraphCase:\n    " + "\n    ".join(script)


def array_text(array: np.ndarray) -> str:
    """Python source that rebuilds `array` exactly."""
    if array.size == 0:
        return f"np.zeros({array.shape}, {array.dtype.name!r})"
    return f"np.array({array.tolist()!r}, {array.dtype.name!r})"


def _broadcast(*shapes: Shape) -> Shape | None:
    """numpy's broadcast of the shapes, or None when they do not broadcast or the rank
    would exceed MAX_RANK."""
    try:
        shape = np.broadcast_shapes(*shapes)
    except ValueError:
        return None
    return shape if len(shape) <= MAX_RANK else None


def _matmul_shape(a: Shape, b: Shape) -> Shape | None:
    """numpy.matmul's result shape, or None when the operands do not fit."""
    if not a or not b:
        return None
    try:
        shape = np.matmul(np.zeros(a), np.zeros(b)).shape
    except ValueError:
        return None
    return shape if len(shape) <= MAX_RANK else None


def _call(function: Callable[..., Any], *operands: Operand) -> Callable[[Env], Any]:
    """graphc's side of an op: `function` of the operands' graphc values."""
    getters = [o.get for o in operands]
    return lambda env: function(*(get(env) for get in getters))


def _in_float(function: Callable[[np.ndarray], Any]) -> Callable[[np.ndarray], np.ndarray]:
    """An oracle computed in float64 and rounded to numpy's float result dtype."""

    def oracle(x: np.ndarray) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype("float64")
        return np.asarray(function(x.astype(np.float64))).astype(dtype)

    return oracle


@dataclass(frozen=True)
class _Unary:
    """An elementwise unary op: graphc spellings, numpy oracle, and |f'| for the error."""

    forms: tuple[tuple[str, Callable[[Any], Any]], ...]  # (text template, graphc function)
    oracle: Callable[[np.ndarray], Any]
    slope: Callable[[np.ndarray, np.ndarray], Any]  # (x, y) -> bound of |f'(x)|
    keeps_exact: bool = False  # abs, negative, relu: no rounding
    shifted: bool = False  # applied to abs(x) + 0.5, which rounds once
    nodes: int = 1


def _one(x: np.ndarray, y: np.ndarray) -> float:
    return 1.0


def _safe_sqrt(t: Any) -> Any:
    return gc.sqrt(gc.abs(t) + 0.5)


def _safe_log(t: Any) -> Any:
    return gc.log(gc.abs(t) + 0.5)


UNARY = {
    "exp": _Unary((("gc.exp({})", gc.exp),), np.exp, lambda x, y: _abs(y)),
    "tanh": _Unary((("gc.tanh({})", gc.tanh),), np.tanh, _one),
    "sin": _Unary((("gc.sin({})", gc.sin),), np.sin, _one),
    "abs": _Unary(
        (("abs({})", abs), ("gc.abs({})", gc.abs), ("{}.abs()", lambda t: t.abs())),
        np.abs,
        _one,
        keeps_exact=True,
    ),
    "negative": _Unary(
        (("-{}", operator.neg), ("gc.negative({})", gc.negative)),
        np.negative,
        _one,
        keeps_exact=True,
    ),
    "sqrt": _Unary(
        (("gc.sqrt(gc.abs({}) + 0.5)", _safe_sqrt),),
        lambda x: np.sqrt(np.abs(x) + 0.5),
        lambda x, y: 0.5 / np.sqrt(_abs(x) + 0.5),
        shifted=True,
        nodes=4,
    ),
    "log": _Unary(
        (("gc.log(gc.abs({}) + 0.5)", _safe_log),),
        lambda x: np.log(np.abs(x) + 0.5),
        lambda x, y: 1 / (_abs(x) + 0.5),
        shifted=True,
        nodes=4,
    ),
    "sigmoid": _Unary(
        (("gc.sigmoid({})", gc.sigmoid),),
        _in_float(lambda v: 1 / (1 + np.exp(-v))),
        lambda x, y: 0.25,
    ),
    "relu": _Unary(
        (("gc.relu({})", gc.relu),), lambda x: np.maximum(x, 0), _one, keeps_exact=True, nodes=4
    ),
    "square": _Unary((("gc.square({})", gc.square),), np.square, lambda x, y: 2 * _abs(x)),
}

# name -> (graphc function, numpy function, operator symbol or None)
BINARY: dict[str, tuple[Callable[..., Any], Callable[..., Any], str | None]] = {
    "add": (gc.add, np.add, "+"),
    "subtract": (gc.subtract, np.subtract, "-"),
    "multiply": (gc.multiply, np.multiply, "*"),
    "maximum": (gc.maximum, np.maximum, None),
    "minimum": (gc.minimum, np.minimum, None),
}
OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "//": operator.floordiv,
    "%": operator.mod,
    "@": operator.matmul,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
# name -> (graphc function, numpy function, operator symbol or None)
COMPARISONS: dict[str, tuple[Callable[..., Any], Callable[..., Any], str | None]] = {
    "less": (gc.less, np.less, "<"),
    "less_equal": (gc.less_equal, np.less_equal, "<="),
    "greater": (gc.greater, np.greater, ">"),
    "greater_equal": (gc.greater_equal, np.greater_equal, ">="),
    "equal": (gc.equal, np.equal, None),
    "not_equal": (gc.not_equal, np.not_equal, None),
}
REDUCTIONS = {"sum": np.sum, "mean": np.mean, "max": np.max, "min": np.min}


def _binary_error(name: str, a: Val, b: Val) -> tuple[Any, ...]:
    """Propagated error terms of a binary op (first order: d(a*b) = b da + a db)."""
    if name in ("maximum", "minimum"):
        return (np.maximum(a.error, b.error),)
    if name == "multiply":
        return (_abs(b.array) * a.error, _abs(a.array) * b.error)
    return (a.error, b.error)


class _Drawer:
    """Draws one program, step by step, evaluating it with numpy as it goes."""

    def __init__(self, draw: Callable[[st.SearchStrategy[Any]], Any], max_inputs: int) -> None:
        self.draw = draw
        self.max_inputs = max_inputs
        self.rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        self.empty = draw(st.integers(0, 3)) == 3  # zero-size dims in this case
        self.inputs: list[tuple[str, np.ndarray]] = []
        self.steps: list[Callable[[Env, dict[str, Any]], Any]] = []
        self.vals: list[Val] = []
        self.labels: list[str] = []
        self.lines: list[str] = []
        self.constants = 0
        self.nodes = 0
        self.used: set[int] = set()  # values that later steps read

    # -- helpers

    def flag(self) -> bool:
        return self.draw(st.booleans())

    def pick(self, options: Sequence[Any]) -> Any:
        return self.draw(st.sampled_from(options))

    def spell(self, axis: int, ndim: int) -> int:
        """`axis` as written by a user: as is, or counted from the end."""
        return axis - ndim if self.flag() else axis

    def dim(self) -> int:
        return self.draw(DIMS_OR_EMPTY if self.empty else DIMS)

    def shape(self, max_rank: int = 3) -> Shape:
        return tuple(self.dim() for _ in range(self.draw(st.integers(0, max_rank))))

    def broadcast_shape(self, shape: Shape) -> Shape:
        """A random shape that broadcasts with `shape`, with a rank up to MAX_RANK."""
        extra = self.draw(st.integers(-min(2, len(shape)), min(1, MAX_RANK - len(shape))))
        rank = len(shape) + extra
        dims = []
        for axis in range(rank):
            source = len(shape) - rank + axis
            if source < 0 or shape[source] == 1:
                dims.append(self.dim())
            else:
                dims.append(self.pick((shape[source], 1)))
        return tuple(dims)

    def array(self, shape: Shape, dtype: str, special: bool = False) -> np.ndarray:
        array = random_array(self.rng, shape, dtype, (-3.0, 3.0))
        if special and array.dtype.kind == "f" and array.size:
            mask = self.rng.random(shape) < 0.3
            array = np.where(mask, self.rng.choice(SPECIAL, shape), array).astype(dtype)
        return array

    def partner_dtype(self, dtype: np.dtype) -> str:
        return self.pick((dtype.name, dtype.name, self.draw(DTYPES)))

    # -- values and operands

    def add_value(self, label: str, step: Callable[[Env, dict[str, Any]], Any], val: Val) -> int:
        self.steps.append(step)
        self.vals.append(val)
        self.labels.append(label)
        return len(self.vals) - 1

    def add_op(self, text: str, get: Callable[[Env], Any], val: Val, nodes: int) -> int:
        label = f"v{len(self.vals)}"
        self.lines.append(f"{label} = {text}")
        self.nodes += nodes
        return self.add_value(label, lambda env, placeholders: get(env), val)

    def value(self, index: int) -> Operand:
        self.used.add(index)
        val = self.vals[index]
        return Operand(self.labels[index], val, val.array, operator.itemgetter(index), True)

    def new_input(self, shape: Shape, dtype: str) -> Operand:
        name = f"x{len(self.inputs)}"
        array = self.array(shape, dtype, special=self.draw(st.integers(0, 7)) == 7)
        self.inputs.append((name, array))
        self.nodes += 1
        index = self.add_value(name, lambda env, placeholders: placeholders[name], Val.leaf(array))
        return self.value(index)

    def constant(self, shape: Shape, dtype: str) -> Operand:
        array = self.array(shape, dtype)
        name = f"c{self.constants}"
        self.constants += 1
        self.lines.append(f"{name} = {array_text(array)}")
        self.nodes += 1
        return Operand(name, Val.leaf(array), array, lambda env: array)

    def scalar(self, choices: Sequence[Any] = SCALARS) -> Operand:
        value = self.pick(choices)
        self.nodes += 1
        return Operand(repr(value), Val.leaf(value), value, lambda env: value)

    def new_operand(self, shape: Shape, dtype: str, kind: str = "input") -> Operand:
        if kind == "input" and len(self.inputs) < self.max_inputs:
            return self.new_input(shape, dtype)
        return self.constant(shape, dtype)

    def existing(self, fits: Callable[[Val], bool]) -> Operand | None:
        candidates = [i for i, v in enumerate(self.vals) if fits(v)]
        return self.value(self.pick(candidates)) if candidates else None

    def partner(
        self,
        shape: Shape,
        dtype: np.dtype,
        kinds: Sequence[str] = ("value", "input", "array", "scalar", "numpy scalar"),
        exact: bool = False,
    ) -> Operand:
        """A second operand that broadcasts with `shape`: an earlier value, a new input,
        a numpy array, a Python scalar (weak) or a numpy scalar (strong)."""
        kind = self.pick(kinds)
        if kind == "value":
            found = self.existing(
                lambda v: _broadcast(v.shape, shape) is not None and (v.exact or not exact)
            )
            if found is not None:
                return found
            kind = "input"
        if kind == "scalar":
            return self.scalar()
        if kind == "numpy scalar":
            return self.scalar(NUMPY_SCALARS)
        return self.new_operand(self.broadcast_shape(shape), self.partner_dtype(dtype), kind)

    def tensor_operand(self, shape: Shape, exact: bool) -> Operand:
        """An earlier value or a new input (a Tensor) that broadcasts with `shape`."""
        if self.flag() or len(self.inputs) >= self.max_inputs:
            found = self.existing(
                lambda v: _broadcast(v.shape, shape) is not None and (v.exact or not exact)
            )
            if found is not None:
                return found
        return self.new_operand(self.broadcast_shape(shape), self.draw(DTYPES))

    # -- the ops; each adds one value computed from the value `i`

    def emit_unary(self, i: int) -> None:
        x = self.value(i)
        name = self.pick(sorted(UNARY))
        spec = UNARY[name]
        template, function = self.pick(spec.forms)
        y = np.asarray(spec.oracle(x.np_arg))
        base = x.val.error
        if spec.shifted:  # abs(x) + 0.5 rounds in its own dtype first
            base = base + _rtol(np.result_type(x.np_arg, 0.5)) * (_abs(x.np_arg) + 0.5)
        exact = x.val.exact and (spec.keeps_exact or y.dtype.kind == "i")
        val = _derived(y, exact, spec.slope(x.np_arg, y) * base)
        self.add_op(template.format(x.text), _call(function, x), val, spec.nodes)

    def binary_text(self, name: str, a: Operand, b: Operand) -> tuple[str, Callable[..., Any]]:
        function, _, symbol = BINARY[name]
        if symbol is not None and self.flag():
            return f"{a.text} {symbol} {b.text}", OPERATORS[symbol]
        return f"gc.{name}({a.text}, {b.text})", function

    def emit_binary(self, i: int) -> None:
        x = self.value(i)
        other = self.partner(x.val.shape, x.val.dtype)
        a, b = (x, other) if self.flag() else (other, x)
        name = self.pick(sorted(BINARY))
        text, function = self.binary_text(name, a, b)
        y = np.asarray(BINARY[name][1](a.np_arg, b.np_arg))
        rounds = name not in ("maximum", "minimum") and y.dtype.kind == "f"
        exact = a.val.exact and b.val.exact and not rounds
        val = _derived(y, exact, *_binary_error(name, a.val, b.val))
        self.add_op(text, _call(function, a, b), val, 1)

    def safe(self, x: Operand) -> Operand:
        """abs(x) + 0.5: at least 0.5 in magnitude, a safe divisor (three nodes)."""
        y = np.abs(x.np_arg) + 0.5
        self.nodes += 3
        val = _derived(y, False, x.val.error)
        return Operand(f"(gc.abs({x.text}) + 0.5)", val, y, _call(lambda t: gc.abs(t) + 0.5, x))

    def emit_divide(self, i: int) -> None:
        x = self.value(i)
        form = self.pick(("x / safe", "safe / x", "x / scalar", "scalar / safe"))
        if form == "x / scalar":
            a, b = x, self.scalar(NONZERO_SCALARS)
        elif form == "scalar / safe":
            a, b = self.scalar(), self.safe(x)
        else:
            other = self.partner(x.val.shape, x.val.dtype)
            a, b = (x, self.safe(other)) if form == "x / safe" else (other, self.safe(x))
        y = np.asarray(np.divide(a.np_arg, b.np_arg))
        quotient = a.val.error / _abs(b.np_arg) + _abs(a.np_arg) * b.val.error / _abs(b.np_arg) ** 2
        if self.flag():
            text, function = f"{a.text} / {b.text}", OPERATORS["/"]
        else:
            text, function = f"gc.divide({a.text}, {b.text})", gc.divide
        self.add_op(text, _call(function, a, b), _derived(y, False, quotient), 1)

    def emit_integer(self, i: int) -> None:
        """floor_divide or mod of an int value, by a positive int tensor or an int scalar."""
        x = self.value(i)
        if self.flag():
            divisor = self.scalar((2, 3, -2))
        else:
            shape = self.broadcast_shape(x.val.shape)
            other = self.new_operand(
                shape, self.pick(("int32", "int64")), self.pick(("input", "array"))
            )
            y = np.abs(other.np_arg) + 1
            divisor = Operand(
                f"(gc.abs({other.text}) + 1)",
                Val.leaf(y),
                y,
                _call(lambda t: gc.abs(t) + 1, other),
            )
            self.nodes += 3
        symbol, name, oracle = self.pick(
            (("//", "floor_divide", np.floor_divide), ("%", "mod", np.mod))
        )
        y = np.asarray(oracle(x.np_arg, divisor.np_arg))
        if self.flag():
            text, function = f"{x.text} {symbol} {divisor.text}", OPERATORS[symbol]
        else:
            text, function = f"gc.{name}({x.text}, {divisor.text})", getattr(gc, name)
        self.add_op(text, _call(function, x, divisor), _derived(y, True), 1)

    def condition(self, shape: Shape) -> Operand:
        """A bool Operand broadcasting with `shape`: a comparison of exact values."""
        left = self.tensor_operand(shape, exact=True)
        joint = np.broadcast_shapes(shape, left.val.shape)
        right = self.partner(joint, left.val.dtype, exact=True)
        a, b = (left, right) if self.flag() else (right, left)
        name = self.pick(sorted(COMPARISONS))
        function, oracle, symbol = COMPARISONS[name]
        if symbol is not None and (a.is_tensor or b.is_tensor) and self.flag():
            text, function = f"({a.text} {symbol} {b.text})", OPERATORS[symbol]
        else:
            text = f"gc.{name}({a.text}, {b.text})"
        y = np.asarray(oracle(a.np_arg, b.np_arg))
        self.nodes += 1
        result = Operand(text, Val.leaf(y), y, _call(function, a, b))
        if self.draw(st.integers(0, 3)) == 3:
            self.nodes += 1
            return Operand(
                f"gc.logical_not({text})", Val.leaf(~y), ~y, _call(gc.logical_not, result)
            )
        return result

    def emit_where(self, i: int) -> None:
        x = self.value(i)
        cond = self.condition(x.val.shape)
        shape = np.broadcast_shapes(x.val.shape, cond.val.shape)
        other = self.partner(shape, x.val.dtype)
        a, b = (x, other) if self.flag() else (other, x)
        y = np.asarray(np.where(cond.np_arg, a.np_arg, b.np_arg))
        error = np.where(cond.np_arg, a.val.error, b.val.error)
        val = Val(y, np.array(np.broadcast_to(error, y.shape)), a.val.exact and b.val.exact)
        text = f"gc.where({cond.text}, {a.text}, {b.text})"
        self.add_op(text, _call(gc.where, cond, a, b), val, 1)

    def axis_argument(self, ndim: int) -> tuple[Any, tuple[int, ...]]:
        """(axis as a user writes it: None, an int or a tuple, the canonical axes)."""
        kind = self.pick(("none", "int", "tuple", "empty") if ndim else ("none", "empty"))
        if kind == "none":
            return None, tuple(range(ndim))
        if kind == "empty":
            return (), ()
        if kind == "int":
            axis = self.draw(st.integers(0, ndim - 1))
            return self.spell(axis, ndim), (axis,)
        axes = self.draw(st.lists(st.integers(0, ndim - 1), min_size=1, max_size=ndim, unique=True))
        return tuple(self.spell(a, ndim) for a in axes), tuple(sorted(axes))

    def emit_reduce(self, i: int) -> None:
        x = self.value(i)
        axis, axes = self.axis_argument(x.val.array.ndim)
        count = int(np.prod([x.val.shape[a] for a in axes]))
        names = ("sum", "mean", "max", "min") if count else ("sum", "mean")
        name = self.pick(names)
        keepdims = self.pick((None, False, True))
        options = {} if keepdims is None else {"keepdims": keepdims}
        y = np.asarray(REDUCTIONS[name](x.np_arg, axis=axis, **options))
        if name in ("max", "min"):
            terms: tuple[Any, ...] = (np.max(x.val.error, axis=axis, **options),)
        else:
            rounding = _rtol(y.dtype) * count * np.sum(_abs(x.np_arg), axis=axis, **options)
            total = np.sum(x.val.error, axis=axis, **options) + rounding
            terms = (total / max(count, 1) if name == "mean" else total,)
        exact = x.val.exact and (name in ("max", "min") or y.dtype.kind == "i")
        nodes = 1 if name != "mean" else 3 + (x.val.dtype.kind != "f")
        arguments = "".join([f", axis={axis!r}", *(f", keepdims={v}" for v in options.values())])
        if self.flag():
            text = f"{x.text}.{name}({arguments[2:]})"
            get = _call(lambda t: getattr(t, name)(axis=axis, **options), x)
        else:
            text = f"gc.{name}({x.text}{arguments})"
            get = _call(lambda t: getattr(gc, name)(t, axis=axis, **options), x)
        self.add_op(text, get, _derived(y, exact, *terms), nodes)

    def reshape_target(self, shape: Shape) -> tuple[int, ...]:
        """A shape of the same size, with one -1 sometimes."""
        size = int(np.prod(shape))
        rank = max(self.draw(st.integers(0, 3)), size != 1)
        if size == 0:
            dims = [self.dim() for _ in range(rank)]
            dims[self.draw(st.integers(0, rank - 1))] = 0
        else:
            dims, rest = [], size
            for _ in range(rank - 1):
                factor = self.pick([d for d in range(1, rest + 1) if rest % d == 0])
                dims.append(factor)
                rest //= factor
            dims += [rest] if rank else []
        position = self.draw(st.integers(-1, rank - 1))
        if position >= 0 and np.prod(dims[:position] + dims[position + 1 :]) != 0:
            dims[position] = -1
        return tuple(dims)

    def emit_reshape(self, i: int) -> None:
        x = self.value(i)
        target = self.reshape_target(x.val.shape)
        form = self.pick(("method", "method *", "function"))
        if form == "function":
            text, get = f"gc.reshape({x.text}, {target})", _call(lambda t: gc.reshape(t, target), x)
        elif form == "method *" and target:
            text = f"{x.text}.reshape({', '.join(map(str, target))})"
            get = _call(lambda t: t.reshape(*target), x)
        else:
            text, get = f"{x.text}.reshape({target})", _call(lambda t: t.reshape(target), x)
        val = Val(x.val.array.reshape(target), x.val.error.reshape(target), x.val.exact)
        self.add_op(text, get, val, 1)

    def emit_transpose(self, i: int) -> None:
        x = self.value(i)
        ndim = x.val.array.ndim
        perm = tuple(self.spell(a, ndim) for a in self.pick(list(permutations(range(ndim)))))
        form = self.pick(("T", "gc.transpose(x)", "method", "method *", "function"))
        if form in ("T", "gc.transpose(x)"):
            perm = tuple(reversed(range(ndim)))
            text = f"{x.text}.T" if form == "T" else f"gc.transpose({x.text})"
            function = operator.attrgetter("T") if form == "T" else gc.transpose
        elif form == "method *":
            text, function = f"{x.text}.transpose{perm}", lambda t: t.transpose(*perm)
        elif form == "method":
            text, function = f"{x.text}.transpose({perm})", lambda t: t.transpose(perm)
        else:
            text, function = f"gc.transpose({x.text}, {perm})", lambda t: gc.transpose(t, perm)
        val = Val(np.transpose(x.val.array, perm), np.transpose(x.val.error, perm), x.val.exact)
        self.add_op(text, _call(function, x), val, 1)

    def emit_expand_dims(self, i: int) -> None:
        x = self.value(i)
        ndim = x.val.array.ndim + self.draw(st.integers(1, min(2, MAX_RANK - x.val.array.ndim)))
        added = ndim - x.val.array.ndim
        new = self.draw(
            st.lists(st.integers(0, ndim - 1), min_size=added, max_size=added, unique=True)
        )
        axis: Any = tuple(self.spell(a, ndim) for a in new)
        if len(axis) == 1 and self.flag():
            axis = axis[0]
        val = Val(np.expand_dims(x.val.array, axis), np.expand_dims(x.val.error, axis), x.val.exact)
        get = _call(lambda t: gc.expand_dims(t, axis), x)
        self.add_op(f"gc.expand_dims({x.text}, {axis!r})", get, val, 1)

    def index_entry(self, size: int) -> Any:
        """One entry of an index for an axis of `size`: an int, or a slice with a step."""
        if size and self.draw(st.integers(0, 3)) == 0:
            return self.draw(st.integers(-size, size - 1))
        bounds = (None, *range(-size - 2, size + 3))
        return slice(self.pick(bounds), self.pick(bounds), self.pick((None, 1, 2, 3, -1, -2)))

    def index(self, shape: Shape) -> tuple[Any, ...]:
        """A basic index: ints, slices, None and sometimes `...`; result rank <= MAX_RANK."""
        ndim = len(shape)
        explicit = self.draw(st.integers(0, ndim))
        ellipsis = explicit < ndim and self.flag()
        before = self.draw(st.integers(0, explicit)) if ellipsis else explicit
        axes = [*range(before), *range(ndim - (explicit - before), ndim)]
        items: list[Any] = [self.index_entry(shape[a]) for a in axes]
        if ellipsis:
            items.insert(before, Ellipsis)
        rank = ndim - sum(isinstance(e, int) for e in items)
        for _ in range(self.draw(st.integers(0, min(2, MAX_RANK - rank)))):
            items.insert(self.draw(st.integers(0, len(items))), None)
        return tuple(items)

    def emit_getitem(self, i: int) -> None:
        x = self.value(i)
        index: Any = self.index(x.val.shape)
        if len(index) == 1 and self.flag():
            index = index[0]
        val = Val(np.asarray(x.val.array[index]), np.asarray(x.val.error[index]), x.val.exact)
        items = index if isinstance(index, tuple) else (index,)
        text = f"{x.text}[{', '.join(map(_index_text, items)) if items else '()'}]"
        self.add_op(text, _call(lambda t: t[index], x), val, 1 + len(items) // 2)

    def matmul_partner(self, x: Operand, left: bool) -> Operand:
        """An operand that x multiplies (x on the left) or is multiplied by: an earlier
        value that fits, or a new 1-D, 2-D or batched one."""

        def product(other: Shape) -> Shape | None:
            return _matmul_shape(x.val.shape, other) if left else _matmul_shape(other, x.val.shape)

        if self.flag():
            found = self.existing(lambda v: product(v.shape) is not None)
            if found is not None:
                return found
        shape = x.val.shape
        k = shape[-1] if left or len(shape) == 1 else shape[-2]
        m = self.dim()
        matrix = (k, m) if left else (m, k)
        batched = (*self.broadcast_shape(shape[:-2]), *matrix)
        other = self.pick(((k,), matrix, batched))
        if product(other) is None:
            other = (k,)
        kind = self.pick(("input", "array"))
        return self.new_operand(other, self.partner_dtype(x.val.dtype), kind)

    def emit_matmul(self, i: int) -> None:
        x = self.value(i)
        left = self.flag()
        other = self.matmul_partner(x, left)
        a, b = (x, other) if left else (other, x)
        y = np.asarray(np.matmul(a.np_arg, b.np_arg))
        k = a.val.shape[-1]
        terms = (
            np.matmul(_abs(a.np_arg), b.val.error),
            np.matmul(a.val.error, _abs(b.np_arg)),
            _rtol(y.dtype) * k * np.matmul(_abs(a.np_arg), _abs(b.np_arg)),
        )
        exact = a.val.exact and b.val.exact and y.dtype.kind == "i"
        if self.flag():
            text, function = f"{a.text} @ {b.text}", OPERATORS["@"]
        else:
            text, function = f"gc.matmul({a.text}, {b.text})", gc.matmul
        self.add_op(text, _call(function, a, b), _derived(y, exact, *terms), 1)

    def concat_part(self, shape: Shape, axis: int | None, dtype: np.dtype) -> Operand:
        """Another operand of a concatenation along `axis` (None: flattened) with `shape`."""

        def fits(v: Val) -> bool:
            if axis is None:
                return True
            return len(v.shape) == len(shape) and all(
                a == b or n == axis for n, (a, b) in enumerate(zip(v.shape, shape, strict=True))
            )

        if self.flag():
            found = self.existing(fits)
            if found is not None:
                return found
        if axis is None:
            new_shape = self.shape(max_rank=2)
        else:
            new_shape = (*shape[:axis], self.dim(), *shape[axis + 1 :])
        kind = self.pick(("input", "array"))
        return self.new_operand(new_shape, self.partner_dtype(dtype), kind)

    def emit_concatenate(self, i: int) -> None:
        x = self.value(i)
        ndim = x.val.array.ndim
        axis = self.draw(st.integers(0, ndim - 1)) if ndim and self.flag() else None
        count = self.draw(st.integers(1, 2))
        parts = [self.concat_part(x.val.shape, axis, x.val.dtype) for _ in range(count)]
        parts.insert(self.draw(st.integers(0, len(parts))), x)
        spelled = None if axis is None else self.spell(axis, ndim)
        y = np.concatenate([p.np_arg for p in parts], axis=spelled)
        error = np.concatenate([p.val.error for p in parts], axis=spelled)
        val = Val(y, error, all(p.val.exact for p in parts))
        texts = ", ".join(p.text for p in parts)
        bracket = "[{}]" if self.flag() else "({},)"
        text = f"gc.concatenate({bracket.format(texts)}, axis={spelled})"
        getters = [p.get for p in parts]
        as_list = bracket.startswith("[")

        def get(env: Env) -> Any:
            tensors = [g(env) for g in getters]
            return gc.concatenate(tensors if as_list else tuple(tensors), axis=spelled)

        self.add_op(text, get, val, 1 + (len(parts) if axis is None else 0))


def _index_text(item: Any) -> str:
    if item is None:
        return "None"
    if item is Ellipsis:
        return "..."
    if isinstance(item, slice):
        text = (
            f"{'' if item.start is None else item.start}:{'' if item.stop is None else item.stop}"
        )
        return text + ("" if item.step is None else f":{item.step}")
    return str(item)


# name -> (emit method, applicable to a value)
EMITTERS: dict[str, tuple[Callable[[_Drawer, int], None], Callable[[Val], bool]]] = {
    "unary": (_Drawer.emit_unary, lambda v: True),
    "binary": (_Drawer.emit_binary, lambda v: True),
    "divide": (_Drawer.emit_divide, lambda v: True),
    "integer": (_Drawer.emit_integer, _is_int),
    "where": (_Drawer.emit_where, lambda v: True),
    "reduce": (_Drawer.emit_reduce, lambda v: True),
    "reshape": (_Drawer.emit_reshape, lambda v: True),
    "transpose": (_Drawer.emit_transpose, lambda v: True),
    "expand_dims": (_Drawer.emit_expand_dims, lambda v: v.array.ndim < MAX_RANK),
    "getitem": (_Drawer.emit_getitem, lambda v: True),
    "matmul": (_Drawer.emit_matmul, lambda v: v.array.ndim >= 1),
    "concatenate": (_Drawer.emit_concatenate, lambda v: True),
}
# how often each kind of step is drawn, relative to the others (1 unless listed)
WEIGHTS = {"unary": 3, "binary": 3, "integer": 3, "where": 2, "reduce": 2, "getitem": 2}
# groups of steps for focused tests: a family reaches its own rarer cases more often
FAMILIES = {
    "elementwise": ("unary", "binary", "divide", "integer", "where"),
    "structural": (
        "reduce",
        "reshape",
        "transpose",
        "expand_dims",
        "getitem",
        "matmul",
        "concatenate",
    ),
    "all": tuple(EMITTERS),
}


def _declare(draw: Any, shapes: list[Shape], unknown_dims: bool | None) -> list[tuple[Any, ...]]:
    """Declared shapes: some dims None (all known for unknown_dims=False; at least one
    None, where any input has a dim, for unknown_dims=True)."""
    if unknown_dims is False:
        return [tuple(s) for s in shapes]
    declared = [tuple(None if draw(st.booleans()) else d for d in s) for s in shapes]
    if unknown_dims and not any(None in d for d in declared):
        first = next((n for n, s in enumerate(shapes) if s), None)
        if first is not None:
            declared[first] = (None, *declared[first][1:])
    return declared


def _outputs(draw: Any, drawer: _Drawer) -> tuple[int, ...]:
    """The values a case returns: the last one and every other that no later step reads
    (so that every op is checked), sometimes more (an input, a value twice, a value
    that later steps also read)."""
    last = len(drawer.vals) - 1
    ops = [i for i, label in enumerate(drawer.labels) if label.startswith("v")]
    outputs = [last, *(i for i in ops if i not in drawer.used and i != last)]
    if draw(st.integers(0, 3)) == 3:
        outputs.append(draw(st.integers(0, last)))
    return tuple(outputs)


@st.composite
def graph_cases(
    draw: Callable[[st.SearchStrategy[Any]], Any],
    ops: Sequence[str] = tuple(EMITTERS),
    max_steps: int = 8,
    max_inputs: int = 4,
    max_nodes: int = 10,
    unknown_dims: bool | None = None,
) -> GraphCase:
    """A random valid program over the public API, its inputs and numpy's answers.

    ops         the kinds of step to draw from (keys of EMITTERS; see FAMILIES)
    max_steps   ops drawn (each adds one value, of one to a few graph nodes)
    max_inputs  placeholders (later operands become numpy array constants)
    max_nodes   no further op once about this many nodes are built
    unknown_dims  None: some placeholder dims declared None at random; True: at
                least one (when any input has a dim); False: none
    """
    unknown = set(ops) - set(EMITTERS)
    if unknown or not ops:
        raise ValueError(f"ops must be a non-empty selection of {sorted(EMITTERS)}, not {ops}")
    drawer = _Drawer(draw, max_inputs)
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "mean of empty slice"
        for _ in range(draw(st.integers(1, 2))):
            drawer.new_input(drawer.shape(), draw(DTYPES))
        for _ in range(draw(st.integers(1, max_steps))):
            if drawer.nodes >= max_nodes:
                break
            newest = len(drawer.vals) - 1  # chains grow deep when it is picked often
            subject = newest if draw(st.booleans()) else draw(st.integers(0, newest))
            val = drawer.vals[subject]
            names = [n for n in ops if EMITTERS[n][1](val)]
            weighted = [n for n in names for _ in range(WEIGHTS.get(n, 1))]
            if weighted:
                # hypothesis favours the first option; the case's seed decides which it is
                order = [weighted[k] for k in drawer.rng.permutation(len(weighted))]
                EMITTERS[draw(st.sampled_from(order))][0](drawer, subject)
    outputs = _outputs(draw, drawer)
    declared = _declare(draw, [a.shape for _, a in drawer.inputs], unknown_dims)
    return GraphCase(
        inputs=tuple(
            Input(name, array, shape)
            for (name, array), shape in zip(drawer.inputs, declared, strict=True)
        ),
        steps=tuple(drawer.steps),
        lines=tuple(drawer.lines),
        outputs=outputs,
        labels=tuple(drawer.labels),
        expected=tuple(drawer.vals[o] for o in outputs),
        as_list=len(outputs) > 1 or draw(st.booleans()),
    )
