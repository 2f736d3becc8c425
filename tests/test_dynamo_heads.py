"""DynaMo heads, training and multi-token perplexity on tiny Llama / GPT-NeoX models."""

from __future__ import annotations

import math

import pytest
import torch
from transformers import GPTNeoXConfig

from repro.dynamo.heads import GradScale, MultiTokenModel, head_losses, layer_parameters_from_config
from repro.dynamo.metrics import continuation_nll, distinct_n, multi_token_perplexity, repetition_rate
from repro.dynamo.training import cosine_with_warmup, train_heads
from repro.llm.tiny import tiny_model

ARCHS = ["llama", "gpt_neox"]

# Pythia sizes of the brief §2.2 table: (layers, d) -> parameters of the two extra layers
PYTHIA = {(6, 512): 6_304_768, (12, 768): 14_175_744, (24, 1024): 25_192_448, (32, 4096): 402_759_680}


@pytest.mark.parametrize(("shape", "extra"), PYTHIA.items())
def test_two_extra_layers_match_the_paper_overhead(shape, extra):
    layers, d = shape
    config = GPTNeoXConfig(
        hidden_size=d, num_hidden_layers=layers, num_attention_heads=8, intermediate_size=4 * d, vocab_size=50304
    )
    assert 2 * layer_parameters_from_config(config) == extra == 2 * (12 * d * d + 13 * d)


def test_pythia_70m_overhead_percentage():
    # brief §2.2: Pythia-70M has 70,426,624 parameters; DynaMo-77M-T3 adds 8.95 %
    assert round(100 * PYTHIA[(6, 512)] / 70_426_624, 2) == 8.95


