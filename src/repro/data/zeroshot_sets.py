"""The default tier's offline zero-shot suite, built once from the prepared data.

Families (item builders in ``repro.data.zeroshot``): four bsdgames quizzes (capitals,
states, elements, collectives), WordNet gloss -> lemma, and Austen last-word cloze
from the held-out test novel.  Each family is stored as JSONL with an lm-eval task
config beside it; sizes, choices and the seed come from ``data.zeroshot``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pandas as pd

from repro.data.parsers.quiz import read_quiz_dir
from repro.data.zeroshot import (
    cloze_items,
    lmeval_task_config,
    quiz_families,
    wordnet_gloss_items,
    write_jsonl,
    write_lmeval_task_yaml,
)

log = logging.getLogger(__name__)


def _synsets(path) -> list[SimpleNamespace]:
    df = pd.read_parquet(path)
    return [
        SimpleNamespace(key=r.key, pos=r.pos, lexname=r.lexname, words=tuple(r.words), gloss=r.gloss)
        for r in df.itertuples(index=False)
    ]


def build_zeroshot_sets(quiz_dir, synsets_path, cloze_text_path, options: dict, items_paths, task_paths) -> dict:
    """Build every family named by the output paths; return the item count per family."""
    [index] = sorted(Path(quiz_dir).rglob("index"))
    seed, n_choices = int(options["seed"]), int(options["n_choices"])
    # optional parts kept: "California", not the abbreviation "Cal" (the quiz program prints them too)
    quiz = read_quiz_dir(index.parent, include_optional=True)
    families = quiz_families(quiz, options["quiz_items"], n_choices, seed)
    families["wordnet_gloss"] = wordnet_gloss_items(_synsets(synsets_path), options["wordnet_items"], n_choices, seed)
    text = Path(cloze_text_path).read_text()
    families["austen_cloze"] = cloze_items(text, options["cloze_items"], n_choices, seed)
    counts = {}
    for items_path, task_path in zip(items_paths, task_paths):
        family = Path(items_path).stem
        if family not in families:
            raise ValueError(f"no zero-shot family {family!r}; known: {sorted(families)}")
        items = families[family]
        if not items:
            raise ValueError(f"zero-shot family {family!r} produced no items")
        write_jsonl(items, items_path)
        config = lmeval_task_config(f"repro_{family}", Path(items_path).resolve())
        write_lmeval_task_yaml(config, task_path)
        counts[family] = len(items)
        log.info("%s: %d items", family, len(items))
    return counts
