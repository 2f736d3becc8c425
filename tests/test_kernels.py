"""repro.kernels: Wanda N:M mask (reference vs brute force, Triton vs reference) and the dispatcher.

Triton runs here on CPU tensors through its interpreter.  ``TRITON_INTERPRET=1`` must be set before
triton is imported (triton wraps its own ``tl.sum``/``tl.zeros`` at import), so the ``interpreter``
tests are skipped in the normal run and ``test_triton_interpreter_subprocess`` runs them in a fresh
pytest with the variable set (they also run directly under ``TRITON_INTERPRET=1 pytest``).
The CUDA tests run only where a GPU is present (scripts/gpu_check.sh).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import run_interpreter_tests
from repro import kernels
from repro.kernels import KERNELS, KernelBackendError, available_backends, dispatch, select_backend
from repro.kernels.nm_sparsity import (
    apply_mask_,
    nm_check,
    wanda_nm_mask,
    wanda_nm_mask_reference,
    wanda_nm_mask_triton,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")
NM = [(2, 4), (1, 4), (3, 4), (4, 8), (2, 8), (1, 2), (2, 3), (0, 4), (4, 4)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def brute_force_mask(weight: torch.Tensor, act_norm: torch.Tensor, n: int, m: int) -> np.ndarray:
    """Keep mask by the definition: prune the n lowest fp32 scores per group, lower column first on ties."""
    w = weight.detach().cpu().float().numpy()
    a = act_norm.detach().cpu().float().numpy()
    score = (np.abs(w) * a[None, :]).astype(np.float32)
    keep = np.ones(w.shape, dtype=bool)
    for r in range(w.shape[0]):
        for g0 in range(0, w.shape[1], m):
            group = [(float(score[r, g0 + j]), j) for j in range(m)]
            for _, j in sorted(group)[:n]:  # tuples: by score, then by column index
                keep[r, g0 + j] = False
    return keep


def make_inputs(rows, cols, dtype=torch.float32, ties=False, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    if ties:  # few distinct values: many equal scores, zeros included
        w = torch.randint(-2, 3, (rows, cols), generator=g).float()
        a = torch.randint(0, 3, (cols,), generator=g).float()
    else:
        w = torch.randn(rows, cols, generator=g)
        a = torch.rand(cols, generator=g) * 3
    return w.to(device=device, dtype=dtype), a.to(device)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n,m", NM)
@pytest.mark.parametrize("ties", [False, True])
def test_reference_matches_brute_force(n, m, ties):
    w, a = make_inputs(13, 24 * 2, ties=ties, seed=n * 10 + m)
    mask = wanda_nm_mask_reference(w, a, n, m)
    assert mask.dtype == torch.bool and mask.shape == w.shape
    np.testing.assert_array_equal(mask.numpy(), brute_force_mask(w, a, n, m))
    assert nm_check(mask, n, m)


@pytest.mark.parametrize("dtype", DTYPES + [torch.float64])
def test_reference_dtypes_score_in_fp32(dtype):
    w, a = make_inputs(9, 64, dtype=dtype, ties=dtype == torch.bfloat16, seed=3)
    np.testing.assert_array_equal(wanda_nm_mask_reference(w, a).numpy(), brute_force_mask(w, a, 2, 4))


def test_ties_prune_lower_column_first():
    w = torch.ones(2, 8)
    a = torch.ones(8)
    mask = wanda_nm_mask_reference(w, a, 2, 4)
    expected = torch.tensor([[False, False, True, True] * 2] * 2)
    assert torch.equal(mask, expected)
    # all-zero groups (dead input features) follow the same rule
    assert torch.equal(wanda_nm_mask_reference(w, torch.zeros(8), 2, 4), expected)


def test_two_four_has_two_zeros_per_group():
    w, a = make_inputs(64, 256, seed=1)
    mask = wanda_nm_mask(w, a, 2, 4)
    groups = mask.view(64, -1, 4)
    assert bool(((~groups).sum(-1) == 2).all())
    pruned = apply_mask_(w.clone(), mask)
    assert bool(((pruned.view(64, -1, 4) == 0).sum(-1) >= 2).all())
    assert nm_check(mask, 2, 4)


def test_keeps_largest_scores():
    w = torch.tensor([[1.0, -4.0, 2.0, 3.0, 0.5, 0.1, -0.2, 9.0]])
    a = torch.tensor([1.0, 1.0, 1.0, 0.1, 1.0, 1.0, 1.0, 1.0])  # column 3 scores 0.3
    assert wanda_nm_mask_reference(w, a, 2, 4).tolist() == [[False, True, True, False, True, False, False, True]]


@pytest.mark.parametrize(
    "wshape,ashape,n,m,match",
    [
        ((4, 10), (10,), 2, 4, "not divisible by m=4"),
        ((4, 8), (7,), 2, 4, "act_norm must be a 1-D tensor of length in=8"),
        ((4, 8), (4, 8), 2, 4, "act_norm must be a 1-D tensor"),
        ((8,), (8,), 2, 4, "weight must be a 2-D tensor"),
        ((2, 4, 8), (8,), 2, 4, "weight must be a 2-D tensor"),
        ((4, 8), (8,), 5, 4, "0 <= n <= m"),
        ((4, 8), (8,), -1, 4, "0 <= n <= m"),
        ((4, 8), (8,), 0, 0, "m >= 1"),
    ],
)
def test_bad_shapes_raise(wshape, ashape, n, m, match):
    with pytest.raises(ValueError, match=match):
        wanda_nm_mask(torch.randn(wshape), torch.rand(ashape), n, m)
    with pytest.raises(ValueError, match=match):
        wanda_nm_mask_reference(torch.randn(wshape), torch.rand(ashape), n, m)


def test_bad_dtype_and_args_raise():
    with pytest.raises(ValueError, match="floating point"):
        wanda_nm_mask(torch.ones(4, 8, dtype=torch.int32), torch.ones(8))
    with pytest.raises(ValueError, match="integers"):
        wanda_nm_mask(torch.ones(4, 8), torch.ones(8), 2.0, 4)


def test_empty_weight():
    mask = wanda_nm_mask(torch.empty(0, 8), torch.rand(8))
    assert mask.shape == (0, 8) and mask.dtype == torch.bool


def test_apply_mask_in_place_on_parameter():
    w, a = make_inputs(8, 16, seed=2)
    param = torch.nn.Parameter(w.clone())
    mask = wanda_nm_mask(param, a)
    out = apply_mask_(param, mask)
    assert out is param and param.requires_grad
    assert torch.equal(param.detach()[~mask], torch.zeros(int((~mask).sum())))
    assert torch.equal(param.detach()[mask], w[mask])
    with pytest.raises(ValueError, match="does not match"):
        apply_mask_(param, mask[:, :8])
    with pytest.raises(ValueError, match="bool"):
        apply_mask_(param, mask.float())


def test_nm_check():
    mask = torch.tensor([[True, False, True, False, False, False, True, True]])
    assert nm_check(mask, 2, 4)
    assert not nm_check(mask, 1, 4)
    bad = mask.clone()
    bad[0, 1] = True
    assert not nm_check(bad, 2, 4)
    assert nm_check(torch.ones(3, 8, dtype=torch.bool), 0, 8)
    with pytest.raises(ValueError, match="not divisible"):
        nm_check(torch.ones(2, 6, dtype=torch.bool), 2, 4)
    with pytest.raises(ValueError, match="2-D"):
        nm_check(torch.ones(8, dtype=torch.bool), 2, 4)


# --- dispatcher --------------------------------------------------------------------------------


def test_registry_lists_kernel():
    kernel = KERNELS["wanda_nm_mask"]
    assert kernel.reference is wanda_nm_mask_reference
    assert "Wanda" in kernel.paper
    assert "reference" in available_backends()
    assert set(available_backends()) <= {"reference", "triton"}
    with pytest.raises(KeyError, match="unknown kernel"):
        dispatch("no_such_kernel", torch.ones(1))


def test_auto_on_cpu_uses_reference(clean_env):
    w, a = make_inputs(4, 8)
    assert select_backend("wanda_nm_mask", w, a, 2, 4) == "reference"
    assert dispatch("wanda_nm_mask", w, a, 2, 4) is wanda_nm_mask_reference
    clean_env.setenv("TRITON_INTERPRET", "1")  # the interpreter is for tests, never picked by auto
    assert select_backend("wanda_nm_mask", w, a, 2, 4) == "reference"


def test_forced_reference(clean_env):
    clean_env.setenv("REPRO_KERNELS", "reference")
    w, a = make_inputs(4, 8)
    assert dispatch("wanda_nm_mask", w, a, 2, 4) is wanda_nm_mask_reference


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    w, a = make_inputs(4, 8)
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    clean_env.setenv("REPRO_KERNELS", "triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs.*TRITON_INTERPRET=1"):
        wanda_nm_mask(w, a)
    clean_env.delenv("REPRO_KERNELS")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        wanda_nm_mask(w, a, backend="triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        wanda_nm_mask_triton(w, a)
    # set too late: triton was imported without it
    clean_env.setenv("TRITON_INTERPRET", "1")
    with pytest.raises(KernelBackendError, match="set after triton was imported"):
        wanda_nm_mask(w, a, backend="triton")
    assert select_backend("wanda_nm_mask", w, a, 2, 4) == "reference"  # auto never picks the interpreter


def test_bad_mode_raises(clean_env):
    w, a = make_inputs(4, 8)
    clean_env.setenv("REPRO_KERNELS", "fast")
    with pytest.raises(ValueError, match="REPRO_KERNELS='fast'"):
        wanda_nm_mask(w, a)
    clean_env.delenv("REPRO_KERNELS")
    with pytest.raises(ValueError, match="backend='gpu'"):
        wanda_nm_mask(w, a, backend="gpu")


# --- Triton through the interpreter (CPU) ------------------------------------------------------


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(NM) * len(DTYPES), out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("n,m", NM)
@pytest.mark.parametrize("dtype", DTYPES)
def test_interpreter_triton_matches_reference(n, m, dtype):
    for ties in (False, True):
        w, a = make_inputs(37, 48 * 2, dtype=dtype, ties=ties, seed=m)
        expected = wanda_nm_mask_reference(w, a, n, m)
        got = wanda_nm_mask_triton(w, a, n, m)
        assert got.dtype == torch.bool and got.shape == w.shape
        assert torch.equal(got, expected)
        np.testing.assert_array_equal(got.numpy(), brute_force_mask(w, a, n, m))


@needs_interpreter
def test_interpreter_dispatch_and_strided(clean_env):
    w, a = make_inputs(64, 128, dtype=torch.float16, seed=7)
    assert "triton" in available_backends()
    assert select_backend("wanda_nm_mask", w, a, 2, 4) == "reference"  # auto: never the interpreter
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("wanda_nm_mask", w, a, 2, 4) is wanda_nm_mask_triton
    assert torch.equal(wanda_nm_mask(w, a), wanda_nm_mask_reference(w, a))
    wt = make_inputs(128, 64, seed=8)[0].t()  # non-contiguous view [64, 128]
    assert not wt.is_contiguous()
    assert torch.equal(wanda_nm_mask(wt, a), wanda_nm_mask_reference(wt, a))
    assert wanda_nm_mask(torch.empty(0, 8), torch.rand(8)).shape == (0, 8)
    with pytest.raises(KernelBackendError, match="float64"):
        wanda_nm_mask(w.double(), a)


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("n,m", [(2, 4), (1, 4), (4, 8), (2, 3)])
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(37, 96), (512, 1536), (1000, 4104)])
def test_triton_cuda_matches_reference(clean_env, n, m, dtype, shape):
    for ties in (False, True):
        w, a = make_inputs(*shape, dtype=dtype, ties=ties, seed=shape[0] + m, device="cuda")
        expected = wanda_nm_mask_reference(w, a, n, m)
        got = wanda_nm_mask_triton(w, a, n, m)
        assert torch.equal(got, expected)
        assert nm_check(got, n, m)


@needs_cuda
@needs_triton
@pytest.mark.parametrize("shape", [(4096, 4096), (11008, 4096), (4096, 11008)])
def test_triton_cuda_llama_shapes(clean_env, shape):
    w, a = make_inputs(*shape, dtype=torch.float16, seed=1, device="cuda")
    assert select_backend("wanda_nm_mask", w, a, 2, 4) == "triton"
    got = wanda_nm_mask(w, a, 2, 4)
    assert torch.equal(got, wanda_nm_mask_reference(w, a, 2, 4))
    assert nm_check(got, 2, 4)
    # small-vs-brute-force spot check on a slice of rows
    np.testing.assert_array_equal(got[:3].cpu().numpy(), brute_force_mask(w[:3], a, 2, 4))


@needs_cuda
@needs_triton
def test_cuda_dispatch(clean_env):
    w, a = make_inputs(16, 64, device="cuda")
    assert dispatch("wanda_nm_mask", w, a, 2, 4) is wanda_nm_mask_triton
    assert select_backend("wanda_nm_mask", w.double(), a, 2, 4) == "reference"  # unsupported dtype: fallback
    assert select_backend("wanda_nm_mask", w, a.cpu(), 2, 4) == "reference"  # mixed devices: not all CUDA
    wt = make_inputs(64, 16, device="cuda")[0].t()
    assert torch.equal(wanda_nm_mask(wt, a), wanda_nm_mask_reference(wt, a))
    clean_env.setenv("REPRO_KERNELS", "reference")
    assert dispatch("wanda_nm_mask", w, a, 2, 4) is wanda_nm_mask_reference


@needs_cuda
def test_semi_structured_matmul_matches_dense(clean_env):
    if torch.cuda.get_device_capability() < (8, 0):
        pytest.skip("semi-structured sparsity needs compute capability >= 8.0")
    torch.manual_seed(0)
    out_f, in_f, batch = 256, 512, 128
    w = (torch.randn(out_f, in_f, device="cuda") / in_f**0.5).half()
    a = torch.rand(in_f, device="cuda") + 0.1
    mask = wanda_nm_mask(w, a, 2, 4)
    dense = apply_mask_(w.clone(), mask)
    x = torch.randn(batch, in_f, device="cuda", dtype=torch.float16)
    try:
        from torch.sparse import to_sparse_semi_structured

        sparse = to_sparse_semi_structured(dense)
        y_sparse = torch.nn.functional.linear(x, sparse)
        torch.cuda.synchronize()
    except (ImportError, RuntimeError, NotImplementedError, ValueError) as err:
        pytest.skip(f"torch {torch.__version__} on this GPU lacks semi-structured sparse support: {err}")
    assert torch.equal(sparse.to_dense(), dense)
    y_dense = torch.nn.functional.linear(x, dense)
    torch.testing.assert_close(y_sparse, y_dense, rtol=1e-2, atol=1e-2)
