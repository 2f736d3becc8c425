"""Contextual stochastic block model (CSBM) with a target edge homophily, and random split masks.

A synthetic testbed for the Half-Hop claim (Azabou et al., ICML 2023) that upsampling helps most on
heterophilic graphs: sweep ``homophily`` at fixed size, degree and feature signal. The CSBM itself
is Deshpande et al. (2018); this is our own generator (PyG's ``StochasticBlockModelDataset`` breaks
with scikit-learn 1.9.1), sampled edge-sparsely so it scales to large graphs.

Model: ``n_classes`` balanced classes (sizes differ by at most one, placed at random node ids).
Each unordered pair of distinct nodes is an edge independently, with probability ``p_in`` inside a
class and ``p_out`` across classes, chosen so the expected number of edges is
``n_nodes * avg_degree / 2`` and the ratio of expected same-class to expected total edges is exactly
``homophily``. Edges are stored in both directions (sorted by source, then target), without
self-loops or duplicates. Features are ``x_v = mu_{y_v} + eps_v`` with ``eps_v ~ N(0, I)`` and class
means ``mu_c`` on independent random unit directions scaled to norm ``feature_signal``.

Defaults are our own choices (the paper does not use a CSBM): 32 features with signal 1.0.
:func:`random_split_masks` defaults to the 60/20/20 random splits the brief lists for the homophilic
supervised datasets (``shared/papers/ssl_graph_neural.md`` section 1.5).
"""

from __future__ import annotations

import numbers

import numpy as np
import torch
from torch import Tensor
from torch_geometric.data import Data

__all__ = ["contextual_sbm", "edge_probabilities", "random_split_masks"]

Seed = int | np.random.Generator | None


def contextual_sbm(
    n_nodes: int,
    n_classes: int,
    avg_degree: float,
    homophily: float,
    n_features: int = 32,
    feature_signal: float = 1.0,
    seed: Seed = None,
) -> Data:
    """Sample a CSBM graph: ``Data(x float32 [N, F], edge_index [2, 2M], y long [N])``."""
    _check_int("n_nodes", n_nodes, minimum=2)
    _check_int("n_classes", n_classes, minimum=2)
    _check_int("n_features", n_features, minimum=1)
    if n_classes > n_nodes:
        raise ValueError(f"n_classes={n_classes} exceeds n_nodes={n_nodes}")
    if not (_is_real(feature_signal) and np.isfinite(feature_signal) and feature_signal >= 0):
        raise ValueError(f"feature_signal must be a finite number >= 0, got {feature_signal!r}")
    sizes = _balanced_sizes(n_nodes, n_classes)
    p_in, p_out = edge_probabilities(sizes, avg_degree, homophily)
    rng = np.random.default_rng(seed)

    y = rng.permutation(np.repeat(np.arange(n_classes), sizes))
    members = [np.flatnonzero(y == k) for k in range(n_classes)]
    src, dst = _sample_edges(members, p_in, p_out, rng)
    x = _class_features(y, n_classes, n_features, feature_signal, rng)
    return Data(
        x=torch.from_numpy(x),
        edge_index=torch.from_numpy(_both_directions(src, dst, n_nodes)),
        y=torch.from_numpy(y).long(),
    )