@pytest.mark.parametrize("arch", ARCHS)
def test_head_one_is_the_base_model_and_overhead_is_the_new_layers(arch):
    base = tiny_model(arch).eval()
    model = MultiTokenModel(base, n_heads=3, own_norm=False).eval()
    ids = torch.randint(0, base.config.vocab_size, (2, 11), generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        logits = model(ids)
        assert torch.equal(logits[0], base(ids).logits)
    assert len(logits) == 3 and all(lg.shape == (2, 11, base.config.vocab_size) for lg in logits)
    assert model.parameter_overhead()["extra"] == 2 * layer_parameters_from_config(base.config)
    with_norms = MultiTokenModel(tiny_model(arch), n_heads=3, own_norm=True)
    norm = sum(p.numel() for p in with_norms.extra_norms[0].parameters())
    assert with_norms.parameter_overhead()["extra"] == 2 * (layer_parameters_from_config(base.config) + norm)


@pytest.mark.parametrize("arch", ARCHS)
def test_incremental_decoding_with_per_head_caches_equals_the_full_forward(arch):
    base = tiny_model(arch).eval()
    model = MultiTokenModel(base, n_heads=3).eval()
    ids = torch.randint(0, base.config.vocab_size, (1, 13), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        full = model(ids)
        cache = model.new_cache()
        parts = [model(ids[:, a:b], cache) for a, b in ((0, 6), (6, 9), (9, 10), (10, 13))]
    assert cache.get_seq_length() == 13
    for j in range(3):
        torch.testing.assert_close(torch.cat([p[j] for p in parts], dim=1), full[j], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_cached_stem_path_equals_the_full_path(arch):
    base = tiny_model(arch).eval()
    model = MultiTokenModel(base, n_heads=3).eval()
    ids = torch.randint(0, base.config.vocab_size, (2, 9), generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        full = model.hidden_states(ids)
        from_stem = model.heads_from_stem(model.stem_states(ids))
    for a, b in zip(full[1:], from_stem):
        torch.testing.assert_close(a, b)


def test_new_layers_are_seeded_random_or_copied():
    a = MultiTokenModel(tiny_model("llama"), 3, seed=0)
    b = MultiTokenModel(tiny_model("llama"), 3, seed=0)
    c = MultiTokenModel(tiny_model("llama"), 3, seed=1)
    wa, wb, wc = (m.extra_layers[0].self_attn.q_proj.weight for m in (a, b, c))
    assert torch.equal(wa, wb) and not torch.equal(wa, wc)
    assert not torch.equal(a.extra_layers[0].self_attn.q_proj.weight, a.extra_layers[1].self_attn.q_proj.weight)
    std = float(wa.detach().std())
    assert abs(std - a.base.config.initializer_range) < 0.3 * a.base.config.initializer_range
    copied = MultiTokenModel(tiny_model("llama"), 3, init="copy_last")
    last = copied.base.model.layers[-1].self_attn.q_proj.weight
    assert torch.equal(copied.extra_layers[0].self_attn.q_proj.weight, last)
    assert copied.extra_layers[0].self_attn.q_proj.weight is not last


def test_head_losses_shift_from_the_original_labels():
    V, T = 7, 6
    ids = torch.tensor([[0, 1, 2, 3, 4, 5]])
    # head j puts all mass on the token j ahead: its loss is ~0 only if the shift is exactly j
    logits = []
    for j in (1, 2, 3):
        lg = torch.full((1, T, V), -30.0)
        for t in range(T - j):
            lg[0, t, ids[0, t + j]] = 30.0
        logits.append(lg)
    losses = head_losses(logits, ids)
    assert all(float(x) < 1e-6 for x in losses)
    swapped = head_losses([logits[1], logits[0], logits[2]], ids)
    assert float(swapped[0]) > 10 and float(swapped[1]) > 10
    with pytest.raises(ValueError, match="longer than"):
        head_losses(logits, ids[:, :2])


def test_grad_scale_is_identity_forward_and_scales_backward():
    x = torch.randn(4, requires_grad=True)
    y = GradScale.apply(x, 0.1)
    assert torch.equal(y, x)
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((4,), 0.1))


def test_cosine_schedule_warms_up_and_decays_to_zero():
    assert cosine_with_warmup(0, 100, 10) == pytest.approx(0.1)
    assert cosine_with_warmup(9, 100, 10) == pytest.approx(1.0)
    assert cosine_with_warmup(10, 100, 10) == pytest.approx(1.0)
    assert cosine_with_warmup(55, 100, 10) == pytest.approx(0.5)
    assert cosine_with_warmup(100, 100, 10) == pytest.approx(0.0, abs=1e-12)


def _pattern_windows(vocab: int, n: int = 48, length: int = 24) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    pattern = torch.randint(0, vocab, (16,), generator=gen)
    shifts = torch.randint(0, 16, (n,), generator=gen)
    return torch.stack([torch.roll(pattern, int(s)) for s in shifts]).repeat(1, 2)[:, :length]


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("train_base", [False, True])
def test_short_training_lowers_every_trained_heads_loss(arch, train_base):
    base = tiny_model(arch)
    frozen = {k: v.clone() for k, v in base.state_dict().items()}
    model = MultiTokenModel(base, n_heads=3)
    ids = _pattern_windows(base.config.vocab_size)
    history = train_heads(model, ids, steps=40, batch_size=8, lr_base=1e-4, train_base=train_base, progress=False)
    assert len(history) == 40  # 1 % of 40 steps rounds to no warm-up; cosine from LR_M = 100 x 1e-4
    assert [h["lr_heads"] for h in history] == pytest.approx([1e-2 * cosine_with_warmup(t, 40, 0) for t in range(40)])
    for j in (2, 3):  # the cyclic pattern is predictable: the new heads must learn it
        assert history[-1][f"ce_{j}"] < 0.5 * history[0][f"ce_{j}"]
    same = all(torch.equal(v, base.state_dict()[k]) for k, v in frozen.items())
    assert same is (not train_base)  # a frozen base is untouched; a trained one moves
    assert all(p.requires_grad for p in base.parameters())  # flags restored


def test_training_rejects_bad_settings():
    model = MultiTokenModel(tiny_model("llama"), n_heads=3)
    ids = torch.zeros(4, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="loss_weights"):
        train_heads(model, ids, steps=1, loss_weights="max", progress=False)
    with pytest.raises(ValueError, match="steps"):
        train_heads(model, ids, steps=0, progress=False)
    with pytest.raises(ValueError, match="T > 3"):
        train_heads(model, ids[:, :3], steps=1, progress=False)
    with pytest.raises(ValueError, match="single head"):
        train_heads(MultiTokenModel(tiny_model("llama"), n_heads=1), ids, steps=1, progress=False)


def test_joint_perplexity_is_the_geometric_mean_of_the_heads():
    base = tiny_model("llama").eval()
    model = MultiTokenModel(base, n_heads=3).eval()
    windows = torch.randint(0, base.config.vocab_size, (5, 20), generator=torch.Generator().manual_seed(3))
    r = multi_token_perplexity(model, windows, batch_size=2)
    geo = math.prod(r[f"ppl_{j}_common"] for j in (1, 2, 3)) ** (1 / 3)
    assert r["ppl_joint"] == pytest.approx(geo, rel=1e-12)
    with torch.no_grad():
        logits = base(windows).logits
    nll = torch.nn.functional.cross_entropy(
        logits[:, :-1].reshape(-1, logits.shape[-1]).double(), windows[:, 1:].reshape(-1)
    )
    assert r["ppl_1"] == pytest.approx(math.exp(float(nll)), rel=1e-9)
    assert r["positions"] == 5 * 19 and r["common_positions"] == 5 * 17


def test_text_quality_measures_on_known_sequences():
    assert distinct_n([[1, 2, 1, 2]], 2) == pytest.approx(2 / 3)
    assert distinct_n([[1, 2, 3], [1, 2, 4]], 1) == pytest.approx(4 / 6)
    assert math.isnan(distinct_n([[1]], 2))
    assert repetition_rate([1, 2, 1, 2]) == pytest.approx(2 / 3)
    assert repetition_rate([1, 2, 3, 4]) == 0.0
    assert repetition_rate([5, 6, 5], window=1) == 0.0
    base = tiny_model("llama").eval()
    nll, n = continuation_nll(base, [1, 2, 3], [4, 5])
    with torch.no_grad():
        lp = torch.log_softmax(base(torch.tensor([[1, 2, 3, 4, 5]])).logits[0].double(), -1)
    assert n == 2 and nll == pytest.approx(-(lp[2, 4] + lp[3, 5]).item(), rel=1e-9)
    with pytest.raises(ValueError, match="non-empty prompt"):
        continuation_nll(base, [], [1])
