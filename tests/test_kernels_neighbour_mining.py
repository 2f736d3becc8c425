"""repro.kernels.neighbour_mining: MYOW's masked cosine top-k (view mining).

The reference is checked against a brute-force NumPy definition (float64 cosine, eligible
candidates sorted by ``(-similarity, index)``): exactly on inputs whose cosines are exact in fp32
(rows of +-1 scaled by powers of two, so every similarity is a multiple of 1/16 and ties abound),
and within fp32 rounding on random inputs (where indices may differ only between near-equal
similarities).  Properties: the anchor's own trial is never returned, the rodent +-window rule,
padding with ``(-inf, -1)``, ``k = 1`` is the masked argmax.  The Triton kernel is checked against
the reference through Triton's CPU interpreter: the ``interpreter`` tests are skipped in the normal
run and ``test_triton_interpreter_subprocess`` runs them in a fresh pytest with
``TRITON_INTERPRET=1`` set before triton is imported.  The CUDA tests run only where a GPU is present.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import run_interpreter_tests
from repro import kernels
from repro.kernels import KERNELS, KernelBackendError, dispatch, select_backend
from repro.kernels.neighbour_mining import (
    MAX_TRITON_K,
    masked_topk_cosine,
    masked_topk_cosine_reference,
    masked_topk_cosine_triton,
)

CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")

# interpreter cases (B, P, d, k, window, exact, kwargs): tiny, several anchor / pool / feature blocks
# with 16-wide tiles, pool splits, the window rule, k not a power of two and k = 16
INTERPRETER_CASES = [
    (20, 50, 16, 5, None, True, dict(pool_splits=2)),
    (21, 37, 40, 3, None, False, dict(block_d=16)),
    (18, 45, 24, 4, 3, False, dict(pool_splits=3)),
    (9, 30, 16, 16, None, True, {}),
    (5, 12, 4, 1, 2, True, {}),
]


def exact_inputs(n: int, d: int, g: torch.Generator, zero_row: bool = True) -> torch.Tensor:
    """Rows of +-1 times a power of two (d a power of 4): every cosine is a multiple of 2/d, exact in fp32."""
    x = torch.randint(0, 2, (n, d), generator=g).float() * 2 - 1
    x = x * 2.0 ** torch.randint(-2, 3, (n, 1), generator=g).float()
    if zero_row and n > 2:
        x[1] = 0.0
    return x


def make_case(b, p, d, window=None, exact=False, n_groups=4, dtype=torch.float32, seed=0, device="cpu"):
    """``(args without k, kwargs)``: anchors, pool, trial ids (or one recording and times with a window)."""
    assert not exact or d in (4, 16, 64), "exact cosines need |row| = sqrt(d) * 2**e"
    g = torch.Generator().manual_seed(seed)
    if exact:
        anchor, pool = exact_inputs(b, d, g), exact_inputs(p, d, g)
        if p > 4:
            pool[4] = pool[2] * 2  # a duplicate direction: an exact tie between candidates 2 and 4
    else:
        anchor, pool = torch.randn(b, d, generator=g), torch.randn(p, d, generator=g)
    if window is None:
        ag = torch.randint(0, n_groups, (b,), generator=g)
        pg = torch.randint(0, n_groups, (p,), generator=g)
        kwargs = {}
    else:
        ag, pg = torch.zeros(b, dtype=torch.long), torch.zeros(p, dtype=torch.long)
        at = torch.randint(0, p, (b,), generator=g)
        kwargs = dict(anchor_time=at.to(device), pool_time=torch.arange(p, device=device), exclude_window=window)
    to = dict(device=device, dtype=dtype)
    return (anchor.to(**to), pool.to(**to), ag.to(device), pg.to(device)), kwargs


def cosine64(anchor, pool) -> np.ndarray:
    a, p = anchor.detach().cpu().double().numpy(), pool.detach().cpu().double().numpy()
    na, npool = np.linalg.norm(a, axis=1), np.linalg.norm(p, axis=1)
    denom = np.outer(na, npool)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, (a @ p.T) / np.where(denom > 0, denom, 1.0), 0.0)


def eligible_np(ag, pg, at=None, pt=None, window=None) -> np.ndarray:
    ag, pg = ag.cpu().numpy().astype(np.int64), pg.cpu().numpy().astype(np.int64)
    same = ag[:, None] == pg[None, :]
    if window is not None:
        at, pt = at.cpu().numpy().astype(np.int64), pt.cpu().numpy().astype(np.int64)
        same &= np.abs(at[:, None] - pt[None, :]) <= window
    return ~same


def brute_force(anchor, pool, ag, pg, k, anchor_time=None, pool_time=None, exclude_window=None):
    """By the definition: eligible candidates sorted by (-cosine, index), padded with (-inf, -1)."""
    sim = cosine64(anchor, pool)
    ok = eligible_np(ag, pg, anchor_time, pool_time, exclude_window)
    b, p = sim.shape
    values = np.full((b, k), -np.inf)
    indices = np.full((b, k), -1, dtype=np.int64)
    for i in range(b):
        ranked = sorted((-sim[i, j], j) for j in range(p) if ok[i, j])[:k]
        for slot, (neg, j) in enumerate(ranked):
            values[i, slot], indices[i, slot] = -neg, j
    return values, indices, sim


def assert_topk_equal(got, expected, sim, atol=0.0):
    """Values within ``atol``; indices equal, or (atol > 0) different only between near-equal similarities."""
    (gv, gi), (ev, ei) = got, expected
    ev, ei = torch.as_tensor(ev).cpu(), torch.as_tensor(ei).cpu()  # the expected side may be a CUDA reference
    assert gv.dtype == torch.float32 and gi.dtype == torch.int64 and gv.shape == gi.shape == ei.shape
    assert gv.is_contiguous() and gi.is_contiguous()
    gv, gi = gv.cpu(), gi.cpu()
    torch.testing.assert_close(gv.double(), ev.double(), rtol=0, atol=atol)
    assert torch.equal(gi == -1, ei == -1)
    if atol == 0:
        assert torch.equal(gi, ei)
        return
    for r, c in (gi != ei).nonzero().tolist():
        assert abs(sim[r, gi[r, c]] - sim[r, ei[r, c]]) <= atol, (r, c, gi[r], ei[r])


def check_valid(values, indices, anchor, pool, ag, pg, k, **kw):
    """Every returned index is eligible, values are its cosine and decrease; padding only at the end."""
    sim = cosine64(anchor, pool)
    ok = eligible_np(ag, pg, kw.get("anchor_time"), kw.get("pool_time"), kw.get("exclude_window"))
    v, idx = values.cpu().numpy(), indices.cpu().numpy()
    for i in range(idx.shape[0]):
        n = min(k, int(ok[i].sum()))
        assert (idx[i, :n] >= 0).all() and (idx[i, n:] == -1).all() and np.isneginf(v[i, n:]).all()
        assert len(set(idx[i, :n].tolist())) == n
        assert ok[i, idx[i, :n]].all()
        np.testing.assert_allclose(v[i, :n], sim[i, idx[i, :n]], rtol=0, atol=1e-5)
        assert (np.diff(v[i, :n]) <= 0).all()


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


def test_hand_example():
    """Cosines 1, 0.6, 0.6 (tie), 0, -1 against anchor [1, 0]; candidate 0 is in the anchor's trial."""
    anchor = torch.tensor([[2.0, 0.0], [0.0, 0.0]])
    pool = torch.tensor([[1.0, 0.0], [3.0, 4.0], [-5.0, 0.0], [0.0, 7.0], [6.0, 8.0], [0.5, 0.0]])
    ag = torch.tensor([7, 9])
    pg = torch.tensor([7, 1, 2, 3, 1, 9])
    values, indices = masked_topk_cosine(anchor, pool, ag, pg, 4)
    # anchor 0: [5] cos 1, then the 0.6 tie [1] before [4], then [3] cos 0 (0 is its trial)
    assert indices.tolist()[0] == [5, 1, 4, 3]
    torch.testing.assert_close(values[0], torch.tensor([1.0, 0.6, 0.6, 0.0]))
    # anchor 1 is a zero row: every similarity is 0, so the eligible candidates in index order
    assert indices.tolist()[1] == [0, 1, 2, 3] and values[1].tolist() == [0.0] * 4
    # k = 7 > P = 6: anchor 0 has 5 eligible candidates, anchor 1 has 5
    values, indices = masked_topk_cosine(anchor, pool, ag, pg, 7)
    assert indices.tolist() == [[5, 1, 4, 3, 2, -1, -1], [0, 1, 2, 3, 4, -1, -1]]
    assert math.isclose(values[0, 4].item(), -1.0) and values[:, 5:].isneginf().all()


