"""Tests for repro.llm.eval on a tiny random llama and a BPE tokenizer trained here: no network, no real model."""

from __future__ import annotations

import copy
import importlib.metadata
import json
import math
import random

import numpy as np
import pytest
import torch

tokenizers = pytest.importorskip("tokenizers")
transformers = pytest.importorskip("transformers")

from repro.data.zeroshot import lmeval_task_config  # noqa: E402
from repro.llm.eval import rows as eval_rows  # noqa: E402
from repro.llm.eval.perplexity import perplexity, window_nll  # noqa: E402
from repro.llm.eval.speed import measure_speed  # noqa: E402
from repro.llm.eval.zeroshot import (  # noqa: E402
    DEFAULT_SEEDS,
    PAPER_TASK_METRIC,
    headline_metric,
    mean_accuracy,
    zero_shot,
)
from repro.report.rows import PROVENANCE_COLUMNS, validate_table  # noqa: E402
from repro.report.rows import tidy_rows as tidy  # noqa: E402

CORPUS = [
    "The cat sat on the mat.",
    "A dog ran in the park.",
    "Paris is the capital of France.",
    "The capital of France is Paris, and the sea is grey and cold.",
] * 5
TEXT = " ".join(CORPUS)
# (question, choices, label); the distractors are words the tokenizer never saw, so they are spelt with
# byte tokens none of the correct answers uses (checked in the rigged-model test).
ITEMS = [
    ("The cat sat on the", ["mat", "zebra"], 0),
    ("A dog ran in the", ["xylophone", "park"], 1),
    ("Paris is the capital of", ["France", "dog", "quartz"], 0),
    ("The capital of France is", ["Paris", "jukebox"], 0),
]


# --------------------------------------------------------------------------- fixtures


def _train_bpe():
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(
        CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<s>", "</s>"], show_progress=False
    )
    return bpe._tokenizer


@pytest.fixture(scope="module")
def tok():
    """No special tokens added by default (like GPT-2 / Qwen)."""
    return transformers.PreTrainedTokenizerFast(tokenizer_object=_train_bpe(), bos_token="<s>", eos_token="</s>")


@pytest.fixture(scope="module")
def bos_tok():
    """Adds ``<s>`` in front of every text by default (like LLaMA-2)."""
    from tokenizers.processors import TemplateProcessing

    raw = _train_bpe()
    raw.post_processor = TemplateProcessing(single="<s> $A", special_tokens=[("<s>", raw.token_to_id("<s>"))])
    return transformers.PreTrainedTokenizerFast(tokenizer_object=raw, bos_token="<s>", eos_token="</s>")


def _tiny_llama(vocab_size: int, seed: int = 0):
    torch.manual_seed(seed)
    config = transformers.LlamaConfig(
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        vocab_size=vocab_size,
        max_position_embeddings=256,
        tie_word_embeddings=False,
    )
    return transformers.LlamaForCausalLM(config).eval()


@pytest.fixture(scope="module")
def model(tok):
    return _tiny_llama(len(tok))


@pytest.fixture
def task_config(tmp_path, offline_hf):
    path = tmp_path / "items.jsonl"
    lines = [
        {"id": f"t-{i}", "family": "t", "question": q, "choices": c, "label": label, "source": "test"}
        for i, (q, c, label) in enumerate(ITEMS)
    ]
    path.write_text("".join(json.dumps(line) + "\n" for line in lines), encoding="utf-8")
    return lmeval_task_config("zs_llm_eval_test", path)


# --------------------------------------------------------------------------- perplexity


def _window_logprob_sums(model, ids: list[int], starts_and_lengths) -> list[float]:
    """Per window: sum of log p(token | earlier tokens of the window), every position but the first."""
    sums = []
    with torch.no_grad():
        for start, length in starts_and_lengths:
            chunk = torch.tensor([ids[start : start + length]])
            logprobs = torch.log_softmax(model(chunk).logits[0].double(), dim=-1)
            sums.append(float(logprobs[torch.arange(length - 1), chunk[0, 1:]].sum()))
    return sums


