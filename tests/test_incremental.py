"""Incremental reruns: a config edit or a source edit reruns exactly the jobs that depend on it."""

from __future__ import annotations

import pytest
import yaml

from conftest import copy_workflow, job_counts, run_snakemake

pytestmark = pytest.mark.workflow
AGGREGATION = {"aggregate_all": 1, "collect_claims": 1, "collect_runtime": 1, "results_readme": 1, "all": 1}


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    work = copy_workflow(tmp_path_factory.mktemp("incremental"))
    run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")
    return work


def _planned(work):
    return job_counts(run_snakemake(work, "-n", "--configfile", "config/test.yaml").stdout)


def test_editing_one_beta_list_reruns_only_that_papers_jobs(work):
    config_path = work / "config" / "test.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config["stochastic_momentum"]["problems"]["toy_saddle"]["betas"] = [0.0, 0.7, 0.9]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        assert _planned(work) == {
            "simulate_saddle": 1,
            "plot_saddle_problem": 1,
            "plot_toy_trajectories": 1,
            "aggregate_paper": 1,
            "compute_claims": 1,
            "plot_escape_times": 1,
            **AGGREGATION,
        }
        hb_table = work / "results/optim/heavy_ball/pl_sin2/metrics.parquet"
        before = hb_table.stat().st_mtime_ns
        run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")
        assert hb_table.stat().st_mtime_ns == before  # the other paper was not touched
        import pandas as pd

        from repro.report.rows import settings_frame

        toy = settings_frame(pd.read_parquet(work / "results/tables/stochastic_momentum.parquet"))
        assert sorted(toy[toy.experiment == "toy_saddle"].beta.unique()) == [0.0, 0.7, 0.9]
        assert "Nothing to be done" in run_snakemake(work, "-n", "--configfile", "config/test.yaml").stdout
    finally:
        config_path.write_text(original)


def test_editing_a_source_module_reruns_its_dependants_only(work):
    run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")  # back to the original config
    source = work / "src/repro/optim/heavy_ball.py"
    original = source.read_text()
    source.write_text(original + "\n# an edit that changes the digest\n")
    try:
        assert _planned(work) == {
            "sweep_heavy_ball": 1,
            "aggregate_paper": 1,
            "compute_claims": 1,
            "plot_heavy_ball": 1,
            **AGGREGATION,
        }
    finally:
        source.write_text(original)
    assert "Nothing to be done" in run_snakemake(work, "-n", "--configfile", "config/test.yaml").stdout


def test_touching_a_module_without_changing_it_reruns_nothing(work):
    source = work / "src/repro/optim/saddle_problems.py"
    source.touch()
    assert "Nothing to be done" in run_snakemake(work, "-n", "--configfile", "config/test.yaml").stdout