@pytest.mark.parametrize("k", [1, 3, 8])
@pytest.mark.parametrize("window", [None, 4])
def test_reference_matches_brute_force_exact_ties(k, window):
    args, kw = make_case(23, 41, 16, window=window, exact=True, seed=k)
    expected = brute_force(*args, k, **kw)
    assert_topk_equal(masked_topk_cosine_reference(*args, k, **kw), expected[:2], expected[2])


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
@pytest.mark.parametrize("shape", [(17, 53, 24, 5), (30, 30, 7, 2), (8, 100, 64, 16)])
def test_reference_matches_brute_force_random(dtype, shape):
    b, p, d, k = shape
    args, kw = make_case(b, p, d, dtype=dtype, seed=d)
    values, indices, sim = brute_force(*args, k, **kw)
    assert_topk_equal(masked_topk_cosine_reference(*args, k, **kw), (values, indices), sim, atol=1e-5)


def test_reference_chunks_over_anchors(monkeypatch):
    from repro.kernels import neighbour_mining

    # exact cosines: a matmul over fewer rows may round differently, which would blur the comparison
    args, kw = make_case(29, 40, 16, window=6, exact=True, seed=3)
    whole = masked_topk_cosine_reference(*args, 5, **kw)
    monkeypatch.setattr(neighbour_mining, "REFERENCE_CHUNK", 3 * 40)  # chunks of 3 anchor rows
    chunked = masked_topk_cosine_reference(*args, 5, **kw)
    assert torch.equal(chunked[0], whole[0]) and torch.equal(chunked[1], whole[1])
    expected = brute_force(*args, 5, **kw)
    assert_topk_equal(chunked, expected[:2], expected[2])


