"""Baseline: Hugging Face assisted generation (speculative decoding with a small draft model).

The draft proposes tokens, the base model verifies them in one pass (Leviathan et al.; brief §8), so
the output follows the base model's sampling distribution.  The sampler settings are DynaMo's
(top-k, temperature, repetition penalty), passed to ``generate``; the draft model must share the
base model's tokenizer (for instance a compressed SmolLM2 from the LLM part of the pipeline).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import torch

from .generate import Generation
from .sampling import SamplingConfig

__all__ = ["assisted_generate"]


@torch.no_grad()
def assisted_generate(
    base,
    draft,
    prompt: Sequence[int],
    max_new_tokens: int,
    config: SamplingConfig,
    seed: int = 0,
    eos_token_id: int | None = None,
) -> Generation:
    """Sample ``max_new_tokens`` after ``prompt`` from ``base`` with ``draft`` as the assistant model."""
    if not prompt or max_new_tokens < 1:
        raise ValueError("assisted_generate needs a non-empty prompt and max_new_tokens >= 1")
    device = next(base.parameters()).device
    ids = torch.tensor([list(prompt)], device=device)
    torch.manual_seed(seed)  # generate samples from the global RNG
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    out = base.generate(
        ids,
        attention_mask=torch.ones_like(ids),
        assistant_model=draft,
        do_sample=True,
        top_k=config.top_k,
        temperature=config.temperature,
        repetition_penalty=config.repetition_penalty,
        max_new_tokens=max_new_tokens,
        min_new_tokens=0,
        eos_token_id=eos_token_id,
        pad_token_id=eos_token_id if eos_token_id is not None else 0,
    )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - t0
    tokens = out[0, ids.shape[1] :].tolist()
    return Generation(prompt=list(prompt), tokens=tokens, step_sizes=[], forward_passes=0, seconds=seconds)
