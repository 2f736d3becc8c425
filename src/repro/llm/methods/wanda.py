"""Wanda: pruning by weights and activations (Sun et al., 2024), unstructured and N:M.

Own implementation following the shape of the official code (locuslab/wanda ``lib/prune.py``,
``prune_wanda``; brief §5):

* Score of weight ``W_ij`` of a linear ``W[out, in]``: ``S_ij = |W_ij| * ||X_j||_2``, where
  ``||X_j||_2`` is the norm of input column ``j`` over all calibration tokens: the square root of
  the calibration statistic ``layers.{l}.wanda.<linear>`` (``sum_t x_tj^2``, float64).  The official
  code keeps a running *mean* of ``x_j^2``; a constant factor does not change any ranking.
* Comparison group (the paper's "per output"): each output row of ``W``.
  - unstructured (``sparsity=s``): in every row the ``int(in_features * s)`` lowest scores are
    zeroed (stable ascending sort: among equal scores the lower column index is pruned first, as
    in the official ``torch.sort(..., stable=True)``);
  - N:M (``pattern="2:4"``, ``"4:8"``, ...): in every group of ``m`` consecutive input columns of
    a row the ``n`` lowest scores are zeroed (:func:`repro.kernels.nm_sparsity.wanda_nm_mask`:
    Triton on CUDA, the torch reference on CPU; same tie rule).
* Which weights: every ``nn.Linear`` of every decoder layer (``LayerAdapter.named_linears()``: q/k/v
  or fused qkv, the attention output, the MLP linears), weights only (no biases); embeddings, the LM
  head and OPT's ``project_in/out`` stay dense, as in the official ``find_layers(layer)``.
* Calibration (``calibration=``):

  - ``"sequential"`` (default, as in the official code): the inputs of layer ``l`` are the outputs
    of the already pruned layers ``< l`` (``collect_statistics(..., transform_layer=prune_layer)``);
    within a layer all linears are scored on the unpruned layer's activations;
  - ``"original"``: every layer is scored with the activation norms of the *original* model, taken
    from ``statistics`` when given (the ``layers.{l}.wanda.<linear>`` entries that the pipeline's
    calibration rule caches once per model and calibration set; no forward pass), else from one
    ``collect_statistics`` pass without transform.  Layer 0 gets the same masks in both modes (its
    inputs do not depend on pruning).

  There are no weight updates.

The pruned model is a standard transformers model with zeros in its weights (the dense parameter
count is unchanged; :func:`repro.llm.params.parameter_counts` with ``nonzero=True`` counts what is
left); it is saved with ``save_compressed(..., loader="hf")``.  :func:`semi_structured` converts the
2:4 linears of a CUDA fp16/bf16 model to ``torch.sparse`` semi-structured tensors for speed
measurements (brief §9.4); a model converted that way is for timing, not for saving.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from repro.kernels.nm_sparsity import apply_mask_, wanda_nm_mask
from repro.llm.adapters import LayerAdapter, get_adapter
from repro.llm.calibration import collect_statistics, layer_statistics
from repro.llm.params import compression_ratio, parameter_counts

__all__ = [
    "CALIBRATION_MODES",
    "parse_pattern",
    "pruning_summary",
    "semi_structured",
    "unstructured_mask",
    "wanda",
    "wanda_mask",
    "wanda_scores",
]

log = logging.getLogger(__name__)

#: Accepted ``calibration`` values of :func:`wanda`.
CALIBRATION_MODES = ("sequential", "original")

_PATTERN = re.compile(r"^\s*(\d+)\s*:\s*(\d+)\s*$")


def parse_pattern(pattern: str) -> tuple[int, int]:
    """``"2:4"`` -> ``(2, 4)``: prune ``n`` of every ``m`` consecutive input columns (``0 < n < m``)."""
    match = _PATTERN.match(str(pattern))
    if not match:
        raise ValueError(f"pattern must look like 'N:M' (e.g. '2:4', '4:8'), got {pattern!r}")
    n, m = int(match.group(1)), int(match.group(2))
    if not 0 < n < m:
        raise ValueError(f"pattern {pattern!r}: need 0 < N < M")
    return n, m


def wanda_scores(weight: torch.Tensor, sq_norms: torch.Tensor) -> torch.Tensor:
    """``|W_ij| * sqrt(sq_norms_j)`` in float32 (the precision of the N:M kernel), on the weight's device."""
    norms = sq_norms.to(device=weight.device, dtype=torch.float64).sqrt().to(torch.float32)
    return weight.detach().float().abs() * norms


