"""MYOW ("Mine Your Own vieW", Azabou et al. 2021, arXiv 2102.10106) and its BYOL baseline, for
binned neural activity (:class:`~repro.neural.trials.TrialData`).

Brief: ``shared/papers/ssl_graph_neural.md`` §3 (method), §4 (offline data), §5 (mining and EMA
kernels), §7.4 (acceptance checks).  Two official code bases disagree on many settings; each
disagreement is an option here, and every default says which one it follows:

* **myow** = ``nerdslab/myow`` (the paper's code; ``scripts/monkey-train.py``, ``MYOWTrainer``);
* **myow-neuro** = ``nerdslab/myow-neuro`` (a later rewrite for neural data; ``train_monkey.py``).

Model (brief §3.1)
------------------
Online network: encoder ``f`` -> projector ``g`` -> predictor ``q`` (augmented-view branch), and a
mined projector ``h`` (on ``z = g(y)``, "cascaded", default of both repos; or on ``y``, "parallel")
followed by a mined predictor ``r``.  Target network: an exponential moving average of ``(f, g, h)``
with no predictors and no gradient.  ``MYOW(..., mined=False)`` *is* BYOL: no ``h``/``r``, the loss
is the augmented-view loss alone.

Losses (brief §3.2)
-------------------
``l(a, b) = 2 - 2 cos(a, b)`` (myow ``CosineLoss``; default) or ``1 - cos`` (myow-neuro).
``L_aug`` is symmetric over the two views; ``L_mined = l(r(h(g(f(x)))), sg h'(g'(f'(x_m))))``.
Combination: myow ``L = (L_aug + lam L_mined) / (1 + lam)`` with ``lam`` 0 until a warm-up epoch then
linear to ``lam_max`` at a ramp-up epoch; myow-neuro ``L = (1 - w) L_aug + w L_mined`` with ``w``
linear from 0 to ``w_max`` over the first epochs.  :func:`mined_weight` and :func:`combine_losses`
implement both conventions.

Mining (brief §3.3, §5)
-----------------------
Anchors are represented by the *online encoder* output ``y = f(x)``, the pool by the *target encoder*
output; cosine similarity, ineligible candidates removed (same trial for the monkey data), top-k, one
of the k chosen uniformly at random (:func:`mine_views`, on top of
:func:`repro.kernels.neighbour_mining.masked_topk_cosine`).

The representation used downstream is the online encoder output ``f(x)`` (both repos evaluate
``online_encoder``), see :func:`embed_neural`.
"""

from __future__ import annotations

import copy
import math
import time
from typing import Any, Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repro.neural.trials import TrialData

LOSS_FORMS = ("2-2cos", "1-cos")
CONVENTIONS = ("myow", "myow-neuro")
LAYOUTS = ("cascaded", "parallel")

# --------------------------------------------------------------------------------------------------
# networks
# --------------------------------------------------------------------------------------------------

#: Encoder presets (brief §3.5 "Encoder" row).  Both repos build ``MLP([N, *hidden, out],
#: batchnorm=True)`` with ``drop_last_nonlin=True``: every layer is Linear -> BatchNorm1d ->
#: activation except the last, which is a plain Linear (the representation is its output).
ENCODER_PRESETS: dict[str, dict[str, Any]] = {
    # myow scripts/monkey-train.py: N -> 128 -> 128 -> 128 -> 128, ReLU
    "myow": dict(hidden=(128, 128, 128), out=128, activation="relu"),
    # myow-neuro train_monkey.py: N -> 64 -> 64 -> 64 -> 64, PReLU(1)
    "myow-neuro": dict(hidden=(64, 64, 64), out=64, activation="prelu"),
    # myow-neuro train_mouse.py: N -> 64 -> 64 -> 64 -> 32, PReLU(1)
    "myow-neuro-rodent": dict(hidden=(64, 64, 64), out=32, activation="prelu"),
}


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "prelu":
        return nn.PReLU(1)
    raise ValueError(f"activation must be 'relu' or 'prelu', got {name!r}")


def mlp_encoder(
    n_in: int,
    hidden: tuple[int, ...] = (128, 128, 128),
    out: int = 128,
    *,
    activation: str = "relu",
    bn_momentum: float = 0.1,
) -> nn.Sequential:
    """MLP encoder ``n_in -> *hidden -> out``: (Linear, BatchNorm1d, activation) blocks, last layer a
    plain Linear (``drop_last_nonlin=True`` in both repos).

    ``bn_momentum`` is PyTorch's (weight of the new batch).  myow-neuro passes 0.99, which in
    PyTorch means almost no smoothing of the running statistics (brief §3.5 quirks: the TF convention
    was probably intended); we default to PyTorch's 0.1, as the myow repo does.  The linear layers
    before a BatchNorm keep their bias (myow repo; myow-neuro drops it, which changes nothing after BN).
    """
    layers: list[nn.Module] = []
    dims = [n_in, *hidden]
    for a, b in zip(dims[:-1], dims[1:]):
        layers += [nn.Linear(a, b), nn.BatchNorm1d(b, momentum=bn_momentum), _activation(activation)]
    layers.append(nn.Linear(dims[-1], out))
    return nn.Sequential(*layers)


