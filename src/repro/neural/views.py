"""Views for neural activity: temporal-jitter pairs and the neuron-level augmentations.

Follows the brief ``shared/papers/ssl_graph_neural.md``:

* :func:`jitter_pairs`: Swap-VAE's temporal jitter (§2.2): a positive pair is two bins of the *same
  trial* with offset ``t_j - t_i`` in ``[min_shift, max_shift]``; offset 0 is included, as in the code's
  ``onlywithin_indices(trial_lengths, k_min=-5, k_max=5)``, and each step samples pairs uniformly among
  all eligible pairs without replacement (256 per step in ``LocalGlobalGenerator``).  Swap-VAE uses ±5 bins
  on the monkey data and ±3 on the synthetic data (§2.4); myow uses ±5 and myow-neuro the one-sided
  ``0..+2`` (monkey) / ``0..+3`` (rodent) windows (§3.4), i.e. ``min_shift=0``.  Windows are arguments;
  this module has no defaults for them.  When fewer eligible pairs exist than requested we cycle through
  fresh random permutations of all of them (ours).
* :func:`randomized_dropout`: "RandomizedDropout" (§2.2, §3.4): per sample ``p ~ U(0, p_max)``, each unit
  zeroed with probability ``p``, the transform applied to a sample with probability ``apply_p``.  Swap-VAE's
  flags are ``p_max=0.6, apply_p=1.0`` (§2.2), myow's monkey run ``0.8, 0.9``, myow-neuro's ``0.2, 1.0``
  (§3.5).  With ``structured_transform`` Swap-VAE applies the same mask to both elements of a pair: pass
  ``mask=`` to reuse one.  The brief describes plain zeroing ("zero each neuron with probability p") with
  no ``1/(1-p)`` rescaling, so we do not rescale.
* :func:`gaussian_noise` (``x + sigma * N(0, 1)``) and :func:`pepper` (add a constant ``c`` to each unit
  with probability ``p``) with per-sample application probability ``apply_p`` (§3.4; myow-neuro monkey:
  noise ``sigma 1.5, apply 0.5``, pepper ``p 0.3, c 1.5, apply 0.5``, §3.5).

All randomness comes from the ``torch.Generator`` argument.  Random numbers are drawn on the generator's
device and moved to the data's device, so any combination of devices works and a given generator state
gives the same result whatever the data's device.  A "sample" is one row: all dimensions but the last
(units) index samples.
"""

from __future__ import annotations

import torch
from torch import Tensor

from repro.neural.trials import TrialData

__all__ = ["gaussian_noise", "jitter_pairs", "pepper", "randomized_dropout"]


