"""DISP-LLM training loop, ReinMax gates, mask extraction / rounding and the end-to-end method."""

from __future__ import annotations

import json
import math

import pytest
import torch

from repro.llm.adapters import get_adapter
from repro.llm.compressed import load_compressed, save_compressed
from repro.llm.methods.disp_hypernet import HyperNetwork, StructureSpec, gumbel_sigmoid, kept_parameters
from repro.llm.methods.disp_llm import (
    disp_llm,
    extract_masks,
    layer_masks,
    reinmax_gates,
    round_masks,
    train_hypernetwork,
)
from repro.llm.methods.disp_modules import MASK_KEYS, GatherLinear, ScatterLinear, apply_masks, write_weights
from repro.llm.params import parameter_counts
from repro.llm.tiny import tiny_model

ARCHS = ["llama", "opt", "opt_proj", "phi", "gpt_neox"]
HISTORY_KEYS = {"step", "loss", "ce", "regulariser", "hard_ratio", "soft_ratio", "deterministic_ratio", "seconds"}


def _train_ids(seed: int = 0, n: int = 16, seq_len: int = 16) -> torch.Tensor:
    return torch.randint(0, 128, (n, seq_len), generator=torch.Generator().manual_seed(seed))


def _ids(seed: int = 1) -> torch.Tensor:
    return torch.randint(0, 128, (2, 9), generator=torch.Generator().manual_seed(seed))


def _logits(model, ids) -> torch.Tensor:
    with torch.no_grad():
        return model(ids).logits


def _tokenizer():
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {f"w{i}": i for i in range(100)} | {"<unk>": 100}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def _small_spec() -> StructureSpec:
    # one layer: attn_in/attn_out/mlp_in/mlp_out of width 8, mlp_mid of width 16
    return StructureSpec(num_layers=1, hidden_size=8, intermediate_size=16, q_dim=8, kv_dim=4, mlp_gated=True)


def _hooks(model) -> int:
    return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())


# ----------------------------------------------------------------------------------------------- training
# Measured on tiny llama, 16 windows of 16 tokens, lam=6, default lr / T / offset (seeds 0, 1, 2):
# after 150 steps the mean hard ratio of the last 10 records was within 0.016 of p in all 12 runs
# (reinmax / straight_through x p = 0.5 / 0.8); single records scatter by about +-0.03, so the mean of
# ten has a standard error near 0.01 and HARD_TOL = 0.03 is about 3 sigma.  The deterministic ratio
# (keep iff l + offset > 0) is *not* what the regulariser sees: with reinmax the hard draw is
# Bernoulli(sigmoid(l + offset)), with straight_through it is round of a Gumbel-sigmoid draw (keep
# probability 1 - exp(-exp(l + offset)), 0.63 at the threshold), and at 150 steps the logits are not
# yet polarised.  Measured |deterministic - p| at 150 steps: reinmax p=0.5 0.04-0.10, p=0.8 0.11-0.13
# (0.078 at 300 steps, 0.018 at 1000), straight_through p=0.5 0.06-0.08.  DET_TOL = 0.15 only checks
# that extraction lands in the neighbourhood of the target (untrained gates give 1.0).
TRAIN_STEPS = 150
HARD_TOL = 0.03
DET_TOL = 0.15


