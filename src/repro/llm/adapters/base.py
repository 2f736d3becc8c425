"""Abstract architecture adapters that every structural-compression method is written against.

A compression method (SliceGPT, Wanda/SparseGPT, ShortGPT, MoDeGPT, DISP-LLM, ...) never touches
``model.model.layers[i].self_attn.q_proj`` directly.  It asks a :class:`ModelAdapter` for the
embeddings, the decoder layers, the final norm and the LM head, and asks each :class:`LayerAdapter`
for the norms and linears of one decoder layer in *functional* roles:

* ``attention_input_norm`` -> ``attention_input_linears`` (q, k, v or one fused qkv)
  -> attention -> ``attention_output_linear``;
* ``mlp_input_norm`` -> ``mlp_input_linears`` ([gate, up] or [fc1]) -> ``mlp_activation``
  -> ``mlp_output_linear``.

The concrete subclasses (``llama.py``, ``opt.py``, ``phi.py``, ``gpt_neox.py``) map these roles to the
attribute names of the Hugging Face ``transformers`` classes and document the quirks of each
architecture (fused/interleaved qkv, shared norms, parallel residuals, post-LN, projections).

Conventions used throughout:

* ``nn.Linear`` weights are stored ``(out_features, in_features)``, as in PyTorch.  "Rows" of a
  projection are its output channels, "columns" its input channels.
* q/k/v tensors returned by :meth:`LayerAdapter.split_qkv_output` are the raw projection outputs
  (bias included), *before* RoPE, *before* any q/k layer norm and *before* the softmax scale
  (OPT multiplies q by ``head_dim**-0.5`` inside the attention module; that is not applied here).
* RoPE uses the "rotate-half" convention of ``transformers``: inside the first ``rotary_dim``
  channels of a head, channel ``i`` is rotated together with channel ``i + rotary_dim // 2``.
  Channels ``rotary_dim .. head_dim`` (partial rotary, Phi / GPT-NeoX) pass through unrotated.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

import torch
from torch import nn
from torch.nn import functional as F

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = ["FusedProjectionView", "LayerAdapter", "ModelAdapter"]


class FusedProjectionView:
    """The q, k or v part of a fused qkv ``nn.Linear`` (GPT-NeoX ``query_key_value``).

    Attributes:
        linear: the fused ``nn.Linear`` that owns the parameters.
        rows: 1-D ``LongTensor`` of the output rows of ``linear`` that belong to this projection,
            ordered head by head (``rows[h*head_dim:(h+1)*head_dim]`` are head ``h``), so that
            ``linear.weight[rows]`` is laid out exactly like a separate ``q_proj.weight`` would be.
        name: ``"q"``, ``"k"`` or ``"v"``.

    The view mimics the read-only part of the ``nn.Linear`` interface (``in_features``,
    ``out_features``, ``weight``, ``bias``, calling it on an input).  ``weight`` and ``bias`` are
    *gathered copies*: to modify the model write through ``view.linear.weight.data[view.rows]``.
    """

    def __init__(self, linear: nn.Linear, rows: torch.Tensor, name: str) -> None:
        self.linear = linear
        self.rows = rows.to(dtype=torch.long)
        self.name = name

    @property
    def in_features(self) -> int:
        """Input width of the fused linear."""
        return self.linear.in_features

    @property
    def out_features(self) -> int:
        """Number of rows that belong to this projection."""
        return int(self.rows.numel())

    @property
    def weight(self) -> torch.Tensor:
        """``(out_features, in_features)`` copy of this projection's rows of the fused weight."""
        return self.linear.weight.index_select(0, self.rows.to(self.linear.weight.device))

    @property
    def bias(self) -> torch.Tensor | None:
        """Copy of this projection's entries of the fused bias (``None`` when the linear has no bias)."""
        if self.linear.bias is None:
            return None
        return self.linear.bias.index_select(0, self.rows.to(self.linear.bias.device))

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply only this projection: ``x @ weight.T + bias``."""
        return F.linear(x, self.weight, self.bias)

    def __repr__(self) -> str:
        return f"FusedProjectionView({self.name}, rows={self.out_features} of {self.linear})"


QKVProjection = nn.Linear | FusedProjectionView


class LayerAdapter(ABC):
    """Functional view of one decoder layer.

    Attributes:
        layer: the decoder-layer ``nn.Module`` (e.g. ``LlamaDecoderLayer``).
        index: position of the layer in the decoder's ``nn.ModuleList`` at the time the adapter was
            built (adapters are cheap: rebuild them with ``ModelAdapter.layers()`` after
            ``drop_layers``).
        parent: the :class:`ModelAdapter` this layer belongs to.

    Class attributes:
        norm_kind: ``"rms"`` (RMSNorm, no bias, no mean subtraction) or ``"layer"`` (LayerNorm).
        mlp_gated: ``True`` for gated MLPs (``down(act(gate(x)) * up(x))``, ``mlp_input_linears()``
            is ``[gate, up]``); ``False`` for ``fc2(act(fc1(x)))``.
    """

    norm_kind: ClassVar[str] = "layer"
    mlp_gated: ClassVar[bool] = False

    def __init__(self, layer: nn.Module, index: int, parent: ModelAdapter) -> None:
        self.layer = layer
        self.index = index
        self.parent = parent

    # ------------------------------------------------------------------ topology
    @property
    def parallel_residual(self) -> bool:
        """``True`` when attention and MLP both read the layer input: ``x + attn(n1(x)) + mlp(n2(x))``.

        ``False`` for the sequential form ``h = x + attn(n1(x)); out = h + mlp(n2(h))``.
        """
        return False

    @property
    def pre_norm(self) -> bool:
        """``True`` when the norms are applied to the *inputs* of attention/MLP (pre-LN).

        ``False`` only for post-LN layers (OPT-350m, ``do_layer_norm_before=False``), where the norms
        are applied *after* each residual addition; :meth:`attention_input_norm` and
        :meth:`mlp_input_norm` then return ``None`` and :meth:`attention_norm` / :meth:`mlp_norm`
        give the modules.  Methods that rely on computational invariance (SliceGPT) must refuse
        post-LN layers.
        """
        return True

    # ------------------------------------------------------------------ sizes
    @property
    def num_heads(self) -> int:
        """Number of query heads of this layer."""
        return self.q_proj().out_features // self.head_dim

    @property
    def num_kv_heads(self) -> int:
        """Number of key/value heads of this layer (``< num_heads`` under grouped-query attention)."""
        return self.k_proj().out_features // self.head_dim

    @property
    def head_dim(self) -> int:
        """Per-head channel count of q, k and v (taken from the model config)."""
        return self.parent.head_dim

    @property
    def rotary_dim(self) -> int:
        """Number of leading channels per head that RoPE rotates (0 when there is no RoPE)."""
        return self.parent.rotary_dim

    @property
    def intermediate_size(self) -> int:
        """MLP hidden width of this layer, read from the modules (``mlp_output_linear().in_features``)."""
        return self.mlp_output_linear().in_features

    # ------------------------------------------------------------------ modules
    @abstractmethod
    def attention(self) -> nn.Module:
        """The self-attention module of the layer."""

    @abstractmethod
    def mlp(self) -> nn.Module | None:
        """The MLP module, or ``None`` when the MLP linears sit directly on the layer (OPT)."""

    @abstractmethod
    def attention_norm(self) -> nn.Module:
        """The norm associated with the attention sub-block, wherever it is applied (see ``pre_norm``)."""

    @abstractmethod
    def mlp_norm(self) -> nn.Module:
        """The norm associated with the MLP sub-block (for Phi: the same module as ``attention_norm``)."""

    def attention_input_norm(self) -> nn.Module | None:
        """The norm whose output is the attention input (``None`` for post-LN layers)."""
        return self.attention_norm() if self.pre_norm else None

    def mlp_input_norm(self) -> nn.Module | None:
        """The norm whose output is the MLP input (``None`` for post-LN layers).

        For Phi this is the *same module object* as :meth:`attention_input_norm`: one
        ``input_layernorm`` feeds both parallel branches.  Code that folds or rescales norm weights
        must therefore check ``mlp_input_norm() is attention_input_norm()`` and process it once.
        """
        return self.mlp_norm() if self.pre_norm else None

    @abstractmethod
    def attention_input_linears(self) -> list[nn.Linear]:
        """The linears that read the attention input: ``[q, k, v]`` or ``[qkv]`` when fused."""

    @abstractmethod
    def attention_output_linear(self) -> nn.Linear:
        """The attention output projection (``o_proj`` / ``out_proj`` / ``dense``)."""

    @abstractmethod
    def mlp_input_linears(self) -> list[nn.Linear]:
        """The linears that read the MLP input: ``[gate, up]`` (gated) or ``[fc1]``."""

    @abstractmethod
    def mlp_output_linear(self) -> nn.Linear:
        """The MLP output projection (``down_proj`` / ``fc2`` / ``dense_4h_to_h``)."""

    @abstractmethod
    def q_proj(self) -> QKVProjection:
        """The query projection: an ``nn.Linear``, or a :class:`FusedProjectionView` for fused qkv."""

    @abstractmethod
    def k_proj(self) -> QKVProjection:
        """The key projection: an ``nn.Linear``, or a :class:`FusedProjectionView` for fused qkv."""

    @abstractmethod
    def v_proj(self) -> QKVProjection:
        """The value projection: an ``nn.Linear``, or a :class:`FusedProjectionView` for fused qkv."""

    @abstractmethod
    def mlp_activation(self) -> Callable[[torch.Tensor], torch.Tensor]:
        """The element-wise MLP nonlinearity (applied to ``gate`` output when ``mlp_gated``)."""

    def qk_norms(self) -> tuple[nn.Module, nn.Module] | None:
        """Per-head (q_norm, k_norm) applied after the projections, or ``None`` (the default)."""
        return None

    def named_linears(self) -> dict[str, nn.Linear]:
        """Every ``nn.Linear`` inside the layer, keyed by its name relative to the layer.

        This is what unstructured/semi-structured pruners (Wanda, SparseGPT) iterate over.
        """
        return {name: m for name, m in self.layer.named_modules() if isinstance(m, nn.Linear)}

    # ------------------------------------------------------------------ q/k/v layout
    def qkv_output_index(self) -> tuple[slice | torch.Tensor, slice | torch.Tensor, slice | torch.Tensor]:
        """Where q, k and v live in the concatenated output of :meth:`attention_input_linears`.

        Returns three indexers (a ``slice`` or a ``LongTensor`` of positions) into the last dimension
        of ``torch.cat([lin(x) for lin in attention_input_linears()], -1)``.  Each selects that
        projection's channels ordered head by head.  The default assumes three separate linears in
        the order [q, k, v]; fused layouts override it.
        """
        nq = self.q_proj().out_features
        nk = self.k_proj().out_features
        nv = self.v_proj().out_features
        return slice(0, nq), slice(nq, nq + nk), slice(nq + nk, nq + nk + nv)

    def split_qkv_output(
        self, output: torch.Tensor | Sequence[torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split attention-input projection outputs into per-head q, k, v.

        Args:
            output: either one tensor ``(..., sum(out_features))``, the concatenation along the last
                dimension of the outputs of :meth:`attention_input_linears` in their order (for a
                fused qkv that is simply its output), or a sequence with one output tensor per linear
                (e.g. the three tensors captured by forward hooks on q_proj, k_proj, v_proj).

        Returns:
            ``(q, k, v)`` shaped ``(..., num_heads, head_dim)``, ``(..., num_kv_heads, head_dim)``,
            ``(..., num_kv_heads, head_dim)``: pre-RoPE, pre-q/k-norm, unscaled.
        """
        if not isinstance(output, torch.Tensor):
            parts = list(output)
            if len(parts) != len(self.attention_input_linears()):
                raise ValueError(f"expected {len(self.attention_input_linears())} projection outputs, got {len(parts)}")
            output = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
        hd = self.head_dim
        out = []
        for idx in self.qkv_output_index():
            if isinstance(idx, slice):
                part = output[..., idx]
            else:
                part = output.index_select(-1, idx.to(output.device))
            out.append(part.unflatten(-1, (-1, hd)))
        return out[0], out[1], out[2]

    def qkv(self, attention_input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compute per-head (q, k, v) from the (normed) attention input; see :meth:`split_qkv_output`."""
        return self.split_qkv_output([lin(attention_input) for lin in self.attention_input_linears()])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(index={self.index}, layer={type(self.layer).__name__})"


class ModelAdapter(ABC):
    """Functional view of a ``*ForCausalLM`` model.

    Attributes:
        model: the wrapped ``transformers`` causal-LM model (modified in place by ``untie_embeddings``
            and ``drop_layers``).

    Class attributes:
        model_type: ``config.model_type`` handled by the subclass (``"llama"``, ``"opt"``, ...).
        model_class_names: names of the ``transformers`` classes accepted.
        layer_adapter_class: the :class:`LayerAdapter` subclass for its decoder layers.
        norm_kind: ``"rms"`` or ``"layer"`` (all norms of the model, final norm included).
        position_embedding_offset: index offset of learned position embeddings (2 for OPT: position
            ``p`` reads row ``p + 2``), 0 otherwise.
    """

    model_type: ClassVar[str]
    model_class_names: ClassVar[tuple[str, ...]]
    layer_adapter_class: ClassVar[type[LayerAdapter]]
    norm_kind: ClassVar[str] = "layer"
    position_embedding_offset: ClassVar[int] = 0

    def __init__(self, model: PreTrainedModel) -> None:
        if not self.accepts(model):
            raise ValueError(
                f"{type(self).__name__} handles {', '.join(self.model_class_names)}; got {type(model).__name__} "
                f"(model_type={getattr(getattr(model, 'config', None), 'model_type', None)!r})"
            )
        self.model = model

    @classmethod
    def accepts(cls, model: nn.Module) -> bool:
        """Whether ``model`` is (a subclass of) one of ``model_class_names``."""
        return any(klass.__name__ in cls.model_class_names for klass in type(model).__mro__)

    # ------------------------------------------------------------------ config-derived sizes
    @property
    def config(self):
        """The model's ``PreTrainedConfig`` (the same object as ``model.config``)."""
        return self.model.config

    @property
    def hidden_size(self) -> int:
        """Residual-stream width ``d``."""
        return int(self.config.hidden_size)

    @property
    def num_layers(self) -> int:
        """Number of decoder layers currently in the model (``len(decoder_layers_container())``)."""
        return len(self.decoder_layers_container())

    @property
    def num_heads(self) -> int:
        """Number of query heads."""
        return int(self.config.num_attention_heads)

    @property
    def num_kv_heads(self) -> int:
        """Number of key/value heads: ``config.num_key_value_heads`` when set (grouped-query attention), else ``num_heads``."""
        kv = getattr(self.config, "num_key_value_heads", None)
        return int(kv) if kv is not None else self.num_heads

    @property
    def head_dim(self) -> int:
        """Channels per attention head: ``config.head_dim`` when set, else ``d / num_heads``."""
        hd = getattr(self.config, "head_dim", None)
        return int(hd) if hd else self.hidden_size // self.num_heads

    @property
    def intermediate_size(self) -> int:
        """MLP hidden width from the config (``intermediate_size``; OPT overrides with ``ffn_dim``)."""
        return int(self.config.intermediate_size)

    @property
    def rotary_dim(self) -> int:
        """Leading channels per head rotated by RoPE: ``head_dim`` (full), fewer (partial), 0 (none)."""
        return 0

    @property
    def vocab_size(self) -> int:
        """Vocabulary size (rows of the token embedding)."""
        return int(self.embed_tokens().num_embeddings)

    @property
    def embedding_dim(self) -> int:
        """Width of the token embedding and LM-head input (``word_embed_proj_dim`` for OPT, else ``d``)."""
        return int(self.embed_tokens().embedding_dim)

    @property
    def tied_embeddings(self) -> bool:
        """Whether the LM head weight *is* the token-embedding weight (parameter identity, not the config flag)."""
        return self.lm_head().weight is self.embed_tokens().weight

    # ------------------------------------------------------------------ modules
    @abstractmethod
    def base_model(self) -> nn.Module:
        """The decoder stack below the LM head (``LlamaModel``, ``OPTDecoder``, ``PhiModel``, ``GPTNeoXModel``)."""

    @abstractmethod
    def embed_tokens(self) -> nn.Embedding:
        """The token embedding."""

    def position_embeddings(self) -> nn.Embedding | None:
        """Learned absolute position embedding (OPT; see ``position_embedding_offset``), else ``None``."""
        return None

    def project_in(self) -> nn.Linear | None:
        """Linear from the embedding width to ``d`` applied after the token embedding (OPT-350m), else ``None``."""
        return None

    def project_out(self) -> nn.Linear | None:
        """Linear from ``d`` to the embedding width applied before the LM head (OPT-350m), else ``None``."""
        return None

    @abstractmethod
    def decoder_layers_container(self) -> nn.ModuleList:
        """The ``nn.ModuleList`` holding the decoder layers (for depth pruning)."""

    @abstractmethod
    def final_norm(self) -> nn.Module | None:
        """The norm after the last decoder layer (``None`` for post-LN OPT-350m, which has none)."""

    def lm_head(self) -> nn.Linear:
        """The output projection to vocabulary logits."""
        return self.model.lm_head

    def rotary_embedding(self) -> nn.Module | None:
        """The rotary-embedding module producing ``(cos, sin)``, or ``None`` when there is no RoPE."""
        return None

    def layers(self) -> list[LayerAdapter]:
        """One :class:`LayerAdapter` per decoder layer, in order."""
        return [self.layer_adapter_class(layer, i, self) for i, layer in enumerate(self.decoder_layers_container())]

    def layer(self, index: int) -> LayerAdapter:
        """The :class:`LayerAdapter` of decoder layer ``index``."""
        return self.layer_adapter_class(self.decoder_layers_container()[index], index, self)

    # ------------------------------------------------------------------ surgery
    def untie_embeddings(self) -> bool:
        """Break the LM-head / token-embedding tie by giving the LM head its own copy of the weight.

        SliceGPT rotates and slices the embedding but keeps the LM head at full width, so a tie must
        be broken first.  Sets ``config.tie_word_embeddings = False`` (so ``save_pretrained`` writes
        both tensors and ``from_pretrained`` does not re-tie) and refreshes transformers'
        ``all_tied_weights_keys`` bookkeeping.  Logits are unchanged.  Returns ``True`` when a tie was
        broken, ``False`` when the weights were already independent.
        """
        head, emb = self.lm_head(), self.embed_tokens()
        was_tied = head.weight is emb.weight
        if was_tied:
            head.weight = nn.Parameter(emb.weight.detach().clone(), requires_grad=emb.weight.requires_grad)
        configs = [self.config]
        get_text = getattr(self.config, "get_text_config", None)
        if callable(get_text):
            text = get_text(decoder=True)
            if text is not self.config:
                configs.append(text)
        for cfg in configs:
            if hasattr(cfg, "tie_word_embeddings"):
                cfg.tie_word_embeddings = False
        if hasattr(self.model, "get_expanded_tied_weights_keys"):
            self.model.all_tied_weights_keys = self.model.get_expanded_tied_weights_keys(all_submodels=True)
        return was_tied

    def drop_layers(self, indices: Iterable[int]) -> list[int]:
        """Remove decoder layers in place (depth pruning: ShortGPT, SLEB).

        After the call the model behaves as if the removed layers were identities: the remaining
        layers are renumbered ``0..n-1`` in the ``nn.ModuleList`` (so the state-dict keys are
        contiguous), every ``layer_idx`` attribute inside them (the KV-cache slot transformers uses)
        is set to the new position, ``config.num_hidden_layers`` is updated, and per-layer config
        entries (``config.layer_types``, a heterogeneous ``per_layer_config``) are re-indexed, so
        ``save_pretrained`` + ``from_pretrained`` rebuild the same model without custom code.

        Args:
            indices: layer positions to remove (negative values count from the end; duplicates are ignored).

        Returns:
            The original indices of the layers that remain, in order.
        """
        container = self.decoder_layers_container()
        n = len(container)
        drop: set[int] = set()
        for i in indices:
            i = int(i)
            j = i + n if i < 0 else i
            if not 0 <= j < n:
                raise IndexError(f"layer index {i} out of range for {n} layers")
            drop.add(j)
        keep = [i for i in range(n) if i not in drop]
        if not keep:
            raise ValueError("drop_layers would remove every decoder layer")
        if not drop:
            return keep
        _reindex_per_layer_config(self.config, keep, n)
        for i in sorted(drop, reverse=True):
            del container[i]
        for new_idx, layer in enumerate(container):
            _set_layer_idx(layer, new_idx)
        return keep

    def __repr__(self) -> str:
        return f"{type(self).__name__}({type(self.model).__name__}, layers={self.num_layers})"


def _set_layer_idx(layer: nn.Module, new_idx: int) -> None:
    """Set every ``layer_idx`` attribute found in ``layer`` and its submodules to ``new_idx``."""
    for module in layer.modules():
        if "layer_idx" in vars(module) and (module.layer_idx is None or isinstance(module.layer_idx, int)):
            module.layer_idx = new_idx


def _reindex_per_layer_config(config, keep: list[int], old_n: int) -> None:
    """Update ``num_hidden_layers`` and per-layer config entries for the kept layers ``keep``."""
    overrides = None
    if getattr(config, "is_heterogeneous", False):
        spec = config._heterogeneity_spec
        overrides = {
            new: dict(spec.per_layer_overrides[old]) for new, old in enumerate(keep) if old in spec.per_layer_overrides
        }
        config.per_layer_config = None
    layer_types = getattr(config, "layer_types", None)
    if isinstance(layer_types, (list, tuple)) and len(layer_types) == old_n:
        config.layer_types = [layer_types[i] for i in keep]
    config.num_hidden_layers = len(keep)
    if overrides is not None:
        config.per_layer_config = overrides or None
