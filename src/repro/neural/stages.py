"""What each Swap-VAE / MYOW rule runs (Liu et al., NeurIPS 2021; Azabou et al., 2021): data in, arrays
and tidy records out.

No Snakemake here; a rule script calls one function below and turns its records into tables with
``repro.report.rows.tidy_rows`` (paper ``swap_vae`` or ``myow``).  Every record has ``experiment``,
``method``, ``model``, ``dataset``, ``seed``, ``metric``, ``value`` and a JSON-ready ``setting``.
``tidy_rows`` takes the experiment as an argument, so a script groups the records by their
``experiment`` key (one function can return several experiments).

* :func:`load_trials`: a :class:`~repro.neural.trials.TrialData` from a named loader (``reach``: our
  synthetic centre-out reaching session, brief ``shared/papers/ssl_graph_neural.md`` §4; ``swap_synthetic``:
  the paper's synthetic benchmark, §2.5; ``reach_pickle``: a monkey session of the MYOW repository;
  ``rodent_npy`` / ``rodent_like``: MYOW's rodent sleep recording / our stand-in, §3.6, §4).
* :func:`train_neural` (experiment ``training``): train one model (Swap-VAE, VAE, beta-VAE, MYOW, BYOL,
  or none for ``raw`` counts) and return the representation of every bin plus the labels the
  evaluation and the plots need, so that the ``.npz`` of the arrays is self-contained.
* :func:`evaluate_neural` (experiments ``decoding`` and ``disentanglement``): frozen-representation
  probes of :mod:`repro.neural.probes`, hyperparameters chosen on validation (brief §2.7, §3.7, §7.5).
* :func:`image_records` (experiments ``images`` and ``images_training``): MYOW vs BYOL on an image set
  (Fashion-MNIST in the default tier; the paper's CIFAR-10 setting, brief §3.5-§3.7).

Metrics (value units: fractions, R^2, losses as logged):

============================  ================================================================
experiment / metric           meaning
============================  ================================================================
training / <history key>      per-epoch training history (``setting.epoch``); Swap-VAE family:
                              ``total``, ``rec_swap``, ``rec_orig``, ``kl``, ``align``; MYOW/BYOL:
                              ``loss``, ``l_aug``, ``l_mined``, ``tau``, ``mined_weight``, ``lr``,
                              ``mined_frac``, ``mined_agreement``, ``seconds`` (keys whose values
                              are all NaN, e.g. ``l_mined`` of BYOL, are left out)
training / train_seconds      wall-clock seconds of the whole training (0-ish for ``raw``)
training / representation_dim width of the representation
decoding / direction_acc      test accuracy of the (cos, sin) probe (angular error < pi/C)
decoding / direction_delta_acc  test delta-accuracy (error < 1.5 pi/C)
decoding / val_acc            validation accuracy at the chosen weight decay
decoding / direction_weight_decay  the weight decay chosen on validation
decoding / velocity_r2        ridge R^2 of hand velocity (only when the data have velocity)
decoding / knn_acc            cosine k-NN accuracy of the direction class (of the state for ``task`` states)
decoding / state_acc          ``task`` states (e.g. rodent sleep): test accuracy of the class-balanced
                              multinomial probe (weight decay chosen on validation accuracy)
decoding / state_f1           its test weighted F1 (per-class F1 weighted by support)
decoding / val_f1             its validation weighted F1 at the chosen weight decay
decoding / state_weight_decay the weight decay chosen on validation
disentanglement / acc_content, acc_style, delta_acc_content, delta_acc_style, r2_content,
                              r2_style (the r2 rows only with velocity): direction / velocity
                              decoded from the content block alone vs the style block alone
images / linear_probe_acc     test accuracy of the multinomial linear probe (wd on validation)
images / linear_probe_val_acc its validation accuracy
images / knn_acc              cosine k-NN test accuracy
images_training / <key>       per-epoch history of ``train_myow_images``
============================  ================================================================

The decoding ``setting`` holds ``n_classes`` (chance is ``1 / n_classes``), ``task`` (``direction`` or
``states``; the state rows also ``balanced_samples``) and ``speed_threshold`` (``None`` when no speed
filter was applied).
"""

