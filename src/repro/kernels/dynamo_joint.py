"""DynaMo's fused joint builder: outer product, co-occurrence lookup, normalisation, static zeroing, penalty.

What
    :func:`dynamo_joint` builds, for one decoding step at one back-off level ``n`` (2 or 3), the two
    grids over the ``k**n`` combinations of the heads' top-k candidates that
    :func:`repro.dynamo.sampling.thresholded_joint` needs around its adaptive (Otsu) step::

        J[a, b, ..]  = probs[0, a] * probs[1, b] * ... * ratio(ids[0, a], ids[1, b], ..) ** alpha_c
        J            = J / J.sum()                  (an all-zero grid stays all zeros)
        J[J < zero_bar] = 0                          (compared in float64, as the reference does)
        factor[a, ..] = penalty ** (number of positions i whose token ids[i, .] is in the context)

    ``ratio`` is the co-occurrence ratio of the packed n-gram key ``sum_i ids_i * V**(n-1-i)`` found
    by binary search in the sorted ``keys`` (0 when absent; ``alpha_c == 0``: no lookup at all).

The split (why two outputs)
    ``thresholded_joint`` runs: joint -> static zeroing -> Otsu on the (blurred) statically zeroed
    joint -> ``weights / repetition_factor``.  Otsu sits between the static zeroing and the penalty,
    so the kernel stops before it and returns ``(joint, factor)``: ``joint`` is the statically zeroed
    joint (what Otsu and the blur read) and ``factor`` is the divisor ``repetition_factor(ids, n,
    context, penalty, "context")``.  :func:`finish_level` is the rest of ``thresholded_joint``
    (blur, Otsu, ``sample_from``, ``weights / factor``), so::

        finish_level(*dynamo_joint(probs[:n], ids[:n], keys_n, ratios_n, V, alpha_c,
                                   context_membership(context_ids, V), penalty, zeroing_bar), config)
          == thresholded_joint(probs, ids, n, context_ids, table, config)

    exactly with the reference backend (``tests/test_kernels_dynamo_joint.py`` checks it with
    ``torch.equal``), and up to float32 rounding with Triton.

Why
    Brief ``shared/papers/dynamo.md`` §4.2-§4.4 and §7 ("Fused joint builder"): per step the
    reference materialises the ``k**n`` candidate n-grams ``(k,)*n + (n,)``, packs them, runs
    ``torch.searchsorted`` over ~1e6 keys, gathers, then a chain of elementwise ops and a
    ``torch.isin``: a dozen launches over <= 125,000 cells, so the step is launch-bound.  The Triton
    version does it in two launches and never materialises the candidate grid.

Layout convention
    * ``probs [n, k]`` float32: the first ``n`` heads' top-k probabilities (pass ``probs[:n]``).
    * ``ids [n, k]`` int64 or int32 token ids, values in ``[0, vocab_size)`` (checked when ``ids`` is
      on the CPU; on CUDA an out-of-range id is treated as the reference's lookup treats it: unseen
      and not in the context).
    * ``keys [m]`` int64, the order-``n`` table's packed keys (``CooccurrenceTable.orders[n][0]``),
      sorted ascending and unique (checked when on the CPU); ``ratios [m]`` float32 (``m`` may be 0).
      For ``cooccurrence_mode="binary"`` pass ``torch.ones_like(ratios)``.
    * ``vocab_size`` V (``vocab_size ** n`` must fit in int64), ``alpha_c >= 0`` (finite).
    * ``context_mask [V]`` bool: ``context_mask[t]`` is True when token ``t`` occurs in the context
      (:func:`context_membership` builds it from the context ids; a generation loop can keep one
      and set ``mask[new_tokens] = True`` per step).  A boolean mask rather than sorted context ids:
      membership is one gather per position (no second binary search), and the mask is updated in
      place as tokens are appended (no per-step sort).
    * ``penalty > 0`` (finite), the CTRL-style repetition penalty, scope ``"context"`` only.
    * ``zero_bar`` (finite): the static zeroing threshold (``SamplingConfig.static_bars(n)[0]``).
    * Returns ``(joint, factor)``, both float32 ``(k,)*n``, contiguous.

Implementations
    * reference (torch, any device): :func:`repro.dynamo.sampling.joint_distribution` with a
      :class:`repro.dynamo.cooccurrence.CooccurrenceTable` wrapping ``(keys, ratios)`` (its
      ``lookup``: ``searchsorted``), the static zeroing line of ``thresholded_joint``, and
      :func:`repro.dynamo.sampling.repetition_factor` with the context ids ``nonzero(context_mask)``
      (a host sync on CUDA, like the reference's other data-dependent steps).
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): two kernels, no atomics, no host sync.
      Pass 1, one program per tile of ``BLOCK`` cells (row-major, last axis fastest): cell -> the
      ``n`` grid indices, gather the ``n`` probabilities and ids, their product (in the reference's
      left-to-right order), the packed key (Horner, int64), a lower-bound binary search in ``keys``
      of ``ceil(log2(m + 1))`` iterations, the ratio (0 on a miss), ``ratio ** alpha_c`` (``alpha_c``
      1: the ratio itself, 0.5: ``sqrt_rn``, else ``exp2(alpha_c * log2(ratio))``), the membership
      count of the ``n`` positions (one gather each in ``context_mask``) and the factor
      ``penalty ** count`` (from a table of the ``n + 1`` powers computed by ``torch.pow`` exactly
      as ``repetition_factor`` does, so the factor equals the CPU reference bit for bit); it stores
      the unnormalised weights, the factor, and the tile's partial sum.  Pass 2, same tiling: every
      program sums all partial sums itself (same order in every program, so one total for the grid),
      divides (``div_rn``; an all-zero grid stays zero) and zeroes ``x < zero_bar``.  The float64
      comparison of the reference is reproduced in float32 by comparing against the smallest
      float32 >= ``zero_bar``.  The number of tiles is capped at 1024 (larger tiles for larger
      grids), so pass 2's sum is one short vector load.
"""

