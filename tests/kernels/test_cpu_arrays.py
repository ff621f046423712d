"""graphc.kernels.cpu.arrays: every emitter's generated code, compiled with numba, against the
op's numpy reference.

Each case builds the op's node (types from its type rule), runs its registered emitter on a
fake Emitter, wraps the emitted lines in a function ``f(inputs..., outputs..., sizes...)``
and compiles it with ``numba.njit``, as the code generator compiles its entry function, so
typing problems show. The outputs start filled with a sentinel, which catches elements an
emitter forgot to write.

Sizes are either static (int literals in the generated code) or symbolic: every dim a
``Sym`` named by its operand and axis, bound at run time, so one compiled function serves
every shape of a rank; compiled functions are cached by their source to keep the file fast.
Inputs come C-contiguous, transposed (Fortran order) and strided.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numba
import numpy as np
import pytest

from graphc.ir import Node, Value
from graphc.kernels.cpu import arrays
from graphc.kernels.emit import emitter
from graphc.registry import lookup
from graphc.types import Dim, Sym, TensorType

FLOATS = ("float32", "float64")


class FakeEmitter:
    """The Emitter protocol over named inputs; records lines and the sizes it asked for."""

    def __init__(self, types: Sequence[TensorType]) -> None:
        self.types = {Value(i): t for i, t in enumerate(types)}
        self.lines: list[str] = []
        self.sizes: dict[str, str] = {}  # Sym name -> parameter name
        self.outputs: dict[int, str] = {}
        self.temps = 0

    def arg(self, value: Value) -> str:
        return f"a{value.node}"

    def out(self, node: Node, index: int = 0) -> str:
        self.outputs[index] = f"out{index}"
        return f"out{index}"

    def define(self, node: Node, index: int, expression: str) -> None:
        raise AssertionError("the array emitters all write into their outputs")

    def dim(self, dim: Dim) -> str:
        if isinstance(dim, int):
            return str(dim)
        return self.sizes.setdefault(dim.name, f"n{len(self.sizes)}")

    def shape(self, tensor_type: TensorType) -> str:
        dims = [self.dim(d) for d in tensor_type.shape]
        return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"

    def type_of(self, value: Value) -> TensorType:
        return self.types[value]

    def line(self, statement: str) -> None:
        self.lines.append(statement)

    def temp(self, hint: str = "t") -> str:
        self.temps += 1
        return f"{hint}{self.temps}"


COMPILED: dict[str, Callable[..., Any]] = {}


def compile_source(source: str) -> Callable[..., Any]:
    """numba.njit of the source's `f`, once per source text."""
    if source not in COMPILED:
        namespace: dict[str, Any] = {"np": np, "numba": numba, "ak": arrays}
        exec(source, namespace)
        COMPILED[source] = numba.njit(error_model="numpy")(namespace["f"])
    return COMPILED[source]


def input_type(array: np.ndarray, position: int, symbolic: bool) -> TensorType:
    if not symbolic:
        return TensorType(array.dtype, tuple(int(d) for d in array.shape))
    return TensorType(array.dtype, tuple(Sym(f"s{position}_{a}") for a in range(array.ndim)))


def bind_sizes(types: Sequence[TensorType], arrays_: Sequence[np.ndarray]) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for tensor_type, array in zip(types, arrays_, strict=True):
        for dim, size in zip(tensor_type.shape, array.shape, strict=True):
            if isinstance(dim, Sym):
                assert sizes.setdefault(dim.name, size) == size, dim.name
    return sizes


def sentinel_like(array: np.ndarray) -> np.ndarray:
    return np.full(array.shape, True if array.dtype == np.bool_ else 77, array.dtype)


