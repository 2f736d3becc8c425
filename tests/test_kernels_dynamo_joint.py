"""repro.kernels.dynamo_joint: DynaMo's fused joint builder (reference vs sampling.py, Triton vs reference).

The reference is checked against the composition of :mod:`repro.dynamo.sampling`'s functions
(``joint_distribution``, the static zeroing, ``repetition_factor``; and with :func:`finish_level`
against ``thresholded_joint`` bit for bit) and against the explicit maths.  The Triton kernels are
checked against the reference through Triton's CPU interpreter: as in tests/test_kernels.py the
``interpreter`` tests are skipped in the normal run and ``test_triton_interpreter_subprocess`` runs
them in a fresh pytest with ``TRITON_INTERPRET=1`` set before triton is imported.  The CUDA test runs
only where a GPU is present.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from conftest import run_interpreter_tests
from repro import kernels
from repro.dynamo.cooccurrence import CooccurrenceTable
from repro.dynamo.sampling import (
    SamplingConfig,
    candidate_grid,
    choose_tokens,
    fused_level_supported,
    fused_thresholded_joint,
    head_topk,
    joint_distribution,
    repetition_factor,
    thresholded_joint,
)
from repro.kernels import KERNELS, KernelBackendError, dispatch, select_backend
from repro.kernels.dynamo_joint import (
    context_membership,
    dynamo_joint,
    dynamo_joint_reference,
    dynamo_joint_triton,
    finish_level,
    triton_supports,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")

V = 40  # small vocabulary: the corpus sees a good share of the candidate n-grams
ALPHAS = [0.0, 0.5, 1.0]
# (n, k, block_size): odd sizes that do not fill a tile, several tiles each
INTERP_CASES = [(2, 7, 16), (2, 50, 256), (3, 9, 64)]
INTERP_ALPHAS = [0.0, 0.5, 1.0, 0.37]


def make_step(n, k, seed=0, vocab=V, seen_frac=0.4, device="cpu"):
    """One step's inputs: the heads' top-k (n heads), an order-n table that has ~seen_frac of the
    candidate n-grams (plus random corpus n-grams), and a context of a few candidate and other tokens."""
    g = torch.Generator().manual_seed(seed)
    probs, ids = head_topk(torch.randn(3, vocab, generator=g) * 2, k, temperature=0.7)
    cells = candidate_grid(ids, n).reshape(-1, n)
    chosen = cells[torch.randperm(cells.shape[0], generator=g)[: int(seen_frac * cells.shape[0])]]
    docs = [torch.randint(0, vocab, (300,), generator=g)]
    docs += [c.repeat(1 + int(torch.randint(0, 3, (1,), generator=g))) for c in chosen]  # varied counts
    table = CooccurrenceTable.build(docs, vocab, orders=(2, 3), min_count=1)
    context = torch.cat([ids[:, :2].reshape(-1), torch.randint(0, vocab, (6,), generator=g)])
    to = dict(device=device)
    return dict(probs=probs.to(**to), ids=ids.to(**to), table=table, context=context.to(**to))


def kernel_args(step, n, alpha, context, penalty, zero_bar, vocab=V):
    keys, ratios = step["table"].orders[n]
    device = step["probs"].device
    mask = context_membership(context, vocab)
    return (
        step["probs"][:n],
        step["ids"][:n],
        keys.to(device),
        ratios.to(device),
        vocab,
        alpha,
        mask,
        penalty,
        zero_bar,
    )


def contexts(step):
    return {"empty": step["context"][:0], "context": step["context"]}


def safe_bar(joint: torch.Tensor, q: float = 0.5, window: int = 20) -> float:
    """A zeroing bar near the q-quantile of the positive cells, in the widest gap among the ``window``
    values either side (at least 1e-4 relative), so float32 rounding differences between
    implementations cannot move a cell across it."""
    v = joint[joint > 0].double().sort().values
    i = int(q * (v.numel() - 1))
    lo, hi = max(1, i - window), min(v.numel(), i + window)
    gaps = v[lo:hi] / v[lo - 1 : hi - 1]
    j = lo + int(gaps.argmax())
    assert float(gaps.max()) > 1 + 1e-4, "no clean gap for the bar"
    return float((v[j] * v[j - 1]).sqrt())


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n,k", [(2, 7), (3, 5)])
@pytest.mark.parametrize("alpha", ALPHAS)
@pytest.mark.parametrize("ctx", ["empty", "context"])
def test_reference_equals_sampling_composition(n, k, alpha, ctx):
    step = make_step(n, k, seed=10 * n + k)
    context = contexts(step)[ctx]
    config = SamplingConfig(alpha_c=alpha, eps_b=0.1, repetition_penalty=1.5)
    zero_bar = config.static_bars(n)[0]
    args = kernel_args(step, n, alpha, context, config.repetition_penalty, zero_bar)
    joint, factor = dynamo_joint_reference(*args)
    assert joint.shape == factor.shape == (k,) * n and joint.dtype == factor.dtype == torch.float32
    # the table misses some candidates and has others
    seen = step["table"].lookup(candidate_grid(step["ids"], n))
    assert bool((seen == 0).any()) and bool((seen > 0).any())
    # composition of sampling.py's functions
    expected = joint_distribution(step["probs"], step["ids"], n, step["table"], alpha)
    expected = torch.where(expected.double() < zero_bar, torch.zeros_like(expected), expected)
    assert torch.equal(joint, expected)
    assert bool((joint > 0).any()) and bool((joint == 0).any())
    if alpha > 0:
        assert bool((joint[seen == 0] == 0).all())
    assert torch.equal(factor, repetition_factor(step["ids"], n, context, 1.5))
    assert bool((factor > 1).any()) == (ctx == "context")
    # kernel outputs + the Otsu/penalty tail == thresholded_joint, bit for bit
    level = finish_level(joint, factor, config)
    ref = thresholded_joint(step["probs"], step["ids"], n, context, step["table"], config)
    assert torch.equal(level.weights, ref.weights)
    assert (level.threshold, level.zeroing_bar, level.backoff_bar) == (ref.threshold, ref.zeroing_bar, ref.backoff_bar)


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize(
    "change",
    [
        dict(sample_from="blurred"),
        dict(adaptive="none"),
        dict(adaptive="none", sample_from="blurred", blur_kernel=5),
        dict(repetition_penalty=1.0),
        dict(blur_kernel=0, threshold_exponent="constant", eps_b=0.02),
        dict(eps_b=0.0, otsu_bins=17),
    ],
)
def test_finish_level_matches_thresholded_joint_variants(n, change):
    step = make_step(n, 6, seed=3)
    config = dataclasses.replace(SamplingConfig(alpha_c=0.5, eps_b=0.05, repetition_penalty=2.0), **change)
    args = kernel_args(step, n, config.alpha_c, step["context"], config.repetition_penalty, config.static_bars(n)[0])
    level = finish_level(*dynamo_joint_reference(*args), config)
    ref = thresholded_joint(step["probs"], step["ids"], n, step["context"], step["table"], config)
    assert torch.equal(level.weights, ref.weights)
    assert level.threshold == ref.threshold


def test_reference_explicit_math():
    """Loop over the cells with a dict table, a Pythia-sized vocabulary and alpha 0.7, in float64."""
    g = torch.Generator().manual_seed(5)
    vocab, n, k, alpha, penalty = 50_304, 3, 4, 0.7, 1.3
    probs = torch.rand(n, k, generator=g)
    ids = torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(n)])
    table = {}
    for a in range(k):
        for b in range(k):
            for c in range(k):
                if (a + 2 * b + c) % 3:
                    key = (int(ids[0, a]) * vocab + int(ids[1, b])) * vocab + int(ids[2, c])
                    table[key] = float(torch.rand(1, generator=g)) * 4
    other = torch.randint(0, vocab**3, (500,), generator=g).tolist()
    table.update({key: 1.0 for key in other if key not in table})
    keys = torch.tensor(sorted(table), dtype=torch.int64)
    ratios = torch.tensor([table[key] for key in sorted(table)], dtype=torch.float32)
    context = torch.tensor([int(ids[0, 1]), int(ids[2, 3]), int(ids[1, 0]), 7])
    expected = torch.zeros((k,) * n, dtype=torch.float64)
    count = torch.zeros((k,) * n, dtype=torch.float64)
    for a in range(k):
        for b in range(k):
            for c in range(k):
                tokens = (int(ids[0, a]), int(ids[1, b]), int(ids[2, c]))
                ratio = table.get((tokens[0] * vocab + tokens[1]) * vocab + tokens[2], 0.0)
                ratio = float(torch.tensor(ratio, dtype=torch.float32))
                expected[a, b, c] = float(probs[0, a]) * float(probs[1, b]) * float(probs[2, c]) * ratio**alpha
                count[a, b, c] = sum(t in context.tolist() for t in tokens)
    expected /= expected.sum()
    bar = safe_bar(expected)
    expected[expected < bar] = 0
    mask = context_membership(context, vocab)
    joint, factor = dynamo_joint_reference(probs, ids, keys, ratios, vocab, alpha, mask, penalty, bar)
    torch.testing.assert_close(joint.double(), expected, rtol=1e-5, atol=1e-9)
    torch.testing.assert_close(factor.double(), penalty**count, rtol=1e-6, atol=0)
    assert torch.equal(joint == 0, expected == 0)


def test_reference_all_unseen_and_empty_table():
    step = make_step(2, 7, seed=1, seen_frac=0.0)
    keys = torch.tensor([0, 1, 2], dtype=torch.int64)  # (0, 0), (0, 1), (0, 2): ids are never 0 here
    probs, ids = step["probs"][:2], step["ids"][:2].clamp_min(1)
    mask = context_membership(step["context"], V)
    for k_, r_ in ((keys, torch.ones(3)), (keys[:0], torch.ones(0))):
        joint, factor = dynamo_joint_reference(probs, ids, k_, r_, V, 1.0, mask, 1.1, 0.0)
        assert torch.equal(joint, torch.zeros(7, 7)) and bool((factor >= 1).all())
    # alpha_c = 0: the table is not consulted, the joint is the normalised outer product
    joint, _ = dynamo_joint_reference(probs, ids, keys[:0], torch.ones(0), V, 0.0, mask, 1.1, 0.0)
    torch.testing.assert_close(joint, torch.outer(probs[0], probs[1]) / torch.outer(probs[0], probs[1]).sum())


def test_context_membership():
    mask = context_membership(torch.tensor([[3, 3], [0, 9]]), 10)
    assert mask.dtype == torch.bool and mask.tolist() == [i in (0, 3, 9) for i in range(10)]
    assert context_membership(torch.tensor([-1, 10, 4]), 10).nonzero().reshape(-1).tolist() == [4]
    assert not context_membership(torch.zeros(0, dtype=torch.long), 10).any()
    with pytest.raises(ValueError, match="context_ids must be an integer tensor"):
        context_membership(torch.tensor([1.0]), 10)


def _bad_cases():
    step = make_step(2, 5, seed=2)
    args = kernel_args(step, 2, 1.0, step["context"], 1.1, 0.01)
    names = ("probs", "ids", "keys", "ratios", "vocab_size", "alpha_c", "context_mask", "penalty", "zero_bar")
    good = dict(zip(names, args))
    probs, ids, keys, ratios, mask = good["probs"], good["ids"], good["keys"], good["ratios"], good["context_mask"]
    unsorted = keys.clone()
    unsorted[[0, -1]] = unsorted[[-1, 0]]
    dup = keys.clone()
    dup[1] = dup[0]
    return [
        ("probs", dict(probs=probs[0]), "probs must be a 2-D tensor"),
        ("probs", dict(probs=probs.double()), "probs must be float32"),
        ("probs", dict(probs=probs[:1], ids=ids[:1]), r"probs \(1, 5\) must be \[n >= 2"),
        ("ids", dict(ids=ids[:, :3]), r"ids \(2, 3\) must be a tensor with the shape of probs \(2, 5\)"),
        ("ids", dict(ids=ids.float()), "ids must be an int64 or int32"),
        ("ids", dict(ids=ids + V), r"ids values must lie in \[0, vocab_size=40\)"),
        ("keys", dict(keys=keys[None]), "keys must be a 1-D int64"),
        ("keys", dict(keys=keys.int()), "keys must be a 1-D int64"),
        ("keys", dict(keys=unsorted), "keys must be sorted ascending and unique"),
        ("keys", dict(keys=dup), "keys must be sorted ascending and unique"),
        ("ratios", dict(ratios=ratios[:-1]), "ratios must be a float32 tensor with the shape of keys"),
        ("ratios", dict(ratios=ratios.double()), "ratios must be a float32 tensor"),
        ("vocab_size", dict(vocab_size=0), "vocab_size must be a positive integer"),
        ("vocab_size", dict(vocab_size=2**32), "vocab_size"),
        ("alpha_c", dict(alpha_c=-0.5), "alpha_c must be a finite number >= 0"),
        ("alpha_c", dict(alpha_c=float("nan")), "alpha_c must be a finite number >= 0"),
        ("context_mask", dict(context_mask=mask[:-1]), r"context_mask must be a bool tensor \[vocab_size=40\]"),
        ("context_mask", dict(context_mask=mask.to(torch.uint8)), "context_mask must be a bool tensor"),
        ("penalty", dict(penalty=0.0), "penalty must be a finite number > 0"),
        ("zero_bar", dict(zero_bar=float("inf")), "zero_bar must be a finite number"),
    ], good


@pytest.mark.parametrize("case", range(len(_bad_cases()[0])))
def test_bad_args_raise(case):
    cases, good = _bad_cases()
    name, change, match = cases[case]
    assert name in match
    fns = [dynamo_joint, dynamo_joint_reference]
    if kernels.triton_available():
        fns.append(dynamo_joint_triton)  # arguments are checked before the backend
    for fn in fns:
        with pytest.raises(ValueError, match=match):
            fn(**{**good, **change})


def test_finish_level_bad_args():
    step = make_step(2, 5, seed=2)
    joint, factor = dynamo_joint_reference(*kernel_args(step, 2, 1.0, step["context"], 1.1, 0.01))
    with pytest.raises(ValueError, match="factor"):
        finish_level(joint, factor[:2], SamplingConfig())
    with pytest.raises(ValueError, match="repetition_scope"):
        finish_level(joint, factor, SamplingConfig(repetition_scope="context_and_ngram"))
    with pytest.raises(ValueError, match="joint"):
        finish_level(joint[0], factor[0], SamplingConfig())


# --- dispatcher ---------------------------------------------------------------------------------


def test_registry_and_cpu_dispatch(clean_env):
    kernel = KERNELS["dynamo_joint"]
    assert kernel.reference is dynamo_joint_reference and "DynaMo" in kernel.paper
    cases = kernel.bench_cases(torch.device("cpu"))
    assert [c.shape for c in cases] == ["k50n2m1e6", "k50n3m1e6"] and all(c.dtype == "float32" for c in cases)
    args, kwargs = cases[0].make()
    assert args[2].numel() >= 1_000_000
    joint, factor = kernel.reference(*args, **kwargs)
    assert joint.shape == factor.shape == (50, 50) and bool((factor > 1).any())
    joint, _ = kernel.reference(*args[:-1], 0.0)  # without the static bar: a third of the cells seen
    assert 0.2 < float((joint > 0).float().mean()) < 0.5
    step = make_step(3, 5, seed=4)
    args = kernel_args(step, 3, 1.0, step["context"], 1.1, 0.001)
    assert select_backend("dynamo_joint", *args) == "reference"
    assert dispatch("dynamo_joint", *args) is dynamo_joint_reference
    for mode in ("reference", "auto"):
        clean_env.setenv("REPRO_KERNELS", mode)
        for got, want in zip(dynamo_joint(*args), dynamo_joint_reference(*args)):
            assert torch.equal(got, want)
    assert triton_supports(*args) is None
    n4 = (torch.rand(4, 3), torch.randint(0, V, (4, 3)), *args[2:])
    assert "n = 4" in triton_supports(*n4)
    assert dynamo_joint(*n4)[0].shape == (3, 3, 3, 3)  # the reference handles any n >= 2


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    step = make_step(2, 5, seed=2)
    args = kernel_args(step, 2, 1.0, step["context"], 1.1, 0.01)
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        dynamo_joint(*args, backend="triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        dynamo_joint_triton(*args)


# --- Triton through the interpreter (CPU) ------------------------------------------------------


def check_close(got, expected):
    for g, e in zip(got, expected):
        assert g.shape == e.shape and g.dtype == torch.float32 and g.is_contiguous()
    torch.testing.assert_close(got[0], expected[0], rtol=1e-5, atol=1e-9)
    assert torch.equal(got[0] == 0, expected[0] == 0)  # the same cells zeroed
    assert torch.equal(got[1], expected[1])  # the factor: the same torch.pow table


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(INTERP_CASES) * len(INTERP_ALPHAS) + 5, out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("case", INTERP_CASES, ids=lambda c: f"n{c[0]}k{c[1]}b{c[2]}")
@pytest.mark.parametrize("alpha", INTERP_ALPHAS)
def test_interpreter_triton_matches_reference(case, alpha):
    n, k, block = case
    step = make_step(n, k, seed=k + n)
    for ctx, context in contexts(step).items():
        unthresholded, _ = dynamo_joint_reference(*kernel_args(step, n, alpha, context, 1.1, 0.0))
        for bar in (0.0, safe_bar(unthresholded)):
            args = kernel_args(step, n, alpha, context, 1.1, bar)
            expected = dynamo_joint_reference(*args)
            got = dynamo_joint_triton(*args, block_size=block)
            check_close(got, expected)
            assert bool((expected[0] == 0).any()) == (bar > 0 or alpha > 0), (ctx, bar)
            assert bool((expected[1] > 1).any()) == (ctx == "context")


@needs_interpreter
@pytest.mark.parametrize("n,k", [(2, 7), (3, 9)])
def test_interpreter_all_unseen_gives_zeros(n, k):
    step = make_step(n, k, seed=1, seen_frac=0.0)
    ids = step["ids"][:n].clamp_min(1)  # keys below are n-grams of token 0 only
    probs = step["probs"][:n]
    mask = context_membership(step["context"], V)
    keys = torch.tensor([0, 1, 2, 5], dtype=torch.int64)
    for k_, r_ in ((keys, torch.rand(4) + 0.5), (keys[:0], torch.ones(0))):
        for alpha in (1.0, 0.37):
            args = (probs, ids, k_, r_, V, alpha, mask, 1.1, 0.0)
            expected = dynamo_joint_reference(*args)
            got = dynamo_joint_triton(*args, block_size=16)
            assert torch.equal(got[0], torch.zeros((k,) * n)) and torch.equal(expected[0], got[0])
            assert torch.equal(got[1], expected[1])
    # alpha_c = 0 never reads the (empty) table
    args = (probs, ids, keys[:0], torch.ones(0), V, 0.0, mask, 1.1, 0.0)
    check_close(dynamo_joint_triton(*args, block_size=16), dynamo_joint_reference(*args))


@needs_interpreter
def test_interpreter_large_vocab_int32_strided():
    """Pythia's vocabulary (keys up to V**3 ~ 1.3e14), int32 ids, strided probs, the default tile."""
    g = torch.Generator().manual_seed(9)
    vocab, n, k = 50_304, 3, 9
    probs = torch.rand(k, n, generator=g).t()  # non-contiguous [n, k]
    ids = torch.stack([torch.randperm(vocab, generator=g)[:k] for _ in range(n)])
    cells = candidate_grid(ids, n).reshape(-1, n)
    chosen = cells[torch.randperm(cells.shape[0], generator=g)[:300]]
    packed = (chosen[:, 0] * vocab + chosen[:, 1]) * vocab + chosen[:, 2]
    keys = torch.unique(torch.cat([packed, torch.randint(0, vocab**3, (3000,), generator=g)]))
    ratios = torch.rand(keys.numel(), generator=g) * 8
    mask = context_membership(torch.cat([ids[1, :3], torch.randint(0, vocab, (50,), generator=g)]), vocab)
    base = (probs, ids.int(), keys, ratios, vocab, 1.0, mask, 1.25)
    bar = safe_bar(dynamo_joint_reference(*base, 0.0)[0], q=0.3)
    expected = dynamo_joint_reference(*base, bar)
    assert bool((expected[0] > 0).any())
    check_close(dynamo_joint_triton(*base, bar), expected)
    check_close(dynamo_joint_triton(*base, bar, block_size=32), expected)


