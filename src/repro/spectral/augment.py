"""Data-augmentation strategies applied to images before encoding (the DA part of P1).

All functions take a batch ``[n, H, W]`` or ``[n, C, H, W]`` (the last two axes are spatial), uint8 or
float, return a new array of the same shape and dtype, and draw their randomness from the
``numpy.random.Generator`` passed in (one independent draw per image).  uint8 results are rounded
and clipped to 0..255.

Strategies (:data:`AUGMENTATIONS`, the closed set a configuration may name):

* ``noise``: additive Gaussian noise, ``sigma`` in units of the full intensity range (1.0 = 255 for uint8);
* ``cutout``: one ``size`` x ``size`` square per image set to ``fill`` (0), placed uniformly inside the image;
* ``pixel_mask``: each pixel (all channels together) set to ``fill`` with probability ``p``;
* ``shift``: integer translation by ``dy, dx`` uniform in ``[-max_shift, max_shift]``, zero-filled;
* ``flip``: horizontal flip with probability ``p``.

:func:`augment_classes` applies a strategy only to images of chosen classes, and
:func:`augmented_features` encodes ``m`` augmented copies of the training images and either averages
their features per image (``mode="average"``) or keeps every copy as a training sample
(``mode="expand"``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from repro.spectral.encoders import encode, get_encoder

AUGMENT_MODES = ("average", "expand")
Augment = Callable[[np.ndarray, np.random.Generator], np.ndarray]


def _check_images(images) -> np.ndarray:
    x = np.asarray(images)
    if x.ndim not in (3, 4):
        raise ValueError(f"images must be [n,H,W] or [n,C,H,W], got shape {x.shape}")
    if not (x.dtype == np.uint8 or np.issubdtype(x.dtype, np.floating)):
        raise ValueError(f"images must be uint8 or float, got {x.dtype}")
    return x


def _full_range(x: np.ndarray) -> float:
    return 255.0 if x.dtype == np.uint8 else 1.0


def _as_dtype(values: np.ndarray, dtype) -> np.ndarray:
    if dtype == np.uint8:
        return np.clip(np.rint(values), 0, 255).astype(np.uint8)
    return values.astype(dtype, copy=False)


def _as_nchw(x: np.ndarray) -> np.ndarray:
    return x[:, None] if x.ndim == 3 else x


def gaussian_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """``images + sigma * range * N(0, 1)`` (range 255 for uint8, 1 for float); sigma = 0 is the identity."""
    x = _check_images(images)
    if sigma < 0:
        raise ValueError(f"sigma must be >= 0, got {sigma}")
    if sigma == 0:
        return x.copy()
    noisy = x.astype(np.float64) + sigma * _full_range(x) * rng.standard_normal(x.shape)
    if x.dtype != np.uint8:
        noisy = np.clip(noisy, 0.0, 1.0)
    return _as_dtype(noisy, x.dtype)


def cutout(images: np.ndarray, size: int, rng: np.random.Generator, fill: float = 0) -> np.ndarray:
    """Set one ``size`` x ``size`` square per image (uniform position, fully inside; clipped to the image
    when ``size`` exceeds it, so ``size >= max(H, W)`` blanks the whole image) to ``fill``."""
    x = _check_images(images)
    if isinstance(size, bool) or not isinstance(size, int | np.integer) or size < 0:
        raise ValueError(f"size must be an integer >= 0, got {size!r}")
    n, (h, w) = len(x), x.shape[-2:]
    sh, sw = min(size, h), min(size, w)
    top = rng.integers(0, h - sh + 1, n)
    left = rng.integers(0, w - sw + 1, n)
    rows = np.arange(h)[None, :]
    cols = np.arange(w)[None, :]
    in_rows = (rows >= top[:, None]) & (rows < (top + sh)[:, None])  # [n, H]
    in_cols = (cols >= left[:, None]) & (cols < (left + sw)[:, None])  # [n, W]
    mask = in_rows[:, :, None] & in_cols[:, None, :]  # [n, H, W]
    out = _as_nchw(x.copy())
    np.putmask(out, np.broadcast_to(mask[:, None], out.shape), fill)
    return out.reshape(x.shape)


def pixel_mask(images: np.ndarray, p: float, rng: np.random.Generator, fill: float = 0) -> np.ndarray:
    """Set each pixel (all channels) to ``fill`` independently with probability ``p`` (p = 1: all fill)."""
    x = _check_images(images)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    nchw = _as_nchw(x)
    mask = rng.random((len(x), 1, *x.shape[-2:])) < p
    out = nchw.copy()
    np.putmask(out, np.broadcast_to(mask, out.shape), fill)
    return out.reshape(x.shape)


def shift(images: np.ndarray, dy, dx, fill: float = 0) -> np.ndarray:
    """Translate image i by ``(dy[i], dx[i])`` pixels (positive = down / right), filling with ``fill``:
    ``out[i, ..., r, c] = images[i, ..., r - dy[i], c - dx[i]]``.  Scalars apply to every image."""
    x = _check_images(images)
    n, (h, w) = len(x), x.shape[-2:]
    dy = np.broadcast_to(np.asarray(dy, dtype=np.int64), (n,))
    dx = np.broadcast_to(np.asarray(dx, dtype=np.int64), (n,))
    k = int(max(np.abs(dy).max(initial=0), np.abs(dx).max(initial=0)))
    k_h, k_w = min(k, h), min(k, w)
    dy, dx = np.clip(dy, -k_h, k_h), np.clip(dx, -k_w, k_w)
    padded = np.pad(_as_nchw(x), ((0, 0), (0, 0), (k_h, k_h), (k_w, k_w)), constant_values=fill)
    rows = (np.arange(h)[None, :] + k_h - dy[:, None])[:, None, :, None]  # [n, 1, H, 1]
    cols = (np.arange(w)[None, :] + k_w - dx[:, None])[:, None, None, :]  # [n, 1, 1, W]
    out = np.take_along_axis(np.take_along_axis(padded, rows, axis=2), cols, axis=3)
    return out.reshape(x.shape)


def random_shift(images: np.ndarray, max_shift: int, rng: np.random.Generator, fill: float = 0) -> np.ndarray:
    """:func:`shift` by integers drawn uniformly from ``[-max_shift, max_shift]`` on each axis."""
    if isinstance(max_shift, bool) or not isinstance(max_shift, int | np.integer) or max_shift < 0:
        raise ValueError(f"max_shift must be an integer >= 0, got {max_shift!r}")
    x = _check_images(images)
    dy = rng.integers(-max_shift, max_shift + 1, len(x))
    dx = rng.integers(-max_shift, max_shift + 1, len(x))
    return shift(x, dy, dx, fill)


def horizontal_flip(images: np.ndarray, rng: np.random.Generator, p: float = 0.5) -> np.ndarray:
    """Mirror each image left-right with probability ``p`` (p = 1: all)."""
    x = _check_images(images)
    if not 0 <= p <= 1:
        raise ValueError(f"p must be in [0, 1], got {p}")
    flip = rng.random(len(x)) < p
    out = x.copy()
    out[flip] = x[flip][..., ::-1]
    return out


# --------------------------------------------------------------------------- declared strategies

# name -> (function(images, rng, **params), allowed params, required params)
AUGMENTATIONS: dict[str, tuple[Callable[..., np.ndarray], frozenset[str], frozenset[str]]] = {
    "noise": (lambda x, rng, sigma: gaussian_noise(x, sigma, rng), frozenset({"sigma"}), frozenset({"sigma"})),
    "cutout": (
        lambda x, rng, size, fill=0: cutout(x, size, rng, fill),
        frozenset({"size", "fill"}),
        frozenset({"size"}),
    ),
    "pixel_mask": (lambda x, rng, p, fill=0: pixel_mask(x, p, rng, fill), frozenset({"p", "fill"}), frozenset({"p"})),
    "shift": (
        lambda x, rng, max_shift, fill=0: random_shift(x, max_shift, rng, fill),
        frozenset({"max_shift", "fill"}),
        frozenset({"max_shift"}),
    ),
    "flip": (lambda x, rng, p=0.5: horizontal_flip(x, rng, p), frozenset({"p"}), frozenset()),
}


def make_augmentation(name: str, **params: Any) -> Augment:
    """The declared strategy ``name`` with ``params`` bound: a function ``(images, rng) -> images``."""
    if name not in AUGMENTATIONS:
        raise ValueError(f"unknown augmentation {name!r}; declared: {sorted(AUGMENTATIONS)}")
    fn, allowed, required = AUGMENTATIONS[name]
    extra, missing = set(params) - allowed, required - set(params)
    if extra or missing:
        raise ValueError(
            f"augmentation {name!r} takes {sorted(allowed)} (required {sorted(required)}); got {sorted(params)}"
        )

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        return fn(images, rng, **params)

    apply.__name__ = f"{name}({', '.join(f'{k}={v!r}' for k, v in sorted(params.items()))})"
    return apply


def compose(*augments: Augment) -> Augment:
    """Apply ``augments`` in order."""

    def apply(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        for aug in augments:
            images = aug(images, rng)
        return images

    apply.__name__ = " + ".join(getattr(a, "__name__", "augment") for a in augments)
    return apply


def from_config(steps: Sequence[Mapping[str, Any]] | Mapping[str, Any]) -> Augment:
    """Build a (composed) strategy from config entries ``{"name": ..., **params}``."""
    if isinstance(steps, Mapping):
        steps = [steps]
    built = []
    for step in steps:
        params = dict(step)
        if "name" not in params:
            raise ValueError(f"augmentation entry {step!r} has no 'name'")
        built.append(make_augmentation(params.pop("name"), **params))
    if not built:
        raise ValueError("no augmentation given")
    return built[0] if len(built) == 1 else compose(*built)


def augment_classes(
    images: np.ndarray,
    labels: np.ndarray,
    augment: Augment,
    rng: np.random.Generator,
    classes: Sequence[int] | None = None,
) -> np.ndarray:
    """Apply ``augment`` only to images whose label is in ``classes`` (all images if None)."""
    x = _check_images(images)
    labels = np.asarray(labels)
    if len(labels) != len(x):
        raise ValueError(f"{len(x)} images but {len(labels)} labels")
    if classes is None:
        return augment(x, rng)
    chosen = np.isin(labels, np.asarray(list(classes)))
    out = x.copy()
    if chosen.any():
        out[chosen] = augment(x[chosen], rng)
    return out


def augmented_features(
    images_train: np.ndarray,
    y_train: np.ndarray,
    images_test: np.ndarray,
    y_test: np.ndarray,
    augment: Augment,
    *,
    encoder: str = "pixels",
    encoder_options: Mapping[str, Any] | None = None,
    n_copies: int = 4,
    mode: str = "average",
    classes: Sequence[int] | None = None,
    include_original: bool = True,
    seed: int = 0,
    class_names: Sequence[str] | None = None,
) -> dict[str, np.ndarray]:
    """Encode ``n_copies`` augmented copies of the training images with a declared image encoder.

    * ``mode="average"``: each training image's feature is the mean over its copies (plus the original
      if ``include_original``); the training set keeps its size.
    * ``mode="expand"``: every copy is a training sample (``(n_copies + include_original) * n`` rows,
      labels repeated).  Images of classes not in ``classes`` contribute unaugmented duplicates, so
      every class keeps the same number of samples (balanced data).

    Only images of ``classes`` (label ids; None = all) are augmented.  Test images are never augmented.
    For an encoder fitted on the training set (``pca``) the fit uses all training copies.  Returns a
    feature-set dict as :mod:`repro.spectral.features` writes, plus ``augment`` and ``mode`` strings.
    """
    if mode not in AUGMENT_MODES:
        raise ValueError(f"mode must be one of {AUGMENT_MODES}, got {mode!r}")
    if isinstance(n_copies, bool) or not isinstance(n_copies, int | np.integer) or n_copies < 1:
        raise ValueError(f"n_copies must be an integer >= 1, got {n_copies!r}")
    options = dict(encoder_options or {})
    spec = get_encoder(encoder, "image", options)
    x = _check_images(images_train)
    y_train = np.asarray(y_train).astype(np.int64)
    y_test = np.asarray(y_test).astype(np.int64)
    rng = np.random.default_rng(seed)
    copies = [x] if include_original else []
    copies += [augment_classes(x, y_train, augment, rng, classes) for _ in range(n_copies)]
    n, m = len(x), len(copies)
    stack = np.concatenate(copies)

    if spec.fitted or classes is None:
        f_stack, f_test = encode(encoder, stack, images_test, "image", **options)
    else:  # unaugmented classes' copies equal the originals: encode originals + changed images only
        changed = np.isin(y_train, np.asarray(list(classes)))
        augmented = copies[1:] if include_original else copies
        todo = np.concatenate([x] + [c[changed] for c in augmented])
        f_all, f_test = encode(encoder, todo, images_test, "image", **options)
        f_orig = f_all[:n]
        f_aug = f_all[n:].reshape(len(augmented), int(changed.sum()), -1)
        blocks = [f_orig] if include_original else []
        for f_copy in f_aug:
            block = f_orig.copy()
            block[changed] = f_copy
            blocks.append(block)
        f_stack = np.concatenate(blocks)

    if mode == "average":
        x_train, y_out = f_stack.reshape(m, n, -1).mean(axis=0), y_train
    else:
        x_train, y_out = f_stack, np.tile(y_train, m)
    k = int(max(y_train.max(), y_test.max()) + 1)
    names = np.array(class_names if class_names is not None else [str(c) for c in range(k)], dtype=str)
    return {
        "x_train": x_train.astype(np.float32),
        "y_train": y_out,
        "x_test": f_test,
        "y_test": y_test,
        "classes": names,
        "encoder": np.array(encoder),
        "augment": np.array(getattr(augment, "__name__", "augment")),
        "mode": np.array(mode),
    }
