"""Wanda (unstructured and N:M), ShortGPT and the method registry on the tiny models, on CPU.

Each check is against a direct computation from ordinary forward passes of the full model (hooks on
the linears' inputs, or on the decoder layers' inputs and outputs), not against the calibration
code the methods use.
"""

from __future__ import annotations

import copy
import logging

import pytest
import torch
from torch.nn import functional as F

pytest.importorskip("transformers")
pytest.importorskip("safetensors")

from tokenizers import Tokenizer, models, pre_tokenizers  # noqa: E402
from transformers import PreTrainedTokenizerFast  # noqa: E402

from repro.kernels.nm_sparsity import nm_check  # noqa: E402
from repro.llm.adapters import get_adapter  # noqa: E402
from repro.llm.calibration import ALL_STATISTICS, collect_statistics  # noqa: E402
from repro.llm.compressed import load_compressed, save_compressed  # noqa: E402
from repro.llm.methods import registry  # noqa: E402
from repro.llm.methods import shortgpt as shortgpt_module  # noqa: E402
from repro.llm.methods import wanda as wanda_module  # noqa: E402
from repro.llm.methods.shortgpt import choose_n_layers, layer_order, shortgpt  # noqa: E402
from repro.llm.methods.wanda import parse_pattern, semi_structured, wanda  # noqa: E402
from repro.llm.params import layer_parameter_counts, parameter_counts  # noqa: E402
from repro.llm.tiny import TINY_MODEL_TYPES, tiny_model  # noqa: E402

TYPES = list(TINY_MODEL_TYPES)  # llama, opt, opt_proj (post-LN), phi, gpt_neox
N_SAMPLES, SEQ_LEN = 4, 16


def _ids(seed: int = 0, n: int = N_SAMPLES) -> torch.Tensor:
    return torch.randint(0, 120, (n, SEQ_LEN), generator=torch.Generator().manual_seed(seed))


def _tokenizer() -> PreTrainedTokenizerFast:
    vocab = {f"t{i}": i for i in range(120)} | {"<unk>": 120}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="<unk>")


def _linears(model) -> dict[tuple[int, str], torch.nn.Linear]:
    return {(la.index, name): lin for la in get_adapter(model).layers() for name, lin in la.named_linears().items()}


@torch.no_grad()
def direct_sq_norms(model, ids: torch.Tensor) -> dict[tuple[int, str], torch.Tensor]:
    """``sum_t x_tj^2`` (float64) of the input of every decoder linear, from one full forward pass."""
    sums: dict[tuple[int, str], torch.Tensor] = {}
    handles = []
    for key, lin in _linears(model).items():

        def hook(mod, args, key=key):
            x = args[0].detach().reshape(-1, args[0].shape[-1]).double()
            sums[key] = x.square().sum(0)

        handles.append(lin.register_forward_pre_hook(hook))
    try:
        model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return sums


