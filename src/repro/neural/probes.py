"""Frozen-representation probes for Swap-VAE and MYOW (brief ``shared/papers/ssl_graph_neural.md``).

All probes select their hyperparameter on a validation split and report the test metric at that
setting; the test split is never used for selection (brief §7.5; the original scripts logged
"best over epochs" or an EMA of *test* accuracy, brief §2.7 and §3.7).  Inputs are standardised
with the training statistics (mean, std clamped at 1e-8).  When the validation split is empty
the selection falls back to a random 20 % of the training rows (seeded), after which the probe is
refitted on all training rows at the chosen setting; rows of one trial can then sit on both sides,
so that validation score is optimistic (it is only used to rank settings).

* :func:`direction_probe` follows the myow-neuro monkey protocol (brief §3.7): a ``Linear(d -> 2)``
  head regressing ``(cos theta, sin theta)`` with MSE, AdamW lr 0.01, 100 passes, batch 512, one head
  per weight decay ``2**[-10..9]`` (20 values), best weight decay by validation accuracy (ties: lower
  validation MSE, then the smaller weight decay).  The 20 heads are trained together as one batched
  weight tensor ``[K, d, 2]``: the summed loss gives each head exactly its own gradient, Adam is
  elementwise, and the decoupled decay ``p *= 1 - lr * wd_k`` is applied per head before each step
  as ``torch.optim.AdamW`` does, so the result equals K separate trainings (all heads share the
  initialisation and the minibatch order, as K runs with one seed would).  The bias is decayed too
  (``AdamW(model.parameters())`` in myow-neuro).  **Paper vs code**: Swap-VAE's own probe (brief
  §2.7) is one head with Adam lr 0.01, wd 1e-5, 300 epochs, batch 256: call with
  ``weight_decays=[1e-5], epochs=300, batch_size=256, coupled=True`` (coupled = Adam's L2 weight
  decay instead of AdamW's decoupled one).  Accuracy = angular error < pi / n_classes (the correct
  octant for 8 directions), delta-accuracy = error < 1.5 pi / n_classes (3 pi / 16 for 8), brief
  §2.7.  Swap-VAE evaluates only bins with hand speed > 5 (brief §2.7): select those rows with
  :func:`speed_mask` before calling.
* :func:`velocity_r2`: closed-form ridge regression of hand velocity (2 outputs, intercept not
  penalised, features standardised), ridge from ``logspace(-3, 5, 17)`` chosen on validation R^2, test R^2 averaged over the outputs (as sklearn's
  ``r2_score`` ``uniform_average``).  Our choice (the brief gives no velocity protocol).
* :func:`knn_accuracy`: cosine-similarity k-NN (k = 5), majority vote, ties broken by the class of
  the nearest tied neighbour.  Our choice (the MYOW paper reports kNN variants, brief §3.7,
  details not verified).
* :func:`class_probe`: multinomial linear probe (cross-entropy) with the same batched weight-decay
  sweep, AdamW by default; ``balanced=True`` samples the classes equally (myow-neuro's rodent
  sleep-state probe, ``WeightedRandomSampler`` with 5,000 samples per pass, brief §3.7) and
  :func:`weighted_f1` gives its second metric.  ``optimizer="sgd"`` gives the myow CIFAR protocol (SGD momentum 0.9,
  lr 0.02, MultiStep at 60 % and 80 % of the epochs with gamma 0.1, L2 weight decay; brief §3.7),
  selection still on validation.
* :func:`disentanglement` / :func:`content_style_decoding`: the Swap-VAE disentanglement check
  (brief §2.7, §7.3): direction accuracy and velocity R^2 decoded from the content block alone vs
  the style block alone (style mean ``mu_s``).  The paper's own metrics are not verified (brief
  §2.7); this is the qualitative claim "content decodes direction better than style".
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "default_weight_decays",
    "standardise",
    "speed_mask",
    "angular_accuracy",
    "fit_linear_heads",
    "direction_probe",
    "velocity_r2",
    "knn_accuracy",
    "class_probe",
    "weighted_f1",
    "disentanglement",
    "content_style_decoding",
]

ArrayLike = Tensor | np.ndarray | Sequence[float]


def default_weight_decays() -> list[float]:
    """``2**arange(-10, 10)``: the 20 weight decays of myow-neuro (brief §3.7)."""
    return [float(2.0**e) for e in range(-10, 10)]


def _t(x: ArrayLike, dtype: torch.dtype = torch.float32) -> Tensor:
    if isinstance(x, Tensor):
        return x.detach().to(device="cpu", dtype=dtype)
    return torch.as_tensor(np.asarray(x), dtype=dtype)


def standardise(train: Tensor, *others: Tensor) -> tuple[Tensor, ...]:
    """``(x - mean_train) / std_train`` for the training set and every other set."""
    mean = train.mean(0, keepdim=True)
    std = train.std(0, unbiased=False, keepdim=True).clamp_min(1e-8)
    return tuple((x - mean) / std for x in (train, *others))


def speed_mask(velocity: Tensor, threshold: float = 5.0) -> Tensor:
    """Rows with hand speed ``||v|| > threshold`` (Swap-VAE evaluates only those, brief §2.7)."""
    return torch.linalg.vector_norm(velocity, dim=1) > threshold


def _wrap(a: Tensor) -> Tensor:
    return torch.remainder(a + math.pi, 2 * math.pi) - math.pi


def angular_accuracy(pred: Tensor, angle: Tensor, n_classes: int) -> tuple[Tensor, Tensor]:
    """``(acc, delta_acc)`` of ``pred [..., B, 2]`` = (cos, sin) against ``angle [B]`` (per leading index)."""
    err = _wrap(torch.atan2(pred[..., 1], pred[..., 0]) - angle).abs()
    return (err < math.pi / n_classes).float().mean(-1), (err < 1.5 * math.pi / n_classes).float().mean(-1)


def _holdout(n: int, seed: int, frac: float = 0.2) -> tuple[Tensor, Tensor]:
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed + 1))
    n_val = max(1, int(round(frac * n)))
    if n - n_val < 1:
        raise ValueError("too few training rows to hold out a validation part")
    return perm[n_val:], perm[:n_val]


def fit_linear_heads(
    x: Tensor,
    y: Tensor,
    out_dim: int,
    loss: Callable[[Tensor, Tensor], Tensor],
    weight_decays: Sequence[float],
    *,
    epochs: int = 100,
    lr: float = 0.01,
    batch_size: int = 512,
    seed: int = 0,
    optimizer: str = "adamw",
    coupled: bool = False,
    sample_weights: Tensor | None = None,
    samples_per_epoch: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Train ``K = len(weight_decays)`` linear heads ``x @ W_k + b_k`` at once; returns ``W [K, d, o], b [K, o]``.

    ``loss(pred [K, B, o], y [B, ...]) -> [K]`` per-head mean losses.  ``optimizer``: ``"adamw"``
    (decoupled decay, or Adam + L2 when ``coupled``) or ``"sgd"`` (momentum 0.9, L2 decay,
    MultiStep lr x0.1 at 60 % and 80 % of the epochs).  Heads share the nn.Linear-style
    initialisation ``U(-1/sqrt(d), 1/sqrt(d))`` and the minibatch order, so the result is that of
    K independent runs with the same seed.

    ``sample_weights [n]`` (non-negative) replaces the shuffled passes by weighted sampling with
    replacement, as ``torch.utils.data.WeightedRandomSampler``: each epoch draws
    ``samples_per_epoch`` rows (default ``n``) with probability proportional to their weight and
    trains on the full batches of that draw (``drop_last=True``; one batch when fewer rows than
    ``batch_size`` are drawn).
    """
    n, d = x.shape
    if sample_weights is not None:
        sample_weights = torch.as_tensor(sample_weights, dtype=torch.float64).reshape(-1)
        if sample_weights.shape[0] != n or bool((sample_weights < 0).any()) or not bool(sample_weights.sum() > 0):
            raise ValueError(f"sample_weights must be {n} non-negative weights with a positive sum")
    n_draw = int(samples_per_epoch) if samples_per_epoch is not None else n
    if n_draw < 1:
        raise ValueError(f"samples_per_epoch must be >= 1, got {samples_per_epoch}")
    k = len(weight_decays)
    g = torch.Generator().manual_seed(seed)
    bound = 1.0 / math.sqrt(d) if d else 0.0
    w0 = (torch.rand(d, out_dim, generator=g) * 2 - 1) * bound
    b0 = (torch.rand(out_dim, generator=g) * 2 - 1) * bound
    w = w0.expand(k, d, out_dim).clone().to(x.device).requires_grad_(True)
    b = b0.expand(k, out_dim).clone().to(x.device).requires_grad_(True)
    wd = torch.as_tensor(list(weight_decays), dtype=x.dtype, device=x.device)
    if optimizer == "adamw":
        opt: torch.optim.Optimizer = torch.optim.Adam([w, b], lr=lr)
        sched = None
    elif optimizer == "sgd":
        opt = torch.optim.SGD([w, b], lr=lr, momentum=0.9)
        sched = torch.optim.lr_scheduler.MultiStepLR(opt, [int(0.6 * epochs), int(0.8 * epochs)], gamma=0.1)
        coupled = True
    else:
        raise ValueError(f"optimizer must be 'adamw' or 'sgd', got {optimizer!r}")
    for _ in range(epochs):
        if sample_weights is None:
            perm = torch.randperm(n, generator=g).to(x.device)
            starts = range(0, n, batch_size)
        else:
            perm = torch.multinomial(sample_weights, n_draw, replacement=True, generator=g).to(x.device)
            starts = range(0, max(1, n_draw // batch_size) * batch_size, batch_size)  # drop_last
        for start in starts:
            idx = perm[start : start + batch_size]
            pred = torch.einsum("bd,kdo->kbo", x[idx], w) + b[:, None, :]
            total = loss(pred, y[idx]).sum()
            opt.zero_grad(set_to_none=True)
            total.backward()
            with torch.no_grad():
                cur_lr = opt.param_groups[0]["lr"]
                if coupled:  # L2 penalty wd/2 ||p||^2 added to the gradient (torch's weight_decay=)
                    w.grad.add_(wd[:, None, None] * w)
                    b.grad.add_(wd[:, None] * b)
                else:  # AdamW: decay before the Adam update
                    w.mul_(1 - cur_lr * wd[:, None, None])
                    b.mul_(1 - cur_lr * wd[:, None])
            opt.step()
        if sched is not None:
            sched.step()
    return w.detach(), b.detach()


def _predict(x: Tensor, w: Tensor, b: Tensor) -> Tensor:
    return torch.einsum("bd,kdo->kbo", x, w) + b[:, None, :]


def _mse_heads(pred: Tensor, y: Tensor) -> Tensor:
    return (pred - y).pow(2).mean(dim=(1, 2))


def _ce_heads(pred: Tensor, y: Tensor) -> Tensor:
    k, bsz, c = pred.shape
    return F.cross_entropy(pred.reshape(k * bsz, c), y.repeat(k), reduction="none").view(k, bsz).mean(1)


def _select(val_acc: Tensor, val_loss: Tensor) -> int:
    """Best validation accuracy; ties: lower validation loss, then the first (smallest wd)."""
    best = val_acc.max()
    cand = (val_acc == best).nonzero().squeeze(1)
    return int(cand[torch.argmin(val_loss[cand])])


def direction_probe(
    z_train: ArrayLike,
    angle_train: ArrayLike,
    z_val: ArrayLike,
    angle_val: ArrayLike,
    z_test: ArrayLike,
    angle_test: ArrayLike,
    n_classes: int,
    weight_decays: Sequence[float] | None = None,
    epochs: int = 100,
    lr: float = 0.01,
    batch_size: int = 512,
    seed: int = 0,
    coupled: bool = False,
) -> dict:
    """(cos, sin) linear regression probe; returns ``acc``, ``delta_acc`` (test, at the chosen wd),
    ``val_acc``, ``val_delta_acc``, ``weight_decay``, ``val_acc_per_wd``, ``weight_decays``."""
    wds = default_weight_decays() if weight_decays is None else [float(v) for v in weight_decays]
    ztr, atr, zva, ava, zte, ate = (_t(v) for v in (z_train, angle_train, z_val, angle_val, z_test, angle_test))
    refit = zva.shape[0] == 0
    if refit:
        tr, va = _holdout(ztr.shape[0], seed)
        zva, ava, ztr_sel, atr_sel = ztr[va], atr[va], ztr[tr], atr[tr]
    else:
        ztr_sel, atr_sel = ztr, atr

    def targets(a: Tensor) -> Tensor:
        return torch.stack([torch.cos(a), torch.sin(a)], dim=1)

    kw = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, coupled=coupled)
    xs, xv = standardise(ztr_sel, zva)
    w, b = fit_linear_heads(xs, targets(atr_sel), 2, _mse_heads, wds, **kw)
    pv = _predict(xv, w, b)
    vacc, vdacc = angular_accuracy(pv, ava, n_classes)
    best = _select(vacc, _mse_heads(pv, targets(ava)))
    if refit:
        xs, xt = standardise(ztr, zte)
        w, b = fit_linear_heads(xs, targets(atr), 2, _mse_heads, [wds[best]], **kw)
        pt = _predict(xt, w, b)[0]
    else:
        (xt,) = standardise(ztr, zte)[1:]
        pt = _predict(xt, w[best : best + 1], b[best : best + 1])[0]
    acc, dacc = angular_accuracy(pt, ate, n_classes)
    return {
        "acc": float(acc),
        "delta_acc": float(dacc),
        "val_acc": float(vacc[best]),
        "val_delta_acc": float(vdacc[best]),
        "weight_decay": wds[best],
        "val_acc_per_wd": vacc.tolist(),
        "weight_decays": wds,
    }


def _r2(y: Tensor, pred: Tensor) -> Tensor:
    """R^2 per leading index, averaged over outputs; nan where an output has no variance."""
    ss_res = (y - pred).pow(2).sum(-2)
    ss_tot = (y - y.mean(0)).pow(2).sum(0)
    r2 = 1 - ss_res / ss_tot
    return torch.where(ss_tot > 0, r2, torch.full_like(r2, float("nan"))).mean(-1)


def _ridge_fit(x: Tensor, y: Tensor, ridges: Tensor) -> tuple[Tensor, Tensor]:
    """Closed-form ridge for every penalty at once (intercept unpenalised): ``W [R, d, o], b [R, o]``."""
    xm, ym = x.mean(0), y.mean(0)
    xc, yc = x - xm, y - ym
    evals, evecs = torch.linalg.eigh(xc.T @ xc)
    proj = evecs.T @ (xc.T @ yc)  # [d, o]
    w = torch.einsum("de,re,eo->rdo", evecs, 1.0 / (evals.clamp_min(0)[None] + ridges[:, None]), proj)
    b = ym[None] - torch.einsum("d,rdo->ro", xm, w)
    return w, b


def velocity_r2(
    z_train: ArrayLike,
    v_train: ArrayLike,
    z_val: ArrayLike,
    v_val: ArrayLike,
    z_test: ArrayLike,
    v_test: ArrayLike,
    ridge: Sequence[float] | None = None,
    seed: int = 0,
) -> dict:
    """Ridge regression of velocity; returns ``r2`` (test), ``val_r2``, ``ridge`` (chosen on validation)."""
    ridges = torch.as_tensor(np.logspace(-3, 5, 17) if ridge is None else list(ridge), dtype=torch.float64)
    ztr, vtr, zva, vva, zte, vte = (_t(a, torch.float64) for a in (z_train, v_train, z_val, v_val, z_test, v_test))
    refit = zva.shape[0] == 0
    if refit:
        tr, va = _holdout(ztr.shape[0], seed)
        zsel, vsel, zva, vva = ztr[tr], vtr[tr], ztr[va], vtr[va]
    else:
        zsel, vsel = ztr, vtr
    xs, xv = standardise(zsel, zva)
    w, b = _ridge_fit(xs, vsel, ridges)
    vr2 = _r2(vva, _predict(xv, w, b))
    best = int(torch.argmax(torch.nan_to_num(vr2, nan=-float("inf"))))
    xs, xt = standardise(ztr, zte)
    w, b = _ridge_fit(xs, vtr, ridges[best : best + 1])
    r2 = _r2(vte, _predict(xt, w, b))[0]
    return {"r2": float(r2), "val_r2": float(vr2[best]), "ridge": float(ridges[best])}


def knn_accuracy(
    z_train: ArrayLike, y_train: ArrayLike, z_test: ArrayLike, y_test: ArrayLike, k: int = 5, chunk: int = 4096
) -> float:
    """Cosine-similarity k-NN accuracy: majority vote of the k most similar training rows; a tie
    goes to the tied class whose neighbour is the most similar."""
    ztr = F.normalize(_t(z_train), dim=1)
    zte = F.normalize(_t(z_test), dim=1)
    ytr, yte = _t(y_train, torch.long), _t(y_test, torch.long)
    k = min(k, ztr.shape[0])
    n_cls = int(max(ytr.max(), yte.max())) + 1
    correct = 0
    for start in range(0, zte.shape[0], chunk):
        sim = zte[start : start + chunk] @ ztr.T
        nn_idx = sim.topk(k, dim=1).indices  # sorted, most similar first
        labels = ytr[nn_idx]
        votes = torch.zeros(labels.shape[0], n_cls, dtype=torch.long).scatter_add_(1, labels, torch.ones_like(labels))
        is_top = votes.gather(1, labels) == votes.max(1, keepdim=True).values
        pred = labels.gather(1, is_top.long().argmax(1, keepdim=True)).squeeze(1)
        correct += int((pred == yte[start : start + chunk]).sum())
    return correct / max(1, zte.shape[0])


def class_probe(
    z_train: ArrayLike,
    y_train: ArrayLike,
    z_val: ArrayLike,
    y_val: ArrayLike,
    z_test: ArrayLike,
    y_test: ArrayLike,
    weight_decays: Sequence[float] | None = None,
    epochs: int = 100,
    lr: float = 0.01,
    batch_size: int = 512,
    seed: int = 0,
    optimizer: str = "adamw",
    n_classes: int | None = None,
    balanced: bool = False,
    samples_per_epoch: int | None = None,
) -> dict:
    """Multinomial linear probe; returns ``acc`` and ``f1`` (test, weighted F1, :func:`weighted_f1`),
    ``val_acc``, ``val_f1``, ``weight_decay``, ``val_acc_per_wd``, ``weight_decays``.

    ``balanced``: class-balanced training, as myow-neuro's sleep-state probe (brief §3.7): every pass
    draws ``samples_per_epoch`` rows (default: the number of training rows) with replacement, each
    row with weight ``1 / (rows of its class)``, i.e. ``WeightedRandomSampler`` (so every class is
    drawn equally often); myow-neuro uses 5,000 samples per pass.  Selection stays on validation
    accuracy (unweighted, as myow-neuro).  ``n_classes`` defaults to the largest label + 1."""
    wds = default_weight_decays() if weight_decays is None else [float(v) for v in weight_decays]
    ztr, zva, zte = (_t(v) for v in (z_train, z_val, z_test))
    ytr, yva, yte = (_t(v, torch.long) for v in (y_train, y_val, y_test))
    n_cls = int(max(int(y.max()) if y.numel() else 0 for y in (ytr, yva, yte))) + 1
    if n_classes is not None:
        if int(n_classes) < n_cls:
            raise ValueError(f"labels go up to {n_cls - 1}, beyond n_classes={n_classes}")
        n_cls = int(n_classes)
    refit = zva.shape[0] == 0
    if refit:
        tr, va = _holdout(ztr.shape[0], seed)
        zsel, ysel, zva, yva = ztr[tr], ytr[tr], ztr[va], ytr[va]
    else:
        zsel, ysel = ztr, ytr
    kw = dict(epochs=epochs, lr=lr, batch_size=batch_size, seed=seed, optimizer=optimizer)

    def sampling(y: Tensor) -> dict:
        if not balanced:
            return {}
        per_class = torch.bincount(y, minlength=n_cls).double()
        return {"sample_weights": 1.0 / per_class[y], "samples_per_epoch": samples_per_epoch}

    xs, xv = standardise(zsel, zva)
    w, b = fit_linear_heads(xs, ysel, n_cls, _ce_heads, wds, **kw, **sampling(ysel))
    pv = _predict(xv, w, b)
    vacc = (pv.argmax(-1) == yva).float().mean(-1)
    best = _select(vacc, _ce_heads(pv, yva))
    if refit:
        xs, xt = standardise(ztr, zte)
        w, b = fit_linear_heads(xs, ytr, n_cls, _ce_heads, [wds[best]], **kw, **sampling(ytr))
        pt = _predict(xt, w, b)[0]
    else:
        (xt,) = standardise(ztr, zte)[1:]
        pt = _predict(xt, w[best : best + 1], b[best : best + 1])[0]
    pred = pt.argmax(-1)
    acc = (pred == yte).float().mean()
    return {
        "acc": float(acc),
        "f1": weighted_f1(yte, pred, n_cls),
        "val_acc": float(vacc[best]),
        "val_f1": weighted_f1(yva, pv[best].argmax(-1), n_cls),
        "weight_decay": wds[best],
        "val_acc_per_wd": vacc.tolist(),
        "weight_decays": wds,
    }


def weighted_f1(y_true: ArrayLike, y_pred: ArrayLike, n_classes: int | None = None) -> float:
    """Support-weighted mean of the per-class F1 scores (sklearn's ``f1_score(average="weighted")``):
    F1 of class c = 2 TP / (2 TP + FP + FN) (0 when the class is neither true nor predicted), weighted
    by the class's number of true rows.  NaN for empty inputs.  (myow-neuro reports 0 whenever every
    prediction is class 0, a quirk we do not copy.)"""
    yt, yp = _t(y_true, torch.long).reshape(-1), _t(y_pred, torch.long).reshape(-1)
    if yt.shape != yp.shape:
        raise ValueError(f"y_true has {yt.numel()} labels, y_pred {yp.numel()}")
    if yt.numel() == 0:
        return float("nan")
    n = max(int(yt.max()), int(yp.max())) + 1
    n = max(n, int(n_classes or 0))
    tp = torch.bincount(yt[yt == yp], minlength=n).double()
    support = torch.bincount(yt, minlength=n).double()
    predicted = torch.bincount(yp, minlength=n).double()
    denom = support + predicted  # 2 TP + FP + FN
    f1 = torch.where(denom > 0, 2 * tp / denom.clamp_min(1), torch.zeros_like(tp))
    return float((f1 * support).sum() / support.sum())


def disentanglement(
    c_train: ArrayLike,
    s_train: ArrayLike,
    c_val: ArrayLike,
    s_val: ArrayLike,
    c_test: ArrayLike,
    s_test: ArrayLike,
    angle_train: ArrayLike,
    angle_val: ArrayLike,
    angle_test: ArrayLike,
    n_classes: int,
    v_train: ArrayLike | None = None,
    v_val: ArrayLike | None = None,
    v_test: ArrayLike | None = None,
    **probe_kw,
) -> dict:
    """Direction accuracy (and velocity R^2 when velocities are given) from the content block alone
    and from the style block alone: ``acc_content``, ``acc_style``, ``delta_acc_content``,
    ``delta_acc_style``, ``r2_content``, ``r2_style`` (nan without velocities)."""
    out: dict = {}
    blocks = {"content": (c_train, c_val, c_test), "style": (s_train, s_val, s_test)}
    for name, (tr, va, te) in blocks.items():
        d = direction_probe(tr, angle_train, va, angle_val, te, angle_test, n_classes, **probe_kw)
        out[f"acc_{name}"], out[f"delta_acc_{name}"] = d["acc"], d["delta_acc"]
        if v_train is not None and v_val is not None and v_test is not None:
            seed = probe_kw.get("seed", 0)
            out[f"r2_{name}"] = velocity_r2(tr, v_train, va, v_val, te, v_test, seed=seed)["r2"]
        else:
            out[f"r2_{name}"] = float("nan")
    return out


def content_style_decoding(
    model,
    data,
    *,
    speed_threshold: float | None = None,
    use_velocity: bool = True,
    batch_size: int = 4096,
    **probe_kw,
) -> dict:
    """:func:`disentanglement` for a trained Swap-VAE (``encode(x) -> (c, mu_s, logvar_s)``) on a
    ``TrialData``: embeds every row in eval mode, splits by ``data.split`` (0/1/2), optionally
    keeps rows with hand speed > ``speed_threshold`` (Swap-VAE uses 5, brief §2.7; ``None`` keeps
    all rows, e.g. for synthetic data without velocity)."""
    if getattr(model, "content_dim", 1) == 0:
        raise ValueError("model has no content block (style_dim == latent_dim)")
    was_training = model.training
    model.eval()
    dev = next(model.parameters()).device
    cs, ss = [], []
    with torch.no_grad():
        for start in range(0, data.counts.shape[0], batch_size):
            c, mu, _ = model.encode(data.counts[start : start + batch_size].to(dev))
            cs.append(c.cpu())
            ss.append(mu.cpu())
    model.train(was_training)
    c, s = torch.cat(cs), torch.cat(ss)
    keep = torch.ones(c.shape[0], dtype=torch.bool)
    if speed_threshold is not None:
        keep = speed_mask(data.velocity.cpu(), speed_threshold)
    masks = [(data.split.cpu() == i) & keep for i in range(3)]
    ang, vel = data.angle.cpu(), data.velocity.cpu()
    vel_args = [vel[m] for m in masks] if use_velocity else [None, None, None]
    return disentanglement(
        c[masks[0]],
        s[masks[0]],
        c[masks[1]],
        s[masks[1]],
        c[masks[2]],
        s[masks[2]],
        ang[masks[0]],
        ang[masks[1]],
        ang[masks[2]],
        data.n_classes,
        *vel_args,
        **probe_kw,
    )
