"""Node-classification graphs of the default tier for the Half-Hop experiments.

Every loader returns a ``torch_geometric.data.Data`` with ``x`` (float32 ``[N, F]``),
``edge_index`` (int64 ``[2, E]``: undirected graph, both directions stored, sorted by
(source, target), no self-loops, no duplicates), ``y`` (int64 labels ``0 .. C-1``),
``train_mask``/``val_mask``/``test_mask`` (bool ``[N, n_splits]``, 60/20/20 random splits from
:func:`repro.graphs.csbm.random_split_masks`), ``name``, ``class_names`` and ``stats``
(:func:`graph_stats`). Graphs are undirected because Half-Hop is applied here to GCN, GraphSAGE
and GAT with undirected message passing: each undirected edge yields two directed edges, and so
two slow nodes.

Graphs (prepared by ``make data`` under ``resources/``; see :mod:`repro.data.graphs`):

* ``wordnet_hypernym`` / ``wordnet_domain_topic`` (WordNet 3.0, Debian ``wordnet-base``;
  ``resources/wordnet/*.parquet``). Nodes are the synsets incident to at least one edge of the
  chosen pointer kind; the label is the synset's supersense (``lex_filenum``, the lexicographer
  file, e.g. ``noun.animal``), remapped to ``0 .. C-1`` in increasing ``lex_filenum`` order.
  Features are the TF-IDF of the gloss (sublinear tf, English stop words, the ``n_features`` most
  frequent terms, L2-normalised rows), fitted on the glosses of the returned nodes only, as
  Cora's bag-of-words is (a gloss with no kept term gives a zero row). Hypernym/hyponym edges are
  homophilic (edge homophily 0.95 on the 95,657-node graph); domain-topic edges (6,826 nodes)
  join a topic such as ``law`` to terms of other supersenses and are heterophilic (0.12).
* ``drosophila`` (larval mushroom-body connectome, Eichler et al. 2017, from the graspologic
  wheel; ``resources/graphs/drosophila.npz``): 209 (left) or 213 (right) neurons, four cell types
  (I input, K Kenyon, O output, P projection). The directed synapse-count matrix is symmetrised
  and binarised (edge ``i - j`` when either neuron synapses onto the other). The data has no node
  features, so each node gets 9 structural ones, standardised to zero mean and unit variance
  (constant columns become 0): ``log1p`` of in-degree, out-degree, in-strength and out-strength
  (synapse counts) of the directed graph, and the random-walk return probabilities
  ``(D^-1 A)^k_ii`` for k = 2..6 on the symmetrised graph. Return probabilities are used instead
  of Laplacian eigenvectors because they are permutation-equivariant without any sign or basis
  ambiguity.
* ``pyg`` (paper tier): a ``torch_geometric.datasets`` class whose raw files the download rule
  stored under ``resources/artifacts/<artifact>`` (Cora ... WikiCS); see
  :mod:`repro.graphs.pyg_graphs` for the splits and edge conventions, which differ from the
  undirected graphs above (published edges are kept as they are).
* ``csbm``: the project's contextual stochastic block model (:mod:`repro.graphs.csbm`) with a
  target edge homophily, for the homophily sweep. The defaults (2,000 nodes, 5 classes, average
  degree 10, 32 features, signal 1.0) are ours.

Choices shared by the WordNet graphs.

* ``min_class_size`` (default 20): classes with fewer nodes *in the returned graph* are
  dropped with their edges, then nodes left without edges are dropped, repeated until stable
  (a class of a handful of nodes gives a split of zero or one node per mask). On the whole
  hypernym graph no class is that small; on the domain-topic graph 9 of 45 are.
* ``max_nodes``: the whole hypernym graph (95,657 nodes) is too large for the CPU default tier,
  so a seeded random-walk sample is taken. The taxonomy is nearly a tree (mean degree 2.04)
  whose supersenses meet only near its top, so in our trials one connected sample of 3,000 nodes
  (a single random walk, or breadth-first from a random node) kept 3 to 12 classes of 20+ nodes,
  varying greatly with the seed, and one grown from the root ``entity`` kept the class-mixing top
  of the taxonomy (edge homophily 0.70). The sample is therefore the union of ``walkers`` simple
  random walks (default 8), walk ``i`` started at a random node of the ``i``-th largest class;
  ``max_nodes`` is cut into equal shares, one per walk, and a share a walk cannot fill passes to
  the next. The walks visit exactly ``max_nodes`` distinct nodes and the graph is the subgraph
  they induce: each walk is connected, the union has a few pieces. Dropping small classes
  afterwards can split it further (their nodes are mostly the ``noun.Tops`` hubs that join
  supersenses) and leaves at most ``max_nodes`` nodes. Measured with ``max_nodes=3000`` and the
  defaults, seeds 0..4: 2,919 to 2,963 nodes, 10 to 14 classes, edge homophily 0.98 to 0.99;
  before the class drop the walk samples have 0.96 to 0.97 (seeds 0..2), close to the whole
  graph's 0.95, so the increase comes from dropping the rare classes of the hubs.
  ``walkers=1`` with ``min_class_size=1`` gives one connected sample of exactly ``max_nodes``
  (when the start node's component is that large). We suggest ``max_nodes=3000`` for the
  default tier (load time about 0.3 s).
* ``seed`` fixes the sample and the splits (two independent streams of
  ``numpy.random.SeedSequence(seed)``); use ``n_splits`` for several splits of one graph.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import connected_components
from sklearn.feature_extraction.text import TfidfVectorizer
from torch_geometric.data import Data

from repro.data.parsers.wordnet import LEXNAMES
from repro.graphs.csbm import contextual_sbm, random_split_masks
from repro.graphs.homophily import class_insensitive_homophily, edge_homophily, node_homophily
from repro.graphs.pyg_graphs import pyg_graph

__all__ = [
    "DROSOPHILA_SIDES",
    "GRAPH_NAMES",
    "WORDNET_KINDS",
    "csbm_graph",
    "drosophila_graph",
    "graph_stats",
    "load_graph",
    "wordnet_graph",
]

WORDNET_KINDS = ("hypernym", "domain_topic")
DROSOPHILA_SIDES = ("left", "right")
GRAPH_NAMES = ("wordnet_hypernym", "wordnet_domain_topic", "drosophila", "csbm", "pyg")
RANDOM_WALK_STEPS = (2, 3, 4, 5, 6)  # return-probability features of the connectome

_SYNSETS = Path("wordnet") / "synsets.parquet"
_CONNECTOME = Path("graphs") / "drosophila.npz"


def _wordnet_edges_file(kind: str) -> Path:
    return Path("wordnet") / f"edges_{kind}.parquet"


# --------------------------------------------------------------------------- loaders


def wordnet_graph(
    resources_dir: str | Path,
    kind: str = "hypernym",
    *,
    max_nodes: int | None = None,
    min_class_size: int = 20,
    n_features: int = 500,
    walkers: int = 8,
    n_splits: int = 1,
    seed: int = 0,
) -> Data:
    """WordNet synsets joined by ``kind`` edges, labelled by supersense, with gloss TF-IDF features.

    ``max_nodes`` (None: the whole graph) takes the random-walk sample described in the module
    docstring when the graph is larger. Raises ValueError when fewer than two classes remain.
    """
    if kind not in WORDNET_KINDS:
        raise ValueError(f"kind must be one of {WORDNET_KINDS}, got {kind!r}")
    if max_nodes is not None:
        _check_int("max_nodes", max_nodes, minimum=2)
    _check_int("min_class_size", min_class_size, minimum=1)
    _check_int("n_features", n_features, minimum=1)
    _check_int("walkers", walkers, minimum=1)
    _check_int("n_splits", n_splits, minimum=1)
    _check_int("seed", seed, minimum=0)
    synsets = pd.read_parquet(_resource(resources_dir, _SYNSETS), columns=["key", "lex_filenum", "gloss"])
    edges = pd.read_parquet(_resource(resources_dir, _wordnet_edges_file(kind)), columns=["source", "target"])

    # Nodes: synsets touched by an edge, in the order of synsets.parquet.
    keys = pd.Index(synsets["key"])
    if not keys.is_unique:
        raise ValueError(f"{_SYNSETS}: duplicate synset keys")
    src, dst = keys.get_indexer(edges["source"]), keys.get_indexer(edges["target"])
    if (src < 0).any() or (dst < 0).any():
        bad = edges["source"].where(src < 0, edges["target"])[(src < 0) | (dst < 0)].iloc[0]
        raise ValueError(f"{_wordnet_edges_file(kind)}: edge endpoint {bad!r} is not in {_SYNSETS}")
    touched = np.unique(np.concatenate([src, dst]))
    remap = np.full(len(keys), -1, dtype=np.int64)
    remap[touched] = np.arange(touched.size)
    u, v = _canonical_pairs(remap[src], remap[dst])
    labels = synsets["lex_filenum"].to_numpy(dtype=np.int64)[touched]

    sample_rng, split_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
    nodes = np.arange(touched.size)
    if max_nodes is not None and max_nodes < touched.size:
        nodes = _random_walk_sample(touched.size, u, v, labels, max_nodes, walkers, sample_rng)
    nodes = _drop_small_classes(nodes, u, v, labels, min_class_size)
    nodes, edge_index = _induced_subgraph(nodes, u, v, touched.size)
    classes, y = np.unique(labels[nodes], return_inverse=True)
    if classes.size < 2:
        raise ValueError(
            f"wordnet {kind}: only {classes.size} class(es) with >= {min_class_size} nodes remain; "
            "lower min_class_size or raise max_nodes"
        )
    glosses = synsets["gloss"].to_numpy()[touched[nodes]]
    data = Data(x=_gloss_tfidf(glosses, n_features), edge_index=edge_index, y=torch.from_numpy(y).long())
    data.node_keys = keys[touched[nodes]].tolist()
    return _finish(data, f"wordnet_{kind}", [LEXNAMES[c] for c in classes], n_splits, split_rng)


def drosophila_graph(resources_dir: str | Path, side: str = "left", *, n_splits: int = 1, seed: int = 0) -> Data:
    """One hemisphere of the larval Drosophila mushroom-body connectome, symmetrised and unweighted."""
    if side not in DROSOPHILA_SIDES:
        raise ValueError(f"side must be one of {DROSOPHILA_SIDES}, got {side!r}")
    _check_int("n_splits", n_splits, minimum=1)
    _check_int("seed", seed, minimum=0)
    path = _resource(resources_dir, _CONNECTOME)
    with np.load(path, allow_pickle=False) as arrays:
        missing = [k for k in (f"{side}_adjacency", f"{side}_labels") if k not in arrays.files]
        if missing:
            raise ValueError(f"{path}: missing array(s) {missing}")
        adj, names = arrays[f"{side}_adjacency"].astype(np.float64), arrays[f"{side}_labels"].astype(str)
    n = adj.shape[0]
    if adj.ndim != 2 or adj.shape != (n, n) or names.shape != (n,):
        raise ValueError(f"{path}: {side} adjacency {adj.shape} and labels {names.shape} do not match")
    np.fill_diagonal(adj, 0.0)  # a neuron's synapses onto itself are not edges
    u, v = _canonical_pairs(*np.nonzero(adj))
    _, edge_index = _induced_subgraph(np.arange(n), u, v, n)
    classes, y = np.unique(names, return_inverse=True)
    data = Data(x=_connectome_features(adj), edge_index=edge_index, y=torch.from_numpy(y).long())
    split_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(2)[1])
    return _finish(data, f"drosophila_{side}", classes.tolist(), n_splits, split_rng)


def csbm_graph(
    homophily: float,
    *,
    n_nodes: int = 2000,
    n_classes: int = 5,
    avg_degree: float = 10.0,
    n_features: int = 32,
    feature_signal: float = 1.0,
    n_splits: int = 1,
    seed: int = 0,
) -> Data:
    """A contextual SBM graph (:func:`repro.graphs.csbm.contextual_sbm`) with split masks and stats."""
    _check_int("n_splits", n_splits, minimum=1)
    _check_int("seed", seed, minimum=0)
    graph_seed, split_seed = np.random.SeedSequence(seed).spawn(2)
    data = contextual_sbm(
        n_nodes,
        n_classes,
        avg_degree,
        homophily,
        n_features=n_features,
        feature_signal=feature_signal,
        seed=np.random.default_rng(graph_seed),
    )
    names = [f"class{k}" for k in range(n_classes)]
    return _finish(data, f"csbm_h{homophily:g}", names, n_splits, np.random.default_rng(split_seed))


def graph_stats(data: Data) -> dict[str, int | float]:
    """Size and label homophily of ``data`` (``edges`` counts directed edges, i.e. twice the undirected ones)."""
    y, edge_index = data.y, data.edge_index
    classes = int(y.max()) + 1 if y.numel() else 0
    return {
        "nodes": int(data.num_nodes),
        "edges": int(edge_index.size(1)),
        "classes": int(torch.unique(y).numel()),
        "features": int(data.x.size(1)),
        "edge_homophily": edge_homophily(edge_index, y),
        "node_homophily": node_homophily(edge_index, y),
        "class_insensitive_homophily": class_insensitive_homophily(edge_index, y, num_classes=max(classes, 2)),
    }


_LOADERS: dict[str, tuple[Callable[..., Data], dict[str, Any]]] = {
    "wordnet_hypernym": (wordnet_graph, {"kind": "hypernym"}),
    "wordnet_domain_topic": (wordnet_graph, {"kind": "domain_topic"}),
    "drosophila": (drosophila_graph, {}),
    "csbm": (csbm_graph, {}),
    "pyg": (pyg_graph, {}),  # paper tier: a torch_geometric dataset the pipeline downloaded
}


def load_graph(name: str, resources_dir: str | Path | None, options: Mapping[str, Any] | None = None) -> Data:
    """Load graph ``name`` (one of :data:`GRAPH_NAMES`); ``options`` are its loader's keyword arguments.

    ``resources_dir`` is the folder ``make data`` fills (``resources/``); ``csbm`` ignores it.
    """
    if name not in _LOADERS:
        raise ValueError(f"unknown graph {name!r}; known graphs: {', '.join(GRAPH_NAMES)}")
    loader, fixed = _LOADERS[name]
    options = dict(options or {})
    params = inspect.signature(loader).parameters
    allowed = [p for p in params if p not in fixed and p != "resources_dir"]
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ValueError(f"graph {name!r}: unknown option(s) {unknown}; accepted: {', '.join(allowed)}")
    required = [p for p in allowed if params[p].default is inspect.Parameter.empty and p not in options]
    if required:
        raise ValueError(f"graph {name!r} needs option(s) {required}")
    if "resources_dir" in params:
        if resources_dir is None:
            raise ValueError(f"graph {name!r} needs resources_dir (the folder `make data` fills)")
        return loader(resources_dir, **fixed, **options)
    return loader(**fixed, **options)


# --------------------------------------------------------------------------- graph helpers


def _finish(data: Data, name: str, class_names: list[str], n_splits: int, rng: np.random.Generator) -> Data:
    """Attach the split masks, name, class names and stats."""
    data.train_mask, data.val_mask, data.test_mask = random_split_masks(data.num_nodes, n_splits=n_splits, seed=rng)
    data.name = name
    data.class_names = list(class_names)
    data.stats = graph_stats(data)
    return data


def _canonical_pairs(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Undirected edges as unique pairs ``u < v`` (self-loops and repeats removed)."""
    a, b = np.asarray(a, dtype=np.int64), np.asarray(b, dtype=np.int64)
    keep = a != b
    u, v = np.minimum(a[keep], b[keep]), np.maximum(a[keep], b[keep])
    pairs = np.unique(np.stack([u, v], axis=1), axis=0) if u.size else np.zeros((0, 2), dtype=np.int64)
    return pairs[:, 0], pairs[:, 1]


