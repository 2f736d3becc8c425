"""MYOW neighbour mining: fused cosine similarity, eligibility mask and top-k per anchor.

What
    :func:`masked_topk_cosine` returns, for every anchor ``i``, the ``k`` most cosine-similar
    *eligible* pool candidates::

        sim[i, j]  = <anchor[i], pool[j]> / (|anchor[i]| |pool[j]|)        (0 where a row is zero)
        ineligible = anchor_group[i] == pool_group[j]
                     and (exclude_window is None or |anchor_time[i] - pool_time[j]| <= exclude_window)
        values[i], indices[i] = the k largest sim[i, j] over eligible j, in decreasing order

    Ties go to the lower pool index.  Where fewer than ``k`` candidates are eligible the remaining
    slots hold ``value = -inf`` and ``index = -1``.  MYOW's uniform pick among the ``k`` is left to
    the caller: ``n = (indices >= 0).sum(1)``, slot ``floor(rand * n)`` of each row with ``n > 0``.

Why
    MYOW ("Mine Your Own vieW", Azabou et al. 2021; brief ``shared/papers/ssl_graph_neural.md`` §3.3)
    mines, for each anchor representation ``y_a = f_theta(x_a)`` (online encoder), its ``k`` nearest
    neighbours among the pool representations ``y_p = f_xi(x_p)`` (target encoder) by cosine
    distance, excluding candidates that are trivially close: the anchor's own trial (monkey reach,
    myow-neuro: ``exclude_window=None``, ``anchor_group``/``pool_group`` = trial ids) or the bins
    within ``+-neg_k = 150`` of the anchor (rodent sleep: one recording, so all groups equal, and
    ``anchor_time``/``pool_time`` = bin indices, ``exclude_window=150``).  One of the ``k``
    (``miner_k``: 1 for CIFAR, 3 or 5 for neural data) is then drawn uniformly as the mined view.
    Brief §5 maps this to one GEMM with the mask built by broadcasting trial ids and time stamps
    "fused into the GEMM epilogue" and, for large pools, "chunked GEMM with a running top-k": that
    is the Triton kernel here.  The ``B x P`` similarity and mask never exist in memory.

Memory (B = 512 anchors, P = 8,192 candidates; MYOW pools are 512 to 1,024, the large size is
headroom for pooled batches)
    ==============================================  ==========  ==============================
    what                                            size        reference / Triton
    ==============================================  ==========  ==============================
    similarity ``B x P`` fp32                       16.8 MB     reference only
    sort keys ``B x P`` int64 (+ int32 scratch)     50.3 MB     reference only
    ineligibility mask ``B x P`` bool               4.2 MB      reference only
    partial top-k keys ``B x S x K_PAD`` int64      <= 2.1 MB   Triton only (S pool splits)
    result ``B x k`` fp32 + int64                   <= 0.1 MB   both
    ==============================================  ==========  ==============================

    The reference processes the anchors in chunks of at most ``REFERENCE_CHUNK`` (2**22)
    similarity entries, so its temporaries stay near 100 MB whatever ``B`` is.

Layout convention
    * ``anchor [B, d]`` and ``pool [P, d]``: one floating dtype (fp32, fp16 or bf16 for Triton;
      the reference also takes fp64), any strides (Triton reads them through their strides, no
      copy).  ``d`` may be 0 (every similarity is then 0).  ``P < 2**31``.
    * ``anchor_group [B]``, ``pool_group [P]``: int64 or int32 group (trial) ids; any values.
    * ``anchor_time [B]``, ``pool_time [P]``: int64 or int32 time stamps (bins), required with
      ``exclude_window`` (a non-negative int) and rejected without it.
    * ``k``: an int ``>= 1``; it may exceed ``P`` (the surplus slots are padding).
    * All tensors on one device.  Result: ``values [B, k]`` float32 and ``indices [B, k]`` int64
      (contiguous).  Similarities are accumulated in fp32 (fp64 for fp64 inputs in the reference)
      and ranked as fp32 values; ``-0.0`` ranks as ``+0.0``.  Non-finite inputs give unspecified
      results.

Ranking keys
    Both implementations rank through one int64 key per candidate: the fp32 similarity's bits
    mapped to an order-preserving int32 (negative floats have their 31 low bits flipped) in the
    high word, ``2**31 - 1 - j`` in the low word.  Keys are distinct, so "largest key first" is
    exactly "largest similarity first, lower index on ties", whatever order a top-k or a reduction
    visits the candidates in.  Ineligible candidates get the key ``-2**63``, below every real key,
    and decode to ``(-inf, -1)``.

Implementations
    * reference (torch, any device): per chunk of anchors ``(a @ p.T) * inv|a| * inv|p|``,
      ``masked_fill`` of the broadcast ineligibility mask on the keys, ``torch.topk`` and decoding.
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): grid ``(cdiv(B, BLOCK_M), S)``.  Program
      ``(m, s)`` takes ``BLOCK_M`` anchors and streams over pool split ``s`` (a contiguous run of
      ``BLOCK_N``-candidate blocks; ``S = 1`` is one program per anchor block over the whole pool).
      It first computes the anchors' inverse norms, then for each pool block: ``tl.dot`` over
      ``d`` in ``BLOCK_D`` slices (fp32 accumulation; IEEE fp32 products unless torch allows TF32)
      while summing the candidates' squares, scales to cosines, builds the eligibility mask from
      the group ids (and times), turns the tile into keys and merges it into a running top-k of
      ``K_PAD = next_pow2(k)`` keys per anchor held in registers: repeat "take the tile's largest
      key; if it beats the running minimum, replace that slot" as many times as the most
      improving row of the block needs (at most ``k``; usually 0 once the running top-k has
      settled).  Each program writes its ``K_PAD`` keys; torch takes the top ``k`` of the ``S *
      K_PAD`` keys per anchor (exact: keys are distinct) and decodes them.  The splits exist for
      occupancy: ``B = 512`` anchors are only 16 anchor blocks, so on CUDA ``S`` is chosen to give
      about four programs per SM.  ``k <= 16`` (``MAX_TRITON_K``): ``triton_supports`` rejects
      larger ``k`` and ``auto`` falls back to the reference.

Measured
    Not yet timed on a GPU (no device was available when this kernel was written).  The
    :class:`~repro.kernels.Kernel` contract marks a kernel ``auto_triton=False`` only where it
    *measured* slower than the reference, so ``auto`` selects Triton on CUDA until a benchmark
    says otherwise.  Expectation, to be checked: the reference runs cuBLAS plus about ten
    elementwise passes and an int64 ``topk`` over ``B x P``; the kernel's GEMM is small next to
    its int64 selection work, and the selection is mostly skipped once the running top-k settles.
    ``python -m repro.bench kernels --kernel masked_topk_cosine`` times both (B = 512, P = 1,024 and
    8,192, d = 64 / 128 / 512, k = 1 / 5); set ``auto_triton=False`` below if Triton loses.
"""

