"""Question/answer tables of the BSD ``quiz`` game (Debian ``bsdgames``, ``/usr/share/games/bsdgames/quiz``).

``index`` has one line per subject: the data file's path, then the subject's category titles,
colon-separated (``/usr/share/games/bsdgames/quiz/africa:Africa{n}:cap{ital}``). Each data file
line holds one row with the same columns (``Chad:N'Djamena|Ndjamena``). Per quiz(6), every field
is a pattern with this markup:

* ``a|b``    alternatives (lowest precedence within the enclosing group);
* ``{x}``    optional part (may itself contain ``|``: ``forget{-| }me``);
* ``[a|b]``  a group, to scope alternatives inside a word (``Mo[z|c]ambique``);
  as in quiz.c, either bracket opens a group and the *closing* one decides: ``}`` makes it
  optional, ``]`` not (the real ``seq-hard`` file has ``[Squares|n[**|^]2} base 8``);
* ``\\c``    the character ``c`` literally (``{\\:}``); a ``\\`` ending a line joins the next
  line onto it (directly, as quiz.c does).

The files are UTF-8 and spell accented letters as typewriter overstrikes, mark + backspace +
letter in either order (``C[^\\bo|o\\b^|o]te``); these are decoded to the precomposed letter
(``ô``) when a file is read, so spellings are plain Unicode text.

:func:`expand_alternatives` lists every spelling a field accepts. Canonical rule: the FIRST
spelling takes the first alternative everywhere and omits every optional part
(``Cal{if{ornia}}|CA`` -> ``Cal``); the rest follow in a fixed order (see there). quiz.c itself
prints the first alternatives with every optional part present (``California``): pass
``include_optional=True`` for that convention.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from dataclasses import dataclass
from pathlib import Path

_SPECIAL = "{}[]|\\"

# Overstrike marks -> combining characters ("/" is handled apart: o + U+0338 does not compose to ø).
_ACCENTS = {"'": "\u0301", "`": "\u0300", "^": "\u0302", "~": "\u0303", '"': "\u0308", ",": "\u0327", "°": "\u030a"}
_STROKED = {"o": "ø", "O": "Ø"}
_OVERSTRIKE = re.compile("(.)\b(.)")


def _decode_overstrike(line: str, source: str) -> str:
    """Replace each ``mark\\bletter`` / ``letter\\bmark`` overstrike by the accented letter."""

    def combine(m: re.Match[str]) -> str:
        x, y = m.groups()
        mark, base = (x, y) if x in _ACCENTS or x == "/" else (y, x)
        if mark == "/" and base in _STROKED:
            return _STROKED[base]
        if mark in _ACCENTS and base.isalpha():
            letter = unicodedata.normalize("NFC", base + _ACCENTS[mark])
            if len(letter) == 1:
                return letter
        raise ValueError(f"{source}: unknown overstrike {m.group(0)!r}")

    out = _OVERSTRIKE.sub(combine, line)
    if "\b" in out:
        raise ValueError(f"{source}: stray backspace in {line!r}")
    return out


def _expand(pattern: str, source: str, include_optional: bool) -> list[str]:
    """All spellings of ``pattern``; a recursive-descent reading of quiz.c's rxp compiler."""
    pos = 0

    def group(top: bool) -> tuple[list[str], bool]:
        """Spellings up to the group's closer (or the end, at top level); True if it closed with ``}``."""
        nonlocal pos
        spellings: list[str] = []
        pieces: list[list[str]] = []  # the current alternative: a product of choices

        def close_alternative() -> None:
            spellings.extend("".join(choice) for choice in itertools.product(*pieces))
            pieces.clear()

        while pos < len(pattern):
            c = pattern[pos]
            if c == "\\":
                if pos + 1 == len(pattern):
                    raise ValueError(f"{source}: dangling backslash in {pattern!r}")
                pieces.append([pattern[pos + 1]])
                pos += 2
            elif c in "{[":
                pos += 1
                inner, optional = group(top=False)
                if optional:
                    inner = [*inner, ""] if include_optional else ["", *inner]
                pieces.append(list(dict.fromkeys(inner)))
            elif c in "}]":
                if top:
                    raise ValueError(f"{source}: unmatched {c!r} at position {pos} in {pattern!r}")
                pos += 1
                close_alternative()
                return spellings, c == "}"
            elif c == "|":
                close_alternative()
                pos += 1
            else:
                end = pos
                while end < len(pattern) and pattern[end] not in _SPECIAL:
                    end += 1
                pieces.append([pattern[pos:end]])
                pos = end
        if not top:
            raise ValueError(f"{source}: unclosed group in {pattern!r}")
        close_alternative()
        return spellings, False

    spellings, _ = group(top=True)
    return list(dict.fromkeys(spellings))  # de-duplicate, keeping the first occurrence


def expand_alternatives(field: str, *, include_optional: bool = False, source: str = "<quiz field>") -> list[str]:
    """Every spelling ``field`` accepts, canonical first; ``source`` names the field in errors.

    Order: alternatives left to right; within one, the product of its pieces with the leftmost
    piece varying slowest, where an optional group offers "absent" first, then its own spellings
    (``include_optional=True`` puts "absent" last instead, so the first spelling is the one quiz.c
    prints: every optional part present). ``"{the }united states|usa"`` ->
    ``["united states", "the united states", "usa"]``. Duplicates are dropped (first kept); the
    empty field gives ``[""]``.
    """
    return _expand(field, source, include_optional)


