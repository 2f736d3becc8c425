"""Probes: known answers on synthetic representations."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.linear_model import Ridge

from repro.neural.probes import (
    _ridge_fit,
    angular_accuracy,
    class_probe,
    content_style_decoding,
    default_weight_decays,
    direction_probe,
    disentanglement,
    fit_linear_heads,
    knn_accuracy,
    speed_mask,
    standardise,
    velocity_r2,
)
from repro.neural.swapvae import SwapVAE
from repro.neural.trials import TrialData


def angles_reps(n: int, n_classes: int = 8, d: int = 6, informative: bool = True, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, n_classes, (n,), generator=g)
    angle = 2 * math.pi * label.float() / n_classes
    z = torch.randn(n, d, generator=g)
    if informative:
        z[:, 0] = 3 * torch.cos(angle) + 0.05 * z[:, 0]
        z[:, 1] = 3 * torch.sin(angle) + 0.05 * z[:, 1]
    return z, angle


def test_default_weight_decays():
    wds = default_weight_decays()
    assert len(wds) == 20 and wds[0] == 2.0**-10 and wds[-1] == 2.0**9


def test_angular_accuracy_thresholds():
    angle = torch.zeros(4)
    err = torch.tensor([0.1, math.pi / 8 + 0.01, 3 * math.pi / 16 - 0.01, -3 * math.pi / 16 - 0.01])
    pred = torch.stack([torch.cos(err), torch.sin(err)], 1)
    acc, dacc = angular_accuracy(pred, angle, 8)
    assert acc.item() == pytest.approx(0.25) and dacc.item() == pytest.approx(0.75)
    # wrap-around: 2 pi - 0.05 vs 0
    acc, _ = angular_accuracy(torch.tensor([[math.cos(-0.05), math.sin(-0.05)]]), torch.tensor([2 * math.pi]), 8)
    assert acc.item() == 1.0


def test_direction_probe_separable_and_random():
    z, a = angles_reps(600)
    res = direction_probe(z[:400], a[:400], z[400:500], a[400:500], z[500:], a[500:], 8, epochs=100, batch_size=128)
    assert res["acc"] > 0.97 and res["delta_acc"] >= res["acc"]
    assert res["weight_decay"] in default_weight_decays() and len(res["val_acc_per_wd"]) == 20
    zr, ar = angles_reps(600, informative=False, seed=1)
    res = direction_probe(
        zr[:400], ar[:400], zr[400:500], ar[400:500], zr[500:], ar[500:], 8, epochs=100, batch_size=128
    )
    assert res["acc"] < 0.3  # chance: 1/8


def test_direction_probe_empty_validation_falls_back():
    z, a = angles_reps(500)
    empty = torch.empty(0, z.shape[1])
    res = direction_probe(
        z[:400], a[:400], empty, torch.empty(0), z[400:], a[400:], 8, [1e-3, 1.0], epochs=100, batch_size=128
    )
    assert res["acc"] > 0.95 and res["weight_decay"] in (1e-3, 1.0)


def test_vectorised_weight_decays_equal_a_loop():
    z, a = angles_reps(300, d=5, seed=2)
    y = torch.stack([torch.cos(a), torch.sin(a)], 1)

    def mse(pred, t):
        return (pred - t).pow(2).mean(dim=(1, 2))

    wds = [1e-3, 2.0]
    kw = dict(epochs=5, lr=0.01, batch_size=64, seed=4)
    w, b = fit_linear_heads(z, y, 2, mse, wds, **kw)
    for k, wd in enumerate(wds):
        wk, bk = fit_linear_heads(z, y, 2, mse, [wd], **kw)
        assert torch.allclose(w[k], wk[0], atol=1e-6) and torch.allclose(b[k], bk[0], atol=1e-6)
    assert not torch.allclose(w[0], w[1])
    # probe level: the per-wd validation accuracies are those of single-wd probes
    args = (z[:200], a[:200], z[200:250], a[200:250], z[250:], a[250:], 8)
    both = direction_probe(*args, weight_decays=wds, epochs=5)
    singles = [direction_probe(*args, weight_decays=[wd], epochs=5)["val_acc"] for wd in wds]
    assert both["val_acc_per_wd"] == pytest.approx(singles)


@pytest.mark.parametrize("optimizer,coupled", [("adamw", False), ("adamw", True), ("sgd", True)])
def test_heads_match_torch_optimisers(optimizer, coupled):
    """One head equals nn.Linear trained by torch's AdamW / Adam(weight_decay) / SGD + MultiStep."""
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(50, 4, generator=g), torch.randn(50, 2, generator=g)
    wd, lr, epochs, bs, seed = 0.3, 0.05, 5, 16, 7
    w, b = fit_linear_heads(
        x,
        y,
        2,
        lambda p, t: (p - t).pow(2).mean(dim=(1, 2)),
        [wd],
        epochs=epochs,
        lr=lr,
        batch_size=bs,
        seed=seed,
        optimizer=optimizer,
        coupled=coupled,
    )
    gen = torch.Generator().manual_seed(seed)
    bound = 1 / math.sqrt(4)
    lin = torch.nn.Linear(4, 2)
    with torch.no_grad():
        lin.weight.copy_(((torch.rand(4, 2, generator=gen) * 2 - 1) * bound).T)
        lin.bias.copy_((torch.rand(2, generator=gen) * 2 - 1) * bound)
    sched = None
    if optimizer == "sgd":
        opt = torch.optim.SGD(lin.parameters(), lr=lr, momentum=0.9, weight_decay=wd)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [3, 4], gamma=0.1)
    elif coupled:
        opt = torch.optim.Adam(lin.parameters(), lr=lr, weight_decay=wd)
    else:
        opt = torch.optim.AdamW(lin.parameters(), lr=lr, weight_decay=wd)
    for _ in range(epochs):
        perm = torch.randperm(50, generator=gen)
        for s in range(0, 50, bs):
            idx = perm[s : s + bs]
            loss = torch.nn.functional.mse_loss(lin(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        if sched is not None:
            sched.step()
    assert torch.allclose(w[0], lin.weight.detach().T, atol=1e-5)
    assert torch.allclose(b[0], lin.bias.detach(), atol=1e-5)


def test_velocity_r2_noiseless_and_noise():
    g = torch.Generator().manual_seed(0)
    z = torch.randn(500, 8, generator=g)
    v = z @ torch.randn(8, 2, generator=g) + torch.tensor([1.0, -2.0])
    res = velocity_r2(z[:300], v[:300], z[300:400], v[300:400], z[400:], v[400:])
    assert res["r2"] > 0.999
    noise = torch.randn(500, 2, generator=g)
    res = velocity_r2(z[:300], noise[:300], z[300:400], noise[300:400], z[400:], noise[400:])
    assert -0.15 < res["r2"] < 0.1
    res = velocity_r2(z[:300], v[:300], z[:0], v[:0], z[400:], v[400:])  # empty validation
    assert res["r2"] > 0.999


def test_ridge_matches_sklearn():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(40, 5)), rng.normal(size=(40, 2))
    w, b = _ridge_fit(torch.as_tensor(x), torch.as_tensor(y), torch.tensor([0.5, 7.0], dtype=torch.float64))
    for r, alpha in enumerate([0.5, 7.0]):
        sk = Ridge(alpha=alpha).fit(x, y)
        np.testing.assert_allclose(w[r].numpy(), sk.coef_.T, atol=1e-10)
        np.testing.assert_allclose(b[r].numpy(), sk.intercept_, atol=1e-10)


def test_knn_two_clusters_and_tie_break():
    g = torch.Generator().manual_seed(0)
    centre = torch.tensor([[5.0, 0.0, 0.0], [0.0, 5.0, 0.0]])
    y = torch.randint(0, 2, (200,), generator=g)
    z = centre[y] + 0.5 * torch.randn(200, 3, generator=g)
    assert knn_accuracy(z[:150], y[:150], z[150:], y[150:], k=5) == 1.0
    assert knn_accuracy(z[:150], 1 - y[:150], z[150:], y[150:], k=5) == 0.0
    # tie (k=2, one vote each): the nearest neighbour's class wins
    ztr = torch.tensor([[1.0, 0.1], [0.1, 1.0]])
    ytr = torch.tensor([0, 1])
    assert knn_accuracy(ztr, ytr, torch.tensor([[1.0, 0.3]]), torch.tensor([0]), k=2) == 1.0
    assert knn_accuracy(ztr, ytr, torch.tensor([[0.3, 1.0]]), torch.tensor([1]), k=2) == 1.0


def test_class_probe_separable():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 3, (400,), generator=g)
    z = torch.randn(400, 10, generator=g)
    z[:, :3] += 4 * torch.nn.functional.one_hot(y, 3)
    res = class_probe(z[:250], y[:250], z[250:320], y[250:320], z[320:], y[320:], epochs=100, batch_size=128)
    assert res["acc"] > 0.95 and len(res["val_acc_per_wd"]) == 20
    res = class_probe(
        z[:250],
        y[:250],
        z[250:320],
        y[250:320],
        z[320:],
        y[320:],
        [1e-4],
        epochs=100,
        batch_size=128,
        lr=0.02,
        optimizer="sgd",
    )
    assert res["acc"] > 0.95


