"""Workflow tests: lint, dry-run job counts for all tiers, a test-tier end-to-end run, bad input."""

from __future__ import annotations

import html
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import ROOT, SNAKEMAKE, TIMING_CLAIMS, copy_workflow, job_counts, run_snakemake
from repro.llm.runs import SPARSE_METHODS, expand_runs
from repro.report.claims import CLAIM_COLUMNS
from repro.report.rows import validate_table
from repro.report.runtime import RUNTIME_COLUMNS

pytestmark = pytest.mark.workflow
TIER_FILES = {"test": "test.yaml", "default": "config.yaml", "paper": "paper.yaml"}


def config_papers(tier: str) -> list[str]:
    """The papers a tier's config builds."""
    name = {"test": "test.yaml", "default": "config.yaml", "paper": "paper.yaml"}[tier]
    return yaml.safe_load((ROOT / "config" / name).read_text())["papers"]


def expected_jobs(config: dict) -> dict[str, int]:
    """Job counts implied by a config: the DAG's known answer."""
    problems = config["stochastic_momentum"]["problems"]
    toys = [p for p, s in problems.items() if s["objective"] == "toy_saddle"]
    papers = config["papers"]
    counts = {
        "simulate_saddle": len(problems),
        "plot_saddle_problem": len(problems),
        "plot_toy_trajectories": len(toys),
        "plot_escape_times": 1,
        "sweep_heavy_ball": len(config["heavy_ball"]["functions"]),
        "plot_heavy_ball": 1,
        "aggregate_paper": len(papers),
        "compute_claims": len(papers),
        "aggregate_all": 1,
        "collect_claims": 1,
        "collect_runtime": 1,
        "results_readme": 1,
        "all": 1,
    }
    if "llm_compression" in papers:
        llm = config["llm_compression"]
        runs = expand_runs(llm)
        n_eval = len(llm["models"]) * len(runs)
        counts.update(
            calibrate_llm=len(llm["models"]) * len(llm["calibration"]),
            compress_llm=len(llm["models"]) * (len(runs) - 1),
            evaluate_llm_params=n_eval,
            evaluate_llm_perplexity=n_eval,
            evaluate_llm_zeroshot=n_eval,
            evaluate_llm_speed=n_eval,
            plot_llm_compression=1,
        )
    if "modegpt" in papers:
        n_modegpt = sum(spec["method"] == "modegpt" for spec in expand_runs(config["llm_compression"]).values())
        counts.update(
            modegpt_allocation=len(config["llm_compression"]["models"]) * n_modegpt, plot_modegpt_allocation=1
        )
    if "disp_llm" in papers:
        n_disp = sum(spec["method"] == "disp_llm" for spec in expand_runs(config["llm_compression"]).values())
        counts.update(disp_llm_training=len(config["llm_compression"]["models"]) * n_disp, plot_disp_llm_training=1)
    if "dynamo" in papers:
        n_models = len(config["dynamo"]["models"])
        for stage in ("cooccurrence", "train", "training", "perplexity", "decoding"):
            counts[f"dynamo_{stage}"] = n_models
        counts["plot_dynamo"] = 1
        if config["dynamo"].get("judge"):
            counts["dynamo_judge"] = n_models
    if "halfhop" in papers:
        section = config["halfhop"]
        counts["halfhop_graph"] = len(section["graphs"])
        for stage in ("supervised", "cost", "ssl"):
            if stage in section:
                counts[f"halfhop_{stage}"] = len(section[stage].get("graphs") or section["graphs"])
        counts["halfhop_sweep"] = len(section.get("homophily_sweep", {}).get("homophily", []))
        counts["plot_halfhop"] = 1
    for paper in ("swap_vae", "myow"):
        if paper in papers:
            section = config[paper]
            runs = len(section["datasets"]) * len(section["models"]) * len(section.get("seeds", [0]))
            counts["neural_train"] = counts.get("neural_train", 0) + runs
            counts["neural_evaluate"] = counts.get("neural_evaluate", 0) + runs
            counts["plot_neural"] = counts.get("plot_neural", 0) + 1
            images = section.get("images") if paper == "myow" else None
            if images:
                counts["neural_images"] = (
                    len(images["datasets"]) * len(images["models"]) * len(images.get("seeds", [0]))
                )
                counts["plot_myow_images"] = 1
    if "spectral_imbalance" in papers:
        section = config["spectral_imbalance"]
        runs = len(section["feature_sets"]) * len(section.get("seeds", [0]))
        counts.update(spectral_synthetic=1, spectral_features=runs, spectral_encoder=runs, plot_spectral_imbalance=1)
        if section.get("augmentation"):
            aug = section["augmentation"]
            counts["spectral_augment"] = len(aug["strategies"]) * len(aug.get("seeds", [0]))
            counts["plot_spectral_augmentation"] = 1
    if "data_augmentation" in papers:
        from repro.augtheory.report import FIGURES

        experiments = config["data_augmentation"]["experiments"]
        counts["augtheory_experiment"] = len(experiments)
        counts["plot_augtheory"] = sum(key in experiments for key, _ in FIGURES.values())
    counts["download_artifact"] = len(config.get("artifacts", {}))
    for name in config.get("prepare", []):
        counts[f"prepare_{name}"] = 1
    return {k: v for k, v in counts.items() if v}