from __future__ import annotations

import math

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
INDEX_DTYPES = (torch.int64, torch.int32)
MAX_TRITON_K = 16
MAX_POOL = 2**31 - 1  # the pool index lives in the low 31 bits of a key
REFERENCE_CHUNK = 2**22  # similarity entries per reference chunk (anchor rows x P)
KEY_MIN = -(2**63)  # ineligible / empty slot: below every real key
KEY_MAX = 2**63 - 1  # padding slot of the Triton running top-k: never replaced
_LOW_MASK = 2**32 - 1
_SIGN_FLIP = 0x7FFFFFFF


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check_ids(name: str, t, length: int, what: str) -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D integer tensor {what}, got {_shape(t)}")
    if t.dtype not in INDEX_DTYPES:
        raise ValueError(f"{name} must be an int64 or int32 tensor, got {t.dtype}")
    if t.shape[0] != length:
        raise ValueError(f"{name} {tuple(t.shape)} must be {what}")


def _is_int(x) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_args(anchor, pool, anchor_group, pool_group, k, anchor_time, pool_time, exclude_window) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit the layout in the module docstring."""
    if not isinstance(anchor, torch.Tensor) or anchor.dim() != 2:
        raise ValueError(f"anchor must be a 2-D tensor [B, d], got {_shape(anchor)}")
    if not anchor.is_floating_point():
        raise ValueError(f"anchor must be floating point, got {anchor.dtype}")
    b, d = anchor.shape
    if not isinstance(pool, torch.Tensor) or pool.dim() != 2 or pool.shape[1] != d:
        raise ValueError(f"pool must be a 2-D tensor [P, d={d}] (the width of anchor), got {_shape(pool)}")
    if pool.dtype != anchor.dtype:
        raise ValueError(f"pool dtype {pool.dtype} must equal anchor dtype {anchor.dtype}")
    p = pool.shape[0]
    if p > MAX_POOL:
        raise ValueError(f"pool has P={p} rows; at most {MAX_POOL} are supported")
    _check_ids("anchor_group", anchor_group, b, f"[B={b}] (the rows of anchor)")
    _check_ids("pool_group", pool_group, p, f"[P={p}] (the rows of pool)")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    tensors = {"anchor": anchor, "pool": pool, "anchor_group": anchor_group, "pool_group": pool_group}
    if exclude_window is None:
        if anchor_time is not None or pool_time is not None:
            raise ValueError(
                "anchor_time and pool_time are only used with exclude_window: pass exclude_window (the "
                "+-window in time steps) or leave them None (the whole group is then excluded)"
            )
    else:
        if not _is_int(exclude_window) or exclude_window < 0:
            raise ValueError(f"exclude_window must be None or an integer >= 0, got {exclude_window!r}")
        if anchor_time is None or pool_time is None:
            raise ValueError("anchor_time and pool_time are required with exclude_window")
        _check_ids("anchor_time", anchor_time, b, f"[B={b}] (the rows of anchor)")
        _check_ids("pool_time", pool_time, p, f"[P={p}] (the rows of pool)")
        tensors.update(anchor_time=anchor_time, pool_time=pool_time)
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"{', '.join(tensors)} must be on one device, got {sorted(map(str, devices))}")


def _empty_result(b: int, k: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.full((b, k), -math.inf, dtype=torch.float32, device=device)
    indices = torch.full((b, k), -1, dtype=torch.int64, device=device)
    return values, indices


def _keys(sim: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
    """int64 ranking keys of fp32 similarities ``sim [R, P]``; ``low [P]`` is ``2**31 - 1 - j``."""
    bits = sim.view(torch.int32)
    hi = torch.where(bits < 0, bits ^ _SIGN_FLIP, bits).masked_fill_(sim == 0, 0)  # -0.0 ranks as +0.0
    return hi.to(torch.int64).bitwise_left_shift_(32).bitwise_or_(low)


def _decode(keys: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values fp32, indices int64)`` of ranking keys; ``KEY_MIN`` gives ``(-inf, -1)``."""
    empty = keys == KEY_MIN
    hi = (keys >> 32).to(torch.int32)
    bits = torch.where(hi < 0, hi ^ _SIGN_FLIP, hi)
    values = bits.view(torch.float32).masked_fill(empty, -math.inf)
    indices = (MAX_POOL - (keys & _LOW_MASK)).masked_fill_(empty, -1)
    return values, indices


