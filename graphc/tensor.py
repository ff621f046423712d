"""The symbolic front end's values: `Tensor`, `Variable`, `placeholder` and `constant`.

Part of the IR core. Every Tensor is a value of the process-wide default graph
builder, as in TensorFlow 1.x: building an expression adds nodes to it, and
`graphc.function` later extracts the part that its outputs need. Operators
delegate to the op functions of `graphc.api`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import DTypeError, GraphcError, ShapeError
from graphc.ir import GraphBuilder, Node, Value, located
from graphc.registry import front_end
from graphc.types import Sym, TensorType

DEFAULT_BUILDER = GraphBuilder()
_names = itertools.count()
_VARIABLES: dict[int, Variable] = {}  # variable node id -> its state; the graph holds only ids


class Tensor:
    """A symbolic value: one output of a node of the default graph."""

    __slots__ = ("ref",)
    __array_ufunc__ = None  # numpy defers to our reflected operators: np_array + tensor works

    def __init__(self, ref: Value) -> None:
        self.ref = ref  # the IR value this Tensor stands for

    @property
    def node(self) -> Node:
        return DEFAULT_BUILDER.node(self.ref)

    @property
    def type(self) -> TensorType:
        return DEFAULT_BUILDER.type_of(self.ref)

    @property
    def shape(self) -> tuple[int | None, ...]:
        """The shape, with None for sizes known only at run time."""
        return tuple(None if isinstance(d, Sym) else d for d in self.type.shape)

    @property
    def dtype(self) -> np.dtype:
        return self.type.dtype

    @property
    def ndim(self) -> int:
        return self.type.ndim

    @property
    def name(self) -> str | None:
        return self.node.name

    @property
    def op(self) -> str:
        return self.node.op

    def __repr__(self) -> str:
        label = f" {self.name!r}" if self.name else ""
        return f"<graphc.Tensor{label} {self.op} {self.type}>"

    def __bool__(self) -> bool:
        raise GraphcError(
            "a symbolic Tensor has no truth value until the graph runs; "
            "use graphc.where or compute it in a function"
        )

    def __len__(self) -> int:
        if not self.ndim or self.shape[0] is None:
            raise GraphcError(f"len() needs a known first dimension, {self!r} has none")
        return self.shape[0]  # type: ignore[return-value]

    def __iter__(self) -> Iterator[Tensor]:
        for index in range(len(self)):
            yield self[index]

    # identity semantics: use graphc.equal / graphc.not_equal for elementwise comparison
    __hash__ = object.__hash__

    def __eq__(self, other: object) -> bool:
        return self is other

    def __ne__(self, other: object) -> bool:
        return self is not other

    def __add__(self, other: Any) -> Tensor:
        return front_end().add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return front_end().add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return front_end().subtract(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return front_end().subtract(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return front_end().multiply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return front_end().multiply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return front_end().divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return front_end().divide(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return front_end().floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return front_end().floor_divide(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return front_end().mod(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return front_end().mod(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return front_end().power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return front_end().power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return front_end().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return front_end().matmul(other, self)

    def __neg__(self) -> Tensor:
        return front_end().negative(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return front_end().abs(self)

    def __lt__(self, other: Any) -> Tensor:
        return front_end().less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return front_end().less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return front_end().greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return front_end().greater_equal(self, other)

    def __getitem__(self, index: Any) -> Tensor:
        return front_end().getitem(self, index)

    def abs(self) -> Tensor:
        return front_end().abs(self)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], Sequence):
            shape = tuple(shape[0])
        return front_end().reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], Sequence)):
            axes = axes[0]
        return front_end().transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return front_end().transpose(self)

    def astype(self, dtype: Any) -> Tensor:
        return front_end().cast(self, dtype)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return front_end().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return front_end().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return front_end().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return front_end().min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return front_end().prod(self, axis=axis, keepdims=keepdims)


def build(
    op: str,
    inputs: Sequence[Tensor],
    attrs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> tuple[Tensor, ...]:
    """Add a node to the default graph and wrap its outputs as Tensors."""
    values = DEFAULT_BUILDER.add(op, [t.ref for t in inputs], attrs, name=name)
    return tuple(Tensor(v) for v in values)


def build1(
    op: str,
    inputs: Sequence[Tensor],
    attrs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> Tensor:
    """`build` for an op with one output."""
    (tensor,) = build(op, inputs, attrs, name=name)
    return tensor


def _checked_name(name: str | None, kind: str) -> str:
    if name is None:
        return f"{kind}_{next(_names)}"
    if not isinstance(name, str) or not name:
        raise located(kind, GraphcError, f"a name must be a non-empty str, got {name!r}")
    return name


def _dtype_at(op: str, dtype: Any) -> np.dtype:
    """`dtypes.as_dtype`, with an error naming `op` and the user's line."""
    try:
        return dtypes.as_dtype(dtype)
    except DTypeError as error:
        raise located(op, DTypeError, str(error)) from None