from __future__ import annotations

import inspect
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repro.neural.myow import embed_neural, train_myow_neural
from repro.neural.myow_images import embed_images, train_myow_images
from repro.neural.probes import (
    class_probe,
    direction_probe,
    disentanglement,
    knn_accuracy,
    speed_mask,
    velocity_r2,
)
from repro.neural.reach import reach_population
from repro.neural.reach_pickle import reach_pickle
from repro.neural.rodent import DEFAULT_BLOCK_BINS, RATES_FILE, STATES_FILE, rodent_like, rodent_sleep
from repro.neural.swap_synthetic import swap_synthetic
from repro.neural.swapvae import train_swapvae
from repro.neural.trials import TASKS, TrialData

__all__ = [
    "IMAGE_MODELS",
    "LOADERS",
    "METHOD_NAMES",
    "NEURAL_MODELS",
    "SWAP_FAMILY",
    "evaluate_neural",
    "image_records",
    "load_trials",
    "train_neural",
]

NEURAL_MODELS = ("swap_vae", "vae", "beta_vae", "myow", "byol", "raw")
SWAP_FAMILY = ("swap_vae", "vae", "beta_vae")
IMAGE_MODELS = ("myow", "byol")
#: model id -> method name as displayed
METHOD_NAMES = {
    "swap_vae": "Swap-VAE",
    "vae": "VAE",
    "beta_vae": "beta-VAE",
    "myow": "MYOW",
    "byol": "BYOL",
    "raw": "raw counts",
}
LABEL_KEYS = ("direction", "angle", "velocity", "split", "trial", "time")


def _reach(**options: Any) -> TrialData:
    return reach_population(**options)[0]


def _swap_synthetic(**options: Any) -> TrialData:
    return swap_synthetic(**options)  # type: ignore[return-value]  # return_info is not accepted


def _reach_pickle(*, artifact: str, resources_dir: str = "resources", **options: Any) -> TrialData:
    """Paper tier: a processed MYOW-repository session in ``<resources_dir>/artifacts/<artifact>``."""
    return reach_pickle(Path(resources_dir) / "artifacts" / artifact, **options)


def _reach_pickle_signature(
    artifact: str, resources_dir: str = "resources", *, bin_s=0.1, test=0.2, val=0.1, n_directions=8
):
    """The options loader ``reach_pickle`` accepts (for the unknown-key check)."""


def artifact_names(artifact: str | list[str] | tuple[str, ...]) -> list[str]:
    """A loader's ``artifact`` option as a list of artifact names (one name or a list of names)."""
    names = [artifact] if isinstance(artifact, str) else list(artifact)
    if not names or not all(isinstance(n, str) and n for n in names):
        raise ValueError(f"artifact must be an artifact name or a non-empty list of names, got {artifact!r}")
    return names


def _rodent_npy(*, artifact, resources_dir: str = "resources", **options: Any) -> TrialData:
    """Paper tier: MYOW's rodent recording, its two ``.npy`` files in ``<resources_dir>/artifacts/<artifact>``
    (one artifact folder holding both, or a list of artifacts, e.g. one per file)."""
    folders = [Path(resources_dir) / "artifacts" / name for name in artifact_names(artifact)]
    return rodent_sleep(folders, **options)


def _rodent_npy_signature(
    artifact,
    resources_dir="resources",
    *,
    rates_file=RATES_FILE,
    states_file=STATES_FILE,
    split=(0.7, 0.1, 0.2),
    block_bins=DEFAULT_BLOCK_BINS,
    n_states=3,
):
    """The options loader ``rodent_npy`` accepts (for the unknown-key check)."""


