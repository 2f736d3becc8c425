"""repro.data.manifest and the ``python -m repro.data.verify`` CLI, on artifacts built from drop-in files."""

from __future__ import annotations

import hashlib
import io
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from repro.data.manifest import (
    ENTRY_KEYS,
    manifest_path,
    read_manifest,
    sha256_file,
    tree_digest,
    verify,
    write_entry,
)
from repro.data.sources import fetch

MEMBERS = {"corpus/a.txt": b"alpha\n" * 100, "corpus/sub/b.txt": b"beta\n", "corpus/skip.md": b"# no\n"}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _zip_bytes(members: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return buf.getvalue()


@pytest.fixture
def resources(tmp_path) -> Path:
    """Two artifacts fetched from drop-in files (no network): a zip with members and a plain file."""
    res = tmp_path / "resources"
    (res / "drop-in").mkdir(parents=True)
    bundle = _zip_bytes(MEMBERS)
    (res / "drop-in/bundle.zip").write_bytes(bundle)
    (res / "drop-in/plain.bin").write_bytes(b"plain")
    url = "http://127.0.0.1:9"
    spec = {"kind": "url", "url": f"{url}/bundle.zip", "sha256": sha(bundle), "licence": "MIT", "members": ["*.txt"]}
    fetch("bundle", spec, res)
    fetch("plain", {"kind": "url", "url": f"{url}/plain.bin", "sha256": sha(b"plain"), "licence": "CC0"}, res)
    return res


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "repro.data.verify", *args], capture_output=True, text=True)


def test_manifest_entry_contents(resources):
    entry = read_manifest(resources)["bundle"]
    assert tuple(entry) == tuple(sorted(ENTRY_KEYS))  # written with sorted keys
    bundle = (resources / "drop-in/bundle.zip").read_bytes()
    assert entry["name"] == "bundle" and entry["source"] == "url" and entry["licence"] == "MIT"
    assert entry["origin"] == "http://127.0.0.1:9/bundle.zip" and entry["version"] is None
    assert entry["sha256"] == sha(bundle) and entry["bytes"] == len(bundle)
    assert entry["download"] == "downloads/bundle/bundle.zip"
    assert sha256_file(resources / entry["download"]) == entry["sha256"]
    assert entry["files"] == {
        "artifacts/bundle/corpus/a.txt": sha(MEMBERS["corpus/a.txt"]),
        "artifacts/bundle/corpus/sub/b.txt": sha(MEMBERS["corpus/sub/b.txt"]),
    }
    for rel, digest in entry["files"].items():
        assert sha256_file(resources / rel) == digest
    assert json.loads(manifest_path(resources, "bundle").read_text()) == entry
    assert sorted(read_manifest(resources)) == ["bundle", "plain"]


def test_verify_detects_a_corrupted_byte(resources):
    assert verify(resources) == []
    target = resources / "artifacts/bundle/corpus/sub/b.txt"
    data = bytearray(target.read_bytes())
    data[0] ^= 0xFF
    target.write_bytes(bytes(data))
    problems = verify(resources)
    assert len(problems) == 1
    assert problems[0].startswith("bundle: artifacts/bundle/corpus/sub/b.txt: sha256 mismatch")
    assert sha(MEMBERS["corpus/sub/b.txt"]) in problems[0] and sha(bytes(data)) in problems[0]
    assert verify(resources, ["plain"]) == []


def test_verify_detects_missing_files_and_names(resources):
    (resources / "downloads/bundle/bundle.zip").unlink()
    expected = sha((resources / "drop-in/bundle.zip").read_bytes())
    assert verify(resources) == [f"bundle: downloads/bundle/bundle.zip: missing (expected sha256 {expected})"]
    assert verify(resources, ["nope"])[0].startswith("nope: not in the manifest")


def test_cli_exit_codes(resources, tmp_path):
    ok = _cli("--resources", str(resources))
    assert ok.returncode == 0, ok.stderr
    assert [line.split()[:2] for line in ok.stdout.splitlines()] == [["OK", "bundle:"], ["OK", "plain:"]]

    (resources / "artifacts/bundle/corpus/a.txt").write_bytes(b"tampered")
    bad = _cli("--resources", str(resources))
    assert bad.returncode == 1
    assert "FAIL bundle: artifacts/bundle/corpus/a.txt: sha256 mismatch" in bad.stdout
    assert f"expected {sha(MEMBERS['corpus/a.txt'])}, got {sha(b'tampered')}" in bad.stdout
    assert "OK   plain" in bad.stdout

    assert _cli("--resources", str(resources), "plain").returncode == 0
    assert _cli("--resources", str(resources), "unknown").returncode == 1
    empty = _cli("--resources", str(tmp_path / "nowhere"))
    assert empty.returncode == 2 and "no manifest entries" in empty.stderr
    (tmp_path / "empty/manifest").mkdir(parents=True)
    assert _cli("--resources", str(tmp_path / "empty")).returncode == 2


def test_write_entry_checks_keys_and_name(tmp_path):
    entry = {key: None for key in ENTRY_KEYS} | {"name": "x", "files": {}}
    write_entry(tmp_path, entry)
    assert read_manifest(tmp_path) == {"x": entry}
    with pytest.raises(ValueError, match=r"missing keys \['files'\]"):
        write_entry(tmp_path, {k: v for k, v in entry.items() if k != "files"})
    with pytest.raises(ValueError, match=r"unknown keys \['extra'\]"):
        write_entry(tmp_path, entry | {"extra": 1})
    with pytest.raises(ValueError, match="invalid artifact name"):
        write_entry(tmp_path, entry | {"name": "../x"})
    assert read_manifest(tmp_path / "none") == {}


def test_tree_digest_is_order_free():
    pairs = [("b", "2" * 64), ("a", "1" * 64)]
    assert tree_digest(pairs) == tree_digest(reversed(pairs))
    expected = hashlib.sha256(f"a\0{'1' * 64}\nb\0{'2' * 64}\n".encode()).hexdigest()
    assert tree_digest(pairs) == expected