@pytest.mark.parametrize("seed", range(25))
def test_own_trial_never_returned(seed):
    g = torch.Generator().manual_seed(100 + seed)
    b, p, d = (int(x) for x in torch.randint(1, 40, (3,), generator=g))
    n_groups, k = int(torch.randint(1, 6, (1,), generator=g)), int(torch.randint(1, 12, (1,), generator=g))
    exact = seed % 2 == 0  # exact cosines (many ties) need d = 16
    args, _ = make_case(b, p, 16 if exact else d, n_groups=n_groups, seed=seed, exact=exact)
    anchor, pool, ag, pg = args
    values, indices = masked_topk_cosine(*args, k)
    assert values.shape == indices.shape == (b, k)
    hit = indices >= 0
    assert not bool((pg[indices.clamp(min=0)] == ag[:, None])[hit].any())  # never the anchor's own trial
    check_valid(values, indices, *args, k)


def test_rodent_window_rule():
    # self-mining in one recording: pool == anchors, bins 0..399, +-150 bins excluded
    n, window = 400, 150
    g = torch.Generator().manual_seed(1)
    x = torch.randn(n, 8, generator=g)
    t = torch.arange(n)
    zeros = torch.zeros(n, dtype=torch.long)
    values, indices = masked_topk_cosine(x, x, zeros, zeros, 5, anchor_time=t, pool_time=t, exclude_window=window)
    assert ((t[:, None] - indices).abs() > window).all()  # no -1: every bin has > 5 bins 151 away
    check_valid(values, indices, x, x, zeros, zeros, 5, anchor_time=t, pool_time=t, exclude_window=window)
    expected = brute_force(x, x, zeros, zeros, 5, t, t, window)
    assert_topk_equal((values, indices), expected[:2], expected[2], atol=1e-5)
    # the window's edges are excluded (|dt| <= window); equal vectors tie, so index order shows it
    pool = torch.ones(11, 4)
    anchor = torch.ones(1, 4)  # |x| = 2: cosine exactly 1
    pt = torch.arange(11)
    kw = dict(anchor_time=torch.tensor([5]), pool_time=pt, exclude_window=2)
    values, indices = masked_topk_cosine(
        anchor, pool, torch.zeros(1, dtype=torch.long), torch.zeros(11).long(), 8, **kw
    )
    assert indices.tolist() == [[0, 1, 2, 8, 9, 10, -1, -1]]
    assert values[0, :6].tolist() == [1.0] * 6 and values[0, 6:].isneginf().all()
    # another group is eligible even inside the window; window 0 excludes only the same bin
    pg = torch.tensor([0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0])
    _, indices = masked_topk_cosine(anchor, pool, torch.zeros(1, dtype=torch.long), pg, 8, **kw)
    assert indices.tolist() == [[0, 1, 2, 4, 8, 9, 10, -1]]
    kw["exclude_window"] = 0
    _, indices = masked_topk_cosine(anchor, pool, torch.zeros(1, dtype=torch.long), pg * 0, 11, **kw)
    assert indices.tolist() == [[0, 1, 2, 3, 4, 6, 7, 8, 9, 10, -1]]


