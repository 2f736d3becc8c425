"""SVD-LLM: truncation-aware data whitening + SVD of every decoder linear (Wang et al., ICLR 2025).

Own implementation of the whitening-only variant of the official code (AIoT-MLSys-Lab/SVD-LLM
``SVDLLM.py``: ``profle_svdllm_low_resource`` + ``whitening``, ``--step 1``; brief §2.1, §5):

* **Whitening.** For a linear ``W [m, n]`` (``m`` outputs) reading inputs ``X [tokens, n]``,
  ``S = cholesky(X^T X)`` (lower, float64, ``X^T X = S S^T``; the un-normalised sum, as the official
  profile).  When the Cholesky factorisation fails, the diagonal is shifted by ``-lambda_min + 1e-6``
  (``lambda_min`` the smallest eigenvalue) and it is retried, as in the official code.
  ``X^T X`` comes from the float64 calibration statistics
  (:func:`repro.llm.calibration.linear_input_statistic`: q/k/v share the attention input, gate/up
  the MLP input, so their ``S`` is factorised once per layer).
* **Truncation.** ``W S = U Sigma V^T``; keep rank ``r = floor(m n (1 - ratio) / (m + n))`` (``ratio``:
  the fraction of the linear's weights removed; the official ``int(m * n * keep / (m + n))`` with
  ``keep = 1 - ratio``), so the two factors hold ``r (m + n) <= (1 - ratio) m n`` weights.
  ``W' = (U_r Sigma_r^1/2) (Sigma_r^1/2 V_r^T S^-1)``: a :class:`LowRankLinear` (``factor_in``:
  ``[r, n]``, no bias; ``factor_out``: ``[m, r]`` with the original bias).  ``rank_multiple`` (our
  option, default 1 = the official rank) rounds ``r`` down to a multiple, e.g. 8: on a GPU an fp16
  GEMM whose inner dimension is not a multiple of 8 misses the tensor-core fast path (on one H200 a
  4-layer model with LLaMA-2 7B dimensions and official ranks such as 1495 prefilled at 0.29 times
  the dense model's rate, ``python -m repro.bench compressed-llm``).  ``S^-1`` is applied by a
  triangular solve (the official code inverts ``S`` explicitly).  The truncation loss is exact:
  ``||(W - W') X^T||_F^2 = sum_{i > r} sigma_i^2`` (the paper's theorem), reported per linear.
* **Precision.** Cholesky, solve and SVD in float64 (the official code casts ``S``, ``S^-1`` and ``W S``
  to float32 before the SVD); the factors are cast to the model's dtype.
* **Which linears.** Every ``nn.Linear`` of every decoder layer (``named_linears()``: q/k/v or fused
  qkv, attention output, MLP linears), all with the same ``ratio`` (the official code applies one
  ratio to all of them); embeddings and the LM head stay dense.  ``ratio == 0`` leaves the model
  unchanged (the official formula would still factorise every linear at about half its rank).
* **Targets.** ``target_removed`` (fraction of the dense parameters under ``convention``: ``"total"``
  counts a tied embedding once, ``"blocks"`` only the decoder layers; :mod:`repro.llm.params`) is
  turned into the uniform per-linear ``ratio`` by bisection on the exact parameter count predicted
  from the ranks (:func:`predicted_parameter_counts`: the saved model has exactly these counts), the
  ratio whose count is closest to the target.  ``ratio=`` gives the official knob directly.
* **Calibration.** ``"original"`` (default; the official profile runs every layer on the original
  model's activations): from ``statistics`` (the pipeline's cached calibration statistics; no
  forward pass) or one pass.  ``"sequential"``: layer ``l`` is whitened with the activations of
  the already factorised layers ``< l``.
* **Not implemented** (documented non-goal): the optional LoRA fine-tuning of the factors and the
  "whitening then update" closed-form refit of ``U`` (``--step 2``).

The factorised model is saved by :func:`write_weights` (config, ``svd_llm.json`` with the rank of
every factorised linear, ``model.safetensors``) and rebuilt by the ``"svd_llm"`` loader of
:func:`repro.llm.compressed.load_compressed` (registered when this module is imported).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repro.llm.adapters import LayerAdapter, ModelAdapter, get_adapter
from repro.llm.calibration import check_linear_inputs, linear_input_statistic, transform_each_layer
from repro.llm.compressed import layers_and_rows, read_structured_weights, register_loader, write_structured_weights
from repro.llm.params import compression_ratio, parameter_counts

__all__ = [
    "CALIBRATION_MODES",
    "CONVENTIONS",
    "COVARIANCES",
    "FORMAT_VERSION",
    "LowRankLinear",
    "apply_structure",
    "factorise_layer",
    "load_svd_llm",
    "model_ranks",
    "predicted_parameter_counts",
    "rank_for_ratio",
    "ratio_for_target",
    "svd_llm",
    "whitened_svd",
    "whitening_factor",
    "write_weights",
]

log = logging.getLogger(__name__)

CALIBRATION_MODES = ("original", "sequential")
CONVENTIONS = ("total", "blocks")
#: The calibration statistics SVD-LLM reads (the input covariance of every linear).
COVARIANCES = frozenset({"attn_in_cov", "attn_mid_cov", "mlp_in_cov", "mlp_mid_cov"})
FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
RANKS_FILE = "svd_llm.json"
SHIFT = 1e-6  # official: diagonal shift -lambda_min + 1e-6 when the Cholesky factorisation fails


# ---------------------------------------------------------------------------------------------- module
class LowRankLinear(nn.Module):
    """``y = factor_out(factor_in(x))``: a rank-``r`` factorisation of an ``nn.Linear(in, out)``.

    ``factor_in``: ``nn.Linear(in_features, rank, bias=False)``; ``factor_out``:
    ``nn.Linear(rank, out_features, bias=bias)`` (the original bias).  Parameters:
    ``rank * (in + out)`` plus the bias.
    """

    def __init__(
        self,
        in_features: int,
        out_features: int,
        rank: int,
        bias: bool = True,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        if not 1 <= rank:
            raise ValueError(f"rank must be positive, got {rank}")
        self.in_features, self.out_features, self.rank = int(in_features), int(out_features), int(rank)
        kw = {"dtype": dtype, "device": device}
        self.factor_in = nn.Linear(self.in_features, self.rank, bias=False, **kw)
        self.factor_out = nn.Linear(self.rank, self.out_features, bias=bias, **kw)

    @property
    def bias(self) -> torch.Tensor | None:
        return self.factor_out.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.factor_out(self.factor_in(x))

    def dense_weight(self) -> torch.Tensor:
        """The ``[out, in]`` product of the factors."""
        return self.factor_out.weight @ self.factor_in.weight

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, rank={self.rank}"


def _replace(layer: nn.Module, name: str, module: nn.Module) -> None:
    parent_name, _, child = name.rpartition(".")
    parent = layer.get_submodule(parent_name) if parent_name else layer
    setattr(parent, child, module)


# ---------------------------------------------------------------------------------------------- math
def rank_for_ratio(out_features: int, in_features: int, ratio: float, multiple: int = 1) -> int:
    """``floor(m n (1 - ratio) / (m + n))`` (the official rank; ``ratio`` = fraction of weights removed),
    rounded down to a multiple of ``multiple`` when it is at least ``multiple`` (module docstring)."""
    if not 0.0 <= ratio < 1.0:
        raise ValueError(f"ratio must be in [0, 1), got {ratio}")
    if int(multiple) < 1:
        raise ValueError(f"rank_multiple must be a positive integer, got {multiple}")
    m, n = int(out_features), int(in_features)
    rank = int(m * n * (1.0 - ratio) / (m + n))
    return rank - rank % int(multiple) if rank >= int(multiple) else rank


def whitening_factor(covariance: torch.Tensor) -> tuple[torch.Tensor, float]:
    """``(S, shift)``: the lower Cholesky factor of ``X^T X`` (float64) and the diagonal shift applied (0 if none)."""
    cov = covariance.to(torch.float64)
    lower, info = torch.linalg.cholesky_ex(cov)
    if int(info) == 0:
        return lower, 0.0
    shift = float(-torch.linalg.eigvalsh(cov)[0]) + SHIFT
    lower, info = torch.linalg.cholesky_ex(cov + shift * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device))
    if int(info) != 0:
        raise ValueError(f"X^T X is not positive definite even after shifting its diagonal by {shift:.3g}")
    return lower, shift


def whitened_svd(
    weight: torch.Tensor, whitening: torch.Tensor, rank: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(A [m, r], B [r, n], sigma)`` with ``A B`` the truncation-aware rank-``r`` approximation of ``weight``.

    ``whitening`` is ``S`` (lower triangular, ``X^T X = S S^T``, :func:`whitening_factor`);
    ``W S = U diag(sigma) V^T``, ``A = U_r sqrt(sigma_r)``, ``B = sqrt(sigma_r) V_r^T S^-1``; all float64.
    ``sigma`` holds every singular value of ``W S`` (descending), so the truncation loss
    ``||(W - A B) X^T||_F^2`` is ``sigma[rank:].square().sum()``.
    """
    m, n = weight.shape
    if tuple(whitening.shape) != (n, n):
        raise ValueError(f"S has shape {tuple(whitening.shape)}, the weight has {n} input columns")
    if not 1 <= rank <= min(m, n):
        raise ValueError(f"rank must be in [1, {min(m, n)}], got {rank}")
    s = whitening.to(device=weight.device, dtype=torch.float64)
    u, sigma, vh = torch.linalg.svd(weight.detach().to(torch.float64) @ s, full_matrices=False)
    root = sigma[:rank].sqrt()
    a = u[:, :rank] * root.unsqueeze(0)
    b = torch.linalg.solve_triangular(s, vh[:rank], upper=False, left=False) * root.unsqueeze(1)
    return a, b, sigma


