"""Half-Hop aggregation with implicit slow nodes: one weighted SpMM over the upsampled graph.

What
    :func:`halfhop_propagate` computes one message-passing (weighted sum) step over a Half-Hop
    upsampled graph whose slow-node rows are never stored.  With ``H [N, d]`` the rows of the
    ``N`` original nodes and the half-hopped edges ``src[e] -> dst[e]`` (``0 <= e < E``)::

        rows(u)      = H[u]                                          u < N  (original node)
        rows(N + e)  = alpha * H[src[e]] + (1 - alpha) * H[dst[e]]   slow node of edge e
        out[v]       = sum over the in-edges (u -> v) of the upsampled graph of  w(u -> v) * rows(u)

    for every node ``v`` of the upsampled graph, original and slow (``out [N + E, d]``).  The
    in-edges come as a CSR matrix by destination: ``indptr [N+E+1]``, ``col [nnz]`` (the source
    ids, in ``[0, N+E)``) and ``weight [nnz]`` (``None``: all ones).

Why
    Half-Hop (Azabou et al., ICML 2023; brief ``shared/papers/ssl_graph_neural.md`` §1.1) replaces
    each half-hopped edge ``i -> j`` by a slow node ``k`` with edges ``i -> k``, ``j -> k``, ``k -> j``
    and input features ``x_k = alpha * x_i + (1 - alpha) * x_j``.  Materialising those features costs
    ``E x F`` floats: on Coauthor Physics at ``p = 1`` (N = 34,493, E = 495,924 directed edges,
    F = 8,415) that is 16.7 GB in fp32, the OOMs of the paper's Table 3 (brief §1.9).  When the
    first operation of layer 1 is linear (GCN, SAGE, GAT), ``W x_k = alpha W x_i + (1 - alpha) W x_j``
    exactly, so the layer can compute ``H = X W`` for the ``N`` original nodes only and interpolate
    in hidden space (brief §5).  This kernel goes one step further: the interpolation happens inside
    the aggregation, so not even the ``E x d`` hidden slow rows exist.  A GCN layer 1 on the
    upsampled graph is::

        indptr, col, w = halfhop_gcn_norm(edge_index_up, N + E)      # once per upsampled graph
        out = halfhop_propagate(X @ W.T, src, dst, alpha, indptr, col, w) + bias

    equal to ``GCNConv(normalize=True, add_self_loops=True)`` applied to the materialised upsampled
    graph (``tests/test_kernels_halfhop.py`` checks it against torch_geometric in float64).

Memory (Coauthor Physics at p = 1, d = 256 hidden, fp32; R = N + E = 530,417 nodes,
nnz = 3E + R = 2,018,189 in-edges with GCN self-loops)
    ==================================================  ==========  =====================
    what                                                size        materialised / kernel
    ==================================================  ==========  =====================
    slow-node input features ``E x F``                  16.69 GB    materialised path only
    ``X W`` of the original nodes ``N x d``             0.035 GB    both (kernel input)
    hidden slow rows ``E x d`` (``rows`` = ``R x d``)   0.51 GB     reference only (0.54)
    gathered messages ``rows[col]`` ``nnz x d``         2.07 GB     reference only
    src, dst, indptr, col (int64), weight (fp32)        0.04 GB     both
    output ``R x d``                                    0.54 GB     both (the layer output)
    ==================================================  ==========  =====================

    So the feature-space path needs ~17.9 GB for ``x'`` alone, the hidden-space reference ~2.6 GB of
    temporaries on top of its 0.54 GB output, and the Triton kernel none: it reads ``H``, the
    indices and weights and writes the output.

Layout convention
    * ``h [N, d]``: fp32, fp16 or bf16 for Triton (the reference also takes fp64); any strides
      (the Triton kernel reads ``h`` through its two strides, no copy).  ``N >= 1`` when ``E > 0``.
    * ``src``, ``dst [E]``: int64 or int32, original node ids in ``[0, N)``; slow node ``N + e`` is
      the one of edge ``src[e] -> dst[e]``.  ``E`` may be 0 (plain SpMM).
    * ``alpha``: a real number in ``[0, 1]``, the weight of the *source* endpoint (as PyG's
      ``HalfHop``).
    * ``indptr [N+E+1]`` int64 or int32 (non-decreasing, ``indptr[0] = 0``, ``indptr[-1] = nnz``);
      ``col [nnz]`` int64 or int32 source ids in ``[0, N+E)``; ``weight [nnz]`` floating or ``None``.
      Any order within a row; duplicates are summed.  :func:`halfhop_csr` and
      :func:`halfhop_gcn_norm` build them from a PyG-style ``edge_index``.
    * All tensors on one device.  Values (ranges, monotone ``indptr``) are checked when the tensors
      are on the CPU; on CUDA a bad index is undefined behaviour (checking would synchronise).
    * Result: ``[N+E, d]``, contiguous, dtype of ``h``; the sum is accumulated in fp32 (fp64 for an
      fp64 ``h`` in the reference).  Rows with no in-edge are zero.

Slow nodes of PyG's ``HalfHop``
    ``torch_geometric.transforms.HalfHop`` numbers the slow nodes ``N .. N+E-1`` in the order of the
    half-hopped edges and emits ``[kept edges, self-loops, src -> k, k -> dst, dst -> k]``.  The
    project's wrapper :mod:`repro.graphs.halfhop` builds that graph (``half_hop``, or
    ``half_hop_structure`` without features) and records the half-hopped edges as ``hh_src`` /
    ``hh_dst`` (``slow_node_endpoints``): those are this kernel's ``src`` / ``dst``, and its
    ``edge_index`` goes through :func:`halfhop_gcn_norm` or :func:`halfhop_csr`.  This module imports
    it lazily (:func:`bench_inputs`) so that importing :mod:`repro.kernels` does not load
    torch_geometric.

Implementations
    * reference (torch, any device): **materialises** ``rows = cat([H, alpha H[src] + (1-alpha)
      H[dst]])`` in fp32 (``R x d``), gathers ``rows[col] * weight`` (``nnz x d``) and sums them with
      ``index_add_`` into each in-edge's destination (``repeat_interleave`` of the CSR row lengths),
      then casts to ``h``'s dtype.
    * Triton (CUDA; CPU through ``TRITON_INTERPRET=1``): **does not materialise** anything but the
      output.  One program per (block of ``BLOCK_R`` destination rows, block of ``BLOCK_D`` feature
      columns); it walks the rows' CSR segments in lock step (``max`` segment length of the block
      iterations, shorter rows masked).  For an in-neighbour ``u < N`` it loads ``H[u]``; for a slow
      neighbour it loads ``src``/``dst`` of ``u - N`` and the two ``H`` rows and lerps them
      (``alpha * a + (1 - alpha) * b`` in fp32, the reference's order), multiplies by the edge weight
      and accumulates in fp32.  No atomics: each output element has one writer.  Index math is int64,
      so int32 and int64 indices both work.  Rows of very different in-degree in one block cost the
      longest row's iterations; slow nodes (in-degree 2-3) are contiguous, so their blocks are even.

Measured
    Not yet timed on a GPU (no device was available when this kernel was written); ``auto`` selects
    Triton on CUDA until a benchmark says otherwise.  ``python -m repro.bench kernels --kernel
    halfhop_propagate`` times it.
"""

