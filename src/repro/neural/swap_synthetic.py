"""Swap-VAE's synthetic benchmark (pi-VAE-style), ported to NumPy / torch without TensorFlow.

Follows the brief ``shared/papers/ssl_graph_neural.md`` §2.5, which reads Swap-VAE's
``synthetic_data.py`` (adapted from pi-VAE, Zhou & Wei 2020), with the sizes of §4:

1. Direction blocks ``d in (0, 2, 4, 6)`` (octant indices, i.e. 4 directions).  For block ``d`` NumPy is
   seeded with ``777 + d`` and the angles ``u ~ U[2 pi/8 d, 2 pi/8 (d + 1))`` are drawn
   (:func:`sample_latents`).
2. ``mu = (5 sin u, 5 cos u)``; variance ``v = 0.1 |mu|``, then ``v_0 := 0.6 - v_1``
   (:func:`latent_mean_var`); ``z = mu + sqrt(v) * N(0, I_2)`` (drawn from the same seeded stream, after
   ``u``), zero-padded to ``n_neurons`` = 100 dimensions.
3. A fixed random RealNVP map (:class:`RealNVPMap`): 4 blocks of 2 affine coupling layers, the fixed
   permutations ``numpy.random.seed(k); permutation(D)`` for ``k = 0, 1, 2`` between blocks; each coupling
   layer runs an MLP of widths ``[D/4, D/4, D]`` (25, 25, 100; relu, relu, linear) on the first half,
   ``s = 0.1 tanh(out[:D/2])``, ``t = out[D/2:]``, and outputs ``[x_2 * exp(s) + t, x_1]``.  Weights are
   Glorot-uniform with zero biases (the Keras default).  **The original weights are unseeded** (each
   TensorFlow run gives a different map); ours are drawn from ``torch.Generator().manual_seed(seed)``
   (default ``seed=0``), which is our choice, so the map is reproducible but not the authors' map.
4. Rates ``lambda = exp(2.2 tanh(f(z)))``, so every rate lies in ``(exp(-2.2), exp(2.2))``; spikes
   ``~ Poisson(lambda)`` from NumPy seeded with 777.  We draw the spikes of all blocks from one stream
   seeded 777, blocks in order (our reading; the brief does not say whether it is reseeded per block).
5. Pseudo-trials: each block's octant is cut into ``len`` = 4 equal angle sub-bins (the "time steps");
   every sub-bin is truncated to the smallest sub-bin's count and they are stacked, so trial ``j`` is the
   ``j``-th sample of sub-bins 0, 1, 2, 3, in increasing angle.  Inside a sub-bin samples keep their draw
   order (ours; the brief does not say).
6. Evaluation target ``angle = 2 pi/4 * direction index`` (index 0..3 of the block).

Sizes: 1000 samples per direction and 100 neurons, 4 directions (the brief's suggested offline size,
§4; the code's comments imply 5000 per block, §2.5 "Gaps").  Train/test 80/20 is **inferred** by the brief,
not in the code; we split *inside each direction block* (first 80 % of the block's pseudo-trials train,
rest test) so every direction appears in both splits, and a validation fraction may be requested
(``split=(train, val, test)``, ours).  Swap-VAE pairs these data with a ±3 jitter window (§2.4).

Everything is computed in float64 and returned as float32 tensors.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor

from repro.neural.reach import split_sizes
from repro.neural.trials import TrialData

__all__ = [
    "DIRECTION_BLOCKS",
    "CouplingLayer",
    "RealNVPMap",
    "firing_rates",
    "latent_mean_var",
    "pseudo_trials",
    "sample_latents",
    "swap_synthetic",
]

DIRECTION_BLOCKS: tuple[int, ...] = (0, 2, 4, 6)
"""Octant indices used by Swap-VAE's synthetic data (brief §2.5 step 1)."""


