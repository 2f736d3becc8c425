"""Contextual stochastic block model generator and random split masks."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from repro.graphs.csbm import _triangle_pairs, contextual_sbm, edge_probabilities, random_split_masks
from repro.graphs.homophily import edge_homophily


@pytest.mark.parametrize("target", [0.05, 0.1, 0.5, 0.9])
def test_hits_target_edge_homophily_and_degree(target):
    data = contextual_sbm(2000, 5, avg_degree=10, homophily=target, seed=0)
    assert edge_homophily(data.edge_index, data.y) == pytest.approx(target, abs=0.03)
    assert data.edge_index.size(1) / 2000 == pytest.approx(10, rel=0.05)


def test_structure_and_shapes():
    data = contextual_sbm(2003, 5, avg_degree=8, homophily=0.3, n_features=7, seed=1)
    assert data.x.shape == (2003, 7) and data.x.dtype == torch.float32 and data.y.dtype == torch.long
    counts = torch.bincount(data.y, minlength=5)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 2003
    src, dst = data.edge_index
    assert not bool((src == dst).any())
    edges = set(map(tuple, data.edge_index.t().tolist()))
    assert len(edges) == data.edge_index.size(1)  # no duplicates
    assert edges == {(b, a) for a, b in edges}  # both directions stored
    keys = src * 2003 + dst
    assert bool((keys[1:] > keys[:-1]).all())  # sorted by (source, target)


def test_features_carry_the_class_signal():
    strong = contextual_sbm(600, 3, avg_degree=4, homophily=0.5, n_features=16, feature_signal=6.0, seed=2)
    means = torch.stack([strong.x[strong.y == k].mean(0) for k in range(3)])
    assert torch.linalg.vector_norm(means, dim=1).numpy() == pytest.approx([6.0] * 3, rel=0.1)
    nearest = torch.cdist(strong.x, means).argmin(1)
    assert (nearest == strong.y).float().mean() > 0.95
    flat = contextual_sbm(600, 3, avg_degree=4, homophily=0.5, n_features=16, feature_signal=0.0, seed=2)
    assert flat.x.std().item() == pytest.approx(1.0, abs=0.05)


def test_seeded_determinism():
    a = contextual_sbm(500, 4, 6, 0.2, seed=3)
    b = contextual_sbm(500, 4, 6, 0.2, seed=np.random.default_rng(3))
    c = contextual_sbm(500, 4, 6, 0.2, seed=4)
    for key in ("x", "edge_index", "y"):
        assert torch.equal(a[key], b[key])
    assert not torch.equal(a.y, c.y)


def test_edge_probabilities_match_the_targets():
    sizes = [400, 400, 400, 400, 400]
    p_in, p_out = edge_probabilities(sizes, avg_degree=10, homophily=0.25)
    same, cross = 5 * 400 * 399 / 2, (2000**2 - 5 * 400**2) / 2
    assert p_in * same / (p_in * same + p_out * cross) == pytest.approx(0.25)
    assert p_in * same + p_out * cross == pytest.approx(2000 * 10 / 2)
    assert edge_probabilities(sizes, 10, 1.0)[1] == 0.0 and edge_probabilities(sizes, 10, 0.0)[0] == 0.0


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        ({"n_nodes": 1}, "n_nodes"),
        ({"n_nodes": 100.0}, "n_nodes"),
        ({"n_classes": 1}, "n_classes"),
        ({"n_classes": 200}, "n_classes"),
        ({"avg_degree": 0}, "avg_degree"),
        ({"avg_degree": float("inf")}, "avg_degree"),
        ({"homophily": 1.5}, "homophily"),
        ({"homophily": float("nan")}, "homophily"),
        ({"n_features": 0}, "n_features"),
        ({"feature_signal": -1.0}, "feature_signal"),
        ({"n_nodes": 20, "avg_degree": 15, "homophily": 0.9}, "avg_degree"),  # p_in would exceed 1
    ],
)
def test_bad_arguments_raise(kwargs, name):
    args = {"n_nodes": 100, "n_classes": 2, "avg_degree": 4, "homophily": 0.5} | kwargs
    with pytest.raises(ValueError, match=name):
        contextual_sbm(**args)


@pytest.mark.parametrize("size", range(8))
def test_triangle_pairs_enumerates_upper_triangle(size):
    i, j = _triangle_pairs(np.arange(size * (size - 1) // 2), size)
    assert list(zip(i.tolist(), j.tolist())) == list(itertools.combinations(range(size), 2))


def test_triangle_pairs_large_ids_are_valid():
    size = 3_000_001
    ids = np.array([0, 1, size - 2, size - 1, size * (size - 1) // 2 - 1])
    i, j = _triangle_pairs(ids, size)
    assert list(zip(i.tolist(), j.tolist())) == [(0, 1), (0, 2), (0, size - 1), (1, 2), (size - 2, size - 1)]


def test_split_masks_are_disjoint_and_cover():
    train, val, test = random_split_masks(1000, n_splits=4, seed=0)
    assert train.shape == val.shape == test.shape == (1000, 4) and train.dtype == torch.bool
    total = train.int() + val.int() + test.int()
    assert bool((total == 1).all())
    assert train.sum(0).tolist() == [600] * 4 and val.sum(0).tolist() == [200] * 4
    assert not torch.equal(train[:, 0], train[:, 1])
    again = random_split_masks(1000, n_splits=4, seed=0)
    assert all(torch.equal(a, b) for a, b in zip((train, val, test), again))


def test_split_masks_rounding_and_bad_fractions():
    train, val, test = random_split_masks(5, train=0.7, val=0.3, seed=1)
    assert (train.sum() + val.sum() + test.sum()).item() == 5 and bool((train | val | test).all())
    for kwargs, name in (({"train": 0.0}, "train"), ({"val": -0.1}, "val"), ({"train": 0.9, "val": 0.2}, "val")):
        with pytest.raises(ValueError, match=name):
            random_split_masks(10, **kwargs)
    with pytest.raises(ValueError, match="n_splits"):
        random_split_masks(10, n_splits=0)