@needs_interpreter
def test_interpreter_bar_compared_as_float64():
    """Exact joint values (dyadic probabilities): a bar equal to a cell keeps it, a float64 bar just
    above it (which rounds to the same float32) zeroes it, as the reference's float64 comparison does."""
    probs = torch.tensor([[0.5, 0.25, 0.25], [0.5, 0.25, 0.25]])
    ids = torch.tensor([[1, 2, 3], [4, 5, 6]])
    mask = context_membership(torch.tensor([2]), 8)
    keys, ratios = torch.zeros(0, dtype=torch.int64), torch.zeros(0)
    for bar, kept in ((0.125, 5), (0.125 + 1e-12, 1), (0.0625, 9), (0.0625 - 1e-12, 9), (0.25 + 1e-12, 0)):
        args = (probs, ids, keys, ratios, 8, 0.0, mask, 1.1, bar)
        expected = dynamo_joint_reference(*args)
        got = dynamo_joint_triton(*args, block_size=4)
        assert torch.equal(got[0], expected[0]) and torch.equal(got[1], expected[1])
        assert int((got[0] > 0).sum()) == kept, bar


@needs_interpreter
def test_interpreter_dispatch(clean_env):
    step = make_step(2, 7, seed=8)
    args = kernel_args(step, 2, 0.5, step["context"], 1.1, 0.0)
    assert select_backend("dynamo_joint", *args) == "reference"  # auto: never the interpreter
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("dynamo_joint", *args) is dynamo_joint_triton
    check_close(dynamo_joint(*args), dynamo_joint_reference(*args))
    n4 = (torch.rand(4, 3), torch.randint(0, V, (4, 3)), *args[2:])
    with pytest.raises(KernelBackendError, match="n = 4"):
        dynamo_joint(*n4)


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("alpha", INTERP_ALPHAS)
def test_triton_cuda_matches_reference(clean_env, n, alpha):
    args, _ = KERNELS["dynamo_joint"].bench_cases(torch.device("cuda"))[n - 2].make()
    probs, ids, keys, ratios, vocab, _, mask, penalty, _ = args
    base = (probs, ids, keys, ratios, vocab, alpha, mask, penalty)
    bar = safe_bar(dynamo_joint_reference(*base, 0.0)[0], q=0.9, window=5000)
    assert select_backend("dynamo_joint", *base, bar) == "triton"
    got = dynamo_joint(*base, bar)
    expected = dynamo_joint_reference(*base, bar)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-4, atol=1e-9)
    torch.testing.assert_close(got[1], expected[1], rtol=1e-6, atol=0)


