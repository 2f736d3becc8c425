"""DynaMo's multi-token model: a pretrained causal LM plus new token heads on its penultimate layer.

Own implementation from the brief (``shared/papers/dynamo.md`` §2; no official code exists).  For a
model with ``L`` decoder layers (the paper's "T3" design, brief §2.2):

* the **stem** is layers ``0 .. L-2``;
* **head 1** is the original last layer, final norm and LM head: the unchanged base model;
* **heads 2 .. n** are one *new* decoder layer each, of the base model's own layer class, fed by the
  stem output (the penultimate hidden state) and sharing the base LM head.  Head ``j`` predicts the
  token ``j`` positions ahead.

Defaults and where they come from:

* ``init="normal"``: new layers randomly initialised (paper App. A.1, "we randomly initialize their
  weights"), with transformers' own ``_init_weights`` (normal(0, ``initializer_range``) linears,
  zero biases, unit norms; the paper does not name a scheme, brief §2.3).  ``"copy_last"`` copies
  the base model's last layer (the paper's "(C)" ablation);
* ``own_norm=True``: each new head has its own final norm initialised from the base model's (the
  brief's recommendation; the paper does not say; ``False`` shares the base norm);
* the shared LM head is the base model's (paper: shared ``embed_out``).

Parameter overhead (brief §2.2): the new layers (+ their norms).  For GPT-NeoX one layer holds
``12 d^2 + 13 d`` parameters, which reproduces the paper's Table 4 (Pythia-70M: +6,304,768, 8.95 %);
:func:`layer_parameters_from_config` computes it from a config without building a model.

KV caches: every layer, old and new, attends over all previous positions, so each new head keeps
its own cache (:class:`MultiTokenCache`), filled at every processed token.  The causal mask and the
rotary position embeddings are built once per call, exactly as the base model builds them, and
shared by the stem, head 1 and the new heads (all caches always hold the same number of tokens).
Supported architectures: Llama (SmolLM2) and GPT-NeoX (Pythia), through the LLM adapters.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from repro.llm.adapters import get_adapter

__all__ = [
    "INITS",
    "GradScale",
    "MultiTokenCache",
    "MultiTokenModel",
    "head_losses",
    "layer_parameters_from_config",
]

INITS = ("normal", "copy_last")
SUPPORTED_MODEL_TYPES = ("llama", "gpt_neox")
_CACHE_KEYWORDS = ("cache", "past_key_values", "layer_past", "past_key_value")


@functools.cache
def cache_keyword(fn: Callable) -> str:
    """The keyword under which ``fn`` (a decoder layer's or model's ``forward``, or
    ``create_causal_mask``) takes its KV cache: ``layer_past`` for GPT-NeoX layers, and ``cache`` in
    transformers >= 5.2x where earlier 5.x releases said ``past_key_values``."""
    params = inspect.signature(fn).parameters
    for name in _CACHE_KEYWORDS:
        if name in params:
            return name
    raise TypeError(f"{getattr(fn, '__qualname__', fn)} takes none of the KV-cache keywords {_CACHE_KEYWORDS}")


def layer_parameters_from_config(config: Any) -> int:
    """Parameters of one decoder layer of a Llama or GPT-NeoX config (no model built).

    GPT-NeoX: qkv ``3 d^2 + 3 d``, dense ``d^2 + d``, MLP ``2 d d_int + d_int + d``, two LayerNorms
    ``4 d`` (with ``d_int = 4 d``: ``12 d^2 + 13 d``, brief §2.2).  Llama: q/k/v/o, gate/up/down and
    two RMSNorms (biases when ``attention_bias`` / ``mlp_bias``).
    """
    mt = getattr(config, "model_type", None)
    d = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    hd = int(getattr(config, "head_dim", None) or d // heads)
    kv = int(getattr(config, "num_key_value_heads", None) or heads)
    di = int(config.intermediate_size)
    if mt == "gpt_neox":
        qkv = 3 * heads * hd
        bias = bool(getattr(config, "attention_bias", True))
        return d * qkv + qkv * bias + heads * hd * d + d * bias + 2 * d * di + di + d + 4 * d
    if mt == "llama":
        q, k = heads * hd, kv * hd
        attn_bias = bool(getattr(config, "attention_bias", False))
        mlp_bias = bool(getattr(config, "mlp_bias", False))
        attn = d * (q + 2 * k) + q * d + (q + 2 * k + d) * attn_bias
        mlp = 3 * d * di + (2 * di + d) * mlp_bias
        return attn + mlp + 2 * d
    raise ValueError(f"DynaMo heads support llama and gpt_neox configs; got model_type {mt!r}")


class GradScale(torch.autograd.Function):
    """Identity forward, gradient times ``scale`` backward.

    Implements the paper's LR_MB (brief §3.3, option A): gradients from heads 2..n reach the stem
    scaled by ``LR_MB / LR_B`` (0.1), exact under SGD, a 10x down-weighting under Adam.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, scale: float) -> torch.Tensor:  # noqa: D102
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # noqa: D102
        return grad * ctx.scale, None


