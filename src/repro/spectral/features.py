"""Feature sets for the spectral-imbalance study: balanced class subsets encoded by a frozen encoder.

A feature set is a dict of arrays saved as one ``.npz`` (written atomically, read without pickle):

* ``x_train`` float32 ``[n_train, d]``, ``y_train`` int64 ``[n_train]`` in ``0..K-1``;
* ``x_test``, ``y_test`` likewise;
* ``classes`` str ``[K]`` (class ``k`` is ``classes[k]``);
* provenance: ``encoder`` (0-d str), ``idx_train`` / ``idx_test`` (row numbers in the source data).

Every class gets exactly the same number of samples: the paper's setting is *balanced data* whose
per-class feature spectra nevertheless differ.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from repro.io import atomic_path
from repro.spectral.encoders import encode, get_encoder

log = logging.getLogger(__name__)

FEATURE_KEYS = ("x_train", "y_train", "x_test", "y_test", "classes")
DEFAULT_SUPERSENSES = 10  # top-k noun supersenses by synset count


# --------------------------------------------------------------------------- sampling


def _check_int(name: str, value: object, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def balanced_indices(labels: np.ndarray, n_per_class: int, seed: int, classes: Sequence | None = None) -> np.ndarray:
    """Exactly ``n_per_class`` random positions of each class (all classes present unless ``classes``
    is given), drawn without replacement with ``numpy.random.default_rng(seed)``; returned grouped by
    class in ``classes`` order, and within a class in increasing position."""
    labels = np.asarray(labels)
    n_per_class = _check_int("n_per_class", n_per_class, 1)
    classes = np.unique(labels) if classes is None else list(classes)
    rng = np.random.default_rng(seed)
    out = []
    for c in classes:
        pool = np.flatnonzero(labels == c)
        if len(pool) < n_per_class:
            c = c.item() if isinstance(c, np.generic) else c
            raise ValueError(f"class {c!r} has {len(pool)} samples, fewer than n_per_class={n_per_class}")
        out.append(np.sort(rng.choice(pool, n_per_class, replace=False)))
    return np.concatenate(out) if out else np.zeros(0, dtype=np.int64)


def _relabel(labels: np.ndarray, classes: Sequence) -> np.ndarray:
    lookup = {c: k for k, c in enumerate(classes)}
    return np.array([lookup[v] for v in labels.tolist()], dtype=np.int64)


# --------------------------------------------------------------------------- storage


def check_features(features: Mapping[str, Any], source: str = "feature set") -> dict[str, np.ndarray]:
    """Validate a feature-set dict (keys, dtypes, shapes, label range); errors name ``source``."""
    missing = [k for k in FEATURE_KEYS if k not in features]
    if missing:
        raise ValueError(f"{source}: missing array(s) {missing}; a feature set needs {list(FEATURE_KEYS)}")
    out = {k: np.asarray(v) for k, v in features.items()}
    classes = out["classes"]
    if classes.ndim != 1 or len(classes) < 2:
        raise ValueError(f"{source}: 'classes' must list at least two class names, got shape {classes.shape}")
    for split in ("train", "test"):
        x, y = out[f"x_{split}"], out[f"y_{split}"]
        if x.ndim != 2 or not np.issubdtype(x.dtype, np.floating):
            raise ValueError(f"{source}: x_{split} must be a 2-d float array, got {x.dtype} {x.shape}")
        if y.ndim != 1 or len(y) != len(x) or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"{source}: y_{split} must be integer labels, one per row of x_{split}")
        if len(y) and (y.min() < 0 or y.max() >= len(classes)):
            raise ValueError(f"{source}: y_{split} has labels outside 0..{len(classes) - 1}")
        if not np.isfinite(x).all():
            raise ValueError(f"{source}: x_{split} has non-finite values")
    if out["x_train"].shape[1] != out["x_test"].shape[1]:
        raise ValueError(f"{source}: train and test feature sizes differ")
    return out


def save_features(path: str | Path, features: Mapping[str, Any]) -> None:
    """Write a validated feature set to ``path`` (.npz, atomically)."""
    arrays = check_features(features, str(path))
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def load_features(path: str | Path) -> dict[str, np.ndarray]:
    """Read and validate a feature set written by :func:`save_features` (no pickle)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature set {path} not found")
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"cannot read feature set {path}: {exc}") from exc
    return check_features(arrays, str(path))


