"""Known-answer tests for ``repro.neural.views``: jitter pairs and the neuron-level augmentations."""

from __future__ import annotations

import pytest
import torch

from repro.neural.trials import TrialData
from repro.neural.views import gaussian_noise, jitter_pairs, pepper, randomized_dropout


def _toy_trials(lengths: list[int], n_units: int = 3, split: list[int] | None = None) -> TrialData:
    trial = torch.repeat_interleave(torch.arange(len(lengths)), torch.tensor(lengths))
    time = torch.cat([torch.arange(n) for n in lengths])
    b = trial.numel()
    per_trial_split = torch.tensor(split if split is not None else [0] * len(lengths))
    return TrialData(
        counts=torch.arange(b * n_units, dtype=torch.float32).view(b, n_units),
        trial=trial,
        time=time,
        direction=trial % 2,
        angle=torch.zeros(b),
        velocity=torch.zeros(b, 2),
        split=per_trial_split[trial],
        n_classes=2,
    )


def _all_pairs(data: TrialData, lo: int, hi: int, allowed: set[int] | None = None) -> set[tuple[int, int]]:
    b = data.trial.numel()
    out = set()
    for i in range(b):
        for j in range(b):
            if data.trial[i] == data.trial[j] and lo <= int(data.time[j] - data.time[i]) <= hi:
                if allowed is None or (i in allowed and j in allowed):
                    out.add((i, j))
    return out


def test_jitter_pairs_same_trial_offsets_in_range():
    data = _toy_trials([9, 14, 11, 12, 10])
    gen = torch.Generator().manual_seed(0)
    i, j = jitter_pairs(data, 256, 5, gen)
    assert i.dtype == torch.int64 and j.dtype == torch.int64 and i.shape == (256,) == j.shape
    assert bool((data.trial[i] == data.trial[j]).all())
    offset = data.time[j] - data.time[i]
    assert int(offset.min()) >= -5 and int(offset.max()) <= 5
    # Without replacement when possible.
    assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == 256
    # All allowed offsets (0 included) occur.
    assert set(offset.tolist()) == set(range(-5, 6))


def test_jitter_pairs_exhausts_all_pairs_uniformly():
    data = _toy_trials([4, 6, 3])
    expected = _all_pairs(data, -2, 2)
    gen = torch.Generator().manual_seed(1)
    i, j = jitter_pairs(data, len(expected), 2, gen)
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected  # a permutation of all pairs
    # More pairs than exist: each pair used at most ceil(n / M) times.
    i, j = jitter_pairs(data, 2 * len(expected) + 1, 2, gen)
    counts: dict[tuple[int, int], int] = {}
    for pair in zip(i.tolist(), j.tolist(), strict=True):
        counts[pair] = counts.get(pair, 0) + 1
    assert set(counts) == expected and max(counts.values()) <= 3


def test_jitter_pairs_one_sided_window_and_rows():
    data = _toy_trials([5, 7, 6, 8], split=[0, 0, 2, 0])
    gen = torch.Generator().manual_seed(2)
    i, j = jitter_pairs(data, 200, 2, gen, min_shift=0)
    offset = data.time[j] - data.time[i]
    assert set(offset.tolist()) == {0, 1, 2}
    # rows as a boolean mask: only the training rows.
    train = data.split == 0
    expected = _all_pairs(data, -3, 3, set(torch.nonzero(train).view(-1).tolist()))
    i, j = jitter_pairs(data, len(expected), 3, gen, rows=train)
    assert bool(train[i].all() and train[j].all())
    assert set(zip(i.tolist(), j.tolist(), strict=True)) == expected
    # rows as indices, including a partial trial.
    idx = torch.tensor([0, 1, 2, 3, 10, 11])
    i, j = jitter_pairs(data, 50, 1, gen, rows=idx)
    assert set(i.tolist()) | set(j.tolist()) <= set(idx.tolist())
    assert bool((data.trial[i] == data.trial[j]).all())
    with pytest.raises(ValueError):
        jitter_pairs(data, 5, 1, gen, min_shift=2)


def test_jitter_pairs_reproducible():
    data = _toy_trials([10, 12, 9])
    a = jitter_pairs(data, 64, 5, torch.Generator().manual_seed(5))
    b = jitter_pairs(data, 64, 5, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def test_dropout_statistics_and_apply_p():
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(4000, 100, generator=gen) + 1.0
    out, mask = randomized_dropout(x, 0.6, 1.0, gen, return_mask=True)
    assert mask.dtype == torch.bool and mask.shape == x.shape
    assert torch.equal(out == 0, ~mask)
    assert torch.equal(out[mask], x[mask])  # kept units are not rescaled
    dropped = 1.0 - mask.float()
    assert abs(float(dropped.mean()) - 0.3) < 0.01  # E[p] = p_max / 2
    per_sample = dropped.mean(1)
    assert float(per_sample.max()) < 0.75 and float(per_sample.min()) < 0.05  # p ~ U(0, 0.6) per sample
    assert abs(float(per_sample.var()) - 0.6**2 / 12) < 0.005
    # apply_p = 0: unchanged; apply_p = 0.5: about half the samples untouched.
    assert torch.equal(randomized_dropout(x, 0.6, 0.0, gen), x)
    _, mask = randomized_dropout(x, 1.0, 0.5, gen, return_mask=True)
    untouched = mask.all(1).float().mean()
    assert abs(float(untouched) - 0.5) < 0.05


def test_dropout_mask_reuse_and_reproducibility():
    gen = torch.Generator().manual_seed(3)
    x1 = torch.rand(32, 20, generator=gen) + 0.5
    x2 = torch.rand(32, 20, generator=gen) + 0.5
    y1, mask = randomized_dropout(x1, 0.8, 1.0, gen, return_mask=True)
    y2 = randomized_dropout(x2, 0.8, 1.0, gen, mask=mask)
    assert torch.equal(y1 == 0, y2 == 0)
    a = randomized_dropout(x1, 0.8, 0.9, torch.Generator().manual_seed(9))
    b = randomized_dropout(x1, 0.8, 0.9, torch.Generator().manual_seed(9))
    assert torch.equal(a, b)
    with pytest.raises(ValueError):
        randomized_dropout(x1, 0.5, 1.0, gen, mask=mask[:, :5])


def test_gaussian_noise_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.full((4000, 50), 2.0)
    y = gaussian_noise(x, 0.5, 1.0, gen)
    d = y - x
    assert abs(float(d.mean())) < 0.01 and abs(float(d.std()) - 0.5) < 0.01
    y = gaussian_noise(x, 0.5, 0.3, gen)
    changed = (y != x).any(1).float().mean()
    assert abs(float(changed) - 0.3) < 0.04
    assert torch.equal(gaussian_noise(x, 1.0, 0.0, gen), x)


def test_pepper_statistics():
    gen = torch.Generator().manual_seed(0)
    x = torch.zeros(4000, 50)
    y = pepper(x, 0.3, 1.5, 1.0, gen)
    assert set(torch.unique(y).tolist()) == {0.0, 1.5}
    assert abs(float((y > 0).float().mean()) - 0.3) < 0.01
    y = pepper(x, 0.3, 1.5, 0.5, gen)
    assert abs(float((y > 0).float().mean()) - 0.15) < 0.01
    touched = (y > 0).any(1).float().mean()
    assert abs(float(touched) - 0.5) < 0.04
    assert torch.equal(pepper(x, 0.3, 1.5, 0.0, gen), x)
