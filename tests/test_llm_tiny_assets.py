"""Tests for repro.llm.tiny_assets: the offline tiny model, tokenizer, texts and cloze set of the test tier."""

from __future__ import annotations

import json
import re

import pytest
import torch
import yaml

transformers = pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM, AutoTokenizer  # noqa: E402

from repro.data.zeroshot import STOPWORDS, cloze_items, read_jsonl  # noqa: E402
from repro.llm.eval.perplexity import perplexity  # noqa: E402
from repro.llm.tiny_assets import (  # noqa: E402
    SPECIAL_TOKEN,
    TASK_NAME,
    build_tiny_llm,
    corpus_seed,
    main,
    make_tiny_llm,
    synthetic_corpus,
    train_tokenizer,
    vocabulary,
    write_tiny_texts,
    write_tiny_zeroshot,
)

TRAIN_STEPS = 150


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    """Texts, a model trained for TRAIN_STEPS steps on train.txt and the cloze set, built once."""
    root = tmp_path_factory.mktemp("tiny_assets")
    texts = write_tiny_texts(root / "text", seed=0)
    train_text = texts["train"].read_text()
    info = build_tiny_llm(root / "model", seed=0, text=train_text, train_steps=TRAIN_STEPS)
    zeroshot = write_tiny_zeroshot(root / "zeroshot", texts["test"].read_text(), seed=0)
    model = AutoModelForCausalLM.from_pretrained(root / "model", local_files_only=True).eval()
    tok = AutoTokenizer.from_pretrained(root / "model", local_files_only=True)
    return {"root": root, "texts": texts, "info": info, "zeroshot": zeroshot, "model": model, "tok": tok}


# --------------------------------------------------------------------------- corpus


def test_corpus_is_deterministic_per_seed():
    text = synthetic_corpus(7, 60)
    assert synthetic_corpus(7, 60) == text
    assert synthetic_corpus(8, 60) != text
    # generated sentence by sentence: a shorter corpus starts like a longer one
    assert synthetic_corpus(7, 200).startswith(text.rsplit("\n\n", 1)[0])


def test_corpus_shape():
    text = synthetic_corpus(0, 400)
    assert text.endswith(".\n") and not text.endswith("\n\n")
    paragraphs = text.rstrip("\n").split("\n\n")
    assert len(paragraphs) > 50
    sentences = [s for p in paragraphs for s in re.split(r"(?<=\.) ", p)]
    assert len(sentences) == 400
    assert all(s[0].isupper() and s.endswith(".") and "\n" not in s for s in sentences)
    assert all(3 <= len(re.split(r"(?<=\.) ", p)) <= 6 for p in paragraphs[:-1])
    words = {w.lower() for w in re.findall(r"[A-Za-z]+", text)}
    assert words <= vocabulary()
    assert 140 <= len(vocabulary()) <= 180
    assert len(words) > 140  # 400 sentences use nearly the whole vocabulary
    with pytest.raises(ValueError):
        synthetic_corpus(0, 0)


def test_corpus_feeds_cloze_items():
    text = synthetic_corpus(1, 300)
    final_words = [re.sub(r"\W", "", s.split()[-1]) for s in re.split(r"(?<=\.)\s+", text.strip())]
    assert all(len(w) >= 4 and w.lower() not in STOPWORDS for w in final_words)
    items = cloze_items(text, 30, 4, seed=0, context_words=20, family="t", source="s")
    assert len(items) == 30
    flat = " ".join(text.split())
    for item in items:
        assert f"{item['question']} {item['choices'][item['label']]}" in flat


# --------------------------------------------------------------------------- tokenizer


@pytest.fixture(scope="module")
def corpus():
    return synthetic_corpus(corpus_seed(0, "train"), 600)


def test_tokenizer_round_trip_and_size(corpus):
    tok = train_tokenizer(corpus, vocab_size=320)
    assert len(tok) == 320 == tok.backend_tokenizer.get_vocab_size()
    sample = corpus[:2000]
    ids = tok(sample)["input_ids"]
    assert tok.decode(ids) == sample
    assert len(ids) < len(sample) / 1.5  # merges were learnt
    # byte level: text the tokenizer never saw still round-trips
    odd = "Zoë's café — costs 42€!\n\n\tDone?  "
    assert tok.decode(tok(odd)["input_ids"]) == odd
    small = train_tokenizer(corpus, vocab_size=270)
    assert len(small) == 270
    with pytest.raises(ValueError):
        train_tokenizer(corpus, vocab_size=256)