from __future__ import annotations

import functools
import math
import numbers

import torch

from repro.dynamo.cooccurrence import CooccurrenceTable
from repro.dynamo.sampling import (
    LevelJoint,
    SamplingConfig,
    joint_distribution,
    repetition_factor,
)
from repro.dynamo.sampling import (
    finish_level as _finish_level,
)
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

ID_DTYPES = (torch.int64, torch.int32)
TRITON_ORDERS = (2, 3)
_INT64_MAX = 2**63 - 1
_MAX_TILES = 1024  # pass 2 sums at most this many partial sums per program


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _is_real(x) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


def _check_args(probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit the layout in the module docstring."""
    if not isinstance(probs, torch.Tensor) or probs.dim() != 2:
        raise ValueError(f"probs must be a 2-D tensor [n, k], got {_shape(probs)}")
    if probs.dtype != torch.float32:
        raise ValueError(f"probs must be float32, got {probs.dtype}")
    n, k = probs.shape
    if n < 2 or k < 1:
        raise ValueError(f"probs {tuple(probs.shape)} must be [n >= 2, k >= 1] (one row per head of the n-gram)")
    if not isinstance(ids, torch.Tensor) or ids.shape != probs.shape:
        raise ValueError(f"ids {_shape(ids)} must be a tensor with the shape of probs {tuple(probs.shape)}")
    if ids.dtype not in ID_DTYPES:
        raise ValueError(f"ids must be an int64 or int32 tensor, got {ids.dtype}")
    if not isinstance(keys, torch.Tensor) or keys.dim() != 1 or keys.dtype != torch.int64:
        raise ValueError(f"keys must be a 1-D int64 tensor [m], got {_shape(keys)} {getattr(keys, 'dtype', '')}")
    if not isinstance(ratios, torch.Tensor) or ratios.shape != keys.shape or ratios.dtype != torch.float32:
        raise ValueError(
            f"ratios must be a float32 tensor with the shape of keys {tuple(keys.shape)}, "
            f"got {_shape(ratios)} {getattr(ratios, 'dtype', '')}"
        )
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, numbers.Integral) or vocab_size < 1:
        raise ValueError(f"vocab_size must be a positive integer, got {vocab_size!r}")
    if int(vocab_size) ** n - 1 > _INT64_MAX:
        raise ValueError(f"vocab_size**n = {vocab_size}**{n} does not fit in int64 keys")
    if not _is_real(alpha_c) or alpha_c < 0:
        raise ValueError(f"alpha_c must be a finite number >= 0, got {alpha_c!r}")
    if (
        not isinstance(context_mask, torch.Tensor)
        or context_mask.dtype != torch.bool
        or tuple(context_mask.shape) != (vocab_size,)
    ):
        got = f"{_shape(context_mask)} {getattr(context_mask, 'dtype', '')}"
        raise ValueError(f"context_mask must be a bool tensor [vocab_size={vocab_size}], got {got}")
    if not _is_real(penalty) or penalty <= 0:
        raise ValueError(f"penalty must be a finite number > 0, got {penalty!r}")
    if not _is_real(zero_bar):
        raise ValueError(f"zero_bar must be a finite number, got {zero_bar!r}")
    tensors = {"probs": probs, "ids": ids, "keys": keys, "ratios": ratios, "context_mask": context_mask}
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"{', '.join(tensors)} must be on one device, got {sorted(map(str, devices))}")
    if ids.device.type == "cpu" and ids.numel():
        lo, hi = int(ids.min()), int(ids.max())
        if lo < 0 or hi >= vocab_size:
            raise ValueError(f"ids values must lie in [0, vocab_size={vocab_size}), got min {lo}, max {hi}")
    if keys.device.type == "cpu" and keys.numel() > 1 and not bool((keys[1:] > keys[:-1]).all()):
        raise ValueError("keys must be sorted ascending and unique (a CooccurrenceTable order's keys)")


def context_membership(context_ids: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """``context_mask [vocab_size]`` bool: True at every token of ``context_ids`` (ids outside
    ``[0, vocab_size)`` are ignored, as ``repetition_factor`` never matches them against candidates)."""
    if not isinstance(context_ids, torch.Tensor) or context_ids.dtype.is_floating_point:
        raise ValueError(f"context_ids must be an integer tensor, got {_shape(context_ids)}")
    ids = context_ids.reshape(-1).long()
    mask = torch.zeros(vocab_size, dtype=torch.bool, device=context_ids.device)
    mask[ids[(ids >= 0) & (ids < vocab_size)]] = True
    return mask


def _table(keys: torch.Tensor, ratios: torch.Tensor, n: int, vocab_size: int) -> CooccurrenceTable:
    """A one-order :class:`CooccurrenceTable` around ``(keys, ratios)``, for its ``lookup``."""
    return CooccurrenceTable(
        vocab_size=int(vocab_size),
        unigram_counts=torch.zeros(0, dtype=torch.long),
        total_tokens=0,
        orders={n: (keys, ratios)},
        ngram_totals={n: 0},
        min_count=1,
        max_entries=None,
        kept={n: int(keys.numel())},
    )


def dynamo_joint_reference(
    probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(statically zeroed joint, repetition factor)`` with the functions of :mod:`repro.dynamo.sampling`."""
    _check_args(probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar)
    n = probs.shape[0]
    table = _table(keys, ratios, n, vocab_size)
    joint = joint_distribution(probs, ids, n, table, alpha_c, "ratio")
    # the static zeroing line of thresholded_joint (compared in float64)
    joint = torch.where(joint.double() < zero_bar, torch.zeros_like(joint), joint)
    context_ids = torch.nonzero(context_mask).reshape(-1)
    factor = repetition_factor(ids, n, context_ids, penalty, "context", dtype=joint.dtype)
    return joint, factor


def finish_level(joint: torch.Tensor, factor: torch.Tensor, config: SamplingConfig) -> LevelJoint:
    """The rest of :func:`repro.dynamo.sampling.thresholded_joint` after :func:`dynamo_joint`.

    ``joint``: the statically zeroed joint (``zero_bar = config.static_bars(n)[0]``), ``factor``: the
    repetition divisor (``penalty = config.repetition_penalty``).  Blur, Otsu, ``sample_from`` and the
    penalty exactly as ``thresholded_joint`` applies them; ``n = joint.dim()``.
    """
    if not isinstance(joint, torch.Tensor) or joint.dim() < 2:
        raise ValueError(f"joint must be a (k,)*n tensor with n >= 2, got {_shape(joint)}")
    if not isinstance(factor, torch.Tensor) or factor.shape != joint.shape:
        raise ValueError(f"factor {_shape(factor)} must have the shape of joint {tuple(joint.shape)}")
    if config.repetition_penalty != 1 and config.repetition_scope != "context":
        raise ValueError(
            f"config.repetition_scope={config.repetition_scope!r}: the fused joint builder's factor is for scope 'context'"
        )
    return _finish_level(joint, factor, config)


def triton_supports(probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    if isinstance(probs, torch.Tensor) and probs.dim() == 2 and probs.shape[0] not in TRITON_ORDERS:
        return f"n = {probs.shape[0]} (supported: {TRITON_ORDERS})"
    if isinstance(probs, torch.Tensor) and probs.dtype != torch.float32:
        return f"probs dtype {probs.dtype} (supported: float32)"
    if isinstance(ids, torch.Tensor) and ids.dtype not in ID_DTYPES:
        return f"ids dtype {ids.dtype} (supported: int64, int32)"
    return None


if triton is not None:

    @triton.jit
    def _joint_pass1(
        probs_ptr,
        ids_ptr,
        keys_ptr,
        ratios_ptr,
        mask_ptr,
        w_ptr,
        factor_ptr,
        partial_ptr,
        K,
        cells,
        m,
        V,
        iters,
        alpha,
        pw0,
        pw1,
        pw2,
        pw3,
        sp_n,
        sp_k,
        si_n,
        si_k,
        s_keys,
        s_ratios,
        s_mask,
        N: tl.constexpr,
        ALPHA_MODE: tl.constexpr,
        BLOCK: tl.constexpr,
    ):
        # ALPHA_MODE: 0 no lookup (alpha_c == 0), 1 ratio, 2 sqrt(ratio), 3 ratio ** alpha.
        pid = tl.program_id(0)
        cell = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        ok = cell < cells
        c = tl.where(ok, cell, 0)
        if N == 3:
            i2 = c % K
            c = c // K
        i1 = c % K
        i0 = c // K
        p = tl.load(probs_ptr + i0 * sp_k, mask=ok, other=0.0)
        t0 = tl.load(ids_ptr + i0 * si_k, mask=ok, other=0).to(tl.int64)
        p = p * tl.load(probs_ptr + sp_n + i1 * sp_k, mask=ok, other=0.0)
        t1 = tl.load(ids_ptr + si_n + i1 * si_k, mask=ok, other=0).to(tl.int64)
        valid0 = (t0 >= 0) & (t0 < V)
        valid1 = (t1 >= 0) & (t1 < V)
        t0 = tl.minimum(tl.maximum(t0, 0), V - 1)
        t1 = tl.minimum(tl.maximum(t1, 0), V - 1)
        key = t0 * V + t1
        valid = valid0 & valid1
        count = (tl.load(mask_ptr + t0 * s_mask, mask=ok & valid0, other=0) != 0).to(tl.int32)
        count += (tl.load(mask_ptr + t1 * s_mask, mask=ok & valid1, other=0) != 0).to(tl.int32)
        if N == 3:
            p = p * tl.load(probs_ptr + 2 * sp_n + i2 * sp_k, mask=ok, other=0.0)
            t2 = tl.load(ids_ptr + 2 * si_n + i2 * si_k, mask=ok, other=0).to(tl.int64)
            valid2 = (t2 >= 0) & (t2 < V)
            t2 = tl.minimum(tl.maximum(t2, 0), V - 1)
            key = key * V + t2
            valid = valid & valid2
            count += (tl.load(mask_ptr + t2 * s_mask, mask=ok & valid2, other=0) != 0).to(tl.int32)
        if ALPHA_MODE != 0:
            # lower bound: the first index with keys[index] >= key (torch.searchsorted, side="left")
            lo = tl.zeros((BLOCK,), dtype=tl.int64)
            hi = tl.zeros((BLOCK,), dtype=tl.int64) + m
            for _ in range(iters):
                active = lo < hi
                mid = (lo + hi) // 2
                km = tl.load(keys_ptr + mid * s_keys, mask=ok & active, other=0)
                right = active & (km < key)
                lo = tl.where(right, mid + 1, lo)
                hi = tl.where(active & (km >= key), mid, hi)
            hit = ok & valid & (lo < m)
            found = tl.load(keys_ptr + lo * s_keys, mask=hit, other=0)
            hit = hit & (found == key)
            r = tl.load(ratios_ptr + lo * s_ratios, mask=hit, other=0.0)
            if ALPHA_MODE == 1:
                p = p * r
            elif ALPHA_MODE == 2:
                p = p * tl.sqrt_rn(r)
            else:
                pos = r > 0
                p = p * tl.where(pos, tl.exp2(alpha * tl.log2(tl.where(pos, r, 1.0))), 0.0)
        p = tl.where(ok, p, 0.0)
        factor = tl.where(count == 0, pw0, tl.where(count == 1, pw1, tl.where(count == 2, pw2, pw3)))
        tl.store(w_ptr + cell, p, mask=ok)
        tl.store(factor_ptr + cell, factor, mask=ok)
        tl.store(partial_ptr + pid, tl.sum(p, axis=0))

    @triton.jit
    def _joint_pass2(w_ptr, partial_ptr, cells, n_tiles, bar, BLOCK: tl.constexpr, TILES: tl.constexpr):
        pid = tl.program_id(0)
        t = tl.arange(0, TILES)
        total = tl.sum(tl.load(partial_ptr + t, mask=t < n_tiles, other=0.0), axis=0)
        cell = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        ok = cell < cells
        w = tl.load(w_ptr + cell, mask=ok, other=0.0)
        positive = total > 0
        x = tl.math.div_rn(w, tl.where(positive, total, 1.0))
        x = tl.where(positive, x, 0.0)
        x = tl.where(x < bar, 0.0, x)
        tl.store(w_ptr + cell, x, mask=ok)


@functools.lru_cache(maxsize=64)
def _penalty_powers(penalty: float, n: int) -> tuple[float, ...]:
    """``penalty ** c`` for ``c = 0..n`` by ``torch.pow`` in float32, as ``repetition_factor`` computes it."""
    count = torch.arange(n + 1, dtype=torch.float32)
    powers = torch.pow(torch.tensor(float(penalty), dtype=torch.float32), count)
    return tuple(float(v) for v in powers) + (1.0,) * (3 - n)


def _float32_bar(bar: float) -> float:
    """The smallest float32 ``b >= bar``: for every float32 ``x``, ``x < b`` iff ``float64(x) < bar``."""
    b = torch.tensor(bar, dtype=torch.float64).float()
    if float(b) < bar:
        b = torch.nextafter(b, torch.tensor(math.inf, dtype=torch.float32))
    return float(b)


def _triton_ready(t: torch.Tensor, reason: str | None) -> None:
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if t.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error("dynamo_joint", t.device))
    if reason is not None:
        raise ValueError(f"dynamo_joint (Triton): unsupported input: {reason}")


def dynamo_joint_triton(
    probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar, *, block_size: int | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(statically zeroed joint, repetition factor)`` by the two-pass Triton kernel.

    ``block_size`` (a power of two; default 1024 on CUDA, 256 in the interpreter) is the number of
    grid cells per program; it is raised where needed to keep at most 1024 tiles.
    """
    _check_args(probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar)
    _triton_ready(
        probs, triton_supports(probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar)
    )
    n, k = probs.shape
    cells = k**n
    device = probs.device
    joint = torch.empty((k,) * n, dtype=torch.float32, device=device)
    factor = torch.empty_like(joint)
    if block_size is None:
        block_size = 1024 if device.type == "cuda" else 256
    if block_size < 1 or block_size & (block_size - 1):
        raise ValueError(f"block_size must be a power of two, got {block_size}")
    block = max(block_size, triton.next_power_of_2(triton.cdiv(cells, _MAX_TILES)))
    n_tiles = triton.cdiv(cells, block)
    partials = torch.empty(n_tiles, dtype=torch.float32, device=device)
    m = keys.numel()
    if alpha_c == 0:
        alpha_mode = 0
    elif alpha_c == 1:
        alpha_mode = 1
    elif alpha_c == 0.5:
        alpha_mode = 2
    else:
        alpha_mode = 3
    if m == 0:  # nothing to search (every n-gram unseen); keep valid pointers for the masked loads
        keys = torch.zeros(1, dtype=torch.int64, device=device)
        ratios = torch.zeros(1, dtype=torch.float32, device=device)
    pw = _penalty_powers(float(penalty), n)
    mask = context_mask.view(torch.uint8)
    _joint_pass1[(n_tiles,)](
        probs,
        ids,
        keys,
        ratios,
        mask,
        joint,
        factor,
        partials,
        k,
        cells,
        m,
        int(vocab_size),
        m.bit_length(),  # ceil(log2(m + 1)) halvings empty any range [0, m)
        float(alpha_c),
        *pw,
        probs.stride(0),
        probs.stride(1),
        ids.stride(0),
        ids.stride(1),
        keys.stride(0),
        ratios.stride(0),
        mask.stride(0),
        N=n,
        ALPHA_MODE=alpha_mode,
        BLOCK=block,
        num_warps=4,
    )
    _joint_pass2[(n_tiles,)](
        joint,
        partials,
        cells,
        n_tiles,
        _float32_bar(float(zero_bar)),
        BLOCK=block,
        TILES=max(triton.next_power_of_2(n_tiles), 2),
        num_warps=4,
    )
    return joint, factor


def dynamo_joint(
    probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar, *, backend: str | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """DynaMo's joint at one back-off level before the adaptive threshold: ``(joint, factor)``, each ``(k,)*n``.

    ``probs [n, k]``, ``ids [n, k]``, ``keys [m]`` / ``ratios [m]`` (the order-``n`` table),
    ``context_mask [vocab_size]`` (:func:`context_membership`); see the module docstring, and
    :func:`finish_level` for the rest of ``thresholded_joint``.  ``backend``
    (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    args = (probs, ids, keys, ratios, vocab_size, alpha_c, context_mask, penalty, zero_bar)
    _check_args(*args)
    return dispatch("dynamo_joint", *args, backend=backend)(*args)


def _bench_cases(device: torch.device) -> list[BenchCase]:
    # k = 50 (the paper's top-k), n = 2 and 3, V = 50,304 (Pythia), ~1e6 keys per order (the paper's
    # pruned pair table holds ~2.8M): a third of the candidate n-grams are in the table.
    vocab, k, m = 50_304, 50, 1_000_000
    config = SamplingConfig()

    def maker(n):
        def make():
            g = torch.Generator(device="cpu").manual_seed(n)
            probs = torch.rand(n, k, generator=g).sort(dim=1, descending=True).values ** 4
            probs = probs / probs.sum(dim=1, keepdim=True)
            ids = torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(n)])
            grid = torch.stack(torch.meshgrid(*ids, indexing="ij"), dim=-1).reshape(-1, n)
            seen = grid[torch.randperm(grid.shape[0], generator=g)[: grid.shape[0] // 3]]
            packed = seen[:, 0].clone()
            for i in range(1, n):
                packed = packed * vocab + seen[:, i]
            rand = torch.randint(0, vocab**n, (m,), generator=g)
            keys = torch.unique(torch.cat([rand, packed]))  # sorted, unique
            ratios = torch.rand(keys.numel(), generator=g) * 20
            context = torch.cat([torch.randint(0, vocab, (512,), generator=g), ids[:, :5].reshape(-1)])
            mask = context_membership(context, vocab)
            to = dict(device=device)
            args = (probs.to(**to), ids.to(**to), keys.to(**to), ratios.to(**to), vocab, config.alpha_c)
            return (*args, mask.to(**to), config.repetition_penalty, config.static_bars(n)[0]), {}

        return make

    return [BenchCase(shape=f"k{k}n{n}m1e6", dtype="float32", make=maker(n)) for n in (2, 3)]


KERNEL = register(
    Kernel(
        name="dynamo_joint",
        reference=dynamo_joint_reference,
        triton=dynamo_joint_triton if triton is not None else None,
        summary="DynaMo joint builder: top-k outer product x co-occurrence ratio**alpha (binary search in "
        "packed keys), normalised, statically zeroed, plus the repetition-penalty factor",
        paper="DynaMo (NAACL 2024): dynamic multi-token sampling, fused joint builder (brief §4.3, §7)",
        triton_supports=triton_supports,
        bench_cases=_bench_cases,
    )
)
