"""Shared fixtures: the repository root and a runner for snakemake on a copy of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from repro.workflow.dag import job_counts  # noqa: F401  (re-exported: the workflow tests import it from here)

ROOT = Path(__file__).resolve().parents[1]
SNAKEMAKE = str(Path(sys.executable).with_name("snakemake"))
WORKFLOW_PARTS = ["Snakefile", "workflow", "config", "src", "profiles", "environment.yml", "pyproject.toml"]


def copy_workflow(dest: Path) -> Path:
    """Copy the workflow (not results) so tests can edit configs and sources freely."""
    for part in WORKFLOW_PARTS:
        src = ROOT / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(src, dest / part)
    return dest


def run_snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [SNAKEMAKE, "--snakefile", str(workdir / "Snakefile"), "--directory", str(workdir)]
    cmd += ["--workflow-profile", "none", *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=workdir)
    if check and proc.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


@pytest.fixture
def offline_hf(tmp_path, monkeypatch):
    """HF caches under tmp_path and offline mode, also for already-imported ``datasets`` / ``huggingface_hub``."""
    import datasets.config
    import huggingface_hub.constants

    cache = tmp_path / "hf"
    for var, value in {
        "HF_HOME": cache,
        "HF_DATASETS_CACHE": cache / "datasets",
        "HF_DATASETS_OFFLINE": "1",
        "HF_HUB_OFFLINE": "1",
    }.items():
        monkeypatch.setenv(var, str(value))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache / "datasets")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    return cache


def run_interpreter_tests(test_file: str) -> tuple[int, str]:
    """Run ``test_file``'s ``interpreter`` tests in a fresh pytest with ``TRITON_INTERPRET=1`` set
    before Python starts (Triton reads it at import); returns ``(n_passed, output)``, and asserts
    that pytest exited cleanly."""
    import re

    env = {**os.environ, "TRITON_INTERPRET": "1", "CUDA_VISIBLE_DEVICES": "", "OMP_NUM_THREADS": "1"}
    env.pop("REPRO_KERNELS", None)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT / "src"), env.get("PYTHONPATH")]))
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-k", "interpreter and not subprocess"]
    proc = subprocess.run([*cmd, test_file], capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out
    passed = re.search(r"(\d+) passed", out)
    return (int(passed.group(1)) if passed else 0), out


# --------------------------------------------------------------------------- one finished run per session


@pytest.fixture(scope="session")
def finished_test_run(tmp_path_factory) -> Path:
    """The test tier run end to end once per pytest session, in a copy of the workflow.

    Treat it as read-only: a test that edits configs, sources or data, or runs jobs, works on a
    ``clone_run`` copy of it.
    """
    work = copy_workflow(tmp_path_factory.mktemp("test_tier_run"))
    run_snakemake(work, "--cores", "2", "--configfile", "config/test.yaml")
    return work


def clone_run(src: Path, dest: Path) -> Path:
    """Copy a run directory whole (workflow, results, resources, logs, benchmarks, ``.snakemake``
    metadata), keeping every file's and folder's mtime, so Snakemake sees the copy as just as finished."""
    shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def planned_jobs(output: str) -> set[str]:
    """The jobs ``snakemake -n`` plans, as ``repro.workflow.dag.job_key`` names (``rule[k=v,...]``)."""
    import re

    from repro.workflow.dag import job_key

    jobs, rule, wildcards = set(), None, {}
    for line in [*output.splitlines(), ""]:
        header = re.match(r"^(?:local)?rule (\w+):$", line)
        if header or not line.strip():
            if rule is not None:
                jobs.add(job_key(rule, wildcards))
            rule, wildcards = (header.group(1), {}) if header else (None, {})
        elif rule is not None and line.strip().startswith("wildcards:"):
            pairs = line.split(":", 1)[1].strip()
            wildcards = dict(pair.split("=", 1) for pair in pairs.split(", ") if pair)
    return jobs


def dag_jobs(workdir: Path, *targets: str, configfile: str = "config/test.yaml") -> dict[str, dict]:
    """Every job of ``workdir``'s DAG (finished or not) by key, from ``python -m repro.workflow.dag``."""
    import json

    out = workdir / ".dag_jobs.json"
    cmd = [sys.executable, "-m", "repro.workflow.dag", "--directory", str(workdir), "--configfile", configfile]
    proc = subprocess.run([*cmd, "--out", str(out), *targets], capture_output=True, text=True, cwd=workdir)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    jobs = json.loads(out.read_text())
    out.unlink()
    return {job["key"]: job for job in jobs}


# --------------------------------------------------------------------------- comparing result tables

# What measures this machine rather than the method (wall-clock times, rates, memory): the rows must
# exist in both tables, but these values may differ between two runs.  Keep the lists explicit and
# narrow: a value that is merely nondeterministic is a bug to fix, not one to list here.
TIMING_METRICS = frozenset(  # values of the tidy tables' `metric` column
    {
        # wall-clock seconds: calibration, co-occurrence table, training, transforms, compression
        "seconds",
        "seconds_per_epoch",
        "train_seconds",
        "transform_seconds",
        "compress_seconds",
        # rates and speed-ups (LLM speed rule, DynaMo decoding, calibration throughput)
        "tokens_per_s",
        "prefill_tok_s",
        "decode_tok_s",
        "generate_tok_s",
        "dense_prefill_tok_s",
        "dense_decode_tok_s",
        "dense_drift_prefill",
        "dense_drift_decode",
        "prefill_speedup",
        "decode_speedup",
        "speedup",
        # peak resident memory of the process
        "peak_rss_mb",
        "train_peak_rss_mb",
        "compress_peak_rss_mb",
        "peak_mem_mb",
    }
)
TIMING_CLAIMS = frozenset(  # claim_id of claims computed from those timings (measured, holds, detail)
    {
        "throughput_gain",  # disp_llm, modegpt: decode rate vs dense
        "slicegpt_decode_speedup",  # llm_compression
        "speedup_at_matched_quality",  # dynamo: wall-clock speed-up
        "compression_time_vs_slicegpt",  # modegpt: compression wall time
    }
)
TIMING_COLUMNS = {"runtime.parquet": ["seconds", "max_rss_mb", "cpu_seconds", "mean_load"]}


def _timing_free(df, name: str):
    """``df`` with the timing values of table ``name`` blanked (rows and every other column kept)."""
    df = df.copy()
    for column in TIMING_COLUMNS.get(name, []):
        df[column] = None
    if {"metric", "value"} <= set(df.columns):
        df.loc[df["metric"].isin(TIMING_METRICS), "value"] = float("nan")
    if {"claim_id", "measured", "holds"} <= set(df.columns):
        timed = df["claim_id"].isin(TIMING_CLAIMS)
        for column in ("measured", "holds", "detail"):
            if column in df.columns:
                df[column] = df[column].astype(object)
                df.loc[timed, column] = None
    return df


def assert_tables_equal(expected: Path, actual: Path) -> None:
    """Two Parquet tables hold the same rows, exactly, apart from the timing values listed above."""
    import pandas as pd

    left = _timing_free(pd.read_parquet(expected), Path(expected).name)
    right = _timing_free(pd.read_parquet(actual), Path(actual).name)
    pd.testing.assert_frame_equal(left, right, check_exact=True, obj=str(actual))
