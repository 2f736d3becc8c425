"""Self-supervised BGRL and GRACE with Half-Hop augmentations (Azabou et al., ICML 2023, brief §1.4 and §1.6).

Views.  Each training step draws two fresh views of the graph.  ``augment`` picks the
pipeline, the paper's Table 3 rows:

* ``none``: both views are the original graph;
* ``drop``: edge dropping (each edge independently with ``p_edge[v]``) then feature
  masking (each feature column zeroed for all nodes with ``p_feat[v]``), as in
  ``nerdslab/bgrl`` and GRACE;
* ``halfhop``: Half-Hop only, ``transform(view, generator)`` drawn fresh at every step;
* ``drop+halfhop``: dropping and masking, then Half-Hop.

The Half-Hop transform is passed in bound to its parameters; the brief's values for the
SSL experiments are alpha = 0.5 and p = 0.75 for both views (``HH_ALPHA``, ``HH_P``; the
attribution to the paper's Table 6 is unverified).  Slow nodes are appended after the N
original nodes, so the encoder outputs of both views are sliced to ``[:N]`` before the
loss: node i of one view is compared with node i of the other.

BGRL (Thakoor et al. 2022, ``nerdslab/bgrl``): online GCN encoder (BatchNorm, PReLU) plus
predictor MLP (hidden 512); the target encoder is a freshly initialised copy (as in the
BGRL code) updated as an EMA ``target = tau*target + (1-tau)*online`` after every step,
with tau cosine-scheduled from 0.99 to 1.  Loss ``2 - 2 cos(q(h1), sg(h2))`` symmetrised
and averaged over nodes.  AdamW (weight decay 1e-5), linear warm-up for ``epochs // 10``
epochs (BGRL: 1,000 of 10,000) then cosine decay to 0.  Defaults for the encoder sizes,
lr and drop rates are BGRL's Amazon Computers config (256-128, 5e-4, view 1 (0.5, 0.2),
view 2 (0.4, 0.1) as (p_edge, p_feat)).

GRACE (Zhu et al. 2020): shared GCN encoder (PReLU, no BatchNorm by default) and an
ELU projection head, InfoNCE with temperature 0.5 whose negatives are all other nodes of
both views (intra- and inter-view), symmetrised.  The N x N similarities take O(N^2 d)
time; they are computed in row blocks with a log-sum-exp, and each block is
re-computed in the backward pass (activation checkpointing), so memory is
O(block_size * N) instead of O(N^2).  Adam with weight decay 1e-5; the other defaults
follow the BGRL ones above so that the two methods share the views.

Evaluation (brief §1.6): the frozen encoder embeds the original graph (no Half-Hop at
test time), embeddings are L2-normalised, and ``OneVsRestClassifier(LogisticRegression
(solver="liblinear"))`` (as in BGRL's evaluation code) is fitted on the training nodes
for every C in 2^-10..2^10; C is chosen by validation accuracy (the earliest C on ties)
and the test accuracy at that C is reported.
"""

from __future__ import annotations

import copy
import itertools
import logging
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression
from sklearn.multiclass import OneVsRestClassifier
from sklearn.preprocessing import normalize
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint
from torch_geometric.data import Data

from repro.graphs.models import GCNEncoder, Predictor, ProjectionHead
from repro.graphs.supervised import Transform, TransformFactory, num_splits, resolve_device, split_masks

log = logging.getLogger(__name__)

METHODS = ("BGRL", "GRACE")
AUGMENTS = ("none", "drop", "halfhop", "drop+halfhop")
HH_ALPHA = 0.5
HH_P = 0.75
PROBE_CS = tuple(float(2.0**k) for k in range(-10, 11))
SSL_METRICS = ("test_acc", "val_acc", "train_acc", "C", "final_loss", "seconds_per_epoch")

