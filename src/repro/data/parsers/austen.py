"""Jane Austen's six novels from the R package janeaustenr (Debian ``r-cran-janeaustenr``).

The package stores its data as an R lazy-load database, ``data/Rdata.rdx`` + ``data/Rdata.rdb``:

* ``Rdata.rdx`` is a gzip-compressed R serialisation of
  ``list(variables = list(<name> = c(offset, length), ...), references = ..., compressed = ...)``;
* ``Rdata.rdb`` is the concatenation of the objects; the object ``<name>`` is the byte slice
  ``rdb[offset:offset + length]``: a 4-byte big-endian uncompressed length, then (for
  ``compressed = TRUE``) a zlib stream holding that object's own R serialisation.

Each novel is a character vector with one element per line of text. The R serialisation is
decoded with the ``rdata`` package.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import rdata

# R object name -> book title, in the package's (alphabetical) order.
AUSTEN_TITLES: dict[str, str] = {
    "emma": "Emma",
    "mansfieldpark": "Mansfield Park",
    "northangerabbey": "Northanger Abbey",
    "persuasion": "Persuasion",
    "prideprejudice": "Pride and Prejudice",
    "sensesensibility": "Sense and Sensibility",
}


def _parse_r(data: bytes, source: Path, what: str) -> Any:
    """Decode one R serialisation (XDR, version 2 or 3) to Python objects."""
    try:
        return rdata.conversion.convert(rdata.parser.parse_data(data, extension=".rds"))
    except Exception as exc:  # rdata raises assorted types on bad input
        raise ValueError(f"{source}: cannot decode the R serialisation of {what}: {exc}") from exc


def _read_index(rdx: Path) -> tuple[dict[str, tuple[int, int]], int]:
    """Return ``{name: (offset, length)}`` and the compression code (1 zlib, 2 bzip2, 3 xz)."""
    try:
        raw = gzip.decompress(rdx.read_bytes())
    except (OSError, EOFError, zlib.error) as exc:
        raise ValueError(f"{rdx}: not a gzip-compressed R lazy-load index: {exc}") from exc
    index = _parse_r(raw, rdx, "the index")
    if not isinstance(index, dict) or not isinstance(index.get("variables"), dict):
        raise ValueError(f"{rdx}: R lazy-load index has no 'variables' list")
    variables: dict[str, tuple[int, int]] = {}
    for name, pos in index["variables"].items():
        if len(pos) != 2:
            raise ValueError(f"{rdx}: entry {name!r} is not an (offset, length) pair")
        variables[str(name)] = (int(pos[0]), int(pos[1]))
    compressed = index.get("compressed", [True])
    code = int(compressed[0]) if len(compressed) else 1
    return variables, code


def _decompress(blob: bytes, code: int, rdb: Path, name: str) -> bytes:
    """Undo R's lazy-load compression: ``[4-byte BE length][payload]`` (types 2/3 add a type byte)."""
    if len(blob) < 4:
        raise ValueError(f"{rdb}: object {name!r} is truncated")
    (expected,) = struct.unpack(">I", blob[:4])
    body = blob[4:]
    try:
        if code == 1:
            out = zlib.decompress(body)
        elif code in (2, 3):
            # R writes a type byte: 'Z' zlib, '2' bzip2, 'X' xz, '0' stored.
            kind, body = body[:1], body[1:]
            out = {b"Z": zlib.decompress, b"2": bz2.decompress, b"X": lzma.decompress, b"0": bytes}[kind](body)
        else:
            raise ValueError(f"unsupported compression code {code}")
    except (zlib.error, OSError, lzma.LZMAError, KeyError, ValueError) as exc:
        raise ValueError(f"{rdb}: cannot decompress object {name!r}: {exc!r}") from exc
    if len(out) != expected:
        raise ValueError(f"{rdb}: object {name!r} decompressed to {len(out)} bytes, header says {expected}")
    return out


def read_lazyload_strings(rdb: Path, rdx: Path, names: Iterable[str]) -> dict[str, list[str | None]]:
    """Read the named character vectors from an R lazy-load database (``None`` for R's NA)."""
    rdb, rdx = Path(rdb), Path(rdx)
    variables, code = _read_index(rdx)
    data = rdb.read_bytes()
    out: dict[str, list[str | None]] = {}
    for name in names:
        if name not in variables:
            raise ValueError(f"{rdx}: R lazy-load index has no object {name!r} (has {sorted(variables)})")
        offset, length = variables[name]
        if offset < 0 or length < 0 or offset + length > len(data):
            raise ValueError(f"{rdb}: object {name!r} at [{offset}, {offset + length}) lies outside the file")
        value = _parse_r(_decompress(data[offset : offset + length], code, rdb, name), rdb, repr(name))
        # A character vector converts to a 1-d numpy array of str (object dtype when it holds NA).
        if getattr(value, "ndim", None) != 1 or value.dtype.kind not in "UO":
            raise ValueError(f"{rdb}: object {name!r} is not a character vector")
        if any(v is not None and not isinstance(v, str) for v in value.tolist()):
            raise ValueError(f"{rdb}: object {name!r} is not a character vector")
        out[name] = value.tolist()
    return out


def read_janeaustenr(rdb: Path, rdx: Path) -> dict[str, str]:
    """Map each of the six janeaustenr object names to its text, lines joined by ``"\\n"`` (NA -> "")."""
    vectors = read_lazyload_strings(rdb, rdx, AUSTEN_TITLES)
    return {name: "\n".join("" if line is None else line for line in lines) for name, lines in vectors.items()}
