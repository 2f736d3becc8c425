"""Swap-VAE model, losses (known answers) and a short training run per variant."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from repro.neural.swapvae import (
    VARIANTS,
    SwapVAE,
    alignment,
    count_jitter_pairs,
    gaussian_kl,
    poisson_nll,
    swapvae_loss,
    train_swapvae,
)
from repro.neural.trials import TrialData
from repro.neural.views import jitter_pairs


def toy_trials(n_trials: int = 24, n_bins: int = 6, n_units: int = 12, n_classes: int = 4, seed: int = 0) -> TrialData:
    """Cosine-tuned Poisson units, whole trials split 60/20/20 in order."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.arange(n_trials) % n_classes
    angle = 2 * math.pi * direction.float() / n_classes
    pd = torch.rand(n_units, generator=g) * 2 * math.pi
    rate = torch.exp(0.5 + torch.cos(angle[:, None] - pd[None]))  # [trials, units]
    rows = n_trials * n_bins
    counts = torch.poisson(rate.repeat_interleave(n_bins, 0), generator=g)
    trial = torch.arange(n_trials).repeat_interleave(n_bins)
    split = torch.zeros(n_trials, dtype=torch.long)
    split[int(0.6 * n_trials) :] = 1
    split[int(0.8 * n_trials) :] = 2
    return TrialData(
        counts=counts.float(),
        trial=trial,
        time=torch.arange(n_bins).repeat(n_trials),
        direction=direction.repeat_interleave(n_bins),
        angle=angle.repeat_interleave(n_bins),
        velocity=torch.zeros(rows, 2),
        split=split.repeat_interleave(n_bins),
        n_classes=n_classes,
    )


# ---------------------------------------------------------------- losses


def test_poisson_nll_hand_value_and_torch():
    x = torch.tensor([[0.0, 2.0], [1.0, 3.0]])
    rate = torch.tensor([[0.5, 1.0], [2.0, 4.0]])
    eps = 1e-7
    row0 = 0.5 - 0.0 + 1.0 - 2.0 * math.log(1.0 + eps)
    row1 = 2.0 - 1.0 * math.log(2.0 + eps) + 4.0 - 3.0 * math.log(4.0 + eps)
    assert poisson_nll(x, rate, eps).item() == pytest.approx((row0 + row1) / 2, rel=1e-6)
    ref = F.poisson_nll_loss(rate, x, log_input=False, full=False, eps=eps, reduction="sum") / x.shape[0]
    assert torch.allclose(poisson_nll(x, rate, eps), ref)
    ref_mean = F.poisson_nll_loss(rate, x, log_input=False, full=False, eps=eps)  # mean over all elements
    assert torch.allclose(poisson_nll(x, rate, eps), ref_mean * x.shape[1])


def test_poisson_nll_finite_at_zero_rate():
    x = torch.tensor([[3.0, 0.0]])
    rate = torch.zeros(1, 2, requires_grad=True)
    loss = poisson_nll(x, rate)
    assert torch.isfinite(loss)
    assert loss.item() == pytest.approx(-3.0 * math.log(1e-7), rel=1e-5)
    loss.backward()
    assert torch.isfinite(rate.grad).all()


def test_gaussian_kl():
    assert gaussian_kl(torch.zeros(3, 4), torch.zeros(3, 4)).item() == 0.0
    mu = torch.tensor([[1.0, -2.0], [0.5, 0.0]])
    logvar = torch.tensor([[0.0, math.log(2.0)], [math.log(0.5), 1.0]])

    def kl1(m, v):  # KL(N(m, v) || N(0, 1)) in one dimension
        return 0.5 * (v + m * m - 1 - math.log(v))

    hand = (kl1(1, 1) + kl1(-2, 2) + kl1(0.5, 0.5) + kl1(0, math.e)) / 2
    assert gaussian_kl(mu, logvar).item() == pytest.approx(hand, rel=1e-6)


def test_alignment():
    c = torch.randn(5, 3)
    assert alignment(c, c).item() == pytest.approx(0.0, abs=1e-6)
    assert alignment(c, -c).item() == pytest.approx(4.0, abs=1e-6)
    assert alignment(c, 2.5 * c).item() == pytest.approx(0.0, abs=1e-6)


# ---------------------------------------------------------------- model


def tiny_model(seed: int = 0, **kw) -> SwapVAE:
    torch.manual_seed(seed)
    return SwapVAE(5, latent_dim=kw.get("latent_dim", 4), style_dim=kw.get("style_dim", 2), hidden=(6, 3))


