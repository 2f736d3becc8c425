"""Modules of a MoDeGPT-compressed model, its safetensors writer and the ``"modegpt"`` loader.

A MoDeGPT model (brief §4.7) is the original ``transformers`` model class (``LlamaForCausalLM``,
``OPTForCausalLM``, ``PhiForCausalLM``, ``GPTNeoXForCausalLM``) whose decoder layers hold *smaller*
modules; the layer classes, norms, embeddings and the LM head are untouched:

* **Attention** (:class:`ModeGPTAttention`, replacing ``self_attn`` / ``attention``): separate q/k/v
  linears (GPT-NeoX's fused, head-interleaved ``query_key_value`` is split), the head count of the
  original, and per-layer head dimensions ``qk_dim`` (``k_h``, query/key) and ``v_dim`` (``v_h``,
  value/output).  q is ``[num_heads * k_h, d]``, k ``[num_kv_heads * k_h, d]``, v
  ``[num_kv_heads * v_h, d]``, the output projection (named as in the architecture: ``o_proj``,
  ``out_proj`` or ``dense``) ``[d, num_heads * v_h]``.  K and V enter the normal transformers KV
  cache at ``k_h`` and ``v_h`` channels per head, so the cache shrinks with the layer.
* **Kept channels** of each KV group are stored in the persistent buffer ``qk_index``
  (``[num_kv_heads, k_h]``, channel indices into the original head).  The compressed head is laid
  out ``[rotary channels (rot_dim) | pass-through channels]``; the rotary part is
  ``[p, p + rotary_dim/2]`` for the kept RoPE pairs ``p`` (HF's rotate-half convention), so
  ``rotate_half`` of the compressed rotary part pairs the right channels.  RoPE is applied with
  ``cos``/``sin`` gathered per KV group by ``qk_index[:, :rot_dim]``
  (:func:`repro.kernels.rope_gather.apply_rope_gather`: Triton on CUDA, torch elsewhere).
  Partial rotary models (Phi, GPT-NeoX) keep whole pairs inside the rotary part and single channels
  in the pass-through part; OPT (no RoPE) has ``rot_dim == 0``.
* **Softmax scale**: ``"original"`` (default) keeps ``1/sqrt(head_dim)`` of the *original* head
  (the CR approximation preserves ``q.k`` summed over the original ``d_h`` channels);
  ``"compressed"`` uses ``1/sqrt(k_h)`` (what the unofficial cbacary/MoDeGPT rebuild does,
  brief §4.4 pitfall).  OPT's quirk of scaling q right after ``q_proj`` is reproduced.
* **MLP**: the architecture's own MLP with gate/up/down (fc1/fc2, dense_h_to_4h/dense_4h_to_h)
  linears resized to the kept width ``k`` (biases sliced).  The MLP forwards of all four
  architectures have no shape constants, so resized ``nn.Linear`` s are a complete materialisation.

Attention with ``config._attn_implementation`` ``"eager"`` uses the local eager kernel (identical
operations to the transformers eager attention of these architectures); other implementations
(``"sdpa"``) go through ``transformers``' ``ALL_ATTENTION_FUNCTIONS`` (q/k and v may have different
head dims: torch SDPA's math/efficient backends accept that; flash-attention kernels may not).

On disk (:func:`write_weights`): the original ``config.json`` (+ generation config), ``modegpt.json``
(format version, per-layer ``mlp_width`` and attention spec with the kept index tables) and
``model.safetensors`` (the state dict; a tied LM head is stored once, under the embedding's name).
:func:`load_modegpt` (registered as loader ``"modegpt"``) builds the transformers model from the
config, installs :class:`ModeGPTAttention` modules and resized MLP linears from ``modegpt.json``
and loads the weights, checking every key.  No pickle, no ``trust_remote_code``; importing this
module (or :mod:`repro.llm.methods.modegpt`) registers the loader.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.kernels.rope_gather import apply_rope_gather
from repro.llm.adapters import LayerAdapter, ModelAdapter, get_adapter
from repro.llm.compressed import layers_and_rows, read_structured_weights, register_loader, write_structured_weights

__all__ = [
    "ATTENTION_STYLES",
    "DIMS_FILE",
    "FORMAT_VERSION",
    "SOFTMAX_SCALES",
    "WEIGHTS_FILE",
    "ModeGPTAttention",
    "attention_spec",
    "install_attention",
    "is_modegpt_attention",
    "load_modegpt",
    "model_dims",
    "resize_mlp",
    "set_linear",
    "write_weights",
]

#: Version of the on-disk layout written by :func:`write_weights`.
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
DIMS_FILE = "modegpt.json"
#: Accepted ``softmax_scale`` values (see the module docstring).
SOFTMAX_SCALES = ("original", "compressed")

#: ``model_type`` -> name of the attention output projection and whether q is scaled right after
#: ``q_proj`` (OPT) instead of inside the attention kernel.
ATTENTION_STYLES: dict[str, dict[str, Any]] = {
    "llama": {"o_name": "o_proj", "scale_query": False},
    "opt": {"o_name": "out_proj", "scale_query": True},
    "phi": {"o_name": "dense", "scale_query": False},
    "gpt_neox": {"o_name": "dense", "scale_query": False},
}

_SPEC_INT_KEYS = ("num_heads", "num_kv_heads", "head_dim", "qk_dim", "v_dim", "rotary_dim", "rot_dim", "hidden_size")
_SPEC_BOOL_KEYS = ("q_bias", "k_bias", "v_bias", "o_bias")


# ---------------------------------------------------------------------------------------------- helpers
def set_linear(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Give ``linear`` new parameters of any shape in place (``bias=None`` removes the bias).

    Values are cast to the linear's current dtype and device; ``in_features`` / ``out_features``
    follow the new weight.
    """
    ref = linear.weight
    linear.weight = nn.Parameter(weight.detach().to(device=ref.device, dtype=ref.dtype).contiguous(), ref.requires_grad)
    if bias is None:
        linear.bias = None
    else:
        linear.bias = nn.Parameter(bias.detach().to(device=ref.device, dtype=ref.dtype).contiguous(), ref.requires_grad)
    linear.out_features, linear.in_features = linear.weight.shape


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """``[b, n_kv, s, d] -> [b, n_kv * n_rep, s, d]`` (query head ``h`` reads KV head ``h // n_rep``)."""
    if n_rep == 1:
        return x
    b, n_kv, s, d = x.shape
    return x[:, :, None].expand(b, n_kv, n_rep, s, d).reshape(b, n_kv * n_rep, s, d)


