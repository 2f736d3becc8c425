"""Kind ``torch_geometric``: a ``torch_geometric.datasets`` class, its raw files or materialised graphs."""

from __future__ import annotations

import inspect
import json
import urllib.error
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from repro.data.sources.base import Source, SourceUnavailable, _check_digest, _prefixed
from repro.data.sources.files import _tree_bytes, hash_tree, link_or_copy, staged_dir

PYG = "pyg"


class TorchGeometricDataset(Source):
    """A dataset class of ``torch_geometric.datasets``, built with ``root=resources/pyg/<name>``.

    Its raw files are hard-linked (or copied) to ``artifacts/<name>/<path below root>`` and recorded.
    Classes without a ``root`` parameter (e.g. KarateClub) keep nothing on disk: their graphs are
    written as ``artifacts/<name>/materialized/<index>/<attribute>.npy`` (plus ``attrs.json`` for
    non-tensor attributes).  The manifest's sha256 is ``tree_digest`` over those files, checked
    against ``spec["sha256"]`` when given.
    """

    kind = "torch_geometric"
    required = frozenset({"dataset"})
    optional = frozenset({"kwargs", "sha256", "version"})

    @property
    def kwargs(self) -> dict[str, Any]:
        return dict(self.spec.get("kwargs") or {})

    @property
    def origin(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(self.kwargs.items()))
        return f"torch_geometric:{self.spec['dataset']}({args})"

    @property
    def version(self) -> str:
        if self.spec.get("version"):
            return str(self.spec["version"])
        import torch_geometric

        return f"torch_geometric=={torch_geometric.__version__}"

    def dataset_class(self) -> type:
        import torch_geometric.datasets as datasets
        from torch_geometric.data import Dataset

        name = str(self.spec["dataset"])
        cls = getattr(datasets, name, None) if not name.startswith("_") else None
        if not (inspect.isclass(cls) and issubclass(cls, Dataset)):
            raise ValueError(f"artifact {self.name!r}: {name!r} is not a dataset class in torch_geometric.datasets")
        return cls

    def _instantiate(self, cls: type, root: Path) -> tuple[Any, bool]:
        kwargs = self.kwargs
        has_root = "root" in inspect.signature(cls).parameters
        if "root" in kwargs:
            raise ValueError(f"artifact {self.name!r}: do not set 'root' in kwargs; it is {root}")
        if has_root:
            kwargs["root"] = str(root)
        try:
            return cls(**kwargs), has_root
        except (OSError, urllib.error.URLError) as err:
            raise SourceUnavailable(
                f"{self.name}: torch_geometric could not build {self.origin} ({type(err).__name__}: {err}). "
                f"Place the dataset's raw files (its raw_file_names) in its raw folder under {root} and rerun."
            ) from err

    def _fetch(self, resources: Path) -> dict:
        root = resources / PYG / self.name
        dataset, has_root = self._instantiate(self.dataset_class(), root)
        with staged_dir(self.artifact_dir(resources)) as tmp:
            raw_dir = Path(dataset.raw_dir) if has_root else None
            if raw_dir is None or not _link_raw_files(raw_dir, root, tmp):
                _materialize(dataset, tmp / "materialized")
            hashes = hash_tree(tmp)
            digest = _check_digest(self.name, self.spec.get("sha256"), hashes, f"dataset {self.origin}")
            nbytes = _tree_bytes(tmp, hashes)
        return self._entry(sha256=digest, nbytes=nbytes, download=None, files=_prefixed(self.name, hashes))


def _link_raw_files(raw_dir: Path, root: Path, dest: Path) -> bool:
    """Link every file under ``raw_dir`` to ``dest/<its path below root>``; False if there were none."""
    files = sorted(p for p in raw_dir.rglob("*") if p.is_file()) if raw_dir.is_dir() else []
    base = root if raw_dir.resolve().is_relative_to(root.resolve()) else raw_dir.parent
    for path in files:
        link_or_copy(path, dest / path.resolve().relative_to(base.resolve()))
    return bool(files)


def _flatten(mapping: Mapping[Any, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    for key, value in mapping.items():
        name = "__".join(key) if isinstance(key, tuple) else str(key)
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{name}__")
        else:
            yield f"{prefix}{name}", value


def _materialize(dataset: Any, dest: Path) -> None:
    """Write each graph's tensors as .npy (deterministic bytes) and other attributes as JSON."""
    import numpy as np
    import torch

    for index in range(len(dataset)):
        folder = dest / str(index)
        folder.mkdir(parents=True)
        others = {}
        for key, value in sorted(_flatten(dataset[index].to_dict())):
            if isinstance(value, torch.Tensor):
                np.save(folder / f"{key}.npy", value.detach().cpu().numpy(), allow_pickle=False)
            else:
                others[key] = value
        if others:
            (folder / "attrs.json").write_text(json.dumps(others, sort_keys=True, default=str) + "\n")
