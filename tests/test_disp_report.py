"""DISP-LLM's training rows, figure and claims on synthetic contract tables with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_llm_figures_claims import PROV

from repro.llm.disp_report import (
    SUMMARY_METRICS,
    TRAINING_METRICS,
    disp_llm_claims,
    plot_training,
    training_frame,
    training_records,
    training_summary,
)
from repro.report.claims import claims_frame
from repro.report.rows import tidy_rows, validate_table

STEPS = 30


def make_info(p_block=0.48, target=0.5, steps=STEPS, seed=3):
    """A DISP-LLM compression.json ``info`` with a synthetic training log."""
    history = [
        {
            "step": s,
            "loss": 5.0 - 0.05 * s + 0.1,
            "ce": 5.0 - 0.05 * s + 0.1 * (-1) ** s,
            "regulariser": 0.1,
            "hard_ratio": 1.0 - (1.0 - p_block) * s / steps,
            "soft_ratio": 0.9,
            "deterministic_ratio": 1.0 - (1.0 - p_block) * s / steps + 0.01,
            "seconds": 0.5 * s,
        }
        for s in range(1, steps + 1)
    ]
    return {
        "history": history,
        "train_seconds": 15.0,
        "train_tokens": 30 * 4 * 128,
        "peak_rss_mb": 2048.0,
        "p_block": p_block,
        "block_keep_achieved": p_block + 0.005,
        "target_removed": target,
        "settings": {"seed": seed},
    }


def training_table(runs=(("disp_llm-r0.30", 0.3, 0.67), ("disp_llm-r0.50", 0.5, 0.48)), model="smollm2"):
    frames = []
    for run, target, p in runs:
        setting = {"run": run, "target_removed": target}
        records = training_records(make_info(p_block=p, target=target), setting)
        frames.append(
            tidy_rows(records, paper="disp_llm", experiment="training", tier="test", provenance=PROV, model=model)
        )
    return validate_table(pd.concat(frames, ignore_index=True))


def run_rows(run, method, target, ppl, removed=None, decode=1.0, pattern=None, model="smollm2"):
    """llm_compression rows of one run: params, perplexity on two texts, speed."""
    setting = {"run": run, "series": method, "target_removed": target, "convention": "total"}
    if pattern:
        setting["pattern"] = pattern
    removed = target if removed is None else removed
    specs = [("params", "removed_total", removed, "-")] if removed is not None else []
    specs += [("perplexity", "perplexity", p, ds) for p, ds in zip(ppl, ("austen_test", "kjv"))]
    specs += [
        ("speed", "decode_speedup", decode, "random_tokens"),
        ("speed", "prefill_speedup", decode + 0.5, "random_tokens"),
    ]
    frames = []
    for experiment, metric, value, dataset in specs:
        extra = {"device": "Test GPU"} if experiment == "speed" else {}
        record = {"method": method, "setting": {**setting, **extra}, "seed": 0, "metric": metric, "value": value}
        frames.append(
            tidy_rows(
                [{**record, "dataset": dataset}],
                paper="llm_compression",
                experiment=experiment,
                tier="test",
                provenance=PROV,
                model=model,
            )
        )
    return frames


def full_table(disp50=(110.0, 110.0), sparsegpt=None, disp_removed50=0.51, dec50=1.2, with_disp=True):
    frames = [training_table()] if with_disp else []
    frames += run_rows("dense", "dense", None, (20.0, 30.0), removed=0.0)
    frames += run_rows("slicegpt-r0.30", "slicegpt", 0.3, (100.0, 80.0))
    frames += run_rows("slicegpt-s0.20", "slicegpt", None, (10.0, 10.0), removed=0.2)  # no target: not paired
    frames += run_rows("wanda-2of4", "wanda", None, (100.0, 100.0), removed=0.41, pattern="2:4")
    if sparsegpt is not None:
        frames += run_rows("sparsegpt-2of4", "sparsegpt", None, sparsegpt, removed=0.41, pattern="2:4")
    if with_disp:
        frames += run_rows("disp_llm-r0.30", "disp_llm", 0.3, (50.0, 20.0), removed=0.305, decode=1.1)
        frames += run_rows("disp_llm-r0.50", "disp_llm", 0.5, disp50, removed=disp_removed50, decode=dec50)
    return validate_table(pd.concat(frames, ignore_index=True))


def by_id(claims):
    return {c.claim_id: c for c in claims}


def test_training_records_rows_and_fields():
    setting = {"run": "disp_llm-r0.50", "target_removed": 0.5}
    records = training_records(make_info(), setting)
    assert len(records) == STEPS * len(TRAINING_METRICS) + len(SUMMARY_METRICS)
    first = records[0]
    assert first == {
        "method": "disp_llm",
        "setting": setting,
        "seed": 3,
        "metric": "loss",
        "value": pytest.approx(5.05),
        "dataset": "step_00001",
    }
    summary = {r["metric"]: r["value"] for r in records if r["dataset"] == "summary"}
    assert summary["train_peak_rss_mb"] == 2048.0 and summary["p_block"] == 0.48
    assert summary["train_tokens"] == 30 * 4 * 128 and summary["target_removed"] == 0.5
    assert {r["dataset"] for r in records if r["dataset"] != "summary"} == {f"step_{s:05d}" for s in range(1, 31)}
    for info in ({}, {"history": []}):
        with pytest.raises(ValueError, match="disp_llm-r0.50.*history"):
            training_records(info, setting)


def test_training_frame_and_summary_round_trip():
    table = training_table()
    frame = training_frame(table)
    assert list(frame.columns) == ["model", "run", "step", *TRAINING_METRICS]
    assert len(frame) == 2 * STEPS
    part = frame[frame.run == "disp_llm-r0.50"].sort_values("step")
    assert list(part["step"]) == list(range(1, STEPS + 1))
    assert part["hard_ratio"].iloc[-1] == pytest.approx(0.48)
    assert part["ce"].iloc[1] == pytest.approx(5.0 - 0.1 + 0.1)
    summary = training_summary(table).set_index("run")
    assert list(summary.columns) == ["model", *SUMMARY_METRICS]
    assert summary.loc["disp_llm-r0.30", "p_block"] == pytest.approx(0.67)
    assert summary.loc["disp_llm-r0.50", "train_seconds"] == pytest.approx(15.0)
    # the llm_compression rows of a combined table are ignored
    assert len(training_frame(full_table())) == 2 * STEPS


def test_plot_training_writes_png_and_pdf(tmp_path):
    plot_training(training_table(), tmp_path / "training.png")
    assert (tmp_path / "training.png").stat().st_size > 10_000 and (tmp_path / "training.pdf").exists()
    with pytest.raises(ValueError, match="training"):
        plot_training(full_table(with_disp=False), tmp_path / "none.png")


def test_claims_on_a_table_where_they_hold():
    claims = by_id(disp_llm_claims(full_table()))
    assert list(claims) == ["ppl_below_slicegpt", "close_to_2of4", "throughput_gain", "ratio_conversion"]
    # DISP 30%: 50 / 100 and 20 / 80 against SliceGPT at 30%
    assert claims["ppl_below_slicegpt"].measured == pytest.approx(0.5) and claims["ppl_below_slicegpt"].holds
    assert claims["close_to_2of4"].measured == pytest.approx(1.1) and claims["close_to_2of4"].holds is True
    assert claims["throughput_gain"].measured == pytest.approx(1.2) and claims["throughput_gain"].holds is True
    assert "disp_llm-r0.30: decode 1.100x, prefill 1.600x on Test GPU" in claims["throughput_gain"].detail
    assert claims["ratio_conversion"].measured == pytest.approx(0.01) and claims["ratio_conversion"].holds is True
    assert "p_block 0.4800" in claims["ratio_conversion"].detail
    frame = claims_frame(list(claims.values()), "disp_llm", "test")
    assert frame["holds"].tolist() == [True] * 4


def test_claims_that_do_not_hold_and_best_2of4():
    claims = by_id(disp_llm_claims(full_table(disp50=(120.0, 90.0), disp_removed50=0.53, dec50=0.9)))
    assert claims["close_to_2of4"].measured == pytest.approx(1.2) and claims["close_to_2of4"].holds is False
    assert claims["throughput_gain"].holds is False
    assert claims["ratio_conversion"].measured == pytest.approx(0.03) and claims["ratio_conversion"].holds is False
    # a second 2:4 method: the lower 2:4 perplexity per text is the reference
    claims = by_id(disp_llm_claims(full_table(disp50=(110.0, 110.0), sparsegpt=(105.0, 200.0))))
    assert claims["close_to_2of4"].measured == pytest.approx(110 / 100) and claims["close_to_2of4"].holds is True
    claims = by_id(disp_llm_claims(full_table(disp50=(110.0, 100.0), sparsegpt=(90.0, 120.0))))
    assert claims["close_to_2of4"].measured == pytest.approx(110 / 90) and claims["close_to_2of4"].holds is False
    detail = claims["close_to_2of4"].detail
    assert "wanda 2:4" in detail and "sparsegpt 2:4" in detail
    assert (
        "austen_test: DISP-LLM 110 vs wanda 2:4 100 (ratio 1.1), sparsegpt 2:4 90 (ratio 1.22); stronger: sparsegpt"
        in detail
    )
    assert "kjv: DISP-LLM 100 vs wanda 2:4 100 (ratio 1), sparsegpt 2:4 120 (ratio 0.833); stronger: wanda" in detail


def test_missing_runs_give_nan_and_none():
    claims = by_id(disp_llm_claims(full_table(with_disp=False)))
    assert all(math.isnan(c.measured) and c.holds is None for c in claims.values())
    # DISP-LLM runs but no 2:4 run and no SliceGPT run at a shared target
    table = full_table()
    table = table[~table["setting"].str.contains('"run": "(?:wanda-2of4|slicegpt-r0.30)"', regex=True)]
    claims = by_id(disp_llm_claims(table))
    assert claims["ppl_below_slicegpt"].holds is None and claims["close_to_2of4"].holds is None
    assert claims["throughput_gain"].holds is True and claims["ratio_conversion"].holds is True
