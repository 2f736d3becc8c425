"""Training DynaMo's token heads: the modified causal-LM objective with the paper's three learning rates.

Own implementation from the brief (``shared/papers/dynamo.md`` §3).  The loss is the sum over heads of
each head's next-``j``-token cross-entropy (:func:`repro.dynamo.heads.head_losses`; the paper never
states the combination, the brief suggests an equal-weight sum: ``loss_weights="sum"``, or
``"mean"``).  Defaults and where they come from:

* AdamW with betas (0.9, 0.95), eps 1e-8 (paper); weight decay 0 (not stated in the paper);
* cosine schedule to 0 with 1 % linear warm-up (paper);
* three learning rates (paper Table 5 ratios): ``lr_base`` (LR_B, transferred weights) for the base
  model, ``LR_M = 100 LR_B`` for the new heads (``head_lr_ratio``), and ``LR_MB = LR_B / 10`` for
  gradients flowing from heads 2.. into the stem, implemented as a backward scale of
  ``stem_grad_ratio = 0.1`` on the stem output before the new heads (brief §3.3 option A);
  ``unembed_grad_ratio`` scales the gradient heads 2.. send to the shared LM head (the brief's open
  question; default 0.1, like the stem);
* ``train_base=True``: the whole model trains (paper).  ``train_base=False`` freezes the base (the
  paper's "-H" ablation, head-only training): the stem output is computed once per window and
  cached, and only the new heads run, which is what fits the default tier's CPU budget.  Head 1 is
  then exactly the base model.

The paper trains one epoch on 5 % of the Pile (75,782 steps of 64 x 2048 tokens); the tiers set
``steps``, ``batch_size`` and the windows.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from typing import Any

import torch
from tqdm.auto import tqdm

from .heads import MultiTokenModel, head_losses

__all__ = ["LOSS_WEIGHTS", "cosine_with_warmup", "train_heads"]

LOSS_WEIGHTS = ("sum", "mean")


def cosine_with_warmup(step: int, total: int, warmup: int) -> float:
    """Learning-rate multiplier: linear warm-up over ``warmup`` steps, then cosine decay to 0 at ``total``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _check(model: MultiTokenModel, train_ids, steps: int, batch_size: int, loss_weights: str) -> None:
    if model.n_heads < 2:
        raise ValueError("nothing to train: the model has a single head")
    if steps < 1 or batch_size < 1:
        raise ValueError(f"steps and batch_size must be positive, got {steps} and {batch_size}")
    if loss_weights not in LOSS_WEIGHTS:
        raise ValueError(f"loss_weights must be one of {LOSS_WEIGHTS}, got {loss_weights!r}")
    if not isinstance(train_ids, torch.Tensor):
        return  # a stream of batches: each batch is checked as it arrives
    _check_windows(model, train_ids)


def _check_windows(model: MultiTokenModel, ids: torch.Tensor) -> None:
    if ids.dim() != 2 or ids.shape[1] <= model.n_heads:
        raise ValueError(f"training windows must be (n, T) with T > {model.n_heads}, got {tuple(ids.shape)}")