def test_standardise_and_speed_mask():
    a = torch.tensor([[1.0, 5.0], [3.0, 5.0]])
    sa, sb = standardise(a, torch.tensor([[2.0, 6.0]]))
    assert torch.allclose(sa, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]))
    assert torch.isfinite(sb).all()
    assert speed_mask(torch.tensor([[3.0, 4.0], [3.0, 4.1]]), 5.0).tolist() == [False, True]


def test_disentanglement_content_vs_style():
    z, a = angles_reps(600, d=4)
    g = torch.Generator().manual_seed(5)
    c = z  # direction lives in the content block
    v = torch.randn(600, 2, generator=g)
    s = torch.cat([v + 0.01 * torch.randn(600, 2, generator=g), torch.randn(600, 2, generator=g)], 1)  # velocity
    sl = [slice(0, 400), slice(400, 500), slice(500, 600)]
    out = disentanglement(
        *(t[i] for i in sl for t in (c, s)),
        *(a[i] for i in sl),
        8,
        *(v[i] for i in sl),
        weight_decays=[1e-3, 1e-1],
        batch_size=128,
        epochs=100,
    )
    assert out["acc_content"] > 0.95 > 0.3 > out["acc_style"]
    assert out["r2_style"] > 0.99 and out["r2_content"] < 0.1
    out = disentanglement(*(t[i] for i in sl for t in (c, s)), *(a[i] for i in sl), 8, weight_decays=[1e-2], epochs=2)
    assert math.isnan(out["r2_content"]) and set(out) >= {"acc_content", "acc_style", "delta_acc_style"}


