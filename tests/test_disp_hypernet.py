"""Tests for the DISP-LLM hypernetwork, gates, parameter counting and ratio regulariser."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import LlamaConfig

from repro.llm.adapters import get_adapter
from repro.llm.methods.disp_hypernet import (
    HyperNetwork,
    StructureSpec,
    block_keep_for_total_removed,
    counts_from_config,
    gumbel_sigmoid,
    hard_mask,
    kept_parameters,
    ratio_regulariser,
    total_removed_for_block_keep,
)
from repro.llm.params import parameter_counts
from repro.llm.tiny import TINY_MODEL_TYPES, tiny_model


def _llama2_7b_config() -> LlamaConfig:
    return LlamaConfig(
        hidden_size=4096,
        intermediate_size=11008,
        num_hidden_layers=32,
        num_attention_heads=32,
        vocab_size=32000,
        tie_word_embeddings=False,
    )


@pytest.fixture(scope="module")
def tiny_llama():
    model = tiny_model("llama")
    return model, get_adapter(model)


def test_llama2_7b_counts_and_conversion():
    counts = counts_from_config(_llama2_7b_config())
    assert round(counts["total"] / 1e9, 3) == 6.738
    assert round(counts["blocks"] / 1e9, 3) == 6.476
    assert round(counts["prunable"] / 1e9, 3) == 6.476
    keeps = [round(block_keep_for_total_removed(counts, r), 3) for r in (0.2, 0.3, 0.4, 0.5)]
    assert keeps == [0.792, 0.688, 0.584, 0.480]
    for r in (0.2, 0.5):
        assert total_removed_for_block_keep(counts, block_keep_for_total_removed(counts, r)) == pytest.approx(r)
    spec = StructureSpec.from_config(_llama2_7b_config())
    assert spec.num_structures == 160
    assert sum(spec.layer_dims()) == 27392
    assert spec.total_block_parameters == counts["prunable"]


@pytest.mark.parametrize("model_type", TINY_MODEL_TYPES)
def test_counts_from_config_match_built_models(model_type):
    model = tiny_model(model_type)
    adapter = get_adapter(model)
    dense = parameter_counts(model, adapter)
    counts = counts_from_config(model.config)
    assert counts["total"] == dense["total"]
    assert counts["blocks"] == dense["blocks"]
    spec = StructureSpec.from_adapter(adapter)
    assert spec == StructureSpec.from_config(model.config)
    assert spec.total_block_parameters == counts["prunable"]


def test_counts_from_config_rejects_unknown():
    with pytest.raises(ValueError, match="supports"):
        counts_from_config(type("Cfg", (), {"model_type": "bert", "hidden_size": 8, "num_attention_heads": 2})())


def test_hypernetwork_shapes_and_defaults(tiny_llama):
    _, adapter = tiny_llama
    spec = StructureSpec.from_adapter(adapter)
    hn = HyperNetwork(spec, seed=3)
    assert hn.gru.hidden_size == 64 and hn.gru.bidirectional and hn.gru.input_size == 32
    assert "z" not in dict(hn.named_parameters()) and hn.z.shape == (spec.num_structures, 1, 32)
    assert all(head.bias is None and head.in_features == 128 for head in hn.heads)
    logits = hn()
    assert [t.shape[0] for t in logits] == [n for _, _, n in spec.structures]
    assert [k for _, k, _ in spec.structures[:5]] == ["attn_in", "attn_out", "mlp_in", "mlp_mid", "mlp_out"]
    # Same seed -> same network; the global RNG is untouched.
    state = torch.random.get_rng_state()
    again = HyperNetwork(spec, seed=3)
    assert torch.equal(torch.random.get_rng_state(), state)
    assert all(torch.equal(a, b) for a, b in zip(logits, again()))
    # Offset 3 / temperature 0.4: noise-free initial gates start near 1 (dense model).
    with torch.no_grad():
        gates = hn.sample(training=False)
    assert min(float(g.min()) for g in gates) > 0.9


def test_gumbel_sigmoid_eval_deterministic_and_seeded():
    logits = torch.linspace(-6, 2, 50)
    soft = gumbel_sigmoid(logits, training=False)
    assert torch.allclose(soft, torch.sigmoid((logits + 3.0) / 0.4))
    assert torch.equal(soft, gumbel_sigmoid(logits, training=False))
    a = gumbel_sigmoid(logits, generator=torch.Generator().manual_seed(1))
    b = gumbel_sigmoid(logits, generator=torch.Generator().manual_seed(1))
    c = gumbel_sigmoid(logits, generator=torch.Generator().manual_seed(2))
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert ((a >= 0) & (a <= 1)).all()


def test_hard_mask_straight_through():
    logits = torch.randn(40, generator=torch.Generator().manual_seed(0), requires_grad=True)
    weights = torch.randn(40, generator=torch.Generator().manual_seed(1))
    soft = gumbel_sigmoid(logits, temperature=1.0, offset=0.0, generator=torch.Generator().manual_seed(2))
    hard = hard_mask(soft)
    assert set(hard.detach().unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(hard.detach(), torch.round(soft.detach()))
    (g_hard,) = torch.autograd.grad((hard * weights).sum(), logits, retain_graph=True)
    (g_soft,) = torch.autograd.grad((soft * weights).sum(), logits)
    assert torch.allclose(g_hard, g_soft)


def _masked_weight_count(adapter, masks_per_layer) -> int:
    """Surviving weight entries when each linear keeps rows/columns selected by the DISP masks."""
    total = 0
    for la, (s1, s2, s3, s4, s5) in zip(adapter.layers(), masks_per_layer):

        def n(lin, out_mask=None, in_mask=None):
            rows = torch.ones(lin.out_features) if out_mask is None else out_mask
            cols = torch.ones(lin.in_features) if in_mask is None else in_mask
            return int(torch.outer(rows, cols).sum())

        total += sum(n(lin, in_mask=s1) for lin in la.attention_input_linears())
        total += n(la.attention_output_linear(), out_mask=s2)
        total += sum(n(lin, out_mask=s4, in_mask=s3) for lin in la.mlp_input_linears())
        total += n(la.mlp_output_linear(), out_mask=s5, in_mask=s4)
    return total


def test_kept_parameters_matches_model(tiny_llama):
    model, adapter = tiny_llama
    spec = StructureSpec.from_adapter(adapter)
    ones = [torch.ones(n) for _, _, n in spec.structures]
    dense = parameter_counts(model, adapter)
    # Norms are not pruned and not counted; the tiny Llama has no biases.
    norms = sum(
        p.numel() for la in adapter.layers() for m in (la.attention_norm(), la.mlp_norm()) for p in m.parameters()
    )
    assert int(kept_parameters(ones, spec)) == dense["blocks"] - norms == spec.total_block_parameters
    g = torch.Generator().manual_seed(0)
    masks = [(torch.rand(n, generator=g) < 0.6).float() for _, _, n in spec.structures]
    per_layer = [masks[5 * i : 5 * i + 5] for i in range(spec.num_layers)]
    expected = _masked_weight_count(adapter, per_layer)
    assert int(kept_parameters(masks, spec)) == expected
    assert int(kept_parameters(per_layer, spec)) == expected
    with pytest.raises(ValueError, match="expected"):
        kept_parameters(masks[:-1], spec)


def test_ratio_regulariser_values(tiny_llama):
    _, adapter = tiny_llama
    spec = StructureSpec.from_adapter(adapter)
    ones = [torch.ones(n) for _, _, n in spec.structures]
    assert float(ratio_regulariser(ones, spec, p=1.0)) == pytest.approx(0.0, abs=1e-6)
    assert float(ratio_regulariser(ones, spec, p=0.5, lam=6.0)) == pytest.approx(6.0 * math.log(2.0), rel=1e-5)
    with pytest.raises(ValueError):
        ratio_regulariser(ones, spec, p=0.0)


def test_regulariser_drives_hard_ratio_to_target(tiny_llama):
    _, adapter = tiny_llama
    spec = StructureSpec.from_adapter(adapter)
    hn = HyperNetwork(spec, seed=0)
    opt = torch.optim.Adam(hn.parameters(), lr=1e-2)
    gen = torch.Generator().manual_seed(0)
    p = 0.6
    for _ in range(300):
        loss = ratio_regulariser(hn.sample(hard=True, generator=gen), spec, p)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        deterministic = float(kept_parameters(hn.sample(training=False, hard=True), spec)) / spec.total_block_parameters
        sampled = [
            float(kept_parameters(hn.sample(hard=True, generator=gen), spec)) / spec.total_block_parameters
            for _ in range(10)
        ]
    assert abs(deterministic / p - 1.0) < 0.02
    assert abs(sum(sampled) / len(sampled) / p - 1.0) < 0.02
