"""Speed of compressed LLaMA-shaped models on the device: SparseGPT 2:4 on semi-structured sparse
kernels and SVD-LLM's two-linear factorisation, against the dense model.

``python -m repro.bench compressed-llm --out benchmarks/compressed_llm.parquet`` builds a LLaMA
model with random weights from a size preset (``llama2-7b-dims``: LLaMA-2 7B's hidden 4096,
intermediate 11008, 32 heads, vocabulary 32000, but only ``--layers`` decoder layers so that it fits
a short benchmark; ``tiny`` for CPU tests), prunes a copy with our SparseGPT (2:4, sequential
calibration on random token windows) and factorises another with our SVD-LLM, and times prefill and
decode of each through :func:`repro.llm.eval.speed.measure_speed` (the pipeline's protocol: the
dense model is timed before and after each compressed one and its mean is the reference).

Why random weights: kernel speed does not depend on the weight values, and no LLaMA checkpoint
can be fetched where this runs.  The quality of these compressed models means nothing; the
pipeline's quality numbers come from the real model (``make reproduce``).  What this measures and
the pipeline cannot on a CPU: whether a 2:4 model runs on the GPU's sparse tensor cores
(``sparse_kernels``) and what that buys at LLaMA-2 7B layer sizes, and how long SparseGPT takes per
7B-sized decoder layer (``compress_seconds_per_layer``; the paper tier's time is about 32 times it).

Also a GEMM-only table (``--gemm``): ``F.linear`` with a dense vs semi-structured 2:4 weight of each
7B linear shape, for 1, 16 and 2048 tokens (decode, small batch, prefill).

Rows: ``model``, ``method``, ``sparse_kernels``, ``metric``, ``value``, ``device``, ``gpu_name``,
``torch_version``, ``dtype``, ``layers``, ``batch``, ``prefill_len``, ``decode_tokens``.
"""

from __future__ import annotations

import copy
import logging
import time
from typing import Any

import pandas as pd
import torch

log = logging.getLogger(__name__)

PRESETS: dict[str, dict[str, int]] = {
    # LLaMA-2 7B's layer dimensions (config.json of meta-llama/Llama-2-7b-hf).
    "llama2-7b-dims": {
        "hidden_size": 4096,
        "intermediate_size": 11008,
        "num_attention_heads": 32,
        "num_key_value_heads": 32,
        "vocab_size": 32000,
    },
    # Small enough for a CPU test; every linear's in_features a multiple of 4 (2:4) and 64 (kernels).
    "tiny": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "vocab_size": 256,
    },
}

#: The linear shapes (out, in) of one LLaMA-2 7B decoder layer: q/k/v/o, gate/up, down.
LLAMA2_7B_LINEARS = {"attn_qkvo": (4096, 4096), "mlp_gate_up": (11008, 4096), "mlp_down": (4096, 11008)}


def _floating_dtype(name: str) -> torch.dtype:
    dtype = getattr(torch, str(name), None)
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a torch floating dtype such as float16, bfloat16 or float32, got {name!r}")
    return dtype