#: loader name -> (function building the TrialData, the function whose keyword arguments are accepted,
#: keywords refused)
LOADERS: dict[str, tuple[Callable[..., TrialData], Callable[..., Any], frozenset[str]]] = {
    "reach": (_reach, reach_population, frozenset()),
    "swap_synthetic": (_swap_synthetic, swap_synthetic, frozenset({"return_info"})),
    "reach_pickle": (_reach_pickle, _reach_pickle_signature, frozenset()),
    "rodent_npy": (_rodent_npy, _rodent_npy_signature, frozenset()),
    "rodent_like": (rodent_like, rodent_like, frozenset()),
}

#: keys of ``train_neural`` options a model does not forward (set by the stage itself)
_FIXED = {"swap_vae": {"data", "variant"}, "myow": {"data", "mined"}}
RAW_OPTIONS = ("seed", "min_std")
EVAL_OPTIONS = (
    "speed_threshold",
    "probe_epochs",
    "epochs",
    "weight_decays",
    "knn_k",
    "seed",
    "lr",
    "batch_size",
    "balanced_samples",
)
#: state-classification probe: rows drawn per pass by the class-balanced sampler (myow-neuro, brief §3.7)
BALANCED_SAMPLES = 5000
IMAGE_OWN_OPTIONS = ("n_train", "n_val", "n_test", "probe_epochs", "weight_decays", "knn_k", "seed")


# --------------------------------------------------------------------------------------------- helpers
def _accepted(fn: Callable[..., Any], exclude: set[str] | frozenset[str] = frozenset()) -> list[str]:
    params = inspect.signature(fn).parameters.values()
    return sorted(
        p.name
        for p in params
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY) and p.name not in exclude and not p.name.startswith("_")
    )


def _check_keys(options: Mapping[str, Any], accepted, what: str) -> None:
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise ValueError(f"{what}: unknown option(s) {unknown}; accepted: {sorted(accepted)}")


