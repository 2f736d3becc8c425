"""WordNet data files: a hand-made mini WordNet parses, resolves pointers and gives known edge homophily."""

from __future__ import annotations

import pytest

from repro.data.parsers.wordnet import (
    DOMAIN_TOPIC_SYMBOLS,
    HYPERNYM_SYMBOLS,
    LEXNAMES,
    Pointer,
    edge_homophily,
    pointer_edges,
    read_data_file,
    read_wordnet,
)

HEADER = "  1 This software and database is being provided to you, the LICENSEE, by  \n  2   \n"
FILES = {
    "data.noun": HEADER
    + "00001740 03 n 01 entity 0 002 ~ 00001930 n 0000 ~ 00002137 n 0000 | that which is perceived  \n"
    + "00001930 03 n 01 physical_entity 0 001 @ 00001740 n 0000 | an entity that has physical existence  \n"
    + "00002137 03 n 02 abstraction 0 abstract_entity 0 003 @ 00001740 n 0000 ~i 00003000 n 0000 "
    + "-c 00000100 r 0000 | a general concept  \n"
    + "00003000 09 n 01 Music 0 003 @i 00002137 n 0000 -c 00000200 v 0000 -c 00000090 a 0000 | an art  \n",
    "data.verb": HEADER
    + "00000200 29 v 02 breathe 0 take_a_breath 0 002 ;c 00003000 n 0000 @ 00000300 v 0000 "
    + "02 + 02 00 + 08 01 | draw air into, and expel out of, the lungs  \n"
    + "00000300 30 v 01 respire 1 001 ~ 00000200 v 0000 01 + 02 00 | undergo respiration  \n",
    "data.adj": HEADER
    + "00000050 00 a 01 nascent 0 001 & 00000090 a 0000 | being born or beginning  \n"
    + "00000090 00 s 02 emergent 0 outback(a) 0 002 & 00000050 a 0000 ;c 00003000 n 0000 | coming into existence  \n"
    + "00000120 44 a 01 galore(ip) 0 000 | in abundance  \n",
    "data.adv": HEADER + "00000100 02 r 01 con_brio 0 001 ;c 00002137 n 0000 | with liveliness  \n",
}


@pytest.fixture
def dict_dir(tmp_path):
    for name, text in FILES.items():
        (tmp_path / name).write_text(text)
    return tmp_path


def test_lexnames_is_the_standard_list():
    assert len(LEXNAMES) == 45
    assert LEXNAMES[:4] == ("adj.all", "adj.pert", "adv.all", "noun.Tops")
    assert LEXNAMES[28:30] == ("noun.time", "verb.body") and LEXNAMES[44] == "adj.ppl"


def test_reads_synsets_words_pointers_and_glosses(dict_dir):
    synsets = {s.key: s for s in read_wordnet(dict_dir)}
    assert len(synsets) == 10
    abstraction = synsets["n00002137"]
    assert abstraction.words == ("abstraction", "abstract entity")
    assert abstraction.lexname == "noun.Tops" and abstraction.gloss == "a general concept"
    assert abstraction.pointers[1] == Pointer("~i", 3000, "n", "0000")
    breathe = synsets["v00000200"]  # verb frames after the pointers are consumed, not mistaken for data
    assert breathe.words == ("breathe", "take a breath") and len(breathe.pointers) == 2
    assert breathe.gloss == "draw air into, and expel out of, the lungs" and breathe.lexname == "verb.body"
    satellite = synsets["s00000090"]
    assert satellite.pos == "s" and satellite.words == ("emergent", "outback")  # "(a)" stripped
    assert synsets["a00000120"].words == ("galore",) and synsets["a00000120"].lexname == "adj.ppl"
    assert synsets["n00003000"].words == ("Music",)  # case kept


def test_word_and_lex_id_counts_are_hex(tmp_path):
    words = " ".join(f"w{i} {i:x}" for i in range(11))  # lex_id "a" is hex
    (tmp_path / "data.noun").write_text(f"00000001 05 n 0b {words} 000 | eleven words\n")
    (synset,) = read_data_file(tmp_path / "data.noun")
    assert synset.words == tuple(f"w{i}" for i in range(11)) and synset.lexname == "noun.animal"


def test_edges_are_undirected_deduplicated_and_resolve_satellites(dict_dir):
    synsets = read_wordnet(dict_dir)
    hyper = pointer_edges(synsets, HYPERNYM_SYMBOLS)
    assert hyper == [
        ("n00001740", "n00001930"),
        ("n00001740", "n00002137"),
        ("n00002137", "n00003000"),
        ("v00000200", "v00000300"),
    ]
    topic = pointer_edges(synsets, DOMAIN_TOPIC_SYMBOLS)
    assert topic == [("n00002137", "r00000100"), ("n00003000", "s00000090"), ("n00003000", "v00000200")]
    lex = {s.key: s.lex_filenum for s in synsets}
    assert edge_homophily(hyper, lex) == pytest.approx(0.5)  # 3=3, 3=3, 3!=9, 29!=30
    assert edge_homophily(topic, lex) == 0.0


def test_dangling_pointer_is_reported(dict_dir):
    synsets = read_data_file(dict_dir / "data.noun")  # nouns alone: the -c targets live elsewhere
    with pytest.raises(ValueError, match=r"n00002137.*unknown synset r00000100"):
        pointer_edges(synsets, DOMAIN_TOPIC_SYMBOLS)


@pytest.mark.parametrize(
    "line",
    [
        "00001740 03 n 01 entity 0 000 no gloss separator",
        "00001740 03 n 0g entity 0 000 | bad hex word count",
        "00001740 03 n 01 entity 0 001 @ 00001930 n | pointer cut short",
        "00001740 03 q 01 entity 0 000 | bad synset type",
        "00001740 77 n 01 entity 0 000 | lex_filenum out of range",
        "00001740 03 n 01 entity 0 000 junk | trailing fields",
        "00000200 29 v 01 breathe 0 000 02 + 02 00 | frame list cut short",
    ],
)
def test_malformed_lines_name_file_and_line(tmp_path, line):
    (tmp_path / "data.noun").write_text(HEADER + line + "\n")
    with pytest.raises(ValueError, match=r"data\.noun:3: malformed synset line"):
        read_data_file(tmp_path / "data.noun")


def test_synset_in_the_wrong_file_is_rejected(dict_dir):
    (dict_dir / "data.noun").write_text(FILES["data.verb"])
    with pytest.raises(ValueError, match=r"data\.noun: synset v00000200 does not belong"):
        read_wordnet(dict_dir)
