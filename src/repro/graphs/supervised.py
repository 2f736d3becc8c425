"""Supervised node classification with and without Half-Hop (Azabou et al., ICML 2023).

Protocol (brief §1.4, §1.6, §1.9):

* Half-Hop is a pre-processing step: ``transform(data, generator)`` is applied **once**
  per run (seeded by the run's seed) and the unchanged model runs on the upsampled graph.
* Slow nodes are appended after the N original nodes and have no labels, so logits are
  sliced to ``[:N]`` before the loss and every metric; ``y`` and the masks keep length N.
* Adam on the cross-entropy of the training nodes; after every epoch the model is
  evaluated (no dropout) and the epoch with the highest validation accuracy is selected
  (the earliest on ties).  The reported test accuracy is the one of that epoch, never the
  maximum over test epochs.
* Masks may be 1-D ``[N]`` or 2-D ``[N, n_splits]`` (WebKB/WikiCS style); ``split``
  selects a column.

Defaults (lr 0.01, weight decay 5e-4, hidden 64, depth 2, dropout 0.5, 200 epochs) are the
usual GCN settings, not the paper's: its per-dataset values (brief §1.4, Table 5) are
searched and should be passed explicitly.

Timing and memory.  ``seconds_per_epoch`` is the mean wall time of one training step
(forward, backward, optimiser step; evaluation excluded), over all epochs but the first
(warm-up) when there are several.  ``peak_memory_bytes`` is measured as follows:

* on CUDA: ``torch.cuda.max_memory_allocated`` over each epoch (training step and
  evaluation, after resetting the peak), maximum over epochs (``memory_source = "cuda_max_allocated"``);
* elsewhere: exact accounting of the tensors alive during the first training step: the
  model inputs (feature matrix N'xF and edge index of the graph the model runs on),
  parameters, gradients, Adam's two moments and every tensor autograd saves for the
  backward pass (captured with ``torch.autograd.graph.saved_tensors_hooks``), counting
  each storage once (``memory_source = "tensor_accounting"``).  Allocator overhead and
  short-lived temporaries are not included.  The N'xF input matrix usually dominates,
  which is the quantity behind the brief's §1.9 memory warning.
"""

from __future__ import annotations

import itertools
import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from torch_geometric.data import Data

from repro.graphs.models import build_model, canonical_model_name

log = logging.getLogger(__name__)

Transform = Callable[[Data, torch.Generator], Data]
TransformFactory = Callable[[float, float], Transform]  # (alpha, p) -> transform

