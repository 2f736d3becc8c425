"""MoDeGPT (Lin et al., ICLR 2025): modular decomposition of every decoder layer, no fine-tuning.

Own implementation from the brief (``shared/papers/llm_compression.md`` §4), written against the
architecture adapters (LLaMA/SmolLM2 with GQA, OPT incl. post-LN OPT-350m, Phi, GPT-NeoX); the
decompositions are the pure functions of :mod:`.modegpt_math`, the compressed model's modules,
writer and loader live in :mod:`.modegpt_modules`.

Per decoder layer ``l`` with keep ratio ``kappa_l = 1 - phi_l``:

* **Type I, MLP** (Nyström, :func:`~.modegpt_math.nystrom_mlp`): keep the ``k = floor(kappa_l d_int)``
  intermediate channels with the largest ridge leverage scores of ``C_sigma`` (the covariance of the
  down/fc2 input), slice gate/up (fc1) rows and biases, refit down (fc2) in closed form.
* **Type II, query-key** (CR, :func:`~.modegpt_math.select_qk_channels`): per KV group keep the
  head-dim channels with the largest ``sum_heads sqrt(C_q,ii C_k,ii)`` (GQA: summed over the group's
  query heads, one index list per group, applied to the K head and all its query heads).  With RoPE
  whole rotation pairs ``(i, i + r/2)`` are kept.  The query/key head dim ``k_h`` is:

  - full rotary (LLaMA): ``k_h = 2 floor(kappa d_h / 2)`` (even, at least 2);
  - no rotary (OPT): ``k_h = floor(kappa d_h)``;
  - partial rotary (Phi, GPT-NeoX, rotary width ``r < d_h``): the rotary part and the
    pass-through part are compressed separately with the same ratio: ``rot = 2 floor(kappa r / 2)``
    (at least 2) channels chosen as pairs inside the first ``r`` channels, ``floor(kappa (d_h - r))``
    channels chosen singly among the pass-through channels; ``k_h`` is their sum.  Both selections
    use the same CR scores; splitting the budget proportionally keeps both position-dependent and
    position-free channels and needs no mixed pair/single ranking.

  There is no weight refit; the softmax scale stays ``1/sqrt(d_h)`` by default (``softmax_scale``).
* **Type III, value-output** (whitened SVD, :func:`~.modegpt_math.whitened_svd_vo`): per KV group,
  ``v_h = floor(kappa d_h)``; the V head and every query head's O block of the group are replaced by
  the rank-``v_h`` factors of ``C_x^{1/2} W_v^T W_o^T`` (``C_x`` = covariance of the attention
  input, ``+ vo_ridge I``).  A V bias is folded exactly into the O bias (attention rows sum to one)
  and dropped.
* A module kept at full width (``k == d_int``, ``k_h == d_h``, ``v_h == d_h``) is left exactly as it
  was (identity selection), so ``target_removed=0`` reproduces the original logits.

Global allocation (brief §4.6, :func:`~.modegpt_math.allocate_sparsity`): ``phi = L phi_avg
softmax(-BI / temperature)`` capped at ``cap`` with the excess redistributed, where the mean is
weighted by each layer's compressible parameters (attention + MLP linears).  ``phi_avg`` is found by
bisection so that the parameter count *predicted from the shapes* (:func:`predicted_parameter_counts`,
exact: the compressed model has precisely these counts) removes the fraction of parameters closest to
``target_removed`` under ``convention`` (``"total"``: unique parameters, a tied embedding counted
once; ``"blocks"``: decoder-layer parameters; :mod:`repro.llm.params`).

Statistics (:func:`repro.llm.calibration.collect_statistics`, float64 sums): ``mlp_mid_cov``
(``C_sigma``), ``attn_in_cov`` (``C_x``; for post-LN layers the un-normed layer input, which is what
q/k/v read), ``q_energy`` / ``k_energy`` (pre-RoPE diagonals of ``C_q``, ``C_k``, as in the
cbacary code) and ``bi``.  ``C_sigma`` and ``C_x`` are divided by the token count before the
decompositions (cbacary normalises by ``n_samples * seq_len``; its ridge constants are absolute and
act on these means, brief §4.2).  Calibration modes:

* ``"original"`` (default; what the cbacary code does): every layer is compressed with statistics of
  the original model, taken from ``statistics`` when given (the pipeline's cached
  ``collect_statistics(..., which=ALL_STATISTICS)``; no forward pass) or from one pass;
* ``"sequential"``: ``collect_statistics(..., transform_layer=...)`` compresses each layer right
  after its statistics are collected, so later layers are calibrated on the outputs of the
  compressed earlier layers (whether the paper does this is unknown, brief §4.2).  The allocation
  needs every layer's BI before layer 0 is compressed: it uses the BI of the original model (from
  ``statistics["bi"]`` when given, else a BI-only pass).

Defaults and where they come from (the paper's values are not known, brief §4.9): ``temperature``
0.15 and ``cap`` 0.8 (cbacary ``sparsity_smoothing`` / ``max_sparsity`` defaults), ``nystrom_ridge``
1e-2 (cbacary default; its scripts use 1e-4) with a 1e-6 jitter in the refit (cbacary),
``vo_ridge`` 1e-4 (cbacary default; scripts 1e-5), calibration ``"original"`` (cbacary),
``softmax_scale="original"`` (``1/sqrt(d_h)`` of the uncompressed head: the CR approximation of
``q.k`` is a sum over the original channels; cbacary's rebuild uses ``1/sqrt(k_h)``, available as
``"compressed"``).

Save with ``save_compressed(model, tok, path, method="modegpt", info=info, loader="modegpt",
write_weights=write_weights)``; ``load_compressed`` rebuilds it once :mod:`.modegpt_modules` (which
registers the ``"modegpt"`` loader) is imported.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from repro.llm.adapters import LayerAdapter, ModelAdapter, get_adapter
from repro.llm.calibration import collect_statistics, layer_statistics
from repro.llm.params import compression_ratio, parameter_counts

from .modegpt_math import allocate_sparsity, nystrom_mlp, select_qk_channels, whitened_svd_vo, whitening
from .modegpt_modules import (
    ATTENTION_STYLES,
    SOFTMAX_SCALES,
    ModeGPTAttention,
    attention_spec,
    install_attention,
    is_modegpt_attention,
    load_modegpt,
    resize_mlp,
    write_weights,
)

__all__ = [
    "CALIBRATION_MODES",
    "CONVENTIONS",
    "STATISTICS",
    "allocate_for_target",
    "check_compressible",
    "compress_layer",
    "layer_dims",
    "layer_plan",
    "load_modegpt",
    "modegpt",
    "predicted_parameter_counts",
    "write_weights",
]

log = logging.getLogger(__name__)

#: Accepted ``calibration`` values.
CALIBRATION_MODES = ("original", "sequential")
#: Accepted ``convention`` values (see :mod:`repro.llm.params`).
CONVENTIONS = ("total", "blocks")
#: Calibration statistics MoDeGPT reads (names of :mod:`repro.llm.calibration`).
STATISTICS = frozenset({"attn_in_cov", "mlp_mid_cov", "q_energy", "k_energy", "bi"})
_LAYER_STATISTICS = ("attn_in_cov", "mlp_mid_cov", "q_energy", "k_energy")
_EPS = 1e-9  # guards floor(kappa * n) against kappa * n landing just below an integer
_JITTER = 1e-6  # refit jitter of the Nyström down projection (cbacary)
_BISECT_STEPS = 60


# ---------------------------------------------------------------------------------------------- checks
def check_compressible(model: nn.Module) -> ModelAdapter:
    """The adapter of ``model``, or ``ValueError`` naming what MoDeGPT cannot handle."""
    adapter = get_adapter(model)
    name = f"model_type {adapter.model_type!r} ({type(model).__name__})"
    if adapter.model_type not in ATTENTION_STYLES:
        raise ValueError(f"MoDeGPT has no attention module for {name}; supported: {sorted(ATTENTION_STYLES)}")
    for la in adapter.layers():
        if is_modegpt_attention(la.attention()):
            raise ValueError(f"{name} is already MoDeGPT-compressed (layer {la.index})")
        if la.qk_norms() is not None:
            raise ValueError(
                f"MoDeGPT cannot compress {name} with per-head q/k layer norms (qk_layernorm, layer {la.index}): "
                "a norm over the head dimension does not commute with channel selection"
            )
        if la.num_heads % la.num_kv_heads:
            raise ValueError(f"{name} layer {la.index}: {la.num_heads} heads over {la.num_kv_heads} KV heads")
        if la.rotary_dim % 2 or la.rotary_dim > la.head_dim:
            raise ValueError(f"{name}: rotary_dim {la.rotary_dim} must be even and <= head_dim {la.head_dim}")
    return adapter


# ---------------------------------------------------------------------------------------------- shapes and counts
def _numel(modules: Sequence[nn.Module | None]) -> int:
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        if module is not None:
            for p in module.parameters():
                seen.setdefault(id(p), p)
    return int(sum(p.numel() for p in seen.values()))


def layer_plan(adapter: ModelAdapter) -> list[dict[str, Any]]:
    """Per-layer shapes that decide the parameter counts after compression (no weights are read).

    ``rest`` counts the layer parameters outside the attention module and the MLP linears (norms),
    ``prunable`` the parameters of the attention module and the MLP linears (the allocation weights).
    """
    plan = []
    for la in adapter.layers():
        mlp_in, mlp_out = la.mlp_input_linears(), la.mlp_output_linear()
        attn = la.attention()
        inside = _numel([attn, *mlp_in, mlp_out])
        plan.append(
            {
                "hidden_size": adapter.hidden_size,
                "num_heads": la.num_heads,
                "num_kv_heads": la.num_kv_heads,
                "head_dim": la.head_dim,
                "rotary_dim": la.rotary_dim,
                "intermediate_size": la.intermediate_size,
                "q_bias": la.q_proj().bias is not None,
                "k_bias": la.k_proj().bias is not None,
                "v_bias": la.v_proj().bias is not None,
                "o_bias": la.attention_output_linear().bias is not None,
                "mlp_in_bias": [lin.bias is not None for lin in mlp_in],
                "mlp_out_bias": mlp_out.bias is not None,
                "rest": _numel([la.layer]) - inside,
                "prunable": inside,
            }
        )
    return plan


def layer_dims(keep: float, intermediate_size: int, head_dim: int, rotary_dim: int) -> dict[str, int]:
    """Compressed widths of one layer at keep ratio ``keep`` (see the module docstring).

    Returns ``{"mlp_width", "qk_dim", "rot_dim", "v_dim"}``; ``keep == 1`` gives the original widths.
    """
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep ratio must be in (0, 1], got {keep}")

    def floor(x: float) -> int:
        return int(math.floor(x + _EPS))

    mlp = max(1, min(intermediate_size, floor(keep * intermediate_size)))
    v = max(1, min(head_dim, floor(keep * head_dim)))
    if rotary_dim == 0:
        rot, qk = 0, max(1, min(head_dim, floor(keep * head_dim)))
    else:
        rot = max(2, min(rotary_dim, 2 * floor(keep * rotary_dim / 2)))
        qk = rot + min(head_dim - rotary_dim, floor(keep * (head_dim - rotary_dim)))
    return {"mlp_width": mlp, "qk_dim": qk, "rot_dim": rot, "v_dim": v}


def _layer_count(row: Mapping[str, Any], dims: Mapping[str, int]) -> int:
    """Parameters of one compressed layer (mirrors :func:`compress_layer`)."""
    d, h, kv = row["hidden_size"], row["num_heads"], row["num_kv_heads"]
    k, qk, v = dims["mlp_width"], dims["qk_dim"], dims["v_dim"]
    n = row["rest"]
    n += sum(k * d + (k if b else 0) for b in row["mlp_in_bias"]) + d * k + (d if row["mlp_out_bias"] else 0)
    n += h * qk * d + (h * qk if row["q_bias"] else 0)
    n += kv * qk * d + (kv * qk if row["k_bias"] else 0)
    v_bias, o_bias = _vo_biases(row, v)
    n += kv * v * d + (kv * v if v_bias else 0)
    n += d * h * v + (d if o_bias else 0)
    return int(n)


def _vo_biases(row: Mapping[str, Any], v_dim: int) -> tuple[bool, bool]:
    """(v bias, o bias) after compression: a compressed V's bias is folded into the O bias."""
    if v_dim == row["head_dim"]:
        return bool(row["v_bias"]), bool(row["o_bias"])
    return False, bool(row["o_bias"] or row["v_bias"])


