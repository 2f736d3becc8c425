"""DISP-LLM modules: soft masks == gather/scatter materialisation, parameter counts, save/load, generate."""

from __future__ import annotations

import pytest
import torch

from repro.llm.adapters import get_adapter
from repro.llm.compressed import load_compressed, save_compressed
from repro.llm.methods.disp_modules import (
    MASK_KEYS,
    GatherLinear,
    ScatterLinear,
    apply_masks,
    index_sets,
    layer_dims,
    masks_to_index_sets,
    materialise,
    write_weights,
)
from repro.llm.tiny import tiny_model

ARCHS = ["llama", "opt", "opt_proj", "phi", "gpt_neox"]


def _widths(model) -> list[dict[str, int]]:
    rows = []
    for la in get_adapter(model).layers():
        d = la.attention_output_linear().out_features
        rows.append({"attn_in": d, "attn_out": d, "mlp_in": d, "mlp_mid": la.intermediate_size, "mlp_out": d})
    return rows


def _random_masks(model, seed: int, keep: float = 0.6) -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    masks = []
    for row in _widths(model):
        layer = {}
        for key in MASK_KEYS:
            m = (torch.rand(row[key], generator=gen) < keep).float()
            m[int(torch.randint(row[key], (1,), generator=gen))] = 1.0  # never empty
            layer[key] = m
        masks.append(layer)
    return masks


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(seed))


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _params(model) -> int:
    return sum(p.numel() for p in model.parameters())


@pytest.mark.parametrize("arch", ARCHS)
def test_masked_equals_materialised(arch):
    model = tiny_model(arch)
    ids = _ids()
    masks = _random_masks(model, seed=3)
    handles = apply_masks(model, masks)
    masked = _logits(model, ids)
    handles.remove()
    full = _logits(model, ids)
    assert not torch.allclose(masked, full, atol=1e-3)  # the masks matter
    widths = materialise(model, masks_to_index_sets(masks))
    assert widths == layer_dims(model)
    assert widths[0] == {key: int(masks[0][key].sum()) for key in MASK_KEYS}
    torch.testing.assert_close(_logits(model, ids), masked, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "phi"])
def test_all_ones_masks_and_full_sets_leave_logits_unchanged(arch):
    model = tiny_model(arch)
    ids = _ids()
    full = _logits(model, ids)
    ones = [{key: torch.ones(n) for key, n in row.items()} for row in _widths(model)]
    handles = apply_masks(model, ones)
    torch.testing.assert_close(_logits(model, ids), full, atol=0, rtol=0)
    handles.remove()
    materialise(model, masks_to_index_sets(ones))
    torch.testing.assert_close(_logits(model, ids), full, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ["llama", "opt", "phi", "gpt_neox"])
def test_parameter_count_matches_set_sizes(arch):
    model = tiny_model(arch)
    before = _params(model)
    adapter = get_adapter(model)
    expected = before
    masks = _random_masks(model, seed=5)
    for la, m in zip(adapter.layers(), masks):
        n = {key: int(v.sum()) for key, v in m.items()}
        for lin in la.attention_input_linears():
            expected -= lin.weight.numel() - lin.out_features * n["attn_in"]
        o = la.attention_output_linear()
        expected -= (o.out_features - n["attn_out"]) * (o.in_features + (o.bias is not None))
        for lin in la.mlp_input_linears():
            kept = n["mlp_mid"] * n["mlp_in"] + (n["mlp_mid"] if lin.bias is not None else 0)
            expected -= lin.weight.numel() + (lin.bias.numel() if lin.bias is not None else 0) - kept
        down = la.mlp_output_linear()
        kept = n["mlp_out"] * n["mlp_mid"] + (n["mlp_out"] if down.bias is not None else 0)
        expected -= down.weight.numel() + (down.bias.numel() if down.bias is not None else 0) - kept
    materialise(model, masks_to_index_sets(masks))
    assert _params(model) == expected < before
    la = get_adapter(model).layer(0)
    assert all(isinstance(lin, GatherLinear) for lin in la.attention_input_linears() + la.mlp_input_linears())
    assert isinstance(la.attention_output_linear(), ScatterLinear)
    assert isinstance(la.mlp_output_linear(), ScatterLinear)


