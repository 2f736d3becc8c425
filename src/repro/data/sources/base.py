"""The shared ``Source`` machinery: exceptions, spec checks, checksums, drop-ins and manifest entries.

Layout under ``resources``:

* ``downloads/<name>/<file>``: the kept download, placed only after its sha256 matched the pin;
* ``artifacts/<name>/<member path>``: the extracted members (built in a hidden folder beside it
  and swapped in with ``os.replace``, so an interrupted run never leaves a complete-looking folder);
* ``drop-in/<file>``: a file placed here by hand is used instead of downloading (kinds that
  download a single file); it is checksum-verified like a download;
* ``hf-cache/``, ``pyg/<name>/``: the working folders of huggingface_hub and torch_geometric;
* ``manifest/<name>.json``: the manifest entry, written last;
* ``.locks/<name>.lock``: the lock a fetch holds throughout (``repro.io.locked``).

An *unpinned* artifact (``unpinned: true``; URL and hub kinds only) has no digest or commit in
the config yet, because it could not be looked up where the config was written.  Its first
fetch records the actual sha256 (or resolved commit) in the manifest and logs a warning with
the value to pin; from then on the kept download is reused as is.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

from repro.data.manifest import check_name, sha256_file, tree_digest, write_entry
from repro.data.sources.files import hash_tree, staged_dir

log = logging.getLogger(__name__)

DOWNLOADS = "downloads"
ARTIFACTS = "artifacts"
DROP_IN = "drop-in"
LOCKS = ".locks"

COMMON_KEYS = frozenset({"kind", "licence", "unpinned"})
UNPINNABLE_KINDS = frozenset({"url", "hf_hub", "torch_geometric"})
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")


class SourceError(RuntimeError):
    """An artifact could not be fetched or extracted."""


class ChecksumError(SourceError):
    """A download's sha256 differs from the pinned value (the file has been deleted)."""


class SourceUnavailable(SourceError):
    """The source cannot be reached from here; the message says which file to drop in where."""


class ArchiveError(SourceError):
    """An archive is malformed, unsafe, or lacks the requested members."""


def _prefixed(name: str, hashes: Mapping[str, str]) -> dict[str, str]:
    """Paths relative to the artifact folder -> paths relative to ``resources``."""
    return {f"{ARTIFACTS}/{name}/{rel}": digest for rel, digest in sorted(hashes.items())}


def _check_digest(name: str, pinned: str | None, hashes: Mapping[str, str], label: str) -> str:
    digest = tree_digest(hashes.items())
    if pinned is not None and digest != pinned:
        raise ChecksumError(f"{name}: sha256 mismatch for {label}: expected {pinned}, got {digest}")
    return digest


class Source(ABC):
    """One artifact of one kind: checks its spec, fetches it, and writes its manifest entry."""

    kind: ClassVar[str]
    required: ClassVar[frozenset[str]] = frozenset()
    optional: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, name: str, spec: Mapping[str, Any]) -> None:
        self.name = check_name(name)
        self.spec = dict(spec)
        self._check_spec()

    def _check_spec(self) -> None:
        where = f"artifact {self.name!r} (kind {self.kind})"
        if self.spec.get("kind", self.kind) != self.kind:
            raise ValueError(f"{where}: spec has kind {self.spec['kind']!r}")
        missing = sorted((self.required | {"licence"}) - set(self.spec))
        unknown = sorted(set(self.spec) - self.required - self.optional - COMMON_KEYS)
        if missing or unknown:
            allowed = sorted(self.required | self.optional | COMMON_KEYS)
            raise ValueError(f"{where}: missing key(s) {missing}, unknown key(s) {unknown}; allowed: {allowed}")
        if self.unpinned and self.kind not in UNPINNABLE_KINDS:
            raise ValueError(f"{where}: only {sorted(UNPINNABLE_KINDS)} artifacts may be unpinned")
        pinned = self.spec.get("sha256")
        if pinned is not None and not SHA256_PATTERN.match(str(pinned)):
            raise ValueError(f"{where}: sha256 must be 64 lower-case hex digits, got {pinned!r}")

    @property
    def unpinned(self) -> bool:
        return bool(self.spec.get("unpinned", False))

    def warn_unpinned(self, what: str, value: str) -> None:
        log.warning("%s is unpinned: to pin it, add `%s: %s` to its config entry", self.name, what, value)

    @property
    @abstractmethod
    def origin(self) -> str:
        """Where the artifact comes from, as recorded in the manifest."""

    @property
    @abstractmethod
    def version(self) -> str | None:
        """The version recorded in the manifest."""

    def artifact_dir(self, resources: Path) -> Path:
        return resources / ARTIFACTS / self.name

    def fetch(self, resources: Path | str) -> dict:
        """Fetch, verify and place the artifact; write and return its manifest entry.

        Holds a lock on the artifact name throughout, so two processes fetching the same artifact
        into one ``resources`` (two runs sharing it) take turns instead of swapping folders under
        each other; the second one reuses the first one's verified download.
        """
        from repro.io import locked  # here: repro.io pulls in pandas, which fetching does not need

        resources = Path(resources)
        with locked(resources / LOCKS / f"{self.name}.lock"):
            entry = self._fetch(resources)
            write_entry(resources, entry)
        log.info("%s: %d file(s) in %s", self.name, len(entry["files"]), self.artifact_dir(resources))
        return entry

    @abstractmethod
    def _fetch(self, resources: Path) -> dict:
        """Do the work and return the manifest entry."""

    def _entry(self, *, sha256: str, nbytes: int, download: str | None, files: dict[str, str]) -> dict:
        return {
            "name": self.name,
            "version": self.version,
            "source": self.kind,
            "origin": self.origin,
            "sha256": sha256,
            "bytes": nbytes,
            "licence": self.spec["licence"],
            "download": download,
            "files": files,
        }