def emitted(
    op: str,
    inputs: Sequence[np.ndarray],
    attrs: dict[str, Any],
    symbolic: bool,
    expected: Sequence[np.ndarray] = (),
) -> tuple[Callable[..., Any], list[int], tuple[TensorType, ...]]:
    """(the compiled function, its size arguments, the output types) of the op's emitter;
    symbolic sizes of the outputs are bound from the `expected` arrays."""
    opdef = lookup(op)
    checked = opdef.check_attrs(attrs)
    types = [input_type(a, i, symbolic) for i, a in enumerate(inputs)]
    inferred = opdef.infer(*types, **checked)
    node_types = inferred if isinstance(inferred, tuple) else (inferred,)
    node = Node(len(inputs), op, tuple(Value(i) for i in range(len(inputs))), checked, node_types)
    e = FakeEmitter(types)
    entry = emitter("cpu", op)
    assert entry.alloc
    entry.emit(e, node)
    sizes = bind_sizes(types, inputs)
    if expected:
        sizes.update(bind_sizes(node_types, expected))
    names = [f"a{i}" for i in range(len(inputs))]
    names += [f"out{i}" for i in range(len(node_types))]
    names += list(e.sizes.values())
    outs = ", ".join(f"out{i}" for i in range(len(node_types)))
    body = "".join(f"    {line}\n" for line in e.lines)
    source = f"def f({', '.join(names)}):\n{body}    return ({outs},)\n"
    return compile_source(source), [sizes[name] for name in e.sizes], node_types


def run(op: str, inputs: Sequence[np.ndarray], attrs: dict[str, Any], symbolic: bool = False):
    """The compiled op's outputs and the reference's."""
    opdef = lookup(op)
    expected = opdef.reference(*inputs, **opdef.check_attrs(attrs))
    expected = expected if isinstance(expected, tuple) else (expected,)
    function, size_args, types = emitted(op, inputs, attrs, symbolic, expected)
    for tensor_type, array in zip(types, expected, strict=True):
        assert (tensor_type.dtype, tensor_type.ndim) == (array.dtype, array.ndim)
    outputs = [sentinel_like(a) for a in expected]
    results = function(*inputs, *outputs, *size_args)
    for result, output in zip(results, outputs, strict=True):
        assert result is output or result.size == 0 or np.shares_memory(result, output)
    return outputs, expected


def check(
    op: str,
    inputs: Sequence[np.ndarray],
    attrs: dict[str, Any] | None = None,
    *,
    symbolic: bool = False,
    rtol: float = 0.0,
) -> None:
    """The compiled op equals the reference: exactly, or within rtol for float sums."""
    outputs, expected = run(op, inputs, attrs or {}, symbolic)
    for got, want in zip(outputs, expected, strict=True):
        assert (got.dtype, got.shape) == (want.dtype, want.shape)
        if rtol and want.dtype.kind == "f":
            atol = rtol * max(1.0, float(np.abs(want).max(initial=0)))
            np.testing.assert_allclose(got, want, rtol=rtol, atol=atol)
        else:
            np.testing.assert_array_equal(got, want)


def check_index_error(op: str, inputs: Sequence[np.ndarray], attrs: dict[str, Any]) -> None:
    """The reference and the compiled op both raise IndexError, before writing anything."""
    with pytest.raises(IndexError):
        lookup(op).reference(*inputs, **lookup(op).check_attrs(attrs))
    function, size_args, types = emitted(op, inputs, attrs, symbolic=False)
    outputs = [sentinel_like(np.empty(t.shape, t.dtype)) for t in types]
    with pytest.raises(IndexError):
        function(*inputs, *outputs, *size_args)
    for output in outputs:
        assert np.all(output == sentinel_like(output)), "written before the index check"


