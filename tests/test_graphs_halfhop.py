"""Half-Hop upsampling (PyG engine) and the memory-lean first layer."""

from __future__ import annotations

import pytest
import torch
import torch_geometric.transforms as T
from torch_geometric.data import Data
from torch_geometric.datasets import KarateClub
from torch_geometric.nn import GATConv, GCNConv, GINConv, SAGEConv

from repro.graphs.halfhop import (
    half_hop,
    half_hop_structure,
    lean_first_layer,
    lean_width,
    original_nodes,
    slow_feature_memory,
    slow_node_endpoints,
)


def triangle() -> Data:
    """3 nodes, self-loops on 0 and 1, and a directed cycle 0 -> 1 -> 2 -> 0."""
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]])
    edge_index = torch.tensor([[0, 0, 1, 1, 2], [0, 1, 1, 2, 0]])
    return Data(x=x, edge_index=edge_index, y=torch.tensor([0, 1, 1]))


def small_directed() -> Data:
    """5 nodes, no self-loops, asymmetric in-degrees (node 2 has three in-edges, node 0 none)."""
    edge_index = torch.tensor([[0, 0, 1, 3, 2, 4, 3], [1, 2, 2, 2, 3, 3, 4]])
    return Data(x=torch.arange(10.0).view(5, 2), edge_index=edge_index)


@pytest.fixture(scope="module")
def karate() -> Data:
    return KarateClub()[0]


def edge_set(edge_index: torch.Tensor) -> list[tuple[int, int]]:
    return sorted(map(tuple, edge_index.t().tolist()))


def test_triangle_exact_edges_and_features():
    out = half_hop(triangle(), alpha=0.5)
    # slow nodes 3, 4, 5 sit on 0->1, 1->2, 2->0; self-loops are kept and never half-hopped
    expected = [(0, 0), (1, 1), (0, 3), (1, 4), (2, 5), (3, 1), (4, 2), (5, 0), (1, 3), (2, 4), (0, 5)]
    assert out.edge_index.t().tolist() == [list(e) for e in expected]
    assert out.x.tolist() == [[1, 2], [3, 4], [5, 6], [2, 3], [4, 5], [3, 4]]
    assert out.slow_node_mask.tolist() == [False] * 3 + [True] * 3
    assert out.num_original_nodes == 3 and out.num_nodes == 6
    src, dst = slow_node_endpoints(out)
    assert src.tolist() == [0, 1, 2] and dst.tolist() == [1, 2, 0]


@pytest.mark.parametrize("p", [1.0, 0.7, 0.3])
@pytest.mark.parametrize("make", [triangle, small_directed])
def test_sizes_follow_the_definition(make, p):
    data = make()
    n, e = data.num_nodes, data.edge_index.size(1)
    n_self = int((data.edge_index[0] == data.edge_index[1]).sum())
    out = half_hop(data, p=p, generator=5)
    e_hh = int(out.slow_node_mask.sum())
    assert out.x.size(0) == n + e_hh
    assert out.edge_index.size(1) == (e - n_self - e_hh) + n_self + 3 * e_hh


@pytest.mark.parametrize("seed", range(4))
def test_each_half_hopped_edge_is_rewired_and_selection_is_per_target(seed):
    data = small_directed()
    out = half_hop(data, p=0.5, generator=seed)
    src, dst = slow_node_endpoints(out)
    n, edges = data.num_nodes, set(edge_set(out.edge_index))
    for k, (i, j) in enumerate(zip(src.tolist(), dst.tolist()), start=n):
        assert {(i, k), (k, j), (j, k)} <= edges
        assert (i, j) not in edges and (k, i) not in edges
    # all in-edges of a selected target are half-hopped, none of an unselected one
    kept_targets = {j for i, j in edges if i < n and j < n}
    assert kept_targets.isdisjoint(dst.tolist())
    assert len(edges) == out.edge_index.size(1)  # the small graph has no duplicate edges


def test_karate_full_upsampling(karate):
    out = half_hop(karate)
    assert out.num_nodes == 190 and out.edge_index.size(1) == 468
    assert torch.equal(out.x[:34], karate.x)


def test_global_rng_path_matches_pyg(karate):
    torch.manual_seed(0)
    ours = half_hop(karate, p=0.5)
    torch.manual_seed(0)
    pyg = T.HalfHop(p=0.5)(karate)
    assert (ours.num_nodes, ours.edge_index.size(1)) == (145, 378)  # the brief's check
    assert torch.equal(ours.edge_index, pyg.edge_index) and torch.equal(ours.x, pyg.x)


def test_alpha_limits(karate):
    for alpha, endpoint in ((1.0, 0), (0.0, 1)):
        out = half_hop(karate, alpha=alpha, p=0.6, generator=2)
        ends = slow_node_endpoints(out)[endpoint]
        assert torch.equal(out.x[out.slow_node_mask], karate.x[ends])


def test_interpolated_features(karate):
    x = torch.randn(34, 5)
    data = Data(x=x, edge_index=karate.edge_index)
    out = half_hop(data, alpha=0.3, p=0.8, generator=0)
    src, dst = slow_node_endpoints(out)
    torch.testing.assert_close(out.x[34:], 0.3 * x[src] + 0.7 * x[dst])


def test_p_zero_leaves_graph_unchanged(karate):
    out = half_hop(karate, p=0.0)
    assert torch.equal(out.x, karate.x) and torch.equal(out.edge_index, karate.edge_index)
    assert out.slow_node_mask.sum() == 0 and out.hh_src.numel() == 0
    # with self-loops the edge set is unchanged but PyG moves the self-loops to the end
    tri = half_hop(triangle(), p=0.0)
    assert edge_set(tri.edge_index) == edge_set(triangle().edge_index)
    assert tri.edge_index.t().tolist() == [[0, 1], [1, 2], [2, 0], [0, 0], [1, 1]]


