"""The materialisation contract: save_compressed / load_compressed round trips and their errors."""

import json

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from transformers import PreTrainedTokenizerFast

import repro.llm
from repro.llm.compressed import COMPRESSION_FILE, load_compressed, read_compression_info, save_compressed
from repro.llm.tiny import tiny_model


def _tokenizer():
    vocab = {f"t{i}": i for i in range(120)} | {"<unk>": 120}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def test_hf_round_trip_gives_identical_logits(tmp_path):
    model = tiny_model("llama")
    ids = torch.randint(0, 120, (2, 9), generator=torch.Generator().manual_seed(0))
    save_compressed(model, _tokenizer(), tmp_path / "m", method="dense", info={"ratio": 0.0})
    loaded, tok, record = repro.llm.load_compressed(tmp_path / "m", attn_implementation="eager")
    assert record == {"method": "dense", "loader": "hf", "info": {"ratio": 0.0}}
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids).logits, model(ids).logits, rtol=0, atol=0)
    assert tok.convert_tokens_to_ids("t5") == 5
    assert sorted(p.suffix for p in (tmp_path / "m").glob("model*")) == [".safetensors"]


def test_missing_record_and_unknown_loader_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=f"{COMPRESSION_FILE} is missing"):
        read_compression_info(tmp_path)
    save_compressed(tiny_model("opt"), _tokenizer(), tmp_path / "m", method="x", info={})
    record = json.loads((tmp_path / "m" / COMPRESSION_FILE).read_text())
    (tmp_path / "m" / COMPRESSION_FILE).write_text(json.dumps({**record, "loader": "martian"}))
    with pytest.raises(ValueError, match="no loader 'martian' registered"):
        load_compressed(tmp_path / "m")


def test_interrupted_save_leaves_nothing_that_looks_complete(tmp_path):
    def broken_writer(model, folder):
        (folder / "model.safetensors").write_bytes(b"half")
        raise RuntimeError("disk full")

    with pytest.raises(RuntimeError, match="disk full"):
        save_compressed(tiny_model("phi"), None, tmp_path / "m", method="x", info={}, write_weights=broken_writer)
    assert list(tmp_path.iterdir()) == []


def test_pickled_weights_are_refused(tmp_path):
    def pickle_writer(model, folder):
        torch.save(model.state_dict(), folder / "weights.pt")

    with pytest.raises(ValueError, match="safetensors only"):
        save_compressed(tiny_model("gpt_neox"), None, tmp_path / "m", method="x", info={}, write_weights=pickle_writer)
    assert not (tmp_path / "m").exists()