def neural_encoder(n_units: int, preset: str = "myow") -> tuple[nn.Sequential, int]:
    """``(encoder, repr_dim)`` for one of :data:`ENCODER_PRESETS` (default: myow repo monkey)."""
    if preset not in ENCODER_PRESETS:
        raise ValueError(f"encoder preset must be one of {sorted(ENCODER_PRESETS)}, got {preset!r}")
    p = ENCODER_PRESETS[preset]
    return mlp_encoder(n_units, p["hidden"], p["out"], activation=p["activation"]), p["out"]


class MLP3(nn.Sequential):
    """Projector / predictor head: Linear -> BatchNorm1d -> ReLU -> Linear (both repos' ``MLP3``,
    BN momentum 0.1; brief §3.1)."""

    def __init__(self, n_in: int, hidden: int, n_out: int):
        super().__init__(nn.Linear(n_in, hidden), nn.BatchNorm1d(hidden), nn.ReLU(), nn.Linear(hidden, n_out))
        self.n_out = n_out


def _head(n_in: int, spec: tuple[int, int] | None) -> tuple[nn.Module, int]:
    """An MLP3 for ``spec = (hidden, out)``, or the identity (myow-neuro's projector g) for None."""
    if spec is None:
        return nn.Identity(), n_in
    hidden, n_out = spec
    return MLP3(n_in, hidden, n_out), n_out


class MYOW(nn.Module):
    """Online network (f, g, q[, h, r]) plus its EMA target (f', g'[, h']).

    Parameters (defaults: myow repo monkey, ``scripts/monkey-train.py``, brief §3.5)

    * ``encoder``, ``repr_dim``: the backbone f and the width of its output.
    * ``proj = (hidden, out)``: projector g, default (256, 32) [myow]; ``None`` = identity
      [myow-neuro monkey/rodent].
    * ``pred_hidden``: hidden width of the predictor q (``out -> pred_hidden -> out``), default 256
      [both repos].
    * ``mined_proj = (hidden, out)``: mined projector h, default (64, 16) [myow; myow-neuro (256, 32)].
    * ``mined_pred_hidden``: hidden width of r, default 64 [myow; myow-neuro 256].
    * ``layout``: "cascaded" (h on z = g(y), default of both repos) or "parallel" (h on y).
    * ``mined``: False builds BYOL (no h, r; loss = L_aug).
    * ``target_init``: "copy" (deepcopy of the online modules, myow repo; default) or "random"
      (myow-neuro calls ``target_encoder.reset_parameters()``: the target *encoder* starts from an
      independent random initialisation; its projectors are still copies).

    ``preprocess`` (identity by default) maps raw inputs to encoder inputs for :meth:`represent`
    (the neural trainer stores its z-scoring there).
    """

    def __init__(
        self,
        encoder: nn.Module,
        repr_dim: int,
        proj: tuple[int, int] | None = (256, 32),
        pred_hidden: int = 256,
        mined_proj: tuple[int, int] | None = (64, 16),
        mined_pred_hidden: int = 64,
        layout: str = "cascaded",
        mined: bool = True,
        target_init: str = "copy",
    ):
        super().__init__()
        if layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
        if target_init not in ("copy", "random"):
            raise ValueError(f"target_init must be 'copy' or 'random', got {target_init!r}")
        self.mined, self.layout, self.repr_dim = bool(mined), layout, int(repr_dim)
        self.preprocess: nn.Module = nn.Identity()
        self.encoder = encoder
        self.projector, proj_dim = _head(repr_dim, proj)
        self.predictor = MLP3(proj_dim, pred_hidden, proj_dim)
        if self.mined:
            h_in = proj_dim if layout == "cascaded" else repr_dim
            if mined_proj is None:
                raise ValueError("mined_proj must be (hidden, out) when mined=True")
            self.mined_projector, m_dim = _head(h_in, mined_proj)
            self.mined_predictor = MLP3(m_dim, mined_pred_hidden, m_dim)
        self.target_encoder = copy.deepcopy(self.encoder)
        self.target_projector = copy.deepcopy(self.projector)
        if self.mined:
            self.target_mined_projector = copy.deepcopy(self.mined_projector)
        if target_init == "random":
            for m in self.target_encoder.modules():
                if isinstance(m, (nn.Linear, nn.Conv2d)):
                    m.reset_parameters()
        for p in self.target_parameters():
            p.requires_grad_(False)

    # -- parameter groups ------------------------------------------------------------------------
    def online_modules(self) -> list[nn.Module]:
        mods = [self.encoder, self.projector, self.predictor]
        return mods + ([self.mined_projector, self.mined_predictor] if self.mined else [])

    def _paired(self) -> list[tuple[nn.Module, nn.Module]]:
        pairs = [(self.encoder, self.target_encoder), (self.projector, self.target_projector)]
        return pairs + ([(self.mined_projector, self.target_mined_projector)] if self.mined else [])

    def online_parameters(self) -> list[nn.Parameter]:
        return [p for m in self.online_modules() for p in m.parameters()]

    def target_parameters(self) -> list[Tensor]:
        return [p for _, t in self._paired() for p in t.parameters()]

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """``xi <- tau xi + (1 - tau) theta`` over the parameters of (f, g, h), one multi-tensor
        launch (``torch._foreach_lerp_``; brief §5 "EMA target update").  BatchNorm running
        statistics are buffers, not parameters: each network keeps its own (as in BYOL and both
        repos)."""
        tgt = [p for _, t in self._paired() for p in t.parameters()]
        src = [p.detach() for o, _ in self._paired() for p in o.parameters()]
        if tgt:
            torch._foreach_lerp_(tgt, src, 1.0 - float(tau))

    # -- forward passes --------------------------------------------------------------------------
    def _mined_in(self, y: Tensor, z: Tensor) -> Tensor:
        return z if self.layout == "cascaded" else y

    def online(self, x: Tensor) -> dict[str, Tensor]:
        """``y = f(x)``, ``z = g(y)``, ``q = q(z)`` (and ``q_m = r(h(.))`` when mined)."""
        y = self.encoder(x)
        z = self.projector(y)
        out = {"y": y, "z": z, "q": self.predictor(z)}
        if self.mined:
            out["q_m"] = self.mined_predictor(self.mined_projector(self._mined_in(y, z)))
        return out

    def online_mined_from_y(self, y: Tensor) -> Tensor:
        """``r(h(g(y)))`` (cascaded) or ``r(h(y))`` (parallel) from an online representation."""
        return self.mined_predictor(self.mined_projector(self._mined_in(y, self.projector(y))))

    @torch.no_grad()
    def target(self, x: Tensor) -> dict[str, Tensor]:
        """``y' = f'(x)``, ``z' = g'(y')``; no gradient."""
        y = self.target_encoder(x)
        return {"y": y, "z": self.target_projector(y)}

    @torch.no_grad()
    def target_mined_from_y(self, y: Tensor) -> Tensor:
        """``v' = h'(g'(y'))`` (cascaded) or ``h'(y')`` (parallel) of target representations."""
        return self.target_mined_projector(self._mined_in(y, self.target_projector(y)))

    def forward(self, x: Tensor) -> Tensor:
        """The representation ``f(x)`` (online encoder on ``preprocess(x)``)."""
        return self.encoder(self.preprocess(x))

    @torch.no_grad()
    def represent(self, x: Tensor, batch_size: int = 4096) -> Tensor:
        """``f(preprocess(x))`` in eval mode, in batches, returned on ``x``'s device (float32)."""
        was_training = self.training
        self.eval()
        dev = next(self.encoder.parameters()).device
        try:
            outs = [self(x[i : i + batch_size].to(dev)).float().to(x.device) for i in range(0, len(x), batch_size)]
        finally:
            self.train(was_training)
        return torch.cat(outs) if outs else torch.zeros(0, self.repr_dim)


