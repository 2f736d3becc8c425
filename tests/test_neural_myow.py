"""MYOW / BYOL (repro.neural.myow, repro.neural.myow_images): schedules, EMA target, losses, view
mining (brief shared/papers/ssl_graph_neural.md §3, §7.4) and short training runs."""

from __future__ import annotations

import math

import pytest
import torch

from repro.neural.myow import (
    MLP3,
    MYOW,
    aug_loss,
    combine_losses,
    cosine_loss,
    ema_tau,
    embed_neural,
    lr_at,
    mine_views,
    mined_weight,
    mlp_encoder,
    neural_encoder,
    train_myow_neural,
)
from repro.neural.myow_images import (
    ENCODERS,
    byol_augment,
    cifar_resnet18,
    embed_images,
    mined_augment,
    small_cnn,
    train_myow_images,
)
from repro.neural.trials import TrialData

# ------------------------------------------------------------------------------------------------
# fixtures
# ------------------------------------------------------------------------------------------------


def tiny_trials(n_trials=40, n_bins=10, n_units=24, n_dir=4, seed=0) -> TrialData:
    """Cosine-tuned Poisson units: direction and a within-trial ramp shape the counts."""
    g = torch.Generator().manual_seed(seed)
    direction = torch.arange(n_trials) % n_dir
    angle = 2 * math.pi * direction.float() / n_dir
    pd = torch.rand(n_units, generator=g) * 2 * math.pi
    rows_trial = torch.arange(n_trials).repeat_interleave(n_bins)
    time = torch.arange(n_bins).repeat(n_trials)
    a = angle[rows_trial]
    speed = torch.sin(math.pi * (time.float() + 0.5) / n_bins)
    rate = torch.exp(0.5 + 1.2 * speed[:, None] * torch.cos(a[:, None] - pd[None]))
    counts = torch.poisson(rate, generator=g)
    vel = torch.stack([torch.cos(a), torch.sin(a)], 1) * speed[:, None] * 20
    split = torch.where(rows_trial < int(0.75 * n_trials), 0, torch.where(rows_trial < int(0.875 * n_trials), 1, 2))
    return TrialData(
        counts=counts,
        trial=rows_trial,
        time=time,
        direction=direction[rows_trial],
        angle=a,
        velocity=vel,
        split=split,
        n_classes=n_dir,
    )


def tiny_model(mined=True, target_init="copy", layout="cascaded") -> MYOW:
    torch.manual_seed(0)
    enc = mlp_encoder(12, (16,), 8)
    return MYOW(
        enc,
        8,
        proj=(16, 6),
        pred_hidden=16,
        mined_proj=(8, 4),
        mined_pred_hidden=8,
        layout=layout,
        mined=mined,
        target_init=target_init,
    )


