"""Seeded zero-shot multiple-choice item sets built from offline data, plus lm-eval task configs.

The items are used to compare a small causal LM (SmolLM2-135M) before and after compression. They
are built **once, at prepare time**, from the offline data files and stored as JSONL; evaluation
only reads the stored items, so every model sees exactly the same questions, choices and answer
positions. Every builder is a pure function of its inputs and an integer seed: randomness comes
only from ``numpy.random.default_rng`` seeded with that integer, and inputs are visited in a fixed
order, so the same inputs and seed give byte-identical items.

Item format (one JSON object per JSONL line)::

    {"id": str, "family": str, "question": str, "choices": [str, ...], "label": int, "source": str}

``question`` is the context and each choice a continuation: lm-eval's ``multiple_choice`` output
type scores ``question + target_delimiter + choice`` by log-likelihood (``target_delimiter`` is
``" "``, so choices carry no leading space), and ``acc`` / ``acc_norm`` count how often the
correct choice ``choices[label]`` gets the highest (length-normalised) score. Every choice is a
distinct string (compared case-insensitively) and the correct one occurs exactly once. The label
position is drawn uniformly at random (seeded); chance accuracy is ``1 / n_choices`` (25 % for the
default four choices).

Item families
-------------

**Quiz facts** (bsdgames ``quiz`` files; :func:`quiz_items`, :func:`quiz_families`). A quiz row is a
tuple of columns, each a list of acceptable spellings with the canonical one first. The question is
a template filled with the canonical key; the correct choice is the canonical answer; the
distractors are the canonical answers of *other* rows of the same column (and, for ``capitals``,
of the same file, i.e. the same continent). A distractor is never an acceptable answer to the key:
it may not share any spelling with the answers of any row whose key shares a spelling with this
key (``wolves`` is a ``pack`` and a ``route``; ``locusts`` are a ``plague`` and, in another row, a
``swarm``). Rows with an empty key or answer, repeated keys (first row wins) and self-answering rows
(``Djibouti -> Djibouti``, which a model can solve by copying) are skipped.

======================  ==============================  =========================================
family (files)          template                        choices
======================  ==============================  =========================================
``capitals`` (africa,   ``The capital of {key} is``     capital cities of the same continent
america, asia, europe)
``states`` (state)      ``The capital of the US state   state capitals
                        of {key} is``
``elements``            ``The chemical symbol of {key}  element symbols (key: element name,
(elements)              is``                            lower-cased; file columns are
                                                        symbol:number:weight:element)
``collectives``         ``A group of {key} is called``  collective nouns with their article
(collectives)                                           (``a pride``, ``an exaltation``) so the
                                                        template does not favour ``a``-nouns
======================  ==============================  =========================================

Proper nouns are title-cased only when the source spelling is all lower case (a source that keeps
its capitals, ``Porto-Novo``, ``N'Djamena``, is left as it is).

**WordNet glosses** (:func:`wordnet_gloss_items`). Question ``"Definition: {definition}.\\nWord:"``
where the definition is the synset gloss without its quoted examples; the correct choice is the
synset's first lemma; the distractors are first lemmas of other synsets of the *same lexicographer
file* (supersense, e.g. ``noun.animal``), never a lemma of the target synset. Only
single-sense-within-the-supersense targets are used: a synset is skipped when its first lemma is
also a lemma of any other synset of its supersense (so no distractor synset can also be called by
the target word, and no target word is ambiguous among the candidate senses). A synset whose
definition contains one of its own lemmas (``"a radioactive isotope of hydrogen; atoms of
tritium ..."``) is skipped too. Distractors of the target's shape (number of words, initial capital) are preferred, so length and
capitalisation do not give the answer away.

**Prose cloze** (:func:`cloze_items`; LAMBADA-style last-word prediction on held-out prose). The
text is split into whitespace tokens; a target is the last word of a sentence (a token made of
letters followed by ``.``, ``!`` or ``?`` and optional closing quotes/brackets), of at least four
letters and not a stop word. The question is the ``context_words`` tokens just before it (so the
text continues with ``" " + target``; the final punctuation is not scored). Passages do not
overlap. Distractors are other words (letters only, at least four, not stop words, distinct
case-insensitively from the target and each other) from the same passage, preferring words with
the target's capitalisation; the whole text is the fallback when the passage has too few.
"""