# --- the fused path inside choose_tokens -------------------------------------------------------


@pytest.mark.parametrize("n", [2, 3])
@pytest.mark.parametrize("mode", ["ratio", "binary"])
@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_fused_thresholded_joint_equals_reference_path(clean_env, n, mode, alpha):
    """With the reference backend the fused level is exactly thresholded_joint's (CPU)."""
    clean_env.setenv("REPRO_KERNELS", "reference")
    step = make_step(3, 8, seed=n)
    config = dataclasses.replace(SamplingConfig(), alpha_c=alpha, cooccurrence_mode=mode, eps_b=0.05)
    got = fused_thresholded_joint(step["probs"], step["ids"], n, step["context"], step["table"], config, V)
    want = thresholded_joint(step["probs"], step["ids"], n, step["context"], step["table"], config)
    assert torch.equal(got.weights, want.weights)
    assert got.threshold == want.threshold and got.backoff_bar == want.backoff_bar


def test_fused_level_supported_only_on_cuda_with_context_scope():
    step = make_step(3, 8)
    logits = torch.zeros(3, V)
    assert not fused_level_supported(logits, step["table"], SamplingConfig())  # CPU: never
    if CUDA:
        cuda_logits = logits.cuda()
        assert fused_level_supported(cuda_logits, step["table"], SamplingConfig())
        assert not fused_level_supported(
            cuda_logits, step["table"], SamplingConfig(repetition_scope="context_and_ngram")
        )
        assert not fused_level_supported(cuda_logits, object(), SamplingConfig())
        assert fused_level_supported(cuda_logits, None, SamplingConfig(alpha_c=0.0))