def test_padding_when_k_exceeds_eligible():
    args, _ = make_case(6, 9, 5, n_groups=2, seed=4)
    anchor, pool, ag, pg = args
    n_ok = (ag[:, None] != pg[None, :]).sum(1)
    values, indices = masked_topk_cosine(*args, 12)  # k > P
    for i in range(6):
        assert (indices[i, n_ok[i] :] == -1).all() and values[i, n_ok[i] :].isneginf().all()
        assert (indices[i, : n_ok[i]] >= 0).all() and values[i, : n_ok[i]].isfinite().all()
    # all candidates in the anchor's trial: all padding; an empty pool and no anchors
    one = torch.zeros(9, dtype=torch.long)
    values, indices = masked_topk_cosine(anchor, pool, one[:6], one, 3)
    assert (indices == -1).all() and values.isneginf().all()
    values, indices = masked_topk_cosine(anchor, pool[:0], ag, pg[:0], 2)
    assert values.shape == (6, 2) and (indices == -1).all()
    values, indices = masked_topk_cosine(anchor[:0], pool, ag[:0], pg, 2)
    assert values.shape == indices.shape == (0, 2)
    # d = 0: every similarity is 0, so eligible candidates in index order
    values, indices = masked_topk_cosine(anchor[:, :0], pool[:, :0], ag, pg, 2)
    expected = brute_force(anchor[:, :0], pool[:, :0], ag, pg, 2)
    assert_topk_equal((values, indices), expected[:2], expected[2])


