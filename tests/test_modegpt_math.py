"""MoDeGPT's module decompositions against known answers (brief §4.3-4.6), float64 on the CPU."""

import pytest
import torch

from repro.llm.methods.modegpt_math import (
    Whitening,
    allocate_sparsity,
    cr_pair_scores,
    nystrom_mlp,
    ridge_leverage_scores,
    select_qk_channels,
    whitened_svd_vo,
    whitened_svd_vo_one_big,
    whitening,
)

F64 = torch.float64


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _data(n: int, d: int, seed: int, spread: float = 1.0) -> torch.Tensor:
    """``n x d`` activations with unequal column scales (so selections are not ties)."""
    g = _gen(seed)
    scales = torch.exp(spread * torch.randn(d, generator=g, dtype=F64))
    return torch.randn(n, d, generator=g, dtype=F64) @ torch.randn(d, d, generator=g, dtype=F64) * scales


def _spd(d: int, seed: int) -> torch.Tensor:
    x = _data(4 * d, d, seed)
    return x.T @ x


# ---------------------------------------------------------------------------------------------- leverage
def test_leverage_identity_and_range():
    C, ridge = _spd(12, 0), 3.0
    A = C + ridge * torch.eye(12, dtype=F64)
    direct = C @ torch.linalg.inv(A)
    identity = torch.eye(12, dtype=F64) - ridge * torch.linalg.inv(A)
    torch.testing.assert_close(direct, identity, rtol=0, atol=1e-10)
    scores = ridge_leverage_scores(C, ridge)
    assert scores.dtype == F64 and scores.shape == (12,)
    torch.testing.assert_close(scores, direct.diagonal(), rtol=0, atol=1e-12)
    assert bool(((scores >= 0) & (scores < 1)).all())
    torch.testing.assert_close(ridge_leverage_scores(C.float(), ridge), scores, rtol=0, atol=1e-4)
    # rank 3: with a small ridge the scores approach the diagonal of a rank-3 projector (trace 3)
    x = _data(3, 8, 1)
    lev = ridge_leverage_scores(x.T @ x, 1e-6)
    assert abs(float(lev.sum()) - 3.0) < 1e-5
    # slightly indefinite (rounding) with a ridge too small to cover it: eigh fallback, spectrum clamped
    Q = torch.linalg.qr(torch.randn(3, 3, generator=_gen(2), dtype=F64)).Q
    indefinite = Q @ torch.diag(torch.tensor([4.0, 1.0, -1e-9], dtype=F64)) @ Q.T
    expected = Q.square() @ torch.tensor([4 / (4 + 1e-12), 1 / (1 + 1e-12), 0.0], dtype=F64)
    torch.testing.assert_close(ridge_leverage_scores(indefinite, 1e-12), expected, rtol=0, atol=1e-10)
    with pytest.raises(ValueError):
        ridge_leverage_scores(C, 0.0)
    with pytest.raises(ValueError):
        ridge_leverage_scores(C[:, :5], 1.0)


# ---------------------------------------------------------------------------------------------- Nystrom
def _mlp(d: int, d_int: int, seed: int):
    g = _gen(seed)
    return tuple(torch.randn(*shape, generator=g, dtype=F64) for shape in [(d_int, d), (d_int, d), (d, d_int)])


def test_nystrom_selects_top_leverage_and_slices():
    d, d_int, k, ridge = 6, 16, 5, 50.0
    h = _data(80, d_int, 2, spread=1.5)
    C = h.T @ h
    gate, up, down = _mlp(d, d_int, 3)
    out = nystrom_mlp(C, gate, up, down, k, ridge)
    expected = torch.topk(ridge_leverage_scores(C, ridge), k).indices.sort().values
    assert out["index"].dtype == torch.long and torch.equal(out["index"], expected)
    assert torch.equal(out["gate"], gate[expected]) and torch.equal(out["up"], up[expected])
    assert out["down"].shape == (d, k)
    # non-gated MLP (OPT fc1/fc2): same index, no gate
    plain = nystrom_mlp(C, None, up, down, k, ridge)
    assert plain["gate"] is None and torch.equal(plain["index"], expected)
    torch.testing.assert_close(plain["down"], out["down"], rtol=0, atol=0)
    for bad in (0, d_int + 1):
        with pytest.raises(ValueError):
            nystrom_mlp(C, gate, up, down, bad, ridge)
    with pytest.raises(ValueError):
        nystrom_mlp(C, gate, up, down.T, k, ridge)


