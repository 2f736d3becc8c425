"""Prefill and decode throughput plus peak memory of a causal LM (brief §2.4 and §6.3).

Protocol
    * Prefill: one forward pass over ``batch x prefill_len`` random token ids (seeded, uniform over the
      vocabulary), no KV cache; logits only for the last position when the model's forward accepts
      ``logits_to_keep`` (as ``generate``'s own prefill does), recorded as ``prefill_logits``.
      ``prefill_tok_s = batch * prefill_len / median time``.
    * Decode: ``model.generate`` greedy with ``use_cache=True`` on a ``batch x decode_prompt_len``
      random prompt (default ``prefill_len``), with ``min_new_tokens = max_new_tokens`` so every row
      gets exactly the requested number of new tokens. ``generate`` is timed for ``decode_tokens`` new
      tokens and for 1 new token (prefill plus the first token); ``decode_tok_s = batch *
      (decode_tokens - 1) / (median(t_N) - median(t_1))`` is the steady per-token decode rate, and
      ``generate_tok_s = batch * decode_tokens / median(t_N)`` the end-to-end rate.
    * Each timed call is preceded by ``warmup`` untimed calls and repeated ``repeats`` times; the
      median is reported. On CUDA, CUDA events time the calls and ``torch.cuda.synchronize`` fences
      them; on CPU ``time.perf_counter``.
    * Peak memory over all timed and warm-up calls: on CUDA ``torch.cuda.max_memory_allocated`` after
      ``reset_peak_memory_stats`` (``peak_mem_mb``, weights included); on CPU the peak resident set
      size of the process above its size at the start (``peak_mem_mb`` is that growth). The CPU peak
      comes from Linux's ``VmHWM`` after resetting it through ``/proc/self/clear_refs`` where allowed,
      else from ``resource.getrusage`` (NaN when the process had peaked higher before, since the
      lifetime maximum then hides the block's peak); the method is recorded as ``memory_method``.
      ``psutil`` is not used: it reports the current RSS only (a peak field exists on Windows only).

Always measure the dense baseline in the same process, on the same device (§6.3).
"""

from __future__ import annotations

import inspect
import platform
import re
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from repro.llm.eval._common import model_dtype, place_model

_STATUS = Path("/proc/self/status")
_CLEAR_REFS = Path("/proc/self/clear_refs")


# --------------------------------------------------------------------------- memory


def _status_kb(field: str) -> int | None:
    try:
        match = re.search(rf"^{field}:\s+(\d+)\s+kB", _STATUS.read_text(), re.MULTILINE)
    except OSError:
        return None
    return int(match.group(1)) if match else None


def _maxrss_kb() -> int:
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss // 1024 if sys.platform == "darwin" else rss  # bytes on macOS, KiB on Linux


class _CpuPeak:
    """Peak RSS of this process during a block, relative to its RSS at the start (MiB)."""

    def start(self) -> None:
        self.maxrss_before_kb = _maxrss_kb()
        self.baseline_kb = _status_kb("VmRSS")
        self.method = "getrusage_maxrss"
        if self.baseline_kb is None:
            self.baseline_kb = self.maxrss_before_kb  # no /proc: the best available stand-in
            return
        try:
            _CLEAR_REFS.write_text("5")  # resets VmHWM (the peak RSS) to the current RSS
        except OSError:
            return
        if _status_kb("VmHWM") is not None:
            self.method = "proc_vmhwm"

    def stop(self) -> dict[str, Any]:
        if self.method == "proc_vmhwm":
            growth = max(_status_kb("VmHWM") - self.baseline_kb, 0) / 1024
        else:
            # ru_maxrss is the lifetime peak: it tells the block's peak only if the block set a new one.
            after = _maxrss_kb()
            growth = max(after - self.baseline_kb, 0) / 1024 if after > self.maxrss_before_kb else float("nan")
        return {
            "peak_mem_mb": growth,
            "peak_mem_growth_mb": growth,
            "mem_baseline_mb": self.baseline_kb / 1024,
            "memory_method": self.method,
        }


class _CudaPeak:
    def __init__(self, device: torch.device):
        self.device = device

    def start(self) -> None:
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        self.baseline = torch.cuda.memory_allocated(self.device)

    def stop(self) -> dict[str, Any]:
        torch.cuda.synchronize(self.device)
        peak = torch.cuda.max_memory_allocated(self.device)
        return {
            "peak_mem_mb": peak / 2**20,
            "peak_mem_growth_mb": (peak - self.baseline) / 2**20,
            "mem_baseline_mb": self.baseline / 2**20,
            "memory_method": "cuda_max_memory_allocated",
        }


# --------------------------------------------------------------------------- timing


def _timed(fn: Callable[[], Any], device: torch.device, repeats: int, warmup: int) -> tuple[list[float], Any]:
    """Seconds of ``repeats`` calls of ``fn`` after ``warmup`` untimed ones; also the last output."""
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    cuda = device.type == "cuda"
    for _ in range(repeats):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            torch.cuda.synchronize(device)
            start.record()
            out = fn()
            end.record()
            torch.cuda.synchronize(device)
            times.append(start.elapsed_time(end) / 1000)
        else:
            t0 = time.perf_counter()
            out = fn()
            times.append(time.perf_counter() - t0)
    return times, out


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = ""
    try:
        match = re.search(r"^model name\s*:\s*(.+)$", Path("/proc/cpuinfo").read_text(), re.MULTILINE)
        cpu = match.group(1).strip() if match else ""
    except OSError:
        pass
    return f"cpu: {cpu or platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def _vocab_size(model, tokenizer_or_vocab_size) -> int:
    if isinstance(tokenizer_or_vocab_size, int):
        vocab = tokenizer_or_vocab_size
    else:
        vocab = len(tokenizer_or_vocab_size)
    embeddings = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else None
    if embeddings is not None and hasattr(embeddings, "num_embeddings"):
        vocab = min(vocab, embeddings.num_embeddings)
    if vocab < 1:
        raise ValueError(f"vocabulary size must be positive, got {vocab}")
    return vocab


