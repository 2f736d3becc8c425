"""MoDeGPT's allocation rows, figure and claims on synthetic contract tables with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_llm_figures_claims import PROV, make_table

from repro.llm.modegpt_report import allocation_frame, allocation_records, modegpt_claims, plot_allocation
from repro.report.rows import tidy_rows, validate_table

INFO = {
    "allocation": [
        {"layer": i, "bi": bi, "sparsity": phi, "keep": 1 - phi, "mlp_width": 100 - i, "qk_dim": 8, "v_dim": 6}
        for i, (bi, phi) in enumerate([(0.4, 0.05), (0.1, 0.35), (0.2, 0.2)])
    ]
}


def modegpt_rows(run, target, ppl, zeroshot, decode, seconds, model="smollm2"):
    """llm_compression rows of one MoDeGPT run (the metrics its claims read)."""
    setting = {"run": run, "series": "MoDeGPT", "target_removed": target, "convention": "total"}
    rows = []
    for experiment, metric, value, dataset in [
        ("params", "removed_total", target, "-"),
        ("params", "compress_seconds", seconds, "-"),
        ("perplexity", "perplexity", ppl[0], "austen_test"),
        ("perplexity", "perplexity", ppl[1], "kjv"),
        ("zeroshot", "zeroshot_acc", zeroshot, "zeroshot_mean"),
        ("speed", "decode_speedup", decode, "random_tokens"),
    ]:
        record = {"method": "modegpt", "setting": setting, "seed": 0, "metric": metric, "value": value}
        rows.append(
            tidy_rows(
                [{**record, "dataset": dataset}],
                paper="llm_compression",
                experiment=experiment,
                tier="test",
                provenance=PROV,
                model=model,
            )
        )
    return rows


def full_table(**changes):
    base = make_table(runs=["dense", "slicegpt-r0.20", "slicegpt-r0.30"])
    timing = [
        tidy_rows(
            [
                {
                    "method": "slicegpt",
                    "setting": {"run": run, "series": "SliceGPT", "target_removed": t, "convention": "total"},
                    "seed": 0,
                    "metric": "compress_seconds",
                    "value": 100.0,
                }
            ],
            paper="llm_compression",
            experiment="params",
            tier="test",
            provenance=PROV,
            model="smollm2",
        )
        for run, t in (("slicegpt-r0.20", 0.2), ("slicegpt-r0.30", 0.3))
    ]
    ppl30 = changes.get("ppl30", (30.0, 40.0))
    calibration = tidy_rows(
        [{"method": "calibration", "setting": {"calibration_set": "c"}, "seed": 0, "metric": "seconds", "value": 20.0}],
        paper="llm_compression",
        experiment="calibration",
        tier="test",
        provenance=PROV,
        model="smollm2",
    )
    frames = [base, calibration, *timing]
    frames += modegpt_rows("modegpt-r0.20", 0.2, (22.0, 33.0), 0.56, 1.1, 50.0)
    frames += modegpt_rows("modegpt-r0.30", 0.3, ppl30, changes.get("zs30", 0.53), changes.get("dec30", 1.3), 80.0)
    return validate_table(pd.concat(frames, ignore_index=True))


def by_id(claims):
    return {c.claim_id: c for c in claims}


def test_claims_on_a_table_where_they_hold():
    claims = by_id(modegpt_claims(full_table()))
    # SliceGPT in make_table: 25/36 at 20%, 32/45 at 30%
    assert claims["ppl_below_slicegpt"].measured == pytest.approx(max(22 / 25, 33 / 36, 30 / 32, 40 / 45))
    assert claims["ppl_below_slicegpt"].holds is True
    assert claims["zeroshot_retained"].measured == pytest.approx(0.53 / 0.58)  # dense mean 0.58
    assert claims["zeroshot_retained"].holds is True
    assert claims["throughput_gain"].measured == pytest.approx(1.3) and claims["throughput_gain"].holds is True
    # original mode: MoDeGPT's 80 s plus the 20 s calibration job it reads, against SliceGPT's 100 s
    assert claims["compression_time_vs_slicegpt"].measured == pytest.approx(1.0)
    assert claims["compression_time_vs_slicegpt"].holds is True


def test_claims_that_do_not_hold_and_missing_runs():
    claims = by_id(modegpt_claims(full_table(ppl30=(40.0, 40.0), zs30=0.4, dec30=0.9)))
    assert (
        claims["ppl_below_slicegpt"].measured == pytest.approx(40 / 32) and claims["ppl_below_slicegpt"].holds is False
    )
    assert claims["zeroshot_retained"].holds is False and claims["throughput_gain"].holds is False
    empty = by_id(modegpt_claims(make_table(runs=["dense", "slicegpt-r0.20"])))
    assert all(math.isnan(c.measured) and c.holds is None for c in empty.values())


def test_allocation_rows_and_figure(tmp_path):
    setting = {"run": "modegpt-r0.30", "target_removed": 0.3}
    records = allocation_records(INFO, setting)
    assert len(records) == 3 * 6
    table = tidy_rows(records, paper="modegpt", experiment="allocation", tier="test", provenance=PROV, model="m")
    frame = allocation_frame(table)
    assert list(frame["layer"]) == [0, 1, 2]
    assert list(frame["sparsity"]) == [0.05, 0.35, 0.2] and list(frame["mlp_width"]) == [100, 99, 98]
    plot_allocation(table, tmp_path / "allocation.png")
    assert (tmp_path / "allocation.png").stat().st_size > 10_000 and (tmp_path / "allocation.pdf").exists()
    with pytest.raises(ValueError, match="allocation"):
        allocation_records({}, setting)


def svd_llm_rows(run, target, ppl, model="smollm2"):
    """llm_compression perplexity rows of one SVD-LLM run."""
    setting = {"run": run, "series": "SVD-LLM", "target_removed": target, "convention": "total"}
    return [
        tidy_rows(
            [{"method": "svd_llm", "setting": setting, "seed": 0, "metric": "perplexity", "value": v, "dataset": ds}],
            paper="llm_compression",
            experiment="perplexity",
            tier="test",
            provenance=PROV,
            model=model,
        )
        for v, ds in zip(ppl, ("austen_test", "kjv"))
    ]


def test_modegpt_beats_svd_llm_at_shared_targets():
    base = full_table()  # MoDeGPT: 20% (22, 33), 30% (30, 40)
    rows = svd_llm_rows("svd_llm-r0.20", 0.2, (30.0, 40.0)) + svd_llm_rows("svd_llm-r0.30", 0.3, (35.0, 45.0))
    rows += svd_llm_rows("svd_llm-r0.25", 0.25, (1.0, 1.0))  # no MoDeGPT run at 25%: not paired
    rows += svd_llm_rows("svd_llm-ratio0.20", None, (1.0, 1.0))  # the official knob, no target: not paired
    claims = by_id(modegpt_claims(validate_table(pd.concat([base, *rows], ignore_index=True))))
    claim = claims["modegpt_beats_svd_llm"]
    assert claim.measured == pytest.approx(max(22 / 30, 33 / 40, 30 / 35, 40 / 45)) and claim.holds is True
    assert "30% kjv: 40 / 45" in claim.detail
    worse = validate_table(pd.concat([base, *svd_llm_rows("svd_llm-r0.30", 0.3, (29.0, 50.0))], ignore_index=True))
    claim = by_id(modegpt_claims(worse))["modegpt_beats_svd_llm"]
    assert claim.measured == pytest.approx(30 / 29) and claim.holds is False
    missing = by_id(modegpt_claims(base))["modegpt_beats_svd_llm"]
    assert math.isnan(missing.measured) and missing.holds is None and "no MoDeGPT and SVD-LLM" in missing.detail
