"""The op table: one row per public op function, driving the op tests.

Each `OpCase` says how to build the op with graphc, how numpy computes the same
thing (the oracle), which input shapes and dtypes it accepts, and where its
inputs live. tests/graphc/test_ops.py turns every row into checks of the
inferred type, the reference result, symbolic shapes and NaN/inf handling.
Adding an op: add its row here.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import oracles
import scipy.special

import graphc as gc

Shape = tuple[int, ...]
FLOATS = ("float32", "float64")
INTS = ("int32", "int64")
NUMERIC = FLOATS + INTS
ALL = NUMERIC + ("bool",)

UNARY_SHAPES: tuple[tuple[Shape, ...], ...] = (((),), ((0,),), ((5,),), ((2, 3),), ((2, 1, 4),))
BROADCAST_PAIRS: tuple[tuple[Shape, ...], ...] = (
    ((4,), (4,)),
    ((2, 3), (3,)),
    ((2, 1), (1, 3)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((0, 3), (1, 3)),
    ((3, 1, 2), (4, 1)),
)
REDUCE_SHAPES: tuple[tuple[Shape, ...], ...] = (((5,),), ((2, 3),), ((2, 3, 4),), ((0, 3),))
NONEMPTY_REDUCE_SHAPES = REDUCE_SHAPES[:3]


@dataclass(frozen=True)
class OpCase:
    """One row of the op table.

    build(*tensors) -> Tensor or tuple      the graphc side
    oracle(*arrays) -> array or tuple       numpy's answer, the specification
    make_inputs(rng, shapes, dtypes)         custom inputs (indices in range, ...)
    """

    name: str
    build: Callable[..., Any]
    oracle: Callable[..., Any]
    shapes: Sequence[tuple[Shape, ...]] = UNARY_SHAPES
    dtypes: Sequence[tuple[str, ...]] = tuple((d,) for d in FLOATS)
    domain: tuple[float, float] = (-3.0, 3.0)
    make_inputs: Callable[..., list[np.ndarray]] | None = None
    special_values: bool = True  # feed NaN and +-inf too
    symbolic: bool = True  # also run with every dim unknown at build time
    rtol: float | None = None
    label: str = ""
    api_names: tuple[str, ...] = field(default=())

    @property
    def id(self) -> str:
        return f"{self.name}[{self.label}]" if self.label else self.name

    def inputs(
        self, rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
    ) -> list[np.ndarray]:
        if self.make_inputs is not None:
            return self.make_inputs(rng, shapes, dtypes)
        return [random_array(rng, s, d, self.domain) for s, d in zip(shapes, dtypes, strict=True)]


def random_array(
    rng: np.random.Generator, shape: Shape, dtype: str, domain: tuple[float, float] = (-3.0, 3.0)
) -> np.ndarray:
    """Random values of `dtype` in `domain` (ints: the integers of the domain)."""
    low, high = domain
    if dtype == "bool":
        return rng.random(shape) < 0.5
    if dtype in INTS:
        return rng.integers(int(np.ceil(low)), int(np.floor(high)) + 1, size=shape).astype(dtype)
    return rng.uniform(low, high, size=shape).astype(dtype)


def same(dtypes: Sequence[str], arity: int) -> tuple[tuple[str, ...], ...]:
    return tuple((d,) * arity for d in dtypes)


MIXED_PAIRS = (
    ("float32", "float64"),
    ("int32", "float32"),
    ("int32", "int64"),
    ("bool", "int32"),
    ("int64", "float64"),
)


def unary(
    name: str,
    oracle: Callable[..., Any] | None = None,
    dtypes: Sequence[str] = FLOATS,
    **options: Any,
) -> OpCase:
    function = getattr(gc, name)
    return OpCase(name, function, oracle or getattr(np, name), dtypes=same(dtypes, 1), **options)


def binary(
    name: str,
    oracle: Callable[..., Any] | None = None,
    dtypes: Sequence[tuple[str, ...]] = same(NUMERIC, 2) + MIXED_PAIRS,
    **options: Any,
) -> OpCase:
    function = getattr(gc, name)
    return OpCase(
        name,
        function,
        oracle or getattr(np, name),
        shapes=BROADCAST_PAIRS,
        dtypes=dtypes,
        **options,
    )


def _nonzero_divisor(
    rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
) -> list[np.ndarray]:
    a = random_array(rng, shapes[0], dtypes[0], (-9, 9))
    b = random_array(rng, shapes[1], dtypes[1], (1, 5))
    sign = np.where(rng.random(shapes[1]) < 0.5, -1, 1).astype(b.dtype) if b.dtype != bool else 1
    return [a, b * sign if b.dtype != bool else np.ones(shapes[1], bool)]


def _power_inputs(
    rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
) -> list[np.ndarray]:
    base = random_array(rng, shapes[0], dtypes[0], (0.5, 3) if dtypes[0] in FLOATS else (-3, 3))
    exponent = random_array(rng, shapes[1], dtypes[1], (0, 3))
    return [base, exponent]


def _reduce_case(
    name: str,
    oracle: Callable[..., Any],
    axis: Any,
    keepdims: bool,
    dtypes: Sequence[str],
    shapes: Sequence[tuple[Shape, ...]] = REDUCE_SHAPES,
    **options: Any,
) -> OpCase:
    function = getattr(gc, name)

    def valid(shape: Shape) -> bool:
        axes = axis if isinstance(axis, tuple) else () if axis is None else (axis,)
        in_range = all(-len(shape) <= a < len(shape) for a in axes)
        return in_range and len({a % len(shape) for a in axes}) == len(axes)

    return OpCase(
        name,
        lambda x: function(x, axis=axis, keepdims=keepdims),
        lambda x: oracle(x, axis=axis, keepdims=keepdims),
        shapes=tuple(s for s in shapes if valid(s[0])),
        dtypes=same(dtypes, 1),
        label=f"axis={axis},keepdims={keepdims}",
        **options,
    )


def reductions(
    name: str,
    oracle: Callable[..., Any],
    dtypes: Sequence[str],
    shapes: Sequence[tuple[Shape, ...]] = REDUCE_SHAPES,
    **options: Any,
) -> list[OpCase]:
    """A reduction over every kind of axis argument, with and without keepdims."""
    return [
        _reduce_case(name, oracle, axis, keepdims, dtypes, shapes, **options)
        for axis, keepdims in itertools.product((None, 0, -1, (0, -1), ()), (False, True))
    ]


def _logsumexp(x: np.ndarray, axis: Any, keepdims: bool) -> np.ndarray:
    return np.asarray(scipy.special.logsumexp(x, axis=axis, keepdims=keepdims))


def _f64(function: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    """An oracle computed in float64 and rounded to the input's float dtype."""

    def oracle(x: np.ndarray, *args: Any, **kwargs: Any) -> np.ndarray:
        dtype = x.dtype if x.dtype.kind == "f" else np.dtype("float64")
        return np.asarray(function(x.astype(np.float64), *args, **kwargs)).astype(dtype)

    return oracle


