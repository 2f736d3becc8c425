"""The properties that Theorem 1 of the stochastic-momentum paper assumes, measured along a run.

Definitions follow §1.1/§1.4 of the brief (Wang, Lin & Abernethy, ICLR 2020):

* APAG ratio  <grad f(w_t), m_t - g_t> / ||grad f(w_t)||^2          (APAG asks >= -1/2)
* APCG ratio  <grad f(w_t), M_t m_t> / (eta sigma_max(M_t) ||grad f(w_t)||^2)
  with M_t = (prod_{s=1}^{K} G_{s,t})^2 and G_{s,t} = I - eta theta_s H_t,
  theta_s = (1 - beta^s) / (1 - beta)                                 (APCG asks >= -c')
* GrACE value [eta <grad f, g_t - m_t> + eta^2/2 m_t' H_t m_t] / eta^2 (GrACE asks <= c_h)

The sample value at each recorded step stands in for the conditional expectation E_t,
as in the paper's plots.  All inputs carry leading batch dimensions (..., d).
"""

from __future__ import annotations

import numpy as np

# beta^s below this is zero in float64 arithmetic next to 1, so theta_s = 1/(1-beta) exactly.
_NEGLIGIBLE = 1e-17


def _dot(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.einsum("...i,...i->...", x, y)


def apag_ratio(grad: np.ndarray, m: np.ndarray, g: np.ndarray) -> np.ndarray:
    return _dot(grad, m - g) / _dot(grad, grad)


def grace_value(grad: np.ndarray, m: np.ndarray, g: np.ndarray, hess: np.ndarray, eta: float) -> np.ndarray:
    curvature = np.einsum("...i,...ij,...j->...", m, hess, m)
    return _dot(grad, g - m) / eta + 0.5 * curvature


def log_abs_product(eigenvalues: np.ndarray, eta: float, beta: float, k: int) -> np.ndarray:
    """log |prod_{s=1}^{k} (1 - eta theta_s lambda)| elementwise, without overflow.

    theta_s reaches its limit 1/(1-beta) after a few hundred steps, so the tail of the
    product is a closed-form power; only the head is summed term by term.
    """
    lam = np.asarray(eigenvalues, dtype=float)
    if beta == 0.0:
        head = 0
    else:
        head = min(k, int(np.ceil(np.log(_NEGLIGIBLE) / np.log(beta))))
    s = np.arange(1, head + 1)
    theta = (1.0 - beta**s) / (1.0 - beta)
    with np.errstate(divide="ignore"):
        head_sum = np.log(np.abs(1.0 - eta * theta * lam[..., None])).sum(axis=-1)
        tail = (k - head) * np.log(np.abs(1.0 - eta * lam / (1.0 - beta)))
    return head_sum + tail


def apcg_ratio(grad: np.ndarray, m: np.ndarray, hess: np.ndarray, eta: float, beta: float, k: int) -> np.ndarray:
    """APCG ratio with M_t normalised by its largest eigenvalue (the ratio is scale-free)."""
    lam, q = np.linalg.eigh(hess)
    log_p = log_abs_product(lam, eta, beta, k)
    weights = np.exp(2.0 * (log_p - log_p.max(axis=-1, keepdims=True)))
    m_rot = np.einsum("...ji,...j->...i", q, m)
    mm = np.einsum("...ij,...j->...i", q, weights * m_rot)
    return _dot(grad, mm) / (eta * _dot(grad, grad))
