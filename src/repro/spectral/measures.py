"""Per-class feature spectra, spectral-imbalance summaries and class-disparity measures.

For Kaushik et al., "Balanced Data, Imbalanced Spectra" (ICML 2024).  The paper's own metric
definitions could not be read (abstract only), so these are the brief's §4.3 design [D]
(``shared/papers/theory.md``):

* per class c: eigenvalues lambda^c of the centred within-class covariance
  S_c = (X_c - mean)^T (X_c - mean) / (n_c - ddof)  (ddof = 0 by default), sorted in decreasing order
  and zero-padded to length p.  When n_c < p they come from the n_c x n_c Gram matrix, whose non-zero
  eigenvalues are the same;
* summaries: trace, top eigenvalue, effective rank (tr S)^2 / tr(S^2), entropy effective rank
  exp(H(lambda / sum lambda)) (Roy & Vetterli 2007), fitted power-law exponent (least squares of
  log lambda_j on log j over a stated index range) and the top-k mass fraction;
* spectral imbalance between classes: ||lambda^c - lambda^c'||_1 / ||lambda^c||_1, and the spread
  across classes (max/min ratio, coefficient of variation) of any summary;
* class disparity: per-class accuracy, worst class, max - min gap, std across classes;
* Spearman correlation across classes between per-class error and each spectral summary.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

# --------------------------------------------------------------------------- eigenvalues


def covariance_eigenvalues(X, *, ddof: int = 0, center: bool = True, pad_to: int | None = None) -> np.ndarray:
    """Eigenvalues (descending, >= 0) of the sample covariance of the rows of X [n, p].

    Uses the n x n Gram matrix when n < p (same non-zero eigenvalues), the p x p covariance otherwise.
    The result has length p (zero-padded) unless ``pad_to`` says otherwise.
    """
    X = np.asarray(X, dtype=float)
    if X.ndim != 2:
        raise ValueError("X must be [n, p]")
    n, p = X.shape
    if n - ddof <= 0:
        raise ValueError(f"need more than ddof={ddof} samples, got {n}")
    Xc = X - X.mean(axis=0) if center else X
    if n < p:
        lam = np.linalg.eigvalsh(Xc @ Xc.T)
    else:
        lam = np.linalg.eigvalsh(Xc.T @ Xc)
    lam = np.clip(lam[::-1], 0.0, None) / (n - ddof)
    length = p if pad_to is None else int(pad_to)
    out = np.zeros(length)
    m = min(length, lam.size)
    out[:m] = lam[:m]
    return out


def class_eigenvalues(features, labels, classes: Sequence | None = None, *, ddof: int = 0) -> dict:
    """{class: eigenvalues of that class's centred covariance} (each of length p, descending)."""
    X = np.asarray(features, dtype=float)
    labels = np.asarray(labels)
    classes = np.unique(labels) if classes is None else classes
    out = {}
    for c in classes:
        Xc = X[labels == c]
        if len(Xc) <= ddof:
            raise ValueError(f"class {c!r} has {len(Xc)} samples")
        out[_key(c)] = covariance_eigenvalues(Xc, ddof=ddof)
    return out


def _key(c):
    return c.item() if isinstance(c, np.generic) else c


# --------------------------------------------------------------------------- summaries of one spectrum


def _spectrum(lam) -> np.ndarray:
    lam = np.sort(np.clip(np.asarray(lam, dtype=float).ravel(), 0.0, None))[::-1]
    return lam


def trace(lam) -> float:
    return float(np.sum(_spectrum(lam)))


def top_eigenvalue(lam) -> float:
    return float(_spectrum(lam)[0])


def effective_rank(lam) -> float:
    """(sum lambda)^2 / sum lambda^2 (participation ratio); p for a flat spectrum of length p, 1 for a spike."""
    lam = _spectrum(lam)
    sq = float(np.sum(lam * lam))
    return float(np.sum(lam)) ** 2 / sq if sq > 0 else 0.0


def entropy_effective_rank(lam) -> float:
    """exp(Shannon entropy of lambda / sum lambda), zeros ignored (Roy & Vetterli 2007)."""
    lam = _spectrum(lam)
    s = lam.sum()
    if s <= 0:
        return 0.0
    q = lam[lam > 0] / s
    return float(np.exp(-np.sum(q * np.log(q))))


def power_law_exponent(lam, first: int = 1, last: int | None = None, *, rel_tol: float = 1e-10) -> float:
    """alpha from least squares of log lambda_j = c - alpha log j over 1-based indices first..last.

    Eigenvalues below ``rel_tol * lambda_1`` are treated as zero and excluded.  Default ``last`` is half
    the number of non-zero eigenvalues (at least 2): the bottom of a sample spectrum bends away from a
    power law (rank deficiency, Marchenko-Pastur edge), so the fit uses the head [D].
    """
    lam = _spectrum(lam)
    if lam.size == 0 or lam[0] <= 0:
        return float("nan")
    r = int(np.sum(lam > rel_tol * lam[0]))
    if last is None:
        last = max(2, r // 2)
    last = min(int(last), r)
    idx = np.arange(int(first), last + 1)
    if idx.size < 2:
        return float("nan")
    slope = np.polyfit(np.log(idx), np.log(lam[idx - 1]), 1)[0]
    return float(-slope)


def top_k_mass(lam, k: int = 10) -> float:
    """Fraction of the trace in the k largest eigenvalues."""
    lam = _spectrum(lam)
    s = lam.sum()
    return float(lam[:k].sum() / s) if s > 0 else float("nan")


SUMMARY_NAMES = (
    "trace",
    "top_eigenvalue",
    "effective_rank",
    "entropy_effective_rank",
    "power_law_exponent",
    "top_k_mass",
)


def spectral_summaries(lam, *, k: int = 10, fit_range: tuple[int, int | None] = (1, None)) -> dict[str, float]:
    """All scalar summaries of one spectrum (names in ``SUMMARY_NAMES``)."""
    return {
        "trace": trace(lam),
        "top_eigenvalue": top_eigenvalue(lam),
        "effective_rank": effective_rank(lam),
        "entropy_effective_rank": entropy_effective_rank(lam),
        "power_law_exponent": power_law_exponent(lam, *fit_range),
        "top_k_mass": top_k_mass(lam, k),
    }


def class_spectral_table(
    features, labels, classes=None, *, ddof: int = 0, k: int = 10, fit_range=(1, None)
) -> pd.DataFrame:
    """One row per class: class, n, and every spectral summary of its centred covariance."""
    labels = np.asarray(labels)
    spectra = class_eigenvalues(features, labels, classes, ddof=ddof)
    rows = []
    for c, lam in spectra.items():
        rows.append({"class": c, "n": int(np.sum(labels == c)), **spectral_summaries(lam, k=k, fit_range=fit_range)})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- imbalance between classes


def spectral_imbalance(lam_c, lam_other) -> float:
    """||lambda^c - lambda^c'||_1 / ||lambda^c||_1 for descending spectra (shorter one zero-padded).

    Asymmetric: normalised by the first class's spectrum.
    """
    a, b = _spectrum(lam_c), _spectrum(lam_other)
    m = max(a.size, b.size)
    a = np.pad(a, (0, m - a.size))
    b = np.pad(b, (0, m - b.size))
    denom = float(np.sum(np.abs(a)))
    return float(np.sum(np.abs(a - b)) / denom) if denom > 0 else float("nan")


def pairwise_spectral_imbalance(spectra: Mapping) -> pd.DataFrame:
    """Matrix (DataFrame) of spectral_imbalance(spectra[row], spectra[col])."""
    keys = list(spectra)
    mat = [[spectral_imbalance(spectra[a], spectra[b]) for b in keys] for a in keys]
    return pd.DataFrame(mat, index=keys, columns=keys)


def mean_spectral_imbalance(spectra: Mapping) -> float:
    """Mean of the off-diagonal pairwise imbalances (0 for identical spectra)."""
    mat = pairwise_spectral_imbalance(spectra).to_numpy()
    k = mat.shape[0]
    if k < 2:
        return 0.0
    return float(mat[~np.eye(k, dtype=bool)].mean())


def across_class_spread(values) -> dict[str, float]:
    """Spread of a per-class summary: max/min ratio and coefficient of variation (population std / mean)."""
    v = np.asarray(list(values.values()) if isinstance(values, Mapping) else values, dtype=float)
    vmin, vmax, mean = float(v.min()), float(v.max()), float(v.mean())
    return {
        "max_min_ratio": vmax / vmin if vmin > 0 else float("inf"),
        "cv": float(v.std()) / mean if mean != 0 else float("nan"),
        "min": vmin,
        "max": vmax,
    }


# --------------------------------------------------------------------------- class disparity


def per_class_accuracy(y_true, y_pred, classes: Sequence | None = None) -> dict:
    """{class: accuracy on that class's samples} (nan for a class with no samples)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    classes = np.unique(y_true) if classes is None else classes
    out = {}
    for c in classes:
        mask = y_true == c
        out[_key(c)] = float(np.mean(y_pred[mask] == c)) if mask.any() else float("nan")
    return out


def class_disparity(per_class: Mapping) -> dict[str, float]:
    """Mean, worst-class accuracy (and which class), max - min gap and std across classes (ddof 0)."""
    keys = list(per_class)
    acc = np.array([per_class[k] for k in keys], dtype=float)
    worst = int(np.nanargmin(acc))
    return {
        "mean_accuracy": float(np.nanmean(acc)),
        "worst_accuracy": float(acc[worst]),
        "worst_class": keys[worst],
        "gap": float(np.nanmax(acc) - np.nanmin(acc)),
        "std": float(np.nanstd(acc)),
    }


def spearman(x, y) -> float:
    """Spearman rank correlation (scipy); nan when either input is constant or shorter than 3."""
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(stats.spearmanr(x, y).statistic)


def spearman_error_vs_summaries(
    per_class_error: Mapping, summaries: Mapping[object, Mapping[str, float]]
) -> dict[str, float]:
    """Spearman across classes between per-class error and every summary.

    ``summaries`` maps class -> {summary name: value} (e.g. ``spectral_summaries`` per class);
    classes are matched by key.  Returns {summary name: rho}.
    """
    keys = [k for k in per_class_error if k in summaries]
    err = [per_class_error[k] for k in keys]
    names = list(next(iter(summaries.values())).keys()) if summaries else []
    return {name: spearman(err, [summaries[k][name] for k in keys]) for name in names}
