"""SGD with fresh augmentations: the MSELoss-mean gradient step and its fixed point."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repro.augtheory import estimators as est
from repro.augtheory import experiments as ex
from repro.augtheory.sgd import run_augmented_sgd


def _data(T=2, n=16, d=8, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((T, n, d))
    y = X @ rng.standard_normal(d) + 0.1 * rng.standard_normal((T, n))
    return X, y


def test_full_batch_without_augmentation_is_gradient_descent():
    """B = n, k = 1 and sigma_a^2 = 0: theta <- theta - lr * 2/n X^T (X theta - y) (MSELoss, mean)."""
    X, y = _data()
    T, n, d = X.shape
    lr, steps = 0.01, 30
    ref = np.zeros((1, T, d))
    out = run_augmented_sgd(
        X, y, [("noise", {"sigma_a2": 0.0})], [(n, 1)], theta_star=np.zeros(d), lam=np.ones(d),
        theta_ref=ref, lr=lr, steps=steps, record_every=steps, dtype=torch.float64,
    )  # fmt: skip
    theta = np.zeros((T, d))
    for _ in range(steps):
        resid = np.einsum("tnd,td->tn", X, theta) - y
        theta = theta - lr * 2.0 / n * np.einsum("tnd,tn->td", X, resid)
    np.testing.assert_allclose(out["dist"][0, 0, -1], np.linalg.norm(theta, axis=1), rtol=1e-10)
    np.testing.assert_allclose(out["risk"][0, 0, -1], np.sum(theta**2, axis=1), rtol=1e-10)
    assert list(out["steps"]) == [0, steps]


def test_gd_reaches_least_squares_and_augmented_sgd_reaches_ridge():
    X, y = _data(n=32)
    T, n, d = X.shape
    lse = est.estimate(est.min_norm_operator(X), y)
    ridge = est.estimate(est.noise_operator(X, 0.5), y)
    refs = np.stack([lse, ridge])
    out = run_augmented_sgd(
        X, y, [("noise", {"sigma_a2": 0.0}), ("noise", {"sigma_a2": 0.5})], [(32, 1), (8, 4)],
        theta_star=np.zeros(d), lam=np.ones(d), theta_ref=refs, lr=0.01, steps=3000, record_every=1000, seed=3,
    )  # fmt: skip
    dist = out["dist"]  # (A, P, R, T)
    assert np.all(dist[0, 0, -1] < 1e-3)  # full-batch GD converges to LSE (n > d)
    assert np.all(dist[1, :, -1] < 0.25 * dist[1, :, 0])  # fresh noise: towards the ridge closed form


def test_sgd_rejects_unequal_rows_and_unknown_augmentation():
    X, y = _data()
    d = X.shape[-1]
    kw = dict(theta_star=np.zeros(d), lam=np.ones(d), theta_ref=np.zeros((1, 2, d)), steps=1)
    with pytest.raises(ValueError):
        run_augmented_sgd(X, y, [("noise", {"sigma_a2": 1.0})], [(4, 1), (2, 1)], **kw)
    with pytest.raises(ValueError):
        run_augmented_sgd(X, y, [("rotation", {"alpha": 10})], [(4, 1)], **kw)


def test_random_mask_variant_uses_one_fixed_dataset():
    df = ex.run_sgd_convergence(ex.E28_RANDOM_MASK_VARIANT, n_trials=2, steps=20, record_every=10)
    closed = df[(df.method == "mask") & df.setting.str.contains('"closed_form"')].set_index("metric").value
    assert closed["risk_se"] == 0.0
    assert set(df.experiment) == {"e2_8_sgd_convergence_random_mask"}
