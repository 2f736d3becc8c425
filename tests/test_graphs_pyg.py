"""repro.graphs.pyg_graphs without network: WebKB files served on loopback, fetched, then loaded offline."""

from __future__ import annotations

import functools
import io
import json
import shutil
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from repro.data.sources import fetch
from repro.graphs.csbm import random_split_masks
from repro.graphs.pyg_graphs import pyg_graph

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")

# A tiny directed "Texas": 8 pages, 3 features, labels 0..4 (WebKB has 5 classes).
X = [[float(i), float(i % 2), 0.5 * i] for i in range(8)]
Y = [0, 0, 1, 1, 2, 2, 3, 4]
# As written to out1_graph_edges.txt: (0, 1) twice (a duplicate), (3, 3) a self-loop, (1, 0) the reverse of (0, 1).
RAW_EDGES = [(0, 1), (0, 1), (1, 0), (1, 2), (2, 3), (3, 3), (3, 4), (4, 5), (5, 6), (6, 7), (7, 0), (2, 5)]
EDGES = sorted(set(RAW_EDGES))  # 11 distinct directed edges
# Non-self-loop edges: 10; same-label ones: (0,1), (1,0), (2,3), (4,5).
EDGE_HOMOPHILY = 4 / 10
N_SPLITS = 10


def _split(i: int) -> dict[str, np.ndarray]:
    """Split ``i`` as geom-gcn stores it: 0/1 arrays, 4 train, 2 val, 2 test nodes."""
    order = np.random.default_rng(100 + i).permutation(8)
    masks = {k: np.zeros(8, dtype=np.uint8) for k in ("train_mask", "val_mask", "test_mask")}
    masks["train_mask"][order[:4]] = 1
    masks["val_mask"][order[4:6]] = 1
    masks["test_mask"][order[6:]] = 1
    return masks


def _webkb_files() -> dict[str, bytes]:
    """URL path (below WebKB.url) -> bytes, in the geom-gcn formats that WebKB.process parses."""
    nodes = "node_id\tfeature\tlabel\n" + "".join(
        f"{i}\t{','.join(f'{v:g}' for v in X[i])}\t{Y[i]}\n" for i in range(8)
    )
    edges = "node_id\tnode_id\n" + "".join(f"{s}\t{d}\n" for s, d in RAW_EDGES)
    files = {
        "new_data/texas/out1_node_feature_label.txt": nodes.encode(),
        "new_data/texas/out1_graph_edges.txt": edges.encode(),
    }
    for i in range(N_SPLITS):
        buf = io.BytesIO()
        np.savez(buf, **_split(i))
        files[f"splits/texas_split_0.6_0.2_{i}.npz"] = buf.getvalue()
    return files


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # record requests instead of printing them
        self.server.requests.append(self.path)


@pytest.fixture
def texas(tmp_path, monkeypatch):
    """Serve the WebKB files on loopback, fetch artifact 'texas' through the real pipeline, stop serving."""
    import torch_geometric.datasets

    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    www = tmp_path / "www"
    for rel, data in _webkb_files().items():
        (www / rel).parent.mkdir(parents=True, exist_ok=True)
        (www / rel).write_bytes(data)
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Handler, directory=str(www)))
    server.requests = []
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    monkeypatch.setattr(torch_geometric.datasets.WebKB, "url", f"http://127.0.0.1:{server.server_address[1]}")
    res = tmp_path / "res"
    try:
        spec = {"kind": "torch_geometric", "dataset": "WebKB", "kwargs": {"name": "Texas"}, "licence": "test"}
        entry = fetch("texas", spec, res)
        shutil.rmtree(res / "pyg")  # the loader must need the artifact folder only
        yield SimpleNamespace(res=res, entry=entry, server=server)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def _edge_set(data) -> set[tuple[int, int]]:
    return set(map(tuple, data.edge_index.t().tolist()))


# --------------------------------------------------------------------------- WebKB end to end


