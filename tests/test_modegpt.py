"""MoDeGPT on tiny models of every architecture: identity at keep 1, targets, KV cache, save/load, modes."""

import copy
import inspect

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import LlamaForCausalLM, PhiForCausalLM, PreTrainedTokenizerFast

from repro.llm.adapters import get_adapter
from repro.llm.calibration import ALL_STATISTICS, collect_statistics
from repro.llm.compressed import load_compressed, save_compressed
from repro.llm.methods.modegpt import (
    allocate_for_target,
    layer_dims,
    layer_plan,
    modegpt,
    predicted_parameter_counts,
    write_weights,
)
from repro.llm.methods.modegpt_modules import ModeGPTAttention
from repro.llm.params import compression_ratio, parameter_counts
from repro.llm.tiny import TINY_MODEL_TYPES, tiny_config, tiny_model

ARCHS = list(TINY_MODEL_TYPES)  # llama, opt, opt_proj (post-LN), phi, gpt_neox
CALIB = torch.randint(0, 128, (8, 32), generator=torch.Generator().manual_seed(1))
EVAL = torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(2))
PROMPT = torch.randint(0, 120, (2, 6), generator=torch.Generator().manual_seed(3))


def _model(model_type: str) -> nn.Module:
    """A tiny model with random norm scales/shifts and linear biases (the init has 1, 0 and 0)."""
    model = tiny_model(model_type)
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, nn.LayerNorm) or type(module).__name__.endswith("RMSNorm"):
                module.weight.copy_(1 + 0.3 * torch.randn(module.weight.shape, generator=gen))
            if isinstance(module, (nn.LayerNorm, nn.Linear)) and module.bias is not None:
                module.bias.copy_(0.2 * torch.randn(module.bias.shape, generator=gen))
    return model


def _logits(model: nn.Module, ids: torch.Tensor = EVAL) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {f"t{i}": i for i in range(120)} | {"<unk>": 120}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def _greedy_no_cache(model: nn.Module, prompt: torch.Tensor, n: int) -> torch.Tensor:
    ids = prompt
    with torch.no_grad():
        for _ in range(n):
            nxt = model(ids, use_cache=False).logits[:, -1].argmax(-1, keepdim=True)
            ids = torch.cat([ids, nxt], dim=1)
    return ids


@pytest.fixture(scope="module")
def compressed():
    """Each architecture compressed once at 30% of the total parameters (original calibration)."""
    out = {}
    for model_type in ARCHS:
        model = _model(model_type)
        dense = copy.deepcopy(model)
        model, info = modegpt(model, CALIB, target_removed=0.3, progress=False)
        out[model_type] = (dense, model, info)
    return out


# ---------------------------------------------------------------------------------------------- keep ratio 1
@pytest.mark.parametrize("model_type", ARCHS)
def test_keep_one_is_identity(model_type):
    model = _model(model_type)
    ref = _logits(model)
    dense = parameter_counts(model, get_adapter(model))
    model, info = modegpt(model, CALIB, target_removed=0.0, progress=False)
    adapter = get_adapter(model)
    for la in adapter.layers():
        attn = la.attention()
        assert isinstance(attn, ModeGPTAttention)
        assert attn.qk_dim == attn.v_dim == attn.head_dim == 16
        assert torch.equal(attn.qk_index, torch.arange(16).repeat(attn.num_key_value_heads, 1))
    assert info["phi"] == [0.0] * 3 and info["mlp_width"] == [128] * 3
    assert info["counts_after"] == dense == info["predicted_counts"]
    torch.testing.assert_close(_logits(model), ref, rtol=0, atol=1e-5)


def test_layer_dims_rules():
    assert layer_dims(1.0, 128, 16, 16) == {"mlp_width": 128, "qk_dim": 16, "rot_dim": 16, "v_dim": 16}
    assert layer_dims(0.7, 128, 16, 16) == {"mlp_width": 89, "qk_dim": 10, "rot_dim": 10, "v_dim": 11}  # RoPE: even
    assert layer_dims(0.7, 128, 16, 0) == {"mlp_width": 89, "qk_dim": 11, "rot_dim": 0, "v_dim": 11}  # OPT
    assert layer_dims(0.7, 128, 16, 4) == {"mlp_width": 89, "qk_dim": 10, "rot_dim": 2, "v_dim": 11}  # partial
    assert layer_dims(0.05, 128, 16, 16)["rot_dim"] == 2  # at least one RoPE pair
    assert layer_dims(0.3, 1536, 64, 64) == {"mlp_width": 460, "qk_dim": 18, "rot_dim": 18, "v_dim": 19}


