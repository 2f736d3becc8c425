"""Class-conditional Gaussian mixtures with per-class spectra, and exact per-class errors of linear rules.

Theory side of Kaushik, Liu, Lin, Khera, Jin, Ma, Muthukumar & Dyer, "Balanced Data, Imbalanced
Spectra: Unveiling Class Disparities with Spectral Imbalance" (ICML 2024).  Only the paper's abstract
could be read, so nothing here is transcribed from its body.  What is implemented is the brief's
(``shared/papers/theory.md``) §4.1 and §4.2:

* Model: x | y = c ~ N(mu_c, Sigma_c) with Sigma_c = U diag(lambda^c) U^T and one eigenbasis U shared
  by all classes [brief §4.2, design D].  Per-class spectra are power laws lambda_j ∝ j^-alpha_c
  normalised to the same trace p ("balanced variance, imbalanced spectra") [D].
* Exact conditional errors of a *fixed* linear rule (math facts, brief §4.1):
  binary sign(w^T x + b): err+ = Phi(-(w^T mu+ + b) / sqrt(w^T Sigma+ w)),
  err- = Phi((w^T mu- + b) / sqrt(w^T Sigma- w)); K classes argmax_k (W x + b)_k: the class-c error
  is 1 - P(all K-1 margins (W_c - W_k)^T x + b_c - b_k > 0), an orthant probability of a jointly
  Gaussian vector, computed with ``scipy.stats.multivariate_normal.cdf`` (K = 2 uses Phi directly and
  equals the binary formula with w = W_0 - W_1, b = b_0 - b_1).
* The paper's asymptotic fixed-point expressions [R in the brief] are NOT implemented; the brief
  proposes Monte Carlo at large p with the exact conditional formulas instead.
* Trained classifier [D, brief §4.2]: ridge least squares with an unpenalised intercept,
  min ||t - X w - b||^2 + ridge ||w||^2 with ridge = 1e-3 * n by default; +-1 targets for two
  classes, one-vs-rest one-hot (0/1) targets for K classes.

Class order for the binary helpers: class index 0 is the positive class (label +1), index 1 the
negative one (label -1).

Coordinates: because U is shared, w^T Sigma_c w = sum_j lambda^c_j (U^T w)_j^2 is O(p) once U^T w is
known.  Ridge regression and Gaussian sampling are rotation-equivariant, so training and evaluating in
the eigen-coordinates x~ = U^T x (where Sigma_c is diagonal and U = I) gives exactly the same errors as
in the ambient coordinates; :meth:`GaussianMixture.in_eigen_coordinates` makes that switch and the
synthetic experiments use it to avoid O(n p^2) rotations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import linalg
from scipy.special import ndtr
from scipy.stats import multivariate_normal

DEFAULT_RIDGE_PER_SAMPLE = 1e-3


# --------------------------------------------------------------------------- spectra and bases


def power_law_spectrum(p: int, alpha: float, trace: float | None = None) -> np.ndarray:
    """Eigenvalues lambda_j = c * j^-alpha, j = 1..p, scaled so that their sum is ``trace`` (default p)."""
    if p < 1:
        raise ValueError("p must be positive")
    lam = np.arange(1, p + 1, dtype=float) ** (-float(alpha))
    target = float(p if trace is None else trace)
    return lam * (target / lam.sum())


def random_orthogonal(p: int, rng: np.random.Generator) -> np.ndarray:
    """Haar-distributed p x p orthogonal matrix (QR of a Gaussian matrix with the sign fix)."""
    q, r = np.linalg.qr(rng.standard_normal((p, p)))
    return q * np.sign(np.diag(r))


def random_unit_vector(p: int, rng: np.random.Generator) -> np.ndarray:
    v = rng.standard_normal(p)
    return v / np.linalg.norm(v)


# --------------------------------------------------------------------------- the mixture


@dataclass(frozen=True)
class GaussianMixture:
    """K Gaussian classes N(means[c], basis diag(eigvals[c]) basis^T), with class priors.

    ``basis`` None means the identity (eigen-coordinates).  ``means`` are in the ambient coordinates.
    """

    means: np.ndarray  # [K, p]
    eigvals: np.ndarray  # [K, p], non-negative
    basis: np.ndarray | None = None  # [p, p] orthogonal, columns are eigenvectors
    priors: np.ndarray | None = None  # [K]; None = balanced

    def __post_init__(self):
        means = np.atleast_2d(np.asarray(self.means, dtype=float))
        eigvals = np.atleast_2d(np.asarray(self.eigvals, dtype=float))
        if means.shape != eigvals.shape:
            raise ValueError(f"means {means.shape} and eigvals {eigvals.shape} must have the same shape [K, p]")
        if np.any(eigvals < 0):
            raise ValueError("eigenvalues must be non-negative")
        if self.basis is not None and np.shape(self.basis) != (means.shape[1],) * 2:
            raise ValueError("basis must be p x p")
        object.__setattr__(self, "means", means)
        object.__setattr__(self, "eigvals", eigvals)
        if self.priors is not None:
            pri = np.asarray(self.priors, dtype=float)
            object.__setattr__(self, "priors", pri / pri.sum())

    @property
    def n_classes(self) -> int:
        return self.means.shape[0]

    @property
    def dim(self) -> int:
        return self.means.shape[1]

    def covariance(self, c: int) -> np.ndarray:
        """Dense Sigma_c (only for checks; the formulas never form it)."""
        if self.basis is None:
            return np.diag(self.eigvals[c])
        return (self.basis * self.eigvals[c]) @ self.basis.T

    def to_eigen(self, v: np.ndarray) -> np.ndarray:
        """Coordinates of vectors (last axis p) in the eigenbasis: U^T v."""
        v = np.asarray(v, dtype=float)
        return v if self.basis is None else v @ self.basis

    def in_eigen_coordinates(self) -> GaussianMixture:
        """The same mixture written in the eigen-coordinates (basis = identity)."""
        return GaussianMixture(self.to_eigen(self.means), self.eigvals, None, self.priors)

    def quadratic_form(self, w: np.ndarray, c: int) -> np.ndarray:
        """w^T Sigma_c w for w of shape [p] or [m, p] (rows), via the eigenbasis."""
        z = self.to_eigen(w)
        return (z * z) @ self.eigvals[c]

    def class_counts(self, n: int) -> np.ndarray:
        """Split n samples over the classes: balanced (as equal as possible) or by priors (rounded)."""
        k = self.n_classes
        if self.priors is None:
            counts = np.full(k, n // k)
            counts[: n % k] += 1
            return counts
        counts = np.floor(self.priors * n).astype(int)
        counts[np.argsort(-(self.priors * n - counts))[: n - counts.sum()]] += 1
        return counts

    def sample_class(self, c: int, m: int, rng: np.random.Generator) -> np.ndarray:
        """m draws from class c, shape [m, p]."""
        z = rng.standard_normal((m, self.dim)) * np.sqrt(self.eigvals[c])
        if self.basis is not None:
            z = z @ self.basis.T
        return z + self.means[c]

    def sample(self, counts, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """Draw ``counts[c]`` points of every class (an int = that many per class).

        Returns X [n, p] and integer class labels [n] (0..K-1), classes in blocks.
        """
        counts = np.broadcast_to(np.asarray(counts, dtype=int), (self.n_classes,))
        xs = [self.sample_class(c, int(m), rng) for c, m in enumerate(counts)]
        labels = np.repeat(np.arange(self.n_classes), counts)
        return np.concatenate(xs, axis=0), labels


def power_law_mixture(
    means: np.ndarray,
    alphas,
    rng: np.random.Generator | None = None,
    *,
    trace: float | None = None,
    eigen_coordinates: bool = False,
) -> GaussianMixture:
    """Mixture with power-law spectra (one alpha per class, equal trace, default p) and a shared basis.

    The basis is Haar-random (drawn from ``rng``) unless ``eigen_coordinates`` is True (identity).
    """
    means = np.atleast_2d(np.asarray(means, dtype=float))
    k, p = means.shape
    alphas = np.broadcast_to(np.asarray(alphas, dtype=float), (k,))
    eig = np.stack([power_law_spectrum(p, a, trace) for a in alphas])
    basis = None if eigen_coordinates else random_orthogonal(p, rng)
    return GaussianMixture(means, eig, basis)


def binary_power_law_mixture(
    p: int,
    alpha_pos: float,
    alpha_neg: float,
    mu_norm: float,
    rng: np.random.Generator,
    *,
    eigen_coordinates: bool = True,
) -> GaussianMixture:
    """Brief §4.2 model: mu+- = +-mu, ||mu|| = mu_norm in a uniformly random direction, equal-trace power laws.

    In eigen-coordinates a uniformly random mu relative to a Haar basis is again uniform, so the
    eigen-coordinate version (default) has the same law as the rotated one.
    """
    mu = mu_norm * random_unit_vector(p, rng)
    return power_law_mixture(np.stack([mu, -mu]), [alpha_pos, alpha_neg], rng, eigen_coordinates=eigen_coordinates)


def multiclass_power_law_mixture(
    p: int,
    alphas,
    mu_norm: float,
    rng: np.random.Generator,
    *,
    eigen_coordinates: bool = True,
) -> GaussianMixture:
    """K classes with means r v_k on random orthonormal v_k, r = sqrt(2) mu_norm [D].

    The radius makes every pairwise mean distance 2 mu_norm, the same separation as +-mu in the
    binary model.  Needs K <= p.
    """
    k = len(alphas)
    if k > p:
        raise ValueError("need K <= p for orthonormal mean directions")
    q, _ = np.linalg.qr(rng.standard_normal((p, k)))
    means = np.sqrt(2.0) * mu_norm * q.T
    return power_law_mixture(means, alphas, rng, eigen_coordinates=eigen_coordinates)


# --------------------------------------------------------------------------- exact errors


def binary_margin_stats(w, b: float, mixture: GaussianMixture, pos: int = 0, neg: int = 1) -> dict[str, float]:
    """Means and standard deviations of the score w^T x + b under the two classes."""
    w = np.asarray(w, dtype=float)
    return {
        "mean_pos": float(w @ mixture.means[pos] + b),
        "mean_neg": float(w @ mixture.means[neg] + b),
        "sd_pos": float(np.sqrt(mixture.quadratic_form(w, pos))),
        "sd_neg": float(np.sqrt(mixture.quadratic_form(w, neg))),
    }


def _phi_ratio(num: float, sd: float) -> float:
    """Phi(num / sd), with the degenerate sd = 0 case as a step (ties count as errors)."""
    if sd > 0:
        return float(ndtr(num / sd))
    return 1.0 if num >= 0 else 0.0


def binary_exact_errors(w, b: float, mixture: GaussianMixture, pos: int = 0, neg: int = 1) -> tuple[float, float]:
    """Exact (err+, err-) of sign(w^T x + b) with class ``pos`` labelled +1 and ``neg`` labelled -1."""
    s = binary_margin_stats(w, b, mixture, pos, neg)
    return _phi_ratio(-s["mean_pos"], s["sd_pos"]), _phi_ratio(s["mean_neg"], s["sd_neg"])


def multiclass_exact_errors(
    W,
    b,
    mixture: GaussianMixture,
    *,
    abseps: float = 1e-6,
    releps: float = 1e-6,
    seed: int = 0,
) -> np.ndarray:
    """Exact per-class error of argmax_k (W x + b)_k, W [K, p], b [K].

    err_c = 1 - P(M > 0) with M_k = (W_c - W_k)^T x + b_c - b_k (k != c) ~ N(m, C) under class c,
    m_k = (W_c - W_k)^T mu_c + b_c - b_k, C_kj = (W_c - W_k)^T Sigma_c (W_c - W_j).
    P(M > 0) = P(-M <= 0) is a Gaussian CDF (scipy's Genz quasi-Monte Carlo, tolerance ``abseps``,
    seeded for reproducibility).  K = 2 (one margin) uses Phi and matches :func:`binary_exact_errors`.
    """
    W = np.atleast_2d(np.asarray(W, dtype=float))
    b = np.asarray(b, dtype=float)
    k = W.shape[0]
    if k != mixture.n_classes:
        raise ValueError(f"W has {k} rows but the mixture has {mixture.n_classes} classes")
    We = mixture.to_eigen(W)  # [K, p] rows in eigen-coordinates
    rng = np.random.default_rng(seed)
    errs = np.empty(k)
    for c in range(k):
        others = [j for j in range(k) if j != c]
        D = W[c] - W[others]  # [K-1, p]
        De = We[c] - We[others]
        m = D @ mixture.means[c] + b[c] - b[others]
        C = (De * mixture.eigvals[c]) @ De.T
        if k == 2:
            errs[c] = 1.0 - _phi_ratio(float(m[0]), float(np.sqrt(max(C[0, 0], 0.0))))
            continue
        p_correct = multivariate_normal.cdf(
            np.zeros(k - 1), mean=-m, cov=C, allow_singular=True, abseps=abseps, releps=releps, rng=rng
        )
        errs[c] = 1.0 - float(p_correct)
    return np.clip(errs, 0.0, 1.0)


# --------------------------------------------------------------------------- Monte Carlo


def _mc_class_errors(mixture, predict_wrong, n_per_class: int, rng, batch: int) -> tuple[np.ndarray, np.ndarray]:
    k = mixture.n_classes
    err = np.empty(k)
    for c in range(k):
        wrong, done = 0, 0
        while done < n_per_class:
            m = min(batch, n_per_class - done)
            wrong += int(np.count_nonzero(predict_wrong(mixture.sample_class(c, m, rng), c)))
            done += m
        err[c] = wrong / n_per_class
    se = np.sqrt(err * (1.0 - err) / n_per_class)
    return err, se


def binary_monte_carlo_errors(
    w,
    b: float,
    mixture: GaussianMixture,
    n_per_class: int,
    rng: np.random.Generator,
    *,
    pos: int = 0,
    neg: int = 1,
    batch: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class error of sign(w^T x + b) on fresh samples; returns (err[pos, neg], standard errors).

    A score of exactly zero counts as an error for both classes (as in the exact formula's Phi).
    """
    w = np.asarray(w, dtype=float)
    sub = GaussianMixture(mixture.means[[pos, neg]], mixture.eigvals[[pos, neg]], mixture.basis)

    def wrong(x, c):
        s = x @ w + b
        return s <= 0 if c == 0 else s >= 0

    return _mc_class_errors(sub, wrong, n_per_class, rng, batch)


