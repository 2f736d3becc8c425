"""Modules of a SliceGPT-compressed model, its safetensors writer and the ``"slicegpt"`` loader.

A sliced model is still the original ``transformers`` model class (``LlamaForCausalLM``, ...), with:

* every norm replaced by :class:`RMSN`: a weightless RMSNorm whose mean divides by the *original*
  hidden size ``d`` (the norm scales and biases were folded into the linears that read it; after
  slicing the dropped principal components carry little energy, so ``sum(x**2) / d`` over the kept
  ``d'`` channels approximates the full-width statistic -- the official ``RMSN(mean_dim=d)``);
* decoder layers whose class is swapped *in place* to a subclass of the transformers layer
  (:class:`SlicedLlamaDecoderLayer`, :class:`SlicedOPTDecoderLayer`, :class:`SlicedPhiDecoderLayer`,
  :class:`SlicedGPTNeoXLayer`).  The subclass keeps every attribute of the original layer (so the
  architecture adapters keep working) and only overrides ``forward`` to multiply the residual
  shortcut by ``attn_shortcut_Q`` (``d_in x d_mid``) and ``mlp_shortcut_Q`` (``d_mid x d_out``),
  the official names.  Parallel-residual layers (Phi, GPT-NeoX with ``use_parallel_residual``)
  have one shortcut, ``attn_shortcut_Q`` (``d_in x d_out``); ``mlp_shortcut_Q`` is then ``None``.
  A shortcut that is ``None`` is the identity;
* linears and embeddings of the sliced widths (a linear may also have gained a bias: a LayerNorm's
  ``beta`` folded into a linear without bias, e.g. OPT's LM head).

On disk (:func:`write_weights`): ``config.json`` of the (untied) original architecture plus
``model.safetensors`` with the full state dict and a ``slicegpt`` JSON entry in its header.
:func:`load_sliced` (registered as loader ``"slicegpt"``) builds the transformers model from the
config, applies the same structural changes (norms -> :class:`RMSN`, layer classes), resizes every
linear / embedding / shortcut to the saved shapes and loads the state dict strictly.  No pickle and
no ``trust_remote_code``; importing this module (or :mod:`repro.llm.methods.slicegpt`) registers
the loader.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers.models.gpt_neox.modeling_gpt_neox import GPTNeoXLayer
from transformers.models.llama.modeling_llama import LlamaDecoderLayer
from transformers.models.opt.modeling_opt import OPTDecoderLayer
from transformers.models.phi.modeling_phi import PhiDecoderLayer

from repro.llm.adapters import ModelAdapter, get_adapter
from repro.llm.compressed import register_loader

__all__ = [
    "FORMAT_VERSION",
    "RMSN",
    "SlicedGPTNeoXLayer",
    "SlicedLlamaDecoderLayer",
    "SlicedOPTDecoderLayer",
    "SlicedPhiDecoderLayer",
    "convert_norms",
    "is_sliced_layer",
    "load_sliced",
    "make_sliced_layer",
    "norm_parameters",
    "replace_module",
    "set_embedding",
    "set_linear",
    "write_weights",
]

#: Version of the on-disk layout written by :func:`write_weights`.
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"


# ---------------------------------------------------------------------------------------------- norm
class RMSN(nn.Module):
    """Weightless RMSNorm ``x / sqrt(sum(x**2) / mean_dim + eps)`` over the last dimension.

    ``mean_dim`` is the hidden size of the *unsliced* model, so the module works for any input
    width (the official SliceGPT ``RMSN``).  Half-precision inputs are normalised in float32.
    """

    def __init__(self, mean_dim: int, eps: float) -> None:
        super().__init__()
        self.mean_dim = int(mean_dim)
        self.eps = float(eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dtype = x.dtype
        xf = x.float() if dtype in (torch.float16, torch.bfloat16) else x
        variance = xf.pow(2).sum(-1, keepdim=True) / self.mean_dim
        return (xf * torch.rsqrt(variance + self.eps)).to(dtype)

    def extra_repr(self) -> str:
        return f"mean_dim={self.mean_dim}, eps={self.eps:g}"


def norm_parameters(norm: nn.Module) -> tuple[torch.Tensor | None, torch.Tensor | None, float, bool]:
    """``(scale, bias, eps, centres)`` of a LayerNorm / LLaMA RMSNorm / :class:`RMSN` module.

    ``centres`` is ``True`` for a norm that subtracts the mean (``nn.LayerNorm``).  Raises
    ``TypeError`` for norm kinds whose folding is not implemented (e.g. ``1 + weight`` scales).
    """
    if isinstance(norm, RMSN):
        return None, None, norm.eps, False
    if isinstance(norm, nn.LayerNorm):
        return norm.weight, norm.bias, float(norm.eps), True
    eps = getattr(norm, "variance_epsilon", None)
    if eps is not None and type(norm).__name__.endswith("RMSNorm") and not hasattr(norm, "bias"):
        return norm.weight, None, float(eps), False
    raise TypeError(f"SliceGPT cannot fold a norm of type {type(norm).__name__}")


def replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> int:
    """Replace every child reference to ``old`` inside ``root`` by ``new``; return how many."""
    n = 0
    for module in list(root.modules()):
        for name, child in list(module._modules.items()):
            if child is old:
                setattr(module, name, new)
                n += 1
    return n


def convert_norms(adapter: ModelAdapter, hidden_size: int) -> list[RMSN]:
    """Replace every layer norm and the final norm by :class:`RMSN` (``mean_dim=hidden_size``).

    The norms' scales and biases are *dropped*: fold them first (``slicegpt.fuse_norms``), or load
    weights in which they were folded (the loader).  A norm shared by two roles (Phi) is replaced
    once.  Returns the new modules.
    """
    norms: list[nn.Module] = []
    for la in adapter.layers():
        for norm in (la.attention_input_norm(), la.mlp_input_norm()):
            if norm is not None and all(norm is not n for n in norms):
                norms.append(norm)
    final = adapter.final_norm()
    if final is not None:
        norms.append(final)
    new_norms = []
    for norm in norms:
        if isinstance(norm, RMSN):
            new_norms.append(norm)
            continue
        _, _, eps, _ = norm_parameters(norm)
        new = RMSN(hidden_size, eps)
        if replace_module(adapter.model, norm, new) == 0:
            raise RuntimeError(f"could not find {type(norm).__name__} inside the model")
        new_norms.append(new)
    return new_norms


# ---------------------------------------------------------------------------------------------- resizing
def set_linear(linear: nn.Linear, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
    """Give ``linear`` new parameters (any shape; ``bias=None`` removes the bias), in place.

    The values are cast to the linear's current dtype and device; ``in_features`` /
    ``out_features`` follow the new weight.
    """
    ref = linear.weight
    linear.weight = nn.Parameter(weight.detach().to(device=ref.device, dtype=ref.dtype).contiguous(), ref.requires_grad)
    if bias is None:
        linear.bias = None
    else:
        linear.bias = nn.Parameter(bias.detach().to(device=ref.device, dtype=ref.dtype).contiguous(), ref.requires_grad)
    linear.out_features, linear.in_features = linear.weight.shape


def set_embedding(embedding: nn.Embedding, weight: torch.Tensor) -> None:
    """Give ``embedding`` a new ``(num_embeddings, dim)`` weight in place (its class, e.g. OPT's offset positions, is kept)."""
    ref = embedding.weight
    embedding.weight = nn.Parameter(
        weight.detach().to(device=ref.device, dtype=ref.dtype).contiguous(), ref.requires_grad
    )
    embedding.num_embeddings, embedding.embedding_dim = embedding.weight.shape


# ---------------------------------------------------------------------------------------------- layers
def _shortcut(x: torch.Tensor, q: torch.Tensor | None) -> torch.Tensor:
    return x if q is None else torch.matmul(x, q)


class _SlicedLayerMixin:
    """Marker of a decoder layer whose residual shortcuts carry SliceGPT's rotation matrices."""

    attn_shortcut_Q: nn.Parameter | None
    mlp_shortcut_Q: nn.Parameter | None


class SlicedLlamaDecoderLayer(_SlicedLayerMixin, LlamaDecoderLayer):
    """``LlamaDecoderLayer`` with ``h = x Q_attn + attn(n1(x)); out = h Q_mlp + mlp(n2(h))``."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        residual = hidden_states
        attn, _ = self.self_attn(
            hidden_states=self.input_layernorm(hidden_states),
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        hidden_states = _shortcut(residual, self.attn_shortcut_Q) + attn
        residual = hidden_states
        mlp = self.mlp(self.post_attention_layernorm(hidden_states))
        return _shortcut(residual, self.mlp_shortcut_Q) + mlp


class SlicedOPTDecoderLayer(_SlicedLayerMixin, OPTDecoderLayer):
    """Pre-LN ``OPTDecoderLayer`` with shortcut matrices (post-LN OPT-350m is not sliceable)."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        cache=None,
        use_cache: bool | None = False,
        position_ids: torch.LongTensor | None = None,
        **kwargs,
    ) -> torch.Tensor:
        residual = hidden_states
        attn, _ = self.self_attn(
            hidden_states=self.self_attn_layer_norm(hidden_states),
            cache=cache,
            position_ids=position_ids,
            attention_mask=attention_mask,
            **kwargs,
        )
        attn = nn.functional.dropout(attn, p=self.dropout, training=self.training)
        hidden_states = _shortcut(residual, self.attn_shortcut_Q) + attn
        residual = hidden_states
        mlp = self.fc2(self.activation_fn(self.fc1(self.final_layer_norm(hidden_states))))
        mlp = nn.functional.dropout(mlp, p=self.dropout, training=self.training)
        return _shortcut(residual, self.mlp_shortcut_Q) + mlp


