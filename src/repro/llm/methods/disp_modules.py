"""DISP-LLM's pruned architecture: soft masks, gather/scatter materialisation, safetensors I/O, loader.

DISP-LLM (brief §3.1) prunes the *input* and *output* dimensions of each block independently while
the residual stream stays full width ``d``.  Per decoder layer there are five selection sets:

==============  ==============  ============================================================
key             size            acts on
==============  ==============  ============================================================
``attn_in``     ``[d]``         the residual dims q/k/v (or fused qkv) read (after the norm)
``attn_out``    ``[d]``         the residual dims the attention output projection writes
``mlp_in``      ``[d]``         the residual dims gate/up (or fc1) read (after the norm)
``mlp_mid``     ``[d_int]``     the MLP intermediate channels
``mlp_out``     ``[d]``         the residual dims down (or fc2) writes
==============  ==============  ============================================================

Heads, ``head_dim``, the attention kernel and the KV cache are untouched; embeddings, norms and the
LM head too.  Everything is expressed on the *linears* the :class:`~repro.llm.adapters.LayerAdapter`
exposes, so one code path covers sequential (Llama, OPT) and parallel-residual blocks (Phi, whose one
``input_layernorm`` feeds both branches, and GPT-NeoX), fused qkv (GPT-NeoX) and post-LN OPT.

**Soft masks** (:func:`apply_masks`, the model DISP-LLM trains), with forward hooks:

* ``attn_in``: forward *pre*-hook on every attention input linear (q, k, v / qkv) multiplies its
  input -- the normalised block input -- by the mask: ``q = W_q (a * m)``;
* ``mlp_in``: same on the MLP input linears (gate, up / fc1);
* ``mlp_mid``: forward pre-hook on the MLP output linear (down / fc2) multiplies its input -- the
  intermediate activation ``act(gate) * up`` resp. ``act(fc1)`` -- by the mask;
* ``attn_out`` / ``mlp_out``: forward hook on the attention output linear / MLP output linear
  multiplies its output (bias included) by the mask, before the layer adds it to the residual.

The masks are used as given (not copied), so gradients reach them when they require grad.

**Materialisation** (:func:`materialise`): the same linears become real smaller modules,

* q/k/v/qkv -> :class:`GatherLinear` ``[out, |attn_in|]``: ``y = x[..., attn_in] @ W.T + b``
  (:func:`repro.kernels.gather_gemm.gather_linear`);
* gate/up/fc1 -> :class:`GatherLinear` ``[|mlp_mid|, |mlp_in|]`` (rows ``mlp_mid``, bias sliced);
* o/out_proj/dense -> :class:`ScatterLinear` ``[|attn_out|, in]`` and down/fc2 ->
  :class:`ScatterLinear` ``[|mlp_out|, |mlp_mid|]``: ``y = zeros(d)`` with ``y[..., index] +=
  h @ W.T + b`` (:func:`repro.kernels.gather_gemm.linear_scatter_add`); the unmodified decoder layer
  then adds ``y`` to the residual, so the residual receives exactly ``residual[..., index] += h W.T + b``
  (the index_add of brief §3.1) and the untouched dims pass through.

Both classes subclass ``nn.Linear`` (``weight``/``bias`` keep their state-dict names) and hold the
index as a persistent buffer (``in_index`` / ``out_index``).  With the index sets equal to the mask
non-zeros, the masked and the materialised model give the same logits.

On disk (:func:`write_weights`): ``config.json`` (+ generation config), ``disp_llm.json`` (format
version, model type, per-layer index sets) and ``model.safetensors`` (a tied LM head stored once).
:func:`load_disp_llm`, registered as loader ``"disp_llm"`` (module path
``repro.llm.methods.disp_modules``), rebuilds the transformers model from the config, re-materialises
from the saved sets and loads the weights, checking every key.  No pickle, no ``trust_remote_code``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.kernels.gather_gemm import gather_linear, linear_scatter_add
from repro.llm.adapters import LayerAdapter, get_adapter
from repro.llm.compressed import read_structured_weights, register_loader, write_structured_weights

__all__ = [
    "FORMAT_VERSION",
    "INDEX_FILE",
    "MASK_KEYS",
    "WEIGHTS_FILE",
    "GatherLinear",
    "MaskHandles",
    "ScatterLinear",
    "apply_masks",
    "index_sets",
    "layer_dims",
    "load_disp_llm",
    "masks_to_index_sets",
    "materialise",
    "validate_index_sets",
    "write_weights",
]

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
INDEX_FILE = "disp_llm.json"
#: The five per-layer selection sets, in DISP-LLM's order S1..S5.
MASK_KEYS = ("attn_in", "attn_out", "mlp_in", "mlp_mid", "mlp_out")


# ---------------------------------------------------------------------------------------------- modules
class GatherLinear(nn.Linear):
    """``y = x[..., in_index] @ weight.T + bias``: a linear that reads only the residual dims ``in_index``.

    Attributes:
        in_index: persistent ``LongTensor [in_features]`` of the input columns read.
        full_in_features: width of the input ``x`` (``d``).
    """

    def __init__(
        self,
        in_index: torch.Tensor,
        full_in_features: int,
        out_features: int,
        bias: bool,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(int(in_index.numel()), out_features, bias=bias, dtype=dtype, device=device)
        self.full_in_features = int(full_in_features)
        self.register_buffer("in_index", in_index.detach().to(device=device, dtype=torch.long).clone(), persistent=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gather_linear(x, self.in_index, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, full_in_features={self.full_in_features}"


class ScatterLinear(nn.Linear):
    """``y = zeros(full_out_features)`` with ``y[..., out_index] += h @ weight.T + bias``.

    The decoder layer adds ``y`` to the residual, i.e. the residual gets an index_add on ``out_index``.

    Attributes:
        out_index: persistent ``LongTensor [out_features]`` (distinct) of the residual dims written.
        full_out_features: width of the residual (``d``).
        in_index: persistent ``LongTensor [in_features]``, only on the MLP output linear: the original
            intermediate channels (``mlp_mid``) its columns correspond to (bookkeeping, not used in forward).
    """

    def __init__(
        self,
        out_index: torch.Tensor,
        full_out_features: int,
        in_features: int,
        bias: bool,
        *,
        in_index: torch.Tensor | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__(in_features, int(out_index.numel()), bias=bias, dtype=dtype, device=device)
        self.full_out_features = int(full_out_features)
        self.register_buffer(
            "out_index", out_index.detach().to(device=device, dtype=torch.long).clone(), persistent=True
        )
        if in_index is not None:
            if in_index.numel() != in_features:
                raise ValueError(f"in_index has {in_index.numel()} entries, in_features is {in_features}")
            self.register_buffer(
                "in_index", in_index.detach().to(device=device, dtype=torch.long).clone(), persistent=True
            )

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        zeros = h.new_zeros(*h.shape[:-1], self.full_out_features)
        return linear_scatter_add(h, self.weight, self.out_index, zeros, self.bias)

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, full_out_features={self.full_out_features}"


# ---------------------------------------------------------------------------------------------- helpers
def _replace_module(root: nn.Module, old: nn.Module, new: nn.Module) -> None:
    """Put ``new`` wherever ``old`` is registered inside ``root`` (by identity)."""
    found = False
    for parent in root.modules():
        for name, child in list(parent.named_children()):
            if child is old:
                setattr(parent, name, new)
                found = True
    if not found:
        raise ValueError(f"{type(old).__name__} not found inside {type(root).__name__}")


def _full_dims(la: LayerAdapter) -> dict[str, int]:
    """Full widths of the five sets for the (not materialised) layer ``la``."""
    d = la.attention_output_linear().out_features
    d_int = la.mlp_output_linear().in_features
    return {"attn_in": d, "attn_out": d, "mlp_in": d, "mlp_mid": d_int, "mlp_out": d}


def _is_materialised(la: LayerAdapter) -> bool:
    return isinstance(la.attention_output_linear(), ScatterLinear)


def validate_index_sets(
    index_sets: Sequence[Mapping[str, Any]], full_dims: Sequence[Mapping[str, int]], round_to: int = 1
) -> list[dict[str, torch.Tensor]]:
    """Check and normalise per-layer index sets; return sorted ``LongTensor`` s.

    Each set must be non-empty, distinct, within ``[0, full)``, and its size a multiple of
    ``round_to`` unless it is the full width (padding the sets is the caller's job).
    """
    if round_to < 1:
        raise ValueError(f"round_to must be >= 1, got {round_to}")
    if len(index_sets) != len(full_dims):
        raise ValueError(f"got index sets for {len(index_sets)} layers, the model has {len(full_dims)}")
    out = []
    for i, (sets, dims) in enumerate(zip(index_sets, full_dims)):
        missing = [key for key in MASK_KEYS if key not in sets]
        if missing:
            raise ValueError(f"layer {i}: index sets lack {missing}")
        row = {}
        for key in MASK_KEYS:
            idx = torch.as_tensor(sets[key]).detach().cpu().reshape(-1)
            if idx.numel() == 0:
                raise ValueError(f"layer {i} {key}: empty index set (keep at least one index)")
            if idx.is_floating_point() or idx.dtype == torch.bool:
                raise ValueError(f"layer {i} {key}: index sets must be integer tensors/lists, got {idx.dtype}")
            idx = idx.to(torch.long)
            n, full = idx.numel(), dims[key]
            if int(idx.min()) < 0 or int(idx.max()) >= full:
                raise ValueError(f"layer {i} {key}: indices must lie in [0, {full})")
            idx = torch.sort(idx).values
            if torch.unique(idx).numel() != n:
                raise ValueError(f"layer {i} {key}: indices must be distinct")
            if n != full and n % round_to:
                raise ValueError(f"layer {i} {key}: size {n} is not a multiple of round_to={round_to}")
            row[key] = idx
        out.append(row)
    return out


def masks_to_index_sets(masks: Sequence[Mapping[str, torch.Tensor]]) -> list[dict[str, list[int]]]:
    """Per layer ``{key: sorted nonzero positions of the mask}`` (DISP-LLM's ``I = nonzero(vec == 1)``)."""
    return [
        {key: torch.nonzero(torch.as_tensor(m[key]).detach().reshape(-1)).reshape(-1).tolist() for key in MASK_KEYS}
        for m in masks
    ]


# ---------------------------------------------------------------------------------------------- soft masks
class MaskHandles:
    """The hook handles installed by :func:`apply_masks`; :meth:`remove` restores the unmasked model."""

    def __init__(self, handles: list[Any]) -> None:
        self.handles = handles

    def remove(self) -> None:
        """Remove every mask hook."""
        for handle in self.handles:
            handle.remove()
        self.handles = []


def _input_mask_hook(mask: torch.Tensor):
    def hook(module, args):
        x = args[0]
        return (x * mask.to(device=x.device, dtype=x.dtype), *args[1:])

    return hook


def _output_mask_hook(mask: torch.Tensor):
    def hook(module, args, output):
        return output * mask.to(device=output.device, dtype=output.dtype)

    return hook


def apply_masks(model: nn.Module, masks: Sequence[Mapping[str, torch.Tensor]]) -> MaskHandles:
    """Install DISP-LLM's soft masks on a full-width model (see the module docstring for where each acts).

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter` (not materialised).
        masks: one dict per decoder layer with the keys of :data:`MASK_KEYS`; vectors of width ``d``
            (``mlp_mid``: ``d_int``), typically 0/1 floats (any real values are accepted).

    Returns:
        :class:`MaskHandles`; call ``.remove()`` to undo.
    """
    adapter = get_adapter(model)
    layers = adapter.layers()
    if len(masks) != len(layers):
        raise ValueError(f"got masks for {len(masks)} layers, the model has {len(layers)}")
    for la, m in zip(layers, masks):  # validate everything before installing any hook
        if _is_materialised(la):
            raise ValueError(f"layer {la.index} is already materialised")
        dims = _full_dims(la)
        for key in MASK_KEYS:
            if key not in m:
                raise ValueError(f"layer {la.index}: masks lack {key!r}")
            if tuple(m[key].shape) != (dims[key],):
                raise ValueError(f"layer {la.index} {key}: mask shape {tuple(m[key].shape)} != ({dims[key]},)")
    handles: list[Any] = []
    for la, m in zip(layers, masks):
        for lin in la.attention_input_linears():
            handles.append(lin.register_forward_pre_hook(_input_mask_hook(m["attn_in"])))
        handles.append(la.attention_output_linear().register_forward_hook(_output_mask_hook(m["attn_out"])))
        for lin in la.mlp_input_linears():
            handles.append(lin.register_forward_pre_hook(_input_mask_hook(m["mlp_in"])))
        down = la.mlp_output_linear()
        handles.append(down.register_forward_pre_hook(_input_mask_hook(m["mlp_mid"])))
        handles.append(down.register_forward_hook(_output_mask_hook(m["mlp_out"])))
    return MaskHandles(handles)


# ---------------------------------------------------------------------------------------------- materialise
def _gather(lin: nn.Linear, cols: torch.Tensor, rows: torch.Tensor | None) -> GatherLinear:
    w = lin.weight.detach()
    cols = cols.to(w.device)
    b = lin.bias.detach() if lin.bias is not None else None
    if rows is not None:
        rows = rows.to(w.device)
        w = w.index_select(0, rows)
        b = b.index_select(0, rows) if b is not None else None
    w = w.index_select(1, cols)
    new = GatherLinear(cols, lin.in_features, w.shape[0], b is not None, dtype=w.dtype, device=w.device)
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    new.weight.requires_grad_(lin.weight.requires_grad)
    return new


def _scatter(lin: nn.Linear, rows: torch.Tensor, cols: torch.Tensor | None) -> ScatterLinear:
    w = lin.weight.detach()
    rows = rows.to(w.device)
    b = lin.bias.detach().index_select(0, rows) if lin.bias is not None else None
    w = w.index_select(0, rows)
    if cols is not None:
        w = w.index_select(1, cols.to(w.device))
    new = ScatterLinear(
        rows, lin.out_features, w.shape[1], b is not None, in_index=cols, dtype=w.dtype, device=w.device
    )
    with torch.no_grad():
        new.weight.copy_(w)
        if b is not None:
            new.bias.copy_(b)
    new.weight.requires_grad_(lin.weight.requires_grad)
    return new


def materialise(model: nn.Module, index_sets: Sequence[Mapping[str, Any]], round_to: int = 1) -> list[dict[str, int]]:
    """Replace, in place, each layer's linears by real smaller gather/scatter modules.

    Args:
        model: a full-width ``*ForCausalLM`` supported by the adapters (no mask hooks installed).
        index_sets: one dict per layer, keys :data:`MASK_KEYS`, values integer positions (lists or
            tensors) to keep; see :func:`validate_index_sets`.
        round_to: every set's size must be a multiple of it (or the full width); validated only.

    Returns:
        Per-layer widths ``{key: len(set)}``.
    """
    adapter = get_adapter(model)
    layers = adapter.layers()
    for la in layers:
        if _is_materialised(la):
            raise ValueError(f"layer {la.index} is already materialised")
    sets = validate_index_sets(index_sets, [_full_dims(la) for la in layers], round_to)
    widths = []
    for la, s in zip(layers, sets):
        for lin in la.attention_input_linears():
            _replace_module(la.layer, lin, _gather(lin, s["attn_in"], None))
        out = la.attention_output_linear()
        _replace_module(la.layer, out, _scatter(out, s["attn_out"], None))
        for lin in la.mlp_input_linears():
            _replace_module(la.layer, lin, _gather(lin, s["mlp_in"], s["mlp_mid"]))
        down = la.mlp_output_linear()
        _replace_module(la.layer, down, _scatter(down, s["mlp_out"], s["mlp_mid"]))
        widths.append({key: int(s[key].numel()) for key in MASK_KEYS})
    return widths


def index_sets(model: nn.Module) -> list[dict[str, list[int]]]:
    """The per-layer index sets of a materialised model (read from the module buffers)."""
    rows = []
    for la in get_adapter(model).layers():
        if not _is_materialised(la):
            raise ValueError(f"layer {la.index} is not materialised")
        rows.append(
            {
                "attn_in": la.attention_input_linears()[0].in_index.tolist(),
                "attn_out": la.attention_output_linear().out_index.tolist(),
                "mlp_in": la.mlp_input_linears()[0].in_index.tolist(),
                "mlp_mid": la.mlp_output_linear().in_index.tolist(),
                "mlp_out": la.mlp_output_linear().out_index.tolist(),
            }
        )
    return rows


def layer_dims(model: nn.Module) -> list[dict[str, int]]:
    """Per-layer widths ``{key: size}`` of a materialised model."""
    return [{key: len(v) for key, v in row.items()} for row in index_sets(model)]


# ---------------------------------------------------------------------------------------------- disk
def write_weights(model: nn.Module, folder: Path) -> None:
    """``write_weights`` for :func:`repro.llm.compressed.save_compressed`: config, ``disp_llm.json``, safetensors."""
    write_structured_weights(
        model,
        folder,
        loader="disp_llm",
        layers=index_sets(model),
        record_file=INDEX_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        indent=None,
    )


@register_loader("disp_llm")
def load_disp_llm(path, record: dict | None = None, dtype: torch.dtype = torch.float32, attn_implementation=None):
    """Rebuild a model written by :func:`write_weights` (the ``"disp_llm"`` loader of ``load_compressed``)."""
    return read_structured_weights(
        path,
        loader="disp_llm",
        label="DISP-LLM",
        record_file=INDEX_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        restructure=materialise,
        dtype=dtype,
        attn_implementation=attn_implementation,
    )
