"""Adapter for ``transformers.OPTForCausalLM`` (facebook/opt-125m ... opt-66b, opt-350m).

Attribute mapping (transformers 5.24):

==========================  =====================================================
adapter accessor            transformers attribute
==========================  =====================================================
base_model()                ``model.model.decoder`` (``OPTDecoder``)
embed_tokens()              ``model.model.decoder.embed_tokens`` (width ``word_embed_proj_dim``)
position_embeddings()       ``model.model.decoder.embed_positions``
                            (``OPTLearnedPositionalEmbedding``, ``max_position_embeddings + 2`` rows)
project_in() / project_out()  ``model.model.decoder.project_in`` / ``project_out`` (``None`` unless
                            ``word_embed_proj_dim != hidden_size``)
rotary_embedding()          ``None``
decoder_layers_container()  ``model.model.decoder.layers`` (``OPTDecoderLayer``)
final_norm()                ``model.model.decoder.final_layer_norm`` (``None`` for post-LN models)
lm_head()                   ``model.lm_head`` (no bias; tied to ``embed_tokens`` by default)
attention()                 ``layer.self_attn`` (``OPTAttention``)
attention_norm()            ``layer.self_attn_layer_norm`` (``nn.LayerNorm`` with bias)
q/k/v_proj()                ``layer.self_attn.q_proj`` / ``k_proj`` / ``v_proj`` (with bias)
attention_output_linear()   ``layer.self_attn.out_proj`` (with bias)
mlp()                       ``None``: the MLP linears live directly on the layer
mlp_norm()                  ``layer.final_layer_norm`` (per-layer, *not* the model's final norm)
mlp_input_linears()         ``[layer.fc1]``
mlp_activation()            ``layer.activation_fn`` (ReLU for all released OPT models)
mlp_output_linear()         ``layer.fc2``
KV-cache index              ``layer.self_attn.layer_idx``
==========================  =====================================================

Quirks:

* Learned positions with offset 2: position ``p`` reads row ``p + 2`` of ``embed_positions``
  (``position_embedding_offset == 2``); positions are derived from the attention mask's cumsum.
* opt-350m has ``word_embed_proj_dim`` (512) != ``hidden_size`` (1024): tokens are embedded at 512,
  ``project_in`` (no bias) lifts them to 1024 before the first layer, and ``project_out`` (no bias)
  maps the final hidden state back to 512 for the (tied) LM head.  The residual stream is
  ``hidden_size`` wide; ``embedding_dim`` is 512.
* opt-350m is also *post-LN* (``config.do_layer_norm_before=False``): each layer norm is applied after
  its residual addition and there is no model-level final norm; ``LayerAdapter.pre_norm`` is then
  ``False`` and ``attention_input_norm()`` / ``mlp_input_norm()`` return ``None``.
* The attention multiplies q by ``head_dim ** -0.5`` right after ``q_proj`` (and calls the kernel with
  scale 1); ``split_qkv_output`` returns the unscaled projection.
* The layer reshapes the hidden state to 2-D ``(batch*seq, d)`` around the MLP: hooks on fc1/fc2 see
  2-D inputs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import LayerAdapter, ModelAdapter


class OPTLayerAdapter(LayerAdapter):
    """``OPTDecoderLayer``: LayerNorm (pre-LN, or post-LN for opt-350m), ReLU fc1/fc2 MLP, biases everywhere."""

    norm_kind = "layer"
    mlp_gated = False

    @property
    def pre_norm(self) -> bool:
        return bool(self.parent.config.do_layer_norm_before)

    def attention(self) -> nn.Module:
        return self.layer.self_attn

    def mlp(self) -> None:
        return None

    def attention_norm(self) -> nn.Module:
        return self.layer.self_attn_layer_norm

    def mlp_norm(self) -> nn.Module:
        return self.layer.final_layer_norm

    def attention_input_linears(self) -> list[nn.Linear]:
        attn = self.layer.self_attn
        return [attn.q_proj, attn.k_proj, attn.v_proj]

    def attention_output_linear(self) -> nn.Linear:
        return self.layer.self_attn.out_proj

    def mlp_input_linears(self) -> list[nn.Linear]:
        return [self.layer.fc1]

    def mlp_output_linear(self) -> nn.Linear:
        return self.layer.fc2

    def q_proj(self) -> nn.Linear:
        return self.layer.self_attn.q_proj

    def k_proj(self) -> nn.Linear:
        return self.layer.self_attn.k_proj

    def v_proj(self) -> nn.Linear:
        return self.layer.self_attn.v_proj

    def mlp_activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.layer.activation_fn


class OPTAdapter(ModelAdapter):
    """``OPTForCausalLM``; see the module docstring for the attribute mapping."""

    model_type = "opt"
    model_class_names = ("OPTForCausalLM",)
    layer_adapter_class = OPTLayerAdapter
    norm_kind = "layer"
    position_embedding_offset = 2

    @property
    def intermediate_size(self) -> int:
        return int(self.config.ffn_dim)

    def base_model(self) -> nn.Module:
        return self.model.model.decoder

    def embed_tokens(self) -> nn.Embedding:
        return self.model.model.decoder.embed_tokens

    def position_embeddings(self) -> nn.Embedding:
        return self.model.model.decoder.embed_positions

    def project_in(self) -> nn.Linear | None:
        return self.model.model.decoder.project_in

    def project_out(self) -> nn.Linear | None:
        return self.model.model.decoder.project_out

    def decoder_layers_container(self) -> nn.ModuleList:
        return self.model.model.decoder.layers

    def final_norm(self) -> nn.Module | None:
        return self.model.model.decoder.final_layer_norm
