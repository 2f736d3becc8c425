"""Adapter for ``transformers.GPTNeoXForCausalLM`` (EleutherAI Pythia, GPT-NeoX-20B).

Attribute mapping (transformers 5.24):

==========================  =====================================================
adapter accessor            transformers attribute
==========================  =====================================================
base_model()                ``model.gpt_neox`` (``GPTNeoXModel``)
embed_tokens()              ``model.gpt_neox.embed_in``
position_embeddings()       ``None`` (partial RoPE)
rotary_embedding()          ``model.gpt_neox.rotary_emb`` (``GPTNeoXRotaryEmbedding``)
decoder_layers_container()  ``model.gpt_neox.layers`` (``GPTNeoXLayer``)
final_norm()                ``model.gpt_neox.final_layer_norm`` (``nn.LayerNorm``)
lm_head()                   ``model.lm_head`` (untied, no bias).  Checkpoints call it ``embed_out``;
                            transformers 5.x renames it on load (``conversion_mapping``), older
                            versions keep ``model.embed_out`` -- both are handled.
attention()                 ``layer.attention`` (``GPTNeoXAttention``)
attention_input_norm()      ``layer.input_layernorm``
attention_input_linears()   ``[layer.attention.query_key_value]`` (fused, with bias)
q/k/v_proj()                :class:`FusedProjectionView` rows of ``query_key_value``
attention_output_linear()   ``layer.attention.dense``
mlp_input_norm()            ``layer.post_attention_layernorm``
mlp()                       ``layer.mlp`` (``GPTNeoXMLP``)
mlp_input_linears()         ``[layer.mlp.dense_h_to_4h]``
mlp_activation()            ``layer.mlp.act`` (GELU)
mlp_output_linear()         ``layer.mlp.dense_4h_to_h``
KV-cache index              ``layer.attention.layer_idx``
==========================  =====================================================

Quirks:

* Fused, head-interleaved qkv.  The attention does
  ``qkv.view(..., num_heads, 3 * head_dim).chunk(3, dim=-1)``, so output rows of
  ``query_key_value`` are grouped per head as ``[q_h, k_h, v_h]``: head ``h`` has q rows
  ``3*h*hd + [0, hd)``, k rows ``3*h*hd + hd + [0, hd)`` and v rows ``3*h*hd + 2*hd + [0, hd)``.
  It is *not* ``[all q | all k | all v]``.  ``q_proj()`` etc. return views with these row indices and
  ``qkv_output_index()`` returns them as index tensors.
* ``use_parallel_residual=True`` (all Pythia models): ``x + attn(ln1(x)) + mlp(ln2(x))`` with two
  separate norms that both read the layer input -- despite its name ``post_attention_layernorm`` is
  then *not* applied after attention.  With ``False`` the block is sequential like LLaMA.
* Partial rotary: ``rotary_dim = int(head_dim * partial_rotary_factor)`` (config key ``rotary_pct``,
  0.25 for Pythia) leading channels of each head are rotated.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from .base import FusedProjectionView, LayerAdapter, ModelAdapter


def interleaved_qkv_rows(num_heads: int, head_dim: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row indices of q, k and v inside a GPT-NeoX ``query_key_value`` output (per-head ``[q_h, k_h, v_h]``)."""
    base = (torch.arange(num_heads) * 3 * head_dim).unsqueeze(1)
    within = torch.arange(head_dim).unsqueeze(0)
    q = (base + within).reshape(-1)
    return q, q + head_dim, q + 2 * head_dim


class GPTNeoXLayerAdapter(LayerAdapter):
    """``GPTNeoXLayer``: two LayerNorms, (usually) parallel residual, fused interleaved qkv, GELU MLP."""

    norm_kind = "layer"
    mlp_gated = False

    @property
    def parallel_residual(self) -> bool:
        return bool(self.layer.use_parallel_residual)

    @property
    def num_heads(self) -> int:
        return self.layer.attention.query_key_value.out_features // (3 * self.head_dim)

    @property
    def num_kv_heads(self) -> int:
        return self.num_heads

    def attention(self) -> nn.Module:
        return self.layer.attention

    def mlp(self) -> nn.Module:
        return self.layer.mlp

    def attention_norm(self) -> nn.Module:
        return self.layer.input_layernorm

    def mlp_norm(self) -> nn.Module:
        return self.layer.post_attention_layernorm

    def attention_input_linears(self) -> list[nn.Linear]:
        return [self.layer.attention.query_key_value]

    def attention_output_linear(self) -> nn.Linear:
        return self.layer.attention.dense

    def mlp_input_linears(self) -> list[nn.Linear]:
        return [self.layer.mlp.dense_h_to_4h]

    def mlp_output_linear(self) -> nn.Linear:
        return self.layer.mlp.dense_4h_to_h

    def qkv_output_index(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return interleaved_qkv_rows(self.num_heads, self.head_dim)

    def _view(self, which: int, name: str) -> FusedProjectionView:
        rows = self.qkv_output_index()[which]
        return FusedProjectionView(self.layer.attention.query_key_value, rows, name)

    def q_proj(self) -> FusedProjectionView:
        return self._view(0, "q")

    def k_proj(self) -> FusedProjectionView:
        return self._view(1, "k")

    def v_proj(self) -> FusedProjectionView:
        return self._view(2, "v")

    def mlp_activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        return self.layer.mlp.act


class GPTNeoXAdapter(ModelAdapter):
    """``GPTNeoXForCausalLM``; see the module docstring for the attribute mapping."""

    model_type = "gpt_neox"
    model_class_names = ("GPTNeoXForCausalLM",)
    layer_adapter_class = GPTNeoXLayerAdapter
    norm_kind = "layer"

    @property
    def rotary_dim(self) -> int:
        layers = self.decoder_layers_container()
        if len(layers) and hasattr(layers[0].attention, "rotary_ndims"):
            return int(layers[0].attention.rotary_ndims)
        factor = self.config.rope_parameters.get("partial_rotary_factor", 1.0)
        return int(self.head_dim * factor)

    def base_model(self) -> nn.Module:
        return self.model.gpt_neox

    def embed_tokens(self) -> nn.Embedding:
        return self.model.gpt_neox.embed_in

    def decoder_layers_container(self) -> nn.ModuleList:
        return self.model.gpt_neox.layers

    def final_norm(self) -> nn.Module:
        return self.model.gpt_neox.final_layer_norm

    def lm_head(self) -> nn.Linear:
        head = getattr(self.model, "lm_head", None)
        return head if head is not None else self.model.embed_out

    def rotary_embedding(self) -> nn.Module:
        return self.model.gpt_neox.rotary_emb
