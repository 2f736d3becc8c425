"""Graph loaders of the default tier, on tiny fake resources written in the pipeline's formats."""

from __future__ import annotations

import re
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from repro.graphs.datasets import (
    GRAPH_NAMES,
    csbm_graph,
    drosophila_graph,
    graph_stats,
    load_graph,
    wordnet_graph,
)
from repro.graphs.stages import GRAPH_METRICS

ROOT = Path(__file__).resolve().parents[1]
STATS_KEYS = set(GRAPH_METRICS)  # the statistics the graph rule reports

# Fake WordNet: three 10-synset classes (lex_filenum 5, 18, 20), each a path; two cross-class
# edges join the paths; a 2-synset class 9 hangs off class 5; two synsets have no edge.
BIG = {5: "animal fur tail paws", 18: "person job city name", 20: "plant leaf flower root"}
TOPIC_WORDS = ["small", "large", "green", "old", "wild", "quiet", "bright", "heavy", "round", "sharp"]


def _key(lex: int, i: int) -> str:
    return f"n{lex:02d}{i:06d}"


def _fake_synsets() -> pd.DataFrame:
    rows = []
    for lex, words in BIG.items():
        for i in range(10):
            rows.append((_key(lex, i), "n", lex, f"a {TOPIC_WORDS[i]} {words.split()[i % 4]} with {words}"))
    rows += [(_key(9, i), "n", 9, f"a rare {TOPIC_WORDS[i]} thing") for i in range(2)]
    rows += [(_key(7, i), "n", 7, f"an isolated {TOPIC_WORDS[i]} idea") for i in range(2)]
    frame = pd.DataFrame(rows, columns=["key", "pos", "lex_filenum", "gloss"])
    frame["lexname"] = [f"noun.fake{lex}" for lex in frame.lex_filenum]
    frame["words"] = [[k] for k in frame.key]
    return frame[["key", "pos", "lex_filenum", "lexname", "words", "gloss"]]


def _fake_hypernym_edges() -> list[tuple[str, str]]:
    edges = [(_key(lex, i), _key(lex, i + 1)) for lex in BIG for i in range(9)]  # 27 same-class
    edges += [(_key(5, 0), _key(18, 0)), (_key(18, 0), _key(20, 0))]  # 2 cross-class
    edges += [(_key(5, 3), _key(9, 0)), (_key(9, 0), _key(9, 1))]  # the small class
    return edges


@pytest.fixture
def resources(tmp_path: Path) -> Path:
    wordnet = tmp_path / "wordnet"
    wordnet.mkdir()
    _fake_synsets().to_parquet(wordnet / "synsets.parquet", index=False)
    hyper = _fake_hypernym_edges() + [(_key(18, 1), _key(18, 0)), (_key(5, 1), _key(5, 1))]  # a repeat, a loop
    pd.DataFrame(hyper, columns=["source", "target"]).to_parquet(wordnet / "edges_hypernym.parquet", index=False)
    topic = [(_key(5, 0), _key(18, i)) for i in range(4)] + [(_key(20, 0), _key(18, i)) for i in range(4)]
    topic += [(_key(20, 0), _key(20, 1))]
    pd.DataFrame(topic, columns=["source", "target"]).to_parquet(wordnet / "edges_domain_topic.parquet", index=False)

    graphs = tmp_path / "graphs"
    graphs.mkdir()
    rng = np.random.default_rng(0)
    arrays = {}
    for side, n in (("left", 12), ("right", 13)):
        adj = rng.integers(0, 4, size=(n, n)) * (rng.random((n, n)) < 0.3)
        adj[0, 0] = 5  # a self-synapse, not an edge
        arrays[f"{side}_adjacency"] = adj.astype(np.float64)
        arrays[f"{side}_labels"] = np.array(list("IKOP" * 4)[:n])
    np.savez_compressed(graphs / "drosophila.npz", **arrays)
    return tmp_path


def _check_structure(data, n_splits: int = 1) -> None:
    n = data.num_nodes
    assert data.x.dtype == torch.float32 and data.x.shape[0] == n
    assert data.edge_index.dtype == torch.int64 and data.edge_index.shape[0] == 2
    assert data.y.dtype == torch.int64 and data.y.shape == (n,)
    assert sorted(torch.unique(data.y).tolist()) == list(range(len(data.class_names)))
    src, dst = data.edge_index
    assert not bool((src == dst).any())
    edges = set(map(tuple, data.edge_index.t().tolist()))
    assert len(edges) == data.edge_index.size(1)  # no duplicates
    assert edges == {(b, a) for a, b in edges}  # both directions
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.shape == (3, n, n_splits) and masks.dtype == torch.bool
    assert bool((masks.sum(0) == 1).all())  # disjoint and covering, per split
    assert set(data.stats) == STATS_KEYS and data.stats == graph_stats(data)


def _n_components(data) -> int:
    n = data.num_nodes
    src, dst = data.edge_index.numpy()
    return connected_components(coo_matrix((np.ones(src.size), (src, dst)), shape=(n, n)), directed=False)[0]


