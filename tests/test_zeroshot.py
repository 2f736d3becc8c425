"""Zero-shot multiple-choice item builders (repro.data.zeroshot): small in-test fixtures, no network."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml

from repro.data import zeroshot as zs

# --------------------------------------------------------------------------- fixtures

# (country, capital, a third column that must never leak into the choices)
CAPITAL_ROWS = [
    (["algeria"], ["algiers"], ["x1"]),
    (["angola"], ["luanda"], ["x2"]),
    (["benin"], ["porto-novo"], ["x3"]),
    (["bolivia"], ["la paz", "sucre"], ["x4"]),  # two acceptable answers
    (["chad"], ["n'djamena", "ndjamena"], ["x5"]),
    (["egypt"], ["cairo"], ["x6"]),
    (["djibouti"], ["djibouti"], ["x7"]),  # self-answering: skipped
    (["atlantis"], [], ["x8"]),  # empty answer: skipped
    (["kenya"], ["nairobi"], ["x9"]),
    (["mali"], ["bamako"], ["x10"]),
    (["cote d'ivoire"], ["yamoussoukro"], ["x11"]),
    (["trinidad and tobago"], ["port of spain"], ["x12"]),
]


def _answers(rows, key_col=0, ans_col=1):
    return {r[key_col][0]: r[ans_col] for r in rows if r[ans_col]}


def _check_item_shape(item, n_choices):
    assert set(item) == {"id", "family", "question", "choices", "label", "source"}
    assert len(item["choices"]) == n_choices
    assert 0 <= item["label"] < n_choices
    folded = [c.casefold() for c in item["choices"]]
    assert len(set(folded)) == n_choices, item
    assert all(c and c == c.strip() for c in item["choices"])  # no leading space: lm-eval adds it


def _capitals(rows=CAPITAL_ROWS, seed=0, n_items=None, n_choices=4, **kw):
    kw = {"titlecase": True, "key_case": "title", **kw}
    return zs.quiz_items(rows, "The capital of {key} is", 1, 0, n_items, n_choices, seed, "capitals", "test", **kw)


# --------------------------------------------------------------------------- quiz facts


def test_quiz_items_shape_answer_and_distractors():
    items = _capitals()
    # 12 rows minus the self-answering and the empty one.
    assert len(items) == 10
    canonical = {zs.smart_titlecase(r[1][0]) for r in CAPITAL_ROWS if r[1]}
    third_column = {r[2][0] for r in CAPITAL_ROWS}
    for item in items:
        _check_item_shape(item, 4)
        key = item["question"].removeprefix("The capital of ").removesuffix(" is")
        row = next(r for r in CAPITAL_ROWS if zs.smart_titlecase(r[0][0]) == key)
        correct = zs.smart_titlecase(row[1][0])
        assert item["choices"][item["label"]] == correct
        assert item["choices"].count(correct) == 1
        assert set(item["choices"]) <= canonical  # distractors: the same column's canonical answers
        assert not set(item["choices"]) & third_column
        assert item["family"] == "capitals" and item["source"] == "test"
    assert len({i["id"] for i in items}) == len(items)


def test_quiz_items_casing_and_template():
    items = {i["question"]: i for i in _capitals()}
    assert "The capital of Algeria is" in items
    assert "The capital of Cote d'Ivoire is" in items
    assert "The capital of Trinidad and Tobago is" in items
    assert "Porto-Novo" in items["The capital of Benin is"]["choices"]
    assert "Port of Spain" in items["The capital of Trinidad and Tobago is"]["choices"]
    # Text that already has capitals is left alone; lower/keep modes.
    assert zs.smart_titlecase("N'Djamena") == "N'Djamena"
    assert zs.smart_titlecase("port-au-prince") == "Port-au-Prince"
    assert zs.smart_titlecase("st. john's") == "St. John's"
    kept = zs.quiz_items(CAPITAL_ROWS, "{key}:", 1, 0, None, 3, 0, "f", "s", key_case="lower")
    assert all(i["question"] == i["question"].lower() for i in kept)
    assert all(c == c.lower() for i in kept for c in i["choices"])


def test_quiz_items_deterministic_and_seeded():
    assert _capitals(seed=5) == _capitals(seed=5)
    assert _capitals(seed=5) != _capitals(seed=6)
    sub = _capitals(seed=5, n_items=4)
    assert len(sub) == 4 and sub == _capitals(seed=5, n_items=4)
    full_ids = [i["id"] for i in _capitals(seed=5)]
    assert [i["id"] for i in sub] == [i for i in full_ids if i in {s["id"] for s in sub}]  # row order kept
    # Label positions are spread over all positions.
    labels = [i["label"] for s in range(20) for i in _capitals(seed=s)]
    assert set(labels) == {0, 1, 2, 3}


def test_quiz_items_excludes_alternative_spellings():
    rows = [
        (["bolivia"], ["la paz", "sucre"]),
        (["sucreland"], ["sucre"]),  # canonical 'sucre' is an acceptable answer for bolivia
        (["a"], ["alpha"]),
        (["b"], ["beta"]),
        (["c"], ["gamma"]),
    ]
    for seed in range(30):
        items = {i["question"]: i for i in zs.quiz_items(rows, "{key}", 1, 0, None, 4, seed, "f", "s")}
        assert "sucre" not in items["bolivia"]["choices"]
        assert "la paz" not in items["sucreland"]["choices"]  # shares the spelling 'sucre'
        assert items["bolivia"]["choices"][items["bolivia"]["label"]] == "la paz"


def test_quiz_items_skip_rules_and_shared_keys():
    rows = [
        (["wolves"], ["pack"]),
        (["wolves"], ["route"]),  # repeated key: skipped, but 'route' stays acceptable for wolves
        (["bees", "locusts"], ["swarm"]),
        (["locusts"], ["plague"]),  # 'swarm' is also right for locusts
        (["cats"], ["clowder"]),
        ([], ["orphan"]),  # empty key: skipped
        (["eagles"], []),  # empty answer: skipped
        (["herons"], ["siege"]),
        (["larks"], ["exaltation"]),
    ]
    items = zs.quiz_items(rows, "A group of {key} is called", 1, 0, None, 3, 0, "collectives", "s", article=True)
    by_q = {i["question"].removeprefix("A group of ").removesuffix(" is called"): i for i in items}
    assert sorted(by_q) == ["bees", "cats", "herons", "larks", "locusts", "wolves"]
    for seed in range(30):
        items = zs.quiz_items(rows, "{key}", 1, 0, None, 4, seed, "c", "s", article=True)
        by_q = {i["question"]: i for i in items}
        assert "a route" not in by_q["wolves"]["choices"]
        assert "a swarm" not in by_q["locusts"]["choices"]
        assert by_q["larks"]["choices"][by_q["larks"]["label"]] == "an exaltation"
    # Too few distractors: item skipped rather than padded.
    assert zs.quiz_items(rows[:2], "{key}", 1, 0, None, 2, 0, "c", "s") == []
    with pytest.raises(ValueError):
        zs.quiz_items(rows, "{key}", 1, 0, None, 1, 0, "c", "s")


def _quiz_file(name, categories, rows):
    return SimpleNamespace(name=name, categories=categories, rows=rows)


def _fake_quiz():
    half = len(CAPITAL_ROWS) // 2
    return {
        "africa": _quiz_file("africa", ("Africa{n}", "cap{ital}"), [r[:2] for r in CAPITAL_ROWS[:half]]),
        "asia": _quiz_file(
            "asia", ("Asia{n}", "cap{ital}"), [(["egypt"], ["cairo"])] + [r[:2] for r in CAPITAL_ROWS[half:]]
        ),
        "state": _quiz_file(
            "state",
            ("state", "cap{ital}", "abbr{ev{iation}}", "flower"),
            [
                (["Alabama", "Ala", "AL"], ["Montgomery"], ["AL"], ["goldenrod"]),
                (["Alaska", "AK"], ["Juneau"], ["AK"], ["forget-me-not"]),
                (["Arizona", "AZ"], ["Phoenix"], ["AZ"], ["cactus"]),
                (["Arkansas", "AR"], ["Little Rock"], ["AR"], ["gok"]),
                (["Iowa", "IA"], ["Des Moines"], ["IA"], ["wild rose"]),
            ],
        ),
        "elements": _quiz_file(
            "elements",
            ("symbol", "number", "weight", "element"),
            [
                (["H"], ["1"], ["1.008"], ["Hydrogen"]),
                (["He"], ["2"], ["4.003"], ["Helium"]),
                (["Li"], ["3"], ["6.94"], ["Lithium"]),
                (["Be"], ["4"], ["9.013"], ["Beryllium"]),
            ],
        ),
        "collectives": _quiz_file(
            "collectives",
            ("ind{ividuals}", "coll{ective}"),
            [(["lions"], ["pride"]), (["owls"], ["parliament"]), (["crows"], ["murder"]), (["geese"], ["gaggle"])],
        ),
    }


def test_quiz_families():
    quiz = _fake_quiz()
    fams = zs.quiz_families(quiz, None, 4, seed=3)
    assert sorted(fams) == ["capitals", "collectives", "elements", "states"]
    assert fams == zs.quiz_families(quiz, None, 4, seed=3)
    for items in fams.values():
        for item in items:
            _check_item_shape(item, 4)
    # capitals: both files, Egypt (asked by africa) not asked again by asia, distractors per file.
    caps = fams["capitals"]
    assert sum(i["question"] == "The capital of Egypt is" for i in caps) == 1
    africa_caps = {zs.smart_titlecase(r[1][0]) for r in CAPITAL_ROWS[: len(CAPITAL_ROWS) // 2] if r[1]}
    for item in caps:
        if item["source"].endswith("africa"):
            assert set(item["choices"]) <= africa_caps
    states = {i["question"]: i for i in fams["states"]}
    alabama = states["The capital of the US state of Alabama is"]
    assert alabama["choices"][alabama["label"]] == "Montgomery"
    elements = {i["question"]: i for i in fams["elements"]}
    helium = elements["The chemical symbol of helium is"]
    assert helium["choices"][helium["label"]] == "He" and set(helium["choices"]) == {"H", "He", "Li", "Be"}
    lions = next(i for i in fams["collectives"] if i["question"] == "A group of lions is called")
    assert lions["choices"][lions["label"]] == "a pride"
    # n_items caps each family; a missing file just drops its family.
    small = zs.quiz_families({"state": quiz["state"]}, 2, 4, seed=3)
    assert list(small) == ["states"] and len(small["states"]) == 2
    # A file whose columns are not in the expected order is refused.
    swapped = {"elements": _quiz_file("elements", ("element", "number", "weight", "symbol"), quiz["elements"].rows)}
    with pytest.raises(ValueError, match="symbol"):
        zs.quiz_families(swapped, None, 4, seed=3)


# --------------------------------------------------------------------------- WordNet glosses


def _syn(key, lexname, words, gloss, pos="n"):
    return SimpleNamespace(key=key, pos=pos, lexname=lexname, words=tuple(words), gloss=gloss)


SYNSETS = [
    _syn("01", "noun.animal", ["dog", "domestic dog"], 'a domesticated canid; "the dog barked all night"'),
    _syn("02", "noun.animal", ["cat", "true cat"], "feline mammal usually having thick soft fur"),
    _syn("03", "noun.animal", ["horse", "Equus caballus"], "solid-hoofed herbivorous quadruped"),
    _syn("04", "noun.animal", ["cow"], "mature female of mammals of which the male is called a bull"),
    _syn("05", "noun.animal", ["sheep"], "woolly usually horned ruminant mammal"),
    _syn("06", "noun.animal", ["pika", "mouse hare"], "small short-eared burrowing mammal"),
    _syn("07", "noun.animal", ["hound", "dog"], "any of several breeds of dog used for hunting"),  # 'dog' again
    _syn("08", "noun.animal", ["tritium hen"], "a hen; tritium hen eggs are rare"),  # gives itself away
    _syn("09", "noun.animal", ["goat"], '"a quoted example only"'),  # no definition
    _syn("10", "noun.food", ["bread", "breadstuff"], 'food made from dough; "she baked bread"; "more"'),
    _syn("11", "noun.food", ["cheese"], "a solid food prepared from the pressed curd of milk"),
    _syn("12", "noun.food", ["giblet"], "edible viscera of a fowl"),
    _syn("13", "noun.food", ["cake"], "baked goods made from or based on a mixture of flour"),
    _syn("14", "noun.food", ["soup"], "liquid food especially of meat or fish or vegetable stock"),
    _syn("20", "verb.motion", ["run"], "move fast by using one's feet", pos="v"),
]


def test_gloss_definition():
    assert zs.gloss_definition('a domesticated canid; "the dog barked"; "x"') == "a domesticated canid"
    assert zs.gloss_definition("edible viscera of a fowl;") == "edible viscera of a fowl"
    assert zs.gloss_definition('"only an example"') == ""


def test_wordnet_gloss_items():
    items = zs.wordnet_gloss_items(SYNSETS, None, 4, seed=0)
    by_key = {i["id"].removeprefix("wordnet_gloss-"): i for i in items}
    # Skipped: 01 ('dog' is also a lemma of 07), 07 and 08 (the definition names a lemma),
    # 09 (no definition left once the example is removed), 20 (a verb).
    assert set(by_key) == {"02", "03", "04", "05", "06", "10", "11", "12", "13", "14"}
    by_key_syn = {s.key: s for s in SYNSETS}
    for key, item in by_key.items():
        syn = by_key_syn[key]
        _check_item_shape(item, 4)
        assert item["choices"][item["label"]] == syn.words[0]
        assert item["question"] == f"Definition: {zs.gloss_definition(syn.gloss)}.\nWord:"
        assert item["source"] == f"wordnet:{syn.lexname}"
        same_sense = {s.words[0] for s in SYNSETS if s.lexname == syn.lexname and s.key != key}
        own = {w.casefold() for w in syn.words}
        distractors = [c for i, c in enumerate(item["choices"]) if i != item["label"]]
        assert set(distractors) <= same_sense
        assert not {d.casefold() for d in distractors} & own
    assert by_key["10"]["question"] == "Definition: food made from dough.\nWord:"
    assert items == zs.wordnet_gloss_items(SYNSETS, None, 4, seed=0)
    assert items != zs.wordnet_gloss_items(SYNSETS, None, 4, seed=1)
    sub = zs.wordnet_gloss_items(SYNSETS, 3, 4, seed=0)
    assert len(sub) == 3 and sub == zs.wordnet_gloss_items(SYNSETS, 3, 4, seed=0)
    # Verbs are their own pool; one verb synset offers no distractors.
    assert zs.wordnet_gloss_items(SYNSETS, None, 2, seed=0, pos="v") == []


def test_wordnet_prefers_same_shape_distractors():
    syns = [
        _syn(f"{i:02d}", "noun.plant", [w], f"plant number {i}")
        for i, w in enumerate(["oak", "elm", "ash", "fir", "yew", "sweet gum", "red maple", "white pine", "bay willow"])
    ]
    for item in zs.wordnet_gloss_items(syns, None, 4, seed=2):
        n_words = len(item["choices"][item["label"]].split())
        assert all(len(c.split()) == n_words for c in item["choices"])


# --------------------------------------------------------------------------- prose cloze


def _prose(n_sentences=400, seed=0):
    vocab = (
        "the a of and to in she he was had her his with for that it not but "
        "elizabeth marianne darcy willoughby sister mother letter garden morning evening "
        "walked spoke smiled thought wished hoped returned answered observed declared "
        "happiness kindness fortune promise carriage window journey pleasure silence"
    ).split()
    rng = np.random.default_rng(seed)
    sentences = []
    for _ in range(n_sentences):
        words = [str(w) for w in rng.choice(vocab, size=int(rng.integers(6, 15)))]
        words[0] = words[0].capitalize()
        sentences.append(" ".join(words) + str(rng.choice([".", "!", "?", '."'])))
    return "\n\n".join(" ".join(sentences[i : i + 5]) for i in range(0, len(sentences), 5))


def test_cloze_items():
    text = _prose()
    flat = " ".join(text.split())
    tokens = text.split()
    items = zs.cloze_items(text, 25, 4, seed=1, context_words=30)
    assert len(items) == 25
    spans = []
    for item in items:
        _check_item_shape(item, 4)
        target = item["choices"][item["label"]]
        assert (item["question"] + " " + target) in flat
        assert len(item["question"].split()) == 30
        index = int(item["id"].rsplit("-", 1)[1])
        assert tokens[index].startswith(target) and tokens[index][len(target)] in ".!?"
        assert " ".join(tokens[index - 30 : index]) == item["question"]
        assert len(target) >= 4 and target.isalpha() and target.casefold() not in zs.STOPWORDS
        context_words = {w.strip(".!?\"'").casefold() for w in item["question"].split()}
        for i, choice in enumerate(item["choices"]):
            if i != item["label"]:
                assert choice.casefold() != target.casefold()
                assert choice.casefold() in context_words  # drawn from the same passage
        spans.append((index - 30, index))
    spans.sort()
    assert all(a[1] < b[0] for a, b in zip(spans, spans[1:]))  # passages do not overlap
    assert items == zs.cloze_items(text, 25, 4, seed=1, context_words=30)
    assert items != zs.cloze_items(text, 25, 4, seed=2, context_words=30)
    assert {i["family"] for i in items} == {"austen_cloze"}


def test_cloze_fallback_to_whole_text():
    # The passage before the target has no usable words: distractors come from the rest of the text.
    text = "Lovely gardens, fragrant blossoms, happy neighbours. " + "a b c d e f of to in. " * 4 + "It was splendid."
    items = zs.cloze_items(text, None, 3, seed=0, context_words=8)
    assert len(items) == 1
    item = items[0]
    assert item["choices"][item["label"]] == "splendid"
    assert set(item["choices"]) - {"splendid"} <= {"Lovely", "gardens", "fragrant", "blossoms", "happy", "neighbours"}


# --------------------------------------------------------------------------- storage and lm-eval


def test_jsonl_round_trip(tmp_path):
    items = _capitals() + [zs._item("u-1", "f", "Qu'est-ce que « ça » ?\nRéponse:", ["é", "ü"], 1, "s")]
    path = tmp_path / "sub" / "items.jsonl"
    zs.write_jsonl(items, path)
    assert zs.read_jsonl(path) == items
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == len(items) and list(json.loads(lines[0])) == [
        "id",
        "family",
        "question",
        "choices",
        "label",
        "source",
    ]
    assert [p.name for p in path.parent.iterdir()] == ["items.jsonl"]  # no temporary file left


def _check_task(task, items):
    docs = list(task.test_docs())
    assert len(docs) == len(items)
    doc = docs[0]
    assert task.doc_to_text(doc) == items[0]["question"]
    assert task.doc_to_choice(doc) == items[0]["choices"]
    assert task.doc_to_target(doc) == items[0]["label"]
    assert task.config.target_delimiter == " " and task.config.output_type == "multiple_choice"
    assert [m["metric"] for m in task.config.metric_list] == ["acc", "acc_norm"]


def test_lmeval_task_from_config(tmp_path, offline_hf):
    from lm_eval.tasks import TaskManager

    items = _capitals(n_items=7) + [zs._item("digits-1", "f", "1234", ["5678", "0000"], 0, "s")]
    path = tmp_path / "items.jsonl"
    zs.write_jsonl(items, path)
    config = zs.lmeval_task_config("zs_capitals_test", path, description="")
    assert config["dataset_kwargs"]["data_files"]["test"] == str(path.resolve())

    manager = TaskManager(include_defaults=False)
    task = manager.load([config])["tasks"]["zs_capitals_test"]
    _check_task(task, items)
    digits = list(task.test_docs())[-1]
    assert task.doc_to_text(digits) == "1234" and task.doc_to_choice(digits) == ["5678", "0000"]

    # The same config written as YAML is found through include_path.
    task_dir = tmp_path / "tasks"
    zs.write_lmeval_task_yaml(config, task_dir / "zs_capitals_test.yaml")
    written = yaml.safe_load((task_dir / "zs_capitals_test.yaml").read_text())
    assert written["metadata"] == {**config["metadata"], "data_files_relative": {"test": "../items.jsonl"}}
    assert {k: v for k, v in written.items() if k != "metadata"} == {k: v for k, v in config.items() if k != "metadata"}
    from_yaml = TaskManager(include_path=str(task_dir), include_defaults=False).load(["zs_capitals_test"])
    _check_task(from_yaml["tasks"]["zs_capitals_test"], items)
    assert (offline_hf / "datasets").is_dir()  # the json builder cached under tmp_path


def test_task_yaml_finds_its_items_after_the_folder_moved(tmp_path):
    items = _capitals(n_items=3)
    root = tmp_path / "resources"
    zs.write_jsonl(items, root / "zeroshot/items/capitals.jsonl")
    config = zs.lmeval_task_config("repro_capitals", root / "zeroshot/items/capitals.jsonl")
    zs.write_lmeval_task_yaml(config, root / "zeroshot/tasks/capitals.yaml")
    moved = tmp_path / "elsewhere"
    root.rename(moved)
    read = zs.read_lmeval_task_yaml(moved / "zeroshot/tasks/capitals.yaml")
    assert read["dataset_kwargs"]["data_files"]["test"] == str((moved / "zeroshot/items/capitals.jsonl").resolve())
    (moved / "zeroshot/items/capitals.jsonl").unlink()
    with pytest.raises(FileNotFoundError, match="capitals.yaml: item file"):
        zs.read_lmeval_task_yaml(moved / "zeroshot/tasks/capitals.yaml")
