"""Tests for repro.data.gguf_model on a tiny GGUF built here: no network, no real model.

The fixture trains a small byte-level BPE tokenizer, initialises a random tiny llama, and writes both
into a GGUF with ``gguf.GGUFWriter`` the way llama.cpp's converter does (F32 tensors, q/k rows
permuted, tokenizer as ``tokenizer.ggml.*`` metadata), so transformers' GGUF loader reads it back exactly.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

gguf = pytest.importorskip("gguf")
transformers = pytest.importorskip("transformers")
tokenizers = pytest.importorskip("tokenizers")

from repro.data import gguf_model  # noqa: E402
from repro.data.gguf_model import (  # noqa: E402
    ModelInputError,
    convert_gguf_to_safetensors,
    greedy_continuation,
    load_causal_lm,
    load_gguf,
    rebuild_plain_model,
    sliding_perplexity,
)

SPECIAL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
CORPUS = [
    "The capital of France is Paris. The capital of Germany is Berlin.",
    "Sir Walter Elliot, of Kellynch Hall, in Somersetshire, was a man who never took up any book.",
    "It is a truth universally acknowledged, that a single man in possession of a good fortune.",
    "Anne Elliot walked along the Cobb at Lyme with her friends; the sea was grey and the wind was cold.",
] * 5
SENTENCE = "The capital of Italy is Rome, and Anne walked to the sea."
N_LAYERS, HIDDEN, N_HEADS, N_KV_HEADS, FFN, CONTEXT = 2, 64, 4, 2, 128, 256


def _train_tokenizer() -> tokenizers.Tokenizer:
    bpe = tokenizers.ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=330, min_frequency=1, special_tokens=SPECIAL_TOKENS, show_progress=False)
    return bpe._tokenizer


def _llamacpp_permute(weights: np.ndarray, n_head: int, n_head_kv: int) -> np.ndarray:
    """llama.cpp's ``LlamaModel.permute`` (convert_hf_to_gguf.py): rotary halves -> interleaved pairs."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


GGUF_NAMES = {
    "self_attn.q_proj": "attn_q",
    "self_attn.k_proj": "attn_k",
    "self_attn.v_proj": "attn_v",
    "self_attn.o_proj": "attn_output",
    "mlp.gate_proj": "ffn_gate",
    "mlp.up_proj": "ffn_up",
    "mlp.down_proj": "ffn_down",
    "input_layernorm": "attn_norm",
    "post_attention_layernorm": "ffn_norm",
}


def _gguf_tensor_name(hf_name: str) -> str | None:
    if hf_name == "model.embed_tokens.weight":
        return "token_embd.weight"
    if hf_name == "model.norm.weight":
        return "output_norm.weight"
    if hf_name == "lm_head.weight":
        return None  # tied: llama.cpp omits output.weight, and transformers reads that as tie_word_embeddings
    prefix, layer, rest = hf_name.split(".", 3)[1:]
    module, leaf = rest.rsplit(".", 1)
    assert prefix == "layers"
    return f"blk.{layer}.{GGUF_NAMES[module]}.{leaf}"