def sample(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    """Small values with many ties; floats also get NaN, infinities and both zeros."""
    if dtype == "bool":
        return rng.random(shape) < 0.5
    values = np.asarray(rng.integers(-4, 5, shape).astype(dtype))
    if dtype in FLOATS and values.size:
        flat = values.reshape(-1)
        specials = np.array([np.nan, -0.0, 0.0, np.inf, -np.inf, np.nan, 0.5], dtype)
        spots = rng.integers(0, flat.size, min(flat.size // 3, len(specials)))
        flat[spots] = specials[: len(spots)]
    return values


def normal(rng: np.random.Generator, shape: Sequence[int], dtype: str) -> np.ndarray:
    if dtype in FLOATS:
        return np.asarray(rng.standard_normal(shape).astype(dtype))
    return sample(rng, shape, dtype)


def contiguous(array: np.ndarray) -> np.ndarray:
    return array


def transposed(array: np.ndarray) -> np.ndarray:
    """The same values in a Fortran-ordered array (numba layout 'F')."""
    return np.asfortranarray(array)


def strided(array: np.ndarray) -> np.ndarray:
    """The same values in a non-contiguous view (numba layout 'A')."""
    if array.ndim == 0:
        return array
    return np.repeat(array, 2, axis=-1)[..., ::2]


# Every compile costs about half a second, so the cases are chosen to share them: the sweeps
# over shapes run in float64 (int64 indices), the dtype cases add one float32, one int32 and
# one bool case, with the non-contiguous layouts spread among them; and sizes are symbolic
# wherever one compiled function can serve many shapes.
DTYPE_LAYOUTS = [
    pytest.param("float32", transposed, id="float32-transposed"),
    pytest.param("int32", strided, id="int32-strided"),
    pytest.param("bool", contiguous, id="bool"),
]
INDEX_DTYPES = {"float32": np.int32, "int32": np.int32, "bool": np.int32}

# Shapes per rank for the symbolic sweeps, zero sizes among them; with every axis, the middle
# one of rank 3 included (outer and inner both > 1). Rank 2 comes with the dtype cases.
SWEEP = {1: [(5,), (0,), (1,)], 3: [(2, 3, 4), (3, 0, 2), (1, 5, 1), (0, 2, 3), (2, 1, 0)]}
SWEEP_AXES = {1: (0, -1), 3: (1, 2, -2, -1)}


def sweep() -> list[tuple[tuple[int, ...], int]]:
    """(shape, axis) cases; negative axes as the front end normalizes them."""
    return [
        (shape, axis % rank)
        for rank, shapes in SWEEP.items()
        for axis in SWEEP_AXES[rank]
        for shape in shapes
    ]


def index_dtype(dtype: str) -> type:
    return INDEX_DTYPES.get(dtype, np.int64)


# take and index_add


def test_take_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        size = shape[axis]
        indices = rng.integers(-size, size, 4) if size else np.zeros(0, np.int64)
        check("take", [sample(rng, shape, "float64"), indices], {"axis": axis}, symbolic=True)
    x = sample(rng, (2, 5, 3), "float64")
    for index_shape in [(), (2, 3), (0, 3)]:  # index arrays of other ranks
        check("take", [x, rng.integers(-5, 5, index_shape)], {"axis": 1}, symbolic=True)


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_take_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    x = sample(rng, (3, 5), dtype)
    indices = np.array([4, 0, -1, 2, -5, 4], index_dtype(dtype))
    check("take", [layout(x), indices], {"axis": 1}, symbolic=True)


def test_take_static_and_out_of_range(rng: np.random.Generator) -> None:
    x = sample(rng, (4, 3), "float32")
    check("take", [x, np.array([3, -4, 0])], {"axis": 0})
    for bad in (4, -5, 1000):
        check_index_error("take", [x, np.array([3, bad, 0])], {"axis": 0})
    empty = np.zeros((2, 0))
    check("take", [empty, np.zeros(0, np.int64)], {"axis": 1})
    check_index_error("take", [empty, np.array([0])], {"axis": 1})


def index_add_inputs(rng, shape, axis, index_shape, dtype="float64"):
    size = shape[axis]
    indices = rng.integers(-size, size, index_shape) if size else np.zeros(0, np.int64)
    g_shape = (*shape[:axis], *indices.shape, *shape[axis + 1 :])
    return [normal(rng, g_shape, dtype), indices, np.zeros(shape, np.int8)]


def test_index_add_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        check("index_add", index_add_inputs(rng, shape, axis, (5,)), {"axis": axis}, symbolic=True)
    inputs = index_add_inputs(rng, (2, 4, 3), 1, (2, 3))  # indices of rank 2
    check("index_add", inputs, {"axis": 1}, symbolic=True)


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_index_add_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    indices = np.array([4, 0, -1, 4, 2, -5, 4], index_dtype(dtype))  # repeats accumulate
    g = normal(rng, (3, 7), dtype)
    check("index_add", [layout(g), indices, np.zeros((3, 5))], {"axis": 1}, symbolic=True)


def test_index_add_static_and_out_of_range(rng: np.random.Generator) -> None:
    g, like = normal(rng, (2, 3), "float32"), np.zeros((2, 4))
    check("index_add", [g, np.array([1, -1, 1], np.int32), like], {"axis": 1})
    for bad in (4, -5):
        check_index_error("index_add", [g, np.array([1, bad, 1], np.int32), like], {"axis": 1})


# take_along_axis and scatter_add


def test_take_along_axis_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        size = shape[axis]
        indices_shape = (*shape[:axis], 3 if size else 0, *shape[axis + 1 :])
        indices = rng.integers(-size, max(size, 1), indices_shape)
        attrs = {"axis": axis, "broadcast": False}
        check("take_along_axis", [sample(rng, shape, "float64"), indices], attrs, symbolic=True)


# (x shape, indices shape, axis), each needing a broadcast of x, of indices or of both
BROADCASTS = [
    ((3, 1, 4), (1, 5, 2), 2),
    ((3, 4, 1), (3, 2, 5), 1),
    ((1, 4, 2), (0, 3, 2), 1),
    ((2, 4, 3), (1, 6, 1), 1),
    ((1, 4), (3, 2), 1),
    ((3, 4), (1, 6), 1),
    ((1, 4), (0, 2), 1),
]


def test_take_along_axis_broadcasts(rng: np.random.Generator) -> None:
    for x_shape, indices_shape, axis in BROADCASTS:
        x = sample(rng, x_shape, "float32")
        indices = rng.integers(-x_shape[axis], x_shape[axis], indices_shape)
        attrs = {"axis": axis, "broadcast": True}
        check("take_along_axis", [strided(x), indices], attrs, symbolic=True)


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_take_along_axis_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    x = sample(rng, (3, 5), dtype)
    indices = rng.integers(-5, 5, (3, 4)).astype(index_dtype(dtype))
    broadcast = dtype == "int32"
    check("take_along_axis", [layout(x), layout(indices)], {"axis": 1, "broadcast": broadcast})


def test_take_along_axis_static_and_out_of_range(rng: np.random.Generator) -> None:
    x = sample(rng, (2, 3), "float64")
    for indices_shape, broadcast in [((2, 2), False), ((1, 2), True)]:
        attrs = {"axis": 1, "broadcast": broadcast}
        check("take_along_axis", [x, rng.integers(-3, 3, indices_shape)], attrs)
        for bad in (3, -4):
            indices = np.full(indices_shape, bad)
            check_index_error("take_along_axis", [x, indices], attrs)
    x = sample(rng, (2, 1, 3), "float64")  # x broadcast, static sizes
    attrs = {"axis": 2, "broadcast": True}
    check("take_along_axis", [x, rng.integers(-3, 3, (2, 4, 2))], attrs)


def scatter_add_inputs(rng, shape, axis, full=True, dtype="float64"):
    size = 3
    like = np.zeros((*shape[:axis], size, *shape[axis + 1 :]), np.int8)
    index_shape = shape if full else tuple(d if a == axis else 1 for a, d in enumerate(shape))
    return [normal(rng, shape, dtype), rng.integers(-size, size, index_shape), like]


def test_scatter_add_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        for full in (True, False):  # indices of size 1 off the axis broadcast to g
            inputs = scatter_add_inputs(rng, shape, axis, full)
            check("scatter_add", inputs, {"axis": axis}, symbolic=True)


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_scatter_add_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    g = normal(rng, (3, 5), dtype)
    indices = np.array([[0, 3, 3, -1, 2], [1, 1, -4, 0, 0], [2, 2, 2, 2, 2]], index_dtype(dtype))
    check("scatter_add", [layout(g), layout(indices), np.zeros((3, 4))], {"axis": 1})


def test_scatter_add_static_and_out_of_range(rng: np.random.Generator) -> None:
    like = np.zeros((2, 3), "float32")
    g = normal(rng, (2, 2), "float32")
    for index_shape in [(2, 2), (1, 2)]:
        check("scatter_add", [g, rng.integers(-3, 3, index_shape), like], {"axis": 1})
        for bad in (3, -4):
            check_index_error("scatter_add", [g, np.full(index_shape, bad), like], {"axis": 1})


# sort, argsort, topk and cumsum: one input, one axis


@pytest.mark.parametrize("op", ["sort", "argsort", "cumsum"])
def test_along_axis_sweep(rng: np.random.Generator, op: str) -> None:
    for shape, axis in sweep():
        check(op, [sample(rng, shape, "float64")], {"axis": axis}, symbolic=True)
    check(op, [sample(rng, (3, 4), "int64")], {"axis": 0})  # static sizes


@pytest.mark.parametrize("op", ["sort", "argsort"])
@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_sort_dtypes(rng: np.random.Generator, op: str, dtype: str, layout: Callable) -> None:
    # lanes long enough for several merge passes, with many ties and NaNs, and short ones
    for length in (70, 37, 1, 16, 17, 0):
        x = sample(rng, (3, length), dtype)
        check(op, [layout(x)], {"axis": 1}, symbolic=True)


def test_sort_special_floats() -> None:
    x = np.array([np.nan, 1.0, -np.inf, np.nan, 0.0, -0.0, np.inf, -1.0, 0.0, np.nan])
    for op in ("sort", "argsort"):
        for dtype in FLOATS:
            check(op, [x.astype(dtype)], {"axis": 0}, symbolic=True)
    outputs, _ = run("argsort", [x], {"axis": 0}, symbolic=True)
    np.testing.assert_array_equal(outputs[0], [2, 7, 4, 5, 8, 1, 6, 0, 3, 9])  # stable


def test_topk_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        if shape[axis]:
            check("topk", [sample(rng, shape, "float64")], {"k": 1, "axis": axis}, symbolic=True)
    x = sample(rng, (2, 0, 3), "float64")
    check("topk", [x], {"k": 0, "axis": 1}, symbolic=True)
    check("topk", [x], {"k": 2, "axis": 2})  # static sizes


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_topk_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    for length in (40, 3, 9):
        x = sample(rng, (3, length), dtype)
        check("topk", [layout(x)], {"k": 3, "axis": 1}, symbolic=True)


def test_topk_ties_nans_and_the_full_sort(rng: np.random.Generator) -> None:
    x = np.array([1.0, np.nan, 3.0, 3.0, -0.0, np.nan, 0.0, 3.0])
    outputs, _ = run("topk", [x], {"k": 6, "axis": 0}, symbolic=True)
    np.testing.assert_array_equal(outputs[1], [1, 5, 2, 3, 7, 0])  # NaN largest, ties in order
    # k above SMALL_K: the whole axis sorted
    check("topk", [np.tile(x, 5)], {"k": 17, "axis": 0}, symbolic=True)
    check("topk", [sample(rng, (2, 50, 2), "int64")], {"k": 40, "axis": 1}, symbolic=True)


def test_topk_k_larger_than_a_symbolic_axis(rng: np.random.Generator) -> None:
    x = sample(rng, (2, 5), "float64")
    function, size_args, _ = emitted("topk", [x], {"k": 3, "axis": 1}, symbolic=True)
    assert size_args == [2, 5]
    values, indices = np.empty((2, 3)), np.empty((2, 3), np.int64)
    with pytest.raises(ValueError, match="larger"):
        function(x[:, :2], values, indices, 2, 2)


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_cumsum_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    for shape in [(3, 50), (0, 4), (4, 0)]:
        x = normal(rng, shape, dtype)
        check("cumsum", [layout(x)], {"axis": 1}, symbolic=True)


# concatenate


def test_concatenate_sweep(rng: np.random.Generator) -> None:
    for shape, axis in sweep():
        pieces = []
        for size in (2, 0, shape[axis]):
            piece_shape = (*shape[:axis], size, *shape[axis + 1 :])
            pieces.append(sample(rng, piece_shape, "float64"))
        check("concatenate", pieces, {"axis": axis}, symbolic=True)
    check("concatenate", [sample(rng, (2, 3), "float64")], {"axis": 0}, symbolic=True)
    check("concatenate", [np.zeros((2, 3)), np.ones((2, 1))], {"axis": 1})  # static sizes


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_concatenate_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    a, b = sample(rng, (2, 3), dtype), sample(rng, (2, 4), dtype)
    check("concatenate", [layout(a), b, layout(a)], {"axis": 1}, symbolic=True)


def test_concatenate_promotes(rng: np.random.Generator) -> None:
    for dtypes in [("float32", "int32"), ("bool", "int64", "float32")]:
        pieces = [sample(rng, (2, k + 1), dtype) for k, dtype in enumerate(dtypes)]
        check("concatenate", pieces, {"axis": 1}, symbolic=True)


# pad and slice_scatter

PAD_VALUES = {"float32": float("nan"), "int32": 1.5, "bool": -1}


def test_pad_sweep(rng: np.random.Generator) -> None:
    for rank, shapes in SWEEP.items():
        pad_width = ((2, 1), (0, 3), (1, 0))[:rank]
        for shape in shapes:
            attrs = {"pad_width": pad_width, "value": float("-inf")}
            check("pad", [sample(rng, shape, "float64")], attrs, symbolic=True)
    attrs = {"pad_width": ((0, 0), (2, 1)), "value": 0}
    check("pad", [sample(rng, (2, 3), "float64")], attrs)  # static sizes


@pytest.mark.parametrize(("dtype", "layout"), DTYPE_LAYOUTS)
def test_pad_dtypes(rng: np.random.Generator, dtype: str, layout: Callable) -> None:
    attrs = {"pad_width": ((1, 2), (0, 3)), "value": PAD_VALUES[dtype]}
    for shape in [(3, 4), (0, 2)]:
        check("pad", [layout(sample(rng, shape, dtype))], attrs, symbolic=True)


# (like shape, starts, stops, steps), each with one dtype and layout of g
SLICES = [
    ((5,), (None,), (None,), (-1,), "float64", strided),
    ((5,), (-2,), (None,), (-2,), "int32", contiguous),
    ((5,), (10,), (-10,), (-3,), "int64", strided),
    ((5,), (3,), (1,), (1,), "bool", contiguous),
    ((), (), (), (), "float32", contiguous),
    ((3, 4), (0, None), (None, 1), (2, -1), "bool", strided),
    ((3, 4), (-1, 1), (0, -1), (-1, 2), "float32", transposed),
    ((2, 3, 4), (None, 1, -3), (None, None, 4), (1, 1, 2), "int64", transposed),
    ((2, 0, 4), (1, None, None), (None, None, None), (1, 1, -1), "float64", strided),
]


@pytest.mark.parametrize("symbolic", [True, False])
def test_slice_scatter(rng: np.random.Generator, symbolic: bool) -> None:
    cases = SLICES if symbolic else SLICES[4:6]
    for shape, starts, stops, steps, dtype, layout in cases:
        like = np.zeros(shape, np.int8)
        index = tuple(slice(*b) for b in zip(starts, stops, steps, strict=True))
        g = sample(rng, like[index].shape, dtype)
        bounds = {"starts": starts, "stops": stops, "steps": steps}
        check("slice_scatter", [layout(g), like], bounds, symbolic=symbolic)


# tile, untile and sum_to: (shape of x or like, reps), each with one dtype and layout
TILES = [
    ((4,), (2, 3), "float64", strided),
    ((2, 3), (1, 1, 2), "int64", strided),
    ((2, 3, 2), (2, 1, 3), "bool", transposed),
    ((2, 0), (2, 3), "float32", contiguous),
    ((), (2, 2), "float64", contiguous),
    ((2, 3), (), "int32", transposed),
]


@pytest.mark.parametrize("symbolic", [True, False])
def test_tile_and_untile(rng: np.random.Generator, symbolic: bool) -> None:
    for shape, reps, dtype, layout in TILES if symbolic else TILES[1:2]:
        x = normal(rng, shape, dtype)
        check("tile", [layout(x)], {"reps": reps}, symbolic=symbolic)
        g = normal(rng, np.tile(x, reps).shape, dtype)
        check("untile", [layout(g), x], {"reps": reps}, symbolic=symbolic, rtol=1e-6)


# (g shape, like shape, dtype, layout): sums over leading axes, size-1 axes of like, both,
# and none
SUMS = [
    ((4, 3), (1, 3), "float64", strided),
    ((4, 3), (4, 1), "int32", contiguous),
    ((4, 3), (), "bool", strided),
    ((2, 3, 4), (3, 1), "int64", transposed),
    ((2, 3, 4), (1, 3, 1), "float32", contiguous),
    ((2, 1, 4), (1, 1, 4), "float64", transposed),
    ((3, 0), (1, 0), "float64", contiguous),
    ((), (), "float64", contiguous),
]


@pytest.mark.parametrize("symbolic", [True, False])
def test_sum_to(rng: np.random.Generator, symbolic: bool) -> None:
    # symbolic: whether like's axis of size 1 is summed is decided at run time
    for g_shape, like_shape, dtype, layout in SUMS if symbolic else SUMS[:4]:
        g = normal(rng, g_shape, dtype)
        like = np.zeros(like_shape, np.int8)
        check("sum_to", [layout(g), like], symbolic=symbolic, rtol=1e-6)


def test_kernels_refuse_operands_that_do_not_fit() -> None:
    """Shapes the type rules guarantee, checked again: a mismatch raises, never reaches
    outside an array."""
    x, indices = np.zeros((2, 5, 3)), np.zeros(4, np.int64)
    calls = [
        lambda: arrays.take(x, indices, np.zeros((2, 3, 3))),
        lambda: arrays.take_along_axis(x, np.zeros((2, 4, 3), np.int64), np.zeros((2, 4, 2))),
        lambda: arrays.scatter_add(x, np.zeros((2, 5, 2), np.int64), np.zeros((2, 4, 3))),
        lambda: arrays.sort(x, np.zeros((2, 5, 2))),
        lambda: arrays.place(x, np.zeros((2, 7, 3)), 3),
        lambda: arrays.broadcast_into(
            np.zeros(4), np.zeros(12), np.array([3, 5]), np.array([0, 1])
        ),
        lambda: arrays.place_strided(
            np.zeros(4),
            np.zeros(20),
            np.array([2, 2]),
            np.array([4, 3]),
            np.array([1, 1]),
            np.array([5, 4]),
        ),
    ]
    for call in calls:
        with pytest.raises(ValueError, match=r"match|fit"):
            call()


@pytest.mark.parametrize("cuts", [(3, 1), (1, 3), (-2, 5), (0, 0, 9)])
@pytest.mark.parametrize("symbolic", [False, True])
def test_split_at_cuts_like_numpy(cuts: tuple[int, ...], symbolic: bool) -> None:
    """numpy.split at cut indices: each piece starts at its own cut (clipped to the axis),
    also when a cut lies below the previous one."""
    import graphc as gc

    x = np.arange(12.0).reshape(2, 6)
    p = gc.placeholder((2, None) if symbolic else (2, 6), "float64", name="x")
    f = gc.function([p], list(gc.split(p, list(cuts), axis=1)), device="cpu")
    for got, want in zip(f(x), np.split(x, list(cuts), axis=1), strict=True):
        np.testing.assert_array_equal(got, want)