# --------------------------------------------------------------------------------------------------
# schedules
# --------------------------------------------------------------------------------------------------


def ema_tau(step: int, total: int, base: float, schedule: str = "cosine") -> float:
    """EMA decay at ``step`` of ``total``: ``1 - (1 - base)(1 + cos(pi step / total)) / 2``, i.e.
    ``base`` at step 0 rising to 1 at the end (BYOL; myow repo ``update_momentum``).

    ``schedule="constant"`` returns ``base`` (myow-neuro ``train_monkey.py``: tau = 0.98 fixed).
    Bug note (brief §3.5): ``train_mouse.py`` and the myow-neuro notebook compute
    ``1 - base (1 + cos) / 2``, which starts at 0.02 for base 0.98; that formula is *not* used.
    """
    if schedule == "constant":
        return float(base)
    if schedule != "cosine":
        raise ValueError(f"schedule must be 'cosine' or 'constant', got {schedule!r}")
    frac = min(max(step / max(total, 1), 0.0), 1.0)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * frac)) / 2.0


#: Defaults of :func:`mined_weight` per convention (brief §3.2, §3.5): myow repo monkey
#: ``myow_weight=0.1, myow_warmup_epochs=10, myow_rampup_epochs=110``; myow-neuro
#: ``mined_weight=0.5, mined_weight_warmup_epochs=10``.
MINED_WEIGHT_DEFAULTS = {
    "myow": dict(max_weight=0.1, warmup_epochs=10.0, rampup_epochs=110.0),
    "myow-neuro": dict(max_weight=0.5, warmup_epochs=10.0, rampup_epochs=None),
}