from __future__ import annotations

import math
import numbers

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


def _shape(x) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _check_index(name: str, t, length: int | None = None, what: str = "") -> None:
    if not isinstance(t, torch.Tensor) or t.dim() != 1:
        raise ValueError(f"{name} must be a 1-D integer tensor {what}, got {_shape(t)}")
    if t.dtype not in INDEX_DTYPES:
        raise ValueError(f"{name} must be an int64 or int32 tensor, got {t.dtype}")
    if length is not None and t.shape[0] != length:
        raise ValueError(f"{name} {tuple(t.shape)} must be {what}")


def _check_range(name: str, t: torch.Tensor, hi: int, hi_name: str) -> None:
    if t.device.type != "cpu" or t.numel() == 0:
        return
    lo, top = int(t.min()), int(t.max())
    if lo < 0 or top >= hi:
        raise ValueError(f"{name} values must lie in [0, {hi_name}={hi}), got min {lo}, max {top}")


def _check_args(h, src, dst, alpha, indptr, col, weight) -> None:
    """Raise ValueError (naming the argument) unless the arguments fit the layout in the module docstring."""
    if not isinstance(h, torch.Tensor) or h.dim() != 2:
        raise ValueError(f"h must be a 2-D tensor [N, d], got {_shape(h)}")
    if not h.is_floating_point():
        raise ValueError(f"h must be floating point, got {h.dtype}")
    n = h.shape[0]
    _check_index("src", src, what="[E]")
    e = src.shape[0]
    _check_index("dst", dst, e, f"[E={e}] (the shape of src)")
    if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool) or not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be a real number in [0, 1], got {alpha!r}")
    _check_index("indptr", indptr, n + e + 1, f"[N+E+1={n + e + 1}] (N={n} original + E={e} slow nodes, plus 1)")
    _check_index("col", col, what="[nnz]")
    nnz = col.shape[0]
    tensors = {"h": h, "src": src, "dst": dst, "indptr": indptr, "col": col}
    if weight is not None:
        if not isinstance(weight, torch.Tensor) or weight.dim() != 1 or weight.shape[0] != nnz:
            raise ValueError(
                f"weight must be None or a 1-D tensor [nnz={nnz}] (the shape of col), got {_shape(weight)}"
            )
        if not weight.is_floating_point():
            raise ValueError(f"weight must be floating point, got {weight.dtype}")
        tensors["weight"] = weight
    devices = {t.device for t in tensors.values()}
    if len(devices) > 1:
        raise ValueError(f"{', '.join(tensors)} must be on one device, got {sorted(map(str, devices))}")
    if e and n == 0:
        raise ValueError("h must have N >= 1 rows when there are slow nodes (src, dst index it)")
    _check_range("src", src, n, "N")
    _check_range("dst", dst, n, "N")
    _check_range("col", col, n + e, "N+E")
    if indptr.device.type == "cpu":
        first, last = int(indptr[0]), int(indptr[-1])
        if first != 0 or last != nnz:
            raise ValueError(f"indptr must start at 0 and end at nnz={nnz} (len(col)), got {first} .. {last}")
        if indptr.shape[0] > 1 and bool((indptr[1:] < indptr[:-1]).any()):
            raise ValueError("indptr must be non-decreasing (a CSR row pointer)")


