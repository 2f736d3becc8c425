"""Gaussian-mixture theory of spectral imbalance (brief §4.1-§4.2): exact errors, ridge, synthetic runs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.linear_model import Ridge

from repro.spectral import gaussian_mixture as G
from repro.spectral import synthetic as S


def _trained_binary(p, n, alpha_pos, alpha_neg, seed, *, eigen=True):
    rng = np.random.default_rng(seed)
    mix = G.binary_power_law_mixture(p, alpha_pos, alpha_neg, 1.5, rng, eigen_coordinates=eigen)
    X, lab = mix.sample(n // 2, rng)
    w, b = G.fit_ridge_binary(X, G.binary_labels(lab))
    return mix, w, b


def _null_se(p_exact, n):
    return np.sqrt(np.clip(p_exact * (1 - p_exact), 1e-12, None) / n)


# --------------------------------------------------------------------------- spectra and mixture


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0, 2.0])
def test_power_law_equal_trace(alpha):
    lam = G.power_law_spectrum(200, alpha)
    assert lam.sum() == pytest.approx(200.0)
    j = np.arange(1, 201)
    np.testing.assert_allclose(lam / lam[0], j ** (-alpha), rtol=1e-12)
    mix = G.power_law_mixture(np.zeros((3, 50)), [0.0, 1.0, 2.0], np.random.default_rng(0))
    np.testing.assert_allclose(mix.eigvals.sum(axis=1), 50.0)
    np.testing.assert_allclose([np.trace(mix.covariance(c)) for c in range(3)], 50.0)


def test_quadratic_form_uses_shared_basis():
    rng = np.random.default_rng(1)
    mix = G.power_law_mixture(rng.standard_normal((2, 30)), [0.3, 1.7], rng)
    U = mix.basis
    np.testing.assert_allclose(U.T @ U, np.eye(30), atol=1e-12)
    W = rng.standard_normal((4, 30))
    for c in range(2):
        dense = np.einsum("ip,pq,iq->i", W, mix.covariance(c), W)
        np.testing.assert_allclose(mix.quadratic_form(W, c), dense, rtol=1e-10)


def test_sampler_moments():
    rng = np.random.default_rng(2)
    mix = G.power_law_mixture(np.array([[1.0, -2.0, 0.5, 0.0], [0.0, 0.0, 0.0, 3.0]]), [0.0, 1.5], rng)
    X, lab = mix.sample([30000, 20000], rng)
    assert np.bincount(lab).tolist() == [30000, 20000]
    for c in range(2):
        Xc = X[lab == c]
        np.testing.assert_allclose(Xc.mean(0), mix.means[c], atol=0.05)
        np.testing.assert_allclose(np.cov(Xc.T), mix.covariance(c), atol=0.06)


# --------------------------------------------------------------------------- ridge


def test_ridge_matches_sklearn_primal_and_dual():
    rng = np.random.default_rng(3)
    for n, p in [(120, 40), (30, 80)]:  # primal and dual branches
        X = rng.standard_normal((n, p)) + 0.3
        y = np.where(rng.random(n) < 0.5, 1.0, -1.0)
        w, b = G.fit_ridge_binary(X, y, ridge=2.5)
        ref = Ridge(alpha=2.5, fit_intercept=True, solver="cholesky").fit(X, y)
        np.testing.assert_allclose(w, ref.coef_, atol=1e-9)
        assert b == pytest.approx(ref.intercept_, abs=1e-9)
    w0, _ = G.fit_ridge_binary(X, y)  # default penalty 1e-3 n
    w1, _ = G.fit_ridge_binary(X, y, ridge=1e-3 * len(y))
    np.testing.assert_allclose(w0, w1)
    with pytest.raises(ValueError):
        G.fit_ridge_binary(X, (y > 0).astype(float))


def test_multiclass_ridge_reduces_to_binary_for_two_classes():
    rng = np.random.default_rng(4)
    mix = G.binary_power_law_mixture(60, 0.0, 1.0, 1.5, rng)
    X, lab = mix.sample(50, rng)
    W, b = G.fit_ridge_multiclass(X, lab, 2)
    w, b0 = G.fit_ridge_binary(X, G.binary_labels(lab))
    np.testing.assert_allclose(W[0] - W[1], w, atol=1e-10)
    assert b[0] - b[1] == pytest.approx(b0, abs=1e-10)


def test_rotation_equivariance_of_errors():
    """Training in eigen-coordinates gives the ambient problem's errors exactly."""
    rng = np.random.default_rng(5)
    amb = G.binary_power_law_mixture(80, 0.0, 1.0, 1.5, rng, eigen_coordinates=False)
    eig = amb.in_eigen_coordinates()
    Xe, lab = eig.sample(60, np.random.default_rng(9))
    Xa = Xe @ amb.basis.T
    y = G.binary_labels(lab)
    we, be = G.fit_ridge_binary(Xe, y)
    wa, ba = G.fit_ridge_binary(Xa, y)
    np.testing.assert_allclose(G.binary_exact_errors(wa, ba, amb), G.binary_exact_errors(we, be, eig), atol=1e-10)


