"""Half-Hop graph upsampling (Azabou et al., "Half-Hop: A graph upsampling approach for slowing
down message passing", ICML 2023) and a memory-lean first layer.

Reference path: :func:`half_hop` runs ``torch_geometric.transforms.HalfHop`` (the ecosystem's
implementation; the official ``nerdslab/halfhop`` transform crashes at its own default ``p=1``,
see the brief ``shared/papers/ssl_graph_neural.md`` section 1.2). For every non-self-loop edge
``i -> j`` whose target was selected, a slow node ``k`` is added with features
``alpha * x_i + (1 - alpha) * x_j``, and ``i -> j`` is replaced by ``i -> k``, ``k -> j``, ``j -> k``.
Selection is per *target node* with probability ``p`` (all in-edges of a selected node are
half-hopped), not per edge. Defaults ``alpha=0.5`` and ``p=1.0`` are those of PyG and of the
official transform (brief section 1.2); the paper searches both per dataset (section 1.4).

Output layout (PyG's order, relied on below): rows ``0..N-1`` of ``x`` are the original nodes,
rows ``N..N+E_hh-1`` the slow nodes in the order of the half-hopped edges; ``edge_index`` is
``[kept edges, self-loops, i->k (E_hh), k->j (E_hh), j->k (E_hh)]``. ``y`` and node masks keep
length ``N``: slice model outputs with :func:`original_nodes` before indexing them.

Lean path (brief section 5, "Avoiding the slow-node feature blow-up"): the first operation of GCN,
GraphSAGE and GAT layers is affine, and affine maps commute with interpolation whose weights sum to
one, ``W (a x_i + (1-a) x_j) + b = a (W x_i + b) + (1-a) (W x_j + b)``. :func:`lean_first_layer`
therefore applies the layer's linear map(s) to the ``N`` original rows, interpolates slow rows in
hidden space (``E_hh x H`` instead of ``E_hh x F``) and then runs the layer's own propagation on the
upsampled graph; :func:`half_hop_structure` builds that graph without touching features.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data
from torch_geometric.nn import GATConv, GCNConv, SAGEConv
from torch_geometric.nn.aggr import MeanAggregation, SumAggregation
from torch_geometric.nn.conv import MessagePassing
from torch_geometric.nn.conv.gcn_conv import gcn_norm
from torch_geometric.transforms import HalfHop
from torch_geometric.utils import add_self_loops, remove_self_loops

__all__ = [
    "SlowFeatureMemory",
    "half_hop",
    "half_hop_structure",
    "interpolate_hidden",
    "lean_first_layer",
    "lean_width",
    "original_nodes",
    "slow_feature_memory",
    "slow_node_endpoints",
]

RandomSource = torch.Generator | int | None


# --------------------------------------------------------------------------- upsampling


def half_hop(data: Data, alpha: float = 0.5, p: float = 1.0, generator: RandomSource = None) -> Data:
    """Half-Hop ``data`` with PyG's transform; ``data`` itself is not modified.

    The result carries ``x`` (``N + E_hh`` rows), ``edge_index``, ``slow_node_mask`` (bool),
    ``num_original_nodes = N``, ``hh_src`` / ``hh_dst`` (endpoints of the half-hopped edges, in
    slow-node order) and ``hh_alpha``. ``y``, masks and other node attributes keep length ``N``.

    ``generator`` (a ``torch.Generator`` or an int seed) makes ``p < 1`` reproducible without
    touching the global RNG; with ``None`` the global RNG is used exactly as PyG uses it, so
    ``torch.manual_seed(s); half_hop(d, p=q)`` equals ``torch.manual_seed(s); T.HalfHop(p=q)(d)``.
    """
    _check_fraction("alpha", alpha)
    _check_fraction("p", p)
    if data.edge_attr is not None or data.edge_weight is not None:
        raise ValueError("half_hop: 'edge_attr'/'edge_weight' are not supported (slow-node edges would have no values)")
    if not isinstance(data.x, Tensor) or data.x.dim() != 2:
        raise ValueError("half_hop: 'data.x' must be a 2-D node feature tensor")
    num_nodes = data.x.size(0)
    if data.num_nodes != num_nodes:
        raise ValueError(f"half_hop: data.num_nodes={data.num_nodes} but x has {num_nodes} rows")
    _check_edge_index(data.edge_index, num_nodes)
    with _seeded_global_rng(generator, data.x.device):
        out = HalfHop(alpha=alpha, p=p)(data)
    return _annotate(out, num_nodes, alpha)


def half_hop_structure(
    edge_index: Tensor, num_nodes: int, alpha: float = 0.5, p: float = 1.0, generator: RandomSource = None
) -> Data:
    """The upsampled graph of :func:`half_hop` without any node features (for the lean path).

    Runs the same engine on zero-width features, so under the same ``generator`` (or the same
    global RNG state) it returns the same ``edge_index``/``slow_node_mask``/``hh_src``/``hh_dst``
    as :func:`half_hop`. The result has no ``x``; ``num_nodes`` is ``N + E_hh``.
    """
    _check_edge_index(edge_index, num_nodes)
    shell = Data(x=edge_index.new_empty((num_nodes, 0), dtype=torch.float32), edge_index=edge_index)
    graph = half_hop(shell, alpha=alpha, p=p, generator=generator)
    total = graph.x.size(0)
    del graph.x
    graph.num_nodes = total
    return graph


def slow_node_endpoints(graph: Data) -> tuple[Tensor, Tensor]:
    """``(hh_src, hh_dst)``: source and target of the edge each slow node was inserted into."""
    if not hasattr(graph, "hh_src") or not hasattr(graph, "hh_dst"):
        raise ValueError("graph was not produced by half_hop/half_hop_structure (no hh_src/hh_dst)")
    return graph.hh_src, graph.hh_dst


def original_nodes(out: Tensor, graph: Data) -> Tensor:
    """Rows of a model output that belong to original nodes (the first ``N``; slow nodes dropped)."""
    n, total = int(graph.num_original_nodes), int(graph.slow_node_mask.numel())
    if out.size(0) != total:
        raise ValueError(f"output has {out.size(0)} rows, the half-hopped graph has {total} nodes")
    return out[:n]


def _annotate(out: Data, num_nodes: int, alpha: float) -> Data:
    """Record N, alpha and the half-hopped endpoints; read them off PyG's edge layout."""
    num_slow = int(out.slow_node_mask.sum())
    tail = out.edge_index[:, out.edge_index.size(1) - 3 * num_slow :]
    into_slow, out_of_slow = tail[:, :num_slow], tail[:, num_slow : 2 * num_slow]
    slow_ids = torch.arange(num_nodes, num_nodes + num_slow, device=tail.device)
    # Guard against a change of PyG's edge order, which the lean path depends on.
    if not (torch.equal(into_slow[1], slow_ids) and torch.equal(out_of_slow[0], slow_ids)):
        raise RuntimeError("unexpected edge order from torch_geometric.transforms.HalfHop")
    out.hh_src, out.hh_dst = into_slow[0].clone(), out_of_slow[1].clone()
    out.num_original_nodes = num_nodes
    out.hh_alpha = float(alpha)
    if "num_nodes" in out._store:  # an explicit count of N would now be stale
        out.num_nodes = out.x.size(0)
    return out