def test_input_untouched_and_labels_masks_keep_length_n(karate):
    data = karate.clone()
    data.val_mask = torch.zeros(34, 3, dtype=torch.bool)  # 2-D [N, n_splits] masks
    before = data.clone()
    out = half_hop(data, p=0.7, generator=1)
    assert out.y.shape == (34,) and out.train_mask.shape == (34,) and out.val_mask.shape == (34, 3)
    assert torch.equal(out.x[:34], before.x)
    assert torch.equal(data.x, before.x) and torch.equal(data.edge_index, before.edge_index)
    assert "slow_node_mask" not in data
    logits = torch.randn(out.num_nodes, 4)
    assert torch.equal(original_nodes(logits, out), logits[~out.slow_node_mask])
    with pytest.raises(ValueError, match="rows"):
        original_nodes(logits[:34], out)


def test_explicit_num_nodes_is_updated(karate):
    data = Data(x=karate.x, edge_index=karate.edge_index, num_nodes=34)
    assert half_hop(data).num_nodes == 190


def test_determinism_under_a_seed(karate):
    global_state = torch.get_rng_state()
    a = half_hop(karate, p=0.5, generator=torch.Generator().manual_seed(7))
    b = half_hop(karate, p=0.5, generator=torch.Generator().manual_seed(7))
    c = half_hop(karate, p=0.5, generator=8)
    assert torch.equal(a.edge_index, b.edge_index) and torch.equal(a.x, b.x)
    assert not torch.equal(a.edge_index, c.edge_index)
    assert torch.equal(global_state, torch.get_rng_state())  # a private generator leaves the global RNG alone
    structure = half_hop_structure(karate.edge_index, 34, p=0.5, generator=torch.Generator().manual_seed(7))
    assert torch.equal(structure.edge_index, a.edge_index) and "x" not in structure
    assert structure.num_nodes == a.num_nodes


def test_rejects_edge_features_and_bad_arguments(karate):
    for key in ("edge_attr", "edge_weight"):
        data = karate.clone()
        data[key] = torch.ones(karate.edge_index.size(1))
        with pytest.raises(ValueError, match=key):
            half_hop(data)
    for name, kwargs in (("alpha", {"alpha": 1.5}), ("p", {"p": -0.1}), ("alpha", {"alpha": float("nan")})):
        with pytest.raises(ValueError, match=name):
            half_hop(karate, **kwargs)
    with pytest.raises(ValueError, match="outside"):
        half_hop_structure(torch.tensor([[0], [5]]), 3)


LEAN_CONVS = {
    "gcn": lambda: GCNConv(6, 5),
    "gcn_improved_no_loops": lambda: GCNConv(6, 5, improved=True, add_self_loops=False),
    "sage_mean": lambda: SAGEConv(6, 5),
    "sage_sum_normalised": lambda: SAGEConv(6, 5, aggr="add", normalize=True),
    "sage_no_root": lambda: SAGEConv(6, 5, root_weight=False),
    "gat_concat": lambda: GATConv(6, 4, heads=3),
    "gat_mean_residual": lambda: GATConv(6, 4, heads=2, concat=False, residual=True),
    "gat_separate_lins": lambda: GATConv((6, 6), 4, heads=2),
}


@pytest.mark.parametrize("name", sorted(LEAN_CONVS))
@pytest.mark.parametrize(("alpha", "p"), [(0.5, 1.0), (0.2, 0.6), (1.0, 0.4), (0.0, 1.0)])
def test_lean_first_layer_equals_materialised(karate, name, alpha, p):
    torch.manual_seed(0)
    conv = LEAN_CONVS[name]().double().eval()
    x = torch.randn(34, 6, dtype=torch.float64)
    # a self-loop on node 0 exercises the kept-self-loop branch
    edge_index = torch.cat([karate.edge_index, torch.tensor([[0], [0]])], dim=1)
    materialised = half_hop(Data(x=x, edge_index=edge_index), alpha=alpha, p=p, generator=3)
    expected = conv(materialised.x, materialised.edge_index)
    structure = half_hop_structure(edge_index, 34, alpha=alpha, p=p, generator=3)
    torch.testing.assert_close(lean_first_layer(conv, x, structure), expected)
    torch.testing.assert_close(lean_first_layer(conv, x, materialised), expected)


def test_lean_rejects_unsupported_layers(karate):
    graph = half_hop_structure(karate.edge_index, 34)
    x = torch.randn(34, 6)
    with pytest.raises(ValueError, match="project"):
        lean_first_layer(SAGEConv(6, 5, project=True), x, graph)
    with pytest.raises(ValueError, match="linear aggregation"):
        lean_first_layer(SAGEConv(6, 5, aggr="max"), x, graph)
    with pytest.raises(TypeError, match="GINConv"):
        lean_first_layer(GINConv(torch.nn.Linear(6, 5)), x, graph)
    with pytest.raises(ValueError, match="original rows"):
        lean_first_layer(GCNConv(6, 5), x[:10], graph)


def test_slow_feature_memory(karate):
    e_hh = int(half_hop_structure(karate.edge_index, 34).slow_node_mask.sum())
    report = slow_feature_memory(e_hh, 8415, GCNConv(8415, 256))
    assert report.materialised_bytes == e_hh * 8415 * 4 and report.lean_bytes == e_hh * 256 * 4
    assert report.ratio == pytest.approx(8415 / 256) and report.saved_bytes > 0
    assert lean_width(SAGEConv(10, 16)) == 32 and lean_width(GATConv(10, 8, heads=4)) == 32
    assert slow_feature_memory(10, 100, 20, dtype=torch.float64).lean_bytes == 10 * 20 * 8
