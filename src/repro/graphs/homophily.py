"""Label homophily of a graph given as a PyG ``edge_index`` and integer node labels ``y``.

Standard measures behind the homophilic / heterophilic split that the Half-Hop paper (Azabou et
al., ICML 2023) relies on; which one the paper's figures bin by was not checked in the PDF.

* edge homophily (Zhu et al. 2020): fraction of edges joining two nodes with the same label;
* node homophily (Pei et al. 2020): mean over nodes with at least one in-neighbour of the fraction
  of in-neighbours sharing the node's label;
* class-insensitive homophily (Lim et al. 2021): ``1/(C-1) sum_k max(0, h_k - |C_k|/N)``, with
  ``h_k`` the edge homophily of the edges entering class ``k``; about 0 when edges ignore labels.

Conventions: edges are taken as stored (directed; an undirected graph stored in both directions
gives the same values), duplicates count with their multiplicity, and self-loops are excluded
everywhere (a self-loop trivially joins equal labels and would inflate every measure). A graph with
no non-self-loop edges gives NaN, as :func:`repro.data.parsers.wordnet.edge_homophily` does for
its key/label-dict input.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["class_insensitive_homophily", "edge_homophily", "node_homophily"]


def edge_homophily(edge_index: Tensor, y: Tensor) -> float:
    """Fraction of non-self-loop edges whose endpoints share a label (NaN without such edges)."""
    src, dst = _proper_edges(edge_index, y)
    if src.numel() == 0:
        return float("nan")
    return (y[src] == y[dst]).double().mean().item()


def node_homophily(edge_index: Tensor, y: Tensor) -> float:
    """Mean over nodes with >= 1 in-neighbour of the same-label fraction of their in-neighbours."""
    same, degree = _in_counts(edge_index, y)
    has = degree > 0
    if not bool(has.any()):
        return float("nan")
    return (same[has] / degree[has]).mean().item()


def class_insensitive_homophily(edge_index: Tensor, y: Tensor, num_classes: int | None = None) -> float:
    """Lim et al. (2021) class-insensitive homophily in [0, 1] (NaN without non-self-loop edges).

    ``num_classes`` defaults to ``y.max() + 1``; labels must lie in ``[0, num_classes)`` and there
    must be at least two classes. A class that receives no edges contributes 0.
    """
    same, degree = _in_counts(edge_index, y)
    y = y.long()
    if y.numel() == 0:
        return float("nan")
    if int(y.min()) < 0:
        raise ValueError("class_insensitive_homophily: labels must be non-negative")
    num_classes = int(y.max()) + 1 if num_classes is None else int(num_classes)
    if num_classes < 2:
        raise ValueError(f"class_insensitive_homophily needs num_classes >= 2, got {num_classes}")
    if int(y.max()) >= num_classes:
        raise ValueError(f"labels go up to {int(y.max())}, beyond num_classes={num_classes}")
    if float(degree.sum()) == 0:
        return float("nan")
    same_k = torch.zeros(num_classes, dtype=torch.float64, device=y.device).index_add_(0, y, same)
    degree_k = torch.zeros_like(same_k).index_add_(0, y, degree)
    h_k = torch.where(degree_k > 0, same_k / degree_k.clamp(min=1), torch.zeros_like(same_k))
    share_k = torch.bincount(y, minlength=num_classes).double() / y.numel()
    return ((h_k - share_k).clamp(min=0).sum() / (num_classes - 1)).item()


def _in_counts(edge_index: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Per node: number of same-label in-neighbours and in-degree (float64, self-loops excluded)."""
    src, dst = _proper_edges(edge_index, y)
    zeros = torch.zeros(y.numel(), dtype=torch.float64, device=y.device)
    same = zeros.index_add(0, dst, (y[src] == y[dst]).double())
    degree = zeros.index_add(0, dst, torch.ones(dst.numel(), dtype=torch.float64, device=y.device))
    return same, degree


def _proper_edges(edge_index: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
    """Validate the inputs and return the sources and targets of the non-self-loop edges."""
    if not isinstance(y, Tensor) or y.dim() != 1:
        raise ValueError("y must be a 1-D tensor of node labels")
    if y.dtype == torch.bool or y.is_floating_point() or y.is_complex():
        raise ValueError(f"y must hold integer labels, got {y.dtype}")
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError("edge_index must be a tensor of shape [2, E]")
    if edge_index.dtype == torch.bool or edge_index.is_floating_point() or edge_index.is_complex():
        raise ValueError(f"edge_index must hold integer node ids, got {edge_index.dtype}")
    edge_index = edge_index.to(device=y.device, dtype=torch.long)
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= y.numel()):
        raise ValueError(f"edge_index has node ids outside [0, {y.numel()}) (one label per node)")
    src, dst = edge_index
    keep = src != dst
    return src[keep], dst[keep]