def _write_gguf(path: Path, model, tok: tokenizers.Tokenizer) -> None:
    vocab = tok.get_vocab()
    tokens = [token for token, _ in sorted(vocab.items(), key=lambda item: item[1])]
    assert [vocab[t] for t in tokens] == list(range(len(tokens)))
    merges = [m if isinstance(m, str) else " ".join(m) for m in json.loads(tok.to_str())["model"]["merges"]]
    token_types = [3 if t in SPECIAL_TOKENS else 1 for t in tokens]  # 3 = CONTROL, 1 = NORMAL

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_name("tiny test llama")
    writer.add_file_type(0)  # ALL_F32
    writer.add_block_count(N_LAYERS)
    writer.add_context_length(CONTEXT)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(N_HEADS)
    writer.add_head_count_kv(N_KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_rope_dimension_count(HIDDEN // N_HEADS)
    writer.add_layer_norm_rms_eps(1e-5)
    writer.add_vocab_size(len(tokens))
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("default")
    writer.add_token_list(tokens)
    writer.add_token_types(token_types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(vocab["<|im_start|>"])
    writer.add_eos_token_id(vocab["<|im_end|>"])
    writer.add_unk_token_id(vocab["<|endoftext|>"])
    writer.add_pad_token_id(vocab["<|im_end|>"])
    writer.add_add_bos_token(False)
    for hf_name, tensor in model.state_dict().items():
        name = _gguf_tensor_name(hf_name)
        if name is None:
            continue
        array = tensor.detach().numpy().astype(np.float32)
        if ".attn_q." in name:
            array = _llamacpp_permute(array, N_HEADS, N_HEADS)
        elif ".attn_k." in name:
            array = _llamacpp_permute(array, N_HEADS, N_KV_HEADS)
        writer.add_tensor(name, np.ascontiguousarray(array))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _tiny_llama(vocab_size: int, seed: int = 0):
    config = transformers.LlamaConfig(
        vocab_size=vocab_size,
        hidden_size=HIDDEN,
        intermediate_size=FFN,
        num_hidden_layers=N_LAYERS,
        num_attention_heads=N_HEADS,
        num_key_value_heads=N_KV_HEADS,
        max_position_embeddings=CONTEXT,
        rms_norm_eps=1e-5,
        tie_word_embeddings=True,
        initializer_range=0.2,  # larger than default so logits vary enough to make comparisons meaningful
    )
    torch.manual_seed(seed)
    model = transformers.LlamaForCausalLM(config).eval()
    with torch.no_grad():  # random norm weights too, so a norm mix-up would show
        for name, param in model.named_parameters():
            if name.endswith("norm.weight"):
                param.copy_(1.0 + 0.1 * torch.randn_like(param))
    return model


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("gguf")
    tok = _train_tokenizer()
    model = _tiny_llama(tok.get_vocab_size())
    gguf_path = root / "tiny-llama.F32.gguf"
    _write_gguf(gguf_path, model, tok)
    out_dir = root / "converted"
    summary = convert_gguf_to_safetensors(gguf_path, out_dir)
    return {"root": root, "gguf": gguf_path, "out": out_dir, "summary": summary, "model": model, "tok": tok}


def _ids(tokenizer, text: str) -> torch.Tensor:
    return tokenizer(text, add_special_tokens=False, return_tensors="pt")["input_ids"]


def test_gguf_fixture_round_trips_exactly(tiny):
    """The hand-built GGUF loads through transformers into the very model it was written from."""
    loaded, tokenizer = load_gguf(tiny["gguf"])
    assert loaded.config.num_key_value_heads == N_KV_HEADS and loaded.config.tie_word_embeddings
    reference = tiny["model"].state_dict()
    for name, tensor in loaded.state_dict().items():
        torch.testing.assert_close(tensor, reference[name], rtol=0, atol=0, msg=name)


def test_conversion_summary_and_files(tiny):
    summary, out_dir = tiny["summary"], tiny["out"]
    assert summary["architecture"] == "LlamaForCausalLM"
    assert summary["dtype"] == "float32"
    assert summary["n_params"] == sum(p.numel() for p in tiny["model"].parameters())
    assert summary["seconds"] >= 0
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(summary["files"])
    assert sorted(p.name for p in out_dir.iterdir()) == summary["files"]
    config = json.loads((out_dir / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["model_type"] == "llama" and config["num_hidden_layers"] == N_LAYERS
    # no temporary folders left beside the output
    assert [p.name for p in out_dir.parent.iterdir() if p.name.startswith(".")] == []


def test_converted_logits_match_gguf(tiny):
    gguf_model_, gguf_tok = load_gguf(tiny["gguf"])
    model, tokenizer = load_causal_lm(tiny["out"])
    assert type(model).__name__ == "LlamaForCausalLM"
    assert all(p.dtype == torch.float32 for p in model.parameters())
    ids = _ids(tokenizer, SENTENCE)
    assert torch.equal(ids, _ids(gguf_tok, SENTENCE))
    with torch.inference_mode():
        expected = gguf_model_(ids).logits
        got = model(ids).logits
        original = tiny["model"](ids).logits
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got, original, rtol=1e-5, atol=1e-5)
    assert got.std() > 0.1  # the comparison is not between near-constant logits


def test_tokenizer_round_trips(tiny):
    _, tokenizer = load_causal_lm(tiny["out"])
    ids = tokenizer(SENTENCE, add_special_tokens=False)["input_ids"]
    assert ids == tiny["tok"].encode(SENTENCE).ids  # same segmentation as the tokenizer written into the GGUF
    assert tokenizer.decode(ids) == SENTENCE
    assert tokenizer.eos_token == "<|im_end|>"
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") == tiny["tok"].token_to_id("<|im_start|>")


def test_bfloat16_conversion(tiny, tmp_path):
    summary = convert_gguf_to_safetensors(tiny["gguf"], tmp_path / "bf16", dtype="bfloat16")
    assert summary["dtype"] == "bfloat16"
    model, _ = load_causal_lm(tmp_path / "bf16", dtype=torch.bfloat16)
    assert {p.dtype for p in model.parameters()} == {torch.bfloat16}
    with pytest.raises(ValueError, match="unsupported dtype"):
        convert_gguf_to_safetensors(tiny["gguf"], tmp_path / "x", dtype="int3")


def test_existing_output_refused_unless_overwrite(tiny, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    (out_dir / "stale.txt").write_text("old")
    with pytest.raises(FileExistsError, match=str(out_dir)):
        convert_gguf_to_safetensors(tiny["gguf"], out_dir)
    convert_gguf_to_safetensors(tiny["gguf"], out_dir, overwrite=True)
    assert not (out_dir / "stale.txt").exists() and (out_dir / "model.safetensors").is_file()
    assert [p.name for p in tmp_path.iterdir()] == ["out"]


def test_failure_during_save_leaves_no_output(tiny, tmp_path, monkeypatch):
    def failing_save(model, tokenizer, folder):
        model.save_pretrained(folder, safe_serialization=True)  # half the folder is written ...
        raise OSError("disk full (simulated)")  # ... then the tokenizer save fails

    monkeypatch.setattr(gguf_model, "save_model_folder", failing_save)
    out_dir = tmp_path / "converted"
    with pytest.raises(OSError, match="simulated"):
        convert_gguf_to_safetensors(tiny["gguf"], out_dir)
    assert not out_dir.exists()
    assert list(tmp_path.iterdir()) == []  # temporary folder cleaned up too


def test_missing_and_invalid_inputs(tmp_path, capsys):
    missing = tmp_path / "nope.gguf"
    with pytest.raises(ModelInputError, match="GGUF file not found: .*nope.gguf"):
        convert_gguf_to_safetensors(missing, tmp_path / "out")
    bogus = tmp_path / "bogus.gguf"
    bogus.write_bytes(b"not a gguf at all")
    with pytest.raises(ModelInputError, match="not a GGUF file.*bogus.gguf"):
        convert_gguf_to_safetensors(bogus, tmp_path / "out")
    with pytest.raises(ModelInputError, match="model folder not found"):
        load_causal_lm(tmp_path / "no-model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelInputError, match="missing config.json"):
        load_causal_lm(tmp_path / "empty")
    assert not (tmp_path / "out").exists()

    assert gguf_model.main(["convert", str(missing), str(tmp_path / "out")]) == 2
    assert str(missing) in capsys.readouterr().err
    assert gguf_model.main(["check", str(tmp_path / "empty")]) == 2
    assert str(tmp_path / "empty") in capsys.readouterr().err


def test_cli_convert_and_check(tiny, tmp_path, capsys):
    out_dir = tmp_path / "cli"
    assert gguf_model.main(["convert", str(tiny["gguf"]), str(out_dir)]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["architecture"] == "LlamaForCausalLM" and out_dir.is_dir()
    text = tmp_path / "text.txt"
    text.write_text(" ".join(CORPUS), encoding="utf-8")
    assert gguf_model.main(["check", str(out_dir), "--text", str(text), "--window", "32", "--max-windows", "3"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["prompt"] == gguf_model.CHECK_PROMPT
    assert isinstance(result["continuation"], str)
    assert result["perplexity"]["windows"] == 3 and result["perplexity"]["window"] == 32
    assert gguf_model.main(["check", str(out_dir), "--text", str(tmp_path / "missing.txt")]) == 2
    assert "missing.txt" in capsys.readouterr().err


def test_greedy_continuation_matches_generate(tiny):
    model, tokenizer = load_causal_lm(tiny["out"])
    prompt = "The capital of France is"
    text = greedy_continuation(model, tokenizer, prompt, max_new_tokens=6)
    assert text == greedy_continuation(model, tokenizer, prompt, max_new_tokens=6)  # deterministic
    ids = tokenizer(prompt, return_tensors="pt")["input_ids"]
    generated = model.generate(
        ids, max_new_tokens=6, do_sample=False, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id
    )
    new = [t for t in generated[0, ids.shape[1] :].tolist() if t != tokenizer.eos_token_id]
    assert text == tokenizer.decode(new, skip_special_tokens=True)


def test_rebuild_plain_model_from_stand_in():
    """The config/state-dict round trip on its own, with a plain model standing in for a GGUF-loaded one."""
    source = _tiny_llama(vocab_size=97, seed=3)
    source.config.quantization_config = {"quant_method": "gguf", "gguf_file": "x.gguf", "dequantize": False}
    rebuilt = rebuild_plain_model(source, dtype=torch.float32)
    assert type(rebuilt) is type(source) and rebuilt is not source
    assert getattr(rebuilt.config, "quantization_config", None) is None
    assert rebuilt.lm_head.weight.data_ptr() == rebuilt.model.embed_tokens.weight.data_ptr()  # still tied
    ids = torch.arange(10).unsqueeze(0)
    with torch.inference_mode():
        torch.testing.assert_close(rebuilt(ids).logits, source(ids).logits, rtol=0, atol=0)


def test_sliding_perplexity_against_direct_computation(tiny):
    model, tokenizer = load_causal_lm(tiny["out"])
    text = " ".join(CORPUS)
    window = 24
    all_ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    n_windows = len(all_ids) // window
    assert n_windows >= 3 and len(all_ids) % window != 0  # a partial window exists and must be dropped

    result = sliding_perplexity(model, tokenizer, text, window=window, batch_size=2)
    losses = []
    with torch.inference_mode():
        for k in range(n_windows):
            chunk = torch.tensor([all_ids[k * window : (k + 1) * window]])
            losses.append(float(model(chunk, labels=chunk).loss))  # mean NLL over window - 1 predictions
    expected = math.exp(sum(losses) / len(losses))
    assert result["perplexity"] == pytest.approx(expected, rel=1e-5)
    assert result["windows"] == n_windows and result["window"] == window
    assert result["tokens"] == len(all_ids)
    assert result["scored_tokens"] == n_windows * (window - 1)
    assert result["dropped_tokens"] == len(all_ids) - n_windows * window
    assert result["remainder_policy"] == "drop"

    limited = sliding_perplexity(model, tokenizer, text, window=window, max_windows=2)
    assert limited["windows"] == 2
    assert limited["perplexity"] == pytest.approx(math.exp(sum(losses[:2]) / 2), rel=1e-5)
    with pytest.raises(ValueError, match="fewer than one window"):
        sliding_perplexity(model, tokenizer, "short", window=window)
