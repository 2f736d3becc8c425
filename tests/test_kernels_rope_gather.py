"""repro.kernels.rope_gather: RoPE with cos/sin gathered per KV group (MoDeGPT's kept RoPE pairs).

The reference is checked against transformers' ``apply_rotary_pos_emb`` (identity index) and against
the definition of pair selection: rotating the full head with HF and then keeping the channels of
the kept pairs equals rotating the compressed head with the gathered cos/sin.  The Triton kernel is
checked against the reference through Triton's CPU interpreter: as in tests/test_kernels.py the
``interpreter`` tests are skipped in the normal run and ``test_triton_interpreter_subprocess`` runs
them in a fresh pytest with ``TRITON_INTERPRET=1`` set before triton is imported.  The CUDA tests
run only where a GPU is present.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from conftest import run_interpreter_tests
from repro import kernels
from repro.kernels import KERNELS, KernelBackendError, dispatch, select_backend
from repro.kernels.rope_gather import (
    apply_rope_gather,
    apply_rope_gather_reference,
    apply_rope_gather_triton,
    rope_pair_index,
)

ROOT = Path(__file__).resolve().parents[1]
CUDA = torch.cuda.is_available()
INTERPRETER = kernels.triton_interpreter_active()
needs_triton = pytest.mark.skipif(not kernels.triton_available(), reason="triton is not importable")
needs_interpreter = pytest.mark.skipif(
    not INTERPRETER, reason="needs TRITON_INTERPRET=1 at start-up; run by test_triton_interpreter_subprocess"
)
needs_cuda = pytest.mark.skipif(not CUDA or INTERPRETER, reason="needs a CUDA GPU (and no TRITON_INTERPRET)")

# (batch, seq, n_heads, n_kv, d_h, k_h): GQA group sizes 1 and 3; k_h 2, 8 and 12 (not a power of two)
SHAPES = [
    (2, 5, 2, 2, 16, 2),
    (2, 7, 3, 3, 16, 8),
    (1, 9, 6, 2, 16, 12),
    (2, 4, 3, 1, 24, 8),
    (1, 3, 6, 2, 16, 16),  # nothing dropped
]


def hf_cos_sin(batch, seq, d_h, dtype=torch.float32, device="cpu", offset=0):
    """cos/sin [batch, seq, d_h] from transformers' LlamaRotaryEmbedding."""
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    from transformers import LlamaConfig

    config = LlamaConfig(hidden_size=4 * d_h, num_attention_heads=4, head_dim=d_h, max_position_embeddings=4096)
    rotary = llama.LlamaRotaryEmbedding(config).to(device)
    positions = torch.arange(offset, offset + seq, device=device)[None].expand(batch, seq)
    return rotary(torch.empty(0, dtype=dtype, device=device), positions)


def plain_cos_sin(batch, seq, d_h, dtype=torch.float32, device="cpu", base=10000.0):
    """cos/sin in the HF half-split layout without transformers (the interpreter tests)."""
    inv_freq = 1.0 / (base ** (torch.arange(0, d_h, 2, dtype=torch.float32) / d_h))
    freqs = (torch.arange(seq, dtype=torch.float32) + 3)[:, None] * inv_freq[None, :]
    emb = torch.cat([freqs, freqs], dim=-1).expand(batch, seq, d_h)
    return emb.cos().to(device=device, dtype=dtype), emb.sin().to(device=device, dtype=dtype)


