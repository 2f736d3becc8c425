"""Rule-level stages of the spectral-imbalance paper (Kaushik et al., ICML 2024): each function is what
one rule of ``workflow/rules/spectral.smk`` runs, with explicit arguments, testable without Snakemake.

* :func:`synthetic_records` -- rule ``spectral_synthetic``: the Gaussian-mixture experiments of
  :mod:`repro.spectral.synthetic` (exact per-class errors against Monte Carlo, the flatter-spectrum
  class, gap against imbalance);
* :func:`build_feature_set` -- rule ``spectral_features``: one encoder on one labelled data source
  (``images``: a project image ``.npz`` such as Fashion-MNIST; ``wordnet_glosses``: WordNet glosses
  labelled by supersense), balanced per class, saved as a feature ``.npz``;
* :func:`encoder_records` -- rule ``spectral_encoder``: per-class linear-probe accuracy and per-class
  spectral summaries of a feature set, their rank correlations across classes and the set's
  spectral imbalance;
* :func:`augmentation_records` -- rule ``spectral_augment``: one augmentation strategy on an image
  feature set's images, re-encoded, the same measures, so that strategies can be compared with the
  unaugmented set.

Spectra are those of the encoder's raw output features on the *training* split (within-class centred
covariance, :func:`repro.spectral.measures.class_eigenvalues`); the probe standardises features
internally (:func:`repro.spectral.class_probe.linear_probe`).  Per-class error = 1 - per-class test
accuracy.  Every record has keys ``method`` (encoder or strategy), ``model`` (feature set),
``dataset`` (data source), ``setting`` (dict), ``seed``, ``metric``, ``value``; per-class rows carry
``{"class": name}`` in ``setting``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repro.report.rows import records_from_frame
from repro.spectral import measures as M
from repro.spectral.class_probe import linear_probe

log = logging.getLogger(__name__)

SOURCES = ("images", "wordnet_glosses")
#: summaries correlated with per-class error (names of repro.spectral.measures.SUMMARY_NAMES)
SUMMARIES = M.SUMMARY_NAMES
#: probe options a config may set
PROBE_OPTIONS = ("probe", "grid", "val_fraction", "select", "max_iter")


# --------------------------------------------------------------------------- synthetic


def synthetic_records(options: Mapping[str, Any] | None = None) -> list[dict]:
    """Run :func:`repro.spectral.synthetic.run_synthetic` and return its rows as records.

    Options: ``n_seeds`` (binary experiments), ``p``, ``n``, ``large_p``, ``large_seeds`` (count),
    ``multiclass_seeds`` (count), ``mc_per_class``; unset ones keep the module defaults (the brief's
    §4.2 sizes).
    """
    from repro.spectral import synthetic as S

    opts = dict(options or {})
    unknown = set(opts) - {"n_seeds", "p", "n", "large_p", "large_seeds", "multiclass_seeds", "mc_per_class"}
    if unknown:
        raise ValueError(f"unknown spectral_imbalance.synthetic option(s) {sorted(unknown)}")
    kw: dict[str, Any] = {}
    if "n_seeds" in opts:
        kw["seeds"] = tuple(range(int(opts["n_seeds"])))
    for key in ("p", "n", "large_p", "mc_per_class"):
        if key in opts:
            kw[key] = int(opts[key])
    if "large_seeds" in opts:
        kw["large_seeds"] = tuple(range(int(opts["large_seeds"])))
    if "multiclass_seeds" in opts:
        kw["multiclass_seeds"] = tuple(range(int(opts["multiclass_seeds"])))
    timings: dict[str, float] = {}
    df = S.run_synthetic(**kw, timings=timings)
    for name, seconds in timings.items():
        log.info("synthetic %s: %.1f s", name, seconds)
    return records_from_frame(df)


# --------------------------------------------------------------------------- feature sets


def build_feature_set(
    spec: Mapping[str, Any], *, data: str | Path, artifact: str | Path | None, seed: int, output: str | Path
) -> dict[str, np.ndarray]:
    """Encode the feature set ``spec`` (one entry of ``spectral_imbalance.feature_sets``) with seed ``seed``.

    ``spec``: ``source`` (one of :data:`SOURCES`), ``encoder`` (a name of
    :data:`repro.spectral.encoders.ENCODERS`), ``options`` (the encoder's declared options except the
    checkpoint / model folder, which is ``artifact``), and the source's sizes: ``n_per_class_train``,
    ``n_per_class_test`` (images) or ``supersenses``, ``n_per_class``, ``n_test_per_class`` (glosses).
    """
    from repro.spectral.features import fashion_mnist_features, wordnet_gloss_features

    source = spec.get("source")
    if source not in SOURCES:
        raise ValueError(f"feature set source must be one of {SOURCES}, got {source!r}")
    encoder = spec["encoder"]
    options = dict(spec.get("options") or {})
    if source == "images":
        if encoder == "mobilenet_v2":
            options["checkpoint"] = str(artifact)
        elif encoder == "timm" and artifact is not None:
            options.setdefault("checkpoint", str(artifact))
        if encoder == "pca":
            options.setdefault("seed", seed)
        return fashion_mnist_features(
            data,
            encoder,
            int(spec.get("n_per_class_train", 200)),
            int(spec.get("n_per_class_test", 100)),
            seed,
            encoder_options=options,
            output=output,
        )
    if encoder != "minilm":
        raise ValueError(f"source wordnet_glosses is encoded with 'minilm', got {encoder!r}")
    return wordnet_gloss_features(
        data,
        artifact,
        spec.get("supersenses", 10),
        int(spec.get("n_per_class", 150)),
        seed,
        n_test_per_class=int(spec.get("n_test_per_class", 50)),
        output=output,
        **{k: int(v) for k, v in options.items() if k in ("batch_size", "max_length")},
    )


# --------------------------------------------------------------------------- measures of one feature set


def _probe_kwargs(probe: Mapping[str, Any] | None, seed: int) -> dict[str, Any]:
    opts = dict(probe or {})
    unknown = set(opts) - set(PROBE_OPTIONS)
    if unknown:
        raise ValueError(f"unknown probe option(s) {sorted(unknown)}; accepted: {list(PROBE_OPTIONS)}")
    return {**opts, "seed": seed}


def feature_set_measures(
    features: Mapping[str, np.ndarray], *, probe: Mapping[str, Any] | None = None, seed: int = 0
) -> list[dict]:
    """Per-class accuracy and spectra of one feature set, and their relation, as records (no identity keys).

    Metrics: per class (``setting["class"]``): ``class_accuracy``, ``class_error`` and every summary of
    :data:`SUMMARIES` of the class's training-feature covariance; overall: ``accuracy``,
    ``worst_class_accuracy``, ``gap`` (max - min class accuracy), ``accuracy_std``,
    ``mean_spectral_imbalance`` (mean pairwise ``||l_c - l_c'||_1 / ||l_c||_1``), ``<summary>_cv``
    (coefficient of variation across classes) and ``spearman_error_<summary>`` (rank correlation across
    classes of per-class error with the summary).
    """
    classes = [str(c) for c in np.asarray(features["classes"])]
    k = len(classes)
    result = linear_probe(
        features["x_train"],
        features["y_train"],
        features["x_test"],
        features["y_test"],
        n_classes=k,
        **_probe_kwargs(probe, seed),
    )
    spectra = M.class_eigenvalues(features["x_train"], features["y_train"], classes=list(range(k)))
    summaries = {c: M.spectral_summaries(lam) for c, lam in spectra.items()}
    records: list[dict] = []
    error = {}
    for c in range(k):
        acc = float(result.per_class_accuracy[c])
        error[c] = 1.0 - acc
        setting = {"class": classes[c]}
        records.append({"setting": setting, "metric": "class_accuracy", "value": acc})
        records.append({"setting": setting, "metric": "class_error", "value": 1.0 - acc})
        for name, value in summaries[c].items():
            records.append({"setting": setting, "metric": name, "value": float(value)})
    overall = {
        "accuracy": result.accuracy,
        "worst_class_accuracy": result.worst_class_accuracy,
        "gap": result.gap,
        "accuracy_std": result.std,
        "probe_regularisation": float(result.reg),
        "mean_spectral_imbalance": M.mean_spectral_imbalance(spectra),
    }
    for name in SUMMARIES:
        overall[f"{name}_cv"] = M.across_class_spread([summaries[c][name] for c in range(k)])["cv"]
    for name, rho in M.spearman_error_vs_summaries(error, summaries).items():
        overall[f"spearman_error_{name}"] = rho
    records += [{"setting": {}, "metric": m, "value": float(v)} for m, v in overall.items()]
    log.info(
        "probe %s: accuracy %.3f, worst class %s %.3f, gap %.3f",
        result.probe,
        result.accuracy,
        classes[result.worst_class],
        result.worst_class_accuracy,
        result.gap,
    )
    return records


def _identify(records: list[dict], **keys: Any) -> list[dict]:
    return [{**keys, **r} for r in records]


def encoder_records(
    features: Mapping[str, np.ndarray],
    *,
    feature_set: str,
    spec: Mapping[str, Any],
    probe: Mapping[str, Any] | None,
    seed: int,
) -> list[dict]:
    """:func:`feature_set_measures` of a saved feature set, identified by encoder, set and source."""
    records = feature_set_measures(features, probe=probe, seed=seed)
    return _identify(records, method=str(spec["encoder"]), model=feature_set, dataset=_dataset_name(spec), seed=seed)


def _dataset_name(spec: Mapping[str, Any]) -> str:
    if spec.get("source") == "wordnet_glosses":
        return "wordnet_glosses"
    return Path(str(spec.get("data", "images"))).stem


# --------------------------------------------------------------------------- augmentation strategies


def _class_ids(selection: Any, classes: Sequence[str]) -> list[int] | None:
    """``None``/"all" -> every class; a list of class names or ids -> their ids."""
    if selection is None or selection == "all":
        return None
    ids = []
    for item in selection:
        if isinstance(item, int | np.integer) and not isinstance(item, bool):
            ids.append(int(item))
        elif str(item) in classes:
            ids.append(classes.index(str(item)))
        else:
            raise ValueError(f"augmentation class {item!r} is not one of {list(classes)}")
    return ids


def augmentation_records(
    strategy: str,
    steps: Sequence[Mapping[str, Any]],
    *,
    spec: Mapping[str, Any],
    data: str | Path,
    artifact: str | Path | None,
    seed: int,
    n_copies: int = 2,
    mode: str = "expand",
    classes: Any = None,
    probe: Mapping[str, Any] | None = None,
) -> list[dict]:
    """Augment the training images of the image feature set ``spec`` with ``steps`` (a list of
    :data:`repro.spectral.augment.AUGMENTATIONS` entries, ``[]`` = no augmentation), re-encode, and
    measure as :func:`feature_set_measures`.  Records: ``method`` = ``strategy``, ``model`` = encoder.

    ``n_copies`` augmented copies per image join the original (``mode`` "expand": every copy is a
    training row; "average": features averaged per image); ``classes`` restricts augmentation to some
    classes (names or ids; default all).  The same balanced image subset (``seed``) as the feature set.
    """
    from repro.spectral.augment import augmented_features, from_config
    from repro.spectral.features import check_features, image_subsets

    if spec.get("source") != "images":
        raise ValueError(f"augmentation needs an image feature set, got source {spec.get('source')!r}")
    encoder = spec["encoder"]
    options = dict(spec.get("options") or {})
    if encoder == "mobilenet_v2":
        options["checkpoint"] = str(artifact)
    if encoder == "pca":
        options.setdefault("seed", seed)
    sub = image_subsets(data, int(spec.get("n_per_class_train", 200)), int(spec.get("n_per_class_test", 100)), seed)
    names = [str(c) for c in sub["classes"]]
    if steps:
        features = augmented_features(
            sub["images_train"],
            sub["y_train"],
            sub["images_test"],
            sub["y_test"],
            from_config(list(steps)),
            encoder=encoder,
            encoder_options=options,
            n_copies=int(n_copies),
            mode=mode,
            classes=_class_ids(classes, names),
            seed=seed,
            class_names=names,
        )
    else:  # the reference: the same subset, unaugmented
        from repro.spectral.encoders import encode

        f_train, f_test = encode(encoder, sub["images_train"], sub["images_test"], "image", **options)
        features = {
            "x_train": f_train,
            "y_train": sub["y_train"],
            "x_test": f_test,
            "y_test": sub["y_test"],
            "classes": np.array(names),
        }
    features = check_features(features, f"{strategy} features of {data}")
    records = feature_set_measures(features, probe=probe, seed=seed)
    setting = {"augment": [dict(s) for s in steps], "n_copies": int(n_copies), "mode": mode, "classes": classes}
    out = []
    for r in records:
        out.append(
            {
                **r,
                "setting": {**setting, **r["setting"]},
                "method": strategy,
                "model": str(encoder),
                "dataset": _dataset_name(spec),
                "seed": seed,
            }
        )
    return out


def records_frame(records: list[dict]) -> pd.DataFrame:
    """Records as a DataFrame (for tests and quick looks)."""
    return pd.DataFrame.from_records(records)
