"""What each Half-Hop rule runs (Azabou et al., ICML 2023): a graph in, tidy records out.

No Snakemake here; a rule script loads the graph (``repro.graphs.datasets.load_graph``), calls one
function below and turns its records into a table with ``repro.report.rows.tidy_rows`` (paper
``halfhop``; the experiment names are those of :mod:`repro.graphs.report`).  Every record has
``method``, ``model``, ``dataset``, ``seed``, ``metric``, ``value`` and a JSON-ready ``setting``
that tells its configuration apart (Half-Hop ``alpha``/``p``, ``split``, augmentation, ...).

* :func:`graph_records` (experiment ``graphs``): size and homophily of a graph.
* :func:`supervised_records` (``supervised``): GCN / GraphSAGE / GAT without Half-Hop and with
  Half-Hop for every ``alpha`` x ``p`` of a grid, over splits and seeds (brief §1.4, §1.6).  Model
  selection: for each model the Half-Hop ``(alpha, p)`` with the highest *validation* accuracy
  (mean over splits and seeds) is chosen and its test accuracy reported as ``test_acc_selected``
  (method ``HH-GCN``...); the baseline's rows get the same metric.  Test accuracy never takes part
  in the choice.  Every configuration's rows are kept as well.
* :func:`cost_records` (``cost``): time and peak memory per training epoch of GCN without Half-Hop,
  with the materialised Half-Hop graph, with the lean first layer (brief §5: slow nodes interpolated
  in hidden space) and with the ``halfhop_propagate`` reference path, plus the slow-node feature
  bytes of the materialised and lean paths (see :func:`cost_records` for what is measured).
* :func:`ssl_records_for` (``ssl``): BGRL and GRACE with the augmentations none / drop / halfhop /
  drop+halfhop, frozen encoder and linear probe (paper Table 3, brief §1.6).
* :func:`homophily_sweep_records` (``homophily_sweep``): contextual SBM graphs over a range of edge
  homophily, each with its graph rows and the supervised sweep (datasets ``csbm_h0.05``, ...); the
  brief's acceptance check §7.2 asks for HH-GCN >= GCN on heterophilic SBMs.

Defaults.  The Half-Hop grid ``alpha in {0, 0.5, 1}`` x ``p in {0.5, 1}`` is a coarse cover of the
paper's search space (its best configs, brief §1.4 Table 5, have alpha near 0 or 1 and p mostly
above 0.5); the training settings are those of :mod:`repro.graphs.supervised` (the usual GCN ones,
not the paper's per-dataset searched values, which a config should pass).  SSL uses Half-Hop with
alpha 0.5 and p 0.75 (brief §1.4) and, by default, 50 epochs: a short default tier, far from
BGRL's 10,000.  The cost stage uses p = 1 and alpha = 0.5, the worst case for memory (every edge
half-hopped, brief §1.9).  The SBM sweep (1,000 nodes, 5 classes, mean degree 10, 32 features of
signal 1.0, homophily 0.05 ... 0.9) is our own choice; the paper has no SBM experiment.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.data import Data

from repro.graphs.csbm import contextual_sbm, random_split_masks
from repro.graphs.halfhop import (
    half_hop,
    half_hop_structure,
    lean_first_layer,
    lean_width,
    slow_feature_memory,
    slow_node_endpoints,
)
from repro.graphs.homophily import class_insensitive_homophily, edge_homophily, node_homophily
from repro.graphs.models import MODEL_NAMES, NodeClassifier, build_model, feature_dropout
from repro.graphs.ssl import AUGMENTS, HH_ALPHA, HH_P, METHODS, PROBE_CS, ssl_records
from repro.graphs.supervised import _accounted_step, resolve_device, split_masks, sweep_records

__all__ = [
    "COST_DEFAULTS",
    "COST_VARIANTS",
    "GRAPH_METRICS",
    "SSL_DEFAULTS",
    "SUPERVISED_DEFAULTS",
    "SWEEP_DEFAULTS",
    "cost_records",
    "graph_records",
    "halfhop_factory",
    "homophily_sweep_records",
    "select_by_validation",
    "selected_records",
    "ssl_records_for",
    "supervised_records",
    "sweep_dataset_name",
]

log = logging.getLogger(__name__)

GRAPH_METRICS = (
    "nodes",
    "edges",
    "classes",
    "features",
    "edge_homophily",
    "node_homophily",
    "class_insensitive_homophily",
)
# Keys of ``options`` forwarded to repro.graphs.supervised.train_node_classifier.
TRAIN_KEYS = ("epochs", "lr", "weight_decay", "hidden", "depth", "dropout", "heads", "patience", "device")
SUPERVISED_DEFAULTS: dict[str, Any] = {
    "models": MODEL_NAMES,
    "alphas": (0.0, 0.5, 1.0),
    "ps": (0.5, 1.0),
    "splits": None,  # every split stored in the masks
    "seeds": (0,),
}
# Keys forwarded to repro.graphs.ssl.train_ssl.
SSL_TRAIN_KEYS = (
    "epochs",
    "lr",
    "weight_decay",
    "layer_sizes",
    "p_edge",
    "p_feat",
    "batchnorm",
    "warmup_epochs",
    "predictor_hidden",
    "proj_hidden",
    "temperature",
    "block_size",
    "device",
)
SSL_DEFAULTS: dict[str, Any] = {
    "methods": METHODS,
    "augments": AUGMENTS,
    "hh_alpha": HH_ALPHA,
    "hh_p": HH_P,
    "splits": None,
    "seeds": (0,),
    "epochs": 50,
}
COST_VARIANTS = ("GCN", "HH-GCN", "HH-GCN-lean", "HH-GCN-propagate")
COST_DEFAULTS: dict[str, Any] = {
    "variants": COST_VARIANTS,
    "alpha": 0.5,
    "p": 1.0,
    "epochs": 20,
    "lr": 0.01,
    "weight_decay": 5e-4,
    "hidden": 64,
    "depth": 2,
    "dropout": 0.5,
    "split": 0,
    "seed": 0,
    "device": None,
    "backend": "reference",  # halfhop_propagate backend: its Triton path has no backward pass
}
SWEEP_DEFAULTS: dict[str, Any] = {
    "homophily": (0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
    "n_nodes": 1000,
    "n_classes": 5,
    "avg_degree": 10.0,
    "n_features": 32,
    "feature_signal": 1.0,
    "graph_seed": 0,
    "n_splits": 3,
    "train": 0.6,  # 60/20/20, the brief's random splits for homophilic graphs (§1.5)
    "val": 0.2,
    "models": ("GCN",),
}


def _opt(options: Mapping[str, Any], defaults: Mapping[str, Any]) -> dict[str, Any]:
    """``defaults`` updated with ``options`` (an explicit ``None`` in ``options`` overrides the default)."""
    return {**defaults, **dict(options or {})}


def _plain(setting: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready copy: tuples become lists, numpy scalars Python numbers."""
    out: dict[str, Any] = {}
    for key, value in setting.items():
        if isinstance(value, tuple):
            value = list(value)
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


