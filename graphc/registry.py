"""The op registry: one `OpDef` per op, holding only backend-neutral knowledge.

Part of the IR core. Each op is registered once, in `graphc/ops/<family>.py`, with
its type rule (`infer`), numpy reference, gradient rule (or NOT_DIFFERENTIABLE),
scalar formula for elementwise ops, attribute schema and traits. Backends register
their emitters by op name in their own folders; nothing backend-specific lives here.

Traits used by passes and tests:
  pure         no side effects: may be folded, merged (CSE) and dropped (DCE)
  elementwise  output[i] depends only on input[i] after broadcasting: fusable
  commutative  operands may be reordered
  reduction    reduces over `axes`
  source       a graph input: placeholder, constant or variable
  stateful     reads or writes state: never merged or dropped
  multiple_outputs  may have several results (split, topk): gradient rules get tuples

Gradient rules build their results with the front end, which imports this module to
build nodes. So rules do not import the front end: they receive it, as the `api`
argument that `OpDef.vjp` passes them (graphc.autodiff makes it). Neither this module
nor graphc/ops imports graphc.api, graphc.tensor, graphc.autodiff or graphc.function;
tests/test_layering.py checks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from graphc.errors import (
    ArgumentError,
    ArgumentTypeError,
    DTypeError,
    InternalError,
    UnsupportedError,
)


class ConstArray:
    """An immutable numpy array usable as an attribute: hashable, compared bit for bit."""

    __slots__ = ("_hash", "array")

    def __init__(self, array: np.ndarray) -> None:
        array = np.array(array, copy=True, order="C")
        array.flags.writeable = False
        self.array = array
        digest = hashlib.blake2b(array.tobytes(), digest_size=8).digest()
        self._hash = hash((array.dtype.str, array.shape, digest))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ConstArray):
            return NotImplemented
        a, b = self.array, other.array
        # bitwise: NaN equals NaN and -0.0 differs from 0.0, as CSE and folding need
        return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()

    def __repr__(self) -> str:
        if self.array.size <= 8:
            return np.array2string(self.array, separator=",").replace("\n", "")
        return f"<array {self.array.dtype.name}{list(self.array.shape)}>"


def _freeze(value: Any) -> Any:
    """Normalize an attribute value: lists become tuples, numpy scalars become Python ones."""
    if isinstance(value, list | tuple):
        return tuple(_freeze(v) for v in value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.dtype):
        return value.name
    if isinstance(value, np.ndarray):
        return ConstArray(value)
    return value


class Attrs(Mapping[str, Any]):
    """An immutable, hashable mapping of attribute names to plain values."""

    __slots__ = ("_hash", "_items")

    def __init__(self, items: Mapping[str, Any] | None = None) -> None:
        frozen = {k: _freeze(v) for k, v in (items or {}).items()}
        self._items = dict(sorted(frozen.items()))
        self._hash = hash(tuple(self._items.items()))

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Attrs):
            return self._items == other._items
        if isinstance(other, Mapping):
            return self._items == dict(other)
        return NotImplemented

    def __repr__(self) -> str:
        return "{" + ", ".join(f"{k}={v!r}" for k, v in self._items.items()) + "}"


REQUIRED = object()


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


_ATTR_KINDS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "float": _is_number,
    "scalar": lambda v: isinstance(v, bool | int | float),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "dtype": lambda v: v in ("float32", "float64", "int32", "int64", "bool"),
    "ints": lambda v: isinstance(v, tuple) and all(_is_int(x) for x in v),
    "axes": lambda v: v is None or (isinstance(v, tuple) and all(_is_int(x) for x in v)),
    "int_or_none": lambda v: v is None or _is_int(v),
    "int_pairs": lambda v: (
        isinstance(v, tuple)
        and all(isinstance(p, tuple) and len(p) == 2 and all(_is_int(x) for x in p) for p in v)
    ),
    "slice_bounds": lambda v: isinstance(v, tuple) and all(x is None or _is_int(x) for x in v),
    "shape": lambda v: isinstance(v, tuple) and all(_is_int(x) or isinstance(x, str) for x in v),
    "array": lambda v: isinstance(v, ConstArray),
    "body": lambda v: (
        isinstance(v, tuple)
        and all(
            isinstance(step, tuple)
            and len(step) == 3
            and isinstance(step[0], str)
            and isinstance(step[1], tuple)
            and all(_is_int(a) for a in step[1])
            and isinstance(step[2], Attrs)
            for step in v
        )
    ),
}


def attr_kind(name: str, accepts: Callable[[Any], bool]) -> None:
    """Add an attribute kind whose values `accepts` recognizes (an op family that needs
    a kind of value this module cannot name, such as a sub-graph, registers it)."""
    if name in _ATTR_KINDS:
        raise ArgumentError(f"attribute kind {name!r} is registered twice")
    _ATTR_KINDS[name] = accepts


@dataclass(frozen=True, slots=True)
class AttrSpec:
    """One attribute of an op: its kind (a key of the kinds table) and default."""

    kind: str
    default: Any = REQUIRED

    def accepts(self, value: Any) -> bool:
        return _ATTR_KINDS[self.kind](value)


class _NotDifferentiable:
    def __repr__(self) -> str:
        return "NOT_DIFFERENTIABLE"


NOT_DIFFERENTIABLE = _NotDifferentiable()

InferFn = Callable[..., Any]
RefFn = Callable[..., Any]
GradFn = Callable[..., Any]


@dataclass(frozen=True, slots=True)
class OpDef:
    """Everything backend-neutral about one op.

    infer(*input_types, **attrs) -> TensorType or tuple of them; raises ShapeError/DTypeError
    reference(*arrays, **attrs) -> ndarray or tuple, exactly of the inferred types
    grad(api, g, out, *inputs, **attrs) -> one symbolic gradient (or None: no gradient)
        per input, or NOT_DIFFERENTIABLE; g is the cotangent of out, both tuples for
        multiple_outputs ops. `api` is what the rule builds with: the op functions of
        graphc.api (api.where, api.matmul, ...) and api.build / api.build1 for the ops
        that have none (graphc.autodiff.RuleAPI). Tensor operators (g * y) work as well.
    """

    name: str
    infer: InferFn
    reference: RefFn
    arity: int | None  # None: variadic
    attrs: Mapping[str, AttrSpec] = field(default_factory=dict)
    traits: frozenset[str] = frozenset({"pure"})
    grad: GradFn | _NotDifferentiable | None = None
    scalar: str | None = None
    doc: str = ""

    def check_attrs(self, attrs: Mapping[str, Any]) -> Attrs:
        """Validate `attrs` against the schema, fill defaults, and freeze them."""
        try:
            frozen = Attrs(attrs)
        except TypeError:  # a value that cannot be an attribute (unhashable)
            kinds = {k: type(v).__name__ for k, v in attrs.items()}
            raise ArgumentTypeError(f"attribute values of kinds {kinds} are not allowed") from None
        unknown = set(frozen) - set(self.attrs)
        if unknown:
            raise ArgumentError(f"unknown attribute(s) {sorted(unknown)}")
        complete: dict[str, Any] = {}
        for key, spec in self.attrs.items():
            if key in frozen:
                value = frozen[key]
            elif spec.default is REQUIRED:
                raise ArgumentError(f"missing attribute {key!r}")
            else:
                value = _freeze(spec.default)
            if not spec.accepts(value):
                error_type = DTypeError if spec.kind == "dtype" else ArgumentError
                raise error_type(f"attribute {key}={value!r} is not a {spec.kind}")
            complete[key] = value
        return Attrs(complete)

    def vjp(
        self,
        api: Any,
        attrs: Mapping[str, Any],
        inputs: Sequence[Any],
        outputs: Sequence[Any],
        cotangents: Sequence[Any],
    ) -> list[Any]:
        """The gradient rule applied to one node: a gradient (or None) per input.

        `cotangents` holds one per output (zeros where none flows); the rule gets them and
        the outputs as tuples for a multiple_outputs op, alone otherwise."""
        if self.grad is None:
            raise UnsupportedError(f"{self.name} has no gradient rule yet")
        if isinstance(self.grad, _NotDifferentiable):
            return [None] * len(inputs)
        if "multiple_outputs" in self.traits:
            g, out = tuple(cotangents), tuple(outputs)
        else:
            (g,), (out,) = cotangents, outputs
        gradients = list(self.grad(api, g, out, *inputs, **attrs))
        if len(gradients) != len(inputs):
            raise InternalError(
                f"the gradient rule of {self.name} gave {len(gradients)} gradients "
                f"for {len(inputs)} inputs"
            )
        return gradients


REGISTRY: dict[str, OpDef] = {}


def register(opdef: OpDef) -> OpDef:
    """Add `opdef` to the registry; an op name may be registered once."""
    if opdef.name in REGISTRY:
        raise ArgumentError(f"op {opdef.name!r} is registered twice")
    unknown = [k for k, spec in opdef.attrs.items() if spec.kind not in _ATTR_KINDS]
    if unknown:
        raise ArgumentError(f"op {opdef.name!r}: attributes of unknown kind {unknown}")
    REGISTRY[opdef.name] = opdef
    return opdef


def lookup(name: str) -> OpDef:
    """The OpDef registered as `name`."""
    try:
        return REGISTRY[name]
    except KeyError:
        raise ArgumentError(f"unknown op {name!r}") from None