def test_model_shapes_and_layers():
    m = SwapVAE(20)
    x = torch.rand(7, 20) * 3
    m.eval()
    c, mu, logvar = m.encode(x)
    assert c.shape == (7, 64) and mu.shape == (7, 64) and logvar.shape == (7, 64)
    assert m.representation(x).shape == (7, 128)
    assert torch.equal(m.representation(x), torch.cat([m.content(x), m.style(x)], 1))
    assert m.decode(c, mu).shape == (7, 20) and (m.decode(c, mu) >= 0).all()
    linears = [mod for mod in m.encoder if isinstance(mod, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(20, 20), (20, 128), (128, 192)]
    linears = [mod for mod in m.decoder if isinstance(mod, torch.nn.Linear)]
    assert [(lin.in_features, lin.out_features) for lin in linears] == [(128, 128), (128, 20), (20, 20)]
    assert isinstance(m.decoder[-1], torch.nn.Softplus)
    assert all((lin.bias == 0).all() for lin in linears)
    vae = SwapVAE(20, latent_dim=16, style_dim=16)
    assert vae.content_dim == 0 and vae.content(x).shape == (7, 0) and vae.representation(x).shape == (7, 16)


def test_content_deterministic_style_sampled():
    m = tiny_model()
    x = torch.rand(8, 5) * 4
    m.train()
    c1, mu1, lv1, s1 = m(x)
    c2, mu2, lv2, s2 = m(x)
    assert torch.equal(c1, c2) and torch.equal(mu1, mu2)
    assert not torch.allclose(s1, s2)
    m.eval()
    _, mu, _, s = m(x)
    assert torch.equal(s, mu)


def _terms_by_hand(m: SwapVAE, x1, x2, eps=1e-7):
    c1, mu1, lv1 = m.encode(x1)
    c2, mu2, lv2 = m.encode(x2)

    def rec(x, r):
        return (r - x * torch.log(r + eps)).sum(1).mean()

    def kl(mu, lv):
        return (0.5 * (lv.exp() + mu**2 - 1 - lv)).sum(1).mean()

    return {
        "rec_swap": 0.5 * (rec(x1, m.decode(c2, mu1)) + rec(x2, m.decode(c1, mu2))),
        "rec_orig": 0.5 * (rec(x1, m.decode(c1, mu1)) + rec(x2, m.decode(c2, mu2))),
        "kl": 0.5 * (kl(mu1, lv1) + kl(mu2, lv2)),
        "align": (2 - 2 * F.cosine_similarity(c1, c2)).mean(),
    }


def test_swapvae_loss_equals_formula_term_by_term():
    m = tiny_model().eval()  # eval: s = mu_s, BN running statistics -> deterministic
    g = torch.Generator().manual_seed(1)
    x1, x2 = torch.poisson(torch.full((6, 5), 2.0), generator=g), torch.poisson(torch.full((6, 5), 2.0), generator=g)
    with torch.no_grad():
        hand = _terms_by_hand(m, x1, x2)
        total, terms = swapvae_loss(m, x1, x2, alpha=10.0, beta=1.0)
    for k in hand:
        assert torch.allclose(terms[k], hand[k], rtol=1e-5), k
    expected = hand["rec_swap"] + hand["rec_orig"] + 10.0 * hand["kl"] + 1.0 * hand["align"]
    assert torch.allclose(total, expected, rtol=1e-5)

    # every variant: its weights applied to the same terms
    a, b = 3.0, 0.7
    h = hand
    want = {
        "swap_vae": h["rec_swap"] + h["rec_orig"] + a * h["kl"] + b * h["align"],
        "beta_vae": 2 * h["rec_orig"] + a * h["kl"],
        "beta_vae_5": 2 * h["rec_orig"] + a / 5 * h["kl"],
        "no_align": h["rec_swap"] + h["rec_orig"] + a * h["kl"],
        "no_swap": 2 * h["rec_orig"] + a * h["kl"] + b * h["align"],
        "swap_only": 2 * h["rec_swap"] + a * h["kl"],
        "kl_align": a * h["kl"] + b * h["align"],
        "align_only": b * h["align"],
        "vae": 2 * h["rec_orig"] + h["kl"],
    }
    assert set(want) == set(VARIANTS)
    with torch.no_grad():
        for name, value in want.items():
            got, _ = swapvae_loss(m, x1, x2, alpha=a, beta=b, variant=name)
            assert torch.allclose(got, value, rtol=1e-5), name
        assert torch.allclose(swapvae_loss(m, x1, x2, a, b, "ablation4")[0], want["no_swap"])
        # fused decoder: identical in eval mode (BN running statistics), different in train mode
        fused, _ = swapvae_loss(m, x1, x2, a, b, fuse_decoder=True)
        assert torch.allclose(fused, want["swap_vae"], rtol=1e-5)
        m.train()
        gen = torch.Generator().manual_seed(0)
        sep, _ = swapvae_loss(m, x1, x2, a, b, generator=gen)
        gen = torch.Generator().manual_seed(0)
        fus, _ = swapvae_loss(m, x1, x2, a, b, fuse_decoder=True, generator=gen)
        assert not torch.allclose(sep, fus)
    with pytest.raises(ValueError):
        swapvae_loss(m, x1, x2, variant="nope")


def test_vae_variants_single_view_and_no_content():
    m = tiny_model(style_dim=4).eval()
    x = torch.rand(6, 5) * 3
    with torch.no_grad():
        total, terms = swapvae_loss(m, x, None, alpha=4.0, variant="beta_vae")
        c, mu, lv = m.encode(x)
        assert c.shape[1] == 0
        assert torch.allclose(total, 2 * poisson_nll(x, m.decode(c, mu)) + 4.0 * gaussian_kl(mu, lv), rtol=1e-5)
        assert torch.allclose(
            swapvae_loss(m, x, None, alpha=4.0, variant="vae")[0], terms["rec_orig"] * 2 + terms["kl"]
        )
    with pytest.raises(ValueError):
        swapvae_loss(m, x, x, variant="swap_vae")  # no content block to swap or align
    with pytest.raises(ValueError):
        swapvae_loss(tiny_model(), x, None, variant="swap_vae")


def test_count_jitter_pairs_brute_force():
    data = toy_trials(n_trials=5, n_bins=7)
    start, length = data.trial_bounds()
    for k in (0, 2, 5, 10):
        brute = 0
        for s, n in zip(start.tolist(), length.tolist(), strict=True):
            t = data.time[s : s + n]
            brute += int(((t[:, None] - t[None]).abs() <= k).sum())
        assert count_jitter_pairs(data, k) == brute
        # one epoch = one pass: jitter_pairs draws that many pairs without replacement, all distinct
        i, j = jitter_pairs(data, brute, k, torch.Generator().manual_seed(0))
        assert len(set(zip(i.tolist(), j.tolist(), strict=True))) == brute
    one_sided = sum(n * (n + 1) // 2 - (n - 3) * (n - 2) // 2 for n in length.tolist())  # 0 <= dt <= 2
    assert count_jitter_pairs(data, 2, min_shift=0) == one_sided
    assert count_jitter_pairs(data, 2, data.split == 0) < count_jitter_pairs(data, 2)


# ---------------------------------------------------------------- training


@pytest.mark.parametrize("variant", VARIANTS)
def test_short_training_lowers_loss(variant):
    data = toy_trials()
    model, hist = train_swapvae(
        data,
        variant=variant,
        epochs=3,
        steps_per_epoch=10,
        batch_size=32,
        lr=3e-3,
        latent_dim=8,
        hidden=(16, 8),
        max_shift=2,
        device="cpu",
    )
    assert not model.training
    assert len(hist["total"]) == 3
    assert all(math.isfinite(v) for vals in hist.values() for v in vals)
    assert hist["total"][-1] < hist["total"][0]
    expected_content = 0 if variant in ("vae", "beta_vae", "beta_vae_5") else 4
    assert model.content_dim == expected_content


@pytest.mark.parametrize(
    "kw",
    [
        dict(dropout_views=False),
        dict(structured=False),
        dict(fuse_decoder=True),
        dict(progress=True, pairs_per_epoch=40),
    ],
)
def test_training_options_run(kw):
    data = toy_trials()
    _, hist = train_swapvae(data, epochs=1, batch_size=16, latent_dim=8, hidden=(8, 4), device="cpu", **kw)
    assert set(hist) == {"total", "rec_swap", "rec_orig", "kl", "align"}
    n_pairs = count_jitter_pairs(data, 5, data.split == 0)
    assert n_pairs > 16  # default epoch length: one pass over the pair list (checked to run)


def test_training_is_seeded():
    data = toy_trials()
    kw = dict(epochs=1, steps_per_epoch=3, batch_size=16, latent_dim=8, hidden=(8, 4), device="cpu")
    _, h1 = train_swapvae(data, seed=3, **kw)
    _, h2 = train_swapvae(data, seed=3, **kw)
    assert h1 == h2
