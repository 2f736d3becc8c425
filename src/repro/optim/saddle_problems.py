"""The two objectives of "Escaping Saddle Points Faster with Stochastic Momentum".

Wang, Lin & Abernethy, ICLR 2020 (brief: ../shared/papers/theory.md §1).

* ``ToySaddle`` is Eq. 3 (Fig. 2a): f(w) = 1/n sum_i (1/2 w'Hw + b_i'w + ||w||_10^10)
  with H = diag(1, -0.1), b_i ~ N(0, diag(0.1, 0.001)) read as a covariance, n = 10.
* ``PhaseRetrieval`` is Eq. 4 (Fig. 2b): f(w) = s * sum_i ((a_i'w)^2 - y_i)^2,
  y_i = (a_i'w*)^2, a_i ~ N(0, I_d), w* ~ N(0, I_d / d).  The submission prints
  s = 1/n; the brief found that single-sample SGD with eta = 5e-4 diverges for
  beta = 0.9 at that scale, so the scale is a config choice ("1/n" or "1/(4n)").

Every problem is a *batch* of independent instances (one per seed) so that the
simulator can vectorise over seeds and momentum values.  Shapes: parameters
``w`` are (S, B, d) with S instances and B runs per instance.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PHASE_RETRIEVAL_SCALES = {"1/n": 1.0, "1/(4n)": 0.25}


@dataclass
class ToySaddle:
    """Eq. 3 for S independent draws of the offsets b_i (one per seed)."""

    b: np.ndarray  # (S, n, 2) per-sample linear offsets
    h: np.ndarray  # (2,) diagonal of H

    @classmethod
    def sample(cls, seeds, n: int = 10, h=(1.0, -0.1), b_var=(0.1, 0.001)) -> "ToySaddle":
        b = np.stack([np.random.default_rng(seed).normal(size=(n, 2)) * np.sqrt(np.asarray(b_var)) for seed in seeds])
        return cls(b=b, h=np.asarray(h, dtype=float))

    @property
    def n_samples(self) -> int:
        return self.b.shape[1]

    @property
    def dim(self) -> int:
        return 2

    def initial_point(self, seeds) -> np.ndarray:
        """w0 = 0, the neighbourhood of the saddle (objective value 0)."""
        return np.zeros((len(seeds), self.dim))

    def loss(self, w: np.ndarray) -> np.ndarray:
        b_mean = self.b.mean(axis=1)[:, None, :]
        return (0.5 * self.h * w**2 + b_mean * w + w**10).sum(axis=-1)

    def grad(self, w: np.ndarray) -> np.ndarray:
        b_mean = self.b.mean(axis=1)[:, None, :]
        return self.h * w + b_mean + 10.0 * w**9

    def hessian(self, w: np.ndarray) -> np.ndarray:
        diag = self.h + 90.0 * w**8
        return diag[..., :, None] * np.eye(self.dim)

    def gather(self, idx: np.ndarray) -> tuple[np.ndarray]:
        """Mini-batch data for index blocks ``idx`` (C, S, batch): the mean offset, (C, S, 2)."""
        rows = np.arange(self.b.shape[0])[None, :, None]
        return (self.b[rows, idx].mean(axis=2),)

    def stochastic_grad(self, w: np.ndarray, batch: tuple[np.ndarray]) -> np.ndarray:
        """Gradient of the sampled terms (one step of ``gather``), shared by the B runs."""
        (b_batch,) = batch
        w2 = w * w
        w8 = (w2 * w2) ** 2
        return self.h * w + b_batch[:, None, :] + 10.0 * w8 * w


@dataclass
class PhaseRetrieval:
    """Eq. 4 for S independent draws of (w*, A) (one per seed)."""

    a: np.ndarray  # (S, n, d) sensing vectors
    w_star: np.ndarray  # (S, d)
    scale: float  # 1 for the printed 1/n objective, 1/4 for 1/(4n)

    @classmethod
    def sample(cls, seeds, n: int = 200, d: int = 10, scale: str = "1/n") -> "PhaseRetrieval":
        if scale not in PHASE_RETRIEVAL_SCALES:
            raise ValueError(f"phase retrieval scale {scale!r} is not one of {sorted(PHASE_RETRIEVAL_SCALES)}")
        a, w_star = [], []
        for seed in seeds:
            rng = np.random.default_rng(seed)
            w_star.append(rng.normal(size=d) / np.sqrt(d))
            a.append(rng.normal(size=(n, d)))
        return cls(a=np.stack(a), w_star=np.stack(w_star), scale=PHASE_RETRIEVAL_SCALES[scale])

    def __post_init__(self):
        self.y = np.einsum("snd,sd->sn", self.a, self.w_star) ** 2

    @property
    def n_samples(self) -> int:
        return self.a.shape[1]

    @property
    def dim(self) -> int:
        return self.a.shape[2]

    def initial_point(self, seeds, init_var: float = 1e-4) -> np.ndarray:
        """w0 ~ N(0, I_d / (10000 d)), drawn from a stream separate from the data."""
        d = self.dim
        return np.stack([np.random.default_rng([seed, 1]).normal(size=d) * np.sqrt(init_var / d) for seed in seeds])

    def _residuals(self, w, a, y):
        proj = np.einsum("snd,sbd->sbn", a, w)
        return proj, proj**2 - y[:, None, :]

    def loss(self, w: np.ndarray) -> np.ndarray:
        _, res = self._residuals(w, self.a, self.y)
        return self.scale * (res**2).mean(axis=-1)

    def grad(self, w: np.ndarray) -> np.ndarray:
        proj, res = self._residuals(w, self.a, self.y)
        return 4.0 * self.scale * np.einsum("sbn,snd->sbd", res * proj, self.a) / self.n_samples

    def hessian(self, w: np.ndarray) -> np.ndarray:
        proj, _ = self._residuals(w, self.a, self.y)
        weights = 3.0 * proj**2 - self.y[:, None, :]
        return 4.0 * self.scale * np.einsum("sbn,sni,snj->sbij", weights, self.a, self.a) / self.n_samples

    def gather(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Mini-batch data for index blocks ``idx`` (C, S, batch): rows of A and labels."""
        rows = np.arange(self.a.shape[0])[None, :, None]
        return self.a[rows, idx], self.y[rows, idx]

    def stochastic_grad(self, w: np.ndarray, batch: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
        a_batch, y_batch = batch
        proj, res = self._residuals(w, a_batch, y_batch)
        return 4.0 * self.scale * np.einsum("sbn,snd->sbd", res * proj, a_batch) / a_batch.shape[1]

    def relative_distance(self, w: np.ndarray) -> np.ndarray:
        """min(||w - w*||, ||w + w*||) / ||w*||; the sign of w* is not identifiable."""
        ws = self.w_star[:, None, :]
        dist = np.minimum(np.linalg.norm(w - ws, axis=-1), np.linalg.norm(w + ws, axis=-1))
        return dist / np.linalg.norm(ws, axis=-1)


def build_problem(kind: str, seeds, **options):
    """Instantiate a problem family by its config name."""
    if kind == "toy_saddle":
        return ToySaddle.sample(seeds, **options)
    if kind == "phase_retrieval":
        return PhaseRetrieval.sample(seeds, **options)
    raise ValueError(f"unknown saddle problem {kind!r}; expected 'toy_saddle' or 'phase_retrieval'")
