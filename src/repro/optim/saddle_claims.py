"""Headline claims of "Escaping Saddle Points Faster with Stochastic Momentum", from its table.

Thresholds are fixed here, in code, from the paper's statements and the brief's
acceptance checks (theory.md §5); they are never read from the config, so a claim
cannot be tuned to pass.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy.stats import spearmanr

from repro.report.claims import Claim
from repro.report.rows import settings_frame

NAN = float("nan")


def _escape_times(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    """(seed x beta) escape times, censored runs as +inf (they escape after the budget, if ever)."""
    df = settings_frame(table[(table.experiment == experiment) & (table.metric == "escape_time")])
    wide = df.pivot_table(index="seed", columns="beta", values="value", aggfunc="first", dropna=False)
    return wide.fillna(np.inf)


def _budget(table: pd.DataFrame, experiment: str) -> float:
    return float(settings_frame(table[table.experiment == experiment])["n_steps"].iloc[0])


def stochastic_momentum_claims(table: pd.DataFrame) -> list[Claim]:
    claims = []
    for experiment in sorted(table.experiment.unique()):
        esc = _escape_times(table, experiment)
        betas = np.array(sorted(esc.columns))
        median = esc[betas].median(axis=0).to_numpy()
        decreasing = bool(np.all(np.diff(median) < 0)) if len(betas) > 1 else None
        rho = spearmanr(betas, median).statistic if len(betas) > 2 and np.isfinite(median).all() else NAN
        claims.append(
            Claim(
                claim_id=f"{experiment}.escape_decreases_with_beta",
                claim=f"{experiment}: the saddle-escape time decreases as the momentum beta grows (Fig. 2, Thm. 1)",
                paper_value="monotone decrease",
                measured=float(rho),
                comparison="median escape time over seeds strictly decreasing in beta (measured: Spearman rho; -1 = monotone)",
                holds=decreasing,
                detail="medians: " + ", ".join(f"beta={b:g}: {m:.4g}" for b, m in zip(betas, median)),
            )
        )
        if 0.0 in betas and 0.9 in betas:
            budget = _budget(table, experiment)
            # a censored beta=0 run escapes after the budget: the budget gives a lower bound on the ratio
            slow = esc[0.0].replace(np.inf, budget)
            ratio = float((slow / esc[0.9]).median())
            censored = int(np.isinf(esc[0.0]).sum())
            detail = f"per-seed ratios: {np.round((slow / esc[0.9]).to_numpy(), 2).tolist()}"
            if censored:
                detail += (
                    f"; {censored} beta=0 run(s) did not escape within {budget:.0f} steps (ratio is a lower bound)"
                )
            holds = ratio >= 5.0 if np.isfinite(ratio) else None
        else:
            ratio, holds, detail = NAN, None, "beta list lacks 0 or 0.9"
        claims.append(
            Claim(
                claim_id=f"{experiment}.speedup_beta_0.9",
                claim=f"{experiment}: beta=0.9 escapes about 1/(1-beta)=10x sooner than plain SGD (escape time scales with 1-beta)",
                paper_value="10 (theory: (1-beta) factor)",
                measured=ratio,
                comparison="median over seeds of escape(beta=0)/escape(beta=0.9) >= 5 (brief's acceptance check)",
                holds=holds,
                detail=detail,
            )
        )
    return claims