def placeholder(
    shape: Sequence[int | str | None], dtype: Any = "float32", name: str | None = None
) -> Tensor:
    """A graph input, fed at each call.

    Parameters
    ----------
    shape : sequence of int, None or str
        Sizes; None is a size known only at run time. A str names a size known only
        at run time that several placeholders share (every "batch" dim is equal).
    dtype : dtype name or numpy dtype
    name : str, optional
        The input's name (generated when missing); a function's inputs need unique names.
    """
    resolved = _dtype_at("placeholder", dtype)
    name = _checked_name(name, "placeholder")
    if isinstance(shape, int | str) or not isinstance(shape, Sequence):
        raise located(
            "placeholder", ShapeError, f"{name!r}: shape must be a sequence, got {shape!r}"
        )
    dims: list[int | str] = []
    for axis, dim in enumerate(shape):
        if dim is None:
            dims.append(f"{name}.{axis}")
        elif isinstance(dim, str) and dim:
            dims.append(dim)
        elif isinstance(dim, int | np.integer) and not isinstance(dim, bool) and dim >= 0:
            dims.append(int(dim))
        else:
            raise located(
                "placeholder",
                ShapeError,
                f"{name!r}: size {dim!r} on axis {axis} is not an int >= 0, None or a name",
            )
    return build1(
        "placeholder", [], {"name": name, "dtype": resolved.name, "shape": tuple(dims)}, name=name
    )


def _array_of(value: Any, dtype: Any = None) -> np.ndarray:
    """`numpy.asarray(value, dtype)`, restricted to the supported dtypes."""
    if isinstance(value, Tensor):
        raise located("constant", GraphcError, f"{value!r} is symbolic, not a concrete value")
    try:
        array = np.asarray(value, dtype=None if dtype is None else _dtype_at("constant", dtype))
    except (OverflowError, ValueError, TypeError) as error:
        raise located(
            "constant", DTypeError, f"cannot make an array of {value!r}: {error}"
        ) from None
    _dtype_at("constant", array.dtype)
    return array


def constant(value: Any, dtype: Any = None, name: str | None = None) -> Tensor:
    """A value baked into the graph; dtype as `numpy.asarray(value)` gives it unless stated."""
    return build1("constant", [], {"value": _array_of(value, dtype)}, name=name)


def as_tensor(value: Any, like: np.dtype | None = None) -> Tensor:
    """`value` as a Tensor: Tensors pass through, other values become constants.

    A Python scalar is weak (NEP 50): next to a tensor of dtype `like` it takes that
    dtype when its kind fits (`float32 * 0.5` stays float32).
    """
    if isinstance(value, Tensor):
        return value
    if isinstance(value, bool | int | float) and like is not None:
        dtype = dtypes.weak_scalar_dtype(value, like)
        return constant(_array_of(value, dtype))
    return constant(value)


def is_weak_scalar(value: Any) -> bool:
    return isinstance(value, bool | int | float)