SWEEP_METRICS = (
    "test_acc",
    "val_acc",
    "train_acc",
    "best_epoch",
    "seconds_per_epoch",
    "peak_memory_bytes",
    "num_nodes_model",
)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` means CUDA when available, else CPU."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def split_masks(data: Data, split: int = 0) -> tuple[Tensor, Tensor, Tensor]:
    """Return the boolean (train, val, test) masks of one split (a column of 2-D masks)."""
    masks = []
    for name in ("train_mask", "val_mask", "test_mask"):
        mask = getattr(data, name, None)
        if mask is None:
            raise ValueError(f"data has no {name}")
        if mask.dim() == 2:
            if not 0 <= split < mask.size(1):
                raise IndexError(f"split {split} out of range: {name} has {mask.size(1)} splits")
            mask = mask[:, split]
        elif mask.dim() != 1:
            raise ValueError(f"{name} must be 1-D or 2-D, got shape {tuple(mask.shape)}")
        masks.append(mask.bool())
    return masks[0], masks[1], masks[2]


def num_splits(data: Data) -> int:
    """Number of splits stored in ``data.train_mask`` (1 for a 1-D mask)."""
    mask = data.train_mask
    return int(mask.size(1)) if mask.dim() == 2 else 1


def accuracy(logits: Tensor, y: Tensor, mask: Tensor) -> float:
    """Accuracy of ``argmax(logits)`` on the nodes of ``mask`` (NaN when the mask is empty)."""
    total = int(mask.sum())
    if total == 0:
        return float("nan")
    return int((logits[mask].argmax(-1) == y[mask]).sum()) / total


def apply_transform(data: Data, transform: Transform | None, generator: torch.Generator) -> Data:
    """Run ``transform`` on a copy of the graph (``x``, ``edge_index`` only) and check the node layout.

    The original N nodes must stay first (rows ``[:N]``); when the transform reports a
    ``slow_node_mask`` it must be False exactly on those rows.
    """
    n = int(data.num_nodes)
    graph = Data(x=data.x, edge_index=data.edge_index, num_nodes=n)
    if transform is None:
        return graph
    out = transform(graph, generator)
    n_out = int(out.x.size(0))
    if n_out < n:
        raise ValueError(f"transform returned {n_out} nodes, fewer than the {n} original ones")
    if not torch.equal(out.x[:n], data.x.to(out.x.device)):
        raise ValueError("transform changed the features of the original nodes (they must stay rows [:N])")
    slow = getattr(out, "slow_node_mask", None)
    if slow is not None and (bool(slow[:n].any()) or not bool(slow[n:].all())):
        raise ValueError("slow_node_mask does not mark exactly the appended rows [N:] as slow nodes")
    return out


def _storage_key(t: Tensor) -> tuple[int, int]:
    storage = t.untyped_storage()
    return storage.data_ptr(), storage.nbytes()


def _accounted_step(step: Callable[[], Tensor], static: Iterable[Tensor]) -> tuple[Tensor, int]:
    """Run ``step`` recording the storages autograd saves; return (loss, bytes of saved + static tensors)."""
    seen: dict[int, int] = {}
    for t in static:
        ptr, nbytes = _storage_key(t)
        seen[ptr] = nbytes

    def pack(t: Tensor) -> Tensor:
        if isinstance(t, Tensor) and t.layout == torch.strided:
            ptr, nbytes = _storage_key(t)
            seen[ptr] = max(seen.get(ptr, 0), nbytes)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = step()
    return loss, sum(seen.values())


def train_node_classifier(
    data: Data,
    model_name: str,
    *,
    transform: Transform | None = None,
    split: int = 0,
    epochs: int = 200,
    lr: float = 0.01,
    weight_decay: float = 5e-4,
    hidden: int = 64,
    depth: int = 2,
    dropout: float = 0.5,
    heads: int = 8,
    seed: int = 0,
    patience: int | None = None,
    device: str | torch.device | None = None,
) -> dict[str, Any]:
    """Train one node classifier, optionally on a Half-Hop upsampled graph; select the epoch by validation.

    Returns a dict with ``train_acc``/``val_acc``/``test_acc`` at the selected epoch,
    ``best_epoch`` (1-based: the number of training epochs behind the selected model),
    ``epochs_run``, ``seconds_per_epoch``, ``transform_seconds``, ``peak_memory_bytes`` and
    ``memory_source`` (see the module docstring), ``num_nodes``/``num_nodes_model``/
    ``num_edges_model`` (original vs. upsampled graph), and ``history`` with per-epoch
    ``loss``, ``train_acc``, ``val_acc`` and ``test_acc`` lists.  ``patience`` stops training
    after that many epochs without a new best validation accuracy.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    dev = resolve_device(device)
    kind = canonical_model_name(model_name)
    n = int(data.num_nodes)
    if data.y is None or data.y.size(0) != n:
        raise ValueError("data.y must hold one label per original node")
    train_mask, val_mask, test_mask = split_masks(data, split)
    if int(train_mask.sum()) == 0:
        raise ValueError(f"split {split} has no training nodes")

    torch.manual_seed(seed)
    generator = torch.Generator(device=data.x.device).manual_seed(seed)
    t0 = time.perf_counter()
    graph = apply_transform(data, transform, generator)
    transform_seconds = time.perf_counter() - t0

    x, edge_index = graph.x.to(dev), graph.edge_index.to(dev)
    y = data.y.to(dev)
    train_mask, val_mask, test_mask = train_mask.to(dev), val_mask.to(dev), test_mask.to(dev)
    num_classes = int(data.y.max()) + 1

    model = build_model(kind, x.size(1), hidden, num_classes, depth=depth, dropout=dropout, heads=heads).to(dev)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    cuda = dev.type == "cuda"

    def train_step() -> Tensor:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = model(x, edge_index)[:n]  # original nodes only: slow nodes have no labels
        loss = F.cross_entropy(logits[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        return loss

    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "val_acc": [], "test_acc": []}
    times: list[float] = []
    peak_memory = 0
    best = {"epoch": 0, "val_acc": -math.inf}
    for epoch in range(1, epochs + 1):
        if cuda:
            torch.cuda.synchronize(dev)
            torch.cuda.reset_peak_memory_stats(dev)
        start = time.perf_counter()
        if epoch == 1 and not cuda:
            static = [x, edge_index, *model.parameters()]
            loss, step_bytes = _accounted_step(train_step, static)
            # gradients and Adam's exp_avg / exp_avg_sq: three more copies of the parameters
            peak_memory = step_bytes + 3 * sum(p.numel() * p.element_size() for p in model.parameters())
        else:
            loss = train_step()
        if cuda:
            torch.cuda.synchronize(dev)
        times.append(time.perf_counter() - start)

        model.eval()
        with torch.no_grad():
            logits = model(x, edge_index)[:n]
        if cuda:
            peak_memory = max(peak_memory, int(torch.cuda.max_memory_allocated(dev)))
        accs = {
            name: accuracy(logits, y, m) for name, m in (("train", train_mask), ("val", val_mask), ("test", test_mask))
        }
        history["loss"].append(float(loss.detach()))
        for name, value in accs.items():
            history[f"{name}_acc"].append(value)
        if accs["val"] > best["val_acc"]:
            best = {"epoch": epoch, "val_acc": accs["val"]}
        elif patience is not None and epoch - best["epoch"] >= patience:
            break

    i = best["epoch"] - 1
    steady = times[1:] if len(times) > 1 else times
    return {
        "model": kind,
        "halfhop": transform is not None,
        "split": int(split),
        "seed": int(seed),
        "train_acc": history["train_acc"][i],
        "val_acc": history["val_acc"][i],
        "test_acc": history["test_acc"][i],
        "best_epoch": best["epoch"],
        "epochs_run": len(history["loss"]),
        "seconds_per_epoch": sum(steady) / len(steady),
        "transform_seconds": transform_seconds,
        "peak_memory_bytes": int(peak_memory),
        "memory_source": "cuda_max_allocated" if cuda else "tensor_accounting",
        "num_nodes": n,
        "num_nodes_model": int(x.size(0)),
        "num_edges_model": int(edge_index.size(1)),
        "history": history,
    }


def sweep_records(
    data: Data,
    models: Sequence[str],
    *,
    transform_factory: TransformFactory | None = None,
    alphas: Sequence[float] = (0.5,),
    ps: Sequence[float] = (1.0,),
    splits: Sequence[int] | None = None,
    seeds: Sequence[int] = (0,),
    model_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
    metrics: Sequence[str] = SWEEP_METRICS,
    **train_kwargs: Any,
) -> list[dict[str, Any]]:
    """Run models x (no Half-Hop, Half-Hop for every alpha in ``alphas`` and p in ``ps``) x splits x seeds.

    ``transform_factory(alpha, p)`` builds the Half-Hop transform (``None`` runs the
    baselines only).  ``splits=None`` uses every split stored in the masks.  ``model_kwargs``
    maps a model name to keyword overrides (e.g. Table 5's per-model lr/dropout/heads);
    ``train_kwargs`` apply to every run.

    Returns tidy rows: ``model``, ``method`` (``GCN`` or ``HH-GCN``...), ``halfhop``,
    ``alpha``/``p`` (``None`` without Half-Hop), ``split``, ``seed``, ``metric``, ``value``
    and ``setting`` (a JSON-ready dict of the run's configuration, for ``tidy_rows``).
    """
    split_ids = list(range(num_splits(data))) if splits is None else [int(s) for s in splits]
    configs: list[tuple[bool, float | None, float | None]] = [(False, None, None)]
    if transform_factory is not None:
        configs += [(True, float(a), float(p)) for a, p in itertools.product(alphas, ps)]
    overrides = {canonical_model_name(k): dict(v) for k, v in (model_kwargs or {}).items()}
    unknown = [m for m in metrics if m not in SWEEP_METRICS]
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; available: {SWEEP_METRICS}")

    rows: list[dict[str, Any]] = []
    for name in models:
        kind = canonical_model_name(name)
        kwargs = {**train_kwargs, **overrides.get(kind, {})}
        for (hh, alpha, p), split, seed in itertools.product(configs, split_ids, seeds):
            transform = transform_factory(alpha, p) if hh else None
            result = train_node_classifier(data, kind, transform=transform, split=split, seed=seed, **kwargs)
            setting = {
                "halfhop": hh,
                "alpha": alpha,
                "p": p,
                "split": split,
                "memory_source": result["memory_source"],
                **{k: v for k, v in kwargs.items() if isinstance(v, (bool, int, float, str)) and k != "device"},
            }
            base = {
                "model": kind,
                "method": f"HH-{kind}" if hh else kind,
                "halfhop": hh,
                "alpha": alpha,
                "p": p,
                "split": split,
                "seed": int(seed),
            }
            for metric in metrics:
                rows.append({**base, "metric": metric, "value": float(result[metric]), "setting": setting})
            log.info(
                "%s split=%d seed=%d: test %.4f (val %.4f, epoch %d)",
                base["method"],
                split,
                seed,
                result["test_acc"],
                result["val_acc"],
                result["best_epoch"],
            )
    return rows


__all__ = [
    "SWEEP_METRICS",
    "Transform",
    "TransformFactory",
    "accuracy",
    "apply_transform",
    "num_splits",
    "resolve_device",
    "split_masks",
    "sweep_records",
    "train_node_classifier",
]
