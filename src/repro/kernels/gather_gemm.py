"""Gather-GEMM and GEMM with scatter-add epilogue (DISP-LLM's index-selected residual stream).

What
    :func:`gather_linear` reads the columns ``index`` of the activations and multiplies by a
    compact weight; :func:`linear_scatter_add` multiplies by a compact weight and adds the result
    into the columns ``index`` of the residual stream::

        gather_linear(x, index, weight, bias)              = x[..., index] @ weight.T (+ bias)
        linear_scatter_add(h, weight, index, residual, b)  = residual with [..., index] += h @ weight.T (+ b)

Why
    In a DISP-LLM-pruned decoder block (``shared/papers/llm_compression.md`` §3.1) the residual
    stream keeps its full width ``d``; each block reads it through a per-layer index set
    (``index_select(norm(x), -1, I_in)`` before q/k/v and gate/up) and writes back through another
    (``index_add(residual, -1, I_out, out)`` after o_proj and down_proj).  The official code runs
    these as separate ``index_select(...).contiguous()`` / ``F.linear`` / ``index_add`` launches.
    §9.1 (2) and (3): the gather fuses into the GEMM's A-tile loads (an index vector on the
    reduction dimension), and the scatter-add into the GEMM's epilogue (indices are distinct, so a
    plain read-modify-write of the residual tile, no atomics).

Layout convention
    * ``gather_linear``: ``x [..., d]`` (any strides; leading dims flattened), ``index [k]``
      (int64 or int32, any order, repeats allowed, values in ``[0, d)``), ``weight [n, k]``,
      ``bias [n]`` or ``None``; result ``[..., n]``.
    * ``linear_scatter_add``: ``h [..., m]``, ``weight [k, m]``, ``index [k]`` (distinct values in
      ``[0, d)``), ``residual [..., d]`` with the leading dims of ``h``, ``bias [k]`` or ``None``;
      result ``[..., d]``, a new tensor (``residual`` is not modified).
    * All floating tensors share one dtype (fp32, fp16 or bf16 for Triton), as ``F.linear`` needs.
    * Index values (and distinctness for the scatter) are checked when ``index`` is on the CPU; on
      CUDA a bad index is undefined behaviour (checking would synchronise the device).

Implementations
    * reference (torch, any device): ``F.linear(torch.index_select(x, -1, index), weight, bias)``
      and ``residual.index_add(-1, index, F.linear(h, weight, bias))``.
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): a tiled GEMM with fp32 accumulation.
      ``gather_linear`` loads each A tile as ``x[rows, index[k0:k0+BK]]`` (no ``x_sel`` is
      materialised).  ``linear_scatter_add`` copies the residual once, then each program rounds its
      output tile to the dtype (as the reference's ``F.linear`` does) and adds it into
      ``out[rows, index[cols]]``.  fp32 uses IEEE products (not TF32) unless torch's
      ``allow_tf32`` is on, matching ``F.linear``.

Measured (``python -m repro.bench kernels`` on one H200, torch 2.11 / Triton 3.6, fp16, 2026-11-27)
    The fused versions are slower than index_select + cuBLAS at every benchmarked size:
    gather_linear 0.104 vs 0.017 ms (t2048 d576 k456 n1536), 3.64 vs 0.22 ms (t2048 d4096 k3072
    n11008), 0.128 vs 0.034 ms (t16, decode); linear_scatter_add 0.050 vs 0.030, 0.595 vs 0.283,
    0.167 vs 0.035 ms.  The copy the fusion saves is small next to the GEMM, and this simple tiled
    kernel reaches a fraction of cuBLAS's tensor-core throughput (an autotuned tile sweep was no
    faster at the small size).  Both kernels are therefore registered with ``auto_triton=False``:
    ``auto`` keeps the reference on CUDA; ``REPRO_KERNELS=triton`` still runs them (tested on CUDA).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from repro.kernels import (
    BenchCase,
    Kernel,
    KernelBackendError,
    dispatch,
    register,
    triton_cpu_error,
    triton_interpreter_active,
)

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - triton ships with every Linux torch wheel
    triton = None
    tl = None

TRITON_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
INDEX_DTYPES = (torch.int32, torch.int64)


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check_common(tensors: dict, index, bias, n_out: int) -> None:
    for name, t in tensors.items():
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {t.dtype}")
    if not isinstance(index, torch.Tensor) or index.dim() != 1:
        raise ValueError(f"index must be a 1-D integer tensor [k], got {_shape(index)}")
    if index.dtype not in INDEX_DTYPES:
        raise ValueError(f"index must be an int64 or int32 tensor, got {index.dtype}")
    if bias is not None:
        if not isinstance(bias, torch.Tensor) or bias.dim() != 1 or bias.shape[0] != n_out:
            raise ValueError(f"bias must be None or a 1-D tensor [{n_out}], got {_shape(bias)}")
        tensors = {**tensors, "bias": bias}
    dtypes = {t.dtype for t in tensors.values()}
    if len(dtypes) > 1:
        got = ", ".join(f"{name} {t.dtype}" for name, t in tensors.items())
        raise ValueError(f"{', '.join(tensors)} must share one dtype, got {got}")
    devices = {t.device for t in (*tensors.values(), index)}
    if len(devices) > 1:
        raise ValueError(f"{', '.join(tensors)} and index must be on one device, got {sorted(map(str, devices))}")


def _check_index_values(index: torch.Tensor, d: int, distinct: bool) -> None:
    if index.device.type != "cpu" or index.numel() == 0:
        return
    lo, hi = int(index.min()), int(index.max())
    if lo < 0 or hi >= d:
        raise ValueError(f"index values must lie in [0, d={d}), got min {lo}, max {hi}")
    if distinct and torch.unique(index).numel() != index.numel():
        raise ValueError("index values must be distinct (each residual column is written once)")


def _check_gather_args(x, index, weight, bias) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit ``gather_linear``."""
    if not isinstance(x, torch.Tensor) or x.dim() < 1:
        raise ValueError(f"x must be a tensor [..., d] with at least 1 dim, got {_shape(x)}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor [n, k], got {_shape(weight)}")
    _check_common({"x": x, "weight": weight}, index, bias, weight.shape[0])
    if weight.shape[1] != index.shape[0]:
        raise ValueError(f"weight {tuple(weight.shape)} must be [n, k={index.shape[0]}] (k = len(index))")
    _check_index_values(index, x.shape[-1], distinct=False)