def test_tokenizer_special_tokens(corpus):
    tok = train_tokenizer(corpus)
    assert tok.bos_token == tok.eos_token == tok.unk_token == tok.pad_token == SPECIAL_TOKEN
    assert tok.convert_tokens_to_ids(SPECIAL_TOKEN) == 0
    text = "The captain admired the lantern."
    assert tok(text)["input_ids"] == tok(text, add_special_tokens=False)["input_ids"]
    assert 0 not in tok(text)["input_ids"]
    assert tok.convert_ids_to_tokens(tok(" the")["input_ids"])[0].startswith("Ġ")
    assert tok("the")["input_ids"] != tok(" the")["input_ids"]  # no prefix space added


def test_tokenizer_is_deterministic(corpus):
    assert train_tokenizer(corpus).get_vocab() == train_tokenizer(corpus).get_vocab()


# --------------------------------------------------------------------------- model folder


def test_build_reloads_with_identical_logits(tmp_path):
    folder = tmp_path / "model"
    info = build_tiny_llm(folder, seed=3, n_sentences=500)
    model, tok, summary = make_tiny_llm(seed=3, n_sentences=500)
    assert {k: v for k, v in info.items() if k not in ("seconds", "folder")} == {
        k: v for k, v in summary.items() if k != "seconds"
    }
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folder left
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    assert json.loads((folder / "tiny_assets.json").read_text())["vocab_size"] == info["vocab_size"]

    loaded = AutoModelForCausalLM.from_pretrained(folder, local_files_only=True, attn_implementation="eager").eval()
    loaded_tok = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    cfg = loaded.config
    assert cfg.model_type == "llama"
    assert cfg.vocab_size == len(loaded_tok) == len(tok) == info["vocab_size"] <= 320
    assert (cfg.num_attention_heads, cfg.num_key_value_heads, cfg.num_hidden_layers) == (4, 2, 4)
    assert cfg.hidden_size == 64 and cfg.intermediate_size == 128
    assert cfg.tie_word_embeddings and loaded.lm_head.weight.data_ptr() == loaded.model.embed_tokens.weight.data_ptr()
    assert cfg.max_position_embeddings >= 256
    special = loaded_tok.convert_tokens_to_ids(SPECIAL_TOKEN)
    for name in ("bos_token_id", "eos_token_id", "pad_token_id"):
        assert getattr(cfg, name) == special
        assert getattr(loaded.generation_config, name) == special
    assert info["parameters"] == sum(p.numel() for p in loaded.parameters())

    text = synthetic_corpus(99, 20)
    assert loaded_tok(text)["input_ids"] == tok(text)["input_ids"]
    ids = torch.tensor([tok(text)["input_ids"][:100]])
    with torch.no_grad():
        assert torch.equal(loaded(ids).logits, model(ids).logits)


def test_build_refuses_to_overwrite(tmp_path):
    folder = tmp_path / "model"
    build_tiny_llm(folder, seed=0, n_sentences=300)
    before = (folder / "model.safetensors").read_bytes()
    with pytest.raises(FileExistsError, match=re.escape(str(folder))):
        build_tiny_llm(folder, seed=1, n_sentences=300)
    assert (folder / "model.safetensors").read_bytes() == before
    build_tiny_llm(folder, seed=1, n_sentences=300, overwrite=True)
    assert (folder / "model.safetensors").read_bytes() != before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    empty = tmp_path / "empty"
    empty.mkdir()
    build_tiny_llm(empty, seed=0, n_sentences=300)  # an empty folder is fine
    assert (empty / "config.json").is_file()


def test_build_rejects_bad_settings(tmp_path):
    with pytest.raises(ValueError):
        build_tiny_llm(tmp_path / "a", train_steps=-1)
    with pytest.raises(ValueError):
        build_tiny_llm(tmp_path / "b", max_position_embeddings=128)
    assert not list(tmp_path.iterdir())


