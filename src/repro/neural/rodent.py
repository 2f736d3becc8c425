"""MYOW's rodent sleep data (paper tier) and an offline stand-in (brief ``ssl_graph_neural.md`` §3.6, §4).

Real data
---------
``nerdslab/myow-neuro`` ships one 12 h recording of a mouse in CA1 (Hengen lab; Ma et al., Neuron
2019): ``data/rodent/fr_bins_n_4full.npy``, int32 ``[42 units, 10800 bins]`` spike counts in 4 s
bins, and ``behav_states_n_4full.npy``, one arousal-state label per bin in ``{0, 1, 2}`` (counts
``{0: 3832, 1: 6206, 2: 762}``; the README names Awake, REM and nREM but not which index is which,
so the labels stay numbers here).  :func:`rodent_sleep` reads both files with
``np.load(allow_pickle=False)`` (an object array is refused, so a tampered file cannot run code),
checks them, and returns a :class:`~repro.neural.trials.TrialData` with ``task="states"``.

Split and blocks (our choices, following the brief)
---------------------------------------------------
* **Split in time, 70/10/20** (brief §3.6): the first 70 % of the bins are the training split, the
  next 10 % validation, the last 20 % test -- three contiguous chunks, in the order of myow-neuro's
  ``RodentNeuralDataset``.  So neighbouring bins fall into different splits only at the two chunk
  boundaries (no gap is added there, as in the official code).  **Code quirk, not copied:** that
  class applies ``train_split=0.7`` to the first 80 % of the bins, which gives 56/24/20 (bins
  ``[0, 6047)``, ``[6047, 8639)``, ``[8639, 10800)``); pass ``split=(0.56, 0.24, 0.2)`` to mimic it.
  Its SSL pre-training also uses the train + validation bins; :func:`repro.neural.stages.train_neural`
  trains on the training split only.
* **Blocks = trials.**  The recording is one session; each split chunk is cut into contiguous blocks
  of ``block_bins`` bins (the last block of a chunk may be shorter), and a block is a ``TrialData``
  trial, so whole trials go to one split and no block straddles a split boundary.  Default 1080 bins
  (72 min, a tenth of the 12 h recording): the default split then falls on block boundaries
  (7 / 1 / 2 blocks of equal length).  Blocks matter only for the temporal-jitter positives
  (0..+3 bins, brief §3.4), which stay inside a block (a handful of pairs lost at block edges);
  ``block_bins=None`` makes each split chunk one block.
* ``time`` is the **recording-wide bin index** (not reset per block): MYOW's rodent mining rule
  (brief §3.3, ``train_myow_neural(exclude_window=150)``) excludes every candidate within +-150 bins
  of the anchor, whichever block it is in.
* ``direction`` holds the state label, ``n_classes`` the number of states, ``angle`` is NaN (no
  reach angle), ``velocity`` zeros.

Stand-in (ours)
---------------
:func:`rodent_like` (arrays in the shipped layout: :func:`rodent_like_arrays`) simulates the same
shape of data offline (brief §4: "a 3-state HMM or switching Poisson generator with 40 units and 4 s
bins; class imbalance about 35/57/7 %"): a Markov chain that, at each bin with probability
``1 / switch_bins``, redraws the state from ``state_probs`` (so ``state_probs`` is exactly its
stationary distribution and state ``s`` lasts ``switch_bins / (1 - p_s)`` bins on average, 1.4-3 min
at the defaults), and Poisson units whose log-rate is a unit baseline plus a per-unit state effect
plus a slow shared gain (AR(1)).  The default state effect (log-rate sd 0.1 per unit and state) is
weak on purpose: a linear probe on the z-scored counts of one bin then reaches about 0.9 accuracy,
leaving room for a representation to help (with 0.4 the states are linearly separable).  It is not
the paper's data and its numbers are not comparable.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from repro.neural.trials import TrialData

__all__ = [
    "BIN_S",
    "DEFAULT_BLOCK_BINS",
    "RATES_FILE",
    "STATES_FILE",
    "block_split",
    "rodent_like",
    "rodent_like_arrays",
    "rodent_sleep",
    "rodent_trials",
]

RATES_FILE = "fr_bins_n_4full.npy"
STATES_FILE = "behav_states_n_4full.npy"
BIN_S = 4.0  # seconds per bin of the shipped mouse recording (10800 bins over 12 h)
DEFAULT_BLOCK_BINS = 1080
SPLITS = {"train": 0, "val": 1, "test": 2}


# --------------------------------------------------------------------------------------------- split
def _check_split(split: Sequence[float]) -> tuple[float, float, float]:
    if len(split) != 3:
        raise ValueError(f"split must be (train, val, test) fractions, got {split!r}")
    tr, va, te = (float(x) for x in split)
    if min(tr, va, te) < 0 or tr <= 0 or te <= 0 or abs(tr + va + te - 1.0) > 1e-6:
        raise ValueError(f"split fractions must be >= 0 with train and test > 0 and sum to 1, got {split!r}")
    return tr, va, te


def block_split(
    n_bins: int, split: Sequence[float] = (0.7, 0.1, 0.2), block_bins: int | None = DEFAULT_BLOCK_BINS
) -> tuple[np.ndarray, np.ndarray]:
    """``(split, block)`` int64 per bin: contiguous train / validation / test chunks in time order
    (the first ``split[0]`` of the bins, then ``split[1]``, then the rest), each cut into blocks of
    ``block_bins`` bins (``None``: one block per chunk); block ids increase along time."""
    tr, va, _ = _check_split(split)
    if block_bins is not None and (isinstance(block_bins, bool) or int(block_bins) != block_bins or block_bins < 1):
        raise ValueError(f"block_bins must be a positive integer or None, got {block_bins!r}")
    b1 = int(round(n_bins * tr))
    b2 = int(round(n_bins * (tr + va)))
    if b1 < 1 or n_bins - b2 < 1 or (va > 0 and b2 <= b1):
        raise ValueError(f"{n_bins} bins are too few for split {tuple(split)}: chunks end at {b1}, {b2}, {n_bins}")
    bounds = [(0, b1), (b1, b2), (b2, n_bins)]
    split_of = np.empty(n_bins, dtype=np.int64)
    block_of = np.empty(n_bins, dtype=np.int64)
    next_block = 0
    for s, (lo, hi) in enumerate(bounds):
        if hi <= lo:
            continue
        split_of[lo:hi] = s
        size = hi - lo if block_bins is None else int(block_bins)
        ids = np.arange(hi - lo) // size
        block_of[lo:hi] = next_block + ids
        next_block += int(ids[-1]) + 1
    return split_of, block_of


def rodent_trials(
    counts: np.ndarray,
    states: np.ndarray,
    *,
    n_states: int = 3,
    split: Sequence[float] = (0.7, 0.1, 0.2),
    block_bins: int | None = DEFAULT_BLOCK_BINS,
) -> TrialData:
    """A :class:`TrialData` (``task="states"``) from ``counts [bins, units]`` and ``states [bins]``
    (already checked): blocks and split of :func:`block_split`, ``time`` = recording-wide bin index."""
    n_bins = counts.shape[0]
    split_of, block_of = block_split(n_bins, split, block_bins)
    return TrialData(
        counts=torch.as_tensor(np.ascontiguousarray(counts), dtype=torch.float32),
        trial=torch.from_numpy(block_of),
        time=torch.arange(n_bins, dtype=torch.int64),
        direction=torch.as_tensor(np.asarray(states, dtype=np.int64)),
        angle=torch.full((n_bins,), math.nan, dtype=torch.float32),
        velocity=torch.zeros(n_bins, 2, dtype=torch.float32),
        split=torch.from_numpy(split_of),
        n_classes=int(n_states),
        task="states",
    )


# --------------------------------------------------------------------------------------------- files
def _load_npy(path: Path, what: str) -> np.ndarray:
    try:
        arr = np.load(path, allow_pickle=False)
    except ValueError as err:  # object arrays need pickle
        raise ValueError(
            f"{path}: cannot read the {what} without unpickling ({err}); expected a numeric array"
        ) from None
    except (OSError, EOFError) as err:
        raise ValueError(f"{path}: not a readable .npy file for the {what} ({err})") from None
    if not isinstance(arr, np.ndarray):
        arr.close()
        raise ValueError(f"{path}: expected a single .npy array for the {what}, got an .npz archive")
    return arr


def _find(sources: Sequence[Path], name: str) -> Path:
    found: list[Path] = []
    for src in sources:
        if src.is_file():
            if src.name == name:
                found.append(src)
        elif src.is_dir():
            found.extend(sorted(src.rglob(name)))
    if not found:
        missing = [str(s) for s in sources if not s.exists()]
        hint = f" ({missing} do not exist; run the download rule for these artifacts first)" if missing else ""
        raise FileNotFoundError(f"no {name} under {[str(s) for s in sources]}{hint}")
    if len(set(found)) > 1:
        raise FileNotFoundError(f"several {name} under {[str(s) for s in sources]}: {[str(p) for p in found]}")
    return found[0]


def _check_states(states: np.ndarray, n_states: int, path: Path | str) -> np.ndarray:
    """One integer label in ``0..n_states-1`` per bin (``[bins]``, or ``[bins, 1]`` / ``[1, bins]``) -> int64."""
    if states.ndim == 2 and 1 in states.shape:
        states = states.reshape(-1)
    if states.ndim != 1:
        raise ValueError(f"{path}: state labels must be one per bin, shape [bins], got {states.shape}")
    if states.dtype.kind in "iu":
        labels = states.astype(np.int64)
    elif states.dtype.kind == "f" and bool(np.isfinite(states).all()) and bool((states == np.round(states)).all()):
        labels = states.astype(np.int64)  # integral floats are accepted
    else:
        raise ValueError(f"{path}: state labels must be integers, got dtype {states.dtype}")
    bad = np.unique(labels[(labels < 0) | (labels >= n_states)])
    if bad.size:
        raise ValueError(
            f"{path}: state labels must be in 0..{n_states - 1} (n_states={n_states}), found {bad.tolist()}"
        )
    return labels


def _check_rates(rates: np.ndarray, path: Path | str, n_bins: int, states_path: Path | str) -> np.ndarray:
    """``[units, bins]`` non-negative counts (integer; finite floats accepted) -> ``[bins, units]`` float32."""
    if rates.ndim != 2:
        raise ValueError(f"{path}: rates must be [units, bins], got shape {rates.shape}")
    if rates.dtype.kind not in "iuf":
        raise ValueError(f"{path}: rates must be numeric counts, got dtype {rates.dtype}")
    if rates.shape[1] != n_bins:
        flipped = "; it looks transposed ([bins, units])" if rates.shape[0] == n_bins else ""
        raise ValueError(
            f"{path}: rates [units, bins] have shape {rates.shape}, but {states_path} has {n_bins} labels{flipped}"
        )
    if rates.dtype.kind == "f" and not bool(np.isfinite(rates).all()):
        raise ValueError(f"{path}: rates contain NaN or infinite values")
    if bool((rates < 0).any()):
        raise ValueError(f"{path}: rates contain negative values")
    return np.ascontiguousarray(rates.T, dtype=np.float32)


def rodent_sleep(
    folder_or_paths: str | Path | Sequence[str | Path],
    *,
    rates_file: str = RATES_FILE,
    states_file: str = STATES_FILE,
    split: Sequence[float] = (0.7, 0.1, 0.2),
    block_bins: int | None = DEFAULT_BLOCK_BINS,
    n_states: int = 3,
) -> TrialData:
    """The shipped rodent recording as a :class:`TrialData` (``task="states"``; module docstring).

    ``folder_or_paths``: a folder holding both files (searched recursively by name), or several
    folders / files (e.g. the two single-file artifact folders ``resources/artifacts/<name>``).
    ``rates_file`` is ``[units, bins]`` counts, ``states_file`` one label in ``0..n_states-1`` per bin.
    Errors name the offending file.
    """
    if isinstance(folder_or_paths, (str, Path)):
        sources = [Path(folder_or_paths)]
    else:
        sources = [Path(p) for p in folder_or_paths]
    if not sources:
        raise ValueError("no folder or file given")
    if int(n_states) < 2:
        raise ValueError(f"n_states must be >= 2, got {n_states}")
    rates_path = _find(sources, rates_file)
    states_path = _find(sources, states_file)
    rates = _load_npy(rates_path, "rates")
    states = _load_npy(states_path, "state labels")
    labels = _check_states(states, int(n_states), states_path)
    counts = _check_rates(rates, rates_path, labels.shape[0], states_path)
    return rodent_trials(counts, labels, n_states=int(n_states), split=split, block_bins=block_bins)


# --------------------------------------------------------------------------------------------- stand-in
def rodent_like_arrays(
    n_units: int = 40,
    n_bins: int = 10800,
    state_probs: Sequence[float] = (0.35, 0.57, 0.07),
    *,
    switch_bins: float = 20.0,
    mean_rate_hz: float = 2.0,
    bin_s: float = BIN_S,
    unit_sd: float = 0.5,
    state_modulation: float = 0.1,
    gain_sd: float = 0.2,
    gain_corr_bins: float = 50.0,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Simulated ``(rates [n_units, n_bins] int32, states [n_bins] int64)`` in the shipped layout.

    States: a Markov chain that keeps its state, except that with probability ``1 / switch_bins`` per
    bin it redraws it from ``state_probs`` (normalised; the chain's stationary distribution; the first
    state is drawn from it too).  Counts: ``Poisson(exp(b_n + m[n, s_t] + g_t))`` with unit baselines
    ``b_n = log(mean_rate_hz * bin_s) + N(0, unit_sd)``, state effects ``m[n, s] ~ N(0,
    state_modulation)`` and a shared gain ``g_t``, AR(1) with stationary sd ``gain_sd`` and
    correlation time ``gain_corr_bins``.
    """
    probs = np.asarray(state_probs, dtype=np.float64).reshape(-1)
    if probs.size < 2 or not bool(np.isfinite(probs).all()) or bool((probs <= 0).any()):
        raise ValueError(f"state_probs must be >= 2 positive numbers, got {state_probs!r}")
    probs = probs / probs.sum()
    if n_units < 1 or n_bins < 1:
        raise ValueError(f"n_units and n_bins must be >= 1, got {n_units}, {n_bins}")
    if switch_bins < 1:
        raise ValueError(f"switch_bins must be >= 1, got {switch_bins}")
    if gain_corr_bins <= 0 or min(unit_sd, state_modulation, gain_sd) < 0 or mean_rate_hz <= 0 or bin_s <= 0:
        raise ValueError("gain_corr_bins, mean_rate_hz and bin_s must be > 0 and the sds >= 0")
    rng = np.random.default_rng(seed)
    k = probs.size
    redraw = rng.random(n_bins) < 1.0 / switch_bins
    redraw[0] = True
    draws = rng.choice(k, size=int(redraw.sum()), p=probs)
    states = draws[np.cumsum(redraw) - 1].astype(np.int64)

    base = math.log(mean_rate_hz * bin_s) + unit_sd * rng.standard_normal(n_units)
    effect = state_modulation * rng.standard_normal((n_units, k))
    rho = math.exp(-1.0 / gain_corr_bins)
    innov = gain_sd * math.sqrt(1 - rho**2) * rng.standard_normal(n_bins)
    gain = np.empty(n_bins)
    gain[0] = gain_sd * rng.standard_normal()
    for t in range(1, n_bins):
        gain[t] = rho * gain[t - 1] + innov[t]
    log_rate = base[:, None] + effect[:, states] + gain[None, :]
    rates = rng.poisson(np.exp(log_rate)).astype(np.int32)
    return rates, states