def latent_mean_var(u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean ``(5 sin u, 5 cos u)`` and variance of the 2-d latent for angles ``u [n]`` (brief §2.5 step 2).

    ``var = 0.1 |mu|`` per coordinate, then the first coordinate is replaced by ``0.6 - var_1``.
    """
    u = np.asarray(u, dtype=np.float64).reshape(-1)
    mu = np.stack([5.0 * np.sin(u), 5.0 * np.cos(u)], axis=1)
    var = 0.1 * np.abs(mu)
    var[:, 0] = 0.6 - var[:, 1]
    return mu, var


def sample_latents(
    direction: int, n_samples: int, n_dim: int = 100, data_seed: int = 777
) -> tuple[np.ndarray, np.ndarray]:
    """Angles ``u [n]`` in octant ``direction`` and latents ``z [n, n_dim]`` (zero-padded), seed ``data_seed + direction``."""
    if n_dim < 2:
        raise ValueError(f"n_dim must be >= 2, got {n_dim}")
    rs = np.random.RandomState(data_seed + direction)
    width = 2.0 * np.pi / 8.0
    u = rs.uniform(width * direction, width * (direction + 1), size=n_samples)
    mu, var = latent_mean_var(u)
    z2 = mu + np.sqrt(var) * rs.normal(0.0, 1.0, size=(n_samples, 2))
    z = np.zeros((n_samples, n_dim))
    z[:, :2] = z2
    return u, z


def firing_rates(mean: Tensor | np.ndarray) -> Tensor | np.ndarray:
    """``exp(2.2 tanh(mean))`` (brief §2.5 step 4)."""
    if isinstance(mean, Tensor):
        return torch.exp(2.2 * torch.tanh(mean))
    return np.exp(2.2 * np.tanh(mean))


@dataclass
class CouplingLayer:
    """One affine coupling layer ``[x1, x2] -> [x2 * exp(s(x1)) + t(x1), x1]`` (brief §2.5 step 3).

    ``weights`` / ``biases``: the MLP's layers (``[in, out]`` matrices, relu between, linear last).  The
    MLP output's first ``len(x1)`` entries give ``s = 0.1 tanh(.)`` and the rest give ``t``.
    """

    weights: list[Tensor]
    biases: list[Tensor]

    def _st(self, x1: Tensor) -> tuple[Tensor, Tensor]:
        h = x1
        for k, (w, b) in enumerate(zip(self.weights, self.biases, strict=True)):
            h = h @ w + b
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        dd = x1.shape[-1]
        return 0.1 * torch.tanh(h[..., :dd]), h[..., dd:]

    def forward(self, x: Tensor) -> Tensor:
        dd = x.shape[-1] // 2
        x1, x2 = x[..., :dd], x[..., dd:]
        s, t = self._st(x1)
        return torch.cat([x2 * torch.exp(s) + t, x1], dim=-1)

    def inverse(self, y: Tensor) -> Tensor:
        dd = y.shape[-1] // 2
        rest = y.shape[-1] - dd
        y2, x1 = y[..., :rest], y[..., rest:]
        s, t = self._st(x1)
        return torch.cat([x1, (y2 - t) * torch.exp(-s)], dim=-1)


@dataclass
class RealNVPMap:
    """The fixed random map ``f: R^D -> R^D``: blocks of coupling layers with permutations between blocks."""

    blocks: list[list[CouplingLayer]]
    permutations: list[Tensor]

    @classmethod
    def random(cls, n_dim: int = 100, n_blocks: int = 4, layers_per_block: int = 2, seed: int = 0) -> RealNVPMap:
        """Glorot-uniform weights, zero biases, from ``torch.Generator().manual_seed(seed)`` (float64).

        MLP widths ``[dd // 2, dd // 2, D]`` with ``dd = D // 2`` (pi-VAE's ``n_nodes``); permutation ``k``
        (between blocks ``k`` and ``k + 1``) is ``numpy.random.RandomState(k).permutation(D)``.
        """
        if n_dim < 2 or n_dim % 2:
            raise ValueError(f"n_dim must be even and >= 2, got {n_dim}")
        gen = torch.Generator().manual_seed(seed)
        dd = n_dim // 2
        widths = [dd, max(dd // 2, 1), max(dd // 2, 1), n_dim]
        blocks = []
        for _ in range(n_blocks):
            layers = []
            for _ in range(layers_per_block):
                ws, bs = [], []
                for fan_in, fan_out in zip(widths[:-1], widths[1:], strict=True):
                    limit = math.sqrt(6.0 / (fan_in + fan_out))
                    w = (torch.rand(fan_in, fan_out, generator=gen, dtype=torch.float64) * 2.0 - 1.0) * limit
                    ws.append(w)
                    bs.append(torch.zeros(fan_out, dtype=torch.float64))
                layers.append(CouplingLayer(ws, bs))
            blocks.append(layers)
        perms = [torch.from_numpy(np.random.RandomState(k).permutation(n_dim)) for k in range(n_blocks - 1)]
        return cls(blocks, perms)

    def forward(self, z: Tensor) -> Tensor:
        x = z
        for k, block in enumerate(self.blocks):
            if k > 0:
                x = x[..., self.permutations[k - 1]]
            for layer in block:
                x = layer.forward(x)
        return x

    def inverse(self, x: Tensor) -> Tensor:
        z = x
        for k in range(len(self.blocks) - 1, -1, -1):
            for layer in reversed(self.blocks[k]):
                z = layer.inverse(z)
            if k > 0:
                z = z[..., torch.argsort(self.permutations[k - 1])]
        return z

    __call__ = forward


def pseudo_trials(u: np.ndarray, low: float, high: float, n_sub_bins: int = 4) -> np.ndarray:
    """Row indices ``[n_trials, n_sub_bins]`` into ``u``: trial ``j`` takes the ``j``-th sample of each angle sub-bin.

    ``[low, high)`` is cut into ``n_sub_bins`` equal sub-bins; each is truncated to the smallest count
    (brief §2.5 step 5); samples keep their order inside a sub-bin.
    """
    u = np.asarray(u, dtype=np.float64)
    sub = np.clip(np.floor((u - low) / (high - low) * n_sub_bins).astype(np.int64), 0, n_sub_bins - 1)
    members = [np.flatnonzero(sub == k) for k in range(n_sub_bins)]
    m = min(len(idx) for idx in members)
    return np.stack([idx[:m] for idx in members], axis=1)


def swap_synthetic(
    n_samples: int = 1000,
    n_neurons: int = 100,
    directions: tuple[int, ...] = DIRECTION_BLOCKS,
    n_sub_bins: int = 4,
    split: tuple[float, float, float] = (0.8, 0.0, 0.2),
    seed: int = 0,
    data_seed: int = 777,
    return_info: bool = False,
) -> TrialData | tuple[TrialData, dict[str, Tensor]]:
    """Swap-VAE's synthetic data as pseudo-trials of ``n_sub_bins`` bins (brief §2.5).

    ``n_samples`` angles are drawn per direction block before the sub-bin truncation, so each block keeps
    ``n_sub_bins * min_k |sub-bin k|`` rows.  ``direction`` is the block's index (0..3 for the default
    blocks), ``angle = 2 pi / len(directions) * index``, ``velocity`` is zero, ``time`` the sub-bin.
    ``seed`` seeds the RealNVP weights (ours), ``data_seed`` the NumPy draws (777 in the code).

    With ``return_info=True`` also returns ``{"u", "z", "mean", "rate"}`` (float32, one row per output row:
    angles, padded latents, ``f(z)`` and Poisson means); the map itself is
    ``RealNVPMap.random(n_neurons, seed=seed)``.
    """
    for name, value, minimum in (
        ("n_samples", n_samples, 1),
        ("n_neurons", n_neurons, 2),
        ("n_sub_bins", n_sub_bins, 1),
    ):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
            raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if not directions:
        raise ValueError("directions must be non-empty")
    width = 2.0 * np.pi / 8.0
    us, zs, dirs, times, trial_split = [], [], [], [], []
    for index, d in enumerate(directions):
        u, z = sample_latents(int(d), n_samples, n_neurons, data_seed)
        rows = pseudo_trials(u, width * d, width * (d + 1), n_sub_bins)  # [n_trials_d, n_sub_bins]
        n_tr = rows.shape[0]
        if n_tr == 0:
            raise ValueError(f"direction {d}: an angle sub-bin is empty; increase n_samples")
        order = rows.reshape(-1)  # trial-major: trial j's sub-bins 0..n_sub_bins-1
        us.append(u[order])
        zs.append(z[order])
        dirs.append(np.full(order.size, index, dtype=np.int64))
        times.append(np.tile(np.arange(n_sub_bins), n_tr))
        trial_split.append(np.repeat(np.repeat(np.arange(3), split_sizes(n_tr, split)), n_sub_bins))
    u_all, z_all = np.concatenate(us), np.concatenate(zs)
    direction = np.concatenate(dirs)

    flow = RealNVPMap.random(n_neurons, seed=seed)
    with torch.no_grad():
        mean = flow.forward(torch.from_numpy(z_all)).numpy()
    rate = firing_rates(mean)
    counts = np.random.RandomState(data_seed).poisson(rate)

    time = np.concatenate(times)
    trial = np.cumsum(time == 0) - 1
    data = TrialData(
        counts=torch.from_numpy(counts.astype(np.float32)),
        trial=torch.from_numpy(trial.astype(np.int64)),
        time=torch.from_numpy(time.astype(np.int64)),
        direction=torch.from_numpy(direction),
        angle=torch.from_numpy((2.0 * np.pi / len(directions) * direction).astype(np.float32)),
        velocity=torch.zeros(direction.size, 2),
        split=torch.from_numpy(np.concatenate(trial_split).astype(np.int64)),
        n_classes=len(directions),
    )
    if not return_info:
        return data
    info = {
        "u": torch.from_numpy(u_all.astype(np.float32)),
        "z": torch.from_numpy(z_all.astype(np.float32)),
        "mean": torch.from_numpy(mean.astype(np.float32)),
        "rate": torch.from_numpy(rate.astype(np.float32)),
    }
    return data, info
