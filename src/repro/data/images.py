"""Image datasets in the project's format: one compressed .npz per dataset.

* Fashion-MNIST (Debian ``dataset-fashion-mnist``, IDX files): 60k train / 10k test,
  28x28 uint8, 10 classes.
* CIFAR-10 (the "python version" tarball of the University of Toronto, paper tier): the pickled
  batches ``data_batch_1..5`` (train, in that order) and ``test_batch``; 50k train / 10k test,
  uint8 ``[n, 3, 32, 32]`` (channel first), 10 classes.  Read with the NumPy-only unpickler
  (:mod:`repro.data.safe_pickle`), so a tampered download cannot run code.
* scikit-learn's digits (shipped inside scikit-learn): 1797 images, 8x8, 10 classes.
"""

from __future__ import annotations

import logging
import pickle
from pathlib import Path

import numpy as np

from repro.data.parsers.idx import read_idx
from repro.data.safe_pickle import load_numpy_pickle
from repro.io import atomic_path

log = logging.getLogger(__name__)

FASHION_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_BATCH = "test_batch"


def save_npz(path, **arrays) -> None:
    with atomic_path(path, suffix=".npz") as tmp:
        np.savez_compressed(tmp, **arrays)


def prepare_fashion_mnist(artifact_dir, output) -> dict[str, tuple]:
    root = Path(artifact_dir)
    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        [images] = sorted(root.rglob(f"{prefix}-images-idx3-ubyte*"))
        [labels] = sorted(root.rglob(f"{prefix}-labels-idx1-ubyte*"))
        x, y = read_idx(images), read_idx(labels)
        if len(x) != len(y):
            raise ValueError(f"{images.name} has {len(x)} images but {labels.name} has {len(y)} labels")
        arrays[f"x_{split}"], arrays[f"y_{split}"] = x, y.astype(np.int64)
    save_npz(output, classes=np.array(FASHION_CLASSES), **arrays)
    shapes = {k: v.shape for k, v in arrays.items()}
    log.info("fashion-mnist: %s", shapes)
    return shapes


def _get(obj: dict, key: str, path: Path):
    """``obj[key]`` for a dict from a Python 2 pickle (bytes keys) or a Python 3 one (str keys)."""
    for k in (key.encode(), key):
        if k in obj:
            return obj[k]
    raise ValueError(f"{path}: no key {key!r}; has {sorted(str(k) for k in obj)}")


def _load_pickle(path: Path):
    """A CIFAR-10 pickle through the NumPy-only unpickler; errors name the file."""
    try:
        return load_numpy_pickle(path, encoding="bytes")
    except (pickle.UnpicklingError, EOFError) as err:
        raise pickle.UnpicklingError(f"{path}: {err or type(err).__name__}") from None


def _cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """``(x uint8 [n, 3, 32, 32], y int64 [n])`` from one CIFAR-10 python batch."""
    obj = _load_pickle(path)
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    data = np.asarray(_get(obj, "data", path))
    labels = np.asarray(_get(obj, "labels", path))
    if data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise ValueError(f"{path}: data must be [n, 3072], got {list(data.shape)}")
    if data.dtype != np.uint8:
        raise ValueError(f"{path}: data must be uint8, got {data.dtype}")
    if labels.ndim != 1 or labels.shape[0] != data.shape[0]:
        raise ValueError(f"{path}: {data.shape[0]} images but labels of shape {list(labels.shape)}")
    if labels.size and (not np.issubdtype(labels.dtype, np.integer) or labels.min() < 0 or labels.max() > 9):
        raise ValueError(f"{path}: labels must be integers in 0..9")
    return data.reshape(-1, 3, 32, 32), labels.astype(np.int64)


def _cifar_classes(root: Path) -> tuple[str, ...]:
    """``label_names`` of ``batches.meta`` when present (decoded), else :data:`CIFAR10_CLASSES`."""
    found = sorted(root.rglob("batches.meta"))
    if not found:
        return CIFAR10_CLASSES
    meta = _load_pickle(found[0])
    names = None
    if isinstance(meta, dict):
        names = meta.get(b"label_names", meta.get("label_names"))
    if names is None:
        return CIFAR10_CLASSES
    names = tuple(n.decode() if isinstance(n, bytes) else str(n) for n in names)
    if len(names) != 10:
        raise ValueError(f"{found[0]}: label_names has {len(names)} entries, expected 10")
    return names


def prepare_cifar10(artifact_dir, output) -> dict[str, tuple]:
    """The CIFAR-10 python batches under ``artifact_dir`` as one ``.npz`` (see the module docstring)."""
    root = Path(artifact_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} does not exist; run the download rule for artifact cifar10 first")
    paths, missing = {}, []
    for name in (*CIFAR10_TRAIN_BATCHES, CIFAR10_TEST_BATCH):
        found = sorted(root.rglob(name))
        if found:
            paths[name] = found[0]
        else:
            missing.append(name)
    if missing:
        raise FileNotFoundError(f"{root}: CIFAR-10 batch file(s) {missing} not found")
    train = [_cifar_batch(paths[name]) for name in CIFAR10_TRAIN_BATCHES]
    x_test, y_test = _cifar_batch(paths[CIFAR10_TEST_BATCH])
    arrays = {
        "x_train": np.concatenate([x for x, _ in train]),
        "y_train": np.concatenate([y for _, y in train]),
        "x_test": x_test,
        "y_test": y_test,
    }
    save_npz(output, classes=np.array(_cifar_classes(root)), **arrays)
    shapes = {k: v.shape for k, v in arrays.items()}
    log.info("cifar-10: %s", shapes)
    return shapes


def prepare_digits(output) -> tuple:
    from sklearn.datasets import load_digits

    digits = load_digits()
    save_npz(output, images=digits.images.astype(np.uint8), target=digits.target.astype(np.int64))
    log.info("digits: %s", digits.images.shape)
    return digits.images.shape


SHAPE_CLASSES = ("square", "disc", "horizontal bar", "vertical bar")


def synthetic_shapes(n_train: int = 256, n_test: int = 128, size: int = 28, seed: int = 0) -> dict[str, np.ndarray]:
    """Tiny labelled images in Fashion-MNIST's layout, for the test tier (no download).

    Each image is one filled shape of :data:`SHAPE_CLASSES` (the label) at a random position and
    size, with uniform noise; uint8 ``[n, size, size]``.
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]

    def draw(label: int) -> np.ndarray:
        r = rng.uniform(size * 0.15, size * 0.3)
        cy, cx = rng.uniform(r, size - r, size=2)
        if label == 0:
            mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r)
        elif label == 1:
            mask = (yy - cy) ** 2 + (xx - cx) ** 2 <= r**2
        elif label == 2:
            mask = (abs(yy - cy) <= r / 3) & (abs(xx - cx) <= r)
        else:
            mask = (abs(yy - cy) <= r) & (abs(xx - cx) <= r / 3)
        img = rng.uniform(0, 60, size=(size, size)) + 180 * mask
        return np.clip(img, 0, 255).astype(np.uint8)

    out = {}
    for split, n in (("train", n_train), ("test", n_test)):
        y = rng.integers(0, len(SHAPE_CLASSES), size=n)
        out[f"x_{split}"] = np.stack([draw(int(c)) for c in y]) if n else np.zeros((0, size, size), np.uint8)
        out[f"y_{split}"] = y.astype(np.int64)
    return out


def prepare_tiny_images(output, seed: int = 0) -> None:
    save_npz(output, classes=np.array(SHAPE_CLASSES), **synthetic_shapes(seed=seed))