@pytest.mark.parametrize(
    ("estimator", "p"),
    [("reinmax", 0.5), ("straight_through", 0.5), ("reinmax", 0.8)],
    ids=["rm-0.5", "st-0.5", "rm-0.8"],
)
def test_regulariser_drives_hard_ratio_to_target(estimator, p):
    model = tiny_model("llama")
    # mixed requires_grad flags and train mode, to check both are restored
    model.get_input_embeddings().weight.requires_grad_(False)
    flags = {name: prm.requires_grad for name, prm in model.named_parameters()}
    before = {name: prm.detach().clone() for name, prm in model.named_parameters()}
    ids = _ids()
    want = _logits(model, ids)
    model.train()
    rng = torch.random.get_rng_state()

    hn, history = train_hypernetwork(
        model, _train_ids(), p, steps=TRAIN_STEPS, lam=6.0, estimator=estimator, progress=False
    )

    assert torch.equal(torch.random.get_rng_state(), rng)  # the global RNG is restored
    assert model.training  # train/eval mode restored
    assert {name: prm.requires_grad for name, prm in model.named_parameters()} == flags
    assert all(torch.equal(prm, before[name]) for name, prm in model.named_parameters())
    assert _hooks(model) == 0
    model.eval()
    torch.testing.assert_close(_logits(model, ids), want, atol=0, rtol=0)
    assert not hn.training

    assert len(history) == TRAIN_STEPS
    assert [r["step"] for r in history] == list(range(1, TRAIN_STEPS + 1))
    assert all(set(r) == HISTORY_KEYS for r in history)
    assert history[0]["deterministic_ratio"] == 1.0  # offset 3: the untrained gates keep everything
    hard = sum(r["hard_ratio"] for r in history[-10:]) / 10
    assert abs(hard - p) < HARD_TOL
    det = history[-1]["deterministic_ratio"]
    assert abs(det - p) < DET_TOL
    # extract_masks("deterministic") is the final deterministic_ratio (no set is empty here)
    spec = StructureSpec.from_adapter(get_adapter(model))
    masks = extract_masks(hn)
    assert all(m.sum() > 0 for m in masks)
    assert float(kept_parameters(masks, spec)) / spec.total_block_parameters == pytest.approx(det, rel=1e-12)
    with torch.no_grad():
        assert all(torch.equal(m, (lg + 3.0 > 0).float()) for m, lg in zip(masks, hn()))


def test_training_is_reproducible_and_seeded():
    def run(seed):
        _, hist = train_hypernetwork(tiny_model("llama"), _train_ids(), 0.6, steps=4, seed=seed, progress=False)
        return [{k: v for k, v in r.items() if k != "seconds"} for r in hist]

    a = run(0)
    assert a == run(0)
    assert a != run(1)


def test_train_hypernetwork_rejects_bad_settings():
    model = tiny_model("llama")
    ids = _train_ids()
    with pytest.raises(ValueError, match="estimator"):
        train_hypernetwork(model, ids, 0.5, steps=1, estimator="gumbel", progress=False)
    with pytest.raises(ValueError, match="mid_mask"):
        train_hypernetwork(model, ids, 0.5, steps=1, mid_mask="cubed", progress=False)
    for p in (0.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="keep fraction"):
            train_hypernetwork(model, ids, p, steps=1, progress=False)
    with pytest.raises(ValueError, match="steps"):
        train_hypernetwork(model, ids, 0.5, steps=0, progress=False)
    assert _hooks(model) == 0


# ----------------------------------------------------------------------------------------------- mid mask
def test_layer_masks_groups_and_squares_mid():
    spec = _small_spec()
    spec2 = StructureSpec(num_layers=2, hidden_size=8, intermediate_size=16, q_dim=8, kv_dim=4)
    gen = torch.Generator().manual_seed(0)
    flat = [torch.rand(n, generator=gen) for _, _, n in spec2.structures]
    single = layer_masks(flat, spec2)
    squared = layer_masks(flat, spec2, mid_power=2)
    assert len(single) == 2 and all(list(layer) == list(MASK_KEYS) for layer in single)
    for i in range(2):
        for j, key in enumerate(MASK_KEYS):
            assert single[i][key] is flat[5 * i + j]
            if key == "mlp_mid":
                torch.testing.assert_close(squared[i][key], flat[5 * i + j] ** 2, atol=0, rtol=0)
            else:
                assert squared[i][key] is flat[5 * i + j]
    with pytest.raises(ValueError, match="expected 5"):
        layer_masks(flat, spec)


