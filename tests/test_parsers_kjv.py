"""KJV dump cleaning: headings, blank lines and verse numbers go; malformed dumps fail with a line number."""

from __future__ import annotations

from pathlib import Path

import pytest

from repro.data.parsers.kjv import clean_bible_dump, dump_command

DUMP = """
Genesis 1

  1 In the beginning God created the heaven and the earth.
  2 And the earth was without form, and void.

Genesis 2

  1 Thus the heavens and the earth were finished.

1 Samuel 3

  1 And the child Samuel ministered unto the LORD before Eli.

Song of Solomon 1

  1 The song of songs, which is Solomon's.
  2 Let him kiss me with the kisses of his mouth: for thy love is better than wine.
"""


def test_verses_one_per_line_chapters_as_paragraphs():
    assert clean_bible_dump(DUMP) == (
        "In the beginning God created the heaven and the earth.\n"
        "And the earth was without form, and void.\n"
        "\n"
        "Thus the heavens and the earth were finished.\n"
        "\n"
        "And the child Samuel ministered unto the LORD before Eli.\n"
        "\n"
        "The song of songs, which is Solomon's.\n"
        "Let him kiss me with the kisses of his mouth: for thy love is better than wine.\n"
    )


def test_without_chapter_breaks_is_plain_verse_per_line():
    out = clean_bible_dump(DUMP, chapter_breaks=False)
    assert out.count("\n") == 6 and "\n\n" not in out
    assert out.splitlines()[3] == "And the child Samuel ministered unto the LORD before Eli."


def test_crlf_and_numbers_inside_text_survive():
    dump = "Exodus 20\r\n\r\n  1 And God spake all these words, saying,\r\n  2 I am the LORD thy God, 10 times.\r\n"
    assert clean_bible_dump(dump) == "And God spake all these words, saying,\nI am the LORD thy God, 10 times.\n"


@pytest.mark.parametrize(
    "dump, message",
    [
        ("  1 In the beginning.\n", r"kjv\.txt:1: verse before any chapter heading"),
        ("Genesis 1\n  1 a\n  3 c\n", r"kjv\.txt:3: verse 3 where verse 2 was expected"),
        ("Genesis 1\n  1 a\nsome stray text\n", r"kjv\.txt:3: neither a chapter heading nor a verse"),
        ("Genesis 1\nGenesis 2\n  1 a\n", r"kjv\.txt:1: chapter heading without verses"),
        ("\n\n", r"kjv\.txt: no chapter headings"),
    ],
)
def test_malformed_dumps_name_the_source(dump, message):
    with pytest.raises(ValueError, match=message):
        clean_bible_dump(dump, source="kjv.txt")


def test_dump_command():
    argv = dump_command(Path("/usr/bin/bible"), Path("/usr/lib"))
    assert argv == ["/usr/bin/bible", "-p", "/usr/lib", "-l0", "gen1:1-rev22:21"]