def test_wordnet_hypernym_remaps_labels_and_drops_small_classes(resources):
    data = wordnet_graph(resources, "hypernym", min_class_size=3, n_splits=3, seed=1)
    _check_structure(data, n_splits=3)
    assert data.name == "wordnet_hypernym"
    assert data.num_nodes == 30  # class 9 (2 nodes) dropped; class 7 has no edge
    assert data.class_names == ["noun.animal", "noun.person", "noun.plant"]  # lex 5, 18, 20 -> 0, 1, 2
    assert torch.bincount(data.y).tolist() == [10, 10, 10]
    lex_of = dict(zip(_fake_synsets().key, _fake_synsets().lex_filenum))
    assert [{5: 0, 18: 1, 20: 2}[lex_of[k]] for k in data.node_keys] == data.y.tolist()
    # Hand count: 27 same-class and 2 cross-class undirected edges remain.
    assert data.stats["edges"] == 58 and data.stats["edge_homophily"] == pytest.approx(27 / 29)
    assert data.stats["classes"] == 3 and _n_components(data) == 1

    kept = wordnet_graph(resources, "hypernym", min_class_size=1)
    assert kept.num_nodes == 32 and len(kept.class_names) == 4
    assert kept.stats["edges"] == 62 and kept.stats["edge_homophily"] == pytest.approx(28 / 31)


def test_wordnet_tfidf_features(resources):
    data = wordnet_graph(resources, "hypernym", min_class_size=3, n_features=8)
    assert data.x.shape == (30, 8) and bool((data.x >= 0).all())
    norms = torch.linalg.vector_norm(data.x, dim=1)
    assert bool((((norms - 1).abs() < 1e-5) | (norms == 0)).all())  # unit rows, or no kept term
    assert int((norms > 0).sum()) > 20
    # With room for every term: one column per distinct non-stop word of the kept glosses, all rows unit.
    full = wordnet_graph(resources, "hypernym", min_class_size=3)
    glosses = _fake_synsets().set_index("key").gloss[full.node_keys]
    vocabulary = {w for g in glosses for w in re.findall(r"(?u)\b\w\w+\b", g.lower())} - ENGLISH_STOP_WORDS
    assert full.x.shape == (30, len(vocabulary))
    assert torch.allclose(torch.linalg.vector_norm(full.x, dim=1), torch.ones(30))


def test_wordnet_domain_topic_is_heterophilic(resources):
    data = wordnet_graph(resources, "domain_topic", min_class_size=1)
    _check_structure(data)
    assert data.num_nodes == 7  # 5-0, 20-0, 20-1, 18-0..3
    assert data.stats["edge_homophily"] == pytest.approx(1 / 9)


def test_wordnet_max_nodes_sample(resources):
    one = wordnet_graph(resources, "hypernym", max_nodes=12, min_class_size=1, walkers=1, seed=3)
    _check_structure(one)
    assert one.num_nodes == 12 and _n_components(one) == 1
    many = wordnet_graph(resources, "hypernym", max_nodes=15, min_class_size=1, walkers=3, seed=3)
    _check_structure(many)
    assert many.num_nodes == 15
    assert bool((torch.bincount(many.edge_index[1], minlength=15) > 0).all())  # no edgeless node
    assert len(many.class_names) >= 3  # walks start in each of the three large classes
    dropped = wordnet_graph(resources, "hypernym", max_nodes=20, min_class_size=5, seed=3)
    assert dropped.num_nodes <= 20 and bool((torch.bincount(dropped.y) >= 5).all())
    whole = wordnet_graph(resources, "hypernym", max_nodes=1000, min_class_size=1)
    assert whole.num_nodes == 32


def test_seeded_determinism(resources):
    a = wordnet_graph(resources, "hypernym", max_nodes=15, min_class_size=1, seed=5)
    b = wordnet_graph(resources, "hypernym", max_nodes=15, min_class_size=1, seed=5)
    for key in ("x", "edge_index", "y", "train_mask", "val_mask", "test_mask"):
        assert torch.equal(a[key], b[key])
    assert a.node_keys == b.node_keys
    others = [wordnet_graph(resources, "hypernym", max_nodes=15, min_class_size=1, seed=s) for s in range(6, 10)]
    assert any(o.node_keys != a.node_keys for o in others)
    d1, d2 = drosophila_graph(resources, seed=0), drosophila_graph(resources, seed=1)
    assert torch.equal(d1.x, d2.x) and not torch.equal(d1.train_mask, d2.train_mask)


def test_drosophila(resources):
    data = drosophila_graph(resources, "left", n_splits=2)
    _check_structure(data, n_splits=2)
    assert data.name == "drosophila_left" and data.class_names == ["I", "K", "O", "P"]
    with np.load(resources / "graphs" / "drosophila.npz") as arrays:
        adj = arrays["left_adjacency"]
    expected = (adj > 0) | (adj.T > 0)
    np.fill_diagonal(expected, False)
    dense = np.zeros_like(expected)
    dense[tuple(data.edge_index.numpy())] = True
    assert np.array_equal(dense, expected)  # symmetrised, unweighted, no self-loop
    assert data.x.shape == (12, 9)
    assert torch.allclose(data.x.mean(0), torch.zeros(9), atol=1e-5)
    std = data.x.std(0, unbiased=False)
    assert bool((((std - 1).abs() < 1e-4) | (std == 0)).all())
    assert drosophila_graph(resources, "right").num_nodes == 13