def _pad_token_id(tokenizer_or_vocab_size) -> int:
    for attr in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer_or_vocab_size, attr, None)
        if isinstance(value, int):
            return value
    return 0


def measure_speed(
    model,
    tokenizer_or_vocab_size,
    *,
    batch: int,
    prefill_len: int,
    decode_tokens: int,
    repeats: int = 3,
    warmup: int = 1,
    device=None,
    decode_prompt_len: int | None = None,
    seed: int = 0,
) -> dict[str, Any]:
    """Prefill and decode tokens/s and peak memory of ``model`` (protocol in the module docstring).

    ``tokenizer_or_vocab_size`` gives the range of the random token ids (a tokenizer's ``len`` or an
    int, capped at the embedding size). ``device=None`` measures where the model is; another device
    moves the model there. Returns ``prefill_tok_s``, ``decode_tok_s``, ``generate_tok_s``, the median
    seconds and all repeat times, the token counts (``prefill_tokens`` = batch x prefill_len per call,
    ``new_tokens`` per row as produced by ``generate``), ``peak_mem_mb``, ``peak_mem_growth_mb``,
    ``mem_baseline_mb``, ``memory_method``, and ``protocol`` = {batch, prefill_len, decode_prompt_len,
    decode_tokens, repeats, warmup, seed, device, dtype, prefill_logits, memory_method}.
    """
    for name, value in {"batch": batch, "prefill_len": prefill_len, "repeats": repeats}.items():
        if value < 1:
            raise ValueError(f"{name} must be positive, got {value}")
    if decode_tokens < 2:
        raise ValueError(f"decode_tokens must be at least 2 (decode time is t(N) - t(1)), got {decode_tokens}")
    if warmup < 0:
        raise ValueError(f"warmup must be non-negative, got {warmup}")
    decode_prompt_len = prefill_len if decode_prompt_len is None else decode_prompt_len
    device = place_model(model, device)
    vocab = _vocab_size(model, tokenizer_or_vocab_size)
    pad_id = _pad_token_id(tokenizer_or_vocab_size)
    generator = torch.Generator().manual_seed(seed)
    prefill_ids = torch.randint(0, vocab, (batch, prefill_len), generator=generator).to(device)
    prompt_ids = torch.randint(0, vocab, (batch, decode_prompt_len), generator=generator).to(device)
    prefill_mask = torch.ones_like(prefill_ids)
    prompt_mask = torch.ones_like(prompt_ids)

    keep_last = "logits_to_keep" in inspect.signature(model.forward).parameters
    extra = {"logits_to_keep": 1} if keep_last else {}

    def prefill():
        return model(input_ids=prefill_ids, attention_mask=prefill_mask, use_cache=False, **extra).logits

    def generate(n: int):
        return model.generate(
            input_ids=prompt_ids,
            attention_mask=prompt_mask,
            do_sample=False,
            num_beams=1,
            max_new_tokens=n,
            min_new_tokens=n,
            use_cache=True,
            pad_token_id=pad_id,
        )

    was_training = model.training
    model.eval()
    tracker = _CudaPeak(device) if device.type == "cuda" else _CpuPeak()
    try:
        with torch.inference_mode():
            tracker.start()
            prefill_times, _ = _timed(prefill, device, repeats, warmup)
            one_times, one_out = _timed(lambda: generate(1), device, repeats, warmup)
            full_times, full_out = _timed(lambda: generate(decode_tokens), device, repeats, warmup)
            memory = tracker.stop()
    finally:
        model.train(was_training)

    new_tokens = int(full_out.shape[1] - decode_prompt_len)
    if new_tokens != decode_tokens or int(one_out.shape[1] - decode_prompt_len) != 1:
        raise RuntimeError(f"generate produced {new_tokens} new tokens, expected {decode_tokens}")
    t_prefill = statistics.median(prefill_times)
    t_one, t_full = statistics.median(one_times), statistics.median(full_times)
    decode_seconds = t_full - t_one
    name = device_name(device)
    dtype = model_dtype(model)
    return {
        "prefill_tok_s": batch * prefill_len / t_prefill,
        "decode_tok_s": batch * (decode_tokens - 1) / decode_seconds if decode_seconds > 0 else float("nan"),
        "generate_tok_s": batch * decode_tokens / t_full,
        "prefill_seconds": t_prefill,
        "generate_1_seconds": t_one,
        "generate_n_seconds": t_full,
        "times": {"prefill": prefill_times, "generate_1": one_times, "generate_n": full_times},
        "prefill_tokens": batch * prefill_len,
        "new_tokens": new_tokens,
        "decode_tokens_total": batch * new_tokens,
        **memory,
        "device": name,
        "dtype": dtype,
        "protocol": {
            "batch": batch,
            "prefill_len": prefill_len,
            "decode_prompt_len": decode_prompt_len,
            "decode_tokens": decode_tokens,
            "repeats": repeats,
            "warmup": warmup,
            "seed": seed,
            "device": name,
            "dtype": dtype,
            "prefill_logits": "last" if keep_last else "all",
            "memory_method": memory["memory_method"],
        },
    }
