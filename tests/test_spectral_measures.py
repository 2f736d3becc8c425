"""Per-class spectra, spectral-imbalance summaries and class-disparity measures (brief §4.3)."""

from __future__ import annotations

import numpy as np
import pytest

from repro.spectral import measures as M


def test_effective_rank_known_spectra():
    p = 37
    assert M.effective_rank(np.ones(p)) == pytest.approx(p)
    assert M.effective_rank(np.r_[5.0, np.zeros(p - 1)]) == pytest.approx(1.0)
    r = 0.8
    geo = r ** np.arange(p)
    closed = (1 - r**p) * (1 + r) / ((1 - r) * (1 + r**p))
    assert M.effective_rank(geo) == pytest.approx(closed, rel=1e-12)
    assert M.effective_rank(3.0 * geo) == pytest.approx(closed, rel=1e-12)  # scale-free


def test_entropy_effective_rank_known_spectra():
    assert M.entropy_effective_rank(np.ones(20)) == pytest.approx(20.0)
    assert M.entropy_effective_rank(np.r_[2.0, np.zeros(9)]) == pytest.approx(1.0)
    lam = np.array([3.0, 1.0])
    q = lam / lam.sum()
    assert M.entropy_effective_rank(lam) == pytest.approx(np.exp(-np.sum(q * np.log(q))))


@pytest.mark.parametrize("alpha", [0.0, 0.7, 1.3, 2.5])
def test_power_law_exponent_recovered(alpha):
    j = np.arange(1, 301)
    lam = 4.2 * j ** (-alpha)
    assert M.power_law_exponent(lam) == pytest.approx(alpha, abs=1e-9)
    assert M.power_law_exponent(lam, 5, 200) == pytest.approx(alpha, abs=1e-9)
    # trailing zeros (rank-deficient sample spectra) are excluded
    assert M.power_law_exponent(np.r_[lam, np.zeros(50)], 1, 1000) == pytest.approx(alpha, abs=1e-9)


def test_top_k_mass_trace_top():
    lam = np.array([1.0, 4.0, 2.0, 3.0])
    assert M.top_k_mass(lam, 2) == pytest.approx(0.7)
    assert M.trace(lam) == 10.0 and M.top_eigenvalue(lam) == 4.0
    s = M.spectral_summaries(lam, k=1)
    assert set(s) == set(M.SUMMARY_NAMES) and s["top_k_mass"] == pytest.approx(0.4)


@pytest.mark.parametrize("n,p", [(25, 90), (150, 40)])
def test_gram_trick_matches_covariance(n, p):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((n, p)) * np.linspace(0.5, 3, p) + 7.0
    for ddof in (0, 1):
        ref = np.sort(np.linalg.eigvalsh(np.cov(X.T, ddof=ddof)))[::-1]
        ref = np.clip(ref, 0, None)
        got = M.covariance_eigenvalues(X, ddof=ddof)
        assert got.shape == (p,)
        np.testing.assert_allclose(got, ref, atol=1e-9 * ref[0])
        assert got.sum() == pytest.approx(np.trace(np.cov(X.T, ddof=ddof)))
    if n < p:
        assert np.all(got[n - 1 :] < 1e-9 * got[0])  # centred rank <= n - 1


def test_class_eigenvalues_and_table():
    rng = np.random.default_rng(1)
    p = 50
    X = np.vstack([rng.standard_normal((20, p)), 3.0 * rng.standard_normal((80, p))])
    y = np.r_[np.zeros(20, int), np.ones(80, int)]
    spectra = M.class_eigenvalues(X, y)
    assert set(spectra) == {0, 1} and all(v.shape == (p,) for v in spectra.values())
    np.testing.assert_allclose(spectra[0], M.covariance_eigenvalues(X[:20]))  # n_c < p: Gram path
    tab = M.class_spectral_table(X, y)
    assert list(tab["class"]) == [0, 1] and list(tab["n"]) == [20, 80]
    assert tab.loc[1, "trace"] == pytest.approx(X[20:].var(axis=0).sum())
    assert tab.loc[1, "trace"] > 5 * tab.loc[0, "trace"]


def test_spectral_imbalance():
    lam = np.array([3.0, 2.0, 1.0])
    assert M.spectral_imbalance(lam, lam) == 0.0
    assert M.spectral_imbalance(lam, lam[::-1]) == 0.0  # compared as sorted spectra
    assert M.spectral_imbalance([2.0, 1.0], [1.0, 1.0]) == pytest.approx(1 / 3)
    assert M.spectral_imbalance([1.0, 1.0], [2.0, 1.0]) == pytest.approx(1 / 2)  # asymmetric
    assert M.spectral_imbalance([2.0, 1.0], [2.0]) == pytest.approx(1 / 3)  # zero-padded
    same = {c: lam for c in "abc"}
    assert M.mean_spectral_imbalance(same) == 0.0
    assert np.allclose(M.pairwise_spectral_imbalance(same).to_numpy(), 0.0)


def test_across_class_spread():
    s = M.across_class_spread({"a": 1.0, "b": 2.0, "c": 4.0})
    assert s["max_min_ratio"] == pytest.approx(4.0)
    assert s["cv"] == pytest.approx(np.std([1, 2, 4]) / np.mean([1, 2, 4]))
    assert M.across_class_spread([2.0, 2.0])["cv"] == 0.0


def test_class_disparity():
    y = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])
    pred = np.array([0, 0, 0, 1, 1, 1, 1, 1, 0, 0])
    acc = M.per_class_accuracy(y, pred)
    assert acc == {0: 0.75, 1: 1.0, 2: 0.0}
    d = M.class_disparity(acc)
    assert d["worst_class"] == 2 and d["worst_accuracy"] == 0.0 and d["gap"] == 1.0
    assert d["mean_accuracy"] == pytest.approx(1.75 / 3)
    assert d["std"] == pytest.approx(np.std([0.75, 1.0, 0.0]))


def test_spearman_helpers():
    assert M.spearman([1, 2, 3, 4], [10, 20, 30, 45]) == pytest.approx(1.0)
    assert M.spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert np.isnan(M.spearman([1, 2, 3], [5, 5, 5]))
    err = {"a": 0.3, "b": 0.1, "c": 0.2}
    summ = {"a": {"trace": 9.0, "effective_rank": 1.0}, "b": {"trace": 1.0, "effective_rank": 3.0}}
    summ["c"] = {"trace": 5.0, "effective_rank": 2.0}
    rho = M.spearman_error_vs_summaries(err, summ)
    assert rho == {"trace": pytest.approx(1.0), "effective_rank": pytest.approx(-1.0)}