def _tuples(value: Any) -> Any:
    """Lists (e.g. from YAML) as tuples, recursively: the library functions expect tuples."""
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def _json_value(value: Any) -> Any:
    if isinstance(value, (bool, str)) or value is None:
        return value
    if isinstance(value, (int, float)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (list, tuple)):
        return [_json_value(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _json_value(v) for k, v in value.items()}
    return str(value)


def _plain(setting: Mapping[str, Any]) -> dict[str, Any]:
    """JSON-ready copy of ``setting`` (tuples as lists, numpy scalars as numbers, callables left out,
    other objects such as devices as strings)."""
    return {str(k): _json_value(v) for k, v in setting.items() if not callable(v) or isinstance(v, type)}


def _record(experiment: str, model: str, dataset: str, seed: int, metric: str, value: float, setting) -> dict:
    return {
        "experiment": experiment,
        "method": METHOD_NAMES.get(model, model),
        "model": model,
        "dataset": dataset,
        "seed": int(seed),
        "metric": metric,
        "value": float(value),
        "setting": _plain(setting),
    }


def _history_records(
    history: Mapping[str, list[float]],
    experiment: str,
    model: str,
    dataset: str,
    seed: int,
    base: Mapping[str, Any],
) -> list[dict]:
    """One record per epoch and history key; ``epoch`` / ``step_loss`` (per step) and all-NaN keys skipped."""
    lengths = [len(v) for k, v in history.items() if k not in ("epoch", "step_loss")]
    n_epochs = max(lengths, default=0)
    rows = []
    for key, values in history.items():
        if key in ("epoch", "step_loss") or len(values) != n_epochs:
            continue
        if all(isinstance(v, float) and math.isnan(v) for v in values):
            continue
        for epoch, value in enumerate(values):
            rows.append(_record(experiment, model, dataset, seed, key, value, {**base, "epoch": epoch}))
    return rows


def _np(x: torch.Tensor) -> np.ndarray:
    return x.detach().cpu().numpy()


# --------------------------------------------------------------------------------------------- data
def load_trials(loader: str, options: Mapping[str, Any] | None = None) -> TrialData:
    """The :class:`TrialData` of a loader of :data:`LOADERS`: ``reach`` (``reach_population(**options)[0]``),
    ``swap_synthetic`` (``swap_synthetic(**options)``), ``reach_pickle`` (paper tier, option ``artifact``),
    ``rodent_npy`` (paper tier: MYOW's rodent sleep recording, option ``artifact`` = one artifact name
    or a list, :func:`repro.neural.rodent.rodent_sleep`) or ``rodent_like`` (its offline stand-in,
    :func:`repro.neural.rodent.rodent_like`).  Lists in ``options`` are passed as tuples.  An unknown
    loader or option raises ``ValueError`` naming it and listing the accepted ones."""
    if loader not in LOADERS:
        raise ValueError(f"unknown loader {loader!r}; accepted: {sorted(LOADERS)}")
    build, signature_of, refused = LOADERS[loader]
    opts = dict(options or {})
    _check_keys(opts, _accepted(signature_of, refused), f"loader {loader!r}")
    return build(**{k: _tuples(v) for k, v in opts.items()})


# --------------------------------------------------------------------------------------------- training
def _encode_swapvae(model, counts: torch.Tensor, batch_size: int = 4096) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    dev = next(model.parameters()).device
    cs, ss = [], []
    with torch.no_grad():
        for start in range(0, counts.shape[0], batch_size):
            c, mu, _ = model.encode(counts[start : start + batch_size].to(dev))
            cs.append(c.cpu())
            ss.append(mu.cpu())
    return torch.cat(cs).numpy().astype(np.float32), torch.cat(ss).numpy().astype(np.float32)


def _raw_representation(data: TrialData, min_std: float = 1e-3) -> np.ndarray:
    """Counts z-scored with the training rows' mean and std; units with training std < ``min_std`` dropped."""
    x = data.counts.float()
    train = x[data.split == 0]
    if train.shape[0] == 0:
        raise ValueError("no training rows (split == 0)")
    std = train.std(0) if train.shape[0] > 1 else torch.zeros(x.shape[1])
    keep = std >= min_std
    if not bool(keep.any()):
        raise ValueError("every unit has training std < min_std")
    return _np((x[:, keep] - train.mean(0)[keep]) / std[keep]).astype(np.float32)


def train_neural(
    data: TrialData, model: str, dataset: str, options: Mapping[str, Any] | None = None
) -> tuple[dict[str, np.ndarray], list[dict]]:
    """Train ``model`` (one of :data:`NEURAL_MODELS`) on the training rows of ``data``.

    * ``swap_vae`` / ``vae`` / ``beta_vae``: :func:`repro.neural.swapvae.train_swapvae` with
      ``variant=model``; representation ``[c, mu_s]``, plus ``content`` (``[B, 0]`` for the VAE
      baselines, which have no content block by default) and ``style`` (``mu_s``).
    * ``myow`` / ``byol``: :func:`repro.neural.myow.train_myow_neural` with ``mined=True`` / ``False``;
      representation = online encoder output.
    * ``raw``: no training; the counts z-scored with training statistics (options ``seed``, ``min_std``).

    ``options`` are forwarded to the training function (``seed`` defaults to 0, ``progress`` to True);
    a key it does not accept raises ``ValueError``.  Returns ``(arrays, records)``: ``arrays`` has one
    row per bin of ``data`` (eval mode) -- ``representation [B, d]`` float32, the Swap-VAE family's
    ``content`` / ``style``, the labels ``direction``, ``angle``, ``velocity``, ``split``, ``trial``,
    ``time`` and the 0-d arrays ``n_classes``, ``task`` (``data.task``: ``"direction"`` or ``"states"``,
    which evaluation :func:`evaluate_neural` runs) and ``seed``; ``records`` are experiment
    ``training`` rows (module docstring).
    """
    if model not in NEURAL_MODELS:
        raise ValueError(f"unknown model {model!r}; accepted: {list(NEURAL_MODELS)}")
    opts = dict(options or {})
    seed = int(opts.get("seed", 0))
    arrays: dict[str, np.ndarray] = {}
    t0 = time.perf_counter()
    if model in SWAP_FAMILY:
        _check_keys(opts, _accepted(train_swapvae, _FIXED["swap_vae"]), f"train_swapvae ({model})")
        kw = {"progress": True, **{k: _tuples(v) for k, v in opts.items()}, "seed": seed}
        net, history = train_swapvae(data, variant=model, **kw)
        seconds = time.perf_counter() - t0
        content, style = _encode_swapvae(net, data.counts)
        arrays.update(representation=np.concatenate([content, style], axis=1), content=content, style=style)
        base = {"variant": model, **{k: v for k, v in opts.items() if k not in ("seed", "progress")}}
    elif model in ("myow", "byol"):
        _check_keys(opts, _accepted(train_myow_neural, _FIXED["myow"]), f"train_myow_neural ({model})")
        kw = {"progress": True, **{k: _tuples(v) for k, v in opts.items()}, "seed": seed}
        net, history = train_myow_neural(data, mined=model == "myow", **kw)
        seconds = time.perf_counter() - t0
        arrays["representation"] = _np(embed_neural(net, data)).astype(np.float32)
        base = {"mined": model == "myow", **{k: v for k, v in opts.items() if k not in ("seed", "progress")}}
    else:
        _check_keys(opts, RAW_OPTIONS, "raw")
        arrays["representation"] = _raw_representation(data, float(opts.get("min_std", 1e-3)))
        history, seconds = {}, time.perf_counter() - t0
        base = {k: v for k, v in opts.items() if k != "seed"}

    for key in LABEL_KEYS:
        arrays[key] = _np(getattr(data, key))
    arrays["n_classes"] = np.asarray(int(data.n_classes), dtype=np.int64)
    arrays["task"] = np.asarray(data.task)  # 0-d unicode array: the evaluation reads it (no pickle needed)
    arrays["seed"] = np.asarray(seed, dtype=np.int64)

    records = _history_records(history, "training", model, dataset, seed, base)
    records.append(_record("training", model, dataset, seed, "train_seconds", seconds, base))
    dim = arrays["representation"].shape[1]
    records.append(_record("training", model, dataset, seed, "representation_dim", dim, base))
    return arrays, records


# --------------------------------------------------------------------------------------------- evaluation
def evaluate_neural(
    reps: Mapping[str, np.ndarray], model: str, dataset: str, options: Mapping[str, Any] | None = None
) -> list[dict]:
    """Probe the frozen representation of :func:`train_neural`'s arrays.

    Direction: :func:`repro.neural.probes.direction_probe` (a linear (cos, sin) head per weight decay,
    chosen on validation; brief §2.7, §3.7); ``n_classes`` from the arrays (else ``direction.max() + 1``).
    When the data have non-zero velocity, only bins with hand speed > ``speed_threshold`` (default 5,
    the Swap-VAE protocol, brief §2.7; ``None`` disables) enter any probe (train, validation and
    test), and ``velocity_r2`` (ridge) is reported.  ``knn_acc``: cosine k-NN (``knn_k``, default 5) of
    the direction class, training bins as the reference set.  For the Swap-VAE family with a content
    block, the ``disentanglement`` rows decode from content alone and style alone.

    Labelled states (the arrays' ``task`` is ``"states"``, saved by :func:`train_neural` from
    ``TrialData.task``; e.g. rodent sleep, brief §3.7): instead of the angular probe, a multinomial
    linear probe of the ``direction`` labels (:func:`repro.neural.probes.class_probe`, the same
    weight-decay sweep chosen on validation accuracy) trained **class-balanced** with weighted
    sampling (each pass draws ``balanced_samples`` rows, default 5000, with replacement, every class
    equally likely: myow-neuro's ``WeightedRandomSampler``; ``balanced_samples: null`` trains on plain
    shuffled passes); rows ``state_acc``, ``state_f1`` (weighted F1), ``val_acc``, ``val_f1``,
    ``state_weight_decay`` and ``knn_acc``.  Arrays without ``task`` are ``"direction"``.

    Options: ``speed_threshold``, ``probe_epochs`` (alias ``epochs``; default 100), ``weight_decays``
    (default the 20 values ``2**[-10..9]``), ``knn_k``, ``lr`` (0.01), ``batch_size`` (512), ``seed``
    (default: the arrays' ``seed``, else 0; also the probes' seed), ``balanced_samples`` (states only).
    """
    if model not in NEURAL_MODELS:
        raise ValueError(f"unknown model {model!r}; accepted: {list(NEURAL_MODELS)}")
    opts = dict(options or {})
    _check_keys(opts, EVAL_OPTIONS, "evaluate_neural")
    if "epochs" in opts and "probe_epochs" in opts:
        raise ValueError("give either 'probe_epochs' or its alias 'epochs', not both")
    task = str(np.asarray(reps["task"])) if "task" in reps else "direction"
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r} in the representation arrays; accepted: {list(TASKS)}")
    needed = ("representation", "direction", "split") + (("angle",) if task == "direction" else ())
    missing = [k for k in needed if k not in reps]
    if missing:
        raise ValueError(f"representation arrays lack {missing}")
    seed = int(opts.get("seed", int(reps["seed"]) if "seed" in reps else 0))
    threshold = opts.get("speed_threshold", 5.0)
    probe_epochs = int(opts.get("probe_epochs", opts.get("epochs", 100)))
    wds = opts.get("weight_decays")
    k = int(opts.get("knn_k", 5))
    probe_kw = dict(
        weight_decays=None if wds is None else [float(w) for w in wds],
        epochs=probe_epochs,
        lr=float(opts.get("lr", 0.01)),
        batch_size=int(opts.get("batch_size", 512)),
        seed=seed,
    )

    z = torch.as_tensor(np.asarray(reps["representation"], dtype=np.float32))
    direction = torch.as_tensor(np.asarray(reps["direction"], dtype=np.int64))
    b = z.shape[0]
    angle = torch.as_tensor(np.asarray(reps.get("angle", np.full(b, np.nan)), dtype=np.float32))
    split = torch.as_tensor(np.asarray(reps["split"], dtype=np.int64))
    velocity = torch.as_tensor(np.asarray(reps.get("velocity", np.zeros((b, 2))), dtype=np.float32))
    n_classes = int(reps["n_classes"]) if "n_classes" in reps else int(direction.max()) + 1
    has_velocity = bool((velocity != 0).any())
    applied = threshold if (has_velocity and threshold is not None) else None
    keep = speed_mask(velocity, float(applied)) if applied is not None else torch.ones(b, dtype=torch.bool)
    masks = [(split == i) & keep for i in range(3)]
    if not bool(masks[0].any()) or not bool(masks[2].any()):
        raise ValueError(
            f"no training or test bins left (speed_threshold {applied}): "
            f"{int(masks[0].sum())} train, {int(masks[2].sum())} test"
        )
    tr, va, te = masks
    setting = {
        "n_classes": n_classes,
        "task": task,
        "speed_threshold": applied,
        "probe_epochs": probe_epochs,
        "weight_decays": "2**[-10..9]" if wds is None else [float(w) for w in wds],
        "knn_k": k,
    }

    def rec(experiment: str, metric: str, value: float) -> dict:
        return _record(experiment, model, dataset, seed, metric, value, setting)

    if task == "states":
        balanced = opts.get("balanced_samples", BALANCED_SAMPLES)
        setting["balanced_samples"] = None if balanced is None else int(balanced)
        probe = class_probe(
            z[tr],
            direction[tr],
            z[va],
            direction[va],
            z[te],
            direction[te],
            n_classes=n_classes,
            balanced=balanced is not None,
            samples_per_epoch=None if balanced is None else int(balanced),
            **probe_kw,
        )
        knn = knn_accuracy(z[tr], direction[tr], z[te], direction[te], k=k)
        return [
            rec("decoding", "state_acc", probe["acc"]),
            rec("decoding", "state_f1", probe["f1"]),
            rec("decoding", "val_acc", probe["val_acc"]),
            rec("decoding", "val_f1", probe["val_f1"]),
            rec("decoding", "state_weight_decay", probe["weight_decay"]),
            rec("decoding", "knn_acc", knn),
        ]
    if not bool(torch.isfinite(angle[tr | va | te]).all()):
        raise ValueError("task 'direction' needs finite angles; these arrays have NaN angles (task 'states'?)")

    probe = direction_probe(z[tr], angle[tr], z[va], angle[va], z[te], angle[te], n_classes, **probe_kw)
    out = [
        rec("decoding", "direction_acc", probe["acc"]),
        rec("decoding", "direction_delta_acc", probe["delta_acc"]),
        rec("decoding", "val_acc", probe["val_acc"]),
        rec("decoding", "direction_weight_decay", probe["weight_decay"]),
    ]
    if has_velocity:
        r2 = velocity_r2(z[tr], velocity[tr], z[va], velocity[va], z[te], velocity[te], seed=seed)
        out.append(rec("decoding", "velocity_r2", r2["r2"]))
    out.append(rec("decoding", "knn_acc", knn_accuracy(z[tr], direction[tr], z[te], direction[te], k=k)))

    content = reps.get("content")
    if model in SWAP_FAMILY and content is not None and np.asarray(content).shape[1] > 0:
        c = torch.as_tensor(np.asarray(content, dtype=np.float32))
        s = torch.as_tensor(np.asarray(reps["style"], dtype=np.float32))
        vel = [velocity[m] for m in masks] if has_velocity else [None, None, None]
        dis = disentanglement(
            c[tr], s[tr], c[va], s[va], c[te], s[te], angle[tr], angle[va], angle[te], n_classes, *vel, **probe_kw
        )
        for metric in ("acc_content", "acc_style", "delta_acc_content", "delta_acc_style"):
            out.append(rec("disentanglement", metric, dis[metric]))
        if has_velocity:
            out += [rec("disentanglement", m, dis[m]) for m in ("r2_content", "r2_style")]
    return out