def test_webkb_texas_end_to_end(texas):
    art = texas.res / "artifacts/texas/texas/raw"
    raw_names = ["out1_node_feature_label.txt", "out1_graph_edges.txt"]
    raw_names += [f"texas_split_0.6_0.2_{i}.npz" for i in range(N_SPLITS)]
    assert set(texas.entry["files"]) == {f"artifacts/texas/texas/raw/{n}" for n in raw_names}
    assert sorted(p.name for p in art.iterdir()) == sorted(raw_names)
    assert len(texas.server.requests) == 12

    data = pyg_graph(texas.res, "texas", dataset="WebKB", kwargs={"name": "Texas"})
    assert data.num_nodes == 8 and data.name == "texas"
    assert data.x.dtype == torch.float32 and torch.equal(data.x, torch.tensor(X, dtype=torch.float32))
    assert data.y.dtype == torch.int64 and data.y.tolist() == Y
    assert data.class_names == ["0", "1", "2", "3", "4"]
    assert data.edge_index.dtype == torch.int64 and data.edge_index.t().tolist() == [
        list(e) for e in EDGES
    ]  # sorted, directed
    for key in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(data, key)
        assert mask.dtype == torch.bool and mask.shape == (8, N_SPLITS)
        expected = np.stack([_split(i)[key].astype(bool) for i in range(N_SPLITS)], axis=1)
        assert np.array_equal(mask.numpy(), expected)
    assert set(data.keys()) == {"x", "edge_index", "y", "train_mask", "val_mask", "test_mask"} | {
        "name",
        "class_names",
        "stats",
    }
    stats = data.stats
    assert (stats["nodes"], stats["edges"], stats["classes"], stats["features"]) == (8, 11, 5, 3)
    assert stats["edge_homophily"] == pytest.approx(EDGE_HOMOPHILY)
    assert len(texas.server.requests) == 12  # loading made no request


def test_random_split_and_undirected(texas):
    load = functools.partial(pyg_graph, texas.res, "texas", dataset="WebKB", kwargs={"name": "Texas"})
    data = load(split="random", n_splits=4, train=0.5, val=0.25, seed=3)
    masks = torch.stack([data.train_mask, data.val_mask, data.test_mask])
    assert masks.shape == (3, 8, 4) and masks.dtype == torch.bool
    assert torch.equal(masks.sum(0), torch.ones(8, 4, dtype=torch.long))  # a partition in every split
    assert masks.sum(1).tolist() == [[4] * 4, [2] * 4, [2] * 4]
    expected = random_split_masks(8, 0.5, 0.25, 4, seed=3)
    assert all(torch.equal(m, e) for m, e in zip(masks, expected, strict=True))
    default = load(split="random")  # 60/20/20, 10 splits, seed 0
    assert default.train_mask.shape == (8, 10) and default.train_mask.sum(0).tolist() == [5] * 10  # round(0.6 * 8)
    assert torch.equal(default.test_mask, load(split="random", seed=0).test_mask)
    assert not torch.equal(default.train_mask, load(split="random", seed=1).train_mask)

    sym = load(undirected=True)
    edges = _edge_set(sym)
    assert edges == set(EDGES) | {(d, s) for s, d in EDGES}
    assert all((d, s) in edges for s, d in edges)
    assert sym.stats["edges"] == len(edges) == 19  # 9 node pairs both ways, plus the self-loop (3, 3)


# --------------------------------------------------------------------------- errors


def test_missing_artifact_raw_file_and_unknown_class(texas, tmp_path, monkeypatch):
    import torch_geometric.datasets.webkb as webkb

    missing_dir = tmp_path / "empty-res"
    with pytest.raises(FileNotFoundError) as err:
        pyg_graph(missing_dir, "texas", dataset="WebKB", kwargs={"name": "Texas"})
    assert str(missing_dir / "artifacts" / "texas") in str(err.value)
    assert "snakemake resources/manifest/texas.json" in str(err.value)

    def no_network(*args, **kwargs):
        raise AssertionError("pyg_graph tried to download")

    monkeypatch.setattr(webkb, "download_url", no_network)
    (texas.res / "artifacts/texas/texas/raw/texas_split_0.6_0.2_7.npz").unlink()
    before = len(texas.server.requests)
    with pytest.raises(FileNotFoundError) as err:
        pyg_graph(texas.res, "texas", dataset="WebKB", kwargs={"name": "Texas"})
    message = str(err.value)
    assert "texas/raw/texas_split_0.6_0.2_7.npz" in message and "texas_split_0.6_0.2_6.npz" not in message
    assert str(texas.res / "artifacts" / "texas") in message and "resources/manifest/texas.json" in message
    assert len(texas.server.requests) == before
    assert (texas.res / "artifacts/texas/texas/raw/out1_graph_edges.txt").is_file()  # artifact untouched
    assert not (texas.res / "artifacts/texas/texas/processed").exists()

    with pytest.raises(ValueError, match="'NoSuchDataset' is not a dataset class"):
        pyg_graph(texas.res, "texas", dataset="NoSuchDataset")
    with pytest.raises(ValueError, match="split must be one of"):
        pyg_graph(texas.res, "texas", dataset="WebKB", kwargs={"name": "Texas"}, split="public")
    with pytest.raises(ValueError, match="'root'"):
        pyg_graph(texas.res, "texas", dataset="WebKB", kwargs={"name": "Texas", "root": "/tmp"})


