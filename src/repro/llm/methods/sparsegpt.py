"""SparseGPT: one-shot pruning with optimal-brain-surgeon weight updates (Frantar & Alistarh, ICML 2023).

Own implementation of the algorithm as the official code runs it (IST-DASLab/sparsegpt
``sparsegpt.py`` ``SparseGPT.fasterprune``; the copy in locuslab/wanda ``lib/sparsegpt.py`` that the
Wanda README's 2:4 / 50 % numbers come from is the same; brief §5, §7.1).  For every linear
``W [rows, cols]`` of a decoder layer, reading inputs ``X [tokens, cols]``:

* **Hessian.** ``H = 2 X^T X / n`` (``n`` calibration tokens), the official scale; we take ``X^T X``
  from the float64 calibration statistics (:func:`repro.llm.calibration.linear_input_statistic`:
  q/k/v share the attention input, gate/up the MLP input, the two output projections have their
  own) and multiply by ``2 / n``.  The scale cancels in every step below (saliencies are compared
  within one linear, updates are ratios, the damping is relative); it only sets the unit of the
  reported ``obs_error`` (the mean over tokens of the squared output error, summed over outputs).
* **Dead inputs.** Columns with ``H_jj == 0`` (inputs that are always zero) get ``H_jj = 1`` and
  their weights set to zero, as in the official code (they do not change any output).
* **Damping.** ``H += percdamp * mean(diag H) * I`` (``percdamp`` 0.01).
* **Inverse.** ``H^-1`` through its Cholesky factor (``cholesky_inverse``), then the *upper*
  Cholesky factor ``U`` of ``H^-1`` (``H^-1 = U^T U``).  Row ``i`` of ``U`` is the OBS update of
  column ``i`` once columns ``< i`` are fixed: ``U_ii^2 = [(H_FF)^-1]_ii`` and
  ``U[i, i:] / U_ii = [(H_FF)^-1]_i,: / [(H_FF)^-1]_ii`` for ``F = {i, ..., cols-1}``, so no
  inverse is recomputed while columns are eliminated left to right.
* **Columns** are processed left to right in blocks of ``blocksize`` (128).  Inside a block every
  column ``i`` is quantised to ``q`` (its value, or 0 where the mask prunes it), the error
  ``e = (w_i - q) / U_ii`` is propagated to the block's remaining columns
  (``W[:, i:] -= e U[i, i:]``) and stored; after the block, the remaining columns to the right get
  the whole block's errors at once (``W[:, i2:] -= E U[i1:i2, i2:]``, the lazy batch update).
  The pruned weight's OBS loss ``(w_i - q)^2 / (2 U_ii^2)`` is summed into ``obs_error``.
* **Mask selection** (saliency ``w^2 / U_jj^2`` of the current, already updated, weights):

  - unstructured (``sparsity=s``): once per block, at its start, over the *whole block* (all rows
    and the block's columns together, as the official ``torch.sort(tmp.flatten())``): the
    ``int(rows * count * s)`` lowest saliencies (stable sort of the row-major flattened block:
    among equal saliencies the lower index is pruned first).  So every block has exactly that many
    zeros, while single rows may have more or fewer than ``s``.  The official code prunes
    ``tmp <= sorted[k]``, i.e. ``k + 1`` weights (and any ties), which prunes one weight per block
    even at ``s = 0``; we prune exactly ``k`` (a difference of one weight in ``rows x 128``).
  - N:M (``pattern="2:4"``): when column ``i`` with ``i % m == 0`` is reached, in every row the
    ``n`` lowest saliencies among columns ``i .. i+m-1`` (values at that moment, i.e. after the
    updates from the block's earlier columns) are pruned (stable sort per row).  Needs
    ``cols % m == 0`` and ``blocksize % m == 0`` so that groups never straddle blocks.

* **Precision.** The whole sweep runs in float64 (the official code uses float32); results differ
  from a float32 sweep only by rounding.  The pruned weight is cast back to the model's dtype.

Calibration (``calibration=``), as for Wanda (:mod:`.wanda`):

* ``"sequential"`` (default, the official ``llama_sequential`` / Wanda's ``prune_sparsegpt``): the
  Hessians of layer ``l`` come from the outputs of the already pruned layers ``< l``
  (``collect_statistics(..., transform_layer=..., keep_layer_statistics=False)``); within a layer
  all linears use the unpruned layer's activations;
* ``"original"``: every layer uses the covariances of the original model, from ``statistics``
  (the pipeline's cached calibration statistics; no forward pass) or one pass.

Which weights: every ``nn.Linear`` of every decoder layer (``LayerAdapter.named_linears()``),
weights only; embeddings and the LM head stay dense.  The result is a standard transformers model
with zeros in its weights, saved with ``save_compressed(..., loader="hf")`` (the registry's
default); 2:4 models run on sparse tensor cores through :func:`repro.llm.methods.wanda.semi_structured`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from repro.llm.adapters import LayerAdapter, get_adapter
from repro.llm.calibration import check_linear_inputs, linear_input_statistic, transform_each_layer
from repro.llm.params import parameter_counts

from .wanda import parse_pattern, pruning_summary

__all__ = ["CALIBRATION_MODES", "COVARIANCES", "hessian", "obs_inverse_factor", "sparsegpt", "sparsegpt_prune"]

log = logging.getLogger(__name__)

#: Accepted ``calibration`` values of :func:`sparsegpt`.
CALIBRATION_MODES = ("sequential", "original")
#: The calibration statistics SparseGPT reads (the input covariance of every linear).
COVARIANCES = frozenset({"attn_in_cov", "attn_mid_cov", "mlp_in_cov", "mlp_mid_cov"})


def hessian(covariance: torch.Tensor, tokens: int) -> torch.Tensor:
    """The official Hessian ``2 X^T X / n`` (float64) from the summed covariance ``X^T X`` of ``n`` tokens."""
    if tokens < 1:
        raise ValueError(f"tokens must be positive, got {tokens}")
    return covariance.to(torch.float64) * (2.0 / tokens)


def obs_inverse_factor(h: torch.Tensor, percdamp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """``(U, dead)``: the upper Cholesky factor of ``(H_dead-fixed + damp I)^-1`` and the dead-input mask.

    ``H`` is copied; dead inputs (``H_jj == 0``) get ``H_jj = 1``; ``damp = percdamp * mean(diag H)``
    (after the dead fix, as in the official code).  ``ValueError`` when the damped ``H`` is not
    positive definite (e.g. ``percdamp=0`` with fewer calibration tokens than inputs).
    """
    if h.dim() != 2 or h.shape[0] != h.shape[1]:
        raise ValueError(f"H must be square, got {tuple(h.shape)}")
    if percdamp < 0:
        raise ValueError(f"percdamp must be non-negative, got {percdamp}")
    h = h.to(torch.float64).clone()
    diag = torch.diagonal(h)
    dead = diag == 0
    diag[dead] = 1.0
    diag += percdamp * diag.mean()
    lower, info = torch.linalg.cholesky_ex(h)
    if int(info) != 0:
        raise ValueError(
            f"the damped Hessian ({h.shape[0]} inputs) is not positive definite (Cholesky failed at column "
            f"{int(info)}); use more calibration tokens or a larger percdamp (now {percdamp})"
        )
    upper, info = torch.linalg.cholesky_ex(torch.cholesky_inverse(lower), upper=True)
    if int(info) != 0:
        raise ValueError(f"the inverse Hessian is not positive definite (column {int(info)}); raise percdamp")
    return upper, dead


def _block_mask(w: torch.Tensor, d: torch.Tensor, sparsity: float) -> torch.Tensor:
    """Prune mask of one block: the ``int(numel * sparsity)`` lowest ``w^2 / d^2`` over the whole block."""
    prune = torch.zeros_like(w, dtype=torch.bool)
    k = int(w.numel() * sparsity)
    if k > 0:
        saliency = (w.square() / d.square().unsqueeze(0)).flatten()
        order = torch.sort(saliency, stable=True).indices[:k]
        prune.view(-1)[order] = True
    return prune


@torch.no_grad()
def sparsegpt_prune(
    weight: torch.Tensor,
    h: torch.Tensor,
    *,
    sparsity: float | None = None,
    nm: tuple[int, int] | None = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Prune one linear weight with SparseGPT; return ``(pruned weight, OBS loss per row)``.

    Args:
        weight: ``[rows, cols]`` (not modified); the result has its dtype and device.
        h: ``[cols, cols]`` Hessian of the layer-wise loss (any positive scale, e.g. :func:`hessian`).
        sparsity: unstructured: fraction pruned in every block of ``blocksize`` columns (all rows).
        nm: ``(n, m)``: prune ``n`` of every ``m`` consecutive columns of each row.
        blocksize: columns per lazy-update block.
        percdamp: relative damping of ``H``.

    Returns:
        The pruned weight and, per row, ``sum (w - q)^2 / (2 U_ii^2)`` over the pruned weights (float64):
        for the damped ``H`` this equals ``0.5 * d H d^T`` of the row's total change ``d``.
    """
    if (sparsity is None) == (nm is None):
        raise ValueError("give exactly one of sparsity and nm")
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D, got {tuple(weight.shape)}")
    rows, cols = weight.shape
    if tuple(h.shape) != (cols, cols):
        raise ValueError(f"H has shape {tuple(h.shape)}, the weight has {cols} input columns")
    if blocksize < 1:
        raise ValueError(f"blocksize must be positive, got {blocksize}")
    if nm is not None:
        n, m = nm
        if not 0 < n < m:
            raise ValueError(f"need 0 < n < m, got {nm}")
        if cols % m or blocksize % m:
            raise ValueError(f"{n}:{m} pruning needs in_features ({cols}) and blocksize ({blocksize}) divisible by {m}")
    elif not 0.0 <= float(sparsity) < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")

    device = weight.device
    w = weight.detach().to(torch.float64).clone()
    upper, dead = obs_inverse_factor(h.to(device), percdamp)
    w[:, dead] = 0.0
    losses = torch.zeros(rows, dtype=torch.float64, device=device)
    for i1 in range(0, cols, blocksize):
        i2 = min(i1 + blocksize, cols)
        count = i2 - i1
        w1 = w[:, i1:i2].clone()
        q1 = torch.zeros_like(w1)
        err1 = torch.zeros_like(w1)
        u1 = upper[i1:i2, i1:i2]
        d = torch.diagonal(u1)
        if nm is None:
            prune = _block_mask(w1, d, float(sparsity))
        else:
            prune = torch.zeros_like(w1, dtype=torch.bool)
        for i in range(count):
            if nm is not None and i % nm[1] == 0:
                saliency = w1[:, i : i + nm[1]].square() / d[i : i + nm[1]].square().unsqueeze(0)
                lowest = torch.sort(saliency, dim=1, stable=True).indices[:, : nm[0]]
                prune[:, i : i + nm[1]].scatter_(1, lowest, True)
            col = w1[:, i]
            q = torch.where(prune[:, i], torch.zeros_like(col), col)
            err = (col - q) / d[i]
            losses += err.square() / 2
            w1[:, i:] -= err.unsqueeze(1) * u1[i, i:].unsqueeze(0)
            q1[:, i] = q
            err1[:, i] = err
        w[:, i1:i2] = q1
        if i2 < cols:
            w[:, i2:] -= err1 @ upper[i1:i2, i2:]
    return w.to(dtype=weight.dtype), losses