# ---------------------------------------------------------------------------------------------- targets
@pytest.mark.parametrize("model_type", ARCHS)
def test_target_counts_and_generation(compressed, model_type):
    dense, model, info = compressed[model_type]
    adapter = get_adapter(model)
    counts = parameter_counts(model, adapter)
    assert counts == info["counts_after"] == info["predicted_counts"] and info["predicted_matches"]
    assert counts["total"] == sum(p.numel() for p in model.parameters())
    assert abs(info["achieved_removed"] - 0.3) < 0.03
    assert info["removed"] == compression_ratio(parameter_counts(dense, get_adapter(dense)), counts)
    assert all(k < 16 for k in info["qk_dim"]) and any(m < 128 for m in info["mlp_width"])
    assert [row["mlp_width"] for row in info["allocation"]] == info["mlp_width"]
    logits = _logits(model)
    assert torch.isfinite(logits).all()
    assert not torch.allclose(logits, _logits(dense), atol=1e-3)

    # K and V live in the KV cache at k_h and v_h channels per head.
    with torch.no_grad():
        cache = model(PROMPT, use_cache=True).past_key_values
    for i, layer in enumerate(cache.layers):
        assert layer.keys.shape[-1] == info["qk_dim"][i] and layer.values.shape[-1] == info["v_dim"][i]
        assert layer.keys.shape[1] == adapter.layer(i).attention().num_key_value_heads

    generated = model.generate(
        PROMPT, attention_mask=torch.ones_like(PROMPT), max_new_tokens=5, do_sample=False, pad_token_id=127
    )
    assert torch.equal(generated, _greedy_no_cache(model, PROMPT, 5))


