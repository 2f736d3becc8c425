"""Known-answer tests for the neural data generators: ``repro.neural.reach`` and ``repro.neural.swap_synthetic``."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repro.neural.reach import reach_population, split_sizes
from repro.neural.swap_synthetic import (
    DIRECTION_BLOCKS,
    CouplingLayer,
    RealNVPMap,
    firing_rates,
    latent_mean_var,
    pseudo_trials,
    sample_latents,
    swap_synthetic,
)
from repro.neural.trials import TrialData


def _angle_error(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return np.abs((a - b + np.pi) % (2 * np.pi) - np.pi)


def _check_trial_structure(data: TrialData) -> tuple[torch.Tensor, torch.Tensor]:
    start, length = data.trial_bounds()
    assert torch.equal(torch.unique_consecutive(data.trial), torch.arange(len(start)))
    for s, n in zip(start.tolist(), length.tolist(), strict=True):
        assert torch.equal(data.time[s : s + n], torch.arange(n))
        for field in (data.direction, data.angle, data.split):
            assert bool((field[s : s + n] == field[s]).all())
    return start, length


# --------------------------------------------------------------------------- reach


@pytest.fixture(scope="module")
def reach():
    return reach_population(seed=3)


def test_reach_recovers_preferred_directions(reach):
    data, info = reach
    counts = data.counts.double().numpy()
    # Least squares of counts on [1, v_x, v_y] = [1, speed cos(phi), speed sin(phi)] per unit.
    design = np.c_[np.ones(len(counts)), data.velocity.double().numpy()]
    beta, *_ = np.linalg.lstsq(design, counts, rcond=None)
    recovered = np.arctan2(beta[2], beta[1])
    truth = info["preferred_directions"].double().numpy()
    err = _angle_error(recovered, truth)
    well_tuned = info["gain"].numpy() > 0.5
    assert well_tuned.sum() > 50
    assert (err[well_tuned] < math.radians(20)).mean() >= 0.9
    assert np.median(err) < math.radians(10)


def test_reach_trial_structure_and_labels(reach):
    data, info = reach
    assert data.counts.shape[1] == 160 and data.n_classes == 8
    assert data.counts.dtype == torch.float32 and bool((data.counts == data.counts.round()).all())
    start, length = _check_trial_structure(data)
    assert len(start) == 200
    assert int(length.min()) >= 9 and int(length.max()) <= 14 and len(set(length.tolist())) > 3
    trial_dir = data.direction[start]
    assert torch.equal(trial_dir, info["trial_direction"])
    assert torch.bincount(trial_dir, minlength=8).tolist() == [25] * 8
    assert not torch.equal(trial_dir, torch.arange(200) % 8)  # shuffled
    assert torch.allclose(data.angle, 2 * math.pi * data.direction.float() / 8)
    # Splits: whole trials, in file order, 70/10/20 by default.
    assert data.split[start].tolist() == [0] * 140 + [1] * 20 + [2] * 40
    # Realistic counts: mostly 0-10 per bin, moving bins above the evaluation threshold of 5.
    assert 0.5 < float(data.counts.mean()) < 5 and float((data.counts <= 10).float().mean()) > 0.99
    speed = data.velocity.norm(dim=1)
    assert 0.3 < float((speed > 5).float().mean()) < 0.9
    # The velocity points (mostly) to the target during the movement.
    moving = speed > 5
    vel_angle = torch.atan2(data.velocity[moving, 1], data.velocity[moving, 0]).double().numpy()
    assert np.median(_angle_error(vel_angle, data.angle[moving].double().numpy())) < math.radians(15)


def test_reach_split_and_validation():
    data, _ = reach_population(n_trials=50, n_units=8, split=(0.8, 0.0, 0.2), seed=1)
    start, _ = data.trial_bounds()
    assert data.split[start].tolist() == [0] * 40 + [2] * 10
    assert split_sizes(10, (0.7, 0.1, 0.2)) == [7, 1, 2]
    assert split_sizes(3, (0.5, 0.25, 0.25)) == [1, 1, 1]  # every non-empty fraction gets a trial
    assert split_sizes(5, (1.0, 0.0, 0.0)) == [5, 0, 0]
    assert split_sizes(2, (0.7, 0.1, 0.2)) == [1, 0, 1]
    assert split_sizes(1, (0.7, 0.1, 0.2)) == [1, 0, 0]
    with pytest.raises(ValueError):
        reach_population(split=(0.5, 0.1, 0.1))
    with pytest.raises(ValueError):
        reach_population(min_bins=10, max_bins=9)
    with pytest.raises(ValueError):
        reach_population(n_trials=0)


def test_reach_determinism():
    a, ia = reach_population(n_trials=30, n_units=12, seed=7)
    b, ib = reach_population(n_trials=30, n_units=12, seed=7)
    c, _ = reach_population(n_trials=30, n_units=12, seed=8)
    for name in ("counts", "trial", "time", "direction", "angle", "velocity", "split"):
        assert torch.equal(getattr(a, name), getattr(b, name))
    assert all(torch.equal(ia[k], ib[k]) for k in ia)
    assert not torch.equal(a.counts, c.counts) or not torch.equal(a.velocity, c.velocity)


# --------------------------------------------------------------------------- swap_synthetic


@pytest.fixture(scope="module")
def swap():
    return swap_synthetic(return_info=True)


def test_latent_mean_var_rule():
    u = np.array([0.0, np.pi / 2, np.pi / 4, 3.0])
    mu, var = latent_mean_var(u)
    np.testing.assert_allclose(mu, np.c_[5 * np.sin(u), 5 * np.cos(u)])
    np.testing.assert_allclose(var[:, 1], 0.5 * np.abs(np.cos(u)))
    np.testing.assert_allclose(var[:, 0], 0.6 - 0.5 * np.abs(np.cos(u)))
    np.testing.assert_allclose(var[0], [0.1, 0.5])  # u = 0: mu = (0, 5)
    np.testing.assert_allclose(var[1], [0.6, 0.0], atol=1e-12)  # u = pi/2: mu = (5, 0)
    assert (var > -1e-12).all()


def test_sample_latents_statistics():
    u, z = sample_latents(2, 4000, n_dim=10)
    assert z.shape == (4000, 10) and not z[:, 2:].any()
    assert ((u >= 2 * np.pi / 8 * 2) & (u < 2 * np.pi / 8 * 3)).all()
    mu, var = latent_mean_var(u)
    std_resid = (z[:, :2] - mu) / np.sqrt(var)
    np.testing.assert_allclose(std_resid.mean(0), 0, atol=0.06)
    np.testing.assert_allclose(std_resid.std(0), 1, atol=0.05)
    # Seeded with 777 + d, as in the code.
    rs = np.random.RandomState(779)
    np.testing.assert_array_equal(u, rs.uniform(2 * np.pi / 8 * 2, 2 * np.pi / 8 * 3, size=4000))


def test_coupling_layer_and_flow_are_invertible():
    flow = RealNVPMap.random(100, seed=0)
    assert len(flow.blocks) == 4 and all(len(b) == 2 for b in flow.blocks)
    layer = flow.blocks[0][0]
    assert [tuple(w.shape) for w in layer.weights] == [(50, 25), (25, 25), (25, 100)]
    assert all(not b.any() for b in layer.biases)
    limit = math.sqrt(6 / (50 + 25))
    assert float(layer.weights[0].abs().max()) <= limit
    # Permutations from NumPy seeds 0, 1, 2.
    assert len(flow.permutations) == 3
    for k, perm in enumerate(flow.permutations):
        np.testing.assert_array_equal(perm.numpy(), np.random.RandomState(k).permutation(100))
    x = torch.randn(64, 100, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    y = layer.forward(x)
    assert y.shape == x.shape
    assert torch.equal(y[:, 50:], x[:, :50])  # identity on the first half, moved to the back
    # Second half: x2 * exp(s) + t with |s| <= 0.1.
    s, t = layer._st(x[:, :50])
    assert float(s.abs().max()) <= 0.1
    assert torch.allclose(y[:, :50], x[:, 50:] * torch.exp(s) + t)
    assert torch.allclose(layer.inverse(y), x, atol=1e-12)
    assert torch.allclose(flow.inverse(flow.forward(x)), x, atol=1e-10)
    # Seeded weights: same seed same map, another seed another map.
    assert torch.equal(RealNVPMap.random(100, seed=0).forward(x), flow.forward(x))
    assert not torch.allclose(RealNVPMap.random(100, seed=1).forward(x), flow.forward(x))
    assert isinstance(layer, CouplingLayer)


def test_swap_synthetic_sizes_rates_and_trials(swap):
    data, info = swap
    assert data.n_classes == 4 and data.counts.shape[1] == 100
    start, length = _check_trial_structure(data)
    assert bool((length == 4).all())
    n_rows = data.counts.shape[0]
    assert 3200 <= n_rows <= 4000 and n_rows % 4 == 0
    # Rates in (exp(-2.2), exp(2.2)) and equal to exp(2.2 tanh(f(z))).
    rate = info["rate"]
    assert float(rate.min()) > math.exp(-2.2) and float(rate.max()) < math.exp(2.2)
    assert torch.allclose(rate, firing_rates(info["mean"]), rtol=1e-5)
    flow = RealNVPMap.random(100, seed=0)
    assert torch.allclose(flow.forward(info["z"][:20].double()).float(), info["mean"][:20], atol=1e-4)
    assert bool((data.counts == data.counts.round()).all()) and float(data.counts.min()) >= 0
    assert abs(float(data.counts.mean()) - float(rate.mean())) < 0.05
    # Pseudo-trials: 4 samples ordered by angle, each in its quarter of the block's octant.
    u = info["u"].view(-1, 4).double()
    assert bool((u[:, 1:] > u[:, :-1]).all())
    block = torch.tensor(DIRECTION_BLOCKS, dtype=torch.float64)[data.direction.view(-1, 4)[:, 0]]
    low = 2 * math.pi / 8 * block
    sub = torch.floor((u - low[:, None]) / (2 * math.pi / 32))
    assert torch.equal(sub, torch.arange(4, dtype=torch.float64).expand_as(sub))
    # Direction index 0..3, angle 2 pi / 4 * index, zero velocity; every direction in both splits.
    trial_dir = data.direction[start]
    assert sorted(set(trial_dir.tolist())) == [0, 1, 2, 3]
    assert torch.allclose(data.angle, 2 * math.pi / 4 * data.direction.float())
    assert not data.velocity.any()
    for d in range(4):
        splits = data.split[start][trial_dir == d]
        n = len(splits)
        assert splits.tolist() == [0] * round(0.8 * n) + [2] * (n - round(0.8 * n))


def test_pseudo_trials_truncates_to_smallest_sub_bin():
    u = np.array([0.1, 0.3, 0.6, 0.9, 0.2, 0.35, 0.95, 0.05])  # sub-bins of [0, 1): 0,1,2,3,0,1,3,0
    rows = pseudo_trials(u, 0.0, 1.0, 4)
    assert rows.tolist() == [[0, 1, 2, 3]]  # sub-bin 2 has one sample


def test_swap_synthetic_determinism():
    a = swap_synthetic(n_samples=200, n_neurons=20)
    b = swap_synthetic(n_samples=200, n_neurons=20)
    c = swap_synthetic(n_samples=200, n_neurons=20, seed=1)
    assert torch.equal(a.counts, b.counts) and torch.equal(a.trial, b.trial)
    assert torch.equal(a.trial, c.trial)  # the angles depend only on data_seed
    assert not torch.equal(a.counts, c.counts)  # the RealNVP map depends on seed