def mined_weight(
    epoch: float,
    convention: str = "myow",
    *,
    max_weight: float | None = None,
    warmup_epochs: float | None = None,
    rampup_epochs: float | None = None,
) -> float:
    """Weight of the mined-view loss at (possibly fractional) ``epoch``.

    * ``"myow"`` (``MYOWTrainer.update_mined_loss_weight``): ``lam = 0`` for
      ``epoch < warmup_epochs``, ``lam_max`` for ``epoch > rampup_epochs``, linear in between.
      Used as ``L = (L_aug + lam L_mined) / (1 + lam)``.
    * ``"myow-neuro"`` (``train_monkey.py::update_weight``): ``w = w_max epoch / warmup_epochs``
      up to ``warmup_epochs``, then ``w_max`` (``rampup_epochs`` unused; the repo's ``+1e-9`` is
      dropped).  Used as ``L = (1 - w) L_aug + w L_mined``.

    Unset arguments take :data:`MINED_WEIGHT_DEFAULTS` of the convention.
    """
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    d = MINED_WEIGHT_DEFAULTS[convention]
    w_max = d["max_weight"] if max_weight is None else max_weight
    warm = d["warmup_epochs"] if warmup_epochs is None else warmup_epochs
    if convention == "myow":
        ramp = d["rampup_epochs"] if rampup_epochs is None else rampup_epochs
        if epoch < warm:
            return 0.0
        if epoch >= ramp:
            return float(w_max)
        return float(w_max) * (epoch - warm) / (ramp - warm)
    if warm <= 0 or epoch >= warm:
        return float(w_max)
    return float(w_max) * max(epoch, 0.0) / warm


def combine_losses(l_aug: Tensor, l_mined: Tensor | None, weight: float, convention: str = "myow") -> Tensor:
    """``(L_aug + lam L_mined)/(1 + lam)`` ("myow") or ``(1 - w) L_aug + w L_mined`` ("myow-neuro").
    ``l_mined=None`` (BYOL, or no anchor had an eligible candidate) gives the L_aug share only."""
    if convention == "myow":
        aug_w, mined_w = 1.0 / (1.0 + weight), weight / (1.0 + weight)
    elif convention == "myow-neuro":
        aug_w, mined_w = 1.0 - weight, weight
    else:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    return aug_w * l_aug if l_mined is None else aug_w * l_aug + mined_w * l_mined


def lr_at(step: int, total: int, base: float, warmup: int) -> float:
    """Linear warm-up for ``warmup`` steps, then cosine decay to 0 at ``total`` (both repos)."""
    if warmup > 0 and step < warmup:
        return base * (step + 1) / warmup
    frac = (step - warmup) / max(total - warmup, 1)
    return base * (1.0 + math.cos(math.pi * min(frac, 1.0))) / 2.0


# --------------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------------


def cosine_loss(a: Tensor, b: Tensor, form: str = "2-2cos", reduction: str = "mean") -> Tensor:
    """``2 - 2 cos(a, b)`` (myow ``CosineLoss``, default; equal to ``||a/|a| - b/|b|||^2``) or
    ``1 - cos(a, b)`` (myow-neuro), per row; ``b`` is detached (stop-gradient on the target)."""
    cos = F.cosine_similarity(a, b.detach(), dim=-1, eps=1e-8)
    if form == "2-2cos":
        out = 2.0 - 2.0 * cos
    elif form == "1-cos":
        out = 1.0 - cos
    else:
        raise ValueError(f"form must be one of {LOSS_FORMS}, got {form!r}")
    if reduction == "none":
        return out
    if reduction != "mean":
        raise ValueError(f"reduction must be 'mean' or 'none', got {reduction!r}")
    return out.mean()


def aug_loss(q1: Tensor, z2_target: Tensor, q2: Tensor, z1_target: Tensor, form: str = "2-2cos") -> Tensor:
    """Symmetric BYOL loss ``(l(q1, sg z2') + l(q2, sg z1')) / 2`` (brief §3.2)."""
    return 0.5 * (cosine_loss(q1, z2_target, form) + cosine_loss(q2, z1_target, form))


# --------------------------------------------------------------------------------------------------
# mining
# --------------------------------------------------------------------------------------------------


def _topk(*args, **kwargs):
    from repro.kernels.neighbour_mining import masked_topk_cosine

    return masked_topk_cosine(*args, **kwargs)


@torch.no_grad()
def mine_views(
    online_repr_anchor: Tensor,
    target_repr_pool: Tensor,
    anchor_group: Tensor,
    pool_group: Tensor,
    k: int,
    generator: torch.Generator | None = None,
    *,
    anchor_time: Tensor | None = None,
    pool_time: Tensor | None = None,
    exclude_window: int | None = None,
    backend: str = "auto",
) -> Tensor:
    """Index into the pool of each anchor's mined view, ``-1`` where the anchor has no eligible
    candidate (brief §3.3 steps 1-4).

    Ranks the pool by cosine similarity to the anchor (``masked_topk_cosine``; candidates of the
    anchor's group, e.g. its trial, are ineligible; with ``exclude_window`` only those within that
    many bins, the rodent rule), keeps the top ``k`` *eligible* ones and picks one uniformly at random
    (``generator``).  Where fewer than ``k`` are eligible the choice is among those; myow-neuro draws
    from all k slots even when some are ineligible, which we do not copy.  Anchors with ``-1`` must
    be dropped from L_mined (:func:`mined_pairs`).
    """
    kk = max(1, min(int(k), target_repr_pool.shape[0]))
    _, idx = _topk(
        online_repr_anchor.detach(),
        target_repr_pool.detach(),
        anchor_group,
        pool_group,
        kk,
        anchor_time=anchor_time,
        pool_time=pool_time,
        exclude_window=exclude_window,
        backend=backend,
    )
    valid = idx >= 0
    gdev = generator.device if generator is not None else idx.device
    u = torch.rand(idx.shape, generator=generator, device=gdev).to(idx.device)
    u = torch.where(valid, u, torch.full_like(u, -1.0))
    pick = u.argmax(dim=1, keepdim=True)
    chosen = idx.gather(1, pick).squeeze(1)
    return torch.where(valid.any(dim=1), chosen, torch.full_like(chosen, -1))


