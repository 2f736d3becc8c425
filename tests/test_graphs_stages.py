"""Half-Hop stages on a tiny contextual SBM: record keys and counts, validation-based selection, cost variants."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch_geometric.data import Data

from repro.graphs import stages
from repro.graphs.csbm import contextual_sbm, random_split_masks
from repro.graphs.halfhop import half_hop, half_hop_structure
from repro.graphs.homophily import edge_homophily
from repro.graphs.models import build_model
from repro.graphs.supervised import SWEEP_METRICS
from repro.report.rows import PROVENANCE_COLUMNS, tidy_rows, validate_table

PROV = {c: "-" for c in PROVENANCE_COLUMNS}
RECORD_KEYS = {"method", "model", "dataset", "seed", "metric", "value", "setting"}
FAST = {"epochs": 2, "hidden": 8, "heads": 2, "device": "cpu"}


def tiny_graph(homophily: float = 0.2, n_splits: int = 2, features: int = 16) -> Data:
    data = contextual_sbm(48, 3, 4.0, homophily, n_features=features, seed=0)
    data.train_mask, data.val_mask, data.test_mask = random_split_masks(48, n_splits=n_splits, seed=0)
    return data


def check_table(records: list[dict], experiment: str) -> pd.DataFrame:
    """Records become a valid contract table (keys unique, settings JSON)."""
    for record in records:
        assert RECORD_KEYS <= set(record), set(record)
    table = tidy_rows(records, paper="halfhop", experiment=experiment, tier="test", provenance=PROV)
    return validate_table(table, experiment)


def test_graph_records():
    data = tiny_graph()
    rows = stages.graph_records(data, "tiny")
    stats = {r["metric"]: r["value"] for r in rows}
    assert set(stats) == set(stages.GRAPH_METRICS)
    assert {r["dataset"] for r in rows} == {"tiny"} and {r["method"] for r in rows} == {"graph"}
    assert stats["nodes"] == 48 and stats["classes"] == 3 and stats["features"] == 16
    assert stats["edge_homophily"] == pytest.approx(edge_homophily(data.edge_index, data.y))
    check_table(rows, "graphs")


def test_supervised_records_counts_and_selection():
    data = tiny_graph()
    options = {"models": ["GCN", "SAGE", "GAT"], "alphas": [0.0, 1.0], "ps": [1.0], "seeds": [0], **FAST}
    rows = stages.supervised_records(data, "tiny", options)
    sweep = [r for r in rows if not r["metric"].endswith("_selected")]
    selected = [r for r in rows if r["metric"].endswith("_selected")]
    # 3 models x (baseline + 2 Half-Hop configs) x 2 splits x 1 seed x every sweep metric
    assert len(sweep) == 3 * 3 * 2 * len(SWEEP_METRICS)
    # 3 models x (baseline + chosen config) x 2 splits x (test, val)
    assert len(selected) == 3 * 2 * 2 * 2
    assert {r["dataset"] for r in rows} == {"tiny"}
    for model in ("GCN", "SAGE", "GAT"):
        hh = [r for r in selected if r["method"] == f"HH-{model}"]
        assert len({(r["alpha"], r["p"]) for r in hh}) == 1  # one config per model, for every split
        pick = stages.select_by_validation([r for r in sweep if r["model"] == model])[model]
        assert (hh[0]["alpha"], hh[0]["p"]) == (pick["alpha"], pick["p"])
        assert all(r["setting"]["selection"] == "validation" for r in hh)
    check_table(rows, "supervised")


def sweep_row(model, hh, alpha, p, split, metric, value):
    return {
        "model": model,
        "method": f"HH-{model}" if hh else model,
        "halfhop": hh,
        "alpha": alpha if hh else None,
        "p": p if hh else None,
        "split": split,
        "seed": 0,
        "metric": metric,
        "value": value,
        "setting": {"halfhop": hh, "alpha": alpha if hh else None, "p": p if hh else None, "split": split},
    }


def test_selection_uses_validation_not_test():
    rows = []
    # config (0.0, 1.0): best validation, poor test; config (1.0, 0.5): poor validation, best test
    for split in (0, 1):
        rows += [sweep_row("GCN", False, None, None, split, "val_acc", 0.6)]
        rows += [sweep_row("GCN", False, None, None, split, "test_acc", 0.55)]
        rows += [sweep_row("GCN", True, 0.0, 1.0, split, "val_acc", 0.9 - 0.1 * split)]
        rows += [sweep_row("GCN", True, 0.0, 1.0, split, "test_acc", 0.2)]
        rows += [sweep_row("GCN", True, 1.0, 0.5, split, "val_acc", 0.7)]
        rows += [sweep_row("GCN", True, 1.0, 0.5, split, "test_acc", 0.99)]
    pick = stages.select_by_validation(rows)["GCN"]
    assert (pick["alpha"], pick["p"]) == (0.0, 1.0)
    assert pick["score"] == pytest.approx(0.85)
    selected = stages.selected_records(rows)
    hh_test = [r["value"] for r in selected if r["method"] == "HH-GCN" and r["metric"] == "test_acc_selected"]
    base_test = [r["value"] for r in selected if r["method"] == "GCN" and r["metric"] == "test_acc_selected"]
    assert hh_test == [0.2, 0.2] and base_test == [0.55, 0.55]


def test_selection_ties_and_nan():
    rows = [
        sweep_row("SAGE", True, 0.5, 1.0, 0, "val_acc", float("nan")),
        sweep_row("SAGE", True, 0.0, 1.0, 0, "val_acc", 0.4),
        sweep_row("SAGE", True, 1.0, 1.0, 0, "val_acc", 0.4),
    ]
    pick = stages.select_by_validation(rows)["SAGE"]
    assert (pick["alpha"], pick["p"]) == (0.0, 1.0)  # NaN loses, the tie goes to the first config


def test_first_layer_swap_matches_materialised():
    """Lean and halfhop_propagate first layers give the materialised HH-GCN's output (eval mode)."""
    data = tiny_graph(features=12)
    n = data.num_nodes
    torch.manual_seed(0)
    model = build_model("GCN", 12, 8, 3, depth=2, dropout=0.5).eval()
    full = half_hop(Data(x=data.x, edge_index=data.edge_index), 0.3, 0.7, generator=5)
    expected = model(full.x, full.edge_index)
    graph = half_hop_structure(data.edge_index, n, 0.3, 0.7, generator=5)
    for mode in ("lean", "propagate"):
        swapped = stages._FirstLayerSwap(model, graph, mode).eval()
        torch.testing.assert_close(swapped(data.x), expected, rtol=1e-4, atol=1e-5)


