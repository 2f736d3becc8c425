"""DISP-LLM (NeurIPS 2024): learn per-layer selection sets with a hypernetwork, then materialise them.

Own implementation from the shared brief (``llm_compression.md`` §2.1, §3).  The pieces live in
:mod:`.disp_hypernet` (hypernetwork, Gumbel-sigmoid gates, straight-through masks, regulariser,
ratio conversion) and :mod:`.disp_modules` (soft masks on the frozen model, gather/scatter
materialisation, weights and loader ``"disp_llm"``); this module trains and extracts.

Training (brief §3.2): the LLM is frozen; each step draws soft gates ``s = sigmoid((l + g + offset) / T)``
from the hypernetwork, masks the five places of every layer (:func:`~.disp_modules.apply_masks`),
takes the next-token cross-entropy on one batch of training windows and adds the regulariser
``lam * |log(P(hard) / P_total / p)|`` on a *separate* hard draw; only the hypernetwork is updated
(AdamW).  Defaults and the setting each follows (paper-vs-code choices are options):

* ``estimator="reinmax"``: the paper's gradient estimator for the hard masks of the regulariser
  (ReinMax, Liu et al. 2023, Alg. 2, applied to Bernoulli gates with keep-logit ``l + offset``).
  The official code uses plain straight-through rounding of a Gumbel-sigmoid draw:
  ``"straight_through"``.  ReinMax's own temperature ``reinmax_temperature=1`` (its authors
  recommend ``tau >= 1``; at the gates' ``T = 0.4`` the second-order term of a kept, saturated gate
  has the wrong sign, see :func:`reinmax_gates`).  Which soft distribution the paper pairs with
  ReinMax is not reported; this choice is ours;
* ``lam=6.0``: paper (official scripts: 16.0);
* ``steps``: paper and code 10,000 on 2048-token windows (about 41 M tokens); the default tier sets
  a few hundred steps of 256 tokens to fit its CPU budget;
* AdamW, constant ``lr=1e-3``, ``weight_decay=0.05``: paper and code;
* training data: the calibration text (the paper trains on WikiText-2, its calibration set; the
  code streams WikiText-103);  the stage draws ``steps x train_batch_size`` fresh random windows;
* ``mid_mask="squared"``: the official code multiplies the intermediate mask into both
  ``act(gate(x))`` and ``up(x)``, so soft masks act as ``s4^2`` during training; ``"single"``
  applies ``s4`` once.  Hard 0/1 masks are unaffected;
* ``temperature=0.4``, ``offset=3.0``, ``hidden=64``, ``z_dim=32``: code (§3.2);
* extraction ``"deterministic"``: keep gate ``i`` iff ``l_i + offset > 0`` (the brief's safe choice);
  ``"seeded"`` reproduces the official ``hn.eval(); hn()`` (one Gumbel draw, rounded) under
  ``seed``; ``"matched"`` (ours) moves the one global threshold so the extracted masks keep the
  fraction ``p``: after a short run the logits are not yet separated and the noise-free masks keep
  more than the sampled ones the regulariser saw.  An empty set keeps its largest logit (official);
* ``round_to=1``: set sizes are not rounded (official); a multiple ``m > 1`` moves each size to the
  nearest multiple of ``m`` by adding the highest-logit dropped or removing the lowest-logit kept
  entries (the brief notes the official helpers exist but are unused).

Parameter ratio (brief §2.1): ``target_removed`` is a fraction of *total* parameters; the
regulariser's ``p`` is the kept fraction of the prunable block weights (attention + MLP linears),
``p = 1 - r N_total / N_prunable`` (:func:`~.disp_hypernet.block_keep_for_total_removed`); both are
reported.  ``convention="blocks"`` reads the target as a fraction of the prunable weights.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn
from tqdm.auto import tqdm

from repro.llm.adapters import get_adapter
from repro.llm.params import compression_ratio, parameter_counts

from .disp_hypernet import (
    STRUCTURE_KINDS,
    HyperNetwork,
    StructureSpec,
    block_keep_for_total_removed,
    gumbel_sigmoid,
    kept_parameters,
    ratio_regulariser,
)
from .disp_modules import MASK_KEYS, apply_masks, load_disp_llm, masks_to_index_sets, materialise, write_weights

__all__ = [
    "CONVENTIONS",
    "ESTIMATORS",
    "EXTRACTION_MODES",
    "MID_MASK_MODES",
    "disp_llm",
    "extract_masks",
    "layer_masks",
    "load_disp_llm",
    "matched_threshold",
    "reinmax_gates",
    "round_masks",
    "train_hypernetwork",
    "write_weights",
]

log = logging.getLogger(__name__)

ESTIMATORS = ("reinmax", "straight_through")
MID_MASK_MODES = ("squared", "single")
EXTRACTION_MODES = ("deterministic", "matched", "seeded")
CONVENTIONS = ("total", "blocks")
assert tuple(MASK_KEYS) == STRUCTURE_KINDS


def _check(name: str, value: str, allowed: Sequence[str]) -> None:
    if value not in allowed:
        raise ValueError(f"DISP-LLM {name} must be one of {tuple(allowed)}, got {value!r}")


def layer_masks(flat: Sequence[torch.Tensor], spec: StructureSpec, mid_power: int = 1) -> list[dict[str, torch.Tensor]]:
    """Group the hypernetwork's ``5 L`` vectors into one ``{kind: vector}`` dict per layer.

    ``mid_power=2`` raises the intermediate mask to the square (the official double application).
    """
    if len(flat) != spec.num_structures:
        raise ValueError(f"expected {spec.num_structures} mask vectors, got {len(flat)}")
    out = []
    for i in range(spec.num_layers):
        m = dict(zip(STRUCTURE_KINDS, flat[5 * i : 5 * i + 5]))
        if mid_power != 1:
            m["mlp_mid"] = m["mlp_mid"] ** mid_power
        out.append(m)
    return out


def reinmax_gates(
    logits: torch.Tensor, offset: float = 3.0, temperature: float = 1.0, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Hard 0/1 Bernoulli gates with ReinMax gradients (Liu et al. 2023, Alg. 2, two categories).

    With ``theta = logits + offset`` the keep probability is ``pi0 = sigmoid(theta)``; ``D ~
    Bernoulli(pi0)``; ``pi1 = (D + sigmoid(theta / tau)) / 2`` re-parametrised as
    ``sigmoid(logit(pi1) - sg(theta) + theta)``; ``pi2 = 2 pi1 - pi0 / 2``; the output is ``D`` in the
    forward pass with the gradient of ``pi2``.  For a kept gate the gradient is
    ``2 pi1 (1 - pi1) - pi0 (1 - pi0) / 2``; with ``tau = 1`` it equals ``(1 - pi0) / 2 > 0``, while a
    small ``tau`` (``sigmoid(theta / tau) -> 1``) drives the first term to 0 and flips its sign.
    """
    theta = logits + offset
    pi0 = torch.sigmoid(theta)
    u = torch.rand(theta.shape, generator=generator, dtype=theta.dtype, device=theta.device)
    d = (u < pi0.detach()).to(theta.dtype)
    eps = 1e-6
    p1 = ((d + torch.sigmoid(theta.detach() / temperature)) / 2).clamp(eps, 1 - eps)
    pi1 = torch.sigmoid(torch.logit(p1) - theta.detach() + theta)
    pi2 = 2 * pi1 - pi0 / 2
    return pi2 - pi2.detach() + d