def random_pairs(n_kv, d_h, k_h, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.stack([torch.randperm(d_h // 2, generator=g)[: k_h // 2].sort().values for _ in range(n_kv)])


def make_case(batch, seq, n_heads, n_kv, d_h, k_h, dtype=torch.float32, seed=0, device="cpu"):
    g = torch.Generator().manual_seed(seed)
    q = torch.randn(batch, n_heads, seq, k_h, generator=g).to(device=device, dtype=dtype)
    k = torch.randn(batch, n_kv, seq, k_h, generator=g).to(device=device, dtype=dtype)
    cos, sin = plain_cos_sin(batch, seq, d_h, dtype=dtype, device=device)
    index = rope_pair_index(random_pairs(n_kv, d_h, k_h, seed), d_h).to(device)
    return q, k, cos, sin, index, n_heads // n_kv


def select_channels(x, index, group_size):
    """x [b, heads, s, d_h] -> [b, heads, s, k_h]: head h keeps channels index[h // group_size]."""
    heads = x.shape[1]
    rows = index.repeat_interleave(group_size, dim=0)[:heads]  # [heads, k_h]
    return torch.stack([x[:, h, :, rows[h]] for h in range(heads)], dim=1)


@pytest.fixture
def clean_env(monkeypatch):
    monkeypatch.delenv("REPRO_KERNELS", raising=False)
    return monkeypatch


# --- reference ---------------------------------------------------------------------------------


@pytest.mark.parametrize("n_heads,n_kv", [(4, 4), (6, 2)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16])
def test_reference_identity_index_equals_hf(n_heads, n_kv, dtype):
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    batch, seq, d_h = 2, 6, 16
    g = torch.Generator().manual_seed(1)
    q = torch.randn(batch, n_heads, seq, d_h, generator=g).to(dtype)
    k = torch.randn(batch, n_kv, seq, d_h, generator=g).to(dtype)
    cos, sin = hf_cos_sin(batch, seq, d_h, dtype=dtype, offset=11)
    assert torch.equal(cos[..., : d_h // 2], cos[..., d_h // 2 :])  # the HF layout the module assumes
    identity = torch.arange(d_h).expand(n_kv, d_h)
    q_ref, k_ref = apply_rope_gather_reference(q, k, cos, sin, identity, n_heads // n_kv)
    q_hf, k_hf = llama.apply_rotary_pos_emb(q, k, cos, sin)
    assert q_ref.dtype == q_hf.dtype and k_ref.dtype == k_hf.dtype
    torch.testing.assert_close(q_ref, q_hf, rtol=0, atol=0)
    torch.testing.assert_close(k_ref, k_hf, rtol=0, atol=0)
    assert torch.equal(rope_pair_index([list(range(d_h // 2))] * n_kv, d_h), identity)


@pytest.mark.parametrize("n_heads,n_kv,k_h", [(4, 4, 6), (6, 2, 10), (3, 1, 2), (6, 3, 16)])
def test_reference_gather_equals_hf_then_select(n_heads, n_kv, k_h):
    """RoPE commutes with keeping whole rotation pairs: the key correctness property."""
    llama = pytest.importorskip("transformers.models.llama.modeling_llama")
    batch, seq, d_h = 2, 7, 16
    group_size = n_heads // n_kv
    g = torch.Generator().manual_seed(k_h)
    q_full = torch.randn(batch, n_heads, seq, d_h, generator=g)
    k_full = torch.randn(batch, n_kv, seq, d_h, generator=g)
    cos, sin = hf_cos_sin(batch, seq, d_h, offset=5)
    index = rope_pair_index(random_pairs(n_kv, d_h, k_h, seed=k_h), d_h)

    q_hf, k_hf = llama.apply_rotary_pos_emb(q_full, k_full, cos, sin)
    q_rot, k_rot = apply_rope_gather_reference(
        select_channels(q_full, index, group_size), select_channels(k_full, index, 1), cos, sin, index, group_size
    )
    torch.testing.assert_close(q_rot, select_channels(q_hf, index, group_size))
    torch.testing.assert_close(k_rot, select_channels(k_hf, index, 1))
    # so attention logits of the compressed heads are the full logits restricted to the kept pairs
    k_rep = k_rot.repeat_interleave(group_size, dim=1)
    k_hf_rep = select_channels(k_hf, index, 1).repeat_interleave(group_size, dim=1)
    torch.testing.assert_close(q_rot @ k_rep.transpose(-1, -2), select_channels(q_hf, index, group_size) @ k_hf_rep.mT)


def test_reference_broadcast_cos_batch_and_strided():
    q, k, cos, sin, index, gs = make_case(3, 5, 6, 2, 16, 12, seed=4)
    expected = apply_rope_gather_reference(q, k, cos, sin, index, gs)
    got = apply_rope_gather_reference(q, k, cos[:1], sin[:1], index, gs)  # cos batch 1 broadcasts
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)  # HF-style strided view, same values
    got = apply_rope_gather_reference(qt, k, cos, sin, index.int(), gs)
    torch.testing.assert_close(got[0], expected[0], rtol=0, atol=0)


def test_rope_pair_index():
    assert rope_pair_index([[0, 3], [1, 2]], 8).tolist() == [[0, 3, 4, 7], [1, 2, 5, 6]]
    assert rope_pair_index(torch.tensor([[2]]), 6).dtype == torch.int64
    for pairs, match in [
        ([[0, 4]], r"\[0, head_dim/2=4\)"),
        ([[-1, 2]], r"\[0, head_dim/2=4\)"),
        ([[2, 1]], "strictly increasing"),
        ([[1, 1]], "strictly increasing"),
        ([[0, 1], [2]], "equally long"),
        ([[]], "n_pairs >= 1"),
        (torch.tensor([[0.0, 1.0]]), "integers"),
    ]:
        with pytest.raises(ValueError, match=match):
            rope_pair_index(pairs, 8)
    with pytest.raises(ValueError, match="head_dim"):
        rope_pair_index([[0]], 7)


def _bad_cases():
    q, k, cos, sin, index, gs = make_case(2, 5, 6, 2, 16, 8)
    return [
        ("q", dict(q=q[0]), "q must be a 4-D tensor"),
        ("k", dict(k=k[..., 0]), "k must be a 4-D tensor"),
        ("cos", dict(cos=cos[0]), "cos must be a 3-D tensor"),
        ("sin", dict(sin=sin[..., None]), "sin must be a 3-D tensor"),
        ("index", dict(index=index[0]), "index must be a 2-D"),
        ("index", dict(index=index.float()), "index must be an int64 or int32"),
        ("index", dict(index=index[:, :6]), r"index \(2, 6\) must be \[n_kv=2, k_h=8\]"),
        ("index", dict(index=index + 16), r"index values must lie in \[0, d_h=16\)"),
        ("q", dict(q=q[..., :7], k=k[..., :7], index=index[:, :7]), "q head dim k_h=7"),
        ("q", dict(q=q.int()), "q must be floating point"),
        ("k", dict(k=k[:, :, :4]), r"k \(2, 2, 4, 8\) must be"),
        ("group_size", dict(group_size=2), "group_size=2 does not fit n_heads=6"),
        ("group_size", dict(group_size=0), "group_size must be a positive integer"),
        ("group_size", dict(group_size=3.0), "group_size must be a positive integer"),
        ("cos", dict(cos=cos[:, :4], sin=sin[:, :4]), r"cos/sin \(2, 4, 16\) must be \[batch=2"),
        ("sin", dict(sin=sin[..., :8]), r"cos \(2, 5, 16\) and sin \(2, 5, 8\)"),
        ("sin", dict(sin=sin.half()), r"cos \(torch.float32\) and sin \(torch.float16\)"),
        ("cos", dict(cos=cos[..., :6], sin=sin[..., :6]), "cos/sin head dim d_h=6 must be even and >= k_h=8"),
    ], dict(q=q, k=k, cos=cos, sin=sin, index=index, group_size=gs)


@pytest.mark.parametrize("case", range(len(_bad_cases()[0])))
def test_bad_shapes_raise(case):
    cases, good = _bad_cases()
    name, change, match = cases[case]
    args = {**good, **change}
    assert name in match
    for fn in (apply_rope_gather, apply_rope_gather_reference):
        with pytest.raises(ValueError, match=match):
            fn(**args)


# --- dispatcher ---------------------------------------------------------------------------------


def test_registry_and_cpu_dispatch(clean_env):
    kernel = KERNELS["rope_gather"]
    assert kernel.reference is apply_rope_gather_reference
    assert "MoDeGPT" in kernel.paper
    cases = kernel.bench_cases(torch.device("cpu"))
    assert cases and all(c.dtype == "float32" for c in cases)
    args, kwargs = cases[0].make()
    q_rot, k_rot = kernel.reference(*args, **kwargs)
    assert q_rot.shape == args[0].shape and k_rot.shape == args[1].shape
    q, k, cos, sin, index, gs = make_case(1, 4, 3, 1, 16, 8)
    assert select_backend("rope_gather", q, k, cos, sin, index, gs) == "reference"
    assert dispatch("rope_gather", q, k, cos, sin, index, gs) is apply_rope_gather_reference
    clean_env.setenv("REPRO_KERNELS", "reference")
    out = apply_rope_gather(q, k, cos, sin, index, gs)
    for a, b in zip(out, apply_rope_gather_reference(q, k, cos, sin, index, gs)):
        assert torch.equal(a, b)


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="the interpreter is active")
def test_forced_triton_on_cpu_raises(clean_env):
    clean_env.delenv("TRITON_INTERPRET", raising=False)
    args = make_case(1, 4, 3, 1, 16, 8)
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        apply_rope_gather(*args, backend="triton")
    with pytest.raises(KernelBackendError, match="only compiles for GPUs"):
        apply_rope_gather_triton(*args)


# --- Triton through the interpreter (CPU) ------------------------------------------------------


@needs_triton
@pytest.mark.skipif(INTERPRETER, reason="already inside the interpreter run")
def test_triton_interpreter_subprocess():
    """Run this file's ``interpreter`` tests in a fresh pytest with TRITON_INTERPRET=1 set before import."""
    passed, out = run_interpreter_tests(__file__)
    assert passed >= len(SHAPES) + 2, out
    assert "skipped" not in out, out


@needs_interpreter
@pytest.mark.parametrize("shape", SHAPES)
def test_interpreter_triton_matches_reference_fp32(shape):
    args = make_case(*shape, seed=shape[-1])
    expected = apply_rope_gather_reference(*args)
    got = apply_rope_gather_triton(*args)
    for a, b in zip(got, expected):
        assert a.shape == b.shape and a.dtype == b.dtype == torch.float32 and a.is_contiguous()
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@needs_interpreter
def test_interpreter_triton_arbitrary_index_and_tables():
    """Random cos/sin (no HF half-split symmetry) and any index table: the kernel follows the definition."""
    batch, seq, n_heads, n_kv, d_h, k_h = 2, 5, 6, 3, 20, 10
    g = torch.Generator().manual_seed(5)
    q = torch.randn(batch, n_heads, seq, k_h, generator=g)
    k = torch.randn(batch, n_kv, seq, k_h, generator=g)
    cos, sin = torch.randn(2, batch, seq, d_h, generator=g)
    index = torch.randint(0, d_h, (n_kv, k_h), generator=g)
    expected = apply_rope_gather_reference(q, k, cos, sin, index, 2)
    for a, b in zip(apply_rope_gather_triton(q, k, cos, sin, index, 2), expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


@needs_interpreter
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_interpreter_triton_half_precision(dtype):
    args = make_case(2, 6, 6, 2, 16, 12, dtype=dtype, seed=9)
    expected = apply_rope_gather_reference(*args)
    got = apply_rope_gather_triton(*args)
    for a, b in zip(got, expected):
        assert a.dtype == dtype
        if dtype == torch.float16:  # the kernel rounds like torch's elementwise ops: bit for bit
            assert torch.equal(a, b)
        else:  # the interpreter truncates fp32 -> bf16 (GPUs round to nearest even): a couple of ulps
            torch.testing.assert_close(a, b, rtol=2**-5, atol=2**-5)
    tol = 1e-2 if dtype == torch.float16 else 3e-2  # against fp32 maths on the same inputs
    exact = apply_rope_gather_reference(*(a.float() if a.is_floating_point() else a for a in args[:5]), args[5])
    for a, b in zip(got, exact):
        torch.testing.assert_close(a.float(), b, rtol=tol, atol=tol)


@needs_interpreter
def test_interpreter_strided_broadcast_and_dispatch(clean_env):
    batch, seq, n_heads, n_kv, d_h, k_h = 2, 5, 6, 2, 24, 12
    q, k, cos, sin, index, gs = make_case(batch, seq, n_heads, n_kv, d_h, k_h, seed=3)
    expected = apply_rope_gather_reference(q, k, cos, sin, index, gs)
    # non-contiguous everything: HF-style transposed q/k, transposed cos/sin, int32 column-major index
    qt = q.transpose(1, 2).contiguous().transpose(1, 2)
    kt = k.transpose(1, 2).contiguous().transpose(1, 2)
    cost = cos.transpose(1, 2).contiguous().transpose(1, 2)
    sint = sin.transpose(1, 2).contiguous().transpose(1, 2)
    idxt = index.int().t().contiguous().t()
    assert not any(t.is_contiguous() for t in (qt, kt, cost, sint, idxt))
    clean_env.setenv("REPRO_KERNELS", "triton")
    assert dispatch("rope_gather", qt, kt, cost, sint, idxt, gs) is apply_rope_gather_triton
    got = apply_rope_gather(qt, kt, cost, sint, idxt, gs)
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    got = apply_rope_gather(q, k, cos[:1], sin[:1], index, gs)  # cos/sin batch 1 broadcasts
    for a, b in zip(got, expected):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    mixed = apply_rope_gather(q.half(), k.half(), cos, sin, index, gs)  # fp16 activations, fp32 tables
    for a, b in zip(mixed, apply_rope_gather_reference(q.half(), k.half(), cos, sin, index, gs)):
        assert a.dtype == b.dtype == torch.float32
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    empty = apply_rope_gather(q[:, :, :0], k[:, :, :0], cos[:, :0], sin[:, :0], index, gs)
    assert empty[0].shape == (batch, n_heads, 0, k_h) and empty[1].shape == (batch, n_kv, 0, k_h)
    with pytest.raises(KernelBackendError, match="float64"):
        apply_rope_gather(q.double(), k, cos, sin, index, gs)
    clean_env.delenv("REPRO_KERNELS")
    assert select_backend("rope_gather", q, k, cos, sin, index, gs) == "reference"  # auto: never the interpreter


# --- CUDA (GPU machine only) -------------------------------------------------------------------


@needs_cuda
@needs_triton
@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
@pytest.mark.parametrize(
    "shape", [(1, 2048, 32, 32, 128, 96), (1, 2048, 32, 8, 128, 58), (16, 1, 32, 8, 128, 96), *SHAPES]
)
def test_triton_cuda_matches_reference(clean_env, dtype, shape):
    args = make_case(*shape, dtype=dtype, seed=1, device="cuda")
    assert select_backend("rope_gather", *args) == "triton"
    expected = apply_rope_gather_reference(*args)
    got = apply_rope_gather(*args)
    for a, b in zip(got, expected):
        assert a.dtype == b.dtype
        if dtype == torch.float32:  # a fused multiply-add may change the last bit
            torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
        else:
            # Compiled for a GPU, a product may skip its rounding to fp16/bf16 before the sum (the
            # interpreter tests check the bit-for-bit rounding): allow one rounding step at the
            # products' scale, |x| (|cos|, |sin| <= 1).
            eps = torch.finfo(dtype).eps
            scale = float(max(args[0].abs().max(), args[1].abs().max()))
            torch.testing.assert_close(a.float(), b.float(), rtol=eps, atol=eps * scale)
