"""DISP-LLM (NeurIPS 2024) hypernetwork, Gumbel-sigmoid gates and parameter-ratio regulariser.

Written from the description in the shared brief (``llm_compression.md`` §2.1, §3), not from the
official code.  Defaults and the setting each follows:

* five selection sets per decoder layer, in the order ``attn_in`` (d), ``attn_out`` (d), ``mlp_in`` (d),
  ``mlp_mid`` (d_int), ``mlp_out`` (d): official code and paper (§3.1-3.2);
* hypernetwork: fixed, non-trainable N(0, 1) input of shape ``(N, 1, 32)`` (``z_dim=32``), a
  bidirectional GRU with ``hidden=64`` per direction (128 features per structure, h0 = 0),
  ``LayerNorm(128)`` -> GELU -> one bias-free ``Linear(128, dim_i)`` head per structure: official code;
* gates ``sigmoid((logits + g + offset) / T)`` with ``T=0.4``, ``offset=3.0`` and ``g`` a *single*
  Gumbel(0, 1) draw ``-log(-log U)`` (not logistic noise): official code.  Deviation: with
  ``training=False`` :func:`gumbel_sigmoid` adds no noise (the official ``hn.eval()`` still adds noise;
  the brief recommends the deterministic ``logits + offset > 0``);
* hard masks: straight-through rounding (``round(s)`` forward, identity gradient): official code.  The
  paper reports ReinMax instead; that is not implemented here;
* regulariser ``lam * |log(ratio / p)|`` on the hard masks, ``lam=16.0``: official ``run1.sh`` / ``main()``
  default (the paper says 6; ``collect_info_reg_llama`` defaults to 4);
* ``p`` is the kept fraction of the *prunable block* parameters, i.e. the attention + MLP linear
  weights only (official ``sum_ori_params``).  Norms and biases are never pruned and are not counted
  by :func:`kept_parameters` (the official regulariser ignores them too).  Heads and head_dim are not
  pruned, so q/k/v keep their output widths.  Use :func:`repro.llm.params.block_keep_for_total_removed`
  (re-exported here) with :func:`counts_from_config` to convert a paper "X% of total parameters" ratio
  to ``p`` (LLaMA-2-7B: 20/30/40/50 % -> 0.792/0.688/0.584/0.480).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from ..adapters.base import ModelAdapter
from ..params import block_keep_for_total_removed, total_removed_for_block_keep

__all__ = [
    "STRUCTURE_KINDS",
    "HyperNetwork",
    "StructureSpec",
    "block_keep_for_total_removed",
    "counts_from_config",
    "gumbel_sigmoid",
    "hard_mask",
    "kept_parameters",
    "ratio_regulariser",
    "total_removed_for_block_keep",
]

#: The five selection sets of one decoder layer, in the official order.
STRUCTURE_KINDS: tuple[str, ...] = ("attn_in", "attn_out", "mlp_in", "mlp_mid", "mlp_out")


# ---------------------------------------------------------------------------------------- configs
def _config_dims(config: Any) -> dict[str, Any]:
    """Architecture sizes of a Llama / OPT / Phi / GPT-NeoX config (see :func:`counts_from_config`)."""
    mt = getattr(config, "model_type", None)
    if mt not in ("llama", "opt", "phi", "gpt_neox"):
        raise ValueError(f"counts_from_config supports llama, opt, phi and gpt_neox configs; got {mt!r}")
    d = int(config.hidden_size)
    heads = int(config.num_attention_heads)
    kv = getattr(config, "num_key_value_heads", None)
    kv = int(kv) if kv is not None else heads
    hd = getattr(config, "head_dim", None)
    hd = int(hd) if hd else d // heads
    tied = bool(getattr(config, "tie_word_embeddings", False))
    out = {"d": d, "q_dim": heads * hd, "kv_dim": kv * hd, "vocab": int(config.vocab_size), "tied": tied}
    if mt == "llama":
        out.update(d_int=int(config.intermediate_size), gated=True)
    elif mt == "opt":
        out.update(d_int=int(config.ffn_dim), gated=False)
    else:  # phi, gpt_neox
        out.update(d_int=int(config.intermediate_size), gated=False)
    out["model_type"] = mt
    return out


def counts_from_config(config: Any) -> dict[str, int]:
    """Parameter counts of a ``transformers`` Llama / OPT / Phi / GPT-NeoX config, without building the model.

    Returns:
        ``total``: unique parameters (a tied embedding / LM head counted once), ``blocks``: everything
        inside the decoder layers (linears, biases, norms; the same convention as
        :func:`repro.llm.params.parameter_counts`), and ``prunable``: the attention + MLP linear
        weights DISP-LLM counts (``sum_ori_params``; no norms, no biases).  For LLaMA-2-7B:
        6,738,415,616 / 6,476,267,520 / 6,476,005,376.
    """
    c = _config_dims(config)
    d, di, qd, kvd, vocab, mt = c["d"], c["d_int"], c["q_dim"], c["kv_dim"], c["vocab"], c["model_type"]
    n_mlp_in = 2 if c["gated"] else 1
    prunable = d * (qd + 2 * kvd) + qd * d + n_mlp_in * d * di + di * d
    if mt == "llama":
        attn_b = bool(getattr(config, "attention_bias", False))
        mlp_b = bool(getattr(config, "mlp_bias", False))
        biases = (qd + 2 * kvd + d) * attn_b + (2 * di + d) * mlp_b
        norms = 2 * d
        emb, emb_dim, head_bias, other = vocab * d, d, 0, d
    elif mt == "opt":
        bias = bool(getattr(config, "enable_bias", True))
        biases = (qd + 2 * kvd + d + di + d) * bias
        affine = bool(getattr(config, "layer_norm_elementwise_affine", True))
        norms = 4 * d * affine
        emb_dim = int(getattr(config, "word_embed_proj_dim", d) or d)
        emb = vocab * emb_dim + (int(config.max_position_embeddings) + 2) * d
        head_bias = 0
        other = 2 * d * emb_dim if emb_dim != d else 0
        final_norm = bool(config.do_layer_norm_before) and not bool(getattr(config, "_remove_final_layer_norm", False))
        other += 2 * d * affine * final_norm
    elif mt == "phi":
        biases = qd + 2 * kvd + d + di + d
        norms = 2 * d
        if getattr(config, "qk_layernorm", False):
            norms += 4 * (qd // int(config.num_attention_heads))
        emb, emb_dim, head_bias, other = vocab * d, d, vocab, 2 * d
    else:  # gpt_neox
        bias = bool(getattr(config, "attention_bias", True))
        biases = (qd + 2 * kvd + d) * bias + di + d
        norms = 4 * d
        emb, emb_dim, head_bias, other = vocab * d, d, 0, 2 * d
    layers = int(config.num_hidden_layers)
    blocks = layers * (prunable + biases + norms)
    head = (0 if c["tied"] else vocab * emb_dim) + head_bias
    return {"total": blocks + emb + head + other, "blocks": blocks, "prunable": layers * prunable}


# ---------------------------------------------------------------------------------------- structures
@dataclass(frozen=True)
class StructureSpec:
    """Sizes of the five DISP-LLM selection sets of every decoder layer (all layers alike).

    Attributes:
        num_layers: decoder layers L (the hypernetwork has N = 5L structures).
        hidden_size: residual width d (size of ``attn_in``, ``attn_out``, ``mlp_in``, ``mlp_out``).
        intermediate_size: MLP width d_int (size of ``mlp_mid``).
        q_dim: query output width ``num_heads * head_dim`` (= o_proj input width; never pruned).
        kv_dim: key (= value) output width ``num_kv_heads * head_dim``.
        mlp_gated: gate + up (two linears read ``mlp_in`` and write ``mlp_mid``) or one fc1.
    """

    num_layers: int
    hidden_size: int
    intermediate_size: int
    q_dim: int
    kv_dim: int
    mlp_gated: bool = True

    @classmethod
    def from_adapter(cls, adapter: ModelAdapter) -> StructureSpec:
        """Spec of the model behind ``adapter`` (sizes read from its config-derived properties)."""
        return cls(
            num_layers=adapter.num_layers,
            hidden_size=adapter.hidden_size,
            intermediate_size=adapter.intermediate_size,
            q_dim=adapter.num_heads * adapter.head_dim,
            kv_dim=adapter.num_kv_heads * adapter.head_dim,
            mlp_gated=bool(adapter.layer_adapter_class.mlp_gated),
        )

    @classmethod
    def from_config(cls, config: Any) -> StructureSpec:
        """Spec of a Llama / OPT / Phi / GPT-NeoX ``transformers`` config."""
        c = _config_dims(config)
        return cls(int(config.num_hidden_layers), c["d"], c["d_int"], c["q_dim"], c["kv_dim"], c["gated"])

    def layer_dims(self) -> tuple[int, int, int, int, int]:
        """Sizes of (attn_in, attn_out, mlp_in, mlp_mid, mlp_out)."""
        d = self.hidden_size
        return (d, d, d, self.intermediate_size, d)

    @property
    def structures(self) -> list[tuple[int, str, int]]:
        """``(layer, kind, size)`` of every structure in hypernetwork order (layer-major)."""
        return [(i, k, n) for i in range(self.num_layers) for k, n in zip(STRUCTURE_KINDS, self.layer_dims())]

    @property
    def num_structures(self) -> int:
        """N = 5 L."""
        return 5 * self.num_layers

    @property
    def num_gates(self) -> int:
        """Total number of gates (mask entries) over all structures."""
        return self.num_layers * sum(self.layer_dims())

    @property
    def total_block_parameters(self) -> int:
        """Prunable block parameters of the dense model (attention + MLP linear weights)."""
        d, di = self.hidden_size, self.intermediate_size
        n_in = 2 if self.mlp_gated else 1
        per_layer = d * (self.q_dim + 2 * self.kv_dim) + d * self.q_dim + n_in * d * di + di * d
        return self.num_layers * per_layer


# ---------------------------------------------------------------------------------------- hypernetwork
class HyperNetwork(nn.Module):
    """DISP-LLM hypernetwork: fixed random input -> bi-GRU -> LayerNorm -> GELU -> per-structure heads.

    Args:
        spec: the :class:`StructureSpec` (one output head per structure, in ``spec.structures`` order).
        hidden: GRU hidden size per direction (official: 64).
        z_dim: size of the fixed random input per structure (official: 32).
        seed: seed of the fixed input and of the parameter initialisation (the global RNG is untouched).
    """

    def __init__(self, spec: StructureSpec, hidden: int = 64, z_dim: int = 32, seed: int = 0) -> None:
        super().__init__()
        self.spec = spec
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            self.register_buffer("z", torch.randn(spec.num_structures, 1, z_dim))
            self.gru = nn.GRU(z_dim, hidden, bidirectional=True)
            self.norm = nn.LayerNorm(2 * hidden)
            self.heads = nn.ModuleList(nn.Linear(2 * hidden, n, bias=False) for _, _, n in spec.structures)

    def forward(self) -> list[torch.Tensor]:
        """Logits of every structure: a list of N 1-D tensors of the structure sizes."""
        feats, _ = self.gru(self.z)  # (N, 1, 2*hidden); h0 = 0
        feats = F.gelu(self.norm(feats[:, 0]))
        return [head(feats[i]) for i, head in enumerate(self.heads)]

    def sample(
        self,
        training: bool = True,
        hard: bool = False,
        temperature: float = 0.4,
        offset: float = 3.0,
        generator: torch.Generator | None = None,
    ) -> list[torch.Tensor]:
        """Soft gates (``hard=False``) or straight-through hard masks from one Gumbel draw per gate."""
        out = []
        for logits in self():
            s = gumbel_sigmoid(logits, temperature, offset, training=training, generator=generator)
            out.append(hard_mask(s) if hard else s)
        return out


def gumbel_sigmoid(
    logits: torch.Tensor,
    temperature: float = 0.4,
    offset: float = 3.0,
    training: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Soft gates ``sigmoid((logits + g + offset) / temperature)``.

    ``g = -log(-log U)`` is one Gumbel(0, 1) draw per gate (official code) when ``training``; with
    ``training=False`` no noise is added (deterministic).
    """
    x = logits + offset
    if training:
        u = torch.rand(logits.shape, generator=generator, dtype=logits.dtype, device=logits.device)
        eps = torch.finfo(logits.dtype).tiny
        gumbel = -torch.log((-torch.log(u.clamp_min(eps))).clamp_min(eps))
        x = x + gumbel
    return torch.sigmoid(x / temperature)