def _hard_sample(hn: HyperNetwork, estimator: str, temperature: float, offset: float, reinmax_temperature: float):
    if estimator == "straight_through":  # the official hard_output: a new Gumbel draw, rounded
        return hn.sample(training=True, hard=True, temperature=temperature, offset=offset)
    return [reinmax_gates(logits, offset, reinmax_temperature) for logits in hn()]


def _windows(train_ids: torch.Tensor, step: int, batch_size: int) -> torch.Tensor:
    n = train_ids.shape[0]
    rows = [(step * batch_size + j) % n for j in range(batch_size)]
    return train_ids[rows]


def train_hypernetwork(
    model: nn.Module,
    train_ids: torch.Tensor,
    p: float,
    *,
    steps: int,
    batch_size: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    lam: float = 6.0,
    estimator: str = "reinmax",
    reinmax_temperature: float = 1.0,
    temperature: float = 0.4,
    offset: float = 3.0,
    hidden: int = 64,
    z_dim: int = 32,
    mid_mask: str = "squared",
    seed: int = 0,
    progress: bool = True,
) -> tuple[HyperNetwork, list[dict[str, float]]]:
    """Train DISP-LLM's hypernetwork on the frozen ``model``; return ``(hypernetwork, history)``.

    Args:
        model: a full-width ``*ForCausalLM`` supported by the adapters; its parameters are frozen
            (``requires_grad`` restored afterwards) and it is left without mask hooks.
        train_ids: ``(n, seq_len)`` token windows; step ``t`` uses rows ``t * batch_size ...`` (cycled).
        p: kept fraction of the prunable block weights the regulariser aims at.
        steps: optimiser steps.
        batch_size: windows per step.
        lr, weight_decay: AdamW (constant learning rate).
        lam: regulariser weight.
        estimator: ``"reinmax"`` or ``"straight_through"`` (gradient of the regulariser's hard masks).
        reinmax_temperature: ReinMax's ``tau``.
        temperature, offset: Gumbel-sigmoid ``T`` and offset.
        hidden, z_dim: hypernetwork sizes.
        mid_mask: ``"squared"`` (official) or ``"single"``.
        seed: seeds the hypernetwork's initialisation and every noise draw (the global RNG is restored).
        progress: tqdm bar.

    Returns:
        The hypernetwork (eval mode) and one record per step: ``step``, ``loss``, ``ce``,
        ``regulariser``, ``hard_ratio`` (kept fraction of the regulariser's hard draw), ``soft_ratio``
        (expected kept fraction of the soft gates), ``deterministic_ratio`` (of ``l + offset > 0``),
        ``seconds`` (elapsed).
    """
    _check("estimator", estimator, ESTIMATORS)
    _check("mid_mask", mid_mask, MID_MASK_MODES)
    if steps < 1 or batch_size < 1:
        raise ValueError(f"DISP-LLM steps and batch_size must be positive, got {steps} and {batch_size}")
    if not 0.0 < p <= 1.0:
        raise ValueError(f"DISP-LLM block keep fraction p must be in (0, 1], got {p}")
    adapter = get_adapter(model)
    spec = StructureSpec.from_adapter(adapter)
    device = next(model.parameters()).device
    hn = HyperNetwork(spec, hidden=hidden, z_dim=z_dim, seed=seed).to(device)
    optimiser = torch.optim.AdamW(hn.parameters(), lr=lr, weight_decay=weight_decay)
    frozen = {name: prm.requires_grad for name, prm in model.named_parameters()}
    for prm in model.parameters():
        prm.requires_grad_(False)
    was_training = model.training
    model.eval()  # the LLM is frozen; dropout off
    total = float(spec.total_block_parameters)
    mid_power = 2 if mid_mask == "squared" else 1
    history: list[dict[str, float]] = []
    t0 = time.perf_counter()
    bar = tqdm(range(steps), desc=f"DISP-LLM hypernetwork (p={p:.3f})", disable=not progress, leave=False)
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            hn.train()
            for step in bar:
                x = _windows(train_ids, step, batch_size).to(device)
                soft = hn.sample(training=True, temperature=temperature, offset=offset)
                handles = apply_masks(model, layer_masks(soft, spec, mid_power))
                try:
                    ce = model(input_ids=x, labels=x).loss
                finally:
                    handles.remove()
                hard = _hard_sample(hn, estimator, temperature, offset, reinmax_temperature)
                reg = ratio_regulariser(hard, spec, p, lam)
                loss = ce + reg
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    logits = hn()
                    det = [(lg + offset > 0).to(lg.dtype) for lg in logits]
                    record = {
                        "step": step + 1,
                        "loss": float(loss),
                        "ce": float(ce),
                        "regulariser": float(reg),
                        "hard_ratio": float(kept_parameters([h.detach() for h in hard], spec)) / total,
                        "soft_ratio": float(kept_parameters([s.detach() for s in soft], spec)) / total,
                        "deterministic_ratio": float(kept_parameters(det, spec)) / total,
                        "seconds": time.perf_counter() - t0,
                    }
                history.append(record)
                bar.set_postfix(ce=f"{record['ce']:.3f}", ratio=f"{record['hard_ratio']:.3f}")
    finally:
        for name, prm in model.named_parameters():
            prm.requires_grad_(frozen[name])
        model.train(was_training)
    hn.eval()
    return hn, history