def canonical(field: str, *, include_optional: bool = False) -> str:
    """The canonical spelling: first alternatives, optional parts omitted (or all present)."""
    return expand_alternatives(field, include_optional=include_optional)[0]


def _split_columns(line: str) -> list[str]:
    """Split on ``:`` not escaped by a backslash (escapes are kept for the pattern parser)."""
    cols, start, i = [], 0, 0
    while i < len(line):
        if line[i] == "\\":
            i += 2
            continue
        if line[i] == ":":
            cols.append(line[start:i])
            start = i + 1
        i += 1
    cols.append(line[start:])
    return cols


def _logical_lines(path: Path) -> list[tuple[int, str]]:
    """(first physical line number, text) after joining ``\\``-continued lines; blank lines dropped."""
    out: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{path}: not UTF-8 text: {exc}") from exc
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()  # the file's final newline ends the last line; it does not start another
    for lineno, line in enumerate(lines, start=1):
        line = line.rstrip("\r")
        if pending is not None:
            start, text = pending
            line, lineno = text[:-1] + line, start
        # A trailing backslash continues the line, unless it is itself escaped ("\\").
        trailing = len(line) - len(line.rstrip("\\"))
        if trailing % 2 == 1:
            pending = (lineno, line)
            continue
        pending = None
        if line.strip():
            out.append((lineno, _decode_overstrike(line, f"{path}:{lineno}")))
    if pending is not None:
        raise ValueError(f"{path}:{pending[0]}: continuation backslash at end of file")
    return out


@dataclass(frozen=True)
class QuizFile:
    """One subject: its category title patterns (as in ``index``) and its rows.

    ``rows[r][c]`` is the list of accepted spellings of column ``c`` in row ``r``, canonical first;
    an empty field is ``[""]`` (quiz never asks or expects it).
    """

    name: str
    categories: tuple[str, ...]
    rows: list[tuple[list[str], ...]]

    def column(self, category: str) -> int:
        """Column index of a category given in any spelling its title accepts (case-insensitive)."""
        wanted = category.casefold()
        for i, pattern in enumerate(self.categories):
            if wanted in (s.casefold() for s in expand_alternatives(pattern, source=f"{self.name} index")):
                return i
        raise KeyError(f"quiz {self.name!r} has no category {category!r} (categories: {self.categories})")

    def pairs(self, question: str, answer: str) -> list[tuple[list[str], list[str]]]:
        """(question spellings, answer spellings) per row, skipping rows where either is empty."""
        q, a = self.column(question), self.column(answer)
        return [(row[q], row[a]) for row in self.rows if row[q] != [""] and row[a] != [""]]


def read_quiz_file(path: Path, categories: tuple[str, ...], *, include_optional: bool = False) -> QuizFile:
    """Parse one data file whose rows have one column per category (spelling order: see expand_alternatives).

    A row with too few columns is an error. Surplus colons are read as literal ones in the last
    column: the real ``ucc`` has ``3-201:transfer: right to indorsement`` (unescaped), where quiz.c
    would silently drop everything after the second colon.
    """
    path = Path(path)
    rows = []
    n = len(categories)
    for lineno, line in _logical_lines(path):
        cols = _split_columns(line)
        if len(cols) < n:
            raise ValueError(f"{path}:{lineno}: {len(cols)} columns, index lists {n}: {line[:80]!r}")
        cols[n - 1 :] = [":".join(cols[n - 1 :])]
        source = f"{path}:{lineno}"
        rows.append(tuple(expand_alternatives(c, include_optional=include_optional, source=source) for c in cols))
    return QuizFile(path.name, categories, rows)


def read_index(path: Path) -> dict[str, tuple[str, ...]]:
    """``index``: data file base name -> category title patterns (the file's directory is ignored)."""
    path = Path(path)
    out: dict[str, tuple[str, ...]] = {}
    for lineno, line in _logical_lines(path):
        file, *categories = _split_columns(line)
        name = file.replace("\\", "/").rsplit("/", 1)[-1]
        if not name or len(categories) < 2:
            raise ValueError(f"{path}:{lineno}: need a file name and at least two categories: {line!r}")
        for c in categories:
            expand_alternatives(c, source=f"{path}:{lineno}")  # validate the markup
        out[name] = tuple(categories)
    return out


def read_quiz_dir(path: Path, *, include_optional: bool = False) -> dict[str, QuizFile]:
    """Every subject listed in ``path/index``, read from ``path`` (files not in the index are ignored).

    ``include_optional`` picks the canonical (first) spelling of every field: optional parts
    omitted (default, ``Fl{orid}a`` -> ``Fla``) or present as quiz.c prints them (``Florida``).
    """
    path = Path(path)
    out = {}
    for name, categories in read_index(path / "index").items():
        if not (path / name).is_file():
            raise ValueError(f"{path / 'index'}: lists {name!r}, but {path / name} does not exist")
        out[name] = read_quiz_file(path / name, categories, include_optional=include_optional)
    return out
