"""A synthetic centre-out reaching population: OUR stand-in for the Miller-lab monkey M1 data.

The real Swap-VAE / MYOW monkey data (macaque M1 centre-out reaching, Dyer et al. 2017; brief
``shared/papers/ssl_graph_neural.md`` §2.6) are ``.mat`` files that are not in the public repositories
and whose licence is unstated, so the offline default is a generator of our own (brief §4, row "Swap-VAE
/ MYOW monkey", option (b), which says to label it as *ours, not the paper's*).  Nothing below is from
either paper's code except the coarse shape of the data, which follows §2.6:

* 8 reach directions, 100 ms bins, trials of 9-14 bins (Chewie-1: 159 trials of 9-14 bins, 174 neurons;
  the four sessions have 155-187 neurons and 159-215 trials).  Defaults: 200 trials, 160 units.
* Splits by whole trials in file order.  Swap-VAE and myow use the first 80 % of trials for training and
  the last 20 % for test; myow-neuro uses 80/10/10 (§2.6).  Our default ``split=(0.7, 0.1, 0.2)`` keeps
  the paper's last-20 % test set and carves a validation set out of the end of its 80 % training part,
  because the brief asks for selection on validation rather than on test (§2.7 last bullet, §7.5).
  ``split=(0.8, 0.0, 0.2)`` gives the paper's split exactly.

The generative model (all of it ours):

* Direction ``d`` of each trial: balanced over the ``n_directions`` classes (counts differ by at most one),
  in shuffled order.  Target angle ``theta_d = 2 pi d / n_directions`` (the probe target, as in §2.7).
* Length ``T`` uniform in ``[min_bins, max_bins]``.
* Hand velocity ``v(t) = speed(t) * (cos phi(t), sin phi(t))`` at the bin centre.  ``speed`` is a
  minimum-jerk bell ``peak * 16 s^2 (1 - s)^2`` over a movement window ``s in [0, 1]`` that starts at a
  random fraction ``U(0, 0.2)`` of the trial and ends at ``U(0.8, 1.0)``; the per-trial peak is
  ``peak_speed * exp(N(0, 0.1^2))``.  ``phi(t) = theta_d + a + b (s - 1/2)``: a small trial-to-trial
  angular offset ``a`` and a smooth curvature ``b``, both ``N(0, angle_noise^2)``.  ``peak_speed`` 25
  (cm/s in spirit) makes the Swap-VAE evaluation threshold ``||v|| > 5`` (§2.7) keep the moving bins.
* Unit ``i``: preferred direction ``pd_i ~ U[0, 2 pi)``, baseline rate ``U(baseline_hz)`` Hz (log count per
  bin ``b_i``), modulation depth ``g_i ~ U(gain_range)``.  Rate per bin
  ``lambda_i(t) = exp(b_i + g_i <u(pd_i), v(t)> / peak_speed + eta(t))`` (cosine tuning to velocity),
  where ``eta`` is a shared slow gain: a stationary AR(1) over the bins of the session in file order,
  standard deviation ``shared_gain_sd``, correlation time ``shared_gain_tau`` bins.
* Counts ``~ Poisson(lambda)``: mostly 0-10 per 100 ms bin with the defaults.

All randomness comes from ``numpy.random.default_rng(seed)``.
"""

from __future__ import annotations

import math
import numbers

import numpy as np
import torch

from repro.neural.trials import TrialData

__all__ = ["reach_population"]


