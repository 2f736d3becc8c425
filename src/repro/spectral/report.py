"""Figures and claims of "Balanced Data, Imbalanced Spectra" (Kaushik et al., ICML 2024) from
``results/tables/spectral_imbalance.parquet``.

Only the paper's abstract could be read (brief ``shared/papers/theory.md`` §4), so the claims are the
abstract's qualitative statements and the brief's acceptance checks (§5: "zero gap when spectra are
equal; the gap grows with the imbalance"); their thresholds are fixed here, in code, never in the
config.  The direction "the flatter-spectrum class is worse" is the brief's simulation result [S],
checked here, not assumed.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from repro.report.claims import Claim
from repro.report.figures import save_figure, styled
from repro.report.rows import experiment_rows, with_setting_columns
from repro.spectral import measures as M

PAPER = "spectral_imbalance"
NAN = float("nan")
#: |z| of exact per-class error against Monte Carlo accepted as agreement (stated tolerance)
Z_TOLERANCE = 4.0
#: encoders that are only references, not pretrained representations
REFERENCE_ENCODERS = ("pixels", "pca")


def _rows(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    return experiment_rows(table, experiment, PAPER, fall_back_to_all=True)


def _binary_means(table: pd.DataFrame, experiment: str, keys=("alpha_pos", "alpha_neg", "ridge")) -> pd.DataFrame:
    """Mean, sem and count over seeds of every metric per (alpha+, alpha-, ridge) setting."""
    df = with_setting_columns(_rows(table, experiment), keys)
    if df.empty:
        return pd.DataFrame(columns=[*keys, "metric", "mean", "sem", "count"])
    g = df.groupby([*keys, "metric"])["value"]
    out = g.agg(mean="mean", std="std", count="count").reset_index()
    out["sem"] = out["std"].fillna(0.0) / np.sqrt(out["count"])
    return out


def _wide(means: pd.DataFrame, keys=("alpha_pos", "alpha_neg", "ridge"), stat: str = "mean") -> pd.DataFrame:
    return means.pivot_table(index=list(keys), columns="metric", values=stat).reset_index()


def exact_vs_monte_carlo(table: pd.DataFrame) -> pd.DataFrame:
    """One row per (experiment, setting, seed, class) with exact and Monte Carlo errors and their z-score."""
    from repro.spectral.synthetic import exact_vs_monte_carlo as compare

    parts = [_rows(table, e) for e in ("large_p", "multiclass")]
    df = pd.concat([p for p in parts if len(p)], ignore_index=True) if any(len(p) for p in parts) else None
    if df is None:
        return pd.DataFrame(columns=["experiment", "class", "exact", "mc", "z"])
    return compare(df[["experiment", "method", "setting", "seed", "metric", "value"]])


def encoder_summary(table: pd.DataFrame) -> pd.DataFrame:
    """Per (feature set, encoder, class): mean over seeds of class error and of each spectral summary."""
    df = _rows(table, "encoders")
    if df.empty:
        return pd.DataFrame()
    df = with_setting_columns(df, ["class"])
    per_class = df[df["class"].notna()]
    out = per_class.pivot_table(index=["model", "method", "class", "seed"], columns="metric", values="value")
    return out.groupby(level=["model", "method", "class"]).mean().reset_index()


def encoder_overall(table: pd.DataFrame) -> pd.DataFrame:
    """Per (feature set, encoder): mean over seeds of the set-level metrics (accuracy, gap, Spearman...)."""
    df = _rows(table, "encoders")
    if df.empty:
        return pd.DataFrame()
    df = with_setting_columns(df, ["class"])
    overall = df[df["class"].isna()]
    return overall.pivot_table(
        index=["model", "method"], columns="metric", values="value", aggfunc="mean"
    ).reset_index()


def augmentation_overall(table: pd.DataFrame) -> pd.DataFrame:
    """Per strategy: mean over seeds of accuracy, gap, worst class accuracy and mean spectral imbalance."""
    df = _rows(table, "augmentation")
    if df.empty:
        return pd.DataFrame()
    df = with_setting_columns(df, ["class"])
    overall = df[df["class"].isna()]
    return overall.pivot_table(index="method", columns="metric", values="value", aggfunc="mean").reset_index()


# --------------------------------------------------------------------------- figures


@styled
def plot_synthetic(table: pd.DataFrame, path) -> None:
    """(a) per-class errors for the brief's (alpha+, alpha-) pairs; (b) the gap and the spectral
    imbalance as alpha+ moves away from alpha- = 1; (c) exact against Monte Carlo errors."""
    fig, axes = plt.subplots(1, 3, figsize=(15, 4.3))
    grid = _wide(_binary_means(table, "alpha_grid"))
    sem = _wide(_binary_means(table, "alpha_grid"), stat="sem")
    ax = axes[0]
    if len(grid):
        labels = [f"({a:g}, {b:g})" for a, b in zip(grid.alpha_pos, grid.alpha_neg)]
        x = np.arange(len(grid))
        ax.bar(x - 0.2, grid.err_pos, 0.4, yerr=sem.err_pos, label="class + error")
        ax.bar(x + 0.2, grid.err_neg, 0.4, yerr=sem.err_neg, label="class - error")
        ax.set_xticks(x, labels)
        ax.legend()
    ax.set_xlabel("(alpha+, alpha-): power-law exponents at equal trace")
    ax.set_ylabel("exact per-class test error")
    ax.set_title("(a) the flatter spectrum (smaller alpha) errs more")

    ax = axes[1]
    sweep = _wide(_binary_means(table, "alpha_sweep"))
    if len(sweep):
        ax.plot(sweep.alpha_pos, sweep.gap, "o-", label="gap err+ - err-")
        ax.axhline(0, color="grey", lw=0.8)
        ax.set_xlabel("alpha+ (alpha- = 1)")
        ax.set_ylabel("gap")
        twin = ax.twinx()
        twin.plot(sweep.alpha_pos, sweep.spectral_imbalance, "s--", color="tab:red", label="spectral imbalance")
        twin.set_ylabel("||l+ - l-||_1 / ||l+||_1", color="tab:red")
        ax.legend(loc="upper right")
    ax.set_title("(b) gap grows with the imbalance")

    ax = axes[2]
    cmp = exact_vs_monte_carlo(table)
    if len(cmp):
        for name, g in cmp.groupby("experiment"):
            ax.errorbar(g.exact, g.mc, yerr=2 * g.mc_se, fmt="o", ms=4, label=name)
        hi = float(max(cmp.exact.max(), cmp.mc.max())) * 1.05 + 1e-3
        ax.plot([0, hi], [0, hi], color="grey", lw=0.8)
        ax.legend()
        ax.set_title(f"(c) exact vs Monte Carlo (max |z| {cmp.z.abs().max():.2f})")
    ax.set_xlabel("exact per-class error")
    ax.set_ylabel("Monte Carlo error (+-2 se)")
    save_figure(fig, path)


@styled
def plot_encoders(table: pd.DataFrame, path) -> None:
    """Per feature set: each class's test error against the effective rank of its training features."""
    summary = encoder_summary(table)
    overall = encoder_overall(table)
    sets = list(summary["model"].unique()) if len(summary) else []
    n = max(1, len(sets))
    fig, axes = plt.subplots(1, n, figsize=(4.2 * n, 4.0), squeeze=False)
    for ax, name in zip(axes[0], sets):
        g = summary[summary.model == name]
        ax.scatter(g.effective_rank, g.class_error)
        for _, row in g.iterrows():
            ax.annotate(str(row["class"])[:12], (row.effective_rank, row.class_error), fontsize=7)
        o = overall[overall.model == name]
        rho = float(o["spearman_error_effective_rank"].iloc[0]) if len(o) else NAN
        acc = float(o["accuracy"].iloc[0]) if len(o) else NAN
        ax.set_title(f"{name}\nacc {acc:.3f}, Spearman {rho:+.2f}", fontsize=9)
        ax.set_xlabel("class effective rank (tr S)^2 / tr S^2")
        ax.set_ylabel("class test error")
    save_figure(fig, path)


