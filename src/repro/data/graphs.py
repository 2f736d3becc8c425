"""Real graphs in the project's format (default tier).

* WordNet 3.0 (Debian ``wordnet-base``): one node per synset with its gloss and its
  supersense (the 45 lexicographer files) as label; hypernym/hyponym edges (homophilic,
  h about 0.95) and domain-topic edges (heterophilic, h about 0.12) as separate tables.
* The Drosophila larval mushroom-body connectome (CSV files inside the ``graspologic``
  wheel): weighted directed adjacency and four cell types, left and right hemispheres.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from repro.data.images import save_npz
from repro.data.parsers.connectome import read_drosophila, symmetrised_homophily
from repro.data.parsers.wordnet import (
    DOMAIN_TOPIC_SYMBOLS,
    HYPERNYM_SYMBOLS,
    edge_homophily,
    pointer_edges,
    read_wordnet,
)
from repro.io import write_parquet

log = logging.getLogger(__name__)


def prepare_wordnet(artifact_dir, outputs: dict[str, Path]) -> dict[str, float]:
    """Write synsets and the two edge sets as Parquet; return the edge homophily of each."""
    [data_noun] = sorted(Path(artifact_dir).rglob("data.noun"))
    synsets = read_wordnet(data_noun.parent)
    nodes = pd.DataFrame(
        {
            "key": [s.key for s in synsets],
            "pos": [s.pos for s in synsets],
            "lex_filenum": [s.lex_filenum for s in synsets],
            "lexname": [s.lexname for s in synsets],
            "words": [list(s.words) for s in synsets],
            "gloss": [s.gloss for s in synsets],
        }
    )
    write_parquet(nodes, outputs["synsets"])
    label = dict(zip(nodes.key, nodes.lex_filenum))
    stats = {"synsets": float(len(nodes))}
    for kind, symbols in (("hypernym", HYPERNYM_SYMBOLS), ("domain_topic", DOMAIN_TOPIC_SYMBOLS)):
        edges = pointer_edges(synsets, symbols)
        write_parquet(pd.DataFrame(edges, columns=["source", "target"]), outputs[kind])
        stats[f"{kind}_edges"] = float(len(edges))
        stats[f"{kind}_homophily"] = edge_homophily(edges, label)
    log.info("wordnet: %s", stats)
    return stats


def prepare_connectome(artifact_dir, output) -> dict[str, float]:
    [folder] = {p.parent for p in Path(artifact_dir).rglob("left_adjacency.csv")}
    arrays, stats = {}, {}
    for side in ("left", "right"):
        adj, labels = read_drosophila(folder, side)
        arrays[f"{side}_adjacency"] = adj
        arrays[f"{side}_labels"] = np.array(labels)
        stats[f"{side}_edge_homophily"], stats[f"{side}_node_homophily"] = symmetrised_homophily(adj, labels)
    save_npz(output, **arrays)
    log.info("drosophila connectome: %s", stats)
    return stats
