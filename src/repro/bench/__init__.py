"""Benchmarks: timings live here (``python -m repro.bench ...``), never in unit tests.

``run_kernel_benchmarks`` times every backend of every registered kernel (:mod:`repro.kernels`)
that can run on the chosen device and returns one tidy row per (kernel, backend, shape, dtype,
device).  On a GPU both the torch reference and Triton are timed with CUDA events; on the CPU only
the reference is timed (with ``time.perf_counter``): Triton's CPU interpreter is a testing tool
and timing it would mean nothing.  Each timing is the median of ``repeats`` runs after warm-up; on
CUDA the L2 cache is flushed before every timed run, so a layer-sized weight is read from memory
as it would be in a model.  Before timing, each non-reference output is compared with the
reference output (``matches_reference``).
"""

from __future__ import annotations

import statistics
import time
from functools import partial
from typing import Callable

import pandas as pd
import torch

from repro.kernels import KERNELS, available_backends

COLUMNS = [
    "kernel",
    "backend",
    "shape",
    "dtype",
    "device",
    "median_ms",
    "repeats",
    "torch_version",
    "triton_version",
    "gpu_name",
    "matches_reference",
]


def _triton_version() -> str | None:
    try:
        import triton
    except ImportError:
        return None
    return triton.__version__


def _same(a, b) -> bool:
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype == torch.bool or not a.is_floating_point():
            return bool(torch.equal(a, b))
        # a few roundings of the dtype at the output's scale (fp16/bf16 GEMMs may sum in another order)
        rtol = max(1e-3, 4 * torch.finfo(a.dtype).eps)
        atol = rtol * max(1.0, float(b.abs().max())) if b.numel() else rtol
        return bool(torch.allclose(a.float(), b.float(), rtol=rtol, atol=atol))
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


def time_ms(fn: Callable[[], object], device: torch.device, repeats: int, warmup: int) -> float:
    """Median wall time of ``fn()`` in milliseconds (CUDA events on a GPU, perf_counter on the CPU)."""
    for _ in range(warmup):
        fn()
    times = []
    if device.type == "cuda":
        flush = torch.empty(256 * 2**20, dtype=torch.uint8, device=device)
        torch.cuda.synchronize(device)
        for _ in range(repeats):
            flush.zero_()  # evict the inputs from L2
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            times.append(start.elapsed_time(end))
        del flush
    else:
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def run_kernel_benchmarks(
    device: str | torch.device | None = None,
    quick: bool = False,
    kernels: list[str] | None = None,
    log: Callable[[str], None] | None = print,
) -> pd.DataFrame:
    """Time each registered kernel's backends on ``device`` (default: CUDA when available)."""
    device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    names = kernels if kernels is not None else sorted(KERNELS)
    unknown = [n for n in names if n not in KERNELS]
    if unknown:
        raise ValueError(f"unknown kernel(s) {unknown}; registered: {sorted(KERNELS)}")
    if device.type == "cuda":
        backends = list(available_backends())  # reference, and Triton when it imports
        repeats, warmup = (10, 3) if quick else (50, 10)
        gpu_name = torch.cuda.get_device_name(device)
    else:
        backends = ["reference"]  # never time the interpreter
        repeats, warmup = (5, 2) if quick else (20, 3)
        gpu_name = None
    rows = []
    for name in names:
        kernel = KERNELS[name]
        cases = kernel.bench_cases(device)
        if quick:
            cases = cases[:1]
        for case in cases:
            args, kwargs = case.make()
            expected = kernel.reference(*args, **kwargs)
            for backend in backends:
                if backend == "triton" and (kernel.triton is None or kernel.triton_supports(*args, **kwargs)):
                    continue
                impl = kernel.implementation(backend)
                matches = True if backend == "reference" else _same(impl(*args, **kwargs), expected)
                ms = time_ms(partial(impl, *args, **kwargs), device, repeats, warmup)
                row = dict(
                    kernel=name,
                    backend=backend,
                    shape=case.shape,
                    dtype=case.dtype,
                    device=device.type,
                    median_ms=ms,
                    repeats=repeats,
                    torch_version=torch.__version__,
                    triton_version=_triton_version(),
                    gpu_name=gpu_name,
                    matches_reference=matches,
                )
                rows.append(row)
                if log:
                    log(f"{name:>16} {backend:>9} {case.shape:>12} {case.dtype:>8} {ms:10.4f} ms")
            args = kwargs = expected = None  # free the inputs before the next case
    df = pd.DataFrame(rows, columns=COLUMNS)
    for col in ("kernel", "backend", "shape", "dtype", "device", "torch_version", "triton_version", "gpu_name"):
        df[col] = df[col].astype("string")
    df["repeats"] = df["repeats"].astype("int64")
    df["median_ms"] = df["median_ms"].astype("float64")
    df["matches_reference"] = df["matches_reference"].astype("bool")
    return df


def format_table(df: pd.DataFrame) -> str:
    """A small table: one line per (kernel, shape, dtype, device) with each backend's median and the speed-up."""
    if df.empty:
        return "(no benchmarks)"
    wide = df.pivot_table(
        index=["kernel", "shape", "dtype", "device"], columns="backend", values="median_ms", aggfunc="first", sort=False
    )
    wide.columns = [f"{c}_ms" for c in wide.columns]
    if {"reference_ms", "triton_ms"} <= set(wide.columns):
        wide["speedup"] = wide["reference_ms"] / wide["triton_ms"]
    return wide.reset_index().to_string(index=False, float_format=lambda x: f"{x:.4f}")
