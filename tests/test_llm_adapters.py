"""Architecture adapters (repro.llm.adapters), parameter accounting and tiny models, on CPU."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

transformers = pytest.importorskip("transformers")

from transformers import AutoModelForCausalLM  # noqa: E402

from repro.llm.adapters import FusedProjectionView, get_adapter, interleaved_qkv_rows, supported_model_types  # noqa: E402
from repro.llm.adapters.base import _reindex_per_layer_config  # noqa: E402
from repro.llm.params import (  # noqa: E402
    block_keep_for_total_removed,
    compression_ratio,
    layer_parameter_counts,
    parameter_counts,
    total_removed_for_block_keep,
)
from repro.llm.tiny import TINY_MODEL_TYPES, tiny_config, tiny_model  # noqa: E402

TYPES = list(TINY_MODEL_TYPES)  # llama, opt, opt_proj (opt-350m-like), phi, gpt_neox

# Expected transformers attribute paths per tiny type: the adapters must return these very modules.
PATHS = {
    "llama": {
        "layers": "model.layers",
        "embed": "model.embed_tokens",
        "pos": None,
        "final": "model.norm",
        "rotary": "model.rotary_emb",
        "attn_norm": "input_layernorm",
        "mlp_norm": "post_attention_layernorm",
        "attn_in": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        "attn_out": "self_attn.o_proj",
        "mlp_in": ["mlp.gate_proj", "mlp.up_proj"],
        "mlp_out": "mlp.down_proj",
    },
    "opt": {
        "layers": "model.decoder.layers",
        "embed": "model.decoder.embed_tokens",
        "pos": "model.decoder.embed_positions",
        "final": "model.decoder.final_layer_norm",
        "rotary": None,
        "attn_norm": "self_attn_layer_norm",
        "mlp_norm": "final_layer_norm",
        "attn_in": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        "attn_out": "self_attn.out_proj",
        "mlp_in": ["fc1"],
        "mlp_out": "fc2",
    },
    "phi": {
        "layers": "model.layers",
        "embed": "model.embed_tokens",
        "pos": None,
        "final": "model.final_layernorm",
        "rotary": "model.rotary_emb",
        "attn_norm": "input_layernorm",
        "mlp_norm": "input_layernorm",
        "attn_in": ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj"],
        "attn_out": "self_attn.dense",
        "mlp_in": ["mlp.fc1"],
        "mlp_out": "mlp.fc2",
    },
    "gpt_neox": {
        "layers": "gpt_neox.layers",
        "embed": "gpt_neox.embed_in",
        "pos": None,
        "final": "gpt_neox.final_layer_norm",
        "rotary": "gpt_neox.rotary_emb",
        "attn_norm": "input_layernorm",
        "mlp_norm": "post_attention_layernorm",
        "attn_in": ["attention.query_key_value"],
        "attn_out": "attention.dense",
        "mlp_in": ["mlp.dense_h_to_4h"],
        "mlp_out": "mlp.dense_4h_to_h",
    },
}
PATHS["opt_proj"] = {**PATHS["opt"], "final": None}

MODELING = {
    "llama": "transformers.models.llama.modeling_llama",
    "opt": "transformers.models.opt.modeling_opt",
    "opt_proj": "transformers.models.opt.modeling_opt",
    "phi": "transformers.models.phi.modeling_phi",
    "gpt_neox": "transformers.models.gpt_neox.modeling_gpt_neox",
}


def _ids(seed: int = 1, batch: int = 2, seq: int = 12) -> torch.Tensor:
    return torch.randint(0, 128, (batch, seq), generator=torch.Generator().manual_seed(seed))


@torch.no_grad()
def _logits(model, ids):
    return model(ids).logits


def _rope(x, cos, sin, rotary_dim):
    """Rotate-half RoPE on the first ``rotary_dim`` channels; x (b, s, h, hd), cos/sin (b, s, rotary_dim)."""
    cos, sin = cos.unsqueeze(2), sin.unsqueeze(2)
    xr, xp = x[..., :rotary_dim], x[..., rotary_dim:]
    x1, x2 = xr[..., : rotary_dim // 2], xr[..., rotary_dim // 2 :]
    return torch.cat((xr * cos + torch.cat((-x2, x1), -1) * sin, xp), -1)


# ----------------------------------------------------------------------------- accessors


@pytest.mark.parametrize("mt", TYPES)
def test_accessor_sizes_agree_with_config(mt):
    model = tiny_model(mt)
    cfg = model.config
    a = get_adapter(model)
    assert a.model is model and a.config is cfg
    assert a.model_type == cfg.model_type
    assert a.num_layers == cfg.num_hidden_layers == len(a.layers()) == 3
    assert a.hidden_size == cfg.hidden_size == 64
    assert a.num_heads == cfg.num_attention_heads
    expected_kv = getattr(cfg, "num_key_value_heads", None) or cfg.num_attention_heads
    assert a.num_kv_heads == expected_kv == (2 if mt == "llama" else 4)  # llama: GQA, 4 q heads over 2 kv heads
    assert a.head_dim * a.num_heads == a.hidden_size
    intermediate = cfg.ffn_dim if mt.startswith("opt") else cfg.intermediate_size
    assert a.intermediate_size == intermediate
    emb_dim = cfg.word_embed_proj_dim if mt.startswith("opt") else cfg.hidden_size
    assert a.embedding_dim == emb_dim
    assert a.embed_tokens().weight.shape == (cfg.vocab_size, emb_dim)
    assert a.lm_head().weight.shape == (cfg.vocab_size, emb_dim)
    assert a.tied_embeddings == bool(cfg.tie_word_embeddings)
    assert (a.lm_head().bias is not None) == (mt == "phi")
    pos = a.position_embeddings()
    if mt.startswith("opt"):
        assert pos.weight.shape == (cfg.max_position_embeddings + a.position_embedding_offset, cfg.hidden_size)
        assert a.position_embedding_offset == 2
        assert a.rotary_embedding() is None and a.rotary_dim == 0
    else:
        assert pos is None
        assert a.rotary_embedding() is not None
        factor = {"llama": 1.0, "phi": 0.5, "gpt_neox": 0.25}[mt]
        assert a.rotary_dim == int(a.head_dim * factor)
        cos, _ = a.rotary_embedding()(torch.zeros(1, 3, 64), torch.arange(3)[None])
        assert cos.shape[-1] == a.rotary_dim
    if mt == "opt_proj":
        assert a.project_in().weight.shape == (cfg.hidden_size, emb_dim)
        assert a.project_out().weight.shape == (emb_dim, cfg.hidden_size)
        assert a.final_norm() is None
    else:
        assert a.project_in() is None and a.project_out() is None
        assert a.final_norm().weight.shape == (cfg.hidden_size,)

    norm_cls = {"rms": "RMSNorm", "layer": "LayerNorm"}[a.norm_kind]
    for i, la in enumerate(a.layers()):
        assert la.index == i and la.layer is a.decoder_layers_container()[i]
        assert la.norm_kind == a.norm_kind
        assert la.num_heads == a.num_heads and la.num_kv_heads == a.num_kv_heads and la.head_dim == a.head_dim
        assert la.intermediate_size == a.intermediate_size
        for norm in (la.attention_norm(), la.mlp_norm()):
            assert norm_cls in type(norm).__name__
            assert norm.weight.shape == (a.hidden_size,)
            assert (getattr(norm, "bias", None) is not None) == (a.norm_kind == "layer")
        q, k, v = la.q_proj(), la.k_proj(), la.v_proj()
        assert (q.in_features, q.out_features) == (a.hidden_size, a.num_heads * a.head_dim)
        assert (k.in_features, k.out_features) == (a.hidden_size, a.num_kv_heads * a.head_dim)
        assert (v.in_features, v.out_features) == (a.hidden_size, a.num_kv_heads * a.head_dim)
        assert q.weight.shape == (q.out_features, q.in_features)
        assert sum(lin.out_features for lin in la.attention_input_linears()) == (
            q.out_features + k.out_features + v.out_features
        )
        out = la.attention_output_linear()
        assert (out.in_features, out.out_features) == (a.num_heads * a.head_dim, a.hidden_size)
        assert len(la.mlp_input_linears()) == (2 if la.mlp_gated else 1)
        for lin in la.mlp_input_linears():
            assert (lin.in_features, lin.out_features) == (a.hidden_size, a.intermediate_size)
        down = la.mlp_output_linear()
        assert (down.in_features, down.out_features) == (a.intermediate_size, a.hidden_size)
        assert la.parallel_residual == (mt in ("phi", "gpt_neox"))
        assert la.pre_norm == (mt != "opt_proj")
        x = torch.randn(5)
        ref = {"llama": nn.functional.silu, "opt": torch.relu, "opt_proj": torch.relu}.get(mt)
        if ref is not None:
            torch.testing.assert_close(la.mlp_activation()(x), ref(x))
        assert set(la.named_linears().values()) == {
            *la.attention_input_linears(),
            out,
            *la.mlp_input_linears(),
            down,
        }


@pytest.mark.parametrize("mt", TYPES)
def test_accessors_return_the_actual_modules(mt):
    model = tiny_model(mt)
    a = get_adapter(model)
    p = PATHS[mt]
    sub = model.get_submodule
    assert a.decoder_layers_container() is sub(p["layers"])
    assert a.embed_tokens() is sub(p["embed"])
    assert a.lm_head() is model.lm_head
    for key, got in (("pos", a.position_embeddings()), ("final", a.final_norm()), ("rotary", a.rotary_embedding())):
        assert got is (None if p[key] is None else sub(p[key])), key
    if mt == "opt_proj":
        assert a.project_in() is sub("model.decoder.project_in")
        assert a.project_out() is sub("model.decoder.project_out")
    for la in a.layers():
        lsub = la.layer.get_submodule
        assert la.attention_norm() is lsub(p["attn_norm"])
        assert la.mlp_norm() is lsub(p["mlp_norm"])
        if la.pre_norm:
            assert la.attention_input_norm() is la.attention_norm()
            assert la.mlp_input_norm() is la.mlp_norm()
        else:
            assert la.attention_input_norm() is None and la.mlp_input_norm() is None
        assert all(x is lsub(n) for x, n in zip(la.attention_input_linears(), p["attn_in"], strict=True))
        assert la.attention_output_linear() is lsub(p["attn_out"])
        assert all(x is lsub(n) for x, n in zip(la.mlp_input_linears(), p["mlp_in"], strict=True))
        assert la.mlp_output_linear() is lsub(p["mlp_out"])
        if mt == "gpt_neox":
            for view in (la.q_proj(), la.k_proj(), la.v_proj()):
                assert isinstance(view, FusedProjectionView) and view.linear is lsub("attention.query_key_value")
        else:
            assert [la.q_proj(), la.k_proj(), la.v_proj()] == la.attention_input_linears()
        if mt == "phi":  # one input_layernorm shared by the parallel branches
            assert la.mlp_input_norm() is la.attention_input_norm()
    assert a.layer(1).layer is a.layers()[1].layer


# ----------------------------------------------------------------------------- q/k/v split


@pytest.mark.parametrize("mt", TYPES)
def test_split_qkv_output_reproduces_the_attention_qkv(mt, monkeypatch):
    """Hook the projections, split with the adapter, and compare with what the attention kernel receives."""
    import importlib

    model = tiny_model(mt)
    a = get_adapter(model)
    modeling = importlib.import_module(MODELING[mt])
    original = modeling.eager_attention_forward
    seen, proj_out, rope_args = {}, {}, {}

    def capture(module, query, key, value, *args, **kwargs):
        seen[id(module)] = (query, key, value)
        return original(module, query, key, value, *args, **kwargs)

    monkeypatch.setattr(modeling, "eager_attention_forward", capture)
    handles = []
    for la in a.layers():
        for j, lin in enumerate(la.attention_input_linears()):
            handles.append(
                lin.register_forward_hook(lambda m, i, o, key=(la.index, j): proj_out.__setitem__(key, o.detach()))
            )
        handles.append(
            la.attention().register_forward_pre_hook(
                lambda m, args, kw, idx=la.index: rope_args.__setitem__(idx, kw.get("position_embeddings")),
                with_kwargs=True,
            )
        )
    _logits(model, _ids())
    for h in handles:
        h.remove()

    for la in a.layers():
        outs = [proj_out[(la.index, j)] for j in range(len(la.attention_input_linears()))]
        q, k, v = la.split_qkv_output(outs)
        assert q.shape == (2, 12, a.num_heads, a.head_dim)
        assert k.shape == v.shape == (2, 12, a.num_kv_heads, a.head_dim)
        # the concatenated single-tensor form gives the same split
        for x, y in zip(la.split_qkv_output(torch.cat(outs, -1)), (q, k, v), strict=True):
            torch.testing.assert_close(x, y, rtol=0, atol=0)
        query, key, value = seen[id(la.attention())]  # (batch, heads, seq, head_dim), post-RoPE
        if a.rotary_dim:
            cos, sin = rope_args[la.index]
            q, k = _rope(q, cos, sin, a.rotary_dim), _rope(k, cos, sin, a.rotary_dim)
        else:  # OPT scales q right after q_proj
            q = q * a.head_dim**-0.5
        torch.testing.assert_close(q.transpose(1, 2), query, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(k.transpose(1, 2), key, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(v.transpose(1, 2), value, rtol=0, atol=0)


def test_gpt_neox_fused_qkv_layout_matches_transformers_slicing():
    model = tiny_model("gpt_neox")
    la = get_adapter(model).layers()[0]
    qkv_lin = la.layer.attention.query_key_value
    x = torch.randn(3, 5, 64)
    out = qkv_lin(x)
    # what GPTNeoXAttention does: view(..., heads, 3*head_dim).chunk(3, -1)
    ref = out.view(3, 5, la.num_heads, 3 * la.head_dim).chunk(3, dim=-1)
    got = la.split_qkv_output(out)
    for g, r in zip(got, ref, strict=True):
        torch.testing.assert_close(g, r, rtol=0, atol=0)
    for view, r in zip((la.q_proj(), la.k_proj(), la.v_proj()), ref, strict=True):
        torch.testing.assert_close(view(x).unflatten(-1, (-1, la.head_dim)), r)
    q_rows, k_rows, v_rows = interleaved_qkv_rows(2, 3)
    assert q_rows.tolist() == [0, 1, 2, 9, 10, 11]
    assert k_rows.tolist() == [3, 4, 5, 12, 13, 14]
    assert v_rows.tolist() == [6, 7, 8, 15, 16, 17]
    assert torch.cat([q_rows, k_rows, v_rows]).sort().values.tolist() == list(range(18))


# ----------------------------------------------------------------------------- depth pruning


@pytest.mark.parametrize("mt", TYPES)
def test_drop_layers_equals_identity_layers_and_round_trips(mt, tmp_path):
    model = tiny_model(mt)
    ids = _ids()
    ref = copy.deepcopy(model)
    ref_layers = get_adapter(ref).decoder_layers_container()
    ref_layers[1].register_forward_hook(lambda m, args, out: args[0])  # layer 1 -> identity
    expected = _logits(ref, ids)
    assert not torch.allclose(expected, _logits(model, ids), atol=1e-3)  # layer 1 matters

    a = get_adapter(model)
    kept_modules = [a.decoder_layers_container()[i] for i in (0, 2)]
    assert a.drop_layers([1]) == [0, 2]
    assert a.num_layers == model.config.num_hidden_layers == 2
    assert list(a.decoder_layers_container()) == kept_modules
    idx_attr = [m.layer_idx for la in a.layers() for m in la.layer.modules() if "layer_idx" in vars(m)]
    assert idx_attr == [0, 1]
    got = _logits(model, ids)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)

    # KV cache: incremental decoding through the renumbered layers equals the full forward
    with torch.no_grad():
        prefix = model(ids[:, :-1], use_cache=True)
        step = model(ids[:, -1:], cache=prefix.cache, use_cache=True)
    torch.testing.assert_close(step.logits[:, -1], got[:, -1], rtol=1e-4, atol=1e-5)

    model.save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    assert not any(p.suffix == ".py" for p in tmp_path.iterdir())
    reloaded, info = AutoModelForCausalLM.from_pretrained(
        tmp_path, attn_implementation="eager", output_loading_info=True
    )
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert type(reloaded) is type(model) and reloaded.config.num_hidden_layers == 2
    assert get_adapter(reloaded).tied_embeddings == a.tied_embeddings
    torch.testing.assert_close(_logits(reloaded.eval(), ids), got, rtol=0, atol=1e-6)


def test_drop_layers_negative_indices_and_errors():
    model = tiny_model("llama", num_hidden_layers=4)
    ids = _ids()
    ref = copy.deepcopy(model)
    for i in (0, 3):
        get_adapter(ref).decoder_layers_container()[i].register_forward_hook(lambda m, args, out: args[0])
    a = get_adapter(model)
    with pytest.raises(IndexError):
        a.drop_layers([4])
    with pytest.raises(ValueError):
        a.drop_layers(range(4))
    assert a.num_layers == 4  # failed calls changed nothing
    assert a.drop_layers([-1, 0, 0]) == [1, 2]
    torch.testing.assert_close(_logits(model, ids), _logits(ref, ids), rtol=1e-5, atol=1e-6)
    assert a.drop_layers([]) == [0, 1]


def test_drop_layers_reindexes_per_layer_config():
    cfg = tiny_config("llama", num_hidden_layers=4)
    cfg.layer_types = ["full_attention"] * 3 + ["sliding_attention"]
    _reindex_per_layer_config(cfg, [0, 3], 4)
    assert cfg.num_hidden_layers == 2 and cfg.layer_types == ["full_attention", "sliding_attention"]
    het = tiny_config(
        "llama", num_hidden_layers=4, per_layer_config={1: {"intermediate_size": 64}, 3: {"intermediate_size": 32}}
    )
    _reindex_per_layer_config(het, [0, 2, 3], 4)
    assert het.num_hidden_layers == 3
    assert het._heterogeneity_spec.per_layer_overrides == {2: {"intermediate_size": 32}}


# ----------------------------------------------------------------------------- embeddings tie


@pytest.mark.parametrize("mt", TYPES)
def test_untie_embeddings(mt, tmp_path):
    model = tiny_model(mt)
    a = get_adapter(model)
    ids = _ids()
    before = _logits(model, ids)
    was_tied = a.tied_embeddings
    assert was_tied == (mt in ("llama", "opt", "opt_proj"))
    assert a.untie_embeddings() is was_tied
    assert not a.tied_embeddings and model.config.tie_word_embeddings is False
    head, emb = a.lm_head().weight, a.embed_tokens().weight
    assert isinstance(head, nn.Parameter) and head is not emb and head.data_ptr() != emb.data_ptr()
    torch.testing.assert_close(_logits(model, ids), before, rtol=0, atol=0)
    with torch.no_grad():
        emb.mul_(0.5)  # independent now
    assert not torch.equal(head, emb)
    assert a.untie_embeddings() is False
    if was_tied:
        model.save_pretrained(tmp_path)
        reloaded = AutoModelForCausalLM.from_pretrained(tmp_path, attn_implementation="eager").eval()
        ra = get_adapter(reloaded)
        assert not ra.tied_embeddings
        torch.testing.assert_close(ra.lm_head().weight, head, rtol=0, atol=0)
        torch.testing.assert_close(_logits(reloaded, ids), _logits(model, ids), rtol=0, atol=1e-6)


# ----------------------------------------------------------------------------- parameter counts


def test_parameter_counts_tied_llama():
    model = tiny_model("llama")
    a = get_adapter(model)
    c = parameter_counts(model, a)
    vocab, d = 128, 64
    assert c["tied"] == 1 and c["lm_head"] == 0
    assert c["embeddings"] == vocab * d
    assert c["total"] == sum(p.numel() for p in model.parameters())  # de-duplicated by torch
    assert c["total"] == sum(p.numel() for p in model.state_dict().values()) - vocab * d  # tied counted once
    per_layer = layer_parameter_counts(a)
    assert c["blocks"] == sum(per_layer) == sum(sum(p.numel() for p in la.layer.parameters()) for la in a.layers())
    assert c["other"] == d  # final RMSNorm
    assert c["total"] == c["blocks"] + c["embeddings"] + c["lm_head"] + c["other"]

    a.untie_embeddings()
    u = parameter_counts(model, a)
    assert u["tied"] == 0 and u["lm_head"] == vocab * d and u["total"] == c["total"] + vocab * d
    r = compression_ratio(c, u)
    assert r["removed_blocks"] == 0.0 and r["removed_total"] == pytest.approx(-vocab * d / c["total"])

    a.drop_layers([1])
    dropped = parameter_counts(model, a)
    r = compression_ratio(c, dropped)
    assert r["removed_blocks"] == pytest.approx(1 / 3)
    assert r["kept_total"] == pytest.approx((c["total"] + vocab * d - per_layer[1]) / c["total"])
    assert r["kept_total"] + r["removed_total"] == pytest.approx(1.0)


@pytest.mark.parametrize("mt", ["opt_proj", "phi", "gpt_neox"])
def test_parameter_counts_partition(mt):
    model = tiny_model(mt)
    a = get_adapter(model)
    c = parameter_counts(model, a)
    assert c["total"] == sum(p.numel() for p in model.parameters())
    assert c["total"] == c["blocks"] + c["embeddings"] + c["lm_head"] + c["other"]
    assert c["blocks"] == sum(layer_parameter_counts(a))
    if mt == "phi":
        assert c["lm_head"] == 128 * 64 + 128  # untied, with bias
    nz0 = parameter_counts(model, a, nonzero=True)  # zero-initialised biases are not counted
    assert nz0["blocks"] <= c["blocks"] and nz0["total"] <= c["total"]
    with torch.no_grad():
        a.layers()[0].mlp_output_linear().weight.zero_()
    nz = parameter_counts(model, a, nonzero=True)
    assert nz["blocks"] == nz0["blocks"] - 128 * 64 and nz["total"] == nz0["total"] - 128 * 64
    assert parameter_counts(model, a)["total"] == c["total"]  # dense count unchanged by sparsity


def test_ratio_conventions_conversion():
    # LLaMA-2-7B numbers from the brief (§2.1): 50% of total parameters -> keep 48% of block parameters
    dense = {"total": 6_738_415_616, "blocks": 6_476_005_376}
    p = block_keep_for_total_removed(dense, 0.5)
    assert p == pytest.approx(0.4797, abs=1e-3)
    assert total_removed_for_block_keep(dense, p) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- dispatch


def test_unknown_model_type_error_names_the_type():
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaModel

    gpt2 = GPT2LMHeadModel(GPT2Config(vocab_size=32, n_embd=16, n_layer=1, n_head=2, n_positions=16))
    with pytest.raises(ValueError, match="gpt2") as err:
        get_adapter(gpt2)
    for supported in ("llama", "opt", "phi", "gpt_neox"):
        assert supported in str(err.value)
    assert supported_model_types() == ["gpt_neox", "llama", "opt", "phi"]
    with pytest.raises(ValueError, match="LlamaModel"):
        get_adapter(LlamaModel(tiny_config("llama")))
    with pytest.raises(ValueError, match="unknown tiny model type"):
        tiny_model("mamba")


def test_phi_qk_layernorm_accessor():
    assert all(la.qk_norms() is None for la in get_adapter(tiny_model("phi")).layers())
    model = tiny_model("phi", qk_layernorm=True)
    for la in get_adapter(model).layers():
        q_norm, k_norm = la.qk_norms()
        assert q_norm is la.layer.self_attn.q_layernorm and k_norm is la.layer.self_attn.k_layernorm


def test_subclass_of_supported_model_is_accepted():
    from transformers import LlamaForCausalLM

    class MyLlama(LlamaForCausalLM):
        pass

    assert get_adapter(MyLlama(tiny_config("llama"))).model_type == "llama"


def test_tiny_model_is_deterministic_and_eval():
    m1, m2, m3 = tiny_model("phi", seed=3), tiny_model("phi", seed=3), tiny_model("phi", seed=4)
    assert not m1.training and m1.dtype == torch.float32
    w1, w2, w3 = (m.model.layers[0].mlp.fc1.weight for m in (m1, m2, m3))
    assert torch.equal(w1, w2) and not torch.equal(w1, w3)
    assert tiny_model("llama", num_hidden_layers=2).config.num_hidden_layers == 2
