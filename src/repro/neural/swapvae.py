"""Swap-VAE ("Drop, Swap, and Generate", Liu et al., NeurIPS 2021) with VAE / beta-VAE baselines.

Brief: ``shared/papers/ssl_graph_neural.md`` §2 (code ``nerdslab/SwapVAE`` @ f43e59c).  What each
default follows:

Model (:class:`SwapVAE`, brief §2.1, ``vae_kits/model.py::swapVAE_neural``)
    * Encoder: ``N -> hidden[0] -> hidden[1]`` (default ``hidden=(None, 128)``, ``None`` = N), every
      layer Linear + BatchNorm1d + ReLU, then ``Linear(hidden[-1] -> latent_dim + style_dim)``.  The
      output is split into the deterministic content ``c = out[:, :latent_dim - style_dim]`` (no
      variance, no KL), the style mean ``mu_s = out[:, c_dim:latent_dim]`` and the style
      log-variance ``logvar_s = out[:, latent_dim:]``; ``s = mu_s + exp(logvar_s / 2) * eps``.
    * Decoder (mirror): ``Linear(latent_dim -> hidden[-1])``, BN, ReLU, ..., ``Linear(hidden[0] ->
      N)``, BN, ReLU, ``Linear(N -> N)``, Softplus: the output is a non-negative firing rate.
    * Kaiming-normal Linear weights, zero biases, BN weight 1 / bias 0.
    * Neural defaults ``latent_dim=128, style_dim=64`` (c_dim 64); the synthetic benchmark of the
      code uses 32 / 16 and ``hidden=(100, 32)`` (brief §2.4): pass them explicitly.
    * The style is sampled only in training mode; in eval mode ``s = mu_s`` (the evaluation uses
      ``representation(x) = [c, mu_s]``, brief §2.1), which also makes the loss deterministic for
      tests.

VAE / beta-VAE baselines
    The same class with ``style_dim == latent_dim`` has no content block: every latent dimension
    is stochastic, i.e. an ordinary VAE.  :func:`train_swapvae` uses that for ``variant="vae"`` and
    ``"beta_vae"`` unless ``style_dim`` is given.  **Paper vs code**: the released code's beta-VAE
    (``ablation_type=1``) keeps the swapVAE model, i.e. 64 deterministic content dimensions with
    neither KL nor alignment plus 64 stochastic ones; pass ``style_dim=64`` with
    ``variant="beta_vae"`` to reproduce that literally.

Losses (brief §2.3, ``ablation_type=0`` default)
    ``L = 1/2 [rec(x1, g(c2, s1)) + rec(x2, g(c1, s2))] + 1/2 [rec(x1, g(c1, s1)) + rec(x2, g(c2, s2))]
    + alpha/2 [KL1 + KL2] + beta * align(c1, c2)`` with ``alpha = 10``, ``beta = 1``; ``rec`` is the
    Poisson NLL averaged over the batch, summed over units, without ``log x!``, and with ``rate +
    eps`` (eps 1e-7) inside the log: the code's ``'poisson'`` branch forgets to assign its clamp, so
    ``log(0) = -inf`` can occur there (brief §2.3 pitfall; the code's ``'poisson2'`` branch uses
    1e-7).  Variants (named; ``ablation0`` .. ``ablation7`` are accepted as aliases), with
    ``rec_orig = 1/2 (orig1 + orig2)``, ``rec_swap = 1/2 (swap1 + swap2)``, ``KL = 1/2 (KL1 + KL2)``:

    ============  ===  =====================================
    name          abl  loss
    ============  ===  =====================================
    swap_vae      0    rec_swap + rec_orig + alpha KL + beta align
    beta_vae      1    2 rec_orig + alpha KL
    beta_vae_5    2    2 rec_orig + alpha/5 KL
    no_align      3    rec_swap + rec_orig + alpha KL
    no_swap       4    2 rec_orig + alpha KL + beta align
    swap_only     5    2 rec_swap + alpha KL
    kl_align      6    alpha KL + beta align
    align_only    7    beta align
    vae           -    2 rec_orig + KL (weight 1 whatever ``alpha``)
    ============  ===  =====================================

    The brief writes plain "KL" for ablations 3-6; we read it as the default's ``alpha``-weighted
    term so that each ablation removes only the named component (interpretation, not verified in
    the code).  The VAE variants take pairs for a common interface; with ``x2=None`` they use one
    view.

Decoder passes (brief §5)
    The code runs the 4 decoder passes separately, so BatchNorm (train mode) normalises each with
    its own batch statistics; ``fuse_decoder=True`` concatenates them into one batch (one GEMM
    chain, different BN statistics).  Default ``False`` = the code.  The two encoder passes are
    always separate (as in the code).

Training (:func:`train_swapvae`, brief §2.2 and §2.4)
    Adam, lr 5e-4, no weight decay, batches of 256 within-trial temporal-jitter pairs with
    ``|dt| <= 5`` bins (``dt = 0`` included) drawn among the training rows (``split == 0``).
    ``epochs`` defaults to 225 (the code's final value); one epoch defaults to
    ``ceil(n_pairs / batch_size)`` steps, ``n_pairs`` being the number of within-trial ordered
    pairs with ``|dt| <= max_shift`` (the code samples its full pair list without replacement, so
    this is one pass over it; ``min_shift`` gives a one-sided window).  Each step draws its
    ``batch_size`` pairs without replacement (:func:`repro.neural.views.jitter_pairs`).  **Paper vs code**: the paper also drops neurons (randomized dropout,
    ``p ~ U(0, 0.6)`` per sample, applied with probability 1, same mask for both elements of a
    pair, ``structured=True``), but the released code builds that transform and never passes it to
    the pair generator (PR #2), so it trains on jitter only.  ``dropout_views=True`` (default) is
    the paper, ``False`` the code.  The code's seed is 100; ours defaults to 0.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import fields

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.neural.trials import TrialData
from repro.neural.views import jitter_pairs, randomized_dropout

__all__ = [
    "SwapVAE",
    "VARIANTS",
    "poisson_nll",
    "gaussian_kl",
    "alignment",
    "swapvae_loss",
    "count_jitter_pairs",
    "train_swapvae",
]

# variant -> (swap weight, orig weight, KL weight in units of alpha (None: weight 1), align weight in units of beta)
_WEIGHTS: dict[str, tuple[float, float, float | None, float]] = {
    "swap_vae": (1.0, 1.0, 1.0, 1.0),
    "beta_vae": (0.0, 2.0, 1.0, 0.0),
    "beta_vae_5": (0.0, 2.0, 0.2, 0.0),
    "no_align": (1.0, 1.0, 1.0, 0.0),
    "no_swap": (0.0, 2.0, 1.0, 1.0),
    "swap_only": (2.0, 0.0, 1.0, 0.0),
    "kl_align": (0.0, 0.0, 1.0, 1.0),
    "align_only": (0.0, 0.0, 0.0, 1.0),
    "vae": (0.0, 2.0, None, 0.0),
}
_ALIASES = {
    f"ablation{i}": name
    for i, name in enumerate(
        ["swap_vae", "beta_vae", "beta_vae_5", "no_align", "no_swap", "swap_only", "kl_align", "align_only"]
    )
}
VARIANTS: tuple[str, ...] = tuple(_WEIGHTS)
_NO_CONTENT_BY_DEFAULT = {"vae", "beta_vae", "beta_vae_5"}


def _variant(name: str) -> str:
    name = _ALIASES.get(name, name)
    if name not in _WEIGHTS:
        raise ValueError(f"unknown variant {name!r}; choose from {sorted(_WEIGHTS) + sorted(_ALIASES)}")
    return name


class SwapVAE(nn.Module):
    """Encoder/decoder of brief §2.1; ``style_dim == latent_dim`` gives a plain VAE (no content)."""

    def __init__(
        self,
        n_units: int,
        latent_dim: int = 128,
        style_dim: int = 64,
        hidden: Sequence[int | None] = (None, 128),
    ) -> None:
        super().__init__()
        if not 0 < style_dim <= latent_dim:
            raise ValueError(f"need 0 < style_dim <= latent_dim, got {style_dim}, {latent_dim}")
        widths = [n_units if h is None else int(h) for h in hidden]
        if not widths:
            raise ValueError("hidden must have at least one layer")
        self.n_units, self.latent_dim, self.style_dim = int(n_units), int(latent_dim), int(style_dim)
        self.content_dim = self.latent_dim - self.style_dim

        enc: list[nn.Module] = []
        prev = n_units
        for w in widths:
            enc += [nn.Linear(prev, w), nn.BatchNorm1d(w), nn.ReLU()]
            prev = w
        enc.append(nn.Linear(prev, latent_dim + style_dim))
        self.encoder = nn.Sequential(*enc)

        dec: list[nn.Module] = []
        prev = latent_dim
        for w in reversed(widths):
            dec += [nn.Linear(prev, w), nn.BatchNorm1d(w), nn.ReLU()]
            prev = w
        dec += [nn.Linear(prev, n_units), nn.Softplus()]
        self.decoder = nn.Sequential(*dec)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.kaiming_normal_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm1d):
                m.reset_parameters()

    def encode(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """``(c, mu_s, logvar_s)``: ``[B, content_dim]`` (possibly 0 wide), ``[B, style_dim]`` x 2."""
        out = self.encoder(x)
        c = out[:, : self.content_dim]
        return c, out[:, self.content_dim : self.latent_dim], out[:, self.latent_dim :]

    def sample_style(self, mu: Tensor, logvar: Tensor, generator: torch.Generator | None = None) -> Tensor:
        """Reparameterised style: ``mu + exp(logvar / 2) * eps`` in train mode, ``mu`` in eval mode."""
        if not self.training:
            return mu
        eps = torch.randn(mu.shape, generator=generator, device=mu.device, dtype=mu.dtype)
        return mu + torch.exp(0.5 * logvar) * eps

    def decode(self, c: Tensor, s: Tensor) -> Tensor:
        """Firing rates ``[B, N]`` (Softplus, >= 0) from content and style."""
        return self.decoder(torch.cat([c, s], dim=1))

    def forward(self, x: Tensor, generator: torch.Generator | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """``(c, mu_s, logvar_s, s)``."""
        c, mu, logvar = self.encode(x)
        return c, mu, logvar, self.sample_style(mu, logvar, generator)

    def representation(self, x: Tensor) -> Tensor:
        """``[c, mu_s]`` (``latent_dim`` wide), the evaluated representation (brief §2.1)."""
        c, mu, _ = self.encode(x)
        return torch.cat([c, mu], dim=1)

    def content(self, x: Tensor) -> Tensor:
        return self.encode(x)[0]

    def style(self, x: Tensor) -> Tensor:
        """The style mean ``mu_s``."""
        return self.encode(x)[1]


def poisson_nll(x: Tensor, rate: Tensor, eps: float = 1e-7) -> Tensor:
    """``mean_b sum_n [rate - x log(rate + eps)]`` (no ``log x!``; finite at ``rate = 0``)."""
    return (rate - x * torch.log(rate + eps)).sum(dim=1).mean()


def gaussian_kl(mu: Tensor, logvar: Tensor) -> Tensor:
    """``KL(N(mu, exp(logvar)) || N(0, I))`` summed over dimensions, averaged over the batch."""
    return (-0.5 * (1 + logvar - mu.pow(2) - logvar.exp())).sum(dim=1).mean()


def alignment(c1: Tensor, c2: Tensor) -> Tensor:
    """``mean_b (2 - 2 cos(c1, c2))``: 0 for identical, 4 for opposite vectors."""
    return (2 - 2 * F.cosine_similarity(c1, c2, dim=1)).mean()


def swapvae_loss(
    model: SwapVAE,
    x1: Tensor,
    x2: Tensor | None,
    alpha: float = 10.0,
    beta: float = 1.0,
    variant: str = "swap_vae",
    *,
    fuse_decoder: bool = False,
    eps: float = 1e-7,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Total loss and its terms (``rec_swap``, ``rec_orig``, ``kl``, ``align``, those the variant uses).

    Each term is already the mean over the two views (see the module docstring); ``total`` is the
    weighted sum.  Only the decoder passes the variant needs are run.
    """
    name = _variant(variant)
    w_swap, w_orig, w_kl, w_align = _WEIGHTS[name]
    if x2 is None:
        if w_swap or w_align:
            raise ValueError(f"variant {name!r} needs a pair (x1, x2)")
        views = [x1]
    else:
        views = [x1, x2]
    if (w_swap or w_align) and model.content_dim == 0:
        raise ValueError(f"variant {name!r} needs a content block (style_dim < latent_dim)")

    enc = [model(x, generator) for x in views]  # (c, mu, logvar, s) per view, separate encoder passes
    terms: dict[str, Tensor] = {}
    total = x1.new_zeros(())

    # decoder inputs: (target view, content view, style view) for each needed reconstruction
    jobs: list[tuple[str, int, int, int]] = []
    if w_swap:
        jobs += [("rec_swap", 0, 1, 0), ("rec_swap", 1, 0, 1)]
    if w_orig:
        jobs += [("rec_orig", v, v, v) for v in range(len(views))]
    if jobs:
        if fuse_decoder:
            z = torch.cat([torch.cat([enc[ci][0], enc[si][3]], dim=1) for _, _, ci, si in jobs])
            rates = model.decoder(z).split(x1.shape[0])
        else:
            rates = [model.decode(enc[ci][0], enc[si][3]) for _, _, ci, si in jobs]
        for (term, ti, _, _), rate in zip(jobs, rates, strict=True):
            value = poisson_nll(views[ti], rate, eps) / len(views)  # mean over the views
            terms[term] = terms[term] + value if term in terms else value
    if w_kl != 0.0:
        terms["kl"] = sum(gaussian_kl(e[1], e[2]) for e in enc) / len(enc)
    if w_align:
        terms["align"] = alignment(enc[0][0], enc[1][0])

    if "rec_swap" in terms:
        total = total + w_swap * terms["rec_swap"]
    if "rec_orig" in terms:
        total = total + w_orig * terms["rec_orig"]
    if "kl" in terms:
        total = total + (1.0 if w_kl is None else w_kl * alpha) * terms["kl"]
    if "align" in terms:
        total = total + w_align * beta * terms["align"]
    return total, terms


