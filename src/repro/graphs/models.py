"""Node classifiers and the self-supervised encoder used in the Half-Hop experiments.

Half-Hop (Azabou et al., ICML 2023) leaves the model unchanged and only upsamples the
graph, so the supervised models here are plain PyG GCN, GraphSAGE and GAT stacks
(brief §1.3: HH-GCN, HH-SAGE, HH-GAT):

* ``GCN``: ``GCNConv`` layers (symmetric normalisation, self-loops added), ReLU.
* ``SAGE``: ``SAGEConv`` with mean aggregation and a separate root (self) weight, ReLU;
  the root weight is the only "component" PMC Table 7 lists for HH-SAGE.
* ``GAT``: ``GATConv`` with ``heads`` attention heads concatenated in the hidden layers
  (``hidden`` channels *per head*, as in the GAT paper and PyG's example), ELU, and a
  single-head output layer; attention coefficients get the same dropout as features.

``depth`` counts message-passing layers (the brief's Table 5 uses 2 or 3).  Dropout is
applied to the input of every layer.

``GCNEncoder`` is BGRL's encoder (``nerdslab/bgrl`` ``models.GCN``, brief §1.4): every
layer is GCNConv -> BatchNorm -> PReLU, including the last one, with BatchNorm momentum
0.99 as in BGRL (running statistics follow the latest full-graph batch).  ``Predictor``
is BGRL's MLP predictor (Linear -> PReLU -> Linear, hidden 512) and ``ProjectionHead``
GRACE's projection (Linear -> ELU -> Linear).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import BatchNorm, GATConv, GCNConv, SAGEConv

MODEL_NAMES = ("GCN", "SAGE", "GAT")
_ALIASES = {"gcn": "GCN", "sage": "SAGE", "graphsage": "SAGE", "gat": "GAT"}


def canonical_model_name(name: str) -> str:
    """Map ``gcn``/``GraphSAGE``/``sage``/``gat`` (any case, optional ``HH-`` prefix) to GCN/SAGE/GAT."""
    key = name.strip().lower().removeprefix("hh-")
    if key not in _ALIASES:
        raise ValueError(f"unknown model {name!r}; expected one of {', '.join(MODEL_NAMES)} (or GraphSAGE)")
    return _ALIASES[key]


def feature_dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout (``F.dropout``'s semantics: keep with probability ``1 - p``, scale by ``1 / (1 - p)``).

    On CPU the mask is drawn as ``rand >= p``, which measured about 3x faster than
    ``F.dropout`` on the 2-core machines of the default tier (torch 2.13, 0.35M to 1.2M
    elements), where ``F.dropout`` took most of a GCN epoch; elsewhere ``F.dropout`` is used.
    """
    if not training or p == 0.0:
        return x
    if x.device.type != "cpu":
        return F.dropout(x, p=p, training=True)
    keep = torch.rand_like(x) >= p
    return x * keep * (1.0 / (1.0 - p))


class NodeClassifier(nn.Module):
    """A stack of message-passing layers with dropout before each layer and an activation between layers."""

    def __init__(self, convs: Sequence[nn.Module], dropout: float, activation) -> None:
        super().__init__()
        self.convs = nn.ModuleList(convs)
        self.dropout = float(dropout)
        self.activation = activation

    def reset_parameters(self) -> None:
        for conv in self.convs:
            conv.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for i, conv in enumerate(self.convs):
            x = feature_dropout(x, self.dropout, self.training)
            x = conv(x, edge_index)
            if i < len(self.convs) - 1:
                x = self.activation(x)
        return x


