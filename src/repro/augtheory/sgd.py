"""SGD with fresh augmentations on the linear model (brief §2.2 E2.8, ``convergence_to_closeform_new+``).

Settings from the notebook as the brief reports them: a bias-free linear model, torch ``MSELoss``
with mean reduction over the B*k augmented rows of a step, plain SGD with lr = 1e-3, mini-batch
B and k fresh augmentation copies per example with B*k = 64, recorded every 50 steps up to 2000.
Augmentations: Gaussian noise (sigma_a^2), unbiased random mask (p), salt-and-pepper (p, sigma_a^2).

Implementation (ours): torch on CPU, the gradient 2/(Bk) X_a^T (X_a theta - y) written out, and
all (augmentation, trial, (B, k)) runs advanced together.  The three augmentations of one
(trial, (B, k)) run see the same examples and the same uniforms/normals at each step (common
random numbers: each run is exactly SGD with its own augmentation; runs of different
augmentations are correlated, which halves the random-number cost).  Each step draws B distinct examples
uniformly at random (independently across steps: the epoch structure of a shuffled DataLoader is
not reproduced; both give unbiased estimates of the aERM gradient).  theta_0 = 0 by default;
``init="torch"`` draws U(-1/sqrt(d), 1/sqrt(d)) per trial like ``nn.Linear``.
"""

from __future__ import annotations

import numpy as np
import torch

SGD_AUGMENTATIONS = ("noise", "mask", "pepper")


def _augment(Xb: torch.Tensor, name: str, params: dict, u: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Augment Xb with the step's uniforms u and standard normals z (shared across augmentations)."""
    if name == "noise":
        return Xb + np.sqrt(params["sigma_a2"]) * z
    if name == "mask":
        return Xb * (u >= params["p"]) / (1.0 - params["p"])
    if name == "pepper":
        p = params["p"]
        return torch.where(u >= p, Xb, np.sqrt(params["sigma_a2"]) * z) / (1.0 - p)
    raise ValueError(f"SGD supports {SGD_AUGMENTATIONS}, not {name!r}")


def run_augmented_sgd(
    X: np.ndarray,
    y: np.ndarray,
    augmentations: list[tuple[str, dict]],
    pairs: list[tuple[int, int]],
    *,
    theta_star: np.ndarray,
    lam: np.ndarray,
    theta_ref: np.ndarray,
    lr: float = 1e-3,
    steps: int = 2000,
    record_every: int = 50,
    seed: int = 0,
    init: str = "zeros",
    dtype: torch.dtype = torch.float32,
) -> dict:
    """Run SGD for every (augmentation, trial, (B, k)); X (T, n, d), y (T, n).

    ``theta_ref`` (A, T, d) is the closed form each run is compared with.  Returns ``steps`` (R,)
    and arrays (A, P, R, T): ``risk`` = ||theta_t - theta*||_Sigma^2 and ``dist`` = ||theta_t - theta_ref||_2.
    """
    sizes = {b * k for b, k in pairs}
    if len(sizes) != 1:
        raise ValueError(f"every (B, k) pair must have the same B*k, got {sorted(sizes)}")
    rows = sizes.pop()
    T, n, d = X.shape
    if max(b for b, _ in pairs) > n:
        raise ValueError("batch size larger than the data set")
    gen = torch.Generator().manual_seed(int(seed))
    Xt = torch.as_tensor(X, dtype=dtype)
    yt = torch.as_tensor(y, dtype=dtype)
    P, A = len(pairs), len(augmentations)
    slots = torch.stack([torch.arange(rows) // k for _, k in pairs])  # (P, rows): example slot in the batch
    slots = slots.expand(T, P, rows)
    trial = torch.arange(T)[:, None, None]

    if init == "zeros":
        theta0 = torch.zeros(T, d, dtype=dtype)
    elif init == "torch":
        theta0 = (torch.rand(T, d, generator=gen, dtype=dtype) * 2 - 1) / np.sqrt(d)
    else:
        raise ValueError(f"unknown init {init!r}")
    theta = theta0[None, :, None, :].repeat(A, 1, P, 1)  # (A, T, P, d)

    star = torch.as_tensor(theta_star, dtype=torch.float64)
    lam_t = torch.as_tensor(lam, dtype=torch.float64)
    ref = torch.as_tensor(theta_ref, dtype=torch.float64)[:, :, None, :]  # (A, T, 1, d)
    record_steps, risks, dists = [], [], []

    def record(step: int):
        th = theta.to(torch.float64)
        record_steps.append(step)
        risks.append((((th - star) ** 2) * lam_t).sum(-1).permute(0, 2, 1).numpy())
        dists.append(torch.linalg.vector_norm(th - ref, dim=-1).permute(0, 2, 1).numpy())

    names = {name for name, _ in augmentations}
    unknown = names - set(SGD_AUGMENTATIONS)
    if unknown:
        raise ValueError(f"SGD supports {SGD_AUGMENTATIONS}, not {sorted(unknown)}")
    need_u, need_z = bool(names & {"mask", "pepper"}), bool(names & {"noise", "pepper"})
    record(0)
    for step in range(1, steps + 1):
        perm = torch.argsort(torch.rand(T, P, n, generator=gen), dim=-1)
        idx = torch.gather(perm, 2, slots)  # (T, P, rows)
        Xb, yb = Xt[trial, idx], yt[trial, idx]
        u = torch.rand(Xb.shape, generator=gen, dtype=dtype) if need_u else None
        z = torch.randn(Xb.shape, generator=gen, dtype=dtype) if need_z else None
        for a, (name, params) in enumerate(augmentations):
            Xa = _augment(Xb, name, params, u, z)
            resid = (Xa @ theta[a][..., None])[..., 0] - yb  # (T, P, rows)
            grad = (resid[..., None, :] @ Xa)[..., 0, :]  # (T, P, d)
            theta[a] -= (2.0 * lr / rows) * grad
        if step % record_every == 0:
            record(step)
    return {
        "steps": np.asarray(record_steps),
        "risk": np.stack(risks, axis=2),
        "dist": np.stack(dists, axis=2),
    }
