"""Tensor types with symbolic dimensions, and the dimension arithmetic type rules use.

Part of the IR core. A dimension (`Dim`) is an int or a `Sym`. A `Sym` stands for a
size known only at run time; two `Sym`s are equal only when their names are equal,
so a dimension derived from others (the sum of two unknown sizes, say) is a `Sym`
whose name spells out how it is derived: equal names mean equal sizes, always.
At run time the same type rules run again on concrete shapes, which both checks
the sizes the graph requires to agree and binds every `Sym` to a number.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import numpy as np

from graphc.errors import ArgumentTypeError, ShapeError


@dataclass(frozen=True, slots=True)
class Sym:
    """A dimension whose size is known only at run time.

    A product of sizes also records its factors (`coefficient` times the named sizes
    in `factors`) so that reshapes can divide it again; equality is by name alone.
    """

    name: str
    factors: tuple[str, ...] = field(default=(), compare=False)
    coefficient: int = field(default=1, compare=False)

    def __str__(self) -> str:
        return self.name


Dim = int | Sym
Shape = tuple[Dim, ...]


def is_known(dim: Dim) -> bool:
    return isinstance(dim, int)


def is_static(shape: Shape) -> bool:
    return all(isinstance(d, int) for d in shape)


def format_shape(shape: Iterable[Dim]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


@dataclass(frozen=True, slots=True)
class TensorType:
    """A tensor's dtype and shape; dims are ints or `Sym`s."""

    dtype: np.dtype
    shape: Shape

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def is_static(self) -> bool:
        return is_static(self.shape)

    def with_shape(self, shape: Iterable[Dim]) -> TensorType:
        return TensorType(self.dtype, tuple(shape))

    def with_dtype(self, dtype: np.dtype) -> TensorType:
        return TensorType(dtype, self.shape)

    def __str__(self) -> str:
        return f"{self.dtype.name}{format_shape(self.shape)}"


def type_of_array(array: np.ndarray) -> TensorType:
    """The (static) type of a concrete numpy array."""
    return TensorType(array.dtype, tuple(int(d) for d in array.shape))


def derived(kind: str, *args: object) -> Sym:
    """A `Sym` for a size computed by `kind` from `args`; equal inputs give an equal Sym."""
    return Sym(f"{kind}({','.join(str(a) for a in args)})")


def computed_dim(kind: str, compute: Callable[..., int], *args: Dim | int | None) -> Dim:
    """`compute(*args)` when every argument is known, else a derived `Sym`."""
    if any(isinstance(a, Sym) for a in args):
        return derived(kind, *args)
    return compute(*args)


def broadcast_dim(a: Dim, b: Dim) -> Dim:
    """The numpy broadcast of two dims; raises ShapeError for two different known sizes.

    An unknown dim against a known n != 1 gives n (the run-time check then requires
    the unknown one to be 1 or n); two different unknown dims give a derived Sym.
    """
    if a == b:
        return a
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        raise ShapeError(f"cannot broadcast sizes {a} and {b}")
    if isinstance(a, int):
        return a
    if isinstance(b, int):
        return b
    first, second = sorted((a.name, b.name))
    return derived("broadcast", first, second)


def broadcast_shapes(*shapes: Shape) -> Shape:
    """numpy's broadcasting of several shapes (right-aligned)."""
    ndim = max((len(s) for s in shapes), default=0)
    result: list[Dim] = [1] * ndim
    for shape in shapes:
        offset = ndim - len(shape)
        for axis, dim in enumerate(shape):
            result[offset + axis] = broadcast_dim(result[offset + axis], dim)
    return tuple(result)


def unify_dims(a: Dim, b: Dim, what: str) -> Dim:
    """Two dims the op requires to be equal: raise if known to differ, else the better known."""
    if isinstance(a, int) and isinstance(b, int) and a != b:
        raise ShapeError(f"{what}: sizes {a} and {b} differ")
    return a if isinstance(a, int) else b


def dim_sum(dims: Iterable[Dim]) -> Dim:
    """The sum of dims (concatenation), canonical so that equal sums compare equal."""
    known = 0
    unknown: list[str] = []
    for dim in dims:
        if isinstance(dim, int):
            known += dim
        else:
            unknown.append(dim.name)
    if not unknown:
        return known
    if known == 0 and len(unknown) == 1:
        return Sym(unknown[0])
    return derived("add", *sorted(unknown), *([known] if known else []))


def product_factors(dims: Iterable[Dim]) -> tuple[int, list[str]]:
    """(the known coefficient, the names of the unknown factors) of a product of dims."""
    known = 1
    unknown: list[str] = []
    for dim in dims:
        if isinstance(dim, int):
            known *= dim
        elif dim.factors:
            known *= dim.coefficient
            unknown.extend(dim.factors)
        else:
            unknown.append(dim.name)
    return known, unknown


def dim_product(dims: Iterable[Dim]) -> Dim:
    """The product of dims (a number of elements), canonical like `dim_sum`."""
    known, unknown = product_factors(dims)
    if known == 0 or not unknown:
        return known
    if known == 1 and len(unknown) == 1:
        return Sym(unknown[0])
    factors = tuple(sorted(unknown))
    name = derived("mul", *factors, *([known] if known != 1 else [])).name
    return Sym(name, factors, known)


def normalize_axis(axis: int, ndim: int) -> int:
    """A possibly negative axis as a non-negative one; ShapeError when out of range."""
    if not isinstance(axis, int | np.integer) or isinstance(axis, bool):
        raise ArgumentTypeError(f"axis must be an int, got {axis!r:.60}")
    if not -ndim <= axis < ndim:
        raise ShapeError(f"axis {axis} is out of range for rank {ndim}")
    return int(axis) % ndim if ndim else 0


def normalize_axes(axes: int | Iterable[int] | None, ndim: int) -> tuple[int, ...]:
    """Axes as a sorted tuple of distinct non-negative ints; None means every axis."""
    if axes is None:
        return tuple(range(ndim))
    if isinstance(axes, int | np.integer) and not isinstance(axes, bool):
        return (normalize_axis(int(axes), ndim),)
    if not isinstance(axes, tuple | list):
        raise ArgumentTypeError(f"axis must be None, an int or a tuple of ints, got {axes!r:.60}")
    normalized = [normalize_axis(a, ndim) for a in axes]  # type: ignore[union-attr]
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"repeated axis in {tuple(axes)}")  # type: ignore[arg-type]
    return tuple(sorted(normalized))


def num_elements(shape: Shape) -> Dim:
    return dim_product(shape)


def static_size(shape: tuple[int, ...]) -> int:
    return math.prod(shape)
