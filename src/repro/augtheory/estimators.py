"""Closed-form augmented ERM (aERM) estimators as linear operators theta = G y (brief §2.1).

aERM minimises (1/n) sum_i E_g (y_i - <theta, g(x_i)>)^2, whose normal equations are
A theta = b with A = sum_i E[g(x_i) g(x_i)^T] and b = sum_i y_i E[g(x_i)].  Every estimator here
is linear in y, so each function returns the operator G of shape (..., d, n) (X of shape
(..., n, d) may carry leading batch axes, e.g. trials); ``estimate(G, y)`` applies it.

* LSE: min-norm least squares pinv(X) (Gram solves away from n = d, pinv at n = d).
* Noise N(0, sigma_a^2 I): (X^T X + n sigma_a^2 I)^-1 X^T (ridge with lambda = sigma_a^2).
* Unbiased mask beta: (X^T X + beta/(1-beta) diag(X^T X))^-1 X^T; biased mask: the same / (1-beta).
* Salt-and-pepper (p, sigma_a^2): (X^T X + psi diag(X^T X) + psi/(1-p) n sigma_a^2 I)^-1 X^T, psi = p/(1-p).
* Heterogeneous mask p_i: (X^T X + diag(p_i/(1-p_i)) diag(X^T X))^-1 X^T.
* Rotation alpha: (X^T X + c(alpha) (tr(X^T X) I - X^T X))^-1 X^T with the notebooks'
  c(alpha) = 4(1 - cos alpha)/d unless ``c`` is given.
* Cutout (contiguous block, see ``augmentations``): (m m^T o X^T X + C o X^T X)^-1 diag(m) X^T.
* Mixup Beta(a, a): ((a+1)/(2a+1) X^T X + a/((2a+1) n) s s^T)^+ ((a+1)/(2a+1) X^T + a/((2a+1) n) s 1^T),
  s = sum_i x_i (the early notebook's formula; min-norm via pinv).

Deterministic "bar" versions (the notebooks' ``*_bar``): the data-dependent regulariser
sum_i Cov_g[g(x_i)] is replaced by its expectation over x ~ N(0, Sigma), e.g.
beta/(1-beta) n diag(Sigma) for the mask and c(alpha) n (tr(Sigma) I - Sigma) for rotation.
Noise has a deterministic regulariser already (bar = hat).  Mixup has no bar version in the brief.

Numerics: all mask/noise-type estimators are generalised ridges (X'^T X' + R)^-1 X'^T with
X' = X diag(m); for diagonal R > 0 and n < d the dual form R^-1 X'^T (X' R^-1 X'^T + I)^-1 is
used (n x n solves), otherwise a d x d solve; a singular system falls back to pinv (min-norm).
"""

from __future__ import annotations

import numpy as np

from repro.augtheory import augmentations as aug
from repro.augtheory.augmentations import (
    MaskMoments,
    cutout_moments,
    het_mask_moments,
    mask_moments,
    noise_moments,
    pepper_moments,
    rotation_constant,
)


def _t(A: np.ndarray) -> np.ndarray:
    return np.swapaxes(A, -1, -2)


def solve_psd(A: np.ndarray, B: np.ndarray) -> np.ndarray:
    """A^-1 B for batched symmetric A; min-norm pinv(A) B when some A in the batch is singular."""
    try:
        out = np.linalg.solve(A, B)
        if np.all(np.isfinite(out)):
            return out
    except np.linalg.LinAlgError:
        pass
    return np.linalg.pinv(A, hermitian=True) @ B


def min_norm_operator(X: np.ndarray) -> np.ndarray:
    """pinv(X), batched: X^T (X X^T)^-1 for n < d, (X^T X)^-1 X^T for n > d, SVD pinv at n = d."""
    n, d = X.shape[-2:]
    if n < d:
        return _t(solve_psd(X @ _t(X), X))
    if n > d:
        return solve_psd(_t(X) @ X, _t(X))
    return np.linalg.pinv(X)


lse_operator = min_norm_operator


def ridge_operator(X: np.ndarray, reg_diag=0.0, reg_full: np.ndarray | None = None) -> np.ndarray:
    """G = (X^T X + diag(reg_diag) + reg_full)^-1 X^T, batched; reg = 0 gives the min-norm pinv(X).

    ``reg_diag`` broadcasts to (..., d) (a scalar, a (d,) vector or per-batch (..., d) / (..., 1)).
    """
    n, d = X.shape[-2:]
    r = np.broadcast_to(np.asarray(reg_diag, dtype=float), X.shape[:-2] + (d,))
    if reg_full is None:
        if not np.any(r):
            return min_norm_operator(X)
        if n < d and np.all(r > 0):
            Xr = X / r[..., None, :]
            K = Xr @ _t(X) + np.eye(n)
            return _t(solve_psd(K, Xr))
    A = _t(X) @ X
    A = A + r[..., :, None] * np.eye(d)
    if reg_full is not None:
        A = A + reg_full
    return solve_psd(A, _t(X))


