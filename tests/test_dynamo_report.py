"""DynaMo's report: training rows, frames, figures and claims on synthetic tidy tables with known answers."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from repro.dynamo.report import (
    DECODING_METRICS,
    PAPER,
    QUALITY_TOLERANCE,
    SUMMARY_METRICS,
    decoding_frame,
    dynamo_claims,
    parameter_frame,
    perplexity_frame,
    plot_quality,
    plot_speedup,
    plot_token_share,
    plot_training,
    training_frame,
    training_records,
    training_summary,
)
from repro.report.claims import claims_frame
from repro.report.rows import tidy_rows, validate_table

PROV = {
    "git_commit": "x",
    "code_digest": "y",
    "torch_version": "-",
    "transformers_version": "-",
    "lm_eval_version": "-",
    "device": "cpu",
}
STEPS = 25
AR_PPL = 10.0
# eps_b -> (speedup, tokens_per_step, share_1, share_2, share_3, continuation_ppl)
SWEEP = {
    0.0: (2.4, 3.0, 0.0, 0.0, 1.0, 30.0),
    0.25: (2.0, 2.6, 0.15, 0.1, 0.75, 14.0),
    0.5: (1.6, 2.0, 0.45, 0.1, 0.45, 11.0),  # exactly 1.10 x AR: matched
    0.75: (1.3, 1.5, 0.7, 0.1, 0.2, 10.5),
    1.0: (0.9, 1.0, 1.0, 0.0, 0.0, 10.0),
}


def rows(records, experiment, model="pythia-70m"):
    return tidy_rows(records, paper=PAPER, experiment=experiment, tier="test", provenance=PROV, model=model)


def make_info(steps=STEPS, heads=3, seed=4):
    history = [
        {
            "step": s,
            "lr_heads": 1e-3 * (1 - s / steps),
            "lr_base": 0.0,
            "loss": 4.0 - 0.02 * s,
            **{f"ce_{j}": 3.0 * j - 0.05 * s + 0.1 * (-1) ** s for j in range(1, heads + 1)},
            "seconds": 0.1 * s,
        }
        for s in range(1, steps + 1)
    ]
    return {"architecture": {"seed": seed}, "history": history, "seconds": 12.5, "tokens": 51200, "peak_rss_mb": 900.0}


def decoding_rows(sweep=SWEEP, ar_ppl=AR_PPL, assisted=(1.4, 10.2), model="pythia-70m"):
    def point(dataset, method, values, eps=None):
        speedup, tps, s1, s2, s3, ppl = values
        metrics = {
            "tokens": 1000.0,
            "steps": 1000.0 / tps,
            "tokens_per_step": tps,
            "tokens_per_s": 50.0 * speedup,
            "speedup": speedup,
            "share_1": s1,
            "share_2": s2,
            "share_3": s3,
            "continuation_ppl": ppl,
            "distinct_2": 0.8,
            "repetition_rate": 0.05,
        }
        if eps is not None:
            metrics["eps_b"] = eps
        return [
            {"method": method, "seed": 0, "metric": m, "value": v, "dataset": dataset, "setting": {"run": "t3"}}
            for m, v in metrics.items()
        ]

    records = point("ar", "autoregressive", (1.0, 1.0, 1.0, 0.0, 0.0, ar_ppl))
    if assisted is not None:
        records += point("assisted", "assisted", (assisted[0], 1.8, 0.0, 0.0, 0.0, assisted[1]))
    for eps, values in sweep.items():
        records += point(f"eps_{eps:.2f}", "dynamo", values, eps)
    return rows(records, "decoding", model)


def perplexity_rows(texts=None, params=(70_426_624, 6_306_816, 6_304_768), model="pythia-70m"):
    texts = texts or {"austen": (18.3, 111.4, 262.0), "kjv": (25.0, 120.0, 300.0)}
    records = []
    for text, (p1, p2, p3) in texts.items():
        common = (p1 * 1.01, p2 * 1.01, p3 * 1.01)
        values = {"ppl_1": p1, "ppl_2": p2, "ppl_3": p3, "positions": 1000.0, "common_positions": 998.0}
        values |= {f"ppl_{j}_common": c for j, c in enumerate(common, 1)}
        values["ppl_joint"] = math.exp(np.log(common).mean())
        records += [{"metric": k, "value": v, "dataset": text} for k, v in values.items()]
    base, extra, formula = params
    values = {"params_base": base, "params_extra": extra, "overhead": extra / base, "params_extra_formula": formula}
    records += [{"metric": k, "value": v, "dataset": "model"} for k, v in values.items()]
    records = [{**r, "method": "dynamo", "seed": 0, "setting": {"run": "t3"}} for r in records]
    return rows(records, "perplexity", model)


def full_table(**decoding):
    frames = [
        rows(training_records(make_info(), {"run": "t3"}), "training"),
        perplexity_rows(),
        decoding_rows(**decoding),
        rows(
            [{"method": "dynamo", "seed": 0, "metric": "win_rate", "value": 0.9, "dataset": "eps_0.50"}],
            "judge",
        ),
    ]
    return validate_table(pd.concat(frames, ignore_index=True))


def by_id(table):
    return {c.claim_id: c for c in dynamo_claims(table)}


# ---------------------------------------------------------------------------------------------- rows and frames
def test_training_records_rows_and_fields():
    setting = {"run": "t3"}
    records = training_records(make_info(), setting)
    assert len(records) == STEPS * 5 + len(SUMMARY_METRICS)  # loss, lr_heads, ce_1..ce_3
    assert records[0] == {
        "method": "dynamo",
        "setting": setting,
        "seed": 4,
        "metric": "loss",
        "value": pytest.approx(3.98),
        "dataset": "step_00001",
    }
    assert [r["metric"] for r in records[:5]] == ["loss", "lr_heads", "ce_1", "ce_2", "ce_3"]
    summary = {r["metric"]: r["value"] for r in records if r["dataset"] == "summary"}
    assert summary == {"seconds": 12.5, "tokens": 51200.0, "peak_rss_mb": 900.0}
    assert len(training_records(make_info(steps=3, heads=2), setting)) == 3 * 4 + 3
    info = make_info()
    del info["peak_rss_mb"]
    assert math.isnan(training_records(info, setting)[-1]["value"])
    for bad in ({}, {"history": []}):
        with pytest.raises(ValueError, match="t3.*history"):
            training_records(bad, setting)


def test_frames():
    table = full_table()
    train = training_frame(table)
    assert len(train) == STEPS and {"ce_1", "ce_2", "ce_3", "loss", "lr_heads"} <= set(train.columns)
    assert train.sort_values("step")["ce_2"].iloc[0] == pytest.approx(6.0 - 0.05 - 0.1)
    summary = training_summary(table)
    assert summary.loc[0, "seconds"] == 12.5 and list(summary.columns) == ["model", *SUMMARY_METRICS]

    frame = decoding_frame(table)
    assert list(frame.columns) == ["model", "dataset", *DECODING_METRICS, "method"]
    assert list(frame["dataset"])[:2] == ["ar", "assisted"] and len(frame) == 2 + len(SWEEP)
    assert frame["eps_b"].iloc[:2].isna().all() and list(frame["eps_b"].iloc[2:]) == sorted(SWEEP)
    assert list(frame["method"].iloc[:3]) == ["autoregressive", "assisted", "dynamo"]
    row = frame.set_index("dataset").loc["eps_0.25"]
    assert row["speedup"] == 2.0 and row["tokens_per_step"] == 2.6 and row["continuation_ppl"] == 14.0

    ppl = perplexity_frame(table)
    assert list(ppl["dataset"]) == ["austen", "kjv"] and ppl.loc[0, "ppl_2"] == 111.4
    params = parameter_frame(table)
    assert params.loc[0, "params_extra_formula"] == 6_304_768
    assert decoding_frame(table[table["experiment"] != "decoding"]).empty


# ---------------------------------------------------------------------------------------------- figures
@pytest.mark.parametrize("plot", [plot_speedup, plot_token_share, plot_quality, plot_training])
def test_plots_write_png_and_pdf(tmp_path, plot):
    two_models = pd.concat([full_table(), decoding_rows(model="smollm2", assisted=None)], ignore_index=True)
    plot(two_models, tmp_path / "figure.png")
    assert (tmp_path / "figure.png").stat().st_size > 5_000 and (tmp_path / "figure.pdf").exists()
    experiment = "training" if plot is plot_training else "decoding"
    with pytest.raises(ValueError, match=experiment):
        plot(perplexity_rows(), tmp_path / "none.png")


# ---------------------------------------------------------------------------------------------- claims
def test_claims_on_a_table_where_they_hold():
    claims = by_id(full_table())
    assert list(claims) == [
        "speedup_at_matched_quality",
        "parameter_overhead",
        "per_head_ppl_ordering",
        "joint_ppl_identity",
        "bigrams_rare",
    ]
    speed = claims["speedup_at_matched_quality"]
    # eps 0.5 sits exactly on the 1.10 x AR boundary and counts; eps 0.25 (ppl 14) does not
    assert speed.measured == 1.6 and speed.holds is True
    assert "eps_b 0.5: 1.600x" in speed.detail and "2.000 tokens/step" in speed.detail
    assert "judge win rate 0.9" in speed.detail and "assisted 1.400x, ppl 10.2" in speed.detail
    overhead = claims["parameter_overhead"]
    assert overhead.measured == pytest.approx(6_306_816 / 70_426_624) and overhead.holds is True
    order = claims["per_head_ppl_ordering"]
    assert order.measured == pytest.approx(111.4 / 18.3) and order.holds is True
    assert "PPL_3/PPL_1" in order.detail
    identity = claims["joint_ppl_identity"]
    assert identity.measured <= 1e-12 and identity.holds is True
    bigrams = claims["bigrams_rare"]
    assert bigrams.measured == pytest.approx(0.1) and bigrams.holds is True
    assert claims_frame(list(claims.values()), PAPER, "test")["holds"].tolist() == [True] * 5


def test_quality_tolerance_boundary_and_no_match():
    just_over = dict(SWEEP)
    just_over[0.5] = (1.6, 2.0, 0.45, 0.1, 0.45, QUALITY_TOLERANCE * AR_PPL * 1.001)
    speed = by_id(full_table(sweep=just_over))["speedup_at_matched_quality"]
    assert speed.measured == 1.3 and speed.holds is True  # falls back to eps 0.75
    # every threshold slower than AR at matched quality
    slow = {eps: (0.8, *v[1:]) if v[5] <= 11.0 else v for eps, v in SWEEP.items()}
    speed = by_id(full_table(sweep=slow))["speedup_at_matched_quality"]
    assert speed.measured == 0.8 and speed.holds is False
    # no threshold within the tolerance: only AR itself (1x) is at matched quality
    poor = {eps: (*v[:5], 50.0) for eps, v in SWEEP.items()}
    speed = by_id(full_table(sweep=poor))["speedup_at_matched_quality"]
    assert speed.measured == 1.0 and speed.holds is False and "no threshold within" in speed.detail


def test_claims_that_do_not_hold():
    table = pd.concat(
        [
            rows(training_records(make_info(), {"run": "t3"}), "training"),
            perplexity_rows(
                texts={"austen": (18.3, 111.4, 262.0), "kjv": (25.0, 320.0, 300.0)},
                params=(70_426_624, 7_000_000, 6_304_768),
            ),
            decoding_rows(sweep={**SWEEP, 0.5: (1.6, 2.0, 0.3, 0.4, 0.3, 11.0)}),
        ],
        ignore_index=True,
    )
    claims = by_id(table)
    assert claims["parameter_overhead"].holds is False and "difference +695,232" in claims["parameter_overhead"].detail
    assert claims["per_head_ppl_ordering"].holds is False
    assert claims["per_head_ppl_ordering"].measured == pytest.approx(111.4 / 18.3)  # first text
    assert claims["bigrams_rare"].measured == pytest.approx(0.4) and claims["bigrams_rare"].holds is False
    # the identity breaks when the joint is not the geometric mean
    broken = table.copy()
    broken.loc[broken["metric"] == "ppl_joint", "value"] *= 1.001
    identity = by_id(broken)["joint_ppl_identity"]
    assert identity.measured == pytest.approx(0.001) and identity.holds is False


def test_missing_rows_give_nan_and_none():
    training_only = rows(training_records(make_info(), {"run": "t3"}), "training")
    claims = by_id(training_only)
    assert all(math.isnan(c.measured) and c.holds is None and c.detail.startswith("no ") for c in claims.values())
    # decoding without an AR reference: no speed-up claim; the shares still count
    table = full_table()
    no_ar = table[~((table["experiment"] == "decoding") & (table["dataset"] == "ar"))]
    claims = by_id(no_ar)
    assert claims["speedup_at_matched_quality"].holds is None and claims["bigrams_rare"].holds is True
    frame = claims_frame(list(by_id(training_only).values()), PAPER, "test")
    assert frame["holds"].isna().all()
