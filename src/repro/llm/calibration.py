"""Calibration statistics for structural compression, collected layer by layer in float64.

Every one-shot compressor in the pipeline needs a few second-order statistics of the activations
of each decoder layer on a small calibration set (random windows of a text corpus, see
:func:`calibration_batches`).  :func:`collect_statistics` computes all of them in one streamed pass;
for decoder layer ``l`` the keys are ``f"layers.{l}.<name>"``:

``resid_in_cov`` (d x d)
    ``sum_t x_t^T x_t`` of the residual stream entering the layer (the un-normed hidden state
    ``h_l``).  This is the signal SliceGPT runs PCA on and rotates (its convention: the residual
    stream, with the norm scales folded into the following linears after LayerNorm -> RMSNorm
    conversion).
``attn_in_cov`` (d x d)
    ``sum_t a_t^T a_t`` where ``a`` is what the attention input linears (q/k/v or fused qkv) read:
    the output of ``attention_input_norm`` for pre-LN layers.  MoDeGPT's ``C_x`` (type-III,
    value-output whitening) and a correlation/PCA signal.  For *post-LN* layers (OPT-350m,
    ``LayerAdapter.pre_norm`` False, ``attention_input_norm() is None``) there is no norm in front
    of the attention: the stored statistic is then the un-normed layer input, i.e. equal to
    ``resid_in_cov`` (norm-based methods such as SliceGPT refuse post-LN models anyway).
``mlp_in_cov`` (d x d)
    The same for the input of the MLP input linears (gate/up or fc1): the output of
    ``mlp_input_norm``.  For Phi (parallel block, one shared norm) this equals ``attn_in_cov`` and
    is stored anyway (a copy).  For post-LN layers it is what fc1 reads: the attention-block output
    after ``self_attn_layer_norm``.
``attn_mid_cov`` (h_q d_h x h_q d_h)
    ``sum_t z_t^T z_t`` of the input of the attention output projection (``o_proj`` / ``out_proj`` /
    ``dense``): the concatenated per-head attention outputs.  With the three input covariances above
    and ``mlp_mid_cov`` below, every linear of a layer has the second moment ``X^T X`` of what it
    reads (:func:`linear_input_statistic` names it): SparseGPT's Hessian and SVD-LLM's whitening.
``mlp_mid_cov`` (d_int x d_int)
    ``sum_t h_t^T h_t`` of the input of the MLP output projection (after the activation / SiLU
    gating): MoDeGPT's ``C_sigma`` for the type-I Nystrom step.
``q_energy`` (num_heads x head_dim), ``k_energy`` (num_kv_heads x head_dim)
    Per head and channel ``sum_t q_t^2`` and ``sum_t k_t^2`` of the raw projection outputs (bias
    included, pre-RoPE, pre-q/k-norm, unscaled; split with ``LayerAdapter.split_qkv_output``):
    the diagonals of MoDeGPT's ``C_q`` and ``C_k``, all that its type-II (CR) channel scores
    ``sqrt(C_q,ii * C_k,ii)`` need.  Keys are per KV head under grouped-query attention.
``wanda.<linear name>`` (in_features)
    For every linear of ``LayerAdapter.named_linears()``: the squared input column norms
    ``sum_t x_tj^2`` (Wanda's score is ``|W_ij| * sqrt`` of this).

and two model-level entries:

``bi`` (L)
    ShortGPT's block influence ``1 - mean_t cos(h_l[t], h_{l+1}[t])`` between the input and output
    hidden states of each layer (the same BI that MoDeGPT uses for its global sparsity allocation).
``tokens`` (scalar int64)
    The number of calibration tokens accumulated (``n_samples * seq_len``); divide the sums by it
    for means.  The sums are stored un-normalised because MoDeGPT's ridge constants are absolute:
    normalisation is a choice of the consuming method.

Precision: activations are cast to float64 *before* the outer products and squares, and all sums
are accumulated in float64 (MoDeGPT computes its correlations in FP64; SliceGPT and SVD-LLM also
accumulate ``X^T X`` in double).  Calibration windows carry no padding, so every token counts.

Streaming and memory: the model's embedding stage is run once per batch and stopped at the first
decoder layer by a pre-hook that captures the layer's inputs (hidden states plus the keyword
arguments the model passes: attention mask, rotary ``position_embeddings``, ``position_ids``;
OPT's learned positions and ``project_in`` are already applied to the hidden states).  Then each
layer runs alone over all calibration batches with forward hooks, its statistics are moved to the
CPU, and the stored hidden states are replaced by the layer's outputs, which are the next layer's
inputs.  Peak memory is therefore bounded by the model, the hidden states of the calibration set
(``n_samples * seq_len * d`` in the model dtype), at most two sets of layer keyword arguments
(one per distinct batch size: windows have no padding, so they depend only on the batch shape), one
layer's float64 accumulators (dominated by ``mlp_mid_cov``: ``8 * d_int**2`` bytes) and one
batch's float64 activations.  The *returned* dictionary holds every layer's statistics on the CPU
(for LLaMA-2-7B ``mlp_mid_cov`` alone is ~31 GB): restrict ``which`` or consume the statistics per
layer through ``transform_layer`` with ``keep_layer_statistics=False`` for large models.

Original versus sequential calibration: with ``transform_layer=None`` (mode ``"original"``) all
statistics are those of the given model.  With a callback (mode ``"sequential"``),
``transform_layer(l, layer_adapter, layer_stats)`` is called for layer ``l`` after its statistics
are collected and before its outputs are computed and propagated, so the statistics of layer
``l + 1`` are those of the partially compressed model (MoDeGPT leaves this choice unspecified; SliceGPT
and SparseGPT propagate through compressed layers).  ``bi`` of layer ``l`` is measured on the layer
before its transform.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from repro.io import atomic_path

from .adapters import LayerAdapter, get_adapter

__all__ = [
    "ALL_STATISTICS",
    "CalibrationStatistics",
    "calibration_batches",
    "check_linear_inputs",
    "collect_statistics",
    "layer_statistics",
    "linear_input_statistic",
    "load_statistics",
    "save_statistics",
    "transform_each_layer",
]

log = logging.getLogger(__name__)

#: Names accepted in ``collect_statistics(which=...)``; ``tokens`` is always stored.
ALL_STATISTICS: frozenset[str] = frozenset(
    {
        "resid_in_cov",
        "attn_in_cov",
        "attn_mid_cov",
        "mlp_in_cov",
        "mlp_mid_cov",
        "q_energy",
        "k_energy",
        "wanda_norms",
        "bi",
    }
)

TransformLayer = Callable[[int, LayerAdapter, dict[str, torch.Tensor]], Any]


class CalibrationStatistics(dict):
    """``dict[str, Tensor]`` returned by :func:`collect_statistics`, with timing attributes.

    Attributes:
        elapsed_s: wall time of the whole collection (embedding stage, all layers, transforms).
        tokens_per_s: calibration tokens divided by ``elapsed_s``.
        mode: ``"original"`` or ``"sequential"``.
        final_hidden: output of the last decoder layer (``keep_final_hidden=True``), else ``None``.
    """

    elapsed_s: float = float("nan")
    tokens_per_s: float = float("nan")
    mode: str = "original"
    final_hidden: torch.Tensor | None = None


# ---------------------------------------------------------------------------------------------- data
def calibration_batches(tokenizer, text: str, n_samples: int, seq_len: int, seed: int) -> torch.LongTensor:
    """Random token windows of a text: the Wanda/SliceGPT calibration recipe.

    The text is tokenised once (without special tokens, so no BOS lands in the middle of a window)
    and ``n_samples`` start offsets are drawn uniformly from ``[0, n_tokens - seq_len]`` with a
    ``torch.Generator`` seeded with ``seed``; windows may overlap.

    Args:
        tokenizer: a Hugging Face tokenizer, or any callable ``tokenizer(text, add_special_tokens=False)``
            returning a mapping with ``"input_ids"`` (a flat list / 1-D tensor, or one row of them).
        text: the calibration corpus.
        n_samples: number of windows (rows).
        seq_len: tokens per window.
        seed: generator seed.

    Returns:
        ``LongTensor`` of shape ``(n_samples, seq_len)``.

    Raises:
        ValueError: for non-positive sizes, or when the text has fewer than ``seq_len`` tokens.
    """
    if n_samples < 1 or seq_len < 1:
        raise ValueError(f"n_samples and seq_len must be positive, got {n_samples} and {seq_len}")
    enc = tokenizer(text, add_special_tokens=False)
    ids = enc["input_ids"] if isinstance(enc, Mapping) or hasattr(enc, "keys") else enc
    ids = torch.as_tensor(ids, dtype=torch.long)
    if ids.dim() == 2 and ids.shape[0] == 1:
        ids = ids[0]
    if ids.dim() != 1:
        raise ValueError(f"expected one token sequence from the tokenizer, got shape {tuple(ids.shape)}")
    n_tokens = int(ids.numel())
    if n_tokens < seq_len:
        raise ValueError(
            f"calibration text too short: {n_tokens} tokens ({len(text)} characters) < seq_len {seq_len}; "
            "use a longer text or a shorter seq_len"
        )
    gen = torch.Generator().manual_seed(int(seed))
    starts = torch.randint(0, n_tokens - seq_len + 1, (n_samples,), generator=gen)
    return ids[starts.unsqueeze(1) + torch.arange(seq_len).unsqueeze(0)].contiguous()


# ---------------------------------------------------------------------------------------------- capture
class _Stop(Exception):
    """Raised by the layer-0 pre-hook to stop the model after its embedding stage."""


def _layer_output(out) -> torch.Tensor:
    """Decoder layers return a tensor in transformers 5, a tuple ``(hidden, ...)`` in 4.x."""
    return out[0] if isinstance(out, (tuple, list)) else out


def _capture_layer0_inputs(model: nn.Module, first_layer: nn.Module, batch: torch.Tensor):
    """Run ``model`` on ``batch`` up to decoder layer 0; return its hidden-state input and kwargs."""
    captured: dict[str, Any] = {}

    def hook(module, args, kwargs):
        captured["args"] = args
        captured["kwargs"] = kwargs
        raise _Stop

    handle = first_layer.register_forward_pre_hook(hook, with_kwargs=True)
    try:
        model(input_ids=batch, use_cache=False)
    except _Stop:
        pass
    finally:
        handle.remove()
    if "args" not in captured:
        raise RuntimeError("the model finished without calling its first decoder layer")
    args, kwargs = captured["args"], dict(captured["kwargs"])
    if args:
        hidden, extra = args[0], tuple(args[1:])
    else:
        hidden, extra = kwargs.pop("hidden_states"), ()
    for key in ("output_attentions", "output_hidden_states"):
        kwargs.pop(key, None)
    for key in ("cache", "past_key_values", "layer_past"):
        if kwargs.get(key) is not None:
            raise RuntimeError(f"layer 0 received a KV cache ({key}); calibration needs use_cache=False")
    return hidden, extra, kwargs


# ---------------------------------------------------------------------------------------------- accumulators


def layer0_inputs(model: nn.Module, input_ids: torch.Tensor, batch_size: int, device) -> tuple[list, dict]:
    """Hidden states entering decoder layer 0 for every calibration batch, plus the layer's extra
    arguments (mask, RoPE, positions) once per distinct batch size: the start of every layer-by-layer pass."""
    first_layer = get_adapter(model).decoder_layers_container()[0]
    hidden: list[torch.Tensor] = []
    layer_kwargs: dict[int, tuple[tuple, dict]] = {}
    for start in range(0, input_ids.shape[0], batch_size):
        batch = input_ids[start : start + batch_size].to(device=device, dtype=torch.long)
        h, extra, kwargs = _capture_layer0_inputs(model, first_layer, batch)
        hidden.append(h.detach())
        layer_kwargs.setdefault(batch.shape[0], (extra, kwargs))
    return hidden, layer_kwargs


def _flat64(x: torch.Tensor) -> torch.Tensor:
    """``(..., n)`` -> ``(tokens, n)`` float64."""
    return x.detach().reshape(-1, x.shape[-1]).to(torch.float64)


class _LayerAccumulator:
    """Forward hooks on one decoder layer that accumulate its statistics in float64."""

    def __init__(self, la: LayerAdapter, which: frozenset[str], device: torch.device) -> None:
        self.la = la
        self.which = which
        self.sums: dict[str, torch.Tensor] = {}
        self.handles: list[torch.utils.hooks.RemovableHandle] = []
        # q/k/v (gate/up) read the very same tensor: convert it and square it once per batch.
        self._cached: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None
        self.qkv_outputs: dict[int, torch.Tensor] = {}
        self.bi_sum = torch.zeros((), dtype=torch.float64, device=device)
        self.device = device
        # Phi: one shared norm feeds attention and MLP; the MLP input covariance is a copy.
        self.shared_norm = la.pre_norm and la.mlp_input_norm() is la.attention_input_norm()

        attn_in = la.attention_input_linears()
        if "attn_in_cov" in which or ("mlp_in_cov" in which and self.shared_norm):
            self._hook_input(attn_in[0], "attn_in_cov", self._cov)
        if "mlp_in_cov" in which and not self.shared_norm:
            self._hook_input(la.mlp_input_linears()[0], "mlp_in_cov", self._cov)
        if "attn_mid_cov" in which:
            self._hook_input(la.attention_output_linear(), "attn_mid_cov", self._cov)
        if "mlp_mid_cov" in which:
            self._hook_input(la.mlp_output_linear(), "mlp_mid_cov", self._cov)
        if "wanda_norms" in which:
            for name, lin in la.named_linears().items():
                self._hook_input(lin, f"wanda.{name}", self._sq)
        if "q_energy" in which or "k_energy" in which:
            for i, lin in enumerate(attn_in):
                self.handles.append(lin.register_forward_hook(self._make_qkv_hook(i)))

    # -- hooks
    def _add(self, key: str, value: torch.Tensor) -> None:
        if key in self.sums:
            self.sums[key] += value
        else:
            self.sums[key] = value

    def _as64(self, x: torch.Tensor) -> torch.Tensor:
        if self._cached is None or self._cached[0] is not x:
            self._cached = (x, _flat64(x), None)
        return self._cached[1]

    def _cov(self, key: str, x: torch.Tensor) -> None:
        x = self._as64(x)
        if key not in self.sums:
            self.sums[key] = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
        self.sums[key].addmm_(x.T, x)

    def _sq(self, key: str, x: torch.Tensor) -> None:
        x64 = self._as64(x)
        if self._cached[2] is None:
            self._cached = (x, x64, x64.square().sum(0))
        self._add(key, self._cached[2].clone())

    def _hook_input(self, module: nn.Module, key: str, fn) -> None:
        def hook(mod, args):
            fn(key, args[0])

        self.handles.append(module.register_forward_pre_hook(hook))

    def _make_qkv_hook(self, i: int):
        def hook(mod, args, output):
            self.qkv_outputs[i] = output.detach()

        return hook

    # -- per batch
    def after_batch(self, x_in: torch.Tensor, x_out: torch.Tensor) -> None:
        """Accumulate the statistics that need the layer's input/output or all q/k/v outputs."""
        self._cached = None
        if self.qkv_outputs:
            n = len(self.la.attention_input_linears())
            if len(self.qkv_outputs) != n:
                raise RuntimeError(f"captured {len(self.qkv_outputs)} of {n} attention input projections")
            q, k, _ = self.la.split_qkv_output([self.qkv_outputs[i] for i in range(n)])
            self.qkv_outputs.clear()
            if "q_energy" in self.which:
                self._add("q_energy", q.reshape(-1, *q.shape[-2:]).to(torch.float64).square().sum(0))
            if "k_energy" in self.which:
                self._add("k_energy", k.reshape(-1, *k.shape[-2:]).to(torch.float64).square().sum(0))
        if "resid_in_cov" in self.which:
            self._cov("resid_in_cov", x_in)
        if "bi" in self.which:
            self.bi_sum += F.cosine_similarity(self._as64(x_in), _flat64(x_out), dim=-1).sum()
        self._cached = None

    def remove(self) -> None:
        for h in self.handles:
            h.remove()
        self.handles.clear()

    def result(self, tokens: int) -> dict[str, torch.Tensor]:
        """The layer's statistics on the CPU (short keys, without the ``layers.{l}.`` prefix)."""
        out: dict[str, torch.Tensor] = {}
        if self.shared_norm and "mlp_in_cov" in self.which:
            if "attn_in_cov" in self.which:
                out["mlp_in_cov"] = self.sums["attn_in_cov"].clone()
            else:
                out["mlp_in_cov"] = self.sums.pop("attn_in_cov")
        for key, value in self.sums.items():
            out[key] = value
        if "bi" in self.which:
            out["bi"] = 1.0 - self.bi_sum / tokens
        return {key: value.cpu().contiguous() for key, value in sorted(out.items())}