@contextmanager
def _seeded_global_rng(generator: RandomSource, device: torch.device) -> Iterator[None]:
    """Run the body with the global RNG of ``device`` reseeded from ``generator``, then restore it.

    PyG's transform draws ``torch.rand(N, device=x.device)`` from the global RNG; reseeding a
    forked copy of it is how a private generator is honoured. ``None`` leaves the RNG alone.
    """
    if generator is None:
        yield
        return
    if isinstance(generator, torch.Generator):
        seed = int(torch.randint(0, 2**62, (), generator=generator, device=generator.device))
    else:
        seed = int(generator)
    if device.type == "cpu":
        with torch.random.fork_rng(devices=[]):
            torch.default_generator.manual_seed(seed)
            yield
    elif device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        with torch.random.fork_rng(devices=[index], device_type="cuda"):
            torch.cuda.default_generators[index].manual_seed(seed)
            yield
    else:
        raise ValueError(f"half_hop: a generator is only supported for cpu/cuda tensors, not {device.type}")


def _check_fraction(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def _check_edge_index(edge_index: Tensor, num_nodes: int) -> None:
    if not isinstance(edge_index, Tensor) or edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError("edge_index must be a tensor of shape [2, E]")
    if edge_index.dtype != torch.long:
        raise ValueError(f"edge_index must be int64, got {edge_index.dtype}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= num_nodes):
        raise ValueError(f"edge_index has node ids outside [0, {num_nodes})")


# --------------------------------------------------------------------------- lean first layer


def interpolate_hidden(h: Tensor, graph: Data, alpha: float | None = None) -> Tensor:
    """Append slow rows ``alpha * h[hh_src] + (1 - alpha) * h[hh_dst]`` to per-node rows ``h`` (N x H)."""
    src, dst = slow_node_endpoints(graph)
    alpha = graph.hh_alpha if alpha is None else alpha
    _check_fraction("alpha", alpha)
    if h.size(0) != int(graph.num_original_nodes):
        raise ValueError(f"expected {int(graph.num_original_nodes)} original rows, got {h.size(0)}")
    # Same expression and operand order as PyG's transform, for near bit-identical results.
    return torch.cat([h, alpha * h[src] + (1 - alpha) * h[dst]], dim=0)


def lean_first_layer(conv: MessagePassing, x: Tensor, graph: Data, alpha: float | None = None) -> Tensor:
    """Run ``conv`` on the half-hopped graph from the ORIGINAL features ``x`` (N x F).

    Equals ``conv(half_hop(data).x, half_hop(data).edge_index)`` (all ``N + E_hh`` rows) up to
    float rounding, without building the ``E_hh x F`` slow-node feature matrix. ``graph`` comes
    from :func:`half_hop_structure` or :func:`half_hop`; ``alpha`` defaults to the one it was built
    with. Supports ``GCNConv``, ``SAGEConv`` (mean/sum aggregation, no ``project``) and ``GATConv``
    (no edge features); only plain ``edge_index`` tensors.
    """
    if x.dim() != 2:
        raise ValueError("x must be a 2-D node feature tensor")
    if isinstance(conv, GCNConv):
        return _lean_gcn(conv, x, graph, alpha)
    if isinstance(conv, SAGEConv):
        return _lean_sage(conv, x, graph, alpha)
    if isinstance(conv, GATConv):
        return _lean_gat(conv, x, graph, alpha)
    raise TypeError(f"lean_first_layer supports GCNConv, SAGEConv and GATConv, not {type(conv).__name__}")


def _lean_gcn(conv: GCNConv, x: Tensor, graph: Data, alpha: float | None) -> Tensor:
    """GCNConv.forward with ``lin`` applied before upsampling (normalisation on the upsampled graph)."""
    h = interpolate_hidden(conv.lin(x), graph, alpha)
    edge_index, edge_weight = graph.edge_index, None
    if conv.normalize:
        if conv._cached_edge_index is not None:
            edge_index, edge_weight = conv._cached_edge_index
        else:
            edge_index, edge_weight = gcn_norm(
                edge_index, None, h.size(0), conv.improved, conv.add_self_loops, conv.flow, x.dtype
            )
            if conv.cached:
                conv._cached_edge_index = (edge_index, edge_weight)
    out = conv.propagate(edge_index, x=h, edge_weight=edge_weight)
    return out if conv.bias is None else out + conv.bias


def _lean_sage(conv: SAGEConv, x: Tensor, graph: Data, alpha: float | None) -> Tensor:
    """SAGEConv.forward with ``lin_l`` moved before the (linear) aggregation and its bias after it.

    The bias must stay after aggregation: a node without in-neighbours aggregates to zero and then
    gets ``lin_l(0) = bias``; a sum aggregation would also multiply a pre-added bias by the degree.
    """
    if conv.project:
        raise ValueError("lean SAGEConv: project=True applies a ReLU before aggregation, which is not linear")
    if not isinstance(conv.aggr_module, MeanAggregation | SumAggregation):
        raise ValueError(f"lean SAGEConv needs a linear aggregation (mean or sum), got {conv.aggr!r}")
    h = interpolate_hidden(F.linear(x, conv.lin_l.weight), graph, alpha)
    out = conv.propagate(graph.edge_index, x=(h, h), size=None)
    if conv.lin_l.bias is not None:
        out = out + conv.lin_l.bias
    if conv.root_weight:
        out = out + interpolate_hidden(conv.lin_r(x), graph, alpha)
    if conv.normalize:
        out = F.normalize(out, p=2.0, dim=-1)
    return out


def _lean_gat(conv: GATConv, x: Tensor, graph: Data, alpha: float | None) -> Tensor:
    """GATConv.forward for a single feature tensor, with ``lin`` (or ``lin_src``/``lin_dst``) and
    the residual ``res`` applied before upsampling; attention is computed on the upsampled rows."""
    if conv.lin_edge is not None:
        raise ValueError("lean GATConv: edge features (edge_dim) are not supported on half-hopped graphs")
    heads, channels = conv.heads, conv.out_channels
    if conv.lin is not None:
        x_src = x_dst = interpolate_hidden(conv.lin(x), graph, alpha).view(-1, heads, channels)
    else:
        x_src = interpolate_hidden(conv.lin_src(x), graph, alpha).view(-1, heads, channels)
        x_dst = interpolate_hidden(conv.lin_dst(x), graph, alpha).view(-1, heads, channels)
    logits = ((x_src * conv.att_src).sum(dim=-1), (x_dst * conv.att_dst).sum(dim=-1))
    edge_index = graph.edge_index
    if conv.add_self_loops:
        edge_index, _ = remove_self_loops(edge_index)
        edge_index, _ = add_self_loops(edge_index, num_nodes=x_src.size(0))
    attention = conv.edge_updater(edge_index, alpha=logits, edge_attr=None, size=None)
    out = conv.propagate(edge_index, x=(x_src, x_dst), alpha=attention, size=None)
    out = out.view(-1, heads * channels) if conv.concat else out.mean(dim=1)
    if conv.res is not None:
        out = out + interpolate_hidden(conv.res(x), graph, alpha)
    return out if conv.bias is None else out + conv.bias


# --------------------------------------------------------------------------- memory accounting


@dataclass(frozen=True)
class SlowFeatureMemory:
    """Bytes of slow-node rows: input features (materialised path) vs hidden rows (lean path)."""

    num_slow_nodes: int
    materialised_bytes: int
    lean_bytes: int

    @property
    def saved_bytes(self) -> int:
        return self.materialised_bytes - self.lean_bytes

    @property
    def ratio(self) -> float:
        """``materialised / lean`` (about F/H); ``inf`` when the lean path stores nothing."""
        return self.materialised_bytes / self.lean_bytes if self.lean_bytes else math.inf


def lean_width(conv: MessagePassing) -> int:
    """Per-slow-node width of the hidden rows :func:`lean_first_layer` interpolates for ``conv``."""
    if isinstance(conv, GCNConv):
        return conv.out_channels
    if isinstance(conv, SAGEConv):
        return conv.out_channels * (2 if conv.root_weight else 1)
    if isinstance(conv, GATConv):
        width = conv.heads * conv.out_channels * (1 if conv.lin is not None else 2)
        return width + (conv.res.out_channels if conv.res is not None else 0)
    raise TypeError(f"no lean path for {type(conv).__name__}")


def slow_feature_memory(
    num_slow_nodes: int, in_features: int, width: int | MessagePassing, dtype: torch.dtype = torch.float32
) -> SlowFeatureMemory:
    """Memory of the slow-node rows: ``E_hh x F`` materialised vs ``E_hh x H`` lean.

    ``width`` is the lean hidden width ``H`` or a supported conv (see :func:`lean_width`). This
    counts only the slow-node feature/hidden matrix; message tensors of the propagation
    (``3 E_hh`` edges of width ``H``) are the same on both paths.
    """
    hidden = lean_width(width) if isinstance(width, MessagePassing) else int(width)
    for name, value in (("num_slow_nodes", num_slow_nodes), ("in_features", in_features), ("width", hidden)):
        if value < 0:
            raise ValueError(f"{name} must be non-negative, got {value}")
    item = dtype.itemsize
    return SlowFeatureMemory(num_slow_nodes, num_slow_nodes * in_features * item, num_slow_nodes * hidden * item)
