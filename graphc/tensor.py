"""The symbolic front end's values: `Tensor`, `Variable`, `placeholder` and `constant`.

Part of the IR core. Every Tensor is a value of the process-wide default graph, as in
TensorFlow 1.x: building an expression adds nodes to it, and `graphc.function` later
extracts the part that its outputs need. Operators delegate to the op functions of
`graphc.api`, which builds on this module and so is imported when first used.

The default graph forgets what nobody can reach. Each node has an anchor, which holds
the node, its inputs' anchors and, for a variable, the variable's state; Tensors hold
anchors and the graph holds them only weakly. A node, and with it a constant's array or
a variable's value, lives exactly as long as some Tensor (or Function) needs it: a
notebook that builds models again and again does not grow.
"""

from __future__ import annotations

import itertools
import weakref
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from graphc import dtypes
from graphc.errors import ArgumentError, ArgumentTypeError, DTypeError, InternalError, ShapeError
from graphc.ir import Graph, GraphBuilder, Node, Value, located
from graphc.state import VariableState
from graphc.types import Sym, TensorType

_names = itertools.count()


class _Anchor:
    """Keeps one node of a default graph alive: the node, its inputs' anchors and, for a
    variable node, the variable's state. It also names the graph the node belongs to."""

    __slots__ = ("__weakref__", "builder", "inputs", "node", "state")

    def __init__(
        self,
        node: Node,
        inputs: tuple[_Anchor, ...],
        state: VariableState | None,
        builder: DefaultGraph,
    ) -> None:
        self.node = node
        self.inputs = inputs
        self.state = state
        self.builder = builder


class DefaultGraph(GraphBuilder):
    """The default graph: a GraphBuilder whose nodes live while a Tensor needs them.

    Its nodes are made only through `tensors`, which returns Tensors that hold them;
    `add` (which would return bare values nothing holds) is refused.
    """

    def __init__(self) -> None:
        super().__init__()
        self._anchors: weakref.WeakValueDictionary[int, _Anchor] = weakref.WeakValueDictionary()

    def __len__(self) -> int:
        """How many nodes are alive (for tests of memory)."""
        return len(self._anchors)

    def node(self, value: Value | int) -> Node:
        return self._anchors[value if isinstance(value, int) else value.node].node

    def type_of(self, value: Value) -> TensorType:
        return self._anchors[value.node].node.types[value.index]

    def add(self, *args: Any, **kwargs: Any) -> tuple[Value, ...]:
        raise InternalError("the default graph makes nodes through tensors(), not add()")

    def tensors(
        self,
        op: str,
        inputs: Sequence[Tensor],
        attrs: dict[str, Any] | None = None,
        *,
        name: str | None = None,
        origin: str | None = None,
        state: VariableState | None = None,
    ) -> tuple[Tensor, ...]:
        """Add a node of `op` and return its outputs as Tensors."""
        for t in inputs:
            if t.builder is not self:
                # its node id would name a different node here
                raise located(op, ArgumentError, f"{t!r} belongs to another graph")
        node = self.make(op, [t.ref for t in inputs], attrs, name=name, origin=origin)
        anchor = _Anchor(node, tuple(t.anchor for t in inputs), state, self)
        self._anchors[node.id] = anchor
        return tuple(Tensor(v, anchor) for v in node.outputs)

    def tensor(self, value: Value) -> Tensor:
        """A Tensor for a value of a live node."""
        return Tensor(value, self._anchors[value.node])

    def state_of(self, node_id: int) -> VariableState:
        """The state of a live variable node."""
        state = self._anchors[node_id].state
        if state is None:
            raise InternalError(f"node %{node_id} is not a variable")
        return state

    def extract(
        self,
        inputs: Sequence[Tensor],
        outputs: Sequence[Tensor],
        updates: Sequence[tuple[Tensor, Tensor]] = (),
    ) -> tuple[Graph, dict[int, VariableState]]:
        """The graph of every node that inputs, outputs and updates need, and the state
        of each of its variable nodes."""
        graph = self.build(
            [t.ref for t in inputs],
            [t.ref for t in outputs],
            [(variable.ref.node, new.ref) for variable, new in updates],
        )
        states = {n.id: self.state_of(n.id) for n in graph.nodes if n.op == "variable"}
        return graph, states


DEFAULT_BUILDER = DefaultGraph()


def _front_end() -> Any:
    """The `graphc.api` module, for Tensor's operators and methods. It imports this
    module, so it is imported when an operator is first used, not above."""
    import graphc.api

    return graphc.api