def _settings(sparsity: float | None, pattern: str | None) -> tuple[float, tuple[int, int] | None, str]:
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


def _check_cached(statistics: Mapping[str, torch.Tensor], adapter) -> None:
    check_linear_inputs(statistics, adapter, "SparseGPT", COVARIANCES)


@torch.no_grad()
def sparsegpt(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    sparsity: float | None = None,
    pattern: str | None = None,
    blocksize: int = 128,
    percdamp: float = 0.01,
    batch_size: int = 4,
    progress: bool = True,
    calibration: str = "sequential",
    statistics: Mapping[str, torch.Tensor] | None = None,
) -> tuple[nn.Module, dict[str, Any]]:
    """Prune ``model`` in place with SparseGPT; return ``(model, info)``.

    Args:
        model: a ``*ForCausalLM`` supported by :func:`repro.llm.adapters.get_adapter`.
        calibration_ids: ``(n_samples, seq_len)`` token windows; may be ``None`` with
            ``calibration="original"`` and ``statistics``.
        sparsity: unstructured pruning: fraction of every block of ``blocksize`` columns to zero.
        pattern: N:M pruning, e.g. ``"2:4"`` (the default when neither setting is given).
        blocksize: columns per lazy-update block (official 128).
        percdamp: damping, a fraction of the mean Hessian diagonal (official 0.01).
        batch_size: calibration rows per forward call.
        progress: progress bar and log lines during calibration.
        calibration: ``"sequential"`` (default, official) or ``"original"`` (module docstring).
        statistics: cached :func:`~repro.llm.calibration.collect_statistics` of the original model
            (with the input covariances of every linear), for ``calibration="original"``.

    Returns:
        ``(model, info)``; ``info`` has Wanda's fields (``method``, ``pattern``, ``n``/``m``,
        ``sparsity``, ``achieved_sparsity``, ``pruned_linears``, ``pruned_weights``, ``zeros``,
        ``per_linear``, ``counts_dense``, ``counts_nonzero_before``, ``counts_nonzero``,
        ``removed_nonzero``, ``calibration``) plus ``blocksize``, ``percdamp``, ``hessian``
        (its convention), ``obs_error`` (sum over all pruned linears of the OBS losses) and
        ``obs_error_per_linear`` (linear name -> sum over layers).
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
        raise ValueError("sparsegpt needs calibration_ids, or cached statistics with calibration='original'")
    blocksize, percdamp = int(blocksize), float(percdamp)
    if blocksize < 1 or percdamp < 0:
        raise ValueError(f"need blocksize >= 1 and percdamp >= 0, got {blocksize} and {percdamp}")
    adapter = get_adapter(model)
    if nm is not None:
        if blocksize % nm[1]:
            raise ValueError(f"{label} pruning needs blocksize divisible by {nm[1]}, got {blocksize}")
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
    errors: dict[str, float] = {}
    totals = {"linears": 0, "weights": 0, "zeros": 0}

    def prune_layer(idx: int, la: LayerAdapter, layer_stats: Mapping[str, torch.Tensor]) -> None:
        tokens = int(layer_stats["tokens"])
        hessians: dict[str, torch.Tensor] = {}
        for name, lin in la.named_linears().items():
            key = linear_input_statistic(la, name)
            if key not in layer_stats:
                raise RuntimeError(f"no calibration statistic {key!r} for layer {idx}")
            if key not in hessians:
                hessians[key] = hessian(layer_stats[key].to(lin.weight.device), tokens)
            pruned, losses = sparsegpt_prune(
                lin.weight,
                hessians[key],
                sparsity=None if nm else target,
                nm=nm,
                blocksize=blocksize,
                percdamp=percdamp,
            )
            lin.weight.copy_(pruned)
            zeros = int((lin.weight == 0).sum())
            acc = per_linear.setdefault(name, [0, 0])
            acc[0] += zeros
            acc[1] += lin.weight.numel()
            errors[name] = errors.get(name, 0.0) + float(losses.sum())
            totals["linears"] += 1
            totals["weights"] += lin.weight.numel()
            totals["zeros"] += zeros

    t0 = time.perf_counter()
    if statistics is not None:
        _check_cached(statistics, adapter)
    source, tokens = transform_each_layer(
        model,
        prune_layer,
        statistics=statistics,
        calibration=calibration,
        calibration_ids=calibration_ids,
        which=COVARIANCES,
        batch_size=batch_size,
        progress=progress,
    )
    counts_nonzero = parameter_counts(model, adapter, nonzero=True)
    info: dict[str, Any] = {
        **pruning_summary(
            "sparsegpt", label, nm, target, totals, per_linear, counts_dense, counts_nonzero_before, counts_nonzero
        ),
        "blocksize": blocksize,
        "percdamp": percdamp,
        "hessian": "2 X^T X / n (float64), damped by percdamp * mean(diag)",
        "obs_error": float(sum(errors.values())),
        "obs_error_per_linear": dict(sorted(errors.items())),
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
        "sparsegpt %s (%s calibration): %d linears, %.4f of their weights zero, OBS error %.4g; "
        "non-zero parameters %d -> %d (dense %d)",
        label,
        calibration,
        totals["linears"],
        info["achieved_sparsity"],
        info["obs_error"],
        counts_nonzero_before["total"],
        counts_nonzero["total"],
        counts_dense["total"],
    )
    return model, info
