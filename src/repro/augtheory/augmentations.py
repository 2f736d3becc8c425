"""Augmentations g(x): exact moments and Monte-Carlo samplers (brief §2.1, "Closed forms used in the code").

Every augmentation except rotation and mixup has the form g(x) = D x + z with D a random
diagonal matrix and z zero-mean noise with E[z z^T] = tau^2 I, E[z | D] = 0.  Then

    E g(x) = m * x,   E[g g^T] = (m m^T + C) o (x x^T) + tau^2 I,

with m = E diag(D), C = Cov(diag(D)) (a vector when the entries of D are independent, a
matrix otherwise) and o the Hadamard product (brief: Cov_g = Cov(D) o x x^T).  ``MaskMoments``
holds (m, C, tau^2):

* Gaussian noise N(0, sigma_a^2 I):          m = 1, C = 0, tau^2 = sigma_a^2
* unbiased random mask (drop w.p. beta, rescale 1/(1-beta)):  m = 1, C = beta/(1-beta)
* biased random mask (no rescale):           m = 1-beta, C = beta(1-beta)
* heterogeneous mask, per-coordinate p_i:    m = 1, C_i = p_i/(1-p_i)  (or biased analogue)
* salt-and-pepper (mask w.p. p, masked entries ~ N(0, sigma_a^2), rescale 1/(1-p)):
  m = 1, C = p/(1-p), tau^2 = p sigma_a^2/(1-p)^2
* cutout's linear analogue: zero a contiguous block of L coordinates with a uniformly random
  start.  Default (our choice, documented): **circular** blocks, start uniform on {0..d-1},
  block {s, ..., s+L-1} mod d, so every coordinate is dropped with probability L/d and
  Cov(D) is circulant (banded Toeplitz with wrap-around):
  Cov(B)_jk = (max(0, L - delta) + max(0, L - (d - delta)))/d - (L/d)^2, delta = (k-j) mod d,
  for the block indicator B = 1 - D (diagonal L/d - (L/d)^2).  The unbiased version rescales
  by 1/(1 - L/d).  ``circular=False`` uses starts {0..d-L} (no wrap); its moments are then
  computed exactly by enumerating the d-L+1 starts, and the unbiased version rescales each
  coordinate by its own keep probability.

Random rotation by an angle alpha.  The notebooks use the regulariser c(alpha) (||x||^2 I - x x^T)
with c(alpha) = 4 (1 - cos alpha)/d (``rotation_constant``), which we keep as the operative
definition.  The exact constant depends on the rotation model (brief §2.1, §6.2):

* ``"block"`` (used for the exact Monte-Carlo check): R = Q diag(rot(alpha), ..., rot(alpha)) Q^T
  with Q Haar, i.e. R x = cos(alpha) x + sin(alpha) J x, J x uniform on the sphere of radius
  ||x|| orthogonal to x.  Then E R x = cos(alpha) x and Cov(R x) = sin^2(alpha)/(d-1)
  (||x||^2 I - x x^T) exactly; the unbiased version R x / cos(alpha) (rescaled like the unbiased
  mask) has Cov = tan^2(alpha)/(d-1) (||x||^2 I - x x^T) (``block_rotation_constant``).
* ``"plane"``: rotation by alpha in one uniformly random 2-plane.  Its covariance is only
  approximately of the (||x||^2 I - x x^T) form, but E||R x - x||^2 = 4 (1 - cos alpha)/d ||x||^2
  exactly: the notebooks' c(alpha) is this mean squared displacement per unit ||x||^2.

Mixup (early notebook ``generalization_da_9_22``): x~ = l x_i + (1-l) x_j, y~ = l y_i + (1-l) y_j,
l ~ Beta(a, a), partner j uniform over all n points (i included).  This is the choice under
which the brief's closed form is exact.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


class MaskMoments(NamedTuple):
    """Moments of g(x) = D x + z: mean (d,) of diag(D), covariance (d,) or (d, d), noise variance."""

    mean: np.ndarray
    cov: np.ndarray
    noise_var: float = 0.0

    @property
    def full(self) -> bool:
        return np.ndim(self.cov) == 2

    def cov_matrix(self) -> np.ndarray:
        return self.cov if self.full else np.diag(self.cov)


# ----------------------------------------------------------------------------- moments


def noise_moments(d: int, sigma_a2: float) -> MaskMoments:
    return MaskMoments(np.ones(d), np.zeros(d), float(sigma_a2))


def mask_moments(d: int, beta: float, biased: bool = False) -> MaskMoments:
    return het_mask_moments(np.full(d, float(beta)), biased)


def het_mask_moments(p, biased: bool = False) -> MaskMoments:
    p = np.asarray(p, dtype=float)
    if np.any((p < 0) | (p >= 1)):
        raise ValueError("mask probabilities must lie in [0, 1)")
    if biased:
        return MaskMoments(1.0 - p, p * (1.0 - p), 0.0)
    return MaskMoments(np.ones_like(p), p / (1.0 - p), 0.0)


def pepper_moments(d: int, p: float, sigma_a2: float) -> MaskMoments:
    psi = p / (1.0 - p)
    return MaskMoments(np.ones(d), np.full(d, psi), psi * sigma_a2 / (1.0 - p))


def cutout_starts(d: int, length: int, circular: bool = True) -> np.ndarray:
    """(S, d) indicator of the dropped block for every possible start (S = d or d-L+1)."""
    if not 0 < length < d:
        raise ValueError(f"block length must be in (0, d), got {length}")
    j = np.arange(d)
    if circular:
        s = np.arange(d)[:, None]
        return ((j[None, :] - s) % d < length).astype(float)
    s = np.arange(d - length + 1)[:, None]
    return ((j[None, :] >= s) & (j[None, :] < s + length)).astype(float)


def cutout_moments(d: int, length: int, circular: bool = True, unbiased: bool = True) -> MaskMoments:
    """Exact moments of the contiguous-block mask D = 1 - B by enumerating all starts."""
    keep = 1.0 - cutout_starts(d, length, circular)
    mean = keep.mean(axis=0)
    second = keep.T @ keep / keep.shape[0]
    cov = second - np.outer(mean, mean)
    if unbiased:
        return MaskMoments(np.ones(d), cov / np.outer(mean, mean), 0.0)
    return MaskMoments(mean, cov, 0.0)


def circular_cutout_covariance(d: int, length: int) -> np.ndarray:
    """Closed form of Cov(B) for the circular block indicator (a circulant matrix)."""
    q = length / d
    delta = (np.arange(d)[None, :] - np.arange(d)[:, None]) % d
    both = np.maximum(0, length - delta) + np.maximum(0, length - (d - delta))
    both = np.where(delta == 0, length, both)
    return both / d - q * q


# ----------------------------------------------------------------------------- rotation constants


def rotation_constant(alpha_deg: float, d: int) -> float:
    """The notebooks' c(alpha) = 4 (1 - cos alpha)/d (operative definition)."""
    return 4.0 * (1.0 - np.cos(np.deg2rad(alpha_deg))) / d


