"""results/tables/README.md and provenance.html from small synthetic tables; every figure registered in the report."""

from __future__ import annotations

import os
from datetime import datetime, timezone

import pandas as pd
import pytest

from repro.io import write_parquet
from repro.report.claims import Claim, claims_frame
from repro.report.html import Section, sections_html
from repro.report.results_readme import (
    claims_summary,
    markdown_table,
    provenance_summary,
    readme_markdown,
    write_results_readme,
)
from repro.report.rows import tidy_rows
from repro.report.runtime import RUNTIME_COLUMNS

WHEN = datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc)
ENV = {"python": "3.11.7", "torch": "2.13.0+cpu"}


def _prov(commit="c0ffee", digest="d1"):
    return {
        "git_commit": commit,
        "code_digest": digest,
        "torch_version": "2.13.0+cpu",
        "transformers_version": "5.24.0",
        "lm_eval_version": "0.4.13",
        "device": "cpu",
    }


def _rows(paper, n, digest, commit="c0ffee", experiment="e"):
    records = [{"method": "m", "setting": {"i": i}, "seed": 0, "metric": "x", "value": float(i)} for i in range(n)]
    return tidy_rows(records, paper=paper, experiment=experiment, tier="test", provenance=_prov(commit, digest))


@pytest.fixture
def tables(tmp_path):
    """Two papers (alpha: 3 + 2 rows from two jobs with different digests; beta: 4 rows), claims, runtime."""
    folder = tmp_path / "tables"
    alpha = pd.concat([_rows("alpha", 3, "d1"), _rows("alpha", 2, "d2", experiment="f")], ignore_index=True)
    beta = _rows("beta", 4, "d3")
    write_parquet(alpha, folder / "alpha.parquet")
    write_parquet(beta, folder / "beta.parquet")
    write_parquet(pd.concat([alpha, beta], ignore_index=True), folder / "all.parquet")
    claims = pd.concat(
        [
            claims_frame(
                [
                    Claim("a1", "x | y grows", "1", 2.0, ">1", True),
                    Claim("a2", "z < 1", "<1", 3.0, "<1", False),
                    Claim("a3", "not run here", "5", float("nan"), "=5", None),
                ],
                "alpha",
                "test",
            ),
            claims_frame([Claim("b1", "w", "1", 1.0, ">0", True)], "beta", "test"),
        ],
        ignore_index=True,
    )
    write_parquet(claims, folder / "claims.parquet")
    runtime = pd.DataFrame(
        [("r1", "j1", 1.5, 100.0, 1.0, 0.5), ("r2", "j2", 2.5, 300.0, 2.0, 0.5)], columns=RUNTIME_COLUMNS
    )
    write_parquet(runtime, folder / "runtime.parquet")
    stamp = WHEN.timestamp()
    for i, name in enumerate(["all", "claims", "runtime", "alpha", "beta"]):
        os.utime(folder / f"{name}.parquet", (stamp + 60 * i, stamp + 60 * i))
    return folder


def _write(folder):
    names = ["all", "claims", "runtime", "alpha", "beta"]
    return write_results_readme(
        tables=[folder / f"{n}.parquet" for n in names],
        all_rows=folder / "all.parquet",
        claims=folder / "claims.parquet",
        runtime=folder / "runtime.parquet",
        tier="test",
        readme=folder / "README.md",
        html=folder / "provenance.html",
        written_at=WHEN,
        env=ENV,
    )


def test_claims_summary_counts_per_paper():
    claims = pd.DataFrame(
        {"paper": ["b", "a", "a", "a"], "holds": pd.array([True, True, False, pd.NA], dtype="boolean")}
    )
    out = claims_summary(claims)
    assert out.to_dict("records") == [
        {"paper": "a", "claims": 3, "hold": 1, "do not hold": 1, "not measured": 1},
        {"paper": "b", "claims": 1, "hold": 1, "do not hold": 0, "not measured": 0},
        {"paper": "TOTAL", "claims": 4, "hold": 2, "do not hold": 1, "not measured": 1},
    ]


def test_provenance_summary_lists_digests_per_record():
    rows = pd.concat([_rows("alpha", 3, "d2"), _rows("alpha", 2, "d1", experiment="f"), _rows("beta", 1, "d3", "ff")])
    out = provenance_summary(rows)
    assert out[["paper", "git_commit", "code_digests", "rows"]].to_dict("records") == [
        {"paper": "alpha", "git_commit": "c0ffee", "code_digests": "d1, d2", "rows": 5},
        {"paper": "beta", "git_commit": "ff", "code_digests": "d3", "rows": 1},
    ]


def test_provenance_summary_marks_missing_columns_unknown():
    out = provenance_summary(pd.DataFrame({"paper": ["p"], "tier": ["test"]}))
    assert out.iloc[0]["git_commit"] == "unknown" and out.iloc[0]["device"] == "unknown"
    assert out.iloc[0]["rows"] == 1


def test_markdown_table_escapes_pipes_and_shows_missing_as_na():
    df = pd.DataFrame({"a": ["x | y", None], "b": [0.123456, 2.0]})
    assert markdown_table(df).splitlines() == ["| a | b |", "|---|---|", "| x \\| y | 0.1235 |", "| NA | 2 |"]


