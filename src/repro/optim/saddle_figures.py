"""Figures of the stochastic-momentum paper, drawn from its Parquet results only."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pandas as pd

from repro.report.figures import figure_style, save_figure, sequential_colors
from repro.report.rows import settings_frame


def _beta_colors(betas):
    return dict(zip(betas, sequential_colors(len(betas), "viridis")))


def plot_saddle_curves(traces: pd.DataFrame, experiment: str, output) -> None:
    """Fig. 2: the loss (toy) or the distance to w* (phase retrieval) against iteration, per beta."""
    betas = sorted(traces.beta.unique())
    colors = _beta_colors(betas)
    phase = traces.rel_distance.notna().any()
    column, label = ("rel_distance", "relative distance to ±w*") if phase else ("loss", "f(w_t)")
    first_seed = traces.seed.min()
    with figure_style():
        fig, ax = plt.subplots(figsize=(6.4, 4.0))
        for (seed, beta), grp in traces.groupby(["seed", "beta"]):
            main = seed == first_seed
            ax.plot(
                grp.iteration,
                grp[column],
                color=colors[beta],
                alpha=1.0 if main else 0.25,
                lw=1.8 if main else 0.8,
                label=f"β = {beta:g}" if main else None,
            )
        if phase:
            ax.set_yscale("log")
        ax.set_xlabel("iteration")
        ax.set_ylabel(label)
        ax.set_title(f"{experiment}: SGD with stochastic heavy-ball momentum")
        ax.legend(title=f"seed {first_seed} (bold); other seeds faint")
        save_figure(fig, output)


def plot_saddle_diagnostics(traces: pd.DataFrame, experiment: str, diagnostics: dict, output) -> None:
    """Fig. 3: gradient norm, APAG, APCG and GrACE along the first seed's runs.

    Steps shown follow the paper: APAG where ||grad f|| >= apag_grad_floor, APCG in the
    saddle region only, nothing where ||grad f|| < grad_floor.
    """
    seed = traces.seed.min()
    df = traces[(traces.seed == seed) & traces.apag.notna()]
    df = df[df.grad_norm >= diagnostics["grad_floor"]]
    betas = sorted(df.beta.unique())
    colors = _beta_colors(betas)
    restricted = not df.in_saddle_region.all()
    apcg_title = "APCG ratio" + (" in the saddle region" if restricted else "") + " (≥ 0 expected)"
    panels = [
        ("grad_norm", "‖∇f(w_t)‖", "log", df),
        (
            "apag",
            f"APAG ratio ⟨∇f, m−g⟩/‖∇f‖² (≥ −1/2), ‖∇f‖ ≥ {diagnostics['apag_grad_floor']:g}",
            "symlog",
            df[df.grad_norm >= diagnostics["apag_grad_floor"]],
        ),
        ("apcg", apcg_title, "symlog", df[df.in_saddle_region]),
        ("grace", "GrACE value (small expected)", "symlog", df),
    ]
    with figure_style():
        fig, axes = plt.subplots(2, 2, figsize=(10, 6.8), sharex=True)
        for ax, (col, title, scale, data) in zip(axes.ravel(), panels):
            for beta in betas:
                grp = data[data.beta == beta]
                ax.plot(grp.iteration, grp[col], ".", ms=2.5, color=colors[beta], label=f"β = {beta:g}")
            if col == "apag":
                ax.axhline(-0.5, color="k", ls="--", lw=0.8)
            if col in ("apcg", "grace"):
                ax.axhline(0.0, color="k", ls="--", lw=0.8)
            ax.set_yscale(scale)
            ax.set_title(title, fontsize=9.5)
        for ax in axes[1]:
            ax.set_xlabel("iteration")
        axes[0, 0].legend(markerscale=4)
        fig.suptitle(f"{experiment}: properties assumed by Theorem 1 (seed {seed})")
        save_figure(fig, output)


def plot_escape_times(table: pd.DataFrame, output) -> None:
    """Escape time against beta for every problem, median and range over seeds, with the (1-beta) law."""
    df = settings_frame(table[table.metric == "escape_time"])
    experiments = sorted(df.experiment.unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(experiments), figsize=(5.2 * len(experiments), 4.0), squeeze=False)
        for ax, exp in zip(axes[0], experiments):
            sub = df[df.experiment == exp]
            budget = float(sub.n_steps.iloc[0])
            stats = sub.assign(value=sub.value.fillna(budget)).groupby("beta").value
            med, lo, hi = stats.median(), stats.min(), stats.max()
            betas = med.index.to_numpy()
            ax.errorbar(betas, med, yerr=[med - lo, hi - med], fmt="o-", capsize=3, label="median, min-max over seeds")
            if 0.0 in betas:
                ref = med.loc[0.0] * (1 - betas)
                ax.plot(betas, ref, "k--", lw=1, label="(1−β) × median at β=0")
            censored = int(sub.value.isna().sum())
            if censored:
                ax.axhline(budget, color="grey", ls=":", lw=1, label=f"budget ({censored} run(s) censored here)")
            ax.set_yscale("log")
            ax.set_xlabel("momentum β")
            ax.set_ylabel("escape time (iterations)")
            ax.set_title(exp)
            ax.legend()
        save_figure(fig, output)


def plot_toy_trajectories(traces: pd.DataFrame, output, betas=(0.0, 0.9)) -> None:
    """Fig. 1: (w1, w2) paths of SGD and SGD with momentum on the toy saddle, first seed."""
    seed = traces.seed.min()
    df = traces[traces.seed == seed]
    shown = [b for b in betas if b in set(df.beta)] or sorted(df.beta.unique())[:2]
    with figure_style():
        fig, axes = plt.subplots(1, len(shown), figsize=(5.0 * len(shown), 4.2), squeeze=False, sharey=True)
        for ax, beta in zip(axes[0], shown):
            grp = df[df.beta == beta].sort_values("iteration")
            sc = ax.scatter(grp.w1, grp.w2, c=grp.iteration, s=6, cmap="viridis")
            ax.plot(grp.w1.iloc[0], grp.w2.iloc[0], "k*", ms=10, label="start (saddle region)")
            ax.set_xlabel("w₁")
            ax.set_title(f"β = {beta:g}" + (" (plain SGD)" if beta == 0 else ""))
            ax.legend(loc="best")
        axes[0, 0].set_ylabel("w₂")
        fig.colorbar(sc, ax=axes[0].tolist(), label="iteration")
        fig.suptitle(f"toy saddle (Eq. 3), seed {seed}: trajectories coloured by iteration")
        save_figure(fig, output)
