"""C4 calibration text (paper tier): the first documents of one ``allenai/c4`` English train shard.

SparseGPT and Wanda calibrate on random windows of C4 train documents (brief ``llm_compression.md``
§5), read from the shard ``en/c4-train.00000-of-01024.json.gz`` (artifact ``c4_shard``): gzipped
JSON lines, one document per line in the field ``"text"``.

:func:`repro.llm.calibration.calibration_batches` tokenises one whole text and draws window starts
uniformly over it, so the documents are written as one text, joined by a blank line (``"\\n\\n"``, as
the WikiText-2 splits are).  A window may therefore span two documents, where the official loaders
draw each window inside one document long enough to hold it.

Only the first ``documents`` documents are kept (20,000 by default; C4 documents average a few
hundred tokens, so about 8-9 M LLaMA tokens).  The sampler tokenises the text in one call and holds
every token id in memory: the whole shard (about 356,000 documents, several hundred MB of text) would
cost every calibration and compression job minutes of tokenising and gigabytes of memory, while
128 windows of 4096 tokens need 0.5 M tokens.  Twenty thousand documents are over 15 times that, so
the windows seldom overlap.

This module is separate from :mod:`repro.data.corpora` so that its edits never change the code
digest of the default tier's text preparations.
"""

from __future__ import annotations

import gzip
import json
import logging
import zlib
from pathlib import Path

from repro.io import write_text

log = logging.getLogger(__name__)

C4_JOIN = "\n\n"
C4_SHARD = "en/c4-train.00000-of-01024.json.gz"
C4_DOCUMENTS = 20_000

__all__ = ["C4_DOCUMENTS", "C4_JOIN", "C4_SHARD", "prepare_c4", "read_c4_documents"]


def read_c4_documents(path, max_documents: int | None = None) -> list[str]:
    """The ``"text"`` of the first ``max_documents`` lines (all with ``None``) of a gzipped JSON-lines file.

    Blank lines are skipped.  Raises ``FileNotFoundError`` for a missing file and ``ValueError``
    naming the file (and the line, where one is to blame) for a file that is not gzip, a line that is
    not UTF-8 or not a JSON object, a line without a string ``"text"``, or a file without documents.
    """
    path = Path(path)
    if max_documents is not None and max_documents < 1:
        raise ValueError(f"max_documents must be at least 1, got {max_documents}")
    if not path.is_file():
        raise FileNotFoundError(f"C4 shard {path}: no such file (is artifact c4_shard downloaded?)")
    documents: list[str] = []
    lineno = 0
    try:
        with gzip.open(path, "rb") as fh:
            for lineno, raw in enumerate(fh, start=1):
                if max_documents is not None and len(documents) >= max_documents:
                    break
                if not raw.strip():
                    continue
                documents.append(_document(raw, path, lineno))
    except (gzip.BadGzipFile, EOFError, zlib.error) as err:
        where = f" after line {lineno}" if lineno else ""
        raise ValueError(f"C4 shard {path}: not a complete gzip file{where} ({err})") from None
    if not documents:
        raise ValueError(f"C4 shard {path}: no documents")
    return documents


def _document(raw: bytes, path: Path, lineno: int) -> str:
    try:
        record = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"C4 shard {path}, line {lineno}: not UTF-8 ({err.reason})") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"C4 shard {path}, line {lineno}: not JSON ({err.msg} at column {err.colno})") from None
    if not isinstance(record, dict):
        raise ValueError(f"C4 shard {path}, line {lineno}: a JSON {type(record).__name__}, not an object")
    text = record.get("text")
    if not isinstance(text, str):
        found = "no field 'text'" if "text" not in record else f"field 'text' is a {type(text).__name__}"
        raise ValueError(f"C4 shard {path}, line {lineno}: {found} (keys: {sorted(record)})")
    return text


def prepare_c4(artifact_dir, output, shard: str = C4_SHARD, documents: int = C4_DOCUMENTS) -> dict[str, int]:
    """Write the first ``documents`` documents of ``<artifact_dir>/<shard>`` joined by ``"\\n\\n"``.

    Returns the number of documents and characters written.  ``shard`` must stay inside
    ``artifact_dir``.
    """
    root = Path(artifact_dir).resolve()
    path = (root / shard).resolve()
    if not path.is_relative_to(root):
        raise ValueError(f"data.c4.shard {shard!r} points outside the artifact folder {artifact_dir}")
    docs = read_c4_documents(path, documents)
    text = C4_JOIN.join(docs)
    write_text(text, output)
    if len(docs) < documents:
        log.warning("c4: the shard %s holds only %d documents (%d asked for)", path, len(docs), documents)
    log.info("c4: %d documents, %d characters -> %s", len(docs), len(text), output)
    return {"documents": len(docs), "characters": len(text)}