def _check_scatter_args(h, weight, index, residual, bias) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit ``linear_scatter_add``."""
    if not isinstance(h, torch.Tensor) or h.dim() < 1:
        raise ValueError(f"h must be a tensor [..., m] with at least 1 dim, got {_shape(h)}")
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise ValueError(f"weight must be a 2-D tensor [k, m], got {_shape(weight)}")
    if not isinstance(residual, torch.Tensor) or residual.dim() != h.dim():
        raise ValueError(f"residual must be a tensor [..., d] with the {h.dim()} dims of h, got {_shape(residual)}")
    _check_common({"h": h, "weight": weight, "residual": residual}, index, bias, weight.shape[0])
    if weight.shape[1] != h.shape[-1]:
        raise ValueError(f"weight {tuple(weight.shape)} must be [k, m={h.shape[-1]}] (m = h.shape[-1])")
    if weight.shape[0] != index.shape[0]:
        raise ValueError(f"index {tuple(index.shape)} must be [k={weight.shape[0]}] (k = weight.shape[0])")
    if residual.shape[:-1] != h.shape[:-1]:
        raise ValueError(f"residual {tuple(residual.shape)} must have the leading dims of h {tuple(h.shape)}")
    _check_index_values(index, residual.shape[-1], distinct=True)


def gather_linear_reference(x, index, weight, bias=None) -> torch.Tensor:
    """``x[..., index] @ weight.T (+ bias)`` in plain torch (module docstring)."""
    _check_gather_args(x, index, weight, bias)
    return F.linear(torch.index_select(x, -1, index.long()), weight, bias)


def linear_scatter_add_reference(h, weight, index, residual, bias=None) -> torch.Tensor:
    """``residual`` with ``[..., index] += h @ weight.T (+ bias)`` in plain torch; a new tensor."""
    _check_scatter_args(h, weight, index, residual, bias)
    return residual.index_add(-1, index.long(), F.linear(h, weight, bias))


def _triton_supports(*tensors) -> str | None:
    for name, t in tensors:
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype not in TRITON_DTYPES:
            return f"{name} dtype {t.dtype} (supported: fp32, fp16, bf16)"
        if name == "index" and isinstance(t, torch.Tensor) and t.dtype not in INDEX_DTYPES:
            return f"index dtype {t.dtype} (supported: int32, int64)"
    return None


def gather_linear_supports(x, index, weight, bias=None) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    return _triton_supports(("x", x), ("index", index), ("weight", weight), ("bias", bias))


def linear_scatter_add_supports(h, weight, index, residual, bias=None) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    return _triton_supports(("h", h), ("weight", weight), ("index", index), ("residual", residual), ("bias", bias))


if triton is not None:

    @triton.jit
    def _gather_gemm_kernel(
        a_ptr,
        w_ptr,
        idx_ptr,
        bias_ptr,
        out_ptr,
        M,
        N,
        K,
        n_blocks_n,
        sa_m,
        sa_k,
        sw_n,
        sw_k,
        s_idx,
        so_m,
        so_n,
        GATHER_A: tl.constexpr,
        SCATTER_OUT: tl.constexpr,
        HAS_BIAS: tl.constexpr,
        PRECISION: tl.constexpr,
        UPCAST: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_K: tl.constexpr,
    ):
        # acc[BM, BN] = sum_k A[rows, col(k)] * W[cols, k] with col(k) = idx[k] (GATHER_A) or k.
        # Epilogue: store at out[rows, cols], or (SCATTER_OUT) add the dtype-rounded tile into
        # out[rows, idx[cols]] (distinct indices: each element has one writer).
        pid = tl.program_id(0)
        pid_m = pid // n_blocks_n
        pid_n = pid % n_blocks_n
        rm = pid_m * BLOCK_M + tl.arange(0, BLOCK_M)
        rn = pid_n * BLOCK_N + tl.arange(0, BLOCK_N)
        m_ok = rm < M
        n_ok = rn < N
        rm64 = rm.to(tl.int64)
        rn64 = rn.to(tl.int64)
        acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
        for k0 in range(0, K, BLOCK_K):
            rk = k0 + tl.arange(0, BLOCK_K)
            k_ok = rk < K
            if GATHER_A:
                col = tl.load(idx_ptr + rk.to(tl.int64) * s_idx, mask=k_ok, other=0).to(tl.int64)
            else:
                col = rk.to(tl.int64)
            a = tl.load(
                a_ptr + rm64[:, None] * sa_m + col[None, :] * sa_k,
                mask=m_ok[:, None] & k_ok[None, :],
                other=0.0,
            )
            w = tl.load(
                w_ptr + rn64[None, :] * sw_n + rk.to(tl.int64)[:, None] * sw_k,
                mask=k_ok[:, None] & n_ok[None, :],
                other=0.0,
            )
            if UPCAST:  # the interpreter's NumPy dot has no bf16: multiply in fp32 (exact products)
                a = a.to(tl.float32)
                w = w.to(tl.float32)
            acc = tl.dot(a, w, acc, input_precision=PRECISION)
        if HAS_BIAS:
            acc += tl.load(bias_ptr + rn64, mask=n_ok, other=0.0).to(tl.float32)[None, :]
        o_ty = out_ptr.dtype.element_ty
        ok = m_ok[:, None] & n_ok[None, :]
        if SCATTER_OUT:
            dst = tl.load(idx_ptr + rn64 * s_idx, mask=n_ok, other=0).to(tl.int64)
            ptrs = out_ptr + rm64[:, None] * so_m + dst[None, :] * so_n
            res = tl.load(ptrs, mask=ok, other=0.0).to(tl.float32)
            y = acc.to(o_ty).to(tl.float32)  # the reference rounds F.linear's output first
            tl.store(ptrs, (res + y).to(o_ty), mask=ok)
        else:
            tl.store(out_ptr + rm64[:, None] * so_m + rn64[None, :] * so_n, acc.to(o_ty), mask=ok)


def _block(size: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(size, 1))))


def _launch(a, w, index, bias, out, gather_a: bool, scatter_out: bool) -> None:
    """a [M, K'] (gathered through index when gather_a), w [N, K], out [M, N or d]."""
    M = a.shape[0]
    N, K = w.shape
    if M == 0 or N == 0:
        return
    interp = a.device.type != "cuda"
    # small tiles in the interpreter (it is slow per element); tensor-core sized tiles on the GPU
    block_m = _block(M, 16, 32 if interp else 64)
    block_n = _block(N, 16, 32 if interp else 128)
    block_k = _block(K, 16, 32)
    # fp32: IEEE products unless torch allows TF32 (as F.linear); fp16/bf16 ignore the setting
    ieee = interp or (a.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32)
    precision = "ieee" if ieee else "tf32"
    n_blocks_n = triton.cdiv(N, block_n)
    grid = (triton.cdiv(M, block_m) * n_blocks_n,)
    _gather_gemm_kernel[grid](
        a,
        w,
        index,
        bias if bias is not None else out,
        out,
        M,
        N,
        K,
        n_blocks_n,
        a.stride(0),
        a.stride(1),
        w.stride(0),
        w.stride(1),
        index.stride(0),
        out.stride(0),
        out.stride(1),
        GATHER_A=gather_a,
        SCATTER_OUT=scatter_out,
        HAS_BIAS=bias is not None,
        PRECISION=precision,
        UPCAST=interp and a.dtype == torch.bfloat16,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_K=block_k,
        num_warps=4,
    )


def _triton_ready(name: str, t: torch.Tensor, reason: str | None) -> None:
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if t.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error(name, t.device))
    if reason is not None:
        raise ValueError(f"{name} (Triton): unsupported input: {reason}")


