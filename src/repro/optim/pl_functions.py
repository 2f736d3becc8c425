"""Separable test functions for "Provable Acceleration of Heavy Ball beyond Quadratics ...".

Wang, Lin, Wibisono & Hu, ICML 2022 (brief: ../shared/papers/theory.md §3).  The paper's
body and figures could not be read; its erratum restricts the acceleration result to
diagonal Hessians, so the brief proposes separable proxies f(w) = sum_i c_i g(w_i)
with c_i geometric from 1 down to 1/kappa_c:

* ``sin2``: g(x) = x^2 + 3 sin^2 x (Karimi et al. 2016).  g'' ranges over [-4, 8], so f
  is non-convex, but the averaged Hessian g'(x)/x = 2 + 3 sin(2x)/x stays in
  [0.6966, 8]: the non-convexity "averages out" and f is PL.
* ``quadratic``: g(x) = x^2, the fixed-Hessian control where Polyak's theory applies.

Minimiser w* = 0 and f* = 0 for both.  The averaged Hessian
H_t = int_0^1 hess f(w* + tau (w_t - w*)) dtau is diagonal with entries c_i g'(w_i)/w_i,
so grad f(w_t) = H_t (w_t - w*) holds exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np


@dataclass(frozen=True)
class SeparableFunction:
    """f(w) = sum_i c_i g(w_i) for a scalar profile g with g(0) = g'(0) = 0."""

    name: str

    def g(self, x):
        if self.name == "sin2":
            return x**2 + 3.0 * np.sin(x) ** 2
        return x**2

    def g_prime(self, x):
        if self.name == "sin2":
            return 2.0 * x + 3.0 * np.sin(2.0 * x)
        return 2.0 * x

    def g_second(self, x):
        if self.name == "sin2":
            return 2.0 + 6.0 * np.cos(2.0 * x)
        return np.full_like(np.asarray(x, dtype=float), 2.0)

    def averaged_curvature(self, x):
        """g'(x)/x, continuously extended by g''(0) at x = 0."""
        x = np.asarray(x, dtype=float)
        safe = np.where(np.abs(x) < 1e-8, 1.0, x)
        return np.where(np.abs(x) < 1e-8, self.g_second(0.0 * x), self.g_prime(safe) / safe)

    @cached_property
    def smoothness(self) -> float:
        """L_g = sup |g''| (8 for sin2, 2 for the quadratic)."""
        return 8.0 if self.name == "sin2" else 2.0

    @cached_property
    def averaged_strong_convexity(self) -> float:
        """mu_g = inf_x g'(x)/x, found on a fine grid and polished by Newton's method."""
        if self.name != "sin2":
            return 2.0
        grid = np.linspace(1e-3, 20.0, 400_001)
        x = grid[np.argmin(self.averaged_curvature(grid))]
        for _ in range(50):  # minimise h(x) = 2 + 3 sin(2x)/x: solve h'(x) = 0
            h1 = 3.0 * (2.0 * x * np.cos(2 * x) - np.sin(2 * x)) / x**2
            h2 = 3.0 * (-4.0 * x**2 * np.sin(2 * x) - 4.0 * x * np.cos(2 * x) + 2.0 * np.sin(2 * x)) / x**3
            x -= h1 / h2
        return float(self.averaged_curvature(x))

    def loss(self, w, c):
        return (c * self.g(w)).sum(axis=-1)

    def grad(self, w, c):
        return c * self.g_prime(w)


def curvature_weights(dim: int, kappa_c: float) -> np.ndarray:
    """c_i geometric from 1 down to 1/kappa_c."""
    if dim == 1:
        return np.ones(1)
    return np.geomspace(1.0, 1.0 / kappa_c, dim)


def get_function(name: str) -> SeparableFunction:
    if name not in ("sin2", "quadratic"):
        raise ValueError(f"unknown PL test function {name!r}; expected 'sin2' or 'quadratic'")
    return SeparableFunction(name)
