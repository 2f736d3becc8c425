"""Incremental reruns: a config edit, a source edit or a data change reruns exactly the jobs that depend on it.

The expected set is derived from the DAG (``repro.workflow.dag``), independently of Snakemake's rerun
decision: the jobs whose params changed (a config slice or a code digest) or that read the changed
file, plus everything downstream of them.  It is compared with the jobs ``snakemake -n`` plans under
the default ``--rerun-triggers``.  A few known answers guard against the derivation going wrong.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, clone_run, dag_jobs, job_counts, planned_jobs, run_snakemake
from repro.workflow.dag import downstream

pytestmark = pytest.mark.workflow
CONFIG = "config/test.yaml"
AGGREGATION = {"aggregate_all": 1, "collect_claims": 1, "collect_runtime": 1, "results_readme": 1, "all": 1}


@pytest.fixture(scope="module")
def work(finished_test_run, tmp_path_factory):
    """A copy of the session's finished test-tier run; each test puts back what it changes."""
    return clone_run(finished_test_run, tmp_path_factory.mktemp("incremental"))


@pytest.fixture(scope="module")
def dag_before(work):
    return dag_jobs(work)


def _dry_run(work) -> str:
    return run_snakemake(work, "-n", "--configfile", CONFIG).stdout


def _nothing_to_do(work) -> bool:
    return "Nothing to be done" in _dry_run(work)


def _changed_params(before: dict, after: dict) -> dict[str, set[str]]:
    """Job -> the names of its params whose values differ (new jobs: all their params)."""
    changed = {}
    for key, job in after.items():
        old = before.get(key, {}).get("params", {})
        names = {name for name, value in job["params"].items() if old.get(name) != value}
        if names:
            changed[key] = names
    return changed


def _readers(jobs: dict, path: str) -> set[str]:
    """Jobs that take ``path`` as an input, or a folder holding it."""
    return {
        key for key, job in jobs.items() if any(path == f or path.startswith(f.rstrip("/") + "/") for f in job["input"])
    }


def test_a_finished_run_has_nothing_to_do_and_its_noop_dry_run_is_timed(work, record_property):
    """The no-op dry run of scripts/bench_noop_dryrun.py on a finished test-tier run (its time is
    printed and recorded, not asserted: timing belongs to the benchmark)."""
    out = work / "bench.json"
    cmd = [sys.executable, str(ROOT / "scripts/bench_noop_dryrun.py"), "--directory", str(work)]
    proc = subprocess.run(
        [*cmd, "--configfile", CONFIG, "--repeats", "1", "--json", str(out)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(out.read_text())
    assert result["nothing_to_do"] and result["planned"] == {}
    assert len(result["wall_s"]) == len(result["cpu_s"]) == 1
    record_property("noop_dry_run_wall_s", result["median_wall_s"])
    record_property("noop_dry_run_cpu_s", result["median_cpu_s"])
    print(proc.stdout)


def test_the_dag_helper_sees_every_planned_job(work, dag_before):
    """Forcing everything plans exactly the jobs of the DAG helper (the two views agree)."""
    output = run_snakemake(work, "-n", "--forceall", "--configfile", CONFIG).stdout
    assert planned_jobs(output) == set(dag_before)
    assert sum(job_counts(output).values()) == len(dag_before)


def test_editing_one_beta_list_reruns_only_that_papers_jobs(work, dag_before):
    config_path = work / "config" / "test.yaml"
    original = config_path.read_text()
    config = yaml.safe_load(original)
    config["stochastic_momentum"]["problems"]["toy_saddle"]["betas"] = [0.0, 0.7, 0.9]
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        after = dag_jobs(work)
        changed = _changed_params(dag_before, after)
        assert set(after) == set(dag_before)
        assert {name for names in changed.values() for name in names} == {"setting"}
        assert all(after[key]["wildcards"].get("problem") == "toy_saddle" for key in changed)
        expected = downstream(after.values(), changed)
        assert planned_jobs(_dry_run(work)) == expected
        assert job_counts(_dry_run(work)) == {  # the known answer
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
        run_snakemake(work, "--cores", "2", "--configfile", CONFIG)
        assert hb_table.stat().st_mtime_ns == before  # the other paper was not touched
        from repro.report.rows import settings_frame

        toy = settings_frame(pd.read_parquet(work / "results/tables/stochastic_momentum.parquet"))
        assert sorted(toy[toy.experiment == "toy_saddle"].beta.unique()) == [0.0, 0.7, 0.9]
        assert _nothing_to_do(work)
    finally:
        config_path.write_text(original)
    run_snakemake(work, "--cores", "2", "--configfile", CONFIG)  # back to the original config
    assert _nothing_to_do(work)


# module -> the rules of the jobs whose code digest covers it (a known answer).  Modules that
# repro.kernels imports (io, graphs/halfhop, dynamo/sampling, dynamo/cooccurrence) reach most jobs,
# since every kernel user imports the package, which imports every kernel module.
SOURCE_EDITS = {
    "optim/heavy_ball.py": {"sweep_heavy_ball", "plot_heavy_ball", "compute_claims"},
    "graphs/ssl.py": {"halfhop_graph", "halfhop_supervised", "halfhop_cost", "halfhop_ssl", "halfhop_sweep"},
    "augtheory/sgd.py": {"augtheory_experiment", "plot_augtheory", "compute_claims"},
}


@pytest.mark.parametrize("module", SOURCE_EDITS)
def test_editing_a_source_module_reruns_its_dependants_only(work, dag_before, module):
    source = work / "src/repro" / module
    original = source.read_text()
    stat = source.stat()
    source.write_text(original + "\n# an edit that changes the digest\n")
    try:
        after = dag_jobs(work)
        changed = _changed_params(dag_before, after)
        assert set(after) == set(dag_before)
        assert set().union(*changed.values()) == {"code"}
        assert {after[key]["rule"] for key in changed} == SOURCE_EDITS[module]
        expected = downstream(after.values(), changed)
        assert len(expected) < len(after) / 2  # only some of the DAG
        assert planned_jobs(_dry_run(work)) == expected
    finally:
        source.write_text(original)
        os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _nothing_to_do(work)


def test_touching_a_module_without_changing_it_reruns_nothing(work):
    source = work / "src/repro/optim/saddle_problems.py"
    source.touch()
    assert _nothing_to_do(work)


# prepared resource -> the rules that read it (a known answer)
DATA_CHANGES = {  # (`all` lists every prepared file among its inputs)
    "resources/tiny/images.npz": {"neural_images", "spectral_features", "spectral_augment", "all"},
    "resources/tiny/text/test.txt": {"evaluate_llm_perplexity", "dynamo_perplexity", "all"},
}


@pytest.mark.parametrize("resource", DATA_CHANGES)
def test_changing_a_prepared_resource_reruns_its_readers_only(work, dag_before, resource):
    path = work / resource
    original, stat = path.read_bytes(), path.stat()
    if path.suffix == ".npz":
        with np.load(path) as npz:
            arrays = dict(npz)
        first = next(k for k in sorted(arrays) if arrays[k].dtype.kind in "fiu")
        arrays[first].flat[0] += 1
        with open(path, "wb") as f:
            np.savez_compressed(f, **arrays)
    else:
        path.write_text(path.read_text().replace("the", "a", 1))
    try:
        readers = _readers(dag_before, resource)
        assert {dag_before[key]["rule"] for key in readers} == DATA_CHANGES[resource]
        expected = downstream(dag_before.values(), readers)
        assert len(expected) < len(dag_before) / 2
        assert planned_jobs(_dry_run(work)) == expected
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _nothing_to_do(work)