def rodent_like(
    n_units: int = 40,
    n_bins: int = 10800,
    state_probs: Sequence[float] = (0.35, 0.57, 0.07),
    *,
    switch_bins: float = 20.0,
    mean_rate_hz: float = 2.0,
    bin_s: float = BIN_S,
    unit_sd: float = 0.5,
    state_modulation: float = 0.1,
    gain_sd: float = 0.2,
    gain_corr_bins: float = 50.0,
    split: Sequence[float] = (0.7, 0.1, 0.2),
    block_bins: int | None = DEFAULT_BLOCK_BINS,
    seed: int = 0,
) -> TrialData:
    """The stand-in of :func:`rodent_like_arrays` as a :class:`TrialData` (``task="states"``), split
    and cut into blocks as the real recording (:func:`block_split`)."""
    rates, states = rodent_like_arrays(
        n_units,
        n_bins,
        state_probs,
        switch_bins=switch_bins,
        mean_rate_hz=mean_rate_hz,
        bin_s=bin_s,
        unit_sd=unit_sd,
        state_modulation=state_modulation,
        gain_sd=gain_sd,
        gain_corr_bins=gain_corr_bins,
        seed=seed,
    )
    n_states = len(tuple(state_probs))
    return rodent_trials(rates.T.astype(np.float32), states, n_states=n_states, split=split, block_bins=block_bins)