def _inv_norm(x: torch.Tensor) -> torch.Tensor:
    """``1 / |x_row|`` with 0 for a zero row (so a zero row's similarities are 0)."""
    ss = (x * x).sum(dim=1)
    return torch.where(ss > 0, ss.sqrt().reciprocal(), torch.zeros_like(ss))


def masked_topk_cosine_reference(
    anchor: torch.Tensor,
    pool: torch.Tensor,
    anchor_group: torch.Tensor,
    pool_group: torch.Tensor,
    k: int,
    *,
    anchor_time: torch.Tensor | None = None,
    pool_time: torch.Tensor | None = None,
    exclude_window: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [B, k], indices [B, k])`` by matmul, ``masked_fill`` and ``topk`` (module docstring)."""
    _check_args(anchor, pool, anchor_group, pool_group, k, anchor_time, pool_time, exclude_window)
    b, p = anchor.shape[0], pool.shape[0]
    device = anchor.device
    values, indices = _empty_result(b, k, device)
    kk = min(k, p)
    if b == 0 or kk == 0:
        return values, indices
    acc = torch.float64 if anchor.dtype == torch.float64 else torch.float32
    a, pl = anchor.to(acc), pool.to(acc)
    inv_a, inv_p = _inv_norm(a), _inv_norm(pl)
    pt = pl.T
    low = MAX_POOL - torch.arange(p, dtype=torch.int64, device=device)
    ag, pg = anchor_group.long(), pool_group.long()
    if exclude_window is not None:
        at, ptime = anchor_time.long(), pool_time.long()
    chunk = max(1, REFERENCE_CHUNK // p)
    for r0 in range(0, b, chunk):
        r1 = min(b, r0 + chunk)
        sim = ((a[r0:r1] @ pt) * inv_a[r0:r1, None] * inv_p[None, :]).to(torch.float32)
        ineligible = ag[r0:r1, None] == pg[None, :]
        if exclude_window is not None:
            ineligible &= (at[r0:r1, None] - ptime[None, :]).abs() <= exclude_window
        keys = _keys(sim, low).masked_fill_(ineligible, KEY_MIN)
        del sim, ineligible
        values[r0:r1, :kk], indices[r0:r1, :kk] = _decode(torch.topk(keys, kk, dim=1).values)
    return values, indices


def triton_supports(
    anchor: torch.Tensor,
    pool: torch.Tensor,
    anchor_group: torch.Tensor,
    pool_group: torch.Tensor,
    k: int,
    *,
    anchor_time: torch.Tensor | None = None,
    pool_time: torch.Tensor | None = None,
    exclude_window: int | None = None,
) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    for name, t in (("anchor", anchor), ("pool", pool)):
        if isinstance(t, torch.Tensor) and t.is_floating_point() and t.dtype not in TRITON_DTYPES:
            return f"{name} dtype {t.dtype} (supported: fp32, fp16, bf16)"
    if _is_int(k) and k > MAX_TRITON_K:
        return f"k={k} (the running top-k lives in registers: k <= {MAX_TRITON_K})"
    return None


if triton is not None:

    @triton.jit
    def _masked_topk_cosine_kernel(
        a_ptr,
        p_ptr,
        ag_ptr,
        pg_ptr,
        at_ptr,
        pt_ptr,
        out_ptr,
        B,
        P,
        D,
        window,
        split_len,
        key_min,
        key_max,
        s_a0,
        s_a1,
        s_p0,
        s_p1,
        s_ag,
        s_pg,
        s_at,
        s_pt,
        s_out,
        HAS_WINDOW: tl.constexpr,
        UPCAST: tl.constexpr,
        PRECISION: tl.constexpr,
        K: tl.constexpr,
        K_PAD: tl.constexpr,
        BLOCK_M: tl.constexpr,
        BLOCK_N: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # Running top-K (as distinct int64 keys, see the module docstring) of the eligible cosine
        # similarities of anchors rows[] against the pool candidates [n_start, n_end).
        pid_s = tl.program_id(1)
        rows = tl.program_id(0) * BLOCK_M + tl.arange(0, BLOCK_M)
        r_ok = rows < B
        rows64 = rows.to(tl.int64)
        dr = tl.arange(0, BLOCK_D)
        # anchors' inverse norms (0 for a zero row)
        ss_a = tl.zeros((BLOCK_M,), dtype=tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dc = d0 + dr
            a = tl.load(
                a_ptr + rows64[:, None] * s_a0 + dc.to(tl.int64)[None, :] * s_a1,
                mask=r_ok[:, None] & (dc < D)[None, :],
                other=0.0,
            ).to(tl.float32)
            ss_a += tl.sum(a * a, axis=1)
        inv_a = tl.where(ss_a > 0, tl.div_rn(1.0, tl.sqrt_rn(tl.where(ss_a > 0, ss_a, 1.0))), 0.0)
        ag = tl.load(ag_ptr + rows64 * s_ag, mask=r_ok, other=0).to(tl.int64)
        if HAS_WINDOW:
            at = tl.load(at_ptr + rows64 * s_at, mask=r_ok, other=0).to(tl.int64)
        slot = tl.arange(0, K_PAD)
        # empty slots hold key_min; padding slots (>= K) hold key_max and are never replaced
        best = tl.zeros((BLOCK_M, K_PAD), dtype=tl.int64) + tl.where(slot < K, key_min, key_max)[None, :]
        n_start = pid_s * split_len
        n_end = tl.minimum(P, n_start + split_len)
        for n0 in range(n_start, n_end, BLOCK_N):
            cols = n0 + tl.arange(0, BLOCK_N)
            c_ok = cols < n_end
            cols64 = cols.to(tl.int64)
            acc = tl.zeros((BLOCK_M, BLOCK_N), dtype=tl.float32)
            ss_p = tl.zeros((BLOCK_N,), dtype=tl.float32)
            for d0 in range(0, D, BLOCK_D):
                dc = d0 + dr
                d_ok = dc < D
                dc64 = dc.to(tl.int64)
                a = tl.load(
                    a_ptr + rows64[:, None] * s_a0 + dc64[None, :] * s_a1,
                    mask=r_ok[:, None] & d_ok[None, :],
                    other=0.0,
                )
                pt_tile = tl.load(  # [BLOCK_D, BLOCK_N]: the transposed pool block
                    p_ptr + cols64[None, :] * s_p0 + dc64[:, None] * s_p1,
                    mask=d_ok[:, None] & c_ok[None, :],
                    other=0.0,
                )
                pf = pt_tile.to(tl.float32)
                ss_p += tl.sum(pf * pf, axis=0)
                if UPCAST:  # the interpreter's NumPy dot has no bf16: multiply in fp32 (exact products)
                    a = a.to(tl.float32)
                    pt_tile = pf
                acc = tl.dot(a, pt_tile, acc, input_precision=PRECISION)
            inv_p = tl.where(ss_p > 0, tl.div_rn(1.0, tl.sqrt_rn(tl.where(ss_p > 0, ss_p, 1.0))), 0.0)
            sim = acc * inv_a[:, None] * inv_p[None, :]
            pg = tl.load(pg_ptr + cols64 * s_pg, mask=c_ok, other=0).to(tl.int64)
            same = ag[:, None] == pg[None, :]
            if HAS_WINDOW:
                pt = tl.load(pt_ptr + cols64 * s_pt, mask=c_ok, other=0).to(tl.int64)
                gap = at[:, None] - pt[None, :]
                same = same & (tl.where(gap < 0, -gap, gap) <= window)
            ok = r_ok[:, None] & c_ok[None, :] & (same == 0)
            # keys: order-preserving int32 of the fp32 similarity (-0.0 as +0.0) | 2**31 - 1 - j
            bits = sim.to(tl.int32, bitcast=True)
            hi = tl.where(sim == 0.0, 0, tl.where(bits < 0, bits ^ 0x7FFFFFFF, bits))
            key = (hi.to(tl.int64) << 32) | (2147483647 - cols).to(tl.int64)[None, :]
            key = tl.where(ok, key, key_min)
            # merge: only as many rounds as the most improving row needs (at most K)
            thr = tl.min(best, axis=1)
            gain = tl.sum((key > thr[:, None]).to(tl.int32), axis=1)
            steps = tl.minimum(tl.max(gain, axis=0), K)
            for _ in range(0, steps):
                top = tl.max(key, axis=1)
                low, low_slot = tl.min(best, axis=1, return_indices=True)
                take = top > low
                best = tl.where((slot[None, :] == low_slot[:, None]) & take[:, None], top[:, None], best)
                key = tl.where(key == top[:, None], key_min, key)
        out = tl.where(slot < K, best, key_min)
        ptrs = out_ptr + rows64[:, None] * s_out + pid_s * K_PAD + slot[None, :]
        tl.store(ptrs, out, mask=r_ok[:, None])


def _triton_ready(t: torch.Tensor, reason: str | None) -> None:
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if t.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error("masked_topk_cosine", t.device))
    if reason is not None:
        raise ValueError(f"masked_topk_cosine (Triton): unsupported input: {reason}")


def _power_of_two(name: str, value: int, lo: int = 1) -> None:
    if not _is_int(value) or value < lo or value & (value - 1):
        raise ValueError(f"{name} must be a power of two >= {lo}, got {value!r}")


def _block(size: int, lo: int, hi: int) -> int:
    return max(lo, min(hi, triton.next_power_of_2(max(size, 1))))


def masked_topk_cosine_triton(
    anchor: torch.Tensor,
    pool: torch.Tensor,
    anchor_group: torch.Tensor,
    pool_group: torch.Tensor,
    k: int,
    *,
    anchor_time: torch.Tensor | None = None,
    pool_time: torch.Tensor | None = None,
    exclude_window: int | None = None,
    block_m: int | None = None,
    block_n: int | None = None,
    block_d: int | None = None,
    pool_splits: int | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(values [B, k], indices [B, k])`` by the Triton kernel (module docstring).

    ``block_m`` / ``block_n`` / ``block_d`` (powers of two, ``>= 16`` for ``tl.dot``) are the
    anchors, candidates and feature columns per tile; defaults 32 / 64 / up to 64 on CUDA, 16 / 16
    / up to 32 in the interpreter.  ``pool_splits`` is the number of pool ranges scanned by separate
    programs (default: about four programs per SM on CUDA, 1 in the interpreter); it is clamped
    to the number of pool blocks.
    """
    _check_args(anchor, pool, anchor_group, pool_group, k, anchor_time, pool_time, exclude_window)
    _triton_ready(anchor, triton_supports(anchor, pool, anchor_group, pool_group, k))
    b, d = anchor.shape
    p = pool.shape[0]
    device = anchor.device
    if b == 0 or p == 0:
        return _empty_result(b, k, device)
    interp = device.type != "cuda"
    block_m = block_m if block_m is not None else 16 if interp else 32
    block_n = block_n if block_n is not None else 16 if interp else 64
    block_d = block_d if block_d is not None else _block(d, 16, 32 if interp else 64)
    _power_of_two("block_m", block_m, 16)
    _power_of_two("block_n", block_n, 16)
    _power_of_two("block_d", block_d, 16)
    m_blocks = triton.cdiv(b, block_m)
    n_blocks = triton.cdiv(p, block_n)
    if pool_splits is None:
        if interp:
            pool_splits = 1
        else:
            sms = torch.cuda.get_device_properties(device).multi_processor_count
            pool_splits = triton.cdiv(4 * sms, m_blocks)
    elif not _is_int(pool_splits) or pool_splits < 1:
        raise ValueError(f"pool_splits must be an integer >= 1, got {pool_splits!r}")
    blocks_per_split = triton.cdiv(n_blocks, max(1, min(pool_splits, n_blocks)))
    splits = triton.cdiv(n_blocks, blocks_per_split)  # no empty split
    k_pad = max(2, triton.next_power_of_2(k))
    partial = torch.empty(b, splits * k_pad, dtype=torch.int64, device=device)
    has_window = exclude_window is not None
    at = anchor_time if has_window else anchor_group  # never read without a window
    ptime = pool_time if has_window else pool_group
    # fp32: IEEE products unless torch allows TF32 (as the reference's matmul); fp16/bf16 ignore it
    ieee = interp or (anchor.dtype == torch.float32 and not torch.backends.cuda.matmul.allow_tf32)
    _masked_topk_cosine_kernel[(m_blocks, splits)](
        anchor,
        pool,
        anchor_group,
        pool_group,
        at,
        ptime,
        partial,
        b,
        p,
        d,
        int(exclude_window) if has_window else 0,
        blocks_per_split * block_n,
        KEY_MIN,
        KEY_MAX,
        anchor.stride(0),
        anchor.stride(1),
        pool.stride(0),
        pool.stride(1),
        anchor_group.stride(0),
        pool_group.stride(0),
        at.stride(0),
        ptime.stride(0),
        partial.stride(0),
        HAS_WINDOW=has_window,
        UPCAST=interp,
        PRECISION="ieee" if ieee else "tf32",
        K=k,
        K_PAD=k_pad,
        BLOCK_M=block_m,
        BLOCK_N=block_n,
        BLOCK_D=block_d,
        num_warps=4,
    )
    # keys are distinct (empty slots aside, which decode to padding): topk over the splits is exact
    values, indices = _decode(torch.topk(partial, k, dim=1).values)
    return values.contiguous(), indices.contiguous()