def _ensure_nonempty(mask: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    if mask.sum() == 0:  # official: an all-zero set keeps its argmax
        mask = mask.clone()
        mask[int(torch.argmax(logits))] = 1.0
    return mask


def round_masks(masks: Sequence[torch.Tensor], logits: Sequence[torch.Tensor], multiple: int) -> list[torch.Tensor]:
    """Move each mask's size to the nearest multiple of ``multiple`` (at least ``multiple``, at most full).

    Entries are added in decreasing or removed in increasing logit order, so rounding keeps the
    hypernetwork's ranking.  ``multiple=1`` returns the masks unchanged.
    """
    if multiple < 1:
        raise ValueError(f"round_to must be a positive integer, got {multiple}")
    if multiple == 1:
        return list(masks)
    out = []
    for mask, lg in zip(masks, logits):
        n, full = int(mask.sum()), mask.numel()
        want = min(full, max(multiple, multiple * round(n / multiple)))
        if want == n or n == full:  # a full-width set is always a valid width
            out.append(mask)
            continue
        # rank kept entries first by logit, then dropped ones by logit, and keep the first `want`
        score = lg.detach().double() + mask.double() * 1e12
        keep = torch.topk(score, want).indices
        new = torch.zeros_like(mask)
        new[keep] = 1.0
        out.append(new)
    return out


@torch.no_grad()
def extract_masks(
    hn: HyperNetwork,
    *,
    mode: str = "deterministic",
    temperature: float = 0.4,
    offset: float = 3.0,
    seed: int = 0,
    round_to: int = 1,
    p: float | None = None,
) -> list[torch.Tensor]:
    """0/1 masks of every structure (flat, hypernetwork order) from a trained hypernetwork.

    ``"deterministic"``: ``logits + offset > 0``; ``"matched"``: ``logits > t`` with the one global
    threshold ``t`` whose masks keep the fraction of prunable weights closest to ``p``
    (:func:`matched_threshold`; noise-free, and on target even when a short training run has not yet
    separated the logits); ``"seeded"``: one Gumbel draw under ``seed`` rounded (the official
    ``hn.eval(); hn()``).  Empty sets keep their argmax; ``round_to`` as :func:`round_masks`.
    """
    _check("extraction", mode, EXTRACTION_MODES)
    logits = [lg.float() for lg in hn()]
    if mode == "deterministic":
        masks = [(lg + offset > 0).float() for lg in logits]
    elif mode == "matched":
        if p is None:
            raise ValueError("DISP-LLM extraction 'matched' needs the block keep fraction p")
        threshold = matched_threshold(logits, hn.spec, p)
        masks = [(lg > threshold).float() for lg in logits]
    else:
        gen = torch.Generator(device=logits[0].device).manual_seed(seed)
        masks = [torch.round(gumbel_sigmoid(lg, temperature, offset, True, gen)) for lg in logits]
    masks = [_ensure_nonempty(m, lg) for m, lg in zip(masks, logits)]
    return round_masks(masks, logits, round_to)


def matched_threshold(logits: Sequence[torch.Tensor], spec: StructureSpec, p: float, iterations: int = 64) -> float:
    """The logit threshold ``t`` for which the masks ``logits > t`` keep the block fraction closest to ``p``.

    The kept count is monotone in ``t``; bisection between the smallest and largest logit.
    """
    total = spec.total_block_parameters

    def kept(t: float) -> float:
        return float(kept_parameters([(lg > t).double() for lg in logits], spec)) / total

    lo = min(float(lg.min()) for lg in logits) - 1.0  # everything kept
    hi = max(float(lg.max()) for lg in logits)  # nothing kept
    for _ in range(iterations):
        mid = (lo + hi) / 2
        if kept(mid) > p:
            lo = mid
        else:
            hi = mid
    return lo if abs(kept(lo) - p) < abs(kept(hi) - p) else hi


def _block_keep(model: nn.Module, target_removed: float, convention: str) -> tuple[float, dict[str, int]]:
    adapter = get_adapter(model)
    spec = StructureSpec.from_adapter(adapter)
    counts = parameter_counts(model, adapter)
    prunable = spec.total_block_parameters
    if convention == "total":
        p = block_keep_for_total_removed({"total": counts["total"], "blocks": prunable}, target_removed)
    else:
        p = 1.0 - target_removed
    if not 0.0 < p <= 1.0:
        raise ValueError(
            f"DISP-LLM cannot remove {target_removed:.3f} of the {convention} parameters: the prunable "
            f"block weights ({prunable:,} of {counts['total']:,}) would need a keep fraction p={p:.3f}"
        )
    return p, {**counts, "prunable": prunable}


def disp_llm(
    model: nn.Module,
    calibration_ids: torch.Tensor | None,
    *,
    target_removed: float,
    convention: str = "total",
    train_ids: torch.Tensor | None = None,
    steps: int = 10_000,
    train_batch_size: int = 1,
    lr: float = 1e-3,
    weight_decay: float = 0.05,
    lam: float = 6.0,
    estimator: str = "reinmax",
    reinmax_temperature: float = 1.0,
    temperature: float = 0.4,
    offset: float = 3.0,
    hidden: int = 64,
    z_dim: int = 32,
    mid_mask: str = "squared",
    extraction: str = "deterministic",
    round_to: int = 1,
    seed: int = 0,
    batch_size: int | None = None,
    progress: bool = True,
    **ignored: Any,
) -> tuple[nn.Module, dict[str, Any]]:
    """Prune ``model`` in place with DISP-LLM; return ``(model, info)`` (registry signature).

    Trains the hypernetwork (:func:`train_hypernetwork`) on ``train_ids`` (default: the calibration
    windows), extracts the masks (:func:`extract_masks`) and materialises the gather/scatter model
    (:func:`~.disp_modules.materialise`).  ``batch_size`` (the calibration batch size the stage
    passes to every method) is not used; training uses ``train_batch_size``.  Keys the stage adds for
    its own use (``train_text``, ``train_seq_len``) are accepted and ignored.

    ``info``: ``target_removed``, ``convention``, ``p_block`` (the regulariser's target),
    ``achieved_removed`` / ``removed`` (measured, both conventions), ``block_keep_achieved``,
    ``counts_dense`` / ``counts_after``, ``layer_widths``, ``history`` (per step, see
    :func:`train_hypernetwork`), ``train_seconds``, ``train_tokens`` and the settings.
    """
    unknown = set(ignored) - {"train_text", "train_seq_len", "statistics"}
    if unknown:
        raise TypeError(f"disp_llm got unexpected settings {sorted(unknown)}")
    _check("convention", convention, CONVENTIONS)
    _check("extraction", extraction, EXTRACTION_MODES)
    if train_ids is None:
        if calibration_ids is None:
            raise ValueError("DISP-LLM needs training windows (train_ids or calibration_ids)")
        train_ids = calibration_ids
    p, dense_counts = _block_keep(model, float(target_removed), convention)
    spec = StructureSpec.from_adapter(get_adapter(model))
    t0 = time.perf_counter()
    hn, history = train_hypernetwork(
        model,
        train_ids,
        p,
        steps=int(steps),
        batch_size=int(train_batch_size),
        lr=lr,
        weight_decay=weight_decay,
        lam=lam,
        estimator=estimator,
        reinmax_temperature=reinmax_temperature,
        temperature=temperature,
        offset=offset,
        hidden=hidden,
        z_dim=z_dim,
        mid_mask=mid_mask,
        seed=seed,
        progress=progress,
    )
    train_seconds = time.perf_counter() - t0
    flat = extract_masks(hn, mode=extraction, temperature=temperature, offset=offset, seed=seed, round_to=round_to, p=p)
    block_keep = float(kept_parameters(flat, spec)) / spec.total_block_parameters
    sets = masks_to_index_sets(layer_masks(flat, spec))
    widths = materialise(model, sets, round_to=round_to)
    after = parameter_counts(model, get_adapter(model))
    removed = compression_ratio(dense_counts, after)
    last = history[-1]
    log.info(
        "DISP-LLM: p=%.4f, final hard ratio %.4f, extracted %.4f, removed %.4f of %s parameters in %.0f s",
        p,
        last["hard_ratio"],
        block_keep,
        removed[f"removed_{convention}"],
        convention,
        train_seconds,
    )
    info = {
        "method": "disp_llm",
        "target_removed": float(target_removed),
        "convention": convention,
        "p_block": p,
        "block_keep_achieved": block_keep,
        "achieved_removed": removed[f"removed_{convention}"],
        "removed": removed,
        "counts_dense": {k: int(v) for k, v in dense_counts.items()},
        "counts_after": after,
        "layer_widths": widths,
        "index_sets": sets,
        "history": history,
        "train_seconds": train_seconds,
        "train_tokens": int(int(steps) * int(train_batch_size) * train_ids.shape[1]),
        "train_windows": [int(train_ids.shape[0]), int(train_ids.shape[1])],
        "settings": {
            "steps": int(steps),
            "train_batch_size": int(train_batch_size),
            "lr": lr,
            "weight_decay": weight_decay,
            "lam": lam,
            "estimator": estimator,
            "reinmax_temperature": reinmax_temperature,
            "temperature": temperature,
            "offset": offset,
            "hidden": hidden,
            "z_dim": z_dim,
            "mid_mask": mid_mask,
            "extraction": extraction,
            "round_to": round_to,
            "seed": seed,
        },
    }
    if not math.isfinite(last["loss"]):
        raise FloatingPointError(f"DISP-LLM training diverged: final loss {last['loss']}")
    return model, info