# BGRL Amazon Computers (brief §1.4); GRACE shares the views and encoder sizes.
DEFAULTS: dict[str, dict[str, Any]] = {
    "BGRL": {
        "epochs": 10_000,
        "lr": 5e-4,
        "weight_decay": 1e-5,
        "layer_sizes": (256, 128),
        "p_edge": (0.5, 0.4),
        "p_feat": (0.2, 0.1),
        "batchnorm": True,
    },
    "GRACE": {
        "epochs": 1_000,
        "lr": 5e-4,
        "weight_decay": 1e-5,
        "layer_sizes": (256, 128),
        "p_edge": (0.5, 0.4),
        "p_feat": (0.2, 0.1),
        "batchnorm": False,
    },
}


# --------------------------------------------------------------------------- views


def drop_features(x: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Zero each feature column (for every node) independently with probability ``p``."""
    if p <= 0:
        return x
    mask = torch.rand(x.size(1), generator=generator, device=x.device) < p
    return x.masked_fill(mask.unsqueeze(0), 0.0)


def drop_edges(edge_index: Tensor, p: float, generator: torch.Generator) -> Tensor:
    """Keep each directed edge independently with probability ``1 - p``."""
    if p <= 0:
        return edge_index
    keep = torch.rand(edge_index.size(1), generator=generator, device=edge_index.device) >= p
    return edge_index[:, keep]


def _check_augment(augment: str) -> tuple[bool, bool]:
    if augment not in AUGMENTS:
        raise ValueError(f"unknown augmentation {augment!r}; expected one of {AUGMENTS}")
    return "drop" in augment, "halfhop" in augment


def make_view(
    data: Data,
    augment: str,
    *,
    p_edge: float = 0.0,
    p_feat: float = 0.0,
    transform: Transform | None = None,
    generator: torch.Generator,
) -> Data:
    """One augmented view (``x``, ``edge_index``; original nodes stay rows ``[:N]``)."""
    drop, halfhop = _check_augment(augment)
    x, edge_index = data.x, data.edge_index
    if drop:
        edge_index = drop_edges(edge_index, p_edge, generator)
        x = drop_features(x, p_feat, generator)
    view = Data(x=x, edge_index=edge_index, num_nodes=int(data.num_nodes))
    if halfhop:
        if transform is None:
            raise ValueError(f"augmentation {augment!r} needs a Half-Hop transform")
        view = transform(view, generator)
    return view


def encode_view(encoder: nn.Module, view: Data, num_nodes: int) -> Tensor:
    """Encode a (possibly upsampled) view and keep the original nodes only (rows ``[:N]``)."""
    return encoder(view.x, view.edge_index)[:num_nodes]


# --------------------------------------------------------------------------- BGRL


def ema_tau(step: int, total_steps: int, base: float = 0.99) -> float:
    """BGRL's EMA decay: ``1 - (1 - base) * (1 + cos(pi * step / total)) / 2``, from ``base`` to 1."""
    step = min(max(step, 0), total_steps)
    return 1.0 - (1.0 - base) * (1.0 + math.cos(math.pi * step / total_steps)) / 2.0


def warmup_cosine_lr(step: int, base_lr: float, warmup_steps: int, total_steps: int) -> float:
    """BGRL's schedule: linear warm-up from 0 over ``warmup_steps``, then cosine decay to 0 at ``total_steps``."""
    if step < warmup_steps:
        return base_lr * step / warmup_steps
    if step >= total_steps:
        return 0.0
    return base_lr * (1.0 + math.cos(math.pi * (step - warmup_steps) / (total_steps - warmup_steps))) / 2.0


def bgrl_loss(q: Tensor, y: Tensor) -> Tensor:
    """Mean over nodes of ``2 - 2 cos(q_i, y_i)``; ``y`` is detached (stop-gradient)."""
    if q.shape != y.shape:
        raise ValueError(f"prediction {tuple(q.shape)} and target {tuple(y.shape)} differ in shape")
    return (2.0 - 2.0 * F.cosine_similarity(q, y.detach(), dim=-1)).mean()


class BGRL(nn.Module):
    """Online encoder + predictor, and a target encoder updated as an EMA of the online one."""

    def __init__(self, encoder: GCNEncoder, predictor_hidden: int = 512) -> None:
        super().__init__()
        self.online_encoder = encoder
        self.predictor = Predictor(encoder.out_dim, predictor_hidden)
        self.target_encoder = copy.deepcopy(encoder)
        self.target_encoder.reset_parameters()  # as in nerdslab/bgrl: not a copy of the online weights
        for param in self.target_encoder.parameters():
            param.requires_grad_(False)

    def trainable_parameters(self) -> list[nn.Parameter]:
        return list(self.online_encoder.parameters()) + list(self.predictor.parameters())

    @torch.no_grad()
    def update_target(self, tau: float) -> None:
        """``target = tau * target + (1 - tau) * online`` for every parameter (buffers are left alone)."""
        target = list(self.target_encoder.parameters())
        online = list(self.online_encoder.parameters())
        torch._foreach_mul_(target, tau)
        torch._foreach_add_(target, online, alpha=1.0 - tau)

    def loss(self, view1: Data, view2: Data, num_nodes: int) -> Tensor:
        """Symmetrised BGRL loss on the original nodes of the two views."""
        h1 = encode_view(self.online_encoder, view1, num_nodes)
        h2 = encode_view(self.online_encoder, view2, num_nodes)
        with torch.no_grad():
            t1 = encode_view(self.target_encoder, view1, num_nodes)
            t2 = encode_view(self.target_encoder, view2, num_nodes)
        return 0.5 * (bgrl_loss(self.predictor(h1), t2) + bgrl_loss(self.predictor(h2), t1))


# --------------------------------------------------------------------------- GRACE


def _infonce_rows(a_rows: Tensor, a: Tensor, b: Tensor, start: Tensor, temperature: float) -> Tensor:
    """Per-row InfoNCE of rows ``start..`` of normalised ``a`` against all of ``a`` (not itself) and ``b``."""
    rows = torch.arange(a_rows.size(0), device=a.device)
    cols = rows + start
    s_aa = a_rows @ a.T / temperature
    s_ab = a_rows @ b.T / temperature
    self_mask = torch.zeros_like(s_aa, dtype=torch.bool)
    self_mask[rows, cols] = True
    s_aa = s_aa.masked_fill(self_mask, float("-inf"))
    lse = torch.logsumexp(torch.cat([s_aa, s_ab], dim=1), dim=1)
    return lse - s_ab[rows, cols]


def grace_semi_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5, block_size: int | None = 1024) -> Tensor:
    """Per-node InfoNCE of view 1 against view 2: ``-log e^{s(i,i')} / (sum_{j!=i} e^{s(i,j)} + sum_j e^{s(i,j')})``.

    ``s`` is cosine similarity over ``temperature``.  Rows are processed in blocks of
    ``block_size`` (``None``: all at once); with gradients enabled each block is
    checkpointed so the N x N similarities are never all stored.
    """
    a, b = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    n = a.size(0)
    block = n if block_size is None else max(1, int(block_size))
    parts = []
    for start in range(0, n, block):
        a_rows = a[start : start + block]
        offset = torch.tensor(start, device=a.device)
        if torch.is_grad_enabled() and block < n:
            parts.append(
                checkpoint(
                    _infonce_rows, a_rows, a, b, offset, temperature, use_reentrant=False, preserve_rng_state=False
                )
            )
        else:
            parts.append(_infonce_rows(a_rows, a, b, offset, temperature))
    return torch.cat(parts)


