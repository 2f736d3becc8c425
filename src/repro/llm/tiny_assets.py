"""Offline stand-ins for the LLM inputs of the pipeline's *test tier*: a tiny model, its tokenizer, texts.

The paper tier compresses SmolLM2-135M, calibrates and measures perplexity on held-out Jane Austen prose
and scores zero-shot multiple-choice sets. None of that can be downloaded in CI, and even a 135M model
is slow on a CPU. This module builds, from nothing but an integer seed and in a few seconds:

* **texts**: English-like prose from a small hand-written grammar (:func:`synthetic_corpus`: about 170
  distinct words, sentences ending with ``.``, paragraphs separated by blank lines), written as
  ``train.txt`` and ``test.txt`` from different seed streams (:func:`write_tiny_texts`);
* **a tokenizer**: byte-level BPE trained with ``tokenizers`` on the training text
  (:func:`train_tokenizer`; ``<|endoftext|>`` is BOS, EOS, UNK and PAD, and, like GPT-2 and SmolLM2,
  no special token is added to an encoded text by default);
* **a model folder**: a random-init Llama of :mod:`repro.llm.tiny` (grouped-query attention, tied
  embeddings) sized to the tokenizer, optionally trained for a few AdamW steps of next-token prediction
  on the training text so that it is better than chance, saved with safetensors together with the
  tokenizer (:func:`build_tiny_llm`; ``from_pretrained(folder, local_files_only=True)`` loads both);
* **a zero-shot set**: LAMBADA-style cloze items drawn from held-out text, as JSONL plus an lm-eval task
  YAML (:func:`write_tiny_zeroshot`).

Everything is a deterministic function of the seed (numpy ``default_rng`` for text, ``torch`` seeded
generators for weights and training batches; the caller's global RNG states are left untouched), so
the LLM rules (calibrate -> compress -> perplexity / lm-eval zero-shot / speed) run end to end and
give the same numbers on the same machine. Those numbers check the plumbing, not the papers' claims.

Command line::

    python -m repro.llm.tiny_assets OUT_DIR [--seed N] [--train-steps N] [--overwrite]

writes ``OUT_DIR/model``, ``OUT_DIR/text/{train,test}.txt`` and ``OUT_DIR/zeroshot/{tiny_cloze.jsonl,
tasks/tiny_cloze.yaml}`` and prints a JSON summary. The model is trained on exactly the text of
``train.txt``; ``test.txt`` and the cloze items come from another seed stream.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.data.zeroshot import cloze_items, derive_seed, lmeval_task_config, write_jsonl, write_lmeval_task_yaml
from repro.io import write_text
from repro.llm.tiny import tiny_model

__all__ = [
    "SPECIAL_TOKEN",
    "TASK_NAME",
    "build_tiny_llm",
    "corpus_seed",
    "main",
    "make_tiny_llm",
    "synthetic_corpus",
    "train_tokenizer",
    "vocabulary",
    "write_tiny_texts",
    "write_tiny_zeroshot",
]

#: The one special token: beginning and end of text, unknown and padding (GPT-2 / SmolLM2 style).
SPECIAL_TOKEN = "<|endoftext|>"
#: lm-eval task name (and file stem) of the tiny cloze set.
TASK_NAME = "tiny_cloze"
#: Default sizes: the training text (tokenizer, model, calibration) and the held-out text.
N_TRAIN_SENTENCES = 2000
N_TEST_SENTENCES = 400

# --------------------------------------------------------------------------- grammar

_PEOPLE = (
    "captain widow farmer sister doctor soldier gardener baker teacher sailor merchant parson cousin "
    "neighbour stranger shepherd miller weaver poet squire governess butler fisherman tailor"
).split()
_ADJECTIVES = (
    "quiet clever gentle proud little ancient cheerful patient curious silver golden weary honest modest "
    "bright lonely solemn merry humble restless"
).split()
_THINGS = (
    "letter basket lantern ribbon carriage violin bonnet kettle parcel compass portrait blanket candle "
    "bottle saddle ledger umbrella teapot mirror shawl bracelet wagon journal trumpet pillow spoon"
).split()
_PLACES = (
    "village river church valley market forest station kitchen library harbour hillside castle meadow "
    "orchard garden cottage"
).split()
_PREPOSITIONS = "in near beside across behind beyond along".split()
_TRANSITIVE = (
    "admired carried painted mended watched praised borrowed opened guarded followed found polished "
    "visited counted wrapped sold bought cleaned lost hid dropped noticed"
).split()
_INTRANSITIVE = "laughed waited rested sang wandered smiled slept listened sighed whistled hurried lingered".split()
_ADVERBS = "slowly quietly gladly carefully warmly softly happily silently eagerly patiently".split()
_TIMES = (
    "that morning",
    "before supper",
    "after the storm",
    "in winter",
    "at dawn",
    "on Sunday",
    "by evening",
    "last autumn",
)
_LINKS = "was seemed became grew".split()
_CONJUNCTIONS = "and but while".split()
_DETERMINERS = ("the", "a", "that", "this", "her", "his", "our", "my")
_DETERMINER_P = (0.45, 0.2, 0.07, 0.07, 0.06, 0.06, 0.05, 0.04)


def vocabulary() -> frozenset[str]:
    """Every word (lower case) the grammar of :func:`synthetic_corpus` can produce."""
    words = set(_PEOPLE + _ADJECTIVES + _THINGS + _PLACES + _PREPOSITIONS + _TRANSITIVE + _INTRANSITIVE)
    words |= set(_ADVERBS + _LINKS + _CONJUNCTIONS + ["because", "an"]) | set(_DETERMINERS)
    words |= {w.lower() for t in _TIMES for w in t.split()}
    return frozenset(words)


class _Paragraph:
    """Sentence generator for one paragraph: a protagonist, a favourite thing and a home place recur."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.rng = rng
        self.hero = self._pick(_PEOPLE)
        self.thing = self._pick(_THINGS)
        self.place = self._pick(_PLACES)

    def _pick(self, words):
        return words[int(self.rng.integers(len(words)))]

    def _noun_phrase(self, noun: str) -> str:
        det = _DETERMINERS[int(self.rng.choice(len(_DETERMINERS), p=_DETERMINER_P))]
        words = [noun]
        if self.rng.random() < 0.4:
            words.insert(0, self._pick(_ADJECTIVES))
        if det == "a" and words[0][0] in "aeiou":
            det = "an"
        return " ".join([det, *words])

    def subject(self) -> str:
        if self.rng.random() < 0.5:
            return "the " + self.hero
        return self._noun_phrase(self._pick(_PEOPLE))

    def obj(self) -> str:
        return self._noun_phrase(self.thing if self.rng.random() < 0.4 else self._pick(_THINGS))

    def place_phrase(self) -> str:
        place = self.place if self.rng.random() < 0.5 else self._pick(_PLACES)
        return f"{self._pick(_PREPOSITIONS)} the {place}"

    def clause(self) -> str:
        """A subject-verb clause ending with a content word (thing, place, adverb or adjective)."""
        kind = int(self.rng.integers(5))
        if kind == 0:
            return f"{self.subject()} {self._pick(_TRANSITIVE)} {self.obj()}"
        if kind == 1:
            return f"{self.subject()} {self._pick(_TRANSITIVE)} {self.obj()} {self.place_phrase()}"
        if kind == 2:
            return f"{self.subject()} {self._pick(_INTRANSITIVE)} {self._pick(_ADVERBS)}"
        if kind == 3:
            return f"{self.subject()} {self._pick(_INTRANSITIVE)} {self.place_phrase()}"
        return f"{self.subject()} {self._pick(_LINKS)} {self._pick(_ADJECTIVES)}"

    def sentence(self) -> str:
        kind = int(self.rng.integers(6))
        if kind <= 2:
            body = self.clause()
        elif kind == 3:
            body = f"{self._pick(_TIMES)}, {self.clause()}"
        elif kind == 4:
            body = f"{self.clause()}, {self._pick(_CONJUNCTIONS)} {self.clause()}"
        else:
            body = f"{self.clause()} because {self.subject()} {self._pick(_LINKS)} {self._pick(_ADJECTIVES)}"
        return body[0].upper() + body[1:] + "."


