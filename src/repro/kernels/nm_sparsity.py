"""Wanda-style N:M pruning mask (the Wanda 2:4 baseline of the LLM compression comparison).

Wanda (Sun et al., 2023, "A Simple and Effective Pruning Approach for Large Language Models")
scores each weight of a linear layer ``W[out, in]`` by its magnitude times the norm of the input
feature it multiplies, ``score_ij = |W_ij| * ||X_j||_2``, with the norms taken over calibration
tokens.  Its N:M variant (2:4 is what sparse tensor cores accelerate) splits every row into groups
of ``m`` consecutive input columns and prunes the ``n`` lowest-scoring weights of each group.  The
LLM compression comparison uses it as the semi-structured baseline.

:func:`wanda_nm_mask` returns the **keep** mask (``True`` = kept; the Wanda code's ``W_mask`` is its
negation).  Exactly ``m - n`` weights are kept in every group.

Ties
    Among equal scores the weight with the lower column index is pruned first.  Formally, the rank
    of column ``j`` inside its group is ``#{k : s_k < s_j or (s_k == s_j and k < j)}`` and a weight
    is kept when its rank is ``>= n``.  Both implementations follow this rule, so their masks are
    identical, bit for bit.  Scores are computed in float32 (``|W|.float() * act_norm.float()``)
    for fp32, fp16 and bf16 weights alike.  Scores must not be NaN (the order of NaNs is unspecified).

Implementations
    * reference (torch, any device): a stable ascending sort of each group's scores; the first
      ``n`` positions of the sort are pruned.
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): one program per (block of rows, block of
      groups) loads a ``[rows, groups, m]`` tile of scores and ranks each entry by pairwise
      comparisons with the ``m`` entries of its group (``m`` is small, so this is ``m`` vector
      compare-and-adds), then stores ``rank >= n``.  One read of ``W`` and one byte written per
      weight; ``m`` up to :data:`TRITON_MAX_M`.

:func:`wanda_nm_mask` dispatches between them (see :mod:`repro.kernels`).
"""

from __future__ import annotations

import torch

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
TRITON_MAX_M = 32
_BLOCK_ROWS = 16
_BLOCK_COLS = 256  # columns per program (a whole number of groups)


def _check_args(weight: torch.Tensor, act_norm: torch.Tensor, n: int, m: int) -> None:
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must be a 2-D tensor [out, in], got {shape}")
    if not weight.is_floating_point():
        raise ValueError(f"weight must be floating point, got {weight.dtype}")
    if not isinstance(act_norm, torch.Tensor) or act_norm.dim() != 1 or act_norm.shape[0] != weight.shape[1]:
        shape = tuple(act_norm.shape) if isinstance(act_norm, torch.Tensor) else type(act_norm).__name__
        raise ValueError(f"act_norm must be a 1-D tensor of length in={weight.shape[1]}, got {shape}")
    if act_norm.device != weight.device:
        raise ValueError(f"act_norm is on {act_norm.device} but weight is on {weight.device}")
    if isinstance(n, bool) or isinstance(m, bool) or not isinstance(n, int) or not isinstance(m, int):
        raise ValueError(f"n and m must be integers, got n={n!r}, m={m!r}")
    if m < 1 or not 0 <= n <= m:
        raise ValueError(f"need m >= 1 and 0 <= n <= m, got n={n}, m={m}")
    if weight.shape[1] % m:
        raise ValueError(f"in={weight.shape[1]} (weight {tuple(weight.shape)}) is not divisible by m={m}")


def _scores(weight: torch.Tensor, act_norm: torch.Tensor) -> torch.Tensor:
    return weight.float().abs() * act_norm.float()


