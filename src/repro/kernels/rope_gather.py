"""RoPE with per-KV-group gathered cos/sin (MoDeGPT's compressed query/key heads).

What
    :func:`apply_rope_gather` applies rotary position embeddings to compressed query and key heads
    whose channels are a subset of the original head dimension.  For KV group ``g`` the cos/sin
    rows of the full head dimension ``d_h`` are gathered with an index table ``index[g]`` of length
    ``k_h`` and the usual HF rotation is applied::

        cos_g = cos[..., index[g]]              sin_g = sin[..., index[g]]
        x_rot = x * cos_g + rotate_half(x) * sin_g,     rotate_half(x) = cat(-x[k_h/2:], x[:k_h/2])

    Query head ``h`` uses group ``h // group_size`` (``group_size = n_heads // n_kv``, GQA); key head
    ``g`` uses group ``g``.

Why
    MoDeGPT's type-II compression (CR decomposition of the key-query product; see
    ``shared/papers/llm_compression.md`` §4.4, §4.7, §9.2(a)) keeps, per KV group, a set of whole
    RoPE rotation pairs ``(i, i + d_h/2)`` of each query/key head and drops the rest.  Rotating a
    pair only mixes the two channels of that pair, so RoPE commutes with keeping whole pairs:
    rotating the compressed head with the gathered cos/sin gives exactly the kept channels of the
    rotated full head, and ``q . k`` over the kept pairs is unchanged.  At inference the cos/sin
    that transformers' rotary embedding returns for the full head must therefore be gathered per
    KV group; the Triton kernel fuses that gather into the rotation (cos/sin are read through the
    index table, never materialised per group).

Layout convention
    * ``q``: ``[batch, n_heads, seq, k_h]``, ``k``: ``[batch, n_kv, seq, k_h]`` (HF's layout after
      the head transpose; any strides).
    * ``cos``/``sin``: ``[batch, seq, d_h]`` as ``LlamaRotaryEmbedding`` returns them, with the HF
      half-split layout ``cos[..., i] == cos[..., i + d_h/2]`` (a batch of 1 broadcasts).
    * ``index``: integer tensor ``[n_kv, k_h]`` of channel indices into ``d_h``.  For kept pair
      indices ``p`` (sorted, values in ``[0, d_h/2)``) it is ``concat(p, p + d_h/2)``
      (:func:`rope_pair_index`), so the compressed head is laid out as [first halves of the kept
      pairs, second halves] and ``rotate_half`` still pairs channel ``j`` with ``j + k_h/2``.
      The implementations accept any index table; only the pair layout has the meaning above.
      Index values are checked when ``index`` is on the CPU; on CUDA an out-of-range value is
      undefined behaviour (checking would synchronise the device).
    * ``k_h`` must be even; ``cos`` and ``sin`` share one dtype.  Each output has the promoted dtype
      of its input and cos/sin (HF's rotary returns cos/sin in the activation dtype, so normally
      the activation dtype).

Implementations
    * reference (torch, any device): gathers ``cos[..., index]`` and broadcasts over the heads of
      each group.  With the identity index it is transformers' ``apply_rotary_pos_emb``.
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): one program per (block of positions,
      head, batch; one flattened grid axis) loads the group's index row once, reads ``x[j]`` and its partner
      ``x[j + k_h/2]`` and the gathered cos/sin entries directly, rotates in float32 and writes a
      contiguous output.  One launch for ``q`` and one for ``k``; any strides, any even ``k_h``.
      Each product is rounded to the output dtype before the sum, exactly as torch evaluates the
      reference, so fp16/bf16 results equal the reference bit for bit in Triton's interpreter; on an
      H200 (Triton 3.6) a few fp16/bf16 elements differed by one rounding step at the products'
      scale, which the CUDA test allows; fp32 results may differ in the last bit where the compiler
      fuses a multiply-add.

:func:`apply_rope_gather` dispatches between them (see :mod:`repro.kernels`).
"""

from __future__ import annotations