from __future__ import annotations

import json
import os
import re
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import yaml

from repro.io import atomic_path

__all__ = [
    "QUIZ_FAMILIES",
    "STOPWORDS",
    "QuizFamily",
    "QuizFileLike",
    "cloze_items",
    "derive_seed",
    "gloss_definition",
    "lmeval_task_config",
    "read_lmeval_task_yaml",
    "quiz_families",
    "quiz_items",
    "read_jsonl",
    "smart_titlecase",
    "wordnet_gloss_items",
    "write_jsonl",
    "write_lmeval_task_yaml",
]


# --------------------------------------------------------------------------- helpers


def derive_seed(seed: int, *names: str) -> int:
    """A stable sub-seed for ``names`` (crc32, not ``hash()``, which is salted per process)."""
    words = [int(seed)] + [zlib.crc32(name.encode("utf-8")) for name in names]
    return int(np.random.SeedSequence(words).generate_state(1)[0])


def _check_counts(n_items: int | None, n_choices: int) -> None:
    if n_choices < 2:
        raise ValueError(f"n_choices must be at least 2, got {n_choices}")
    if n_items is not None and n_items < 0:
        raise ValueError(f"n_items must be non-negative or None, got {n_items}")


def _subsample(n: int, n_items: int | None, rng: np.random.Generator) -> list[int]:
    """Indices ``0..n-1`` (all, or ``n_items`` of them drawn without replacement), in order."""
    if n_items is None or n_items >= n:
        return list(range(n))
    return sorted(int(i) for i in rng.choice(n, size=n_items, replace=False))


def _assemble(correct: str, distractors: Sequence[str], rng: np.random.Generator) -> tuple[list[str], int]:
    """Insert ``correct`` at a seeded random position among ``distractors``."""
    label = int(rng.integers(len(distractors) + 1))
    choices = list(distractors)
    choices.insert(label, correct)
    folded = [c.casefold() for c in choices]
    if len(set(folded)) != len(folded):  # guarded by the callers; a cheap invariant check
        raise AssertionError(f"duplicate choices {choices!r}")
    return choices, label


def _item(id_: str, family: str, question: str, choices: list[str], label: int, source: str) -> dict:
    return {"id": id_, "family": family, "question": question, "choices": choices, "label": label, "source": source}


_LOWER_WORDS = frozenset(
    "a an and at au aux da das de del della der des di do dos du el en es et for in la las le les "
    "los of on or the to upon van von y".split()
)
_LOWER_PREFIXES = ("d'", "l'")


def _cap(word: str) -> str:
    return word[:1].upper() + word[1:]


def smart_titlecase(text: str) -> str:
    """Title-case a proper noun written all in lower case; leave any text with capitals alone.

    Unlike ``str.title`` it keeps particles lower case after the first word (``Port-au-Prince``,
    ``Trinidad and Tobago``, ``Côte d'Ivoire``) and does not capitalise after an apostrophe
    (``St. John's``).
    """
    if any(ch.isupper() for ch in text):
        return text
    out = []
    for i, word in enumerate(text.split(" ")):
        parts = word.split("-")
        new_parts = []
        for j, part in enumerate(parts):
            first = i == 0 and j == 0
            if not first and part in _LOWER_WORDS:
                new_parts.append(part)
            elif not first and part.startswith(_LOWER_PREFIXES) and len(part) > 2:
                new_parts.append(part[:2] + _cap(part[2:]))
            else:
                new_parts.append(_cap(part))
        out.append("-".join(new_parts))
    return " ".join(out)


def _apply_case(text: str, mode: str) -> str:
    if mode == "keep":
        return text
    if mode == "title":
        return smart_titlecase(text)
    if mode == "lower":
        return text.lower()
    raise ValueError(f"case mode must be 'keep', 'title' or 'lower', got {mode!r}")


def _fold_ne(a: str, b: str) -> bool:
    return a.casefold() != b.casefold()


def _with_article(noun: str) -> str:
    return ("an " if noun[:1].lower() in "aeiou" else "a ") + noun


