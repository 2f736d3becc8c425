"""Adapter for ``transformers.LlamaForCausalLM`` (SmolLM2, LLaMA-2, LLaMA-3).

Attribute mapping (transformers 5.24):

==========================  =====================================================
adapter accessor            transformers attribute
==========================  =====================================================
base_model()                ``model.model`` (``LlamaModel``)
embed_tokens()              ``model.model.embed_tokens`` (``nn.Embedding``)
position_embeddings()       ``None`` (RoPE)
rotary_embedding()          ``model.model.rotary_emb`` (``LlamaRotaryEmbedding``)
decoder_layers_container()  ``model.model.layers`` (``LlamaDecoderLayer``)
final_norm()                ``model.model.norm`` (``LlamaRMSNorm``)
lm_head()                   ``model.lm_head`` (no bias; tied to ``embed_tokens`` when
                            ``config.tie_word_embeddings``, e.g. SmolLM2)
attention()                 ``layer.self_attn`` (``LlamaAttention``)
attention_input_norm()      ``layer.input_layernorm`` (``LlamaRMSNorm``)
q/k/v_proj()                ``layer.self_attn.q_proj`` / ``k_proj`` / ``v_proj``
attention_output_linear()   ``layer.self_attn.o_proj``
mlp_input_norm()            ``layer.post_attention_layernorm`` (``LlamaRMSNorm``)
mlp_input_linears()         ``[layer.mlp.gate_proj, layer.mlp.up_proj]``
mlp_activation()            ``layer.mlp.act_fn`` (SiLU): ``down(act(gate(x)) * up(x))``
mlp_output_linear()         ``layer.mlp.down_proj``
KV-cache index              ``layer.self_attn.layer_idx``
==========================  =====================================================

Quirks: grouped-query attention (``config.num_key_value_heads`` < ``num_attention_heads``; k/v have
``num_kv_heads * head_dim`` rows, query head ``h`` uses kv head ``h // (num_heads // num_kv_heads)``);
``config.head_dim`` may differ from ``hidden_size // num_attention_heads``; RMSNorm has a weight but no
bias; RoPE is applied to the full head (``rotary_dim == head_dim``).  Biases on q/k/v/o exist only when
``config.attention_bias`` and on the MLP only when ``config.mlp_bias``.  The model loops over
``self.layers[: config.num_hidden_layers]``, so ``drop_layers`` must (and does) update the config.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import LayerAdapter, ModelAdapter


class LlamaLayerAdapter(LayerAdapter):
    """``LlamaDecoderLayer``: pre-RMSNorm, sequential residual, separate q/k/v, SwiGLU MLP."""

    norm_kind = "rms"
    mlp_gated = True

    def attention(self) -> nn.Module:
        return self.layer.self_attn

    def mlp(self) -> nn.Module:
        return self.layer.mlp

    def attention_norm(self) -> nn.Module:
        return self.layer.input_layernorm

    def mlp_norm(self) -> nn.Module:
        return self.layer.post_attention_layernorm

    def attention_input_linears(self) -> list[nn.Linear]:
        attn = self.layer.self_attn
        return [attn.q_proj, attn.k_proj, attn.v_proj]

    def attention_output_linear(self) -> nn.Linear:
        return self.layer.self_attn.o_proj

    def mlp_input_linears(self) -> list[nn.Linear]:
        return [self.layer.mlp.gate_proj, self.layer.mlp.up_proj]

    def mlp_output_linear(self) -> nn.Linear:
        return self.layer.mlp.down_proj

    def q_proj(self) -> nn.Linear:
        return self.layer.self_attn.q_proj

    def k_proj(self) -> nn.Linear:
        return self.layer.self_attn.k_proj

    def v_proj(self) -> nn.Linear:
        return self.layer.self_attn.v_proj

    def mlp_activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.layer.mlp.act_fn


class LlamaAdapter(ModelAdapter):
    """``LlamaForCausalLM``; see the module docstring for the attribute mapping."""

    model_type = "llama"
    model_class_names = ("LlamaForCausalLM",)
    layer_adapter_class = LlamaLayerAdapter
    norm_kind = "rms"

    @property
    def rotary_dim(self) -> int:
        return self.head_dim

    def base_model(self) -> nn.Module:
        return self.model.model

    def embed_tokens(self) -> nn.Embedding:
        return self.model.model.embed_tokens

    def decoder_layers_container(self) -> nn.ModuleList:
        return self.model.model.layers

    def final_norm(self) -> nn.Module:
        return self.model.model.norm

    def rotary_embedding(self) -> nn.Module:
        return self.model.model.rotary_emb