def linear_input_statistic(la: LayerAdapter, name: str) -> str:
    """The short key of the covariance ``X^T X`` of what linear ``name`` of ``la.named_linears()`` reads.

    ``"attn_in_cov"`` for the attention input linears (q/k/v or fused qkv), ``"attn_mid_cov"`` for
    the attention output projection, ``"mlp_in_cov"`` for the MLP input linears (gate/up or fc1) and
    ``"mlp_mid_cov"`` for the MLP output projection.  ``ValueError`` for any other linear.
    """
    linears = la.named_linears()
    if name not in linears:
        raise ValueError(f"layer {la.index} has no linear {name!r}; linears: {sorted(linears)}")
    module = linears[name]
    if any(module is lin for lin in la.attention_input_linears()):
        return "attn_in_cov"
    if module is la.attention_output_linear():
        return "attn_mid_cov"
    if any(module is lin for lin in la.mlp_input_linears()):
        return "mlp_in_cov"
    if module is la.mlp_output_linear():
        return "mlp_mid_cov"
    raise ValueError(f"layer {la.index}: linear {name!r} is not an attention or MLP projection")


# ---------------------------------------------------------------------------------------------- main
def _run_layer(layer: nn.Module, hidden: torch.Tensor, extra: tuple, kwargs: dict) -> torch.Tensor:
    return _layer_output(layer(hidden, *extra, **kwargs))


