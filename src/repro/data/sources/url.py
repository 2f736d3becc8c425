"""Kind ``url``: a file streamed over HTTP(S), resumable, optionally a zip or tar to extract members from."""

from __future__ import annotations

import http.client
import logging
import sys
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from repro.data.sources.archives import _is_tar, _require_matched, extract_tar, extract_zip, open_tar_stream
from repro.data.sources.base import DOWNLOADS, DROP_IN, ArchiveError, FileSource, SourceUnavailable
from repro.data.sources.files import link_or_copy

log = logging.getLogger(__name__)


class _Restart(OSError):
    """The server's partial answer does not continue the .part file; start again from zero."""


class URLDownload(FileSource):
    """A file at a URL: streamed to ``<file>.part``, resumed with HTTP Range, verified, then renamed."""

    kind = "url"
    required = frozenset({"url"})
    optional = frozenset({"sha256", "filename", "members", "version"})

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
