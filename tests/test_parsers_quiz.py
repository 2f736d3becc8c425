"""bsdgames quiz: every markup rule expands as documented; index + data files read into rows."""

from __future__ import annotations

import pytest

from repro.data.parsers.quiz import QuizFile, canonical, expand_alternatives, read_quiz_dir, read_quiz_file


@pytest.mark.parametrize(
    "field, spellings",
    [
        ("Algiers", ["Algiers"]),
        ("", [""]),
        ("N'Djamena|Ndjamena", ["N'Djamena", "Ndjamena"]),
        ("{the }united states|usa", ["united states", "the united states", "usa"]),
        ("Cal{if{ornia}}|CA", ["Cal", "Calif", "California", "CA"]),  # nested optionals
        ("forget{-| }me", ["forgetme", "forget-me", "forget me"]),  # alternatives inside an optional
        ("Mo[z|c]ambique", ["Mozambique", "Mocambique"]),  # inline group
        ("M[iddle{-}Earth|E]", ["MiddleEarth", "Middle-Earth", "ME"]),
        ("a{b}{c}", ["a", "ac", "ab", "abc"]),  # leftmost piece varies slowest
        ("To be{\\:}", ["To be", "To be:"]),  # escaped colon
        ("x\\|y", ["x|y"]),  # escaped bar is literal
        ("a|a|b", ["a", "b"]),  # duplicates dropped
        ("[x|y}z", ["z", "xz", "yz"]),  # as in quiz.c, the closer decides: "}" makes the group optional
        ("{x|y]z", ["xz", "yz"]),  # ... and "]" makes it mandatory
    ],
)
def test_expand_alternatives(field, spellings):
    assert expand_alternatives(field) == spellings
    assert canonical(field) == spellings[0]


def test_include_optional_gives_the_spelling_quiz_prints():
    assert canonical("Cal{if{ornia}}|CA", include_optional=True) == "California"
    assert expand_alternatives("{the }usa", include_optional=True) == ["the usa", "usa"]


@pytest.mark.parametrize(
    "field, message",
    [
        ("Central Africa{n Rep{ublic}", "unclosed group"),
        ("Congo}", "unmatched '}'"),
        ("a|b]", "unmatched ']'"),
        ("trailing\\", "dangling backslash"),
    ],
)
def test_malformed_patterns(field, message):
    with pytest.raises(ValueError, match=rf"here: {message}"):
        expand_alternatives(field, source="here")


def _write_quiz(tmp_path, index: str, files: dict[str, str]):
    (tmp_path / "index").write_text(index, encoding="utf-8")
    for name, text in files.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    return tmp_path


INDEX = (
    "/usr/share/games/bsdgames/quiz/africa:Africa{n}:cap{ital}\n/usr/share/games/bsdgames/quiz/bard:line:next:work\n"
)
AFRICA = (
    "Algeria:Algiers\n"
    "C[^\bo|o\b^|o]te d'Ivoire:Yamoussoukro\n"  # overstruck accents, either order
    "\n"
    "Chad:N'Djamena|Ndjamena\n"
    "Empty question::\n"  # surplus colon: kept literally in the last column
    ":Nowhere\n"
)
BARD = "To be{,} or not to be{\\:}:\\\nthat is the question:\\\nHamlet\nOut, damned spot!:\\\n:\\\nMacbeth\n"


def test_read_quiz_dir(tmp_path):
    folder = _write_quiz(tmp_path, INDEX, {"africa": AFRICA, "bard": BARD, "unlisted": "x:y\n"})
    quizzes = read_quiz_dir(folder)
    assert set(quizzes) == {"africa", "bard"}  # only files listed in the index
    africa = quizzes["africa"]
    assert isinstance(africa, QuizFile) and africa.categories == ("Africa{n}", "cap{ital}")
    assert africa.rows[1] == (["Côte d'Ivoire", "Cote d'Ivoire"], ["Yamoussoukro"])
    assert africa.rows[3] == (["Empty question"], [":"])
    assert africa.column("capital") == africa.column("CAP") == 1 and africa.column("African") == 0
    pairs = africa.pairs("Africa", "capital")
    assert [q[0] for q, _ in pairs] == ["Algeria", "Côte d'Ivoire", "Chad", "Empty question"]  # empty rows skipped
    with pytest.raises(KeyError, match="population"):
        africa.column("population")
    bard = quizzes["bard"]  # continuation lines join, escaped colons stay in their column
    assert bard.rows[0] == (
        ["To be or not to be", "To be or not to be:", "To be, or not to be", "To be, or not to be:"],
        ["that is the question"],
        ["Hamlet"],
    )
    assert bard.rows[1] == (["Out, damned spot!"], [""], ["Macbeth"])


def test_read_quiz_dir_with_optional_parts_first(tmp_path):
    folder = _write_quiz(tmp_path, INDEX, {"africa": "Central Africa{n Rep{ublic}}:Bangui\n", "bard": BARD})
    row = read_quiz_dir(folder, include_optional=True)["africa"].rows[0]
    assert row[0] == ["Central African Republic", "Central African Rep", "Central Africa"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("Algeria\n", r"africa:1: 1 columns, index lists 2"),
        ("ok:fine\nAlgeria:Algiers\\\n", r"africa:2: continuation backslash at end of file"),
        ("ok:fine\n\nCentral Africa{n:Bangui\n", r"africa:3: unclosed group"),
        ("X\bY:z\n", r"africa:1: unknown overstrike"),
    ],
)
def test_malformed_data_files_name_file_and_line(tmp_path, text, message):
    (tmp_path / "africa").write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=message):
        read_quiz_file(tmp_path / "africa", ("Africa{n}", "cap{ital}"))


def test_non_utf8_file_is_rejected(tmp_path):
    (tmp_path / "africa").write_bytes(b"R\xe9union:Saint-Denis\n")
    with pytest.raises(ValueError, match=r"africa: not UTF-8"):
        read_quiz_file(tmp_path / "africa", ("Africa{n}", "cap{ital}"))


def test_index_errors(tmp_path):
    _write_quiz(tmp_path, "/q/africa:Africa{n}\n", {})
    with pytest.raises(ValueError, match=r"index:1: need a file name and at least two categories"):
        read_quiz_dir(tmp_path)
    _write_quiz(tmp_path, "/q/africa:Africa{n}:cap{ital}\n", {})
    with pytest.raises(ValueError, match=r"index: lists 'africa', but .*africa does not exist"):
        read_quiz_dir(tmp_path)