def shapes(n=64, size=28, seed=0) -> tuple[torch.Tensor, torch.Tensor]:
    """Half filled squares, half crosses, random position and size, on a noisy background."""
    g = torch.Generator().manual_seed(seed)
    x = 0.1 * torch.rand(n, 1, size, size, generator=g)
    y = torch.arange(n) % 2
    for i in range(n):
        s = int(torch.randint(6, 12, (1,), generator=g))
        r0, c0 = (int(v) for v in torch.randint(0, size - s, (2,), generator=g))
        if y[i] == 0:
            x[i, 0, r0 : r0 + s, c0 : c0 + s] = 1.0
        else:
            x[i, 0, r0 + s // 2 - 1 : r0 + s // 2 + 1, c0 : c0 + s] = 1.0
            x[i, 0, r0 : r0 + s, c0 + s // 2 - 1 : c0 + s // 2 + 1] = 1.0
    return x, y


# ------------------------------------------------------------------------------------------------
# schedules
# ------------------------------------------------------------------------------------------------


def test_ema_tau_starts_at_base_and_ends_at_one():
    assert ema_tau(0, 100, 0.98) == pytest.approx(0.98)
    assert ema_tau(0, 100, 0.98) != pytest.approx(0.02)  # the myow-neuro notebook bug (brief §3.5)
    assert ema_tau(100, 100, 0.98) == pytest.approx(1.0)
    assert ema_tau(50, 100, 0.9) == pytest.approx(0.95)
    taus = [ema_tau(s, 100, 0.9) for s in range(101)]
    assert all(b >= a for a, b in zip(taus, taus[1:]))
    assert ema_tau(37, 100, 0.98, schedule="constant") == 0.98


def test_mined_weight_myow_lambda_ramp():
    # myow repo monkey: lam 0 until epoch 10, linear to 0.1 at epoch 110
    assert mined_weight(0) == 0.0
    assert mined_weight(9.99) == 0.0
    assert mined_weight(10) == 0.0
    assert mined_weight(60) == pytest.approx(0.05)
    assert mined_weight(110) == pytest.approx(0.1)
    assert mined_weight(900) == pytest.approx(0.1)
    # CIFAR: lam_max 1 from epoch 100 to 110
    kw = dict(max_weight=1.0, warmup_epochs=100, rampup_epochs=110)
    assert [mined_weight(e, "myow", **kw) for e in (99, 100, 105, 110, 800)] == pytest.approx([0, 0, 0.5, 1, 1])
    l_aug, l_min = torch.tensor(2.0), torch.tensor(1.0)
    assert float(combine_losses(l_aug, l_min, 1.0, "myow")) == pytest.approx(1.5)  # (2 + 1) / 2
    assert float(combine_losses(l_aug, l_min, 0.0, "myow")) == pytest.approx(2.0)


def test_mined_weight_myow_neuro_w_ramp():
    # myow-neuro: w linear from 0 to 0.5 over the first 10 epochs
    c = "myow-neuro"
    assert [mined_weight(e, c) for e in (0, 2, 5, 10, 11, 10000)] == pytest.approx([0, 0.1, 0.25, 0.5, 0.5, 0.5])
    l_aug, l_min = torch.tensor(2.0), torch.tensor(1.0)
    assert float(combine_losses(l_aug, l_min, 0.25, c)) == pytest.approx(0.75 * 2 + 0.25 * 1)


def test_lr_warmup_then_cosine():
    assert lr_at(0, 100, 1.0, 10) == pytest.approx(0.1)
    assert lr_at(9, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(10, 100, 1.0, 10) == pytest.approx(1.0)
    assert lr_at(100, 100, 1.0, 10) == pytest.approx(0.0, abs=1e-12)


# ------------------------------------------------------------------------------------------------
# losses
# ------------------------------------------------------------------------------------------------


def test_cosine_loss_hand_cases():
    a = torch.tensor([[1.0, 2.0, -1.0]])
    assert float(cosine_loss(a, 3 * a)) == pytest.approx(0.0, abs=1e-6)
    assert float(cosine_loss(a, -a)) == pytest.approx(4.0)
    assert float(cosine_loss(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 5.0]]))) == pytest.approx(2.0)
    assert float(cosine_loss(a, -a, form="1-cos")) == pytest.approx(2.0)
    assert float(cosine_loss(a, a, form="1-cos")) == pytest.approx(0.0, abs=1e-6)
    # 2 - 2cos is the squared distance of the normalised vectors
    p, z = torch.randn(5, 7), torch.randn(5, 7)
    d = (torch.nn.functional.normalize(p, dim=1) - torch.nn.functional.normalize(z, dim=1)).pow(2).sum(1)
    torch.testing.assert_close(cosine_loss(p, z, reduction="none"), d)
    # symmetric augmented loss; stop-gradient on the target
    q1, q2 = p.clone().requires_grad_(), z.clone().requires_grad_()
    t1, t2 = torch.randn(5, 7, requires_grad=True), torch.randn(5, 7, requires_grad=True)
    loss = aug_loss(q1, t2, q2, t1)
    torch.testing.assert_close(loss, 0.5 * (cosine_loss(p, t2) + cosine_loss(z, t1)))
    loss.backward()
    assert t1.grad is None and t2.grad is None and q1.grad is not None


# ------------------------------------------------------------------------------------------------
# model and EMA target
# ------------------------------------------------------------------------------------------------


