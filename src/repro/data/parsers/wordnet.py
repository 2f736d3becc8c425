"""WordNet 3.0 synsets and pointers from the ``data.{noun,verb,adj,adv}`` files (Debian ``wordnet-base``).

Format (wndb(5WN)): after a license header whose lines start with two spaces, each line is one synset::

    offset lex_filenum ss_type w_cnt [word lex_id]... p_cnt [ptr_symbol offset pos source/target]...
        [f_cnt [+ f_num w_num]...] | gloss

``offset`` is the synset's byte offset in its file (8 decimal digits), ``lex_filenum`` 2 decimal
digits, ``ss_type`` one of ``n v a s r`` (``s``: adjective satellite, stored in ``data.adj``),
``w_cnt`` 2 *hex* digits, ``lex_id`` 1 hex digit, ``p_cnt`` 3 *decimal* digits, ``source/target``
4 hex digits; only verbs carry the frame list. Adjective words may end in a syntactic marker
``(a)``, ``(p)`` or ``(ip)``; it is stripped, and underscores in words become spaces.

Pointers name their target by (offset, pos) with ``pos`` in ``n v a r`` -- a satellite is addressed
as ``a`` -- so :func:`pointer_edges` resolves targets per data file, not by key string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

# Lexicographer file names, indexed by lex_filenum (WordNet 3.0 ``lexnames``).
LEXNAMES: tuple[str, ...] = (
    "adj.all", "adj.pert", "adv.all", "noun.Tops", "noun.act", "noun.animal", "noun.artifact",
    "noun.attribute", "noun.body", "noun.cognition", "noun.communication", "noun.event", "noun.feeling",
    "noun.food", "noun.group", "noun.location", "noun.motive", "noun.object", "noun.person",
    "noun.phenomenon", "noun.plant", "noun.possession", "noun.process", "noun.quantity", "noun.relation",
    "noun.shape", "noun.state", "noun.substance", "noun.time", "verb.body", "verb.change", "verb.cognition",
    "verb.communication", "verb.competition", "verb.consumption", "verb.contact", "verb.creation",
    "verb.emotion", "verb.motion", "verb.perception", "verb.possession", "verb.social", "verb.stative",
    "verb.weather", "adj.ppl",
)  # fmt: skip

# Pointer symbols for the taxonomy (hypernym/hyponym, instance of both) and for topic domains.
HYPERNYM_SYMBOLS: frozenset[str] = frozenset({"@", "~", "@i", "~i"})
DOMAIN_TOPIC_SYMBOLS: frozenset[str] = frozenset({";c", "-c"})

DATA_FILES: dict[str, str] = {"n": "data.noun", "v": "data.verb", "a": "data.adj", "r": "data.adv"}
# Synset types stored in each data file, keyed by the file's pointer pos.
_FILE_TYPES: dict[str, frozenset[str]] = {
    "n": frozenset("n"),
    "v": frozenset("v"),
    "a": frozenset("as"),
    "r": frozenset("r"),
}
_MARKER = re.compile(r"\((?:a|p|ip)\)$")


@dataclass(frozen=True)
class Pointer:
    """One pointer: relation ``symbol`` to the synset at ``target_offset`` in the ``target_pos`` file.

    ``source_target`` is the 4-hex-digit field: ``"0000"`` for a semantic (synset-to-synset) pointer,
    otherwise source word number and target word number (lexical pointer).
    """

    symbol: str
    target_offset: int
    target_pos: str
    source_target: str


@dataclass(frozen=True)
class Synset:
    offset: int
    pos: str  # n, v, a, s (adjective satellite) or r
    lex_filenum: int
    words: tuple[str, ...]
    pointers: tuple[Pointer, ...]
    gloss: str

    @property
    def key(self) -> str:
        """Unique synset id, e.g. ``"n00001740"`` (satellites keep ``s``)."""
        return f"{self.pos}{self.offset:08d}"

    @property
    def lexname(self) -> str:
        return LEXNAMES[self.lex_filenum]

    @property
    def file_pos(self) -> str:
        """The pos under which pointers address this synset (``s`` -> ``a``)."""
        return "a" if self.pos == "s" else self.pos


def _parse_line(line: str) -> Synset:
    """Parse one synset line; raises ValueError/IndexError/KeyError on malformed input."""
    data, bar, gloss = line.partition(" | ")
    if not bar:
        if not line.rstrip().endswith("|"):
            raise ValueError("no ' | ' gloss separator")
        data, gloss = line.rstrip()[:-1], ""
    f = data.split()
    offset, lex_filenum, pos = int(f[0], 10), int(f[1], 10), f[2]
    if pos not in "nvasr" or len(pos) != 1:
        raise ValueError(f"unknown synset type {pos!r}")
    if not 0 <= lex_filenum < len(LEXNAMES):
        raise ValueError(f"lex_filenum {lex_filenum} out of range")
    w_cnt = int(f[3], 16)
    words = tuple(_MARKER.sub("", f[4 + 2 * i]).replace("_", " ") for i in range(w_cnt))
    for i in range(w_cnt):
        int(f[5 + 2 * i], 16)  # lex_id must be hex
    i = 4 + 2 * w_cnt
    p_cnt = int(f[i], 10)
    pointers = []
    for j in range(i + 1, i + 1 + 4 * p_cnt, 4):
        symbol, target, target_pos, st = f[j : j + 4]
        if target_pos not in _FILE_TYPES or len(st) != 4:
            raise ValueError(f"malformed pointer {' '.join(f[j : j + 4])!r}")
        int(st, 16)
        pointers.append(Pointer(symbol, int(target, 10), target_pos, st))
    i += 1 + 4 * p_cnt
    if pos == "v" and i < len(f):  # verb frames: f_cnt then "+ f_num w_num" triples
        f_cnt = int(f[i], 10)
        frames = f[i + 1 : i + 1 + 3 * f_cnt]
        if len(frames) != 3 * f_cnt or any(frames[k] != "+" for k in range(0, len(frames), 3)):
            raise ValueError("malformed verb frame list")
        i += 1 + 3 * f_cnt
    if i != len(f):
        raise ValueError(f"{len(f) - i} unexpected trailing field(s) before the gloss")
    return Synset(offset, pos, lex_filenum, words, tuple(pointers), gloss.strip())


def read_data_file(path: Path) -> list[Synset]:
    """All synsets of one ``data.<pos>`` file, in file order."""
    path = Path(path)
    synsets = []
    with path.open(encoding="utf-8", newline="\n") as fh:
        for lineno, line in enumerate(fh, start=1):
            line = line.rstrip("\n")
            if line.startswith("  ") or not line.strip():
                continue  # license header
            try:
                synsets.append(_parse_line(line))
            except (ValueError, IndexError) as exc:
                raise ValueError(f"{path}:{lineno}: malformed synset line ({exc}): {line[:80]!r}") from exc
    return synsets


def read_wordnet(dict_dir: Path) -> list[Synset]:
    """Synsets of the four data files (noun, verb, adj, adv order); checks each file holds its own pos."""
    dict_dir = Path(dict_dir)
    out: list[Synset] = []
    for file_pos, name in DATA_FILES.items():
        synsets = read_data_file(dict_dir / name)
        wrong = next((s for s in synsets if s.pos not in _FILE_TYPES[file_pos]), None)
        if wrong is not None:
            raise ValueError(f"{dict_dir / name}: synset {wrong.key} does not belong in this file")
        out.extend(synsets)
    return out


def pointer_edges(synsets: Iterable[Synset], symbols: Iterable[str]) -> list[tuple[str, str]]:
    """Undirected, de-duplicated edges ``(key_a, key_b)``, ``key_a < key_b``, for pointers with ``symbols``.

    Each WordNet relation is stored in both directions (``@``/``~`` etc.), so an edge counts once
    however many pointers express it; self-loops are dropped. Sorted for determinism.
    """
    synsets = list(synsets)
    wanted = set(symbols)
    by_address = {(s.file_pos, s.offset): s.key for s in synsets}
    edges: set[tuple[str, str]] = set()
    for s in synsets:
        for p in s.pointers:
            if p.symbol not in wanted:
                continue
            target = by_address.get((p.target_pos, p.target_offset))
            if target is None:
                raise ValueError(
                    f"synset {s.key}: pointer {p.symbol} to unknown synset {p.target_pos}{p.target_offset:08d}"
                )
            if target != s.key:
                edges.add((s.key, target) if s.key < target else (target, s.key))
    return sorted(edges)


def edge_homophily(edges: Iterable[tuple[str, str]], label_of: Mapping[str, object]) -> float:
    """Fraction of edges whose two endpoints have the same label (NaN for no edges)."""
    same = total = 0
    for a, b in edges:
        total += 1
        same += label_of[a] == label_of[b]
    return same / total if total else float("nan")