def test_lint_is_clean():
    proc = subprocess.run([SNAKEMAKE, "--lint"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_rules_are_formatted():
    snakefmt = str(Path(SNAKEMAKE).with_name("snakefmt"))
    proc = subprocess.run(
        [snakefmt, "--check", "Snakefile", "workflow/rules"], cwd=ROOT, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.mark.parametrize("tier", TIER_FILES)
def test_dry_run_job_counts(tier, tmp_path):
    config_file = ROOT / "config" / TIER_FILES[tier]
    proc = run_snakemake(ROOT, "-n", "--configfile", str(config_file), "--directory", str(tmp_path))
    config = yaml.safe_load(config_file.read_text())
    assert job_counts(proc.stdout) == expected_jobs(config)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """The test tier run end to end, then the report built, in a copy of the workflow."""
    work = copy_workflow(tmp_path_factory.mktemp("e2e"))
    run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")
    run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml", "--report", "results/report.html")
    return work


def test_tables_follow_the_contract(finished_run):
    tables = finished_run / "results" / "tables"
    config = yaml.safe_load((finished_run / "config" / "test.yaml").read_text())
    all_rows = validate_table(pd.read_parquet(tables / "all.parquet"), "all.parquet")
    assert set(all_rows.paper) == set(config["papers"])
    assert set(all_rows.tier) == {"test"}
    for paper in config["papers"]:
        df = validate_table(pd.read_parquet(tables / f"{paper}.parquet"), paper)
        assert len(df) == (all_rows.paper == paper).sum()
    assert (all_rows.code_digest.str.len() == 16).all()
    assert all_rows.torch_version.str.startswith("2.13.0").all()
    toy = all_rows[(all_rows.experiment == "toy_saddle") & (all_rows.metric == "escape_time")]
    expected = len(config["stochastic_momentum"]["problems"]["toy_saddle"]["seeds"]) * len(
        config["stochastic_momentum"]["problems"]["toy_saddle"]["betas"]
    )
    assert len(toy) == expected


def test_llm_tables_have_a_row_set_per_run(finished_run):
    """Every run of the test tier has parameter, perplexity, zero-shot and speed rows."""
    config = yaml.safe_load((finished_run / "config" / "test.yaml").read_text())
    runs = expand_runs(config["llm_compression"])
    df = pd.read_parquet(finished_run / "results" / "tables" / "llm_compression.parquet")
    df = df.assign(run=df.setting.map(lambda s: yaml.safe_load(s).get("run")))
    evaluated = df[df.experiment != "calibration"]
    assert set(evaluated.run) == set(runs)
    for experiment, metric in [
        ("params", "params_total"),
        ("perplexity", "perplexity"),
        ("zeroshot", "zeroshot_acc"),
        ("speed", "decode_speedup"),
    ]:
        rows = evaluated[(evaluated.experiment == experiment) & (evaluated.metric == metric)]
        assert sorted(rows.run) == sorted(runs), experiment
    targets = evaluated[evaluated.metric == "target_rel_error"]
    # tiny widths and 4 layers make targets coarse here; the default tier's claim checks the 2 % contract
    assert set(targets.run) == {
        r for r, spec in runs.items() if spec["target_removed"] is not None or spec["method"] in SPARSE_METHODS
    }
    calibration = df[df.experiment == "calibration"].set_index("metric").value
    assert calibration["tokens"] == 8 * 64 and calibration["tokens_per_s"] > 0 and calibration["peak_rss_mb"] > 0


def test_claims_are_computed(finished_run):
    claims = pd.read_parquet(finished_run / "results" / "tables" / "claims.parquet")
    assert list(claims.columns) == CLAIM_COLUMNS
    assert claims.holds.dtype == "boolean"
    assert set(claims.paper) == set(config_papers("test"))
    assert not claims.duplicated(["paper", "claim_id"]).any()  # a claim id is unique within its paper
    measured = claims.dropna(subset=["measured"])
    # every measured claim has a computed verdict, except a speed claim whose dense timing drifted
    # within its job (repro.llm.claims.speed_claim_holds): measured, but "not decided"
    undecided = measured.holds.isna()
    assert measured[undecided].detail.str.contains("not decided").all()
    assert measured[undecided].claim_id.isin(TIMING_CLAIMS).all()
    assert (claims.tier == "test").all()


def test_runtime_has_a_row_per_job(finished_run):
    runtime = pd.read_parquet(finished_run / "results" / "tables" / "runtime.parquet")
    assert list(runtime.columns) == RUNTIME_COLUMNS
    assert (runtime.seconds >= 0).all() and runtime.max_rss_mb.notna().all()
    config = yaml.safe_load((finished_run / "config" / "test.yaml").read_text())
    counts = runtime.groupby("rule").size().to_dict()
    # jobs after the runtime table (or reading it) are not in it
    expected = {k: v for k, v in expected_jobs(config).items() if k not in ("all", "collect_runtime", "results_readme")}
    assert counts == expected


def test_figures_and_report_exist(finished_run):
    figures = sorted((finished_run / "results" / "figures").rglob("*.png"))
    assert {f.parent.name for f in figures} == set(config_papers("test"))
    for png in figures:
        assert png.stat().st_size > 10_000, png
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert png.with_suffix(".pdf").stat().st_size > 1_000
    report = (finished_run / "results" / "report.html").read_text()
    for name in ("escape_time.png", "iterations_vs_kappa.png", "perplexity.png", "claims.html", "runtime.html"):
        assert name in report


def test_report_has_guide_provenance_and_every_figure(finished_run):
    """One HTML report: every registered figure, the claims, runtime and provenance pages, the guide."""
    report = (finished_run / "results" / "report.html").read_text()
    figures = sorted((finished_run / "results" / "figures").rglob("*.png"))
    assert figures
    for png in figures:
        assert png.name in report, png
    for name in ("claims.html", "runtime.html", "provenance.html"):
        assert name in report
    for phrase in ("Reading a claim", "Rerunning one paper", "Where the tables live", "Provenance", "Tiers"):
        assert phrase in report, phrase
    assert "results/papers/heavy_ball.done" in report and "config/test.yaml" in report


def test_results_readme_lists_tables_claims_and_provenance(finished_run):
    tables = finished_run / "results" / "tables"
    readme = (tables / "README.md").read_text()
    config = yaml.safe_load((finished_run / "config" / "test.yaml").read_text())
    claims = pd.read_parquet(tables / "claims.parquet")
    all_rows = pd.read_parquet(tables / "all.parquet")
    assert "Tier: **test**" in readme
    for name in ["all", "claims", "runtime", *config["papers"]]:
        rows = len(pd.read_parquet(tables / f"{name}.parquet"))
        assert f"| {name}.parquet | {rows} | " in readme, name
    for paper in config["papers"]:
        sub = claims[claims.paper == paper]
        counts = [len(sub), int(sub.holds.eq(True).sum()), int(sub.holds.eq(False).sum()), int(sub.holds.isna().sum())]
        assert f"| {paper} | " + " | ".join(map(str, counts)) + " |" in readme, paper
    assert f"| TOTAL | {len(claims)} | " in readme
    for commit in set(all_rows.git_commit):
        assert commit in readme
    page = (tables / "provenance.html").read_text()
    assert "Claims per paper" in page and "Provenance of the result rows" in page
    for value in set(all_rows.torch_version) | set(all_rows.device):
        assert html.escape(value) in page


def test_nothing_to_do_after_a_complete_run(finished_run):
    proc = run_snakemake(finished_run, "-n", "--configfile", "config/test.yaml")
    assert "Nothing to be done" in proc.stdout + proc.stderr


def test_bad_config_fails_before_any_job(tmp_path):
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "config" / "test.yaml").read_text())
    config["heavy_ball"]["functions"]["pl_sin2"]["methods"] = ["gd", "adamw"]
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(work, "--cores", "1", "--configfile", "config/bad.yaml", check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "heavy_ball.functions.pl_sin2.methods[1]" in message and "'adamw' is not allowed" in message
    assert "allowed values: ['gd', 'hb', 'hb_coordinate', 'hb_adaptive', 'hb_polyak']" in message
    assert not (work / "results").exists()


def test_pyg_graph_must_name_a_torch_geometric_artifact(tmp_path):
    """A paper-tier `pyg` graph whose artifact is not a torch_geometric entry stops the dry run, naming it."""
    config = yaml.safe_load((ROOT / "config" / "test.yaml").read_text())
    config["halfhop"]["graphs"]["cora"] = {"loader": "pyg", "options": {"artifact": "no_such_artifact"}}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(
        ROOT, "-n", "--configfile", str(tmp_path / "bad.yaml"), "--directory", str(tmp_path), check=False
    )
    assert proc.returncode != 0
    assert "halfhop.graphs.cora (loader pyg) needs options.artifact" in proc.stdout + proc.stderr


def test_failing_job_leaves_no_output_and_logs_the_cause(tmp_path):
    work = copy_workflow(tmp_path)
    config = yaml.safe_load((work / "config" / "test.yaml").read_text())
    config["stochastic_momentum"]["problems"]["toy_saddle"]["scale"] = "1/n"  # only for phase retrieval
    (work / "config" / "odd.yaml").write_text(yaml.safe_dump(config))
    target = "results/optim/stochastic_momentum/toy_saddle/metrics.parquet"
    proc = run_snakemake(work, target, "--cores", "1", "--configfile", "config/odd.yaml", check=False)
    assert proc.returncode != 0
    assert not (work / target).exists()
    assert not (work / "results/optim/stochastic_momentum/toy_saddle/traces.parquet").exists()
    log = (work / "logs/simulate_saddle/toy_saddle.log").read_text()
    assert "stochastic_momentum.problems.toy_saddle: key(s) ['scale'] do not apply to objective 'toy_saddle'" in log


def test_python_sources_pass_ruff():
    ruff = str(Path(SNAKEMAKE).with_name("ruff"))
    proc = subprocess.run([ruff, "check", "src", "tests", "workflow/scripts"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
