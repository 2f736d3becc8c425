"""Edge, node and class-insensitive homophily on hand-made graphs."""

from __future__ import annotations

import math

import pytest
import torch

from repro.graphs.homophily import class_insensitive_homophily, edge_homophily, node_homophily


def both_ways(pairs: list[tuple[int, int]]) -> torch.Tensor:
    edges = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    return torch.tensor(edges).t()


PATH = both_ways([(0, 1), (1, 2), (2, 3)])  # 0 - 1 - 2 - 3
PATH_Y = torch.tensor([0, 0, 1, 1])


def test_all_same_label_gives_one():
    edge_index = both_ways([(0, 1), (1, 2), (2, 0), (2, 3)])
    y = torch.zeros(4, dtype=torch.long)
    assert edge_homophily(edge_index, y) == 1.0 and node_homophily(edge_index, y) == 1.0


def test_bipartite_with_opposite_labels_gives_zero():
    edge_index = both_ways([(0, 2), (0, 3), (1, 2), (1, 3)])
    y = torch.tensor([0, 0, 1, 1])
    assert edge_homophily(edge_index, y) == 0.0 and node_homophily(edge_index, y) == 0.0
    assert class_insensitive_homophily(edge_index, y) == 0.0


def test_path_hand_example():
    assert edge_homophily(PATH, PATH_Y) == pytest.approx(4 / 6)
    # in-neighbour same-label fractions: 1, 1/2, 1/2, 1
    assert node_homophily(PATH, PATH_Y) == pytest.approx(0.75)
    # h_0 = h_1 = 2/3, class shares 1/2: (1/6 + 1/6) / (2 - 1)
    assert class_insensitive_homophily(PATH, PATH_Y) == pytest.approx(1 / 3)


def test_self_loops_are_excluded():
    loops = torch.tensor([[0, 1, 2, 2], [0, 1, 2, 2]])
    edge_index = torch.cat([PATH, loops], dim=1)
    assert edge_homophily(edge_index, PATH_Y) == pytest.approx(4 / 6)
    assert node_homophily(edge_index, PATH_Y) == pytest.approx(0.75)
    assert math.isnan(edge_homophily(loops, PATH_Y)) and math.isnan(node_homophily(loops, PATH_Y))


def test_directed_uses_in_neighbours_and_skips_isolated_nodes():
    star = torch.tensor([[1, 2, 3], [0, 0, 0]])  # only node 0 has in-neighbours
    y = torch.tensor([0, 0, 1, 1, 0])  # node 4 is isolated
    assert edge_homophily(star, y) == pytest.approx(1 / 3)
    assert node_homophily(star, y) == pytest.approx(1 / 3)
    assert node_homophily(star.flip(0), y) == pytest.approx(1 / 3)  # three nodes with one in-neighbour each


def test_class_insensitive_is_zero_for_label_independent_complete_graph():
    pairs = [(a, b) for a in range(4) for b in range(a + 1, 4)]
    assert class_insensitive_homophily(both_ways(pairs), torch.tensor([0, 0, 1, 1])) == 0.0
    # an explicit num_classes adds an empty class: the denominator becomes C - 1 = 2
    assert class_insensitive_homophily(PATH, PATH_Y, num_classes=3) == pytest.approx(1 / 6)


def test_int32_inputs_are_accepted():
    assert edge_homophily(PATH.int(), PATH_Y.int()) == pytest.approx(4 / 6)
    assert class_insensitive_homophily(PATH.int(), PATH_Y.int()) == pytest.approx(1 / 3)


@pytest.mark.parametrize(
    ("edge_index", "y", "match"),
    [
        (PATH, PATH_Y.view(2, 2), "1-D"),
        (PATH, PATH_Y.float(), "integer labels"),
        (PATH[0], PATH_Y, r"\[2, E\]"),
        (PATH.t(), PATH_Y, r"\[2, E\]"),
        (PATH.float(), PATH_Y, "integer node ids"),
        (torch.tensor([[0], [4]]), PATH_Y, "outside"),
        (torch.tensor([[-1], [0]]), PATH_Y, "outside"),
    ],
)
def test_bad_inputs_raise(edge_index, y, match):
    for measure in (edge_homophily, node_homophily, class_insensitive_homophily):
        with pytest.raises(ValueError, match=match):
            measure(edge_index, y)


def test_class_insensitive_label_checks():
    with pytest.raises(ValueError, match="num_classes >= 2"):
        class_insensitive_homophily(PATH, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match="non-negative"):
        class_insensitive_homophily(PATH, torch.tensor([0, -1, 1, 1]))
    with pytest.raises(ValueError, match="beyond num_classes"):
        class_insensitive_homophily(PATH, torch.tensor([0, 0, 1, 2]), num_classes=2)
