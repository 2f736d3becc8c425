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