def assert_lowest_pruned(original: torch.Tensor, pruned: torch.Tensor, sq_norms: torch.Tensor, group: int) -> None:
    """In every group of ``group`` consecutive columns of a row (``group = in`` for unstructured) half the
    weights are zero, and they are the lowest-score ones: max pruned score <= min kept score."""
    rows, cols = original.shape
    assert (original != 0).all(), "the test needs a dense original"
    score = (original.double().abs() * sq_norms.double().sqrt()).reshape(rows, cols // group, group)
    zero = (pruned == 0).reshape(rows, cols // group, group)
    assert (zero.sum(-1) == group // 2).all()
    max_pruned = score.masked_fill(~zero, float("-inf")).amax(-1)
    min_kept = score.masked_fill(zero, float("inf")).amin(-1)
    assert (max_pruned <= min_kept * (1 + 1e-6)).all()
    # the kept weights are unchanged
    assert torch.equal(pruned[pruned != 0], original[pruned != 0])


# ---------------------------------------------------------------------------------------------- Wanda
@pytest.mark.parametrize("model_type", TYPES)
def test_wanda_2_4_every_group_of_four_has_two_zeros(model_type):
    original = tiny_model(model_type)
    model, info = wanda(copy.deepcopy(original), _ids(), pattern="2:4", progress=False)
    before, after = _linears(original), _linears(model)
    assert before.keys() == after.keys() and len(after) == info["pruned_linears"]
    for key, lin in after.items():
        w = lin.weight
        assert w.shape == before[key].weight.shape  # dense shape unchanged
        zeros = (w == 0).reshape(w.shape[0], -1, 4).sum(-1)
        assert (zeros == 2).all(), key  # acceptance: exactly two zeros in every group of four
        assert nm_check(w != 0, 2, 4)
        if lin.bias is not None:
            assert torch.equal(lin.bias, before[key].bias)  # biases are not pruned
    # the first layer's inputs do not depend on pruning: its zeros are the lowest scores of each group
    norms = direct_sq_norms(original, _ids())
    for (layer, name), lin in after.items():
        if layer == 0:
            assert_lowest_pruned(before[(0, name)].weight, lin.weight, norms[(0, name)], group=4)
    # embeddings and LM head untouched; parameter counts
    adapter, orig_adapter = get_adapter(model), get_adapter(original)
    assert torch.equal(adapter.embed_tokens().weight, orig_adapter.embed_tokens().weight)
    assert torch.equal(adapter.lm_head().weight, orig_adapter.lm_head().weight)
    linear_weights = sum(lin.weight.numel() for lin in after.values())
    assert info["pattern"] == "2:4" and (info["n"], info["m"]) == (2, 4)
    assert info["achieved_sparsity"] == 0.5 and info["pruned_weights"] == linear_weights
    assert info["counts_dense"] == parameter_counts(original, orig_adapter)
    assert info["counts_dense"]["total"] == parameter_counts(model, adapter)["total"]
    assert info["counts_nonzero"] == parameter_counts(model, adapter, nonzero=True)
    assert info["counts_nonzero_before"]["total"] - info["counts_nonzero"]["total"] == linear_weights // 2


def test_wanda_4_8_pattern():
    model, info = wanda(tiny_model("llama"), _ids(), pattern="4:8", progress=False)
    for lin in _linears(model).values():
        assert ((lin.weight == 0).reshape(lin.weight.shape[0], -1, 8).sum(-1) == 4).all()
    assert info["pattern"] == "4:8" and info["achieved_sparsity"] == 0.5


@pytest.mark.parametrize("model_type", TYPES)
def test_wanda_unstructured_prunes_lowest_half_of_each_row(model_type):
    original = tiny_model(model_type)
    model, info = wanda(copy.deepcopy(original), _ids(), sparsity=0.5, progress=False)
    before = _linears(original)
    for key, lin in _linears(model).items():
        w = lin.weight
        assert w.shape == before[key].weight.shape
        assert ((w == 0).sum(1) == w.shape[1] // 2).all(), key  # per-row count
    norms = direct_sq_norms(original, _ids())
    for (layer, name), lin in _linears(model).items():
        if layer == 0:  # inputs independent of pruning: compare with the direct scores
            assert_lowest_pruned(before[(0, name)].weight, lin.weight, norms[(0, name)], group=lin.in_features)
    assert info["pattern"] == "unstructured" and info["sparsity"] == 0.5 and info["achieved_sparsity"] == 0.5


@pytest.mark.parametrize("model_type", TYPES)
def test_wanda_statistics_are_sequential(model_type):
    """Layer 1 is scored on the outputs of the pruned layer 0, not on those of the dense model."""
    original = tiny_model(model_type)
    ids = _ids()
    model, info = wanda(copy.deepcopy(original), ids, sparsity=0.5, progress=False, return_statistics=True)
    stats = info.pop("statistics")
    assert stats.mode == "sequential"
    # direct recomputation: the dense model with only layer 0 replaced by its pruned version
    only_first = copy.deepcopy(original)
    for (layer, name), lin in _linears(only_first).items():
        if layer == 0:
            lin.weight.data.copy_(_linears(model)[(0, name)].weight)
    seq_norms = direct_sq_norms(only_first, ids)
    dense_norms = direct_sq_norms(original, ids)
    names = [name for (layer, name) in _linears(original) if layer == 1]
    assert names
    for name in names:
        used = stats[f"layers.1.wanda.{name}"]
        expected = seq_norms[(1, name)]
        torch.testing.assert_close(used, expected, rtol=1e-5, atol=1e-8 * float(expected.max()))
        rel = (used - dense_norms[(1, name)]).abs().max() / dense_norms[(1, name)].max()
        assert rel > 1e-3, f"{name}: sequential norms equal the dense ones"
        orig_w = _linears(original)[(1, name)].weight
        assert_lowest_pruned(orig_w, _linears(model)[(1, name)].weight, expected, group=orig_w.shape[1])
    # layer 0 statistics are those of the dense model
    for name in names:
        torch.testing.assert_close(stats[f"layers.0.wanda.{name}"], dense_norms[(0, name)], rtol=1e-5, atol=1e-9)


def _cached(model, ids: torch.Tensor):
    """What the pipeline's calibration rule saves: every statistic of the original model."""
    return collect_statistics(model, ids, batch_size=4, which=ALL_STATISTICS, progress=False)


def _no_pass(*args, **kwargs):
    raise AssertionError("a calibration pass ran although cached statistics were given")


@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("settings", [{"pattern": "2:4"}, {"sparsity": 0.5}])
def test_wanda_original_calibration_with_and_without_cache(monkeypatch, model_type, settings):
    original = tiny_model(model_type)
    ids = _ids()
    stats = _cached(original, ids)
    fresh, info_fresh = wanda(copy.deepcopy(original), ids, calibration="original", progress=False, **settings)
    sequential, _ = wanda(copy.deepcopy(original), ids, progress=False, **settings)
    with monkeypatch.context() as patch:
        patch.setattr(wanda_module, "collect_statistics", _no_pass)
        cached, info_cached = wanda(
            copy.deepcopy(original), None, calibration="original", statistics=stats, progress=False, **settings
        )
    assert info_fresh["calibration"]["mode"] == info_cached["calibration"]["mode"] == "original"
    assert (info_fresh["calibration"]["source"], info_cached["calibration"]["source"]) == ("pass", "statistics")
    assert info_cached["calibration"]["tokens"] == N_SAMPLES * SEQ_LEN
    before, with_cache, without, seq = (_linears(m) for m in (original, cached, fresh, sequential))
    dense_norms = direct_sq_norms(original, ids)  # every layer scored on the unpruned model's inputs
    group = 4 if "pattern" in settings else None
    differs = False
    for key, lin in with_cache.items():
        assert torch.equal(lin.weight == 0, without[key].weight == 0), key  # identical masks
        assert torch.equal(lin.weight, without[key].weight), key
        w = lin.weight
        if group:
            assert ((w == 0).reshape(w.shape[0], -1, 4).sum(-1) == 2).all(), key  # still 2:4
            assert nm_check(w != 0, 2, 4)
        assert_lowest_pruned(before[key].weight, w, dense_norms[key], group=group or w.shape[1])
        if key[0] == 0:  # layer 0 reads the same inputs in both modes
            assert torch.equal(w == 0, seq[key].weight == 0), key
        else:
            differs |= not torch.equal(w == 0, seq[key].weight == 0)
    assert differs, "original and sequential calibration gave the same masks in every later layer"
    assert info_cached["achieved_sparsity"] == info_fresh["achieved_sparsity"] == 0.5
    for key in ("counts_nonzero", "per_linear", "zeros"):
        assert info_cached[key] == info_fresh[key]


def test_wanda_calibration_settings_are_validated():
    model = tiny_model("llama")
    ids = _ids()
    stats = _cached(model, ids)
    with pytest.raises(ValueError, match="calibration must be one of"):
        wanda(model, ids, calibration="dense", progress=False)
    with pytest.raises(ValueError, match="calibration='original'"):
        wanda(model, ids, statistics=stats, progress=False)  # sequential cannot use original-model norms
    with pytest.raises(ValueError, match="needs calibration_ids"):
        wanda(model, None, calibration="original", progress=False)
    partial = {k: v for k, v in stats.items() if k != "layers.1.wanda.mlp.down_proj"}
    with pytest.raises(ValueError, match=r"lack 1 Wanda norms: layers\.1\.wanda\.mlp\.down_proj"):
        wanda(model, None, calibration="original", statistics=partial, progress=False)
    no_norms = {k: v for k, v in stats.items() if ".wanda." not in k}
    with pytest.raises(ValueError, match=r"layers\.0\.wanda\.self_attn\.q_proj.*and \d+ more"):
        wanda(model, None, calibration="original", statistics=no_norms, progress=False)
    other = _cached(tiny_model("llama", intermediate_size=64), ids)
    with pytest.raises(ValueError, match=r"layers\.0\.wanda\.mlp\.down_proj \(64,\) != \(128,\)"):
        wanda(model, None, calibration="original", statistics=other, progress=False)
    assert all((lin.weight != 0).all() for lin in _linears(model).values())  # nothing was pruned


def test_wanda_settings_are_validated():
    model = tiny_model("llama")
    with pytest.raises(ValueError, match="not both"):
        wanda(model, _ids(), sparsity=0.5, pattern="2:4", progress=False)
    with pytest.raises(ValueError, match="N:M"):
        wanda(model, _ids(), pattern="2-4", progress=False)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        wanda(model, _ids(), sparsity=1.5, progress=False)
    with pytest.raises(ValueError, match="divisible by 48"):
        wanda(model, _ids(), pattern="2:48", progress=False)
    assert parse_pattern(" 4 : 8 ") == (4, 8)
    with pytest.raises(ValueError, match="0 < N < M"):
        parse_pattern("4:4")
    assert all((lin.weight != 0).all() for lin in _linears(model).values())  # nothing was pruned


def test_semi_structured_refuses_cpu_and_says_why(caplog):
    model, _ = wanda(tiny_model("llama"), _ids(), pattern="2:4", progress=False)
    with caplog.at_level(logging.INFO, logger="repro.llm.methods.wanda"):
        assert semi_structured(model) is False
    assert "need CUDA" in caplog.text
    assert all(type(lin.weight) is torch.nn.Parameter for lin in _linears(model).values())


# ---------------------------------------------------------------------------------------------- ShortGPT
def _hidden_in(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def _hidden_out(out) -> torch.Tensor:
    return out[0] if isinstance(out, (tuple, list)) else out


@torch.no_grad()
def direct_bi(model, ids: torch.Tensor) -> torch.Tensor:
    """``1 - mean_t cos(h_l, h_{l+1})`` from hooks on every decoder layer of one full forward pass."""
    layers = get_adapter(model).decoder_layers_container()
    bi = torch.zeros(len(layers), dtype=torch.float64)
    handles = []
    for i, layer in enumerate(layers):

        def hook(mod, args, kwargs, out, i=i):
            x, y = _hidden_in(args, kwargs).double(), _hidden_out(out).double()
            x, y = x.reshape(-1, x.shape[-1]), y.reshape(-1, y.shape[-1])
            bi[i] = 1 - F.cosine_similarity(x, y, dim=-1).mean()

        handles.append(layer.register_forward_hook(hook, with_kwargs=True))
    try:
        model(input_ids=ids, use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return bi


@torch.no_grad()
def logits_skipping(model, ids: torch.Tensor, skip: list[int]) -> torch.Tensor:
    """Logits of ``model`` with the decoder layers ``skip`` replaced by identities (forward hooks)."""
    layers = get_adapter(model).decoder_layers_container()
    handles = []
    for i in skip:

        def hook(mod, args, kwargs, out):
            h = _hidden_in(args, kwargs)
            return (h, *out[1:]) if isinstance(out, (tuple, list)) else h

        handles.append(layers[i].register_forward_hook(hook, with_kwargs=True))
    try:
        return model(input_ids=ids, use_cache=False).logits
    finally:
        for h in handles:
            h.remove()


@pytest.mark.parametrize("model_type", TYPES)
def test_shortgpt_removes_lowest_bi_layers_and_equals_skipping_them(model_type):
    original = tiny_model(model_type, num_hidden_layers=4)
    ids = _ids()
    bi = direct_bi(original, ids)
    model, info = shortgpt(copy.deepcopy(original), ids, n_layers=2, progress=False)
    torch.testing.assert_close(torch.tensor(info["bi"], dtype=torch.float64), bi, rtol=1e-6, atol=1e-9)
    expected = sorted(torch.argsort(bi)[:2].tolist())
    assert info["removed_layers"] == expected and info["n_removed"] == 2
    assert info["kept_layers"] == [i for i in range(4) if i not in expected]
    assert get_adapter(model).num_layers == 2 and model.config.num_hidden_layers == 2
    test_ids = _ids(seed=1, n=2)
    with torch.no_grad():
        got = model(input_ids=test_ids, use_cache=False).logits
    torch.testing.assert_close(got, logits_skipping(original, test_ids, expected), rtol=0, atol=1e-6)
    counts = info["counts_after"]
    assert counts == parameter_counts(model, get_adapter(model))
    per_layer = layer_parameter_counts(get_adapter(original))
    assert info["counts_before"]["total"] - counts["total"] == sum(per_layer[i] for i in expected)


def test_shortgpt_ratio_search_picks_closest_n_hand_computed():
    # tiny llama: q 64x64 + k, v 64x32 + o 64x64 + gate/up/down 3x64x128 + 2 norms of 64 = 36992 per layer;
    # tied embedding 128x64 = 8192, final norm 64: total 3*36992 + 8192 + 64 = 119232, blocks 110976.
    model = tiny_model("llama")
    adapter = get_adapter(model)
    counts = parameter_counts(model, adapter)
    assert layer_parameter_counts(adapter) == [36992] * 3
    assert (counts["total"], counts["blocks"]) == (119232, 110976)
    # removed fractions: total 0, 0.3103, 0.6205; blocks 0, 1/3, 2/3
    order, per_layer = [2, 0, 1], [36992] * 3
    assert choose_n_layers(order, per_layer, 119232, 0.16)[0] == 1  # |0.16| > |0.3103 - 0.16| = 0.1503
    assert choose_n_layers(order, per_layer, 110976, 0.16)[0] == 0  # |0.16| < |0.3333 - 0.16| = 0.1733
    assert choose_n_layers(order, per_layer, 119232, 0.5)[0] == 2  # |0.5 - 0.6205| < |0.5 - 0.3103|
    assert choose_n_layers(order, per_layer, 110976, 1 / 6)[0] == 0  # exact tie: fewer layers
    assert choose_n_layers(order, per_layer, 119232, 0.99)[0] == 2  # at least one layer stays
    # unequal layers, tie up to float rounding (0.35 - 0.3 vs 0.4 - 0.35): fewer layers
    n, fractions = choose_n_layers([2, 0, 1], [10, 20, 30], 100, 0.35)
    assert fractions == pytest.approx([0.0, 0.3, 0.4]) and n == 1

    ids = _ids()
    m_total, info_total = shortgpt(copy.deepcopy(model), ids, ratio=0.16, convention="total", progress=False)
    assert info_total["n_removed"] == 1 and info_total["target_ratio"] == 0.16
    assert info_total["achieved_ratio"] == pytest.approx(36992 / 119232)
    assert info_total["removed_layers"] == [layer_order(info_total["bi"])[0]]
    m_blocks, info_blocks = shortgpt(copy.deepcopy(model), ids, ratio=0.16, convention="blocks", progress=False)
    assert info_blocks["n_removed"] == 0 and info_blocks["achieved_ratio"] == 0.0
    assert get_adapter(m_blocks).num_layers == 3


@pytest.mark.parametrize("model_type", TYPES)
def test_shortgpt_cached_statistics_give_the_same_result(monkeypatch, model_type):
    original = tiny_model(model_type, num_hidden_layers=4)
    ids = _ids()
    stats = _cached(original, ids)
    fresh, info_fresh = shortgpt(copy.deepcopy(original), ids, ratio=0.4, progress=False)
    with monkeypatch.context() as patch:
        patch.setattr(shortgpt_module, "collect_statistics", _no_pass)
        cached, info_cached = shortgpt(copy.deepcopy(original), None, ratio=0.4, statistics=stats, progress=False)
    assert info_cached["bi"] == info_fresh["bi"]  # BI of the original model both times, bit for bit
    for key in ("removal_order", "removed_layers", "kept_layers", "n_removed", "achieved_ratio", "counts_after"):
        assert info_cached[key] == info_fresh[key], key
    assert info_cached["n_removed"] >= 1
    assert info_cached["calibration"]["source"] == "statistics" and info_fresh["calibration"]["source"] == "pass"
    assert info_cached["calibration"]["mode"] == "original" == info_fresh["calibration"]["mode"]
    assert fresh.state_dict().keys() == cached.state_dict().keys()
    assert all(torch.equal(v, cached.state_dict()[k]) for k, v in fresh.state_dict().items())
    test_ids = _ids(seed=1, n=2)
    with torch.no_grad():
        torch.testing.assert_close(cached(input_ids=test_ids).logits, fresh(input_ids=test_ids).logits, rtol=0, atol=0)


def test_shortgpt_cached_statistics_are_validated():
    model = tiny_model("phi")
    stats = _cached(model, _ids())
    with pytest.raises(ValueError, match="no 'bi' entry"):
        shortgpt(model, None, n_layers=1, statistics={k: v for k, v in stats.items() if k != "bi"}, progress=False)
    with pytest.raises(ValueError, match="'bi' has 2 entries but the model has 3 layers"):
        shortgpt(model, None, n_layers=1, statistics={**stats, "bi": stats["bi"][:2]}, progress=False)
    with pytest.raises(ValueError, match="needs calibration_ids or cached statistics"):
        shortgpt(model, None, n_layers=1, progress=False)
    assert get_adapter(model).num_layers == 3


def test_shortgpt_settings_are_validated():
    model = tiny_model("opt")
    with pytest.raises(ValueError, match="exactly one"):
        shortgpt(model, _ids(), ratio=0.2, n_layers=1, progress=False)
    with pytest.raises(ValueError, match="exactly one"):
        shortgpt(model, _ids(), progress=False)
    with pytest.raises(ValueError, match="convention"):
        shortgpt(model, _ids(), ratio=0.2, convention="params", progress=False)
    with pytest.raises(ValueError, match=r"n_layers must be an integer in \[0, 2\]"):
        shortgpt(model, _ids(), n_layers=3, progress=False)
    assert get_adapter(model).num_layers == 3


# ---------------------------------------------------------------------------------------------- materialisation
@pytest.mark.parametrize("model_type", TYPES)
@pytest.mark.parametrize("kind,settings", [("wanda", {"pattern": "2:4"}), ("shortgpt", {"n_layers": 1})])
def test_save_load_round_trip_gives_identical_logits(tmp_path, model_type, kind, settings):
    model, info, loader = registry.compress(
        kind, tiny_model(model_type), None, _ids(), progress=False, batch_size=3, **settings
    )
    assert loader == "hf" and info["method"] == kind
    save_compressed(model, _tokenizer(), tmp_path / "m", method=kind, info=info, loader=loader)
    loaded, _, record = load_compressed(tmp_path / "m", attn_implementation="eager")
    assert record["loader"] == "hf" and record["method"] == kind
    assert (
        record["info"]["counts_dense" if kind == "wanda" else "counts_after"]["total"]
        == parameter_counts(loaded, get_adapter(loaded))["total"]
    )
    assert parameter_counts(loaded, get_adapter(loaded), nonzero=True) == parameter_counts(
        model, get_adapter(model), nonzero=True
    )
    ids = _ids(seed=2, n=2)
    with torch.no_grad():
        torch.testing.assert_close(loaded(input_ids=ids).logits, model(input_ids=ids).logits, rtol=0, atol=0)


# ---------------------------------------------------------------------------------------------- registry
def test_registry_dispatch_and_errors(monkeypatch):
    assert set(registry.METHODS) == {
        "dense",
        "wanda",
        "shortgpt",
        "slicegpt",
        "modegpt",
        "disp_llm",
        "sparsegpt",
        "svd_llm",
    }
    assert registry.METHODS["slicegpt"] == "repro.llm.methods.slicegpt:slicegpt"
    with pytest.raises(
        ValueError, match="allowed kinds: dense, disp_llm, modegpt, shortgpt, slicegpt, sparsegpt, svd_llm, wanda"
    ):
        registry.compress("magnitude", tiny_model("phi"), None, _ids())
    model = tiny_model("phi")
    same, info, loader = registry.compress("dense", model, None, None)
    assert same is model and loader == "hf" and info["counts_dense"] == parameter_counts(model, get_adapter(model))
    with pytest.raises(ValueError, match="takes no settings"):
        registry.compress("dense", model, None, None, ratio=0.2)
    assert registry.resolve("wanda") is wanda and registry.resolve("shortgpt") is shortgpt
    assert registry.LOADERS.get("slicegpt") == "slicegpt" and registry.LOADERS.get("modegpt") == "modegpt"
    monkeypatch.setitem(registry.METHODS, "broken", "repro.llm.methods.no_such_module:fn")
    with pytest.raises(ImportError, match="method 'broken': cannot import"):
        registry.resolve("broken")
    monkeypatch.setitem(registry.METHODS, "nofn", "repro.llm.methods.wanda:no_such_function")
    with pytest.raises(ImportError, match="has no function 'no_such_function'"):
        registry.resolve("nofn")
    monkeypatch.setitem(registry.METHODS, "bad", "repro.llm.methods.wanda")
    with pytest.raises(ValueError, match="module:function"):
        registry.resolve("bad")