def _induced_subgraph(nodes: np.ndarray, u: np.ndarray, v: np.ndarray, n_total: int) -> tuple[np.ndarray, torch.Tensor]:
    """Sorted ``nodes`` and the edge_index (both directions, sorted) of the edges among them."""
    nodes = np.unique(nodes)
    new_id = np.full(n_total, -1, dtype=np.int64)
    new_id[nodes] = np.arange(nodes.size)
    a, b = new_id[u], new_id[v]
    keep = (a >= 0) & (b >= 0)
    rows, cols = np.concatenate([a[keep], b[keep]]), np.concatenate([b[keep], a[keep]])
    order = np.argsort(rows * max(nodes.size, 1) + cols, kind="stable")
    return nodes, torch.from_numpy(np.stack([rows[order], cols[order]]))


def _drop_small_classes(
    nodes: np.ndarray, u: np.ndarray, v: np.ndarray, labels: np.ndarray, min_class_size: int
) -> np.ndarray:
    """Remove classes with < ``min_class_size`` of ``nodes``, then edgeless nodes, until nothing changes."""
    inside = np.zeros(labels.size, dtype=bool)
    inside[nodes] = True
    while True:
        classes, counts = np.unique(labels[inside], return_counts=True)
        inside &= np.isin(labels, classes[counts >= min_class_size])
        live = inside[u] & inside[v]
        degree = np.bincount(np.concatenate([u[live], v[live]]), minlength=labels.size)
        changed = inside & (degree == 0)
        inside &= ~changed
        if not changed.any() and (counts >= min_class_size).all():
            return np.flatnonzero(inside)