def _index_inputs(index_dtype: str = "int64", negative: bool = True):
    """x random; the second input valid indices into x's axis of `size_of(shapes)`."""

    def make(
        rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...], size: int
    ) -> list[np.ndarray]:
        x = random_array(rng, shapes[0], dtypes[0])
        low = -size if negative else 0
        indices = (
            rng.integers(low, size, size=shapes[1]).astype(dtypes[1])
            if size
            else np.zeros(shapes[1], dtypes[1])
        )
        return [x, indices]

    return make


def _take_case(axis: int | None) -> OpCase:
    shapes = (
        (((5,), (3,)), ((4, 3), (2, 2)), ((2, 3, 4), ()))
        if axis is not None
        else (((5,), (3,)), ((4, 3), (2, 5)))
    )
    make = _index_inputs()

    def inputs(
        rng: np.random.Generator, s: tuple[Shape, ...], d: tuple[str, ...]
    ) -> list[np.ndarray]:
        size = int(np.prod(s[0])) if axis is None else s[0][axis]
        return make(rng, s, d, size)

    return OpCase(
        "take",
        lambda x, i: gc.take(x, i, axis=axis),
        lambda x, i: np.take(x, i, axis=axis),
        shapes=shapes,
        dtypes=(("float32", "int64"), ("int64", "int32"), ("bool", "int64")),
        make_inputs=inputs,
        special_values=False,
        label=f"axis={axis}",
    )


def _take_along_axis_case(axis: int) -> OpCase:
    shapes = (
        (((4, 3), (2, 3)), ((4, 3), (5, 1)))
        if axis == 0
        else (((4, 3), (4, 5)), ((4, 3), (1, 2)), ((2, 3, 4), (2, 3, 5)))
    )
    make = _index_inputs()
    return OpCase(
        "take_along_axis",
        lambda x, i: gc.take_along_axis(x, i, axis=axis),
        lambda x, i: np.take_along_axis(x, i, axis=axis),
        shapes=shapes,
        dtypes=(("float64", "int64"), ("int32", "int32")),
        make_inputs=lambda rng, s, d: make(rng, s, d, s[0][axis]),
        special_values=False,
        label=f"axis={axis}",
    )


def _labels_inputs(
    rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
) -> list[np.ndarray]:
    logits = random_array(rng, shapes[0], dtypes[0], (-5, 5))
    labels = rng.integers(0, shapes[0][-1], size=shapes[1]).astype(dtypes[1])
    return [logits, labels]