def corpus_seed(seed: int, split: str) -> int:
    """The :func:`synthetic_corpus` seed of a split (``"train"``, ``"test"``) of the assets for ``seed``."""
    return derive_seed(seed, "tiny_assets", split)


def synthetic_corpus(seed: int, n_sentences: int) -> str:
    """``n_sentences`` sentences of grammar prose, 3 to 6 per paragraph, paragraphs split by blank lines.

    Each paragraph has a protagonist, a favourite thing and a home place that recur, so a model can
    learn a little in-context copying. Sentences are generated one after another from
    ``numpy.random.default_rng(seed)``, so a shorter corpus is a prefix of a longer one (up to the
    cut of its last paragraph). The text ends with a newline.
    """
    if n_sentences < 1:
        raise ValueError(f"n_sentences must be positive, got {n_sentences}")
    rng = np.random.default_rng(seed)
    paragraphs: list[str] = []
    left = n_sentences
    while left > 0:
        size = min(int(rng.integers(3, 7)), left)
        para = _Paragraph(rng)
        paragraphs.append(" ".join(para.sentence() for _ in range(size)))
        left -= size
    return "\n\n".join(paragraphs) + "\n"


# --------------------------------------------------------------------------- tokenizer


def train_tokenizer(text: str, vocab_size: int = 320):
    """A byte-level BPE ``PreTrainedTokenizerFast`` trained on ``text`` (``len(tok) <= vocab_size``).

    The vocabulary holds ``<|endoftext|>`` (id 0; BOS, EOS, UNK and PAD), the 256 byte symbols and
    merges learnt from ``text`` (pairs seen at least twice) up to ``vocab_size``. No prefix space is
    added, ``decode(encode(text)) == text`` for any text, and encoding adds no special tokens.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if vocab_size < len(alphabet) + 1:
        raise ValueError(f"vocab_size must be at least {len(alphabet) + 1} (bytes + {SPECIAL_TOKEN}), got {vocab_size}")
    if not text:
        raise ValueError("cannot train a tokenizer on an empty text")
    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    raw.post_processor = processors.ByteLevel(trim_offsets=False)  # offsets only; adds no token
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=2,
        special_tokens=[SPECIAL_TOKEN],
        initial_alphabet=alphabet,
        show_progress=False,
    )
    raw.train_from_iterator(text.splitlines(keepends=True), trainer=trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw,
        bos_token=SPECIAL_TOKEN,
        eos_token=SPECIAL_TOKEN,
        unk_token=SPECIAL_TOKEN,
        pad_token=SPECIAL_TOKEN,
        add_prefix_space=False,
        clean_up_tokenization_spaces=False,
    )
    if len(tok) != raw.get_vocab_size() or len(tok) > vocab_size:  # cheap invariant check
        raise AssertionError(f"tokenizer size {len(tok)} vs trained {raw.get_vocab_size()} (limit {vocab_size})")
    return tok


# --------------------------------------------------------------------------- model


def _train(model, ids: torch.Tensor, *, steps: int, seed: int, lr: float, batch_size: int, seq_len: int):
    """``steps`` AdamW steps of next-token prediction on random windows of ``ids``; (first, last) loss."""
    if ids.numel() <= seq_len:
        raise ValueError(f"training text has {ids.numel()} tokens, need more than seq_len {seq_len}")
    threads = torch.get_num_threads()
    # One thread: these matrices are too small to gain from more, a busy CI runner makes OpenMP threads
    # spin for ages (150 steps: ~4 s on one thread, 25-70 s on two cores shared with other jobs), and
    # the trained weights do not depend on how many cores the machine has.
    torch.set_num_threads(1)
    try:
        return _train_steps(model, ids, steps=steps, seed=seed, lr=lr, batch_size=batch_size, seq_len=seq_len)
    finally:
        torch.set_num_threads(threads)


def _train_steps(model, ids: torch.Tensor, *, steps: int, seed: int, lr: float, batch_size: int, seq_len: int):
    losses = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        gen = torch.Generator().manual_seed(seed)
        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
        offsets = torch.arange(seq_len)
        model.train()
        for _ in range(steps):
            starts = torch.randint(0, ids.numel() - seq_len + 1, (batch_size,), generator=gen)
            batch = ids[starts.unsqueeze(1) + offsets]
            loss = model(input_ids=batch, labels=batch, use_cache=False).loss
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            losses.append(float(loss.detach()))
        model.eval()
    if not all(math.isfinite(x) for x in losses):
        raise FloatingPointError("non-finite training loss")
    return losses[0], losses[-1]


def make_tiny_llm(
    *,
    seed: int = 0,
    n_sentences: int = N_TRAIN_SENTENCES,
    text: str | None = None,
    vocab_size: int = 320,
    hidden_size: int = 64,
    num_layers: int = 4,
    intermediate_size: int = 128,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 256,
    train_steps: int = 0,
    lr: float = 3e-3,
    batch_size: int = 8,
    seq_len: int = 64,
):
    """The in-memory ``(model, tokenizer, summary)`` that :func:`build_tiny_llm` saves (same arguments).

    ``text`` (default: ``synthetic_corpus(corpus_seed(seed, "train"), n_sentences)``, the text of
    ``write_tiny_texts(..., seed=seed)``'s ``train.txt``) trains the tokenizer and, with
    ``train_steps > 0``, the model: AdamW (``lr``, default weight decay, gradient norm clipped to 1) on
    ``batch_size`` random windows of ``seq_len`` tokens per step (offsets from a ``torch.Generator``
    seeded with ``seed``), under ``torch.manual_seed(seed)``, on the CPU with one thread (restored
    afterwards, as are the global RNG states). 150 steps take about 4 s and bring the perplexity of
    held-out grammar text from about 410 (random init, above the 320-token vocabulary) to about 3.6.
    """
    if train_steps < 0:
        raise ValueError(f"train_steps must be non-negative, got {train_steps}")
    if max_position_embeddings < 256:
        raise ValueError(f"max_position_embeddings must be at least 256, got {max_position_embeddings}")
    if seq_len > max_position_embeddings:
        raise ValueError(f"seq_len {seq_len} exceeds max_position_embeddings {max_position_embeddings}")
    start = time.perf_counter()
    if text is None:
        text = synthetic_corpus(corpus_seed(seed, "train"), n_sentences)
    tok = train_tokenizer(text, vocab_size)
    tok.model_max_length = max_position_embeddings
    special = tok.convert_tokens_to_ids(SPECIAL_TOKEN)
    model = tiny_model(
        "llama",
        seed,
        vocab_size=len(tok),
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        intermediate_size=intermediate_size,
        num_attention_heads=num_heads,
        num_key_value_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        tie_word_embeddings=True,
        bos_token_id=special,
        eos_token_id=special,
        pad_token_id=special,
    )
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        setattr(model.generation_config, name, special)
    ids = torch.tensor(tok(text, add_special_tokens=False)["input_ids"], dtype=torch.long)
    first = last = None
    if train_steps:
        first, last = _train(model, ids, steps=train_steps, seed=seed, lr=lr, batch_size=batch_size, seq_len=seq_len)
    summary = {
        "seed": seed,
        "vocab_size": len(tok),
        "parameters": sum(p.numel() for p in model.parameters()),  # tied embedding counted once
        "hidden_size": hidden_size,
        "num_layers": num_layers,
        "corpus_characters": len(text),
        "corpus_tokens": int(ids.numel()),
        "train_steps": train_steps,
        "train_loss_first": first,
        "train_loss_last": last,
        "seconds": round(time.perf_counter() - start, 3),
    }
    return model, tok, summary


def _check_target(folder: Path, overwrite: bool) -> None:
    if folder.exists() and not folder.is_dir():
        raise FileExistsError(f"{folder} exists and is not a folder")
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise FileExistsError(f"{folder} exists and is not empty (overwrite=True or --overwrite replaces it)")


def build_tiny_llm(
    folder,
    *,
    seed: int = 0,
    n_sentences: int = N_TRAIN_SENTENCES,
    text: str | None = None,
    vocab_size: int = 320,
    hidden_size: int = 64,
    num_layers: int = 4,
    intermediate_size: int = 128,
    num_heads: int = 4,
    num_kv_heads: int = 2,
    max_position_embeddings: int = 256,
    train_steps: int = 0,
    lr: float = 3e-3,
    batch_size: int = 8,
    seq_len: int = 64,
    overwrite: bool = False,
) -> dict[str, Any]:
    """Write a tiny Llama model folder (weights, config, generation config, tokenizer) to ``folder``.

    The model and tokenizer are those of :func:`make_tiny_llm` with the same arguments; the weights are
    saved as safetensors. The folder is built beside ``folder`` and renamed into place, so it is
    complete or absent; an existing non-empty ``folder`` is an error (``FileExistsError``) unless
    ``overwrite``. Returns the summary of :func:`make_tiny_llm` plus ``folder``; the summary, less
    ``seconds``, is also stored in the folder as ``tiny_assets.json``.
    """
    folder = Path(folder)
    _check_target(folder, overwrite)
    start = time.perf_counter()
    model, tok, summary = make_tiny_llm(
        seed=seed,
        n_sentences=n_sentences,
        text=text,
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_layers=num_layers,
        intermediate_size=intermediate_size,
        num_heads=num_heads,
        num_kv_heads=num_kv_heads,
        max_position_embeddings=max_position_embeddings,
        train_steps=train_steps,
        lr=lr,
        batch_size=batch_size,
        seq_len=seq_len,
    )
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        stored = {k: v for k, v in summary.items() if k != "seconds"}  # keeps the folder reproducible
        (tmp / "tiny_assets.json").write_text(json.dumps(stored, indent=2, sort_keys=True) + "\n")
        _check_target(folder, overwrite)  # again: it may have appeared meanwhile
        if folder.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{folder.name}.old.", dir=folder.parent))
            os.replace(folder, old / "previous")
            os.replace(tmp, folder)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    summary["seconds"] = round(time.perf_counter() - start, 3)
    return {**summary, "folder": str(folder)}


# --------------------------------------------------------------------------- texts and zero-shot


def write_tiny_texts(
    folder, *, seed: int = 0, n_train: int = N_TRAIN_SENTENCES, n_test: int = N_TEST_SENTENCES
) -> dict[str, Path]:
    """Write ``train.txt`` and ``test.txt`` (different seed streams) to ``folder``, atomically.

    With the defaults the training text (the one :func:`build_tiny_llm` trains on for the same seed)
    has about 58 000 tokens of the tiny tokenizer and the test text about 12 000: room for calibration
    (16 windows of 64 tokens) and for dozens of 64-token perplexity windows.
    """
    folder = Path(folder)
    paths = {"train": folder / "train.txt", "test": folder / "test.txt"}
    write_text(synthetic_corpus(corpus_seed(seed, "train"), n_train), paths["train"])
    write_text(synthetic_corpus(corpus_seed(seed, "test"), n_test), paths["test"])
    return paths


def write_tiny_zeroshot(folder, text: str, *, seed: int = 0, n_items: int = 24, n_choices: int = 4) -> dict:
    """LAMBADA-style cloze items from ``text`` as ``folder/tiny_cloze.jsonl`` + ``folder/tasks/tiny_cloze.yaml``.

    Items come from ``repro.data.zeroshot.cloze_items`` (20 context words, family ``tiny_cloze``);
    the YAML is the lm-eval task config naming the JSONL by absolute path. Raises ``ValueError`` when
    ``text`` yields fewer than ``n_items`` items. Returns ``{"items": path, "task": path, "n_items": n}``.
    """
    folder = Path(folder)
    items = cloze_items(text, n_items, n_choices, seed, context_words=20, family=TASK_NAME, source="synthetic prose")
    if len(items) < n_items:
        raise ValueError(f"text gives only {len(items)} cloze items, {n_items} requested")
    items_path = folder / f"{TASK_NAME}.jsonl"
    task_path = folder / "tasks" / f"{TASK_NAME}.yaml"
    write_jsonl(items, items_path)
    description = "Tiny synthetic cloze (test tier): predict the last word of a sentence.\n\n"
    write_lmeval_task_yaml(lmeval_task_config(TASK_NAME, items_path, description), task_path)
    return {"items": items_path, "task": task_path, "n_items": len(items)}


# --------------------------------------------------------------------------- command line


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m repro.llm.tiny_assets",
        description="Build the test tier's tiny LLM assets (model folder, texts, zero-shot set) offline.",
    )
    parser.add_argument("out_dir", type=Path, help="output folder (gets model/, text/, zeroshot/)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-steps", type=int, default=0, help="AdamW steps on the training text (0: random)")
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    try:
        if args.train_steps < 0:
            raise ValueError(f"--train-steps must be non-negative, got {args.train_steps}")
        if out.exists() and not out.is_dir():
            raise FileExistsError(f"{out} exists and is not a folder")
        for sub in ("model", "text", "zeroshot"):
            _check_target(out / sub, args.overwrite)
        texts = write_tiny_texts(out / "text", seed=args.seed)
        train_text = texts["train"].read_text()
        model = build_tiny_llm(
            out / "model", overwrite=args.overwrite, seed=args.seed, text=train_text, train_steps=args.train_steps
        )
        zeroshot = write_tiny_zeroshot(out / "zeroshot", texts["test"].read_text(), seed=args.seed)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {
        "model": model,
        "text": {k: str(v) for k, v in texts.items()},
        "zeroshot": {k: (str(v) if isinstance(v, Path) else v) for k, v in zeroshot.items()},
    }
    print(json.dumps(summary, indent=2, sort_keys=True))
    return 0


if __name__ == "__main__":
    sys.exit(main())