def _eager_attention(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs: Any,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Eager softmax attention; q/k have ``k_h`` channels, v has ``v_h`` (output ``[b, s, heads, v_h]``)."""
    key = _repeat_kv(key, module.num_key_value_groups)
    value = _repeat_kv(value, module.num_key_value_groups)
    weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        weights = weights + attention_mask
    weights = nn.functional.softmax(weights, dim=-1, dtype=torch.float32).to(query.dtype)
    weights = nn.functional.dropout(weights, p=dropout, training=module.training)
    out = torch.matmul(weights, value).transpose(1, 2).contiguous()
    return out, weights


def _check_spec(spec: Mapping[str, Any]) -> dict[str, Any]:
    """Validate an attention spec (see :func:`attention_spec`); return a normalised copy."""
    missing = [key for key in (*_SPEC_INT_KEYS, *_SPEC_BOOL_KEYS, "style", "softmax_scale") if key not in spec]
    if missing:
        raise ValueError(f"attention spec lacks {missing}")
    out = dict(spec)
    for key in _SPEC_INT_KEYS:
        out[key] = int(spec[key])
    for key in _SPEC_BOOL_KEYS:
        out[key] = bool(spec[key])
    if out["style"] not in ATTENTION_STYLES:
        raise ValueError(f"unknown attention style {out['style']!r}; known: {sorted(ATTENTION_STYLES)}")
    if out["softmax_scale"] not in SOFTMAX_SCALES:
        raise ValueError(f"softmax_scale must be one of {SOFTMAX_SCALES}, got {out['softmax_scale']!r}")
    h, kv, d_h = out["num_heads"], out["num_kv_heads"], out["head_dim"]
    if kv < 1 or h % kv:
        raise ValueError(f"num_heads {h} must be a positive multiple of num_kv_heads {kv}")
    if not 1 <= out["qk_dim"] <= d_h or not 1 <= out["v_dim"] <= d_h:
        raise ValueError(f"qk_dim {out['qk_dim']} and v_dim {out['v_dim']} must lie in [1, head_dim={d_h}]")
    r, k_rot = out["rotary_dim"], out["rot_dim"]
    if not 0 <= r <= d_h or r % 2:
        raise ValueError(f"rotary_dim {r} must be even and in [0, {d_h}]")
    if k_rot % 2 or not 0 <= k_rot <= min(r, out["qk_dim"]) or (r > 0) != (k_rot > 0):
        raise ValueError(f"rot_dim {k_rot} must be even, in [2, min(rotary_dim, qk_dim)] with RoPE and 0 without")
    if out["qk_dim"] - k_rot > d_h - r:
        raise ValueError(f"qk_dim {out['qk_dim']} - rot_dim {k_rot} exceeds the pass-through channels {d_h - r}")
    return out


def attention_spec(
    adapter: ModelAdapter,
    la: LayerAdapter,
    *,
    qk_dim: int,
    v_dim: int,
    rot_dim: int,
    v_bias: bool,
    o_bias: bool,
    softmax_scale: str = "original",
) -> dict[str, Any]:
    """The spec (JSON-able dict) of the :class:`ModeGPTAttention` replacing ``la``'s attention."""
    q, k = la.q_proj(), la.k_proj()
    return _check_spec(
        {
            "style": adapter.model_type,
            "hidden_size": adapter.hidden_size,
            "num_heads": la.num_heads,
            "num_kv_heads": la.num_kv_heads,
            "head_dim": la.head_dim,
            "qk_dim": qk_dim,
            "v_dim": v_dim,
            "rotary_dim": la.rotary_dim,
            "rot_dim": rot_dim,
            "q_bias": q.bias is not None,
            "k_bias": k.bias is not None,
            "v_bias": v_bias,
            "o_bias": o_bias,
            "softmax_scale": softmax_scale,
        }
    )


# ---------------------------------------------------------------------------------------------- attention
class ModeGPTAttention(nn.Module):
    """Self-attention with per-layer compressed query/key (``k_h``) and value/output (``v_h``) head dims.

    Accepts the calls of all four decoder layers (``hidden_states``, ``position_embeddings``,
    ``attention_mask``, ``cache`` (``past_key_values``) or GPT-NeoX's ``layer_past``, plus
    ``position_ids`` / ``use_cache`` / transformers kwargs) and returns ``(output, attn_weights)``.

    Attributes:
        spec: the validated spec dict (:func:`attention_spec`; ``qk_index`` is the buffer).
        q_proj, k_proj, v_proj: the compressed projections; the output projection is registered
            under the architecture's name (``o_proj`` / ``out_proj`` / ``dense``, see
            :data:`ATTENTION_STYLES`) and also reachable as :attr:`output_linear`.
        qk_index: ``LongTensor [num_kv_heads, qk_dim]``, kept channels of each KV group (persistent).
        scaling: softmax scale (see the module docstring).
    """

    def __init__(
        self,
        config,
        layer_idx: int,
        spec: Mapping[str, Any],
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        spec = _check_spec(spec)
        self.spec = spec
        self.config = config
        self.layer_idx = layer_idx
        self.num_heads = spec["num_heads"]
        self.num_key_value_heads = spec["num_kv_heads"]
        self.num_key_value_groups = self.num_heads // self.num_key_value_heads
        self.head_dim = spec["head_dim"]
        self.qk_dim = spec["qk_dim"]
        self.v_dim = spec["v_dim"]
        self.rot_dim = spec["rot_dim"]
        self.is_causal = True
        self.attention_dropout = float(getattr(config, "attention_dropout", 0.0) or 0.0)
        style = ATTENTION_STYLES[spec["style"]]
        self.o_name = style["o_name"]
        self.scale_query = bool(style["scale_query"])
        base = self.head_dim if spec["softmax_scale"] == "original" else self.qk_dim
        self.scaling = float(base) ** -0.5
        d = spec["hidden_size"]
        kw = {"dtype": dtype, "device": device}
        self.q_proj = nn.Linear(d, self.num_heads * self.qk_dim, bias=spec["q_bias"], **kw)
        self.k_proj = nn.Linear(d, self.num_key_value_heads * self.qk_dim, bias=spec["k_bias"], **kw)
        self.v_proj = nn.Linear(d, self.num_key_value_heads * self.v_dim, bias=spec["v_bias"], **kw)
        self.add_module(self.o_name, nn.Linear(self.num_heads * self.v_dim, d, bias=spec["o_bias"], **kw))
        index = torch.arange(self.qk_dim, device=device).repeat(self.num_key_value_heads, 1)
        self.register_buffer("qk_index", index, persistent=True)

    @property
    def output_linear(self) -> nn.Linear:
        """The output projection (``o_proj`` / ``out_proj`` / ``dense``)."""
        return getattr(self, self.o_name)

    def extra_repr(self) -> str:
        return (
            f"heads={self.num_heads}/{self.num_key_value_heads}, head_dim={self.head_dim}, qk_dim={self.qk_dim}, "
            f"v_dim={self.v_dim}, rot_dim={self.rot_dim}, scaling={self.scaling:.5g}"
        )

    def _rope(self, q: torch.Tensor, k: torch.Tensor, position_embeddings) -> tuple[torch.Tensor, torch.Tensor]:
        if position_embeddings is None:
            raise ValueError("ModeGPTAttention with RoPE channels needs position_embeddings (cos, sin)")
        cos, sin = position_embeddings
        r = self.rot_dim
        index = self.qk_index[:, :r]
        if r == q.shape[-1]:
            return apply_rope_gather(q, k, cos, sin, index, self.num_key_value_groups)
        q_rot, k_rot = apply_rope_gather(q[..., :r], k[..., :r], cos, sin, index, self.num_key_value_groups)
        return torch.cat((q_rot, q[..., r:]), dim=-1), torch.cat((k_rot, k[..., r:]), dim=-1)

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        attention_mask: torch.Tensor | None = None,
        cache=None,
        layer_past=None,
        **kwargs: Any,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        legacy = kwargs.pop("past_key_values", None)
        cache = cache if cache is not None else layer_past if layer_past is not None else legacy
        kwargs.pop("output_attentions", None)
        input_shape = hidden_states.shape[:-1]
        q = self.q_proj(hidden_states)
        if self.scale_query:
            q = q * self.scaling
        q = q.view(*input_shape, self.num_heads, self.qk_dim).transpose(1, 2)
        k = self.k_proj(hidden_states).view(*input_shape, self.num_key_value_heads, self.qk_dim).transpose(1, 2)
        v = self.v_proj(hidden_states).view(*input_shape, self.num_key_value_heads, self.v_dim).transpose(1, 2)
        if self.rot_dim:
            q, k = self._rope(q, k, position_embeddings)
        if cache is not None:
            k, v = cache.update(k, v, self.layer_idx, kwargs=kwargs)
        impl = getattr(self.config, "_attn_implementation", None) or "eager"
        if impl == "eager":
            attention = _eager_attention
        else:
            from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS

            attention = ALL_ATTENTION_FUNCTIONS.get_interface(impl, _eager_attention)
        out, weights = attention(
            self,
            q,
            k,
            v,
            attention_mask,
            dropout=self.attention_dropout if self.training else 0.0,
            scaling=1.0 if self.scale_query else self.scaling,
            **kwargs,
        )
        out = out.reshape(*input_shape, -1).contiguous()
        return self.output_linear(out), weights


def is_modegpt_attention(module: nn.Module | None) -> bool:
    """Whether ``module`` is a :class:`ModeGPTAttention`."""
    return isinstance(module, ModeGPTAttention)


def _attention_slot(la: LayerAdapter) -> str:
    """Name of the attention child of the decoder layer (``self_attn`` / ``attention``)."""
    attn = la.attention()
    for name, child in la.layer.named_children():
        if child is attn:
            return name
    raise RuntimeError(f"cannot find the attention module inside layer {la.index}")


def install_attention(la: LayerAdapter, module: ModeGPTAttention) -> None:
    """Put ``module`` in place of the attention of decoder layer ``la`` (same child name)."""
    setattr(la.layer, _attention_slot(la), module)


def resize_mlp(la: LayerAdapter, width: int, weights: Mapping[str, Any] | None = None) -> None:
    """Resize the MLP of ``la`` to ``width`` intermediate channels, in place.

    Args:
        la: the layer adapter.
        width: new intermediate width ``k``.
        weights: ``{"inputs": [(W [k, d], b or None) per input linear, in mlp_input_linears() order],
            "output": (W [d, k], b or None)}``; ``None`` allocates uninitialised tensors of the right
            shapes (the loader then fills them from the state dict), keeping the bias layout.
    """
    inputs, output = la.mlp_input_linears(), la.mlp_output_linear()
    for i, lin in enumerate(inputs):
        if weights is None:
            ref = lin.weight
            w = torch.empty(width, lin.in_features, dtype=ref.dtype, device=ref.device)
            b = None if lin.bias is None else torch.empty(width, dtype=ref.dtype, device=ref.device)
        else:
            w, b = weights["inputs"][i]
        set_linear(lin, w, b)
    if weights is None:
        ref = output.weight
        w = torch.empty(output.out_features, width, dtype=ref.dtype, device=ref.device)
        b = output.bias
    else:
        w, b = weights["output"]
    set_linear(output, w, b)


def model_dims(model: nn.Module) -> list[dict[str, Any]]:
    """Per-layer ``{"layer", "mlp_width", "attention": spec with "qk_index"}`` of a MoDeGPT model."""
    adapter = get_adapter(model)
    rows = []
    for la in adapter.layers():
        attn = la.attention()
        if not is_modegpt_attention(attn):
            raise ValueError(f"layer {la.index} has no ModeGPTAttention ({type(attn).__name__})")
        spec = dict(attn.spec)
        spec["qk_index"] = attn.qk_index.detach().cpu().tolist()
        rows.append({"layer": la.index, "mlp_width": int(la.mlp_output_linear().in_features), "attention": spec})
    return rows


# ---------------------------------------------------------------------------------------------- disk
def write_weights(model: nn.Module, folder: Path) -> None:
    """``write_weights`` for :func:`repro.llm.compressed.save_compressed`: config, ``modegpt.json``, safetensors."""
    write_structured_weights(
        model,
        folder,
        loader="modegpt",
        layers=model_dims(model),
        record_file=DIMS_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        indent=1,
    )


def apply_structure(model: nn.Module, layers: list[Mapping[str, Any]]) -> ModelAdapter:
    """Install empty :class:`ModeGPTAttention` modules and resized MLPs following ``modegpt.json`` rows."""
    for la, row in layers_and_rows(model, layers, DIMS_FILE):
        spec = {key: value for key, value in row["attention"].items() if key != "qk_index"}
        ref = la.attention_output_linear().weight
        attn = ModeGPTAttention(model.config, la.index, spec, dtype=ref.dtype, device=ref.device)
        if "qk_index" in row["attention"]:
            attn.qk_index.copy_(torch.as_tensor(row["attention"]["qk_index"], dtype=torch.long))
        resize_mlp(la, int(row["mlp_width"]))
        install_attention(la, attn)
    return get_adapter(model)


@register_loader("modegpt")
def load_modegpt(path, record: dict | None = None, dtype: torch.dtype = torch.float32, attn_implementation=None):
    """Rebuild a model written by :func:`write_weights` (the ``"modegpt"`` loader of ``load_compressed``).

    Builds the transformers model of ``config.json`` (random init), installs the structure of
    ``modegpt.json`` (:func:`apply_structure`), loads ``model.safetensors`` and checks that every
    parameter and buffer was loaded (keys shared with another tensor, e.g. a tied LM head, are
    checked to still be tied).
    """
    return read_structured_weights(
        path,
        loader="modegpt",
        label="MoDeGPT",
        record_file=DIMS_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        restructure=apply_structure,
        dtype=dtype,
        attn_implementation=attn_implementation,
    )