def masked_topk_cosine(
    anchor: torch.Tensor,
    pool: torch.Tensor,
    anchor_group: torch.Tensor,
    pool_group: torch.Tensor,
    k: int,
    *,
    anchor_time: torch.Tensor | None = None,
    pool_time: torch.Tensor | None = None,
    exclude_window: int | None = None,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``k`` most cosine-similar eligible pool rows per anchor: ``(values [B, k] fp32, indices [B, k] int64)``.

    Candidate ``j`` is ineligible for anchor ``i`` when ``anchor_group[i] == pool_group[j]`` and,
    with ``exclude_window``, ``|anchor_time[i] - pool_time[j]| <= exclude_window`` (without it the
    whole group, e.g. the anchor's trial, is excluded).  Decreasing similarity, lower index on
    ties; missing slots are ``(-inf, -1)``.  See the module docstring.  ``backend``
    (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_args(anchor, pool, anchor_group, pool_group, k, anchor_time, pool_time, exclude_window)
    args = (anchor, pool, anchor_group, pool_group, k)
    kwargs = {}
    if exclude_window is not None:
        kwargs = dict(anchor_time=anchor_time, pool_time=pool_time, exclude_window=exclude_window)
    return dispatch("masked_topk_cosine", *args, backend=backend, **kwargs)(*args, **kwargs)


# --- benchmarks ----------------------------------------------------------------------------------


def bench_inputs(
    b: int,
    p: int,
    d: int,
    k: int,
    dtype: torch.dtype,
    device: torch.device | str,
    window: int | None = None,
    seed: int = 0,
) -> tuple[tuple, dict]:
    """``(args, kwargs)`` for :func:`masked_topk_cosine`.

    Without ``window``: monkey-style trials of 12 bins (anchors and pool drawn from 64 trials);
    with it: rodent-style, one recording (all groups 0) and random bin times in ``[0, 4 * P)``.
    """
    g = torch.Generator(device="cpu").manual_seed(seed)
    anchor = torch.randn(b, d, generator=g)
    pool = torch.randn(p, d, generator=g)
    if window is None:
        ag = torch.randint(0, 64, (b,), generator=g)
        pg = torch.arange(p) // 12 % 64
        kwargs = {}
    else:
        ag, pg = torch.zeros(b, dtype=torch.long), torch.zeros(p, dtype=torch.long)
        at = torch.randint(0, 4 * p, (b,), generator=g)
        pt = torch.randint(0, 4 * p, (p,), generator=g)
        kwargs = dict(anchor_time=at.to(device), pool_time=pt.to(device), exclude_window=window)
    to = dict(device=device, dtype=dtype)
    return (anchor.to(**to), pool.to(**to), ag.to(device), pg.to(device), k), kwargs


def _bench_cases(device: torch.device) -> list[BenchCase]:
    # (B, P, d, k, dtype, window): MYOW's neural batch of 512 anchors against pools of 1,024
    # (myow-neuro: batch + positives) and 8,192; d = 64 (myow-neuro), 128 (myow monkey), 512 (CIFAR).
    if device.type == "cuda":
        shapes = [(512, p, d, k, torch.float32, None) for p in (1024, 8192) for d in (64, 128, 512) for k in (1, 5)]
        shapes += [(512, 8192, 128, 5, torch.bfloat16, None), (512, 8192, 32, 5, torch.float32, 150)]
    else:
        shapes = [(256, 1024, 64, 5, torch.float32, None), (128, 512, 32, 5, torch.float32, 150)]

    def maker(b, p, d, k, dtype, window):
        def make():
            return bench_inputs(b, p, d, k, dtype, device, window)

        return make

    return [
        BenchCase(
            shape=f"B{b}P{p}d{d}k{k}" + (f"w{w}" if w is not None else ""),
            dtype=str(dt).removeprefix("torch."),
            make=maker(b, p, d, k, dt, w),
        )
        for b, p, d, k, dt, w in shapes
    ]


KERNEL = register(
    Kernel(
        name="masked_topk_cosine",
        reference=masked_topk_cosine_reference,
        triton=masked_topk_cosine_triton if triton is not None else None,
        summary="MYOW view mining: cosine similarity GEMM, same-trial / time-window mask and a running "
        "top-k fused in one pass; the B x P similarity is never stored",
        paper="MYOW (Azabou et al. 2021): mined views among the k nearest eligible candidates (brief §3.3, §5)",
        triton_supports=triton_supports,
        bench_cases=_bench_cases,
        # not measured on a GPU yet: the contract's default (see "Measured" in the module docstring)
        auto_triton=True,
    )
)
