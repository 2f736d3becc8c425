"""Archive members: zip, tar (gz/bz2/xz/zstd) and Debian .deb (ar) extraction, with path-traversal guards."""

from __future__ import annotations

import io
import logging
import os
import posixpath
import re
import shutil
import tarfile
import zipfile
from collections.abc import Iterable, Iterator
from fnmatch import fnmatchcase
from pathlib import Path
from typing import IO, Any

from repro.data.sources.base import ArchiveError

log = logging.getLogger(__name__)

AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DATA_TAR_SUFFIXES = ("", ".xz", ".gz", ".bz2", ".zst")


def clean_member(member: str, artifact: str) -> str | None:
    """Normalise an archive member name to a relative POSIX path (``None`` for the archive root).

    Raises ArchiveError for absolute names and names that climb out with ``..``.
    """
    text = member.replace("\\", "/")
    parts = [p for p in text.split("/") if p not in ("", ".")]
    if text.startswith("/") or ".." in parts or (parts and re.match(r"^[A-Za-z]:$", parts[0])):
        raise ArchiveError(f"{artifact}: unsafe member path {member!r} in archive (absolute or outside the folder)")
    return "/".join(parts) or None


def _matches(rel: str, patterns: Iterable[str]) -> list[str]:
    return [p for p in patterns if fnmatchcase(rel, p)]


def _target(dest: Path, rel: str, artifact: str) -> Path:
    """The path to write member ``rel`` to, after checking it stays inside ``dest`` (links included)."""
    target = dest.joinpath(*rel.split("/"))
    target.parent.mkdir(parents=True, exist_ok=True)
    if not target.parent.resolve().is_relative_to(dest.resolve()):
        raise ArchiveError(f"{artifact}: member {rel!r} would be written outside the artifact folder")
    if target.is_symlink() or target.is_file():
        target.unlink()
    return target


def _write_member(src: IO[bytes], target: Path, executable: bool) -> None:
    with open(target, "wb") as out:
        shutil.copyfileobj(src, out, 1 << 20)
    os.chmod(target, 0o755 if executable else 0o644)


def _make_symlink(dest: Path, rel: str, linkname: str, artifact: str) -> bool:
    """Create the symlink ``rel -> linkname`` if it stays inside ``dest`` (absolute targets are re-rooted)."""
    base = posixpath.dirname(rel)
    inside = posixpath.normpath(linkname.lstrip("/") if linkname.startswith("/") else posixpath.join(base, linkname))
    if inside == ".." or inside.startswith("../"):
        log.warning("%s: skipping symlink %s -> %s (points outside the artifact)", artifact, rel, linkname)
        return False
    target = _target(dest, rel, artifact)
    os.symlink(posixpath.relpath(inside, base or "."), target)
    if not Path(os.path.realpath(target)).is_relative_to(dest.resolve()):
        target.unlink()
        log.warning("%s: skipping symlink %s -> %s (resolves outside the artifact)", artifact, rel, linkname)
        return False
    return True


def _copy_hardlink(dest: Path, rel: str, linkname: str, artifact: str) -> bool:
    """A tar hard link: copy the already-extracted member it names, if it was extracted."""
    source_rel = clean_member(linkname, artifact)
    source = dest.joinpath(*source_rel.split("/")) if source_rel else None
    if source is None or not source.is_file():
        log.warning("%s: skipping hard link %s -> %s (target not extracted)", artifact, rel, linkname)
        return False
    shutil.copy2(source, _target(dest, rel, artifact))
    return True


def _require_matched(artifact: str, patterns: Iterable[str], matched: set[str], archive: str) -> None:
    missing = [p for p in patterns if p not in matched]
    if missing:
        raise ArchiveError(f"{artifact}: member pattern(s) {missing} matched nothing in {archive}")


def extract_zip(path: Path, dest: Path, patterns: list[str], artifact: str) -> set[str]:
    """Extract the zip members matching ``patterns`` into ``dest``; return the patterns that matched."""
    matched: set[str] = set()
    with zipfile.ZipFile(path) as zf:
        for info in zf.infolist():
            rel = clean_member(info.filename, artifact)
            hits = _matches(rel, patterns) if rel and not info.is_dir() else []
            if not hits:
                continue
            executable = bool((info.external_attr >> 16) & 0o111)
            with zf.open(info) as src:
                _write_member(src, _target(dest, rel, artifact), executable)
            matched.update(hits)
    return matched