@styled
def plot_augmentation(table: pd.DataFrame, path) -> None:
    """Per strategy: overall accuracy, worst-class accuracy, the gap and the mean spectral imbalance."""
    agg = augmentation_overall(table)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    metrics = [
        ("accuracy", "test accuracy"),
        ("worst_class_accuracy", "worst-class accuracy"),
        ("gap", "max - min class accuracy"),
        ("mean_spectral_imbalance", "mean pairwise spectral imbalance"),
    ]
    for ax, (metric, label) in zip(axes, metrics):
        if len(agg) and metric in agg:
            order = agg.sort_values("method")
            colors = ["grey" if m == "none" else "tab:blue" for m in order.method]
            ax.bar(order.method, order[metric], color=colors)
            ax.tick_params(axis="x", rotation=45)
            lo, hi = float(order[metric].min()), float(order[metric].max())
            pad = 0.1 * (hi - lo) + 1e-3
            ax.set_ylim(lo - pad, hi + pad)
        ax.set_title(label, fontsize=10)
    save_figure(fig, path)


# --------------------------------------------------------------------------- claims


def _claim_exact(table: pd.DataFrame) -> Claim:
    cmp = exact_vs_monte_carlo(table)
    zmax = float(cmp.z.abs().max()) if len(cmp) else NAN
    detail = ""
    if len(cmp):
        detail = "; ".join(
            f"{e}: {len(g)} class errors, max |z| {g.z.abs().max():.2f}, max |exact - MC| {np.abs(g.exact - g.mc).max():.4f}"
            for e, g in cmp.groupby("experiment")
        )
    return Claim(
        claim_id="exact_matches_monte_carlo",
        claim="The exact per-class error of a linear classifier in the Gaussian mixture matches simulation",
        paper_value="exact expressions (abstract); here the conditional formulas of brief §4.1",
        measured=zmax,
        comparison=f"max |z| of exact error - Monte Carlo error (fresh samples) over classes, seeds, binary and 4-class <= {Z_TOLERANCE:g}",
        holds=bool(zmax <= Z_TOLERANCE) if np.isfinite(zmax) else None,
        detail=detail,
    )


