"""ShortGPT (Men et al., 2024): depth pruning by block influence.

Own implementation (brief §5, "ShortGPT / SLEB"):

* Block influence of decoder layer ``l``: ``BI_l = 1 - E_t[cos(x_l[t], x_{l+1}[t])]`` between the
  hidden state entering the layer and the one leaving it, averaged over every calibration token
  (:func:`repro.llm.calibration.collect_statistics` with ``which={"bi"}``, float64, one pass over the
  *unpruned* model).  The output of the last layer is taken before the final norm.  Statistics
  cached by the pipeline's calibration rule (computed once per model and calibration set on the
  original model) can be passed as ``statistics``: their ``bi`` entry is used and no calibration
  pass runs.  Since the official ShortGPT also measures BI on the original model, the result is the
  same as without the cache.
* The ``n`` layers with the lowest BI are removed (ties: the lower layer index first) with
  :meth:`ModelAdapter.drop_layers`, which keeps the model a standard transformers model (renumbered
  layers, updated ``num_hidden_layers``), so it is saved with ``save_compressed(..., loader="hf")``.
* ``n`` is given directly (``n_layers``) or chosen from a target ``ratio`` of removed parameters:
  the ``n`` whose removed fraction (of the total parameters, or of the decoder-block parameters,
  brief §2.1) is closest to ``ratio``; ties go to fewer layers.  At least one layer is kept.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from repro.llm.adapters import get_adapter
from repro.llm.calibration import collect_statistics
from repro.llm.params import compression_ratio, layer_parameter_counts, parameter_counts

__all__ = ["CONVENTIONS", "choose_n_layers", "layer_order", "shortgpt"]

log = logging.getLogger(__name__)

CONVENTIONS = ("total", "blocks")
_TIE_DIGITS = 12  # removed fractions equal to this many digits count as a tie


def layer_order(bi: torch.Tensor | list[float]) -> list[int]:
    """Layer indices sorted by ascending BI (ties: lower index first): the removal order."""
    values = [float(v) for v in torch.as_tensor(bi, dtype=torch.float64)]
    return sorted(range(len(values)), key=lambda i: (values[i], i))


def choose_n_layers(
    order: list[int], layer_counts: list[int], denominator: int, ratio: float
) -> tuple[int, list[float]]:
    """Number of layers (taken in ``order``) whose removed parameter fraction is closest to ``ratio``.

    Args:
        order: removal order (:func:`layer_order`).
        layer_counts: parameters of each layer (:func:`repro.llm.params.layer_parameter_counts`).
        denominator: the dense ``total`` or ``blocks`` parameter count.
        ratio: target fraction of removed parameters.

    Returns:
        ``(n, fractions)``: ``fractions[k]`` is the fraction removed by dropping the first ``k`` layers
        of ``order`` (``k = 0 .. L-1``; at least one layer is kept); ``n`` minimises
        ``|fractions[n] - ratio|``, the smaller ``n`` on a tie.
    """
    fractions, removed = [0.0], 0
    for idx in order[:-1]:
        removed += layer_counts[idx]
        fractions.append(removed / denominator)
    n = min(range(len(fractions)), key=lambda k: (round(abs(fractions[k] - ratio), _TIE_DIGITS), k))
    return n, fractions


def _cached_bi(statistics: Mapping[str, torch.Tensor], n_layers: int) -> torch.Tensor:
    """``statistics["bi"]`` as a float64 vector of length ``n_layers`` (``ValueError`` naming ``'bi'``)."""
    if "bi" not in statistics:
        raise ValueError(
            f"cached statistics have no 'bi' entry (keys: {sorted(statistics)[:6]}...); "
            "collect them with which including 'bi'"
        )
    bi = torch.as_tensor(statistics["bi"]).detach().to(device="cpu", dtype=torch.float64).reshape(-1)
    if bi.numel() != n_layers:
        raise ValueError(
            f"cached statistics 'bi' has {bi.numel()} entries but the model has {n_layers} layers "
            "(statistics of another model?)"
        )
    return bi


@torch.no_grad()
def shortgpt(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    ratio: float | None = None,
    n_layers: int | None = None,
    convention: str = "total",
    batch_size: int = 4,
    progress: bool = True,
    statistics: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Remove the lowest-BI decoder layers of ``model`` in place; return ``(model, info)``.

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter`.
        calibration_ids: ``(n_samples, seq_len)`` token windows (may be ``None`` with ``statistics``).
        ratio: target fraction of parameters to remove (under ``convention``); ``n`` is the closest.
        n_layers: number of layers to remove (instead of ``ratio``).
        convention: ``"total"`` (fraction of all unique parameters, tied embeddings once) or
            ``"blocks"`` (fraction of the decoder-layer parameters).
        batch_size: calibration rows per forward call.
        progress: progress bar and log lines during calibration.
        statistics: cached :func:`~repro.llm.calibration.collect_statistics` of the *original* model
            (e.g. ``which=ALL_STATISTICS``); only ``statistics["bi"]`` (length L) is read and the
            calibration pass is skipped.  ``ValueError`` naming ``'bi'`` when it is missing or has
            the wrong length.

    Returns:
        ``(model, info)`` with ``method``, ``convention``, ``bi`` (per original layer),
        ``removal_order``, ``removed_layers`` / ``kept_layers`` (original indices, ascending),
        ``n_removed``, ``target_ratio`` (``None`` with ``n_layers``), ``achieved_ratio`` (removed
        fraction under ``convention``), ``candidate_ratios`` (fraction removed for ``n = 0 .. L-1``),
        ``counts_before`` / ``counts_after`` (:func:`parameter_counts`), ``removed``
        (:func:`compression_ratio`: both conventions) and ``calibration`` (``mode`` ``"original"``,
        ``source`` ``"statistics"`` (cached) or ``"pass"``, samples, seq_len, tokens, seconds).
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if (ratio is None) == (n_layers is None):
        raise ValueError("give exactly one of ratio and n_layers")
    adapter = get_adapter(model)
    total_layers = adapter.num_layers
    if n_layers is not None:
        if isinstance(n_layers, bool) or int(n_layers) != n_layers or not 0 <= n_layers < total_layers:
            raise ValueError(f"n_layers must be an integer in [0, {total_layers - 1}], got {n_layers!r}")
        n_layers = int(n_layers)
    else:
        ratio = float(ratio)
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")

    counts_before = parameter_counts(model, adapter)
    layer_counts = layer_parameter_counts(adapter)
    if statistics is not None:
        bi = _cached_bi(statistics, total_layers)
        calibration = {
            "mode": "original",
            "source": "statistics",
            "tokens": int(statistics["tokens"]) if "tokens" in statistics else None,
            "seconds": 0.0,
        }
    else:
        if calibration_ids is None:
            raise ValueError("shortgpt needs calibration_ids or cached statistics (with 'bi')")
        stats = collect_statistics(model, calibration_ids, batch_size=batch_size, which={"bi"}, progress=progress)
        bi = stats["bi"]
        calibration = {
            "mode": stats.mode,
            "source": "pass",
            "tokens": int(stats["tokens"]),
            "seconds": round(stats.elapsed_s, 3),
        }
    if calibration_ids is not None:
        calibration["n_samples"] = int(calibration_ids.shape[0])
        calibration["seq_len"] = int(calibration_ids.shape[1])
    order = layer_order(bi)
    n, fractions = choose_n_layers(order, layer_counts, counts_before[convention], 0.0 if ratio is None else ratio)
    if n_layers is not None:
        n = n_layers
    removed = sorted(order[:n])
    kept = adapter.drop_layers(removed)
    counts_after = parameter_counts(model, get_adapter(model))
    ratios = compression_ratio(counts_before, counts_after)
    achieved = ratios[f"removed_{convention}"]
    info: dict[str, Any] = {
        "method": "shortgpt",
        "convention": convention,
        "bi": [float(v) for v in bi],
        "removal_order": order,
        "removed_layers": removed,
        "kept_layers": kept,
        "n_removed": n,
        "target_ratio": ratio,
        "achieved_ratio": achieved,
        "candidate_ratios": fractions,
        "counts_before": counts_before,
        "counts_after": counts_after,
        "removed": ratios,
        "calibration": calibration,
    }
    target = "" if ratio is None else f" (target {ratio:.3f})"
    log.info(
        "shortgpt: removed %d of %d layers %s; %s parameters removed %.4f%s; total %d -> %d",
        n,
        total_layers,
        removed,
        convention,
        achieved,
        target,
        counts_before["total"],
        counts_after["total"],
    )
    return model, info
