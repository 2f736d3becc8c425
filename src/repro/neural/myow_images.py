"""MYOW and BYOL on images: the paper's CIFAR-10 setting, run on Fashion-MNIST in our default tier
and on CIFAR-10 in the paper tier (brief ``shared/papers/ssl_graph_neural.md`` §3.3-§3.5, CIFAR
column; the model, losses, schedules and mining are those of :mod:`repro.neural.myow`).

Data: this module takes tensors; loading is the caller's job.  The default tier's
``resources/images/fashion_mnist.npz`` (written by :func:`repro.data.images.prepare_fashion_mnist`)
holds ``x_train`` ``[60000, 28, 28]`` uint8, ``y_train`` ``[60000]`` int64, ``x_test``
``[10000, 28, 28]``, ``y_test`` and ``classes`` (10 names); the paper tier's
``resources/images/cifar10.npz`` (:func:`repro.data.images.prepare_cifar10`) the same keys with
``x_train`` ``[50000, 3, 32, 32]`` and ``x_test`` ``[10000, 3, 32, 32]``.  ``[n, H, W]`` and uint8
inputs are accepted (a channel axis is added and values divided by 255).

Deliberate differences from the paper's CIFAR-10 run (``nerdslab/myow`` ``scripts/cifar-train.py``):

* **Encoder** (``encoder=``): ``"resnet18"`` is the paper's CIFAR ResNet-18 (:func:`cifar_resnet18`,
  3x3 stem with stride 1, no max-pool, 512-d; our own code); the paper tier uses it on CIFAR-10
  with the paper's projector / predictor widths (512->4096->256, mined 256->1024->64; set in
  ``config/paper.yaml``).  ``"small_cnn"`` (the default) is a small 4-layer CNN (:func:`small_cnn`,
  ``4 * width``-d, 128 by default) so that the default tier trains on CPU; its default projector /
  predictor widths are the CIFAR ones scaled by the same 1/4 (512->4096->256 becomes 128->1024->64;
  mined 256->1024->64 becomes 64->256->16).
* **Optimiser**: the paper uses LARS (or SGD in the docs) at lr 2.0 x batch/256 for a ResNet; we
  default to AdamW lr 1e-3 (a robust choice for a small CNN and short runs; weight decay 5e-5 = the
  CIFAR docs value, biases/BN excluded), with ``optimizer="sgd"`` available (the paper tier's
  ResNet run uses SGD at the docs' settings; LARS is not implemented).
* **Augmentations** are batched torch ops (:func:`byol_augment`): random resized crop by an affine
  grid (torchvision's 10 rejection-sampling attempts, vectorised), horizontal
  flip, colour jitter (brightness, contrast, saturation; the hue jitter is a rotation of the YIQ
  chroma plane, an approximation of torchvision's HSV hue shift) applied with probability 0.8,
  grayscale with probability 0.2 (RGB only), optional Gaussian noise (off by default; not in the
  CIFAR recipe).  Per-channel normalisation uses the training images' mean and std.
* **Schedules**: the CIFAR epoch counts (800 epochs; lambda 0 until epoch 100, linear to 1.0 at 110;
  lr warm-up 10) are kept as fractions of the run (12.5 %, 13.75 %, 1.25 %) unless given in epochs.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.neural.myow import (
    MYOW,
    _default_device,
    _History,
    _make_optimizer,
    aug_loss,
    combine_losses,
    ema_tau,
    lr_at,
    mine_views,
    mined_loss,
    mined_weight,
)

# --------------------------------------------------------------------------------------------------
# encoder
# --------------------------------------------------------------------------------------------------


def small_cnn(in_channels: int = 1, width: int = 32) -> tuple[nn.Sequential, int]:
    """``(encoder, repr_dim)``: conv3x3(w)-BN-ReLU, conv3x3(w)-BN-ReLU, maxpool, conv3x3(2w)-BN-ReLU,
    maxpool, conv3x3(4w)-BN-ReLU, global average pool.  28x28 -> 7x7 (32x32 -> 8x8) before pooling;
    ``repr_dim = 4 width``.  Ours (the paper: CIFAR ResNet-18, 512-d, brief §3.5)."""

    def block(a: int, b: int) -> list[nn.Module]:
        return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

    w = int(width)
    layers = [*block(in_channels, w), *block(w, w), nn.MaxPool2d(2), *block(w, 2 * w), nn.MaxPool2d(2)]
    layers += [*block(2 * w, 4 * w), nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), 4 * w


class BasicBlock(nn.Module):
    """ResNet basic block: conv3x3(stride)-BN-ReLU, conv3x3-BN, plus the shortcut (identity, or
    conv1x1(stride)-BN when the channels or the resolution change), then ReLU."""

    def __init__(self, in_channels: int, out_channels: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        if stride != 1 or in_channels != out_channels:
            self.shortcut: nn.Module = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False), nn.BatchNorm2d(out_channels)
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))  # (channels, stride of the first block)


def cifar_resnet18(in_channels: int = 3) -> tuple[nn.Sequential, int]:
    """``(encoder, 512)``: the CIFAR variant of ResNet-18 (the paper's encoder, brief §3.5): a 3x3
    stride-1 stem (64 channels, BN, ReLU; no max-pool), four stages of two :class:`BasicBlock`
    (64/128/256/512 channels, first-block strides 1/2/2/2), global average pool, flatten; no fc.
    32x32 inputs reach the pool at 4x4.  11,168,832 parameters for RGB input."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_channels, 64, 3, stride=1, padding=1, bias=False),
        nn.BatchNorm2d(64),
        nn.ReLU(),
    ]
    width = 64
    for channels, stride in RESNET18_STAGES:
        layers += [BasicBlock(width, channels, stride), BasicBlock(channels, channels, 1)]
        width = channels
    layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
    return nn.Sequential(*layers), width


