"""Provenance recorded on every result row: code version, library versions, device."""

from __future__ import annotations

import subprocess
from importlib import metadata
from pathlib import Path

TRACKED_LIBRARIES = {"torch": "torch", "transformers": "transformers", "lm_eval": "lm-eval"}


def library_version(distribution: str) -> str:
    """Installed version of a distribution, without importing it."""
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "not installed"


def git_commit(repo: Path | str | None) -> str:
    """HEAD of the repository holding the workflow, with '-dirty' for uncommitted changes."""
    if repo is None:
        return "unknown"
    try:
        head = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


def collect(code_digest: str, device: str, repo: Path | str | None = None) -> dict[str, str]:
    prov = {"git_commit": git_commit(repo), "code_digest": code_digest}
    for column, dist in TRACKED_LIBRARIES.items():
        prov[f"{column}_version"] = library_version(dist)
    prov["device"] = device
    return prov