# --------------------------------------------------------------------------------------------- images
def _stratified(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A permutation whose every prefix holds the classes in (nearly) their overall proportions."""
    key = np.empty(labels.shape[0])
    for cls in np.unique(labels):
        idx = np.flatnonzero(labels == cls)
        ranks = rng.permutation(idx.size)
        key[idx] = (ranks + rng.random(idx.size)) / idx.size
    return np.argsort(key, kind="stable")


def _take(n: Any, available: int, name: str) -> int:
    if n is None:
        return available
    n = int(n)
    if n < 1:
        raise ValueError(f"{name} must be >= 1, got {n}")
    return min(n, available)


def image_records(
    arrays: Mapping[str, np.ndarray], model: str, dataset: str, options: Mapping[str, Any] | None = None
) -> list[dict]:
    """MYOW (``model="myow"``) or BYOL (``"byol"``) on images, evaluated with frozen-encoder probes.

    ``arrays``: ``x_train``, ``y_train``, ``x_test``, ``y_test`` (the ``.npz`` of
    :func:`repro.data.images.prepare_fashion_mnist`; ``[n, H, W]`` or ``[n, C, H, W]``, uint8 or float).
    Options of this stage: ``n_val`` (validation images carved from the training images for probe
    selection, default 1000, stratified), ``n_train`` (training images for the SSL training and the
    probes, stratified and disjoint from validation; default all remaining), ``n_test`` (default all,
    stratified), ``probe_epochs`` (100), ``weight_decays`` (default ``2**[-10..9]``), ``knn_k`` (5),
    ``seed`` (0: subsets, training and probes).  Every other key is forwarded to
    :func:`repro.neural.myow_images.train_myow_images` (``epochs``, ``batch_size``, ``width``, ...;
    unknown keys raise ``ValueError``).  Records: ``images`` (``linear_probe_acc``,
    ``linear_probe_val_acc``, ``knn_acc``) and ``images_training`` (per-epoch history).
    """
    if model not in IMAGE_MODELS:
        raise ValueError(f"unknown image model {model!r}; accepted: {list(IMAGE_MODELS)}")
    missing = [k for k in ("x_train", "y_train", "x_test", "y_test") if k not in arrays]
    if missing:
        raise ValueError(f"image arrays lack {missing}")
    opts = dict(options or {})
    accepted = set(_accepted(train_myow_images, {"images", "labels", "mined"})) | set(IMAGE_OWN_OPTIONS)
    _check_keys(opts, accepted, f"image_records ({model})")
    seed = int(opts.get("seed", 0))
    own = {k: opts.pop(k) for k in IMAGE_OWN_OPTIONS if k in opts}
    train_kw = {"progress": True, **{k: _tuples(v) for k, v in opts.items()}}

    rng = np.random.default_rng(seed)
    y_all = np.asarray(arrays["y_train"]).astype(np.int64)
    order = _stratified(y_all, rng)
    n_val = _take(own.get("n_val", 1000), max(0, y_all.size - 1), "n_val") if y_all.size > 1 else 0
    val_idx, rest = order[:n_val], order[n_val:]
    rest = rest[_stratified(y_all[rest], rng)]
    train_idx = rest[: _take(own.get("n_train"), rest.size, "n_train")]
    y_test_all = np.asarray(arrays["y_test"]).astype(np.int64)
    test_idx = _stratified(y_test_all, rng)[: _take(own.get("n_test"), y_test_all.size, "n_test")]

    x_train_all = np.asarray(arrays["x_train"])
    x_tr = torch.as_tensor(x_train_all[np.sort(train_idx)])
    y_tr = torch.as_tensor(y_all[np.sort(train_idx)])
    x_va = torch.as_tensor(x_train_all[np.sort(val_idx)])
    y_va = torch.as_tensor(y_all[np.sort(val_idx)])
    x_te = torch.as_tensor(np.asarray(arrays["x_test"])[np.sort(test_idx)])
    y_te = torch.as_tensor(y_test_all[np.sort(test_idx)])

    t0 = time.perf_counter()
    net, history = train_myow_images(x_tr, y_tr, mined=model == "myow", seed=seed, **train_kw)
    seconds = time.perf_counter() - t0
    z_tr, z_va, z_te = (embed_images(net, x) for x in (x_tr, x_va, x_te))

    wds = own.get("weight_decays")
    probe_epochs = int(own.get("probe_epochs", 100))
    k = int(own.get("knn_k", 5))
    probe = class_probe(
        z_tr,
        y_tr,
        z_va,
        y_va,
        z_te,
        y_te,
        weight_decays=None if wds is None else [float(w) for w in wds],
        epochs=probe_epochs,
        seed=seed,
    )
    setting = {
        "n_train": int(x_tr.shape[0]),
        "n_val": int(x_va.shape[0]),
        "n_test": int(x_te.shape[0]),
        "probe_epochs": probe_epochs,
        "weight_decays": "2**[-10..9]" if wds is None else [float(w) for w in wds],
        "knn_k": k,
        "mined": model == "myow",
        **{key: v for key, v in opts.items() if key != "progress"},
    }
    out = [
        _record("images", model, dataset, seed, "linear_probe_acc", probe["acc"], setting),
        _record("images", model, dataset, seed, "linear_probe_val_acc", probe["val_acc"], setting),
        _record("images", model, dataset, seed, "knn_acc", knn_accuracy(z_tr, y_tr, z_te, y_te, k=k), setting),
        _record("images_training", model, dataset, seed, "train_seconds", seconds, setting),
    ]
    out += _history_records(history, "images_training", model, dataset, seed, setting)
    return out