def test_mid_mask_squared_vs_single_first_step():
    ids = _train_ids()
    kw = {"steps": 1, "seed": 0, "progress": False}
    _, squared = train_hypernetwork(tiny_model("llama"), ids, 0.5, mid_mask="squared", **kw)
    _, single = train_hypernetwork(tiny_model("llama"), ids, 0.5, mid_mask="single", **kw)
    # same seed -> the same soft and hard draws; only the soft intermediate mask's power differs
    assert squared[0]["soft_ratio"] == single[0]["soft_ratio"]
    assert squared[0]["hard_ratio"] == single[0]["hard_ratio"]
    assert squared[0]["regulariser"] == single[0]["regulariser"]
    assert squared[0]["ce"] != single[0]["ce"]


# ----------------------------------------------------------------------------------------------- ReinMax
def test_reinmax_forward_is_the_bernoulli_draw():
    logits = torch.tensor([-5.0, -3.5, -3.0, -2.0, 0.0, 1.0, 4.0], dtype=torch.float64)
    offset = 3.0
    draws = 20_000
    theta = logits.expand(draws, -1)
    out = reinmax_gates(theta, offset, 1.0, torch.Generator().manual_seed(5))
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    # exactly D = (U < sigmoid(theta + offset)) with U the generator's first uniform draw
    u = torch.rand(theta.shape, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    assert torch.equal(out, (u < torch.sigmoid(theta + offset)).double())
    # frequency of ones: binomial standard error <= 0.5 / sqrt(20000) = 0.0035; 0.015 is > 4 sigma
    torch.testing.assert_close(out.mean(0), torch.sigmoid(logits + offset), atol=0.015, rtol=0)
    # a different seed gives a different draw
    assert not torch.equal(out, reinmax_gates(theta, offset, 1.0, torch.Generator().manual_seed(6)))


def _reinmax_grad(theta_values, temperature, seed=0, draws=400):
    logits = torch.tensor(theta_values, dtype=torch.float64).repeat(draws).requires_grad_(True)
    out = reinmax_gates(logits, offset=0.0, temperature=temperature, generator=torch.Generator().manual_seed(seed))
    (grad,) = torch.autograd.grad(out.sum(), logits)
    return logits.detach(), out.detach(), grad


def test_reinmax_gradient_closed_form_at_unit_temperature():
    theta, d, grad = _reinmax_grad([-1.5, -0.3, 0.0, 0.7, 2.0], temperature=1.0)
    pi0 = torch.sigmoid(theta)
    kept, dropped = d == 1, d == 0
    assert kept.any() and dropped.any()
    # kept gate: (1 - pi0) / 2 (docstring); dropped gate: pi0 / 2 (same algebra with D = 0), so the
    # expected gradient pi0 (1 - pi0) is the true d pi0 / d theta
    torch.testing.assert_close(grad[kept], (1 - pi0[kept]) / 2, atol=1e-12, rtol=1e-12)
    torch.testing.assert_close(grad[dropped], pi0[dropped] / 2, atol=1e-12, rtol=1e-12)


def test_reinmax_gradient_sign_flip_at_small_temperature():
    theta, d, grad = _reinmax_grad([1.0, 2.0, 6.0], temperature=0.4)
    kept = d == 1
    pi0 = torch.sigmoid(theta)
    pi1 = ((1 + torch.sigmoid(theta / 0.4)) / 2).clamp(1e-6, 1 - 1e-6)
    closed = 2 * pi1 * (1 - pi1) - pi0 * (1 - pi0) / 2
    torch.testing.assert_close(grad[kept], closed[kept], atol=1e-12, rtol=1e-12)
    large = kept & (theta == 6.0)
    assert large.sum() > 300  # pi0 = 0.9975: nearly every draw keeps it
    assert (grad[large] < 0).all()  # the documented sign flip of a kept, saturated gate
    assert (grad[kept & (theta == 2.0)] < 0).all()
    # at tau = 1 the same kept gates have a positive gradient
    _, d1, grad1 = _reinmax_grad([6.0], temperature=1.0)
    assert (grad1[d1 == 1] > 0).all()


# ----------------------------------------------------------------------------------------------- round_masks
def _random_case(full: int, n: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(full, generator=gen)  # distinct almost surely
    mask = torch.zeros(full)
    # keep a random subset (not the top logits, so the ranking rule is visible)
    mask[torch.randperm(full, generator=gen)[:n]] = 1.0
    return mask, logits


def test_round_masks_identity_for_multiple_one():
    cases = [_random_case(16, n, n) for n in (0, 3, 16)]
    masks, logits = [c[0] for c in cases], [c[1] for c in cases]
    out = round_masks(masks, logits, 1)
    assert all(a is b for a, b in zip(out, masks))
    with pytest.raises(ValueError, match="round_to"):
        round_masks(masks, logits, 0)


@pytest.mark.parametrize("multiple", [4, 8])
def test_round_masks_sizes_and_ranking(multiple):
    full = 32
    for n in range(full + 1):
        mask, logits = _random_case(full, n, seed=100 + n)
        (new,) = round_masks([mask], [logits], multiple)
        size = int(new.sum())
        assert set(new.unique().tolist()) <= {0.0, 1.0}
        assert size % multiple == 0 and multiple <= size <= full
        assert abs(size - n) <= multiple // 2 or n < multiple // 2  # nearest multiple (>= multiple)
        kept, old = new.bool(), mask.bool()
        if size >= n:  # added entries are the highest-logit dropped ones
            assert (kept | old).equal(kept)
            added = kept & ~old
            rest = ~kept
            if added.any() and rest.any():
                assert logits[added].min() > logits[rest].max()
        else:  # removed entries are the lowest-logit kept ones
            assert (kept & old).equal(kept)
            removed = old & ~kept
            assert logits[removed].max() < logits[kept].min()
        if size == n:
            assert torch.equal(new, mask)


def test_round_masks_known_values():
    logits = torch.arange(10.0)  # index i has logit i
    mask = torch.zeros(10)
    mask[[0, 5, 9]] = 1.0  # 3 kept -> 4: add the best dropped one (8)
    (up,) = round_masks([mask], [logits], 4)
    assert torch.nonzero(up).flatten().tolist() == [0, 5, 8, 9]
    mask = torch.zeros(10)
    mask[[0, 1, 2, 6, 7]] = 1.0  # 5 kept -> 4: remove the worst kept one (0)
    (down,) = round_masks([mask], [logits], 4)
    assert torch.nonzero(down).flatten().tolist() == [1, 2, 6, 7]
    (empty,) = round_masks([torch.zeros(10)], [logits], 4)  # at least one multiple
    assert torch.nonzero(empty).flatten().tolist() == [6, 7, 8, 9]


def test_round_masks_full_width_unchanged_when_width_is_a_multiple():
    for full, multiple in ((32, 8), (16, 4), (12, 8)):  # 12 / 8 rounds up to 16, capped at the full 12
        mask, logits = torch.ones(full), torch.randn(full, generator=torch.Generator().manual_seed(full))
        (new,) = round_masks([mask], [logits], multiple)
        assert torch.equal(new, mask)


def test_round_masks_full_width_unchanged_when_width_is_not_a_multiple():
    # width 10, round_to 4: round(10 / 4) = 2 would shrink it to 8; a full-width set is always valid
    mask, logits = torch.ones(10), torch.arange(10.0)
    (new,) = round_masks([mask], [logits], 4)
    assert torch.equal(new, mask)


# ----------------------------------------------------------------------------------------------- extract_masks
def _patched_hn(monkeypatch, logits):
    hn = HyperNetwork(_small_spec(), hidden=8, z_dim=4, seed=0)
    monkeypatch.setattr(hn, "forward", lambda: [lg.clone() for lg in logits])
    return hn


def test_extract_deterministic_threshold_and_empty_sets(monkeypatch):
    spec = _small_spec()
    gen = torch.Generator().manual_seed(0)
    logits = [torch.randn(n, generator=gen) * 3 - 2 for _, _, n in spec.structures]
    logits[0][:3] = torch.tensor([-3.0, -2.999, -3.001])  # l + offset = 0 is not kept (strict >)
    logits[1] = -5.0 - torch.rand(8, generator=gen)  # all below -offset: an empty set
    logits[3] = torch.full((16,), -4.0)
    logits[3][11] = -3.5  # empty too; its argmax is 11
    hn = _patched_hn(monkeypatch, logits)
    masks = extract_masks(hn, offset=3.0)
    for i, (m, lg) in enumerate(zip(masks, logits)):
        raw = (lg + 3.0 > 0).float()
        if raw.sum() > 0:
            assert torch.equal(m, raw), i
        else:
            assert m.sum() == 1 and int(torch.argmax(m)) == int(torch.argmax(lg)), i
    assert masks[0][:3].tolist() == [0.0, 1.0, 0.0]
    assert torch.nonzero(masks[3]).flatten().tolist() == [11]
    assert masks[1].sum() == 1 and masks[2].sum() > 1
    # a different offset moves the threshold: structure 1 (logits in (-6, -5)) is now partly kept
    moved = (logits[1] + 5.5 > 0).float()
    assert 0 < moved.sum() < 8
    assert torch.equal(extract_masks(hn, offset=5.5)[1], moved)


def test_extract_deterministic_on_real_hypernetwork():
    hn = HyperNetwork(_small_spec(), hidden=8, z_dim=4, seed=1)
    with torch.no_grad():
        hn.heads[2].weight.zero_()  # logits of structure 2 are exactly 0
        logits = hn()
    masks = extract_masks(hn, offset=3.0)
    assert all(torch.equal(m, (lg + 3.0 > 0).float()) for m, lg in zip(masks, logits))
    assert masks[2].sum() == 8
    masks0 = extract_masks(hn, offset=0.0)
    assert torch.nonzero(masks0[2]).flatten().tolist() == [0]  # 0 > 0 is false: empty -> argmax (0)
    for m, lg in zip(masks0, logits):
        assert m.sum() >= 1


def test_extract_seeded_reproducible_and_seed_dependent(monkeypatch):
    spec = _small_spec()
    gen = torch.Generator().manual_seed(0)
    # near the threshold the Gumbel draw decides: keep probability 1 - exp(-exp(l + offset)) ~ 0.6
    logits = [-3.0 + 0.1 * torch.randn(n, generator=gen) for _, _, n in spec.structures]
    hn = _patched_hn(monkeypatch, logits)
    a = extract_masks(hn, mode="seeded", seed=3)
    b = extract_masks(hn, mode="seeded", seed=3)
    c = extract_masks(hn, mode="seeded", seed=4)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    differing = sum(int((x != y).sum()) for x, y in zip(a, c))
    assert differing > 0
    # exactly one rounded Gumbel-sigmoid draw per structure, in order, from Generator(seed)
    g = torch.Generator().manual_seed(3)
    want = [torch.round(gumbel_sigmoid(lg, 0.4, 3.0, True, g)) for lg in logits]
    for x, w in zip(a, want):
        assert torch.equal(x, w) if w.sum() > 0 else x.sum() == 1
    assert all(set(x.unique().tolist()) <= {0.0, 1.0} for x in a)


def test_extract_round_to_and_bad_mode(monkeypatch):
    spec = _small_spec()
    gen = torch.Generator().manual_seed(2)
    logits = [torch.randn(n, generator=gen) * 3 - 3 for _, _, n in spec.structures]
    hn = _patched_hn(monkeypatch, logits)
    masks = extract_masks(hn, round_to=4)
    # widths 8 and 16 are multiples of 4
    assert all(int(m.sum()) % 4 == 0 and int(m.sum()) >= 4 for m in masks)
    raw = extract_masks(hn)
    assert all(torch.equal(m, r) for m, r in zip(masks, round_masks(raw, logits, 4)))
    with pytest.raises(ValueError, match="extraction"):
        extract_masks(hn, mode="sampled")


# ----------------------------------------------------------------------------------------------- disp_llm
@pytest.mark.parametrize("arch", ARCHS)
def test_disp_llm_end_to_end(arch, tmp_path):
    model = tiny_model(arch)
    adapter = get_adapter(model)
    n_total = parameter_counts(model, adapter)["total"]
    n_prunable = StructureSpec.from_adapter(adapter).total_block_parameters
    calib = _train_ids(seed=3, n=4, seq_len=12)
    steps, r = 3, 0.3
    # offset 0 makes the deterministic sets partial after 3 steps (offset 3 would keep everything)
    model, info = disp_llm(
        model,
        calib,
        target_removed=r,
        steps=steps,
        offset=0.0,
        progress=False,
        batch_size=8,
        train_text="ignored",
        train_seq_len=12,
        statistics=None,
    )
    assert info["p_block"] == pytest.approx(1 - r * n_total / n_prunable, rel=1e-12)
    assert info["counts_dense"]["prunable"] == n_prunable and info["counts_dense"]["total"] == n_total
    assert info["convention"] == "total" and info["target_removed"] == r
    assert info["train_tokens"] == steps * 1 * 12 and info["train_windows"] == [4, 12]
    history = info["history"]
    assert len(history) == steps and all(set(rec) == HISTORY_KEYS for rec in history)
    assert [rec["step"] for rec in history] == [1, 2, 3]
    assert all(math.isfinite(rec["loss"]) for rec in history)

    # materialised: every linear of every layer is a gather / scatter module
    la = get_adapter(model).layers()
    assert all(isinstance(lin, GatherLinear) for layer in la for lin in layer.attention_input_linears())
    assert all(isinstance(lin, GatherLinear) for layer in la for lin in layer.mlp_input_linears())
    assert all(isinstance(layer.attention_output_linear(), ScatterLinear) for layer in la)
    assert all(isinstance(layer.mlp_output_linear(), ScatterLinear) for layer in la)
    widths = info["layer_widths"]
    assert widths == [{k: len(v) for k, v in row.items()} for row in info["index_sets"]]
    assert info["block_keep_achieved"] < 1.0  # something was pruned
    after = parameter_counts(model, get_adapter(model))
    assert after == info["counts_after"]
    assert info["achieved_removed"] == pytest.approx(1 - after["total"] / n_total, rel=1e-12)
    if arch == "llama":  # no biases: exactly the prunable weights disappear
        assert n_total - after["total"] == round(n_prunable * (1 - info["block_keep_achieved"]))

    # the materialised model equals the dense model under the extracted 0/1 masks
    ids = _ids()
    got = _logits(model, ids)
    dense = tiny_model(arch)
    masks = []
    for sets in info["index_sets"]:
        layer = {}
        for key in MASK_KEYS:
            full = dense.config.hidden_size if key != "mlp_mid" else get_adapter(dense).intermediate_size
            m = torch.zeros(full)
            m[sets[key]] = 1.0
            layer[key] = m
        masks.append(layer)
    handles = apply_masks(dense, masks)
    torch.testing.assert_close(got, _logits(dense, ids), atol=1e-5, rtol=1e-5)  # gather/scatter sum order
    handles.remove()

    # save (info must be JSON-serialisable) and reload with identical logits
    path = save_compressed(
        model,
        _tokenizer(),
        tmp_path / "m",
        method="disp_llm",
        info=info,
        loader="disp_llm",
        write_weights=write_weights,
    )
    loaded, _, record = load_compressed(path, attn_implementation="eager")
    assert record["loader"] == "disp_llm"
    assert json.loads(json.dumps(record["info"]["history"])) == history
    torch.testing.assert_close(_logits(loaded, ids), got, atol=0, rtol=0)


def test_disp_llm_blocks_convention_and_round_to():
    model = tiny_model("llama")
    n_prunable = StructureSpec.from_adapter(get_adapter(model)).total_block_parameters
    _, info = disp_llm(
        model, _train_ids(n=2), target_removed=0.4, convention="blocks", steps=1, offset=0.0, round_to=8, progress=False
    )
    assert info["p_block"] == pytest.approx(0.6, rel=1e-12)
    assert info["counts_dense"]["prunable"] == n_prunable
    assert info["settings"]["round_to"] == 8
    # tiny llama widths (64, 128) are multiples of 8, so every set size is one (offset 0 prunes some)
    sizes = [n for row in info["layer_widths"] for n in row.values()]
    assert all(n % 8 == 0 and n >= 8 for n in sizes)
    assert info["block_keep_achieved"] < 1.0


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"estimator": "gumbel"}, "estimator.*'gumbel'"),
        ({"mid_mask": "cubed"}, "mid_mask.*'cubed'"),
        ({"extraction": "sampled"}, "extraction.*'sampled'"),
        ({"convention": "params"}, "convention.*'params'"),
        ({"target_removed": 0.99}, "cannot remove"),  # needs p = 1 - 0.99 N_total / N_prunable < 0
    ],
)
def test_disp_llm_rejects_bad_options(kwargs, match):
    model = tiny_model("llama")
    settings = {"target_removed": 0.3, "steps": 1, "progress": False, **kwargs}
    with pytest.raises(ValueError, match=match):
        disp_llm(model, _train_ids(n=2), **settings)
    assert _hooks(model) == 0
    assert not any(isinstance(m, (GatherLinear, ScatterLinear)) for m in model.modules())


