"""The two optimisation papers' claims on synthetic tables with known answers."""

import numpy as np
import pandas as pd
import pytest

from repro.optim.heavy_ball_claims import heavy_ball_claims, median_iterations
from repro.optim.saddle_claims import stochastic_momentum_claims
from repro.report.rows import tidy_rows

PROV = {
    "git_commit": "x",
    "code_digest": "y",
    "torch_version": "-",
    "transformers_version": "-",
    "lm_eval_version": "-",
    "device": "cpu",
}


def _saddle_table(escape):
    """escape(beta, seed) -> escape time (NaN = censored)."""
    records = [
        {
            "method": "sgd",
            "setting": {"beta": b, "n_steps": 10_000},
            "seed": s,
            "metric": "escape_time",
            "value": escape(b, s),
        }
        for b in (0.0, 0.5, 0.9)
        for s in (0, 1, 2)
    ]
    return tidy_rows(records, paper="stochastic_momentum", experiment="toy", tier="test", provenance=PROV)


def _by_id(claims):
    return {c.claim_id: c for c in claims}


def test_escape_times_following_the_theory_hold():
    claims = _by_id(stochastic_momentum_claims(_saddle_table(lambda b, s: 100.0 * (1 + s) * (1 - b))))
    assert claims["toy.escape_decreases_with_beta"].holds is True
    assert claims["toy.escape_decreases_with_beta"].measured == pytest.approx(-1.0)
    speedup = claims["toy.speedup_beta_0.9"]
    assert speedup.measured == pytest.approx(10.0) and speedup.holds is True


def test_escape_times_that_do_not_fall_with_beta_do_not_hold():
    claims = _by_id(stochastic_momentum_claims(_saddle_table(lambda b, s: 100.0 + s + 50 * (b == 0.5))))
    assert claims["toy.escape_decreases_with_beta"].holds is False
    assert claims["toy.speedup_beta_0.9"].measured == pytest.approx(1.0)
    assert claims["toy.speedup_beta_0.9"].holds is False


def test_censored_slow_runs_give_a_lower_bound():
    table = _saddle_table(lambda b, s: np.nan if b == 0 else 200.0 * (1 - b) / 0.1)
    speedup = _by_id(stochastic_momentum_claims(table))["toy.speedup_beta_0.9"]
    assert speedup.measured == pytest.approx(10_000 / 200.0)  # budget / escape(0.9)
    assert "lower bound" in speedup.detail


def _hb_table(iterations):
    """iterations(method, kappa_eff, seed) -> count (NaN = not converged)."""
    records = []
    for method in ("gd", "hb", "hb_adaptive"):
        for kappa in (100.0, 1000.0, 10000.0):
            for seed in (0, 1, 2):
                common = {"method": method, "seed": seed, "setting": {"profile": "sin2", "kappa_eff": kappa}}
                value = iterations(method, kappa, seed)
                records.append({**common, "metric": "iterations", "value": value})
                records.append({**common, "metric": "converged", "value": float(np.isfinite(value))})
    return tidy_rows(records, paper="heavy_ball", experiment="pl", tier="test", provenance=PROV)


def _ideal(method, kappa, seed):
    return {"gd": 2.0 * kappa, "hb": 20.0 * np.sqrt(kappa), "hb_adaptive": 5.0 * np.sqrt(kappa)}[method]


def test_exact_power_laws_give_the_paper_exponents():
    claims = _by_id(heavy_ball_claims(_hb_table(_ideal)))
    assert claims["pl.gd_kappa_exponent"].measured == pytest.approx(1.0)
    assert claims["pl.hb_kappa_exponent"].measured == pytest.approx(0.5)
    assert claims["pl.hb_kappa_exponent"].holds is True
    assert claims["pl.hb_converges"].measured == 1.0 and claims["pl.hb_converges"].holds is True
    assert claims["pl.hb_advantage_grows"].holds is True
    assert claims["pl.adaptive_momentum_helps"].measured == pytest.approx(0.25)


def test_non_convergence_is_counted_and_medians_treat_it_as_slowest():
    table = _hb_table(lambda m, k, s: np.nan if (m == "hb" and s == 0) else _ideal(m, k, s))
    claims = _by_id(heavy_ball_claims(table))
    assert claims["pl.hb_converges"].measured == pytest.approx(2 / 3)
    assert claims["pl.hb_converges"].holds is False
    med = median_iterations(table)
    assert np.isfinite(med.loc["hb"]).all()  # two of three seeds converged
    all_failed = _hb_table(lambda m, k, s: np.nan if m == "hb" else _ideal(m, k, s))
    assert median_iterations(all_failed).loc["hb"].isna().all()
    assert _by_id(heavy_ball_claims(all_failed))["pl.hb_kappa_exponent"].holds is None


def test_missing_pl_function_is_reported_not_silently_dropped():
    table = _hb_table(_ideal)
    table["setting"] = table["setting"].str.replace('"sin2"', '"quadratic"')
    (claim,) = heavy_ball_claims(pd.DataFrame(table))
    assert claim.holds is None and "not run" in claim.claim