def estimate(G: np.ndarray, y: np.ndarray) -> np.ndarray:
    """theta = G y for G (..., d, n) and y (..., n)."""
    return (G @ y[..., None])[..., 0]


def colsq(X: np.ndarray) -> np.ndarray:
    """diag(X^T X), shape (..., d)."""
    return np.sum(X * X, axis=-2)


# ----------------------------------------------------------------------------- mask-type (g = D x + z)


def masking_operator(X: np.ndarray, mom: MaskMoments) -> np.ndarray:
    """aERM for g(x) = D x + z: (X'^T X' + C o X^T X + n tau^2 I)^-1 X'^T with X' = X diag(m)."""
    n = X.shape[-2]
    Xp = X * mom.mean
    if mom.full:
        full = mom.cov * (_t(X) @ X)
        return ridge_operator(Xp, n * mom.noise_var, reg_full=full)
    return ridge_operator(Xp, mom.cov * colsq(X) + n * mom.noise_var)


def masking_bar_operator(X: np.ndarray, mom: MaskMoments, lam: np.ndarray) -> np.ndarray:
    """Deterministic version: the regulariser replaced by n (C o Sigma + tau^2 I), Sigma = diag(lam)."""
    n = X.shape[-2]
    c_diag = np.diagonal(mom.cov) if mom.full else mom.cov
    return ridge_operator(X * mom.mean, n * (c_diag * lam + mom.noise_var))


def masking_system(X: np.ndarray, y: np.ndarray, mom: MaskMoments):
    """Textbook normal equations (A, b) = (sum_i E[g g^T], sum_i y_i E g) for g = D x + z."""
    n, d = X.shape[-2:]
    second = np.outer(mom.mean, mom.mean) + mom.cov_matrix()
    A = second * (_t(X) @ X) + n * mom.noise_var * np.eye(d)
    b = mom.mean * (_t(X) @ y[..., None])[..., 0]
    return A, b


def noise_operator(X: np.ndarray, sigma_a2: float) -> np.ndarray:
    return ridge_operator(X, X.shape[-2] * float(sigma_a2))


noise_bar_operator = noise_operator  # the regulariser n sigma_a^2 I is already deterministic


def mask_operator(X: np.ndarray, beta: float, biased: bool = False) -> np.ndarray:
    G = ridge_operator(X, beta / (1.0 - beta) * colsq(X))
    return G / (1.0 - beta) if biased else G


def mask_bar_operator(X: np.ndarray, beta: float, lam: np.ndarray, biased: bool = False) -> np.ndarray:
    G = ridge_operator(X, beta / (1.0 - beta) * X.shape[-2] * np.asarray(lam, dtype=float))
    return G / (1.0 - beta) if biased else G


def het_mask_operator(X: np.ndarray, p, biased: bool = False) -> np.ndarray:
    return masking_operator(X, het_mask_moments(p, biased))


def het_mask_bar_operator(X: np.ndarray, p, lam: np.ndarray, biased: bool = False) -> np.ndarray:
    return masking_bar_operator(X, het_mask_moments(p, biased), lam)


def pepper_operator(X: np.ndarray, p: float, sigma_a2: float) -> np.ndarray:
    return masking_operator(X, pepper_moments(X.shape[-1], p, sigma_a2))


def pepper_bar_operator(X: np.ndarray, p: float, sigma_a2: float, lam: np.ndarray) -> np.ndarray:
    return masking_bar_operator(X, pepper_moments(X.shape[-1], p, sigma_a2), lam)


def cutout_operator(X: np.ndarray, length: int, circular: bool = True, unbiased: bool = True) -> np.ndarray:
    return masking_operator(X, cutout_moments(X.shape[-1], length, circular, unbiased))


def cutout_bar_operator(
    X: np.ndarray, length: int, lam: np.ndarray, circular: bool = True, unbiased: bool = True
) -> np.ndarray:
    return masking_bar_operator(X, cutout_moments(X.shape[-1], length, circular, unbiased), lam)


# ----------------------------------------------------------------------------- rotation


def rotation_operator(X: np.ndarray, alpha_deg: float, c: float | None = None) -> np.ndarray:
    """(X^T X + c (tr(X^T X) I - X^T X))^-1 X^T = ((1-c) X^T X + c tr(X^T X) I)^-1 X^T."""
    d = X.shape[-1]
    c = rotation_constant(alpha_deg, d) if c is None else float(c)
    trace = np.sum(X * X, axis=(-2, -1))[..., None]
    if c < 1.0:
        s = np.sqrt(1.0 - c)
        return ridge_operator(s * X, c * trace) / s
    A = (1.0 - c) * (_t(X) @ X) + c * trace[..., None] * np.eye(d)
    return solve_psd(A, _t(X))


def rotation_bar_operator(X: np.ndarray, alpha_deg: float, lam: np.ndarray, c: float | None = None) -> np.ndarray:
    """The regulariser replaced by its expectation c n (tr(Sigma) I - Sigma)."""
    n, d = X.shape[-2:]
    lam = np.asarray(lam, dtype=float)
    c = rotation_constant(alpha_deg, d) if c is None else float(c)
    return ridge_operator(X, c * n * (lam.sum() - lam))


