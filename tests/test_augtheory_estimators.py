"""Closed-form aERM estimators against Monte-Carlo averages of the augmented normal equations."""

from __future__ import annotations

import numpy as np
import pytest

from repro.augtheory import augmentations as aug
from repro.augtheory import estimators as est

K = 20_000  # augmentation draws per data point
D, N_OVER, N_UNDER = 6, 9, 4


def _data(n, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, D)) * np.sqrt(np.linspace(2.0, 0.3, D))
    y = X @ rng.standard_normal(D) + 0.3 * rng.standard_normal(n)
    return X, y


def _mc_system(X, y, sampler, seed=1):
    """sum_i mean_k g_k(x_i) g_k(x_i)^T and sum_i y_i mean_k g_k(x_i) from K sampled augmentations."""
    G = sampler(np.broadcast_to(X, (K,) + X.shape), np.random.default_rng(seed))
    A = np.einsum("kni,knj->ij", G, G) / K
    b = np.einsum("n,kni->i", y, G) / K
    return A, b


def _close(A_mc, A, tol):
    assert np.linalg.norm(A_mc - A) / np.linalg.norm(A) < tol


def _theta_from(A, b):
    return np.linalg.solve(A, b)


MASK_CASES = {
    "noise": (aug.noise_moments(D, 0.5), lambda X, r: aug.sample_noise(X, 0.5, r)),
    "mask": (aug.mask_moments(D, 0.3), lambda X, r: aug.sample_mask(X, 0.3, r)),
    "mask_biased": (aug.mask_moments(D, 0.3, biased=True), lambda X, r: aug.sample_mask(X, 0.3, r, biased=True)),
    "pepper": (aug.pepper_moments(D, 0.3, 0.5), lambda X, r: aug.sample_pepper(X, 0.3, 0.5, r)),
    "het_mask": (
        aug.het_mask_moments(np.linspace(0.05, 0.6, D)),
        lambda X, r: aug.sample_het_mask(X, np.linspace(0.05, 0.6, D), r),
    ),
    "cutout_circular": (aug.cutout_moments(D, 2), lambda X, r: aug.sample_cutout(X, 2, r)),
    "cutout_linear": (
        aug.cutout_moments(D, 2, circular=False),
        lambda X, r: aug.sample_cutout(X, 2, r, circular=False),
    ),
}


@pytest.mark.parametrize("case", sorted(MASK_CASES))
def test_mask_type_closed_form_matches_monte_carlo(case):
    mom, sampler = MASK_CASES[case]
    X, y = _data(N_OVER)
    A, b = est.masking_system(X, y, mom)
    A_mc, b_mc = _mc_system(X, y, sampler)
    _close(A_mc, A, 0.01)
    _close(b_mc, b, 0.01)
    theta = est.estimate(est.masking_operator(X, mom), y)
    np.testing.assert_allclose(theta, _theta_from(A, b), rtol=1e-9, atol=1e-12)
    assert np.linalg.norm(_theta_from(A_mc, b_mc) - theta) / np.linalg.norm(theta) < 0.05


@pytest.mark.parametrize("case", sorted(MASK_CASES))
@pytest.mark.parametrize("n", [N_UNDER, N_OVER])
def test_fast_operator_equals_normal_equations(case, n):
    mom, _ = MASK_CASES[case]
    X, y = _data(n, seed=5)
    A, b = est.masking_system(X, y, mom)
    np.testing.assert_allclose(est.estimate(est.masking_operator(X, mom), y), np.linalg.solve(A, b), rtol=1e-8)


def test_named_operators_agree_with_generic_masking():
    X, _ = _data(N_UNDER)
    lam = np.linspace(2.0, 0.3, D)
    np.testing.assert_allclose(est.noise_operator(X, 0.5), est.masking_operator(X, aug.noise_moments(D, 0.5)))
    np.testing.assert_allclose(est.mask_operator(X, 0.3), est.masking_operator(X, aug.mask_moments(D, 0.3)))
    np.testing.assert_allclose(
        est.mask_operator(X, 0.3, biased=True), est.masking_operator(X, aug.mask_moments(D, 0.3, biased=True))
    )
    # brief: the biased mask is the unbiased estimator divided by (1 - beta)
    np.testing.assert_allclose(est.mask_operator(X, 0.3, biased=True), est.mask_operator(X, 0.3) / 0.7)
    np.testing.assert_allclose(
        est.mask_bar_operator(X, 0.3, lam), est.masking_bar_operator(X, aug.mask_moments(D, 0.3), lam)
    )


