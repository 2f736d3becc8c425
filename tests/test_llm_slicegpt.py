"""SliceGPT on tiny models of every architecture: invariance, rotation, slicing, counts, materialisation."""

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from torch import nn
from transformers import PreTrainedTokenizerFast

from repro.llm.adapters import get_adapter
from repro.llm.compressed import load_compressed, save_compressed
from repro.llm.methods.registry import compress
from repro.llm.methods.slicegpt import (
    RMSN,
    fuse_norms,
    sliced_parameter_counts,
    sliced_width,
    slicegpt,
    width_for_target,
    write_weights,
)
from repro.llm.params import compression_ratio, parameter_counts
from repro.llm.tiny import tiny_model

ARCHS = ["llama", "opt", "phi", "gpt_neox"]
PARALLEL = {"llama": False, "opt": False, "phi": True, "gpt_neox": True}
CALIB = torch.randint(0, 128, (8, 32), generator=torch.Generator().manual_seed(1))
EVAL = torch.randint(0, 128, (2, 24), generator=torch.Generator().manual_seed(2))


def _model(model_type: str) -> nn.Module:
    """A tiny model whose norm scales/shifts and linear biases are random (the init has 1, 0 and 0)."""
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


def _expected_sliced_counts(model_type: str, k: int, slice_head: bool = False) -> dict[str, int]:
    """Parameter counts of a tiny model sliced to width ``k``, by hand.

    Tiny shapes: d = 64, 3 layers, vocab V = 128, 4 heads of 16 (llama: 2 KV heads), d_int = 128,
    OPT positions 128 + 2 rows.  Norms become weightless; LayerNorm models gain an LM-head bias (the
    folded final-norm beta; Phi already has one).  Every layer reads width k; its output is k, except
    the last layer's output, which stays d unless ``slice_head``.  Per layer with input a, mid m = k,
    output o:
        sequential: a*qkv + qkv_b + 64*m + o_b*m + m*mlp_in + mlp_in_b + 128*o + d_b*o + a*m + m*o
        parallel:   a*qkv + qkv_b + 64*o + o_b*o + a*mlp_in + mlp_in_b + 128*o + d_b*o + a*o
    (the last two terms are the shortcut matrices).
    """
    d, vocab, layers = 64, 128, 3
    llama = model_type == "llama"
    qkv, qkv_b = (128, 0) if llama else (192, 192)
    mlp_in, mlp_in_b = (256, 0) if llama else (128, 128)
    out_b = 0 if llama else 1  # bias on o_proj/out_proj/dense and down/fc2/dense_4h_to_h
    blocks = 0
    for i in range(layers):
        a, m, o = k, k, (d if i == layers - 1 and not slice_head else k)
        if PARALLEL[model_type]:
            blocks += a * qkv + qkv_b + 64 * o + out_b * o + a * mlp_in + mlp_in_b + 128 * o + out_b * o + a * o
        else:
            blocks += a * qkv + qkv_b + 64 * m + out_b * m + m * mlp_in + mlp_in_b + 128 * o + out_b * o + a * m + m * o
    embeddings = vocab * k + (130 * k if model_type == "opt" else 0)
    head_in = k if slice_head else d
    lm_head = vocab * head_in + (0 if llama else vocab)
    return {"total": blocks + embeddings + lm_head, "blocks": blocks, "embeddings": embeddings, "lm_head": lm_head}