class Tensor:
    """A symbolic value: one output of a node of the default graph."""

    __slots__ = ("anchor", "ref")
    __array_ufunc__ = None  # numpy defers to our reflected operators: np_array + tensor works

    def __init__(self, ref: Value, anchor: _Anchor) -> None:
        self.ref = ref  # the IR value this Tensor stands for
        self.anchor = anchor  # keeps its node (and everything it depends on) alive

    @property
    def node(self) -> Node:
        return self.anchor.node

    @property
    def builder(self) -> DefaultGraph:
        """The graph this Tensor is a value of (DEFAULT_BUILDER, unless another DefaultGraph
        made it)."""
        return self.anchor.builder

    @property
    def type(self) -> TensorType:
        return self.anchor.node.types[self.ref.index]

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
        raise ArgumentTypeError(
            "a symbolic Tensor has no truth value until the graph runs; "
            "use graphc.where or compute it in a function"
        )

    def __len__(self) -> int:
        if not self.ndim or self.shape[0] is None:
            raise ArgumentTypeError(f"len() needs a known first dimension, {self!r} has none")
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
        return _front_end().add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return _front_end().add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return _front_end().subtract(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return _front_end().subtract(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return _front_end().multiply(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return _front_end().multiply(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return _front_end().divide(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return _front_end().divide(other, self)

    def __floordiv__(self, other: Any) -> Tensor:
        return _front_end().floor_divide(self, other)

    def __rfloordiv__(self, other: Any) -> Tensor:
        return _front_end().floor_divide(other, self)

    def __mod__(self, other: Any) -> Tensor:
        return _front_end().mod(self, other)

    def __rmod__(self, other: Any) -> Tensor:
        return _front_end().mod(other, self)

    def __pow__(self, other: Any) -> Tensor:
        return _front_end().power(self, other)

    def __rpow__(self, other: Any) -> Tensor:
        return _front_end().power(other, self)

    def __matmul__(self, other: Any) -> Tensor:
        return _front_end().matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return _front_end().matmul(other, self)

    def __neg__(self) -> Tensor:
        return _front_end().negative(self)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return _front_end().abs(self)

    def __lt__(self, other: Any) -> Tensor:
        return _front_end().less(self, other)

    def __le__(self, other: Any) -> Tensor:
        return _front_end().less_equal(self, other)

    def __gt__(self, other: Any) -> Tensor:
        return _front_end().greater(self, other)

    def __ge__(self, other: Any) -> Tensor:
        return _front_end().greater_equal(self, other)

    def __getitem__(self, index: Any) -> Tensor:
        return _front_end().getitem(self, index)

    def abs(self) -> Tensor:
        return _front_end().abs(self)

    def reshape(self, *shape: Any) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], Sequence):
            shape = tuple(shape[0])
        return _front_end().reshape(self, shape)

    def transpose(self, *axes: Any) -> Tensor:
        if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], Sequence)):
            axes = axes[0]
        return _front_end().transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        return _front_end().transpose(self)

    def astype(self, dtype: Any) -> Tensor:
        return _front_end().cast(self, dtype)

    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _front_end().sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _front_end().mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _front_end().max(self, axis=axis, keepdims=keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _front_end().min(self, axis=axis, keepdims=keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        return _front_end().prod(self, axis=axis, keepdims=keepdims)


def build(
    op: str,
    inputs: Sequence[Tensor],
    attrs: dict[str, Any] | None = None,
    *,
    name: str | None = None,
) -> tuple[Tensor, ...]:
    """Add a node to the default graph and wrap its outputs as Tensors."""
    return DEFAULT_BUILDER.tensors(op, inputs, attrs, name=name)


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
    if not isinstance(name, str):
        raise located(kind, ArgumentTypeError, f"a name must be a non-empty str, got {name!r}")
    if not name:
        raise located(kind, ArgumentError, "a name must be a non-empty str, got ''")
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
        raise located("constant", ArgumentTypeError, f"{value!r} is symbolic, not a concrete value")
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

    Every function that uses a Variable reads and updates the same state, which is
    freed once neither the Variable, nor a Tensor computed from it, nor a Function
    using it is left.
    """

    __slots__ = ("state",)

    def __init__(self, initial_value: Any, name: str | None = None, trainable: bool = True) -> None:
        # C order: compiled code reads states as C-contiguous arrays
        array = np.array(_array_of(initial_value), copy=True, order="C")
        name = _checked_name(name, "variable")
        attrs = {"name": name, "dtype": array.dtype.name, "shape": tuple(array.shape)}
        state = VariableState(array, name, trainable)
        (tensor,) = DEFAULT_BUILDER.tensors("variable", [], attrs, name=name, state=state)
        super().__init__(tensor.ref, tensor.anchor)
        self.state = state

    @property
    def trainable(self) -> bool:
        return self.state.trainable

    @trainable.setter
    def trainable(self, value: bool) -> None:
        self.state.trainable = bool(value)

    @property
    def value(self) -> np.ndarray:
        """A copy of the current value (never half of an update in progress)."""
        with self.state.update_lock:
            return self.state.get_state().copy()

    def assign(self, value: Any) -> None:
        """Set the value: an array of the variable's shape and dtype (lists are converted).
        Waits for any call updating this variable to finish."""
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
        with self.state.update_lock:
            self.state.set_state(np.array(array, copy=True, order="C"))

    def get_state(self) -> np.ndarray:
        """The current host array itself, not a copy (see VariableState.get_state)."""
        return self.state.get_state()

    def __repr__(self) -> str:
        return f"<graphc.Variable {self.name!r} {self.type}>"