def reach_population(
    n_trials: int = 200,
    n_units: int = 160,
    n_directions: int = 8,
    min_bins: int = 9,
    max_bins: int = 14,
    bin_ms: float = 100.0,
    split: tuple[float, float, float] = (0.7, 0.1, 0.2),
    peak_speed: float = 25.0,
    angle_noise: float = 0.15,
    baseline_hz: tuple[float, float] = (5.0, 30.0),
    gain_range: tuple[float, float] = (0.2, 1.2),
    shared_gain_sd: float = 0.15,
    shared_gain_tau: float = 10.0,
    seed: int = 0,
) -> tuple[TrialData, dict[str, torch.Tensor]]:
    """Sample a reaching session; returns ``(data, info)``.

    ``data`` is a :class:`TrialData` with Poisson ``counts [B, n_units]``, the trial's ``direction``
    and target ``angle``, the per-bin hand ``velocity`` and ``split`` (train / validation / test
    fractions of the trials, in file order).  ``info`` holds the ground truth, all ``torch`` tensors:
    ``preferred_directions [N]`` (radians in ``[0, 2 pi)``), ``baseline [N]`` (log expected count per
    bin at zero velocity and zero shared gain), ``gain [N]`` (modulation depth), ``shared_gain [B]``
    (``eta``), ``rate [B, N]`` (the Poisson means) and ``trial_direction [n_trials]``.
    """
    _check_int("n_trials", n_trials, 1)
    _check_int("n_units", n_units, 1)
    _check_int("n_directions", n_directions, 1)
    _check_int("min_bins", min_bins, 1)
    _check_int("max_bins", max_bins, min_bins)
    for name, value in (("bin_ms", bin_ms), ("peak_speed", peak_speed), ("shared_gain_tau", shared_gain_tau)):
        if not (_is_real(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    for name, value in (("angle_noise", angle_noise), ("shared_gain_sd", shared_gain_sd)):
        if not (_is_real(value) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    lo_hz, hi_hz = _check_range("baseline_hz", baseline_hz, strictly_positive=True)
    lo_gain, hi_gain = _check_range("gain_range", gain_range, strictly_positive=False)
    sizes = split_sizes(n_trials, split)
    rng = np.random.default_rng(seed)

    # Trials: balanced, shuffled directions and uniform lengths.
    trial_dir = rng.permutation(np.arange(n_trials) % n_directions)
    lengths = rng.integers(min_bins, max_bins + 1, size=n_trials)
    # Units: preferred direction, baseline (log count per bin) and modulation depth.
    pd = rng.uniform(0.0, 2.0 * np.pi, size=n_units)
    baseline = np.log(rng.uniform(lo_hz, hi_hz, size=n_units) * bin_ms / 1000.0)
    gain = rng.uniform(lo_gain, hi_gain, size=n_units)
    # Per-trial kinematic variability.
    onset = rng.uniform(0.0, 0.2, size=n_trials)
    offset = rng.uniform(0.8, 1.0, size=n_trials)
    peak = peak_speed * np.exp(rng.normal(0.0, 0.1, size=n_trials))
    angle_offset = rng.normal(0.0, angle_noise, size=n_trials)
    curvature = rng.normal(0.0, angle_noise, size=n_trials)

    # One row per bin.
    trial = np.repeat(np.arange(n_trials), lengths)
    starts = np.cumsum(lengths) - lengths
    time = np.arange(trial.size) - np.repeat(starts, lengths)
    frac = (time + 0.5) / lengths[trial]
    s = np.clip((frac - onset[trial]) / (offset[trial] - onset[trial]), 0.0, 1.0)
    speed = peak[trial] * 16.0 * s**2 * (1.0 - s) ** 2
    target = 2.0 * np.pi * trial_dir / n_directions
    phi = target[trial] + angle_offset[trial] + curvature[trial] * (s - 0.5)
    velocity = speed[:, None] * np.stack([np.cos(phi), np.sin(phi)], axis=1)

    eta = _ar1(trial.size, shared_gain_sd, shared_gain_tau, rng)
    tuning = velocity @ np.stack([np.cos(pd), np.sin(pd)], axis=0) / peak_speed  # [B, N]
    rate = np.exp(baseline[None, :] + gain[None, :] * tuning + eta[:, None])
    counts = rng.poisson(rate)

    trial_split = np.repeat(np.arange(3), sizes)
    data = TrialData(
        counts=torch.from_numpy(counts.astype(np.float32)),
        trial=torch.from_numpy(trial.astype(np.int64)),
        time=torch.from_numpy(time.astype(np.int64)),
        direction=torch.from_numpy(trial_dir[trial].astype(np.int64)),
        angle=torch.from_numpy(target[trial].astype(np.float32)),
        velocity=torch.from_numpy(velocity.astype(np.float32)),
        split=torch.from_numpy(trial_split[trial].astype(np.int64)),
        n_classes=n_directions,
    )
    info = {
        "preferred_directions": torch.from_numpy(pd.astype(np.float32)),
        "baseline": torch.from_numpy(baseline.astype(np.float32)),
        "gain": torch.from_numpy(gain.astype(np.float32)),
        "shared_gain": torch.from_numpy(eta.astype(np.float32)),
        "rate": torch.from_numpy(rate.astype(np.float32)),
        "trial_direction": torch.from_numpy(trial_dir.astype(np.int64)),
    }
    return data, info


def split_sizes(n: int, fractions: tuple[float, ...]) -> list[int]:
    """Numbers of items per split for ``fractions`` (train, validation, test) summing to 1.

    ``round(f * n)`` for train and validation, the rest for test; then a split with a positive fraction
    but no item takes one from the largest split when that has more than one (train first, then test,
    then validation).
    """
    fr = [float(f) for f in fractions]
    if len(fr) != 3 or any(not math.isfinite(f) or f < 0 for f in fr) or abs(sum(fr) - 1.0) > 1e-6:
        raise ValueError(f"split must be three fractions >= 0 summing to 1, got {fractions!r}")
    n_train = min(round(fr[0] * n), n)
    n_val = min(round(fr[1] * n), n - n_train)
    sizes = [n_train, n_val, n - n_train - n_val]
    for k in (0, 2, 1):
        if fr[k] > 0 and sizes[k] == 0:
            donor = int(np.argmax(sizes))
            if sizes[donor] > 1:
                sizes[donor] -= 1
                sizes[k] += 1
    return sizes


def _ar1(n: int, sd: float, tau: float, rng: np.random.Generator) -> np.ndarray:
    """Stationary AR(1) path of length ``n``: standard deviation ``sd``, correlation ``exp(-1/tau)`` per step."""
    rho = math.exp(-1.0 / tau)
    innovations = rng.normal(0.0, 1.0, size=n)
    out = np.empty(n)
    prev = sd * rng.normal()
    scale = sd * math.sqrt(1.0 - rho * rho)
    for k in range(n):
        prev = rho * prev + scale * innovations[k]
        out[k] = prev
    return out


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _check_range(name: str, value: tuple[float, float], strictly_positive: bool) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a pair (low, high), got {value!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi and (lo > 0 if strictly_positive else lo >= 0)):
        bound = "> 0" if strictly_positive else ">= 0"
        raise ValueError(f"{name} must be finite with {bound} low <= high, got {value!r}")
    return lo, hi