def grace_loss(z1: Tensor, z2: Tensor, temperature: float = 0.5, block_size: int | None = 1024) -> Tensor:
    """GRACE's symmetrised InfoNCE, averaged over nodes."""
    if z1.shape != z2.shape:
        raise ValueError(f"views have different shapes {tuple(z1.shape)} and {tuple(z2.shape)}")
    l1 = grace_semi_loss(z1, z2, temperature, block_size)
    l2 = grace_semi_loss(z2, z1, temperature, block_size)
    return 0.5 * (l1 + l2).mean()


class GRACE(nn.Module):
    """Shared encoder and projection head; the loss is InfoNCE between the projected views."""

    def __init__(self, encoder: GCNEncoder, proj_hidden: int = 128, temperature: float = 0.5, block_size: int = 1024):
        super().__init__()
        self.encoder = encoder
        self.projector = ProjectionHead(encoder.out_dim, proj_hidden)
        self.temperature = float(temperature)
        self.block_size = block_size

    def loss(self, view1: Data, view2: Data, num_nodes: int) -> Tensor:
        z1 = self.projector(encode_view(self.encoder, view1, num_nodes))
        z2 = self.projector(encode_view(self.encoder, view2, num_nodes))
        return grace_loss(z1, z2, self.temperature, self.block_size)