# --------------------------------------------------------------------------- stored-mask shapes


@pytest.fixture
def tiny_masked(tmp_path, monkeypatch):
    """A registered InMemoryDataset storing masks as WikiCS (2-D train/val, 1-D test), Planetoid (1-D) or none."""
    import torch_geometric.datasets
    from torch_geometric.data import Data, InMemoryDataset

    class TinyMasked(InMemoryDataset):
        def __init__(self, root, style="wikics", transform=None, pre_transform=None):
            self.style = style
            super().__init__(root, transform, pre_transform)
            self.load(self.processed_paths[0])

        @property
        def raw_file_names(self):
            return ["graph.json"]

        @property
        def processed_file_names(self):
            return f"data_{self.style}.pt"

        def download(self):
            raise OSError("no network in tests")

        def process(self):
            raw = json.loads(Path(self.raw_paths[0]).read_text())
            data = Data(
                x=torch.tensor(raw["x"], dtype=torch.float64),
                edge_index=torch.tensor(raw["edges"]).t(),
                y=torch.tensor(raw["y"]),
            )
            train, val, test = (torch.tensor(raw[k], dtype=torch.bool) for k in ("train", "val", "test"))
            if self.style == "wikics":
                data.train_mask, data.val_mask = train.t(), val.t()  # [N, 3]
                data.test_mask = test  # [N]
                data.stopping_mask = val.t().clone()
            elif self.style == "planetoid":
                data.train_mask, data.val_mask, data.test_mask = train[0], val[0], test
            self.save([data], self.processed_paths[0])

    monkeypatch.setattr(torch_geometric.datasets, "TinyMasked", TinyMasked, raising=False)
    raw = {
        "x": [[float(i), -float(i)] for i in range(6)],
        "y": [2, 5, 5, 7, 2, 7],
        "edges": [[0, 1], [1, 2], [2, 3], [3, 4], [4, 5], [5, 0]],
        "train": [[1, 1, 0, 0, 0, 0], [0, 1, 1, 0, 0, 0], [1, 0, 1, 0, 0, 0]],
        "val": [[0, 0, 1, 0, 0, 0], [1, 0, 0, 0, 0, 0], [0, 1, 0, 0, 0, 0]],
        "test": [0, 0, 0, 1, 1, 1],
    }
    res = tmp_path / "res"
    (res / "artifacts/tinycs/raw").mkdir(parents=True)
    (res / "artifacts/tinycs/raw/graph.json").write_text(json.dumps(raw))
    return SimpleNamespace(res=res, raw=raw)


def test_wikics_masks_broadcast_and_extra_masks_dropped(tiny_masked):
    data = pyg_graph(tiny_masked.res, "tinycs", dataset="TinyMasked", kwargs={"style": "wikics"})
    train = torch.tensor(tiny_masked.raw["train"], dtype=torch.bool).t()
    val = torch.tensor(tiny_masked.raw["val"], dtype=torch.bool).t()
    test = torch.tensor(tiny_masked.raw["test"], dtype=torch.bool)
    assert data.train_mask.shape == data.val_mask.shape == data.test_mask.shape == (6, 3)
    assert torch.equal(data.train_mask, train) and torch.equal(data.val_mask, val)
    assert all(torch.equal(data.test_mask[:, j], test) for j in range(3))
    assert "stopping_mask" not in data.keys()
    assert data.x.dtype == torch.float32 and data.y.tolist() == [0, 1, 1, 2, 0, 2]
    assert data.class_names == ["2", "5", "7"] and data.stats["classes"] == 3


def test_planetoid_style_masks_and_missing_masks(tiny_masked):
    data = pyg_graph(tiny_masked.res, "tinycs", dataset="TinyMasked", kwargs={"style": "planetoid"})
    assert data.train_mask.shape == data.val_mask.shape == data.test_mask.shape == (6, 1)
    assert data.train_mask[:, 0].tolist() == [True, True, False, False, False, False]
    assert data.test_mask[:, 0].tolist() == [False, False, False, True, True, True]

    with pytest.raises(ValueError, match="stores no .*train_mask.*split='random'"):
        pyg_graph(tiny_masked.res, "tinycs", dataset="TinyMasked", kwargs={"style": "none"})
    data = pyg_graph(tiny_masked.res, "tinycs", dataset="TinyMasked", kwargs={"style": "none"}, split="random")
    assert data.train_mask.shape == (6, 10)

    (tiny_masked.res / "artifacts/tinycs/raw/graph.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks raw file\(s\) \['raw/graph.json'\] of TinyMasked"):
        pyg_graph(tiny_masked.res, "tinycs", dataset="TinyMasked")