def _rows(t: torch.Tensor) -> torch.Tensor:
    """``[..., c] -> [rows, c]`` without a copy where the strides allow."""
    return t.reshape(math.prod(t.shape[:-1]), t.shape[-1])


def gather_linear_triton(x, index, weight, bias=None) -> torch.Tensor:
    """``x[..., index] @ weight.T (+ bias)`` by the gather-GEMM Triton kernel; contiguous result."""
    _check_gather_args(x, index, weight, bias)
    _triton_ready("gather_linear", x, gather_linear_supports(x, index, weight, bias))
    x2 = _rows(x)
    out = torch.empty(x2.shape[0], weight.shape[0], dtype=x.dtype, device=x.device)
    _launch(x2, weight, index, bias, out, gather_a=True, scatter_out=False)
    return out.reshape(*x.shape[:-1], weight.shape[0])


def linear_scatter_add_triton(h, weight, index, residual, bias=None) -> torch.Tensor:
    """``residual`` with ``[..., index] += h @ weight.T (+ bias)`` by the scatter-epilogue GEMM; a new tensor."""
    _check_scatter_args(h, weight, index, residual, bias)
    _triton_ready("linear_scatter_add", h, linear_scatter_add_supports(h, weight, index, residual, bias))
    out = residual.clone(memory_format=torch.contiguous_format)
    _launch(_rows(h), weight, index, bias, _rows(out), gather_a=False, scatter_out=True)
    return out


