"""Risk decomposition (exact in the label noise), POE = 1/2 - arctan(SU/CN)/pi and the augmented spectrum."""

from __future__ import annotations

import numpy as np
import pytest

from repro.augtheory import estimators as est
from repro.augtheory.model import make_model
from repro.augtheory.risk import decomposition, poe, poe_from_su_cn, prediction_risk, risk_terms, su_cn
from repro.augtheory.spectral import augmented_spectrum, mask_aug_cov, noise_aug_cov, pepper_aug_cov


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    model = make_model(20, decay=0.9, theta="gaussian", rng=rng)
    X = model.sample_x(rng, 12, trials=3)
    return model, X


def test_decomposition_identity_mask(setup):
    model, X = setup
    th, lam, s = model.theta, model.lam, model.sigma
    dec = decomposition(est.mask_operator(X, 0.3), est.mask_bar_operator(X, 0.3, lam), X, th, lam, s)
    total = dec["bias"] + dec["var"] + dec["approx_err"] + 2 * dec["cross"]
    np.testing.assert_allclose(dec["mse"], total, rtol=1e-10)
    assert np.all(dec["approx_err"] > 0)
    # Cauchy-Schwarz bound on the cross term
    assert np.all(np.abs(dec["cross"]) <= np.sqrt(dec["approx_err"] * (dec["bias"] + dec["var"])) + 1e-12)


@pytest.mark.parametrize("kind", ["lse", "noise"])
def test_decomposition_deterministic_regulariser_has_no_approx_error(setup, kind):
    model, X = setup
    G = est.min_norm_operator(X) if kind == "lse" else est.noise_operator(X, 0.5)
    dec = decomposition(G, G, X, model.theta, model.lam, model.sigma)
    np.testing.assert_allclose(dec["approx_err"], 0.0, atol=1e-15)
    np.testing.assert_allclose(dec["cross"], 0.0, atol=1e-15)
    np.testing.assert_allclose(dec["mse"], dec["bias"] + dec["var"], rtol=1e-12)
    terms = risk_terms(G, X, model.theta, model.lam, model.sigma)
    for key in ("bias", "var", "mse"):
        np.testing.assert_allclose(terms[key], dec[key], rtol=1e-12)


def test_decomposition_matches_monte_carlo_over_label_noise(setup):
    model, X = setup
    X = X[0]
    th, lam = model.theta, model.lam
    G_hat, G_bar = est.mask_operator(X, 0.5), est.mask_bar_operator(X, 0.5, lam)
    dec = decomposition(G_hat, G_bar, X, th, lam, model.sigma)
    rng = np.random.default_rng(1)
    y = X @ th + model.sigma * rng.standard_normal((100_000, X.shape[0]))
    t_hat, t_bar = y @ G_hat.T, y @ G_bar.T
    mean_bar = G_bar @ X @ th
    assert np.mean(prediction_risk(t_hat, th, lam)) == pytest.approx(float(dec["mse"]), rel=0.01)
    assert np.mean(prediction_risk(t_bar, mean_bar, lam)) == pytest.approx(float(dec["var"]), rel=0.01)
    assert np.mean(prediction_risk(t_hat, t_bar, lam)) == pytest.approx(float(dec["approx_err"]), rel=0.01)
    assert prediction_risk(mean_bar, th, lam) == pytest.approx(float(dec["bias"]), rel=1e-10)
    # var = sigma^2 tr(A^-1 X^T X A^-1 Sigma), the brief's exact expression
    A = X.T @ X + 0.5 / 0.5 * X.shape[0] * np.diag(lam)
    Ainv = np.linalg.inv(A)
    assert float(dec["var"]) == pytest.approx(model.sigma**2 * np.trace(Ainv @ X.T @ X @ Ainv @ np.diag(lam)))


def test_poe_formula_matches_monte_carlo():
    rng = np.random.default_rng(2)
    lam = np.array([1.0, 0.5, 2.0, 0.3])
    theta = np.array([0.8, -0.5, 0.4, 1.0])
    x = rng.standard_normal((400_000, 4)) * np.sqrt(lam)
    mc = np.mean(np.sign(x[:, 0]) != np.sign(x @ theta))
    assert poe(theta, lam) == pytest.approx(mc, abs=0.003)
    su, cn = su_cn(theta, lam)
    assert su == pytest.approx(0.8)
    assert cn == pytest.approx(np.sqrt(0.25 * 0.5 + 0.16 * 2.0 + 0.3))
    # exact form: arccos(SU / sqrt(SU^2 + CN^2)) / pi
    assert poe(theta, lam) == pytest.approx(np.arccos(su / np.hypot(su, cn)) / np.pi)


def test_poe_scale_invariance_and_limits():
    lam = np.array([1.0, 0.5, 2.0])
    theta = np.array([0.3, 0.2, -0.4])
    for c in (0.01, 1.0, 10.0, 1e4):
        assert poe(c * theta, lam) == pytest.approx(poe(theta, lam), abs=1e-14)
    assert poe(-theta, lam) == pytest.approx(1.0 - poe(theta, lam))
    assert poe(np.array([1.0, 0.0, 0.0]), lam) == 0.0
    assert poe_from_su_cn(np.array(0.0), np.array(1.0)) == 0.5


def test_augmented_spectrum():
    lam = 13.0 * 0.9 ** np.arange(128)
    np.testing.assert_allclose(augmented_spectrum(lam, mask_aug_cov(lam, 0.3)), 1 / 0.3)
    np.testing.assert_allclose(augmented_spectrum(lam, noise_aug_cov(lam, 2.0))[0], 1 + 13.0 / 2.0)
    top = augmented_spectrum(lam, pepper_aug_cov(lam, 0.3, 0.0))
    np.testing.assert_allclose(top, 1 / 0.3)  # without the fill noise, pepper acts like the mask