def _claim_equal_spectra(grid: pd.DataFrame, sem: pd.DataFrame) -> Claim:
    row = grid[(grid.alpha_pos == grid.alpha_neg)] if len(grid) else grid
    if not len(row):
        return Claim("equal_spectra_no_gap", "Equal spectra give no class gap", "0", NAN, "", None)
    gap, se = float(row.gap.iloc[0]), float(sem.loc[row.index[0], "gap"])
    return Claim(
        claim_id="equal_spectra_no_gap",
        claim="With equal class spectra (and equal traces) the per-class errors are equal",
        paper_value="no gap (brief §5 acceptance check)",
        measured=gap,
        comparison="|mean gap err+ - err-| over seeds <= 3 standard errors",
        holds=bool(abs(gap) <= 3 * se) if se > 0 else bool(abs(gap) < 1e-12),
        detail=f"alpha {row.alpha_pos.iloc[0]:g}: gap {gap:+.4f} +- {se:.4f} (se)",
    )


def _claim_flatter_worse(grid: pd.DataFrame, table: pd.DataFrame) -> Claim:
    uneq = grid[grid.alpha_pos != grid.alpha_neg] if len(grid) else grid
    if not len(uneq):
        return Claim("flatter_class_worse", "The flatter-spectrum class is worse", "", NAN, "", None)
    # flatter class = smaller power-law exponent; its error minus the other's, per pair
    directed = np.sign(uneq.alpha_neg - uneq.alpha_pos) * uneq.gap
    multi = _rows(table, "multiclass")
    rho = multi[multi.metric == "spearman_err_effective_rank"]["value"]
    rho_mean = float(rho.mean()) if len(rho) else NAN
    holds = bool((directed > 0).all()) and (not np.isfinite(rho_mean) or rho_mean > 0)
    detail = "; ".join(
        f"({a:g}, {b:g}): err+ {ep:.3f}, err- {en:.3f}"
        for a, b, ep, en in zip(uneq.alpha_pos, uneq.alpha_neg, uneq.err_pos, uneq.err_neg)
    )
    if np.isfinite(rho_mean):
        detail += f"; 4 classes: mean Spearman(error, effective rank) {rho_mean:+.2f}"
    return Claim(
        claim_id="flatter_class_worse",
        claim="At equal total variance, the class with the flatter spectrum (higher effective rank) has the higher error",
        paper_value="spectral imbalance causes class disparity (abstract); direction from the brief's simulation [S]",
        measured=float(directed.min()),
        comparison="min over unequal (alpha+, alpha-) pairs of (flatter class error - other class error), mean over seeds, > 0; and 4-class Spearman > 0",
        holds=holds,
        detail=detail,
    )