# --------------------------------------------------------------------------- quiz facts


def _spellings(row: Sequence[Sequence[str]], column: int) -> list[str]:
    """The non-empty, stripped spellings of one column (canonical first); [] when missing."""
    if column >= len(row) or row[column] is None:
        return []
    cell = row[column]
    if isinstance(cell, str):  # tolerate a bare string for a single spelling
        cell = [cell]
    return [s.strip() for s in cell if s and s.strip()]


def quiz_items(
    rows: Sequence[Sequence[Sequence[str]]],
    question_template: str,
    answer_column: int,
    key_column: int,
    n_items: int | None,
    n_choices: int,
    seed: int,
    family: str,
    source: str,
    *,
    titlecase: bool = False,
    key_case: str = "keep",
    article: bool = False,
    skip_self_answers: bool = True,
    id_tag: str = "",
) -> list[dict]:
    """Multiple-choice items "``template.format(key=key)`` → answer" from quiz rows.

    ``rows`` are tuples of columns; a column is a list of acceptable spellings, canonical first.
    ``titlecase`` title-cases the choices (only spellings written all in lower case), ``key_case``
    (``"keep"``, ``"title"``, ``"lower"``) sets the key's case in the question and ``article``
    prefixes each choice with ``a``/``an``. Distractors are canonical answers of other rows of
    the same column that share no spelling with any acceptable answer of the key (see the module
    docstring). Rows with an empty key or answer, repeated keys and (with ``skip_self_answers``)
    rows whose answer is a spelling of the key are skipped, as are rows with too few distractors.
    ``n_items`` (``None``: all) subsamples the usable rows; item ids are
    ``f"{family}-{id_tag}{row_index:04d}"``.
    """
    _check_counts(n_items, n_choices)
    fold = str.casefold
    # Acceptable answers for every spelling of every key, over all rows.
    accepted: dict[str, set[str]] = {}
    parsed = []
    for index, row in enumerate(rows):
        keys, answers = _spellings(row, key_column), _spellings(row, answer_column)
        if not keys or not answers:
            continue
        parsed.append((index, keys, answers))
        for k in keys:
            accepted.setdefault(fold(k), set()).update(fold(a) for a in answers)

    # Distractor pool: canonical answers (as displayed), unique case-insensitively, in row order,
    # each with every spelling the pool entry stands for.
    def shown(answer: str) -> str:
        text = smart_titlecase(answer) if titlecase else answer
        return _with_article(text) if article else text

    pool: list[str] = []
    pool_spellings: dict[str, set[str]] = {}
    for _, _, answers in parsed:
        display = shown(answers[0])
        if fold(display) not in pool_spellings:
            pool.append(display)
            pool_spellings[fold(display)] = set()
        pool_spellings[fold(display)].update(fold(a) for a in answers)

    usable = []  # (row index, question, correct choice, candidate distractors)
    seen_keys: set[str] = set()
    for index, keys, answers in parsed:
        if fold(keys[0]) in seen_keys:
            continue
        seen_keys.add(fold(keys[0]))
        key_folds = {fold(k) for k in keys}
        if skip_self_answers and any(fold(a) in key_folds for a in answers):
            continue
        ok_answers = set().union(*(accepted[k] for k in key_folds))
        correct = shown(answers[0])
        candidates = [
            p
            for p in pool
            if fold(p) != fold(correct) and fold(p) not in ok_answers and not (pool_spellings[fold(p)] & ok_answers)
        ]
        if len(candidates) < n_choices - 1:
            continue
        question = question_template.format(key=_apply_case(keys[0], key_case))
        usable.append((index, question, correct, candidates))

    rng = np.random.default_rng(seed)
    items = []
    for u in _subsample(len(usable), n_items, rng):
        index, question, correct, candidates = usable[u]
        picks = rng.choice(len(candidates), size=n_choices - 1, replace=False)
        choices, label = _assemble(correct, [candidates[int(p)] for p in picks], rng)
        items.append(_item(f"{family}-{id_tag}{index:04d}", family, question, choices, label, source))
    return items


