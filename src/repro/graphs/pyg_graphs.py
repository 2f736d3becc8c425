"""Paper-tier node-classification graphs from ``torch_geometric.datasets``, read offline from our artifacts.

:func:`pyg_graph` turns a PyG dataset whose raw files the download pipeline already fetched into
the project's graph format (see :mod:`repro.graphs.datasets`): a ``Data`` with ``x`` (float32
``[N, F]``), ``edge_index`` (int64 ``[2, E]``), ``y`` (int64 ``0 .. C-1``),
``train_mask``/``val_mask``/``test_mask`` (bool ``[N, n_splits]``), ``name``, ``class_names`` and
``stats`` (:func:`repro.graphs.datasets.graph_stats`).

Where the files come from. The ``torch_geometric`` source kind
(:class:`repro.data.sources.pyg.TorchGeometricDataset`) builds the class with
``root=resources/pyg/<artifact>`` and hard-links every file of its ``raw_dir`` to
``resources/artifacts/<artifact>/<path below root>``, e.g. for ``WebKB(name="Texas")``:
``resources/artifacts/texas/texas/raw/out1_graph_edges.txt`` (Planetoid/Amazon/Coauthor:
``<Name>/raw/``; WikipediaNetwork with geom-gcn preprocessing: ``<name>/geom_gcn/raw/``; Actor and
WikiCS: ``raw/``). The loader copies that folder into a fresh temporary root, so the layout PyG
expects is recreated, and instantiates the same class there with downloading disabled: a missing
raw file raises FileNotFoundError naming it, never a network request. PyG's own ``process()``
parses the files; nothing under ``resources/pyg`` is read or written.

What is kept. Only ``x``, ``edge_index``, ``y`` and the three masks (other attributes, e.g. Wiki-CS's
``stopping_mask``, are dropped). Duplicate edges are removed (``coalesce``: edges sorted by source,
then target). Edges stay as PyG's ``process()`` returns them (Amazon and Coauthor are symmetrised
there, and WikiCS unless ``is_undirected=False``) unless ``undirected=True``
(``torch_geometric.utils.to_undirected``): WebKB's hyperlinks are directed, and Half-Hop is defined
on directed edges (one slow node per directed edge), so the direction matters for the upsampled
graph's size. Self-loops are kept as published (none are added or removed); the homophily
statistics exclude them (:mod:`repro.graphs.homophily`). Labels are relabelled to ``0 .. C-1`` only
when the stored ids are not already that range; ``class_names`` are the original ids as strings.

Splits (``shared/papers/ssl_graph_neural.md`` section 1.5).

* ``split="stored"``: the dataset's own masks. Heterophilic sets (WebKB Texas/Wisconsin/Cornell,
  Actor, WikipediaNetwork Chameleon/Squirrel with ``geom_gcn_preprocess=True``) ship the 10 Pei et
  al. (2020) geom-gcn splits, ``[N, 10]``; Wiki-CS has 20 preset train/val masks with a single test
  mask, broadcast here to ``[N, 20]``; Planetoid's public split is 1-D and becomes ``[N, 1]``.
  ``n_splits``, ``train``, ``val`` and ``seed`` are ignored. A dataset without masks is an error.
* ``split="random"``: ``n_splits`` random splits from :func:`repro.graphs.csbm.random_split_masks`
  with fractions ``train``/``val`` (rest test) and ``seed``. Amazon Computers/Photo and Coauthor
  CS/Physics ship no masks; the paper's supervised runs use 60/20/20 random splits for them (the
  defaults). For SSL the brief quotes "20 random dataset splits" (BGRL's linear evaluation uses
  10/10/80): pass ``n_splits=20, train=0.1, val=0.1`` there.

Caution (brief section 1.5): Papers-with-Code lists the Half-Hop heterophilic results under
"60%/20%/20% random splits", which contradicts the paper's statement that it uses the Pei et al.
splits. The split protocol is still to be confirmed in the PDF; both are available here.
"""

from __future__ import annotations

import inspect
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor
from torch_geometric.data import Data

from repro.graphs.csbm import random_split_masks

__all__ = ["SPLITS", "pyg_graph"]

SPLITS = ("stored", "random")
_MASKS = ("train_mask", "val_mask", "test_mask")