def _claim_gap_grows(sweep: pd.DataFrame) -> Claim:
    if len(sweep) < 3:
        return Claim("gap_grows_with_imbalance", "The gap grows with the spectral imbalance", "", NAN, "", None)
    rho = M.spearman(sweep.spectral_imbalance, sweep.gap.abs())
    return Claim(
        claim_id="gap_grows_with_imbalance",
        claim="The class gap grows with the spectral imbalance between the classes",
        paper_value="qualitative (brief §5: 'the gap grows with the imbalance')",
        measured=rho,
        comparison="Spearman over the alpha+ sweep (alpha- = 1) between |mean gap| and ||l+ - l-||_1/||l+||_1, > 0.8",
        holds=bool(rho > 0.8) if np.isfinite(rho) else None,
        detail=", ".join(
            f"alpha+ {a:g}: gap {g:+.3f}, imbalance {i:.2f}"
            for a, g, i in zip(sweep.alpha_pos, sweep.gap, sweep.spectral_imbalance)
        ),
    )


def _claim_encoders(table: pd.DataFrame) -> Claim:
    overall = encoder_overall(table)
    if not len(overall) or "spearman_error_effective_rank" not in overall:
        return Claim("encoder_error_tracks_spectra", "", "", NAN, "", None)
    pretrained = overall[~overall.method.isin(REFERENCE_ENCODERS)]
    rhos = pretrained["spearman_error_effective_rank"]
    measured = float(rhos.min()) if len(rhos) else NAN
    detail = "; ".join(
        f"{r.model}: Spearman(error, eff. rank) {r.spearman_error_effective_rank:+.2f}, "
        f"(error, trace) {r.spearman_error_trace:+.2f}, (error, top eig.) {r.spearman_error_top_eigenvalue:+.2f}; "
        f"accuracy {r.accuracy:.3f}, gap {r.gap:.3f}"
        for r in overall.itertuples()
    )
    return Claim(
        claim_id="encoder_error_tracks_spectra",
        claim="On pretrained encoders, a class's probe error rises with the flatness (effective rank) of its feature spectrum",
        paper_value="per-class disparities follow spectral imbalance across 11 encoders (abstract; numbers not read)",
        measured=measured,
        comparison="min over pretrained feature sets of the Spearman correlation across classes (mean over seeds) between class error and effective rank, > 0",
        holds=bool(measured > 0) if np.isfinite(measured) else None,
        detail=detail,
    )


def _claim_augmentation(table: pd.DataFrame) -> Claim:
    agg = augmentation_overall(table)
    if not len(agg) or "none" not in set(agg.method) or len(agg) < 4:
        return Claim(
            "augmentation_imbalance_tracks_gap",
            "Augmentations that reduce the spectral imbalance reduce the class gap",
            "",
            NAN,
            "needs the strategy 'none' and at least three others",
            None,
        )
    base = agg[agg.method == "none"].iloc[0]
    others = agg[agg.method != "none"]
    d_imb = others.mean_spectral_imbalance - base.mean_spectral_imbalance
    d_gap = others.gap - base.gap
    rho = M.spearman(d_imb, d_gap)
    return Claim(
        claim_id="augmentation_imbalance_tracks_gap",
        claim="Across augmentation strategies, the change in spectral imbalance predicts the change in the class gap",
        paper_value="the framework evaluates and combines augmentation strategies (abstract; no number read)",
        measured=rho,
        comparison="Spearman across strategies between change in mean spectral imbalance and change in accuracy gap (vs no augmentation), > 0",
        holds=bool(rho > 0) if np.isfinite(rho) else None,
        detail="; ".join(
            f"{m}: gap {g:+.3f}, imbalance {i:+.3f}, accuracy {a - base.accuracy:+.3f}"
            for m, g, i, a in zip(others.method, d_gap, d_imb, others.accuracy)
        ),
    )


def spectral_imbalance_claims(table: pd.DataFrame) -> list[Claim]:
    grid_means = _binary_means(table, "alpha_grid")
    grid, sem = _wide(grid_means), _wide(grid_means, stat="sem")
    sweep = _wide(_binary_means(table, "alpha_sweep"))
    return [
        _claim_exact(table),
        _claim_equal_spectra(grid, sem),
        _claim_flatter_worse(grid, table),
        _claim_gap_grows(sweep),
        _claim_encoders(table),
        _claim_augmentation(table),
    ]