def mined_loss(
    model: MYOW,
    y_anchor: Tensor,
    y_pool_target: Tensor,
    mined_index: Tensor,
    form: str = "2-2cos",
    q_m_anchor: Tensor | None = None,
) -> tuple[Tensor | None, int]:
    """``L_mined = mean l(r(h(g(y_a))), sg h'(g'(y'_pool[m])))`` over anchors with ``m >= 0``;
    returns ``(loss or None, number of anchors used)``.  ``q_m_anchor`` reuses an online forward
    already computed for these anchors (its BatchNorm statistics came from the full batch)."""
    keep = mined_index >= 0
    n = int(keep.sum())
    if n == 0:
        return None, 0
    q_m = model.online_mined_from_y(y_anchor) if q_m_anchor is None else q_m_anchor
    v_t = model.target_mined_from_y(y_pool_target[mined_index[keep]])
    return cosine_loss(q_m[keep], v_t, form), n


# --------------------------------------------------------------------------------------------------
# neural training
# --------------------------------------------------------------------------------------------------


class ZScore(nn.Module):
    """Keep units whose training std is >= ``min_std`` (dead neurons removed, brief §3.4) and
    z-score them with the training mean and std."""

    def __init__(self, train_counts: Tensor, min_std: float = 1e-3):
        super().__init__()
        x = train_counts.float()
        std = x.std(0)
        keep = std >= min_std
        if not bool(keep.any()):
            raise ValueError("every unit has training std < min_std")
        self.register_buffer("keep", keep)
        self.register_buffer("mean", x.mean(0)[keep])
        self.register_buffer("std", std[keep])

    @property
    def n_out(self) -> int:
        return int(self.keep.sum())

    def forward(self, x: Tensor) -> Tensor:
        return (x[:, self.keep].float() - self.mean) / self.std


#: Settings that differ between the two repos' monkey scripts (brief §3.5); ``train_myow_neural``
#: arguments left at ``None`` are taken from ``NEURAL_PRESETS[preset]``.  ``*_frac`` are fractions of
#: the run's epochs (the repos' epoch counts divided by their 1000 / 10000 total epochs), so a short
#: run keeps the same shape of schedule.
NEURAL_PRESETS: dict[str, dict[str, Any]] = {
    "myow": dict(
        encoder="myow",
        proj=(256, 32),
        pred_hidden=256,
        mined_proj=(64, 16),
        mined_pred_hidden=64,
        batch_size=256,
        pool_size=512,
        k=3,
        max_shift=5,
        min_shift=-5,
        dropout_p=0.8,
        dropout_apply_p=0.9,
        noise_sigma=0.2,
        noise_apply_p=1.0,
        pepper_p=0.0,
        pepper_c=0.3,
        pepper_apply_p=0.0,
        structured_dropout=True,
        ema_base=0.9,
        ema_schedule="cosine",
        weight_convention="myow",
        mined_max_weight=0.1,
        mined_warmup_frac=10 / 1000,
        mined_rampup_frac=110 / 1000,
        loss_form="2-2cos",
        target_init="copy",
        lr_warmup_frac=10 / 1000,
    ),
    "myow-neuro": dict(
        encoder="myow-neuro",
        proj=None,
        pred_hidden=256,
        mined_proj=(256, 32),
        mined_pred_hidden=256,
        batch_size=512,
        pool_size=512,
        k=5,
        max_shift=2,
        min_shift=0,
        dropout_p=0.2,
        dropout_apply_p=1.0,
        noise_sigma=1.5,
        noise_apply_p=0.5,
        pepper_p=0.3,
        pepper_c=1.5,
        pepper_apply_p=0.5,
        structured_dropout=False,
        ema_base=0.98,
        ema_schedule="constant",
        weight_convention="myow-neuro",
        mined_max_weight=0.5,
        mined_warmup_frac=10 / 10000,
        mined_rampup_frac=None,
        loss_form="1-cos",
        target_init="random",
        lr_warmup_frac=100 / 10000,
    ),
}


def _views():
    from repro.neural import views

    return views