class QuizFileLike(Protocol):
    """What :func:`quiz_families` needs of a parsed quiz file."""

    name: str
    categories: tuple[str, ...]
    rows: list[tuple[list[str], ...]]


@dataclass(frozen=True)
class QuizFamily:
    """One quiz item family: which files, which columns, which template and casing."""

    name: str
    files: tuple[str, ...]
    template: str
    key_column: int
    answer_column: int
    key_prefix: str  # expected start of the key/answer category names in the quiz index
    answer_prefix: str
    key_case: str = "keep"
    titlecase: bool = False
    article: bool = False


# Column orders from bsdgames' quiz/index ("Africa{n}:cap{ital}", "state:cap{ital}:abbr{ev{iation}}:flower",
# "symbol:number:weight:element", "ind{ividuals}:coll{ective}").
QUIZ_FAMILIES: tuple[QuizFamily, ...] = (
    QuizFamily(
        "capitals", ("africa", "america", "asia", "europe"), "The capital of {key} is", 0, 1, "", "cap", "title", True
    ),
    QuizFamily("states", ("state",), "The capital of the US state of {key} is", 0, 1, "state", "cap", "title", True),
    QuizFamily("elements", ("elements",), "The chemical symbol of {key} is", 3, 0, "element", "symbol", "lower", True),
    QuizFamily("collectives", ("collectives",), "A group of {key} is called", 0, 1, "ind", "coll", "keep", False, True),
)


def _category(name: str) -> str:
    """``"cap{ital}"`` -> ``"capital"``: a quiz index category, lower case, without braces."""
    return re.sub(r"[{}\[\]]", "", name.split("|")[0]).lower()


def _check_columns(spec: QuizFamily, qfile: Any) -> None:
    categories = tuple(getattr(qfile, "categories", ()) or ())
    if not categories:
        return
    for column, prefix in ((spec.key_column, spec.key_prefix), (spec.answer_column, spec.answer_prefix)):
        if column >= len(categories) or not _category(categories[column]).startswith(prefix):
            raise ValueError(
                f"quiz file {spec.files}: expected column {column} to be {prefix!r}..., categories are {categories}"
            )


def quiz_families(quiz: Mapping[str, Any], n_items: int | None, n_choices: int, seed: int) -> dict[str, list[dict]]:
    """Build every family of :data:`QUIZ_FAMILIES` from ``{file_name: QuizFile}``.

    A family whose files are all missing is left out. Each family (and each of its files) gets its
    own seed derived from ``seed``; ``n_items`` caps each family. Multi-file families (``capitals``)
    draw distractors within a file and drop a key already asked by an earlier file (``Egypt`` is in
    ``africa`` and ``asia``).
    """
    _check_counts(n_items, n_choices)
    out: dict[str, list[dict]] = {}
    for spec in QUIZ_FAMILIES:
        present = [f for f in spec.files if f in quiz]
        if not present:
            continue
        merged: list[dict] = []
        asked: set[str] = set()
        for fname in present:
            qfile = quiz[fname]
            _check_columns(spec, qfile)
            items = quiz_items(
                qfile.rows,
                spec.template,
                spec.answer_column,
                spec.key_column,
                None,
                n_choices,
                derive_seed(seed, spec.name, fname),
                spec.name,
                f"bsdgames quiz/{fname}",
                titlecase=spec.titlecase,
                key_case=spec.key_case,
                article=spec.article,
                id_tag=f"{fname}-" if len(spec.files) > 1 else "",
            )
            for item in items:
                if item["question"].casefold() not in asked:
                    asked.add(item["question"].casefold())
                    merged.append(item)
        rng = np.random.default_rng(derive_seed(seed, spec.name, "subsample"))
        out[spec.name] = [merged[i] for i in _subsample(len(merged), n_items, rng)]
    return out


# --------------------------------------------------------------------------- WordNet glosses


_EXAMPLES = re.compile(r';?\s*"')


def gloss_definition(gloss: str) -> str:
    """The definition part of a WordNet gloss: quoted examples and trailing ``;``/``.`` removed."""
    match = _EXAMPLES.search(gloss)
    definition = gloss[: match.start()] if match else gloss
    return definition.strip().rstrip(";.: ").strip()