def test_nystrom_full_width_reproduces_down():
    d, d_int = 5, 12
    h = _data(60, d_int, 4)
    C = h.T @ h
    gate, up, down = _mlp(d, d_int, 5)
    out = nystrom_mlp(C, gate, up, down, d_int, 1e-2, jitter=0.0)
    assert torch.equal(out["index"], torch.arange(d_int))
    torch.testing.assert_close(out["down"], down, rtol=0, atol=1e-10)
    jittered = nystrom_mlp(C, gate, up, down, d_int, 1e-2)  # default jitter 1e-6 on sums of O(60)
    torch.testing.assert_close(jittered["down"], down, rtol=0, atol=1e-5)


def test_nystrom_refit_is_least_squares_optimum():
    """Each module's reconstruction error equals its theoretical optimum for the selected channels."""
    d, d_int, k = 7, 20, 8
    h = _data(200, d_int, 6, spread=1.0)
    C = h.T @ h
    gate, up, down = _mlp(d, d_int, 7)
    out = nystrom_mlp(C, gate, up, down, k, 1.0, jitter=0.0)
    S = out["index"]
    target = h @ down.T
    lstsq = torch.linalg.lstsq(h[:, S], target).solution.T  # [d, k]
    torch.testing.assert_close(out["down"], lstsq, rtol=1e-9, atol=1e-9)
    err = torch.linalg.norm(target - h[:, S] @ out["down"].T)
    assert err <= torch.linalg.norm(target - h[:, S] @ down[:, S].T)  # better than plain slicing
    # float32 weights: computed in float64, returned as float32
    out32 = nystrom_mlp(C.float(), gate.float(), up.float(), down.float(), k, 1.0, jitter=0.0)
    assert out32["down"].dtype == torch.float32 and out32["up"].dtype == torch.float32
    torch.testing.assert_close(out32["down"].double(), lstsq, rtol=1e-3, atol=1e-3)


