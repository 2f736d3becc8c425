"""repro.kernels.halfhop_propagate: Half-Hop SpMM with implicit slow-node rows.

The reference is checked against a hand-computed example, against an independent materialised
SpMM (``torch.sparse`` CSR matmul over ``cat([H, alpha H[src] + (1-alpha) H[dst]])``), and end to
end against torch_geometric: ``halfhop_propagate(X @ W.T, ...) + bias`` on a graph upsampled by
``repro.graphs.halfhop.half_hop`` (``torch_geometric.transforms.HalfHop``; its ``hh_src``/``hh_dst``
are the kernel's ``src``/``dst``) equals ``GCNConv`` on the materialised upsampled graph.  The
Triton kernel is checked against the reference through Triton's CPU interpreter: the
``interpreter`` tests are skipped in the normal run and ``test_triton_interpreter_subprocess`` runs
them in a fresh pytest with ``TRITON_INTERPRET=1`` set before triton is imported.  The CUDA tests
run only where a GPU is present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch_geometric.data import Data
from torch_geometric.nn import GCNConv
from torch_geometric.nn.conv.gcn_conv import gcn_norm

from conftest import run_interpreter_tests
from repro import kernels
from repro.graphs.halfhop import half_hop, half_hop_structure, slow_node_endpoints
from repro.kernels import KERNELS, KernelBackendError, dispatch, select_backend
from repro.kernels.halfhop_propagate import (
    halfhop_csr,
    halfhop_gcn_norm,
    halfhop_propagate,
    halfhop_propagate_reference,
    halfhop_propagate_triton,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")

# (N original nodes, random directed edges, p, d): d not a power of two, d = 1, several column
# blocks (d = 70), partial and full half-hopping
SHAPES = [
    (12, 40, 1.0, 37),
    (25, 90, 0.5, 16),
    (7, 20, 0.7, 1),
    (30, 120, 1.0, 70),
]


def make_case(n, n_edges, p, d, dtype=torch.float32, seed=0, device="cpu", alpha=0.3):
    """A random graph (with a few self-loops and duplicate edges) upsampled by Half-Hop, GCN weights, H."""
    g = torch.Generator().manual_seed(seed)
    edge_index = torch.randint(0, n, (2, n_edges), generator=g)
    edge_index = torch.cat([edge_index, torch.tensor([[1, 2], [1, 2]]), edge_index[:, :3]], dim=1)
    graph = half_hop_structure(edge_index, n, alpha=alpha, p=p, generator=g)
    up = graph.edge_index
    src, dst = slow_node_endpoints(graph)
    indptr, col, weight = halfhop_gcn_norm(
        up, graph.num_nodes, dtype=torch.float32 if dtype != torch.float64 else dtype
    )
    h = torch.randn(n, d, generator=g).to(dtype)
    to = dict(device=device)
    return dict(
        h=h.to(**to),
        src=src.to(**to),
        dst=dst.to(**to),
        alpha=alpha,
        indptr=indptr.to(**to),
        col=col.to(**to),
        weight=weight.to(**to),
        edge_index_up=up.to(**to),
        edge_index=edge_index.to(**to),
    )


def args_of(c, **change):
    c = {**c, **change}
    return c["h"], c["src"], c["dst"], c["alpha"], c["indptr"], c["col"], c["weight"]


def materialised_spmm(h, src, dst, alpha, indptr, col, weight):
    """An independent check: torch.sparse CSR matmul over the materialised rows (float64)."""
    h = h.double()
    rows = torch.cat([h, alpha * h[src.long()] + (1 - alpha) * h[dst.long()]])
    n_rows = rows.shape[0]
    values = torch.ones(col.shape[0], dtype=torch.float64) if weight is None else weight.double()
    return sparse_csr(indptr, col, values, n_rows) @ rows


def sparse_csr(indptr, col, values, n_rows):
    """The CSR graph as a torch.sparse matrix ``[n_rows, n_rows]`` (the independent SpMM of these tests).

    COO rather than torch's CSR layout, which wants sorted distinct columns per row; duplicates sum.
    """
    rows = torch.repeat_interleave(torch.arange(n_rows), indptr.long().diff())
    indices = torch.stack([rows, col.long()])
    return torch.sparse_coo_tensor(indices, values, size=(n_rows, n_rows), check_invariants=True)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


def test_reference_hand_example():
    """N = 3, half-hopped edge 0 -> 2 (slow node 3), kept edge 0 -> 1, self-loop 1 -> 1."""
    h = torch.tensor([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=torch.float64)
    src, dst = torch.tensor([0]), torch.tensor([2])
    # slow row: 0.25 * [1, 2] + 0.75 * [5, 6] = [4, 5]
    edge_index = torch.tensor([[0, 1, 0, 3, 2], [1, 1, 3, 2, 3]])
    w = torch.tensor([0.5, 10.0, 2.0, 3.0, -1.0], dtype=torch.float64)
    indptr, col, weight = halfhop_csr(edge_index, 4, w)
    assert indptr.tolist() == [0, 0, 2, 3, 5]
    assert col.tolist() == [0, 1, 3, 0, 2]
    assert weight.tolist() == [0.5, 10.0, 3.0, 2.0, -1.0]
    expected = torch.tensor(
        [
            [0.0, 0.0],  # node 0: no in-edge
            [30.5, 41.0],  # 0.5 * [1, 2] + 10 * [3, 4]
            [12.0, 15.0],  # 3 * slow [4, 5]
            [-3.0, -2.0],  # 2 * [1, 2] - [5, 6]
        ],
        dtype=torch.float64,
    )
    got = halfhop_propagate_reference(h, src, dst, 0.25, indptr, col, weight)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    # weight=None: all ones
    expected_ones = torch.tensor([[0.0, 0.0], [4.0, 6.0], [4.0, 5.0], [6.0, 8.0]], dtype=torch.float64)
    torch.testing.assert_close(halfhop_propagate_reference(h, src, dst, 0.25, indptr, col), expected_ones)
    # the public function with fp32 H returns fp32
    out32 = halfhop_propagate(h.float(), src, dst, 0.25, indptr, col, weight.float())
    assert out32.dtype == torch.float32
    torch.testing.assert_close(out32, expected.float())


def test_halfhop_csr_sorts_by_destination_stably():
    edge_index = torch.tensor([[2, 0, 1, 3, 0], [1, 3, 1, 0, 1]], dtype=torch.int32)
    indptr, col, weight = halfhop_csr(edge_index, 5)
    assert indptr.dtype == col.dtype == torch.int32 and weight.dtype == torch.float32
    assert indptr.tolist() == [0, 1, 4, 4, 5, 5]
    assert col.tolist() == [3, 2, 1, 0, 0]  # destination 1 keeps the input order 2, 1, 0
    assert torch.equal(weight, torch.ones(5))


def test_gcn_norm_matches_pyg():
    c = make_case(20, 70, 0.6, 3, dtype=torch.float64, seed=4)
    up = c["edge_index_up"]
    n_rows = 20 + c["src"].shape[0]
    dense = torch.zeros(n_rows, n_rows, dtype=torch.float64)
    for weights in (None, torch.rand(up.shape[1], dtype=torch.float64) + 0.5):
        ei, w = gcn_norm(up, weights, n_rows, add_self_loops=True, dtype=torch.float64)
        indptr, col, got_w = halfhop_gcn_norm(up, n_rows, weights, dtype=torch.float64)
        rows = torch.repeat_interleave(torch.arange(n_rows), indptr.diff())
        expected = dense.clone().index_put_((ei[1], ei[0]), w, accumulate=True)
        got = dense.clone().index_put_((rows, col), got_w, accumulate=True)
        torch.testing.assert_close(got, expected)


@pytest.mark.parametrize("p", [1.0, 0.6])
def test_reference_equals_pyg_gcnconv_on_halfhop_graph(p):
    """GCN layer 1 on the upsampled graph without materialising slow features (float64)."""
    n, f, out_dim, alpha = 24, 9, 5, 0.35
    g = torch.Generator().manual_seed(7)
    edge_index = torch.randint(0, n, (2, 80), generator=g)
    edge_index = torch.cat([edge_index, torch.tensor([[4], [4]])], dim=1)  # a self-loop
    x = torch.randn(n, f, generator=g, dtype=torch.float64)
    data = half_hop(Data(x=x, edge_index=edge_index), alpha=alpha, p=p, generator=2)  # PyG's HalfHop
    n_slow = data.x.shape[0] - n
    conv = GCNConv(f, out_dim, normalize=True, add_self_loops=True).double()
    with torch.no_grad():
        conv.bias.normal_()
        expected = conv(data.x, data.edge_index)
        src, dst = slow_node_endpoints(data)
        indptr, col, weight = halfhop_gcn_norm(data.edge_index, n + n_slow, dtype=torch.float64)
        h = x @ conv.lin.weight.T  # N x d only: the slow rows never exist
        got = halfhop_propagate(h, src, dst, alpha, indptr, col, weight) + conv.bias
    assert got.shape == (n + n_slow, out_dim)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("alpha", [0.0, 1.0, 0.3])
def test_reference_alpha_limits_and_materialised_spmm(alpha):
    c = make_case(*SHAPES[0], dtype=torch.float64, seed=5, alpha=alpha)
    h, src, dst = c["h"], c["src"], c["dst"]
    got = halfhop_propagate_reference(*args_of(c))
    torch.testing.assert_close(got, materialised_spmm(*args_of(c)), rtol=1e-12, atol=1e-12)
    if alpha in (0.0, 1.0):  # the slow node copies one endpoint: dst at alpha 0, src at alpha 1
        copy = dst if alpha == 0.0 else src
        rows = torch.cat([h, h[copy]])
        n_rows = rows.shape[0]
        torch.testing.assert_close(
            got, sparse_csr(c["indptr"], c["col"], c["weight"], n_rows) @ rows, rtol=1e-12, atol=1e-12
        )


def test_reference_without_slow_nodes_is_plain_spmm():
    n, d = 10, 6
    g = torch.Generator().manual_seed(6)
    edge_index = torch.randint(0, n, (2, 40), generator=g)
    edge_index = edge_index[:, edge_index[0] != edge_index[1]]
    graph = half_hop_structure(edge_index, n, p=0.0)
    src, dst = slow_node_endpoints(graph)
    assert src.numel() == dst.numel() == 0 and torch.equal(graph.edge_index, edge_index)
    weights = torch.rand(edge_index.shape[1], generator=g, dtype=torch.float64)
    indptr, col, weight = halfhop_csr(edge_index, n, weights)
    h = torch.randn(n, d, generator=g, dtype=torch.float64)
    empty = torch.zeros(0, dtype=torch.long)
    got = halfhop_propagate(h, empty, empty, 0.5, indptr, col, weight)
    torch.testing.assert_close(got, sparse_csr(indptr, col, weight, n) @ h, rtol=1e-12, atol=1e-12)
    # no edges at all: zeros
    zeros = halfhop_propagate(h, empty, empty, 0.5, torch.zeros(n + 1, dtype=torch.long), empty)
    assert torch.equal(zeros, torch.zeros_like(h))


def _bad_args():
    c = make_case(8, 25, 1.0, 5)
    h, src, dst, alpha, indptr, col, weight = args_of(c)
    n, e, nnz = h.shape[0], src.shape[0], col.shape[0]
    good = dict(h=h, src=src, dst=dst, alpha=alpha, indptr=indptr, col=col, weight=weight)
    shuffled = indptr.clone()
    shuffled[1] = nnz  # still 0 .. nnz at the ends, but decreasing after row 1
    short = indptr.clone()
    short[-1] = nnz - 1
    return [
        ("h", dict(h=h[0]), "h must be a 2-D tensor"),
        ("h", dict(h=h.long()), "h must be floating point"),
        ("h", dict(h=h.to("meta")), "h, src, dst, indptr, col, weight must be on one device"),
        ("src", dict(src=src[None]), "src must be a 1-D integer tensor"),
        ("src", dict(src=src.float()), "src must be an int64 or int32"),
        ("src", dict(src=src + n), rf"src values must lie in \[0, N={n}\)"),
        ("dst", dict(dst=dst[:-1]), rf"dst \({e - 1},\) must be \[E={e}\]"),
        ("dst", dict(dst=dst.to(torch.int16)), "dst must be an int64 or int32"),
        ("dst", dict(dst=dst - n), rf"dst values must lie in \[0, N={n}\)"),
        ("alpha", dict(alpha=1.5), r"alpha must be a real number in \[0, 1\]"),
        ("alpha", dict(alpha=-0.1), r"alpha must be a real number in \[0, 1\]"),
        ("alpha", dict(alpha=True), r"alpha must be a real number in \[0, 1\]"),
        ("alpha", dict(alpha=torch.tensor(0.5)), r"alpha must be a real number in \[0, 1\]"),
        ("indptr", dict(indptr=indptr[:-1]), rf"indptr .* must be \[N\+E\+1={n + e + 1}\]"),
        ("indptr", dict(indptr=indptr.double()), "indptr must be an int64 or int32"),
        ("indptr", dict(indptr=short), rf"indptr must start at 0 and end at nnz={nnz}"),
        ("indptr", dict(indptr=shuffled), "indptr must be non-decreasing"),
        ("col", dict(col=col[None]), "col must be a 1-D integer tensor"),
        ("col", dict(col=col + n + e), rf"col values must lie in \[0, N\+E={n + e}\)"),
        ("weight", dict(weight=weight[:-1]), rf"weight must be None or a 1-D tensor \[nnz={nnz}\]"),
        ("weight", dict(weight=weight.long()), "weight must be floating point"),
    ], good


@pytest.mark.parametrize("case", range(len(_bad_args()[0])))
def test_bad_args_raise(case):
    cases, good = _bad_args()
    name, change, match = cases[case]
    assert name in match
    for fn in (halfhop_propagate, halfhop_propagate_reference):
        with pytest.raises(ValueError, match=match):
            fn(**{**good, **change})


def test_helpers_bad_args_raise():
    edge_index = torch.tensor([[0, 1, 2], [1, 2, 0]])
    with pytest.raises(ValueError, match=r"edge_index must be a \[2, nnz\]"):
        halfhop_csr(edge_index[0], 3)
    with pytest.raises(ValueError, match="edge_index must be an int64 or int32"):
        halfhop_csr(edge_index.float(), 3)
    with pytest.raises(ValueError, match=r"edge_index values must lie in \[0, num_nodes=2\)"):
        halfhop_csr(edge_index, 2)
    with pytest.raises(ValueError, match=r"weight must be None or a 1-D tensor \[nnz=3\]"):
        halfhop_csr(edge_index, 3, torch.ones(2))
    with pytest.raises(ValueError, match=r"edge_weight must be None or a 1-D tensor \[nnz=3\]"):
        halfhop_gcn_norm(edge_index, 3, torch.ones(4))
    # the slow nodes' endpoints come from repro.graphs.halfhop, not from an arbitrary edge_index
    with pytest.raises(ValueError, match="not produced by half_hop"):
        slow_node_endpoints(Data(edge_index=edge_index, num_nodes=3))


# --- dispatcher ---------------------------------------------------------------------------------


def test_registry_and_cpu_dispatch(clean_env):
    kernel = KERNELS["halfhop_propagate"]
    assert "Half-Hop" in kernel.paper and kernel.triton is halfhop_propagate_triton
    cases = kernel.bench_cases(torch.device("cpu"))
    assert cases and all(bc.dtype == "float32" for bc in cases)
    assert cases[0].shape == "N20000deg10d256p1"
    args = args_of(make_case(*SHAPES[1]))
    assert select_backend("halfhop_propagate", *args) == "reference"
    assert dispatch("halfhop_propagate", *args) is halfhop_propagate_reference
    clean_env.setenv("REPRO_KERNELS", "reference")
    assert torch.equal(halfhop_propagate(*args), halfhop_propagate_reference(*args))
    assert kernel.triton_supports(*args) is None
    assert "float64" in kernel.triton_supports(args[0].double(), *args[1:])
    assert "weight dtype" in kernel.triton_supports(*args[:-1], args[-1].double())


def test_bench_case_builds():
    args = KERNELS["halfhop_propagate"].bench_cases(torch.device("cpu"))[-1].make()[0]
    h, src, dst, alpha, indptr, col, weight = args
    assert h.shape == (2000, 64) and indptr.shape == (2000 + src.shape[0] + 1,)
    out = halfhop_propagate_reference(*args)
    torch.testing.assert_close(out.double(), materialised_spmm(*args), rtol=1e-5, atol=1e-6)


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    args = args_of(make_case(*SHAPES[0]))
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        halfhop_propagate(*args, backend="triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        halfhop_propagate_triton(*args)
    clean_env.setenv("REPRO_KERNELS", "triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        halfhop_propagate(*args)


# --- Triton through the interpreter (CPU) ------------------------------------------------------


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(SHAPES) + 5, out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("shape", SHAPES)
def test_interpreter_triton_matches_reference_fp32(shape):
    c = make_case(*shape, seed=shape[0])
    got = halfhop_propagate_triton(*args_of(c))
    expected = halfhop_propagate_reference(*args_of(c))
    assert got.shape == expected.shape and got.dtype == torch.float32 and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(got.double(), materialised_spmm(*args_of(c)), rtol=1e-5, atol=1e-6)


@needs_interpreter
def test_interpreter_int32_strided_blocks_and_no_weight():
    c = make_case(20, 70, 0.8, 37, seed=9, alpha=0.8)
    expected = halfhop_propagate_reference(*args_of(c))
    as_int32 = {k: c[k].int() for k in ("src", "dst", "indptr", "col")}
    # int32 indices, small tiles (several row and column blocks)
    got = halfhop_propagate_triton(*args_of(c, **as_int32), block_rows=4, block_cols=16)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    # non-contiguous H: a transposed copy and a column slice of a wider matrix
    ht = c["h"].t().contiguous().t()
    wide = torch.randn(20, 50)
    wide[:, 5:42] = c["h"]
    hs = wide[:, 5:42]
    assert not ht.is_contiguous() and not hs.is_contiguous()
    for h in (ht, hs):
        torch.testing.assert_close(halfhop_propagate_triton(*args_of(c, h=h)), expected, rtol=1e-5, atol=1e-6)
    # strided index and weight vectors
    strided = {k: torch.stack([c[k], c[k]], dim=1)[:, 0] for k in ("src", "dst", "indptr", "col", "weight")}
    assert strided["col"].stride(0) == 2
    torch.testing.assert_close(halfhop_propagate_triton(*args_of(c, **strided)), expected, rtol=1e-5, atol=1e-6)
    # weight=None: all ones
    got = halfhop_propagate_triton(*args_of(c, weight=None))
    torch.testing.assert_close(got, halfhop_propagate_reference(*args_of(c, weight=None)), rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreter_triton_half_precision(dtype):
    c = make_case(16, 60, 1.0, 24, dtype=dtype, seed=8)
    got = halfhop_propagate_triton(*args_of(c, weight=c["weight"].to(dtype)))
    assert got.dtype == dtype
    tol = 1e-2 if dtype == torch.float16 else 5e-2
    expected = halfhop_propagate_reference(*args_of(c))
    torch.testing.assert_close(got.float(), expected.float(), rtol=tol, atol=tol)
    exact = materialised_spmm(*args_of(c))
    torch.testing.assert_close(got.double(), exact, rtol=tol, atol=tol)


@needs_interpreter
def test_interpreter_empty_and_dispatch(clean_env):
    c = make_case(*SHAPES[1], seed=2)
    args = args_of(c)
    n, d = c["h"].shape
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("halfhop_propagate", *args) is halfhop_propagate_triton
    torch.testing.assert_close(halfhop_propagate(*args), halfhop_propagate_reference(*args), rtol=1e-5, atol=1e-6)
    # no slow nodes: a plain SpMM over the original graph
    indptr, col, weight = halfhop_csr(c["edge_index"], n)
    empty = torch.zeros(0, dtype=torch.int32)
    got = halfhop_propagate(c["h"], empty, empty, 0.5, indptr, col, weight)
    torch.testing.assert_close(got, sparse_csr(indptr, col, weight, n) @ c["h"])
    # no edges at all, and d = 0
    zeros = halfhop_propagate(c["h"], empty, empty, 0.5, torch.zeros(n + 1, dtype=torch.long), empty)
    assert torch.equal(zeros, torch.zeros(n, d))
    assert halfhop_propagate(*args_of(c, h=c["h"][:, :0])).shape == (n + c["src"].shape[0], 0)
    # fp64 has no Triton path
    with pytest.raises(KernelBackendError, match="float64"):
        halfhop_propagate(*args_of(c, h=c["h"].double()))
    clean_env.delenv("REPRO_KERNELS")
    assert select_backend("halfhop_propagate", *args) == "reference"  # auto: never the interpreter


@needs_interpreter
def test_interpreter_gcn_layer_matches_pyg():
    n, f, out_dim, alpha = 18, 11, 13, 0.6
    g = torch.Generator().manual_seed(12)
    edge_index = torch.randint(0, n, (2, 60), generator=g)
    x = torch.randn(n, f, generator=g)
    data = half_hop(Data(x=x, edge_index=edge_index), alpha=alpha, p=0.8, generator=3)  # PyG's HalfHop
    n_slow = data.x.shape[0] - n
    conv = GCNConv(f, out_dim)
    with torch.no_grad():
        conv.bias.normal_()
        expected = conv(data.x, data.edge_index)
        src, dst = slow_node_endpoints(data)
        indptr, col, weight = halfhop_gcn_norm(data.edge_index, n + n_slow)
        got = halfhop_propagate_triton(x @ conv.lin.weight.T, src, dst, alpha, indptr, col, weight) + conv.bias
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(2000, 20000, 1.0, 256), (500, 4000, 0.5, 100), *SHAPES])
def test_triton_cuda_matches_reference(clean_env, dtype, shape):
    c = make_case(*shape, dtype=dtype, seed=1, device="cuda")
    args = args_of(c)
    assert select_backend("halfhop_propagate", *args) == "triton"
    got = halfhop_propagate(*args)
    expected = halfhop_propagate_reference(*args)
    assert got.dtype == dtype and got.shape == expected.shape
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    torch.testing.assert_close(got.float(), expected.float(), **tol)
    # int32 indices and non-contiguous H
    as_int32 = {k: c[k].int() for k in ("src", "dst", "indptr", "col")}
    got = halfhop_propagate(*args_of(c, h=c["h"].t().contiguous().t(), **as_int32))
    torch.testing.assert_close(got.float(), expected.float(), **tol)


@needs_cuda
@needs_triton
def test_triton_cuda_bench_case(clean_env):
    case = KERNELS["halfhop_propagate"].bench_cases(torch.device("cuda"))[1]
    args, _ = case.make()
    got = halfhop_propagate(*args, backend="triton")
    torch.testing.assert_close(got.float(), halfhop_propagate_reference(*args).float(), rtol=2e-2, atol=2e-2)