def _words_only(text: str) -> str:
    """Casefolded words joined by single spaces (punctuation dropped), for whole-word matching."""
    return " ".join(re.findall(r"\w+", text.casefold()))


def _shape(word: str) -> tuple[int, bool]:
    """Number of words and initial capital: distractors of the same shape hide length/case cues."""
    return len(word.split()), word[:1].isupper()


def _sample_excluding(
    pool: Sequence[str], pool_folds: set[str], excluded: set[str], k: int, rng: np.random.Generator
) -> list[str] | None:
    """``k`` entries of ``pool`` (distinct casefolded, ``pool_folds``) not in ``excluded``; None if too few.

    Draws ``k + m`` pool indices without replacement (``m``: excluded entries present in the pool)
    and keeps the allowed ones, in drawn order: a uniform sample of the allowed entries without
    building their list, which matters for WordNet's supersenses of thousands of synsets.
    """
    m = len(excluded & pool_folds)
    if len(pool) - m < k:
        return None
    picks = rng.choice(len(pool), size=k + m, replace=False)
    allowed = [pool[int(p)] for p in picks if pool[int(p)].casefold() not in excluded]
    return allowed[:k]


def wordnet_gloss_items(
    synsets: Iterable[Any],
    n_items: int | None,
    n_choices: int,
    seed: int,
    pos: str = "n",
    *,
    family: str = "wordnet_gloss",
    source: str = "wordnet",
) -> list[dict]:
    """Definition → word items: ``"Definition: {definition}.\\nWord:"`` → the synset's first lemma.

    ``synsets`` have ``key``, ``pos``, ``lexname``, ``words`` (lemmas with spaces) and ``gloss``.
    Only synsets of part of speech ``pos`` are used (``"a"`` includes satellites ``"s"``), visited
    in ``key`` order. Distractors: distinct first lemmas of other synsets of the same ``lexname``,
    never a lemma of the target synset; among those, lemmas of the target's shape (number of words
    and initial capital) are preferred, then the same number of words, then any. Skipped: synsets
    without a definition, synsets whose first lemma is also a lemma of another synset of the same
    lexname, synsets whose definition contains one of their lemmas, and synsets whose lexname
    offers too few distractors. Ids are ``f"{family}-{key}"``.
    """
    _check_counts(n_items, n_choices)
    fold = str.casefold
    k = n_choices - 1
    wanted = {"a", "s"} if pos == "a" else {pos}
    chosen = sorted((s for s in synsets if s.pos in wanted and s.words), key=lambda s: str(s.key))

    # Per lexname: how many synsets carry each lemma; the distinct first lemmas (key order, first
    # spelling wins) in buckets (lexname,), (lexname, n_words) and (lexname, n_words, capitalised).
    carriers: dict[str, dict[str, int]] = {}
    buckets: dict[tuple, tuple[list[str], set[str]]] = defaultdict(lambda: ([], set()))
    for s in chosen:
        counts = carriers.setdefault(s.lexname, {})
        for word in {fold(w) for w in s.words}:
            counts[word] = counts.get(word, 0) + 1
        first = s.words[0]
        if fold(first) in buckets[(s.lexname,)][1]:
            continue
        n_words, upper = _shape(first)
        for bucket_key in ((s.lexname,), (s.lexname, n_words), (s.lexname, n_words, upper)):
            buckets[bucket_key][0].append(first)
            buckets[bucket_key][1].add(fold(first))

    usable = []
    for s in chosen:
        definition = gloss_definition(s.gloss or "")
        target = s.words[0]
        if not definition or carriers[s.lexname][fold(target)] != 1:
            continue  # no definition, or the word also names another sense in this supersense
        own = {fold(w) for w in s.words}
        padded = f" {_words_only(definition)} "
        if any(f" {_words_only(w)} " in padded for w in own):
            continue  # the definition gives the answer away ("atoms of tritium ...")
        every, every_folds = buckets[(s.lexname,)]
        if len(every) - len(own & every_folds) < k:
            continue  # too few distractors in this supersense
        usable.append((s, definition, own))

    rng = np.random.default_rng(seed)
    items = []
    for u in _subsample(len(usable), n_items, rng):
        s, definition, own = usable[u]
        n_words, upper = _shape(s.words[0])
        for bucket_key in ((s.lexname, n_words, upper), (s.lexname, n_words), (s.lexname,)):
            distractors = _sample_excluding(*buckets[bucket_key], own, k, rng)
            if distractors is not None:
                break
        choices, label = _assemble(s.words[0], distractors, rng)
        question = f"Definition: {definition}.\nWord:"
        items.append(_item(f"{family}-{s.key}", family, question, choices, label, f"{source}:{s.lexname}"))
    return items