from collections.abc import Sequence

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
INDEX_DTYPES = (torch.int32, torch.int64)
_TILE = 2048  # (positions x half-channels) per program
_MAX_BLOCK_S = 64


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check_args(q, k, cos, sin, index, group_size) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit the layout in the module docstring."""
    if not isinstance(q, torch.Tensor) or q.dim() != 4:
        raise ValueError(f"q must be a 4-D tensor [batch, n_heads, seq, k_h], got {_shape(q)}")
    if not isinstance(k, torch.Tensor) or k.dim() != 4:
        raise ValueError(f"k must be a 4-D tensor [batch, n_kv, seq, k_h], got {_shape(k)}")
    for name, t in (("cos", cos), ("sin", sin)):
        if not isinstance(t, torch.Tensor) or t.dim() != 3:
            raise ValueError(f"{name} must be a 3-D tensor [batch, seq, d_h], got {_shape(t)}")
    if not isinstance(index, torch.Tensor) or index.dim() != 2:
        raise ValueError(f"index must be a 2-D integer tensor [n_kv, k_h], got {_shape(index)}")
    for name, t in (("q", q), ("k", k), ("cos", cos), ("sin", sin)):
        if not t.is_floating_point():
            raise ValueError(f"{name} must be floating point, got {t.dtype}")
    if index.dtype not in INDEX_DTYPES:
        raise ValueError(f"index must be an int64 or int32 tensor, got {index.dtype}")
    devices = {t.device for t in (q, k, cos, sin, index)}
    if len(devices) > 1:
        raise ValueError(f"q, k, cos, sin and index must be on one device, got {sorted(map(str, devices))}")
    if isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1:
        raise ValueError(f"group_size must be a positive integer, got {group_size!r}")

    batch, n_heads, seq, k_h = q.shape
    if k_h % 2 or k_h == 0:
        raise ValueError(f"q head dim k_h={k_h} (q {tuple(q.shape)}) must be even and positive (whole RoPE pairs)")
    if (k.shape[0], k.shape[2], k.shape[3]) != (batch, seq, k_h):
        raise ValueError(f"k {tuple(k.shape)} must be [batch={batch}, n_kv, seq={seq}, k_h={k_h}] like q")
    n_kv = k.shape[1]
    if tuple(index.shape) != (n_kv, k_h):
        raise ValueError(f"index {tuple(index.shape)} must be [n_kv={n_kv}, k_h={k_h}]")
    if n_heads != n_kv * group_size:
        raise ValueError(
            f"group_size={group_size} does not fit n_heads={n_heads} (q) and n_kv={n_kv} (k): "
            "need n_heads == n_kv * group_size"
        )
    if cos.shape != sin.shape:
        raise ValueError(f"cos {tuple(cos.shape)} and sin {tuple(sin.shape)} must have the same shape")
    if cos.dtype != sin.dtype:
        raise ValueError(f"cos ({cos.dtype}) and sin ({sin.dtype}) must have the same dtype")
    if cos.shape[0] not in (1, batch) or cos.shape[1] != seq:
        raise ValueError(f"cos/sin {tuple(cos.shape)} must be [batch={batch} (or 1), seq={seq}, d_h]")
    d_h = cos.shape[2]
    if d_h % 2 or d_h < k_h:
        raise ValueError(f"cos/sin head dim d_h={d_h} must be even and >= k_h={k_h}")
    if index.device.type == "cpu" and index.numel():
        lo, hi = int(index.min()), int(index.max())
        if lo < 0 or hi >= d_h:
            raise ValueError(f"index values must lie in [0, d_h={d_h}), got min {lo}, max {hi}")


def rope_pair_index(kept_pairs, head_dim: int) -> torch.LongTensor:
    """Index table ``[n_kv, 2 * n_pairs]`` = ``concat(p, p + head_dim/2)`` per KV group.

    ``kept_pairs``: per KV group, the kept RoPE pair indices ``p`` (strictly increasing, in
    ``[0, head_dim/2)``), as a 2-D integer tensor or a sequence of equally long sequences.
    """
    if isinstance(head_dim, bool) or not isinstance(head_dim, int) or head_dim < 2 or head_dim % 2:
        raise ValueError(f"head_dim must be a positive even integer, got {head_dim!r}")
    if isinstance(kept_pairs, torch.Tensor):
        pairs = kept_pairs
    elif isinstance(kept_pairs, Sequence):
        try:
            pairs = torch.as_tensor([list(p) for p in kept_pairs], dtype=torch.int64)
        except (TypeError, ValueError) as err:
            raise ValueError(f"kept_pairs must be equally long integer lists per KV group: {err}") from None
    else:
        raise ValueError(f"kept_pairs must be a 2-D tensor or a list of lists, got {type(kept_pairs).__name__}")
    if pairs.dim() != 2 or pairs.shape[1] == 0:
        raise ValueError(f"kept_pairs must be 2-D [n_kv, n_pairs] with n_pairs >= 1, got {tuple(pairs.shape)}")
    if pairs.is_floating_point() or pairs.dtype == torch.bool or pairs.is_complex():
        raise ValueError(f"kept_pairs must be integers, got {pairs.dtype}")
    pairs = pairs.to(torch.int64)
    half = head_dim // 2
    if int(pairs.min()) < 0 or int(pairs.max()) >= half:
        raise ValueError(f"kept_pairs values must lie in [0, head_dim/2={half})")
    if pairs.shape[1] > 1 and not bool((pairs[:, 1:] > pairs[:, :-1]).all()):
        raise ValueError("kept_pairs must be strictly increasing within each KV group")
    return torch.cat([pairs, pairs + half], dim=1)


def _rotate_half(x: torch.Tensor) -> torch.Tensor:
    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def apply_rope_gather_reference(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    index: torch.Tensor,
    group_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE with per-KV-group gathered cos/sin in plain torch; returns ``(q_rot, k_rot)`` (module docstring)."""
    _check_args(q, k, cos, sin, index, group_size)
    index = index.long()
    # [b, s, n_kv, k_h] -> [b, n_kv, s, k_h]
    cos_g = cos[:, :, index].permute(0, 2, 1, 3)
    sin_g = sin[:, :, index].permute(0, 2, 1, 3)
    k_rot = k * cos_g + _rotate_half(k) * sin_g
    qg = q.unflatten(1, (k.shape[1], group_size))  # [b, n_kv, group, s, k_h]; head h -> group h // group_size
    cq, sq = cos_g.unsqueeze(2), sin_g.unsqueeze(2)
    q_rot = (qg * cq + _rotate_half(qg) * sq).flatten(1, 2)
    return q_rot, k_rot