@pytest.mark.parametrize("remainder", ["drop", "keep"])
def test_perplexity_matches_hand_computation(model, tok, remainder):
    window = 16
    ids = tok(TEXT)["input_ids"]
    n_full, rest = divmod(len(ids), window)
    assert n_full >= 3 and rest >= 2  # a partial window exists

    spans = [(k * window, window) for k in range(n_full)]
    if remainder == "keep":
        spans.append((n_full * window, rest))
    logprob = sum(_window_logprob_sums(model, ids, spans))
    expected_scored = n_full * (window - 1) + (rest - 1 if remainder == "keep" else 0)

    result = perplexity(
        model, tok, TEXT, window=window, remainder=remainder, batch_size=2, dataset="toy", join_note=" "
    )
    assert result["scored_tokens"] == expected_scored
    assert result["windows"] == n_full + (remainder == "keep")
    assert result["full_windows"] == n_full and result["tokens"] == len(ids)
    assert result["partial_window_tokens"] == (rest if remainder == "keep" else 0)
    assert result["dropped_tokens"] == (rest if remainder == "drop" else 0)
    assert result["nll_mean"] == pytest.approx(-logprob / expected_scored, rel=1e-5)
    assert result["perplexity"] == pytest.approx(math.exp(-logprob / expected_scored), rel=1e-5)
    assert result["protocol"] == {
        "dataset": "toy",
        "join": " ",
        "window": window,
        "remainder": remainder,
        "bos": "none",
        "dtype": "float32",
        "max_windows": None,
    }


def test_perplexity_bos_once_and_max_windows(tok, bos_tok):
    model = _tiny_llama(len(bos_tok), seed=1)
    window = 16
    ids = bos_tok(TEXT)["input_ids"]
    assert ids[0] == bos_tok.bos_token_id and ids.count(bos_tok.bos_token_id) == 1
    assert ids[1:] == tok(TEXT)["input_ids"]

    result = perplexity(model, bos_tok, TEXT, window=window, remainder="keep", max_windows=2)
    assert result["protocol"]["bos"] == "<s>" and result["protocol"]["max_windows"] == 2
    # max_windows stops before the end of the text: no partial window, even with "keep".
    assert result["windows"] == 2 and result["scored_tokens"] == 2 * (window - 1)
    logprob = sum(_window_logprob_sums(model, ids, [(0, window), (window, window)]))  # BOS opens window 0
    assert result["nll_mean"] == pytest.approx(-logprob / (2 * (window - 1)), rel=1e-5)

    # Batching does not change the number.
    batched = perplexity(model, bos_tok, TEXT, window=window, batch_size=3, progress=False)
    single = perplexity(model, bos_tok, TEXT, window=window, batch_size=1, progress=False)
    assert batched["nll_mean"] == pytest.approx(single["nll_mean"], rel=1e-6)


def test_window_nll_edge_cases(model):
    ids = list(range(10))
    with pytest.raises(ValueError, match="fewer than one window"):
        window_nll(model, ids, window=16, remainder="drop")
    short = window_nll(model, ids, window=16, remainder="keep", progress=False)
    assert short["windows"] == 1 and short["full_windows"] == 0 and short["scored_tokens"] == 9
    one_left = window_nll(model, list(range(17)), window=16, remainder="keep", progress=False)
    assert one_left["windows"] == 1 and one_left["scored_tokens"] == 15  # a 1-token remainder predicts nothing
    with pytest.raises(ValueError, match="remainder"):
        window_nll(model, ids, window=4, remainder="pad")
    with pytest.raises(ValueError, match="window"):
        window_nll(model, ids, window=1)


# --------------------------------------------------------------------------- zero-shot


def _lmeval_loglikelihood(model, tok, context: str, continuation: str) -> float:
    """log p(continuation | context) with lm-eval's split: encode(whole)[len(encode(context)):]."""
    context_ids = tok(context)["input_ids"]
    whole = tok(context + continuation)["input_ids"]
    target = whole[len(context_ids) :]
    inputs = torch.tensor([(context_ids + target)[:-1]])
    with torch.no_grad():
        logprobs = torch.log_softmax(model(inputs).logits[0].float(), dim=-1)
    positions = torch.arange(len(context_ids) - 1, len(context_ids) - 1 + len(target))
    return float(logprobs[positions, torch.tensor(target)].sum())