def test_disp_llm_rejects_unknown_keyword_and_missing_data():
    model = tiny_model("llama")
    with pytest.raises(TypeError, match="warmup"):
        disp_llm(model, _train_ids(n=2), target_removed=0.3, steps=1, warmup=5, progress=False)
    with pytest.raises(ValueError, match="training windows"):
        disp_llm(model, None, target_removed=0.3, steps=1, progress=False)
    # just past the boundary r0 = N_prunable / N_total, where p = 1 - r N_total / N_prunable reaches 0
    counts = parameter_counts(model, get_adapter(model))
    r0 = StructureSpec.from_adapter(get_adapter(model)).total_block_parameters / counts["total"]
    with pytest.raises(ValueError, match="cannot remove"):
        disp_llm(model, _train_ids(n=2), target_removed=r0 + 1e-9, steps=1, progress=False)


def test_matched_extraction_keeps_the_target_fraction(monkeypatch):
    from repro.llm.methods.disp_hypernet import kept_parameters
    from repro.llm.methods.disp_llm import matched_threshold

    spec = _small_spec()
    gen = torch.Generator().manual_seed(3)
    logits = [torch.randn(n, generator=gen) for _, _, n in spec.structures]
    hn = _patched_hn(monkeypatch, logits)
    for p in (0.3, 0.5, 0.8):
        masks = extract_masks(hn, mode="matched", p=p)
        t = matched_threshold(logits, spec, p)
        assert all(torch.equal(m, (lg > t).float()) for m, lg in zip(masks, logits) if m.sum() > 1)
        kept = float(kept_parameters(masks, spec)) / spec.total_block_parameters
        # one more or one fewer gate changes the count by at most the largest single-gate cost
        step = max(spec.q_dim + 2 * spec.kv_dim, 2 * spec.intermediate_size, 3 * spec.hidden_size)
        assert abs(kept - p) <= step / spec.total_block_parameters
    with pytest.raises(ValueError, match="needs the block keep fraction"):
        extract_masks(hn, mode="matched")
