"""Parameter accounting for compressed LLMs under both compression conventions.

Papers disagree on what "X% compression" means (brief §2.1, §11): DISP-LLM's code counts only the
attention + MLP weights of the decoder blocks, the papers report fractions of *total* parameters,
and SliceGPT's slicing of a tied-embedding model (SmolLM2) must first untie the LM head, which *adds*
``vocab * d`` parameters.  So every count here comes in two flavours:

* ``total``  -- unique parameters of the whole model; a tied embedding / LM head is counted once;
* ``blocks`` -- parameters inside the decoder layers only (attention, MLP, norms, and anything a
  method registers inside a layer, e.g. SliceGPT's shortcut matrices).

The honest reference for a compressed model is the *dense tied* model: call
:func:`parameter_counts` before ``untie_embeddings`` and keep that dict as ``dense_counts``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import nn

from .adapters.base import ModelAdapter

__all__ = [
    "block_keep_for_total_removed",
    "compression_ratio",
    "layer_parameter_counts",
    "parameter_counts",
    "total_removed_for_block_keep",
]


def _count(params: Iterable[torch.Tensor], nonzero: bool) -> int:
    if nonzero:
        return int(sum(int(torch.count_nonzero(p.detach())) for p in params))
    return int(sum(p.numel() for p in params))


def _unique_params(modules: Iterable[nn.Module | None]) -> list[nn.Parameter]:
    seen: dict[int, nn.Parameter] = {}
    for module in modules:
        if module is None:
            continue
        for p in module.parameters():
            seen.setdefault(id(p), p)
    return list(seen.values())


def layer_parameter_counts(adapter: ModelAdapter, nonzero: bool = False) -> list[int]:
    """Parameters of each decoder layer (shared parameters counted once per layer)."""
    return [_count(_unique_params([layer]), nonzero) for layer in adapter.decoder_layers_container()]


def parameter_counts(model: nn.Module, adapter: ModelAdapter, nonzero: bool = False) -> dict[str, int]:
    """Count parameters of ``model`` by role.

    Args:
        model: the model (normally ``adapter.model``).
        adapter: its :class:`ModelAdapter`.
        nonzero: count non-zero entries instead of entries (for 2:4 / unstructured sparsity, whose
            dense parameter count does not change).

    Returns:
        ``total``: unique parameters (each shared tensor once, so a tied embedding counts once);
        ``blocks``: parameters inside the decoder layers (equals the sum of
        :func:`layer_parameter_counts`); ``embeddings``: token embedding + learned position
        embedding; ``lm_head``: LM head weight and bias, with the weight counted 0 when it is the
        embedding tensor (tied); ``other``: the rest (final norm, OPT ``project_in/out``, ...), so
        ``total == blocks + embeddings + lm_head + other``; ``tied``: 1 when the embeddings are tied
        else 0; ``num_layers``.
    """
    all_params = _unique_params([model])
    total = _count(all_params, nonzero)
    block_params = _unique_params(adapter.decoder_layers_container())
    emb_params = _unique_params([adapter.embed_tokens(), adapter.position_embeddings()])
    taken = {id(p) for p in block_params} | {id(p) for p in emb_params}
    head_params = [p for p in _unique_params([adapter.lm_head()]) if id(p) not in taken]
    blocks = _count(block_params, nonzero)
    embeddings = _count(emb_params, nonzero)
    lm_head = _count(head_params, nonzero)
    return {
        "total": total,
        "blocks": blocks,
        "embeddings": embeddings,
        "lm_head": lm_head,
        "other": total - blocks - embeddings - lm_head,
        "tied": int(adapter.tied_embeddings),
        "num_layers": adapter.num_layers,
    }


def compression_ratio(dense_counts: Mapping[str, int], compressed_counts: Mapping[str, int]) -> dict[str, float]:
    """Fraction of parameters removed (and kept) under both conventions.

    Args:
        dense_counts: :func:`parameter_counts` of the dense reference (the *tied* model when the
            original ties its embeddings).
        compressed_counts: :func:`parameter_counts` of the compressed model.

    Returns:
        ``removed_total`` = 1 - total_c / total_d (what users get; negative if the model grew, as
        SliceGPT on a tied model at low sparsity does), ``removed_blocks`` = 1 - blocks_c / blocks_d
        (DISP-LLM's ``p`` convention is ``kept_blocks``), and ``kept_total`` / ``kept_blocks``.
    """
    kept_total = compressed_counts["total"] / dense_counts["total"]
    kept_blocks = compressed_counts["blocks"] / dense_counts["blocks"]
    return {
        "removed_total": 1.0 - kept_total,
        "removed_blocks": 1.0 - kept_blocks,
        "kept_total": kept_total,
        "kept_blocks": kept_blocks,
    }


def block_keep_for_total_removed(dense_counts: Mapping[str, int], removed_total: float) -> float:
    """Block keep fraction ``p`` that removes ``removed_total`` of the total parameters (only blocks shrink).

    ``p = 1 - r * N_total / N_blocks`` (brief §2.1: LLaMA-2-7B, r = 0.5 gives p = 0.48).
    """
    return 1.0 - removed_total * dense_counts["total"] / dense_counts["blocks"]


def total_removed_for_block_keep(dense_counts: Mapping[str, int], block_keep: float) -> float:
    """Inverse of :func:`block_keep_for_total_removed`: ``r = (1 - p) * N_blocks / N_total``."""
    return (1.0 - block_keep) * dense_counts["blocks"] / dense_counts["total"]
