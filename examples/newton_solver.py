"""Solve a nonlinear equation with graphc.while_loop and differentiate the solution.

For each parameter pair (a, b), Newton's method finds the root x* of

    f(x) = x**3 + a*x - b

(one real root for a > 0). The loop stops when the step is below 1e-12, or after
max_iterations steps; because max_iterations bounds it, graphc.grad differentiates
through the iterations. The implicit function theorem gives the exact derivatives,

    dx*/da = -x* / (3 x*^2 + a),    dx*/db = 1 / (3 x*^2 + a),

and the script checks the loop's gradients against them.

    python examples/newton_solver.py
"""

from __future__ import annotations

import numpy as np

import graphc


def main() -> None:
    a = graphc.placeholder(("n",), "float64", name="a")  # one size "n" shared by a and b
    b = graphc.placeholder(("n",), "float64", name="b")

    def keep_going(state):
        _, step, _ = state
        return graphc.max(graphc.abs(step)) > 1e-12

    def newton(state):
        x, _, count = state
        step = (x**3 + a * x - b) / (3 * x**2 + a)
        return x - step, step, count + 1

    start = (graphc.zeros_like(a), graphc.ones_like(a), 0)
    root, _, steps = graphc.while_loop(keep_going, newton, start, max_iterations=60)
    da, db = graphc.grad(graphc.sum(root), [a, b])
    solve = graphc.function([a, b], [root, steps, da, db])  # the loops compiled with it

    av = np.array([1.0, 2.0, 0.5, 3.0])
    bv = np.array([2.0, -1.0, 4.0, 10.0])
    x, n, grad_a, grad_b = solve(av, bv)
    print(f"roots {np.round(x, 6)} after {int(n)} Newton steps")
    print(f"residual {np.max(np.abs(x**3 + av * x - bv)):.1e}")
    slope = 3 * x**2 + av
    print(f"dx/da {np.round(grad_a, 6)}  (implicit: {np.round(-x / slope, 6)})")
    print(f"dx/db {np.round(grad_b, 6)}  (implicit: {np.round(1 / slope, 6)})")
    assert np.allclose(grad_a, -x / slope, rtol=1e-8)
    assert np.allclose(grad_b, 1 / slope, rtol=1e-8)


if __name__ == "__main__":
    main()
