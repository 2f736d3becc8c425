"""Gradient descent and Heavy Ball variants on separable PL functions, vectorised.

HB: w_{t+1} = w_t - eta grad f(w_t) + beta (w_t - w_{t-1}), with w_{-1} = w_0.
Step and momentum choices (brief §3.1/§3.2, after Wang et al.'s modular analysis),
with L = L_g c_max and mu = mu_g c_min the smoothness and averaged-Hessian bound:

* ``gd``             eta = 1/L, beta = 0
* ``hb``             eta = 1/L, beta = (1 - sqrt(eta mu) / 2)^2 (the paper's fixed choice)
* ``hb_coordinate``  eta = 1/L, beta_i = (1 - sqrt(eta mu_g c_i) / 2)^2 (diagonal Hessian)
* ``hb_adaptive``    eta = 1/L, beta_{t,i} = (1 - sqrt(eta h_{t,i}) / 2)^2 with h_t the
                     averaged Hessian at w_t (the abstract's "adaptively setting momentum")
* ``hb_polyak``      Polyak's quadratic-optimal eta = 4/(sqrt L + sqrt mu)^2,
                     beta = ((sqrt kappa - 1)/(sqrt kappa + 1))^2, kappa = L/mu

The adaptive rule reads the averaged Hessian about the known minimiser w* = 0: it is
an oracle rule for measuring the benefit the paper proves, not a practical method.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from tqdm.auto import tqdm

from repro.optim.pl_functions import SeparableFunction, curvature_weights

METHODS = ("gd", "hb", "hb_coordinate", "hb_adaptive", "hb_polyak")


@dataclass
class RunPlan:
    """One row per (method, kappa_c, seed)."""

    method: np.ndarray
    kappa_c: np.ndarray
    seed: np.ndarray
    c: np.ndarray  # (R, d)
    eta: np.ndarray  # (R,)
    beta: np.ndarray  # (R, d) fixed momentum; ignored where adaptive
    adaptive: np.ndarray  # (R,) bool
    w0: np.ndarray  # (R, d)
    kappa_eff: np.ndarray  # (R,) L / mu


def step_and_momentum(method: str, fn: SeparableFunction, c: np.ndarray) -> tuple[float, np.ndarray]:
    """(eta, beta per coordinate) for a fixed-momentum method; adaptive methods get beta = 0 here."""
    big_l = fn.smoothness * c.max()
    mu = fn.averaged_strong_convexity * c.min()
    if method == "hb_polyak":
        kappa = big_l / mu
        eta = 4.0 / (np.sqrt(big_l) + np.sqrt(mu)) ** 2
        beta = ((np.sqrt(kappa) - 1.0) / (np.sqrt(kappa) + 1.0)) ** 2
        return eta, np.full_like(c, beta)
    eta = 1.0 / big_l
    if method == "gd" or method == "hb_adaptive":
        return eta, np.zeros_like(c)
    if method == "hb":
        return eta, np.full_like(c, (1.0 - 0.5 * np.sqrt(eta * mu)) ** 2)
    if method == "hb_coordinate":
        return eta, (1.0 - 0.5 * np.sqrt(eta * fn.averaged_strong_convexity * c)) ** 2
    raise ValueError(f"unknown heavy-ball method {method!r}; expected one of {METHODS}")


def build_plan(fn: SeparableFunction, methods, kappas, seeds, dim: int, init_radius: float) -> RunPlan:
    rows = []
    for method in methods:
        for kappa_c in kappas:
            c = curvature_weights(dim, kappa_c)
            eta, beta = step_and_momentum(method, fn, c)
            kappa_eff = fn.smoothness * c.max() / (fn.averaged_strong_convexity * c.min())
            for seed in seeds:
                # w0 ~ U(-r, r)^d, shared by every method and kappa of the same seed
                w0 = np.random.default_rng([seed, 3]).uniform(-init_radius, init_radius, size=dim)
                rows.append((method, kappa_c, seed, c, eta, beta, method == "hb_adaptive", w0, kappa_eff))
    cols = list(zip(*rows))
    return RunPlan(
        method=np.array(cols[0]),
        kappa_c=np.array(cols[1], dtype=float),
        seed=np.array(cols[2]),
        c=np.stack(cols[3]),
        eta=np.array(cols[4]),
        beta=np.stack(cols[5]),
        adaptive=np.array(cols[6]),
        w0=np.stack(cols[7]),
        kappa_eff=np.array(cols[8]),
    )


@dataclass
class RunResult:
    iterations: np.ndarray  # (R,) first t with f(w_t) - f* < tol; NaN if never
    diverged: np.ndarray  # (R,) bool
    trace_iters: np.ndarray  # (P,)
    trace_loss: np.ndarray  # (R, P), NaN after a row has stopped


def run_plan(
    fn: SeparableFunction, plan: RunPlan, tol: float, max_iter: int, trace_points: int = 200, progress: bool = True
) -> RunResult:
    """Iterate every row until f < tol, divergence or ``max_iter``; converged rows drop out."""
    n_rows = len(plan.method)
    iterations = np.full(n_rows, np.nan)
    diverged = np.zeros(n_rows, dtype=bool)
    trace_iters = np.unique(np.geomspace(1, max_iter, trace_points).astype(int))
    trace_iters = np.concatenate([[0], trace_iters])
    trace_loss = np.full((n_rows, len(trace_iters)), np.nan)
    next_trace = 0

    active = np.arange(n_rows)
    w = plan.w0.copy()
    w_prev = w.copy()
    c, eta, beta, adaptive = plan.c, plan.eta[:, None], plan.beta, plan.adaptive

    bar = tqdm(total=max_iter, disable=not progress, mininterval=5.0, desc="heavy-ball iterations")
    for t in range(max_iter + 1):
        with np.errstate(over="ignore", invalid="ignore"):
            loss = fn.loss(w, c)
        if next_trace < len(trace_iters) and t == trace_iters[next_trace]:
            trace_loss[active, next_trace] = loss
            next_trace += 1
        done = loss < tol
        iterations[active[done]] = t
        bad = ~np.isfinite(loss)
        diverged[active[bad]] = True
        keep = ~(done | bad)
        if not keep.all():
            active, w, w_prev = active[keep], w[keep], w_prev[keep]
            c, eta, beta, adaptive = c[keep], eta[keep], beta[keep], adaptive[keep]
        if active.size == 0 or t == max_iter:
            break
        mom = beta
        if adaptive.any():
            h = c * fn.averaged_curvature(w)
            mom = np.where(adaptive[:, None], (1.0 - 0.5 * np.sqrt(eta * h)) ** 2, beta)
        with np.errstate(over="ignore", invalid="ignore"):
            w, w_prev = w - eta * fn.grad(w, c) + mom * (w - w_prev), w
        if t % 1000 == 0:
            bar.update(1000)
    bar.close()
    return RunResult(iterations=iterations, diverged=diverged, trace_iters=trace_iters, trace_loss=trace_loss)


def fit_exponent(kappa: np.ndarray, iterations: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept of log(iterations) against log(kappa)."""
    ok = np.isfinite(iterations) & (iterations > 0)
    if ok.sum() < 2:
        return float("nan"), float("nan")
    slope, intercept = np.polyfit(np.log(kappa[ok]), np.log(iterations[ok]), 1)
    return float(slope), float(intercept)