def hard_mask(soft: torch.Tensor) -> torch.Tensor:
    """Straight-through rounding: forward ``round(soft)`` (0/1), backward the identity on ``soft``."""
    return soft + (torch.round(soft) - soft).detach()


# ---------------------------------------------------------------------------------------- regulariser
def _per_layer(masks: Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]], spec: StructureSpec):
    flat = list(masks)
    if flat and not isinstance(flat[0], torch.Tensor):
        flat = [m for layer in flat for m in layer]
    if len(flat) != spec.num_structures:
        raise ValueError(f"expected {spec.num_structures} masks (5 per layer), got {len(flat)}")
    return [flat[5 * i : 5 * i + 5] for i in range(spec.num_layers)]


def kept_parameters(
    masks: Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]], spec: StructureSpec
) -> torch.Tensor:
    """Block parameters kept by ``masks`` (differentiable; expected count for soft, exact for hard masks).

    With ``|s|`` the sum of a mask: q/k/v read ``attn_in`` (``|s1| * (q_dim + 2 kv_dim)``), o writes
    ``attn_out`` (``|s2| * q_dim``), gate/up (or fc1) read ``mlp_in`` and write ``mlp_mid``
    (``n_in * |s3| * |s4|``), down reads ``mlp_mid`` and writes ``mlp_out`` (``|s4| * |s5|``).

    Args:
        masks: 5 L mask vectors in ``spec.structures`` order (flat, or one 5-sequence per layer).
        spec: the structure sizes.
    """
    n_in = 2 if spec.mlp_gated else 1
    total = None
    for s1, s2, s3, s4, s5 in _per_layer(masks, spec):
        a1, a2, a3, a4, a5 = (m.sum() for m in (s1, s2, s3, s4, s5))
        layer = a1 * (spec.q_dim + 2 * spec.kv_dim) + a2 * spec.q_dim + n_in * a3 * a4 + a4 * a5
        total = layer if total is None else total + layer
    return total


def ratio_regulariser(
    masks: Sequence[torch.Tensor] | Sequence[Sequence[torch.Tensor]],
    spec: StructureSpec,
    p: float,
    lam: float = 16.0,
) -> torch.Tensor:
    """``lam * |log(ratio / p)|`` with ``ratio = kept_parameters / total_block_parameters`` (official form)."""
    if not 0.0 < p <= 1.0:
        raise ValueError(f"p must be in (0, 1], got {p}")
    ratio = kept_parameters(masks, spec) / spec.total_block_parameters
    return lam * torch.abs(torch.log(ratio) - math.log(p))