def build_model(
    name: str,
    in_dim: int,
    hidden: int,
    out_dim: int,
    depth: int = 2,
    dropout: float = 0.5,
    heads: int = 8,
) -> NodeClassifier:
    """Build a GCN, GraphSAGE (``SAGE``) or GAT node classifier returning ``[num_nodes, out_dim]`` logits.

    ``depth`` is the number of message-passing layers (>= 1); with ``depth == 1`` the single
    layer maps ``in_dim`` to ``out_dim``.  ``heads`` is used by GAT only.
    """
    kind = canonical_model_name(name)
    if depth < 1:
        raise ValueError(f"depth must be >= 1, got {depth}")
    if hidden < 1 or in_dim < 1 or out_dim < 1:
        raise ValueError(f"dimensions must be positive, got in={in_dim} hidden={hidden} out={out_dim}")
    if not 0.0 <= dropout < 1.0:
        raise ValueError(f"dropout must be in [0, 1), got {dropout}")

    convs: list[nn.Module] = []
    if kind == "GAT":
        if heads < 1:
            raise ValueError(f"heads must be >= 1, got {heads}")
        width = in_dim
        for _ in range(depth - 1):
            convs.append(GATConv(width, hidden, heads=heads, concat=True, dropout=dropout))
            width = hidden * heads
        convs.append(GATConv(width, out_dim, heads=1, concat=False, dropout=dropout))
        return NodeClassifier(convs, dropout, F.elu)

    dims = [in_dim] + [hidden] * (depth - 1) + [out_dim]
    for a, b in zip(dims[:-1], dims[1:]):
        if kind == "GCN":
            convs.append(GCNConv(a, b))
        else:
            convs.append(SAGEConv(a, b, aggr="mean", root_weight=True))
    return NodeClassifier(convs, dropout, F.relu)


class GCNEncoder(nn.Module):
    """BGRL's GCN encoder: ``GCNConv -> BatchNorm -> PReLU`` for every size in ``layer_sizes``.

    ``batchnorm=False`` drops the BatchNorm (GRACE's original encoder has none).
    """

    def __init__(
        self,
        in_dim: int,
        layer_sizes: Sequence[int] = (256, 128),
        *,
        batchnorm: bool = True,
        batchnorm_momentum: float = 0.99,
    ) -> None:
        super().__init__()
        if not layer_sizes:
            raise ValueError("layer_sizes must name at least one layer")
        self.convs = nn.ModuleList()
        self.norms = nn.ModuleList()
        self.acts = nn.ModuleList()
        width = in_dim
        for size in layer_sizes:
            self.convs.append(GCNConv(width, int(size)))
            self.norms.append(BatchNorm(int(size), momentum=batchnorm_momentum) if batchnorm else nn.Identity())
            self.acts.append(nn.PReLU())
            width = int(size)
        self.out_dim = width

    def reset_parameters(self) -> None:
        for module in self.modules():
            if module is not self and hasattr(module, "reset_parameters"):
                module.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor) -> Tensor:
        for conv, norm, act in zip(self.convs, self.norms, self.acts):
            x = act(norm(conv(x, edge_index)))
        return x


class Predictor(nn.Module):
    """BGRL's predictor: ``Linear(d, hidden) -> PReLU -> Linear(hidden, d)`` (hidden 512)."""

    def __init__(self, dim: int, hidden: int = 512) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.PReLU(1), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class ProjectionHead(nn.Module):
    """GRACE's projection head: ``Linear(d, hidden) -> ELU -> Linear(hidden, d)``."""

    def __init__(self, dim: int, hidden: int = 128) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden)
        self.fc2 = nn.Linear(hidden, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(F.elu(self.fc1(x)))


def count_parameters(model: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def parameter_bytes(model: nn.Module) -> int:
    """Bytes held by the parameters and buffers of ``model``."""
    tensors = list(model.parameters()) + list(model.buffers())
    return sum(t.numel() * t.element_size() for t in tensors)


__all__ = [
    "MODEL_NAMES",
    "GCNEncoder",
    "NodeClassifier",
    "Predictor",
    "ProjectionHead",
    "build_model",
    "canonical_model_name",
    "count_parameters",
    "parameter_bytes",
]