# --------------------------------------------------------------------------- exact formulas vs Monte Carlo


@pytest.mark.parametrize(
    "seed,pair,eigen,p,n_mc", [(0, (0.0, 1.0), True, 200, 200_000), (1, (0.5, 1.0), False, 80, 60_000)]
)
def test_binary_exact_matches_monte_carlo(seed, pair, eigen, p, n_mc):
    mix, w, b = _trained_binary(p, 2 * p, *pair, seed, eigen=eigen)
    exact = np.array(G.binary_exact_errors(w, b, mix))
    mc, se = G.binary_monte_carlo_errors(w, b, mix, n_mc, np.random.default_rng(100 + seed))
    assert np.all(np.abs(exact - mc) <= 3 * _null_se(exact, n_mc)), (exact, mc, se)
    assert exact[0] > 0.05 and exact[1] > 0.01  # not a trivial comparison


def test_multiclass_orthant_matches_monte_carlo():
    n_mc = 40_000
    for seed in (0, 1):
        rng = np.random.default_rng(seed)
        mix = G.multiclass_power_law_mixture(60, [0.0, 0.5, 1.0, 2.0], 1.2, rng)
        X, lab = mix.sample(60, rng)
        W, b = G.fit_ridge_multiclass(X, lab, 4)
        exact = G.multiclass_exact_errors(W, b, mix)
        mc, _ = G.multiclass_monte_carlo_errors(W, b, mix, n_mc, np.random.default_rng(50 + seed))
        assert np.all(np.abs(exact - mc) <= 3 * _null_se(exact, n_mc) + 2e-5), (exact, mc)
        assert exact.max() > 0.1


def test_multiclass_formula_equals_binary_for_two_classes():
    mix, w, b = _trained_binary(100, 200, 0.0, 1.0, 7, eigen=False)
    # argmax of (w/2 x + b/2, -w/2 x - b/2) is sign(w x + b); also any common shift of both scores
    shift = np.random.default_rng(0).standard_normal(100)
    W = np.stack([w / 2 + shift, -w / 2 + shift])
    bb = np.array([b / 2 + 0.3, -b / 2 + 0.3])
    np.testing.assert_allclose(G.multiclass_exact_errors(W, bb, mix), G.binary_exact_errors(w, b, mix), atol=1e-12)


def test_multiclass_three_class_orthant_symmetric_case():
    """Isotropic, symmetric 3-class problem at the origin: each class correct with probability 1/3."""
    W = np.array([[1.0, 0.0], [-0.5, np.sqrt(3) / 2], [-0.5, -np.sqrt(3) / 2]])
    mix = G.GaussianMixture(np.zeros((3, 2)), np.ones((3, 2)))
    np.testing.assert_allclose(G.multiclass_exact_errors(W, np.zeros(3), mix), 2 / 3, atol=1e-5)


# --------------------------------------------------------------------------- synthetic experiment claims


def _means(df):
    return S.summarise(df).set_index(["setting", "metric"])["mean"]