def test_encoder_presets_and_heads():
    enc, d = neural_encoder(30, "myow")
    assert d == 128 and [m.out_features for m in enc if isinstance(m, torch.nn.Linear)] == [128] * 4
    assert isinstance(enc[-1], torch.nn.Linear)  # drop_last_nonlin
    enc, d = neural_encoder(30, "myow-neuro")
    assert d == 64 and any(isinstance(m, torch.nn.PReLU) for m in enc)
    assert [type(m).__name__ for m in MLP3(4, 8, 2)] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    m = MYOW(mlp_encoder(12, (16,), 8), 8, proj=None, pred_hidden=16, mined_proj=(8, 4), mined_pred_hidden=8)
    assert isinstance(m.projector, torch.nn.Identity)  # myow-neuro layout: g = identity
    x = torch.randn(10, 12)
    out = m.online(x)
    assert out["z"].shape == (10, 8) and out["q"].shape == (10, 8) and out["q_m"].shape == (10, 4)
    par = tiny_model(layout="parallel")
    assert par.mined_projector[0].in_features == 8  # h on y, not on z (cascaded: 6)
    assert tiny_model().mined_projector[0].in_features == 6


def test_target_is_copy_without_grad_and_ema_update_is_exact():
    m = tiny_model()
    for o, t in zip(
        [p for o, _ in m._paired() for p in o.parameters()], [p for _, t in m._paired() for p in t.parameters()]
    ):
        torch.testing.assert_close(o, t)
        assert not t.requires_grad
    before = [p.clone() for p in m.target_parameters()]
    x = torch.randn(16, 12)
    out, tgt = m.online(x), m.target(x)
    loss = cosine_loss(out["q"], tgt["z"]) + out["q_m"].pow(2).mean()
    loss.backward()
    assert all(p.grad is None for p in m.target_parameters())
    opt = torch.optim.SGD(m.online_parameters(), lr=0.5)
    opt.step()
    for b, p in zip(before, m.target_parameters()):
        torch.testing.assert_close(b, p)  # optimiser step leaves the target alone
    online = [p.detach().clone() for o, _ in m._paired() for p in o.parameters()]
    assert any(not torch.equal(o, b) for o, b in zip(online, before))
    tau = 0.9
    m.update_target(tau)
    for b, o, p in zip(before, online, m.target_parameters()):
        torch.testing.assert_close(p - b, (1 - tau) * (o - b))
    assert not any(n.startswith("target_") for n, _ in m.named_parameters() if "predictor" in n)


def test_target_random_init_option():
    m = tiny_model(target_init="random")
    enc_o = [p for p in m.encoder.parameters()]
    enc_t = [p for p in m.target_encoder.parameters()]
    assert any(not torch.equal(a, b) for a, b in zip(enc_o, enc_t))
    for a, b in zip(m.projector.parameters(), m.target_projector.parameters()):
        torch.testing.assert_close(a, b)


def test_byol_has_no_mined_branch():
    m = tiny_model(mined=False)
    assert not hasattr(m, "mined_projector") and not hasattr(m, "mined_predictor")
    assert not hasattr(m, "target_mined_projector")
    assert "q_m" not in m.online(torch.randn(8, 12))
    l_aug = torch.tensor(1.3)
    assert float(combine_losses(l_aug, None, 0.0, "myow")) == pytest.approx(1.3)
    data = tiny_trials(n_trials=16, n_bins=6, n_units=10)
    _, hist = train_myow_neural(data, mined=False, epochs=2, steps_per_epoch=2, batch_size=16, k=1, max_shift=2)
    assert all(w == 0.0 for w in hist["mined_weight"])
    assert all(math.isnan(v) for v in hist["l_mined"])
    assert hist["loss"] == pytest.approx(hist["l_aug"])


# ------------------------------------------------------------------------------------------------
# mining
# ------------------------------------------------------------------------------------------------


def _eligible_best(a, p, ga, gp):
    sim = torch.nn.functional.normalize(a, dim=1) @ torch.nn.functional.normalize(p, dim=1).T
    sim[ga[:, None] == gp[None, :]] = -float("inf")
    return sim


@pytest.mark.parametrize("seed", range(5))
def test_mining_never_returns_own_trial(seed):
    g = torch.Generator().manual_seed(seed)
    b, n_pool, d = 40, 60, 8
    a, p = torch.randn(b, d, generator=g), torch.randn(n_pool, d, generator=g)
    ga = torch.randint(0, 6, (b,), generator=g)
    gp = torch.randint(0, 6, (n_pool,), generator=g)
    gp[:5] = 99  # ensure some pool entries are always eligible
    for k in (1, 3, 5):
        m = mine_views(a, p, ga, gp, k, g)
        assert m.shape == (b,) and bool((m >= 0).all())
        assert not bool((gp[m] == ga).any())
        # chosen among the k most similar eligible candidates
        sim = _eligible_best(a, p, ga, gp)
        kth = sim.topk(k, dim=1).values[:, -1]
        assert bool((sim[torch.arange(b), m] >= kth - 1e-6).all())