# ---------------------------------------------------------------------------------------------- CR
def test_cr_scores_match_activation_norms():
    n, d, d_h = 50, 10, 8
    x = _data(n, d, 8)
    g = _gen(9)
    w_q, w_k = torch.randn(d_h, d, generator=g, dtype=F64), torch.randn(d_h, d, generator=g, dtype=F64)
    q, k = x @ w_q.T, x @ w_k.T
    qe, ke = q.square().sum(0), k.square().sum(0)  # calibration's per-channel energies
    plain = cr_pair_scores(qe, ke, rope=False)
    torch.testing.assert_close(plain, q.norm(dim=0) * k.norm(dim=0), rtol=1e-12, atol=0)
    # = ||C_q^{1/2} e_i|| ||C_k^{1/2} e_i|| with the full d_h x d_h correlations
    half_q, half_k = whitening(q.T @ q, 0.0).half, whitening(k.T @ k, 0.0).half
    torch.testing.assert_close(plain, half_q.norm(dim=0) * half_k.norm(dim=0), rtol=1e-9, atol=0)
    pairs = cr_pair_scores(qe, ke)
    assert pairs.shape == (d_h // 2,)
    torch.testing.assert_close(pairs, (plain[:4].square() + plain[4:].square()).sqrt(), rtol=1e-12, atol=0)
    with pytest.raises(ValueError):
        cr_pair_scores(qe[:7], ke[:7])


def test_select_qk_pairs_and_gqa_sums():
    d_h = 8
    # one head, no GQA: pair 1 (channels 1, 5) and pair 3 (channels 3, 7) dominate
    qe = torch.tensor([[1.0, 9.0, 1.0, 4.0, 1.0, 9.0, 1.0, 4.0]], dtype=F64)
    ke = torch.ones(1, d_h, dtype=F64)
    (idx,) = select_qk_channels(qe, ke, 1, 1, d_h, 4)
    assert idx.tolist() == [1, 3, 5, 7]
    # a single huge channel without its partner: pairs keep partners together
    qe2 = torch.tensor([[0.0, 0.0, 100.0, 0.0, 3.0, 3.0, 0.0, 3.0]], dtype=F64)
    (idx2,) = select_qk_channels(qe2, ke, 1, 1, d_h, 4)
    assert idx2.tolist() == [0, 2, 4, 6]  # pairs 2 (100) and 0 (3) beat pair 1 (3) by the tie rule
    (plain,) = select_qk_channels(qe2, ke, 1, 1, d_h, 3, rope=False)
    assert plain.tolist() == [2, 4, 5]
    # GQA: 4 q heads, 2 KV heads; flat energies accepted
    g = _gen(10)
    qe4 = torch.rand(4, d_h, generator=g, dtype=F64)
    ke2 = torch.rand(2, d_h, generator=g, dtype=F64)
    groups = select_qk_channels(qe4.flatten(), ke2.flatten(), 4, 2, d_h, 6)
    assert len(groups) == 2
    for j, idx in enumerate(groups):
        summed = cr_pair_scores(qe4[2 * j], ke2[j]) + cr_pair_scores(qe4[2 * j + 1], ke2[j])
        top = torch.topk(summed, 3).indices.sort().values
        assert idx.tolist() == torch.cat([top, top + d_h // 2]).tolist()
        assert torch.equal(idx, idx.sort().values) and idx.dtype == torch.long
    assert [i.tolist() for i in select_qk_channels(qe4, ke2, 4, 2, d_h, d_h)] == [list(range(d_h))] * 2
    with pytest.raises(ValueError):
        select_qk_channels(qe4, ke2, 4, 2, d_h, 5)  # odd keep with RoPE
    with pytest.raises(ValueError):
        select_qk_channels(qe4, ke2, 4, 3, d_h, 4)
    with pytest.raises(ValueError):
        select_qk_channels(qe4, ke2, 4, 2, d_h, 10)


# ---------------------------------------------------------------------------------------------- VO
def _vo(d: int, d_h: int, g_heads: int, seed: int):
    g = _gen(seed)
    w_v = torch.randn(d_h, d, generator=g, dtype=F64)
    w_os = [torch.randn(d, d_h, generator=g, dtype=F64) for _ in range(g_heads)]
    return w_v, w_os


def _vo_error(x, w_v, w_o, v_new, o_new) -> float:
    return float(torch.linalg.norm(x @ w_v.T @ w_o.T - x @ v_new.T @ o_new.T))


def test_vo_two_step_equals_big_svd_and_tail_bound():
    n, d, d_h, keep = 300, 16, 6, 3
    x = _data(n, d, 11, spread=0.5)
    C = x.T @ x
    w_v, w_os = _vo(d, d_h, 1, 12)
    v_new, o_new = whitened_svd_vo(C, w_v, w_os, keep, 0.0)
    v_big, o_big = whitened_svd_vo_one_big(C, w_v, w_os, keep, 0.0)
    assert v_new.shape == (keep, d) and len(o_new) == 1 and o_new[0].shape == (d, keep)
    err, err_big = _vo_error(x, w_v, w_os[0], v_new, o_new[0]), _vo_error(x, w_v, w_os[0], v_big, o_big[0])
    assert abs(err - err_big) <= 1e-8 * err_big
    torch.testing.assert_close(v_new.T @ o_new[0].T, v_big.T @ o_big[0].T, rtol=1e-8, atol=1e-8)
    s = torch.linalg.svdvals(whitening(C, 0.0).half @ w_v.T @ w_os[0].T)
    assert abs(err - float(s[keep:].square().sum().sqrt())) <= 1e-8 * err
    # full rank keep: exact; a ridge and a precomputed whitening give the same result
    v_full, o_full = whitened_svd_vo(C, w_v, w_os, d_h, 1e-3)
    torch.testing.assert_close(v_full.T @ o_full[0].T, w_v.T @ w_os[0].T, rtol=0, atol=1e-9)
    white = whitening(C, 1e-3)
    assert isinstance(white, Whitening)
    v_w, o_w = whitened_svd_vo(white, w_v, w_os, keep, 1e-3)
    v_c, o_c = whitened_svd_vo(C, w_v, w_os, keep, 1e-3)
    torch.testing.assert_close(v_w.T @ o_w[0].T, v_c.T @ o_c[0].T, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError):
        whitened_svd_vo(white, w_v, w_os, keep, 1e-4)  # ridge mismatch
    with pytest.raises(ValueError):
        whitened_svd_vo(C, w_v, w_os, d_h + 1, 0.0)
    # float32 weights come back as float32
    v32, o32 = whitened_svd_vo(C, w_v.float(), [w_os[0].float()], keep, 0.0)
    assert v32.dtype == torch.float32 and o32[0].dtype == torch.float32


def test_vo_gqa_shapes_and_projection():
    n, d, d_h, g_heads, keep = 200, 12, 4, 3, 2
    x = _data(n, d, 13, spread=0.5)
    C = x.T @ x
    w_v, w_os = _vo(d, d_h, g_heads, 14)
    v_new, o_new = whitened_svd_vo(C, w_v, w_os, keep, 0.0)
    assert v_new.shape == (keep, d) and len(o_new) == g_heads and all(o.shape == (d, keep) for o in o_new)
    # V_new^T O_new,h^T = C^{-1/2} P_k C^{1/2} W_v^T W_o,h^T with P_k the top-k projector of C^{1/2} W_v^T
    white = whitening(C, 0.0)
    U = torch.linalg.svd(white.half @ w_v.T, full_matrices=False).U[:, :keep]
    for w_o, o in zip(w_os, o_new):
        expected = white.inv_half @ U @ U.T @ white.half @ w_v.T @ w_o.T
        torch.testing.assert_close(v_new.T @ o.T, expected, rtol=1e-9, atol=1e-9)
    # the joint (one big SVD) reference is never worse on the summed error; full keep is exact
    v_big, o_big = whitened_svd_vo_one_big(C, w_v, w_os, keep, 0.0)
    err = sum(_vo_error(x, w_v, w_o, v_new, o) ** 2 for w_o, o in zip(w_os, o_new))
    err_big = sum(_vo_error(x, w_v, w_o, v_big, o) ** 2 for w_o, o in zip(w_os, o_big))
    assert err_big <= err * (1 + 1e-10)
    v_full, o_full = whitened_svd_vo(C, w_v, w_os, d_h, 0.0)
    for w_o, o in zip(w_os, o_full):
        torch.testing.assert_close(v_full.T @ o.T, w_v.T @ w_o.T, rtol=0, atol=1e-9)
    with pytest.raises(ValueError):
        whitened_svd_vo(C, w_v, [w_os[0].T], keep, 0.0)
    with pytest.raises(ValueError):
        whitening(torch.zeros(3, 3, dtype=F64), 0.0)  # singular without a ridge


# ---------------------------------------------------------------------------------------------- allocation
BI = torch.tensor([0.45, 0.35, 0.17, 0.12, 0.08, 0.05, 0.03, 0.09, 0.41], dtype=F64)


def test_allocation_mean_monotone_uniform():
    phi = allocate_sparsity(BI, 0.3, 0.15, cap=0.8)
    assert phi.dtype == F64 and phi.shape == BI.shape
    assert abs(float(phi.mean()) - 0.3) < 1e-12 and float(phi.max()) <= 0.8
    order = torch.argsort(BI)
    assert bool((phi[order][1:] <= phi[order][:-1]).all())  # lower BI -> higher sparsity
    uncapped = torch.softmax(-BI / 0.15, 0) * BI.numel() * 0.3
    if float(uncapped.max()) <= 0.8:
        torch.testing.assert_close(phi, uncapped, rtol=1e-12, atol=0)
    flat = allocate_sparsity(torch.full((6,), 0.2, dtype=F64), 0.4, 0.05)
    torch.testing.assert_close(flat, torch.full((6,), 0.4, dtype=F64), rtol=0, atol=1e-15)
    assert float(allocate_sparsity(BI, 0.0, 0.15).abs().max()) == 0.0


def test_allocation_cap_redistribution_and_weights():
    temperature, cap = 0.02, 0.6  # sharp softmax: several layers hit the cap
    phi = allocate_sparsity(BI, 0.4, temperature, cap=cap)
    assert abs(float(phi.mean()) - 0.4) < 1e-12 and float(phi.max()) <= cap
    capped = phi >= cap - 1e-15
    assert 1 <= int(capped.sum()) < BI.numel()
    # the uncapped layers keep the softmax proportions
    p = torch.softmax(-BI / temperature, 0)
    ratio = phi[~capped] / p[~capped]
    torch.testing.assert_close(ratio, ratio[0].expand_as(ratio), rtol=1e-10, atol=0)
    order = torch.argsort(BI)
    assert bool((phi[order][1:] <= phi[order][:-1]).all())
    # weighted mean (per-layer parameter counts) hits the target exactly
    w = torch.tensor([3.0, 1.0, 2.0, 5.0, 1.0, 4.0, 2.0, 2.0, 1.0], dtype=F64)
    phw = allocate_sparsity(BI, 0.4, temperature, cap=cap, weights=w)
    assert abs(float((w * phw).sum() / w.sum()) - 0.4) < 1e-12 and float(phw.max()) <= cap
    # mean equal to the cap: everything capped
    torch.testing.assert_close(allocate_sparsity(BI, cap, 0.15, cap=cap), torch.full_like(BI, cap))
    # extreme temperature: no underflow, still exact
    sharp = allocate_sparsity(BI, 0.5, 1e-4, cap=0.8)
    assert torch.isfinite(sharp).all() and abs(float(sharp.mean()) - 0.5) < 1e-12


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(mean_sparsity=0.9, temperature=0.1, cap=0.8),  # infeasible
        dict(mean_sparsity=0.3, temperature=0.0),
        dict(mean_sparsity=-0.1, temperature=0.1),
        dict(mean_sparsity=0.3, temperature=0.1, cap=1.5),
        dict(mean_sparsity=0.3, temperature=0.1, weights=torch.ones(3)),
        dict(mean_sparsity=0.3, temperature=0.1, weights=-torch.ones(9)),
    ],
)
def test_allocation_rejects_bad_inputs(kwargs):
    with pytest.raises(ValueError):
        allocate_sparsity(BI, **kwargs)
    with pytest.raises(ValueError):
        allocate_sparsity(torch.tensor([0.1, float("nan")]), 0.3, 0.1)
