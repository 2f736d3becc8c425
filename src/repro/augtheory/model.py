"""The linear-Gaussian model of the data-augmentation paper (brief §2.1).

x ~ N(0, Sigma) with Sigma = diag(lam) diagonal, y = <theta*, x> + eps, eps ~ N(0, sigma^2).
Defaults follow the notebooks of ``nerdslab/augmentation-theory`` as the brief reports them:
d = 128, sigma = 0.5, SNR = 4, and Sigma rescaled so that theta*^T Sigma theta* = SNR sigma^2
(= 1 at the defaults).  Spectra: lam_i = decay^i (decay 1, 0.95 or 0.9), or
lam_i = smallest_eig^(i/d) (the ``convergence_to_closeform`` notebooks), or an explicit list.
theta* is 1-sparse (e_0, "sparse") or a unit-norm Gaussian vector ("gaussian").

Sampling uses X = randn(n, d) * sqrt(lam) (the brief's speed-up; same law as a
multivariate-normal draw, different random stream).  Classification labels are
sign(x_s) for the signal coordinate s (0 by default), each flipped with probability nu.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

D_DEFAULT = 128
SIGMA_DEFAULT = 0.5
SNR_DEFAULT = 4.0


def spectrum(
    d: int = D_DEFAULT,
    *,
    decay: float | None = None,
    smallest_eig: float | None = None,
    eigs=None,
) -> np.ndarray:
    """Unscaled diagonal of Sigma: decay^i, smallest_eig^(i/d), or the explicit ``eigs``.

    Exactly one of the three must be given (``decay=1`` is the isotropic case).
    """
    given = [v is not None for v in (decay, smallest_eig, eigs)]
    if sum(given) != 1:
        raise ValueError("give exactly one of decay, smallest_eig, eigs")
    i = np.arange(d, dtype=float)
    if decay is not None:
        return float(decay) ** i
    if smallest_eig is not None:
        return float(smallest_eig) ** (i / d)
    lam = np.asarray(eigs, dtype=float)
    if lam.shape != (d,):
        raise ValueError(f"eigs must have shape ({d},), got {lam.shape}")
    if np.any(lam <= 0):
        raise ValueError("eigenvalues must be positive")
    return lam.copy()


def theta_star(d: int = D_DEFAULT, kind: str = "gaussian", rng: np.random.Generator | None = None, signal: int = 0):
    """theta*: ``"sparse"`` gives e_signal, ``"gaussian"`` a unit-norm Gaussian vector (needs ``rng``)."""
    if kind == "sparse":
        theta = np.zeros(d)
        theta[signal] = 1.0
        return theta
    if kind == "gaussian":
        if rng is None:
            raise ValueError("a Gaussian theta* needs an rng")
        g = rng.standard_normal(d)
        return g / np.linalg.norm(g)
    raise ValueError(f"unknown theta* kind {kind!r}")


def snr_scale(lam: np.ndarray, theta: np.ndarray, sigma: float = SIGMA_DEFAULT, snr: float = SNR_DEFAULT) -> float:
    """The factor c with (c lam) such that theta^T diag(c lam) theta = snr sigma^2."""
    signal = float(np.sum(lam * theta**2))
    return snr * sigma**2 / signal


@dataclass(frozen=True)
class LinearGaussianModel:
    """x ~ N(0, diag(lam)), y = x . theta + sigma eps; ``signal`` is the classification coordinate."""

    lam: np.ndarray
    theta: np.ndarray
    sigma: float = SIGMA_DEFAULT
    signal: int = 0

    @property
    def d(self) -> int:
        return int(self.lam.shape[0])

    @property
    def snr(self) -> float:
        return float(np.sum(self.lam * self.theta**2) / self.sigma**2)

    def sample_x(self, rng: np.random.Generator, n: int, trials: int | None = None) -> np.ndarray:
        """(n, d), or (trials, n, d) when ``trials`` is given."""
        shape = (n, self.d) if trials is None else (trials, n, self.d)
        return rng.standard_normal(shape) * np.sqrt(self.lam)

    def noise(self, rng: np.random.Generator, shape) -> np.ndarray:
        return self.sigma * rng.standard_normal(shape)

    def responses(self, rng: np.random.Generator, X: np.ndarray) -> np.ndarray:
        """y = X theta + eps for X of shape (..., n, d)."""
        return X @ self.theta + self.noise(rng, X.shape[:-1])

    def sample(self, rng: np.random.Generator, n: int, trials: int | None = None):
        X = self.sample_x(rng, n, trials)
        return X, self.responses(rng, X)

    def labels(self, rng: np.random.Generator, X: np.ndarray, flip: float) -> np.ndarray:
        """+-1 labels sign(x_signal), each flipped independently with probability ``flip``."""
        clean = np.where(X[..., self.signal] >= 0, 1.0, -1.0)
        flips = rng.random(clean.shape) < flip
        return np.where(flips, -clean, clean)


def make_model(
    d: int = D_DEFAULT,
    *,
    decay: float | None = None,
    smallest_eig: float | None = None,
    eigs=None,
    theta: str | np.ndarray = "gaussian",
    sigma: float = SIGMA_DEFAULT,
    snr: float | None = SNR_DEFAULT,
    rng: np.random.Generator | None = None,
    signal: int = 0,
) -> LinearGaussianModel:
    """Build the model; ``snr=None`` keeps the spectrum unscaled.

    With no spectrum argument the spectrum is isotropic (decay 1).
    """
    if decay is None and smallest_eig is None and eigs is None:
        decay = 1.0
    lam = spectrum(d, decay=decay, smallest_eig=smallest_eig, eigs=eigs)
    th = np.asarray(theta, dtype=float) if not isinstance(theta, str) else theta_star(d, theta, rng, signal)
    if snr is not None:
        lam = lam * snr_scale(lam, th, sigma, snr)
    return LinearGaussianModel(lam=lam, theta=th, sigma=float(sigma), signal=int(signal))
