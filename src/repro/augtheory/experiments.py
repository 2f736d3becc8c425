"""One runner per experiment of the brief (theory.md §2.2), each returning a long-form DataFrame.

Columns: experiment, method, setting (canonical JSON of the method's parameter and sizes such as
n, k, B, n_trials), seed, metric, value.  Trial-averaged metrics are reported as the mean over
trials (``metric``) and its standard error (``metric + "_se"``); ``seed`` is the runner's seed
(default 1, the notebooks' ``np.random.seed(1)``; our numpy Generator streams differ, so compare
shapes and orderings, not digits).  Every runner takes ``settings`` (a dict) and keyword overrides
on top of its defaults (``DEFAULTS[key]``); ``PAPER_SIZES`` and ``TEST_SIZES`` hold the paper's
sizes and tiny sizes for a test tier.

Risks are exact expectations over the label noise (``risk`` module), averaged over trials of X.

| key          | experiment (notebook)                       | default tier                   | paper / notebook      |    s |
|--------------|---------------------------------------------|--------------------------------|-----------------------|------|
| e21          | spectrum manipulation (README Fig. 1 left)  | exact                          | exact                 |  0.0 |
| e22_fig1     | bias-variance map N/M/R, Fig. 1 right       | n=32, 30 trials                | same                  |  0.1 |
| e22_notebook | ... notebook variant (which_is_better_v2)   | n=70, 10 trials, 20-pt grids   | same                  |  0.2 |
| e23          | classification SU/CN map                    | n=70, 1 trial, 20-pt grids     | same                  |  0.0 |
| e24          | MSE decomposition vs n (viz_MSE_decomp.)    | 100 trials, n=10..190 step 10  | 1000 trials, step 5   | 10.4 |
|              |                                             | (+ n=128)                      |                       |      |
| e25          | finite k copies vs aERM                     | 20 trials, 10 n values         | 100 trials, step 5    |  4.6 |
| e26          | heterogeneous mask ratio r                  | 100 trials, 7 n values         | 100 trials, step 10   |  5.3 |
| e27          | biased vs unbiased mask, MSE and POE        | 100 trials, n step 10          | 1000 trials, step 5   |  5.4 |
| e28          | aSGD vs closed form                         | 5 trials, 2000 steps, 7 (B,k)  | 20 trials             | 10.2 |
| e29          | signal-dependent mask (bug fixed)           | 100 trials, 7 n values         | (notebook bug, §2.2)  |  5.5 |

Seconds (column s, also ``MEASURED_SECONDS``): one default-tier ``run_all`` on one core
(OMP_NUM_THREADS=1, nice 19, a shared 2-core machine under load ~3), 41.6 s in total.
Reduced against the paper: trials of E2.4/E2.7 (1000 -> 100), E2.5 (100 -> 20), E2.8 (20 -> 5),
and the n grids of E2.4-E2.7/E2.9; ``PAPER_SIZES`` restores them (E2.5 at paper size keeps a
(38, 100, d, d) Gram accumulator, about 0.5 GB).

Defaults and their sources:

* E2.1: Sigma = diag(13 * 0.9^i), d = 128, beta in {0.1, 0.3, 0.5, 0.7}, alpha in {10, 30, 50, 70} deg.
* E2.2 Fig. 1: d = 128, n = 32, Sigma = c diag(0.9^i), theta* unit Gaussian, sigma = 0.5, SNR = 4;
  N-{0.01, 0.1, 1, 10} (sigma_a^2), M-{0.1, 0.3, 0.5, 0.7}, R-{10, 30, 50, 70} deg.
  Notebook variant: n = 70, theta* = e_0, decay 0.95, 10 trials, sigma_a^2 = (2^linspace(-10, 10, 20))^2,
  beta = linspace(0.001, 0.99, 20), alpha = linspace(5, 180, 20); the brief's check points N-0.1,
  M-0.3, R-30 are appended to the grids.
* E2.3: the E2.2 notebook data, label flip 0.1, 1 trial.
* E2.4: Sigma = I, theta* Gaussian, nested n subsets of one draw per trial, beta in {0.01, 0.1, 0.3, 0.5, 0.9}.
* E2.5: Sigma = I, theta* Gaussian, noise sigma_a^2 = 1 and mask beta = 0.3, k in {1, 2, 4, 8, 64, 128};
  finite-k = min-norm LS on the n k augmented rows (labels replicated); copies nested in k, rows in n.
* E2.6: decay 0.95, theta* Gaussian, mask 0.2/r on the first half of the coordinates and 0.2 r on the
  second half, r in {1/4, 1/3, 1/2, 1, 2, 3, 4}.
* E2.7: Sigma = I, theta* = e_0, beta in {0.01, 0.1, 0.3, 0.5, 0.9}, label flip 0.2.
* E2.8: d = 128, n = 64, Sigma_ii = 0.6^(i/d) SNR-scaled, theta* Gaussian, lr = 1e-3, 2000 steps,
  record every 50, (B, k) with B k = 64, noise sigma_a^2 = 1, mask p = 0.3, pepper (p = 0.3, sigma_a^2 = 1).
  ``E28_RANDOM_MASK_VARIANT``: smallest eigenvalue 0.2, mask p = 0.01, (B, k) = (1, 256),
  lr = 1.2e-5, 50 000 steps, 50 trials on one fixed data set (not run by ``run_all``).
* E2.9 (bug-fixed ``signal_when_good+``): Sigma = I, theta* = e_0, signal coordinate masked with p/r and
  the others with p, p = 0.2, r in {1/4, ..., 4}, label flip 0.1 (ours) for the POE panel;
  ``notebook_bug=True`` reproduces the notebook (every coordinate masked with p).
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from repro.augtheory import estimators as est
from repro.augtheory.model import LinearGaussianModel, make_model
from repro.augtheory.risk import decomposition, poe, risk_terms, su_cn
from repro.augtheory.sgd import run_augmented_sgd
from repro.augtheory.spectral import augmented_spectrum, mask_aug_cov, rotation_aug_cov
from repro.report.rows import setting_json

COLUMNS = ["experiment", "method", "setting", "seed", "metric", "value"]
PAIRS_64 = [(64, 1), (32, 2), (16, 4), (8, 8), (4, 16), (2, 32), (1, 64)]
RATIOS = [1 / 4, 1 / 3, 1 / 2, 1.0, 2.0, 3.0, 4.0]
N_STEP10 = list(range(10, 191, 10))

DEFAULTS: dict[str, dict] = {
    "e21": {"name": "e2_1_spectrum", "d": 128, "decay": 0.9, "scale": 13.0, "betas": [0.1, 0.3, 0.5, 0.7],
            "alphas": [10, 30, 50, 70]},
    "e22_fig1": {"name": "e2_2_bias_variance_fig1", "d": 128, "n": 32, "decay": 0.9, "theta": "gaussian",
                 "n_trials": 30, "noise": [0.01, 0.1, 1.0, 10.0], "mask": [0.1, 0.3, 0.5, 0.7],
                 "rotation": [10.0, 30.0, 50.0, 70.0]},
    "e22_notebook": {"name": "e2_2_bias_variance_notebook", "d": 128, "n": 70, "decay": 0.95, "theta": "sparse",
                     "n_trials": 10,
                     "noise": sorted(list((2.0 ** np.linspace(-10, 10, 20)) ** 2) + [0.1]),
                     "mask": sorted(list(np.linspace(0.001, 0.99, 20)) + [0.3]),
                     "rotation": sorted(list(np.linspace(5, 180, 20)) + [30.0])},
    "e23": {"name": "e2_3_classification_map", "d": 128, "n": 70, "decay": 0.95, "theta": "sparse",
            "n_trials": 1, "flip": 0.1,
            "noise": sorted(list((2.0 ** np.linspace(-10, 10, 20)) ** 2) + [0.1]),
            "mask": sorted(list(np.linspace(0.001, 0.99, 20)) + [0.3]),
            "rotation": sorted(list(np.linspace(5, 180, 20)) + [30.0])},
    "e24": {"name": "e2_4_mse_decomposition", "d": 128, "decay": 1.0, "theta": "gaussian", "n_trials": 100,
            "n_grid": sorted(N_STEP10 + [128]), "betas": [0.01, 0.1, 0.3, 0.5, 0.9]},
    "e25": {"name": "e2_5_finite_vs_aerm", "d": 128, "decay": 1.0, "theta": "gaussian", "n_trials": 20,
            "n_grid": [10, 30, 50, 70, 90, 110, 128, 150, 170, 190], "ks": [1, 2, 4, 8, 64, 128],
            "augmentations": [["noise", {"sigma_a2": 1.0}], ["mask", {"beta": 0.3}]]},
    "e26": {"name": "e2_6_heterogeneous_mask", "d": 128, "decay": 0.95, "theta": "gaussian", "n_trials": 100,
            "n_grid": [10, 32, 64, 96, 128, 150, 190], "p": 0.2, "ratios": RATIOS},
    "e27": {"name": "e2_7_biased_vs_unbiased", "d": 128, "decay": 1.0, "theta": "sparse", "n_trials": 100,
            "n_grid": N_STEP10, "betas": [0.01, 0.1, 0.3, 0.5, 0.9], "flip": 0.2},
    "e28": {"name": "e2_8_sgd_convergence", "d": 128, "n": 64, "smallest_eig": 0.6, "theta": "gaussian",
            "n_trials": 5, "pairs": PAIRS_64, "lr": 1e-3, "steps": 2000, "record_every": 50, "init": "zeros",
            "augmentations": [["noise", {"sigma_a2": 1.0}], ["mask", {"p": 0.3}],
                              ["pepper", {"p": 0.3, "sigma_a2": 1.0}]]},
    "e29": {"name": "e2_9_signal_mask", "d": 128, "decay": 1.0, "theta": "sparse", "n_trials": 100,
            "n_grid": [10, 32, 64, 96, 128, 150, 190], "p": 0.2, "ratios": RATIOS, "flip": 0.1,
            "notebook_bug": False},
}  # fmt: skip

PAPER_SIZES: dict[str, dict] = {
    "e24": {"n_trials": 1000, "n_grid": list(range(5, 191, 5))},
    "e25": {"n_trials": 100, "n_grid": list(range(5, 191, 5))},
    "e26": {"n_trials": 100, "n_grid": N_STEP10},
    "e27": {"n_trials": 1000, "n_grid": list(range(5, 191, 5))},
    "e28": {"n_trials": 20},
    "e29": {"n_trials": 100, "n_grid": N_STEP10},
}

TEST_SIZES: dict[str, dict] = {
    "e22_fig1": {"n_trials": 4},
    "e22_notebook": {"n_trials": 2, "noise": [0.1, 10.0], "mask": [0.3], "rotation": [30.0]},
    "e23": {"noise": [0.1], "mask": [0.3], "rotation": [30.0]},
    "e24": {"n_trials": 6, "n_grid": [32, 96, 128, 160], "betas": [0.1, 0.5]},
    "e25": {"n_trials": 4, "n_grid": [64], "ks": [1, 8, 64]},
    "e26": {"n_trials": 10, "n_grid": [64], "ratios": [0.25, 1.0, 2.0]},
    "e27": {"n_trials": 10, "n_grid": [64, 160], "betas": [0.3, 0.9]},
    "e28": {"n_trials": 2, "pairs": [(64, 1), (8, 8), (1, 64)], "steps": 400, "record_every": 100},
    "e29": {"n_trials": 10, "n_grid": [64], "ratios": [0.25, 4.0]},
}

# The brief's E2.8 variant (``convergence_to_closeform_random_mask``); 50 000 steps, so not in run_all:
# run_sgd_convergence(E28_RANDOM_MASK_VARIANT).
E28_RANDOM_MASK_VARIANT: dict = {
    "name": "e2_8_sgd_convergence_random_mask",
    "smallest_eig": 0.2,
    "n_trials": 50,
    "fixed_dataset": True,
    "pairs": [(1, 256)],
    "lr": 1.2e-5,
    "steps": 50_000,
    "record_every": 500,
    "augmentations": [["mask", {"p": 0.01}]],
}

# Seconds on one shared CPU core (OMP_NUM_THREADS=1, nice 19) for each default-tier runner.
MEASURED_SECONDS: dict[str, float] = {
    "e21": 0.01,
    "e22_fig1": 0.05,
    "e22_notebook": 0.18,
    "e23": 0.02,
    "e24": 10.4,
    "e25": 4.6,
    "e26": 5.3,
    "e27": 5.4,
    "e28": 10.2,
    "e29": 5.5,
}


# ----------------------------------------------------------------------------- helpers


def _merge(key: str, settings: dict | None, overrides: dict) -> dict:
    cfg = dict(DEFAULTS[key])
    cfg.update(settings or {})
    cfg.update(overrides)
    return cfg


class _Rows:
    def __init__(self, experiment: str, seed: int):
        self.experiment, self.seed, self.rows = experiment, int(seed), []

    def add(self, method: str, setting: dict, metric: str, value: float):
        self.rows.append((self.experiment, method, setting_json(setting), self.seed, metric, float(value)))

    def add_trials(self, method: str, setting: dict, metrics: dict):
        """Mean over trials and its standard error (when there are several trials)."""
        for metric, values in metrics.items():
            v = np.asarray(values, dtype=float).ravel()
            self.add(method, setting, metric, v.mean())
            if v.size > 1:
                self.add(method, setting, metric + "_se", v.std(ddof=1) / np.sqrt(v.size))

    def frame(self) -> pd.DataFrame:
        df = pd.DataFrame(self.rows, columns=COLUMNS)
        df["seed"] = df["seed"].astype("int64")
        return df


def _model(cfg: dict, rng: np.random.Generator) -> LinearGaussianModel:
    return make_model(
        cfg["d"],
        decay=cfg.get("decay"),
        smallest_eig=cfg.get("smallest_eig"),
        theta=cfg["theta"],
        sigma=cfg.get("sigma", 0.5),
        snr=cfg.get("snr", 4.0),
        rng=rng,
    )


def _nrm_methods(cfg: dict):
    """(method, setting, operator factory) for LSE and the N / M / R grids of E2.2-E2.3."""
    yield "lse", {}, est.min_norm_operator
    for v in cfg["noise"]:
        yield "noise", {"sigma_a2": float(v)}, lambda X, v=v: est.noise_operator(X, v)
    for v in cfg["mask"]:
        yield "mask", {"beta": float(v)}, lambda X, v=v: est.mask_operator(X, v)
    for v in cfg["rotation"]:
        yield "rotation", {"alpha": float(v)}, lambda X, v=v: est.rotation_operator(X, v)


# ----------------------------------------------------------------------------- E2.1


def run_spectrum_manipulation(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.1: sorted eigenvalues of I + Sigma_aug^-1/2 Sigma Sigma_aug^-1/2 for mask and rotation.

    ``scale=None`` SNR-scales 0.9^i with a unit Gaussian theta* drawn from ``seed`` (the origin of
    the brief's 13) instead of the fixed Sigma = diag(13 * 0.9^i).
    """
    cfg = _merge("e21", settings, overrides)
    d = cfg["d"]
    if cfg["scale"] is None:
        lam = _model({**cfg, "theta": "gaussian"}, np.random.default_rng(seed)).lam
    else:
        lam = cfg["scale"] * float(cfg["decay"]) ** np.arange(d)
    out = _Rows(cfg["name"], seed)
    base = {"d": d, "decay": cfg["decay"], "scale": cfg["scale"]}
    curves = [("original", {}, np.sort(lam)[::-1])]
    curves += [("mask", {"beta": b}, augmented_spectrum(lam, mask_aug_cov(lam, b))) for b in cfg["betas"]]
    curves += [("rotation", {"alpha": a}, augmented_spectrum(lam, rotation_aug_cov(lam, a))) for a in cfg["alphas"]]
    for method, param, values in curves:
        for i, v in enumerate(values):
            out.add(method, {**base, **param, "index": i}, "eigenvalue", v)
    return out.frame()


