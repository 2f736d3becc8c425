"""Plain-text corpora for calibration, perplexity and cloze items (default tier).

* Jane Austen's six novels from Debian's ``r-cran-janeaustenr`` (an R lazy-load
  database, read without R).  Split as the brief suggests: *Persuasion* test,
  *Northanger Abbey* validation, the other four train/calibration; the split is config.
* The King James Bible from Debian's ``bible-kjv`` reader and ``bible-kjv-text`` data,
  dumped with the packaged reader program (its data format is the program's own).
* Paper tier: WikiText-2 (raw) from the hub snapshot's Parquet files, each split joined with
  ``"\n\n"`` as every repository in the brief does (§2.2: ``"\n\n".join(test["text"])``).
"""

from __future__ import annotations

import logging
import os
import stat
import subprocess
from pathlib import Path

from repro.data.parsers.austen import read_janeaustenr
from repro.data.parsers.kjv import clean_bible_dump, dump_command
from repro.io import write_text

log = logging.getLogger(__name__)


def _find_one(root: Path, pattern: str) -> Path:
    hits = sorted(Path(root).rglob(pattern))
    if len(hits) != 1:
        raise FileNotFoundError(f"expected exactly one {pattern!r} under {root}, found {len(hits)}")
    return hits[0]


def prepare_austen(artifact_dir, split: dict[str, list[str]], outputs: dict[str, Path]) -> dict[str, int]:
    """Write one text file per split (novels joined by blank lines); return characters per split."""
    rdb = _find_one(artifact_dir, "Rdata.rdb")
    novels = read_janeaustenr(rdb, rdb.with_suffix(".rdx"))
    used = [n for names in split.values() for n in names]
    unknown = sorted(set(used) - set(novels))
    if unknown:
        raise ValueError(f"data.austen_split names unknown novel(s) {unknown}; available: {sorted(novels)}")
    if len(set(used)) != len(used):
        raise ValueError(f"data.austen_split puts a novel in more than one split: {split}")
    sizes = {}
    for name, path in outputs.items():
        text = "\n\n".join(novels[n] for n in split[name]) + "\n"
        write_text(text, path)
        sizes[name] = len(text)
        log.info("austen %s: %s, %d characters", name, split[name], len(text))
    return sizes


def prepare_kjv(program_dir, text_dir, output) -> int:
    """Dump the whole Bible with the packaged reader and keep the verse text; return its length."""
    binary = _find_one(program_dir, "bible")
    data = _find_one(text_dir, "bible.data").parent
    binary.chmod(binary.stat().st_mode | stat.S_IXUSR)
    proc = subprocess.run(
        dump_command(binary, data), capture_output=True, text=True, env={**os.environ, "LC_ALL": "C.UTF-8"}
    )
    if proc.returncode != 0 or not proc.stdout.strip():
        raise RuntimeError(
            f"artifact bible_kjv: the reader {binary} failed (exit {proc.returncode}): {proc.stderr.strip()[:500]}"
        )
    text = clean_bible_dump(proc.stdout)
    write_text(text, output)
    log.info("kjv: %d characters", len(text))
    return len(text)


WIKITEXT_JOIN = "\n\n"


def prepare_wikitext2(artifact_dir, outputs: dict[str, Path], config: str = "wikitext-2-raw-v1") -> dict[str, int]:
    """Write ``"\n\n".join(rows["text"])`` of each split (``train``, ``validation``, ``test``) of WikiText-2."""
    import pyarrow.parquet as pq

    sizes = {}
    for split, path in outputs.items():
        files = sorted((Path(artifact_dir) / config).glob(f"{split}-*.parquet"))
        if not files:
            raise FileNotFoundError(f"artifact wikitext2: no {config}/{split}-*.parquet under {artifact_dir}")
        rows = [t for f in files for t in pq.read_table(f, columns=["text"]).column("text").to_pylist()]
        text = WIKITEXT_JOIN.join(rows)
        write_text(text, path)
        sizes[split] = len(text)
        log.info("wikitext2 %s: %d rows, %d characters", split, len(rows), len(text))
    return sizes