def test_equal_spectra_give_no_gap():
    df = S.run_alpha_grid(pairs=[(1.0, 1.0), (0.0, 0.0)], seeds=range(12))
    for setting, sub in df[df.metric == "gap"].groupby("setting"):
        g = sub["value"].to_numpy()
        assert abs(g.mean()) <= 3 * g.std(ddof=1) / np.sqrt(g.size) + 1e-3, (setting, g.mean())
    assert np.allclose(df[df.metric == "spectral_imbalance"]["value"], 0.0)


def test_flatter_class_is_worse_at_equal_trace():
    pairs = [(0.0, 1.0), (0.5, 1.0), (1.0, 0.5)]
    df = S.run_alpha_grid(pairs=pairs, seeds=range(8))
    m = _means(df)
    wide = df.pivot_table(index=["setting", "seed"], columns="metric", values="value")
    for setting, sub in wide.groupby(level="setting"):
        ap, an = json.loads(setting)["alpha_pos"], json.loads(setting)["alpha_neg"]
        flatter_pos = ap < an
        # robust ordering: every seed, and the means, put the flatter (higher effective rank) class worse
        assert np.all((sub["err_pos"] > sub["err_neg"]) == flatter_pos)
        assert np.all((sub["effective_rank_pos"] > sub["effective_rank_neg"]) == flatter_pos)
        e_pos, e_neg = m[(setting, "err_pos")], m[(setting, "err_neg")]
        if (ap, an) == (0.0, 1.0):  # brief [S]: 0.186 / 0.059
            assert 0.12 < e_pos < 0.26 and 0.03 < e_neg < 0.10
        elif (ap, an) == (0.5, 1.0):  # brief [S]: 0.144 / 0.049
            assert 0.09 < e_pos < 0.20 and 0.025 < e_neg < 0.09
        else:  # (1, 0.5), brief [S]: 0.043 / 0.141
            assert 0.02 < e_pos < 0.08 and 0.09 < e_neg < 0.20
        assert abs(e_pos - e_neg) > 0.05


def test_gap_grows_with_imbalance_and_ridge_shrinks_it():
    sweep = S.run_alpha_sweep(alphas_pos=(0.0, 0.5, 1.0), seeds=range(6))
    curve = S.gap_vs_imbalance(sweep).set_index("alpha_pos")
    assert curve.loc[0.0, "gap"] > curve.loc[0.5, "gap"] > curve.loc[1.0, "gap"]
    assert curve.loc[0.0, "spectral_imbalance"] > curve.loc[0.5, "spectral_imbalance"] > 0
    ridge = S.run_ridge_sweep(ridges=(1e-4, 1.0), seeds=range(6))
    gap = {json.loads(s)["ridge"]: v for (s, met), v in _means(ridge).items() if met == "gap"}
    assert gap[1.0] < gap[1e-4] - 0.02  # brief [S]: 0.134 -> 0.078


def test_large_p_exact_vs_monte_carlo_table():
    df = S.run_large_p(seeds=[0], p=300, mc_per_class=20_000)
    ev = S.exact_vs_monte_carlo(df)
    assert len(ev) == 2 and np.all(np.abs(ev["z"]) < 3)


def test_run_synthetic_small_tier_contract():
    timings = {}
    df = S.run_synthetic(
        seeds=[0, 1], p=40, n=80, large_p=60, large_seeds=[0], multiclass_seeds=[0], mc_per_class=500, timings=timings
    )
    assert list(df.columns) == S.COLUMNS
    assert set(df.experiment) == {"alpha_grid", "alpha_sweep", "ridge_sweep", "large_p", "multiclass"}
    assert set(timings) == set(df.experiment)
    assert not df.duplicated(["experiment", "method", "setting", "seed", "metric"]).any()
    assert df["value"].dtype == np.float64
    for s in df.setting.unique():
        assert isinstance(json.loads(s), dict)
    mc = df[df.experiment == "multiclass"]
    assert {"err_class_0", "err_class_3", "mc_err_class_2", "gap"} <= set(mc.metric)
    assert {"err_pos", "err_neg", "gap", "effective_rank_pos", "sample_spectral_imbalance"} <= set(
        df[df.experiment == "alpha_grid"].metric
    )
