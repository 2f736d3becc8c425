"""Rule-level stage of the data-augmentation paper (Lin et al., JMLR 2024): rule ``augtheory_experiment``
runs one experiment of :data:`repro.augtheory.experiments.EXPERIMENTS` with the config's overrides.

The experiment keys (``e21`` ... ``e29``) and their defaults, sizes and sources are listed in
:mod:`repro.augtheory.experiments`; the config names an experiment and overrides its sizes (the
test tier shrinks them, the paper tier restores the notebooks' trial counts and grids).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from repro.report.rows import records_from_frame


def experiment_records(key: str, settings: Mapping[str, Any] | None = None, *, seed: int = 1) -> list[dict]:
    """Run experiment ``key`` with ``settings`` overriding its defaults; rows as records.

    Unknown experiment keys and unknown setting names are errors naming them.
    """
    from repro.augtheory.experiments import DEFAULTS, EXPERIMENTS

    if key not in EXPERIMENTS:
        raise ValueError(f"unknown data-augmentation experiment {key!r}; known: {sorted(EXPERIMENTS)}")
    settings = dict(settings or {})
    unknown = sorted(set(settings) - set(DEFAULTS[key]) - {"name"})
    if unknown:
        raise ValueError(f"experiment {key}: unknown setting(s) {unknown}; accepted: {sorted(DEFAULTS[key])}")
    return records_from_frame(EXPERIMENTS[key](settings, seed=seed))