def jitter_pairs(
    data: TrialData,
    n_pairs: int,
    max_shift: int,
    generator: torch.Generator,
    min_shift: int | None = None,
    rows: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Row indices ``(i, j)``, int64 ``[n_pairs]``, of random within-trial pairs with ``t_j - t_i`` in range.

    Pairs are drawn uniformly among all ordered pairs ``(i, j)`` of rows of one trial with offset
    ``min_shift <= time[j] - time[i] <= max_shift`` (``min_shift`` defaults to ``-max_shift``), without
    replacement when there are at least ``n_pairs`` of them.  ``rows`` (bool mask ``[B]`` or int indices)
    restricts both elements of a pair to those rows, e.g. ``data.split == 0``.  Indices are on the data's
    device.
    """
    if n_pairs < 0:
        raise ValueError(f"n_pairs must be >= 0, got {n_pairs}")
    lo = -max_shift if min_shift is None else min_shift
    if lo > max_shift:
        raise ValueError(f"min_shift={lo} exceeds max_shift={max_shift}")
    b = data.trial.shape[0]
    device = data.trial.device
    allowed = _row_mask(rows, b, device)

    anchors, partners = [], []
    for k in range(lo, max_shift + 1):  # a loop over offsets, not pairs
        if abs(k) >= b:
            continue
        i = torch.arange(max(0, -k), b - max(0, k), device=device)
        j = i + k
        ok = (data.trial[i] == data.trial[j]) & (data.time[j] - data.time[i] == k) & allowed[i] & allowed[j]
        anchors.append(i[ok])
        partners.append(j[ok])
    cand_i = torch.cat(anchors) if anchors else torch.empty(0, dtype=torch.long, device=device)
    cand_j = torch.cat(partners) if partners else torch.empty(0, dtype=torch.long, device=device)
    m = cand_i.numel()
    if n_pairs == 0:
        return cand_i[:0], cand_j[:0]
    if m == 0:
        raise ValueError(f"no within-trial pairs with offset in [{lo}, {max_shift}] among the allowed rows")
    n_perms = -(-n_pairs // m)
    pick = torch.cat([torch.randperm(m, generator=generator, device=generator.device) for _ in range(n_perms)])
    pick = pick[:n_pairs].to(device)
    return cand_i[pick], cand_j[pick]


def randomized_dropout(
    x: Tensor,
    p_max: float,
    apply_p: float,
    generator: torch.Generator,
    mask: Tensor | None = None,
    return_mask: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Zero units of ``x [..., N]``: per sample ``p ~ U(0, p_max)``, each unit dropped with probability ``p``.

    The transform is applied to a sample with probability ``apply_p`` (other samples keep every unit).
    ``mask`` (bool, ``x``'s shape, True = unit kept) reuses a mask instead of drawing one, e.g. the same
    mask for both elements of a pair.  No rescaling of the kept units.  Returns the new tensor, and the
    keep-mask as well when ``return_mask``.
    """
    if mask is None:
        _check_prob("p_max", p_max)
        _check_prob("apply_p", apply_p)
        samples = x.shape[:-1]
        p = _rand((*samples, 1), generator, x.device) * p_max
        drop = _rand(x.shape, generator, x.device) < p
        applied = _rand((*samples, 1), generator, x.device) < apply_p
        mask = ~(drop & applied)
    else:
        if mask.shape != x.shape:
            raise ValueError(f"mask shape {tuple(mask.shape)} differs from x shape {tuple(x.shape)}")
        mask = mask.to(device=x.device, dtype=torch.bool)
    out = torch.where(mask, x, torch.zeros((), dtype=x.dtype, device=x.device))
    return (out, mask) if return_mask else out


def gaussian_noise(x: Tensor, sigma: float, apply_p: float, generator: torch.Generator) -> Tensor:
    """``x + sigma * N(0, 1)`` (independent per unit) on each sample with probability ``apply_p``."""
    _check_prob("apply_p", apply_p)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    noise = torch.randn(x.shape, generator=generator, device=generator.device).to(device=x.device, dtype=x.dtype)
    applied = _rand((*x.shape[:-1], 1), generator, x.device) < apply_p
    return x + torch.where(applied, noise * sigma, torch.zeros((), dtype=x.dtype, device=x.device))


def pepper(x: Tensor, p: float, c: float, apply_p: float, generator: torch.Generator) -> Tensor:
    """Add the constant ``c`` to each unit with probability ``p``, on each sample with probability ``apply_p``."""
    _check_prob("p", p)
    _check_prob("apply_p", apply_p)
    hit = _rand(x.shape, generator, x.device) < p
    applied = _rand((*x.shape[:-1], 1), generator, x.device) < apply_p
    return x + (hit & applied).to(x.dtype) * c


def _rand(shape: tuple[int, ...] | torch.Size, generator: torch.Generator, device: torch.device) -> Tensor:
    """``U[0, 1)`` float32 of ``shape`` drawn on the generator's device, moved to ``device``."""
    return torch.rand(tuple(shape), generator=generator, device=generator.device).to(device)


def _row_mask(rows: Tensor | None, b: int, device: torch.device) -> Tensor:
    if rows is None:
        return torch.ones(b, dtype=torch.bool, device=device)
    rows = rows.to(device)
    if rows.dtype == torch.bool:
        if rows.shape != (b,):
            raise ValueError(f"a boolean rows mask must have shape ({b},), got {tuple(rows.shape)}")
        return rows
    mask = torch.zeros(b, dtype=torch.bool, device=device)
    mask[rows.long()] = True
    return mask


def _check_prob(name: str, value: float) -> None:
    if not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