def test_validation_and_round_to():
    model = tiny_model("llama")
    sets = masks_to_index_sets(_random_masks(model, seed=2))
    bad = [dict(row) for row in sets]
    bad[0]["attn_in"] = [0, 0, 1]
    with pytest.raises(ValueError, match="distinct"):
        materialise(tiny_model("llama"), bad)
    bad[0]["attn_in"] = [64]
    with pytest.raises(ValueError, match="lie in"):
        materialise(tiny_model("llama"), bad)
    bad[0]["attn_in"] = []
    with pytest.raises(ValueError, match="empty"):
        materialise(tiny_model("llama"), bad)
    rounded = [{key: list(range(8 if key != "mlp_mid" else 16)) for key in MASK_KEYS} for _ in sets]
    rounded[1]["mlp_out"] = list(range(7))
    with pytest.raises(ValueError, match="round_to"):
        materialise(tiny_model("llama"), rounded, round_to=8)
    rounded[1]["mlp_out"] = list(range(64))  # the full width is always accepted
    assert materialise(model, rounded, round_to=8)[1]["mlp_out"] == 64
    with pytest.raises(ValueError, match="already materialised"):
        materialise(model, rounded)


@pytest.mark.parametrize("arch", ["llama", "gpt_neox"])
def test_save_load_round_trip_and_generate(arch, tmp_path):
    model = tiny_model(arch)
    ids = _ids()
    masks = _random_masks(model, seed=7)
    sets = masks_to_index_sets(masks)
    materialise(model, sets)
    want = _logits(model, ids)
    path = save_compressed(
        model, None, tmp_path / "m", method="disp_llm", info={}, loader="disp_llm", write_weights=write_weights
    )
    from repro.llm.compressed import LOADERS

    loaded = LOADERS["disp_llm"](path, None, torch.float32, "eager")
    assert index_sets(loaded) == sets
    torch.testing.assert_close(_logits(loaded, ids), want, atol=0, rtol=0)
    if arch == "llama":
        assert get_adapter(loaded).tied_embeddings
    prompt = ids[:1, :4]
    with torch.no_grad():
        out_cached = loaded.generate(prompt, max_new_tokens=5, do_sample=False, use_cache=True, pad_token_id=0)
        out_plain = loaded.generate(prompt, max_new_tokens=5, do_sample=False, use_cache=False, pad_token_id=0)
    assert out_cached.shape == (1, 9)
    assert torch.equal(out_cached, out_plain)


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(100)} | {"<unk>": 100}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def test_load_compressed_with_tokenizer(tmp_path, monkeypatch):
    from repro.llm import compressed

    monkeypatch.setitem(compressed.LOADER_MODULES, "disp_llm", "repro.llm.methods.disp_modules")
    model = tiny_model("llama")
    materialise(model, masks_to_index_sets(_random_masks(model, seed=11)))
    ids = _ids()
    want = _logits(model, ids)
    path = save_compressed(
        model, _tokenizer(), tmp_path / "m", method="disp_llm", info={}, loader="disp_llm", write_weights=write_weights
    )
    loaded, _, record = load_compressed(path, attn_implementation="eager")
    assert record["loader"] == "disp_llm"
    torch.testing.assert_close(_logits(loaded, ids), want, atol=0, rtol=0)


def test_soft_masks_are_differentiable_and_removable():
    model = tiny_model("opt")
    ids = _ids()
    full = _logits(model, ids)
    masks = [{key: v.clone().requires_grad_(True) for key, v in row.items()} for row in _random_masks(model, seed=4)]
    handles = apply_masks(model, masks)
    model(ids).logits.square().mean().backward()
    assert all(m[key].grad is not None and m[key].grad.abs().sum() > 0 for m in masks for key in MASK_KEYS)
    handles.remove()
    torch.testing.assert_close(_logits(model, ids), full, atol=0, rtol=0)
    with pytest.raises(ValueError, match="mask shape"):
        apply_masks(model, [{**row, "mlp_mid": torch.ones(3)} for row in masks])
    torch.testing.assert_close(_logits(model, ids), full, atol=0, rtol=0)  # a rejected call installs nothing


def test_default_attention_load_close(tmp_path):
    model = tiny_model("phi")
    materialise(model, masks_to_index_sets(_random_masks(model, seed=13)))
    ids = _ids()
    want = _logits(model, ids)
    path = save_compressed(
        model, _tokenizer(), tmp_path / "m", method="disp_llm", info={}, loader="disp_llm", write_weights=write_weights
    )
    loaded, _, _ = load_compressed(path)  # transformers' default attention implementation
    torch.testing.assert_close(_logits(loaded, ids), want, atol=1e-5, rtol=1e-5)
