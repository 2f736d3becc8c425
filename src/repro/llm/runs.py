"""The compression runs of the LLM part of the DAG, expanded from the config's ``llm_compression`` section.

A *run* is one compressed model (or the dense reference) of one prepared model: the ``{run}``
wildcard of ``workflow/rules/llm.smk``.  Each method in the config lists

* ``targets``: fractions of parameters to remove under the section's ``convention`` (brief §2.1;
  ``"total"`` counts a tied embedding once).  The method turns the target into its own knob
  (SliceGPT: the residual width, ShortGPT: the number of layers).  Run id ``<method>-r<target>``,
  e.g. ``slicegpt-r0.20``.
* ``runs``: named runs at the method's own knob (``{name: settings}``), e.g. SliceGPT's official
  ``sparsity: 0.2`` or Wanda's ``pattern: "2:4"``.  Run id ``<method>-<name>``.
* ``options``: keyword arguments shared by all runs of the method (batch size, orientation, ...).

Every result row of a run carries :func:`run_setting`: the run id, the figure series, the target
and the method's keyword arguments, so a table row says exactly what was run.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = ["DISPLAY_NAMES", "SPARSE_METHODS", "TARGET_KEYWORDS", "expand_runs", "run_setting", "series_label"]

#: method -> how a parameter target becomes its keyword arguments (methods without one take no targets).
TARGET_KEYWORDS = {
    "slicegpt": lambda target, convention: {"target_removed": target, "convention": convention},
    "shortgpt": lambda target, convention: {"ratio": target, "convention": convention},
    "modegpt": lambda target, convention: {"target_removed": target, "convention": convention},
    "disp_llm": lambda target, convention: {"target_removed": target, "convention": convention},
    "svd_llm": lambda target, convention: {"target_removed": target, "convention": convention},
}

#: method -> the name used in figure legends.
DISPLAY_NAMES = {
    "dense": "dense",
    "slicegpt": "SliceGPT",
    "shortgpt": "ShortGPT",
    "wanda": "Wanda",
    "modegpt": "MoDeGPT",
    "disp_llm": "DISP-LLM",
    "sparsegpt": "SparseGPT",
    "svd_llm": "SVD-LLM",
}

#: methods that zero weights (N:M or unstructured) instead of removing them: their runs are named by
#: pattern, counted as non-zeros, and their 2:4 models can run on sparse tensor cores.
SPARSE_METHODS = frozenset({"wanda", "sparsegpt"})

_RUN_NAME = re.compile(r"^[a-z0-9][a-z0-9._]*$")


def series_label(method: str, settings: Mapping[str, Any], targeted: bool) -> str:
    """Legend label of a run: one line per method at parameter targets, one per knob family otherwise."""
    name = DISPLAY_NAMES.get(method, method)
    if method == "dense" or targeted:
        return name
    if method in SPARSE_METHODS:
        return f"{name} {settings['pattern']}" if settings.get("pattern") else f"{name} unstructured"
    return f"{name} ({_NOMINAL.get(method, 'nominal setting')})"


# What a run at the method's own knob is called in legends.
_NOMINAL = {"slicegpt": "nominal width", "shortgpt": "nominal depth", "svd_llm": "nominal ratio"}


def expand_runs(section: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``{run id: spec}`` for the dense reference and every method target and named run.

    A spec has ``run``, ``method``, ``settings`` (the method's keyword arguments), ``target_removed``
    (``None`` for runs at the method's own knob), ``convention`` and ``series``.  Raises
    ``ValueError`` naming the config key for a method without a parameter target that lists
    ``targets``, a bad run name, or a duplicate run id.
    """
    convention = section.get("convention", "total")
    runs: dict[str, dict[str, Any]] = {
        "dense": {
            "run": "dense",
            "method": "dense",
            "settings": {},
            "target_removed": None,
            "convention": convention,
            "series": "dense",
        }
    }

    def add(run_id: str, spec: dict[str, Any]) -> None:
        if run_id in runs:
            raise ValueError(f"llm_compression.methods: run id {run_id!r} is defined twice")
        runs[run_id] = spec

    for method, entry in (section.get("methods") or {}).items():
        options = dict(entry.get("options") or {})
        targets = list(entry.get("targets") or [])
        if targets and method not in TARGET_KEYWORDS:
            raise ValueError(
                f"llm_compression.methods.{method}.targets: {method} has no parameter target; "
                f"use 'runs' with its own settings (methods with targets: {sorted(TARGET_KEYWORDS)})"
            )
        for target in targets:
            target = float(target)
            settings = {**options, **TARGET_KEYWORDS[method](target, convention)}
            add(
                f"{method}-r{target:.2f}",
                {
                    "run": f"{method}-r{target:.2f}",
                    "method": method,
                    "settings": settings,
                    "target_removed": target,
                    "convention": convention,
                    "series": series_label(method, settings, targeted=True),
                },
            )
        for name, knob in (entry.get("runs") or {}).items():
            name = str(name)
            if not _RUN_NAME.match(name):
                raise ValueError(
                    f"llm_compression.methods.{method}.runs: run name {name!r} must be lower-case letters, "
                    "digits, '.' or '_'"
                )
            settings = {**options, **dict(knob or {})}
            add(
                f"{method}-{name}",
                {
                    "run": f"{method}-{name}",
                    "method": method,
                    "settings": settings,
                    "target_removed": None,
                    "convention": convention,
                    "series": series_label(method, dict(knob or {}), targeted=False),
                },
            )
    return runs


def run_setting(spec: Mapping[str, Any], calibration: str | None = None) -> dict[str, Any]:
    """The setting stored with every result row of a run (JSON-able; ``progress`` left out)."""
    settings = {k: v for k, v in spec["settings"].items() if k != "progress"}
    return {
        **settings,
        "run": spec["run"],
        "series": spec["series"],
        "target_removed": spec["target_removed"],
        "convention": spec["convention"],
        "calibration_set": calibration,
    }