def edge_probabilities(class_sizes: list[int] | np.ndarray, avg_degree: float, homophily: float) -> tuple[float, float]:
    """``(p_in, p_out)`` giving ``avg_degree`` expected degree and ``homophily`` expected edge homophily.

    With ``S`` same-class and ``D`` cross-class node pairs and ``M = N * avg_degree / 2`` expected
    edges: ``p_in = homophily * M / S`` and ``p_out = (1 - homophily) * M / D``. Raises ValueError
    when either exceeds 1 (graph too small or too dense for that homophily).
    """
    sizes = np.asarray(class_sizes, dtype=np.int64)
    if not (_is_real(avg_degree) and np.isfinite(avg_degree) and avg_degree > 0):
        raise ValueError(f"avg_degree must be a finite number > 0, got {avg_degree!r}")
    if not (_is_real(homophily) and 0.0 <= homophily <= 1.0):
        raise ValueError(f"homophily must be a number in [0, 1], got {homophily!r}")
    if sizes.ndim != 1 or sizes.size == 0 or (sizes < 0).any():
        raise ValueError(f"class_sizes must be a non-empty list of counts >= 0, got {class_sizes!r}")
    n = int(sizes.sum())
    same_pairs = int((sizes * (sizes - 1) // 2).sum())
    cross_pairs = (n * n - int((sizes * sizes).sum())) // 2
    expected_edges = n * avg_degree / 2
    p_in = _pair_probability(homophily * expected_edges, same_pairs)
    p_out = _pair_probability((1 - homophily) * expected_edges, cross_pairs)
    for kind, prob in (("within-class", p_in), ("cross-class", p_out)):
        if prob > 1:
            raise ValueError(
                f"avg_degree={avg_degree} with homophily={homophily} needs a {kind} edge probability "
                f"of {prob:.3g} > 1 for {n} nodes in {len(sizes)} classes; lower avg_degree"
            )
    return p_in, p_out


def random_split_masks(
    n: int, train: float = 0.6, val: float = 0.2, n_splits: int = 1, seed: Seed = None
) -> tuple[Tensor, Tensor, Tensor]:
    """Random train/val/test node masks, each bool ``[n, n_splits]``; disjoint and covering per split.

    Split sizes are ``round(train * n)``, ``round(val * n)`` (capped so they fit) and the rest for test.
    """
    _check_int("n", n, minimum=1)
    _check_int("n_splits", n_splits, minimum=1)
    if not (_is_real(train) and 0 < train <= 1):
        raise ValueError(f"train must be a fraction in (0, 1], got {train!r}")
    if not (_is_real(val) and 0 <= val < 1 and train + val <= 1 + 1e-12):
        raise ValueError(f"val must be a fraction in [0, 1) with train + val <= 1, got val={val!r}, train={train!r}")
    n_train = round(train * n)
    n_val = min(round(val * n), n - n_train)
    rng = np.random.default_rng(seed)
    masks = np.zeros((3, n, n_splits), dtype=bool)
    for split in range(n_splits):
        order = rng.permutation(n)
        masks[0, order[:n_train], split] = True
        masks[1, order[n_train : n_train + n_val], split] = True
        masks[2, order[n_train + n_val :], split] = True
    train_mask, val_mask, test_mask = (torch.from_numpy(m.copy()) for m in masks)
    return train_mask, val_mask, test_mask


# --------------------------------------------------------------------------- sampling helpers


def _sample_edges(
    members: list[np.ndarray], p_in: float, p_out: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges (one direction each) of the block model, block by block."""
    sources, targets = [], []
    for k, block in enumerate(members):
        i, j = _sample_within(block.size, p_in, rng)
        sources.append(block[i])
        targets.append(block[j])
        for other in members[k + 1 :]:
            i, j = _sample_between(block.size, other.size, p_out, rng)
            sources.append(block[i])
            targets.append(other[j])
    return np.concatenate(sources), np.concatenate(targets)


def _sample_within(size: int, prob: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each of the ``size * (size - 1) / 2`` pairs ``i < j`` independently with probability ``prob``.

    Equivalent to per-pair coin flips: draw the edge count from a binomial, then a uniform subset of
    pair ids of that size; memory is O(edges), not O(pairs).
    """
    pair_ids = _sample_pair_ids(size * (size - 1) // 2, prob, rng)
    return _triangle_pairs(pair_ids, size)


def _sample_between(rows: int, cols: int, prob: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each of the ``rows * cols`` pairs independently with probability ``prob``."""
    pair_ids = _sample_pair_ids(rows * cols, prob, rng)
    return pair_ids // cols, pair_ids % cols


def _sample_pair_ids(n_pairs: int, prob: float, rng: np.random.Generator) -> np.ndarray:
    if n_pairs == 0 or prob == 0:
        return np.zeros(0, dtype=np.int64)
    count = int(rng.binomial(n_pairs, prob))
    return rng.choice(n_pairs, size=count, replace=False).astype(np.int64)


def _pair_probability(expected_edges: float, n_pairs: int) -> float:
    """Per-pair edge probability for ``expected_edges`` over ``n_pairs`` pairs (inf if impossible)."""
    if expected_edges == 0:
        return 0.0
    return expected_edges / n_pairs if n_pairs else float("inf")


def _triangle_pairs(pair_ids: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Map ids ``0 .. size*(size-1)/2 - 1`` to pairs ``(i, j)``, ``i < j``, enumerated row by row."""
    t = np.asarray(pair_ids, dtype=np.int64)

    def row_start(i: np.ndarray) -> np.ndarray:  # id of pair (i, i + 1)
        return i * (2 * size - i - 1) // 2

    # Invert row_start(i) <= t with the quadratic formula, then fix float rounding by one step.
    b = 2 * size - 1
    i = np.floor((b - np.sqrt(np.maximum(b * b - 8.0 * t, 0.0))) / 2).astype(np.int64)
    i = np.clip(i, 0, max(size - 2, 0))
    i = np.where(row_start(i) > t, i - 1, i)
    i = np.where(row_start(i + 1) <= t, i + 1, i)
    return i, t - row_start(i) + i + 1


def _both_directions(src: np.ndarray, dst: np.ndarray, n_nodes: int) -> np.ndarray:
    """Stack ``src -> dst`` and ``dst -> src`` and sort by (source, target)."""
    rows = np.concatenate([src, dst]).astype(np.int64)
    cols = np.concatenate([dst, src]).astype(np.int64)
    order = np.argsort(rows * n_nodes + cols, kind="stable")
    return np.stack([rows[order], cols[order]])


def _class_features(
    y: np.ndarray, n_classes: int, n_features: int, signal: float, rng: np.random.Generator
) -> np.ndarray:
    """Gaussian features around class means of norm ``signal`` on random unit directions."""
    directions = rng.standard_normal((n_classes, n_features))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    noise = rng.standard_normal((y.size, n_features))
    return (signal * directions[y] + noise).astype(np.float32)


def _balanced_sizes(n_nodes: int, n_classes: int) -> np.ndarray:
    base, extra = divmod(n_nodes, n_classes)
    return np.array([base + (k < extra) for k in range(n_classes)], dtype=np.int64)


def _is_real(value: object) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and not np.isnan(value)


def _check_int(name: str, value: int, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
