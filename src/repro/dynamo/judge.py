"""A pluggable pairwise judge for the win-rate protocol (brief §5.3-§5.4), run by a local model.

The paper asks GPT-3.5/GPT-4 to compare a DynaMo continuation with the base model's, in random
order, on grammar, creativity, depth, logical flow, coherence and informativeness, ignoring length,
and to answer ``[[A]]``, ``[[B]]`` or ``[[C]]`` (tie).  Win rate = wins / losses (ties excluded).
Offline, the judge is a local chat model named in the config (a folder in ``from_pretrained``
layout); it is called greedily and its verdict parsed from the first ``[[A]]``/``[[B]]``/``[[C]]``
in its answer (anything else counts as ``invalid`` and is reported, not guessed).
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass

__all__ = ["PairwiseJudge", "TEMPLATE", "parse_verdict", "win_rate"]

TEMPLATE = (
    "Please act as an impartial judge and compare two continuations of the same prompt. Judge "
    "grammatical correctness, creativity, depth, logical flow, coherence and informativeness; do not "
    "let the length of a continuation influence you. Output your verdict as [[A]] if continuation A "
    "is better, [[B]] if continuation B is better, or [[C]] for a tie.\n\n"
    "[Prompt]\n{prompt}\n\n[Continuation A]\n{a}\n\n[Continuation B]\n{b}\n\nVerdict:"
)
_VERDICT = re.compile(r"\[\[([ABC])\]\]")


def parse_verdict(text: str) -> str | None:
    """``"A"``, ``"B"``, ``"C"`` from the first ``[[X]]`` in ``text``, else ``None``."""
    match = _VERDICT.search(text)
    return match.group(1) if match else None


@dataclass
class PairwiseJudge:
    """Compares a candidate continuation with a reference one through ``complete(prompt) -> text``.

    ``complete`` is the judge model's greedy completion function (see :meth:`from_model`); ``seed``
    seeds the random A/B order (position-bias control).
    """

    complete: Callable[[str], str]
    seed: int = 0

    def __post_init__(self) -> None:
        self._rng = random.Random(self.seed)

    @classmethod
    def from_model(cls, model, tokenizer, max_new_tokens: int = 16, seed: int = 0) -> PairwiseJudge:
        """A judge backed by a local causal LM (chat template used when the tokenizer has one)."""
        import torch

        def complete(text: str) -> str:
            if getattr(tokenizer, "chat_template", None):
                ids = tokenizer.apply_chat_template(
                    [{"role": "user", "content": text}], add_generation_prompt=True, return_tensors="pt"
                )
                ids = ids if isinstance(ids, torch.Tensor) else ids["input_ids"]
            else:
                ids = tokenizer(text, return_tensors="pt")["input_ids"]
            ids = ids.to(next(model.parameters()).device)
            with torch.no_grad():
                out = model.generate(
                    ids, attention_mask=torch.ones_like(ids), do_sample=False, max_new_tokens=max_new_tokens
                )
            return tokenizer.decode(out[0, ids.shape[1] :], skip_special_tokens=True)

        return cls(complete, seed)

    def compare(self, prompt: str, candidate: str, reference: str) -> str:
        """``"win"`` / ``"loss"`` / ``"tie"`` for ``candidate`` against ``reference``, or ``"invalid"``."""
        swap = self._rng.random() < 0.5
        a, b = (reference, candidate) if swap else (candidate, reference)
        verdict = parse_verdict(self.complete(TEMPLATE.format(prompt=prompt, a=a, b=b)))
        if verdict is None:
            return "invalid"
        if verdict == "C":
            return "tie"
        candidate_is = "B" if swap else "A"
        return "win" if verdict == candidate_is else "loss"


def win_rate(outcomes: Iterable[str]) -> dict[str, float]:
    """Counts of each outcome and ``win_rate`` = wins / losses (NaN with no loss; brief §5.3)."""
    counts = Counter(outcomes)
    wins, losses = counts["win"], counts["loss"]
    return {
        "wins": wins,
        "losses": losses,
        "ties": counts["tie"],
        "invalid": counts["invalid"],
        "win_rate": wins / losses if losses else float("nan"),
    }