@pytest.mark.parametrize("window", [None, 3])
def test_k1_is_masked_argmax(window):
    args, kw = make_case(40, 70, 12, window=window, seed=6)
    anchor, pool, ag, pg = args
    sim = F.normalize(anchor.double(), dim=1) @ F.normalize(pool.double(), dim=1).T
    ineligible = torch.from_numpy(~eligible_np(ag, pg, kw.get("anchor_time"), kw.get("pool_time"), window))
    masked = sim.masked_fill(ineligible, -math.inf)
    values, indices = masked_topk_cosine(*args, 1, **kw)
    assert values.shape == (40, 1)
    assert torch.equal(indices[:, 0], masked.argmax(dim=1))
    torch.testing.assert_close(values[:, 0].double(), masked.max(dim=1).values, rtol=0, atol=1e-6)


def _bad_args():
    args, kw = make_case(6, 9, 5, window=2, seed=1)
    anchor, pool, ag, pg = args
    good = dict(anchor=anchor, pool=pool, anchor_group=ag, pool_group=pg, k=3, **kw)
    return [
        ("anchor", dict(anchor=anchor[0]), r"anchor must be a 2-D tensor \[B, d\]"),
        ("anchor", dict(anchor=anchor.long()), "anchor must be floating point"),
        ("anchor", dict(anchor=anchor.to("meta")), "anchor, pool, .* must be on one device"),
        ("pool", dict(pool=pool[:, :4]), r"pool must be a 2-D tensor \[P, d=5\]"),
        ("pool", dict(pool=pool[None]), r"pool must be a 2-D tensor \[P, d=5\]"),
        ("pool", dict(pool=pool.double()), "pool dtype torch.float64 must equal anchor dtype torch.float32"),
        ("anchor_group", dict(anchor_group=ag[:-1]), r"anchor_group \(5,\) must be \[B=6\]"),
        ("anchor_group", dict(anchor_group=ag.float()), "anchor_group must be an int64 or int32"),
        ("anchor_group", dict(anchor_group=ag[None]), "anchor_group must be a 1-D integer tensor"),
        ("pool_group", dict(pool_group=pg[:-1]), r"pool_group \(8,\) must be \[P=9\]"),
        ("pool_group", dict(pool_group=pg.to(torch.int16)), "pool_group must be an int64 or int32"),
        ("k", dict(k=0), "k must be an integer >= 1, got 0"),
        ("k", dict(k=2.0), "k must be an integer >= 1, got 2.0"),
        ("k", dict(k=True), "k must be an integer >= 1, got True"),
        ("exclude_window", dict(exclude_window=-1), "exclude_window must be None or an integer >= 0"),
        ("exclude_window", dict(exclude_window=1.5), "exclude_window must be None or an integer >= 0"),
        ("exclude_window", dict(exclude_window=None), "anchor_time and pool_time are only used with exclude_window"),
        ("anchor_time", dict(anchor_time=None), "anchor_time and pool_time are required with exclude_window"),
        ("anchor_time", dict(anchor_time=kw["anchor_time"][:3]), r"anchor_time \(3,\) must be \[B=6\]"),
        ("pool_time", dict(pool_time=kw["pool_time"].float()), "pool_time must be an int64 or int32"),
    ], good


@pytest.mark.parametrize("case", range(len(_bad_args()[0])))
def test_bad_args_raise(case):
    cases, good = _bad_args()
    name, change, match = cases[case]
    assert name in match
    for fn in (masked_topk_cosine, masked_topk_cosine_reference, masked_topk_cosine_triton):
        with pytest.raises(ValueError, match=match):
            fn(**{**good, **change})


# --- dispatcher ---------------------------------------------------------------------------------