def block_rotation_constant(alpha_deg: float, d: int) -> float:
    """Exact c for the unbiased block rotation R x / cos(alpha): tan^2(alpha)/(d-1)."""
    return float(np.tan(np.deg2rad(alpha_deg)) ** 2 / (d - 1))


# ----------------------------------------------------------------------------- samplers
# Each sampler maps X of shape (..., d) to an independent augmentation of every row.


def sample_noise(X: np.ndarray, sigma_a2: float, rng: np.random.Generator) -> np.ndarray:
    return X + np.sqrt(sigma_a2) * rng.standard_normal(X.shape)


def sample_het_mask(X: np.ndarray, p, rng: np.random.Generator, biased: bool = False) -> np.ndarray:
    p = np.broadcast_to(np.asarray(p, dtype=float), X.shape[-1:])
    keep = rng.random(X.shape) >= p
    out = X * keep
    return out if biased else out / (1.0 - p)


def sample_mask(X: np.ndarray, beta: float, rng: np.random.Generator, biased: bool = False) -> np.ndarray:
    return sample_het_mask(X, beta, rng, biased)


def sample_pepper(X: np.ndarray, p: float, sigma_a2: float, rng: np.random.Generator) -> np.ndarray:
    keep = rng.random(X.shape) >= p
    fill = np.sqrt(sigma_a2) * rng.standard_normal(X.shape)
    return np.where(keep, X, fill) / (1.0 - p)


def sample_cutout(
    X: np.ndarray, length: int, rng: np.random.Generator, circular: bool = True, unbiased: bool = True
) -> np.ndarray:
    d = X.shape[-1]
    starts = cutout_starts(d, length, circular)
    pick = rng.integers(0, starts.shape[0], size=X.shape[:-1])
    out = X * (1.0 - starts[pick])
    if unbiased:
        out = out / (1.0 - starts.mean(axis=0))
    return out


def _unit_orthogonal(X: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Uniform unit vectors orthogonal to each row of X."""
    w = rng.standard_normal(X.shape)
    sq = np.sum(X * X, axis=-1, keepdims=True)
    w = w - np.sum(w * X, axis=-1, keepdims=True) / np.where(sq > 0, sq, 1.0) * X
    return w / np.linalg.norm(w, axis=-1, keepdims=True)


def sample_rotation(
    X: np.ndarray, alpha_deg: float, rng: np.random.Generator, model: str = "block", unbiased: bool = True
) -> np.ndarray:
    """Rotate every row by ``alpha_deg``; ``model`` "block" (exact structure) or "plane" (see module doc).

    ``unbiased`` divides the block rotation by cos(alpha) so that E g(x) = x; the plane model is
    returned as is.
    """
    a = np.deg2rad(alpha_deg)
    if model == "block":
        norm = np.linalg.norm(X, axis=-1, keepdims=True)
        out = np.cos(a) * X + np.sin(a) * norm * _unit_orthogonal(X, rng)
        return out / np.cos(a) if unbiased else out
    if model == "plane":
        u = rng.standard_normal(X.shape)
        u /= np.linalg.norm(u, axis=-1, keepdims=True)
        v = _unit_orthogonal(u, rng)
        ux = np.sum(u * X, axis=-1, keepdims=True)
        vx = np.sum(v * X, axis=-1, keepdims=True)
        return X + (np.cos(a) - 1.0) * (u * ux + v * vx) + np.sin(a) * (v * ux - u * vx)
    raise ValueError(f"unknown rotation model {model!r}")


def sample_mixup(X: np.ndarray, y: np.ndarray, a: float, rng: np.random.Generator):
    """Mix every point i of X (..., n, d) with a uniform partner j (i included), l ~ Beta(a, a)."""
    n = X.shape[-2]
    j = rng.integers(0, n, size=X.shape[:-1])
    lam = rng.beta(a, a, size=X.shape[:-1])
    partner_x = np.take_along_axis(X, j[..., None], axis=-2)
    partner_y = np.take_along_axis(y, j, axis=-1)
    return lam[..., None] * X + (1.0 - lam[..., None]) * partner_x, lam * y + (1.0 - lam) * partner_y