def unstructured_mask(scores: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Keep mask ``[out, in]``: per row, the ``int(in * sparsity)`` lowest scores are pruned (stable sort)."""
    rows, cols = scores.shape
    k = int(cols * sparsity)
    keep = torch.ones(rows, cols, dtype=torch.bool, device=scores.device)
    if k > 0:
        order = torch.sort(scores, dim=-1, stable=True).indices
        keep.scatter_(1, order[:, :k], False)
    return keep


def wanda_mask(
    weight: torch.Tensor, sq_norms: torch.Tensor, *, sparsity: float | None = None, nm: tuple[int, int] | None = None
) -> torch.Tensor:
    """Wanda keep mask of one linear weight from its input's squared column norms (``sum_t x_tj^2``).

    Exactly one of ``sparsity`` (unstructured, per output row) and ``nm`` = ``(n, m)`` must be given.
    """
    if (sparsity is None) == (nm is None):
        raise ValueError("give exactly one of sparsity and nm")
    if nm is not None:
        n, m = nm
        if weight.shape[1] % m:
            raise ValueError(f"{n}:{m} pruning needs in_features divisible by {m}, got weight {tuple(weight.shape)}")
        norms = sq_norms.to(device=weight.device, dtype=torch.float64).sqrt().to(torch.float32)
        return wanda_nm_mask(weight.detach(), norms, n, m)
    return unstructured_mask(wanda_scores(weight, sq_norms), float(sparsity))


def _cached_norms(statistics: Mapping[str, torch.Tensor], adapter) -> Mapping[str, torch.Tensor]:
    """Check that cached statistics hold ``layers.{l}.wanda.<name>`` of the right length for every linear."""
    missing, wrong = [], []
    for la in adapter.layers():
        for name, lin in la.named_linears().items():
            key = f"layers.{la.index}.wanda.{name}"
            if key not in statistics:
                missing.append(key)
            elif tuple(statistics[key].shape) != (lin.in_features,):
                wrong.append(f"{key} {tuple(statistics[key].shape)} != ({lin.in_features},)")
    if missing:
        more = f" (and {len(missing) - 5} more)" if len(missing) > 5 else ""
        raise ValueError(
            f"cached statistics lack {len(missing)} Wanda norms: {', '.join(missing[:5])}{more}; "
            "collect them with which including 'wanda_norms'"
        )
    if wrong:
        raise ValueError(f"cached Wanda norms do not match the model's linears: {'; '.join(wrong[:5])}")
    return statistics


def _settings(sparsity: float | None, pattern: str | None) -> tuple[float, tuple[int, int] | None, str]:
    """Validate the settings: ``(fraction pruned, (n, m) or None, pattern label)``."""
    if sparsity is not None and pattern is not None:
        raise ValueError("give either sparsity (unstructured) or pattern (N:M), not both")
    if sparsity is None and pattern is None:
        pattern = "2:4"
    if pattern is not None:
        n, m = parse_pattern(pattern)
        return n / m, (n, m), f"{n}:{m}"
    sparsity = float(sparsity)
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    return sparsity, None, "unstructured"


@torch.no_grad()
def wanda(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    sparsity: float | None = None,
    pattern: str | None = None,
    batch_size: int = 4,
    progress: bool = True,
    return_statistics: bool = False,
    calibration: str = "sequential",
    statistics: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Prune ``model`` in place with Wanda; return ``(model, info)``.

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter`.
        calibration_ids: ``(n_samples, seq_len)`` token windows (:func:`repro.llm.calibration.calibration_batches`);
            may be ``None`` with ``calibration="original"`` and ``statistics``.
        sparsity: unstructured pruning: fraction of every output row to zero.
        pattern: N:M pruning, e.g. ``"2:4"`` (the default when neither setting is given) or ``"4:8"``.
        batch_size: calibration rows per forward call.
        progress: progress bar and log lines during calibration.
        return_statistics: also put the calibration statistics (the squared column norms each
            linear was pruned with, ``layers.{l}.wanda.<name>``) under ``info["statistics"]``;
            that entry is not JSON-serialisable: drop it before ``save_compressed``.
        calibration: ``"sequential"`` (default, official: layer ``l`` is scored on the outputs of the
            pruned layers ``< l``) or ``"original"`` (activation norms of the unpruned model).
        statistics: cached :func:`~repro.llm.calibration.collect_statistics` of the original model
            (``which`` including ``"wanda_norms"``), used by ``calibration="original"`` instead of a
            calibration pass.  ``ValueError`` naming the missing ``layers.{l}.wanda.<name>`` keys,
            or when given with ``"sequential"`` (whose statistics depend on the pruning).

    Returns:
        ``(model, info)``; ``info`` holds ``method``, ``pattern`` (``"2:4"``... or ``"unstructured"``),
        ``n``/``m`` (N:M only), ``sparsity`` (target fraction of zeros per pruned linear),
        ``achieved_sparsity`` (zeros / weights over all pruned linears, pre-existing zeros included),
        ``pruned_linears``, ``pruned_weights`` (weights in the pruned linears) and ``zeros``,
        ``per_linear`` (name -> achieved sparsity, over all layers), ``counts_dense`` /
        ``counts_nonzero_before`` / ``counts_nonzero`` (:func:`parameter_counts`, the latter two with
        ``nonzero=True``), ``removed_nonzero`` (:func:`compression_ratio` of the non-zero counts
        against the dense counts), and ``calibration`` (``mode`` ``"sequential"`` / ``"original"``,
        ``source`` ``"pass"`` or ``"statistics"`` (cached), samples, seq_len, tokens, seconds).
    """
    target, nm, label = _settings(sparsity, pattern)
    if calibration not in CALIBRATION_MODES:
        raise ValueError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
    if statistics is not None and calibration != "original":
        raise ValueError(
            "cached statistics are those of the original model: pass calibration='original' to use them "
            f"(calibration={calibration!r} recomputes them through the pruned layers)"
        )
    if statistics is None and calibration_ids is None:
        raise ValueError("wanda needs calibration_ids, or cached statistics with calibration='original'")
    adapter = get_adapter(model)
    if nm is not None:
        for la in adapter.layers():
            for name, lin in la.named_linears().items():
                if lin.in_features % nm[1]:
                    raise ValueError(
                        f"{label} pruning needs in_features divisible by {nm[1]}: layer {la.index} {name} "
                        f"has {lin.in_features}"
                    )
    counts_dense = parameter_counts(model, adapter)
    counts_nonzero_before = parameter_counts(model, adapter, nonzero=True)
    per_linear: dict[str, list[int]] = {}
    totals = {"linears": 0, "weights": 0, "zeros": 0}

    def prune_layer(idx: int, la: LayerAdapter, layer_stats: dict[str, torch.Tensor]) -> None:
        for name, lin in la.named_linears().items():
            key = f"wanda.{name}"
            if key not in layer_stats:
                raise RuntimeError(f"no calibration statistic {key!r} for layer {idx}")
            keep = wanda_mask(lin.weight, layer_stats[key], sparsity=None if nm else target, nm=nm)
            apply_mask_(lin.weight, keep)
            zeros = int((lin.weight == 0).sum())
            acc = per_linear.setdefault(name, [0, 0])
            acc[0] += zeros
            acc[1] += lin.weight.numel()
            totals["linears"] += 1
            totals["weights"] += lin.weight.numel()
            totals["zeros"] += zeros

    t0 = time.perf_counter()
    if statistics is not None:
        stats = _cached_norms(statistics, adapter)
        source = "statistics"
    else:
        stats = collect_statistics(
            model,
            calibration_ids,
            batch_size=batch_size,
            which={"wanda_norms"},
            progress=progress,
            transform_layer=prune_layer if calibration == "sequential" else None,
        )
        source = "pass"
    if calibration == "original":
        for la in adapter.layers():
            prune_layer(la.index, la, layer_statistics(stats, la.index))
    counts_nonzero = parameter_counts(model, adapter, nonzero=True)
    info: dict[str, Any] = {
        **pruning_summary(
            "wanda", label, nm, target, totals, per_linear, counts_dense, counts_nonzero_before, counts_nonzero
        ),
        "calibration": {
            "mode": calibration,
            "source": source,
            "n_samples": None if calibration_ids is None else int(calibration_ids.shape[0]),
            "seq_len": None if calibration_ids is None else int(calibration_ids.shape[1]),
            "tokens": int(stats["tokens"]) if "tokens" in stats else None,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    log.info(
        "wanda %s (%s calibration): %d linears, %.4f of their weights zero; non-zero parameters %d -> %d (dense %d)",
        label,
        calibration,
        totals["linears"],
        info["achieved_sparsity"],
        counts_nonzero_before["total"],
        counts_nonzero["total"],
        counts_dense["total"],
    )
    if return_statistics:
        info["statistics"] = stats
    return model, info


def pruning_summary(
    method: str,
    label: str,
    nm: tuple[int, int] | None,
    target: float,
    totals: Mapping[str, int],
    per_linear: Mapping[str, list[int]],
    counts_dense: Mapping[str, int],
    counts_nonzero_before: Mapping[str, int],
    counts_nonzero: Mapping[str, int],
) -> dict[str, Any]:
    """The ``compression.json`` fields every mask-based pruner (Wanda, SparseGPT) reports.

    ``totals`` counts pruned ``linears``, their ``weights`` and ``zeros``; ``per_linear`` maps a
    linear's short name to ``[zeros, weights]`` summed over layers.
    """
    return {
        "method": method,
        "pattern": label,
        **({"n": nm[0], "m": nm[1]} if nm else {}),
        "sparsity": target,
        "achieved_sparsity": totals["zeros"] / totals["weights"] if totals["weights"] else 0.0,
        "pruned_linears": totals["linears"],
        "pruned_weights": totals["weights"],
        "zeros": totals["zeros"],
        "per_linear": {name: z / w for name, (z, w) in sorted(per_linear.items())},
        "counts_dense": dict(counts_dense),
        "counts_nonzero_before": dict(counts_nonzero_before),
        "counts_nonzero": dict(counts_nonzero),
        "removed_nonzero": compression_ratio(counts_dense, counts_nonzero),
    }


# ---------------------------------------------------------------------------------------------- 2:4 kernels
def _semi_structured_unavailable(model: nn.Module) -> str | None:
    """Why the 2:4 semi-structured conversion cannot run for ``model`` (``None`` when it can)."""
    param = next(model.parameters(), None)
    if param is None:
        return "the model has no parameters"
    if param.device.type != "cuda":
        return f"semi-structured 2:4 kernels need CUDA; the model is on {param.device.type}"
    if param.dtype not in (torch.float16, torch.bfloat16):
        return f"semi-structured 2:4 speed-ups need fp16/bf16 weights; the model is {param.dtype}"
    sparse = getattr(torch, "sparse", None)
    if sparse is None or not hasattr(sparse, "to_sparse_semi_structured"):
        return f"torch {torch.__version__} has no torch.sparse.to_sparse_semi_structured"
    major, _ = torch.cuda.get_device_capability(param.device)
    if major < 8:
        return f"semi-structured sparsity needs a GPU of compute capability >= 8.0, got {major}.x"
    return None


def _is_two_four(weight: torch.Tensor) -> bool:
    """At most 2 non-zeros in every group of 4 consecutive input columns of every row."""
    if weight.dim() != 2 or weight.shape[1] % 4:
        return False
    nonzero = (weight != 0).reshape(weight.shape[0], -1, 4).sum(dim=-1)
    return bool((nonzero <= 2).all())


@torch.no_grad()
def semi_structured(model: nn.Module, backend: str = "auto") -> bool:
    """Convert the 2:4-sparse decoder linears of a CUDA fp16/bf16 model to semi-structured sparse tensors.

    Each ``nn.Linear`` of ``LayerAdapter.named_linears()`` whose weight has at most 2 non-zeros in
    every group of 4 input columns and meets the backend's shape constraints gets its weight
    replaced by ``torch.sparse.to_sparse_semi_structured(weight)`` (cuSPARSELt when
    ``torch.backends.cusparselt`` is available, else CUTLASS), so ``F.linear`` runs on sparse tensor
    cores.  Logits change only by kernel rounding.  For speed measurements: the converted model is
    not meant for ``save_pretrained``.

    ``backend``: ``"auto"`` (cuSPARSELt when available, else CUTLASS), ``"cusparselt"`` or ``"cutlass"``.

    Returns:
        ``True`` when at least one linear was converted; ``False`` otherwise (CPU, fp32, a torch
        build or GPU without support, or no 2:4 linear), with the reason in a log line.
    """
    if backend not in ("auto", "cusparselt", "cutlass"):
        raise ValueError(f"backend must be auto, cusparselt or cutlass, got {backend!r}")
    reason = _semi_structured_unavailable(model)
    if reason is not None:
        log.info("semi_structured: not converting: %s", reason)
        return False
    from torch.sparse import SparseSemiStructuredTensor, to_sparse_semi_structured

    cusparselt = getattr(torch.backends, "cusparselt", None)
    use_cusparselt = bool(cusparselt is not None and cusparselt.is_available()) and backend != "cutlass"
    if backend == "cusparselt" and not use_cusparselt:
        log.info("semi_structured: not converting: this torch build has no cuSPARSELt")
        return False
    major, _ = torch.cuda.get_device_capability(next(model.parameters()).device)
    if not use_cusparselt and major != 8:
        # torch's CUTLASS 2:4 kernels are built for sm_8x only (on an H200 they raise at the first matmul)
        log.info(
            "semi_structured: not converting: the CUTLASS 2:4 kernels need compute capability 8.x, got %d.x", major
        )
        return False
    SparseSemiStructuredTensor._FORCE_CUTLASS = not use_cusparselt
    backend_cls = (
        torch.sparse.SparseSemiStructuredTensorCUSPARSELT
        if use_cusparselt
        else torch.sparse.SparseSemiStructuredTensorCUTLASS
    )
    converted, skipped = 0, {}
    for la in get_adapter(model).layers():
        for name, lin in la.named_linears().items():
            weight = lin.weight
            where = f"layer {la.index} {name}"
            if isinstance(weight, SparseSemiStructuredTensor):
                continue
            constraints = backend_cls._DTYPE_SHAPE_CONSTRAINTS.get(weight.dtype)
            rows, cols = weight.shape
            if constraints is None:
                skipped[where] = f"dtype {weight.dtype}"
                continue
            if rows % constraints.sparse_min_rows or cols % constraints.sparse_min_cols:
                skipped[where] = (
                    f"shape {tuple(weight.shape)} not a multiple of "
                    f"({constraints.sparse_min_rows}, {constraints.sparse_min_cols})"
                )
                continue
            if not _is_two_four(weight):
                skipped[where] = "not 2:4 sparse"
                continue
            try:
                sparse_weight = to_sparse_semi_structured(weight.detach().contiguous())
            except (RuntimeError, NotImplementedError) as exc:
                skipped[where] = f"{type(exc).__name__}: {exc}"
                continue
            lin.weight = nn.Parameter(sparse_weight, requires_grad=False)
            converted += 1
    backend = "cusparselt" if use_cusparselt else "cutlass"
    if skipped:
        first = next(iter(skipped.items()))
        log.info("semi_structured: %d linears left dense (e.g. %s: %s)", len(skipped), *first)
    if not converted:
        log.info("semi_structured: no linear converted (backend %s)", backend)
        return False
    log.info("semi_structured: converted %d linears to 2:4 semi-structured tensors (%s)", converted, backend)
    return True