def _random_walk_sample(
    n: int,
    u: np.ndarray,
    v: np.ndarray,
    labels: np.ndarray,
    max_nodes: int,
    walkers: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """``max_nodes`` distinct nodes visited by simple random walks started in the largest classes.

    Walk ``i`` starts at a random unvisited node of the ``i``-th largest class (cycling; any
    unvisited node once that class is used up) and runs until the walks so far have visited
    ``(i + 1) * max_nodes / walkers`` nodes, its connected component has no unvisited node left, or
    it has taken ``50 * share + 1000`` steps; extra walks run until ``max_nodes`` is reached.
    """
    adj = sp.coo_matrix((np.ones(u.size), (u, v)), shape=(n, n))
    adj = (adj + adj.T).tocsr()
    indptr, indices = adj.indptr, adj.indices
    degree = np.diff(indptr)
    _, component = connected_components(adj, directed=False)
    unvisited_in = np.bincount(component, minlength=component.max() + 1)
    classes, counts = np.unique(labels, return_counts=True)
    start_classes = classes[np.argsort(-counts, kind="stable")]

    visited = np.zeros(n, dtype=bool)
    order: list[int] = []

    def visit(node: int) -> None:
        visited[node] = True
        unvisited_in[component[node]] -= 1
        order.append(node)

    uniforms, pos = rng.random(4096), 0
    walk = 0
    while len(order) < max_nodes:
        target = max_nodes if walk >= walkers else (walk + 1) * max_nodes // walkers
        candidates = np.flatnonzero((labels == start_classes[walk % start_classes.size]) & ~visited)
        if candidates.size == 0:
            candidates = np.flatnonzero(~visited)
        node = int(rng.choice(candidates))
        visit(node)
        steps, step_cap = 0, 50 * (target - len(order)) + 1000
        while len(order) < target and unvisited_in[component[node]] > 0 and steps < step_cap:
            if pos == uniforms.size:
                uniforms, pos = rng.random(4096), 0
            node = int(indices[indptr[node] + int(uniforms[pos] * degree[node])])
            pos += 1
            steps += 1
            if not visited[node]:
                visit(node)
        walk += 1
    return np.sort(np.asarray(order, dtype=np.int64))


# --------------------------------------------------------------------------- features


def _gloss_tfidf(glosses: np.ndarray, n_features: int) -> torch.Tensor:
    """Dense float32 TF-IDF of the glosses, L2-normalised rows (zero rows for glosses with no kept term)."""
    vectorizer = TfidfVectorizer(
        sublinear_tf=True, stop_words="english", max_features=n_features, norm="l2", dtype=np.float32
    )
    try:
        matrix = vectorizer.fit_transform([str(g) for g in glosses])
    except ValueError as exc:  # empty vocabulary
        raise ValueError(f"no TF-IDF features could be built from {len(glosses)} glosses: {exc}") from exc
    return torch.from_numpy(np.asarray(matrix.toarray(), dtype=np.float32))


def _connectome_features(adj: np.ndarray) -> torch.Tensor:
    """Standardised degree, strength and random-walk return-probability features (see module docstring)."""
    binary = adj > 0
    directed = [binary.sum(0), binary.sum(1), adj.sum(0), adj.sum(1)]  # in/out degree, in/out strength
    sym = (binary | binary.T).astype(np.float64)
    degree = sym.sum(1, keepdims=True)
    walk = np.divide(sym, degree, out=np.zeros_like(sym), where=degree > 0)
    power, returns = walk, []
    for k in range(2, max(RANDOM_WALK_STEPS) + 1):
        power = power @ walk
        if k in RANDOM_WALK_STEPS:
            returns.append(np.diag(power).copy())
    features = np.column_stack([np.log1p(f) for f in directed] + returns)
    std = features.std(axis=0)
    features = np.divide(features - features.mean(axis=0), std, out=np.zeros_like(features), where=std > 0)
    return torch.from_numpy(features.astype(np.float32))


# --------------------------------------------------------------------------- validation


def _resource(resources_dir: str | Path, relative: Path) -> Path:
    path = Path(resources_dir) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; run `make data` to prepare the graph resources")
    return path


def _check_int(name: str, value: object, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
