"""janeaustenr lazy-load DB: a tiny R database written here by a minimal XDR serialiser reads back exactly."""

from __future__ import annotations

import gzip
import struct
import zlib

import pytest

from repro.data.parsers.austen import AUSTEN_TITLES, read_janeaustenr, read_lazyload_strings

# --- a minimal writer for R's XDR serialisation format ("X\n", big-endian ints) -----------------
NILVALUE, SYMSXP, LISTSXP, CHARSXP, LGLSXP, INTSXP, STRSXP, VECSXP = 254, 1, 2, 9, 10, 13, 16, 19
HAS_ATTR, HAS_TAG = 1 << 9, 1 << 10
UTF8_GP = 1 << 3  # CHARSXP "levels" bit for UTF-8 strings, stored in bits 12.. of the flags


def _int(*values: int) -> bytes:
    return struct.pack(f">{len(values)}i", *values)


def _char(s: str | None) -> bytes:
    if s is None:  # NA_STRING
        return _int(CHARSXP, -1)
    raw = s.encode("utf-8")
    return _int(CHARSXP | (UTF8_GP << 12), len(raw)) + raw


def _strsxp(items: list[str | None]) -> bytes:
    return _int(STRSXP, len(items)) + b"".join(_char(s) for s in items)


def _tagged_pairlist(pairs: list[tuple[str, bytes]]) -> bytes:
    out = b""
    for tag, value in pairs:
        out += _int(LISTSXP | HAS_TAG) + _int(SYMSXP) + _char(tag) + value
    return out + _int(NILVALUE)


def _named_list(items: dict[str, bytes]) -> bytes:
    body = _int(VECSXP | HAS_ATTR, len(items)) + b"".join(items.values())
    return body + _tagged_pairlist([("names", _strsxp(list(items)))])


def _serialise(obj: bytes, version: int = 3) -> bytes:
    head = b"X\n" + _int(version, 0x00040201, 0x00030500 if version == 3 else 0x00020300)
    if version == 3:
        head += _int(5) + b"UTF-8"
    return head + obj


def write_lazyload(tmp_path, objects: dict[str, bytes], index_names=None, version: int = 3):
    """Write Rdata.rdb/Rdata.rdx holding the given serialised objects (zlib, R's ``compressed = TRUE``)."""
    rdb, positions = b"", {}
    for name, obj in objects.items():
        payload = _serialise(obj, version)
        blob = struct.pack(">I", len(payload)) + zlib.compress(payload)
        positions[name] = _int(INTSXP, 2, len(rdb), len(blob))
        rdb += blob
    names = list(objects) if index_names is None else index_names
    index = _named_list(
        {
            "variables": _named_list({n: positions[n] for n in names}),
            "references": _named_list({}),
            "compressed": _int(LGLSXP, 1, 1),
        }
    )
    (tmp_path / "Rdata.rdb").write_bytes(rdb)
    (tmp_path / "Rdata.rdx").write_bytes(gzip.compress(_serialise(index, version)))
    return tmp_path / "Rdata.rdb", tmp_path / "Rdata.rdx"


def _novels():
    return {name: [title.upper(), "", f"{title} — line two", None, "end"] for name, title in AUSTEN_TITLES.items()}


@pytest.mark.parametrize("version", [2, 3])
def test_reads_all_six_novels(tmp_path, version):
    novels = _novels()
    rdb, rdx = write_lazyload(tmp_path, {n: _strsxp(lines) for n, lines in novels.items()}, version=version)
    texts = read_janeaustenr(rdb, rdx)
    assert list(texts) == list(AUSTEN_TITLES)
    assert texts["persuasion"] == "PERSUASION\n\nPersuasion — line two\n\nend"  # NA -> empty line
    assert texts["prideprejudice"].splitlines()[2] == "Pride and Prejudice — line two"


def test_na_is_none_in_the_raw_vectors(tmp_path):
    rdb, rdx = write_lazyload(tmp_path, {"x": _strsxp(["a", None, "b"])})
    assert read_lazyload_strings(rdb, rdx, ["x"]) == {"x": ["a", None, "b"]}


def test_missing_object_names_the_index_file(tmp_path):
    objects = {n: _strsxp(lines) for n, lines in _novels().items()}
    rdb, rdx = write_lazyload(tmp_path, objects, index_names=[n for n in objects if n != "emma"])
    with pytest.raises(ValueError, match=r"Rdata\.rdx.*'emma'"):
        read_janeaustenr(rdb, rdx)


def test_non_gzip_index_is_rejected(tmp_path):
    rdb, rdx = write_lazyload(tmp_path, {"x": _strsxp(["a"])})
    rdx.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match=r"Rdata\.rdx.*gzip"):
        read_lazyload_strings(rdb, rdx, ["x"])


def test_corrupt_object_names_the_database_file(tmp_path):
    rdb, rdx = write_lazyload(tmp_path, {"x": _strsxp(["a"])})
    data = bytearray(rdb.read_bytes())
    data[6:10] = b"\xff\xff\xff\xff"
    rdb.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=r"Rdata\.rdb.*'x'"):
        read_lazyload_strings(rdb, rdx, ["x"])


def test_truncated_database_is_rejected(tmp_path):
    rdb, rdx = write_lazyload(tmp_path, {"x": _strsxp(["a"])})
    rdb.write_bytes(rdb.read_bytes()[:-3])
    with pytest.raises(ValueError, match=r"Rdata\.rdb.*outside the file"):
        read_lazyload_strings(rdb, rdx, ["x"])


def test_non_character_object_is_rejected(tmp_path):
    rdb, rdx = write_lazyload(tmp_path, {"x": _int(INTSXP, 2, 1, 2)})
    with pytest.raises(ValueError, match=r"Rdata\.rdb.*not a character vector"):
        read_lazyload_strings(rdb, rdx, ["x"])
