"""Drosophila larva mushroom-body connectome (Eichler et al. 2017) as shipped in graspologic's datasets.

``graspologic/datasets/drosophila/{left,right}_adjacency.csv`` is a whitespace-separated square
matrix of synapse counts (row = presynaptic neuron, no header), and ``{left,right}_cell_labels.csv``
has one cell-type label per line (``K`` Kenyon cell, ``P`` projection, ``O`` output, ``I`` input),
in the same node order.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

SIDES = ("left", "right")


def read_drosophila(folder: Path, side: str = "left") -> tuple[np.ndarray, list[str]]:
    """Weighted directed adjacency (float64, ``A[i, j]`` synapses i -> j) and the cell labels."""
    if side not in SIDES:
        raise ValueError(f"side must be one of {SIDES}, got {side!r}")
    folder = Path(folder)
    adj_path, label_path = folder / f"{side}_adjacency.csv", folder / f"{side}_cell_labels.csv"
    rows = [line.split() for line in adj_path.read_text().splitlines() if line.strip()]
    if not rows or any(len(r) != len(rows) for r in rows):
        widths = sorted({len(r) for r in rows})
        raise ValueError(f"{adj_path}: not a square matrix ({len(rows)} rows, row lengths {widths})")
    try:
        adj = np.array(rows, dtype=np.float64)
    except ValueError as exc:
        raise ValueError(f"{adj_path}: non-numeric entry: {exc}") from exc
    if not np.isfinite(adj).all() or (adj < 0).any():
        raise ValueError(f"{adj_path}: synapse counts must be finite and non-negative")
    labels = [line.strip() for line in label_path.read_text().splitlines() if line.strip()]
    if len(labels) != adj.shape[0]:
        raise ValueError(f"{label_path}: {len(labels)} labels for a {adj.shape[0]}-node adjacency in {adj_path}")
    return adj, labels


def symmetrised_homophily(adj: np.ndarray, labels: list[str]) -> tuple[float, float]:
    """Edge and node homophily of the undirected, unweighted graph ``(A + A^T) > 0`` without self-loops.

    Edge homophily: fraction of undirected edges joining same-label nodes. Node homophily (Pei et
    al. 2020): mean over nodes with at least one neighbour of the fraction of neighbours sharing the
    node's label. NaN when the graph has no edges.
    """
    adj = np.asarray(adj)
    if adj.ndim != 2 or adj.shape[0] != adj.shape[1] or adj.shape[0] != len(labels):
        raise ValueError(f"adjacency of shape {adj.shape} does not match {len(labels)} labels")
    sym = (adj != 0) | (adj.T != 0)
    np.fill_diagonal(sym, False)
    codes = np.unique(np.asarray(labels), return_inverse=True)[1]
    same = codes[:, None] == codes[None, :]
    upper = np.triu(sym, k=1)
    n_edges = int(upper.sum())
    if n_edges == 0:
        return float("nan"), float("nan")
    edge = float((upper & same).sum() / n_edges)
    degree = sym.sum(axis=1)
    has = degree > 0
    node = float(((sym & same).sum(axis=1)[has] / degree[has]).mean())
    return edge, node