def _augment_neural(
    x: Tensor,
    norm: ZScore,
    gen: torch.Generator,
    s: dict[str, Any],
    mask: Tensor | None = None,
) -> tuple[Tensor, Tensor | None]:
    """myow repo order (``monkey-train.py``): randomized dropout on the counts -> z-score ->
    Gaussian noise -> pepper.  Returns the view and the dropout mask (for structured pairs)."""
    v = _views()
    x = x[:, norm.keep]
    m = None
    if s["dropout_p"] > 0 and s["dropout_apply_p"] > 0:
        x, m = v.randomized_dropout(x, s["dropout_p"], s["dropout_apply_p"], gen, mask=mask, return_mask=True)
    x = (x.float() - norm.mean) / norm.std
    if s["noise_sigma"] > 0 and s["noise_apply_p"] > 0:
        x = v.gaussian_noise(x, s["noise_sigma"], s["noise_apply_p"], gen)
    if s["pepper_p"] > 0 and s["pepper_apply_p"] > 0:
        x = v.pepper(x, s["pepper_p"], s["pepper_c"], s["pepper_apply_p"], gen)
    return x, m


def _make_optimizer(params_modules: list[nn.Module], name: str, lr: float, weight_decay: float, momentum: float):
    """AdamW or SGD(momentum); biases and BatchNorm/PReLU parameters get no weight decay (myow repo
    ``exclude_bias_and_bn=True``)."""
    decay, no_decay = [], []
    for mod in params_modules:
        for sub in mod.modules():
            for pname, p in sub.named_parameters(recurse=False):
                if not p.requires_grad:
                    continue
                is_norm = isinstance(sub, (nn.BatchNorm1d, nn.BatchNorm2d, nn.PReLU, nn.GroupNorm, nn.LayerNorm))
                (no_decay if is_norm or pname == "bias" else decay).append(p)
    groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    if name == "adamw":
        return torch.optim.AdamW(groups, lr=lr)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, momentum=momentum)
    raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {name!r}")


def _default_device(device) -> torch.device:
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _nanmean(xs: list[float]) -> float:
    xs = [x for x in xs if x == x]
    return sum(xs) / len(xs) if xs else float("nan")


class _History:
    KEYS = (
        "epoch",
        "loss",
        "l_aug",
        "l_mined",
        "tau",
        "mined_weight",
        "lr",
        "mined_frac",
        "mined_agreement",
        "seconds",
    )

    def __init__(self):
        self.data: dict[str, list[float]] = {k: [] for k in self.KEYS}
        self.data["step_loss"] = []
        self._reset()

    def _reset(self):
        self.acc: dict[str, list[float]] = {k: [] for k in self.KEYS}
        self.t0 = time.perf_counter()

    def step(self, **vals: float) -> None:
        for k, v in vals.items():
            self.acc[k].append(float(v))
        self.data["step_loss"].append(float(vals["loss"]))

    def end_epoch(self, epoch: int, tau: float, weight: float) -> None:
        row = {k: _nanmean(v) for k, v in self.acc.items()}
        row.update(epoch=epoch, tau=tau, mined_weight=weight, seconds=time.perf_counter() - self.t0)
        for k in self.KEYS:
            self.data[k].append(row[k])
        self._reset()


def _resolve(preset: str, overrides: dict[str, Any]) -> dict[str, Any]:
    if preset not in NEURAL_PRESETS:
        raise ValueError(f"preset must be one of {sorted(NEURAL_PRESETS)}, got {preset!r}")
    s = dict(NEURAL_PRESETS[preset])
    s.update({k: v for k, v in overrides.items() if v is not None})
    return s