def test_cost_records():
    data = tiny_graph(features=32)
    rows = stages.cost_records(data, "tiny", {"epochs": 3, "hidden": 8, "device": "cpu"})
    by = {(r["method"], r["metric"]): r["value"] for r in rows}
    assert {r["method"] for r in rows} == set(stages.COST_VARIANTS)
    for variant in stages.COST_VARIANTS:
        assert by[(variant, "seconds_per_epoch")] > 0
        assert by[(variant, "peak_memory_bytes")] > 0
    nodes = {by[(v, "num_nodes_model")] for v in stages.COST_VARIANTS[1:]}
    assert len(nodes) == 1 and nodes.pop() > data.num_nodes  # the same upsampled graph (p = 1)
    assert by[("GCN", "num_nodes_model")] == data.num_nodes
    assert by[("HH-GCN-lean", "slow_feature_ratio")] == pytest.approx(32 / 8)  # F / H
    assert by[("HH-GCN", "slow_feature_bytes")] == 4 * by[("HH-GCN-lean", "slow_feature_bytes")]
    # the materialised graph stores E_hh x F inputs, more than the lean path's N x F + hidden rows
    assert by[("HH-GCN", "peak_memory_bytes")] > by[("HH-GCN-lean", "peak_memory_bytes")]
    assert all(r["setting"]["memory_source"] == "tensor_accounting" for r in rows)
    check_table(rows, "cost")


def test_cost_rejects_unknown_variant():
    with pytest.raises(ValueError, match="unknown cost variants"):
        stages.cost_records(tiny_graph(), "tiny", {"variants": ["GCN", "MLP"], "device": "cpu"})


def test_ssl_records_for():
    data = tiny_graph(n_splits=1)
    options = {
        "epochs": 2,
        "layer_sizes": [8, 4],
        "predictor_hidden": 8,
        "proj_hidden": 8,
        "probe_cs": [1.0],
        "device": "cpu",
    }
    rows = stages.ssl_records_for(data, "tiny", options)
    assert len(rows) == 2 * 4 * 1 * 6  # methods x augmentations x splits x SSL metrics
    assert {r["setting"]["augmentation"] for r in rows} == {"none", "drop", "halfhop", "drop+halfhop"}
    assert {r["method"] for r in rows} == {"BGRL", "GRACE"} and {r["dataset"] for r in rows} == {"tiny"}
    check_table(rows, "ssl")


def test_homophily_sweep_records():
    options = {
        "homophily": [0.1, 0.8],
        "n_nodes": 48,
        "n_classes": 3,
        "avg_degree": 4.0,
        "n_features": 8,
        "n_splits": 1,
        "alphas": [0.5],
        "ps": [1.0],
        **FAST,
    }
    rows = stages.homophily_sweep_records(options)
    assert {r["dataset"] for r in rows} == {"csbm_h0.1", "csbm_h0.8"}
    graph = {(r["dataset"], r["metric"]): r["value"] for r in rows if r["method"] == "graph"}
    assert graph[("csbm_h0.1", "target_homophily")] == 0.1
    assert graph[("csbm_h0.1", "edge_homophily")] < graph[("csbm_h0.8", "edge_homophily")]
    selected = [r for r in rows if r["metric"] == "test_acc_selected"]
    assert {r["method"] for r in selected} == {"GCN", "HH-GCN"}  # GCN only by default
    assert len(selected) == 2 * 2  # graphs x (baseline + chosen)
    assert all(math.isfinite(r["value"]) for r in rows)
    check_table(rows, "homophily_sweep")
