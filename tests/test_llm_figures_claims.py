"""LLM compression figures and claims on synthetic contract tables with known answers."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from repro.llm.claims import llm_compression_claims, run_frame
from repro.llm.figures import plot_perplexity, plot_speed, plot_zeroshot
from repro.report.claims import claims_frame
from repro.report.rows import tidy_rows, validate_table

PAPER = "llm_compression"
PROV = {
    "git_commit": "x",
    "code_digest": "y",
    "torch_version": "-",
    "transformers_version": "-",
    "lm_eval_version": "-",
    "device": "cpu",
}
DENSE_PARAMS = 134_515_008
TASK_METRICS = {"arc_easy": "acc_norm", "winogrande": "acc"}

# run -> (method, series, target_removed, knobs, removed_total, target_rel_error, ppl austen, ppl kjv,
#         zero-shot (acc_norm arc_easy, acc winogrande), decode speed-up)
RUNS = {
    "dense": ("dense", "dense", None, {}, 0.0, None, 20.0, 30.0, (0.60, 0.56), 1.0),
    "slicegpt-r0.20": ("slicegpt", "SliceGPT", 0.2, {"sparsity": 0.31}, 0.196, 0.004, 25.0, 36.0, (0.55, 0.53), 1.12),
    "slicegpt-r0.30": ("slicegpt", "SliceGPT", 0.3, {"sparsity": 0.42}, 0.305, -0.012, 32.0, 45.0, (0.50, 0.52), 1.25),
    "slicegpt-s0.20": (
        "slicegpt",
        "SliceGPT (nominal width)",
        None,
        {"sparsity": 0.2},
        1 - 147_489_984 / DENSE_PARAMS,
        None,
        23.0,
        33.0,
        (0.57, 0.54),
        0.93,
    ),
    "shortgpt-r0.20": ("shortgpt", "ShortGPT", 0.2, {"ratio": 0.24}, 0.203, 0.018, 60.0, 90.0, (0.45, 0.51), 1.3),
    "shortgpt-r0.30": ("shortgpt", "ShortGPT", 0.3, {"ratio": 0.36}, 0.297, -0.009, 150.0, 200.0, (0.40, 0.50), 1.5),
    "wanda-2of4": ("wanda", "Wanda 2:4", None, {"pattern": "2:4"}, 0.41, None, 40.0, 55.0, (0.48, 0.51), 0.99),
    "wanda-u0.50": (
        "wanda",
        "Wanda unstructured",
        None,
        {"sparsity": 0.5},
        0.41,
        None,
        28.0,
        38.0,
        (0.53, 0.52),
        1.0,
    ),
}
STDERR = {"arc_easy": 0.03, "winogrande": 0.04}


def make_table(runs=None, override=None, model="smollm2", experiments=("params", "perplexity", "zeroshot", "speed")):
    """Contract table of the given runs; ``override[(run, metric[, dataset])] = value`` replaces a value."""
    runs = RUNS if runs is None else {r: RUNS[r] for r in runs}
    override = override or {}
    frames = []
    for run, (method, series, target, knobs, removed, rel_err, ppl_a, ppl_k, zs, dec) in runs.items():
        base = {"run": run, "series": series, "target_removed": target, "convention": "total", **knobs}

        def rec(metric, value, dataset="-", extra=None, run=run, method=method, base=base):
            value = override.get((run, metric, dataset), override.get((run, metric), value))
            return {
                "method": method,
                "model": model,
                "dataset": dataset,
                "setting": {**base, **(extra or {})},
                "seed": 0,
                "metric": metric,
                "value": value,
            }

        total = DENSE_PARAMS * (1 - removed)
        params = [rec("params_total", total), rec("removed_total", removed), rec("removed_blocks", removed * 1.2)]
        if knobs.get("pattern"):
            params += [rec("nm_groups", 1000.0), rec("nm_groups_violating", 0.0)]
            params += [rec("nm_groups_extra", 2.0), rec("nm_extra_zeros", 3.0), rec("nm_extra_zeros_in_dense", 3.0)]
        if target is not None:
            params += [rec("target_params", DENSE_PARAMS * (1 - target)), rec("target_rel_error", rel_err)]
        ppl = [
            rec("perplexity", p, ds, {"window": 256, "max_windows": 8, "dataset": ds})
            for ds, p in (("austen_test", ppl_a), ("kjv", ppl_k))
        ]
        zeroshot = []
        for task, acc in zip(TASK_METRICS, zs):
            metric = TASK_METRICS[task]
            zeroshot += [rec(metric, acc, task), rec(f"{metric}_stderr", STDERR[task], task), rec("n", 200, task)]
        zeroshot.append(
            rec(
                "zeroshot_acc",
                sum(zs) / len(zs),
                "zeroshot_mean",
                {"tasks": sorted(TASK_METRICS), "task_metrics": TASK_METRICS},
            )
        )
        dev = {"device": "Test GPU", "dtype": "float16"}
        speed = [
            rec(m, v, "random_tokens", dev)
            for m, v in (
                ("prefill_tok_s", 1000.0 * (1 + removed)),
                ("decode_tok_s", 50.0 * dec),
                ("dense_prefill_tok_s", 1000.0),
                ("dense_decode_tok_s", 50.0),
                ("prefill_speedup", 1 + removed),
                ("decode_speedup", dec),
            )
        ]
        for exp, recs in (("params", params), ("perplexity", ppl), ("zeroshot", zeroshot), ("speed", speed)):
            if exp in experiments:
                frames.append(tidy_rows(recs, paper=PAPER, experiment=exp, tier="test", provenance=PROV))
    return validate_table(pd.concat(frames, ignore_index=True))


def by_id(claims):
    return {c.claim_id: c for c in claims}


def test_run_frame_pivots_one_row_per_run_with_combined_stderr():
    runs = run_frame(make_table()).set_index("run")
    assert len(runs) == len(RUNS)
    assert runs.loc["slicegpt-s0.20", "series"] == "SliceGPT (nominal width)"
    assert math.isnan(runs.loc["slicegpt-s0.20", "target_removed"])
    assert runs.loc["shortgpt-r0.30", "target_removed"] == pytest.approx(0.3)
    assert runs.loc["wanda-2of4", "pattern"] == "2:4"
    assert runs.loc["dense", "perplexity:kjv"] == pytest.approx(30.0)
    assert runs.loc["dense", "zeroshot_acc"] == pytest.approx(0.58)
    assert runs.loc["dense", "zeroshot_acc_stderr"] == pytest.approx(math.sqrt(0.03**2 + 0.04**2) / 2)
    assert runs.loc["slicegpt-r0.20", "device"] == "Test GPU"


def test_all_claims_on_the_full_table():
    claims = llm_compression_claims(make_table())
    assert [c.claim_id for c in claims] == [
        "slicegpt_param_anchor",
        "width_beats_depth",
        "unstructured_beats_2of4",
        "perplexity_monotone",
        "targets_within_2pct",
        "nm_pattern_exact",
        "slicegpt_decode_speedup",
    ]
    c = by_id(claims)
    assert c["slicegpt_param_anchor"].measured == pytest.approx(147_489_984)
    assert c["slicegpt_param_anchor"].holds is True
    assert c["width_beats_depth"].measured == pytest.approx(25 / 60)  # max of 25/60, 36/90, 32/150, 45/200
    assert c["width_beats_depth"].holds is True
    assert c["unstructured_beats_2of4"].measured == pytest.approx(28 / 40)  # vs 38/55
    assert c["unstructured_beats_2of4"].holds is True
    assert c["perplexity_monotone"].measured == 1.0
    assert c["perplexity_monotone"].holds is True
    assert c["targets_within_2pct"].measured == pytest.approx(0.018)
    assert c["targets_within_2pct"].holds is True
    assert c["nm_pattern_exact"].measured == 0
    assert c["nm_pattern_exact"].holds is True
    assert c["nm_pattern_exact"].detail == (
        "smollm2/wanda-2of4 (2:4): 0 of 1000 groups off the pattern, 2 groups with more zeros "
        "(3 extra zeros, 3 of them already zero in the dense model)"
    )
    # sparsity 0.2 (nominal run) is closer to 0.25 than 0.31: its decode speed-up 0.93 does not beat dense
    assert c["slicegpt_decode_speedup"].measured == pytest.approx(0.93)
    assert c["slicegpt_decode_speedup"].holds is False
    assert "Test GPU" in c["slicegpt_decode_speedup"].detail
    frame = claims_frame(claims, PAPER, "test")
    assert frame.holds.tolist() == [True, True, True, True, True, True, False]


def test_claims_that_do_not_hold():
    table = make_table(
        override={
            ("shortgpt-r0.30", "perplexity", "austen_test"): 30.0,  # below SliceGPT's 32 and below its 0.2 run
            ("wanda-u0.50", "perplexity", "kjv"): 60.0,
            ("shortgpt-r0.20", "target_rel_error"): -0.03,
            ("slicegpt-s0.20", "params_total"): 131.6e6,
            ("slicegpt-s0.20", "decode_speedup"): 1.1,
            ("wanda-2of4", "nm_groups_violating"): 3.0,
        }
    )
    c = by_id(llm_compression_claims(table))
    assert c["slicegpt_param_anchor"].holds is False
    assert c["width_beats_depth"].measured == pytest.approx(32 / 30)
    assert c["width_beats_depth"].holds is False
    assert c["unstructured_beats_2of4"].measured == pytest.approx(60 / 55)
    assert c["unstructured_beats_2of4"].holds is False
    assert c["perplexity_monotone"].measured == pytest.approx(3 / 4)
    assert c["perplexity_monotone"].holds is False
    assert c["targets_within_2pct"].measured == pytest.approx(0.03)
    assert c["targets_within_2pct"].holds is False
    assert c["slicegpt_decode_speedup"].measured == pytest.approx(1.1)
    assert c["slicegpt_decode_speedup"].holds is True
    assert c["nm_pattern_exact"].measured == 3
    assert c["nm_pattern_exact"].holds is False


def test_missing_runs_give_nan_and_none():
    c = by_id(llm_compression_claims(make_table(runs=["dense", "wanda-2of4", "wanda-u0.50"])))
    for claim_id in (
        "slicegpt_param_anchor",
        "width_beats_depth",
        "perplexity_monotone",
        "targets_within_2pct",
        "slicegpt_decode_speedup",
    ):
        assert math.isnan(c[claim_id].measured), claim_id
        assert c[claim_id].holds is None, claim_id
    assert c["unstructured_beats_2of4"].holds is True
    frame = claims_frame(list(c.values()), PAPER, "test")
    assert frame.holds.isna().sum() == 5


def test_anchor_needs_smollm2():
    c = by_id(llm_compression_claims(make_table(model="opt-125m")))
    assert math.isnan(c["slicegpt_param_anchor"].measured)
    assert c["slicegpt_param_anchor"].holds is None


def test_figures_write_png_and_pdf(tmp_path):
    table = make_table()
    for fn, name in ((plot_perplexity, "ppl"), (plot_zeroshot, "zs"), (plot_speed, "speed")):
        fn(table, tmp_path / f"{name}.png")
        assert (tmp_path / f"{name}.png").stat().st_size > 0
        assert (tmp_path / f"{name}.pdf").stat().st_size > 0


def test_figures_work_with_a_subset_of_series(tmp_path):
    subset = make_table(runs=["dense", "shortgpt-r0.20"])  # one single-point series and dense
    plot_zeroshot(subset, tmp_path / "zs.png")
    plot_speed(subset, tmp_path / "speed.png")
    plot_perplexity(make_table(runs=["slicegpt-r0.20", "slicegpt-r0.30"]), tmp_path / "ppl.png")  # no dense
    for name in ("zs", "speed", "ppl"):
        assert (tmp_path / f"{name}.png").is_file()
        assert (tmp_path / f"{name}.pdf").is_file()


@pytest.mark.parametrize(
    "fn, missing", [(plot_perplexity, "perplexity"), (plot_zeroshot, "zeroshot"), (plot_speed, "speed")]
)
def test_figures_name_the_missing_experiment(tmp_path, fn, missing):
    experiments = tuple(e for e in ("params", "perplexity", "zeroshot", "speed") if e != missing)
    with pytest.raises(ValueError, match=missing):
        fn(make_table(experiments=experiments), tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


def test_speed_claims_are_undecided_when_the_dense_rate_drifted():
    from repro.llm.claims import DRIFT_TOLERANCE, speed_claim_holds

    faster = lambda m: m > 1.0  # noqa: E731
    assert speed_claim_holds(1.3, 1.05, faster) == (True, "dense drift 1.05")
    assert speed_claim_holds(0.9, 0.95, faster)[0] is False
    holds, note = speed_claim_holds(3.1, 1.24, faster)  # the machine sped up 24 % between the dense timings
    assert holds is None and "not decided" in note and "1.24" in note
    assert speed_claim_holds(1.1, 1 - DRIFT_TOLERANCE - 0.01, faster)[0] is None
    assert speed_claim_holds(float("nan"), 1.0, faster)[0] is None
    assert speed_claim_holds(1.2, float("nan"), faster) == (True, "dense drift not recorded")
