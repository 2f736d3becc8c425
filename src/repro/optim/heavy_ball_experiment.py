"""Iterations to tolerance against condition number for GD and Heavy Ball variants.

The proxy experiment of brief §3.2 for Wang, Lin, Wibisono & Hu (ICML 2022), whose own
figures could not be read: f(w) = sum_i c_i g(w_i), c_i geometric from 1 to 1/kappa_c,
w0 ~ U(-4, 4)^d, count iterations until f(w_t) - f* < 1e-10, over a sweep of kappa_c.
Defaults: d = 50, kappa_c in {10, ..., 3000}, five seeds; L = 8 c_max and
mu = 0.6966 c_min for g(x) = x^2 + 3 sin^2 x.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from repro.optim.heavy_ball import build_plan, run_plan
from repro.optim.pl_functions import get_function
from repro.report.rows import tidy_rows

PAPER = "heavy_ball"
log = logging.getLogger(__name__)


def run_experiment(name: str, setting: dict, *, tier: str, provenance: dict, progress: bool = True):
    """Run every (method, kappa_c, seed) of one test function; return (tidy metrics, traces)."""
    fn = get_function(setting["profile"])
    seeds, kappas, methods = list(setting["seeds"]), list(setting["kappas"]), list(setting["methods"])
    plan = build_plan(fn, methods, kappas, seeds, int(setting["dim"]), float(setting["init_radius"]))
    log.info("%s: %d runs, up to %d iterations", name, len(plan.method), setting["max_iter"])
    result = run_plan(fn, plan, float(setting["tol"]), int(setting["max_iter"]), progress=progress)

    records = []
    for r in range(len(plan.method)):
        common = {
            "method": str(plan.method[r]),
            "seed": int(plan.seed[r]),
            "setting": {
                "profile": setting["profile"],
                "dim": int(setting["dim"]),
                "kappa_c": float(plan.kappa_c[r]),
                "kappa_eff": float(plan.kappa_eff[r]),
                "eta": float(plan.eta[r]),
                "tol": float(setting["tol"]),
                "max_iter": int(setting["max_iter"]),
            },
        }
        it = result.iterations[r]
        records.append({**common, "metric": "iterations", "value": it})
        records.append({**common, "metric": "converged", "value": float(np.isfinite(it))})
        records.append({**common, "metric": "diverged", "value": float(result.diverged[r])})
    table = tidy_rows(records, paper=PAPER, experiment=name, tier=tier, provenance=provenance, dataset="synthetic")

    first_seed = plan.seed == seeds[0]
    traces = pd.DataFrame(
        {
            "experiment": name,
            "method": np.repeat(plan.method[first_seed], len(result.trace_iters)),
            "kappa_c": np.repeat(plan.kappa_c[first_seed], len(result.trace_iters)),
            "seed": seeds[0],
            "iteration": np.tile(result.trace_iters, int(first_seed.sum())),
            "loss": result.trace_loss[first_seed].ravel(),
        }
    )
    return table, traces
