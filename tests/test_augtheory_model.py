"""The linear-Gaussian model of the data-augmentation paper: spectra, SNR scaling, sampling, labels."""

from __future__ import annotations

import numpy as np
import pytest

from repro.augtheory.model import make_model, snr_scale, spectrum, theta_star


def test_spectrum_forms():
    d = 8
    np.testing.assert_allclose(spectrum(d, decay=0.9), 0.9 ** np.arange(d))
    np.testing.assert_allclose(spectrum(d, smallest_eig=0.6), 0.6 ** (np.arange(d) / d))
    np.testing.assert_allclose(spectrum(d, decay=1.0), np.ones(d))
    np.testing.assert_allclose(spectrum(3, eigs=[3.0, 2.0, 1.0]), [3.0, 2.0, 1.0])
    with pytest.raises(ValueError):
        spectrum(d, decay=0.9, smallest_eig=0.5)
    with pytest.raises(ValueError):
        spectrum(3, eigs=[1.0, -1.0, 2.0])


def test_theta_star_kinds():
    e0 = theta_star(5, "sparse")
    np.testing.assert_array_equal(e0, [1, 0, 0, 0, 0])
    g = theta_star(50, "gaussian", np.random.default_rng(0))
    assert np.linalg.norm(g) == pytest.approx(1.0)
    with pytest.raises(ValueError):
        theta_star(5, "gaussian")


@pytest.mark.parametrize("theta", ["sparse", "gaussian"])
def test_snr_scaling_gives_unit_signal(theta):
    # theta*^T Sigma theta* = SNR sigma^2 = 4 * 0.25 = 1 at the paper's defaults
    model = make_model(128, decay=0.95, theta=theta, rng=np.random.default_rng(3))
    assert np.sum(model.lam * model.theta**2) == pytest.approx(1.0)
    assert model.snr == pytest.approx(4.0)
    if theta == "sparse":
        assert model.lam[0] == pytest.approx(1.0)
        assert model.lam[1] / model.lam[0] == pytest.approx(0.95)


def test_snr_scale_value():
    lam = np.array([2.0, 1.0])
    assert snr_scale(lam, np.array([1.0, 0.0]), sigma=0.5, snr=4.0) == pytest.approx(0.5)


def test_sampling_covariance_and_responses():
    rng = np.random.default_rng(0)
    model = make_model(4, eigs=[4.0, 1.0, 0.25, 0.0625], theta="sparse", sigma=0.5, snr=None)
    X = model.sample_x(rng, 200_000)
    np.testing.assert_allclose(X.var(axis=0), model.lam, rtol=0.02)
    assert abs(np.corrcoef(X[:, 0], X[:, 1])[0, 1]) < 0.01
    y = model.responses(rng, X)
    np.testing.assert_allclose(np.var(y - X @ model.theta), 0.25, rtol=0.02)
    assert model.sample_x(rng, 7, trials=3).shape == (3, 7, 4)


def test_labels_flip_rate():
    rng = np.random.default_rng(1)
    model = make_model(3, decay=1.0, theta="sparse")
    X = model.sample_x(rng, 100_000)
    clean = model.labels(rng, X, 0.0)
    np.testing.assert_array_equal(clean, np.where(X[:, 0] >= 0, 1.0, -1.0))
    noisy = model.labels(rng, X, 0.2)
    assert np.mean(noisy != clean) == pytest.approx(0.2, abs=0.005)
