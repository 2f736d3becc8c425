"""Binned population activity organised in trials: the data contract of :mod:`repro.neural`.

Every generator and loader (``reach``, ``swap_synthetic``, ``reach_pickle``, ``rodent``) returns a
:class:`TrialData`; the views
(``views``), the models (``swapvae``, ``myow``) and the probes (``probes``) read it.  One row per
time bin; the trial a bin belongs to and its position inside the trial are explicit, so pair
sampling (temporal jitter) and view mining (excluding the anchor's own trial) need no other
structure.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import torch
from torch import Tensor

#: what a dataset's labels are for (``TrialData.task``)
TASKS = ("direction", "states")


@dataclass
class TrialData:
    """``B`` time bins of ``N`` units, grouped into trials.

    * ``counts [B, N]`` float32: spike counts (or rates) per bin.
    * ``trial [B]`` int64: trial id of each bin; the bins of a trial are contiguous and in time
      order, trial ids increase along the rows.
    * ``time [B]`` int64: index of the bin inside its trial (0, 1, ...).  A continuous recording cut
      into blocks (:mod:`repro.neural.rodent`) uses the recording-wide bin index instead; either way
      it grows by one per bin inside a trial, which is all the jitter pairs need, and the rodent
      mining rule (``exclude_window``) compares it across blocks.
    * ``direction [B]`` int64: the bin's behavioural class, 0 .. n_classes-1 (the trial's reach
      direction; for ``task="states"`` the bin's own state label, which changes inside a block).
    * ``angle [B]`` float32: the trial's reach angle in radians (the probe regresses cos, sin); NaN
      where there is no angle (``task="states"``).
    * ``velocity [B, 2]`` float32: hand velocity in the bin (zeros where the generator has none).
    * ``split [B]`` int64: 0 train, 1 validation, 2 test; whole trials go to one split.
    * ``n_classes``: number of classes (directions or states).
    * ``task``: what the evaluation decodes: ``"direction"`` (reach direction from ``angle``, the
      angular probe) or ``"states"`` (``direction`` as a class label, e.g. arousal states, with a
      class-balanced multinomial probe; :func:`repro.neural.stages.evaluate_neural`).
    """

    counts: Tensor
    trial: Tensor
    time: Tensor
    direction: Tensor
    angle: Tensor
    velocity: Tensor
    split: Tensor
    n_classes: int
    task: str = "direction"

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {list(TASKS)}, got {self.task!r}")
        b = self.counts.shape[0]
        if self.counts.ndim != 2:
            raise ValueError(f"counts must be [B, N], got {tuple(self.counts.shape)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, Tensor) and value.shape[0] != b:
                raise ValueError(f"{f.name} has {value.shape[0]} rows, counts has {b}")
        if self.velocity.shape != (b, 2):
            raise ValueError(f"velocity must be [B, 2], got {tuple(self.velocity.shape)}")
        if b and bool((self.trial[1:] < self.trial[:-1]).any()):
            raise ValueError("trial ids must be non-decreasing (bins of a trial contiguous)")

    @property
    def n_units(self) -> int:
        return int(self.counts.shape[1])

    def subset(self, mask: Tensor) -> TrialData:
        """The bins where ``mask`` is true (e.g. ``data.split == 0``)."""
        kw = {f.name: getattr(self, f.name) for f in fields(self)}
        return TrialData(**{k: (v[mask] if isinstance(v, Tensor) else v) for k, v in kw.items()})

    def trial_bounds(self) -> tuple[Tensor, Tensor]:
        """``(start, length)`` int64 per trial, in trial order (rows of the first bin and bin counts)."""
        _, counts = torch.unique_consecutive(self.trial, return_counts=True)
        start = torch.cumsum(counts, 0) - counts
        return start, counts
