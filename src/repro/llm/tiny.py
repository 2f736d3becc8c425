"""Tiny random-init causal LMs of every supported architecture, for tests and smoke runs.

Each is built from ``transformers``' own config class (no download, no custom code), hidden size 64,
3 decoder layers, vocabulary 128, float32, eval mode, eager attention.  The configs are chosen to
exercise each adapter's quirks:

* ``llama``: ``LlamaConfig`` with 4 query heads over 2 KV heads (GQA) and tied embeddings (SmolLM2);
* ``opt``: ``OPTConfig`` like opt-125m (pre-LN, ReLU, biases, learned positions, tied head);
* ``opt_proj``: ``OPTConfig`` like opt-350m: ``word_embed_proj_dim`` 32 != hidden 64 (``project_in`` /
  ``project_out``) and post-LN (``do_layer_norm_before=False``, no final norm);
* ``phi``: ``PhiConfig`` with ``partial_rotary_factor`` 0.5 (one shared norm, parallel block, head bias);
* ``gpt_neox``: ``GPTNeoXConfig`` with ``rotary_pct`` 0.25 and ``use_parallel_residual`` True.

``initializer_range`` defaults to 0.1 (not transformers' 0.02) so that random logits are far from
uniform and equality tests are meaningful.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import (
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    LlamaConfig,
    LlamaForCausalLM,
    OPTConfig,
    OPTForCausalLM,
    PhiConfig,
    PhiForCausalLM,
    PreTrainedModel,
)

__all__ = ["TINY_MODEL_TYPES", "tiny_config", "tiny_model"]

_COMMON: dict[str, Any] = {
    "vocab_size": 128,
    "hidden_size": 64,
    "num_hidden_layers": 3,
    "num_attention_heads": 4,
    "max_position_embeddings": 128,
    "initializer_range": 0.1,
}

_SPECS: dict[str, tuple[type, type, dict[str, Any]]] = {
    "llama": (
        LlamaConfig,
        LlamaForCausalLM,
        {"intermediate_size": 128, "num_key_value_heads": 2, "tie_word_embeddings": True, "rms_norm_eps": 1e-6},
    ),
    "opt": (
        OPTConfig,
        OPTForCausalLM,
        {"ffn_dim": 128, "word_embed_proj_dim": 64, "do_layer_norm_before": True, "tie_word_embeddings": True},
    ),
    "opt_proj": (
        OPTConfig,
        OPTForCausalLM,
        {"ffn_dim": 128, "word_embed_proj_dim": 32, "do_layer_norm_before": False, "tie_word_embeddings": True},
    ),
    "phi": (
        PhiConfig,
        PhiForCausalLM,
        {"intermediate_size": 128, "partial_rotary_factor": 0.5, "tie_word_embeddings": False},
    ),
    "gpt_neox": (
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        {"intermediate_size": 128, "rotary_pct": 0.25, "use_parallel_residual": True, "tie_word_embeddings": False},
    ),
}

#: The names :func:`tiny_model` accepts.
TINY_MODEL_TYPES: tuple[str, ...] = tuple(_SPECS)


def tiny_config(model_type: str, **overrides: Any):
    """The ``PreTrainedConfig`` :func:`tiny_model` would use, with ``overrides`` applied."""
    if model_type not in _SPECS:
        raise ValueError(f"unknown tiny model type {model_type!r}; choose one of {', '.join(TINY_MODEL_TYPES)}")
    config_cls, _, extra = _SPECS[model_type]
    kwargs = {**_COMMON, **extra, **overrides}
    config = config_cls(**kwargs)
    config._attn_implementation = "eager"
    return config


def tiny_model(model_type: str, seed: int = 0, **overrides: Any) -> PreTrainedModel:
    """Build a random-init tiny causal LM (float32, eval mode, eager attention).

    Args:
        model_type: one of :data:`TINY_MODEL_TYPES` (``llama``, ``opt``, ``opt_proj``, ``phi``, ``gpt_neox``).
        seed: initialisation seed (the global RNG state is left untouched).
        **overrides: config keyword arguments replacing the defaults (e.g. ``num_hidden_layers=2``).
    """
    config = tiny_config(model_type, **overrides)
    model_cls = _SPECS[model_type][1]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = model_cls(config)
    return model.to(torch.float32).eval()
