"""The calibration set of each compression run: ``llm_compression.methods.<method>.calibrate_with``.

Every run calibrates on ``llm_compression.compress_with`` unless its method names another key of
``llm_compression.calibration`` with ``calibrate_with``.  The papers do not share one set (brief
``llm_compression.md`` §5): SparseGPT and Wanda draw 128 random C4 windows of the model's context,
SVD-LLM 256 WikiText-2 train windows of 2048 tokens, SliceGPT 128 WikiText-2 train windows.

A run's spec names its set (``spec["calibrate_with"]``) only where that set is not
``compress_with``: the spec is a param of every LLM job, so a config that does not use the key keeps
exactly the specs of :func:`repro.llm.runs.expand_runs` and no finished job reruns.

This module sits beside :mod:`repro.llm.runs` rather than in it on purpose: every LLM rule takes a
digest of :mod:`repro.llm.stages` and the ``repro`` modules it imports (``runs`` among them) as a
param, so editing ``runs.py`` reruns every finished LLM job of every tier.  Nothing the jobs run
imports this module; only the workflow (``workflow/rules/llm.smk``) does.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.llm.runs import expand_runs

__all__ = ["expand_runs_with_calibration", "run_calibration_set"]


def expand_runs_with_calibration(section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """:func:`repro.llm.runs.expand_runs`, each run also naming its calibration set where needed.

    A method's ``calibrate_with`` (default: ``compress_with``) must be a key of the section's
    ``calibration``; the runs of a method whose set is not ``compress_with`` get
    ``spec["calibrate_with"]``.  The dense run never does (it is not compressed; its rows record
    ``compress_with``).

    Raises:
        ValueError: naming ``llm_compression.methods.<method>.calibrate_with`` and the known sets
            when the key is not a calibration set, besides what ``expand_runs`` raises.
    """
    runs = expand_runs(section)
    compress_with = section.get("compress_with")
    known = sorted(section.get("calibration") or {})
    for method, entry in (section.get("methods") or {}).items():
        name = (entry or {}).get("calibrate_with")
        if name is None:
            continue
        if name not in known:
            raise ValueError(
                f"llm_compression.methods.{method}.calibrate_with is {name!r}, which is not a key of "
                f"llm_compression.calibration (known sets: {known})"
            )
        if name == compress_with:
            continue
        for spec in runs.values():
            if spec["method"] == method:
                spec["calibrate_with"] = name
    return runs


def run_calibration_set(spec: Mapping[str, Any], compress_with: str | None) -> str | None:
    """The calibration set a run is compressed with (and its result rows record)."""
    return spec.get("calibrate_with", compress_with)