def test_training_makes_perplexity_far_below_vocabulary(assets):
    """Measured here: random init ~410 (above the 320-token vocabulary), 150 steps ~3.6."""
    test_text = assets["texts"]["test"].read_text()
    tok, trained = assets["tok"], assets["model"]
    vocab = len(tok)
    info = assets["info"]
    assert info["train_steps"] == TRAIN_STEPS and info["train_loss_last"] < info["train_loss_first"] - 3
    random_model, random_tok, _ = make_tiny_llm(seed=0, text=assets["texts"]["train"].read_text())
    assert random_tok.get_vocab() == tok.get_vocab()
    random_ppl = perplexity(random_model, tok, test_text, window=64, max_windows=4, progress=False)
    ppl = perplexity(trained, tok, test_text, window=64, max_windows=4, progress=False)
    assert ppl["full_windows"] == 4 and ppl["protocol"]["bos"] == "none"
    assert random_ppl["perplexity"] > 0.5 * vocab
    assert ppl["perplexity"] < 0.05 * vocab


# --------------------------------------------------------------------------- texts and zero-shot


def test_texts(tmp_path, assets):
    paths = assets["texts"]
    assert set(paths) == {"train", "test"}
    train, test = paths["train"].read_text(), paths["test"].read_text()
    assert train == synthetic_corpus(corpus_seed(0, "train"), 2000)
    assert set(train.split("\n\n")).isdisjoint(test.split("\n\n"))
    tok = assets["tok"]
    assert len(tok(train)["input_ids"]) >= 16 * 64 * 4
    assert len(tok(test)["input_ids"]) >= 16 * 64
    again = write_tiny_texts(tmp_path, seed=0)
    assert again["test"].read_bytes() == paths["test"].read_bytes()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["test.txt", "train.txt"]  # no temporary files
    other = write_tiny_texts(tmp_path / "other", seed=1)
    assert other["test"].read_text() != test


def test_zeroshot_items_and_task(assets):
    zs = assets["zeroshot"]
    assert zs["n_items"] == 24
    items = read_jsonl(zs["items"])
    assert len(items) == 24 and zs["items"].name == f"{TASK_NAME}.jsonl"
    test_flat = " ".join(assets["texts"]["test"].read_text().split())
    for item in items:
        assert item["family"] == TASK_NAME and item["source"] == "synthetic prose"
        assert len(item["choices"]) == 4 and 0 <= item["label"] < 4
        assert len(item["question"].split()) == 20
        assert f"{item['question']} {item['choices'][item['label']]}" in test_flat
    assert len({item["label"] for item in items}) > 1
    config = yaml.safe_load(zs["task"].read_text())
    assert zs["task"] == assets["root"] / "zeroshot" / "tasks" / f"{TASK_NAME}.yaml"
    assert config["task"] == TASK_NAME
    assert config["dataset_kwargs"]["data_files"]["test"] == str(zs["items"].resolve())
    with pytest.raises(ValueError, match="cloze items"):
        write_tiny_zeroshot(assets["root"] / "too_short", synthetic_corpus(0, 10), n_items=24)


def test_zeroshot_runs_in_lm_eval(assets, offline_hf):
    pytest.importorskip("lm_eval")
    from repro.llm.eval.zeroshot import zero_shot

    config = yaml.safe_load(assets["zeroshot"]["task"].read_text())
    results = zero_shot(assets["model"], assets["tok"], [config], batch_size=8)
    task = results[TASK_NAME]
    assert task["n"] == 24
    assert 0.0 <= task["acc"] <= 1.0 and 0.0 <= task["acc_norm"] <= 1.0


# --------------------------------------------------------------------------- command line


def test_cli(tmp_path, capsys):
    out = tmp_path / "assets"
    assert main([str(out), "--seed", "2"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model"]["vocab_size"] <= 320 and summary["model"]["train_steps"] == 0
    assert summary["zeroshot"]["n_items"] == 24
    assert (out / "model" / "config.json").is_file()
    assert (out / "model" / "tokenizer.json").is_file()
    assert (out / "text" / "train.txt").read_text() == synthetic_corpus(corpus_seed(2, "train"), 2000)
    assert (out / "zeroshot" / "tasks" / f"{TASK_NAME}.yaml").is_file()

    assert main([str(out)]) == 2
    err = capsys.readouterr().err
    assert str(out / "model") in err
    assert main([str(tmp_path / "x"), "--train-steps", "-1"]) == 2
    assert "--train-steps" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()
    with pytest.raises(SystemExit) as exc:
        main([str(out), "--seed", "nope"])
    assert exc.value.code == 2