class SlicedPhiDecoderLayer(_SlicedLayerMixin, PhiDecoderLayer):
    """``PhiDecoderLayer`` (parallel, one shared norm): ``out = x Q + attn(n(x)) + mlp(n(x))``."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        cache=None,
        use_cache: bool | None = False,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        normed = self.input_layernorm(hidden_states)
        attn, _ = self.self_attn(
            hidden_states=normed,
            attention_mask=attention_mask,
            position_ids=position_ids,
            cache=cache,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        attn = self.resid_dropout(attn)
        mlp = self.resid_dropout(self.mlp(normed))
        return attn + mlp + _shortcut(hidden_states, self.attn_shortcut_Q)


class SlicedGPTNeoXLayer(_SlicedLayerMixin, GPTNeoXLayer):
    """``GPTNeoXLayer``: parallel (one shortcut) or sequential (two shortcuts) residual."""

    def forward(
        self,
        hidden_states: torch.Tensor,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        use_cache: bool | None = False,
        layer_past=None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        **kwargs,
    ) -> torch.Tensor:
        attn, _ = self.attention(
            self.input_layernorm(hidden_states),
            attention_mask=attention_mask,
            position_ids=position_ids,
            layer_past=layer_past,
            use_cache=use_cache,
            position_embeddings=position_embeddings,
            **kwargs,
        )
        attn = self.post_attention_dropout(attn)
        if self.use_parallel_residual:
            mlp = self.post_mlp_dropout(self.mlp(self.post_attention_layernorm(hidden_states)))
            return mlp + attn + _shortcut(hidden_states, self.attn_shortcut_Q)
        hidden_states = _shortcut(hidden_states, self.attn_shortcut_Q) + attn
        mlp = self.post_mlp_dropout(self.mlp(self.post_attention_layernorm(hidden_states)))
        return _shortcut(hidden_states, self.mlp_shortcut_Q) + mlp


_SLICED_CLASSES: dict[type, type] = {
    LlamaDecoderLayer: SlicedLlamaDecoderLayer,
    OPTDecoderLayer: SlicedOPTDecoderLayer,
    PhiDecoderLayer: SlicedPhiDecoderLayer,
    GPTNeoXLayer: SlicedGPTNeoXLayer,
}


def is_sliced_layer(layer: nn.Module) -> bool:
    """Whether ``layer`` already has SliceGPT shortcut slots."""
    return isinstance(layer, _SlicedLayerMixin)


def make_sliced_layer(layer: nn.Module) -> nn.Module:
    """Swap the class of a transformers decoder layer to its sliced subclass, in place.

    Registers the parameter slots ``attn_shortcut_Q`` and ``mlp_shortcut_Q`` (both ``None``, i.e.
    identity shortcuts, until assigned), so with square identity-free weights the layer computes
    exactly what the original did.  Returns the same object.
    """
    if is_sliced_layer(layer):
        return layer
    cls = _SLICED_CLASSES.get(type(layer))
    if cls is None:
        raise TypeError(
            f"no SliceGPT layer for {type(layer).__name__}; supported: {[c.__name__ for c in _SLICED_CLASSES]}"
        )
    if isinstance(layer, OPTDecoderLayer) and not layer.do_layer_norm_before:
        raise ValueError("post-LN OPT layers (do_layer_norm_before=False) cannot be sliced")
    layer.__class__ = cls
    layer.register_parameter("attn_shortcut_Q", None)
    layer.register_parameter("mlp_shortcut_Q", None)
    return layer


# ---------------------------------------------------------------------------------------------- disk
def write_weights(model: nn.Module, folder: Path) -> None:
    """``write_weights`` for :func:`repro.llm.compressed.save_compressed`: config + safetensors state dict."""
    from safetensors.torch import save_file

    folder = Path(folder)
    adapter = get_adapter(model)
    if adapter.tied_embeddings:
        raise ValueError("a sliced model must have untied embeddings (its LM head keeps its own weight)")
    layers = adapter.decoder_layers_container()
    if not all(is_sliced_layer(layer) for layer in layers):
        raise ValueError("write_weights expects a model sliced by repro.llm.methods.slicegpt (shortcut layers)")
    model.config.save_pretrained(folder)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        generation_config.save_pretrained(folder)
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    header = {
        "format_version": FORMAT_VERSION,
        "model_type": adapter.model_type,
        "hidden_size": adapter.hidden_size,
        "embedding_width": int(adapter.embed_tokens().embedding_dim),
        "layer_classes": sorted({type(layer).__name__ for layer in layers}),
    }
    save_file(state, str(folder / WEIGHTS_FILE), metadata={"format": "pt", "slicegpt": json.dumps(header)})


def prepare_structure(model: nn.Module) -> ModelAdapter:
    """Apply the structural (shape-free) SliceGPT changes to a freshly built model.

    Unties the embeddings, replaces the norms by :class:`RMSN` and swaps the decoder layer classes.
    Used by the loader; ``slicegpt()`` reaches the same structure through the weight transforms.
    """
    adapter = get_adapter(model)
    adapter.untie_embeddings()
    convert_norms(adapter, adapter.hidden_size)
    for layer in adapter.decoder_layers_container():
        make_sliced_layer(layer)
    return adapter


def _resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """Resize linears, embeddings and shortcut slots of ``model`` to the shapes in ``state``."""
    for name, module in model.named_modules():
        prefix = f"{name}." if name else ""
        if isinstance(module, nn.Linear):
            weight = state.get(f"{prefix}weight")
            if weight is None:
                continue
            bias = state.get(f"{prefix}bias")
            if tuple(weight.shape) != tuple(module.weight.shape) or (bias is None) != (module.bias is None):
                ref = module.weight
                set_linear(
                    module,
                    torch.empty(weight.shape, dtype=ref.dtype, device=ref.device),
                    None if bias is None else torch.empty(bias.shape, dtype=ref.dtype, device=ref.device),
                )
        elif isinstance(module, nn.Embedding):
            weight = state.get(f"{prefix}weight")
            if weight is not None and tuple(weight.shape) != tuple(module.weight.shape):
                set_embedding(module, torch.empty(weight.shape, dtype=module.weight.dtype, device=module.weight.device))
        if is_sliced_layer(module):
            for slot in ("attn_shortcut_Q", "mlp_shortcut_Q"):
                value = state.get(f"{prefix}{slot}")
                if value is not None:
                    ref = next(module.parameters())
                    setattr(module, slot, nn.Parameter(torch.empty(value.shape, dtype=ref.dtype, device=ref.device)))


@register_loader("slicegpt")
def load_sliced(path, record: dict | None = None, dtype: torch.dtype = torch.float32, attn_implementation=None):
    """Rebuild a model written by :func:`write_weights` (the ``"slicegpt"`` loader of ``load_compressed``).

    Builds the transformers model of ``config.json`` (random init), applies :func:`prepare_structure`,
    resizes every linear / embedding / shortcut to the saved shapes, then loads the safetensors
    state dict with ``strict=True``.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig, AutoModelForCausalLM

    path = Path(path)
    file = path / WEIGHTS_FILE
    with safe_open(str(file), framework="pt") as handle:
        header = json.loads((handle.metadata() or {}).get("slicegpt", "null") or "null")
    if not header or int(header.get("format_version", -1)) != FORMAT_VERSION:
        raise ValueError(f"{file} is not a SliceGPT model of format version {FORMAT_VERSION} (header: {header})")
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": False}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_config(config, **kwargs)
    adapter = prepare_structure(model)
    if int(header["hidden_size"]) != adapter.hidden_size:
        raise ValueError(f"{file}: hidden size {header['hidden_size']} != config's {adapter.hidden_size}")
    state = load_file(str(file))
    _resize_to(model, state)
    model.load_state_dict(state, strict=True)
    return model.eval()
