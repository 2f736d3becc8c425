"""The prepare_* steps on small fixtures: outputs, splits and the errors that name the culprit."""

from __future__ import annotations

import gzip
import json
import struct

import numpy as np
import pandas as pd
import pytest
import yaml
from test_parsers_austen import _strsxp, write_lazyload
from test_parsers_wordnet import FILES as WORDNET_FILES

from repro.data.corpora import prepare_austen, prepare_wikitext2
from repro.data.graphs import prepare_connectome, prepare_wordnet
from repro.data.images import prepare_digits, prepare_fashion_mnist
from repro.data.parsers.austen import AUSTEN_TITLES
from repro.data.zeroshot_sets import build_zeroshot_sets

SPLIT = {"test": ["persuasion"], "validation": ["northangerabbey"], "train": ["emma", "mansfieldpark"]}


@pytest.fixture
def austen_dir(tmp_path):
    folder = tmp_path / "artifact" / "usr" / "lib" / "data"
    folder.mkdir(parents=True)
    lines = {
        name: [f"{title} chapter one.", "", f"It was a {name} day in the country."]
        for name, title in AUSTEN_TITLES.items()
    }
    write_lazyload(folder, {name: _strsxp(text) for name, text in lines.items()})
    return tmp_path / "artifact"


def test_prepare_austen_writes_the_configured_split(austen_dir, tmp_path):
    outputs = {name: tmp_path / f"{name}.txt" for name in SPLIT}
    sizes = prepare_austen(austen_dir, SPLIT, outputs)
    assert outputs["test"].read_text().startswith("Persuasion chapter one.")
    train = outputs["train"].read_text()
    assert "Emma chapter one." in train and "Mansfield Park chapter one." in train and "Persuasion" not in train
    assert sizes == {name: len(path.read_text()) for name, path in outputs.items()}


@pytest.mark.parametrize(
    "split, message",
    [
        ({"test": ["persuasion"], "train": ["ulysses"]}, "unknown novel\\(s\\) \\['ulysses'\\]"),
        ({"test": ["persuasion"], "train": ["persuasion"]}, "more than one split"),
    ],
)
def test_prepare_austen_rejects_bad_splits(austen_dir, tmp_path, split, message):
    with pytest.raises(ValueError, match=message):
        prepare_austen(austen_dir, split, {name: tmp_path / f"{name}.txt" for name in split})
    assert not list(tmp_path.glob("*.txt"))