# --------------------------------------------------------------------------- graph statistics


def _graph_stats(data: Data) -> dict[str, float]:
    """Statistics of :data:`GRAPH_METRICS`: the loader's ``graph_stats`` when present, else computed here.

    ``edges`` counts the directed edges stored in ``edge_index`` (an undirected graph counts each
    edge twice); the homophily measures are those of :mod:`repro.graphs.homophily`.
    """
    try:
        from repro.graphs.datasets import graph_stats
    except ImportError:
        graph_stats = None
    if graph_stats is not None:
        return {k: float(v) for k, v in graph_stats(data).items() if k in GRAPH_METRICS}
    y = data.y
    return {
        "nodes": float(data.num_nodes),
        "edges": float(data.edge_index.size(1)),
        "classes": float(int(y.max()) + 1),
        "features": float(data.x.size(1)),
        "edge_homophily": edge_homophily(data.edge_index, y),
        "node_homophily": node_homophily(data.edge_index, y),
        "class_insensitive_homophily": class_insensitive_homophily(data.edge_index, y),
    }


def graph_records(data: Data, name: str) -> list[dict[str, Any]]:
    """One row per statistic of :data:`GRAPH_METRICS` (method ``graph``, model ``-``, dataset ``name``)."""
    stats = _graph_stats(data)
    return [
        {"method": "graph", "model": "-", "dataset": name, "seed": 0, "metric": m, "value": stats[m], "setting": {}}
        for m in GRAPH_METRICS
        if m in stats
    ]


# --------------------------------------------------------------------------- supervised sweep


def halfhop_factory(alpha: float, p: float) -> Callable[[Data, torch.Generator], Data]:
    """``(alpha, p) -> transform(data, generator)``: Half-Hop bound to its parameters (supervised.py's protocol)."""
    return lambda d, g: half_hop(d, alpha, p, generator=g)