def multiclass_monte_carlo_errors(
    W,
    b,
    mixture: GaussianMixture,
    n_per_class: int,
    rng: np.random.Generator,
    *,
    batch: int = 20000,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-class error of argmax_k (W x + b)_k on fresh samples; returns (errors [K], standard errors [K])."""
    W = np.atleast_2d(np.asarray(W, dtype=float))
    b = np.asarray(b, dtype=float)

    def wrong(x, c):
        return np.argmax(x @ W.T + b, axis=1) != c

    return _mc_class_errors(mixture, wrong, n_per_class, rng, batch)


# --------------------------------------------------------------------------- trained classifiers


def _ridge_solve(X: np.ndarray, T: np.ndarray, ridge: float, fit_intercept: bool):
    """Minimise ||T - X W - 1 b^T||_F^2 + ridge ||W||_F^2 (intercept unpenalised); W [p, m], b [m]."""
    X = np.asarray(X, dtype=float)
    T = np.asarray(T, dtype=float)
    if fit_intercept:
        x_mean, t_mean = X.mean(axis=0), T.mean(axis=0)
        Xc, Tc = X - x_mean, T - t_mean
    else:
        x_mean, t_mean = np.zeros(X.shape[1]), np.zeros(T.shape[1:])
        Xc, Tc = X, T
    n, p = Xc.shape
    if ridge <= 0:
        coef = np.linalg.lstsq(Xc, Tc, rcond=None)[0]
    elif n >= p:  # primal: (X^T X + ridge I) W = X^T T
        coef = linalg.solve(Xc.T @ Xc + ridge * np.eye(p), Xc.T @ Tc, assume_a="pos")
    else:  # dual: W = X^T (X X^T + ridge I)^{-1} T
        coef = Xc.T @ linalg.solve(Xc @ Xc.T + ridge * np.eye(n), Tc, assume_a="pos")
    intercept = t_mean - x_mean @ coef
    return coef, intercept


def fit_ridge_binary(
    X,
    y,
    ridge: float | None = None,
    *,
    ridge_per_sample: float = DEFAULT_RIDGE_PER_SAMPLE,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, float]:
    """Ridge least squares on +-1 labels ``y``; returns (w [p], b).

    Penalty ``ridge`` on ||w||^2 in the un-normalised squared loss; None = ridge_per_sample * n
    (the brief's lambda = 1e-3 n).
    """
    y = np.asarray(y, dtype=float)
    if not np.all(np.isin(y, (-1.0, 1.0))):
        raise ValueError("binary labels must be +-1")
    lam = ridge_per_sample * len(y) if ridge is None else float(ridge)
    coef, intercept = _ridge_solve(X, y[:, None], lam, fit_intercept)
    return coef[:, 0], float(intercept[0])


def fit_ridge_multiclass(
    X,
    labels,
    n_classes: int | None = None,
    ridge: float | None = None,
    *,
    ridge_per_sample: float = DEFAULT_RIDGE_PER_SAMPLE,
    fit_intercept: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest ridge on one-hot (0/1) targets; returns (W [K, p], b [K]) for argmax_k (W x + b)_k.

    All K regressions share one Gram matrix.  For K = 2, W_0 - W_1 and b_0 - b_1 equal the binary ridge
    fit on +-1 labels (class 0 = +1) with the same penalty.
    """
    labels = np.asarray(labels, dtype=int)
    k = int(labels.max()) + 1 if n_classes is None else int(n_classes)
    T = np.eye(k)[labels]
    lam = ridge_per_sample * len(labels) if ridge is None else float(ridge)
    coef, intercept = _ridge_solve(X, T, lam, fit_intercept)
    return coef.T, intercept


def binary_labels(labels, pos: int = 0) -> np.ndarray:
    """Class indices -> +-1 labels (class ``pos`` is +1)."""
    return np.where(np.asarray(labels) == pos, 1.0, -1.0)