# ---------------------------------------------------------------------------------------------- counts
def _linear_shapes(adapter: ModelAdapter) -> list[tuple[int, int]]:
    return [(lin.out_features, lin.in_features) for la in adapter.layers() for lin in la.named_linears().values()]


def _check_linears(adapter: ModelAdapter) -> None:
    for la in adapter.layers():
        for name, lin in la.named_linears().items():
            if type(lin) is not nn.Linear:
                raise ValueError(f"layer {la.index} {name} is a {type(lin).__name__}, not a plain nn.Linear")
            linear_input_statistic(la, name)  # every linear must have an input covariance


def predicted_parameter_counts(
    dense_counts: Mapping[str, int], shapes: Sequence[tuple[int, int]], ratio: float, rank_multiple: int = 1
) -> dict[str, int]:
    """Counts after factorising linears of ``shapes`` (``(out, in)``) at ``ratio`` (biases unchanged)."""
    removed = 0
    if ratio > 0:
        for m, n in shapes:
            removed += m * n - rank_for_ratio(m, n, ratio, rank_multiple) * (m + n)
    counts = dict(dense_counts)
    counts["total"] = dense_counts["total"] - removed
    counts["blocks"] = dense_counts["blocks"] - removed
    return counts


def ratio_for_target(
    dense_counts: Mapping[str, int],
    shapes: Sequence[tuple[int, int]],
    target_removed: float,
    convention: str = "total",
    iterations: int = 60,
    rank_multiple: int = 1,
) -> dict[str, Any]:
    """The uniform per-linear ratio whose predicted removed fraction is closest to ``target_removed``.

    Bisection on ``ratio`` in ``[0, ratio_max]`` (``ratio_max``: the largest ratio giving every linear
    rank >= 1); the removed fraction is a non-decreasing step function of ``ratio``, so the two
    bracketing ratios are compared and the closer one kept (ties: the smaller ratio).  Returns
    ``{"ratio", "predicted_counts", "predicted_removed", "reachable": [0, max], "iterations"}``;
    ``ValueError`` when the target is outside the reachable range.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    target = float(target_removed)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target_removed must be in [0, 1), got {target_removed}")
    if not shapes:
        raise ValueError("the model has no decoder linears to factorise")
    denominator = dense_counts[convention]

    def removed(ratio: float) -> float:
        return 1.0 - predicted_parameter_counts(dense_counts, shapes, ratio, rank_multiple)[convention] / denominator

    # rank >= 1 for every linear: m n (1 - ratio) / (m + n) >= 1 (stepped down past float rounding)
    ratio_max = min(1.0 - (m + n) / (m * n) for m, n in shapes)
    while ratio_max > 0 and any(rank_for_ratio(m, n, ratio_max) < 1 for m, n in shapes):
        ratio_max = max(0.0, ratio_max - 1e-12)
    ratio_max = max(0.0, ratio_max)
    reachable = (0.0, removed(ratio_max))
    if target > reachable[1] + 1e-12:
        raise ValueError(
            f"target_removed {target} is not reachable under convention {convention!r}: factorising every "
            f"decoder linear at rank 1 removes {reachable[1]:.4f}"
        )
    lo, hi, steps = 0.0, ratio_max, 0
    if target <= 0.0:
        hi = 0.0
    while steps < iterations and hi - lo > 1e-12:
        mid = 0.5 * (lo + hi)
        if removed(mid) >= target:
            hi = mid
        else:
            lo = mid
        steps += 1
    best = min((lo, hi), key=lambda r: (abs(removed(r) - target), r))
    return {
        "ratio": best,
        "predicted_counts": predicted_parameter_counts(dense_counts, shapes, best, rank_multiple),
        "predicted_removed": removed(best),
        "reachable": list(reachable),
        "iterations": steps,
    }


# ---------------------------------------------------------------------------------------------- compress
@torch.no_grad()
def factorise_layer(
    la: LayerAdapter, layer_stats: Mapping[str, torch.Tensor], ratio: float, rank_multiple: int = 1
) -> list[dict[str, Any]]:
    """Replace every linear of ``la`` by its whitened rank-``r`` :class:`LowRankLinear`; one row per linear.

    ``layer_stats`` holds the layer's input covariances (short keys, :data:`COVARIANCES`).  A row has
    ``layer``, ``linear``, ``rank``, ``shape``, ``shift`` (the Cholesky diagonal shift, 0 if none) and
    ``truncation_loss`` (``sum_{i>r} sigma_i^2 / sum_i sigma_i^2`` of ``W S``: the fraction of the
    linear's output energy on the calibration tokens that the truncation loses).
    """
    rows = []
    factors: dict[str, tuple[torch.Tensor, float]] = {}
    # statistic keys first: the adapter's module lookups change as linears are replaced
    linears = {name: (lin, linear_input_statistic(la, name)) for name, lin in la.named_linears().items()}
    for name, (lin, key) in linears.items():
        if key not in layer_stats:
            raise RuntimeError(f"no calibration statistic {key!r} for layer {la.index}")
        if key not in factors:
            factors[key] = whitening_factor(layer_stats[key].to(lin.weight.device))
        s, shift = factors[key]
        m, n = lin.out_features, lin.in_features
        rank = rank_for_ratio(m, n, ratio, rank_multiple)
        if rank < 1:
            raise ValueError(f"ratio {ratio} leaves layer {la.index} {name} ({m}x{n}) with rank 0")
        a, b, sigma = whitened_svd(lin.weight, s, rank)
        ref = lin.weight
        low = LowRankLinear(n, m, rank, bias=lin.bias is not None, dtype=ref.dtype, device=ref.device)
        low.factor_in.weight.copy_(b.to(ref.dtype))
        low.factor_out.weight.copy_(a.to(ref.dtype))
        if lin.bias is not None:
            low.factor_out.bias.copy_(lin.bias)
        _replace(la.layer, name, low)
        energy = float(sigma.square().sum())
        rows.append(
            {
                "layer": la.index,
                "linear": name,
                "rank": rank,
                "shape": [m, n],
                "shift": shift,
                "truncation_loss": float(sigma[rank:].square().sum()) / energy if energy > 0 else 0.0,
            }
        )
    return rows


def _check_cached(statistics: Mapping[str, torch.Tensor], adapter) -> None:
    check_linear_inputs(statistics, adapter, "SVD-LLM", COVARIANCES, need_tokens=False)


@torch.no_grad()
def svd_llm(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    target_removed: float | None = None,
    convention: str = "total",
    ratio: float | None = None,
    calibration: str = "original",
    statistics: Mapping[str, torch.Tensor] | None = None,
    batch_size: int = 4,
    progress: bool = True,
    rank_multiple: int = 1,
) -> tuple[nn.Module, dict[str, Any]]:
    """Factorise every decoder linear of ``model`` in place with SVD-LLM (whitening only); return ``(model, info)``.

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter`.
        calibration_ids: ``(n_samples, seq_len)`` token windows; may be ``None`` with
            ``calibration="original"`` and ``statistics``.
        target_removed: fraction of the dense parameters (under ``convention``) to remove; solved
            into a uniform per-linear ``ratio`` (module docstring).
        convention: ``"total"`` (default) or ``"blocks"``.
        ratio: the official knob instead of a target: fraction of each linear's weights removed.
        calibration: ``"original"`` (default, official) or ``"sequential"``.
        statistics: cached statistics of the original model (the input covariances of every
            linear), used by ``calibration="original"`` instead of a pass.
        batch_size: calibration rows per forward call.
        progress: progress bar and log lines.
        rank_multiple: round every rank down to a multiple of this (1: the official rank; 8 keeps
            the factors' inner dimension aligned for fp16 tensor-core GEMMs, module docstring).

    Returns:
        ``(model, info)``; ``info`` holds ``method``, ``ratio``, ``rank_multiple``, ``target_removed``, ``convention``,
        ``achieved_removed`` (under ``convention``; ``None`` without a target), ``removed``
        (:func:`compression_ratio`, both conventions), ``predicted_counts``, ``predicted_removed``,
        ``predicted_matches``, ``counts_dense``, ``counts_after``, ``ranks`` (one row per factorised
        linear, :func:`factorise_layer`), ``truncation_loss_mean`` and ``cholesky_shifts`` (how many
        covariances needed the diagonal shift), ``calibration`` (``mode``, ``source``, samples,
        seq_len, tokens, seconds).
    """
    if (target_removed is None) == (ratio is None):
        raise ValueError("give exactly one of target_removed (a parameter target) and ratio (per linear)")
    if calibration not in CALIBRATION_MODES:
        raise ValueError(f"calibration must be one of {CALIBRATION_MODES}, got {calibration!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    if statistics is not None and calibration != "original":
        raise ValueError(
            "cached statistics are those of the original model: pass calibration='original' to use them "
            f"(calibration={calibration!r} recomputes them through the factorised layers)"
        )
    if statistics is None and calibration_ids is None:
        raise ValueError("svd_llm needs calibration_ids, or cached statistics with calibration='original'")
    rank_multiple = int(rank_multiple)
    if rank_multiple < 1:
        raise ValueError(f"rank_multiple must be a positive integer, got {rank_multiple}")
    adapter = get_adapter(model)
    _check_linears(adapter)
    counts_dense = parameter_counts(model, adapter)
    shapes = _linear_shapes(adapter)
    if ratio is not None:
        ratio = float(ratio)
        if not 0.0 <= ratio < 1.0:
            raise ValueError(f"ratio must be in [0, 1), got {ratio}")
        plan = {
            "ratio": ratio,
            "predicted_counts": predicted_parameter_counts(counts_dense, shapes, ratio, rank_multiple),
            "iterations": 0,
        }
        plan["predicted_removed"] = 1.0 - plan["predicted_counts"][convention] / counts_dense[convention]
    else:
        plan = ratio_for_target(counts_dense, shapes, target_removed, convention, rank_multiple=rank_multiple)
    ratio = plan["ratio"]
    rows: list[dict[str, Any]] = []

    def transform(idx: int, la: LayerAdapter, layer_stats: Mapping[str, torch.Tensor]) -> None:
        rows.extend(factorise_layer(la, layer_stats, ratio, rank_multiple))

    t0 = time.perf_counter()
    tokens = None
    if ratio == 0.0:
        source = "none (ratio 0: nothing factorised)"
    else:
        if statistics is not None:
            _check_cached(statistics, adapter)
        source, tokens = transform_each_layer(
            model,
            transform,
            statistics=statistics,
            calibration=calibration,
            calibration_ids=calibration_ids,
            which=COVARIANCES,
            batch_size=batch_size,
            progress=progress,
        )
    counts_after = parameter_counts(model, adapter)
    removed = compression_ratio(counts_dense, counts_after)
    info: dict[str, Any] = {
        "method": "svd_llm",
        "ratio": ratio,
        "rank_multiple": rank_multiple,
        "target_removed": None if target_removed is None else float(target_removed),
        "convention": convention,
        "achieved_removed": removed[f"removed_{convention}"],
        "removed": removed,
        "predicted_counts": plan["predicted_counts"],
        "predicted_removed": plan["predicted_removed"],
        "predicted_matches": plan["predicted_counts"]["total"] == counts_after["total"],
        "solve_iterations": plan["iterations"],
        "counts_dense": counts_dense,
        "counts_after": counts_after,
        "ranks": rows,
        "truncation_loss_mean": sum(r["truncation_loss"] for r in rows) / len(rows) if rows else 0.0,
        "cholesky_shifts": len({(r["layer"], r["shift"]) for r in rows if r["shift"] > 0}),
        "lora": "not applied (whitening only, official --step 1)",
        "calibration": {
            "mode": calibration,
            "source": source,
            "n_samples": None if calibration_ids is None else int(calibration_ids.shape[0]),
            "seq_len": None if calibration_ids is None else int(calibration_ids.shape[1]),
            "tokens": tokens,
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    log.info(
        "svd_llm (%s calibration): ratio %.4f per linear, %s parameters removed %.4f (target %s); %d -> %d",
        calibration,
        ratio,
        convention,
        info["achieved_removed"],
        target_removed,
        counts_dense["total"],
        counts_after["total"],
    )
    return model, info


# ---------------------------------------------------------------------------------------------- disk
def model_ranks(model: nn.Module) -> list[dict[str, Any]]:
    """Per decoder layer ``{"layer", "ranks": {linear name: rank}}`` of the :class:`LowRankLinear` modules."""
    adapter = get_adapter(model)
    rows = []
    for la in adapter.layers():
        ranks = {name: m.rank for name, m in la.layer.named_modules() if isinstance(m, LowRankLinear)}
        rows.append({"layer": la.index, "ranks": dict(sorted(ranks.items()))})
    return rows


def write_weights(model: nn.Module, folder: Path) -> None:
    """``write_weights`` for :func:`repro.llm.compressed.save_compressed`: config, ``svd_llm.json``, safetensors."""
    write_structured_weights(
        model,
        folder,
        loader="svd_llm",
        layers=model_ranks(model),
        record_file=RANKS_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        indent=1,
    )


def apply_structure(model: nn.Module, layers: list[Mapping[str, Any]]) -> ModelAdapter:
    """Replace the linears named in ``svd_llm.json`` rows by empty :class:`LowRankLinear` modules."""
    for la, row in layers_and_rows(model, layers, RANKS_FILE):
        linears = la.named_linears()
        for name, rank in row["ranks"].items():
            if name not in linears:
                raise ValueError(f"svd_llm.json: layer {la.index} has no linear {name!r}")
            lin = linears[name]
            ref = lin.weight
            low = LowRankLinear(
                lin.in_features,
                lin.out_features,
                int(rank),
                bias=lin.bias is not None,
                dtype=ref.dtype,
                device=ref.device,
            )
            _replace(la.layer, name, low)
    return get_adapter(model)


@register_loader("svd_llm")
def load_svd_llm(path, record: dict | None = None, dtype: torch.dtype = torch.float32, attn_implementation=None):
    """Rebuild a model written by :func:`write_weights` (the ``"svd_llm"`` loader of ``load_compressed``)."""
    return read_structured_weights(
        path,
        loader="svd_llm",
        label="SVD-LLM",
        record_file=RANKS_FILE,
        weights_file=WEIGHTS_FILE,
        format_version=FORMAT_VERSION,
        restructure=apply_structure,
        dtype=dtype,
        attn_implementation=attn_implementation,
    )