def triton_supports(q, k, cos, sin, index, group_size=None) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    for name, t in (("q", q), ("k", k), ("cos", cos), ("sin", sin)):
        if isinstance(t, torch.Tensor) and t.dtype not in TRITON_DTYPES:
            return f"{name} dtype {t.dtype} (supported: fp32, fp16, bf16)"
    if isinstance(index, torch.Tensor) and index.dtype not in INDEX_DTYPES:
        return f"index dtype {index.dtype} (supported: int32, int64)"
    return None


if triton is not None:

    @triton.jit
    def _rope_gather_kernel(
        x_ptr,
        cos_ptr,
        sin_ptr,
        idx_ptr,
        out_ptr,
        seq,
        heads,
        n_sblocks,
        group_size,
        sx_b,
        sx_h,
        sx_s,
        sx_d,
        sc_b,
        sc_s,
        sc_d,
        ss_b,
        ss_s,
        ss_d,
        si_g,
        si_d,
        so_b,
        so_h,
        so_s,
        HALF: tl.constexpr,
        BLOCK_S: tl.constexpr,
        BLOCK_H: tl.constexpr,
    ):
        # One program per (block of positions, head, batch), flattened on grid axis 0 with the
        # position block fastest; tile [BLOCK_S positions, BLOCK_H half-channels].
        # Output channel j < HALF: x[j] * cos[idx[j]] - x[j + HALF] * sin[idx[j]];
        # channel j + HALF:        x[j + HALF] * cos[idx[j + HALF]] + x[j] * sin[idx[j + HALF]].
        pid = tl.program_id(0).to(tl.int64)
        pid_s = pid % n_sblocks
        rest = pid // n_sblocks
        head = rest % heads
        b = rest // heads
        grp = head // group_size

        j = tl.arange(0, BLOCK_H)
        j_ok = j < HALF
        idx1 = tl.load(idx_ptr + grp * si_g + j * si_d, mask=j_ok, other=0).to(tl.int64)
        idx2 = tl.load(idx_ptr + grp * si_g + (j + HALF) * si_d, mask=j_ok, other=0).to(tl.int64)

        pos = pid_s * BLOCK_S + tl.arange(0, BLOCK_S)
        pos64 = pos.to(tl.int64)[:, None]
        ok = (pos[:, None] < seq) & j_ok[None, :]

        x_row = x_ptr + b * sx_b + head * sx_h + pos64 * sx_s
        x1 = tl.load(x_row + j[None, :] * sx_d, mask=ok, other=0.0).to(tl.float32)
        x2 = tl.load(x_row + (j[None, :] + HALF) * sx_d, mask=ok, other=0.0).to(tl.float32)

        c_row = cos_ptr + b * sc_b + pos64 * sc_s
        s_row = sin_ptr + b * ss_b + pos64 * ss_s
        c1 = tl.load(c_row + idx1[None, :] * sc_d, mask=ok, other=0.0).to(tl.float32)
        c2 = tl.load(c_row + idx2[None, :] * sc_d, mask=ok, other=0.0).to(tl.float32)
        s1 = tl.load(s_row + idx1[None, :] * ss_d, mask=ok, other=0.0).to(tl.float32)
        s2 = tl.load(s_row + idx2[None, :] * ss_d, mask=ok, other=0.0).to(tl.float32)

        # Round each product to the output dtype before the sum, as torch's elementwise
        # `x * cos + rotate_half(x) * sin` does (products of fp16/bf16 values are exact in fp32):
        # fp16/bf16 outputs then equal the reference bit for bit.
        o_ty = out_ptr.dtype.element_ty
        o1 = (x1 * c1).to(o_ty).to(tl.float32) - (x2 * s1).to(o_ty).to(tl.float32)
        o2 = (x2 * c2).to(o_ty).to(tl.float32) + (x1 * s2).to(o_ty).to(tl.float32)
        o_row = out_ptr + b * so_b + head * so_h + pos64 * so_s  # last dim contiguous
        tl.store(o_row + j[None, :], o1.to(o_ty), mask=ok)
        tl.store(o_row + (j[None, :] + HALF), o2.to(o_ty), mask=ok)


