"""Layer-by-layer calibration statistics (repro.llm.calibration) on the tiny models, on CPU.

Every statistic is checked against a direct computation from one ordinary forward pass of the full
model (``output_hidden_states`` plus hooks that record what each linear reads).  In transformers 5
``hidden_states`` has ``L + 1`` entries: entry ``l < L`` is the input of decoder layer ``l`` and the
last entry is the final output *after* the final norm (and OPT's ``project_out``), so the pre-norm
output of the last layer is taken from a forward hook on that layer.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from repro.llm.adapters import get_adapter  # noqa: E402
from repro.llm.calibration import (  # noqa: E402
    ALL_STATISTICS,
    CalibrationStatistics,
    calibration_batches,
    collect_statistics,
    layer_statistics,
    load_statistics,
    save_statistics,
)
from repro.llm.tiny import TINY_MODEL_TYPES, tiny_model  # noqa: E402

TYPES = list(TINY_MODEL_TYPES)  # llama, opt, opt_proj (post-LN), phi, gpt_neox
N_SAMPLES, SEQ_LEN = 5, 12
SMOLLM2 = Path(__file__).resolve().parents[1] / "resources" / "models" / "smollm2-135m-instruct"


def _ids(seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 128, (N_SAMPLES, SEQ_LEN), generator=gen)


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.detach().reshape(-1, x.shape[-1]).double()


def _cov(x: torch.Tensor) -> torch.Tensor:
    x = _flat(x)
    return x.T @ x


def assert_close(actual: torch.Tensor, expected: torch.Tensor, rtol: float = 1e-5) -> None:
    assert actual.dtype == expected.dtype
    scale = float(expected.abs().max()) if expected.numel() else 0.0
    torch.testing.assert_close(actual, expected, rtol=rtol, atol=rtol * scale + 1e-12)


@torch.no_grad()
def direct_reference(model, ids: torch.Tensor) -> dict:
    """Statistics from one full forward pass: hidden states, hooked linear inputs, last-layer output."""
    adapter = get_adapter(model)
    layers = adapter.layers()
    inputs: dict[tuple[int, str], torch.Tensor] = {}
    handles = []
    for la in layers:
        for name, lin in la.named_linears().items():

            def hook(mod, args, key=(la.index, name)):
                inputs[key] = args[0].detach()

            handles.append(lin.register_forward_pre_hook(hook))
    last: dict[str, torch.Tensor] = {}
    handles.append(layers[-1].layer.register_forward_hook(lambda m, a, out: last.__setitem__("out", out)))
    try:
        out = model(input_ids=ids, output_hidden_states=True, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    hs = out.hidden_states
    assert len(hs) == len(layers) + 1
    final = last["out"][0] if isinstance(last["out"], tuple) else last["out"]
    return {"hidden": list(hs[:-1]) + [final], "post_norm": hs[-1], "inputs": inputs, "logits": out.logits}


@pytest.fixture(scope="module", params=TYPES)
def case(request):
    model = tiny_model(request.param)
    ids = _ids()
    ref = direct_reference(model, ids)
    stats = collect_statistics(model, ids, batch_size=N_SAMPLES, progress=False, keep_final_hidden=True)
    return request.param, model, ids, ref, stats


# ---------------------------------------------------------------------------------------------- streaming
@torch.no_grad()
def test_streaming_reproduces_the_full_model(case):
    model_type, model, ids, ref, stats = case
    adapter = get_adapter(model)
    assert isinstance(stats, CalibrationStatistics) and stats.mode == "original"
    final = stats.final_hidden
    assert final.shape == (N_SAMPLES, SEQ_LEN, adapter.hidden_size)
    torch.testing.assert_close(final, ref["hidden"][-1], rtol=1e-5, atol=1e-5)
    # ... and through the final norm (absent for post-LN opt_proj) and project_out it is hidden_states[-1].
    post = final
    if adapter.final_norm() is not None:
        post = adapter.final_norm()(post)
    if adapter.project_out() is not None:
        post = adapter.project_out()(post)
    torch.testing.assert_close(post, ref["post_norm"], rtol=1e-5, atol=1e-5)
    # The hooks are gone and the model is unchanged.
    with torch.no_grad():
        logits = model(input_ids=ids, use_cache=False).logits
    torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=0)
    assert not model.training


def test_keys_shapes_and_float64(case):
    model_type, model, ids, ref, stats = case
    adapter = get_adapter(model)
    d, n_layers = adapter.hidden_size, adapter.num_layers
    assert stats["tokens"].dtype == torch.int64 and int(stats["tokens"]) == N_SAMPLES * SEQ_LEN
    assert stats["bi"].shape == (n_layers,)
    for la in adapter.layers():
        s = layer_statistics(stats, la.index)
        assert s["resid_in_cov"].shape == (d, d)
        assert s["attn_in_cov"].shape == (d, d)
        assert s["mlp_in_cov"].shape == (d, d)
        assert s["mlp_mid_cov"].shape == (la.intermediate_size,) * 2
        assert s["attn_mid_cov"].shape == (la.attention_output_linear().in_features,) * 2
        assert s["q_energy"].shape == (la.num_heads, la.head_dim)
        assert s["k_energy"].shape == (la.num_kv_heads, la.head_dim)
        wanda = {k.removeprefix("wanda.") for k in s if k.startswith("wanda.")}
        assert wanda == set(la.named_linears())
        for name, lin in la.named_linears().items():
            assert s[f"wanda.{name}"].shape == (lin.in_features,)
        for value in s.values():
            assert value.dtype == torch.float64 and value.device.type == "cpu" and value.is_contiguous()
    if model_type == "llama":
        assert stats["layers.0.k_energy"].shape[0] == 2 < stats["layers.0.q_energy"].shape[0]  # GQA


@torch.no_grad()
def test_covariances_match_direct_computation(case):
    model_type, model, ids, ref, stats = case
    adapter = get_adapter(model)
    hs, inputs = ref["hidden"], ref["inputs"]
    for la in adapter.layers():
        s = layer_statistics(stats, la.index)
        x = hs[la.index]
        assert_close(s["resid_in_cov"], _cov(x))
        norm = la.attention_input_norm()
        attn_in = norm(x) if norm is not None else x  # post-LN: the un-normed layer input
        assert_close(s["attn_in_cov"], _cov(attn_in))
        mlp_in = inputs[(la.index, _name(la, la.mlp_input_linears()[0]))]
        assert_close(s["mlp_in_cov"], _cov(mlp_in))
        if la.parallel_residual:  # both branches read the layer input
            assert_close(s["mlp_in_cov"], _cov(la.mlp_input_norm()(x)))
        elif la.pre_norm:
            assert_close(s["mlp_in_cov"], _cov(la.mlp_input_norm()(_mlp_norm_input(la, inputs, x))))
        mid = inputs[(la.index, _name(la, la.mlp_output_linear()))]
        assert_close(s["mlp_mid_cov"], _cov(mid))
        attn_mid = inputs[(la.index, _name(la, la.attention_output_linear()))]
        assert_close(s["attn_mid_cov"], _cov(attn_mid))
        if model_type == "phi":
            assert torch.equal(s["mlp_in_cov"], s["attn_in_cov"])
        if not la.pre_norm:
            assert model_type == "opt_proj"
            assert torch.equal(s["attn_in_cov"], s["resid_in_cov"])


def _name(la, module) -> str:
    return next(name for name, lin in la.named_linears().items() if lin is module)


def _mlp_norm_input(la, inputs, x):
    """Sequential pre-LN block: the MLP norm reads ``x + attention_output``."""
    attn_out_lin = la.attention_output_linear()
    attn = attn_out_lin(inputs[(la.index, _name(la, attn_out_lin))])
    return x + attn.reshape(x.shape)


@torch.no_grad()
def test_wanda_and_qk_energies_match_direct_computation(case):
    model_type, model, ids, ref, stats = case
    adapter = get_adapter(model)
    for la in adapter.layers():
        s = layer_statistics(stats, la.index)
        for name in la.named_linears():
            x = _flat(ref["inputs"][(la.index, name)])
            assert_close(s[f"wanda.{name}"], x.square().sum(0))
        norm = la.attention_input_norm()
        x = ref["hidden"][la.index]
        q, k, _ = la.qkv(norm(x) if norm is not None else x)
        assert_close(s["q_energy"], q.reshape(-1, *q.shape[-2:]).double().square().sum(0))
        assert_close(s["k_energy"], k.reshape(-1, *k.shape[-2:]).double().square().sum(0))


def test_block_influence_matches_direct_computation(case):
    model_type, model, ids, ref, stats = case
    hs = ref["hidden"]
    expected = torch.stack(
        [1 - F.cosine_similarity(_flat(hs[i]), _flat(hs[i + 1]), dim=-1).mean() for i in range(len(hs) - 1)]
    )
    assert stats["bi"].dtype == torch.float64
    assert bool(((stats["bi"] >= 0) & (stats["bi"] <= 2)).all())
    torch.testing.assert_close(stats["bi"], expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("model_type", TYPES)
def test_result_is_independent_of_batch_size(model_type):
    model = tiny_model(model_type)
    ids = _ids(1)
    one = collect_statistics(model, ids, batch_size=1, progress=False)
    three = collect_statistics(model, ids, batch_size=3, progress=False)  # batches of 3 and 2
    assert set(one) == set(three)
    for key in one:
        if key == "tokens":
            assert torch.equal(three[key], one[key])
        else:
            assert_close(three[key], one[key])


def test_which_selects_statistics_and_rejects_unknown_names():
    model = tiny_model("phi")
    stats = collect_statistics(model, _ids(), batch_size=2, which={"mlp_in_cov", "bi"}, progress=False)
    assert set(stats) == {"bi", "tokens"} | {f"layers.{i}.mlp_in_cov" for i in range(3)}
    full = collect_statistics(model, _ids(), batch_size=2, which=ALL_STATISTICS, progress=False)
    for i in range(3):
        torch.testing.assert_close(stats[f"layers.{i}.mlp_in_cov"], full[f"layers.{i}.mlp_in_cov"])
    assert stats.tokens_per_s > 0 and stats.elapsed_s > 0
    with pytest.raises(ValueError, match="unknown statistics"):
        collect_statistics(model, _ids(), batch_size=2, which={"attn_cov"}, progress=False)


# ---------------------------------------------------------------------------------------------- sequential
def _zero_mlp_output(la) -> None:
    lin = la.mlp_output_linear()
    lin.weight.data.zero_()
    if lin.bias is not None:
        lin.bias.data.zero_()


@pytest.mark.parametrize("model_type", TYPES)
def test_sequential_mode_propagates_through_transformed_layers(model_type):
    model = tiny_model(model_type)
    ids = _ids(2)
    original = collect_statistics(model, ids, batch_size=2, progress=False)

    seq_model = copy.deepcopy(model)
    calls = []

    def transform(idx, la, layer_stats):
        calls.append((idx, set(layer_stats)))
        assert la.index == idx and la.layer is get_adapter(seq_model).decoder_layers_container()[idx]
        assert int(layer_stats["tokens"]) == N_SAMPLES * SEQ_LEN
        if idx == 0:
            torch.testing.assert_close(layer_stats["bi"], original["bi"][0])
            _zero_mlp_output(la)

    sequential = collect_statistics(seq_model, ids, batch_size=2, progress=False, transform_layer=transform)
    assert sequential.mode == "sequential"
    assert [c[0] for c in calls] == [0, 1, 2]
    la0 = get_adapter(seq_model).layer(0)
    expected_keys = {"tokens", "bi"} | (ALL_STATISTICS - {"wanda_norms", "bi"})
    expected_keys |= {f"wanda.{name}" for name in la0.named_linears()}
    assert calls[0][1] == expected_keys

    # Layer 0's statistics are taken before its transform: those of the original model.
    for key, value in layer_statistics(original, 0).items():
        torch.testing.assert_close(sequential[f"layers.0.{key}"], value, rtol=0, atol=0)
    # The next layer sees the transformed layer 0.
    assert not torch.allclose(sequential["layers.1.resid_in_cov"], original["layers.1.resid_in_cov"])
    assert not torch.allclose(sequential["layers.1.mlp_mid_cov"], original["layers.1.mlp_mid_cov"])

    # ... and equals the statistics of a model modified up front (except layer 0's own BI, measured
    # before the transform in sequential mode).
    upfront = tiny_model(model_type)
    _zero_mlp_output(get_adapter(upfront).layer(0))
    modified = collect_statistics(upfront, ids, batch_size=2, progress=False)
    assert set(modified) == set(sequential)
    for key in modified:
        if key.startswith("layers.0."):
            continue
        if key == "bi":
            assert_close(sequential["bi"][1:], modified["bi"][1:])
            assert sequential["bi"][0] == original["bi"][0]
        elif key == "tokens":
            assert torch.equal(sequential[key], modified[key])
        else:
            assert_close(sequential[key], modified[key])


def test_transform_may_replace_the_layer_module():
    model = tiny_model("llama")
    ids = _ids(3)
    ref = copy.deepcopy(model)
    _zero_mlp_output(get_adapter(ref).layer(1))
    expected = collect_statistics(ref, ids, batch_size=5, progress=False)

    def transform(idx, la, layer_stats):
        if idx == 1:
            new = copy.deepcopy(la.layer)
            _zero_mlp_output(type(la)(new, idx, la.parent))
            la.parent.decoder_layers_container()[idx] = new

    got = collect_statistics(model, ids, batch_size=5, progress=False, transform_layer=transform)
    assert_close(got["layers.2.resid_in_cov"], expected["layers.2.resid_in_cov"])


# ---------------------------------------------------------------------------------------------- I/O
def test_save_load_round_trip(tmp_path):
    model = tiny_model("gpt_neox")
    stats = collect_statistics(model, _ids(), batch_size=2, progress=False)
    meta = {"model": "tiny-gpt_neox", "n_samples": N_SAMPLES, "seq_len": SEQ_LEN, "seed": 0, "which": ALL_STATISTICS}
    path = tmp_path / "sub" / "calib.safetensors"
    save_statistics(stats, path, meta)
    assert path.exists() and [p.name for p in path.parent.iterdir()] == ["calib.safetensors"]
    loaded, loaded_meta = load_statistics(path)
    assert set(loaded) == set(stats)
    for key, value in stats.items():
        assert loaded[key].dtype == value.dtype
        torch.testing.assert_close(loaded[key], value, rtol=0, atol=0)
    assert loaded_meta["model"] == "tiny-gpt_neox"
    assert loaded_meta["n_samples"] == N_SAMPLES and loaded_meta["seq_len"] == SEQ_LEN and loaded_meta["seed"] == 0
    assert loaded_meta["which"] == sorted(ALL_STATISTICS)
    assert loaded_meta["tokens"] == N_SAMPLES * SEQ_LEN
    assert loaded_meta["dtype"] == "float64"
    assert loaded_meta["mode"] == "original"


# ---------------------------------------------------------------------------------------------- batches
def _char_tokenizer(text: str, add_special_tokens: bool = True) -> dict:
    ids = [ord(c) % 128 for c in text]
    return {"input_ids": ([0] if add_special_tokens else []) + ids}


TEXT = "It is a truth universally acknowledged, that a single man in possession of a good fortune. " * 3


def test_calibration_batches_are_deterministic_windows():
    a = calibration_batches(_char_tokenizer, TEXT, n_samples=6, seq_len=20, seed=7)
    b = calibration_batches(_char_tokenizer, TEXT, n_samples=6, seq_len=20, seed=7)
    c = calibration_batches(_char_tokenizer, TEXT, n_samples=6, seq_len=20, seed=8)
    assert a.shape == (6, 20) and a.dtype == torch.long
    assert torch.equal(a, b) and not torch.equal(a, c)
    full = torch.tensor(_char_tokenizer(TEXT, add_special_tokens=False)["input_ids"])
    windows = full.unfold(0, 20, 1)
    for row in a:
        assert bool((windows == row).all(1).any())  # every row is a contiguous window of the text
    # The whole text is usable, including the last window.
    exact = calibration_batches(_char_tokenizer, TEXT[:20], n_samples=2, seq_len=20, seed=0)
    assert torch.equal(exact[0], full[:20]) and torch.equal(exact[1], full[:20])


def test_calibration_batches_reject_short_text():
    with pytest.raises(ValueError, match="too short"):
        calibration_batches(_char_tokenizer, "short text", n_samples=2, seq_len=64, seed=0)
    with pytest.raises(ValueError, match="positive"):
        calibration_batches(_char_tokenizer, TEXT, n_samples=0, seq_len=8, seed=0)


@pytest.mark.skipif(not (SMOLLM2 / "tokenizer.json").exists(), reason="SmolLM2 tokenizer not present")
def test_calibration_batches_with_a_real_tokenizer():
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(SMOLLM2, local_files_only=True)
    batches = calibration_batches(tok, TEXT * 4, n_samples=3, seq_len=16, seed=1)
    assert batches.shape == (3, 16)
    assert torch.equal(batches, calibration_batches(tok, TEXT * 4, n_samples=3, seq_len=16, seed=1))
    for row in batches:
        assert tok.decode(row) in TEXT * 4  # a window of the text, no special tokens