def test_zero_shot_matches_hand_loglikelihoods(model, tok, task_config):
    random.seed(123)
    expected_next = random.random()
    random.seed(123)
    results = zero_shot(model, tok, [task_config], batch_size=3, log_samples=True)
    assert random.random() == expected_next  # the caller's RNG state is restored
    assert tok.pad_token is None  # the caller's tokenizer is not modified by lm-eval

    task = results["zs_llm_eval_test"]
    assert task["n"] == len(ITEMS)
    assert 0.0 <= task["acc"] <= 1.0 and 0.0 <= task["acc_norm"] <= 1.0
    assert set(task["stderr"]) == {"acc", "acc_norm"}
    assert task["protocol"]["lm_eval_version"] == importlib.metadata.version("lm-eval")
    assert task["protocol"]["num_fewshot"] == 0 and task["protocol"]["dtype"] == "float32"
    assert {k: task["protocol"][k] for k in DEFAULT_SEEDS} == DEFAULT_SEEDS

    hits, hits_norm = [], []
    for (question, choices, label), sample in zip(ITEMS, task["samples"], strict=True):
        lls = [_lmeval_loglikelihood(model, tok, question, " " + choice) for choice in choices]
        np.testing.assert_allclose(sample["loglikelihoods"], lls, rtol=1e-4, atol=1e-4)
        assert sample["target"] == label
        hits.append(int(np.argmax(lls)) == label)
        hits_norm.append(int(np.argmax(np.array(lls) / [len(c) for c in choices])) == label)
    assert task["acc"] == pytest.approx(np.mean(hits))
    assert task["acc_norm"] == pytest.approx(np.mean(hits_norm))

    again = zero_shot(model, tok, [task_config], batch_size=2, log_samples=False)
    assert {k: v for k, v in again["zs_llm_eval_test"].items() if k != "protocol"} == {
        k: v for k, v in task.items() if k not in ("protocol", "samples")
    }


def _rigged_unigram_model(tok, favoured: set[int]):
    """A llama whose next-token distribution ignores the input: the ``favoured`` ids get all the mass.

    Attention and MLP outputs are zeroed, so the last hidden state is the (normed) token embedding;
    every embedding is the same unit vector e_0, so the logits are lm_head's column 0 times a constant.
    """
    rigged = _tiny_llama(len(tok), seed=2)
    with torch.no_grad():
        for layer in rigged.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
        rigged.model.embed_tokens.weight.zero_()
        rigged.model.embed_tokens.weight[:, 0] = 1.0
        rigged.lm_head.weight.zero_()
        rigged.lm_head.weight[sorted(favoured), 0] = 3.0
    return rigged


def test_zero_shot_rigged_model_is_always_right(tok, task_config):
    def continuation(question, choice):
        return tok(question + " " + choice)["input_ids"][len(tok(question)["input_ids"]) :]

    favoured = {t for q, choices, label in ITEMS for t in continuation(q, choices[label])}
    for q, choices, label in ITEMS:
        for i, choice in enumerate(choices):
            if i != label:
                assert set(continuation(q, choice)) - favoured, (q, choice)  # a disfavoured token in every distractor

    results = zero_shot(_rigged_unigram_model(tok, favoured), tok, [task_config], batch_size=4)
    task = results["zs_llm_eval_test"]
    assert task["acc"] == 1.0 and task["acc_norm"] == 1.0 and task["n"] == len(ITEMS)
    assert task["stderr"]["acc"] == 0.0


def test_headline_metric_and_mean():
    assert PAPER_TASK_METRIC["winogrande"] == "acc" and headline_metric("piqa") == "acc_norm"
    assert headline_metric({"task": "zs_capitals"}) == "acc"
    assert headline_metric("zs_capitals", {"zs_capitals": "acc_norm"}) == "acc_norm"
    results = {"piqa": {"acc": 0.1, "acc_norm": 0.8}, "winogrande": {"acc": 0.6, "acc_norm": 0.0}}
    assert mean_accuracy(results) == pytest.approx(0.7)
    with pytest.raises(ValueError):
        mean_accuracy({})


# --------------------------------------------------------------------------- speed