def _extract_tar_member(tar: tarfile.TarFile, member: tarfile.TarInfo, rel: str, dest: Path, artifact: str) -> bool:
    if member.isreg():
        src = tar.extractfile(member)
        assert src is not None
        _write_member(src, _target(dest, rel, artifact), bool(member.mode & 0o111))
        return True
    if member.issym():
        return _make_symlink(dest, rel, member.linkname, artifact)
    if member.islnk():
        return _copy_hardlink(dest, rel, member.linkname, artifact)
    log.warning("%s: skipping special file %s (device, fifo or other)", artifact, rel)
    return False


def extract_tar(tar: tarfile.TarFile, dest: Path, patterns: list[str], artifact: str) -> set[str]:
    """Extract the tar members matching ``patterns`` (works on streams); return the patterns that matched."""
    matched: set[str] = set()
    for member in tar:
        rel = clean_member(member.name, artifact)
        hits = _matches(rel, patterns) if rel and not member.isdir() else []
        if hits and _extract_tar_member(tar, member, rel, dest, artifact):
            matched.update(hits)
    return matched


def open_tar_stream(raw: IO[bytes], artifact: str, label: str) -> tarfile.TarFile:
    """Open a (possibly gz/bz2/xz/zstd-compressed) tar archive for sequential reading."""
    buffered = raw if hasattr(raw, "peek") else io.BufferedReader(raw)  # type: ignore[arg-type]
    if buffered.peek(4)[:4] == ZSTD_MAGIC:
        try:
            import zstandard
        except ImportError:
            raise ArchiveError(
                f"{artifact}: {label} is zstd-compressed; install the 'zstandard' module to extract it"
            ) from None
        return tarfile.open(fileobj=zstandard.ZstdDecompressor().stream_reader(buffered), mode="r|")
    return tarfile.open(fileobj=buffered, mode="r|*")


class _Section(io.RawIOBase):
    """Read-only view of ``size`` bytes at ``offset`` of an open binary file."""

    def __init__(self, f: IO[bytes], offset: int, size: int) -> None:
        super().__init__()
        self._f, self._pos, self._end = f, offset, offset + size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), self._end - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._pos)
        data = self._f.read(n)
        buffer[: len(data)] = data
        self._pos += len(data)
        return len(data)


def iter_ar(f: IO[bytes]) -> Iterator[tuple[str, int, int]]:
    """Yield ``(name, offset, size)`` for each member of a Unix ``ar`` archive (the .deb container)."""
    f.seek(0)
    if f.read(len(AR_MAGIC)) != AR_MAGIC:
        raise ArchiveError("not an ar archive (bad magic)")
    offset = len(AR_MAGIC)
    while True:
        f.seek(offset)
        header = f.read(AR_HEADER_SIZE)
        if not header:
            return
        if len(header) < AR_HEADER_SIZE or header[58:60] != b"`\n":
            raise ArchiveError(f"corrupt ar member header at byte {offset}")
        name = header[:16].decode("ascii", "replace").strip().rstrip("/")
        size = int(header[48:58].decode("ascii").strip())
        yield name, offset + AR_HEADER_SIZE, size
        offset += AR_HEADER_SIZE + size + size % 2


def extract_deb(path: Path, dest: Path, patterns: list[str], artifact: str) -> set[str]:
    """Extract members of a .deb's data archive in pure Python; return the patterns that matched."""
    with open(path, "rb") as f:
        try:
            members = {name: (offset, size) for name, offset, size in iter_ar(f)}
        except ArchiveError as err:
            raise ArchiveError(f"{artifact}: {path.name}: {err}") from None
        data = [n for n in members if n.startswith("data.tar")]
        if "debian-binary" not in members or len(data) != 1:
            raise ArchiveError(f"{artifact}: {path.name} is not a Debian package (members: {sorted(members)})")
        if data[0][len("data.tar") :] not in DATA_TAR_SUFFIXES:
            raise ArchiveError(f"{artifact}: {path.name}: unsupported data archive {data[0]!r}")
        offset, size = members[data[0]]
        with open_tar_stream(_Section(f, offset, size), artifact, f"{path.name}:{data[0]}") as tar:
            return extract_tar(tar, dest, patterns, artifact)


def _is_tar(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.read(4) == ZSTD_MAGIC:
            return True
    return tarfile.is_tarfile(path)
