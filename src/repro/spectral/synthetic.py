"""Synthetic spectral-imbalance experiments (brief §4.2) for Kaushik et al., ICML 2024.

Only the paper's abstract could be read, so every setting below is the brief's design [D]
(``shared/papers/theory.md`` §4.2), not the paper's:

* binary model: p = 200, n = 400 balanced (200 per class), mu+- = +-mu with ||mu|| = 1.5 in a random
  direction, Sigma+- = U diag(lambda^+-) U^T with a shared random eigenbasis, power-law spectra
  lambda_j ∝ j^-alpha at equal trace p; ridge least squares on +-1 labels with an intercept,
  penalty 1e-3 n; 20 seeds; per-class errors from the exact conditional formulas of brief §4.1;
* ``alpha_grid``: the (alpha+, alpha-) pairs of the brief's [S] table;
* ``alpha_sweep``: alpha+ swept at alpha- = 1 (gap against spectral imbalance);
* ``ridge_sweep``: ridge in {1e-4, 1e-3, 1} x n at (alpha+, alpha-) = (0, 1);
* ``large_p``: p = 1000, n = 2p, exact formula against Monte Carlo on fresh samples (the brief's proxy
  for the paper's unread asymptotic expressions), fewer seeds than the brief's 20 to stay fast;
* ``multiclass``: K = 4 classes with alphas (0, 0.5, 1, 2) at equal trace, means on random orthonormal
  directions at pairwise distance 2 ||mu|| (same separation as +-mu), 200 samples per class,
  one-vs-rest ridge, orthant-probability formula against Monte Carlo.

Everything is computed in the eigen-coordinates of the shared basis (see ``gaussian_mixture``): ridge
and Gaussian sampling are rotation-equivariant, so the errors are those of the rotated problem.
Each seed seeds one generator for (mean direction, training sample), so settings that differ only in
alpha or ridge share their random numbers (paired comparisons); Monte Carlo uses a separate stream.

Output: long DataFrames with columns experiment, method ("ridge"), setting (canonical JSON),
seed, metric, value.  Measured on a 2-core CPU machine (one core, ``OMP_NUM_THREADS=1``, nice 19) with
the defaults: ``run_synthetic()`` takes about 9 s (alpha_grid 0.7 s, alpha_sweep 1.2 s, ridge_sweep
0.5 s, large_p 4.1 s with 5 seeds, multiclass 2.7 s with 10 seeds and 20 000 MC draws per class).
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence

import numpy as np
import pandas as pd

from repro.report.rows import setting_json
from repro.spectral import measures as M
from repro.spectral.gaussian_mixture import (
    DEFAULT_RIDGE_PER_SAMPLE,
    binary_exact_errors,
    binary_labels,
    binary_margin_stats,
    binary_monte_carlo_errors,
    binary_power_law_mixture,
    fit_ridge_binary,
    fit_ridge_multiclass,
    multiclass_exact_errors,
    multiclass_monte_carlo_errors,
    multiclass_power_law_mixture,
)

COLUMNS = ["experiment", "method", "setting", "seed", "metric", "value"]
METHOD = "ridge"

P = 200
N = 400
MU_NORM = 1.5
SEEDS = tuple(range(20))
GRID_PAIRS = ((1.0, 1.0), (0.5, 1.0), (0.0, 1.0), (1.0, 0.5), (0.0, 2.0))
SWEEP_ALPHA_POS = (0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0)
SWEEP_ALPHA_NEG = 1.0
RIDGE_SWEEP = (1e-4, 1e-3, 1.0)
RIDGE_PAIR = (0.0, 1.0)
LARGE_P = 1000
LARGE_SEEDS = tuple(range(5))
MC_PER_CLASS = 20000
MULTICLASS_ALPHAS = (0.0, 0.5, 1.0, 2.0)
MULTICLASS_SEEDS = tuple(range(10))

# Brief §4.2 [S] table (20 seeds; indicative): (alpha+, alpha-) -> (err+, err-).  With the defaults here
# (seeds 0-19) run_alpha_grid gives (0.040, 0.041), (0.144, 0.050), (0.195, 0.062), (0.047, 0.144) and
# (0.269, 0.000) for these rows, and run_ridge_sweep gives gaps 0.134 / 0.133 / 0.075 at ridge 1e-4 / 1e-3 / 1.
BRIEF_TABLE = {
    (1.0, 1.0): (0.038, 0.040),
    (0.5, 1.0): (0.144, 0.049),
    (0.0, 1.0): (0.186, 0.059),
    (1.0, 0.5): (0.043, 0.141),
    (0.0, 2.0): (0.272, 0.000),
}


# --------------------------------------------------------------------------- one trial


def binary_trial(
    p: int,
    n: int,
    alpha_pos: float,
    alpha_neg: float,
    seed: int,
    *,
    mu_norm: float = MU_NORM,
    ridge_per_sample: float = DEFAULT_RIDGE_PER_SAMPLE,
    mc_per_class: int = 0,
    sample_spectra: bool = True,
) -> dict[str, float]:
    """Train ridge on one draw of the binary model and return its metrics.

    Metrics: exact err_pos, err_neg, gap = err_pos - err_neg (signed, as the brief's table), abs_gap,
    worst_err, mean_err; score means/sds per class (w^T mu_c + b, sqrt(w^T Sigma_c w)); population
    spectrum summaries (effective_rank_pos/neg, entropy_effective_rank_pos/neg, top_eigenvalue_pos/neg,
    spectral_imbalance = ||lambda+ - lambda-||_1 / ||lambda+||_1); with ``sample_spectra`` the same from
    the training sample's per-class covariances (sample_*); with ``mc_per_class`` > 0 also
    mc_err_pos/neg and their standard errors mc_se_pos/neg.
    """
    rng = np.random.default_rng(seed)
    mix = binary_power_law_mixture(p, alpha_pos, alpha_neg, mu_norm, rng)
    X, lab = mix.sample(mix.class_counts(n), rng)
    w, b = fit_ridge_binary(X, binary_labels(lab), ridge_per_sample=ridge_per_sample)
    e_pos, e_neg = binary_exact_errors(w, b, mix)
    out = {
        "err_pos": e_pos,
        "err_neg": e_neg,
        "gap": e_pos - e_neg,
        "abs_gap": abs(e_pos - e_neg),
        "worst_err": max(e_pos, e_neg),
        "mean_err": 0.5 * (e_pos + e_neg),
    }
    s = binary_margin_stats(w, b, mix)
    out.update({f"score_{k}": v for k, v in s.items()})
    for c, name in ((0, "pos"), (1, "neg")):
        lam = mix.eigvals[c]
        out[f"effective_rank_{name}"] = M.effective_rank(lam)
        out[f"entropy_effective_rank_{name}"] = M.entropy_effective_rank(lam)
        out[f"top_eigenvalue_{name}"] = M.top_eigenvalue(lam)
    out["spectral_imbalance"] = M.spectral_imbalance(mix.eigvals[0], mix.eigvals[1])
    if sample_spectra:
        spectra = M.class_eigenvalues(X, lab)
        for c, name in ((0, "pos"), (1, "neg")):
            out[f"sample_effective_rank_{name}"] = M.effective_rank(spectra[c])
            out[f"sample_power_law_exponent_{name}"] = M.power_law_exponent(spectra[c])
            out[f"sample_trace_{name}"] = M.trace(spectra[c])
        out["sample_spectral_imbalance"] = M.spectral_imbalance(spectra[0], spectra[1])
    if mc_per_class > 0:
        err, se = binary_monte_carlo_errors(w, b, mix, mc_per_class, np.random.default_rng([seed, 1]))
        out.update({"mc_err_pos": err[0], "mc_err_neg": err[1], "mc_se_pos": se[0], "mc_se_neg": se[1]})
    return out


def multiclass_trial(
    p: int,
    n_per_class: int,
    alphas: Sequence[float],
    seed: int,
    *,
    mu_norm: float = MU_NORM,
    ridge_per_sample: float = DEFAULT_RIDGE_PER_SAMPLE,
    mc_per_class: int = 0,
) -> dict[str, float]:
    """K-class trial: one-vs-rest ridge, exact orthant errors err_class_k, disparity and spectra.

    Metrics: err_class_k, worst_err, mean_err, gap (max - min error), std_err; effective_rank_class_k
    (population); mean_spectral_imbalance (population, mean of the pairwise matrix);
    spearman_err_effective_rank (across the K classes); with ``mc_per_class`` also mc_err_class_k and
    mc_se_class_k.
    """
    rng = np.random.default_rng(seed)
    mix = multiclass_power_law_mixture(p, list(alphas), mu_norm, rng)
    k = mix.n_classes
    X, lab = mix.sample(n_per_class, rng)
    W, b = fit_ridge_multiclass(X, lab, k, ridge_per_sample=ridge_per_sample)
    err = multiclass_exact_errors(W, b, mix, seed=seed)
    out: dict[str, float] = {f"err_class_{c}": float(err[c]) for c in range(k)}
    out.update(
        {
            "worst_err": float(err.max()),
            "mean_err": float(err.mean()),
            "gap": float(err.max() - err.min()),
            "std_err": float(err.std()),
        }
    )
    erank = {c: M.effective_rank(mix.eigvals[c]) for c in range(k)}
    out.update({f"effective_rank_class_{c}": v for c, v in erank.items()})
    out["mean_spectral_imbalance"] = M.mean_spectral_imbalance({c: mix.eigvals[c] for c in range(k)})
    out["spearman_err_effective_rank"] = M.spearman(err, [erank[c] for c in range(k)])
    if mc_per_class > 0:
        mc, se = multiclass_monte_carlo_errors(W, b, mix, mc_per_class, np.random.default_rng([seed, 1]))
        out.update({f"mc_err_class_{c}": float(mc[c]) for c in range(k)})
        out.update({f"mc_se_class_{c}": float(se[c]) for c in range(k)})
    return out


def _rows(experiment: str, setting: dict, seed: int, metrics: dict[str, float]) -> list[dict]:
    js = setting_json(setting)
    return [
        {"experiment": experiment, "method": METHOD, "setting": js, "seed": int(seed), "metric": m, "value": float(v)}
        for m, v in metrics.items()
    ]


def _frame(rows: list[dict]) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=COLUMNS)
    df["value"] = df["value"].astype("float64")
    return df


def _binary_setting(p, n, ap, an, mu_norm, ridge, mc):
    return {
        "alpha_pos": float(ap),
        "alpha_neg": float(an),
        "ridge": float(ridge),
        "ridge_units": "n",
        "p": int(p),
        "n": int(n),
        "mu_norm": float(mu_norm),
        "mc_per_class": int(mc),
    }


def _binary_experiment(name, settings, seeds, p, n, mu_norm, mc_per_class, sample_spectra=True) -> pd.DataFrame:
    rows = []
    for ap, an, ridge in settings:
        setting = _binary_setting(p, n, ap, an, mu_norm, ridge, mc_per_class)
        for s in seeds:
            met = binary_trial(
                p,
                n,
                ap,
                an,
                s,
                mu_norm=mu_norm,
                ridge_per_sample=ridge,
                mc_per_class=mc_per_class,
                sample_spectra=sample_spectra,
            )
            rows += _rows(name, setting, s, met)
    return _frame(rows)


# --------------------------------------------------------------------------- experiments


def run_alpha_grid(
    pairs: Sequence[tuple[float, float]] = GRID_PAIRS,
    seeds: Sequence[int] = SEEDS,
    *,
    p: int = P,
    n: int = N,
    mu_norm: float = MU_NORM,
    ridge: float = DEFAULT_RIDGE_PER_SAMPLE,
    mc_per_class: int = 0,
) -> pd.DataFrame:
    """The brief's (alpha+, alpha-) table (experiment "alpha_grid")."""
    return _binary_experiment("alpha_grid", [(a, b, ridge) for a, b in pairs], seeds, p, n, mu_norm, mc_per_class)


def run_alpha_sweep(
    alphas_pos: Sequence[float] = SWEEP_ALPHA_POS,
    alpha_neg: float = SWEEP_ALPHA_NEG,
    seeds: Sequence[int] = SEEDS,
    *,
    p: int = P,
    n: int = N,
    mu_norm: float = MU_NORM,
    ridge: float = DEFAULT_RIDGE_PER_SAMPLE,
) -> pd.DataFrame:
    """alpha+ swept at fixed alpha- (experiment "alpha_sweep"): gap against spectral imbalance."""
    return _binary_experiment("alpha_sweep", [(a, alpha_neg, ridge) for a in alphas_pos], seeds, p, n, mu_norm, 0)


def run_ridge_sweep(
    ridges: Sequence[float] = RIDGE_SWEEP,
    pair: tuple[float, float] = RIDGE_PAIR,
    seeds: Sequence[int] = SEEDS,
    *,
    p: int = P,
    n: int = N,
    mu_norm: float = MU_NORM,
) -> pd.DataFrame:
    """Ridge penalty (in units of n) swept at one (alpha+, alpha-) pair (experiment "ridge_sweep")."""
    return _binary_experiment("ridge_sweep", [(pair[0], pair[1], r) for r in ridges], seeds, p, n, mu_norm, 0)


def run_large_p(
    pairs: Sequence[tuple[float, float]] = (RIDGE_PAIR,),
    seeds: Sequence[int] = LARGE_SEEDS,
    *,
    p: int = LARGE_P,
    n: int | None = None,
    mu_norm: float = MU_NORM,
    ridge: float = DEFAULT_RIDGE_PER_SAMPLE,
    mc_per_class: int = MC_PER_CLASS,
) -> pd.DataFrame:
    """Exact conditional errors against Monte Carlo at large p, n = 2p by default (experiment "large_p")."""
    n = 2 * p if n is None else n
    return _binary_experiment(
        "large_p", [(a, b, ridge) for a, b in pairs], seeds, p, n, mu_norm, mc_per_class, sample_spectra=False
    )


def run_multiclass(
    alphas: Sequence[float] = MULTICLASS_ALPHAS,
    seeds: Sequence[int] = MULTICLASS_SEEDS,
    *,
    p: int = P,
    n_per_class: int = N // 2,
    mu_norm: float = MU_NORM,
    ridge: float = DEFAULT_RIDGE_PER_SAMPLE,
    mc_per_class: int = MC_PER_CLASS,
) -> pd.DataFrame:
    """K-class version: orthant formula against Monte Carlo (experiment "multiclass")."""
    setting = {
        "alphas": [float(a) for a in alphas],
        "n_classes": len(alphas),
        "ridge": float(ridge),
        "ridge_units": "n",
        "p": int(p),
        "n": int(n_per_class * len(alphas)),
        "mu_norm": float(mu_norm),
        "mc_per_class": int(mc_per_class),
    }
    rows = []
    for s in seeds:
        met = multiclass_trial(
            p, n_per_class, alphas, s, mu_norm=mu_norm, ridge_per_sample=ridge, mc_per_class=mc_per_class
        )
        rows += _rows("multiclass", setting, s, met)
    return _frame(rows)


def run_synthetic(
    *,
    seeds: Sequence[int] = SEEDS,
    p: int = P,
    n: int = N,
    large_p: int = LARGE_P,
    large_seeds: Sequence[int] = LARGE_SEEDS,
    multiclass_seeds: Sequence[int] = MULTICLASS_SEEDS,
    mc_per_class: int = MC_PER_CLASS,
    timings: dict | None = None,
) -> pd.DataFrame:
    """All five experiments in one long DataFrame; pass smaller sizes for a fast test tier.

    If ``timings`` is a dict it receives the wall seconds of each experiment.
    """
    parts = []
    jobs = {
        "alpha_grid": lambda: run_alpha_grid(seeds=seeds, p=p, n=n),
        "alpha_sweep": lambda: run_alpha_sweep(seeds=seeds, p=p, n=n),
        "ridge_sweep": lambda: run_ridge_sweep(seeds=seeds, p=p, n=n),
        "large_p": lambda: run_large_p(seeds=large_seeds, p=large_p, mc_per_class=mc_per_class),
        "multiclass": lambda: run_multiclass(
            seeds=multiclass_seeds, p=p, n_per_class=n // 2, mc_per_class=mc_per_class
        ),
    }
    for name, job in jobs.items():
        t0 = time.perf_counter()
        parts.append(job())
        if timings is not None:
            timings[name] = time.perf_counter() - t0
    return pd.concat(parts, ignore_index=True)


# --------------------------------------------------------------------------- summaries


def summarise(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std (ddof 1), standard error and count over seeds per (experiment, method, setting, metric)."""
    g = df.groupby(["experiment", "method", "setting", "metric"], sort=False)["value"]
    out = g.agg(mean="mean", std="std", count="count").reset_index()
    out["sem"] = out["std"] / np.sqrt(out["count"])
    return out


def exact_vs_monte_carlo(df: pd.DataFrame) -> pd.DataFrame:
    """Per (experiment, setting, seed, class): exact error, MC error, SEs and the z-score.

    z = (exact - mc) / se0 with se0 = sqrt(exact (1 - exact) / mc_per_class), the standard error of the
    Monte Carlo estimate if the exact value is right (stays finite when the MC error is 0); the MC's own
    plug-in SE is reported as ``mc_se``.  Works for the binary (err_pos / mc_err_pos ...) and K-class
    (err_class_k / mc_err_class_k) metric names.
    """
    mc = df[df["metric"].str.startswith("mc_err_")]
    rows = []
    for r in mc.itertuples(index=False):
        cls = r.metric[len("mc_err_") :]
        key = (df["experiment"] == r.experiment) & (df["setting"] == r.setting) & (df["seed"] == r.seed)
        sub = df[key].set_index("metric")["value"]
        exact = float(sub[f"err_{cls}"])
        n_mc = int(json.loads(r.setting)["mc_per_class"])
        se0 = float(np.sqrt(exact * (1.0 - exact) / n_mc))
        diff = exact - float(r.value)
        z = diff / se0 if se0 > 0 else (0.0 if diff == 0 else float("inf"))
        rows.append(
            {
                "experiment": r.experiment,
                "setting": r.setting,
                "seed": r.seed,
                "class": cls,
                "exact": exact,
                "mc": float(r.value),
                "mc_se": float(sub[f"mc_se_{cls}"]),
                "se_exact": se0,
                "z": z,
            }
        )
    return pd.DataFrame(rows)


def gap_vs_imbalance(df: pd.DataFrame) -> pd.DataFrame:
    """Mean gap and spectral imbalance per alpha+ of the ``alpha_sweep`` experiment."""
    sub = df[
        (df["experiment"] == "alpha_sweep")
        & df["metric"].isin(["gap", "spectral_imbalance", "sample_spectral_imbalance"])
    ]
    wide = sub.pivot_table(index=["setting", "seed"], columns="metric", values="value").reset_index()
    wide["alpha_pos"] = [float(json.loads(s)["alpha_pos"]) for s in wide["setting"]]
    return wide.groupby("alpha_pos")[["gap", "spectral_imbalance", "sample_spectral_imbalance"]].mean().reset_index()