def predicted_parameter_counts(
    dense_counts: Mapping[str, int], plan: Sequence[Mapping[str, Any]], dims: Sequence[Mapping[str, int]]
) -> dict[str, int]:
    """:func:`~repro.llm.params.parameter_counts` of the model after compressing with ``dims`` per layer."""
    blocks = sum(_layer_count(row, dim) for row, dim in zip(plan, dims))
    out = dict(dense_counts)
    out["blocks"] = int(blocks)
    out["total"] = int(dense_counts["total"] - dense_counts["blocks"] + blocks)
    return out


# ---------------------------------------------------------------------------------------------- allocation
def allocate_for_target(
    dense_counts: Mapping[str, int],
    plan: Sequence[Mapping[str, Any]],
    bi: torch.Tensor,
    target_removed: float,
    *,
    convention: str = "total",
    temperature: float = 0.15,
    cap: float = 0.8,
) -> dict[str, Any]:
    """Per-layer sparsities and widths whose predicted removed fraction is closest to ``target_removed``.

    Bisection on the (parameter-weighted) mean sparsity ``phi_avg`` in ``[0, cap]``: the predicted
    removed fraction is a non-decreasing step function of ``phi_avg``, so the bisection brackets the
    step that crosses the target and the closer of its two sides is taken (ties: less compression).

    Returns:
        ``{"mean_sparsity", "phi" (list), "keep" (list), "dims" (list of :func:`layer_dims`),
        "predicted_counts", "predicted_removed", "reachable": [0, max removed], "iterations"}``.

    Raises:
        ValueError: bad convention, or a target outside the reachable range (the cap limits it).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    target = float(target_removed)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target_removed must be in [0, 1), got {target_removed}")
    bi = torch.as_tensor(bi, dtype=torch.float64).cpu()
    if bi.numel() != len(plan):
        raise ValueError(f"bi has {bi.numel()} entries but the model has {len(plan)} layers")
    weights = torch.tensor([row["prunable"] for row in plan], dtype=torch.float64)
    denominator = dense_counts[convention]

    def evaluate(mean: float) -> dict[str, Any]:
        phi = allocate_sparsity(bi, mean, temperature, cap, weights)
        keep = [max(0.0, min(1.0, 1.0 - float(p))) for p in phi]
        dims = [
            layer_dims(k, row["intermediate_size"], row["head_dim"], row["rotary_dim"]) for k, row in zip(keep, plan)
        ]
        counts = predicted_parameter_counts(dense_counts, plan, dims)
        removed = 1.0 - counts[convention] / denominator
        return {"mean_sparsity": mean, "phi": [float(p) for p in phi], "keep": keep, "dims": dims,
                "predicted_counts": counts, "predicted_removed": removed}  # fmt: skip

    lo, hi = evaluate(0.0), evaluate(float(cap))
    reachable = [lo["predicted_removed"], hi["predicted_removed"]]
    if target > hi["predicted_removed"] + 1e-12:
        raise ValueError(
            f"target_removed {target} is not reachable under convention {convention!r} with cap {cap}: "
            f"at most {hi['predicted_removed']:.4f} of the parameters can be removed"
        )
    steps = 0
    if lo["predicted_removed"] < target:
        for steps in range(1, _BISECT_STEPS + 1):
            mid = evaluate(0.5 * (lo["mean_sparsity"] + hi["mean_sparsity"]))
            if mid["predicted_removed"] < target:
                lo = mid
            else:
                hi = mid
            if hi["mean_sparsity"] - lo["mean_sparsity"] < 1e-12:
                break
        best = min((lo, hi), key=lambda c: (abs(c["predicted_removed"] - target), c["predicted_removed"]))
    else:
        best = lo
    return {**best, "reachable": reachable, "iterations": steps}


# ---------------------------------------------------------------------------------------------- one layer
def _select_qk(q_energy, k_energy, la: LayerAdapter, qk_dim: int, rot_dim: int) -> torch.Tensor:
    """Kept channel table ``[num_kv_heads, qk_dim]``: ``[rotary pairs | pass-through channels]``."""
    h, kv, d_h, r = la.num_heads, la.num_kv_heads, la.head_dim, la.rotary_dim
    if qk_dim == d_h:
        return torch.arange(d_h).repeat(kv, 1)
    qe = torch.as_tensor(q_energy, dtype=torch.float64).reshape(h, d_h)
    ke = torch.as_tensor(k_energy, dtype=torch.float64).reshape(kv, d_h)
    if r == 0:
        return torch.stack(select_qk_channels(qe, ke, h, kv, d_h, qk_dim, rope=False)).cpu()
    parts = [torch.stack(select_qk_channels(qe[:, :r], ke[:, :r], h, kv, r, rot_dim, rope=True)).cpu()]
    n_pass = qk_dim - rot_dim
    if n_pass > 0:
        chosen = select_qk_channels(qe[:, r:], ke[:, r:], h, kv, d_h - r, n_pass, rope=False)
        parts.append(torch.stack(chosen).cpu() + r)
    return torch.cat(parts, dim=1)


def _heads(weight: torch.Tensor, n: int, d_h: int) -> torch.Tensor:
    return weight.reshape(n, d_h, *weight.shape[1:])


@torch.no_grad()
def compress_layer(
    adapter: ModelAdapter,
    la: LayerAdapter,
    stats: Mapping[str, torch.Tensor],
    dims: Mapping[str, int],
    *,
    nystrom_ridge: float = 1e-2,
    vo_ridge: float = 1e-4,
    softmax_scale: str = "original",
) -> dict[str, Any]:
    """Compress decoder layer ``la`` in place to ``dims`` (:func:`layer_dims`) with its statistics.

    ``stats`` holds the layer's ``mlp_mid_cov``, ``attn_in_cov``, ``q_energy``, ``k_energy`` (float64
    sums) and ``tokens``.  The MLP linears are resized in place; the attention module is replaced by
    a :class:`~.modegpt_modules.ModeGPTAttention`.  Returns ``{"qk_index": [[...] per KV group]}``.
    """
    tokens = float(stats["tokens"])
    h, kv, d_h = la.num_heads, la.num_kv_heads, la.head_dim
    g = h // kv
    k, qk_dim, rot_dim, v_dim = dims["mlp_width"], dims["qk_dim"], dims["rot_dim"], dims["v_dim"]

    # Type I: MLP.
    mlp_in, mlp_out = la.mlp_input_linears(), la.mlp_output_linear()
    if k < la.intermediate_size:
        res = nystrom_mlp(
            stats["mlp_mid_cov"] / tokens,
            mlp_in[0].weight if la.mlp_gated else None,
            mlp_in[-1].weight,
            mlp_out.weight,
            k,
            nystrom_ridge,
            _JITTER,
        )
        idx = res["index"].to(mlp_out.weight.device)
        new_in = [res["gate"], res["up"]] if la.mlp_gated else [res["up"]]
        inputs = [(w, None if lin.bias is None else lin.bias[idx]) for lin, w in zip(mlp_in, new_in)]
        resize_mlp(la, k, {"inputs": inputs, "output": (res["down"], mlp_out.bias)})

    # Type II: query-key channel selection.
    q, kp, v, o = la.q_proj(), la.k_proj(), la.v_proj(), la.attention_output_linear()
    index = _select_qk(stats["q_energy"], stats["k_energy"], la, qk_dim, rot_dim)
    dev = q.weight.device
    idx_kv = index.to(dev)
    idx_q = idx_kv.repeat_interleave(g, dim=0)
    rows_q, rows_k = torch.arange(h, device=dev)[:, None], torch.arange(kv, device=dev)[:, None]
    wq = _heads(q.weight, h, d_h)[rows_q, idx_q].reshape(h * qk_dim, -1)
    wk = _heads(kp.weight, kv, d_h)[rows_k, idx_kv].reshape(kv * qk_dim, -1)
    bq = None if q.bias is None else _heads(q.bias, h, d_h)[rows_q, idx_q].reshape(-1)
    bk = None if kp.bias is None else _heads(kp.bias, kv, d_h)[rows_k, idx_kv].reshape(-1)

    # Type III: value-output whitened SVD per KV group.
    wv_all, bv_all, wo_all, bo = v.weight, v.bias, o.weight, o.bias
    if v_dim < d_h:
        white = whitening(stats["attn_in_cov"] / tokens, vo_ridge, device=wv_all.device)
        wv_heads = _heads(wv_all, kv, d_h)
        new_v, new_o = [], []
        for j in range(kv):
            blocks = [wo_all[:, i * d_h : (i + 1) * d_h] for i in range(j * g, (j + 1) * g)]
            v_j, o_j = whitened_svd_vo(white, wv_heads[j], blocks, v_dim, vo_ridge)
            new_v.append(v_j)
            new_o.extend(o_j)
        if bv_all is not None:  # attention rows sum to one: W_o,h b_v passes through unchanged
            shift = wo_all.to(torch.float64) @ _heads(bv_all, kv, d_h).repeat_interleave(g, 0).reshape(-1).to(
                torch.float64
            )
            bo = shift if bo is None else bo.to(torch.float64) + shift
        wv_all, bv_all, wo_all = torch.cat(new_v, 0), None, torch.cat(new_o, 1)

    attn_old = la.attention()
    spec = attention_spec(
        adapter,
        la,
        qk_dim=qk_dim,
        v_dim=v_dim,
        rot_dim=rot_dim,
        v_bias=bv_all is not None,
        o_bias=bo is not None,
        softmax_scale=softmax_scale,
    )
    layer_idx = getattr(attn_old, "layer_idx", None)
    module = ModeGPTAttention(
        adapter.config, la.index if layer_idx is None else layer_idx, spec, dtype=o.weight.dtype, device=dev
    )
    for lin, w, b in (
        (module.q_proj, wq, bq),
        (module.k_proj, wk, bk),
        (module.v_proj, wv_all, bv_all),
        (module.output_linear, wo_all, bo),
    ):
        lin.weight.copy_(w)
        if b is not None:
            lin.bias.copy_(b)
        lin.weight.requires_grad_(o.weight.requires_grad)
        if lin.bias is not None:
            lin.bias.requires_grad_(o.weight.requires_grad)
    module.qk_index.copy_(index)
    module.train(attn_old.training)
    install_attention(la, module)
    return {"qk_index": index.tolist()}


# ---------------------------------------------------------------------------------------------- statistics
def _check_statistics(statistics: Mapping[str, torch.Tensor], adapter: ModelAdapter, layer_keys: bool) -> None:
    """``ValueError`` naming missing or mis-shaped cached statistics."""
    missing = [key for key in (("bi", "tokens") if layer_keys else ("bi",)) if key not in statistics]
    wrong = []
    if "bi" in statistics and torch.as_tensor(statistics["bi"]).numel() != adapter.num_layers:
        wrong.append(
            f"bi has {torch.as_tensor(statistics['bi']).numel()} entries, the model {adapter.num_layers} layers"
        )
    if layer_keys:
        for la in adapter.layers():
            shapes = {
                "attn_in_cov": (adapter.hidden_size, adapter.hidden_size),
                "mlp_mid_cov": (la.intermediate_size, la.intermediate_size),
                "q_energy": (la.num_heads, la.head_dim),
                "k_energy": (la.num_kv_heads, la.head_dim),
            }
            for name, shape in shapes.items():
                key = f"layers.{la.index}.{name}"
                if key not in statistics:
                    missing.append(key)
                elif tuple(statistics[key].shape) != shape:
                    wrong.append(f"{key} {tuple(statistics[key].shape)} != {shape}")
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(
            f"cached statistics lack {', '.join(missing[:5])}{more}; collect them with which including "
            f"{sorted(STATISTICS)}"
        )
    if wrong:
        raise ValueError(f"cached statistics do not match the model: {'; '.join(wrong[:5])}")


# ---------------------------------------------------------------------------------------------- API
@torch.no_grad()
def modegpt(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    target_removed: float,
    convention: str = "total",
    temperature: float = 0.15,
    cap: float = 0.8,
    nystrom_ridge: float = 1e-2,
    vo_ridge: float = 1e-4,
    calibration: str = "original",
    statistics: Mapping[str, torch.Tensor] | None = None,
    softmax_scale: str = "original",
    batch_size: int = 4,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Compress ``model`` in place with MoDeGPT; return ``(model, info)``.

    The signature follows :mod:`repro.llm.methods.registry` (``fn(model, calibration_ids, **settings)``).

    Args:
        model: a ``*ForCausalLM`` supported by the adapters (LLaMA, OPT incl. post-LN, Phi without
            q/k layer norms, GPT-NeoX).
        calibration_ids: ``(n_samples, seq_len)`` token windows
            (:func:`repro.llm.calibration.calibration_batches`); may be ``None`` with
            ``calibration="original"`` and ``statistics``.
        target_removed: fraction of the dense parameters (under ``convention``) to remove; the
            achieved fraction is the closest the per-layer integer widths allow (``0`` keeps every
            module at full width: the logits are unchanged).
        convention: ``"total"`` (unique parameters, tied embeddings once; default) or ``"blocks"``.
        temperature: allocation softmax temperature ``epsilon`` (cbacary default 0.15).
        cap: maximum per-layer sparsity (cbacary default 0.8).
        nystrom_ridge: type-I ridge ``lambda`` on the token-mean ``C_sigma`` (cbacary default 1e-2).
        vo_ridge: type-III ridge on the token-mean ``C_x`` (cbacary default 1e-4).
        calibration: ``"original"`` or ``"sequential"`` (module docstring).
        statistics: cached :func:`~repro.llm.calibration.collect_statistics` of the *original* model
            (``which`` including :data:`STATISTICS`).  ``"original"`` uses all of it and runs no
            forward pass; ``"sequential"`` uses only its ``bi`` for the allocation.
        softmax_scale: ``"original"`` (``1/sqrt(d_h)``, default) or ``"compressed"`` (``1/sqrt(k_h)``).
        batch_size: calibration rows per forward call.
        progress: progress bar and log lines.

    Returns:
        ``(model, info)``; ``info`` holds ``method``, ``target_removed``, ``convention``,
        ``achieved_removed`` (under ``convention``), ``removed`` (:func:`compression_ratio`, both
        conventions), ``predicted_removed``, ``predicted_counts``, ``predicted_matches``,
        ``counts_dense`` / ``counts_after``, ``mean_sparsity``, ``reachable``, per-layer ``bi``,
        ``phi``, ``keep``, ``mlp_width``, ``qk_dim``, ``rot_dim``, ``v_dim`` and ``qk_index`` (kept
        channels per KV group), ``allocation`` (rows ``layer, bi, sparsity, keep, mlp_width, qk_dim,
        v_dim``), the settings (``temperature``, ``cap``, ``nystrom_ridge``, ``nystrom_jitter``,
        ``vo_ridge``, ``softmax_scale``, ``normalisation``), ``calibration`` (``mode``, ``source``,
        ``bi_source``, ``n_samples``, ``seq_len``, ``tokens``, ``seconds``), ``decompose_seconds``
        and ``seconds`` (the whole call).
    """
    t_start = time.perf_counter()
    if calibration not in CALIBRATION_MODES:
        raise ValueError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
    if softmax_scale not in SOFTMAX_SCALES:
        raise ValueError(f"softmax_scale must be one of {SOFTMAX_SCALES}, got {softmax_scale!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if not nystrom_ridge > 0 or not vo_ridge >= 0:
        raise ValueError(f"need nystrom_ridge > 0 and vo_ridge >= 0, got {nystrom_ridge}, {vo_ridge}")
    ids = None
    if calibration_ids is not None:
        ids = torch.as_tensor(calibration_ids)
        if ids.dim() != 2 or ids.dtype not in (torch.long, torch.int, torch.int32):
            raise ValueError(
                f"calibration_ids must be integer (n_samples, seq_len), got {ids.dtype} {tuple(ids.shape)}"
            )
    needs_pass = calibration == "sequential" or statistics is None
    if needs_pass and ids is None:
        raise ValueError("modegpt needs calibration_ids, or cached statistics with calibration='original'")
    adapter = check_compressible(model)
    if statistics is not None:
        _check_statistics(statistics, adapter, layer_keys=calibration == "original")
    counts_dense = parameter_counts(model, adapter)
    plan = layer_plan(adapter)

    # BI for the allocation, and the statistics of the original mode.
    t_cal = time.perf_counter()
    stats: Mapping[str, torch.Tensor] | None = None
    if statistics is not None:
        bi, bi_source = torch.as_tensor(statistics["bi"], dtype=torch.float64).cpu(), "statistics"
        if calibration == "original":
            stats, source = statistics, "statistics"
    elif calibration == "original":
        stats = collect_statistics(model, ids, batch_size=batch_size, which=STATISTICS, progress=progress)
        bi, bi_source, source = stats["bi"], "pass", "pass"
    else:
        bi_stats = collect_statistics(model, ids, batch_size=batch_size, which={"bi"}, progress=progress)
        bi, bi_source = bi_stats["bi"], "pass"
    alloc = allocate_for_target(
        counts_dense, plan, bi, target_removed, convention=convention, temperature=temperature, cap=cap
    )
    dims = alloc["dims"]
    settings = {"nystrom_ridge": nystrom_ridge, "vo_ridge": vo_ridge, "softmax_scale": softmax_scale}
    qk_index: list[list[list[int]] | None] = [None] * len(plan)

    t_dec = 0.0
    if calibration == "original":
        t0 = time.perf_counter()
        tokens = stats["tokens"]
        for la in adapter.layers():
            layer_stats = {**layer_statistics(stats, la.index), "tokens": tokens}
            qk_index[la.index] = compress_layer(adapter, la, layer_stats, dims[la.index], **settings)["qk_index"]
        t_dec = time.perf_counter() - t0
        n_tokens = int(tokens)
    else:

        def transform(idx: int, la: LayerAdapter, layer_stats: dict[str, torch.Tensor]) -> None:
            nonlocal t_dec
            t0 = time.perf_counter()
            qk_index[idx] = compress_layer(adapter, la, layer_stats, dims[idx], **settings)["qk_index"]
            t_dec += time.perf_counter() - t0

        seq = collect_statistics(
            model,
            ids,
            batch_size=batch_size,
            which=STATISTICS - {"bi"},
            progress=progress,
            transform_layer=transform,
        )
        source, n_tokens = "pass", int(seq["tokens"])
    seconds_cal = time.perf_counter() - t_cal - t_dec

    counts_after = parameter_counts(model, adapter)
    predicted = alloc["predicted_counts"]
    if predicted != counts_after:
        log.warning("modegpt: predicted counts %s differ from the actual %s", predicted, counts_after)
    removed = compression_ratio(counts_dense, counts_after)
    bi_list = [float(b) for b in torch.as_tensor(bi, dtype=torch.float64)]
    info: dict[str, Any] = {
        "method": "modegpt",
        "target_removed": float(target_removed),
        "convention": convention,
        "achieved_removed": removed[f"removed_{convention}"],
        "removed": removed,
        "predicted_removed": alloc["predicted_removed"],
        "predicted_counts": predicted,
        "predicted_matches": predicted == counts_after,
        "counts_dense": counts_dense,
        "counts_after": counts_after,
        "mean_sparsity": alloc["mean_sparsity"],
        "reachable": alloc["reachable"],
        "allocation_iterations": alloc["iterations"],
        "bi": bi_list,
        "phi": alloc["phi"],
        "keep": alloc["keep"],
        "mlp_width": [d["mlp_width"] for d in dims],
        "qk_dim": [d["qk_dim"] for d in dims],
        "rot_dim": [d["rot_dim"] for d in dims],
        "v_dim": [d["v_dim"] for d in dims],
        "qk_index": qk_index,
        "allocation": [
            {
                "layer": i,
                "bi": bi_list[i],
                "sparsity": alloc["phi"][i],
                "keep": alloc["keep"][i],
                "mlp_width": d["mlp_width"],
                "qk_dim": d["qk_dim"],
                "v_dim": d["v_dim"],
            }
            for i, d in enumerate(dims)
        ],
        "temperature": float(temperature),
        "cap": float(cap),
        "nystrom_ridge": float(nystrom_ridge),
        "nystrom_jitter": _JITTER,
        "vo_ridge": float(vo_ridge),
        "softmax_scale": softmax_scale,
        "normalisation": "token mean (C_sigma, C_x divided by the calibration token count)",
        "calibration": {
            "mode": calibration,
            "source": source,
            "bi_source": bi_source,
            "n_samples": None if ids is None else int(ids.shape[0]),
            "seq_len": None if ids is None else int(ids.shape[1]),
            "tokens": n_tokens,
            "seconds": round(seconds_cal, 3),
        },
        "decompose_seconds": round(t_dec, 3),
        "seconds": round(time.perf_counter() - t_start, 3),
    }
    (log.info if progress else log.debug)(
        "modegpt %s (%s calibration): target %.4f of %s parameters, achieved %.4f; parameters %d -> %d, %.1f s",
        adapter.model_type,
        calibration,
        float(target_removed),
        convention,
        info["achieved_removed"],
        counts_dense["total"],
        counts_after["total"],
        info["seconds"],
    )
    return model, info
