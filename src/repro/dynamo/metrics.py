"""DynaMo's evaluation measures: multi-token perplexity and offline quality of generated text.

* :func:`multi_token_perplexity` (brief §5.2, paper Eq. 4): ``PPL_j = exp(mean_t -log p_j(x_{t+j} | x_{1:t}))``
  per head over every valid position ``t + j <= T`` (the mean over valid positions, the brief's fix
  of the paper's ``1/T`` normalisation), and the joint ``PPL_{1:n} = exp(mean_t -(1/n) sum_j log
  p_j(x_{t+j} | x_{1:t}))`` with the joint given by the product of the heads (Eq. 2), over the
  positions where all ``n`` targets exist.  On those common positions ``PPL_{1:n}`` is exactly the
  geometric mean of the per-head perplexities (the identity the brief checks against Table 2);
  ``ppl_<j>_common`` are reported for that check.
* Offline quality of a continuation (the judge-free substitutes of brief §6): perplexity of the
  continuation under a reference model given the prompt (:func:`continuation_nll`), distinct-n
  (:func:`distinct_n`) and the repetition rate (:func:`repetition_rate`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch.nn import functional as F

from .heads import MultiTokenModel

__all__ = ["continuation_nll", "distinct_n", "multi_token_perplexity", "repetition_rate"]


@torch.no_grad()
def multi_token_perplexity(model: MultiTokenModel, windows: torch.Tensor, batch_size: int = 4) -> dict[str, float]:
    """Per-head and joint perplexity of ``model`` on token windows ``(N, T)`` (module docstring).

    Returns ``ppl_<j>`` (head ``j`` over its valid positions), ``ppl_<j>_common`` (over the positions
    where every head has a target), ``ppl_joint`` (``PPL_{1:n}``), ``positions`` and ``common_positions``.
    """
    n = model.n_heads
    if windows.dim() != 2 or windows.shape[1] <= n:
        raise ValueError(f"windows must be (N, T) with T > {n}, got {tuple(windows.shape)}")
    device = next(model.parameters()).device
    T = windows.shape[1]
    sums = torch.zeros(n, dtype=torch.float64)
    common = torch.zeros(n, dtype=torch.float64)
    counts = torch.zeros(n, dtype=torch.float64)
    n_common = 0
    for i in range(0, windows.shape[0], batch_size):
        ids = windows[i : i + batch_size].to(device)
        hidden = model.hidden_states(ids)
        for j, h in enumerate(hidden, start=1):
            logp = F.log_softmax(model.logits(h[:, : T - j], j).double(), dim=-1)
            nll = -logp.gather(-1, ids[:, j:, None])[..., 0]  # (B, T - j): position t predicts x_{t+j}
            sums[j - 1] += nll.sum().cpu()
            counts[j - 1] += nll.numel()
            common[j - 1] += nll[:, : T - n].sum().cpu()  # positions with all n targets
        n_common += ids.shape[0] * (T - n)
    out = {f"ppl_{j + 1}": math.exp(float(sums[j] / counts[j])) for j in range(n)}
    out.update({f"ppl_{j + 1}_common": math.exp(float(common[j] / n_common)) for j in range(n)})
    out["ppl_joint"] = math.exp(float(common.sum() / (n * n_common)))
    out["positions"] = int(counts[0])
    out["common_positions"] = n_common
    return out


@torch.no_grad()
def continuation_nll(model, prompt: Sequence[int], continuation: Sequence[int]) -> tuple[float, int]:
    """Summed negative log-likelihood (nats) of ``continuation`` after ``prompt`` under a causal LM.

    Returns ``(nll, tokens)``; the perplexity of a set of continuations is ``exp(sum nll / sum tokens)``.
    """
    if not continuation:
        return 0.0, 0
    if not prompt:
        raise ValueError("continuation_nll needs a non-empty prompt (the first token needs a context)")
    device = next(model.parameters()).device
    ids = torch.tensor([list(prompt) + list(continuation)], device=device)
    logits = model(input_ids=ids).logits[0, len(prompt) - 1 : -1].double()
    target = ids[0, len(prompt) :]
    nll = F.cross_entropy(logits, target, reduction="sum")
    return float(nll), len(continuation)


def distinct_n(sequences: Sequence[Sequence[int]], n: int) -> float:
    """Distinct n-grams over all n-grams across ``sequences`` (Li et al. 2016); NaN with no n-gram."""
    grams = [tuple(s[i : i + n]) for s in sequences for i in range(len(s) - n + 1)]
    return len(set(grams)) / len(grams) if grams else float("nan")


def repetition_rate(sequence: Sequence[int], window: int = 16) -> float:
    """Fraction of tokens that already occurred among the previous ``window`` tokens; NaN for < 2 tokens."""
    if len(sequence) < 2:
        return float("nan")
    repeats = sum(tok in sequence[max(0, i - window) : i] for i, tok in enumerate(sequence) if i > 0)
    return repeats / (len(sequence) - 1)