@needs_cuda
@needs_triton
@pytest.mark.parametrize("seed", range(4))
def test_choose_tokens_cuda_fused_matches_cpu(clean_env, seed):
    """On CUDA choose_tokens goes through the Triton builder; its levels and choice of n agree with
    the CPU reference path (eps_b small so the steps do not sit on the back-off bar)."""
    step = make_step(3, 50, seed=seed)
    config = dataclasses.replace(SamplingConfig(), eps_b=0.05)
    logits = torch.randn(3, V, generator=torch.Generator().manual_seed(seed)) * 3
    cpu = choose_tokens(logits, step["context"], step["table"], config)
    gpu = choose_tokens(logits.cuda(), step["context"].cuda(), step["table"], config)
    assert gpu.n == cpu.n
    assert len(gpu.tokens) == gpu.n and all(0 <= t < V for t in gpu.tokens)
    assert gpu.joint_max == pytest.approx(cpu.joint_max, rel=1e-4)
    for n in (2, 3):
        probs, ids = head_topk(logits, config.top_k, config.temperature, config.renormalise_topk)
        want = thresholded_joint(probs, ids, n, step["context"], step["table"], config)
        got = fused_thresholded_joint(probs.cuda(), ids.cuda(), n, step["context"].cuda(), step["table"], config, V)
        torch.testing.assert_close(got.weights.cpu(), want.weights, rtol=1e-4, atol=1e-9)