# --------------------------------------------------------------------------- Fashion-MNIST


def load_image_npz(npz_path: str | Path) -> dict[str, np.ndarray]:
    """The project's image-dataset .npz (x_train/y_train/x_test/y_test/classes), checked."""
    path = Path(npz_path)
    if not path.is_file():
        raise FileNotFoundError(f"image dataset {path} not found; run `make data`")
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except Exception as exc:
        raise ValueError(f"cannot read image dataset {path}: {exc}") from exc
    missing = [k for k in FEATURE_KEYS if k not in data]
    if missing:
        raise ValueError(f"{path}: missing array(s) {missing}")
    for split in ("train", "test"):
        x, y = data[f"x_{split}"], data[f"y_{split}"]
        if x.ndim not in (3, 4) or len(x) != len(y):
            raise ValueError(f"{path}: x_{split} {x.shape} / y_{split} {y.shape} are not images with one label each")
    return data


def image_subsets(
    npz_path: str | Path, n_per_class_train: int = 200, n_per_class_test: int = 100, seed: int = 0
) -> dict[str, np.ndarray]:
    """Balanced, seeded raw-image subsets: ``images_train``, ``y_train``, ``images_test``, ``y_test``,
    ``classes``, ``idx_train``, ``idx_test`` (test images come from the dataset's test split)."""
    data = load_image_npz(npz_path)
    classes = data["classes"]
    ids = list(range(len(classes)))
    idx_train = balanced_indices(data["y_train"], n_per_class_train, seed, ids)
    idx_test = balanced_indices(data["y_test"], n_per_class_test, seed + 1, ids)
    return {
        "images_train": data["x_train"][idx_train],
        "y_train": data["y_train"][idx_train].astype(np.int64),
        "images_test": data["x_test"][idx_test],
        "y_test": data["y_test"][idx_test].astype(np.int64),
        "classes": classes.astype(str),
        "idx_train": idx_train,
        "idx_test": idx_test,
    }


def fashion_mnist_features(
    npz_path: str | Path,
    encoder: str = "mobilenet_v2",
    n_per_class_train: int = 200,
    n_per_class_test: int = 100,
    seed: int = 0,
    *,
    encoder_options: Mapping[str, Any] | None = None,
    output: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """Encode a balanced subset of Fashion-MNIST (or any project image .npz) with a declared image encoder.

    Defaults: 200 train + 100 test images per class (3000 images); MobileNetV2 at 64 px embeds them in
    about 12 s on one CPU thread.  ``encoder_options`` are the encoder's declared options (for
    ``mobilenet_v2`` at least ``checkpoint``).  Saved to ``output`` if given.
    """
    options = dict(encoder_options or {})
    get_encoder(encoder, "image", options)
    sub = image_subsets(npz_path, n_per_class_train, n_per_class_test, seed)
    start = time.perf_counter()
    try:
        f_train, f_test = encode(encoder, sub["images_train"], sub["images_test"], "image", **options)
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"encoding {npz_path} with {encoder!r}: {exc}") from exc
    log.info("%s: %d+%d images encoded in %.1f s", encoder, len(f_train), len(f_test), time.perf_counter() - start)
    features = {
        "x_train": f_train,
        "y_train": sub["y_train"],
        "x_test": f_test,
        "y_test": sub["y_test"],
        "classes": sub["classes"],
        "encoder": np.array(encoder),
        "idx_train": sub["idx_train"],
        "idx_test": sub["idx_test"],
    }
    features = check_features(features, f"{encoder} features of {npz_path}")
    if output is not None:
        save_features(output, features)
    return features


# --------------------------------------------------------------------------- WordNet glosses


def _read_synsets(path: Path):
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"WordNet synsets {path} not found; run `make data`")
    df = pd.read_parquet(path)
    missing = {"key", "pos", "lexname", "gloss"} - set(df.columns)
    if missing:
        raise ValueError(f"{path}: missing column(s) {sorted(missing)}")
    return df


def top_supersenses(synsets_parquet: str | Path, k: int, pos: str = "n", min_count: int = 1) -> list[str]:
    """The ``k`` most frequent supersenses (lexnames) of part of speech ``pos`` with >= ``min_count``
    distinct glosses; ties broken by name."""
    df = _read_synsets(Path(synsets_parquet))
    df = df[df["pos"] == pos].drop_duplicates("gloss")
    counts = df["lexname"].value_counts()
    ranked = sorted(((-int(c), name) for name, c in counts.items() if c >= min_count))
    return [name for _, name in ranked[: _check_int("supersenses", k, 2)]]


