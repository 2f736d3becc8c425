"""Kind ``debian_package``: a .deb fetched with ``apt-get download``, members extracted in Python.

When ``apt-get`` is missing or cannot find the pinned version (another distribution, e.g.
Ubuntu, or stale lists) and the spec names the file's ``pool`` path, the .deb is fetched from
Debian's archive directly (``mirror``, default deb.debian.org); the pinned sha256 guards it.
"""

from __future__ import annotations

import glob
import shutil
import subprocess
import urllib.request
from pathlib import Path

from repro.data.sources.archives import _require_matched, extract_deb
from repro.data.sources.base import DROP_IN, FileSource, SourceUnavailable


class DebianPackage(FileSource):
    """A .deb from Debian's archive via ``apt-get download`` (no root); data members extracted in Python."""

    kind = "debian_package"
    required = frozenset({"package", "version", "sha256", "members"})
    optional = frozenset({"apt_get", "pool", "mirror"})
    default_mirror = "http://deb.debian.org/debian"

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
        try:
            return self._apt_get_download(tmp)
        except OSError as apt_error:
            if not self.spec.get("pool"):
                raise self._unavailable(resources, str(apt_error)) from None
            try:
                return self._pool_download(tmp)
            except OSError as pool_error:
                raise self._unavailable(resources, f"{apt_error}; archive download failed: {pool_error}") from None

    def _apt_get_download(self, tmp: Path) -> tuple[Path, str]:
        command = str(self.spec.get("apt_get") or "apt-get")
        apt_get = shutil.which(command)
        if apt_get is None:
            raise OSError(f"{command!r} not found")
        target = f"{self.spec['package']}={self.spec['version']}"
        proc = subprocess.run([apt_get, "download", target], cwd=tmp, capture_output=True, text=True)
        debs = sorted(tmp.glob("*.deb"))
        if proc.returncode != 0 or len(debs) != 1:
            for deb in debs:
                deb.unlink()
            reason = (proc.stderr or proc.stdout).strip()[-1000:] or f"{len(debs)} .deb file(s) written"
            raise OSError(f"apt-get download exited {proc.returncode}: {reason}")
        return debs[0], debs[0].name

    def _pool_download(self, tmp: Path) -> tuple[Path, str]:
        """The .deb straight from the archive's pool (checksum-verified by the caller)."""
        mirror = str(self.spec.get("mirror") or self.default_mirror).rstrip("/")
        url = f"{mirror}/{str(self.spec['pool']).lstrip('/')}"
        name = url.rsplit("/", 1)[-1]
        target = tmp / name
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:
            shutil.copyfileobj(response, out, length=1 << 20)
        return target, name

    def _drop_in_candidates(self, drop_dir: Path) -> list[Path]:
        return list(drop_dir.glob(f"{glob.escape(self.spec['package'])}_*.deb"))

    def _extract(self, download: Path, dest: Path) -> None:
        matched = extract_deb(download, dest, self.members, self.name)
        _require_matched(self.name, self.members, matched, download.name)