def count_jitter_pairs(
    data: TrialData, max_shift: int, rows: Tensor | None = None, min_shift: int | None = None
) -> int:
    """Number of ordered within-trial pairs ``(i, j)`` with ``min_shift <= t_j - t_i <= max_shift``.

    ``min_shift`` defaults to ``-max_shift`` (``|dt| <= max_shift``, ``dt = 0`` included, as
    :func:`repro.neural.views.jitter_pairs`).  ``rows`` (bool mask) restricts to a set of whole
    trials, e.g. ``data.split == 0``.
    """
    lo_shift = -max_shift if min_shift is None else min_shift
    d = data if rows is None else data.subset(rows)
    if d.counts.shape[0] == 0:
        return 0
    start, length = d.trial_bounds()
    lens = torch.repeat_interleave(length, length)
    t = d.time - torch.repeat_interleave(d.time[start], length)  # 0, 1, ... also for recording-wide times
    hi = torch.minimum(lens - 1, t + max_shift)
    lo = torch.clamp(t + lo_shift, min=0)
    return int((hi - lo + 1).clamp(min=0).sum())


def _resolve_device(device: str | torch.device | None) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _data_to(data: TrialData, device: torch.device) -> TrialData:
    kw = {f.name: getattr(data, f.name) for f in fields(data)}
    return TrialData(**{k: (v.to(device) if isinstance(v, Tensor) else v) for k, v in kw.items()})


