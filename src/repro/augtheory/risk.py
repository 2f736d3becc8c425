"""Risks of linear estimators theta = G y on the linear-Gaussian model (brief §2.1).

Regression.  For an estimator theta_hat = G y with y = X theta* + eps, eps ~ N(0, sigma^2 I), and
its deterministic ("bar") counterpart theta_bar = G_bar y, with ||v||_Sigma^2 = v^T Sigma v:

* Bias     = ||E_eps theta_bar - theta*||_Sigma^2 = ||G_bar X theta* - theta*||_Sigma^2
* Var      = E_eps ||theta_bar - E_eps theta_bar||_Sigma^2 = sigma^2 tr(G_bar^T Sigma G_bar)
             (the brief's exact sigma^2 tr(A^-1 X^T X A^-1 Sigma) speed-up, no sampled eps)
* ApproxErr = E_eps ||theta_hat - theta_bar||_Sigma^2
* MSE      = E_eps ||theta_hat - theta*||_Sigma^2

All four are exact expectations over the label noise (conditional on X), so the split is exact
up to the cross term  Cross = E_eps <theta_hat - theta_bar, theta_bar - theta*>_Sigma:

    MSE = Bias + Var + ApproxErr + 2 Cross.

For deterministic regularisers (LSE, noise) theta_hat = theta_bar, so ApproxErr = Cross = 0 and
MSE = Bias + Var.  ``risk_terms`` gives (bias, var, mse) of a single estimator.

Classification (labels sign(x_s) with flips): SU = theta_s sqrt(lam_s) ("survival"),
CN = sqrt(theta^T Sigma theta - SU^2) ("contamination"), and the exact probability of error
against the clean label, POE = P[sign(x_s) != sign(<x, theta>)] = 1/2 - arctan(SU/CN)/pi.
POE is invariant to rescaling theta (why the biased mask does not hurt classification).
"""

from __future__ import annotations

import numpy as np


def _sigma_norm2(v: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return np.sum(lam * v * v, axis=-1)


def mean_estimate(G: np.ndarray, X: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """E_eps theta_hat = G X theta*, shape (..., d)."""
    return (G @ (X @ theta)[..., None])[..., 0]


def noise_trace(G1: np.ndarray, G2: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """tr(G1^T Sigma G2) for G of shape (..., d, n)."""
    return np.einsum("...jn,j,...jn->...", G1, lam, G2)


def risk_terms(G: np.ndarray, X: np.ndarray, theta: np.ndarray, lam: np.ndarray, sigma: float) -> dict:
    """Bias, Var and MSE (= Bias + Var) of theta = G y, exact in the label noise; arrays over the batch."""
    bias = _sigma_norm2(mean_estimate(G, X, theta) - theta, lam)
    var = sigma**2 * noise_trace(G, G, lam)
    return {"bias": bias, "var": var, "mse": bias + var}


def decomposition(
    G_hat: np.ndarray, G_bar: np.ndarray, X: np.ndarray, theta: np.ndarray, lam: np.ndarray, sigma: float
) -> dict:
    """MSE of theta_hat and its split into Bias, Var (of theta_bar), ApproxErr and Cross (see module doc)."""
    m_hat = mean_estimate(G_hat, X, theta)
    m_bar = mean_estimate(G_bar, X, theta)
    delta = G_hat - G_bar
    s2 = sigma**2
    return {
        "mse": _sigma_norm2(m_hat - theta, lam) + s2 * noise_trace(G_hat, G_hat, lam),
        "bias": _sigma_norm2(m_bar - theta, lam),
        "var": s2 * noise_trace(G_bar, G_bar, lam),
        "approx_err": _sigma_norm2(m_hat - m_bar, lam) + s2 * noise_trace(delta, delta, lam),
        "cross": np.sum(lam * (m_hat - m_bar) * (m_bar - theta), axis=-1) + s2 * noise_trace(delta, G_bar, lam),
    }


def prediction_risk(theta_hat: np.ndarray, theta_star: np.ndarray, lam: np.ndarray) -> np.ndarray:
    """Regression test risk ||theta_hat - theta*||_Sigma^2 (the excess over the noise floor sigma^2)."""
    return _sigma_norm2(theta_hat - theta_star, lam)


def su_cn(theta: np.ndarray, lam: np.ndarray, signal: int = 0) -> tuple[np.ndarray, np.ndarray]:
    su = theta[..., signal] * np.sqrt(lam[signal])
    total = _sigma_norm2(theta, lam)
    cn = np.sqrt(np.maximum(total - su * su, 0.0))
    return su, cn


def poe_from_su_cn(su: np.ndarray, cn: np.ndarray) -> np.ndarray:
    """1/2 - arctan(SU/CN)/pi, written with arctan2 so CN = 0 is handled."""
    return 0.5 - np.arctan2(su, cn) / np.pi


def poe(theta: np.ndarray, lam: np.ndarray, signal: int = 0) -> np.ndarray:
    return poe_from_su_cn(*su_cn(theta, lam, signal))
