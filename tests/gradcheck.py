"""Gradient checking against central finite differences, in float64.

`check_gradients(build, arrays, rng)` compares graphc.grad's vector-Jacobian product
with a finite difference of the same graph along one random input direction, under
a random projection of the outputs (JAX's numerical_jvp habit): one scalar identity
checks every input and output at once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

import graphc as gc


def as_tuple(result: Any) -> tuple[Any, ...]:
    return tuple(result) if isinstance(result, tuple | list) else (result,)


def projected(
    build: Callable[..., Any], placeholders: Sequence[gc.Tensor], projections: Sequence[np.ndarray]
) -> gc.Tensor:
    """sum_i <output_i, u_i> over the float outputs of build(*placeholders), as a 0-d tensor."""
    outputs = [o for o in as_tuple(build(*placeholders)) if o.dtype.kind == "f"]
    terms = [gc.sum(o * gc.constant(u, o.dtype)) for o, u in zip(outputs, projections, strict=True)]
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def output_shapes(build: Callable[..., Any], arrays: Sequence[np.ndarray]) -> list[tuple]:
    placeholders = [gc.placeholder(a.shape, a.dtype) for a in arrays]
    outputs = as_tuple(build(*placeholders))
    return [o.shape for o in outputs if o.dtype.kind == "f"]


def check_gradients(
    build: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    rng: np.random.Generator,
    eps: float = 1e-6,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Assert that graphc.grad agrees with central differences for every float input.

    A non-finite value (the mean of nothing, say) has no derivative to compare: the
    gradient must then only be computable, which running it checks.
    """
    projections = [rng.standard_normal(s) for s in output_shapes(build, arrays)]
    placeholders = [gc.placeholder(a.shape, a.dtype) for a in arrays]
    y = projected(build, placeholders, projections)
    floats = [p for p in placeholders if p.dtype.kind == "f"]
    value_and_grads = gc.function(placeholders, [y, *gc.grad(y, floats)])
    value = gc.function(placeholders, y)
    results = value_and_grads(*arrays)
    if not np.isfinite(results[0]):
        return
    grads = results[1:]
    directions = [rng.standard_normal(a.shape) if a.dtype.kind == "f" else None for a in arrays]
    analytic = sum(
        float(np.vdot(g, d))
        for g, d in zip(grads, [d for d in directions if d is not None], strict=True)
    )

    def shifted(sign: float) -> float:
        moved = [
            a + sign * eps * d if d is not None else a
            for a, d in zip(arrays, directions, strict=True)
        ]
        return float(value(*moved))

    numeric = (shifted(1.0) - shifted(-1.0)) / (2 * eps)
    np.testing.assert_allclose(analytic, numeric, rtol=rtol, atol=atol)


def check_second_order(
    build: Callable[..., Any],
    arrays: Sequence[np.ndarray],
    rng: np.random.Generator,
    eps: float = 1e-5,
    rtol: float = 1e-4,
    atol: float = 1e-5,
) -> None:
    """Assert that the gradient of <grad y, v> agrees with finite differences of grad y."""
    shapes = output_shapes(build, arrays)
    projections = [rng.standard_normal(s) for s in shapes]
    vs = [rng.standard_normal(a.shape) for a in arrays]

    def first_order(*placeholders: gc.Tensor) -> gc.Tensor:
        y = projected(build, placeholders, projections)
        grads = gc.grad(y, list(placeholders))
        total = gc.sum(grads[0] * gc.constant(vs[0]))
        for g, v in zip(grads[1:], vs[1:], strict=True):
            total = total + gc.sum(g * gc.constant(v))
        return total

    check_gradients(first_order, arrays, rng, eps=eps, rtol=rtol, atol=atol)