def _acc_dtype(h: torch.Tensor) -> torch.dtype:
    return torch.float64 if h.dtype == torch.float64 else torch.float32


def halfhop_propagate_reference(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    alpha: float,
    indptr: torch.Tensor,
    col: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> torch.Tensor:
    """``out [N+E, d]`` by materialising the slow rows and ``index_add_`` (module docstring)."""
    _check_args(h, src, dst, alpha, indptr, col, weight)
    n_rows = h.shape[0] + src.shape[0]
    acc = _acc_dtype(h)
    hf = h.to(acc)
    alpha = float(alpha)
    slow = alpha * hf[src.long()] + (1.0 - alpha) * hf[dst.long()]
    rows = torch.cat([hf, slow])
    lengths = (indptr[1:] - indptr[:-1]).long()
    target = torch.repeat_interleave(
        torch.arange(n_rows, device=h.device), lengths, output_size=col.shape[0]
    )  # the destination of each in-edge
    msg = rows[col.long()]
    if weight is not None:
        msg.mul_(weight.to(acc)[:, None])
    out = torch.zeros(n_rows, h.shape[1], dtype=acc, device=h.device).index_add_(0, target, msg)
    return out.to(h.dtype)


def triton_supports(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    alpha: float,
    indptr: torch.Tensor,
    col: torch.Tensor,
    weight: torch.Tensor | None = None,
) -> str | None:
    """``None`` when the Triton kernel handles these arguments, else why not."""
    if isinstance(h, torch.Tensor) and h.is_floating_point() and h.dtype not in TRITON_DTYPES:
        return f"h dtype {h.dtype} (supported: fp32, fp16, bf16)"
    if isinstance(weight, torch.Tensor) and weight.is_floating_point() and weight.dtype not in TRITON_DTYPES:
        return f"weight dtype {weight.dtype} (supported: fp32, fp16, bf16)"
    return None


if triton is not None:

    @triton.jit
    def _halfhop_spmm_kernel(
        h_ptr,
        src_ptr,
        dst_ptr,
        indptr_ptr,
        col_ptr,
        w_ptr,
        out_ptr,
        n_orig,
        n_rows,
        d,
        alpha,
        beta,
        s_h0,
        s_h1,
        s_src,
        s_dst,
        s_ptr,
        s_col,
        s_w,
        s_out,
        HAS_WEIGHT: tl.constexpr,
        BLOCK_R: tl.constexpr,
        BLOCK_D: tl.constexpr,
    ):
        # out[rows, cols] = sum_j w[j] * rows(col[j]) over each row's CSR segment; rows(u) is H[u] for
        # u < n_orig, else alpha * H[src[u - n_orig]] + beta * H[dst[u - n_orig]] (never stored).
        rows = tl.program_id(0) * BLOCK_R + tl.arange(0, BLOCK_R)
        cols = tl.program_id(1) * BLOCK_D + tl.arange(0, BLOCK_D)
        r_ok = rows < n_rows
        c_ok = cols < d
        rows64 = rows.to(tl.int64)
        h_cols = cols.to(tl.int64)[None, :] * s_h1
        start = tl.load(indptr_ptr + rows64 * s_ptr, mask=r_ok, other=0).to(tl.int64)
        end = tl.load(indptr_ptr + (rows64 + 1) * s_ptr, mask=r_ok, other=0).to(tl.int64)
        length = end - start
        steps = tl.max(length, axis=0)
        acc = tl.zeros((BLOCK_R, BLOCK_D), dtype=tl.float32)
        for j in range(0, steps):
            e_ok = r_ok & (j < length)
            nz = start + j
            u = tl.load(col_ptr + nz * s_col, mask=e_ok, other=0).to(tl.int64)
            if HAS_WEIGHT:
                w = tl.load(w_ptr + nz * s_w, mask=e_ok, other=0.0).to(tl.float32)
            else:
                w = tl.where(e_ok, 1.0, 0.0)
            slow = e_ok & (u >= n_orig)
            k = tl.where(slow, u - n_orig, 0)
            a_id = tl.where(slow, tl.load(src_ptr + k * s_src, mask=slow, other=0).to(tl.int64), u)
            b_id = tl.load(dst_ptr + k * s_dst, mask=slow, other=0).to(tl.int64)
            ha = tl.load(h_ptr + a_id[:, None] * s_h0 + h_cols, mask=e_ok[:, None] & c_ok[None, :], other=0.0)
            hb = tl.load(h_ptr + b_id[:, None] * s_h0 + h_cols, mask=slow[:, None] & c_ok[None, :], other=0.0)
            ca = tl.where(slow, alpha, 1.0)
            cb = tl.where(slow, beta, 0.0)
            row = ca[:, None] * ha.to(tl.float32) + cb[:, None] * hb.to(tl.float32)
            acc += w[:, None] * row
        out_ptrs = out_ptr + rows64[:, None] * s_out + cols.to(tl.int64)[None, :]
        tl.store(out_ptrs, acc.to(out_ptr.dtype.element_ty), mask=r_ok[:, None] & c_ok[None, :])


def _triton_ready(t: torch.Tensor, reason: str | None) -> None:
    if triton is None:
        raise KernelBackendError("triton is not importable")
    if t.device.type != "cuda" and not triton_interpreter_active():
        raise KernelBackendError(triton_cpu_error("halfhop_propagate", t.device))
    if reason is not None:
        raise ValueError(f"halfhop_propagate (Triton): unsupported input: {reason}")


def _power_of_two(name: str, value: int) -> None:
    if not isinstance(value, int) or value < 1 or value & (value - 1):
        raise ValueError(f"{name} must be a power of two, got {value!r}")


def halfhop_propagate_triton(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    alpha: float,
    indptr: torch.Tensor,
    col: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    block_rows: int | None = None,
    block_cols: int | None = None,
) -> torch.Tensor:
    """``out [N+E, d]`` by the Triton kernel, slow rows interpolated on the fly (module docstring).

    ``block_rows`` / ``block_cols`` (powers of two) are the destination rows and feature columns per
    program; defaults: 16 rows and up to 128 columns on CUDA, 16 rows and up to 64 in the interpreter.
    """
    _check_args(h, src, dst, alpha, indptr, col, weight)
    _triton_ready(h, triton_supports(h, src, dst, alpha, indptr, col, weight))
    n, d = h.shape
    n_rows = n + src.shape[0]
    out = torch.empty(n_rows, d, dtype=h.dtype, device=h.device)
    if n_rows == 0 or d == 0:
        return out
    interp = h.device.type != "cuda"
    if block_rows is None:
        block_rows = 16
    if block_cols is None:
        block_cols = max(16, min(64 if interp else 128, triton.next_power_of_2(d)))
    _power_of_two("block_rows", block_rows)
    _power_of_two("block_cols", block_cols)
    # empty index tensors may carry a null pointer: hand the kernel a valid (never read) one instead
    if src.numel() == 0:
        src = dst = torch.zeros(1, dtype=torch.int64, device=h.device)
    if col.numel() == 0:
        col = torch.zeros(1, dtype=torch.int64, device=h.device)
        weight = None
    alpha = float(alpha)
    grid = (triton.cdiv(n_rows, block_rows), triton.cdiv(d, block_cols))
    _halfhop_spmm_kernel[grid](
        h,
        src,
        dst,
        indptr,
        col,
        weight if weight is not None else col,
        out,
        n,
        n_rows,
        d,
        alpha,
        1.0 - alpha,
        h.stride(0),
        h.stride(1),
        src.stride(0),
        dst.stride(0),
        indptr.stride(0),
        col.stride(0),
        weight.stride(0) if weight is not None else 0,
        out.stride(0),
        HAS_WEIGHT=weight is not None,
        BLOCK_R=block_rows,
        BLOCK_D=block_cols,
        num_warps=4,
    )
    return out


def halfhop_propagate(
    h: torch.Tensor,
    src: torch.Tensor,
    dst: torch.Tensor,
    alpha: float,
    indptr: torch.Tensor,
    col: torch.Tensor,
    weight: torch.Tensor | None = None,
    *,
    backend: str | None = None,
) -> torch.Tensor:
    """One weighted aggregation over a Half-Hop upsampled graph whose slow rows are implicit: ``[N+E, d]``.

    ``h [N, d]`` (e.g. ``X @ W.T``), ``src``/``dst [E]`` the half-hopped edges, ``alpha`` the source
    weight, ``(indptr, col, weight)`` the upsampled graph's in-edges as CSR by destination
    (:func:`halfhop_csr`, :func:`halfhop_gcn_norm`); see the module docstring.  ``backend``
    (``auto``/``reference``/``triton``) overrides ``REPRO_KERNELS``; see :mod:`repro.kernels`.
    """
    _check_args(h, src, dst, alpha, indptr, col, weight)
    args = (h, src, dst, alpha, indptr, col) if weight is None else (h, src, dst, alpha, indptr, col, weight)
    return dispatch("halfhop_propagate", *args, backend=backend)(*args)


# --- graph helpers -------------------------------------------------------------------------------


def _check_edge_index(edge_index, num_nodes) -> None:
    if not isinstance(edge_index, torch.Tensor) or edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(
            f"edge_index must be a [2, nnz] integer tensor (row 0 source, row 1 target), got {_shape(edge_index)}"
        )
    if edge_index.dtype not in INDEX_DTYPES:
        raise ValueError(f"edge_index must be an int64 or int32 tensor, got {edge_index.dtype}")
    if isinstance(num_nodes, bool) or not isinstance(num_nodes, numbers.Integral) or num_nodes < 0:
        raise ValueError(f"num_nodes must be a non-negative integer, got {num_nodes!r}")
    _check_range("edge_index", edge_index, int(num_nodes), "num_nodes")


def halfhop_csr(
    edge_index: torch.Tensor, num_nodes: int, weight: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(indptr [num_nodes+1], col [nnz], weight [nnz])``: the in-edges of ``edge_index`` as CSR by destination.

    ``edge_index [2, nnz]`` PyG-style (row 0 source, row 1 target, ids in ``[0, num_nodes)``; for
    :func:`halfhop_propagate` ``num_nodes`` is ``N + E``).  The edges are stably sorted by target;
    ``weight [nnz]`` (default: fp32 ones) is permuted with them.  Indices keep ``edge_index``'s dtype.
    """
    _check_edge_index(edge_index, num_nodes)
    nnz = edge_index.shape[1]
    if weight is None:
        weight = torch.ones(nnz, dtype=torch.float32, device=edge_index.device)
    elif not isinstance(weight, torch.Tensor) or weight.dim() != 1 or weight.shape[0] != nnz:
        raise ValueError(f"weight must be None or a 1-D tensor [nnz={nnz}], got {_shape(weight)}")
    target = edge_index[1].long()
    order = torch.sort(target, stable=True).indices
    counts = torch.bincount(target, minlength=num_nodes)
    indptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=edge_index.device)
    torch.cumsum(counts, 0, out=indptr[1:])
    return indptr.to(edge_index.dtype), edge_index[0, order], weight[order]


def halfhop_gcn_norm(
    edge_index: torch.Tensor,
    num_nodes: int,
    edge_weight: torch.Tensor | None = None,
    *,
    add_self_loops: bool = True,
    dtype: torch.dtype = torch.float32,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """GCN's symmetric normalisation of the upsampled graph, as CSR: ``(indptr, col, weight)``.

    Matches ``torch_geometric``'s ``gcn_norm(edge_index, edge_weight, num_nodes,
    add_self_loops=add_self_loops)`` for ``GCNConv(normalize=True)``: existing self-loops are
    replaced by one self-loop per node (weight 1, or the existing loop's weight), the degree is the
    weighted **in**-degree on the upsampled graph (``num_nodes = N + E``: a slow node has in-degree
    2 plus its loop) and each edge ``u -> v`` gets ``deg[u]**-0.5 * w * deg[v]**-0.5`` (0 where a
    degree is 0).  Then :func:`halfhop_csr`.
    """
    _check_edge_index(edge_index, num_nodes)
    device = edge_index.device
    nnz = edge_index.shape[1]
    if edge_weight is None:
        w = torch.ones(nnz, dtype=dtype, device=device)
    elif not isinstance(edge_weight, torch.Tensor) or edge_weight.dim() != 1 or edge_weight.shape[0] != nnz:
        raise ValueError(f"edge_weight must be None or a 1-D tensor [nnz={nnz}], got {_shape(edge_weight)}")
    else:
        w = edge_weight.to(dtype)
    ei = edge_index
    if add_self_loops:
        keep = ei[0] != ei[1]
        loop_w = torch.ones(num_nodes, dtype=dtype, device=device)
        loop_w[ei[0, ~keep].long()] = w[~keep]
        loops = torch.arange(num_nodes, dtype=ei.dtype, device=device)
        ei = torch.cat([ei[:, keep], torch.stack([loops, loops])], dim=1)
        w = torch.cat([w[keep], loop_w])
    src, dst = ei[0].long(), ei[1].long()
    deg = torch.zeros(num_nodes, dtype=dtype, device=device).index_add_(0, dst, w)
    inv_sqrt = deg.pow(-0.5)
    inv_sqrt.masked_fill_(torch.isinf(inv_sqrt), 0.0)
    return halfhop_csr(ei, num_nodes, inv_sqrt[src] * w * inv_sqrt[dst])


# --- benchmarks ----------------------------------------------------------------------------------


def _random_graph(num_nodes: int, avg_degree: int, g: torch.Generator) -> torch.Tensor:
    """A random directed graph without self-loops, ``avg_degree * num_nodes`` edges (before the loop filter)."""
    edges = torch.randint(0, num_nodes, (2, num_nodes * avg_degree), generator=g)
    return edges[:, edges[0] != edges[1]]


def bench_inputs(
    num_nodes: int, avg_degree: int, d: int, p: float, dtype: torch.dtype, device: torch.device | str, seed: int = 0
) -> tuple:
    """``(h, src, dst, alpha, indptr, col, weight)`` for a random graph upsampled with GCN weights."""
    from repro.graphs.halfhop import half_hop_structure, slow_node_endpoints  # lazy: loads torch_geometric

    alpha = 0.5
    g = torch.Generator(device="cpu").manual_seed(seed)
    edge_index = _random_graph(num_nodes, avg_degree, g)
    graph = half_hop_structure(edge_index, num_nodes, alpha=alpha, p=p, generator=g)
    src, dst = slow_node_endpoints(graph)
    indptr, col, weight = halfhop_gcn_norm(graph.edge_index, graph.num_nodes)
    h = torch.randn(num_nodes, d, generator=g) / math.sqrt(d)
    return (
        tuple(t.to(device) for t in (h.to(dtype), src, dst))
        + (alpha,)
        + tuple(t.to(device) for t in (indptr, col, weight))
    )


def _bench_cases(device: torch.device) -> list[BenchCase]:
    # (N, average out-degree, d, p, dtype): a 20k-node graph with all 200k edges half-hopped, d = 256
    # (BGRL's first GCN layer width), and on CUDA a Coauthor-Physics-sized one (N = 34,493,
    # ~14.4 edges per node -> ~496k half-hopped edges).
    if device.type == "cuda":
        shapes = [
            (20_000, 10, 256, 1.0, torch.float32),
            (20_000, 10, 256, 1.0, torch.float16),
            (34_493, 14, 256, 1.0, torch.float16),
            (2_000, 10, 64, 0.5, torch.float32),
        ]
    else:
        shapes = [(20_000, 10, 256, 1.0, torch.float32), (2_000, 10, 64, 0.5, torch.float32)]

    def maker(n, deg, d, p, dtype):
        def make():
            return bench_inputs(n, deg, d, p, dtype, device), {}

        return make

    return [
        BenchCase(shape=f"N{n}deg{deg}d{d}p{p:g}", dtype=str(dt).removeprefix("torch."), make=maker(n, deg, d, p, dt))
        for n, deg, d, p, dt in shapes
    ]


KERNEL = register(
    Kernel(
        name="halfhop_propagate",
        reference=halfhop_propagate_reference,
        triton=halfhop_propagate_triton if triton is not None else None,
        summary="Half-Hop SpMM over the upsampled graph: slow-node rows alpha*H[src] + (1-alpha)*H[dst] "
        "are interpolated while aggregating, never materialised",
        paper="Half-Hop (ICML 2023): graph upsampling with slow nodes; hidden-space interpolation (brief §1.1, §5)",
        triton_supports=triton_supports,
        bench_cases=_bench_cases,
    )
)