def test_salt_and_pepper_regulariser_matches_brief():
    X, y = _data(N_OVER)
    p, s2 = 0.3, 0.5
    psi = p / (1 - p)
    gram = X.T @ X
    A = gram + psi * np.diag(np.diag(gram)) + psi / (1 - p) * N_OVER * s2 * np.eye(D)
    np.testing.assert_allclose(est.estimate(est.pepper_operator(X, p, s2), y), np.linalg.solve(A, X.T @ y))


def test_bar_operators_use_expected_regulariser():
    X, y = _data(N_OVER)
    lam = np.linspace(2.0, 0.3, D)
    beta = 0.3
    A = X.T @ X + beta / (1 - beta) * N_OVER * np.diag(lam)
    np.testing.assert_allclose(est.estimate(est.mask_bar_operator(X, beta, lam), y), np.linalg.solve(A, X.T @ y))
    # circular cutout drops each coordinate w.p. L/d, so its bar version is the mask's with beta = L/d
    np.testing.assert_allclose(est.cutout_bar_operator(X, 2, lam), est.mask_bar_operator(X, 2 / D, lam))
    c = aug.rotation_constant(30.0, D)
    A_rot = X.T @ X + c * N_OVER * (lam.sum() * np.eye(D) - np.diag(lam))
    np.testing.assert_allclose(
        est.estimate(est.rotation_bar_operator(X, 30.0, lam), y), np.linalg.solve(A_rot, X.T @ y)
    )


def test_circular_cutout_covariance_is_circulant_closed_form():
    d, L = 10, 3
    enum = aug.cutout_moments(d, L, circular=True, unbiased=False)
    closed = aug.circular_cutout_covariance(d, L)
    np.testing.assert_allclose(enum.cov, closed, atol=1e-14)
    np.testing.assert_allclose(enum.mean, np.full(d, 1 - L / d))
    np.testing.assert_allclose(np.diag(closed), L / d * (1 - L / d))
    # circulant: each row is the previous one shifted by one
    np.testing.assert_allclose(closed[1], np.roll(closed[0], 1))
    # neighbours are positively correlated, far coordinates negatively (-(L/d)^2)
    assert closed[0, 1] == pytest.approx(2 / d - (L / d) ** 2)
    assert closed[0, 5] == pytest.approx(-((L / d) ** 2))
    # Monte Carlo of the sampler
    rng = np.random.default_rng(0)
    Z = aug.sample_cutout(np.ones((200_000, d)), L, rng, unbiased=False)
    np.testing.assert_allclose(np.cov(Z.T), closed, atol=0.004)


def test_min_norm_operator_is_pinv():
    rng = np.random.default_rng(2)
    for n in (3, D, 11):
        X = rng.standard_normal((2, n, D))
        np.testing.assert_allclose(est.min_norm_operator(X), np.linalg.pinv(X), atol=1e-10)
        np.testing.assert_allclose(est.ridge_operator(X, 0.0), np.linalg.pinv(X), atol=1e-10)


def test_ridge_dual_equals_primal_and_batches():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((3, 4, D))
    reg = rng.uniform(0.5, 2.0, (3, D))
    dual = est.ridge_operator(X, reg)
    primal = np.stack([np.linalg.solve(x.T @ x + np.diag(r), x.T) for x, r in zip(X, reg)])
    np.testing.assert_allclose(dual, primal, rtol=1e-9)


def test_rotation_block_model_matches_structure_exactly():
    """Unbiased block rotation R x / cos(alpha): Cov = tan^2(alpha)/(d-1) (||x||^2 I - x x^T)."""
    X, y = _data(N_OVER)
    alpha = 30.0
    c = aug.block_rotation_constant(alpha, D)
    A, b = est.rotation_system(X, y, alpha, c=c)
    A_mc, b_mc = _mc_system(X, y, lambda Z, r: aug.sample_rotation(Z, alpha, r, "block"))
    _close(A_mc, A, 0.01)
    _close(b_mc, b, 0.01)
    theta = est.estimate(est.rotation_operator(X, alpha, c=c), y)
    np.testing.assert_allclose(theta, np.linalg.solve(A, b), rtol=1e-9)
    assert np.linalg.norm(np.linalg.solve(A_mc, b_mc) - theta) / np.linalg.norm(theta) < 0.05