def test_content_style_decoding_runs_on_a_model():
    n_trials, n_bins = 20, 5
    rows = n_trials * n_bins
    g = torch.Generator().manual_seed(0)
    direction = (torch.arange(n_trials) % 4).repeat_interleave(n_bins)
    split = torch.tensor([0] * 12 + [1] * 4 + [2] * 4).repeat_interleave(n_bins)
    data = TrialData(
        counts=torch.poisson(torch.full((rows, 7), 2.0), generator=g),
        trial=torch.arange(n_trials).repeat_interleave(n_bins),
        time=torch.arange(n_bins).repeat(n_trials),
        direction=direction,
        angle=direction.float() * math.pi / 2,
        velocity=torch.randn(rows, 2, generator=g) * 10,
        split=split,
        n_classes=4,
    )
    torch.manual_seed(0)
    model = SwapVAE(7, latent_dim=8, style_dim=4, hidden=(8, 4))
    model.train()
    out = content_style_decoding(model, data, speed_threshold=5.0, weight_decays=[1e-2], epochs=2)
    assert model.training  # mode restored
    assert set(out) == {"acc_content", "acc_style", "delta_acc_content", "delta_acc_style", "r2_content", "r2_style"}
    assert all(0.0 <= out[k] <= 1.0 for k in ("acc_content", "acc_style"))
    with pytest.raises(ValueError):
        content_style_decoding(SwapVAE(7, 8, 8, (8, 4)), data)