@pytest.mark.parametrize("model_type", ["llama", "phi", "gpt_neox"])
def test_rope_on_compressed_heads_selects_rotated_channels(compressed, model_type):
    """q and k after the gathered RoPE equal the kept channels of the original rotated heads."""
    dense, model, _ = compressed[model_type]
    la_d, la_c = get_adapter(dense).layer(1), get_adapter(model).layer(1)
    attn = la_c.attention()
    h, kv, d_h, r = la_d.num_heads, la_d.num_kv_heads, la_d.head_dim, la_d.rotary_dim
    x = torch.randn(1, 7, 64, generator=torch.Generator().manual_seed(5))
    pos = torch.arange(7)[None]
    cos, sin = get_adapter(dense).rotary_embedding()(x, pos)
    with torch.no_grad():
        q_full, k_full, _ = la_d.qkv(x)  # [1, 7, heads, d_h]

        def rope(t):
            t = t.transpose(1, 2)
            c, s = cos[:, None], sin[:, None]
            rot = t[..., :r] * c + torch.cat((-t[..., r // 2 : r], t[..., : r // 2]), -1) * s
            return torch.cat((rot, t[..., r:]), -1)

        q_full, k_full = rope(q_full), rope(k_full)
        index = attn.qk_index
        g = h // kv
        q_sel = torch.stack([q_full[:, i, :, index[i // g]] for i in range(h)], 1)
        k_sel = torch.stack([k_full[:, j, :, index[j]] for j in range(kv)], 1)
        q_c = attn.q_proj(x).view(1, 7, h, attn.qk_dim).transpose(1, 2)
        k_c = attn.k_proj(x).view(1, 7, kv, attn.qk_dim).transpose(1, 2)
        q_c, k_c = attn._rope(q_c, k_c, (cos, sin))
    assert attn.rot_dim < r or attn.qk_dim < d_h
    torch.testing.assert_close(q_c, q_sel, rtol=0, atol=1e-5)
    torch.testing.assert_close(k_c, k_sel, rtol=0, atol=1e-5)


def test_blocks_convention_and_allocation_order():
    model = _model("llama")
    dense = parameter_counts(model, get_adapter(model))
    _, info = modegpt(model, CALIB, target_removed=0.3, convention="blocks", progress=False)
    assert info["convention"] == "blocks" and abs(info["removed"]["removed_blocks"] - 0.3) < 0.03
    assert info["removed"]["removed_total"] < info["removed"]["removed_blocks"]
    assert info["counts_after"]["embeddings"] == dense["embeddings"] and info["counts_after"]["tied"] == 1
    phi, bi = info["phi"], info["bi"]
    order = sorted(range(3), key=lambda i: bi[i])  # lower block influence -> more sparsity
    assert [phi[i] for i in order] == sorted(phi, reverse=True) and max(phi) <= 0.8 + 1e-12


def test_allocation_hits_target_on_a_smollm2_sized_plan():
    """Bisection over predicted counts only (no weights): SmolLM2-135M shapes, 30 layers."""
    config = tiny_config("llama", hidden_size=576, intermediate_size=1536, num_attention_heads=9,
                         num_key_value_heads=3, num_hidden_layers=30, vocab_size=49152)  # fmt: skip
    with torch.device("meta"):
        model = LlamaForCausalLM(config)
    adapter = get_adapter(model)
    dense = parameter_counts(model, adapter)
    assert dense["total"] == 134_515_008
    plan = layer_plan(adapter)
    bi = torch.linspace(0.4, 0.05, 30)
    for target in (0.2, 0.3):
        alloc = allocate_for_target(dense, plan, bi, target)
        assert abs(alloc["predicted_removed"] - target) < 0.001
        assert alloc["predicted_counts"] == predicted_parameter_counts(dense, plan, alloc["dims"])
    with pytest.raises(ValueError, match="not reachable"):
        allocate_for_target(dense, plan, bi, 0.7)


# ---------------------------------------------------------------------------------------------- save / load
@pytest.mark.parametrize("model_type", ARCHS)
def test_save_load_round_trip(compressed, tmp_path, model_type):
    _, model, info = compressed[model_type]
    path = save_compressed(
        model, _tokenizer(), tmp_path / "m", method="modegpt", info=info, loader="modegpt", write_weights=write_weights
    )
    assert sorted(p.name for p in path.glob("model*")) == ["model.safetensors"]
    assert (path / "modegpt.json").is_file()
    loaded, _, record = load_compressed(path, attn_implementation="eager")
    assert record["loader"] == "modegpt" and record["info"]["qk_dim"] == info["qk_dim"]
    assert type(loaded) is type(model)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    assert get_adapter(loaded).tied_embeddings == get_adapter(model).tied_embeddings
    assert parameter_counts(loaded, get_adapter(loaded)) == info["counts_after"]
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=0, atol=0)
    if model_type == "llama":  # SDPA path: q/k and v head dims differ
        sdpa, _, _ = load_compressed(path, attn_implementation="sdpa")
        torch.testing.assert_close(_logits(sdpa), _logits(model), rtol=0, atol=1e-5)


# ---------------------------------------------------------------------------------------------- modes
def test_calibration_modes_and_cached_statistics():
    base = _model("llama")
    stats = collect_statistics(base, CALIB, batch_size=4, which=ALL_STATISTICS, progress=False)
    runs = {}
    for name, kwargs in {
        "pass": {"calibration": "original"},
        "cached": {"calibration": "original", "statistics": stats},
        "sequential": {"calibration": "sequential"},
        "sequential_cached_bi": {"calibration": "sequential", "statistics": stats},
    }.items():
        model, info = modegpt(copy.deepcopy(base), CALIB, target_removed=0.3, progress=False, **kwargs)
        runs[name] = (model.state_dict(), info)
    assert runs["cached"][1]["calibration"]["source"] == "statistics"
    assert runs["sequential"][1]["calibration"]["mode"] == "sequential"
    for key, value in runs["pass"][0].items():
        assert torch.equal(value, runs["cached"][0][key]), key
    for key, value in runs["sequential"][0].items():
        assert torch.equal(value, runs["sequential_cached_bi"][0][key]), key
    assert runs["pass"][1]["mlp_width"] == runs["sequential"][1]["mlp_width"]  # same BI -> same allocation
    seq, orig = runs["sequential"][0], runs["pass"][0]
    assert all(torch.equal(orig[k], seq[k]) for k in orig if k.startswith("model.layers.0."))  # same inputs
    assert not torch.equal(orig["model.layers.2.mlp.down_proj.weight"], seq["model.layers.2.mlp.down_proj.weight"])
    model, _ = modegpt(_model("llama"), None, target_removed=0.3, statistics=stats, progress=False)
    assert torch.equal(model.state_dict()["model.layers.1.self_attn.v_proj.weight"],
                       orig["model.layers.1.self_attn.v_proj.weight"])  # fmt: skip


def test_softmax_scale_option():
    assert inspect.signature(modegpt).parameters["softmax_scale"].default == "original"
    out = {}
    for scale in ("original", "compressed"):
        model, info = modegpt(_model("llama"), CALIB, target_removed=0.3, softmax_scale=scale, progress=False)
        attn = get_adapter(model).layer(2).attention()
        assert attn.scaling == pytest.approx((16 if scale == "original" else attn.qk_dim) ** -0.5)
        assert info["softmax_scale"] == scale
        out[scale] = _logits(model)
    assert not torch.allclose(out["original"], out["compressed"], atol=1e-4)


# ---------------------------------------------------------------------------------------------- errors
def test_refusals():
    with pytest.raises(ValueError, match="qk_layernorm"):
        config = tiny_config("phi", qk_layernorm=True)
        modegpt(PhiForCausalLM(config).eval(), CALIB, target_removed=0.3, progress=False)
    model, _ = modegpt(_model("opt"), CALIB, target_removed=0.2, progress=False)
    with pytest.raises(ValueError, match="already MoDeGPT"):
        modegpt(model, CALIB, target_removed=0.2, progress=False)
    with pytest.raises(ValueError, match="not reachable"):
        modegpt(_model("llama"), CALIB, target_removed=0.9, progress=False)
    with pytest.raises(ValueError, match="lack"):
        modegpt(_model("llama"), None, target_removed=0.2, statistics={"bi": torch.zeros(3)}, progress=False)
    with pytest.raises(ValueError, match="softmax_scale"):
        modegpt(_model("llama"), CALIB, target_removed=0.2, softmax_scale="sqrt", progress=False)
    with pytest.raises(ValueError, match="calibration"):
        modegpt(_model("llama"), CALIB, target_removed=0.2, calibration="later", progress=False)