def test_rotation_single_point_covariance_structure():
    x = np.array([1.0, -2.0, 0.5, 0.0, 1.5, -0.7])
    alpha = 50.0
    Z = aug.sample_rotation(np.broadcast_to(x, (200_000, D)), alpha, np.random.default_rng(4), "block")
    np.testing.assert_allclose(Z.mean(axis=0), x, atol=0.02)
    expected = aug.block_rotation_constant(alpha, D) * (x @ x * np.eye(D) - np.outer(x, x))
    np.testing.assert_allclose(np.cov(Z.T), expected, atol=0.03)
    # rows are exact rotations: the biased version preserves the norm
    R = aug.sample_rotation(np.broadcast_to(x, (10, D)), alpha, np.random.default_rng(5), "block", unbiased=False)
    np.testing.assert_allclose(np.linalg.norm(R, axis=1), np.linalg.norm(x))


def test_notebook_rotation_constant_is_plane_rotation_displacement():
    """c(alpha) = 4(1-cos alpha)/d equals E||R x - x||^2 / ||x||^2 for a random 2-plane rotation."""
    d, alpha = 8, 70.0
    x = np.random.default_rng(6).standard_normal(d)
    Z = aug.sample_rotation(np.broadcast_to(x, (200_000, d)), alpha, np.random.default_rng(7), "plane")
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), np.linalg.norm(x))
    disp = np.mean(np.sum((Z - x) ** 2, axis=1)) / (x @ x)
    assert disp == pytest.approx(aug.rotation_constant(alpha, d), rel=0.02)


def test_rotation_operator_matches_notebook_formula():
    X, y = _data(N_UNDER)
    c = aug.rotation_constant(50.0, D)
    gram = X.T @ X
    A = gram + c * (np.trace(gram) * np.eye(D) - gram)
    np.testing.assert_allclose(est.estimate(est.rotation_operator(X, 50.0), y), np.linalg.solve(A, X.T @ y))
    # the c >= 1 branch solves the same system
    np.testing.assert_allclose(
        est.estimate(est.rotation_operator(X, 50.0, c=1.5), y),
        np.linalg.solve(gram + 1.5 * (np.trace(gram) * np.eye(D) - gram), X.T @ y),
    )


def test_mixup_closed_form_matches_monte_carlo():
    X, y = _data(N_OVER)
    a = 0.5
    rng = np.random.default_rng(8)
    Xm, ym = aug.sample_mixup(np.broadcast_to(X, (K,) + X.shape), np.broadcast_to(y, (K, N_OVER)), a, rng)
    A_mc = np.einsum("kni,knj->ij", Xm, Xm) / K
    b_mc = np.einsum("kn,kni->i", ym, Xm) / K
    A, b = est.mixup_system(X, y, a)
    _close(A_mc, A, 0.01)
    _close(b_mc, b, 0.01)
    theta = est.estimate(est.mixup_operator(X, a), y)
    np.testing.assert_allclose(theta, np.linalg.pinv(A) @ b, rtol=1e-8)
    # brief's formula written out
    s = X.sum(axis=0)
    A_brief = (a + 1) / (2 * a + 1) * X.T @ X + a / ((2 * a + 1) * N_OVER) * np.outer(s, s)
    np.testing.assert_allclose(A, A_brief)


def test_mixup_underdetermined_is_min_norm():
    X, y = _data(N_UNDER)
    A, b = est.mixup_system(X, y, 1.0)
    np.testing.assert_allclose(est.estimate(est.mixup_operator(X, 1.0), y), np.linalg.pinv(A) @ b, atol=1e-9)


def test_augmentation_handle():
    X, y = _data(N_OVER)
    lam = np.linspace(2.0, 0.3, D)
    rng = np.random.default_rng(9)
    for name, params in [
        ("noise", {"sigma_a2": 1.0}),
        ("mask", {"beta": 0.3}),
        ("pepper", {"p": 0.3, "sigma_a2": 1.0}),
        ("het_mask", {"p": np.full(D, 0.2)}),
        ("cutout", {"length": 2}),
        ("rotation", {"alpha": 20.0}),
    ]:
        a = est.Augmentation(name, **params)
        assert a.sample(X, rng).shape == X.shape
        assert a.operator(X).shape == (D, N_OVER)
        assert a.bar_operator(X, lam).shape == (D, N_OVER)
    np.testing.assert_allclose(
        est.Augmentation("het_mask", p=np.full(D, 0.3)).operator(X), est.mask_operator(X, 0.3), rtol=1e-10
    )
    with pytest.raises(ValueError):
        est.Augmentation("mixup", a=1.0).bar_operator(X, lam)
    with pytest.raises(ValueError):
        est.Augmentation("flip")
