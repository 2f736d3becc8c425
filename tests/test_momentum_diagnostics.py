"""APAG / APCG / GrACE measures against brute-force and closed-form answers."""

import numpy as np
import pytest

from repro.optim.momentum_diagnostics import apag_ratio, apcg_ratio, grace_value, log_abs_product


@pytest.mark.parametrize("beta", [0.0, 0.5, 0.9])
def test_log_abs_product_matches_the_direct_product(beta):
    lam = np.array([0.7, -0.3, 2.0])
    eta, k = 0.01, 400
    s = np.arange(1, k + 1)
    theta = (1 - beta**s) / (1 - beta)
    direct = np.log(np.abs(np.prod(1 - eta * theta[:, None] * lam[None, :], axis=0)))
    np.testing.assert_allclose(log_abs_product(lam, eta, beta, k), direct, rtol=1e-10)


def test_log_abs_product_stays_finite_where_the_product_overflows():
    out = log_abs_product(np.array([-1.0, 1.0]), eta=0.5, beta=0.9, k=300_000)
    assert np.isfinite(out).all()
    # tail factor 1 + eta/(1-beta) = 6 per step: about k log 6
    assert out[0] == pytest.approx(300_000 * np.log(6.0), rel=1e-3)


def test_apcg_ratio_closed_form_for_diagonal_hessian():
    # H = diag(l1, l2), beta = 0: M = diag((1 - eta l)^{2K}); normalised by its top entry.
    eta, k = 0.1, 5
    lam = np.array([1.0, -0.5])
    hess = np.diag(lam)
    grad = np.array([0.3, -0.2])
    m = np.array([0.1, 0.4])
    p2 = (1 - eta * lam) ** (2 * k)
    expected = grad @ (p2 / p2.max() * m) / (eta * grad @ grad)
    assert apcg_ratio(grad, m, hess, eta, 0.0, k) == pytest.approx(expected, rel=1e-12)


def test_apcg_ratio_is_invariant_to_rotation():
    rng = np.random.default_rng(0)
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    hess = np.diag([1.0, 0.2, -0.4])
    grad, m = rng.normal(size=3), rng.normal(size=3)
    a = apcg_ratio(grad, m, hess, 0.05, 0.7, 200)
    b = apcg_ratio(q @ grad, q @ m, q @ hess @ q.T, 0.05, 0.7, 200)
    assert a == pytest.approx(b, rel=1e-9)


def test_apag_and_grace_definitions():
    grad = np.array([1.0, 2.0])
    g = np.array([0.5, 1.0])
    m = np.array([1.5, 0.0])  # m - g = (1, -1)
    assert apag_ratio(grad, m, g) == pytest.approx((1 - 2) / 5)
    hess = np.diag([2.0, 1.0])
    eta = 0.1
    expected = (eta * grad @ (g - m) + 0.5 * eta**2 * m @ hess @ m) / eta**2
    assert grace_value(grad, m, g, hess, eta) == pytest.approx(expected)
