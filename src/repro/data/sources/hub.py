"""Kind ``hf_hub``: a Hugging Face Hub repository snapshot at a pinned commit."""

from __future__ import annotations

import re
from pathlib import Path

from repro.data.sources.base import Source, SourceError, _check_digest, _prefixed
from repro.data.sources.files import _tree_bytes, hash_tree, link_or_copy, staged_dir

HF_CACHE = "hf-cache"
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")


class HFHubSnapshot(Source):
    """A Hugging Face Hub repository at a pinned commit, via ``snapshot_download`` into ``resources/hf-cache``.

    The files are placed (hard-linked or copied, symlinks resolved) under ``artifacts/<name>/``; the
    manifest's sha256 is ``tree_digest`` over (path relative to that folder, sha256), checked against
    ``spec["sha256"]`` when given.
    """

    kind = "hf_hub"
    required = frozenset({"repo_id", "revision"})
    optional = frozenset({"repo_type", "allow_patterns", "sha256", "version"})

    def _check_spec(self) -> None:
        super()._check_spec()
        if not self.unpinned and not COMMIT_PATTERN.match(str(self.spec["revision"])):
            raise ValueError(
                f"artifact {self.name!r}: revision must be a 40-hex commit hash, got {self.spec['revision']!r}"
            )
        if self.repo_type not in ("model", "dataset"):
            raise ValueError(f"artifact {self.name!r}: repo_type must be 'model' or 'dataset', got {self.repo_type!r}")

    @property
    def repo_type(self) -> str:
        return self.spec.get("repo_type") or "model"

    resolved: str | None = None  # the commit an unpinned revision resolved to

    @property
    def origin(self) -> str:
        return f"hf:{self.spec['repo_id']}@{self.resolved or self.spec['revision']}"

    @property
    def version(self) -> str:
        return str(self.spec.get("version") or self.resolved or self.spec["revision"])

    def snapshot(self, resources: Path) -> Path:
        """The snapshot folder in the hub cache (downloaded if needed)."""
        from huggingface_hub import snapshot_download

        folder = snapshot_download(
            self.spec["repo_id"],
            revision=self.spec["revision"],
            repo_type=self.repo_type,
            cache_dir=resources / HF_CACHE,
            allow_patterns=self.spec.get("allow_patterns"),
        )
        return Path(folder)

    def _copy_snapshot(self, snapshot: Path, dest: Path) -> None:
        from huggingface_hub.utils import filter_repo_objects

        files = [p.relative_to(snapshot).as_posix() for p in snapshot.rglob("*") if p.is_file()]
        for rel in filter_repo_objects(sorted(files), allow_patterns=self.spec.get("allow_patterns")):
            link_or_copy(snapshot / rel, dest / rel)

    def _fetch(self, resources: Path) -> dict:
        snapshot = self.snapshot(resources)
        if self.unpinned:
            # snapshot_download returns .../snapshots/<commit>: the revision the branch resolved to
            self.resolved = snapshot.name
            self.warn_unpinned("revision", self.resolved)
        with staged_dir(self.artifact_dir(resources)) as tmp:
            self._copy_snapshot(snapshot, tmp)
            hashes = hash_tree(tmp)
            if not hashes:
                raise SourceError(f"{self.name}: no files in {self.origin} match {self.spec.get('allow_patterns')}")
            digest = _check_digest(self.name, self.spec.get("sha256"), hashes, f"snapshot {self.origin}")
            nbytes = _tree_bytes(tmp, hashes)
        return self._entry(sha256=digest, nbytes=nbytes, download=None, files=_prefixed(self.name, hashes))