def train_heads(
    model: MultiTokenModel,
    train_ids: torch.Tensor | Iterable[torch.Tensor],
    *,
    steps: int,
    batch_size: int = 8,
    lr_base: float = 1e-5,
    head_lr_ratio: float = 100.0,
    stem_grad_ratio: float = 0.1,
    unembed_grad_ratio: float = 0.1,
    train_base: bool = True,
    warmup_fraction: float = 0.01,
    betas: tuple[float, float] = (0.9, 0.95),
    eps: float = 1e-8,
    weight_decay: float = 0.0,
    loss_weights: str = "sum",
    seed: int = 0,
    progress: bool = True,
) -> list[dict[str, Any]]:
    """Train ``model``'s heads in place on ``train_ids`` windows; return one record per step.

    Step ``t`` uses windows ``t * batch_size ...`` (cycled; shuffle the windows beforehand).  Or
    ``train_ids`` is an iterable of ``(batch_size, T)`` batches, one per step (a corpus streamed from
    disk, :func:`repro.dynamo.corpus.stream_windows`); with a frozen base the stem then runs per batch
    instead of being cached.  Records:
    ``step``, ``lr_base``, ``lr_heads``, ``loss``, ``ce_1`` .. ``ce_n`` (per-head cross-entropy, nats)
    and ``seconds`` (elapsed, including the stem cache when the base is frozen).
    """
    _check(model, train_ids, steps, batch_size, loss_weights)
    device = next(model.parameters()).device
    new = {id(p) for p in model.new_parameters()}
    base_params = [p for p in model.base.parameters() if id(p) not in new]
    flags = [p.requires_grad for p in base_params]
    for p in base_params:
        p.requires_grad_(train_base)
    groups = [{"params": model.new_parameters(), "lr": lr_base * head_lr_ratio, "name": "heads"}]
    if train_base:
        unique = list({id(p): p for p in base_params}.values())
        groups.append({"params": unique, "lr": lr_base, "name": "base"})
    optimiser = torch.optim.AdamW(groups, betas=betas, eps=eps, weight_decay=weight_decay)
    initial = [g["lr"] for g in optimiser.param_groups]
    warmup = int(round(warmup_fraction * steps))
    t0 = time.perf_counter()
    cached = None
    batches = None if isinstance(train_ids, torch.Tensor) else iter(train_ids)
    if not train_base and batches is None:  # frozen base: every window's stem output once, then only the heads
        model.eval()
        starts = tqdm(
            range(0, len(train_ids), batch_size), desc="stem cache", disable=not progress, leave=False, mininterval=5
        )
        cached = torch.cat([model.stem_states(train_ids[i : i + batch_size].to(device)) for i in starts])
    history: list[dict[str, Any]] = []
    model.train()
    try:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(seed)
            bar = tqdm(range(steps), desc=f"DynaMo heads ({model.n_heads})", disable=not progress, leave=False)
            for step in bar:
                if batches is None:
                    rows = [(step * batch_size + j) % len(train_ids) for j in range(batch_size)]
                    ids = train_ids[rows].to(device)
                else:
                    ids = next(batches, None)
                    if ids is None:
                        raise ValueError(f"the stream of training batches ended after {step} of {steps} steps")
                    _check_windows(model, ids)
                    ids = ids.to(device)
                if train_base:
                    hidden = model.hidden_states(ids, stem_grad_scale=stem_grad_ratio)
                    logits = [model.logits(h, j + 1, unembed_grad_ratio) for j, h in enumerate(hidden)]
                else:
                    with torch.no_grad():
                        stem = cached[rows] if cached is not None else model.stem_states(ids)
                        first = model.logits(model.heads_from_stem(stem, heads=[1])[0], 1)
                    hidden = model.heads_from_stem(stem)
                    logits = [first] + [model.logits(h, j + 2) for j, h in enumerate(hidden)]
                losses = head_losses(logits, ids)
                # with a frozen base head 1's loss has no gradient: it is reported, and in "mean" still counted
                loss = sum(losses) if loss_weights == "sum" else sum(losses) / len(losses)
                scale = cosine_with_warmup(step, steps, warmup)
                for group, lr in zip(optimiser.param_groups, initial):
                    group["lr"] = lr * scale
                optimiser.zero_grad(set_to_none=True)
                loss.backward()
                optimiser.step()
                record = {
                    "step": step + 1,
                    "lr_heads": initial[0] * scale,
                    "lr_base": lr_base * scale if train_base else 0.0,
                    "loss": float(loss.detach()),
                    **{f"ce_{j + 1}": float(v.detach()) for j, v in enumerate(losses)},
                    "seconds": time.perf_counter() - t0,
                }
                history.append(record)
                bar.set_postfix(ce_2=f"{record['ce_2']:.2f}")
    finally:
        for p, flag in zip(base_params, flags):
            p.requires_grad_(flag)
        model.eval()
    return history
