"""The King James Bible as plain text, from the Debian ``bible-kjv`` program and its ``bible-kjv-text`` data.

``bible -p DATA_DIR -l0 "gen1:1-rev22:21"`` prints the whole Bible without line wrapping::

    <blank>
    Genesis 1
    <blank>
      1 In the beginning God created the heaven and the earth.
      2 And the earth was without form, and void; ...

i.e. a heading line ``<Book> <chapter>`` (book names may contain digits and spaces, e.g.
``1 Samuel 3`` or ``Song of Solomon 2``), blank lines, and verse lines ``"  N text"``.

:func:`clean_bible_dump` keeps the verse text only: one verse per line, verse numbers stripped,
headings and the dump's own blank lines dropped. By default consecutive chapters are separated by a
single blank line, so each chapter is one paragraph (convenient for paragraph-level perplexity
splits); pass ``chapter_breaks=False`` for a plain verse-per-line text.
"""

from __future__ import annotations

import re
from pathlib import Path

# The full canon, Genesis 1:1 to Revelation 22:21.
WHOLE_BIBLE = "gen1:1-rev22:21"

_HEADING = re.compile(r"^(?P<book>[1-3]?[ ]?[A-Z][A-Za-z ]*?) (?P<chapter>\d+)$")
_VERSE = re.compile(r"^  (?P<verse>\d+) (?P<text>\S.*)$")


def dump_command(bible_binary: Path, data_dir: Path) -> list[str]:
    """The argv that prints the whole KJV, unwrapped, from the ``bible`` program and its data directory."""
    return [str(bible_binary), "-p", str(data_dir), "-l0", WHOLE_BIBLE]


def clean_bible_dump(text: str, *, chapter_breaks: bool = True, source: str = "<bible dump>") -> str:
    """Verse text only, one verse per line; chapters separated by a blank line if ``chapter_breaks``.

    Checks the structure as it goes: every verse follows a chapter heading and verse numbers run
    1, 2, 3, ... within each chapter. ``source`` names the dump in error messages.
    """
    chapters: list[list[str]] = []
    heading_line: list[int] = []  # line number of each chapter heading, for error messages
    expected = 0  # next verse number; 0 until the first heading
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        if m := _VERSE.match(line):
            number = int(m["verse"])
            if expected == 0:
                raise ValueError(f"{source}:{lineno}: verse before any chapter heading: {line[:60]!r}")
            if number != expected:
                raise ValueError(f"{source}:{lineno}: verse {number} where verse {expected} was expected")
            chapters[-1].append(m["text"].strip())
            expected += 1
        elif _HEADING.match(line):
            chapters.append([])
            heading_line.append(lineno)
            expected = 1
        else:
            raise ValueError(f"{source}:{lineno}: neither a chapter heading nor a verse: {line[:60]!r}")
    if not chapters:
        raise ValueError(f"{source}: no chapter headings or verses found")
    for lineno, lines in zip(heading_line, chapters):
        if not lines:
            raise ValueError(f"{source}:{lineno}: chapter heading without verses")
    sep = "\n\n" if chapter_breaks else "\n"
    return sep.join("\n".join(lines) for lines in chapters) + "\n"