def test_mining_k1_is_eligible_argmax_and_drops_anchors_without_candidates():
    g = torch.Generator().manual_seed(3)
    a, p = torch.randn(12, 5, generator=g), torch.randn(20, 5, generator=g)
    ga = torch.arange(12) % 4
    gp = torch.arange(20) % 4
    gp[gp == 3] = 0  # anchors of group 3 still have candidates; make group 2 have none
    gp[gp == 2] = 1
    m = mine_views(a, p, ga, gp, 1, g)
    sim = _eligible_best(a, p, ga, gp)
    torch.testing.assert_close(m, sim.argmax(1))
    # a pool made only of the anchor's own trial: no eligible candidate -> -1
    m = mine_views(a[:3], p[:4], torch.zeros(3, dtype=torch.long), torch.zeros(4, dtype=torch.long), 2, g)
    assert m.tolist() == [-1, -1, -1]


def test_mining_picks_uniformly_among_topk():
    g = torch.Generator().manual_seed(0)
    a = torch.tensor([[1.0, 0.0]])
    ang = torch.tensor([0.1, 0.2, 0.3, 1.5, 2.5, 3.0])
    p = torch.stack([torch.cos(ang), torch.sin(ang)], 1)
    counts = torch.zeros(6)
    for _ in range(300):
        counts[mine_views(a, p, torch.tensor([0]), torch.arange(1, 7), 3, g)] += 1
    assert counts[3:].sum() == 0 and bool((counts[:3] > 60).all())


# ------------------------------------------------------------------------------------------------
# training
# ------------------------------------------------------------------------------------------------


def _first_last(h, n=4):
    s = h["step_loss"]
    return sum(s[:n]) / n, sum(s[-n:]) / n


@pytest.mark.parametrize("mined", [True, False])
def test_neural_training_lowers_loss(mined):
    data = tiny_trials()
    model, hist = train_myow_neural(
        data,
        mined=mined,
        epochs=6,
        steps_per_epoch=5,
        batch_size=64,
        pool_size=96,
        k=3,
        max_shift=3,
        lr=3e-3,
        mined_warmup_epochs=0,
        mined_rampup_epochs=1,
        seed=1,
    )
    first, last = _first_last(hist)
    assert last < first
    assert len(hist["loss"]) == 6 and len(hist["step_loss"]) == 30
    assert hist["tau"][0] >= 0.9 and hist["tau"][-1] == pytest.approx(1.0, abs=1e-3)
    if mined:
        assert hist["mined_weight"][-1] == pytest.approx(0.1)
        assert all(not math.isnan(v) for v in hist["l_mined"][1:])
        assert hist["mined_frac"][-1] == pytest.approx(1.0)
    z = embed_neural(model, data)
    assert z.shape == (len(data.trial), 128) and torch.isfinite(z).all()


def test_neural_training_myow_neuro_preset_runs():
    data = tiny_trials(n_trials=16, n_bins=6, n_units=10)
    model, hist = train_myow_neural(data, preset="myow-neuro", epochs=2, steps_per_epoch=2, batch_size=24)
    assert model.repr_dim == 64 and isinstance(model.projector, torch.nn.Identity)
    assert hist["tau"] == [0.98, 0.98]  # constant EMA (train_monkey.py)
    assert hist["mined_weight"][-1] == pytest.approx(0.5)


def test_image_augmentations():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(6, 3, 16, 16, generator=g)
    torch.testing.assert_close(mined_augment(x, g, crop_scale=(1.0, 1.0), flip_p=0.0), x)  # identity crop
    flipped = mined_augment(x, g, crop_scale=(1.0, 1.0), flip_p=1.0)
    torch.testing.assert_close(flipped, x.flip(-1))
    y = byol_augment(x, g)
    assert y.shape == x.shape and float(y.min()) >= 0 and float(y.max()) <= 1
    assert not torch.allclose(y, x)
    enc, d = small_cnn(3, 4)
    assert enc(x).shape == (6, d) and d == 16