def _idx(path, array, code=0x08):
    head = struct.pack(">HBB", 0, code, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(gzip.compress(head + array.astype(">u1").tobytes()))


def test_prepare_wikitext2_joins_rows_with_blank_lines(tmp_path):
    """The snapshot's Parquet shards of each split, concatenated in shard order, joined with "\\n\\n"."""
    snapshot = tmp_path / "wikitext2" / "wikitext-2-raw-v1"
    snapshot.mkdir(parents=True)
    shards = {
        "test-00000-of-00001": ["", " = Title = \n", " Body .\n"],
        "train-00000-of-00002": ["a"],
        "train-00001-of-00002": ["b", "c"],
        "validation-00000-of-00001": ["v"],
    }
    for name, rows in shards.items():
        pd.DataFrame({"text": rows}).to_parquet(snapshot / f"{name}.parquet")
    outputs = {split: tmp_path / f"{split}.txt" for split in ("train", "validation", "test")}
    sizes = prepare_wikitext2(tmp_path / "wikitext2", outputs)
    assert outputs["test"].read_text() == "\n\n = Title = \n\n\n Body .\n"
    assert outputs["train"].read_text() == "a\n\nb\n\nc"
    assert sizes["validation"] == 1
    with pytest.raises(FileNotFoundError, match="wikitext-2-raw-v1/test-"):
        prepare_wikitext2(tmp_path / "missing", {"test": tmp_path / "x.txt"})
    assert not (tmp_path / "x.txt").exists()


def test_prepare_fashion_mnist_and_digits(tmp_path):
    root = tmp_path / "fm" / "usr"
    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for prefix, n in (("train", 6), ("t10k", 3)):
        _idx(root / f"{prefix}-images-idx3-ubyte.gz", rng.integers(0, 255, size=(n, 28, 28)))
        _idx(root / f"{prefix}-labels-idx1-ubyte.gz", rng.integers(0, 10, size=n))
    out = tmp_path / "fm.npz"
    shapes = prepare_fashion_mnist(tmp_path / "fm", out)
    assert shapes["x_train"] == (6, 28, 28) and shapes["y_test"] == (3,)
    with np.load(out) as data:
        assert data["x_test"].dtype == np.uint8 and len(data["classes"]) == 10
    prepare_digits(tmp_path / "digits.npz")
    with np.load(tmp_path / "digits.npz") as data:
        assert data["images"].shape == (1797, 8, 8) and set(data["target"]) == set(range(10))


def test_prepare_fashion_mnist_rejects_mismatched_files(tmp_path):
    root = tmp_path / "fm"
    root.mkdir()
    for prefix in ("train", "t10k"):
        _idx(root / f"{prefix}-images-idx3-ubyte.gz", np.zeros((4, 28, 28)))
        _idx(root / f"{prefix}-labels-idx1-ubyte.gz", np.zeros(3))
    with pytest.raises(ValueError, match="has 4 images but .* has 3 labels"):
        prepare_fashion_mnist(root, tmp_path / "out.npz")
    assert not (tmp_path / "out.npz").exists()


@pytest.fixture
def wordnet_dir(tmp_path):
    folder = tmp_path / "wn" / "usr" / "share" / "wordnet"
    folder.mkdir(parents=True)
    for name, text in WORDNET_FILES.items():
        (folder / name).write_text(text)
    return tmp_path / "wn"


def test_prepare_wordnet_writes_nodes_and_edge_sets(wordnet_dir, tmp_path):
    outputs = {k: tmp_path / f"{k}.parquet" for k in ("synsets", "hypernym", "domain_topic")}
    stats = prepare_wordnet(wordnet_dir, outputs)
    nodes = pd.read_parquet(outputs["synsets"])
    assert len(nodes) == stats["synsets"] == 10
    assert {"key", "pos", "lex_filenum", "lexname", "words", "gloss"} <= set(nodes.columns)
    hyper = pd.read_parquet(outputs["hypernym"])
    assert len(hyper) == stats["hypernym_edges"] and set(hyper.columns) == {"source", "target"}
    assert set(hyper.source) | set(hyper.target) <= set(nodes.key)
    assert 0.0 <= stats["domain_topic_homophily"] <= 1.0


def test_prepare_connectome_both_sides(tmp_path):
    folder = tmp_path / "g" / "datasets" / "drosophila"
    folder.mkdir(parents=True)
    adj = "0 2 0\n1 0 3\n0 0 0\n"
    for side in ("left", "right"):
        (folder / f"{side}_adjacency.csv").write_text(adj)
        (folder / f"{side}_cell_labels.csv").write_text("K\nK\nP\n")
    stats = prepare_connectome(tmp_path / "g", tmp_path / "c.npz")
    # undirected edges {0,1} K-K and {1,2} K-P: edge homophily 1/2
    assert stats["left_edge_homophily"] == pytest.approx(0.5)
    with np.load(tmp_path / "c.npz") as data:
        assert data["right_adjacency"].shape == (3, 3) and list(data["left_labels"]) == ["K", "K", "P"]


def test_build_zeroshot_sets_end_to_end(wordnet_dir, tmp_path):
    quiz = tmp_path / "quiz"
    quiz.mkdir()
    (quiz / "index").write_text(
        "/q/africa:Africa{n}:cap{ital}\n/q/america:America{n}:cap{ital}\n/q/asia:Asia{n}:cap{ital}\n"
        "/q/europe:Europe{an}:cap{ital}\n/q/state:state:cap{ital}:abbr:flower\n"
        "/q/elements:symbol:number:weight:element\n/q/collectives:ind{ividuals}:coll{ective}\n"
    )
    countries = [("France", "Paris"), ("Spain", "Madrid"), ("Italy", "Rome"), ("Greece", "Athens"), ("Peru", "Lima")]
    for name in ("africa", "america", "asia", "europe"):
        (quiz / name).write_text("".join(f"{c}:{k}\n" for c, k in countries))
    states = [
        ("Ohio", "Columbus"),
        ("Utah", "Salt Lake City"),
        ("Iowa", "Des Moines"),
        ("Maine", "Augusta"),
        ("Idaho", "Boise"),
    ]
    (quiz / "state").write_text("".join(f"{s}:{c}:XX:rose\n" for s, c in states))
    elements = [("H", "hydrogen"), ("He", "helium"), ("Li", "lithium"), ("Be", "beryllium"), ("B", "boron")]
    (quiz / "elements").write_text("".join(f"{s}:1:1.0:{e}\n" for s, e in elements))
    (quiz / "collectives").write_text("lions:pride\ncrows:murder\ngeese:gaggle\nowls:parliament\nfish:school\n")
    text = " ".join(f"Sentence number {i} talks about the wonderful afternoon gardens." for i in range(200))
    (tmp_path / "test.txt").write_text(text)
    families = ["capitals", "states", "elements", "collectives", "wordnet_gloss", "austen_cloze"]
    items = [tmp_path / "out" / f"{f}.jsonl" for f in families]
    tasks = [tmp_path / "out" / "tasks" / f"{f}.yaml" for f in families]
    options = {"seed": 0, "n_choices": 3, "quiz_items": 10, "wordnet_items": 5, "cloze_items": 4}
    synsets = tmp_path / "synsets.parquet"
    animals = ["cat", "dog", "horse", "sheep", "goat", "camel", "zebra", "otter", "badger", "ferret"]
    pd.DataFrame(
        {
            "key": [f"n{i:08d}" for i in range(len(animals))],
            "pos": "n",
            "lex_filenum": 5,
            "lexname": "noun.animal",
            "words": [[a] for a in animals],
            "gloss": [f"a mammal of the kind numbered {i} in the catalogue" for i in range(len(animals))],
        }
    ).to_parquet(synsets)
    counts = build_zeroshot_sets(quiz, synsets, tmp_path / "test.txt", options, items, tasks)
    assert counts["states"] == 5 and counts["austen_cloze"] == 4
    first = json.loads(items[1].read_text().splitlines()[0])
    assert first["question"].startswith("The capital of the US state of") and len(first["choices"]) == 3
    task = yaml.safe_load(tasks[0].read_text())
    assert task["task"] == "repro_capitals" and task["dataset_kwargs"]["data_files"]["test"] == str(items[0].resolve())