ENCODERS = ("small_cnn", "resnet18")


def make_encoder(name: str, in_channels: int, width: int = 32) -> tuple[nn.Module, int]:
    """``(encoder, repr_dim)`` for ``name`` in :data:`ENCODERS` (``width`` is :func:`small_cnn`'s only)."""
    if name == "small_cnn":
        return small_cnn(in_channels, width)
    if name == "resnet18":
        return cifar_resnet18(in_channels)
    raise ValueError(f"unknown encoder {name!r}; choices: {list(ENCODERS)}")


class ChannelNorm(nn.Module):
    """``(x - mean_c) / std_c`` with the training images' per-channel statistics."""

    def __init__(self, images: Tensor):
        super().__init__()
        x = images.float()
        self.register_buffer("mean", x.mean(dim=(0, 2, 3)).view(1, -1, 1, 1))
        self.register_buffer("std", x.std(dim=(0, 2, 3)).clamp_min(1e-6).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return (x.float() - self.mean) / self.std


def as_images(images: Tensor) -> Tensor:
    """``[n, C, H, W]`` float32 in [0, 1] from ``[n, H, W]`` / ``[n, C, H, W]``, float or uint8."""
    x = torch.as_tensor(images)
    if x.ndim == 3:
        x = x.unsqueeze(1)
    if x.ndim != 4:
        raise ValueError(f"images must be [n, H, W] or [n, C, H, W], got {tuple(x.shape)}")
    return x.float() / 255.0 if x.dtype == torch.uint8 else x.float()


# --------------------------------------------------------------------------------------------------
# batched augmentations
# --------------------------------------------------------------------------------------------------


def _u(n: int, gen: torch.Generator, dev: torch.device, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    return (torch.rand(n, generator=gen, device=gen.device) * (hi - lo) + lo).to(dev)


def random_resized_crop(
    x: Tensor,
    gen: torch.Generator,
    scale: tuple[float, float] = (0.2, 1.0),
    ratio: tuple[float, float] = (3 / 4, 4 / 3),
    flip_p: float = 0.5,
) -> Tensor:
    """Per image: a crop of area fraction ``U(scale)`` and aspect ratio log-uniform in ``ratio``
    (torchvision ``RandomResizedCrop``: 10 vectorised attempts, the whole image if none fits), resized back to
    ``H x W`` by bilinear ``grid_sample``, mirrored horizontally with probability ``flip_p``."""
    n, dev = x.shape[0], x.device
    tries = 10  # torchvision: 10 rejection-sampling attempts, then the whole image (ratio in range)
    area = _u(n * tries, gen, dev, *scale).view(n, tries)
    r = torch.exp(_u(n * tries, gen, dev, math.log(ratio[0]), math.log(ratio[1])).view(n, tries))
    w_all, h_all = torch.sqrt(area * r), torch.sqrt(area / r)  # side fractions = half-extents in [-1, 1] coords
    ok = (w_all <= 1.0) & (h_all <= 1.0)
    first = ok.float().argmax(dim=1, keepdim=True)
    any_ok = ok.any(dim=1)
    one = torch.ones(n, device=dev)
    w = torch.where(any_ok, w_all.gather(1, first).squeeze(1), one)
    h = torch.where(any_ok, h_all.gather(1, first).squeeze(1), one)
    cx = (_u(n, gen, dev) * 2 - 1) * (1 - w)
    cy = (_u(n, gen, dev) * 2 - 1) * (1 - h)
    flip = torch.where(_u(n, gen, dev) < flip_p, -1.0, 1.0)
    theta = torch.zeros(n, 2, 3, device=dev, dtype=x.dtype)
    theta[:, 0, 0], theta[:, 0, 2] = w * flip, cx
    theta[:, 1, 1], theta[:, 1, 2] = h, cy
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)


def _gray(x: Tensor) -> Tensor:
    if x.shape[1] == 1:
        return x
    wts = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * wts).sum(1, keepdim=True)