def _cross_entropy(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    log_p = scipy.special.log_softmax(logits.astype(np.float64), axis=-1)
    picked = np.take_along_axis(log_p, labels[..., None].astype(np.int64), axis=-1)[..., 0]
    return (-picked).astype(logits.dtype)


def _layer_norm(
    x: np.ndarray, gamma: np.ndarray, beta: np.ndarray, axes: tuple[int, ...]
) -> np.ndarray:
    x64 = x.astype(np.float64)
    mean = x64.mean(axis=axes, keepdims=True)
    var = ((x64 - mean) ** 2).mean(axis=axes, keepdims=True)
    return ((x64 - mean) / np.sqrt(var + 1e-5) * gamma + beta).astype(x.dtype)


def _topk(x: np.ndarray, k: int, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Largest first; ties in index order (an independent formulation: lexsort)."""
    moved = np.moveaxis(x, axis, -1)
    flat = moved.reshape(-1, moved.shape[-1])
    order = (
        np.stack([np.lexsort((np.arange(len(row)), -row)) for row in flat])
        if len(flat)
        else np.zeros((0, moved.shape[-1]), np.int64)
    )
    order = order[:, :k].reshape((*moved.shape[:-1], k))
    values = np.take_along_axis(moved, order, axis=-1)
    return np.moveaxis(values, -1, axis), np.moveaxis(order, -1, axis).astype(np.int64)


def _distinct_inputs(
    rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
) -> list[np.ndarray]:
    """A permutation of distinct values, with a tie, so that order is unambiguous to check."""
    size = int(np.prod(shapes[0]))
    values = rng.permutation(size).astype(dtypes[0])
    if size > 2:
        values[1] = values[0]  # a tie: the lower index must come first
    return [values.reshape(shapes[0])]


def _conv_inputs(
    rng: np.random.Generator, shapes: tuple[Shape, ...], dtypes: tuple[str, ...]
) -> list[np.ndarray]:
    return [random_array(rng, s, d, (-1, 1)) for s, d in zip(shapes, dtypes, strict=True)]


def _getitem_case(
    label: str, index: Any, shape: Shape, index_array: np.ndarray | None = None
) -> OpCase:
    """x[index]; an index holding the string "T" stands for the index tensor."""

    def resolve(i: Any, tensor: Any) -> Any:
        if isinstance(i, tuple):
            return tuple(tensor if e == "T" else e for e in i)
        return tensor if i == "T" else i

    if index_array is None:
        return OpCase(
            "getitem",
            lambda x: x[index],
            lambda x: x[index],
            shapes=((shape,),),
            dtypes=(("float32",), ("int64",)),
            label=label,
        )
    return OpCase(
        "getitem",
        lambda x, i: x[resolve(index, i)],
        lambda x, i: x[resolve(index, i)],
        shapes=((shape, index_array.shape),),
        dtypes=(("float32", "int64"),),
        make_inputs=lambda rng, s, d: [random_array(rng, s[0], d[0]), index_array],
        special_values=False,
        label=label,
    )


def _softmax_oracle(function: Callable[..., np.ndarray], axis: Any) -> Callable[..., np.ndarray]:
    return _f64(lambda x: function(x, axis=axis))


CASES: list[OpCase] = [
    # elementwise arithmetic
    binary("add"),
    binary("subtract", dtypes=same(NUMERIC, 2) + MIXED_PAIRS[:3]),
    binary("multiply"),
    binary("divide", make_inputs=_nonzero_divisor),
    binary("floor_divide", make_inputs=_nonzero_divisor, dtypes=same(NUMERIC, 2) + MIXED_PAIRS[:3]),
    binary("mod", make_inputs=_nonzero_divisor, dtypes=same(NUMERIC, 2) + MIXED_PAIRS[:3]),
    binary("power", make_inputs=_power_inputs, dtypes=same(NUMERIC, 2) + MIXED_PAIRS[:3]),
    binary("maximum"),
    binary("minimum"),
    unary("negative", dtypes=NUMERIC),
    unary("abs", dtypes=ALL),
    unary("sign", dtypes=NUMERIC),
    unary("square", dtypes=NUMERIC),
    unary("sqrt", domain=(0.0, 9.0), dtypes=ALL),
    unary("rsqrt", lambda x: 1 / np.sqrt(x), domain=(0.1, 9.0), dtypes=NUMERIC),
    unary("exp", dtypes=ALL),
    unary("expm1"),
    unary("log", domain=(0.01, 9.0), dtypes=ALL),
    unary("log1p", domain=(-0.9, 9.0)),
    unary("sin", dtypes=ALL),
    unary("cos"),
    unary("tan", domain=(-1.5, 1.5)),
    unary("arcsin", domain=(-1, 1)),
    unary("arccos", domain=(-1, 1)),
    unary("arctan"),
    unary("sinh"),
    unary("cosh"),
    unary("tanh", dtypes=ALL),
    unary("sigmoid", _f64(lambda x: 1 / (1 + np.exp(-x))), domain=(-30, 30), dtypes=NUMERIC),
    unary("relu", lambda x: np.maximum(x, np.zeros((), x.dtype)), dtypes=NUMERIC),
    OpCase(
        "leaky_relu",
        lambda x: gc.leaky_relu(x, 0.2),
        lambda x: np.where(x > 0, x, np.float32(0.2) * x if x.dtype == np.float32 else 0.2 * x),
        dtypes=same(FLOATS, 1),
    ),
    unary(
        "gelu", _f64(lambda x: 0.5 * x * (1 + scipy.special.erf(x / np.sqrt(2)))), domain=(-6, 6)
    ),
    OpCase(
        "gelu",
        lambda x: gc.gelu(x, approximate="tanh"),
        _f64(lambda x: 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3)))),
        dtypes=same(FLOATS, 1),
        domain=(-6, 6),
        label="tanh",
    ),
    unary("softplus", _f64(lambda x: np.logaddexp(0, x)), domain=(-40, 40)),
    unary("erf", _f64(scipy.special.erf)),
    unary("floor", dtypes=ALL, domain=(-5, 5)),
    unary("ceil", dtypes=ALL, domain=(-5, 5)),
    unary("round", dtypes=NUMERIC, domain=(-5, 5)),
    OpCase(
        "round",
        gc.round,
        np.round,
        dtypes=same(FLOATS, 1),
        make_inputs=lambda rng, s, d: [
            np.resize(np.array([-2.5, -1.5, -0.5, 0.5, 1.5, 2.5], d[0]), s[0])
        ],
        label="halves",
    ),
    OpCase(
        "clip",
        lambda x: gc.clip(x, -1.0, 2.0),
        lambda x: np.clip(x, -1.0, 2.0),
        dtypes=same(NUMERIC, 1),
    ),
    OpCase(
        "clip",
        lambda x: gc.clip(x, None, 0.5),
        lambda x: np.minimum(x, np.float32(0.5)),
        dtypes=(("float32",),),
        label="upper-only",
    ),
    OpCase(
        "clip",
        lambda x, lo, hi: gc.clip(x, lo, hi),
        np.clip,
        shapes=(((2, 3), (3,), ()),),
        dtypes=same(FLOATS, 3),
        label="tensors",
    ),
    OpCase(
        "where",
        gc.where,
        np.where,
        shapes=(((4,), (4,), (4,)), ((2, 3), (3,), ()), ((2, 1), (1, 3), (2, 3))),
        dtypes=(
            ("bool", "float32", "float32"),
            ("bool", "int32", "float64"),
            ("int64", "float64", "float64"),
        ),
    ),
    OpCase(
        "where",
        lambda c, a: gc.where(c, a, 0.5),
        lambda c, a: np.where(c, a, a.dtype.type(0.5)),
        shapes=(((2, 3), (2, 3)),),
        dtypes=(("bool", "float32"),),
        label="scalar",
    ),
    *[
        OpCase(
            "cast",
            lambda x, t=target: gc.cast(x, t),
            lambda x, t=target: x.astype(t),
            dtypes=same(ALL, 1),
            domain=(-4, 4),
            special_values=False,
            label=target,
        )
        for target in ALL
    ],
    OpCase(
        "astype",
        lambda x: x.astype("int32"),
        lambda x: x.astype("int32"),
        dtypes=same(FLOATS, 1),
        special_values=False,
    ),
    # comparison and logic
    *[
        binary(name, dtypes=same(ALL, 2) + MIXED_PAIRS, domain=(-2, 2))
        for name in ("equal", "not_equal", "less", "less_equal", "greater", "greater_equal")
    ],
    binary("logical_and", dtypes=same(ALL, 2) + MIXED_PAIRS[:2], domain=(-1, 1)),
    binary("logical_or", dtypes=same(ALL, 2) + MIXED_PAIRS[:2], domain=(-1, 1)),
    unary("logical_not", dtypes=ALL, domain=(-1, 1)),
    unary("isnan", dtypes=ALL),
    unary("isinf", dtypes=ALL),
    unary("isfinite", dtypes=ALL),
    unary("stop_gradient", lambda x: x, dtypes=ALL),
    unary("zeros_like", dtypes=ALL),
    unary("ones_like", dtypes=ALL),
    OpCase(
        "zeros_like",
        lambda x: gc.zeros_like(x, "int32"),
        lambda x: np.zeros_like(x, "int32"),
        dtypes=(("float32",),),
        label="dtype",
    ),
    # reductions
    *reductions("sum", np.sum, ALL),
    *reductions("prod", np.prod, NUMERIC, domain=(-2, 2)),
    *reductions("mean", np.mean, NUMERIC),
    *reductions("max", np.max, ALL, NONEMPTY_REDUCE_SHAPES),
    *reductions("min", np.min, ALL, NONEMPTY_REDUCE_SHAPES),
    *reductions("logsumexp", _logsumexp, FLOATS, NONEMPTY_REDUCE_SHAPES, domain=(-50, 50)),
    *[
        OpCase(
            "var",
            lambda x, d=ddof, a=axis: gc.var(x, axis=a, ddof=d),
            lambda x, d=ddof, a=axis: np.var(x, axis=a, ddof=d),
            shapes=REDUCE_SHAPES[1:3] if axis == (0, 1) else REDUCE_SHAPES[:3],
            dtypes=same(NUMERIC, 1),
            label=f"axis={axis},ddof={ddof}",
        )
        for axis, ddof in ((None, 0), (-1, 1), ((0, 1), 0))
    ],
    *[
        OpCase(
            "std",
            lambda x, a=axis: gc.std(x, axis=a, keepdims=True),
            lambda x, a=axis: np.std(x, axis=a, keepdims=True),
            shapes=REDUCE_SHAPES[:3],
            dtypes=same(NUMERIC, 1),
            label=f"axis={axis}",
        )
        for axis in (None, 0)
    ],
    *[
        OpCase(
            name,
            lambda x, f=getattr(gc, name), a=axis, k=keep: f(x, axis=a, keepdims=k),
            lambda x, f=getattr(np, name), a=axis, k=keep: f(x, axis=a, keepdims=k),
            shapes=NONEMPTY_REDUCE_SHAPES,
            dtypes=same(ALL, 1),
            domain=(-2, 2),
            label=f"axis={axis},keepdims={keep}",
        )
        for name in ("argmax", "argmin")
        for axis, keep in ((None, False), (0, True), (-1, False))
    ],
    *[
        OpCase(
            "cumsum",
            lambda x, a=axis: gc.cumsum(x, axis=a),
            lambda x, a=axis: np.cumsum(x, axis=a),
            shapes=REDUCE_SHAPES,
            dtypes=same(ALL, 1),
            label=f"axis={axis}",
        )
        for axis in (None, 0, -1)
    ],
    # linear algebra
    OpCase(
        "matmul",
        gc.matmul,
        np.matmul,
        shapes=(
            ((2, 3), (3, 4)),
            ((3,), (3, 4)),
            ((2, 3), (3,)),
            ((3,), (3,)),
            ((5, 2, 3), (3, 4)),
            ((2, 1, 2, 3), (4, 3, 2)),
            ((0, 3), (3, 2)),
            ((2, 0), (0, 3)),
        ),
        dtypes=same(NUMERIC, 2) + (("float32", "float64"), ("int32", "float32")),
    ),
    OpCase(
        "dot",
        gc.dot,
        np.dot,
        shapes=(
            ((2, 3), (3, 4)),
            ((3,), (3,)),
            ((), (2, 3)),
            ((2, 3), (4, 3, 2)),
            ((3,), (2, 3, 4)),
            ((2, 2, 3), (3,)),
        ),
        dtypes=same(FLOATS + ("int64",), 2),
    ),
    # shape and indexing
    *[
        OpCase(
            "reshape",
            lambda x, s=target: gc.reshape(x, s),
            lambda x, s=target: x.reshape(s),
            shapes=(((2, 3, 4),),),
            dtypes=same(ALL, 1),
            label=str(target),
        )
        for target in ((24,), (4, -1), (-1, 2, 3), (2, 3, 4))
    ],
    OpCase(
        "reshape",
        lambda x: x.reshape(3, 2),
        lambda x: x.reshape(3, 2),
        shapes=(((6,),), ((2, 3),)),
        label="method",
    ),
    *[
        OpCase(
            "transpose",
            lambda x, p=perm: gc.transpose(x, p),
            lambda x, p=perm: np.transpose(x, p),
            shapes=(((2, 3, 4),),),
            dtypes=same(ALL, 1),
            label=str(perm),
        )
        for perm in (None, (1, 0, 2), (-1, 0, 1))
    ],
    OpCase("T", lambda x: x.T, lambda x: x.T, shapes=(((2, 3),), ((4,),), ((2, 3, 4),))),
    OpCase(
        "broadcast_to",
        lambda x: gc.broadcast_to(x, (2, 3, 4)),
        lambda x: np.broadcast_to(x, (2, 3, 4)),
        shapes=(((4,),), ((3, 1),), ((),), ((2, 3, 4),)),
        dtypes=same(ALL, 1),
    ),
    *[
        OpCase(
            "expand_dims",
            lambda x, a=axis: gc.expand_dims(x, a),
            lambda x, a=axis: np.expand_dims(x, a),
            shapes=(((2, 3),),),
            dtypes=same(ALL, 1),
            label=str(axis),
        )
        for axis in (0, -1, (0, 2), (1, -1))
    ],
    *[
        OpCase(
            "squeeze",
            lambda x, a=axis: gc.squeeze(x, a),
            lambda x, a=axis: np.squeeze(x, a),
            shapes=(((1, 3, 1),),),
            dtypes=same(ALL, 1),
            label=str(axis),
            symbolic=False,
        )
        for axis in (None, 0, -1, (0, 2))
    ],
    *[
        OpCase(
            "concatenate",
            lambda *xs, a=axis: gc.concatenate(xs, axis=a),
            lambda *xs, a=axis: np.concatenate(xs, axis=a),
            shapes=shapes,
            dtypes=dtypes,
            label=f"axis={axis},{len(shapes[0])}",
        )
        for axis, shapes, dtypes in (
            (0, (((2, 3), (4, 3)), ((0, 3), (2, 3))), same(ALL, 2) + (("int32", "float32"),)),
            (0, (((1, 3), (2, 3), (0, 3)),), same(FLOATS, 3)),
            (-1, (((2, 3), (2, 1)),), same(ALL, 2)),
            (None, (((2, 3), (3,)),), same(NUMERIC, 2)),
        )
    ],
    *[
        OpCase(
            "stack",
            lambda *xs, a=axis: gc.stack(xs, axis=a),
            lambda *xs, a=axis: np.stack(xs, axis=a),
            shapes=(((2, 3), (2, 3)), ((), ())),
            dtypes=same(ALL, 2),
            label=f"axis={axis}",
        )
        for axis in (0, -1)
    ],
    *[
        OpCase(
            "split",
            lambda x, s=sections, a=axis: tuple(gc.split(x, s, axis=a)),
            lambda x, s=sections, a=axis: tuple(np.split(x, s, axis=a)),
            shapes=(((6, 4),),),
            dtypes=same(ALL, 1),
            label=f"{sections},axis={axis}",
        )
        for sections, axis in ((2, 0), (3, 0), ([1, 3], 0), ([2, 2, 10], -1), (4, 1), ([], 0))
    ],
    _take_case(0),
    _take_case(-1),
    _take_case(None),
    _take_along_axis_case(0),
    _take_along_axis_case(-1),
    OpCase(
        "one_hot",
        lambda i: gc.one_hot(i, 4),
        lambda i: (i[..., None] == np.arange(4)).astype("float32"),
        shapes=(((5,),), ((2, 3),), ((0,),)),
        dtypes=same(INTS, 1),
        domain=(-2, 5),
        make_inputs=lambda rng, s, d: [rng.integers(-2, 6, size=s[0]).astype(d[0])],
        special_values=False,
    ),
    OpCase(
        "one_hot",
        lambda i: gc.one_hot(i, 3, dtype="int32"),
        lambda i: np.eye(3, dtype="int32")[i],
        shapes=(((4,),),),
        dtypes=(("int64",),),
        make_inputs=lambda rng, s, d: [rng.integers(0, 3, size=s[0]).astype(d[0])],
        special_values=False,
        label="int32",
    ),
    *[
        OpCase(
            "pad",
            lambda x, w=width: gc.pad(x, w, constant_values=1.5),
            lambda x, w=width: np.pad(x, w, constant_values=np.asarray(1.5).astype(x.dtype)),
            shapes=(((2, 3),), ((0, 2),)),
            dtypes=same(NUMERIC, 1),
            label=str(width),
        )
        for width in (1, (1, 2), ((1, 0), (0, 2)), ((2, 1),), (0,))
    ],
    *[
        OpCase(
            "flip",
            lambda x, a=axis: gc.flip(x, a),
            lambda x, a=axis: np.flip(x, a),
            shapes=(((2, 3, 4),), ((5, 1, 1),)),
            dtypes=same(ALL, 1),
            label=str(axis),
        )
        for axis in (None, 0, -1, (0, 2))
    ],
    *[
        OpCase(
            "tile",
            lambda x, r=reps: gc.tile(x, r),
            lambda x, r=reps: np.tile(x, r),
            shapes=(((2, 3),), ((3,),)),
            dtypes=same(ALL, 1),
            label=str(reps),
        )
        for reps in (2, (2, 1), (1, 2, 2), (0, 3))
    ],
    *[
        OpCase(
            "arange",
            lambda a=args: gc.arange(*a[0], **a[1]),
            lambda a=args: np.arange(*a[0], **a[1]),
            shapes=((),),
            dtypes=((),),
            special_values=False,
            symbolic=False,
            label=str(args),
        )
        for args in (
            ((5,), {}),
            ((1, 7, 2), {}),
            ((0.5, 3.0, 0.5), {}),
            ((5,), {"dtype": "float32"}),
            ((3, 0), {}),
        )
    ],
    *[
        OpCase(
            "sort",
            lambda x, a=axis: gc.sort(x, axis=a),
            lambda x, a=axis: np.sort(x, axis=a),
            shapes=(((5,),), ((2, 3),), ((3, 4, 2),)) if axis is not None else (((2, 3),),),
            dtypes=same(ALL, 1),
            label=f"axis={axis}",
        )
        for axis in (-1, 0, None)
    ],
    *[
        OpCase(
            "argsort",
            lambda x, a=axis: gc.argsort(x, axis=a),
            lambda x, a=axis: np.argsort(x, axis=a, kind="stable"),
            shapes=(((5,),), ((2, 3),), ((3, 4, 2),)) if axis is not None else (((2, 3),),),
            dtypes=same(ALL, 1),
            domain=(-2, 2),
            label=f"axis={axis}",
        )
        for axis in (-1, 0, None)
    ],
    *[
        OpCase(
            "topk",
            lambda x, k=k, a=axis: gc.topk(x, k, axis=a),
            lambda x, k=k, a=axis: _topk(x, k, a),
            shapes=(((4, 3),), ((5, 3),)) if axis == 0 else (((6,),), ((2, 5),), ((4, 3),)),
            dtypes=same(NUMERIC, 1),
            make_inputs=_distinct_inputs,
            special_values=False,
            label=f"k={k},axis={axis}",
        )
        for k, axis in ((2, -1), (3, 0), (0, -1))
    ],
    _getitem_case("int", 1, (4, 3)),
    _getitem_case("negative", (-1, -2), (4, 3)),
    _getitem_case("slices", (slice(1, None), slice(None, None, 2)), (5, 4)),
    _getitem_case("negative-step", (slice(None, None, -2), slice(3, 0, -1)), (5, 4)),
    _getitem_case("clamped", slice(-10, 10), (5,)),
    _getitem_case("newaxis", (None, slice(None), None, 1), (3, 4)),
    _getitem_case("ellipsis", (Ellipsis, 0), (2, 3, 4)),
    _getitem_case("ellipsis-mid", (1, Ellipsis, None, slice(1, 3)), (2, 3, 4)),
    _getitem_case("empty", slice(2, 2), (4, 3)),
    _getitem_case("tensor", "T", (5, 3), np.array([4, 0, -1, 2])),
    _getitem_case("tensor-axis1", (slice(None), "T"), (5, 3), np.array([[0, 2], [1, -3]])),
    _getitem_case("int-tensor", (1, "T"), (2, 5, 3), np.array([4, 0])),
    _getitem_case("int-slice-tensor", (0, slice(None), "T"), (2, 5, 3), np.array([2, 0, 1])),
    _getitem_case("tensor-slice-int", ("T", slice(1, 4), 2), (4, 5, 3), np.array([1, 3])),
    _getitem_case("list", [0, 2, 2], (3, 2)),
    # neural-net
    *[
        OpCase(
            "softmax",
            lambda x, a=axis: gc.softmax(x, a),
            _softmax_oracle(scipy.special.softmax, axis),
            shapes=NONEMPTY_REDUCE_SHAPES,
            domain=(-30, 30),
            label=f"axis={axis}",
            special_values=False,
        )
        for axis in (-1, 0)
    ],
    *[
        OpCase(
            "log_softmax",
            lambda x, a=axis: gc.log_softmax(x, a),
            _softmax_oracle(scipy.special.log_softmax, axis),
            shapes=NONEMPTY_REDUCE_SHAPES,
            domain=(-30, 30),
            label=f"axis={axis}",
            special_values=False,
        )
        for axis in (-1, 0)
    ],
    OpCase(
        "softmax_cross_entropy",
        gc.softmax_cross_entropy,
        _cross_entropy,
        shapes=(((4, 5), (4,)), ((2, 3, 5), (2, 3)), ((0, 3), (0,))),
        dtypes=(("float32", "int64"), ("float64", "int32")),
        make_inputs=_labels_inputs,
        special_values=False,
    ),
    *[
        OpCase(
            "layer_norm",
            lambda x, g, b, a=axes: gc.layer_norm(x, g, b, axis=a),
            lambda x, g, b, a=axes: _layer_norm(x, g, b, a),
            shapes=(((2, 3, 4), gamma_shape, gamma_shape),),
            dtypes=same(FLOATS, 3),
            special_values=False,
            label=str(axes),
        )
        for axes, gamma_shape in (((2,), (4,)), ((1, 2), (3, 4)))
    ],
    OpCase(
        "layer_norm",
        lambda x: gc.layer_norm(x),
        lambda x: _layer_norm(x, 1.0, 0.0, (1,)),
        shapes=(((3, 5),),),
        special_values=False,
        label="no-affine",
    ),
    *[
        OpCase(
            "conv2d",
            lambda x, w, o=opts: gc.conv2d(x, w, **o),
            lambda x, w, o=opts: oracles.conv2d(x, w, **o),
            shapes=((x_shape, w_shape),),
            dtypes=same(FLOATS, 2),
            make_inputs=_conv_inputs,
            special_values=False,
            label=str(opts),
        )
        for x_shape, w_shape, opts in (
            ((1, 2, 5, 5), (3, 2, 3, 3), {}),
            ((2, 2, 6, 7), (4, 1, 3, 2), {"stride": 2, "padding": 1, "groups": 2}),
            (
                (1, 1, 7, 6),
                (2, 1, 2, 3),
                {"stride": (2, 1), "padding": ((1, 0), (2, 1)), "dilation": 2},
            ),
            ((1, 3, 4, 4), (3, 1, 3, 3), {"groups": 3, "padding": (1, 0)}),
        )
    ],
    OpCase(
        "conv2d",
        lambda x, w, b: gc.conv2d(x, w, b, padding=1),
        lambda x, w, b: oracles.conv2d(x, w, padding=1) + b[None, :, None, None],
        shapes=(((2, 2, 4, 4), (3, 2, 3, 3), (3,)),),
        dtypes=same(FLOATS, 3),
        make_inputs=_conv_inputs,
        special_values=False,
        label="bias",
    ),
    *[
        OpCase(
            "conv_transpose2d",
            lambda x, w, o=opts: gc.conv_transpose2d(x, w, **o),
            lambda x, w, o=opts: oracles.conv_transpose2d(x, w, **o),
            shapes=((x_shape, w_shape),),
            dtypes=same(FLOATS, 2),
            make_inputs=_conv_inputs,
            special_values=False,
            label=str(opts),
        )
        for x_shape, w_shape, opts in (
            ((1, 2, 3, 3), (2, 3, 3, 3), {}),
            (
                (2, 2, 3, 4),
                (2, 2, 3, 2),
                {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2},
            ),
            ((1, 1, 4, 3), (1, 2, 2, 3), {"stride": (1, 2), "dilation": 2, "padding": (1, 0)}),
        )
    ],
    OpCase(
        "conv_transpose2d",
        lambda x, w, b: gc.conv_transpose2d(x, w, b, stride=2),
        lambda x, w, b: oracles.conv_transpose2d(x, w, stride=2) + b[None, :, None, None],
        shapes=(((1, 2, 3, 3), (2, 3, 2, 2), (3,)),),
        dtypes=same(FLOATS, 3),
        make_inputs=_conv_inputs,
        special_values=False,
        label="bias",
    ),
    *[
        OpCase(
            name,
            lambda x, f=getattr(gc, name), o=opts: f(x, **o),
            lambda x, f=getattr(oracles, name), o=opts: f(x, **o),
            shapes=(((2, 3, 7, 6),), ((1, 1, 5, 5),)),
            dtypes=same(FLOATS, 1),
            label=str(opts),
        )
        for name in ("max_pool2d", "avg_pool2d")
        for opts in (
            {"kernel": 2},
            {"kernel": 3, "stride": 2, "padding": 1},
            {"kernel": (3, 2), "stride": (2, 1), "ceil_mode": True},
            {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        )
    ],
    *[
        OpCase(
            "avg_pool2d",
            lambda x, o=opts: gc.avg_pool2d(x, count_include_pad=False, **o),
            lambda x, o=opts: oracles.avg_pool2d(x, count_include_pad=False, **o),
            shapes=(((2, 3, 7, 6),),),
            label=f"exclude-pad,{opts}",
        )
        for opts in (
            {"kernel": 3, "stride": 2, "padding": 1},
            {"kernel": 3, "stride": 2, "padding": 1, "ceil_mode": True},
        )
    ],
]

# Every op function API.md names, each of which must have a row above (tested).
API_OPS = [
    "add",
    "subtract",
    "multiply",
    "divide",
    "floor_divide",
    "mod",
    "power",
    "maximum",
    "minimum",
    "negative",
    "abs",
    "sign",
    "square",
    "sqrt",
    "rsqrt",
    "exp",
    "expm1",
    "log",
    "log1p",
    "sin",
    "cos",
    "tan",
    "arcsin",
    "arccos",
    "arctan",
    "sinh",
    "cosh",
    "tanh",
    "sigmoid",
    "relu",
    "leaky_relu",
    "gelu",
    "softplus",
    "erf",
    "floor",
    "ceil",
    "round",
    "clip",
    "where",
    "cast",
    "equal",
    "not_equal",
    "less",
    "less_equal",
    "greater",
    "greater_equal",
    "logical_and",
    "logical_or",
    "logical_not",
    "isnan",
    "isinf",
    "isfinite",
    "sum",
    "mean",
    "prod",
    "max",
    "min",
    "argmax",
    "argmin",
    "logsumexp",
    "var",
    "std",
    "cumsum",
    "matmul",
    "dot",
    "reshape",
    "transpose",
    "broadcast_to",
    "expand_dims",
    "squeeze",
    "concatenate",
    "stack",
    "split",
    "take",
    "take_along_axis",
    "one_hot",
    "pad",
    "flip",
    "tile",
    "arange",
    "sort",
    "topk",
    "zeros_like",
    "ones_like",
    "softmax",
    "log_softmax",
    "softmax_cross_entropy",
    "conv2d",
    "conv_transpose2d",
    "max_pool2d",
    "avg_pool2d",
    "layer_norm",
    "stop_gradient",
]