def test_readme_lists_tables_claims_tier_and_provenance(tables):
    ov = _write(tables)
    readme = (tables / "README.md").read_text()
    assert readme == readme_markdown(ov)
    assert "Tier: **test**" in readme
    assert "Tables written between 2026-01-02 03:04:05 UTC and 2026-01-02 03:08:05 UTC" in readme
    assert "this README written 2026-01-02 03:04:05 UTC" in readme
    contract = (
        "paper, experiment, method, model, dataset, setting, seed, metric, value, tier, git_commit, code_digest, "
        "torch_version, transformers_version, lm_eval_version, device"
    )
    assert f"| alpha.parquet | 5 | {contract} | tidy result rows of paper `alpha` |" in readme
    assert f"| beta.parquet | 4 | {contract} |" in readme
    assert f"| all.parquet | 9 | {contract} |" in readme
    assert (
        "| claims.parquet | 4 | paper, claim_id, claim, paper_value, measured, comparison, holds, tier, detail |"
        in (readme)
    )
    assert "| runtime.parquet | 2 | rule, job, seconds, max_rss_mb, cpu_seconds, mean_load |" in readme
    # claims per paper: claims, hold, do not hold, not measured
    assert "| alpha | 3 | 1 | 1 | 1 |" in readme
    assert "| beta | 1 | 1 | 0 | 0 |" in readme
    assert "| TOTAL | 4 | 2 | 1 | 1 |" in readme
    # provenance: one record per paper, alpha's two job digests together
    assert "| alpha | test | c0ffee | 2.13.0+cpu | 5.24.0 | 0.4.13 | cpu | d1, d2 | 5 |" in readme
    assert "| beta | test | c0ffee | 2.13.0+cpu | 5.24.0 | 0.4.13 | cpu | d3 | 4 |" in readme
    assert "- git commit(s): c0ffee" in readme and "- code digest(s): 3 distinct" in readme
    assert "torch: 2.13.0+cpu; transformers: 5.24.0; lm-eval: 0.4.13" in readme
    assert "environment of this README's job: python 3.11.7, torch 2.13.0+cpu" in readme
    assert "2 jobs, 4.0 s of job wall time summed" in readme and "peak RSS 300 MB" in readme


def test_provenance_page_has_every_section(tables):
    _write(tables)
    page = (tables / "provenance.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    for heading in ("Run", "Provenance of the result rows", "Claims per paper", "Tables in results/tables/"):
        assert f"<h3>{heading}</h3>" in page
    assert "<td>git commit(s)</td><td>c0ffee</td>" in page
    assert "<td>tables written</td><td>2026-01-02 03:04:05 UTC to 2026-01-02 03:08:05 UTC</td>" in page
    assert "<td>alpha</td><td>3</td><td>1</td><td>1</td><td>1</td>" in page
    assert "<td>torch (report job)</td><td>2.13.0+cpu</td>" in page
    assert "<td>beta.parquet</td><td>4</td>" in page


def test_tier_mismatch_is_reported(tables):
    ov = _write(tables)
    ov.tier = "default"
    assert "The rows carry tier(s) test." in readme_markdown(ov)


def test_sections_html_escapes_text():
    page = sections_html("T <1>", [Section("h & h", "n <b>", pd.DataFrame({"c": ["<script>"]})), Section("empty")])
    assert "<h2>T &lt;1&gt;</h2>" in page and "<h3>h &amp; h</h3>" in page and "<p>n &lt;b&gt;</p>" in page
    assert "<td>&lt;script&gt;</td>" in page and "<script>" not in page
    assert "<h3>empty</h3>" in page


@pytest.mark.workflow
@pytest.mark.parametrize("configfile", ["config/test.yaml", "config/config.yaml", "config/paper.yaml"])
def test_every_figure_is_registered_in_the_report(configfile, root, tmp_path):
    """Every PNG output under results/figures/ is a report() file with a caption, and every figure a
    paper lists (PAPER_FIGURES, what `all` requests) is such an output."""
    from snakemake.api import SnakemakeApi
    from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

    with SnakemakeApi(OutputSettings()) as api:
        workflow = api.workflow(
            snakefile=root / "Snakefile",
            workdir=tmp_path,
            config_settings=ConfigSettings(configfiles=[root / configfile]),
            resource_settings=ResourceSettings(cores=1),
        )._workflow
        figure_outputs = [
            (rule.name, f)
            for rule in workflow.rules
            for f in rule.output
            if str(f).startswith("results/figures/") and str(f).endswith(".png")
        ]
        unregistered = [(name, str(f)) for name, f in figure_outputs if not f.flags.get("report")]
        uncaptioned = [
            (name, str(f)) for name, f in figure_outputs if f.flags.get("report") and not f.flags["report"].caption
        ]
        listed = [png for figures in workflow.globals["PAPER_FIGURES"].values() for png in figures]
    assert figure_outputs and not unregistered and not uncaptioned
    assert listed
    orphans = [png for png in listed if not any(f.match(png) for _, f in figure_outputs)]
    assert orphans == []


def test_summary_points_to_the_readme(tables, capsys):
    from repro.report.summary import main

    _write(tables)
    assert main([str(tables)]) == 0
    out = capsys.readouterr().out
    assert "Claims (holds is computed" in out and f"provenance: {tables / 'README.md'}" in out