def test_registry_and_cpu_dispatch(clean_env):
    kernel = KERNELS["masked_topk_cosine"]
    assert "MYOW" in kernel.paper and kernel.triton is masked_topk_cosine_triton
    assert kernel.auto_triton  # not measured slower on a GPU (module docstring, "Measured")
    args, kw = make_case(10, 20, 8, window=2)
    assert select_backend("masked_topk_cosine", *args, 3, **kw) == "reference"
    assert dispatch("masked_topk_cosine", *args, 3, **kw) is masked_topk_cosine_reference
    clean_env.setenv("REPRO_KERNELS", "reference")
    got = masked_topk_cosine(*args, 3, **kw)
    expected = masked_topk_cosine_reference(*args, 3, **kw)
    assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
    assert kernel.triton_supports(*args, 3, **kw) is None
    assert kernel.triton_supports(*args, MAX_TRITON_K) is None
    assert f"k={MAX_TRITON_K + 1}" in kernel.triton_supports(*args, MAX_TRITON_K + 1)
    assert "float64" in kernel.triton_supports(args[0].double(), args[1].double(), *args[2:], 3)


def test_bench_cases_build():
    cases = KERNELS["masked_topk_cosine"].bench_cases(torch.device("cpu"))
    assert [c.shape for c in cases] == ["B256P1024d64k5", "B128P512d32k5w150"]
    assert all(c.dtype == "float32" for c in cases)
    for case in cases:
        args, kw = case.make()
        values, indices = masked_topk_cosine_reference(*args, **kw)
        assert values.shape == (args[0].shape[0], 5)
        rows = slice(0, 4)
        sub = (args[0][rows], args[1], args[2][rows], args[3], args[4])
        sub_kw = {**kw, "anchor_time": kw["anchor_time"][rows]} if kw else {}
        check_valid(values[rows], indices[rows], *sub[:4], 5, **sub_kw)


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    args, _ = make_case(6, 9, 16)
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        masked_topk_cosine(*args, 2, backend="triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        masked_topk_cosine_triton(*args, 2)
    clean_env.setenv("REPRO_KERNELS", "triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        masked_topk_cosine(*args, 2)


# --- Triton through the interpreter (CPU) ------------------------------------------------------


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(INTERPRETER_CASES) + 4, out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("case", INTERPRETER_CASES)
def test_interpreter_triton_matches_reference(case):
    b, p, d, k, window, exact, blocks = case
    args, kw = make_case(b, p, d, window=window, exact=exact, seed=b)
    got = masked_topk_cosine_triton(*args, k, **kw, block_m=16, block_n=16, **blocks)
    expected = masked_topk_cosine_reference(*args, k, **kw)
    sim = cosine64(*args[:2])
    assert_topk_equal(got, expected, sim, atol=0.0 if exact else 1e-6)
    exact_values, exact_indices, _ = brute_force(*args, k, **kw)
    assert_topk_equal(got, (exact_values, exact_indices), sim, atol=0.0 if exact else 1e-5)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreter_half_precision(dtype):
    for exact in (True, False):
        args, kw = make_case(17, 35, 16, exact=exact, dtype=dtype, seed=3)
        got = masked_topk_cosine_triton(*args, 4, pool_splits=2)
        expected = masked_topk_cosine_reference(*args, 4)
        assert_topk_equal(got, expected, cosine64(*args[:2]), atol=0.0 if exact else 1e-6)


@needs_interpreter
def test_interpreter_strided_int32_and_edges():
    args, kw = make_case(19, 33, 20, window=4, seed=5)
    anchor, pool, ag, pg = args
    expected = masked_topk_cosine_reference(*args, 6, **kw)
    sim = cosine64(anchor, pool)
    # non-contiguous anchor (transposed copy) and pool (column slice), int32 and strided ids / times
    wide = torch.randn(33, 30)
    wide[:, 3:23] = pool
    strided = dict(
        anchor=anchor.t().contiguous().t(),
        pool=wide[:, 3:23],
        anchor_group=ag.int(),
        pool_group=torch.stack([pg, pg], dim=1)[:, 0],
        anchor_time=kw["anchor_time"].int(),
        pool_time=torch.stack([kw["pool_time"]] * 2, dim=1)[:, 1],
        exclude_window=4,
    )
    assert not strided["anchor"].is_contiguous() and not strided["pool"].is_contiguous()
    assert strided["pool_group"].stride(0) == 2
    assert_topk_equal(masked_topk_cosine_triton(k=6, **strided), expected, sim, atol=1e-6)
    # k > P (padding), an empty pool, no anchors, d = 0
    small = (anchor[:5], pool[:3], torch.arange(5), torch.arange(3))
    assert_topk_equal(
        masked_topk_cosine_triton(*small, 7), masked_topk_cosine_reference(*small, 7), sim[:5, :3], atol=1e-6
    )
    values, indices = masked_topk_cosine_triton(anchor, pool[:0], ag, pg[:0], 2)
    assert values.shape == (19, 2) and (indices == -1).all() and values.isneginf().all()
    assert masked_topk_cosine_triton(anchor[:0], pool, ag[:0], pg, 2)[0].shape == (0, 2)
    flat = (anchor[:, :0], pool[:, :0], ag, pg)
    assert_topk_equal(masked_topk_cosine_triton(*flat, 3), masked_topk_cosine_reference(*flat, 3), sim * 0)


@needs_interpreter
def test_interpreter_dispatch(clean_env):
    args, kw = make_case(12, 25, 16, window=2, seed=2)
    assert select_backend("masked_topk_cosine", *args, 3, **kw) == "reference"  # auto: never the interpreter
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("masked_topk_cosine", *args, 3, **kw) is masked_topk_cosine_triton
    got = masked_topk_cosine(*args, 3, **kw)
    expected = masked_topk_cosine_reference(*args, 3, **kw)
    assert_topk_equal(got, expected, cosine64(*args[:2]), atol=1e-6)
    with pytest.raises(KernelBackendError, match=f"k={MAX_TRITON_K + 1}"):
        masked_topk_cosine(*args, MAX_TRITON_K + 1, **kw)
    with pytest.raises(KernelBackendError, match="float64"):
        masked_topk_cosine(args[0].double(), args[1].double(), *args[2:], 3)
    with pytest.raises(ValueError, match="block_n must be a power of two >= 16"):
        masked_topk_cosine_triton(*args, 3, block_n=8)


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "case",
    [(512, 1024, 64, 5, None), (512, 8192, 128, 1, None), (300, 2000, 512, 16, None), (512, 4000, 32, 5, 150)],
)
def test_triton_cuda_matches_reference(clean_env, dtype, case):
    b, p, d, k, window = case
    args, kw = make_case(b, p, d, window=window, n_groups=64, dtype=dtype, seed=1, device="cuda")
    assert select_backend("masked_topk_cosine", *args, k, **kw) == "triton"
    got = masked_topk_cosine(*args, k, **kw)
    expected = masked_topk_cosine_reference(*args, k, **kw)
    assert_topk_equal(got, expected, cosine64(*args[:2]), atol=1e-5)
    # exact ties: equal indices; one program per anchor block (no pool split)
    args, kw = make_case(b, p, 64, window=window, exact=True, dtype=dtype, seed=2, device="cuda")
    got = masked_topk_cosine_triton(*args, k, **kw, pool_splits=1)
    assert_topk_equal(got, masked_topk_cosine_reference(*args, k, **kw), None)


@needs_cuda
@needs_triton
def test_cuda_dispatch_falls_back(clean_env):
    args, _ = make_case(64, 256, 32, device="cuda")
    assert select_backend("masked_topk_cosine", *args, MAX_TRITON_K + 1) == "reference"  # k too large
    assert select_backend("masked_topk_cosine", args[0].double(), args[1].double(), *args[2:], 3) == "reference"
    case = KERNELS["masked_topk_cosine"].bench_cases(torch.device("cuda"))[-1]
    bench_args, bench_kw = case.make()
    got = masked_topk_cosine(*bench_args, **bench_kw, backend="triton")
    expected = masked_topk_cosine_reference(*bench_args, **bench_kw)
    assert_topk_equal(got, expected, cosine64(*bench_args[:2]), atol=1e-5)