def rotation_system(X: np.ndarray, y: np.ndarray, alpha_deg: float, c: float | None = None):
    d = X.shape[-1]
    c = rotation_constant(alpha_deg, d) if c is None else float(c)
    gram = _t(X) @ X
    trace = np.trace(gram, axis1=-2, axis2=-1)[..., None, None]
    return gram + c * (trace * np.eye(d) - gram), (_t(X) @ y[..., None])[..., 0]


# ----------------------------------------------------------------------------- mixup


def _mixup_weights(a: float) -> tuple[float, float]:
    return (a + 1.0) / (2.0 * a + 1.0), a / (2.0 * a + 1.0)


def mixup_system(X: np.ndarray, y: np.ndarray, a: float):
    n = X.shape[-2]
    w_own, w_mean = _mixup_weights(a)
    s = X.sum(axis=-2)
    A = w_own * (_t(X) @ X) + w_mean / n * s[..., :, None] * s[..., None, :]
    b = w_own * (_t(X) @ y[..., None])[..., 0] + w_mean / n * s * y.sum(axis=-1)[..., None]
    return A, b


def mixup_operator(X: np.ndarray, a: float) -> np.ndarray:
    """pinv(A) B written as min-norm LS on the stacked design [sqrt(w1) X; sqrt(w2/n) s^T]."""
    n = X.shape[-2]
    w_own, w_mean = _mixup_weights(a)
    s = X.sum(axis=-2)[..., None, :]
    stacked = np.concatenate([np.sqrt(w_own) * X, np.sqrt(w_mean / n) * s], axis=-2)
    rhs = np.concatenate([np.sqrt(w_own) * np.eye(n), np.sqrt(w_mean / n) * np.ones((1, n))], axis=0)
    return np.linalg.pinv(stacked) @ rhs


# ----------------------------------------------------------------------------- a uniform handle


class Augmentation:
    """An augmentation by name: its sampler, aERM operator and (where defined) bar operator.

    Names and parameters: ``noise`` (sigma_a2), ``mask`` (beta, biased=False), ``het_mask`` (p),
    ``pepper`` (p, sigma_a2), ``rotation`` (alpha, c=None, model="block"), ``cutout`` (length,
    circular=True), ``mixup`` (a; its sampler needs labels, see ``augmentations.sample_mixup``).
    """

    def __init__(self, name: str, **params):
        if name not in ("noise", "mask", "het_mask", "pepper", "rotation", "cutout", "mixup"):
            raise ValueError(f"unknown augmentation {name!r}")
        self.name = name
        self.params = params

    def __repr__(self) -> str:
        return f"Augmentation({self.name!r}, {self.params})"

    def moments(self, d: int) -> MaskMoments | None:
        p = self.params
        if self.name == "noise":
            return noise_moments(d, p["sigma_a2"])
        if self.name == "mask":
            return mask_moments(d, p["beta"], p.get("biased", False))
        if self.name == "het_mask":
            return het_mask_moments(p["p"], p.get("biased", False))
        if self.name == "pepper":
            return pepper_moments(d, p["p"], p["sigma_a2"])
        if self.name == "cutout":
            return cutout_moments(d, p["length"], p.get("circular", True), p.get("unbiased", True))
        return None

    def sample(self, X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        p = self.params
        if self.name == "noise":
            return aug.sample_noise(X, p["sigma_a2"], rng)
        if self.name == "mask":
            return aug.sample_mask(X, p["beta"], rng, p.get("biased", False))
        if self.name == "het_mask":
            return aug.sample_het_mask(X, p["p"], rng, p.get("biased", False))
        if self.name == "pepper":
            return aug.sample_pepper(X, p["p"], p["sigma_a2"], rng)
        if self.name == "cutout":
            return aug.sample_cutout(X, p["length"], rng, p.get("circular", True), p.get("unbiased", True))
        if self.name == "rotation":
            return aug.sample_rotation(X, p["alpha"], rng, p.get("model", "block"))
        raise ValueError("mixup mixes labels too: use augmentations.sample_mixup")

    def operator(self, X: np.ndarray) -> np.ndarray:
        p = self.params
        if self.name == "noise":
            return noise_operator(X, p["sigma_a2"])
        if self.name == "mask":
            return mask_operator(X, p["beta"], p.get("biased", False))
        if self.name == "rotation":
            return rotation_operator(X, p["alpha"], p.get("c"))
        if self.name == "mixup":
            return mixup_operator(X, p["a"])
        return masking_operator(X, self.moments(X.shape[-1]))

    def bar_operator(self, X: np.ndarray, lam: np.ndarray) -> np.ndarray:
        p = self.params
        if self.name == "mask":
            return mask_bar_operator(X, p["beta"], lam, p.get("biased", False))
        if self.name == "rotation":
            return rotation_bar_operator(X, p["alpha"], lam, p.get("c"))
        if self.name == "mixup":
            raise ValueError("mixup has no deterministic (bar) version in the brief")
        return masking_bar_operator(X, self.moments(X.shape[-1]), lam)