@dataclass
class MultiTokenCache:
    """KV caches of the base model (stem + head 1) and of every new head (one layer each)."""

    base: Any
    heads: list[Any] = field(default_factory=list)

    def get_seq_length(self) -> int:
        """Tokens processed so far (all caches hold the same number)."""
        return int(self.base.get_seq_length())


class MultiTokenModel(nn.Module):
    """A causal LM with ``n_heads`` token heads (DynaMo "T<n_heads>"); see the module docstring.

    Args:
        base: a Llama or GPT-NeoX ``*ForCausalLM`` (its weights are used as they are, not copied).
        n_heads: number of token heads, >= 1 (1 is the base model).
        own_norm: give each new head its own final norm (initialised from the base norm).
        init: ``"normal"`` (transformers' init, seeded) or ``"copy_last"``.
        seed: seed of the new layers' initialisation (the global RNG is restored).
    """

    def __init__(
        self, base: nn.Module, n_heads: int = 3, own_norm: bool = True, init: str = "normal", seed: int = 0
    ) -> None:
        super().__init__()
        if n_heads < 1:
            raise ValueError(f"n_heads must be >= 1, got {n_heads}")
        if init not in INITS:
            raise ValueError(f"init must be one of {INITS}, got {init!r}")
        adapter = get_adapter(base)
        if adapter.model_type not in SUPPORTED_MODEL_TYPES:
            raise ValueError(
                f"DynaMo heads support {list(SUPPORTED_MODEL_TYPES)}; got model_type {adapter.model_type!r}"
            )
        if adapter.num_layers < 2:
            raise ValueError("DynaMo needs at least 2 decoder layers (a stem and head 1)")
        self.base = base
        self.n_heads = int(n_heads)
        self.own_norm = bool(own_norm)
        self.init = init
        self.model_type = adapter.model_type
        last = adapter.decoder_layers_container()[-1]
        ref = next(base.parameters())
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            layers = []
            for _ in range(self.n_heads - 1):
                if init == "copy_last":
                    layer = copy.deepcopy(last)
                else:
                    layer = type(last)(base.config, layer_idx=0)
                    layer.apply(base._init_weights)
                _set_layer_idx(layer, 0)  # each new head has a cache of its own with one layer
                layers.append(layer.to(device=ref.device, dtype=ref.dtype))
        self.extra_layers = nn.ModuleList(layers)
        norm = adapter.final_norm()
        self.extra_norms = nn.ModuleList(copy.deepcopy(norm) for _ in layers) if own_norm else nn.ModuleList()

    # ------------------------------------------------------------------------------------------ parts
    @property
    def adapter(self):
        return get_adapter(self.base)

    def new_parameters(self) -> list[nn.Parameter]:
        """Parameters of the new heads (layers and own norms): the paper's LR_M group."""
        return [*self.extra_layers.parameters(), *self.extra_norms.parameters()]

    def parameter_overhead(self) -> dict[str, float]:
        """``base`` parameters (unique), ``extra`` (new heads) and ``overhead`` = extra / base."""
        base = sum(p.numel() for p in {id(p): p for p in self.base.parameters()}.values())
        extra = sum(p.numel() for p in self.new_parameters())
        return {"base": base, "extra": extra, "overhead": extra / base}

    def new_cache(self) -> MultiTokenCache:
        """Empty caches for incremental decoding."""
        from transformers import DynamicCache

        return MultiTokenCache(
            DynamicCache(config=self.base.config), [DynamicCache(config=self.base.config) for _ in self.extra_layers]
        )

    def _layer(self, layer: nn.Module, h, mask, position_ids, position_embeddings, cache) -> torch.Tensor:
        kwargs = {cache_keyword(type(layer).forward): cache, "use_cache": cache is not None}
        out = layer(
            h, attention_mask=mask, position_ids=position_ids, position_embeddings=position_embeddings, **kwargs
        )
        return out[0] if isinstance(out, tuple) else out

    # ------------------------------------------------------------------------------------------ forward
    def _context(self, x: torch.Tensor, cache: MultiTokenCache | None = None):
        """Causal mask, position ids and rotary embeddings for hidden states ``x`` ``(B, T, d)``,
        built as the base model builds them (positions continue after the cached tokens)."""
        from transformers.masking_utils import create_causal_mask

        past = cache.get_seq_length() if cache is not None else 0
        position_ids = (torch.arange(x.shape[1], device=x.device) + past).unsqueeze(0)
        mask = create_causal_mask(
            config=self.base.config,
            inputs_embeds=x,
            attention_mask=None,
            position_ids=position_ids,
            **{cache_keyword(create_causal_mask): cache.base if cache is not None else None},
        )
        rotary = self.adapter.rotary_embedding()
        pos_emb = rotary(x, position_ids=position_ids) if rotary is not None else None
        return mask, position_ids, pos_emb

    def _stem(self, embeds: torch.Tensor, context, cache: MultiTokenCache | None) -> torch.Tensor:
        h = embeds
        for layer in self.adapter.decoder_layers_container()[:-1]:
            h = self._layer(layer, h, *context, cache.base if cache is not None else None)
        return h

    def _head(self, j: int, stem: torch.Tensor, context, cache: MultiTokenCache | None) -> torch.Tensor:
        """Final-normed hidden state of head ``j`` (1-based) from the stem output."""
        final_norm = self.adapter.final_norm()
        if j == 1:
            last = self.adapter.decoder_layers_container()[-1]
            return final_norm(self._layer(last, stem, *context, cache.base if cache is not None else None))
        x = self._layer(self.extra_layers[j - 2], stem, *context, cache.heads[j - 2] if cache is not None else None)
        return (self.extra_norms[j - 2] if self.own_norm else final_norm)(x)

    def hidden_states(
        self,
        input_ids: torch.LongTensor,
        cache: MultiTokenCache | None = None,
        heads: int | None = None,
        stem_grad_scale: float = 1.0,
    ) -> list[torch.Tensor]:
        """Final-normed hidden states of heads ``1 .. heads`` (default all), each ``(B, T, d)``.

        ``cache`` (from :meth:`new_cache`) makes the call incremental: ``input_ids`` are the new
        tokens, and every head must run (their caches stay aligned).  ``stem_grad_scale`` scales the
        gradient that heads 2.. send into the stem (:class:`GradScale`).
        """
        heads = self.n_heads if heads is None else int(heads)
        if not 1 <= heads <= self.n_heads:
            raise ValueError(f"heads must be in 1..{self.n_heads}, got {heads}")
        if cache is not None and heads < self.n_heads:
            raise ValueError("an incremental call must run every head (their caches must stay aligned)")
        embeds = self.adapter.embed_tokens()(input_ids)
        context = self._context(embeds, cache)
        stem = self._stem(embeds, context, cache)
        outs = [self._head(1, stem, context, cache)]
        branch = GradScale.apply(stem, stem_grad_scale) if heads > 1 and stem_grad_scale != 1.0 else stem
        outs += [self._head(j, branch, context, cache) for j in range(2, heads + 1)]
        return outs

    def heads_from_stem(self, stem: torch.Tensor, heads: Sequence[int] | None = None) -> list[torch.Tensor]:
        """Final-normed hidden states of ``heads`` (1-based; default 2 .. n) from stem outputs ``(B, T, d)``
        of full sequences: the path of training with a frozen base, where the stem output is computed
        once and cached (positions ``0 .. T-1``, causal, no KV cache)."""
        heads = range(2, self.n_heads + 1) if heads is None else heads
        context = self._context(stem)
        return [self._head(j, stem, context, None) for j in heads]

    @torch.no_grad()
    def stem_states(self, input_ids: torch.LongTensor) -> torch.Tensor:
        """Stem output (the penultimate hidden state) of full sequences ``(B, T)`` -> ``(B, T, d)``."""
        embeds = self.adapter.embed_tokens()(input_ids)
        return self._stem(embeds, self._context(embeds), None)

    def logits(self, hidden: torch.Tensor, head: int, unembed_grad_scale: float = 1.0) -> torch.Tensor:
        """Logits of head ``head`` (1-based) from its hidden states, through the shared LM head."""
        lm = self.adapter.lm_head()
        weight = lm.weight
        if head > 1 and unembed_grad_scale != 1.0:
            weight = GradScale.apply(weight, unembed_grad_scale)
        return F.linear(hidden, weight, lm.bias)

    def forward(
        self, input_ids: torch.LongTensor, cache: MultiTokenCache | None = None, last_only: bool = False
    ) -> list[torch.Tensor]:
        """Logits of every head at every position: a list of ``n_heads`` tensors ``(B, T, V)``.

        ``last_only``: only the last position's logits, ``(B, 1, V)`` per head (decoding needs no
        more; the unembedding is the largest matrix of a small model, as ``logits_to_keep=1``)."""
        hidden = self.hidden_states(input_ids, cache)
        if last_only:
            hidden = [h[:, -1:] for h in hidden]
        return [self.logits(h, j + 1) for j, h in enumerate(hidden)]


def head_losses(logits: Sequence[torch.Tensor], input_ids: torch.LongTensor) -> list[torch.Tensor]:
    """Mean cross-entropy of head ``j`` (1-based) predicting ``x_{t+j}`` from positions ``t`` (brief §3.1).

    Every shift is taken from the *original* ids (the label-shift pitfall of brief §3.1/§9): head ``j``
    scores ``logits[:, : T - j]`` against ``input_ids[:, j:]``.  A head with no valid position
    (``j >= T``) raises ``ValueError``.
    """
    T = input_ids.shape[1]
    losses = []
    for j, lg in enumerate(logits, start=1):
        if j >= T:
            raise ValueError(f"head {j} needs sequences longer than {j} tokens, got {T}")
        pred = lg[:, : T - j].reshape(-1, lg.shape[-1])
        losses.append(F.cross_entropy(pred.float(), input_ids[:, j:].reshape(-1)))
    return losses


def _set_layer_idx(layer: nn.Module, index: int) -> None:
    for module in layer.modules():
        if hasattr(module, "layer_idx"):
            module.layer_idx = index
