"""Per-class accuracy of a linear probe on frozen features (the class disparities of P1).

Two probes:

* ``"logistic"`` -- multinomial logistic regression (L2, lbfgs);
* ``"ridge"`` -- scikit-learn's ``RidgeClassifier`` (least squares on +-1 one-vs-rest targets).

Features are standardised with statistics of the training set.  The regularisation strength is chosen
on a stratified validation split carved out of the training set (``val_fraction``), by validation
accuracy (or worst-class validation accuracy with ``select="worst_class"``); the probe is then refitted
on the whole training set and scored on the test set.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

PROBES = ("logistic", "ridge")
SELECTIONS = ("accuracy", "worst_class")
DEFAULT_C_GRID = (1e-4, 1e-3, 1e-2, 1e-1, 1.0, 10.0)  # logistic: inverse L2 strength
DEFAULT_ALPHA_GRID = (1.0, 10.0, 100.0, 1e3, 1e4, 1e5)  # ridge: L2 strength


@dataclass
class ProbeResult:
    """Test-set scores of one probe.  ``per_class_accuracy[k]`` is the recall of class k."""

    per_class_accuracy: np.ndarray
    accuracy: float
    worst_class: int
    worst_class_accuracy: float
    best_class: int
    gap: float  # max - min per-class accuracy
    std: float  # std of per-class accuracy across classes
    probe: str
    reg: float  # chosen C (logistic) or alpha (ridge)
    val_scores: dict[float, float]
    confusion: np.ndarray  # [K, K], rows = true class

    def as_dict(self) -> dict:
        out = asdict(self)
        out["per_class_accuracy"] = self.per_class_accuracy.tolist()
        out["confusion"] = self.confusion.tolist()
        out["val_scores"] = {str(k): v for k, v in self.val_scores.items()}
        return out


def per_class_accuracy(y_true: np.ndarray, y_pred: np.ndarray, n_classes: int) -> np.ndarray:
    """Recall of each class 0..n_classes-1 (NaN for a class absent from ``y_true``)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    out = np.full(n_classes, np.nan)
    for k in range(n_classes):
        mask = y_true == k
        if mask.any():
            out[k] = float(np.mean(y_pred[mask] == k))
    return out


def _make_probe(probe: str, reg: float, seed: int, max_iter: int):
    from sklearn.linear_model import LogisticRegression, RidgeClassifier

    if probe == "logistic":
        return LogisticRegression(C=reg, max_iter=max_iter, tol=1e-4, random_state=seed)
    return RidgeClassifier(alpha=reg)


def _fit_predict(probe, reg, x_fit, y_fit, x_eval, seed, max_iter) -> np.ndarray:
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.preprocessing import StandardScaler

    scaler = StandardScaler().fit(x_fit)
    model = _make_probe(probe, reg, seed, max_iter)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(scaler.transform(x_fit), y_fit)
    return model.predict(scaler.transform(x_eval))


def linear_probe(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    *,
    probe: str = "logistic",
    grid: Sequence[float] | None = None,
    val_fraction: float = 0.2,
    select: str = "accuracy",
    seed: int = 0,
    max_iter: int = 500,
    n_classes: int | None = None,
) -> ProbeResult:
    """Fit a linear probe (regularisation chosen on a validation split of the training set) and report
    per-class test accuracy, overall accuracy, worst class and the max-min gap.

    Labels must be integers ``0..K-1``; K is ``n_classes`` or inferred from the labels.  With a single
    grid value no validation split is made.
    """
    from sklearn.model_selection import train_test_split

    if probe not in PROBES:
        raise ValueError(f"probe must be one of {PROBES}, got {probe!r}")
    if select not in SELECTIONS:
        raise ValueError(f"select must be one of {SELECTIONS}, got {select!r}")
    x_train, x_test = np.asarray(x_train, dtype=np.float64), np.asarray(x_test, dtype=np.float64)
    y_train, y_test = np.asarray(y_train).astype(np.int64), np.asarray(y_test).astype(np.int64)
    if x_train.ndim != 2 or x_test.ndim != 2 or x_train.shape[1] != x_test.shape[1]:
        raise ValueError(f"features must be 2-d with equal widths, got {x_train.shape} and {x_test.shape}")
    if len(x_train) != len(y_train) or len(x_test) != len(y_test):
        raise ValueError("one label per feature row is required")
    k = int(n_classes if n_classes is not None else max(y_train.max(), y_test.max()) + 1)
    if y_train.min() < 0 or max(y_train.max(), y_test.max()) >= k or len(np.unique(y_train)) < 2:
        raise ValueError(f"labels must be integers in 0..{k - 1} with at least two training classes")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    grid = tuple(float(g) for g in (grid or (DEFAULT_C_GRID if probe == "logistic" else DEFAULT_ALPHA_GRID)))
    if any(g <= 0 for g in grid):
        raise ValueError(f"regularisation grid values must be > 0, got {grid}")

    val_scores: dict[float, float] = {}
    if len(grid) == 1:
        reg = grid[0]
    else:
        x_fit, x_val, y_fit, y_val = train_test_split(
            x_train, y_train, test_size=val_fraction, stratify=y_train, random_state=seed
        )
        for g in grid:
            pred = _fit_predict(probe, g, x_fit, y_fit, x_val, seed, max_iter)
            acc = per_class_accuracy(y_val, pred, k)
            val_scores[g] = float(np.mean(pred == y_val)) if select == "accuracy" else float(np.nanmin(acc))
        reg = max(grid, key=lambda g: (val_scores[g], -grid.index(g)))  # ties: earliest grid value

    pred = _fit_predict(probe, reg, x_train, y_train, x_test, seed, max_iter)
    acc = per_class_accuracy(y_test, pred, k)
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (y_test, pred), 1)
    return ProbeResult(
        per_class_accuracy=acc,
        accuracy=float(np.mean(pred == y_test)),
        worst_class=int(np.nanargmin(acc)),
        worst_class_accuracy=float(np.nanmin(acc)),
        best_class=int(np.nanargmax(acc)),
        gap=float(np.nanmax(acc) - np.nanmin(acc)),
        std=float(np.nanstd(acc)),
        probe=probe,
        reg=reg,
        val_scores=val_scores,
        confusion=confusion,
    )


def probe_features(features: dict, **kwargs) -> ProbeResult:
    """:func:`linear_probe` on a feature-set dict (see :mod:`repro.spectral.features`)."""
    return linear_probe(
        features["x_train"],
        features["y_train"],
        features["x_test"],
        features["y_test"],
        n_classes=len(features["classes"]),
        **kwargs,
    )