def wordnet_gloss_features(
    synsets_parquet: str | Path,
    minilm_dir: str | Path,
    supersenses: int | Sequence[str] = DEFAULT_SUPERSENSES,
    n_per_class: int = 150,
    seed: int = 0,
    *,
    n_test_per_class: int = 50,
    pos: str = "n",
    batch_size: int = 64,
    max_length: int = 64,
    output: str | Path | None = None,
) -> dict[str, np.ndarray]:
    """MiniLM embeddings of WordNet glosses labelled by supersense, with balanced classes.

    ``supersenses`` is a list of lexnames (e.g. ``["noun.animal", "noun.plant"]``) or an integer k for
    the k most frequent supersenses of ``pos``.  Each class gets exactly ``n_per_class`` distinct glosses
    (duplicate gloss texts are dropped first), of which ``n_test_per_class`` form the test split.
    Defaults: 10 noun supersenses x 150 glosses (100 train + 50 test), about 1500 texts.
    """
    path = Path(synsets_parquet)
    n_per_class = _check_int("n_per_class", n_per_class, 2)
    n_test = _check_int("n_test_per_class", n_test_per_class, 1)
    if n_test >= n_per_class:
        raise ValueError(f"n_test_per_class={n_test} must be smaller than n_per_class={n_per_class}")
    df = _read_synsets(path)
    df = df[df["pos"] == pos].drop_duplicates("gloss")
    if isinstance(supersenses, int | np.integer) and not isinstance(supersenses, bool):
        classes = top_supersenses(path, int(supersenses), pos, n_per_class)
        if len(classes) < supersenses:
            raise ValueError(f"{path}: only {len(classes)} {pos!r} supersenses have >= {n_per_class} glosses")
    else:
        classes = [str(s) for s in supersenses]
        if len(classes) < 2 or len(set(classes)) != len(classes):
            raise ValueError(f"supersenses must list at least two distinct names, got {classes}")
        unknown = sorted(set(classes) - set(df["lexname"]))
        if unknown:
            raise ValueError(f"{path}: no {pos!r} synsets with supersense(s) {unknown}")
    rows = df.index.to_numpy()
    chosen = balanced_indices(df["lexname"].to_numpy(), n_per_class, seed, classes)  # grouped by class
    per_class = chosen.reshape(len(classes), n_per_class)
    rng = np.random.default_rng(seed + 1)
    test_mask = np.zeros(per_class.shape, dtype=bool)
    for k in range(len(classes)):
        test_mask[k, rng.choice(n_per_class, n_test, replace=False)] = True
    pos_train, pos_test = per_class[~test_mask], per_class[test_mask]  # row-major: still grouped by class
    glosses = df["gloss"].to_numpy()
    lexnames = df["lexname"].to_numpy()
    y_train = _relabel(lexnames[pos_train], classes)
    y_test = _relabel(lexnames[pos_test], classes)
    start = time.perf_counter()
    try:
        f_train, f_test = encode(
            "minilm",
            list(glosses[pos_train]),
            list(glosses[pos_test]),
            "text",
            model_dir=minilm_dir,
            batch_size=batch_size,
            max_length=max_length,
        )
    except (FileNotFoundError, ValueError) as exc:
        raise type(exc)(f"encoding glosses of {path} with 'minilm': {exc}") from exc
    log.info("minilm: %d glosses in %.1f s", len(pos_train) + len(pos_test), time.perf_counter() - start)
    features = {
        "x_train": f_train,
        "y_train": y_train,
        "x_test": f_test,
        "y_test": y_test,
        "classes": np.array(classes, dtype=str),
        "encoder": np.array("minilm"),
        "idx_train": rows[pos_train].astype(np.int64),
        "idx_test": rows[pos_test].astype(np.int64),
        "key_train": df["key"].to_numpy()[pos_train].astype(str),
        "key_test": df["key"].to_numpy()[pos_test].astype(str),
    }
    features = check_features(features, f"minilm features of {path}")
    if output is not None:
        save_features(output, features)
    return features
