"""Windowed perplexity with the protocol stored next to the number (brief §2.2 and §6.1).

Protocol
    The whole text is tokenised once with the tokenizer's default special tokens: a tokenizer that adds
    a BOS token (LLaMA-2) puts it once at the very start of the text, not at the start of every window;
    one that adds none (GPT-2, Qwen) adds none. The token ids are cut into consecutive,
    non-overlapping windows of ``window`` tokens, and every window is scored on its own: each token but
    the first of a window is predicted from the tokens before it in that window, so a full window
    contributes ``window - 1`` scored tokens. The final partial window is dropped
    (``remainder="drop"``: Wanda/SparseGPT, SliceGPT, MoDeGPT) or scored as a shorter window
    (``remainder="keep"``: DISP-LLM), adding ``remainder_tokens - 1`` scored tokens. Perplexity is
    ``exp(total NLL / scored tokens)``, i.e. every scored token weighs the same.

    ``max_windows`` keeps only the first full windows (a partial window is then never scored, since
    the end of the text is not reached). The ``protocol`` dict of the result (dataset, join, window,
    remainder, bos, dtype, max_windows) is meant to be stored with every row (see ``rows.py``).
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from typing import Any

import torch
from tqdm.auto import tqdm

from repro.llm.eval._common import model_dtype, place_model

REMAINDER_POLICIES = ("drop", "keep")


def window_nll(
    model,
    ids: Sequence[int] | torch.Tensor,
    *,
    window: int,
    remainder: str = "drop",
    max_windows: int | None = None,
    batch_size: int = 1,
    device=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Summed next-token NLL of ``model`` over non-overlapping windows of the token ids ``ids``.

    Returns ``total_nll``, ``scored_tokens``, ``windows`` (scored windows, the partial one included),
    ``full_windows``, ``partial_window_tokens`` (length of the scored partial window, 0 if none),
    ``tokens`` and ``dropped_tokens`` (tokens never inside a scored window). Raises ``ValueError`` when
    nothing can be scored.
    """
    if window < 2:
        raise ValueError(f"window must be at least 2 tokens, got {window}")
    if remainder not in REMAINDER_POLICIES:
        raise ValueError(f"remainder must be one of {REMAINDER_POLICIES}, got {remainder!r}")
    if max_windows is not None and max_windows < 1:
        raise ValueError(f"max_windows must be positive, got {max_windows}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    ids = torch.as_tensor(ids, dtype=torch.long).flatten()
    n_tokens = int(ids.numel())
    n_full = n_tokens // window
    partial = n_tokens - n_full * window
    if max_windows is not None and max_windows < n_full:
        n_full, partial = max_windows, 0  # the end of the text is never reached
    if remainder == "drop" or partial < 2:
        partial = 0  # a 1-token remainder has nothing to predict
    if n_full == 0 and partial == 0:
        raise ValueError(f"text has {n_tokens} tokens, fewer than one window of {window}")

    device = place_model(model, device)
    chunks = [ids[: n_full * window].view(n_full, window)[i : i + batch_size] for i in range(0, n_full, batch_size)]
    if partial:
        chunks.append(ids[n_full * window : n_full * window + partial].unsqueeze(0))

    total_nll = 0.0
    bar = tqdm(total=n_full + bool(partial), desc="perplexity", unit="win", mininterval=5, disable=not progress)
    with torch.inference_mode(), bar:
        for chunk in chunks:
            chunk = chunk.to(device)
            logits = model(input_ids=chunk, use_cache=False).logits
            for row in range(chunk.shape[0]):  # one sequence at a time: bounds the float32 copy of the logits
                total_nll += float(
                    torch.nn.functional.cross_entropy(logits[row, :-1].float(), chunk[row, 1:], reduction="sum")
                )
            bar.update(chunk.shape[0])
            del logits
    scored = n_full * (window - 1) + max(partial - 1, 0)
    return {
        "total_nll": total_nll,
        "scored_tokens": scored,
        "windows": n_full + bool(partial),
        "full_windows": n_full,
        "partial_window_tokens": partial,
        "tokens": n_tokens,
        "dropped_tokens": n_tokens - n_full * window - partial,
    }


def _added_prefix(tokenizer) -> list[int]:
    """The special token ids the tokenizer puts in front of a text by default (e.g. ``[bos]``)."""
    probe = "a"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    default = tokenizer(probe)["input_ids"]
    for start in range(len(default) - len(plain) + 1):
        if default[start : start + len(plain)] == plain:
            return list(default[:start])
    return []


def perplexity(
    model,
    tokenizer,
    text: str,
    *,
    window: int,
    remainder: str = "drop",
    join_note: str = "",
    dataset: str = "",
    max_windows: int | None = None,
    batch_size: int = 1,
    device=None,
    progress: bool = True,
) -> dict[str, Any]:
    """Perplexity of ``model`` on ``text`` under the windowed protocol of the module docstring.

    ``join_note`` says how the caller built ``text`` from its documents (e.g. ``"\\n\\n"`` for the usual
    WikiText-2 ``"\\n\\n".join(test["text"])``) and ``dataset`` names it (e.g.
    ``"wikitext-2-raw-v1/test"``); both are only recorded. ``device=None`` evaluates where the model
    is; another device moves the model there.

    Returns ``perplexity``, ``nll_mean``, ``scored_tokens``, ``windows`` (the scored partial window
    included), ``full_windows``, ``partial_window_tokens``, ``tokens``, ``dropped_tokens``, ``seconds``
    and ``protocol`` = {dataset, join, window, remainder, bos, dtype, max_windows}; ``bos`` is the
    token the tokenizer put once at the start of the text, or ``"none"``.
    """
    start = time.perf_counter()
    ids = tokenizer(text)["input_ids"]  # tokenizer default: BOS once at the start if it adds one
    prefix = _added_prefix(tokenizer)
    if prefix and list(ids[: len(prefix)]) == prefix:
        bos = "".join(tokenizer.convert_ids_to_tokens(prefix))
    else:
        bos = "none"
    counts = window_nll(
        model,
        ids,
        window=window,
        remainder=remainder,
        max_windows=max_windows,
        batch_size=batch_size,
        device=device,
        progress=progress,
    )
    nll_mean = counts.pop("total_nll") / counts["scored_tokens"]
    return {
        "perplexity": math.exp(nll_mean),
        "nll_mean": nll_mean,
        **counts,
        "seconds": round(time.perf_counter() - start, 3),
        "protocol": {
            "dataset": dataset,
            "join": join_note,
            "window": window,
            "remainder": remainder,
            "bos": bos,
            "dtype": model_dtype(model),
            "max_windows": max_windows,
        },
    }