# ---------------------------------------------------------------------------------------------- (a)
@pytest.mark.parametrize("model_type", ARCHS)
def test_invariance_transform_keeps_logits(model_type):
    model = _model(model_type)
    ref = _logits(model)
    adapter = get_adapter(model)
    step = fuse_norms(model)
    assert step["centred"] == (model_type != "llama")
    assert not adapter.tied_embeddings
    norms = [n for la in adapter.layers() for n in (la.attention_input_norm(), la.mlp_input_norm())]
    assert all(isinstance(n, RMSN) for n in [*norms, adapter.final_norm()])
    if model_type == "phi":
        assert all(la.attention_input_norm() is la.mlp_input_norm() for la in adapter.layers())
    torch.testing.assert_close(_logits(model), ref, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------- (b)
@pytest.mark.parametrize("model_type", ARCHS)
@pytest.mark.parametrize("orientation", ["pca", "random"])
def test_sparsity_zero_only_rotates(model_type, orientation):
    model = _model(model_type)
    ref = _logits(model)
    _, info = slicegpt(model, CALIB, sparsity=0.0, final_orientation=orientation, progress=False)
    assert info["new_width"] == 64
    assert all(w in (64, None) for widths in info["layer_widths"] for w in widths)
    shortcut = get_adapter(model).decoder_layers_container()[1].attn_shortcut_Q
    assert shortcut.shape == (64, 64) and not torch.allclose(shortcut, torch.eye(64), atol=1e-2)  # a real rotation
    torch.testing.assert_close(_logits(model), ref, rtol=0, atol=1e-4)


# ---------------------------------------------------------------------------------------------- (c)
@pytest.mark.parametrize("model_type", ARCHS)
def test_quarter_sparsity_shapes_counts_and_logits(model_type):
    model = _model(model_type)
    ref = _logits(model)
    dense = parameter_counts(model, get_adapter(model))
    _, info = slicegpt(model, CALIB, sparsity=0.25, round_to=8, progress=False)
    k = info["new_width"]
    assert k == 48 and k % 8 == 0 and info["width_unrounded"] == 48
    adapter = get_adapter(model)
    assert adapter.embed_tokens().embedding_dim == k
    for i, la in enumerate(adapter.layers()):
        last = i == adapter.num_layers - 1
        assert all(lin.in_features == k for lin in la.attention_input_linears())
        assert all(lin.in_features == k for lin in la.mlp_input_linears())
        assert la.mlp_output_linear().out_features == (64 if last else k)
        assert la.attention_output_linear().out_features == (64 if last and la.parallel_residual else k)
    assert adapter.lm_head().in_features == 64  # official default: the head is not sliced

    expected = _expected_sliced_counts(model_type, k)
    after = info["counts_after"]
    assert after == parameter_counts(model, adapter)
    assert {key: after[key] for key in expected} == expected
    assert info["counts_dense"] == dense and after["total"] < dense["total"]
    # shortcuts: k x k per residual branch, the last one k x 64 (the last layer's output is not sliced)
    n_shortcuts = 3 if PARALLEL[model_type] else 6
    assert info["shortcut_params"] == (n_shortcuts - 1) * k * k + k * 64
    assert info["removed"]["removed_total"] == pytest.approx(1 - after["total"] / dense["total"])

    logits = _logits(model)
    assert torch.isfinite(logits).all()
    corr = torch.corrcoef(torch.stack([logits.flatten(), ref.flatten()]))[0, 1]
    assert corr > 0.5, corr


def test_slice_head_counts():
    model = _model("llama")
    _, info = slicegpt(model, CALIB, sparsity=0.25, slice_head=True, progress=False)
    expected = _expected_sliced_counts("llama", 48, slice_head=True)
    assert {key: info["counts_after"][key] for key in expected} == expected
    assert get_adapter(model).lm_head().in_features == 48
    assert torch.isfinite(_logits(model)).all()


def test_random_orientation_spans_the_pca_subspace():
    pca_model, rnd_model = _model("opt"), _model("opt")
    slicegpt(pca_model, CALIB, sparsity=0.25, progress=False)
    slicegpt(rnd_model, CALIB, sparsity=0.25, final_orientation="random", seed=5, progress=False)
    emb_pca, emb_rnd = get_adapter(pca_model).embed_tokens().weight, get_adapter(rnd_model).embed_tokens().weight
    assert not torch.allclose(emb_pca, emb_rnd, atol=1e-2)  # other basis ...
    torch.testing.assert_close(_logits(rnd_model), _logits(pca_model), rtol=0, atol=1e-4)  # ... same function


# ---------------------------------------------------------------------------------------------- (d)
@pytest.mark.parametrize("model_type", ARCHS)
def test_save_load_round_trip(tmp_path, model_type):
    model = _model(model_type)
    model, info, loader = compress("slicegpt", model, None, CALIB, sparsity=0.25, progress=False)
    assert loader == "slicegpt"
    path = save_compressed(
        model, _tokenizer(), tmp_path / "m", method="slicegpt", info=info, loader=loader, write_weights=write_weights
    )
    assert sorted(p.suffix for p in path.glob("model*")) == [".safetensors"]
    loaded, tok, record = load_compressed(path, attn_implementation="eager")
    assert record["loader"] == "slicegpt" and record["info"]["new_width"] == 48
    assert type(loaded) is type(model)
    assert loaded.state_dict().keys() == model.state_dict().keys()
    torch.testing.assert_close(_logits(loaded), _logits(model), rtol=0, atol=0)
    assert parameter_counts(loaded, get_adapter(loaded)) == info["counts_after"]
    if model_type == "llama":  # a fresh process finds the loader without importing the method first
        code = (
            "import sys, torch, repro.llm as L; m, _, r = L.load_compressed(sys.argv[1], attn_implementation='eager');"
            "print(r['loader'], sum(p.numel() for p in m.parameters()))"
        )
        out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
        assert out.stdout.split() == ["slicegpt", str(sum(p.numel() for p in model.parameters()))]


# ---------------------------------------------------------------------------------------------- (e)
def _confine_residual(model: nn.Module, dim: int) -> None:
    """Make every write into the residual stream lie in one random ``dim``-dimensional subspace."""
    adapter = get_adapter(model)
    d = adapter.hidden_size
    basis, _ = torch.linalg.qr(torch.randn(d, dim, generator=torch.Generator().manual_seed(7)))
    proj = basis @ basis.T
    with torch.no_grad():
        for emb in (adapter.embed_tokens(), adapter.position_embeddings()):
            if emb is not None:
                emb.weight.copy_(emb.weight @ proj)
        for la in adapter.layers():
            for lin in (la.attention_output_linear(), la.mlp_output_linear()):
                lin.weight.copy_(proj @ lin.weight)
                if lin.bias is not None:
                    lin.bias.copy_(proj @ lin.bias)


@pytest.mark.parametrize("model_type", ARCHS)
def test_pca_keeps_a_low_dimensional_residual(model_type):
    confined = _model(model_type)
    _confine_residual(confined, 32)
    free = _model(model_type)
    refs = _logits(confined), _logits(free)
    for model in (confined, free):
        _, info = slicegpt(model, CALIB, sparsity=0.5, progress=False)
        assert info["new_width"] == 32
    assert (_logits(confined) - refs[0]).abs().max() < 1e-3  # the PCA found the 32-dim subspace
    assert (_logits(free) - refs[1]).abs().max() > 1e-2  # ... which a generic model does not have
    assert min(e["energy_kept"] for e in info["kept_energy"]) < 0.99


# ---------------------------------------------------------------------------------------------- errors
def test_post_ln_model_is_refused():
    model = tiny_model("opt_proj")
    with pytest.raises(ValueError, match=r"model_type 'opt'.*post-LN"):
        slicegpt(model, CALIB, sparsity=0.25, progress=False)
    with pytest.raises(ValueError, match="post-LN"):
        fuse_norms(copy.deepcopy(model))


def test_width_rounding_and_bad_settings():
    assert sliced_width(64, 0.25, 8) == 48
    assert sliced_width(576, 0.2, 8) == 456  # SmolLM2 (brief §11)
    assert sliced_width(576, 0.3, 8) == 400
    assert sliced_width(64, 0.0, 8) == 64
    with pytest.raises(ValueError, match="sparsity"):
        sliced_width(64, 1.0)
    with pytest.raises(ValueError, match="final_orientation"):
        slicegpt(_model("llama"), CALIB, sparsity=0.25, final_orientation="svd", progress=False)


# ---------------------------------------------------------------------------------------------- parameter target
SMALL_CALIB = torch.randint(0, 128, (4, 16), generator=torch.Generator().manual_seed(4))
SMOLLM2 = Path(__file__).resolve().parents[1] / "resources" / "models" / "smollm2-135m-instruct"


def _removed(model: nn.Module, convention: str = "total", slice_head: bool = False) -> dict[int, float]:
    """Brute force: predicted removed fraction of every width 8, 16, ..., 64 of a tiny model."""
    dense = parameter_counts(model, get_adapter(model))
    return {
        w: compression_ratio(dense, sliced_parameter_counts(model, w, slice_head=slice_head))[f"removed_{convention}"]
        for w in range(8, 65, 8)
    }


@pytest.mark.parametrize("model_type", ARCHS)
@pytest.mark.parametrize("sparsity", [0.25, 0.5])
@pytest.mark.parametrize("slice_head", [False, True])
def test_predicted_counts_equal_actual_counts(model_type, sparsity, slice_head):
    model = _model(model_type)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    dense = parameter_counts(model, get_adapter(model))
    width = sliced_width(64, sparsity)
    predicted = sliced_parameter_counts(model, width, slice_head=slice_head)
    # the prediction leaves the model alone (still tied, same weights, same norms)
    assert parameter_counts(model, get_adapter(model)) == dense
    assert all(torch.equal(v, state[k]) for k, v in model.state_dict().items())
    assert not isinstance(get_adapter(model).final_norm(), RMSN)
    assert predicted == _expected_sliced_counts(model_type, width, slice_head) | {
        "other": 0,
        "tied": 0,
        "num_layers": 3,
    }
    _, info = slicegpt(model, SMALL_CALIB, sparsity=sparsity, slice_head=slice_head, progress=False)
    assert info["new_width"] == width
    assert parameter_counts(model, get_adapter(model)) == predicted == info["counts_after"]


@pytest.mark.parametrize("model_type", ARCHS)
@pytest.mark.parametrize("convention", ["total", "blocks"])
def test_width_for_target_is_the_closest_candidate(model_type, convention):
    model = _model(model_type)
    removed = _removed(model, convention)
    for target in (0.0, 0.1, 0.2, 0.3, 0.45, 0.6):
        width, info = width_for_target(model, target, convention=convention)
        best = min(abs(r - target) for r in removed.values())
        assert abs(removed[width] - target) == pytest.approx(best, abs=1e-12), (target, width, removed)
        assert width == max(w for w, r in removed.items() if abs(abs(r - target) - best) < 1e-12)
        assert info["achieved_removed"] == pytest.approx(removed[width], abs=1e-15)
        assert info["predicted_counts"] == sliced_parameter_counts(model, width)
        assert info["sparsity"] == 1 - width / 64 and info["n_candidates"] == 8
        assert [width, info["predicted_counts"]["total"]] in [row[:2] for row in info["candidates"]]
    # an exact tie between two neighbours goes to the wider model
    midpoint = (removed[32] + removed[40]) / 2
    assert width_for_target(model, midpoint, convention=convention)[0] == 40


def test_width_for_target_round_to_and_slice_head():
    model = _model("opt")
    removed = _removed(model, slice_head=True)
    width, info = width_for_target(model, 0.35, slice_head=True)
    assert width == min(removed, key=lambda w: (abs(removed[w] - 0.35), -w)) and info["slice_head"] is True
    width16, info16 = width_for_target(model, 0.35, round_to=16)
    assert width16 % 16 == 0 and info16["n_candidates"] == 4


@pytest.mark.parametrize("model_type", ARCHS)
def test_slicegpt_at_a_parameter_target(model_type):
    model = _model(model_type)
    dense = parameter_counts(model, get_adapter(model))
    removed = _removed(model)
    target = 0.3
    _, info = slicegpt(model, SMALL_CALIB, target_removed=target, progress=False)
    width = info["new_width"]
    assert width == width_for_target(_model(model_type), target)[0]
    assert info["target_removed"] == target and info["convention"] == "total"
    assert info["sparsity"] == pytest.approx(1 - width / 64) and info["width_unrounded"] == width
    after = parameter_counts(model, get_adapter(model))
    assert info["predicted_counts"] == after == info["counts_after"] and info["predicted_matches"]
    assert info["counts_dense"] == dense
    actual = compression_ratio(dense, after)["removed_total"]
    assert actual == pytest.approx(info["target_search"]["achieved_removed"], abs=1e-12)
    step = max(abs(removed[w] - removed[w + 8]) for w in (width - 8, width) if w in removed and w + 8 in removed)
    assert abs(actual - target) <= step
    assert torch.isfinite(_logits(model)).all()


def test_slicegpt_target_blocks_convention():
    model = _model("gpt_neox")
    dense = parameter_counts(model, get_adapter(model))
    width = width_for_target(_model("gpt_neox"), 0.4, convention="blocks")[0]
    _, info = slicegpt(model, SMALL_CALIB, target_removed=0.4, convention="blocks", progress=False)
    assert info["new_width"] == width and info["convention"] == "blocks"
    assert info["removed"]["removed_blocks"] == pytest.approx(info["target_search"]["achieved_removed"])
    assert compression_ratio(dense, info["counts_after"])["removed_blocks"] == info["removed"]["removed_blocks"]


def test_parameter_target_bad_arguments():
    model = _model("llama")
    with pytest.raises(ValueError, match="exactly one of sparsity and target_removed"):
        slicegpt(model, SMALL_CALIB, sparsity=0.2, target_removed=0.2, progress=False)
    with pytest.raises(ValueError, match="exactly one of sparsity and target_removed"):
        slicegpt(model, SMALL_CALIB, progress=False)
    for bad in (1.0, -0.1, 1.5, float("nan")):
        with pytest.raises(ValueError, match=rf"target_removed must be in \[0, 1\), got {bad}"):
            width_for_target(model, bad)
        with pytest.raises(ValueError, match="target_removed"):
            slicegpt(model, SMALL_CALIB, target_removed=bad, progress=False)
    with pytest.raises(ValueError, match="target_removed must be a number"):
        width_for_target(model, "0.2")
    with pytest.raises(ValueError, match="convention must be one of .*'params'"):
        width_for_target(model, 0.2, convention="params")
    with pytest.raises(ValueError, match="convention must be one of"):
        slicegpt(model, SMALL_CALIB, target_removed=0.2, convention="params", progress=False)
    # the tiny llama removes at most 0.74 of its total parameters (width 8): 0.95 is unreachable
    with pytest.raises(ValueError, match=r"target_removed 0.95 is unreachable under convention 'total'"):
        width_for_target(model, 0.95)
    with pytest.raises(ValueError, match="round_to"):
        width_for_target(model, 0.2, round_to=0)
    with pytest.raises(ValueError, match="new_width"):
        sliced_parameter_counts(model, 0)
    with pytest.raises(ValueError, match="new_width"):
        sliced_parameter_counts(model, 65)
    with pytest.raises(ValueError, match="post-LN"):
        sliced_parameter_counts(tiny_model("opt_proj"), 32)
    with pytest.raises(ValueError, match="post-LN"):
        width_for_target(tiny_model("opt_proj"), 0.2)
    assert get_adapter(model).tied_embeddings and not isinstance(get_adapter(model).final_norm(), RMSN)


@pytest.mark.skipif(not (SMOLLM2 / "config.json").exists(), reason="SmolLM2 config not present")
def test_smollm2_predicted_counts_from_shapes_only():
    """Brief §11: the official sparsity 0.2 (width 456) gives 147.5 M > the tied dense 134.5 M; 0.3 gives 131.6 M."""
    from transformers import AutoConfig, AutoModelForCausalLM

    config = AutoConfig.from_pretrained(SMOLLM2, local_files_only=True)
    with torch.device("meta"):  # shapes only: no weights are read or allocated
        model = AutoModelForCausalLM.from_config(config)
    assert parameter_counts(model, get_adapter(model))["total"] == 134_515_008
    assert sliced_parameter_counts(model, 456)["total"] == 147_489_984
    assert sliced_parameter_counts(model, 400)["total"] == 131_641_088
    width, info = width_for_target(model, 0.2)
    assert (width, info["predicted_counts"]["total"]) == (312, 107_483_328)
    assert width_for_target(model, 0.3)[0] == 264