def train_myow_neural(
    data: TrialData,
    *,
    mined: bool = True,
    preset: str = "myow",
    epochs: int = 100,
    steps_per_epoch: int | None = None,
    batch_size: int | None = None,
    pool_size: int | None = None,
    k: int | None = None,
    max_shift: int | None = None,
    min_shift: int | None = None,
    dropout_p: float | None = None,
    dropout_apply_p: float | None = None,
    noise_sigma: float | None = None,
    noise_apply_p: float | None = None,
    pepper_p: float | None = None,
    pepper_c: float | None = None,
    pepper_apply_p: float | None = None,
    structured_dropout: bool | None = None,
    encoder: str | None = None,
    proj: tuple[int, int] | None | str = "preset",
    pred_hidden: int | None = None,
    mined_proj: tuple[int, int] | None = None,
    mined_pred_hidden: int | None = None,
    layout: str = "cascaded",
    target_init: str | None = None,
    optimizer: str = "adamw",
    lr: float = 2e-3,
    weight_decay: float = 2e-5,
    momentum: float = 0.9,
    lr_warmup_epochs: float | None = None,
    ema_base: float | None = None,
    ema_schedule: str | None = None,
    weight_convention: str | None = None,
    mined_max_weight: float | None = None,
    mined_warmup_epochs: float | None = None,
    mined_rampup_epochs: float | None = None,
    loss_form: str | None = None,
    skip_mining_when_zero: bool = True,
    exclude_window: int | None = None,
    min_std: float = 1e-3,
    mining_backend: str = "auto",
    seed: int = 0,
    device=None,
    progress: bool = False,
    callback: Callable[[int, MYOW, dict], None] | None = None,
) -> tuple[MYOW, dict[str, list[float]]]:
    """Train MYOW (``mined=True``) or BYOL (``mined=False``) on the training split of ``data``.

    Every step (brief §3.3-§3.4):

    1. ``batch_size`` anchor/positive pairs ``(i, j)`` from :func:`repro.neural.views.jitter_pairs`
       over training bins (``j`` in the anchor's trial, shift in ``[min_shift, max_shift]``);
    2. a pool of ``pool_size`` training bins drawn at random among those that are not anchors;
    3. all three are augmented (randomized dropout -> z-score -> noise -> pepper; with
       ``structured_dropout`` the pair shares one dropout mask, myow ``structured_transform=True``);
    4. ``L_aug`` on (online(i), target(j)) and (online(j), target(i));
    5. (MYOW) anchors ``i`` mine one of their ``k`` nearest pool bins from *other trials*
       (``exclude_window`` switches to the rodent rule, brief §3.3: the recording is one group and
       exactly the bins with ``|time - anchor time| <= exclude_window`` are ineligible, whatever their
       trial; ``time`` must then be a recording-wide clock, as :func:`repro.neural.rodent.rodent_sleep`
       gives), and ``L_mined`` is added with the mined weight of ``weight_convention``;
    6. optimiser step, then ``update_target(ema_tau(step))``.

    Unset (``None``) settings come from ``NEURAL_PRESETS[preset]``; the default preset "myow" is the
    myow repo's monkey script (brief §3.5 column 2: k=3, batch 256, pool 512, jitter +-5, dropout
    p 0.8 applied 0.9, noise sigma 0.2, pepper off, tau 0.9 cosine -> 1, lam_max 0.1 from 1 % to
    11 % of the run).  ``proj`` defaults to the preset's; pass ``None`` explicitly for an identity
    projector.

    The optimiser is the one deliberate departure: the myow repo uses LARS (lr 0.8 x batch/256,
    tuned for 1000 epochs); we default to **AdamW**, as myow-neuro does, with lr **2e-3** (the
    myow-neuro notebook's monkey and ``train_mouse.py`` value; ``train_monkey.py`` uses 2e-4 but runs
    10,000 epochs, far longer than ours) and weight decay 2e-5 (myow-neuro), biases/BN excluded from
    weight decay.  ``optimizer="sgd"`` gives SGD with ``momentum``.  Learning rate: linear warm-up
    (default: the preset's fraction of the run, >= 1 epoch) then cosine.

    ``history`` (one entry per epoch): ``loss``, ``l_aug``, ``l_mined`` (NaN while the mined weight
    is 0 and ``skip_mining_when_zero``, as the myow repo skips mining then, and for BYOL),
    ``tau`` and ``mined_weight`` (at the epoch's last step), ``lr``, ``mined_frac`` (anchors that
    had an eligible candidate), ``mined_agreement`` (mined bin has the anchor's direction: a
    diagnostic, never used for training), ``seconds``; plus ``step_loss`` (every step).
    """
    s = _resolve(
        preset,
        dict(
            batch_size=batch_size,
            pool_size=pool_size,
            k=k,
            max_shift=max_shift,
            min_shift=min_shift,
            dropout_p=dropout_p,
            dropout_apply_p=dropout_apply_p,
            noise_sigma=noise_sigma,
            noise_apply_p=noise_apply_p,
            pepper_p=pepper_p,
            pepper_c=pepper_c,
            pepper_apply_p=pepper_apply_p,
            structured_dropout=structured_dropout,
            encoder=encoder,
            pred_hidden=pred_hidden,
            mined_proj=mined_proj,
            mined_pred_hidden=mined_pred_hidden,
            target_init=target_init,
            ema_base=ema_base,
            ema_schedule=ema_schedule,
            weight_convention=weight_convention,
            mined_max_weight=mined_max_weight,
            loss_form=loss_form,
        ),
    )
    if proj != "preset":
        s["proj"] = proj
    dev = _default_device(device)
    views = _views()
    train_rows = torch.nonzero(data.split == 0).squeeze(1)
    if train_rows.numel() < 2:
        raise ValueError("need at least 2 training bins")
    n_train = int(train_rows.numel())
    bs = int(s["batch_size"])
    spe = int(steps_per_epoch) if steps_per_epoch else max(1, n_train // bs)
    total = epochs * spe
    if lr_warmup_epochs is not None:
        warm_lr = float(lr_warmup_epochs)
    else:  # the preset's fraction of the run, at least one epoch (none for a 1-epoch run)
        warm_lr = max(1.0, s["lr_warmup_frac"] * epochs) if epochs > 1 else 0.0
    warm_m = mined_warmup_epochs if mined_warmup_epochs is not None else s["mined_warmup_frac"] * epochs
    ramp_m = mined_rampup_epochs
    if ramp_m is None and s["mined_rampup_frac"] is not None:
        ramp_m = s["mined_rampup_frac"] * epochs

    gen = torch.Generator(device="cpu").manual_seed(seed)
    aug_gen = torch.Generator(device=dev).manual_seed(seed + 1)
    norm = ZScore(data.counts[train_rows], min_std=min_std)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        enc, repr_dim = neural_encoder(norm.n_out, s["encoder"])
        model = MYOW(
            enc,
            repr_dim,
            proj=s["proj"],
            pred_hidden=s["pred_hidden"],
            mined_proj=s["mined_proj"],
            mined_pred_hidden=s["mined_pred_hidden"],
            layout=layout,
            mined=mined,
            target_init=s["target_init"],
        )
    model.preprocess = norm
    model.to(dev).train()
    opt = _make_optimizer(model.online_modules(), optimizer, lr, weight_decay, momentum)

    counts = data.counts.to(dev)
    trial = data.trial.to(dev)
    direction = data.direction.to(dev)
    time_idx = data.time.to(dev)
    # monkey: the anchor's trial is ineligible; rodent (exclude_window): one group, a time window
    mine_group = trial if exclude_window is None else torch.zeros_like(trial)
    hist = _History()
    is_train = torch.zeros(len(data.trial), dtype=torch.bool)
    is_train[train_rows] = True
    step = 0
    for epoch in range(epochs):
        tau = weight = 0.0
        for _ in range(spe):
            lr_now = lr_at(step, total, lr, int(round(warm_lr * spe)))
            for g in opt.param_groups:
                g["lr"] = lr_now
            weight = (
                mined_weight(
                    step / spe,
                    s["weight_convention"],
                    max_weight=s["mined_max_weight"],
                    warmup_epochs=warm_m,
                    rampup_epochs=ramp_m,
                )
                if mined
                else 0.0
            )
            i, j = views.jitter_pairs(
                data, min(bs, n_train), s["max_shift"], gen, min_shift=s["min_shift"], rows=train_rows
            )
            x1, m1 = _augment_neural(counts[i.to(dev)], norm, aug_gen, s)
            x2, _ = _augment_neural(counts[j.to(dev)], norm, aug_gen, s, mask=m1 if s["structured_dropout"] else None)
            o1, o2 = model.online(x1), model.online(x2)
            t1, t2 = model.target(x1), model.target(x2)
            l_aug = aug_loss(o1["q"], t2["z"], o2["q"], t1["z"], s["loss_form"])
            l_min, n_used, agree = None, 0, float("nan")
            if mined and (weight > 0 or not skip_mining_when_zero):
                free = is_train.clone()
                free[i] = False
                cand = torch.nonzero(free).squeeze(1)
                if cand.numel() == 0:  # tiny data: allow overlap with the anchors
                    cand = train_rows
                pool = cand[torch.randperm(cand.numel(), generator=gen)[: int(s["pool_size"])]].to(dev)
                xp, _ = _augment_neural(counts[pool], norm, aug_gen, s)
                yp = model.target(xp)["y"]
                ia = i.to(dev)
                m_idx = mine_views(
                    o1["y"],
                    yp,
                    mine_group[ia],
                    mine_group[pool],
                    s["k"],
                    aug_gen,
                    anchor_time=time_idx[ia] if exclude_window is not None else None,
                    pool_time=time_idx[pool] if exclude_window is not None else None,
                    exclude_window=exclude_window,
                    backend=mining_backend,
                )
                l_min, n_used = mined_loss(model, o1["y"], yp, m_idx, s["loss_form"], q_m_anchor=o1["q_m"])
                ok = m_idx >= 0
                if n_used:
                    agree = float((direction[ia][ok] == direction[pool][m_idx[ok]]).float().mean())
            loss = combine_losses(l_aug, l_min, weight, s["weight_convention"])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            tau = ema_tau(step, total, s["ema_base"], s["ema_schedule"])
            model.update_target(tau)
            hist.step(
                loss=loss.item(),
                l_aug=l_aug.item(),
                l_mined=l_min.item() if l_min is not None else float("nan"),
                lr=lr_now,
                mined_frac=n_used / len(i) if mined and l_min is not None else float("nan"),
                mined_agreement=agree,
            )
            step += 1
        hist.end_epoch(epoch, tau, weight)
        if progress:
            d = hist.data
            print(
                f"[myow-neural{'' if mined else ' byol'}] epoch {epoch + 1}/{epochs} loss {d['loss'][-1]:.4f} "
                f"aug {d['l_aug'][-1]:.4f} mined {d['l_mined'][-1]:.4f} w {weight:.3f} tau {tau:.4f}",
                flush=True,
            )
        if callback is not None:
            callback(epoch, model, hist.data)
    model.eval()
    return model, hist.data


def embed_neural(model: MYOW, data: TrialData | Tensor, batch_size: int = 4096) -> Tensor:
    """Representations ``f(zscore(counts))`` of every bin (online encoder, eval mode), on CPU."""
    counts = data.counts if isinstance(data, TrialData) else data
    return model.represent(counts.cpu(), batch_size=batch_size)