@torch.no_grad()
def collect_statistics(
    model: nn.Module,
    input_ids: torch.Tensor,
    *,
    batch_size: int,
    which: Iterable[str] = ALL_STATISTICS,
    progress: bool = True,
    transform_layer: TransformLayer | None = None,
    keep_final_hidden: bool = False,
    keep_layer_statistics: bool = True,
) -> CalibrationStatistics:
    """Collect per-layer calibration statistics, streaming layer by layer (see the module docstring).

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter`; it is run on
            its own device and dtype, in eval mode (its training flag is restored afterwards).
        input_ids: ``(n_samples, seq_len)`` token windows without padding (:func:`calibration_batches`).
        batch_size: calibration rows per forward call (results do not depend on it up to float
            rounding of the activations).
        which: statistic names to collect, a subset of :data:`ALL_STATISTICS`.
        progress: show a per-layer progress bar and log the throughput.
        transform_layer: ``None`` for mode ``"original"``.  Otherwise (mode ``"sequential"``) called as
            ``transform_layer(l, layer_adapter, layer_stats)`` after the statistics of layer ``l``
            are collected and before its outputs are computed: ``layer_stats`` holds that layer's
            statistics with short keys (``"attn_in_cov"``, ``"wanda.mlp.down_proj"``, ``"bi"`` (scalar),
            ``"tokens"``; the same tensors as in the result: do not modify them).  The callback may
            modify the layer in place or replace the module in the decoder's ``ModuleList``; the
            layer is looked up again before its outputs are computed.
        keep_final_hidden: also return the output of the last decoder layer (before the final norm),
            ``(n_samples, seq_len, d)`` in the model dtype, as the ``final_hidden`` attribute.
        keep_layer_statistics: ``False`` (only with ``transform_layer``): the per-layer statistics
            are handed to the callback and then dropped, so the result holds only ``tokens`` and
            ``bi``; peak memory then holds one layer's statistics instead of all of them.

    Returns:
        :class:`CalibrationStatistics` (a ``dict[str, Tensor]`` of float64 CPU tensors keyed
        ``layers.{l}.<name>``, plus ``bi`` (length L, when requested) and ``tokens`` (int64 scalar)),
        with ``elapsed_s`` and ``tokens_per_s`` attributes.
    """
    which = frozenset(which)
    unknown = which - ALL_STATISTICS
    if unknown:
        raise ValueError(f"unknown statistics {sorted(unknown)}; choose from {sorted(ALL_STATISTICS)}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if not keep_layer_statistics and transform_layer is None:
        raise ValueError("keep_layer_statistics=False needs a transform_layer that consumes the statistics")
    input_ids = torch.as_tensor(input_ids)
    if input_ids.dim() != 2 or input_ids.dtype not in (torch.long, torch.int, torch.int32):
        raise ValueError(
            f"input_ids must be an integer tensor (n_samples, seq_len), got {input_ids.dtype} {tuple(input_ids.shape)}"
        )
    adapter = get_adapter(model)
    n_layers = adapter.num_layers
    device = next(model.parameters()).device
    n_samples, seq_len = input_ids.shape
    tokens = n_samples * seq_len

    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        # Embedding stage: layer-0 inputs for every batch; kwargs once per distinct batch size.
        hidden, layer_kwargs = layer0_inputs(model, input_ids, batch_size, device)

        stats = CalibrationStatistics()
        bi = torch.zeros(n_layers, dtype=torch.float64)
        bar = _progress(n_layers, progress)
        for idx in range(n_layers):
            la = adapter.layer(idx)
            acc = _LayerAccumulator(la, which, device)
            propagate_now = transform_layer is None
            try:
                for i, h in enumerate(hidden):
                    extra, kwargs = layer_kwargs[h.shape[0]]
                    out = _run_layer(la.layer, h, extra, kwargs)
                    acc.after_batch(h, out)
                    if propagate_now:
                        hidden[i] = out
                    del out
            finally:
                acc.remove()
            layer_stats = acc.result(tokens)
            del acc
            if "bi" in layer_stats:
                bi[idx] = layer_stats.pop("bi")
            if keep_layer_statistics:
                for key, value in layer_stats.items():
                    stats[f"layers.{idx}.{key}"] = value
            if transform_layer is not None:
                view = dict(layer_stats)
                if "bi" in which:
                    view["bi"] = bi[idx].clone()
                view["tokens"] = torch.tensor(tokens, dtype=torch.int64)
                transform_layer(idx, la, view)
                del view
                layer = adapter.decoder_layers_container()[idx]
                for i, h in enumerate(hidden):
                    extra, kwargs = layer_kwargs[h.shape[0]]
                    hidden[i] = _run_layer(layer, h, extra, kwargs)
            del layer_stats
            bar.update(1)
        bar.close()
        if keep_final_hidden:
            stats.final_hidden = torch.cat(hidden)
        del hidden, layer_kwargs
    finally:
        model.train(was_training)

    if "bi" in which:
        stats["bi"] = bi
    stats["tokens"] = torch.tensor(tokens, dtype=torch.int64)
    stats.elapsed_s = time.perf_counter() - t0
    stats.tokens_per_s = tokens / stats.elapsed_s if stats.elapsed_s > 0 else float("inf")
    stats.mode = "original" if transform_layer is None else "sequential"
    msg = (
        f"calibration ({stats.mode}): {n_layers} layers, {tokens} tokens in {stats.elapsed_s:.1f} s "
        f"({stats.tokens_per_s:.0f} tokens/s)"
    )
    (log.info if progress else log.debug)(msg)
    return stats


def check_linear_inputs(
    statistics: Mapping[str, torch.Tensor], adapter, method: str, which, *, need_tokens: bool = True
) -> None:
    """Raise ``ValueError`` naming the per-linear input covariances (and ``tokens``) that cached
    ``statistics`` lack for ``method``; ``which`` is the statistic set to collect them with."""
    missing = [
        f"layers.{la.index}.{key}"
        for la in adapter.layers()
        for key in sorted({linear_input_statistic(la, name) for name in la.named_linears()})
        if f"layers.{la.index}.{key}" not in statistics
    ]
    if need_tokens and "tokens" not in statistics:
        missing.append("tokens")
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(
            f"cached statistics lack {len(missing)} entries {method} needs: {', '.join(missing[:5])}{more}; "
            f"collect them with which including {sorted(which)}"
        )


def _progress(total: int, enabled: bool):
    try:
        from tqdm.auto import tqdm
    except ImportError:  # pragma: no cover - tqdm is a transformers dependency
        enabled = False
    if enabled:
        return tqdm(total=total, desc="calibration", unit="layer", mininterval=5)

    class _Null:
        def update(self, n: int) -> None:
            pass

        def close(self) -> None:
            pass

    return _Null()


def layer_statistics(stats: Mapping[str, torch.Tensor], layer: int) -> dict[str, torch.Tensor]:
    """The statistics of one layer with short keys (``attn_in_cov``, ``wanda.self_attn.q_proj``, ...)."""
    prefix = f"layers.{layer}."
    return {key[len(prefix) :]: value for key, value in stats.items() if key.startswith(prefix)}


def transform_each_layer(
    model: nn.Module,
    transform,
    *,
    statistics: Mapping[str, torch.Tensor] | None,
    calibration: str,
    calibration_ids: torch.Tensor | None,
    which,
    batch_size: int,
    progress: bool,
) -> tuple[str, int | None]:
    """Call ``transform(l, layer_adapter, layer_stats)`` on every decoder layer with its statistics.

    The statistics come from ``statistics`` (cached, of the original model) when given, else from one
    calibration pass over ``calibration_ids`` collecting ``which``: of the original model
    (``calibration="original"``) or, layer by layer, of the partially transformed model
    (``"sequential"``).  ``layer_stats`` has short keys plus ``"tokens"`` when known.  Returns the
    statistics' source (``"statistics"`` or ``"pass"``) and their token count.
    """
    adapter = get_adapter(model)
    if statistics is not None:
        extra = {"tokens": statistics["tokens"]} if "tokens" in statistics else {}
        for la in adapter.layers():
            transform(la.index, la, {**layer_statistics(statistics, la.index), **extra})
        return "statistics", int(statistics["tokens"]) if extra else None
    sequential = calibration == "sequential"
    stats = collect_statistics(
        model,
        calibration_ids,
        batch_size=batch_size,
        which=which,
        progress=progress,
        transform_layer=transform if sequential else None,
        keep_layer_statistics=not sequential,
    )
    if not sequential:
        for la in adapter.layers():
            transform(la.index, la, {**layer_statistics(stats, la.index), "tokens": stats["tokens"]})
    return "pass", int(stats["tokens"])


# ---------------------------------------------------------------------------------------------- I/O
def save_statistics(stats: Mapping[str, torch.Tensor], path, metadata: Mapping[str, Any]) -> None:
    """Write statistics to a safetensors file, atomically.

    ``metadata`` values are JSON-encoded into the file's str -> str header (expected keys: model,
    n_samples, seq_len, seed, which, plus anything else); ``tokens`` (from ``stats``), ``dtype``
    and, for a :class:`CalibrationStatistics`, ``mode`` and ``elapsed_s`` are added unless given.
    """
    from safetensors.torch import save_file

    meta = dict(metadata)
    if "tokens" in stats:
        meta.setdefault("tokens", int(stats["tokens"]))
    dtypes = sorted({str(t.dtype).removeprefix("torch.") for k, t in stats.items() if k != "tokens"})
    meta.setdefault("dtype", dtypes[0] if len(dtypes) == 1 else dtypes)
    if isinstance(stats, CalibrationStatistics):
        meta.setdefault("mode", stats.mode)
        meta.setdefault("elapsed_s", round(stats.elapsed_s, 3))
    header = {str(k): json.dumps(v, sort_keys=True, default=_json_default) for k, v in meta.items()}
    tensors = {k: t.detach().cpu().contiguous() for k, t in stats.items()}
    with atomic_path(Path(path), suffix=".safetensors") as tmp:
        save_file(tensors, str(tmp), metadata=header)


def _json_default(obj):
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    if isinstance(obj, Path):
        return str(obj)
    raise TypeError(f"metadata value of type {type(obj).__name__} is not JSON serialisable")


def load_statistics(path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read a file written by :func:`save_statistics`: ``(stats, metadata)`` with decoded values."""
    from safetensors import safe_open

    stats: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt") as f:
        header = f.metadata() or {}
        for key in f.keys():
            stats[key] = f.get_tensor(key)
    metadata = {}
    for key, value in header.items():
        try:
            metadata[key] = json.loads(value)
        except json.JSONDecodeError:
            metadata[key] = value
    return stats, metadata
