"""Shared fixtures: the repository root and a runner for snakemake on a copy of the workflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

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


def job_counts(output: str) -> dict[str, int]:
    """Parse the 'Job stats' table that `snakemake -n` prints."""
    counts, in_table = {}, False
    for line in output.splitlines():
        if line.startswith("Job stats"):
            in_table, counts = True, {}
            continue
        if in_table:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit():
                if parts[0] == "total":
                    in_table = False
                else:
                    counts[parts[0]] = int(parts[1])
    return counts


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