def _launch(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, index: torch.Tensor, group_size: int):
    batch, heads, seq, k_h = x.shape
    out_dtype = torch.promote_types(x.dtype, cos.dtype)
    out = torch.empty(batch, heads, seq, k_h, dtype=out_dtype, device=x.device)
    if out.numel() == 0:
        return out
    half = k_h // 2
    block_h = triton.next_power_of_2(half)
    block_s = max(1, min(_MAX_BLOCK_S, _TILE // block_h, triton.next_power_of_2(seq)))
    # a batch-1 cos/sin broadcasts over the batch through a zero stride
    sc_b = cos.stride(0) if cos.shape[0] > 1 else 0
    ss_b = sin.stride(0) if sin.shape[0] > 1 else 0
    n_sblocks = triton.cdiv(seq, block_s)
    grid = (n_sblocks * heads * batch,)
    _rope_gather_kernel[grid](
        x,
        cos,
        sin,
        index,
        out,
        seq,
        heads,
        n_sblocks,
        group_size,
        *x.stride(),
        sc_b,
        cos.stride(1),
        cos.stride(2),
        ss_b,
        sin.stride(1),
        sin.stride(2),
        *index.stride(),
        out.stride(0),
        out.stride(1),
        out.stride(2),
        HALF=half,
        BLOCK_S=block_s,
        BLOCK_H=block_h,
        num_warps=4,
    )
    return out


def apply_rope_gather_triton(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    index: torch.Tensor,
    group_size: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE with per-KV-group gathered cos/sin by the fused Triton kernel; contiguous ``(q_rot, k_rot)``."""
    _check_args(q, k, cos, sin, index, group_size)
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if q.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error("rope_gather", q.device))
    reason = triton_supports(q, k, cos, sin, index, group_size)
    if reason is not None:
        raise ValueError(f"apply_rope_gather_triton: unsupported input: {reason}")
    # strided inputs are read in place (no copies); the outputs are contiguous
    q_rot = _launch(q, cos, sin, index, group_size)
    k_rot = _launch(k, cos, sin, index, 1)
    return q_rot, k_rot


def apply_rope_gather(
    q: torch.Tensor,
    k: torch.Tensor,
    cos: torch.Tensor,
    sin: torch.Tensor,
    index: torch.Tensor,
    group_size: int,
    *,
    backend: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """RoPE on compressed heads with cos/sin gathered per KV group: ``x * cos[..., index[g]] +
    rotate_half(x) * sin[..., index[g]]`` for ``q`` (group ``h // group_size``) and ``k`` (group ``g``).

    Shapes: ``q [b, n_heads, s, k_h]``, ``k [b, n_kv, s, k_h]``, ``cos``/``sin [b, s, d_h]``,
    ``index [n_kv, k_h]`` (see :func:`rope_pair_index`).  ``backend`` (``auto``/``reference``/``triton``)
    overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_args(q, k, cos, sin, index, group_size)
    impl = dispatch("rope_gather", q, k, cos, sin, index, group_size, backend=backend)
    return impl(q, k, cos, sin, index, group_size)


def _bench_cases(device: torch.device) -> list[BenchCase]:
    # (batch, seq, n_heads, n_kv, d_h, k_h): LLaMA-2-7B-like MHA and LLaMA-3-8B-like GQA heads at
    # 75% kept pairs, prefill and a decode step of a batch.
    if device.type == "cuda":
        dtype = torch.float16
        shapes = [(1, 2048, 32, 32, 128, 96), (1, 2048, 32, 8, 128, 96), (16, 1, 32, 8, 128, 96)]
    else:
        dtype = torch.float32
        shapes = [(1, 256, 8, 8, 64, 48), (1, 256, 12, 4, 64, 48)]

    def maker(batch, seq, n_heads, n_kv, d_h, k_h):
        def make():
            g = torch.Generator(device="cpu").manual_seed(0)
            # as in HF attention: projections [b, s, heads, k_h] viewed as [b, heads, s, k_h]
            q = torch.randn(batch, seq, n_heads, k_h, generator=g).to(device=device, dtype=dtype).transpose(1, 2)
            k = torch.randn(batch, seq, n_kv, k_h, generator=g).to(device=device, dtype=dtype).transpose(1, 2)
            inv_freq = 1.0 / (10000.0 ** (torch.arange(0, d_h, 2, dtype=torch.float32) / d_h))
            freqs = torch.arange(seq, dtype=torch.float32)[:, None] * inv_freq[None, :]
            emb = torch.cat([freqs, freqs], dim=-1).expand(batch, seq, d_h)
            cos = emb.cos().to(device=device, dtype=dtype)
            sin = emb.sin().to(device=device, dtype=dtype)
            pairs = torch.stack([torch.randperm(d_h // 2, generator=g)[: k_h // 2].sort().values for _ in range(n_kv)])
            index = rope_pair_index(pairs, d_h).to(device)
            return (q, k, cos, sin, index, n_heads // n_kv), {}

        return make

    name = str(dtype).removeprefix("torch.")
    return [
        BenchCase(shape=f"b{b}s{s}h{h}/{kv}k{kh}/{dh}", dtype=name, make=maker(b, s, h, kv, dh, kh))
        for b, s, h, kv, dh, kh in shapes
    ]


KERNEL = register(
    Kernel(
        name="rope_gather",
        reference=apply_rope_gather_reference,
        triton=apply_rope_gather_triton if triton is not None else None,
        summary="RoPE on compressed q/k heads with cos/sin gathered per KV group through an index table",
        paper="LLM compression comparison: MoDeGPT type-II (kept RoPE pairs per KV group)",
        triton_supports=triton_supports,
        bench_cases=_bench_cases,
    )
)
