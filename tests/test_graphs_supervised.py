"""Supervised Half-Hop training: models, original-node slicing, validation-based selection, sweeps."""

from __future__ import annotations

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.datasets import KarateClub
from torch_geometric.transforms import HalfHop

from repro.graphs import supervised
from repro.graphs.models import GCNEncoder, build_model, canonical_model_name, feature_dropout
from repro.graphs.supervised import (
    SWEEP_METRICS,
    apply_transform,
    split_masks,
    sweep_records,
    train_node_classifier,
)
from repro.report.rows import PROVENANCE_COLUMNS, tidy_rows, validate_table


def pyg_halfhop(alpha: float, p: float):
    """The brief's test wrapper around PyG's transform (``generator`` unused: PyG draws from the global RNG)."""
    return lambda d, g: HalfHop(alpha, p)(d.clone())


def easy_graph(per_class: int = 20, classes: int = 3, n_splits: int = 2, seed: int = 0) -> Data:
    """Homophilic graph with class-informative features and 2-D (train, val, test) masks (50/25/25)."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(per_class)
    n = y.numel()
    x = torch.nn.functional.one_hot(y, classes).float() + 0.3 * torch.randn(n, classes, generator=gen)
    x = torch.cat([x, torch.randn(n, 5, generator=gen)], dim=1)
    src, dst = torch.randint(0, n, (2, 6 * n), generator=gen)
    same = y[src] == y[dst]
    edge_index = torch.stack([src[same], dst[same]])
    edge_index = torch.cat([edge_index, edge_index.flip(0)], dim=1)
    masks = {k: torch.zeros(n, n_splits, dtype=torch.bool) for k in ("train_mask", "val_mask", "test_mask")}
    for s in range(n_splits):
        perm = torch.randperm(n, generator=gen)
        masks["train_mask"][perm[: n // 2], s] = True
        masks["val_mask"][perm[n // 2 : 3 * n // 4], s] = True
        masks["test_mask"][perm[3 * n // 4 :], s] = True
    return Data(x=x, edge_index=edge_index, y=y, **masks)


FAST = dict(epochs=40, lr=0.02, hidden=16, depth=2, dropout=0.2, heads=2, weight_decay=5e-4)


@pytest.mark.parametrize("name", ["GCN", "SAGE", "GraphSAGE", "GAT", "hh-gcn"])
@pytest.mark.parametrize("depth", [1, 3])
def test_build_model_shapes(name, depth):
    data = KarateClub()[0]
    model = build_model(name, data.num_features, 8, 4, depth=depth, dropout=0.1, heads=2)
    assert len(model.convs) == depth
    out = model(data.x, data.edge_index)
    assert out.shape == (data.num_nodes, 4)


def test_model_details_and_bad_names():
    sage = build_model("SAGE", 5, 8, 3)
    assert all(c.aggr == "mean" and c.root_weight for c in sage.convs)
    gat = build_model("GAT", 5, 8, 3, depth=2, heads=4)
    assert gat.convs[0].heads == 4 and gat.convs[1].in_channels == 32 and gat.convs[1].heads == 1
    assert canonical_model_name("HH-GraphSAGE") == "SAGE"
    with pytest.raises(ValueError, match="unknown model"):
        build_model("GIN", 5, 8, 3)
    with pytest.raises(ValueError, match="depth"):
        build_model("GCN", 5, 8, 3, depth=0)
    enc = GCNEncoder(5, (16, 8))
    assert enc(torch.randn(7, 5), torch.tensor([[0, 1, 2], [1, 2, 3]])).shape == (7, 8)


def test_feature_dropout_is_inverted_dropout():
    x = torch.full((400, 250), 3.0, requires_grad=True)
    assert feature_dropout(x, 0.5, training=False) is x
    assert feature_dropout(x, 0.0, training=True) is x
    torch.manual_seed(0)
    out = feature_dropout(x, 0.25, training=True)
    kept = out != 0
    # every entry is dropped or scaled by 1 / (1 - p); the kept share is near 1 - p (100,000 draws)
    assert torch.equal(out[kept], torch.full_like(out[kept], 4.0))
    assert abs(kept.float().mean().item() - 0.75) < 0.01
    out.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)  # d out / d x = mask / (1 - p)


def test_split_masks_columns():
    data = easy_graph(n_splits=3)
    for s in range(3):
        train, val, test = split_masks(data, s)
        assert torch.equal(train, data.train_mask[:, s]) and torch.equal(test, data.test_mask[:, s])
        assert not (train & val).any()
    with pytest.raises(IndexError):
        split_masks(data, 3)


@pytest.mark.parametrize("name", ["GCN", "SAGE", "GAT"])
def test_easy_graph_reaches_high_accuracy(name):
    result = train_node_classifier(easy_graph(), name, split=1, seed=0, **FAST)
    assert result["test_acc"] >= 0.9
    assert result["val_acc"] == max(result["history"]["val_acc"])
    assert result["num_nodes_model"] == result["num_nodes"]


def test_halfhop_uses_original_nodes_only(monkeypatch):
    data = easy_graph()
    n = data.num_nodes
    seen_inputs, seen_logits = [], []

    def transform(d, g):
        out = HalfHop(0.5, 1.0)(d.clone())
        seen_inputs.append(out.x.size(0))
        return out

    real_accuracy = supervised.accuracy

    def recording_accuracy(logits, y, mask):
        seen_logits.append(logits.size(0))
        return real_accuracy(logits, y, mask)

    monkeypatch.setattr(supervised, "accuracy", recording_accuracy)
    result = train_node_classifier(data, "GCN", transform=transform, seed=0, **FAST)
    n_up = n + int((data.edge_index[0] != data.edge_index[1]).sum())  # p = 1: one slow node per non-loop edge
    assert seen_inputs == [n_up] and result["num_nodes_model"] == n_up > n
    assert set(seen_logits) == {n}  # every metric on the N original rows
    assert result["halfhop"] and result["test_acc"] >= 0.85
    # the upsampled graph holds more tensors: the accounted memory grows
    base = train_node_classifier(data, "GCN", seed=0, **{**FAST, "epochs": 1})
    assert result["memory_source"] == base["memory_source"] == "tensor_accounting"
    assert result["peak_memory_bytes"] > base["peak_memory_bytes"] > data.x.numel() * 4


def test_transform_must_keep_original_nodes_first():
    data = easy_graph()

    def prepend(d, g):  # puts a new node in front: original rows move
        return Data(x=torch.cat([d.x[:1], d.x]), edge_index=d.edge_index + 1)

    with pytest.raises(ValueError, match="original nodes"):
        apply_transform(data, prepend, torch.Generator())


def test_test_accuracy_is_taken_at_best_validation_epoch():
    # Isolated nodes whose features give the class; test labels are shifted, so fitting the
    # train/val labels drives test accuracy down: max-over-test would differ from the protocol.
    gen = torch.Generator().manual_seed(1)
    c, per = 4, 15
    cls = torch.arange(c).repeat_interleave(per)
    n = cls.numel()
    x = torch.nn.functional.one_hot(cls, c).float() + 0.1 * torch.randn(n, c, generator=gen)
    role = torch.arange(n) % 3  # 0 train, 1 val, 2 test
    y = torch.where(role == 2, (cls + 1) % c, cls)
    data = Data(
        x=x,
        edge_index=torch.empty(2, 0, dtype=torch.long),
        y=y,
        train_mask=role == 0,
        val_mask=role == 1,
        test_mask=role == 2,
    )
    result = train_node_classifier(data, "GCN", epochs=60, lr=0.05, hidden=8, dropout=0.0, seed=3)
    hist = result["history"]
    best = hist["val_acc"].index(max(hist["val_acc"])) + 1  # first epoch with the best validation accuracy
    assert result["best_epoch"] == best
    assert result["test_acc"] == hist["test_acc"][best - 1]
    assert result["train_acc"] == hist["train_acc"][best - 1]
    assert result["val_acc"] == 1.0 and result["test_acc"] == 0.0
    assert max(hist["test_acc"]) > result["test_acc"]


def test_deterministic_under_seed():
    data = easy_graph()
    kw = dict(FAST, epochs=8, transform=pyg_halfhop(0.3, 0.5))
    a = train_node_classifier(data, "SAGE", seed=5, **kw)
    b = train_node_classifier(data, "SAGE", seed=5, **kw)
    c = train_node_classifier(data, "SAGE", seed=6, **kw)
    assert a["history"] == b["history"] and a["num_nodes_model"] == b["num_nodes_model"]
    assert a["history"]["loss"] != c["history"]["loss"]


def test_patience_stops_early():
    result = train_node_classifier(easy_graph(), "GCN", seed=0, patience=3, **{**FAST, "epochs": 200})
    assert result["epochs_run"] < 200 and result["epochs_run"] - result["best_epoch"] == 3


def test_sweep_rows():
    data = easy_graph()
    rows = sweep_records(
        data,
        ["GCN", "SAGE"],
        transform_factory=pyg_halfhop,
        alphas=[0.2, 0.8],
        ps=[1.0],
        splits=None,  # both stored splits
        seeds=[0],
        model_kwargs={"sage": {"lr": 0.05}},
        **{**FAST, "epochs": 3},
    )
    assert len(rows) == 2 * (1 + 2) * 2 * 1 * len(SWEEP_METRICS)
    keys = {"model", "method", "halfhop", "alpha", "p", "split", "seed", "metric", "value", "setting"}
    assert all(set(r) == keys for r in rows)
    assert {r["method"] for r in rows} == {"GCN", "HH-GCN", "SAGE", "HH-SAGE"}
    assert {(r["alpha"], r["p"]) for r in rows if r["halfhop"]} == {(0.2, 1.0), (0.8, 1.0)}
    assert all(r["alpha"] is None for r in rows if not r["halfhop"])
    assert {r["setting"]["lr"] for r in rows if r["model"] == "SAGE"} == {0.05}
    table = tidy_rows(
        rows, paper="halfhop", experiment="t", tier="test", provenance={c: "x" for c in PROVENANCE_COLUMNS}
    )
    validate_table(table)
