"""The processed monkey reaching sessions shipped in the MYOW repository (paper tier).

``nerdslab/myow`` keeps four Miller-lab centre-out sessions (Mihi and Chewie, two days each;
brief ``ssl_graph_neural.md`` §2.6) binned at 100 ms as pickles, ``data/mihi-chewie/processed/
full-<primate>-<date>-0.10.pkl``.  Each holds ``{"data": {...}}`` whose values are lists with one
NumPy array per trial (in the trial table's order): ``firing_rates [T, N]`` (spikes per second,
i.e. counts / 0.1 s), ``velocity [T, 2]`` (hand velocity), ``labels [T, 1]`` (the target id, the
trial table's column 1), ``sequence [T, 1]`` (the trial id), and ``position``, ``acceleration``,
``force``.  The official loader (``ReachNeuralDataset``) splits the trials in file order, 80 %
train / 20 % test, maps target ids to 0..7 by sorting and decodes the angle ``2 pi / 8 * label``;
neurons whose training-set standard deviation is below 1e-3 are dropped.

:func:`reach_pickle` returns the same data as a :class:`~repro.neural.trials.TrialData`:
counts are ``firing_rates * bin_s`` rounded to integers (the binning divided counts by the
period), trials keep file order, the last ``test`` fraction of trials is the test split as in
the official code and the last ``val`` fraction of the remaining trials the validation split
(ours: the official code selects on test, brief §2.7).  Static neurons are left to the models
(Swap-VAE and MYOW drop them from training statistics).

Unpickling runs through :class:`repro.data.safe_pickle.NumpyOnlyUnpickler`, which accepts NumPy
arrays, dtypes and plain containers only, so a tampered file cannot run code.
"""

from __future__ import annotations

import math
import pickle
from pathlib import Path

import numpy as np
import torch

from repro.data.safe_pickle import NumpyOnlyUnpickler
from repro.neural.trials import TrialData

SPLITS = {"train": 0, "val": 1, "test": 2}
REQUIRED = ("firing_rates", "velocity", "labels")


def _read(path: Path) -> dict:
    with open(path, "rb") as f:
        try:
            obj = NumpyOnlyUnpickler(f).load()
        except (pickle.UnpicklingError, EOFError, AttributeError, ValueError) as err:
            raise ValueError(f"{path}: not a processed reaching pickle ({err})") from None
    data = obj.get("data") if isinstance(obj, dict) else None
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a dict with key 'data', got {type(obj).__name__}")
    missing = [k for k in REQUIRED if k not in data]
    if missing:
        raise ValueError(f"{path}: 'data' lacks {missing}; has {sorted(data)}")
    n = len(data["firing_rates"])
    for key in REQUIRED:
        if len(data[key]) != n:
            raise ValueError(f"{path}: {key} has {len(data[key])} trials, firing_rates has {n}")
    return data


def find_pickle(folder: str | Path) -> Path:
    """The single ``*.pkl`` under an artifact folder (error naming the folder otherwise)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder} does not exist; run the download rule for this artifact first")
    found = sorted(folder.rglob("*.pkl"))
    if len(found) != 1:
        raise FileNotFoundError(f"{folder}: expected one .pkl file, found {[p.name for p in found]}")
    return found[0]


def reach_pickle(
    path: str | Path,
    *,
    bin_s: float = 0.1,
    test: float = 0.2,
    val: float = 0.1,
    n_directions: int = 8,
) -> TrialData:
    """Load one processed session (a ``.pkl`` file or an artifact folder holding one)."""
    path = Path(path)
    if path.is_dir():
        path = find_pickle(path)
    if not (0.0 < test < 1.0 and 0.0 <= val < 1.0):
        raise ValueError(f"test must be in (0, 1) and val in [0, 1), got {test}, {val}")
    data = _read(path)
    rates = [np.asarray(r, dtype=np.float64) for r in data["firing_rates"]]
    n_trials = len(rates)
    if n_trials < 3:
        raise ValueError(f"{path}: {n_trials} trials; need at least 3 for train/val/test")
    n_units = rates[0].shape[1]
    if any(r.ndim != 2 or r.shape[1] != n_units for r in rates):
        raise ValueError(f"{path}: trials disagree on the number of neurons")
    raw_labels = np.array([int(np.asarray(lab).reshape(-1)[0]) for lab in data["labels"]])
    classes = np.unique(raw_labels)
    if classes.size > n_directions:
        raise ValueError(f"{path}: {classes.size} target ids, more than n_directions={n_directions}")
    label = np.searchsorted(classes, raw_labels)

    n_test = max(1, int(round(n_trials * test)))
    n_train_val = n_trials - n_test  # the official split: first 80 % in file order
    n_val = int(round(n_train_val * val))
    split_of_trial = np.zeros(n_trials, dtype=np.int64)
    split_of_trial[n_train_val - n_val : n_train_val] = SPLITS["val"]
    split_of_trial[n_train_val:] = SPLITS["test"]

    lengths = np.array([r.shape[0] for r in rates])
    counts = np.rint(np.concatenate(rates) * bin_s)
    velocity = np.concatenate([np.asarray(v, dtype=np.float64).reshape(-1, 2) for v in data["velocity"]])
    if velocity.shape[0] != counts.shape[0]:
        raise ValueError(f"{path}: velocity has {velocity.shape[0]} bins, firing_rates {counts.shape[0]}")
    trial = np.repeat(np.arange(n_trials), lengths)
    time = np.concatenate([np.arange(n) for n in lengths])
    direction = np.repeat(label, lengths)
    angle = 2 * math.pi / n_directions * direction
    return TrialData(
        counts=torch.tensor(counts, dtype=torch.float32),
        trial=torch.from_numpy(trial),
        time=torch.from_numpy(time),
        direction=torch.from_numpy(direction),
        angle=torch.tensor(angle, dtype=torch.float32),
        velocity=torch.tensor(np.nan_to_num(velocity), dtype=torch.float32),
        split=torch.from_numpy(np.repeat(split_of_trial, lengths)),
        n_classes=int(n_directions),
    )