def test_measure_speed(model, tok):
    result = measure_speed(model, tok, batch=2, prefill_len=12, decode_tokens=10, repeats=3, warmup=1)
    for key in ("prefill_tok_s", "generate_tok_s"):
        assert result[key] > 0 and math.isfinite(result[key]), key
    # decode rate = difference of two medians: NaN (never negative) when timing noise on a loaded
    # machine makes the 1-token run no faster than the N-token run
    assert math.isnan(result["decode_tok_s"]) or result["decode_tok_s"] > 0
    assert result["prefill_tokens"] == 24 and result["new_tokens"] == 10 and result["decode_tokens_total"] == 20
    assert all(len(times) == 3 for times in result["times"].values())
    assert result["prefill_tok_s"] == pytest.approx(24 / np.median(result["times"]["prefill"]))
    assert result["peak_mem_mb"] >= 0 and result["memory_method"] in ("proc_vmhwm", "getrusage_maxrss")
    assert result["device"].startswith("cpu") and result["dtype"] == "float32"
    protocol = result["protocol"]
    assert protocol["batch"] == 2 and protocol["prefill_len"] == 12 and protocol["decode_tokens"] == 10
    assert protocol["prefill_logits"] == "last" and protocol["device"] == result["device"]

    by_int = measure_speed(model, len(tok), batch=1, prefill_len=4, decode_tokens=2, repeats=1, warmup=0)
    assert by_int["new_tokens"] == 2 and by_int["prefill_tokens"] == 4
    with pytest.raises(ValueError, match="decode_tokens"):
        measure_speed(model, tok, batch=1, prefill_len=4, decode_tokens=1)


# --------------------------------------------------------------------------- rows


def test_rows_follow_the_contract():
    ppl = {
        "perplexity": 12.5,
        "nll_mean": math.log(12.5),
        "scored_tokens": 150,
        "protocol": {"dataset": "wikitext-2-raw-v1/test", "join": "\n\n", "window": 2048, "remainder": "drop"},
    }
    zs_protocol = {"lm_eval_version": "0.4.13", "num_fewshot": 0}
    zs = {
        "piqa": {
            "acc": 0.7,
            "acc_norm": 0.75,
            "stderr": {"acc": 0.01, "acc_norm": None},
            "n": 10,
            "protocol": zs_protocol,
        },
        "winogrande": {"acc": 0.6, "acc_norm": 0.55, "stderr": {"acc": 0.02}, "n": 8, "protocol": zs_protocol},
    }
    speed = {
        "prefill_tok_s": 1000.0,
        "decode_tok_s": 50.0,
        "generate_tok_s": 45.0,
        "peak_mem_mb": 12.0,
        "protocol": {"batch": 1, "prefill_len": 2048, "device": "cpu", "dtype": "float32"},
    }
    records = (
        eval_rows.perplexity_records(ppl, method="dense", setting={"ratio": 0.0})
        + eval_rows.zeroshot_records(zs, method="dense", setting={"ratio": 0.0})
        + eval_rows.speed_records(speed, method="dense", setting={"ratio": 0.0})
    )
    provenance = {column: "test" for column in PROVENANCE_COLUMNS}
    table = validate_table(
        tidy(records, paper="llm_compression", experiment="eval", tier="test", provenance=provenance)
    )

    metrics = set(table["metric"])
    assert {"perplexity", "nll", "acc", "acc_norm", "acc_stderr", "zeroshot_acc"} <= metrics
    assert {"prefill_tok_s", "decode_tok_s", "peak_mem_mb"} <= metrics
    assert "acc_norm_stderr" not in set(table[table["dataset"] == "piqa"]["metric"])  # no stderr, no row

    row = table[table["metric"] == "perplexity"].iloc[0]
    assert row["dataset"] == "wikitext-2-raw-v1/test" and row["value"] == 12.5
    assert json.loads(row["setting"]) == {"ratio": 0.0, **ppl["protocol"]}
    mean = table[table["metric"] == "zeroshot_acc"].iloc[0]
    assert mean["value"] == pytest.approx((0.75 + 0.6) / 2) and mean["dataset"] == eval_rows.ZEROSHOT_MEAN_DATASET
    assert json.loads(mean["setting"])["task_metrics"] == {"piqa": "acc_norm", "winogrande": "acc"}
    assert json.loads(table[table["metric"] == "decode_tok_s"].iloc[0]["setting"])["device"] == "cpu"

    with pytest.raises(ValueError, match="contradicts"):
        eval_rows.perplexity_records(ppl, method="dense", setting={"window": 4096})
    same = copy.deepcopy(ppl)
    assert eval_rows.perplexity_records(same, method="x", setting={"window": 2048})[0]["setting"]["window"] == 2048