# ----------------------------------------------------------------------------- E2.2 / E2.3


def run_bias_variance_map(
    settings: dict | None = None, *, seed: int = 1, variant: str = "fig1", **overrides
) -> pd.DataFrame:
    """E2.2: (bias, var, mse) of LSE and the N / M / R estimators; ``variant`` "fig1" or "notebook"."""
    cfg = _merge(f"e22_{variant}", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    X = model.sample_x(rng, cfg["n"], cfg["n_trials"])
    out = _Rows(cfg["name"], seed)
    base = {"n": cfg["n"], "d": cfg["d"], "n_trials": cfg["n_trials"]}
    for method, param, op in _nrm_methods(cfg):
        out.add_trials(method, {**base, **param}, risk_terms(op(X), X, model.theta, model.lam, model.sigma))
    return out.frame()


def run_classification_map(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.3: SU, CN and POE of LSE and the N / M / R estimators fitted on flipped +-1 labels."""
    cfg = _merge("e23", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    X = model.sample_x(rng, cfg["n"], cfg["n_trials"])
    labels = model.labels(rng, X, cfg["flip"])
    out = _Rows(cfg["name"], seed)
    base = {"n": cfg["n"], "d": cfg["d"], "n_trials": cfg["n_trials"], "flip": cfg["flip"]}
    for method, param, op in _nrm_methods(cfg):
        theta = est.estimate(op(X), labels)
        su, cn = su_cn(theta, model.lam, model.signal)
        out.add_trials(method, {**base, **param}, {"su": su, "cn": cn, "poe": poe(theta, model.lam, model.signal)})
    return out.frame()


# ----------------------------------------------------------------------------- E2.4


def run_mse_decomposition(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.4: MSE, Bias, Var, ApproxErr (and Cross) against n for the random mask and LSE."""
    cfg = _merge("e24", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    n_grid = sorted(int(n) for n in cfg["n_grid"])
    X_all = model.sample_x(rng, n_grid[-1], cfg["n_trials"])
    out = _Rows(cfg["name"], seed)
    th, lam, sig = model.theta, model.lam, model.sigma
    for n in n_grid:
        X = X_all[:, :n]
        base = {"n": n, "d": cfg["d"], "n_trials": cfg["n_trials"]}
        G = est.min_norm_operator(X)
        out.add_trials("lse", base, decomposition(G, G, X, th, lam, sig))
        for b in cfg["betas"]:
            dec = decomposition(est.mask_operator(X, b), est.mask_bar_operator(X, b, lam), X, th, lam, sig)
            out.add_trials("mask", {**base, "beta": b}, dec)
    return out.frame()


# ----------------------------------------------------------------------------- E2.5


def _psd_min_norm(A: np.ndarray, B: np.ndarray, full_rank: bool) -> np.ndarray:
    if full_rank:
        return est.solve_psd(A, B)
    return np.linalg.pinv(A, rtol=1e-10, hermitian=True) @ B


def finite_augmentation_operators(X: np.ndarray, aug: est.Augmentation, n_grid, ks, rng: np.random.Generator):
    """Yield (n, k, G) for min-norm LS on k independent augmented copies of the first n rows of X.

    theta = pinv(sum_c X_c^T X_c) sum_c X_c^T y: copies are nested in k and rows in n, so one pass
    of max(ks) copies over max(n_grid) rows serves the whole grid.
    """
    T, n_max, d = X.shape
    n_grid, ks = sorted(int(n) for n in n_grid), sorted(int(k) for k in ks)
    edges = [0] + n_grid
    block_gram = np.zeros((len(n_grid), T, d, d))
    copies_sum = np.zeros((T, edges[-1], d))
    Xu = X[:, : edges[-1]]
    for c in range(1, ks[-1] + 1):
        Xc = aug.sample(Xu, rng)
        copies_sum += Xc
        for j in range(len(n_grid)):
            blk = Xc[:, edges[j] : edges[j + 1]]
            block_gram[j] += np.swapaxes(blk, -1, -2) @ blk
        if c in ks:
            gram = np.cumsum(block_gram, axis=0)
            for j, n in enumerate(n_grid):
                rhs = np.swapaxes(copies_sum[:, :n], -1, -2)
                yield n, c, _psd_min_norm(gram[j], rhs, full_rank=n * c > d)


def run_finite_vs_aerm(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.5: MSE, bias, var of min-norm LS on k augmented copies against the aERM closed form and LSE."""
    cfg = _merge("e25", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    n_grid = sorted(int(n) for n in cfg["n_grid"])
    X_all = model.sample_x(rng, n_grid[-1], cfg["n_trials"])
    out = _Rows(cfg["name"], seed)
    th, lam, sig = model.theta, model.lam, model.sigma
    base = {"d": cfg["d"], "n_trials": cfg["n_trials"]}
    for n in n_grid:
        X = X_all[:, :n]
        out.add_trials("lse", {**base, "n": n}, risk_terms(est.min_norm_operator(X), X, th, lam, sig))
    for name, params in cfg["augmentations"]:
        aug = est.Augmentation(name, **params)
        for n in n_grid:
            X = X_all[:, :n]
            terms = risk_terms(aug.operator(X), X, th, lam, sig)
            out.add_trials(name, {**base, **params, "n": n, "estimator": "aerm"}, terms)
        for n, k, G in finite_augmentation_operators(X_all, aug, n_grid, cfg["ks"], rng):
            terms = risk_terms(G, X_all[:, :n], th, lam, sig)
            out.add_trials(name, {**base, **params, "n": n, "estimator": "finite", "k": k}, terms)
    return out.frame()


# ----------------------------------------------------------------------------- E2.6 / E2.9


def heterogeneous_probs(d: int, p: float, r: float) -> np.ndarray:
    """E2.6: p/r on the first (high-variance) half of the coordinates, p r on the second half."""
    probs = np.empty(d)
    probs[: d // 2] = p / r
    probs[d // 2 :] = p * r
    return probs


def signal_probs(d: int, p: float, r: float, signal: int = 0, notebook_bug: bool = False) -> np.ndarray:
    """E2.9: the signal coordinate masked with p/r, the others with p.

    ``notebook_bug=True`` reproduces ``signal_when_good+``: its test ``i != signal_position`` compares
    an int with a list, is always true, and every coordinate gets p (r has no effect).
    """
    probs = np.full(d, float(p))
    if not notebook_bug:
        probs[signal] = p / r
    return probs


def _het_mask_sweep(cfg: dict, seed: int, probs_for, extra_metrics=None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    n_grid = sorted(int(n) for n in cfg["n_grid"])
    X_all = model.sample_x(rng, n_grid[-1], cfg["n_trials"])
    labels_all = model.labels(rng, X_all, cfg["flip"]) if "flip" in cfg else None
    out = _Rows(cfg["name"], seed)
    th, lam, sig = model.theta, model.lam, model.sigma
    for n in n_grid:
        X = X_all[:, :n]
        base = {"n": n, "d": cfg["d"], "n_trials": cfg["n_trials"]}
        runs = [("lse", {}, est.min_norm_operator(X), None)]
        for r in cfg["ratios"]:
            probs = probs_for(r)
            if np.any(probs >= 1):
                raise ValueError(f"mask probability >= 1 for r = {r}")
            hat = est.het_mask_operator(X, probs)
            runs.append((cfg["method"], {"p": cfg["p"], "r": float(r)}, hat, est.het_mask_bar_operator(X, probs, lam)))
        for method, param, G, G_bar in runs:
            metrics = decomposition(G, G if G_bar is None else G_bar, X, th, lam, sig)
            if labels_all is not None:
                metrics["poe"] = poe(est.estimate(G, labels_all[:, :n]), lam, model.signal)
            out.add_trials(method, {**base, **param}, metrics)
    return out.frame()


def run_heterogeneous_mask(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.6: MSE, Bias, Var, ApproxErr of the heterogeneous mask (ratio r) and LSE against n."""
    cfg = {**_merge("e26", settings, overrides), "method": "het_mask"}
    cfg.pop("flip", None)
    return _het_mask_sweep(cfg, seed, lambda r: heterogeneous_probs(cfg["d"], cfg["p"], r))


def run_signal_mask(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.9: the intended signal-dependent mask (signal p/r, rest p): regression split and POE."""
    cfg = {**_merge("e29", settings, overrides), "method": "signal_mask"}
    return _het_mask_sweep(cfg, seed, lambda r: signal_probs(cfg["d"], cfg["p"], r, 0, cfg["notebook_bug"]))


# ----------------------------------------------------------------------------- E2.7


def run_biased_vs_unbiased(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.7: regression MSE (bias, var) and POE of the unbiased mask, the biased mask and LSE."""
    cfg = _merge("e27", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    n_grid = sorted(int(n) for n in cfg["n_grid"])
    X_all = model.sample_x(rng, n_grid[-1], cfg["n_trials"])
    labels_all = model.labels(rng, X_all, cfg["flip"])
    out = _Rows(cfg["name"], seed)
    th, lam, sig = model.theta, model.lam, model.sigma
    for n in n_grid:
        X, labels = X_all[:, :n], labels_all[:, :n]
        base = {"n": n, "d": cfg["d"], "n_trials": cfg["n_trials"], "flip": cfg["flip"]}
        runs = [("lse", {}, est.min_norm_operator(X))]
        for b in cfg["betas"]:
            G = est.mask_operator(X, b)
            runs += [("mask", {"beta": b}, G), ("mask_biased", {"beta": b}, G / (1.0 - b))]
        for method, param, G in runs:
            metrics = risk_terms(G, X, th, lam, sig)
            metrics["poe"] = poe(est.estimate(G, labels), lam, model.signal)
            out.add_trials(method, {**base, **param}, metrics)
    return out.frame()


# ----------------------------------------------------------------------------- E2.8


def run_sgd_convergence(settings: dict | None = None, *, seed: int = 1, **overrides) -> pd.DataFrame:
    """E2.8: test risk of SGD with fresh augmentations and its distance to the aERM closed form."""
    cfg = _merge("e28", settings, overrides)
    rng = np.random.default_rng(seed)
    model = _model(cfg, rng)
    if cfg.get("fixed_dataset", False):  # one data set, trials differ only in the SGD randomness
        X1, y1 = model.sample(rng, cfg["n"])
        X = np.ascontiguousarray(np.broadcast_to(X1, (cfg["n_trials"],) + X1.shape))
        y = np.ascontiguousarray(np.broadcast_to(y1, (cfg["n_trials"],) + y1.shape))
    else:
        X, y = model.sample(rng, cfg["n"], cfg["n_trials"])
    lam, th = model.lam, model.theta
    augs = [(name, dict(params)) for name, params in cfg["augmentations"]]
    pairs = [tuple(int(v) for v in pair) for pair in cfg["pairs"]]
    refs = []
    for name, params in augs:
        closed = {"noise": {"sigma_a2": params.get("sigma_a2")}, "mask": {"beta": params.get("p")}}.get(name, params)
        refs.append(est.estimate(est.Augmentation(name, **closed).operator(X), y))
    refs = np.stack(refs)
    res = run_augmented_sgd(
        X, y, augs, pairs, theta_star=th, lam=lam, theta_ref=refs, lr=cfg["lr"], steps=cfg["steps"],
        record_every=cfg["record_every"], seed=seed, init=cfg["init"],
    )  # fmt: skip
    out = _Rows(cfg["name"], seed)
    base = {"n": cfg["n"], "d": cfg["d"], "n_trials": cfg["n_trials"], "lr": cfg["lr"]}
    lse = est.estimate(est.min_norm_operator(X), y)
    out.add_trials("lse", {**base, "estimator": "closed_form"}, {"risk": _risk(lse, th, lam)})
    for a, (name, params) in enumerate(augs):
        out.add_trials(name, {**base, **params, "estimator": "closed_form"}, {"risk": _risk(refs[a], th, lam)})
        for p, (b, k) in enumerate(pairs):
            for r, step in enumerate(res["steps"]):
                setting = {**base, **params, "estimator": "sgd", "B": b, "k": k, "step": int(step)}
                out.add_trials(
                    name, setting, {"risk": res["risk"][a, p, r], "dist_to_closed_form": res["dist"][a, p, r]}
                )
    return out.frame()


def _risk(theta: np.ndarray, theta_star: np.ndarray, lam: np.ndarray) -> np.ndarray:
    return np.sum(lam * (theta - theta_star) ** 2, axis=-1)


# ----------------------------------------------------------------------------- registry


EXPERIMENTS = {
    "e21": run_spectrum_manipulation,
    "e22_fig1": lambda settings=None, *, seed=1, **kw: run_bias_variance_map(settings, seed=seed, variant="fig1", **kw),
    "e22_notebook": lambda settings=None, *, seed=1, **kw: run_bias_variance_map(
        settings, seed=seed, variant="notebook", **kw
    ),
    "e23": run_classification_map,
    "e24": run_mse_decomposition,
    "e25": run_finite_vs_aerm,
    "e26": run_heterogeneous_mask,
    "e27": run_biased_vs_unbiased,
    "e28": run_sgd_convergence,
    "e29": run_signal_mask,
}


def run_all(tier: str = "default", *, seed: int = 1, only=None) -> tuple[pd.DataFrame, dict[str, float]]:
    """Every experiment at the ``tier`` sizes ("default", "test" or "paper"); returns (table, seconds)."""
    sizes = {"default": {}, "test": TEST_SIZES, "paper": PAPER_SIZES}[tier]
    frames, seconds = [], {}
    for key, runner in EXPERIMENTS.items():
        if only is not None and key not in only:
            continue
        t0 = time.perf_counter()
        frames.append(runner(sizes.get(key), seed=seed))
        seconds[key] = time.perf_counter() - t0
    return pd.concat(frames, ignore_index=True), seconds


__all__ = [
    "DEFAULTS",
    "E28_RANDOM_MASK_VARIANT",
    "EXPERIMENTS",
    "PAPER_SIZES",
    "TEST_SIZES",
    "finite_augmentation_operators",
    "heterogeneous_probs",
    "run_all",
    "run_bias_variance_map",
    "run_biased_vs_unbiased",
    "run_classification_map",
    "run_finite_vs_aerm",
    "run_heterogeneous_mask",
    "run_mse_decomposition",
    "run_signal_mask",
    "run_sgd_convergence",
    "run_spectrum_manipulation",
    "signal_probs",
]
