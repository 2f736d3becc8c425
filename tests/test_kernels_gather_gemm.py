"""repro.kernels.gather_gemm: gather-GEMM and GEMM with scatter-add epilogue (DISP-LLM).

The references are checked against the explicit maths (a Python loop over the index table and the
definition of DISP-LLM's masked formulation).  The Triton kernels are checked against the
references through Triton's CPU interpreter: as in tests/test_kernels.py the ``interpreter`` tests
are skipped in the normal run and ``test_triton_interpreter_subprocess`` runs them in a fresh
pytest with ``TRITON_INTERPRET=1`` set before triton is imported.  The CUDA tests run only where a
GPU is present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_interpreter_tests
from repro import kernels
from repro.kernels import KERNELS, KernelBackendError, dispatch, select_backend
from repro.kernels.gather_gemm import (
    gather_linear,
    gather_linear_reference,
    gather_linear_triton,
    linear_scatter_add,
    linear_scatter_add_reference,
    linear_scatter_add_triton,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")

# (lead dims, d, k, n, m): odd widths, k > 16 and < 16, several K tiles, a single row
SHAPES = [
    ((3, 5), 37, 19, 23, 29),
    ((7,), 20, 5, 3, 11),
    ((2, 1, 3), 64, 50, 40, 70),
    ((1,), 9, 9, 1, 1),
]


def make_case(lead, d, k, n, m, dtype=torch.float32, seed=0, device="cpu", bias=True):
    """Inputs of both kernels: x [..., d], a random unsorted index [k], weights and biases."""
    g = torch.Generator().manual_seed(seed)
    to = dict(dtype=dtype, device=device)
    x = torch.randn(*lead, d, generator=g).to(**to)
    index = torch.randperm(d, generator=g)[:k].to(device)
    w_in = (torch.randn(n, k, generator=g) / k**0.5).to(**to)
    b_in = torch.randn(n, generator=g).to(**to) if bias else None
    h = torch.randn(*lead, m, generator=g).to(**to)
    w_out = (torch.randn(k, m, generator=g) / m**0.5).to(**to)
    b_out = torch.randn(k, generator=g).to(**to) if bias else None
    return dict(x=x, index=index, w_in=w_in, b_in=b_in, h=h, w_out=w_out, b_out=b_out)


def gather_args(c):
    return c["x"], c["index"], c["w_in"], c["b_in"]


def scatter_args(c):
    return c["h"], c["w_out"], c["index"], c["x"], c["b_out"]


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("bias", [True, False])
def test_reference_gather_equals_explicit_math(bias):
    c = make_case((4, 3), 13, 7, 5, 6, dtype=torch.float64, seed=1, bias=bias)
    x, index, w, b = gather_args(c)
    expected = torch.zeros(4, 3, 5, dtype=torch.float64)
    for j in range(5):
        for t in range(7):
            expected[..., j] += x[..., int(index[t])] * w[j, t]
        if b is not None:
            expected[..., j] += b[j]
    got = gather_linear_reference(x, index, w, b)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    # repeated indices are allowed on the read side
    rep = torch.tensor([2, 2, 0])
    torch.testing.assert_close(gather_linear_reference(x, rep, w[:, :3]), x[..., [2, 2, 0]] @ w[:, :3].T)


@pytest.mark.parametrize("bias", [True, False])
def test_reference_scatter_equals_explicit_math(bias):
    c = make_case((4, 3), 13, 7, 5, 6, dtype=torch.float64, seed=2, bias=bias)
    h, w, index, residual, b = scatter_args(c)
    expected = residual.clone()
    y = h @ w.T + (b if b is not None else 0)
    for t in range(7):
        expected[..., int(index[t])] += y[..., t]
    got = linear_scatter_add_reference(h, w, index, residual, b)
    torch.testing.assert_close(got, expected, rtol=1e-12, atol=1e-12)
    untouched = torch.ones(13, dtype=torch.bool)
    untouched[index] = False
    assert torch.equal(got[..., untouched], residual[..., untouched])
    assert got.data_ptr() != residual.data_ptr()


def test_reference_equals_disp_llm_mask_formulation():
    """Gather/scatter equals the masked full-width formulation (DISP-LLM §3.1)."""
    c = make_case((2, 6), 16, 10, 8, 9, dtype=torch.float64, seed=3)
    x, index, w_in, _ = gather_args(c)
    full_in = torch.zeros(8, 16, dtype=torch.float64)
    full_in[:, index] = w_in  # the full weight with pruned input columns zero
    torch.testing.assert_close(gather_linear_reference(x, index, w_in), x @ full_in.T)
    h, w_out, _, residual, _ = scatter_args(c)
    full_out = torch.zeros(16, 9, dtype=torch.float64)
    full_out[index] = w_out  # pruned output rows zero
    torch.testing.assert_close(linear_scatter_add_reference(h, w_out, index, residual), residual + h @ full_out.T)


def _bad_gather():
    c = make_case((2, 3), 10, 4, 5, 6)
    x, index, w, b = gather_args(c)
    good = dict(x=x, index=index, weight=w, bias=b)
    return [
        ("x", dict(x=torch.tensor(1.0)), "x must be a tensor"),
        ("x", dict(x=x.int()), "x must be floating point"),
        ("weight", dict(weight=w[0]), "weight must be a 2-D tensor"),
        ("weight", dict(weight=w[:, :3]), r"weight \(5, 3\) must be \[n, k=4\]"),
        ("weight", dict(weight=w.double()), "x, weight, bias must share one dtype"),
        ("index", dict(index=index[None]), "index must be a 1-D"),
        ("index", dict(index=index.float()), "index must be an int64 or int32"),
        ("index", dict(index=index + 10), r"index values must lie in \[0, d=10\)"),
        ("index", dict(index=index - 10), r"index values must lie in \[0, d=10\)"),
        ("bias", dict(bias=b[:3]), r"bias must be None or a 1-D tensor \[5\]"),
        ("bias", dict(bias=b.half()), "x, weight, bias must share one dtype"),
    ], good


def _bad_scatter():
    c = make_case((2, 3), 10, 4, 5, 6)
    h, w, index, residual, b = scatter_args(c)
    good = dict(h=h, weight=w, index=index, residual=residual, bias=b)
    return [
        ("h", dict(h=torch.tensor(1.0)), "h must be a tensor"),
        ("h", dict(h=h.long()), "h must be floating point"),
        ("weight", dict(weight=w[None]), "weight must be a 2-D tensor"),
        ("weight", dict(weight=w[:, :5]), r"weight \(4, 5\) must be \[k, m=6\]"),
        ("index", dict(index=index[:3]), r"index \(3,\) must be \[k=4\]"),
        ("index", dict(index=torch.tensor([1, 2, 1, 3])), "index values must be distinct"),
        ("index", dict(index=index + 10), r"index values must lie in \[0, d=10\)"),
        ("residual", dict(residual=residual[0]), "residual must be a tensor"),
        ("residual", dict(residual=residual[:1]), r"residual \(1, 3, 10\) must have the leading dims of h"),
        ("residual", dict(residual=residual.half()), "h, weight, residual, bias must share one dtype"),
        ("bias", dict(bias=b[None]), r"bias must be None or a 1-D tensor \[4\]"),
    ], good


@pytest.mark.parametrize("case", range(len(_bad_gather()[0])))
def test_gather_bad_args_raise(case):
    cases, good = _bad_gather()
    name, change, match = cases[case]
    assert name in match
    for fn in (gather_linear, gather_linear_reference):
        with pytest.raises(ValueError, match=match):
            fn(**{**good, **change})


@pytest.mark.parametrize("case", range(len(_bad_scatter()[0])))
def test_scatter_bad_args_raise(case):
    cases, good = _bad_scatter()
    name, change, match = cases[case]
    assert name in match
    for fn in (linear_scatter_add, linear_scatter_add_reference):
        with pytest.raises(ValueError, match=match):
            fn(**{**good, **change})


# --- dispatcher ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["gather_linear", "linear_scatter_add"])
def test_registry_and_cpu_dispatch(clean_env, name):
    kernel = KERNELS[name]
    assert "DISP-LLM" in kernel.paper
    assert "gather_gemm" in kernels.__all__
    cases = kernel.bench_cases(torch.device("cpu"))
    assert cases and all(bc.dtype == "float32" for bc in cases)
    args, kwargs = cases[0].make()
    out = kernel.reference(*args, **kwargs)
    assert out.shape[:-1] == args[0].shape[:-1]
    c = make_case(*SHAPES[0])
    args = gather_args(c) if name == "gather_linear" else scatter_args(c)
    public = gather_linear if name == "gather_linear" else linear_scatter_add
    assert select_backend(name, *args) == "reference"
    assert dispatch(name, *args) is kernel.reference
    clean_env.setenv("REPRO_KERNELS", "reference")
    assert torch.equal(public(*args), kernel.reference(*args))


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    c = make_case(*SHAPES[0])
    for public, triton_fn, args in (
        (gather_linear, gather_linear_triton, gather_args(c)),
        (linear_scatter_add, linear_scatter_add_triton, scatter_args(c)),
    ):
        with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
            public(*args, backend="triton")
        with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
            triton_fn(*args)


# --- Triton through the interpreter (CPU) ------------------------------------------------------


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(SHAPES) + 3, out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("bias", [True, False])
def test_interpreter_triton_matches_reference_fp32(shape, bias):
    c = make_case(*shape, seed=shape[1], bias=bias)
    got = gather_linear_triton(*gather_args(c))
    expected = gather_linear_reference(*gather_args(c))
    assert got.shape == expected.shape and got.dtype == torch.float32 and got.is_contiguous()
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
    got = linear_scatter_add_triton(*scatter_args(c))
    expected = linear_scatter_add_reference(*scatter_args(c))
    assert got.shape == expected.shape and got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreter_triton_half_precision(dtype):
    c = make_case((3, 5), 37, 19, 23, 29, dtype=dtype, seed=7)
    tol = 1e-2 if dtype == torch.float16 else 5e-2
    for triton_fn, ref_fn, args in (
        (gather_linear_triton, gather_linear_reference, gather_args(c)),
        (linear_scatter_add_triton, linear_scatter_add_reference, scatter_args(c)),
    ):
        got = triton_fn(*args)
        assert got.dtype == dtype
        torch.testing.assert_close(got.float(), ref_fn(*args).float(), rtol=tol, atol=tol)
        exact = ref_fn(*(a.double() if isinstance(a, torch.Tensor) and a.is_floating_point() else a for a in args))
        torch.testing.assert_close(got.double(), exact, rtol=tol, atol=tol)


@needs_interpreter
def test_interpreter_strided_int32_and_dispatch(clean_env):
    c = make_case((2, 3), 37, 19, 23, 29, seed=5)
    x, index, w_in, b_in = gather_args(c)
    h, w_out, _, residual, b_out = scatter_args(c)
    g_expected = gather_linear_reference(x, index, w_in, b_in)
    s_expected = linear_scatter_add_reference(h, w_out, index, residual, b_out)
    # non-contiguous inputs and an int32 index
    xt = x.transpose(0, 1).contiguous().transpose(0, 1)
    wt = w_in.t().contiguous().t()
    ht = h.transpose(0, 1).contiguous().transpose(0, 1)
    rt = residual.transpose(0, 1).contiguous().transpose(0, 1)
    assert not any(t.is_contiguous() for t in (xt, wt, ht, rt))
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("gather_linear", xt, index, wt) is gather_linear_triton
    torch.testing.assert_close(gather_linear(xt, index.int(), wt, b_in), g_expected, rtol=1e-5, atol=1e-5)
    got = linear_scatter_add(ht, w_out.t().contiguous().t(), index.int(), rt, b_out)
    torch.testing.assert_close(got, s_expected, rtol=1e-5, atol=1e-5)
    assert torch.equal(rt, residual)  # the residual is not modified
    # empty token dims and k = 0
    assert gather_linear(x[:0], index, w_in).shape == (0, 3, 23)
    assert torch.equal(linear_scatter_add(h[:0], w_out, index, residual[:0]), residual[:0])
    y = gather_linear(x, index[:0], w_in[:, :0], b_in)
    torch.testing.assert_close(y, b_in.expand(2, 3, 23))
    with pytest.raises(KernelBackendError, match="float64"):
        gather_linear(x.double(), index, w_in.double())
    clean_env.delenv("REPRO_KERNELS")
    assert select_backend("gather_linear", x, index, w_in) == "reference"  # auto: never the interpreter


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [((2048,), 576, 456, 1536, 1536), ((16,), 4096, 3072, 11008, 11008), *SHAPES])
def test_triton_cuda_matches_reference(clean_env, dtype, shape):
    c = make_case(*shape, dtype=dtype, seed=1, device="cuda")
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == torch.float32 else dict(rtol=2e-2, atol=2e-2)
    for name, public, ref_fn, args in (
        ("gather_linear", gather_linear, gather_linear_reference, gather_args(c)),
        ("linear_scatter_add", linear_scatter_add, linear_scatter_add_reference, scatter_args(c)),
    ):
        # auto keeps cuBLAS (the Triton GEMM measured slower on an H200); forced Triton is tested here
        assert select_backend(name, *args) == "reference"
        assert select_backend(name, *args, backend="triton") == "triton"
        got = public(*args, backend="triton")
        expected = ref_fn(*args)
        assert got.dtype == expected.dtype and got.shape == expected.shape
        torch.testing.assert_close(got.float(), expected.float(), **tol)
