"""Generation loops: DynaMo's dynamic multi-token decoding and plain autoregressive decoding.

Both loops share one sampler (:func:`repro.dynamo.sampling.choose_tokens`), so the autoregressive
baseline is the same model's head 1 under the same top-k / temperature / repetition penalty with
``max_tokens=1`` (brief §5.5: same sampler, same prompts, batch size 1).  DynaMo has no verification
pass (brief §4.4): the 1-3 tokens a step emits are committed, and the next forward pass runs all of
them through the stem, head 1 and the new heads, filling every cache.  Tokens after an EOS inside a
block are dropped (brief §10 item 11, our choice) and generation stops there.

Speed bookkeeping (brief §5.5, "report both"): ``steps`` is the number of sampling steps, each
followed by one forward pass except the last; ``tokens_per_step`` = generated tokens / steps (the
algorithmic speed-up), and the wall-clock time covers the prompt's prefill and every step.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import torch

from .heads import MultiTokenModel, cache_keyword
from .sampling import CooccurrenceLookup, SamplingConfig, choose_tokens

__all__ = ["Generation", "autoregressive_generate", "dynamo_generate"]


@dataclass
class Generation:
    """One generated continuation and its cost."""

    prompt: list[int]
    tokens: list[int] = field(default_factory=list)
    step_sizes: list[int] = field(default_factory=list)  # tokens emitted per sampling step
    forward_passes: int = 0  # including the prompt's prefill
    seconds: float = 0.0  # prefill + decoding, wall clock
    prefill_seconds: float = 0.0

    @property
    def steps(self) -> int:
        return len(self.step_sizes)

    @property
    def tokens_per_step(self) -> float:
        return len(self.tokens) / self.steps if self.steps else float("nan")

    @property
    def tokens_per_second(self) -> float:
        return len(self.tokens) / self.seconds if self.seconds > 0 else float("nan")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _emit(gen: Generation, tokens: list[int], limit: int, eos: int | None) -> bool:
    """Append a step's tokens (cut at the limit and after EOS); return whether generation is over."""
    tokens = tokens[: limit - len(gen.tokens)]
    if eos is not None and eos in tokens:
        tokens = tokens[: tokens.index(eos) + 1]
    gen.tokens.extend(tokens)
    gen.step_sizes.append(len(tokens))
    return len(gen.tokens) >= limit or (eos is not None and eos in tokens)


@torch.no_grad()
def dynamo_generate(
    model: MultiTokenModel,
    prompt: Sequence[int],
    max_new_tokens: int,
    table: CooccurrenceLookup | None,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
) -> Generation:
    """Dynamic multi-token decoding of ``prompt`` (one sequence) with ``model``'s heads."""
    if not prompt or max_new_tokens < 1:
        raise ValueError("dynamo_generate needs a non-empty prompt and max_new_tokens >= 1")
    device = next(model.parameters()).device
    gen = Generation(prompt=list(prompt))
    cache = model.new_cache()
    _sync(device)
    t0 = time.perf_counter()
    logits = model(torch.tensor([gen.prompt], device=device), cache, last_only=True)
    gen.forward_passes = 1
    _sync(device)
    gen.prefill_seconds = time.perf_counter() - t0
    context = torch.tensor(gen.prompt, device=device)
    while True:
        head_logits = torch.stack([lg[0, -1] for lg in logits])
        step = choose_tokens(head_logits, context, table, config, generator)
        if _emit(gen, list(step.tokens), max_new_tokens, eos_token_id):
            break
        new = torch.tensor([gen.tokens[-gen.step_sizes[-1] :]], device=device)
        context = torch.cat([context, new[0]])
        logits = model(new, cache, last_only=True)
        gen.forward_passes += 1
    _sync(device)
    gen.seconds = time.perf_counter() - t0
    return gen


@torch.no_grad()
def autoregressive_generate(
    base,
    prompt: Sequence[int],
    max_new_tokens: int,
    config: SamplingConfig,
    generator: torch.Generator | None = None,
    eos_token_id: int | None = None,
) -> Generation:
    """Plain one-token-per-step decoding of ``base`` (a ``*ForCausalLM``) with the same sampler."""
    from transformers import DynamicCache

    if not prompt or max_new_tokens < 1:
        raise ValueError("autoregressive_generate needs a non-empty prompt and max_new_tokens >= 1")
    config = replace(config, max_tokens=1)
    device = next(base.parameters()).device
    gen = Generation(prompt=list(prompt))
    cache = DynamicCache(config=base.config)
    _sync(device)
    t0 = time.perf_counter()
    cache_kw = {cache_keyword(type(base).forward): cache}
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        cache_kw["logits_to_keep"] = 1  # the last position only, as DynaMo's last_only
    logits = base(input_ids=torch.tensor([gen.prompt], device=device), use_cache=True, **cache_kw).logits
    gen.forward_passes = 1
    _sync(device)
    gen.prefill_seconds = time.perf_counter() - t0
    context = torch.tensor(gen.prompt, device=device)
    while True:
        step = choose_tokens(logits[0, -1:], context, None, config, generator)
        if _emit(gen, list(step.tokens), max_new_tokens, eos_token_id):
            break
        new = torch.tensor([gen.tokens[-1:]], device=device)
        context = torch.cat([context, new[0]])
        logits = base(input_ids=new, use_cache=True, **cache_kw).logits
        gen.forward_passes += 1
    _sync(device)
    gen.seconds = time.perf_counter() - t0
    return gen
