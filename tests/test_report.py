"""The results contract: tidy rows, validation, aggregation, claims, runtime, atomic writes."""

import json

import numpy as np
import pandas as pd
import pytest

from repro.io import atomic_path, write_parquet
from repro.report.aggregate import aggregate
from repro.report.claims import CLAIM_COLUMNS, Claim, claims_frame, compute_claims
from repro.report.html import table_html
from repro.report.provenance import collect, library_version
from repro.report.rows import COLUMNS, settings_frame, tidy_rows, validate_table
from repro.report.runtime import collect_runtime, read_benchmark, summarise_runtime

PROV = {
    "git_commit": "abc",
    "code_digest": "d1",
    "torch_version": "2.13.0",
    "transformers_version": "not installed",
    "lm_eval_version": "not installed",
    "device": "cpu",
}


def _table(experiment="e1", seeds=(0, 1)):
    records = [
        {"method": "m", "setting": {"beta": b, "eta": np.float64(0.1)}, "seed": s, "metric": "x", "value": b + s}
        for s in seeds
        for b in (0.0, 0.5)
    ]
    return tidy_rows(records, paper="p", experiment=experiment, tier="test", provenance=PROV)


def test_tidy_rows_follow_the_contract():
    df = _table()
    assert list(df.columns) == COLUMNS
    validate_table(df)
    assert json.loads(df.setting.iloc[0]) == {"beta": 0.0, "eta": 0.1}
    assert df.seed.dtype == "Int64" and df.value.dtype == "float64"
    wide = settings_frame(df)
    assert set(wide.beta) == {0.0, 0.5}


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.drop(columns=["tier"]), "missing columns \\['tier'\\]"),
        (lambda d: d.iloc[0:0], "no rows"),
        (lambda d: pd.concat([d, d.iloc[:1]]), "duplicate rows"),
        (lambda d: d.assign(setting="beta=1"), "'setting' must hold JSON objects"),
        (lambda d: d.assign(method=pd.NA), "column 'method' has missing values"),
    ],
)
def test_validate_table_names_the_problem(mutate, message):
    with pytest.raises(ValueError, match=message):
        validate_table(mutate(_table()), source="job.parquet")


def test_aggregate_concatenates_sorted_and_checks_inputs(tmp_path):
    write_parquet(_table("e2"), tmp_path / "b.parquet")
    write_parquet(_table("e1"), tmp_path / "a.parquet")
    out = aggregate([tmp_path / "b.parquet", tmp_path / "a.parquet"], tmp_path / "all.parquet")
    assert len(out) == 8 and list(out.experiment.unique()) == ["e1", "e2"]
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "all.parquet"), out)
    pd.DataFrame({"value": [1.0]}).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(ValueError, match="bad.parquet: missing columns"):
        aggregate([tmp_path / "bad.parquet"], tmp_path / "x.parquet")
    assert not (tmp_path / "x.parquet").exists()


def test_claims_frame_computes_holds_and_marks_unmeasurable():
    claims = [
        Claim("a", "claim a", "10", 7.5, "measured >= 5", True),
        Claim("b", "claim b", "1", float("nan"), "needs beta = 0.9", None),
    ]
    df = claims_frame(claims, paper="p", tier="test")
    assert list(df.columns) == CLAIM_COLUMNS
    assert df.holds.dtype == "boolean"
    assert df.holds.iloc[0] is np.True_ or bool(df.holds.iloc[0]) is True
    assert pd.isna(df.holds.iloc[1])


def test_unknown_paper_has_no_claims(tmp_path):
    write_parquet(_table(), tmp_path / "t.parquet")
    with pytest.raises(ValueError, match="no claims registered for paper 'nope'"):
        compute_claims("nope", tmp_path / "t.parquet", tmp_path / "c.parquet", "test")


def test_runtime_from_benchmark_files(tmp_path):
    bench = tmp_path / "benchmarks" / "simulate_saddle"
    bench.mkdir(parents=True)
    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (bench / "toy.tsv").write_text(header + "12.5\t0:00:12\t150.2\t300\t100\t120\t0.1\t0.2\t95.0\t12.0\n")
    (bench / "pr.tsv").write_text(header + "1.5\t0:00:01\t50.0\t100\t40\t45\t0\t0\t80.0\t1.2\n")
    row = read_benchmark(bench / "toy.tsv", root=tmp_path / "benchmarks")
    assert row == {
        "rule": "simulate_saddle",
        "job": "toy",
        "seconds": 12.5,
        "max_rss_mb": 150.2,
        "cpu_seconds": 12.0,
        "mean_load": 95.0,
    }
    df = collect_runtime(sorted(bench.glob("*.tsv")), tmp_path / "rt.parquet", root=tmp_path / "benchmarks")
    summary = summarise_runtime(df)
    assert summary.loc["TOTAL", "seconds"] == 14.0 and summary.loc["TOTAL", "max_rss_mb"] == 150.2
    (bench / "broken.tsv").write_text("nothing here\n")
    with pytest.raises(ValueError, match="broken.tsv: not a Snakemake benchmark file"):
        read_benchmark(bench / "broken.tsv", root=tmp_path / "benchmarks")


def test_atomic_path_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.parquet"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert list(tmp_path.iterdir()) == []


def test_provenance_records_versions_and_commit(tmp_path):
    prov = collect("digest", "cpu", repo=tmp_path)  # not a git repository
    assert prov["git_commit"] == "unknown" and prov["code_digest"] == "digest"
    assert prov["torch_version"].startswith("2.13.0")
    assert library_version("surely-not-a-real-package") == "not installed"


def test_html_view_marks_holds():
    df = claims_frame([Claim("a", "x < y", "1", 0.5, "<1", True)], "p", "test")
    html = table_html(df, "Claims")
    assert "<th>holds</th>" in html and 'class="holds-True"' in html and "x &lt; y" in html
