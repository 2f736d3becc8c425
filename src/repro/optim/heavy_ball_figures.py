"""Figures of the Heavy Ball paper, drawn from its Parquet results only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from repro.optim.heavy_ball_claims import median_iterations, not_converged, scaling_exponents
from repro.report.figures import figure_style, save_figure
from repro.report.rows import settings_frame


def plot_iterations_vs_kappa(table: pd.DataFrame, output) -> None:
    """Iterations to tolerance against kappa (log-log) per method, with fitted exponents."""
    df = settings_frame(table[table.metric == "iterations"])
    experiments = sorted(df.experiment.unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(experiments), figsize=(5.6 * len(experiments), 4.4), squeeze=False)
        for ax, exp in zip(axes[0], experiments):
            sub = df[df.experiment == exp]
            exps = scaling_exponents(table, exp)
            med = median_iterations(table[table.experiment == exp])
            failed = not_converged(table[table.experiment == exp])
            for method in med.index:
                slope = exps.get(method, np.nan)
                label = f"{method} (slope {slope:.2f})" if np.isfinite(slope) else f"{method} (no fit)"
                n_fail = int(failed.loc[method].sum())
                if n_fail:
                    label += f", {n_fail} run(s) not converged"
                ax.plot(med.columns, med.loc[method].to_numpy(dtype=float), "o-", label=label)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("κ = L/μ (averaged-Hessian bound)")
            ax.set_ylabel(f"iterations to f − f* < {sub.tol.iloc[0]:g}")
            ax.set_title(f"{exp} (profile {sub.profile.iloc[0]}, d = {int(sub.dim.iloc[0])})")
            ax.legend(fontsize=8)
        save_figure(fig, output)


def plot_convergence(traces: pd.DataFrame, output) -> None:
    """f(w_t) - f* against iteration for every method at the largest kappa, first seed."""
    experiments = sorted(traces.experiment.unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(experiments), figsize=(5.6 * len(experiments), 4.2), squeeze=False)
        for ax, exp in zip(axes[0], experiments):
            sub = traces[traces.experiment == exp]
            kappa = sub.kappa_c.max()
            for method, grp in sub[sub.kappa_c == kappa].groupby("method"):
                grp = grp.dropna(subset=["loss"])
                ax.plot(grp.iteration.clip(lower=1), grp.loss, label=method)
            ax.set_xscale("log")
            ax.set_yscale("log")
            ax.set_xlabel("iteration")
            ax.set_ylabel("f(w_t) − f*")
            ax.set_title(f"{exp}, κ_c = {kappa:g}, seed {sub.seed.min()}")
            ax.legend(fontsize=8)
        save_figure(fig, output)