def select_by_validation(rows: Iterable[Mapping[str, Any]], metric: str = "val_acc") -> dict[str, dict[str, float]]:
    """For each model, the Half-Hop ``(alpha, p)`` with the highest mean ``metric`` over splits and seeds.

    Only Half-Hop rows with ``metric`` (validation accuracy) take part; ties go to the configuration
    met first (the grid order); NaN scores lose.  Returns ``{model: {"alpha", "p", "score"}}``.
    """
    scores: dict[str, dict[tuple[float, float], list[float]]] = {}
    for row in rows:
        if row.get("halfhop") and row["metric"] == metric:
            scores.setdefault(row["model"], {}).setdefault((row["alpha"], row["p"]), []).append(float(row["value"]))
    chosen: dict[str, dict[str, float]] = {}
    for model, configs in scores.items():
        best_key, best_score = None, -math.inf
        for key, values in configs.items():
            finite = [v for v in values if math.isfinite(v)]
            score = float(np.mean(finite)) if finite else -math.inf
            if best_key is None or score > best_score:
                best_key, best_score = key, score
        assert best_key is not None
        chosen[model] = {"alpha": best_key[0], "p": best_key[1], "score": best_score}
    return chosen


def selected_records(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``test_acc_selected`` / ``val_acc_selected`` rows: the baselines and each model's chosen Half-Hop config.

    The choice is :func:`select_by_validation`; one row per (model, split, seed) and metric, whose
    ``setting`` adds ``selection = "validation"`` and the chosen config's mean validation accuracy.
    """
    chosen = select_by_validation(rows)
    out = []
    for row in rows:
        if row["metric"] not in ("test_acc", "val_acc"):
            continue
        pick = chosen.get(row["model"])
        if row["halfhop"] and (pick is None or (row["alpha"], row["p"]) != (pick["alpha"], pick["p"])):
            continue
        setting = {**row.get("setting", {}), "selection": "validation"}
        if row["halfhop"]:
            setting["selected_mean_val_acc"] = pick["score"]
        out.append({**row, "metric": f"{row['metric']}_selected", "setting": setting})
    return out


def supervised_records(data: Data, name: str, options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """The supervised sweep of one graph, plus the validation-selected rows (module docstring).

    ``options``: ``models`` (GCN, SAGE, GAT), ``alphas``, ``ps``, ``splits`` (``None``: all stored),
    ``seeds``, the training settings ``epochs``, ``lr``, ``weight_decay``, ``hidden``, ``depth``,
    ``dropout``, ``heads``, ``patience``, ``device`` (defaults of ``train_node_classifier``) and
    ``model_kwargs`` (per-model overrides, e.g. Table 5's values).
    """
    opts = _opt(options or {}, SUPERVISED_DEFAULTS)
    train_kwargs = {k: opts[k] for k in TRAIN_KEYS if opts.get(k) is not None}
    rows = sweep_records(
        data,
        list(opts["models"]),
        transform_factory=halfhop_factory,
        alphas=[float(a) for a in opts["alphas"]],
        ps=[float(p) for p in opts["ps"]],
        splits=opts["splits"],
        seeds=[int(s) for s in opts["seeds"]],
        model_kwargs=opts.get("model_kwargs"),
        **train_kwargs,
    )
    rows = [{**r, "dataset": name} for r in rows]
    rows += selected_records(rows)
    return [{**r, "setting": _plain(r["setting"])} for r in rows]


# --------------------------------------------------------------------------- cost


class _FirstLayerSwap(nn.Module):
    """A GCN ``NodeClassifier`` whose first layer runs on the ORIGINAL features of a Half-Hop graph.

    ``mode = "lean"``: :func:`repro.graphs.halfhop.lean_first_layer` (slow rows interpolated in
    hidden space, ``E_hh x H``); ``mode = "propagate"``: ``lin(x)`` then
    :func:`repro.kernels.halfhop_propagate.halfhop_propagate` on the GCN-normalised upsampled graph
    (slow rows implicit in the aggregation), plus the bias.  Later layers run on the upsampled
    graph as usual; the output has ``N + E_hh`` rows.  Dropout acts on the ``N`` original input
    rows (the materialised path drops the slow rows' inputs independently): same cost, and the
    same function in eval mode.
    """

    def __init__(self, model: NodeClassifier, graph: Data, mode: str, backend: str = "reference") -> None:
        super().__init__()
        if mode not in ("lean", "propagate"):
            raise ValueError(f"mode must be 'lean' or 'propagate', got {mode!r}")
        self.model, self.graph, self.mode, self.backend = model, graph, mode, backend
        if mode == "propagate":
            from repro.kernels.halfhop_propagate import halfhop_gcn_norm

            self.csr = halfhop_gcn_norm(graph.edge_index, int(graph.slow_node_mask.numel()))
            self.src, self.dst = slow_node_endpoints(graph)

    def _propagate(self, conv: nn.Module, x: Tensor) -> Tensor:
        from repro.kernels.halfhop_propagate import halfhop_propagate

        indptr, col, weight = self.csr
        out = halfhop_propagate(
            conv.lin(x), self.src, self.dst, float(self.graph.hh_alpha), indptr, col, weight, backend=self.backend
        )
        return out if conv.bias is None else out + conv.bias

    def forward(self, x: Tensor) -> Tensor:
        model, edge_index = self.model, self.graph.edge_index
        for i, conv in enumerate(model.convs):
            x = feature_dropout(x, model.dropout, self.training)
            if i == 0:
                x = lean_first_layer(conv, x, self.graph) if self.mode == "lean" else self._propagate(conv, x)
            else:
                x = conv(x, edge_index)
            if i < len(model.convs) - 1:
                x = model.activation(x)
        return x


def _measure_training(
    forward: Callable[[], Tensor],
    model: nn.Module,
    y: Tensor,
    train_mask: Tensor,
    static: Sequence[Tensor],
    *,
    epochs: int,
    lr: float,
    weight_decay: float,
    device: torch.device,
) -> dict[str, Any]:
    """Seconds and peak bytes per training epoch, measured as ``supervised.train_node_classifier`` does.

    ``forward()`` returns logits of the original nodes.  Time: mean wall time of a training step
    (forward, backward, Adam step) over all epochs but the first.  Memory: on CUDA the maximum over
    epochs of ``max_memory_allocated`` (peak reset before each step); elsewhere the tensors alive in
    the first step (``static`` inputs, parameters, what autograd saves, gradients and Adam's two
    moments; each storage once).  No evaluation pass runs here.
    """
    optimizer = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    cuda = device.type == "cuda"

    def step() -> Tensor:
        model.train()
        optimizer.zero_grad(set_to_none=True)
        logits = forward()
        loss = F.cross_entropy(logits[train_mask], y[train_mask])
        loss.backward()
        optimizer.step()
        return loss

    times, peak, loss = [], 0, torch.tensor(float("nan"))
    for epoch in range(epochs):
        if cuda:
            torch.cuda.synchronize(device)
            torch.cuda.reset_peak_memory_stats(device)
        start = time.perf_counter()
        if epoch == 0 and not cuda:
            loss, step_bytes = _accounted_step(step, [*static, *model.parameters()])
            peak = step_bytes + 3 * sum(p.numel() * p.element_size() for p in model.parameters())
        else:
            loss = step()
        if cuda:
            torch.cuda.synchronize(device)
            peak = max(peak, int(torch.cuda.max_memory_allocated(device)))
        times.append(time.perf_counter() - start)
    steady = times[1:] if len(times) > 1 else times
    return {
        "seconds_per_epoch": float(np.mean(steady)),
        "peak_memory_bytes": float(peak),
        "memory_source": "cuda_max_allocated" if cuda else "tensor_accounting",
        "final_loss": float(loss.detach()),
    }


def cost_records(data: Data, name: str, options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Cost of one GCN training epoch without Half-Hop and with three Half-Hop implementations.

    Variants (``options["variants"]``, the ``method`` of each row):

    * ``GCN``: the original graph (``N`` rows of ``F`` features);
    * ``HH-GCN``: the materialised Half-Hop graph (``N + E_hh`` rows of ``F`` features);
    * ``HH-GCN-lean``: the same upsampled graph, first layer by ``lean_first_layer`` from the ``N``
      original rows (slow rows interpolated in hidden space, ``E_hh x H``);
    * ``HH-GCN-propagate``: first layer by ``halfhop_propagate`` (``options["backend"]``, default
      its torch reference, which materialises the hidden slow rows and the messages; its Triton
      path has no backward pass).

    The three Half-Hop variants use the same upsampled graph (same ``alpha``, ``p``, ``seed``) and
    the same initial weights.  Metrics: ``seconds_per_epoch`` and ``peak_memory_bytes`` (see
    :func:`_measure_training`), ``num_nodes_model``/``num_edges_model``, ``transform_seconds``
    (upsampling, once), and for the Half-Hop variants ``slow_feature_bytes`` from
    :func:`repro.graphs.halfhop.slow_feature_memory` (the ``E_hh x F`` input rows for ``HH-GCN``,
    the ``E_hh x H`` hidden rows for the lean and reference paths) and, on the lean row,
    ``slow_feature_ratio`` (materialised / lean, about ``F / H``).  ``options``: ``alpha``, ``p``,
    ``epochs``, ``lr``, ``weight_decay``, ``hidden``, ``depth``, ``dropout``, ``split``, ``seed``,
    ``device`` (``None``: CUDA when available), ``backend``.
    """
    opts = _opt(options or {}, COST_DEFAULTS)
    unknown = [v for v in opts["variants"] if v not in COST_VARIANTS]
    if unknown:
        raise ValueError(f"unknown cost variants {unknown}; expected some of {COST_VARIANTS}")
    dev = resolve_device(opts["device"])
    alpha, p, seed = float(opts["alpha"]), float(opts["p"]), int(opts["seed"])
    n, num_classes = int(data.num_nodes), int(data.y.max()) + 1
    train_mask = split_masks(data, int(opts["split"]))[0].to(dev)
    y = data.y.to(dev)
    setting = _plain(
        {
            k: opts[k]
            for k in ("alpha", "p", "epochs", "lr", "weight_decay", "hidden", "depth", "dropout", "split", "backend")
        }
    )
    setting["device"] = dev.type

    rows: list[dict[str, Any]] = []
    for variant in opts["variants"]:
        torch.manual_seed(seed)
        model = build_model(
            "GCN", data.x.size(1), int(opts["hidden"]), num_classes, depth=int(opts["depth"]), dropout=opts["dropout"]
        ).to(dev)
        t0 = time.perf_counter()
        if variant == "GCN":
            x, edge_index = data.x.to(dev), data.edge_index.to(dev)
            num_nodes, static = n, [x, edge_index]

            def forward(x=x, edge_index=edge_index, model=model) -> Tensor:
                return model(x, edge_index)

        elif variant == "HH-GCN":
            graph = half_hop(Data(x=data.x, edge_index=data.edge_index), alpha, p, generator=seed)
            x, edge_index = graph.x.to(dev), graph.edge_index.to(dev)
            num_nodes, static = int(x.size(0)), [x, edge_index]

            def forward(x=x, edge_index=edge_index, model=model) -> Tensor:
                return model(x, edge_index)[:n]

        else:
            graph = half_hop_structure(data.edge_index, n, alpha, p, generator=seed).to(dev)
            x = data.x.to(dev)
            wrapped = _FirstLayerSwap(model, graph, variant.rsplit("-", 1)[1], backend=opts["backend"])
            num_nodes, edge_index = int(graph.num_nodes), graph.edge_index
            static = [x, edge_index, *(wrapped.csr if variant == "HH-GCN-propagate" else ())]

            def forward(x=x, wrapped=wrapped) -> Tensor:
                return wrapped(x)[:n]

        transform_seconds = time.perf_counter() - t0
        measured = _measure_training(
            forward,
            model,
            y,
            train_mask,
            static,
            epochs=int(opts["epochs"]),
            lr=float(opts["lr"]),
            weight_decay=float(opts["weight_decay"]),
            device=dev,
        )
        values: dict[str, float] = {
            "seconds_per_epoch": measured["seconds_per_epoch"],
            "peak_memory_bytes": measured["peak_memory_bytes"],
            "num_nodes_model": float(num_nodes),
            "num_edges_model": float(edge_index.size(1)),
        }
        if variant != "GCN":
            values["transform_seconds"] = transform_seconds
            memory = slow_feature_memory(num_nodes - n, data.x.size(1), lean_width(model.convs[0]), data.x.dtype)
            values["slow_feature_bytes"] = float(
                memory.materialised_bytes if variant == "HH-GCN" else memory.lean_bytes
            )
            if variant == "HH-GCN-lean":
                values["slow_feature_ratio"] = memory.ratio
        row_setting = {**setting, "variant": variant, "memory_source": measured["memory_source"]}
        rows += [
            {
                "method": variant,
                "model": "GCN",
                "dataset": name,
                "seed": seed,
                "metric": metric,
                "value": float(value),
                "setting": row_setting,
            }
            for metric, value in values.items()
        ]
        log.info(
            "%s %s: %.4f s/epoch, peak %.1f MiB (%s)",
            name,
            variant,
            values["seconds_per_epoch"],
            values["peak_memory_bytes"] / 2**20,
            measured["memory_source"],
        )
        del forward, model, x, edge_index, static
        if dev.type == "cuda":
            torch.cuda.empty_cache()
    return rows


# --------------------------------------------------------------------------- self-supervised


def ssl_records_for(data: Data, name: str, options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """BGRL / GRACE x augmentations, linear probe on every split (``repro.graphs.ssl.ssl_records``).

    ``options``: ``methods``, ``augments`` (none, drop, halfhop, drop+halfhop), ``hh_alpha``,
    ``hh_p``, ``splits``, ``seeds``, ``probe_cs`` (default 2^-10..2^10), ``method_kwargs`` and the
    training settings of ``train_ssl`` (``epochs`` default 50 here, ``lr``, ``layer_sizes``, ``p_edge``,
    ``p_feat``, ...).  Rows get ``dataset = name``; the augmentation is in each row's ``setting``.
    """
    opts = _opt(options or {}, SSL_DEFAULTS)
    train_kwargs = {k: opts[k] for k in SSL_TRAIN_KEYS if opts.get(k) is not None}
    rows = ssl_records(
        data,
        methods=list(opts["methods"]),
        augments=list(opts["augments"]),
        transform_factory=halfhop_factory,
        hh_alpha=float(opts["hh_alpha"]),
        hh_p=float(opts["hh_p"]),
        splits=opts["splits"],
        seeds=[int(s) for s in opts["seeds"]],
        method_kwargs=opts.get("method_kwargs"),
        probe_cs=[float(c) for c in opts.get("probe_cs") or PROBE_CS],
        **train_kwargs,
    )
    return [{**r, "dataset": name, "setting": _plain(r["setting"])} for r in rows]


# --------------------------------------------------------------------------- homophily sweep


def sweep_dataset_name(homophily: float) -> str:
    """``csbm_h0.05`` for a target homophily of 0.05."""
    return f"csbm_h{float(homophily):g}"


def homophily_sweep_records(options: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Contextual SBM graphs over ``options["homophily"]``: graph rows and the supervised sweep of each.

    For each target homophily a graph is drawn with :func:`repro.graphs.csbm.contextual_sbm`
    (``n_nodes``, ``n_classes``, ``avg_degree``, ``n_features``, ``feature_signal``, seed
    ``graph_seed``, the same for every value) with ``n_splits`` random ``train``/``val``/test masks;
    then :func:`graph_records` (plus ``target_homophily``) and :func:`supervised_records` with the
    remaining options (``models`` default GCN only, ``alphas``, ``ps``, ``seeds``, training settings).
    """
    opts = _opt(options or {}, SWEEP_DEFAULTS)
    graph_keys = ("n_nodes", "n_classes", "avg_degree", "n_features", "feature_signal")
    graph_setting = {k: opts[k] for k in graph_keys}
    supervised_opts = {k: v for k, v in opts.items() if k not in SWEEP_DEFAULTS or k == "models"}
    rows: list[dict[str, Any]] = []
    for h in opts["homophily"]:
        name = sweep_dataset_name(h)
        data = contextual_sbm(
            int(opts["n_nodes"]),
            int(opts["n_classes"]),
            float(opts["avg_degree"]),
            float(h),
            n_features=int(opts["n_features"]),
            feature_signal=float(opts["feature_signal"]),
            seed=int(opts["graph_seed"]),
        )
        data.train_mask, data.val_mask, data.test_mask = random_split_masks(
            data.num_nodes,
            float(opts["train"]),
            float(opts["val"]),
            int(opts["n_splits"]),
            seed=int(opts["graph_seed"]),
        )
        extra = {**graph_setting, "target_homophily": float(h), "graph_seed": int(opts["graph_seed"])}
        graph_rows = graph_records(data, name)
        graph_rows.append({**graph_rows[0], "metric": "target_homophily", "value": float(h)})
        rows += [{**r, "setting": _plain(extra)} for r in graph_rows]
        rows += [
            {**r, "setting": {**r["setting"], **_plain(extra)}} for r in supervised_records(data, name, supervised_opts)
        ]
        log.info(
            "%s: measured edge homophily %.3f",
            name,
            next(r["value"] for r in graph_rows if r["metric"] == "edge_homophily"),
        )
    return rows
