"""Drosophila connectome reader and symmetrised homophily, checked on a hand-computed 5-node graph."""

from __future__ import annotations

import numpy as np
import pytest

from repro.data.parsers.connectome import read_drosophila, symmetrised_homophily

# Directed synapse counts. Undirected edges without the 4->4 self-loop:
# {0,1} A-A, {1,2} A-B, {2,3} B-B, {0,3} A-B, {2,4} B-C  -> edge homophily 2/5.
# Same-label neighbour fractions: 0: 1/2, 1: 1/2, 2: 1/3, 3: 1/2, 4: 0/1 -> node homophily 11/30.
ADJ = """0 2 0 1 0
1 0 3 0 0
0 0 0 5 0
0 0 1 0 0
0 0 4 0 7
"""
LABELS = "A\nA\nB\nB\nC\n"


@pytest.fixture
def folder(tmp_path):
    (tmp_path / "left_adjacency.csv").write_text(ADJ)
    (tmp_path / "left_cell_labels.csv").write_text(LABELS)
    return tmp_path


def test_reads_weighted_directed_adjacency_and_labels(folder):
    adj, labels = read_drosophila(folder, side="left")
    assert adj.dtype == np.float64 and adj.shape == (5, 5)
    assert adj[0, 1] == 2.0 and adj[1, 0] == 1.0 and adj[4, 4] == 7.0
    assert labels == ["A", "A", "B", "B", "C"]


def test_hand_computed_homophily(folder):
    edge, node = symmetrised_homophily(*read_drosophila(folder))
    assert edge == pytest.approx(2 / 5)
    assert node == pytest.approx(11 / 30)


def test_isolated_nodes_are_left_out_of_node_homophily():
    adj = np.zeros((3, 3))
    adj[0, 1] = 1
    assert symmetrised_homophily(adj, ["K", "K", "P"]) == (1.0, 1.0)
    assert all(np.isnan(symmetrised_homophily(np.zeros((2, 2)), ["K", "P"])))


@pytest.mark.parametrize(
    "adj, labels, message",
    [
        ("0 1\n1 0\n", "A\nA\nB\n", r"left_cell_labels\.csv: 3 labels for a 2-node adjacency"),
        ("0 1 0\n1 0\n", "A\nB\n", r"left_adjacency\.csv: not a square matrix"),
        ("0 x\n1 0\n", "A\nB\n", r"left_adjacency\.csv: non-numeric"),
        ("0 -1\n1 0\n", "A\nB\n", r"left_adjacency\.csv: synapse counts must be finite and non-negative"),
        ("", "", r"left_adjacency\.csv: not a square matrix"),
    ],
)
def test_malformed_files_are_named(tmp_path, adj, labels, message):
    (tmp_path / "left_adjacency.csv").write_text(adj)
    (tmp_path / "left_cell_labels.csv").write_text(labels)
    with pytest.raises(ValueError, match=message):
        read_drosophila(tmp_path)


def test_bad_side_and_shape():
    with pytest.raises(ValueError, match="side must be one of"):
        read_drosophila(".", side="middle")
    with pytest.raises(ValueError, match="does not match 3 labels"):
        symmetrised_homophily(np.zeros((2, 2)), ["a", "b", "c"])