# --------------------------------------------------------------------------- prose cloze


STOPWORDS = frozenset(
    """
    a about above after again against all also am an and any are aren as at be because been before
    being below between both but by can cannot could couldn did didn do does doesn doing don down
    during each either else ever every few for from further had hadn has hasn have haven having he
    her here hers herself him himself his how however i if in into is isn it its itself just least
    less let like made make many may me might mine more most much must mustn my myself neither never
    no nor not now of off often on once one only or other ought our ours ourselves out over own
    perhaps quite rather really said same say says shall shan she should shouldn since so some such
    than that the their theirs them themselves then there therefore these they this those though
    through thus till to too under until up upon us very was wasn we well were weren what whatever
    when whence where whether which while who whom whose why will with within without won would
    wouldn yes yet you your yours yourself yourselves
    """.split()
)

_SENTENCE_END = re.compile(r"([A-Za-z]+)[.!?]+[\"'’”)\]_]*")
_WORD = re.compile(r"[^A-Za-z]*([A-Za-z]+)[^A-Za-z]*")


def _content_word(token: str, min_length: int) -> str | None:
    match = _WORD.fullmatch(token)
    if not match:
        return None
    word = match.group(1)
    return word if len(word) >= min_length and word.casefold() not in STOPWORDS else None


def _unique_words(tokens: Iterable[str], min_length: int) -> list[str]:
    seen: set[str] = set()
    out = []
    for token in tokens:
        word = _content_word(token, min_length)
        if word and word.casefold() not in seen:
            seen.add(word.casefold())
            out.append(word)
    return out


def cloze_items(
    text: str,
    n_items: int | None,
    n_choices: int,
    seed: int,
    context_words: int = 60,
    family: str = "austen_cloze",
    source: str = "held-out prose",
    *,
    min_length: int = 4,
) -> list[dict]:
    """LAMBADA-style items: ``context_words`` tokens of prose → the sentence-final word after them.

    ``" ".join(text.split())`` contains ``question + " " + choices[label]`` for every item.
    Passages (context plus target) do not overlap; ``n_items`` (``None``: as many as fit) are
    drawn by a seeded shuffle of all eligible targets. Item ids are ``f"{family}-{token_index:07d}"``.
    """
    _check_counts(n_items, n_choices)
    if context_words < 1:
        raise ValueError(f"context_words must be positive, got {context_words}")
    tokens = text.split()
    eligible = []
    for i in range(context_words, len(tokens)):
        match = _SENTENCE_END.fullmatch(tokens[i])
        if match and len(match.group(1)) >= min_length and match.group(1).casefold() not in STOPWORDS:
            eligible.append(i)

    rng = np.random.default_rng(seed)
    taken = np.zeros(len(tokens), dtype=bool)
    accepted = []
    for e in rng.permutation(len(eligible)):
        if n_items is not None and len(accepted) >= n_items:
            break
        i = eligible[int(e)]
        if not taken[i - context_words : i + 1].any():
            taken[i - context_words : i + 1] = True
            accepted.append(i)
    accepted.sort()

    whole: list[str] | None = None  # built only if some passage is too poor
    items = []
    k = n_choices - 1
    for i in accepted:
        target = _SENTENCE_END.fullmatch(tokens[i]).group(1)
        upper = target[0].isupper()
        passage = [w for w in _unique_words(tokens[i - context_words : i], min_length) if _fold_ne(w, target)]
        pool = [w for w in passage if w[0].isupper() == upper]
        if len(pool) < k:
            pool = passage
        if len(pool) < k:
            if whole is None:
                whole = _unique_words(tokens, min_length)
            extra = [w for w in whole if _fold_ne(w, target) and w.casefold() not in {p.casefold() for p in pool}]
            same = [w for w in extra if w[0].isupper() == upper]
            pool = pool + (same if len(pool) + len(same) >= k else extra)
        if len(pool) < k:
            continue
        picks = rng.choice(len(pool), size=k, replace=False)
        choices, label = _assemble(target, [pool[int(p)] for p in picks], rng)
        question = " ".join(tokens[i - context_words : i])
        items.append(_item(f"{family}-{i:07d}", family, question, choices, label, source))
    return items


