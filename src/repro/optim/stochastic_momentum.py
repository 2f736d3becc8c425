"""SGD with stochastic heavy-ball momentum (Algorithm 1 of Wang, Lin & Abernethy, ICLR 2020).

    m_{-1} = 0;  g_t = grad f(w_t; xi_t);  m_t = beta m_{t-1} + g_t;  w_{t+1} = w_t - eta m_t

(PyTorch's ``SGD(momentum=beta, dampening=0)``).  One call simulates every
(seed, beta) pair at once: the state is (S, B, d).  The B runs of one seed share
their mini-batch index stream (common random numbers), so differences between
betas are not masked by sampling noise.

Escape-time measures (the paper plots curves and gives no single number; the
brief's §1.2 uses "iterations to 90 % of the final drop"):

* ``escape_time_by_loss``: first recorded iteration at which f(w_t) has covered a
  fraction q of the drop from f(w_0) to the local minimum the run ends in (found by
  a deterministic descent from the final iterate).  Runs that never get there are
  censored (NaN), never silently counted.
* ``first_crossing``: first recorded iteration at which a quantity falls below a
  level (phase retrieval: relative distance below 0.5, then below 1e-2).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import minimize
from tqdm.auto import tqdm

from repro.optim.momentum_diagnostics import apag_ratio, apcg_ratio, grace_value


@dataclass
class MomentumTrace:
    """Recorded quantities, each (R, S, B) for R recorded iterations."""

    iterations: np.ndarray
    betas: np.ndarray
    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    apag: list = field(default_factory=list)
    apcg: list = field(default_factory=list)
    grace: list = field(default_factory=list)
    rel_distance: list = field(default_factory=list)
    w: list = field(default_factory=list)
    final_w: np.ndarray | None = None

    def stacked(self, name: str) -> np.ndarray:
        return np.stack(getattr(self, name))


def _record_steps(n_steps: int, record_every: int) -> np.ndarray:
    steps = np.arange(0, n_steps, record_every)
    return np.unique(np.append(steps, n_steps))


def simulate_momentum(
    problem,
    seeds,
    betas,
    eta: float,
    n_steps: int,
    batch_size: int = 1,
    record_every: int = 100,
    apcg_k: int = 500,
    diagnostics: bool = True,
    chunk: int = 4096,
    progress: bool = True,
) -> MomentumTrace:
    """Run Algorithm 1 for every (seed, beta) pair and record the paper's quantities.

    Iteration t is recorded with w_t and the (g_t, m_t) computed at it; the final
    record (t = n_steps) holds w_T only, so its g/m-based diagnostics are NaN.
    """
    seeds = list(seeds)
    betas_arr = np.asarray(betas, dtype=float)
    n_seeds, n_betas = len(seeds), len(betas_arr)
    w = np.repeat(problem.initial_point(seeds)[:, None, :], n_betas, axis=1)
    m = np.zeros_like(w)
    beta_b = betas_arr[None, :, None]
    rngs = [np.random.default_rng([seed, 2]) for seed in seeds]
    record_at = _record_steps(n_steps, record_every)
    trace = MomentumTrace(iterations=record_at, betas=betas_arr)
    next_record = 0

    def record(t, g=None, m_t=None):
        grad = problem.grad(w)
        trace.loss.append(problem.loss(w))
        trace.grad_norm.append(np.linalg.norm(grad, axis=-1))
        if problem.dim <= 2:
            trace.w.append(w.copy())
        if hasattr(problem, "relative_distance"):
            trace.rel_distance.append(problem.relative_distance(w))
        if diagnostics and g is not None:
            hess = problem.hessian(w)
            trace.apag.append(apag_ratio(grad, m_t, g))
            trace.grace.append(grace_value(grad, m_t, g, hess, eta))
            apcg = np.empty((n_seeds, n_betas))
            for j, beta in enumerate(betas_arr):
                apcg[:, j] = apcg_ratio(grad[:, j], m_t[:, j], hess[:, j], eta, float(beta), apcg_k)
            trace.apcg.append(apcg)
        elif diagnostics:
            nan = np.full((n_seeds, n_betas), np.nan)
            trace.apag.append(nan)
            trace.grace.append(nan)
            trace.apcg.append(nan)

    bar = tqdm(total=n_steps, disable=not progress, mininterval=5.0, desc="SGD+momentum steps")
    for start in range(0, n_steps, chunk):
        stop = min(start + chunk, n_steps)
        idx = np.stack([rng.integers(0, problem.n_samples, size=(stop - start, batch_size)) for rng in rngs], axis=1)
        batches = problem.gather(idx)
        for t in range(start, stop):
            g = problem.stochastic_grad(w, tuple(x[t - start] for x in batches))
            m = beta_b * m + g
            if t == record_at[next_record]:
                record(t, g, m)
                next_record += 1
            w = w - eta * m
        bar.update(stop - start)
    bar.close()
    record(n_steps)
    trace.final_w = w
    return trace


def first_crossing(values: np.ndarray, iterations: np.ndarray, level) -> np.ndarray:
    """First iteration at which ``values`` (R, ...) is <= ``level`` (broadcast to ...); NaN if never."""
    below = values <= np.asarray(level)
    hit = below.any(axis=0)
    first = np.argmax(below, axis=0)
    return np.where(hit, iterations[first].astype(float), np.nan)


def local_minimum_loss(problem, w_final: np.ndarray) -> np.ndarray:
    """Loss at the local minimum reached by a deterministic descent from each final iterate."""
    n_seeds, n_runs, d = w_final.shape
    out = np.empty((n_seeds, n_runs))
    for s in range(n_seeds):
        for j in range(n_runs):

            def fun(x, s=s):
                full = np.zeros((n_seeds, 1, d))
                full[s, 0] = x
                return float(problem.loss(full)[s, 0]), problem.grad(full)[s, 0]

            res = minimize(fun, w_final[s, j], jac=True, method="L-BFGS-B", options={"gtol": 1e-12, "maxiter": 10_000})
            out[s, j] = res.fun
    return out


def escape_time_by_loss(trace: MomentumTrace, problem, fraction: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """(escape iteration, depth of the local minimum below f(w_0)) for every (seed, beta)."""
    loss = trace.stacked("loss")
    f0 = loss[0]
    f_ref = local_minimum_loss(problem, trace.final_w)
    level = f0 + fraction * (f_ref - f0)
    return first_crossing(loss, trace.iterations, level), f0 - f_ref