def as_tensors(*values: Any) -> tuple[Tensor, ...]:
    """Operands of one op as Tensors, Python scalars resolved against the others (NEP 50)."""
    strong = [as_tensor(v) if not is_weak_scalar(v) else None for v in values]
    strong_dtypes = [t.dtype for t in strong if t is not None]
    like = dtypes.promote(*strong_dtypes) if strong_dtypes else None
    if like is None:
        # only Python scalars: numpy's defaults (bool, int64, float64), promoted together
        like = dtypes.promote(*(np.asarray(v).dtype for v in values))
    return tuple(
        t if t is not None else as_tensor(v, like) for t, v in zip(strong, values, strict=True)
    )


class Variable(Tensor):
    """State that lives across calls (weights), usable wherever a Tensor is.

    Every function that uses a Variable reads and updates the same state.
    """

    __slots__ = ("_array", "_device", "_lock", "trainable")

    def __init__(self, initial_value: Any, name: str | None = None, trainable: bool = True) -> None:
        array = np.array(_array_of(initial_value), copy=True)
        name = _checked_name(name, "variable")
        attrs = {"name": name, "dtype": array.dtype.name, "shape": tuple(array.shape)}
        super().__init__(DEFAULT_BUILDER.add1("variable", [], attrs, name=name))
        self._array: np.ndarray | None = array
        self._device: Any = None  # a copy in GPU memory (see device_state)
        self._lock = threading.Lock()
        self.trainable = bool(trainable)
        _VARIABLES[self.ref.node] = self

    @property
    def value(self) -> np.ndarray:
        """A copy of the current value."""
        return self.get_state().copy()

    def assign(self, value: Any) -> None:
        """Set the value: an array of the variable's shape and dtype (lists are converted)."""
        declared = self.type
        array = np.asarray(value) if hasattr(value, "dtype") else _array_of(value, declared.dtype)
        if array.dtype != declared.dtype:
            raise DTypeError(
                f"variable {self.name!r} is {declared}; cannot assign "
                f"{array.dtype.name} (cast it first)"
            )
        if array.shape != declared.shape:
            raise ShapeError(
                f"variable {self.name!r} is {declared}; cannot assign shape {list(array.shape)}"
            )
        self.set_state(np.array(array, copy=True))

    # The state lives in host memory, in GPU memory, or in both (then they are equal):
    # a device executor keeps it on the GPU across calls, and it is copied back only
    # when something reads it on the host.

    def get_state(self) -> np.ndarray:
        """The current host array itself, not a copy (for executors, which never write to
        it except through `wrote_host_state`); copied from the GPU when it lives there."""
        array = self._array
        if array is None:
            with self._lock:
                if self._array is None:
                    self._array = self._device.copy_to_host()
                array = self._array
        return array  # type: ignore[return-value]

    def set_state(self, array: np.ndarray) -> None:
        """Replace the current array (for executors; the caller owns no other reference)."""
        with self._lock:
            self._array = array
            self._device = None

    def wrote_host_state(self) -> None:
        """An executor wrote the host array in place: a GPU copy is stale."""
        self._device = None

    def device_state(self, upload: Any) -> Any:
        """The state in GPU memory, uploaded with `upload(host_array)` when it has no GPU
        copy (for the CUDA runtime; after writing it, it calls set_device_state)."""
        device = self._device
        if device is None:
            with self._lock:
                if self._device is None:
                    self._device = upload(self._array)
                device = self._device
        return device

    def set_device_state(self, device_array: Any) -> None:
        """Replace the current value by an array in GPU memory (for the CUDA runtime)."""
        with self._lock:
            self._device = device_array
            self._array = None

    def __repr__(self) -> str:
        return f"<graphc.Variable {self.name!r} {self.type}>"


def variable_of(node_id: int) -> Variable:
    """The Variable object behind a variable node of the default graph."""
    return _VARIABLES[node_id]