def test_image_training_lowers_loss():
    x, y = shapes()
    for mined in (True, False):
        model, hist = train_myow_images(
            x,
            y,
            mined=mined,
            epochs=6,
            batch_size=16,
            steps_per_epoch=4,
            width=8,
            proj=(64, 16),
            pred_hidden=64,
            mined_proj=(32, 8),
            mined_pred_hidden=32,
            lr=3e-3,
            ema_base=0.9,
            mined_warmup_epochs=0,
            mined_rampup_epochs=1,
            seed=0,
        )
        first, last = _first_last(hist)
        assert last < first, (mined, hist["step_loss"])
        if mined:
            assert not math.isnan(hist["l_mined"][-1]) and 0 <= hist["mined_agreement"][-1] <= 1
        else:
            assert all(math.isnan(v) for v in hist["l_mined"])
    z = embed_images(model, (x * 255).to(torch.uint8)[:, 0])
    assert z.shape == (64, 32)


def _resnet18_parameter_count(in_channels: int = 3) -> int:
    """Closed form for the CIFAR ResNet-18 without fc: bias-free convs (``k * k * c_in * c_out``),
    BN with weight and bias (``2 c``); per stage, block 1 maps ``c_prev -> c`` (with a 1x1 conv + BN
    shortcut when the shape changes), block 2 maps ``c -> c``."""

    def conv(c_in, c_out, k=3):
        return k * k * c_in * c_out

    def bn(c):
        return 2 * c

    def block(c_in, c_out, shortcut):
        main = conv(c_in, c_out) + bn(c_out) + conv(c_out, c_out) + bn(c_out)
        return main + (conv(c_in, c_out, 1) + bn(c_out) if shortcut else 0)

    total = conv(in_channels, 64) + bn(64)
    c_prev = 64
    for c, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
        total += block(c_prev, c, shortcut=stride != 1 or c_prev != c) + block(c, c, shortcut=False)
        c_prev = c
    return total


def test_cifar_resnet18_shape_and_size():
    assert _resnet18_parameter_count() == 11_168_832  # the usual figure for CIFAR ResNet-18 minus its fc
    torch.manual_seed(0)
    enc, d = cifar_resnet18()
    assert d == 512
    assert sum(p.numel() for p in enc.parameters()) == _resnet18_parameter_count()
    assert not any(isinstance(m, torch.nn.MaxPool2d) for m in enc.modules())
    enc.eval()
    with torch.no_grad():
        assert enc(torch.rand(2, 3, 32, 32)).shape == (2, 512)
    enc1, d1 = cifar_resnet18(in_channels=1)
    assert d1 == 512 and sum(p.numel() for p in enc1.parameters()) == _resnet18_parameter_count(1)


def test_image_training_with_resnet18_runs():
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(16, 3, 32, 32, generator=g) * 255).to(torch.uint8)
    y = torch.arange(16) % 4
    model, hist = train_myow_images(
        x,
        y,
        encoder="resnet18",
        epochs=1,
        batch_size=8,
        steps_per_epoch=1,
        proj=(32, 16),
        pred_hidden=32,
        mined_proj=(16, 8),
        mined_pred_hidden=16,
        skip_mining_when_zero=False,  # exercise the mined branch in the single step
        device="cpu",
        seed=0,
    )
    assert model.repr_dim == 512 and len(hist["step_loss"]) == 1 and math.isfinite(hist["step_loss"][0])
    assert not math.isnan(hist["l_mined"][0])
    z = embed_images(model, x[:5])
    assert z.shape == (5, 512) and torch.isfinite(z).all()


def test_image_training_rejects_unknown_encoder():
    x, y = shapes(n=8)
    with pytest.raises(ValueError, match=r"unknown encoder 'vgg'.*small_cnn.*resnet18"):
        train_myow_images(x, y, encoder="vgg", epochs=1)
    assert ENCODERS == ("small_cnn", "resnet18")


def test_image_records_forwards_the_encoder_option():
    """``encoder`` is accepted by the stage (it forwards unknown keys) and reaches train_myow_images."""
    from repro.neural import stages

    x, y = shapes(n=12, size=16)
    arrays = {"x_train": x.numpy(), "y_train": y.numpy(), "x_test": x.numpy(), "y_test": y.numpy()}
    with pytest.raises(ValueError, match=r"unknown encoder 'vgg'"):
        stages.image_records(arrays, "myow", "shapes", {"encoder": "vgg", "n_val": 2})