def wanda_nm_mask_reference(weight: torch.Tensor, act_norm: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep mask of Wanda N:M pruning in plain torch (stable sort per group; see the module docstring)."""
    _check_args(weight, act_norm, n, m)
    rows, cols = weight.shape
    score = _scores(weight, act_norm).view(rows, cols // m, m)
    order = torch.sort(score, dim=-1, stable=True).indices  # ascending; equal scores keep column order
    keep = torch.ones(rows, cols // m, m, dtype=torch.bool, device=weight.device)
    keep.scatter_(-1, order[..., :n], False)
    return keep.view(rows, cols)


def triton_supports(weight, act_norm, n: int = 2, m: int = 4) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    if isinstance(weight, torch.Tensor) and weight.dtype not in TRITON_DTYPES:
        return f"weight dtype {weight.dtype} (supported: fp32, fp16, bf16)"
    if isinstance(act_norm, torch.Tensor) and act_norm.dtype not in TRITON_DTYPES:
        return f"act_norm dtype {act_norm.dtype} (supported: fp32, fp16, bf16)"
    if isinstance(m, int) and m > TRITON_MAX_M:
        return f"m={m} > {TRITON_MAX_M} (the kernel unrolls its m x m comparisons)"
    return None


if triton is not None:

    @triton.jit
    def _wanda_nm_mask_kernel(
        w_ptr,
        a_ptr,
        out_ptr,
        n_rows,
        n_groups,
        stride_w,
        stride_out,
        N: tl.constexpr,
        M: tl.constexpr,
        M_PAD: tl.constexpr,
        BLOCK_R: tl.constexpr,
        BLOCK_G: tl.constexpr,
    ):
        # Tile [BLOCK_R rows, BLOCK_G groups, M_PAD columns of a group]; the last two dims are
        # contiguous in memory (column = group * M + j).
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        groups = tl.program_id(1) * BLOCK_G + tl.arange(0, BLOCK_G)
        j = tl.arange(0, M_PAD)
        cols = groups[:, None] * M + j[None, :]
        col_ok = (groups[:, None] < n_groups) & (j[None, :] < M)
        ok = (rows[:, None, None] < n_rows) & col_ok[None, :, :]
        rows64 = rows.to(tl.int64)[:, None, None]

        a = tl.load(a_ptr + cols, mask=col_ok, other=0.0).to(tl.float32)
        w = tl.load(w_ptr + rows64 * stride_w + cols[None, :, :], mask=ok, other=0.0).to(tl.float32)
        s = tl.abs(w) * a[None, :, :]

        # rank_j = #{k : s_k < s_j or (s_k == s_j and k < j)}; k runs over the M real columns only.
        # s_k is picked out of the tile in registers (a sum of one term and zeros, exact).
        j3 = j[None, None, :]
        rank = tl.zeros([BLOCK_R, BLOCK_G, M_PAD], dtype=tl.int32)
        for k in tl.static_range(M):
            s_k = tl.sum(tl.where(j3 == k, s, 0.0), axis=2)[:, :, None]
            before = (s_k < s) | ((s_k == s) & (j3 > k))
            rank += before.to(tl.int32)

        keep = (rank >= N).to(tl.int8)
        tl.store(out_ptr + rows64 * stride_out + cols[None, :, :], keep, mask=ok)


def wanda_nm_mask_triton(weight: torch.Tensor, act_norm: torch.Tensor, n: int = 2, m: int = 4) -> torch.Tensor:
    """Keep mask of Wanda N:M pruning computed by the Triton kernel (see the module docstring)."""
    _check_args(weight, act_norm, n, m)
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if weight.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error("wanda_nm_mask", weight.device))
    reason = triton_supports(weight, act_norm, n, m)
    if reason is not None:
        raise ValueError(f"wanda_nm_mask_triton: unsupported input: {reason}")
    weight = weight.contiguous()
    act_norm = act_norm.contiguous()
    rows, cols = weight.shape
    out = torch.empty(rows, cols, dtype=torch.uint8, device=weight.device)
    if out.numel():
        m_pad = triton.next_power_of_2(m)
        block_g = max(1, _BLOCK_COLS // m_pad)
        groups = cols // m
        grid = (triton.cdiv(rows, _BLOCK_ROWS), triton.cdiv(groups, block_g))
        _wanda_nm_mask_kernel[grid](
            weight,
            act_norm,
            out,
            rows,
            groups,
            weight.stride(0),
            out.stride(0),
            N=n,
            M=m,
            M_PAD=m_pad,
            BLOCK_R=_BLOCK_ROWS,
            BLOCK_G=block_g,
            num_warps=4,
        )
    return out.view(torch.bool)


def wanda_nm_mask(
    weight: torch.Tensor, act_norm: torch.Tensor, n: int = 2, m: int = 4, *, backend: str | None = None
) -> torch.Tensor:
    """Keep mask ``[out, in]`` of Wanda N:M pruning: per group of ``m`` input columns, prune the ``n`` lowest
    ``|W_ij| * act_norm_j`` (ties: lower column index pruned first).

    ``backend`` (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_args(weight, act_norm, n, m)
    return dispatch("wanda_nm_mask", weight, act_norm, n, m, backend=backend)(weight, act_norm, n, m)


def apply_mask_(weight: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Zero ``weight`` in place where ``mask`` is False (works on parameters that require grad); returns it."""
    if mask.shape != weight.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} does not match weight shape {tuple(weight.shape)}")
    if mask.dtype != torch.bool:
        raise ValueError(f"mask must be a bool tensor, got {mask.dtype}")
    with torch.no_grad():
        weight.masked_fill_(~mask.to(weight.device), 0)
    return weight


def nm_check(mask: torch.Tensor, n: int = 2, m: int = 4) -> bool:
    """True when every group of ``m`` consecutive columns of each row of ``mask`` keeps exactly ``m - n``."""
    if mask.dim() != 2:
        raise ValueError(f"mask must be 2-D [out, in], got shape {tuple(mask.shape)}")
    if m < 1 or not 0 <= n <= m:
        raise ValueError(f"need m >= 1 and 0 <= n <= m, got n={n}, m={m}")
    if mask.shape[1] % m:
        raise ValueError(f"in={mask.shape[1]} is not divisible by m={m}")
    kept = mask.reshape(mask.shape[0], -1, m).sum(dim=-1, dtype=torch.int64)
    return bool((kept == m - n).all())


def _bench_cases(device: torch.device) -> list[BenchCase]:
    if device.type == "cuda":
        shapes, dtype = [(4096, 4096), (11008, 4096), (4096, 11008)], torch.float16
    else:
        shapes, dtype = [(256, 1024), (1024, 1024)], torch.float32

    def maker(rows: int, cols: int):
        def make():
            g = torch.Generator(device="cpu").manual_seed(0)
            w = torch.randn(rows, cols, generator=g).to(device=device, dtype=dtype)
            a = torch.rand(cols, generator=g).to(device=device, dtype=torch.float32)
            return (w, a, 2, 4), {}

        return make

    name = str(dtype).removeprefix("torch.")
    return [BenchCase(shape=f"{r}x{c}", dtype=name, make=maker(r, c)) for r, c in shapes]


KERNEL = register(
    Kernel(
        name="wanda_nm_mask",
        reference=wanda_nm_mask_reference,
        triton=wanda_nm_mask_triton if triton is not None else None,
        summary="Wanda N:M pruning keep-mask (score |W|*||X||, n lowest of every m columns pruned)",
        paper="LLM compression comparison: Wanda 2:4 baseline",
        triton_supports=triton_supports,
        bench_cases=_bench_cases,
    )
)