# --------------------------------------------------------------------------- training


def _pair(value: float | Sequence[float]) -> tuple[float, float]:
    if isinstance(value, (int, float)):
        return float(value), float(value)
    first, second = value
    return float(first), float(second)


def train_ssl(
    data: Data,
    method: str,
    *,
    augment: str = "drop+halfhop",
    transform: Transform | None = None,
    epochs: int | None = None,
    lr: float | None = None,
    weight_decay: float | None = None,
    layer_sizes: Sequence[int] | None = None,
    p_edge: float | Sequence[float] | None = None,
    p_feat: float | Sequence[float] | None = None,
    batchnorm: bool | None = None,
    warmup_epochs: int | None = None,
    tau_base: float = 0.99,
    predictor_hidden: int = 512,
    temperature: float = 0.5,
    proj_hidden: int = 128,
    block_size: int = 1024,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> tuple[GCNEncoder, dict[str, Any]]:
    """Train a BGRL or GRACE encoder full-batch, one step per epoch; ``None`` arguments take ``DEFAULTS[method]``.

    ``transform(view, generator)`` is the Half-Hop transform used when ``augment`` contains
    ``halfhop``; it is drawn fresh for each view at every step.  ``warmup_epochs`` (BGRL
    only) defaults to ``epochs // 10``.  Returns the trained (online) encoder in eval mode
    and a history with per-epoch ``loss``, ``lr``, ``tau`` (BGRL), ``view_nodes`` (node
    counts of the two views), and ``seconds_per_epoch`` (mean step time) and
    ``peak_memory_bytes`` (CUDA only, else ``None``).
    """
    method = method.upper()
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; expected one of {METHODS}")
    _, halfhop = _check_augment(augment)
    if halfhop and transform is None:
        raise ValueError(f"augmentation {augment!r} needs a Half-Hop transform")
    cfg = DEFAULTS[method]
    epochs = int(cfg["epochs"] if epochs is None else epochs)
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    lr = float(cfg["lr"] if lr is None else lr)
    weight_decay = float(cfg["weight_decay"] if weight_decay is None else weight_decay)
    layer_sizes = tuple(cfg["layer_sizes"] if layer_sizes is None else layer_sizes)
    pe = _pair(cfg["p_edge"] if p_edge is None else p_edge)
    pf = _pair(cfg["p_feat"] if p_feat is None else p_feat)
    batchnorm = bool(cfg["batchnorm"] if batchnorm is None else batchnorm)
    warmup = epochs // 10 if warmup_epochs is None else int(warmup_epochs)

    dev = resolve_device(device)
    n = int(data.num_nodes)
    graph = Data(x=data.x.to(dev), edge_index=data.edge_index.to(dev), num_nodes=n)
    torch.manual_seed(seed)
    generator = torch.Generator(device=dev).manual_seed(seed)
    encoder = GCNEncoder(graph.x.size(1), layer_sizes, batchnorm=batchnorm)

    model: BGRL | GRACE
    if method == "BGRL":
        model = BGRL(encoder, predictor_hidden).to(dev)
        optimizer: torch.optim.Optimizer = torch.optim.AdamW(
            model.trainable_parameters(), lr=lr, weight_decay=weight_decay
        )
    else:
        model = GRACE(encoder, proj_hidden, temperature, block_size).to(dev)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)

    cuda = dev.type == "cuda"
    if cuda:
        torch.cuda.reset_peak_memory_stats(dev)
    history: dict[str, Any] = {"loss": [], "lr": [], "tau": [], "view_nodes": []}
    times = []
    model.train()
    for step in range(epochs):
        start = time.perf_counter()
        step_lr = warmup_cosine_lr(step, lr, warmup, epochs) if method == "BGRL" else lr
        for group in optimizer.param_groups:
            group["lr"] = step_lr
        views = [
            make_view(graph, augment, p_edge=pe[v], p_feat=pf[v], transform=transform, generator=generator)
            for v in (0, 1)
        ]
        optimizer.zero_grad(set_to_none=True)
        loss = model.loss(views[0], views[1], n)
        loss.backward()
        optimizer.step()
        if isinstance(model, BGRL):
            tau = ema_tau(step, epochs, tau_base)
            model.update_target(tau)
            history["tau"].append(tau)
        if cuda:
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - start)
        history["loss"].append(float(loss.detach()))
        history["lr"].append(step_lr)
        history["view_nodes"].append((int(views[0].x.size(0)), int(views[1].x.size(0))))
    history["seconds_per_epoch"] = float(np.mean(times))
    history["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(dev)) if cuda else None
    encoder = model.online_encoder if isinstance(model, BGRL) else model.encoder
    return encoder.eval(), history


@torch.no_grad()
def embed(encoder: nn.Module, data: Data) -> Tensor:
    """Embeddings of the original graph (no augmentation, no Half-Hop) from the frozen encoder, on CPU."""
    encoder.eval()
    dev = next(encoder.parameters()).device
    return encoder(data.x.to(dev), data.edge_index.to(dev)).cpu()


# --------------------------------------------------------------------------- linear probe


def _numpy(t: Tensor | np.ndarray) -> np.ndarray:
    return t.detach().cpu().numpy() if isinstance(t, Tensor) else np.asarray(t)


def linear_probe(
    embeddings: Tensor | np.ndarray,
    y: Tensor | np.ndarray,
    train_mask: Tensor | np.ndarray,
    val_mask: Tensor | np.ndarray,
    test_mask: Tensor | np.ndarray,
    *,
    cs: Sequence[float] = PROBE_CS,
    seed: int = 0,
) -> dict[str, Any]:
    """L2-normalise, fit one-vs-rest liblinear logistic regression per C on train, pick C on validation.

    Returns ``C``, ``train_acc``, ``val_acc`` and ``test_acc`` at the chosen C, and
    ``val_acc_by_C`` (``{C: accuracy}``).  Ties in validation accuracy go to the first C
    of ``cs`` (the smallest for the default grid, i.e. the strongest regularisation).
    """
    X = normalize(_numpy(embeddings).astype(np.float64), norm="l2")
    labels = _numpy(y)
    masks = [_numpy(m).astype(bool) for m in (train_mask, val_mask, test_mask)]
    if not masks[0].any() or not masks[1].any():
        raise ValueError("the probe needs training and validation nodes")
    best: dict[str, Any] | None = None
    val_by_c: dict[float, float] = {}
    for c in cs:
        clf = OneVsRestClassifier(LogisticRegression(solver="liblinear", C=float(c), random_state=seed))
        clf.fit(X[masks[0]], labels[masks[0]])
        accs = [float((clf.predict(X[m]) == labels[m]).mean()) if m.any() else float("nan") for m in masks]
        val_by_c[float(c)] = accs[1]
        if best is None or accs[1] > best["val_acc"]:
            best = {"C": float(c), "train_acc": accs[0], "val_acc": accs[1], "test_acc": accs[2]}
    assert best is not None
    return {**best, "val_acc_by_C": val_by_c}


# --------------------------------------------------------------------------- sweep


def ssl_records(
    data: Data,
    *,
    methods: Sequence[str] = METHODS,
    augments: Sequence[str] = AUGMENTS,
    transform_factory: TransformFactory | None = None,
    hh_alpha: float = HH_ALPHA,
    hh_p: float = HH_P,
    splits: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    method_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    probe_cs: Sequence[float] = PROBE_CS,
    metrics: Sequence[str] = SSL_METRICS,
    **train_kwargs: Any,
) -> list[dict[str, Any]]:
    """Train one encoder per (method, augmentation, seed) and probe it on every split; return tidy rows.

    ``transform_factory(hh_alpha, hh_p)`` builds the Half-Hop transform for the
    ``halfhop`` augmentations.  ``splits=None`` uses every split stored in the masks.
    Rows hold ``method``, ``model`` (``GCN``), ``augmentation``, ``split``, ``seed``,
    ``metric``, ``value`` and a JSON-ready ``setting``.
    """
    split_ids = list(range(num_splits(data))) if splits is None else [int(s) for s in splits]
    unknown = [m for m in metrics if m not in SSL_METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; available: {SSL_METRICS}")
    for augment in augments:
        _check_augment(augment)
    needs_hh = any("halfhop" in a for a in augments)
    if needs_hh and transform_factory is None:
        raise ValueError("Half-Hop augmentations need a transform_factory")
    transform = transform_factory(hh_alpha, hh_p) if needs_hh else None
    overrides = {k.upper(): dict(v) for k, v in (method_kwargs or {}).items()}

    rows: list[dict[str, Any]] = []
    for method, augment, seed in itertools.product(methods, augments, seeds):
        method = method.upper()
        kwargs = {**train_kwargs, **overrides.get(method, {})}
        hh = "halfhop" in augment
        encoder, history = train_ssl(
            data, method, augment=augment, transform=transform if hh else None, seed=seed, **kwargs
        )
        emb = embed(encoder, data)
        for split in split_ids:
            probe = linear_probe(emb, data.y, *split_masks(data, split), cs=probe_cs, seed=seed)
            values = {
                **{k: probe[k] for k in ("test_acc", "val_acc", "train_acc", "C")},
                "final_loss": history["loss"][-1],
                "seconds_per_epoch": history["seconds_per_epoch"],
            }
            setting = {
                "augmentation": augment,
                "split": split,
                "hh_alpha": hh_alpha if hh else None,
                "hh_p": hh_p if hh else None,
                **{k: v for k, v in kwargs.items() if isinstance(v, (bool, int, float, str)) and k != "device"},
            }
            base = {"method": method, "model": "GCN", "augmentation": augment, "split": split, "seed": int(seed)}
            for metric in metrics:
                rows.append({**base, "metric": metric, "value": float(values[metric]), "setting": setting})
            log.info(
                "%s/%s seed=%d split=%d: probe test %.4f (C=%g)",
                method,
                augment,
                seed,
                split,
                probe["test_acc"],
                probe["C"],
            )
    return rows


__all__ = [
    "AUGMENTS",
    "BGRL",
    "DEFAULTS",
    "GRACE",
    "HH_ALPHA",
    "HH_P",
    "METHODS",
    "PROBE_CS",
    "SSL_METRICS",
    "bgrl_loss",
    "drop_edges",
    "drop_features",
    "ema_tau",
    "embed",
    "encode_view",
    "grace_loss",
    "grace_semi_loss",
    "linear_probe",
    "make_view",
    "ssl_records",
    "train_ssl",
    "warmup_cosine_lr",
]