def random_llama(preset: str, layers: int, dtype: torch.dtype, device: torch.device, seed: int = 0):
    """A ``LlamaForCausalLM`` with the preset's dimensions, ``layers`` decoder layers and random weights."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}; choose from {sorted(PRESETS)}")
    if layers < 1:
        raise ValueError(f"layers must be positive, got {layers}")
    config = LlamaConfig(
        **PRESETS[preset],
        num_hidden_layers=layers,
        max_position_embeddings=4096,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    model = LlamaForCausalLM(config).to(device=device, dtype=dtype).eval()
    return model


def _timings(model, vocab: int, device, protocol: dict[str, int]) -> dict[str, Any]:
    from repro.llm.eval.speed import measure_speed

    return measure_speed(model, vocab, device=device, **protocol)


def _speed_rows(result: dict, dense_runs: list[dict], base: dict) -> list[dict]:
    dense = {k: sum(r[k] for r in dense_runs) / len(dense_runs) for k in ("prefill_tok_s", "decode_tok_s")}
    metrics = {
        "prefill_tok_s": result["prefill_tok_s"],
        "decode_tok_s": result["decode_tok_s"],
        "dense_prefill_tok_s": dense["prefill_tok_s"],
        "dense_decode_tok_s": dense["decode_tok_s"],
        "prefill_speedup": result["prefill_tok_s"] / dense["prefill_tok_s"],
        "decode_speedup": result["decode_tok_s"] / dense["decode_tok_s"],
        "peak_mem_mb": result["peak_mem_mb"],
    }
    return [{**base, "metric": k, "value": float(v)} for k, v in metrics.items()]


def run_compressed_llm_benchmark(
    *,
    preset: str = "llama2-7b-dims",
    layers: int = 4,
    device: str | None = None,
    dtype: str = "float16",
    batch: int = 1,
    prefill_len: int = 2048,
    decode_tokens: int = 64,
    repeats: int = 5,
    calibration_samples: int = 16,
    calibration_len: int = 512,
    svd_target: float = 0.2,
    sparse_backend: str = "auto",
    methods: tuple[str, ...] = ("sparsegpt", "svd_llm"),
    rank_multiples: tuple[int, ...] = (1,),
) -> pd.DataFrame:
    """Dense vs SparseGPT 2:4 (semi-structured kernels where available) vs SVD-LLM; rows as in the module docstring."""
    from repro.llm.eval.speed import device_name

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    unknown = set(methods) - {"sparsegpt", "svd_llm"}
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; choose from sparsegpt, svd_llm")
    torch_dtype = _floating_dtype(dtype)
    protocol = {
        "batch": batch,
        "prefill_len": prefill_len,
        "decode_tokens": decode_tokens,
        "repeats": repeats,
        "warmup": 1,
    }
    dense = random_llama(preset, layers, torch_dtype, dev)
    vocab = dense.config.vocab_size
    calib = torch.randint(0, vocab, (calibration_samples, calibration_len), generator=torch.Generator().manual_seed(1))
    base = {
        "model": f"{preset}-{layers}L",
        "device": dev.type,
        "gpu_name": device_name(dev),
        "torch_version": torch.__version__,
        "dtype": dtype,
        "layers": layers,
        **protocol,
    }
    rows: list[dict] = []

    def sync():
        if dev.type == "cuda":
            torch.cuda.synchronize(dev)

    if "sparsegpt" in methods:
        rows += _sparsegpt_rows(dense, calib, dev, base, protocol, layers, sparse_backend, sync)
    if "svd_llm" in methods:
        for multiple in rank_multiples:
            rows += _svd_llm_rows(dense, calib, dev, base, protocol, layers, svd_target, sync, multiple)
    dense_runs = [_timings(dense, vocab, dev, protocol)]
    dense_base = {**base, "method": "dense", "sparse_kernels": "none"}
    rows += [{**dense_base, "metric": k, "value": float(dense_runs[0][k])} for k in ("prefill_tok_s", "decode_tok_s")]
    return pd.DataFrame(rows)


def _sparsegpt_rows(dense, calib, dev, base, protocol, layers, sparse_backend, sync) -> list[dict]:
    from repro.llm.methods.sparsegpt import sparsegpt
    from repro.llm.methods.wanda import semi_structured
    from repro.llm.stages import nm_pattern_counts

    vocab = dense.config.vocab_size
    rows: list[dict] = []
    # SparseGPT 2:4: prune a copy (its sweep runs in float64 on the device), check the pattern,
    # then convert to semi-structured tensors (CUDA, fp16/bf16, capability >= 8) and time.
    pruned = copy.deepcopy(dense)
    sync()
    start = time.perf_counter()
    pruned, info = sparsegpt(pruned, calib.to(dev), pattern="2:4", batch_size=4, progress=False)
    sync()
    seconds = time.perf_counter() - start
    counts = nm_pattern_counts(pruned, "2:4", dense_model=dense)
    converted = semi_structured(pruned, backend=sparse_backend)
    sparse_kernels = f"torch.sparse semi-structured 2:4 ({sparse_backend})" if converted else "none (dense kernels)"
    sparse_base = {**base, "method": "sparsegpt-2of4", "sparse_kernels": sparse_kernels}
    rows += [
        {**sparse_base, "metric": "compress_seconds", "value": seconds},
        {**sparse_base, "metric": "compress_seconds_per_layer", "value": seconds / layers},
        {**sparse_base, "metric": "calibration_tokens", "value": float(calib.numel())},
        {**sparse_base, "metric": "achieved_sparsity", "value": float(info["achieved_sparsity"])},
        *({**sparse_base, "metric": k, "value": float(v)} for k, v in counts.items()),
    ]
    dense_runs = [_timings(dense, vocab, dev, protocol)]
    result = _timings(pruned, vocab, dev, protocol)
    dense_runs.append(_timings(dense, vocab, dev, protocol))
    rows += _speed_rows(result, dense_runs, sparse_base)
    del pruned
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    return rows


def _svd_llm_rows(dense, calib, dev, base, protocol, layers, svd_target, sync, rank_multiple) -> list[dict]:
    from repro.llm.methods.svd_llm import svd_llm

    vocab = dense.config.vocab_size
    rows: list[dict] = []
    # SVD-LLM at svd_target of the total parameters (whitening, original-model calibration).
    factored = copy.deepcopy(dense)
    sync()
    start = time.perf_counter()
    factored, info = svd_llm(
        factored, calib.to(dev), target_removed=svd_target, batch_size=4, progress=False, rank_multiple=rank_multiple
    )
    sync()
    seconds = time.perf_counter() - start
    suffix = "" if rank_multiple == 1 else f"-rank{rank_multiple}x"
    svd_base = {**base, "method": f"svd_llm-{svd_target:.2f}{suffix}", "sparse_kernels": "none"}
    rows += [
        {**svd_base, "metric": "compress_seconds", "value": seconds},
        {**svd_base, "metric": "compress_seconds_per_layer", "value": seconds / layers},
    ]
    rows.append({**svd_base, "metric": "achieved_removed", "value": float(info["achieved_removed"])})
    dense_runs = [_timings(dense, vocab, dev, protocol)]
    result = _timings(factored, vocab, dev, protocol)
    dense_runs.append(_timings(dense, vocab, dev, protocol))
    rows += _speed_rows(result, dense_runs, svd_base)
    return rows


def run_sparse_gemm_benchmark(
    device: str | None = None,
    dtype: str = "float16",
    tokens=(1, 16, 2048),
    repeats: int = 50,
    linears: dict[str, tuple[int, int]] | None = None,
    backends: tuple[str, ...] = ("cusparselt", "cutlass"),
) -> pd.DataFrame:
    """``F.linear`` time of each LLaMA-2 7B linear shape with a dense vs a 2:4 semi-structured weight.

    The weight is a random 2:4 pattern (two of every four inputs kept); on a device without
    semi-structured support only the dense row is written, with ``sparse_ms`` NaN and the reason.
    ``linears`` (name -> (out, in)) replaces the 7B shapes (tests use small ones).
    """
    from repro.bench import time_ms
    from repro.llm.eval.speed import device_name

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    torch_dtype = _floating_dtype(dtype)
    rows = []
    for name, (out_f, in_f) in (linears or LLAMA2_7B_LINEARS).items():
        gen = torch.Generator().manual_seed(0)
        weight = torch.randn(out_f, in_f, generator=gen)
        # keep the two largest of every four inputs: a valid 2:4 pattern
        groups = weight.reshape(out_f, -1, 4)
        keep = groups.abs().topk(2, dim=-1).indices
        mask = torch.zeros_like(groups, dtype=torch.bool).scatter_(-1, keep, True)
        weight = (groups * mask).reshape(out_f, in_f).to(device=dev, dtype=torch_dtype)
        sparse_weights: dict[str, Any] = {}
        reasons: dict[str, str] = {}
        for backend in backends:
            if dev.type != "cuda":
                reasons[backend] = "semi-structured kernels need CUDA"
                continue
            try:
                cls = {
                    "cusparselt": torch.sparse.SparseSemiStructuredTensorCUSPARSELT,
                    "cutlass": torch.sparse.SparseSemiStructuredTensorCUTLASS,
                }[backend]
                sparse_weights[backend] = cls.from_dense(weight)
            except (RuntimeError, NotImplementedError, AttributeError) as exc:
                reasons[backend] = f"{type(exc).__name__}: {exc}"
        for n in tokens:
            x = torch.randn(n, in_f, generator=gen).to(device=dev, dtype=torch_dtype)
            dense_ms = time_ms(lambda: torch.nn.functional.linear(x, weight), dev, repeats, 5)
            ref = torch.nn.functional.linear(x, weight).float()
            for backend in backends:
                sparse_ms, max_err, reason = float("nan"), float("nan"), reasons.get(backend, "")
                sparse_weight = sparse_weights.get(backend)
                if sparse_weight is not None:
                    try:
                        sparse_ms = time_ms(lambda: torch.nn.functional.linear(x, sparse_weight), dev, repeats, 5)
                        got = torch.nn.functional.linear(x, sparse_weight).float()
                        max_err = float((got - ref).abs().max() / ref.abs().max().clamp_min(1e-6))
                    except (RuntimeError, NotImplementedError) as exc:
                        reason = f"{type(exc).__name__}: {exc}"
                rows.append(
                    {
                        "linear": name,
                        "out_features": out_f,
                        "in_features": in_f,
                        "tokens": n,
                        "backend": backend,
                        "dtype": dtype,
                        "device": dev.type,
                        "gpu_name": device_name(dev),
                        "torch_version": torch.__version__,
                        "dense_ms": dense_ms,
                        "sparse_ms": sparse_ms,
                        "speedup": dense_ms / sparse_ms if sparse_ms == sparse_ms else float("nan"),
                        "relative_max_error": max_err,
                        "note": reason,
                    }
                )
    return pd.DataFrame(rows)
