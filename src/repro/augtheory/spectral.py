"""Spectrum manipulation by augmentation (brief §2.1 "two effects", §2.2 E2.1 = README Fig. 1 left).

The deterministic aERM estimator is theta_bar = (X^T X + n Sigma_aug)^-1 X^T y
= Sigma_aug^-1/2 (X~^T X~ + n I)^-1 X~^T y with X~ = X Sigma_aug^-1/2: augmentation reweights the
data spectrum to Sigma_aug^-1/2 Sigma Sigma_aug^-1/2 and adds a uniform ridge.  Fig. 1 (left)
plots the sorted eigenvalues of I + Sigma_aug^-1/2 Sigma Sigma_aug^-1/2 for

* random mask beta:       Sigma_aug = beta/(1-beta) diag(Sigma)  -> flat at 1/beta
* random rotation alpha:  Sigma_aug = c(alpha) (tr(Sigma) I - Sigma), c = 4(1-cos alpha)/d
* Gaussian noise:         Sigma_aug = sigma_a^2 I
* salt-and-pepper:        Sigma_aug = psi diag(Sigma) + psi sigma_a^2/(1-p) I, psi = p/(1-p)

Everything here assumes Sigma diagonal (``lam``), as in the paper's experiments.
"""

from __future__ import annotations

import numpy as np

from repro.augtheory.augmentations import rotation_constant


def mask_aug_cov(lam: np.ndarray, beta: float) -> np.ndarray:
    return beta / (1.0 - beta) * np.asarray(lam, dtype=float)


def rotation_aug_cov(lam: np.ndarray, alpha_deg: float, c: float | None = None) -> np.ndarray:
    lam = np.asarray(lam, dtype=float)
    c = rotation_constant(alpha_deg, lam.shape[0]) if c is None else c
    return c * (lam.sum() - lam)


def noise_aug_cov(lam: np.ndarray, sigma_a2: float) -> np.ndarray:
    return np.full(np.shape(lam), float(sigma_a2))


def pepper_aug_cov(lam: np.ndarray, p: float, sigma_a2: float) -> np.ndarray:
    psi = p / (1.0 - p)
    return psi * np.asarray(lam, dtype=float) + psi * sigma_a2 / (1.0 - p)


def augmented_spectrum(lam: np.ndarray, lam_aug: np.ndarray) -> np.ndarray:
    """Eigenvalues of I + Sigma_aug^-1/2 Sigma Sigma_aug^-1/2, sorted in decreasing order."""
    return np.sort(1.0 + np.asarray(lam, dtype=float) / np.asarray(lam_aug, dtype=float))[::-1]