def color_jitter(
    x: Tensor,
    gen: torch.Generator,
    brightness: float = 0.4,
    contrast: float = 0.4,
    saturation: float = 0.4,
    hue: float = 0.1,
    p: float = 0.8,
) -> Tensor:
    """Brightness, contrast, saturation and hue jitter (torchvision ``ColorJitter(0.4, 0.4, 0.4, 0.1)``
    factors, fixed order), applied to each image with probability ``p``; values clamped to [0, 1].
    Saturation and hue act on RGB only; hue is a rotation of the YIQ chroma plane by
    ``2 pi U(-hue, hue)`` (approximation)."""
    n, dev = x.shape[0], x.device
    apply = (_u(n, gen, dev) < p).view(n, 1, 1, 1)
    y = x * _u(n, gen, dev, 1 - brightness, 1 + brightness).view(n, 1, 1, 1)
    y = y.clamp(0, 1)
    m = _gray(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - m) * _u(n, gen, dev, 1 - contrast, 1 + contrast).view(n, 1, 1, 1) + m).clamp(0, 1)
    if x.shape[1] == 3:
        g = _gray(y)
        y = ((y - g) * _u(n, gen, dev, 1 - saturation, 1 + saturation).view(n, 1, 1, 1) + g).clamp(0, 1)
        if hue > 0:
            to_yiq = torch.tensor(
                [[0.299, 0.587, 0.114], [0.596, -0.274, -0.322], [0.211, -0.523, 0.312]], device=dev, dtype=x.dtype
            )
            a = _u(n, gen, dev, -hue, hue) * 2 * math.pi
            c, s = torch.cos(a), torch.sin(a)
            rot = torch.zeros(n, 3, 3, device=dev, dtype=x.dtype)
            rot[:, 0, 0] = 1
            rot[:, 1, 1], rot[:, 1, 2], rot[:, 2, 1], rot[:, 2, 2] = c, -s, s, c
            mat = torch.linalg.inv(to_yiq) @ rot @ to_yiq  # [n, 3, 3]
            y = torch.einsum("nij,njhw->nihw", mat, y).clamp(0, 1)
    return torch.where(apply, y, x)


def random_grayscale(x: Tensor, gen: torch.Generator, p: float = 0.2) -> Tensor:
    """RGB -> luminance replicated over 3 channels with probability ``p`` (no-op for 1 channel)."""
    if x.shape[1] != 3 or p <= 0:
        return x
    apply = (_u(x.shape[0], gen, x.device) < p).view(-1, 1, 1, 1)
    return torch.where(apply, _gray(x).expand_as(x), x)


def byol_augment(
    x: Tensor,
    gen: torch.Generator,
    *,
    crop_scale: tuple[float, float] = (0.2, 1.0),
    flip_p: float = 0.5,
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    noise_sigma: float = 0.0,
) -> Tensor:
    """The augmented-view transform of the myow CIFAR run (brief §3.4): RandomResizedCrop(scale
    0.2-1), flip 0.5, ColorJitter(0.4, 0.4, 0.4, 0.1) with p 0.8, grayscale p 0.2; then optional
    Gaussian noise (ours, default off).  Input and output in [0, 1] (before normalisation)."""
    y = random_resized_crop(x, gen, crop_scale, flip_p=flip_p)
    if jitter_p > 0:
        y = color_jitter(y, gen, *jitter, p=jitter_p)
    y = random_grayscale(y, gen, grayscale_p)
    if noise_sigma > 0:
        y = y + noise_sigma * torch.randn(y.shape, generator=gen, device=gen.device).to(y.device)
    return y


def mined_augment(
    x: Tensor, gen: torch.Generator, crop_scale: tuple[float, float] = (0.8, 1.0), flip_p: float = 0.5
) -> Tensor:
    """The *weaker* transform of the mined branch (myow CIFAR ``transform_m``, brief §3.4):
    RandomResizedCrop(scale 0.8-1) and horizontal flip."""
    return random_resized_crop(x, gen, crop_scale, flip_p=flip_p)


