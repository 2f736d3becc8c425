"""Adapter for ``transformers.PhiForCausalLM`` (microsoft/phi-1, phi-1_5, phi-2).

Attribute mapping (transformers 5.24):

==========================  =====================================================
adapter accessor            transformers attribute
==========================  =====================================================
base_model()                ``model.model`` (``PhiModel``)
embed_tokens()              ``model.model.embed_tokens``
position_embeddings()       ``None`` (partial RoPE)
rotary_embedding()          ``model.model.rotary_emb`` (``PhiRotaryEmbedding``)
decoder_layers_container()  ``model.model.layers`` (``PhiDecoderLayer``)
final_norm()                ``model.model.final_layernorm`` (``nn.LayerNorm``)
lm_head()                   ``model.lm_head`` (**with bias**; untied in the released models)
attention()                 ``layer.self_attn`` (``PhiAttention``)
attention_input_norm()      ``layer.input_layernorm`` (``nn.LayerNorm``)
mlp_input_norm()            ``layer.input_layernorm`` -- the *same* module
q/k/v_proj()                ``layer.self_attn.q_proj`` / ``k_proj`` / ``v_proj`` (with bias)
attention_output_linear()   ``layer.self_attn.dense`` (with bias)
mlp()                       ``layer.mlp`` (``PhiMLP``)
mlp_input_linears()         ``[layer.mlp.fc1]``
mlp_activation()            ``layer.mlp.activation_fn`` (``gelu_new``)
mlp_output_linear()         ``layer.mlp.fc2``
qk_norms()                  ``(layer.self_attn.q_layernorm, k_layernorm)`` if ``config.qk_layernorm``
KV-cache index              ``layer.self_attn.layer_idx``
==========================  =====================================================

Quirks:

* Parallel block with ONE norm: ``out = x + attn(ln(x)) + mlp(ln(x))`` with a single
  ``input_layernorm`` shared by both branches, so ``mlp_input_norm() is attention_input_norm()``.
  There is no ``post_attention_layernorm``.  SliceGPT-style norm folding must fold that one norm
  into q/k/v *and* fc1, and a single rotation serves both branches.
* Partial rotary: only the first ``rotary_dim = int(head_dim * partial_rotary_factor)`` channels of
  each head are rotated (``self_attn.rotary_ndims``; 32 of 80 for phi-2).
* ``config.num_key_value_heads`` exists (equal to the head count in the released models).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import LayerAdapter, ModelAdapter


class PhiLayerAdapter(LayerAdapter):
    """``PhiDecoderLayer``: one shared pre-LayerNorm, parallel attention + GELU MLP."""

    norm_kind = "layer"
    mlp_gated = False

    @property
    def parallel_residual(self) -> bool:
        return True

    def attention(self) -> nn.Module:
        return self.layer.self_attn

    def mlp(self) -> nn.Module:
        return self.layer.mlp

    def attention_norm(self) -> nn.Module:
        return self.layer.input_layernorm

    def mlp_norm(self) -> nn.Module:
        """The shared ``input_layernorm`` (Phi has a single norm per layer)."""
        return self.layer.input_layernorm

    def attention_input_linears(self) -> list[nn.Linear]:
        attn = self.layer.self_attn
        return [attn.q_proj, attn.k_proj, attn.v_proj]

    def attention_output_linear(self) -> nn.Linear:
        return self.layer.self_attn.dense

    def mlp_input_linears(self) -> list[nn.Linear]:
        return [self.layer.mlp.fc1]

    def mlp_output_linear(self) -> nn.Linear:
        return self.layer.mlp.fc2

    def q_proj(self) -> nn.Linear:
        return self.layer.self_attn.q_proj

    def k_proj(self) -> nn.Linear:
        return self.layer.self_attn.k_proj

    def v_proj(self) -> nn.Linear:
        return self.layer.self_attn.v_proj

    def mlp_activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.layer.mlp.activation_fn

    def qk_norms(self) -> tuple[nn.Module, nn.Module] | None:
        attn = self.layer.self_attn
        if getattr(attn, "qk_layernorm", False):
            return attn.q_layernorm, attn.k_layernorm
        return None


class PhiAdapter(ModelAdapter):
    """``PhiForCausalLM``; see the module docstring for the attribute mapping."""

    model_type = "phi"
    model_class_names = ("PhiForCausalLM",)
    layer_adapter_class = PhiLayerAdapter
    norm_kind = "layer"

    @property
    def rotary_dim(self) -> int:
        layers = self.decoder_layers_container()
        if len(layers) and hasattr(layers[0].self_attn, "rotary_ndims"):
            return int(layers[0].self_attn.rotary_ndims)
        return int(self.head_dim * self.config.rope_parameters["partial_rotary_factor"])

    def base_model(self) -> nn.Module:
        return self.model.model

    def embed_tokens(self) -> nn.Embedding:
        return self.model.model.embed_tokens

    def decoder_layers_container(self) -> nn.ModuleList:
        return self.model.model.layers

    def final_norm(self) -> nn.Module:
        return self.model.model.final_layernorm

    def rotary_embedding(self) -> nn.Module:
        return self.model.model.rotary_emb