def train_swapvae(
    data: TrialData,
    *,
    variant: str = "swap_vae",
    epochs: int = 225,
    steps_per_epoch: int | None = None,
    pairs_per_epoch: int | None = None,
    batch_size: int = 256,
    lr: float = 5e-4,
    max_shift: int = 5,
    min_shift: int | None = None,
    dropout_views: bool = True,
    p_max: float = 0.6,
    apply_p: float = 1.0,
    structured: bool = True,
    alpha: float = 10.0,
    beta: float = 1.0,
    latent_dim: int = 128,
    style_dim: int | None = None,
    hidden: Sequence[int | None] = (None, 128),
    fuse_decoder: bool = False,
    seed: int = 0,
    device: str | torch.device | None = None,
    progress: bool = False,
) -> tuple[SwapVAE, dict[str, list[float]]]:
    """Train a Swap-VAE (or a VAE baseline, by ``variant``) on the training rows of ``data``.

    ``style_dim=None`` means ``latent_dim // 2`` for the Swap-VAE variants and ``latent_dim`` (no
    content: a plain VAE) for ``vae``, ``beta_vae`` and ``beta_vae_5``.  One epoch is
    ``steps_per_epoch`` steps, else ``ceil(pairs_per_epoch / batch_size)``, else one pass over the
    within-trial pair list (:func:`count_jitter_pairs`).  Returns the model in eval mode and the
    history: per-epoch means of ``total`` and each loss term.
    """
    name = _variant(variant)
    if style_dim is None:
        style_dim = latent_dim if name in _NO_CONTENT_BY_DEFAULT else latent_dim // 2
    dev = _resolve_device(device)
    with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG state left untouched
        torch.manual_seed(seed)
        model = SwapVAE(data.n_units, latent_dim, style_dim, hidden).to(dev)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    gen = torch.Generator(device=dev).manual_seed(seed)

    dd = _data_to(data, dev)
    train_mask = dd.split == 0
    if not bool(train_mask.any()):
        raise ValueError("no training rows (split == 0)")
    if steps_per_epoch is None:
        n_pairs = (
            pairs_per_epoch if pairs_per_epoch is not None else count_jitter_pairs(dd, max_shift, train_mask, min_shift)
        )
        steps_per_epoch = max(1, math.ceil(n_pairs / batch_size))

    history: dict[str, list[float]] = {}
    model.train()
    epoch_iter: range | object = range(epochs)
    if progress:
        from tqdm.auto import tqdm

        epoch_iter = tqdm(epoch_iter, desc=f"train {name}")
    for _ in epoch_iter:
        sums: dict[str, Tensor] = {}  # on the device: one host sync per epoch
        for _ in range(steps_per_epoch):
            i, j = jitter_pairs(dd, batch_size, max_shift, gen, min_shift=min_shift, rows=train_mask)
            x1, x2 = dd.counts[i], dd.counts[j]
            if dropout_views:
                if structured:
                    x1, mask = randomized_dropout(x1, p_max, apply_p, gen, return_mask=True)
                    x2 = randomized_dropout(x2, p_max, apply_p, gen, mask=mask)
                else:
                    x1 = randomized_dropout(x1, p_max, apply_p, gen)
                    x2 = randomized_dropout(x2, p_max, apply_p, gen)
            total, terms = swapvae_loss(model, x1, x2, alpha, beta, name, fuse_decoder=fuse_decoder, generator=gen)
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            for k, v in {"total": total, **terms}.items():
                sums[k] = sums[k] + v.detach() if k in sums else v.detach()
        for k, v in sums.items():
            history.setdefault(k, []).append(float(v) / steps_per_epoch)
        if progress:
            epoch_iter.set_postfix(loss=history["total"][-1])  # type: ignore[attr-defined]
    model.eval()
    return model, history