def gather_linear(x, index, weight, bias=None, *, backend: str | None = None) -> torch.Tensor:
    """``x[..., index] @ weight.T (+ bias)``: ``x [..., d]``, ``index [k]``, ``weight [n, k]`` -> ``[..., n]``.

    ``backend`` (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_gather_args(x, index, weight, bias)
    args = (x, index, weight) if bias is None else (x, index, weight, bias)
    return dispatch("gather_linear", *args, backend=backend)(*args)


def linear_scatter_add(h, weight, index, residual, bias=None, *, backend: str | None = None) -> torch.Tensor:
    """``residual`` with ``[..., index] += h @ weight.T (+ bias)`` (a new tensor): ``h [..., m]``,
    ``weight [k, m]``, ``index [k]`` (distinct), ``residual [..., d]``.

    ``backend`` (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_scatter_args(h, weight, index, residual, bias)
    args = (h, weight, index, residual) if bias is None else (h, weight, index, residual, bias)
    return dispatch("linear_scatter_add", *args, backend=backend)(*args)


def _shapes(device: torch.device) -> tuple[torch.dtype, list[tuple[int, int, int, int]]]:
    # (tokens, d, k kept of d, n): SmolLM2-135M-like (d=576, ~80% kept, MLP 1536) and on CUDA a
    # LLaMA-2-7B-like layer (d=4096, 75% kept, MLP 11008), prefill and a decode batch.
    if device.type == "cuda":
        return torch.float16, [(2048, 576, 456, 1536), (2048, 4096, 3072, 11008), (16, 4096, 3072, 11008)]
    return torch.float32, [(256, 576, 456, 1536)]


def _bench_inputs(tokens, d, k, n, dtype, device):
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(tokens, d, generator=g)
    index = torch.randperm(d, generator=g)[:k]
    weight = torch.randn(n, k, generator=g) / k**0.5
    h = torch.randn(tokens, n, generator=g)
    w_out = torch.randn(k, n, generator=g) / n**0.5
    to = dict(device=device, dtype=dtype)
    return x.to(**to), index.to(device), weight.to(**to), h.to(**to), w_out.to(**to)


def _gather_bench_cases(device: torch.device) -> list[BenchCase]:
    dtype, shapes = _shapes(device)

    def maker(tokens, d, k, n):
        def make():
            x, index, weight, _, _ = _bench_inputs(tokens, d, k, n, dtype, device)
            return (x, index, weight), {}

        return make

    name = str(dtype).removeprefix("torch.")
    return [BenchCase(shape=f"t{t}d{d}k{k}n{n}", dtype=name, make=maker(t, d, k, n)) for t, d, k, n in shapes]


def _scatter_bench_cases(device: torch.device) -> list[BenchCase]:
    dtype, shapes = _shapes(device)

    def maker(tokens, d, k, n):
        def make():
            x, index, _, h, w_out = _bench_inputs(tokens, d, k, n, dtype, device)
            return (h, w_out, index, x), {}

        return make

    name = str(dtype).removeprefix("torch.")
    return [BenchCase(shape=f"t{t}m{n}k{k}d{d}", dtype=name, make=maker(t, d, k, n)) for t, d, k, n in shapes]


GATHER_KERNEL = register(
    Kernel(
        name="gather_linear",
        reference=gather_linear_reference,
        triton=gather_linear_triton if triton is not None else None,
        summary="x[..., index] @ W^T: GEMM whose A tiles are gathered through a column index table",
        paper="LLM compression comparison: DISP-LLM index_select before q/k/v and gate/up (§3.1, §9.1)",
        triton_supports=gather_linear_supports,
        bench_cases=_gather_bench_cases,
        auto_triton=False,  # slower than cuBLAS on an H200: see the module docstring
    )
)

SCATTER_KERNEL = register(
    Kernel(
        name="linear_scatter_add",
        reference=linear_scatter_add_reference,
        triton=linear_scatter_add_triton if triton is not None else None,
        summary="residual[..., index] += h @ W^T: GEMM with a scatter-add epilogue into the residual",
        paper="LLM compression comparison: DISP-LLM index_add after o_proj and down_proj (§3.1, §9.1)",
        triton_supports=linear_scatter_add_supports,
        bench_cases=_scatter_bench_cases,
        auto_triton=False,  # slower than cuBLAS on an H200: see the module docstring
    )
)