def pyg_graph(
    resources_dir: str | Path,
    artifact: str,
    *,
    dataset: str,
    kwargs: dict | None = None,
    split: str = "stored",
    n_splits: int = 10,
    train: float = 0.6,
    val: float = 0.2,
    seed: int = 0,
    undirected: bool = False,
) -> Data:
    """Graph 0 of ``torch_geometric.datasets.<dataset>(**kwargs)`` built from ``resources_dir/artifacts/<artifact>``.

    See the module docstring for the layout, the kept attributes and the splits. Raises
    FileNotFoundError when the artifact folder or one of the dataset's raw files is missing, and
    ValueError for an unknown dataset class, bad options, or ``split="stored"`` on a dataset
    without masks.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    kwargs = dict(kwargs or {})
    if "root" in kwargs:
        raise ValueError("do not pass 'root' in kwargs; pyg_graph sets it to a temporary copy of the artifact")
    cls = _dataset_class(dataset)
    artifact_dir = Path(resources_dir) / "artifacts" / artifact
    if not artifact_dir.is_dir():
        raise FileNotFoundError(
            f"artifact folder {artifact_dir} not found; run the download rule "
            f"(`snakemake resources/manifest/{artifact}.json`) first"
        )

    with tempfile.TemporaryDirectory(prefix=f"pyg-{artifact}-") as tmp:
        root = Path(tmp) / "root"
        shutil.copytree(artifact_dir, root)  # copies: PyG may write beside (or over) its raw files
        offline = _offline_class(cls, artifact, artifact_dir)
        source = offline(root=str(root), **kwargs)[0]

    n = _num_nodes(source, dataset)
    x = source.x.detach().to(torch.float32).reshape(n, -1).contiguous()
    y, class_names = _labels(source.y, n, dataset)
    edge_index = _edges(source.edge_index, n, dataset, undirected)
    data = Data(x=x, edge_index=edge_index, y=y)
    if split == "stored":
        masks = _stored_masks(source, n, dataset)
    else:
        masks = random_split_masks(n, train, val, n_splits, seed=seed)
    data.train_mask, data.val_mask, data.test_mask = masks
    data.name = artifact
    data.class_names = class_names
    from repro.graphs.datasets import graph_stats  # here: datasets.py imports this module

    data.stats = graph_stats(data)
    return data


# --------------------------------------------------------------------------- dataset class


def _dataset_class(name: str) -> type:
    import torch_geometric.datasets as datasets
    from torch_geometric.data import Dataset

    cls = getattr(datasets, name, None) if isinstance(name, str) and not name.startswith("_") else None
    if not (inspect.isclass(cls) and issubclass(cls, Dataset)):
        raise ValueError(f"{name!r} is not a dataset class in torch_geometric.datasets")
    if "root" not in inspect.signature(cls).parameters:
        raise ValueError(
            f"torch_geometric.datasets.{name} has no 'root' parameter (its artifact holds materialised "
            "tensors, not raw files); pyg_graph reads raw-file datasets only"
        )
    return cls


def _offline_class(cls: type, artifact: str, artifact_dir: Path) -> type:
    """A subclass of ``cls`` whose ``download()`` raises FileNotFoundError instead of fetching."""

    def download(self: Any) -> None:
        missing = [p for p in self.raw_paths if not os.path.exists(p)]
        if not missing:
            return
        names = [os.path.relpath(p, self.root) for p in missing]
        raise FileNotFoundError(
            f"artifact folder {artifact_dir} lacks raw file(s) {names} of {cls.__name__}; "
            f"rerun the download rule (`snakemake resources/manifest/{artifact}.json`). "
            "pyg_graph never downloads."
        )

    return type(cls.__name__, (cls,), {"download": download, "__module__": cls.__module__})


# --------------------------------------------------------------------------- attributes


def _num_nodes(source: Data, dataset: str) -> int:
    for key in ("x", "edge_index", "y"):
        if getattr(source, key, None) is None:
            raise ValueError(f"{dataset}: graph 0 has no {key!r}; pyg_graph needs x, edge_index and y")
    return int(source.x.size(0))


def _labels(y: Tensor, n: int, dataset: str) -> tuple[Tensor, list[str]]:
    y = y.detach()
    if y.dim() == 2 and y.size(1) == 1:
        y = y.view(-1)
    if y.dim() != 1 or y.numel() != n:
        raise ValueError(f"{dataset}: y has shape {tuple(y.shape)}; expected one label per node ({n})")
    if y.is_floating_point() and not bool((y == y.round()).all()):
        raise ValueError(f"{dataset}: y holds non-integer values")
    y = y.long()
    classes, inverse = torch.unique(y, sorted=True, return_inverse=True)
    if not torch.equal(classes, torch.arange(classes.numel())):
        y = inverse.long()
    return y.contiguous(), [str(int(c)) for c in classes]


def _edges(edge_index: Tensor, n: int, dataset: str, undirected: bool) -> Tensor:
    from torch_geometric.utils import coalesce, to_undirected

    edge_index = edge_index.detach().long()
    if edge_index.dim() != 2 or edge_index.size(0) != 2:
        raise ValueError(f"{dataset}: edge_index has shape {tuple(edge_index.shape)}, expected [2, E]")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"{dataset}: edge_index refers to nodes outside 0..{n - 1}")
    edge_index = coalesce(edge_index, num_nodes=n)  # sorted, duplicates removed, self-loops kept
    if undirected:
        edge_index = to_undirected(edge_index, num_nodes=n)
    return edge_index.contiguous()


def _stored_masks(source: Data, n: int, dataset: str) -> tuple[Tensor, Tensor, Tensor]:
    """The three stored masks as bool ``[N, k]``; 1-D (or one-column) masks are broadcast to ``k``."""
    masks = {key: getattr(source, key, None) for key in _MASKS}
    absent = [key for key, mask in masks.items() if mask is None]
    if absent:
        raise ValueError(f"{dataset}: the dataset stores no {absent}; use split='random'")
    shaped = {}
    for key, mask in masks.items():
        mask = mask.detach()
        mask = mask.view(-1, 1) if mask.dim() == 1 else mask
        if mask.dim() != 2 or mask.size(0) != n:
            raise ValueError(f"{dataset}: {key} has shape {tuple(masks[key].shape)}; expected [{n}] or [{n}, k]")
        if mask.dtype != torch.bool:
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise ValueError(f"{dataset}: {key} holds values other than 0/1")
            mask = mask.bool()
        shaped[key] = mask
    k = max(mask.size(1) for mask in shaped.values())
    out = []
    for key, mask in shaped.items():
        if mask.size(1) not in (1, k):
            widths = {name: m.size(1) for name, m in shaped.items()}
            raise ValueError(f"{dataset}: mask widths {widths} do not broadcast to one split count")
        out.append(mask.expand(n, k).contiguous())
    return out[0], out[1], out[2]