def test_csbm_graph():
    data = csbm_graph(0.2, n_nodes=300, n_classes=3, avg_degree=6, n_features=8, n_splits=2, seed=4)
    _check_structure(data, n_splits=2)
    assert data.name == "csbm_h0.2" and data.x.shape == (300, 8)
    assert data.stats["edge_homophily"] == pytest.approx(0.2, abs=0.06)
    again = load_graph("csbm", None, {"homophily": 0.2, "n_nodes": 300, "n_classes": 3, "avg_degree": 6,
                                       "n_features": 8, "n_splits": 2, "seed": 4})  # fmt: skip
    assert torch.equal(again.edge_index, data.edge_index) and torch.equal(again.train_mask, data.train_mask)


def test_graph_stats_on_a_hand_made_graph():
    from torch_geometric.data import Data

    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    data = Data(x=torch.zeros(4, 3), edge_index=edge_index, y=torch.tensor([0, 0, 1, 1]))
    stats = graph_stats(data)
    assert stats["nodes"] == 4 and stats["edges"] == 6 and stats["classes"] == 2 and stats["features"] == 3
    assert stats["edge_homophily"] == pytest.approx(4 / 6)
    assert stats["node_homophily"] == pytest.approx((1 + 0.5 + 0.5 + 1) / 4)


def test_load_graph_dispatch(resources):
    assert set(GRAPH_NAMES) == {"wordnet_hypernym", "wordnet_domain_topic", "drosophila", "csbm", "pyg"}
    data = load_graph("wordnet_domain_topic", resources, {"min_class_size": 1})
    assert data.name == "wordnet_domain_topic"
    assert load_graph("drosophila", str(resources), {"side": "right"}).name == "drosophila_right"
    with pytest.raises(ValueError, match="known graphs: .*wordnet_hypernym.*csbm"):
        load_graph("cora", resources, {})
    with pytest.raises(ValueError, match="unknown option.*'kind'"):
        load_graph("wordnet_hypernym", resources, {"kind": "domain_topic"})
    with pytest.raises(ValueError, match="homophily"):
        load_graph("csbm", None, {})
    with pytest.raises(ValueError, match="resources_dir"):
        load_graph("drosophila", None, {})


@pytest.mark.parametrize("name", ["wordnet_hypernym", "wordnet_domain_topic", "drosophila"])
def test_missing_resources(tmp_path, name):
    with pytest.raises(FileNotFoundError, match=r"(synsets\.parquet|drosophila\.npz).*make data"):
        load_graph(name, tmp_path, {})


def test_missing_edge_file(resources):
    (resources / "wordnet" / "edges_domain_topic.parquet").unlink()
    with pytest.raises(FileNotFoundError, match=r"edges_domain_topic\.parquet.*make data"):
        wordnet_graph(resources, "domain_topic")


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda r: wordnet_graph(r, "meronym"), "kind"),
        (lambda r: wordnet_graph(r, max_nodes=1), "max_nodes"),
        (lambda r: wordnet_graph(r, max_nodes=10.5), "max_nodes"),
        (lambda r: wordnet_graph(r, min_class_size=0), "min_class_size"),
        (lambda r: wordnet_graph(r, n_features=0), "n_features"),
        (lambda r: wordnet_graph(r, walkers=0), "walkers"),
        (lambda r: wordnet_graph(r, n_splits=0), "n_splits"),
        (lambda r: wordnet_graph(r, seed=-1), "seed"),
        (lambda r: wordnet_graph(r, min_class_size=11), "min_class_size"),  # no class is that large
        (lambda r: drosophila_graph(r, "middle"), "side"),
        (lambda r: drosophila_graph(r, n_splits=True), "n_splits"),
        (lambda r: csbm_graph(1.5), "homophily"),
        (lambda r: csbm_graph(0.5, n_nodes=1), "n_nodes"),
        (lambda r: csbm_graph(0.5, seed=1.0), "seed"),
    ],
)
def test_bad_arguments_raise(resources, call, name):
    with pytest.raises(ValueError, match=name):
        call(resources)


@pytest.mark.skipif(
    not (ROOT / "resources" / "wordnet" / "synsets.parquet").is_file(), reason="needs `make data` (WordNet)"
)
def test_real_wordnet_homophily():
    start = time.perf_counter()
    topic = load_graph("wordnet_domain_topic", ROOT / "resources", {})
    hyper = load_graph("wordnet_hypernym", ROOT / "resources", {"max_nodes": 3000})
    elapsed = time.perf_counter() - start
    _check_structure(topic)
    _check_structure(hyper)
    assert topic.stats["edge_homophily"] < 0.3 and hyper.stats["edge_homophily"] > 0.8
    assert 2000 < hyper.num_nodes <= 3000 and hyper.stats["classes"] >= 5
    assert elapsed < 30