class FileSource(Source):
    """A source that downloads one pinned file, keeps it, and extracts members from it."""

    @property
    def pinned(self) -> str | None:
        """The pinned sha256, or None for an unpinned artifact."""
        return self.spec.get("sha256")

    @property
    def members(self) -> list[str]:
        return list(self.spec.get("members") or [])

    @abstractmethod
    def _download(self, tmp: Path, dest_dir: Path, resources: Path) -> tuple[Path, str]:
        """Download the file; return where it is and the file name to keep it under."""

    @abstractmethod
    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        """Files in ``drop_dir`` that may stand in for the download."""

    @abstractmethod
    def _extract(self, download: Path, dest: Path) -> None:
        """Extract the wanted members of the kept download into the empty folder ``dest``."""

    def _fetch(self, resources: Path) -> dict:
        download = self._acquire(resources)
        final = self.artifact_dir(resources)
        with staged_dir(final) as tmp:
            self._extract(download, tmp)
            hashes = hash_tree(tmp)
        return self._entry(
            sha256=self.pinned or sha256_file(download),
            nbytes=download.stat().st_size,
            download=download.relative_to(resources).as_posix(),
            files=_prefixed(self.name, hashes),
        )

    def _acquire(self, resources: Path) -> Path:
        """The verified download at ``downloads/<name>/<file>``: reused, dropped in, or downloaded."""
        dest_dir = resources / DOWNLOADS / self.name
        dest_dir.mkdir(parents=True, exist_ok=True)
        kept = self._kept(dest_dir)
        if kept is not None:
            log.info("%s: reusing verified download %s", self.name, kept)
            return kept
        with tempfile.TemporaryDirectory(prefix=".tmp-", dir=dest_dir) as tmp:
            got, filename, label = self._obtain(resources, Path(tmp), dest_dir)
            self._verify_checksum(got, label)
            final = dest_dir / filename
            os.replace(got, final)
        self._remove_stale(dest_dir, final)
        return final

    def _obtain(self, resources: Path, tmp: Path, dest_dir: Path) -> tuple[Path, str, str]:
        drop = self._find_drop_in(resources / DROP_IN)
        if drop is not None:
            log.info("%s: using drop-in file %s", self.name, drop)
            copy = tmp / drop.name
            shutil.copyfile(drop, copy)
            return copy, drop.name, f"drop-in file {drop}"
        got, filename = self._download(tmp, dest_dir, resources)
        return got, filename, filename

    def _find_drop_in(self, drop_dir: Path) -> Path | None:
        candidates = sorted(self._drop_in_candidates(drop_dir)) if drop_dir.is_dir() else []
        if len(candidates) > 1 and self.pinned is not None:
            good = [c for c in candidates if sha256_file(c) == self.pinned]
            candidates = good or candidates
        return candidates[0] if candidates else None

    def _kept(self, dest_dir: Path) -> Path | None:
        for path in sorted(dest_dir.iterdir()):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".part"):
                if self.pinned is None or sha256_file(path) == self.pinned:
                    return path
        return None

    def _remove_stale(self, dest_dir: Path, keep: Path) -> None:
        for path in dest_dir.iterdir():
            if path != keep and path.is_file() and not path.name.startswith("."):
                path.unlink()

    def _verify_checksum(self, path: Path, label: str) -> None:
        actual = sha256_file(path)
        if self.pinned is None:
            self.warn_unpinned("sha256", actual)
            return
        if actual != self.pinned:
            path.unlink(missing_ok=True)
            raise ChecksumError(f"{self.name}: sha256 mismatch for {label}: expected {self.pinned}, got {actual}")
