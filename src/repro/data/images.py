"""Image datasets in the project's format: one compressed .npz per dataset.

* Fashion-MNIST (Debian ``dataset-fashion-mnist``, IDX files): 60k train / 10k test,
  28x28 uint8, 10 classes.
* scikit-learn's digits (shipped inside scikit-learn): 1797 images, 8x8, 10 classes.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from repro.data.parsers.idx import read_idx
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


def prepare_digits(output) -> tuple:
    from sklearn.datasets import load_digits

    digits = load_digits()
    save_npz(output, images=digits.images.astype(np.uint8), target=digits.target.astype(np.int64))
    log.info("digits: %s", digits.images.shape)
    return digits.images.shape