# --------------------------------------------------------------------------------------------------
# training
# --------------------------------------------------------------------------------------------------


def train_myow_images(
    images: Tensor,
    labels: Tensor | None = None,
    *,
    mined: bool = True,
    epochs: int = 20,
    batch_size: int = 256,
    steps_per_epoch: int | None = None,
    pool_size: int | None = None,
    k: int = 1,
    encoder: str = "small_cnn",
    width: int = 32,
    proj: tuple[int, int] | None = (1024, 64),
    pred_hidden: int = 1024,
    mined_proj: tuple[int, int] = (256, 16),
    mined_pred_hidden: int = 256,
    layout: str = "cascaded",
    target_init: str = "copy",
    crop_scale: tuple[float, float] = (0.2, 1.0),
    mined_crop_scale: tuple[float, float] = (0.8, 1.0),
    flip_p: float = 0.5,
    jitter: tuple[float, float, float, float] = (0.4, 0.4, 0.4, 0.1),
    jitter_p: float = 0.8,
    grayscale_p: float = 0.2,
    noise_sigma: float = 0.0,
    optimizer: str = "adamw",
    lr: float = 1e-3,
    weight_decay: float = 5e-5,
    momentum: float = 0.9,
    lr_warmup_epochs: float | None = None,
    ema_base: float = 0.99,
    ema_schedule: str = "cosine",
    weight_convention: str = "myow",
    mined_max_weight: float = 1.0,
    mined_warmup_epochs: float | None = None,
    mined_rampup_epochs: float | None = None,
    loss_form: str = "2-2cos",
    skip_mining_when_zero: bool = True,
    mining_backend: str = "auto",
    seed: int = 0,
    device=None,
    progress: bool = False,
    callback: Callable[[int, MYOW, dict], None] | None = None,
) -> tuple[MYOW, dict[str, list[float]]]:
    """Train MYOW (``mined=True``) or BYOL (``mined=False``) on ``images [n, C, H, W]`` in [0, 1].

    Per step (myow ``MYOWTrainer.train_epoch`` with a view-pool loader, brief §3.3-§3.5 CIFAR column):

    1. a batch of ``batch_size`` images (an epoch is a random permutation, last partial batch
       dropped); two :func:`byol_augment` views; symmetric ``L_aug``;
    2. (MYOW, once the mined weight is > 0) the batch under :func:`mined_augment` through the online
       encoder (anchors) and *another batch* of ``pool_size`` (default ``batch_size``) images, disjoint
       from the first, under :func:`mined_augment` through the target encoder (pool); each anchor
       mines one of its ``k`` (default **1**, CIFAR) nearest pool images; ``L_mined`` is added with
       the lambda of ``weight_convention`` ("myow": ``(L_aug + lam L_mined)/(1 + lam)``).

    Defaults (CIFAR column of brief §3.5 unless said): tau 0.99 cosine -> 1 (``cifar-train.py``; docs
    0.98); lambda_max 1.0, 0 until 100/800 of the run, 1.0 at 110/800 (``mined_warmup_epochs`` /
    ``mined_rampup_epochs`` override, in epochs); lr warm-up 10/800 of the run (>= 1 epoch); k = 1;
    pool = one batch; loss ``2 - 2 cos``.  See the module docstring for the encoder, optimiser and
    augmentation differences; ``encoder`` is ``"small_cnn"`` (``width`` sets its channels) or
    ``"resnet18"`` (:func:`cifar_resnet18`, 512-d; ``width`` is ignored).  ``labels`` (optional) are only used for the ``mined_agreement``
    diagnostic (fraction of mined pairs of the same class).  ``history``: as
    :func:`repro.neural.myow.train_myow_neural`.
    """
    if encoder not in ENCODERS:
        raise ValueError(f"unknown encoder {encoder!r}; choices: {list(ENCODERS)}")
    x_all = as_images(images)
    n, c = x_all.shape[0], x_all.shape[1]
    if n < 2:
        raise ValueError("need at least 2 images")
    y_all = None if labels is None else torch.as_tensor(labels).long()
    dev = _default_device(device)
    bs = min(int(batch_size), n)
    spe = int(steps_per_epoch) if steps_per_epoch else max(1, n // bs)
    total = epochs * spe
    ps = int(pool_size) if pool_size else bs
    warm_lr = (
        float(lr_warmup_epochs)
        if lr_warmup_epochs is not None
        else (max(1.0, epochs * 10 / 800) if epochs > 1 else 0.0)
    )
    warm_m = mined_warmup_epochs if mined_warmup_epochs is not None else epochs * 100 / 800
    ramp_m = mined_rampup_epochs if mined_rampup_epochs is not None else epochs * 110 / 800

    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc, repr_dim = make_encoder(encoder, c, width)
        model = MYOW(
            enc,
            repr_dim,
            proj=proj,
            pred_hidden=pred_hidden,
            mined_proj=mined_proj,
            mined_pred_hidden=mined_pred_hidden,
            layout=layout,
            mined=mined,
            target_init=target_init,
        )
    model.preprocess = ChannelNorm(x_all)
    model.to(dev).train()
    norm = model.preprocess
    opt = _make_optimizer(model.online_modules(), optimizer, lr, weight_decay, momentum)
    aug_kw = dict(
        crop_scale=crop_scale,
        flip_p=flip_p,
        jitter=jitter,
        jitter_p=jitter_p,
        grayscale_p=grayscale_p,
        noise_sigma=noise_sigma,
    )
    hist = _History()
    step = 0
    perm, cursor = torch.randperm(n, generator=gen), 0
    for epoch in range(epochs):
        tau = weight = 0.0
        for _ in range(spe):
            if cursor + bs > n:
                perm, cursor = torch.randperm(n, generator=gen), 0
            idx = perm[cursor : cursor + bs]
            cursor += bs
            lr_now = lr_at(step, total, lr, int(round(warm_lr * spe)))
            for g in opt.param_groups:
                g["lr"] = lr_now
            weight = (
                mined_weight(
                    step / spe,
                    weight_convention,
                    max_weight=mined_max_weight,
                    warmup_epochs=warm_m,
                    rampup_epochs=ramp_m,
                )
                if mined
                else 0.0
            )
            xb = x_all[idx].to(dev)
            x1 = norm(byol_augment(xb, aug_gen, **aug_kw))
            x2 = norm(byol_augment(xb, aug_gen, **aug_kw))
            o1, o2 = model.online(x1), model.online(x2)
            t1, t2 = model.target(x1), model.target(x2)
            l_aug = aug_loss(o1["q"], t2["z"], o2["q"], t1["z"], loss_form)
            l_min, n_used, agree = None, 0, float("nan")
            if mined and (weight > 0 or not skip_mining_when_zero):
                free = torch.ones(n, dtype=torch.bool)
                free[idx] = False
                cand = torch.nonzero(free).squeeze(1)
                if cand.numel() == 0:
                    cand = torch.arange(n)
                pool = cand[torch.randperm(cand.numel(), generator=gen)[:ps]]
                x3 = norm(mined_augment(xb, aug_gen, mined_crop_scale, flip_p))
                xp = norm(mined_augment(x_all[pool].to(dev), aug_gen, mined_crop_scale, flip_p))
                y3 = model.encoder(x3)
                yp = model.target(xp)["y"]
                m_idx = mine_views(y3, yp, idx.to(dev), pool.to(dev), k, aug_gen, backend=mining_backend)
                l_min, n_used = mined_loss(model, y3, yp, m_idx, loss_form)
                if y_all is not None and n_used:
                    ok = (m_idx >= 0).cpu()
                    agree = float((y_all[idx][ok] == y_all[pool][m_idx.cpu()[ok]]).float().mean())
            loss = combine_losses(l_aug, l_min, weight, weight_convention)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tau = ema_tau(step, total, ema_base, ema_schedule)
            model.update_target(tau)
            hist.step(
                loss=loss.item(),
                l_aug=l_aug.item(),
                l_mined=l_min.item() if l_min is not None else float("nan"),
                lr=lr_now,
                mined_frac=n_used / bs if l_min is not None else float("nan"),
                mined_agreement=agree,
            )
            step += 1
        hist.end_epoch(epoch, tau, weight)
        if progress:
            d = hist.data
            print(
                f"[myow-images{'' if mined else ' byol'}] epoch {epoch + 1}/{epochs} loss {d['loss'][-1]:.4f} "
                f"aug {d['l_aug'][-1]:.4f} mined {d['l_mined'][-1]:.4f} w {weight:.3f} tau {tau:.4f} "
                f"agree {d['mined_agreement'][-1]:.3f} ({d['seconds'][-1]:.1f}s)",
                flush=True,
            )
        if callback is not None:
            callback(epoch, model, hist.data)
    model.eval()
    return model, hist.data


def embed_images(model: MYOW, images: Tensor, batch_size: int = 1024) -> Tensor:
    """Representations ``f(normalise(x))`` (online encoder, eval mode, no augmentation), on CPU."""
    return model.represent(as_images(images), batch_size=batch_size)