# --------------------------------------------------------------------------- storage and lm-eval


def write_jsonl(items: Iterable[Mapping[str, Any]], path) -> None:
    """Write items as UTF-8 JSON lines, atomically (readers never see a partial file)."""
    text = "".join(json.dumps(dict(item), ensure_ascii=False) + "\n" for item in items)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_jsonl(path) -> list[dict]:
    """Read a JSONL file written by :func:`write_jsonl` (blank lines are ignored)."""
    with open(path, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def lmeval_task_config(task_name: str, jsonl_path: Path, description: str = "") -> dict:
    """An lm-eval 0.4.13 task config for a stored item set (zero-shot, ``multiple_choice``).

    Use it inline, ``simple_evaluate(tasks=[config], ...)`` or ``TaskManager().load([config])``, or
    write it with :func:`write_lmeval_task_yaml`. The data file path is made absolute. The
    ``doc_to_*`` fields name dataset columns directly (lm-eval returns ``doc[column]`` when the
    string is a feature name), which avoids a Jinja render + ``literal_eval`` round trip of the
    choice list and keeps an all-digit question a string.
    """
    metric = {"aggregation": "mean", "higher_is_better": True}
    return {
        "task": task_name,
        "dataset_path": "json",
        "dataset_kwargs": {"data_files": {"test": str(Path(jsonl_path).resolve())}},
        "test_split": "test",
        "output_type": "multiple_choice",
        "description": description,
        "doc_to_text": "question",
        "doc_to_choice": "choices",
        "doc_to_target": "label",
        "target_delimiter": " ",
        "num_fewshot": 0,
        "metric_list": [{"metric": "acc", **metric}, {"metric": "acc_norm", **metric}],
        "metadata": {"version": 1.0},
    }


def write_lmeval_task_yaml(config: Mapping[str, Any], path) -> None:
    """Write a task config as YAML that lm-eval's ``TaskManager(include_path=...)`` picks up.

    The data files stay absolute (what lm-eval reads) and are also recorded relative to the YAML's
    folder (``metadata.data_files_relative``), so that :func:`read_lmeval_task_yaml` finds them
    after ``resources/`` was moved or copied to another directory.
    """
    config = dict(config)
    folder = Path(path).resolve().parent
    data_files = (config.get("dataset_kwargs") or {}).get("data_files")
    if isinstance(data_files, Mapping):
        relative = {split: os.path.relpath(Path(file).resolve(), folder) for split, file in data_files.items()}
        config["metadata"] = {**(config.get("metadata") or {}), "data_files_relative": relative}
    text = yaml.safe_dump(config, sort_keys=False, allow_unicode=True)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def read_lmeval_task_yaml(path) -> dict:
    """A task config written by :func:`write_lmeval_task_yaml`, its data files found beside the YAML.

    ``metadata.data_files_relative`` (when present) is resolved against the YAML's folder and
    replaces the absolute ``dataset_kwargs.data_files``, which point into the directory the YAML
    was written in.
    """
    path = Path(path)
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict):
        raise ValueError(f"zero-shot task config {path} is not a mapping")
    relative = (config.get("metadata") or {}).get("data_files_relative")
    if isinstance(relative, Mapping):
        folder = path.resolve().parent
        files = {split: str((folder / file).resolve()) for split, file in relative.items()}
        missing = [f for f in files.values() if not Path(f).is_file()]
        if missing:
            raise FileNotFoundError(f"zero-shot task config {path}: item file(s) {missing} do not exist")
        config["dataset_kwargs"] = {**(config.get("dataset_kwargs") or {}), "data_files": files}
    return config
