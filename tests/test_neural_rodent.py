"""MYOW's rodent sleep data (repro.neural.rodent): the .npy loader on tiny fixtures, the contiguous
block split, the offline stand-in, the +-150-bin mining rule, the class-balanced state probe and short
training runs with the paper tier's rodent settings (brief shared/papers/ssl_graph_neural.md §3.3-§3.7)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from repro.neural import myow as myow_module
from repro.neural import stages
from repro.neural.myow import mine_views
from repro.neural.probes import class_probe, weighted_f1
from repro.neural.rodent import (
    RATES_FILE,
    STATES_FILE,
    block_split,
    rodent_like,
    rodent_like_arrays,
    rodent_sleep,
)
from repro.neural.swapvae import count_jitter_pairs
from repro.neural.trials import TrialData
from repro.neural.views import jitter_pairs

ROOT = Path(__file__).resolve().parents[1]
FAST_PROBE = {"probe_epochs": 20, "weight_decays": [1e-3, 1e-1], "balanced_samples": 2000}


def write_pair(folder: Path, rates: np.ndarray, states: np.ndarray) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    np.save(folder / RATES_FILE, rates)
    np.save(folder / STATES_FILE, states)


def tiny_arrays(n_units: int = 5, n_bins: int = 200, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    return rng.poisson(3.0, size=(n_units, n_bins)).astype(np.int32), rng.integers(0, 3, n_bins)


# ------------------------------------------------------------------------------------------- loader
def test_rodent_sleep_reads_the_shipped_layout(tmp_path):
    rates, states = tiny_arrays()
    write_pair(tmp_path / "art", rates, states)
    data = rodent_sleep(tmp_path / "art", block_bins=30)
    assert isinstance(data, TrialData) and data.task == "states" and data.n_classes == 3
    assert data.counts.dtype == torch.float32 and data.counts.shape == (200, 5)
    np.testing.assert_array_equal(data.counts.numpy(), rates.T)
    np.testing.assert_array_equal(data.direction.numpy(), states)
    assert data.direction.dtype == torch.int64
    np.testing.assert_array_equal(data.time.numpy(), np.arange(200))  # recording-wide bin index
    assert torch.isnan(data.angle).all() and (data.velocity == 0).all()

    # contiguous 70/10/20 chunks in time order ...
    split = data.split.numpy()
    np.testing.assert_array_equal(split, np.repeat([0, 1, 2], [140, 20, 40]))
    # ... cut into blocks of <= 30 bins, each inside one split, ids increasing along time
    trial = data.trial.numpy()
    assert (np.diff(trial) >= 0).all()
    for t in np.unique(trial):
        rows = np.flatnonzero(trial == t)
        assert rows.size <= 30 and (np.diff(rows) == 1).all()
        assert np.unique(split[rows]).size == 1
    start, length = data.trial_bounds()
    assert length.tolist() == [30] * 4 + [20] + [20] + [30, 10]
    # no jitter positive (0..+3 bins) crosses a split or block boundary
    i, j = jitter_pairs(data, 500, 3, torch.Generator().manual_seed(0), min_shift=0, rows=data.split == 0)
    assert (data.split[i] == 0).all() and (data.split[j] == 0).all() and (data.trial[i] == data.trial[j]).all()


def test_block_split_default_matches_the_recording():
    split, block = block_split(10800)  # 70/10/20 of 12 h of 4 s bins, 1080-bin blocks
    assert np.bincount(split).tolist() == [7560, 1080, 2160]
    assert np.bincount(block).tolist() == [1080] * 10
    split, block = block_split(100, (0.8, 0.0, 0.2), None)  # no validation chunk; one block per chunk
    assert np.bincount(split, minlength=3).tolist() == [80, 0, 20] and np.unique(block).tolist() == [0, 1]
    with pytest.raises(ValueError, match="sum to 1"):
        block_split(100, (0.7, 0.2, 0.2))
    with pytest.raises(ValueError, match="block_bins"):
        block_split(100, block_bins=0)
    with pytest.raises(ValueError, match="too few"):
        block_split(3, (0.5, 0.3, 0.2))


def test_load_trials_rodent_npy_from_two_artifact_folders(tmp_path):
    rates, states = tiny_arrays(n_bins=120)
    (tmp_path / "artifacts" / "rates_art").mkdir(parents=True)
    (tmp_path / "artifacts" / "states_art").mkdir(parents=True)
    np.save(tmp_path / "artifacts" / "rates_art" / RATES_FILE, rates)
    np.save(tmp_path / "artifacts" / "states_art" / STATES_FILE, states)
    opts = {"artifact": ["rates_art", "states_art"], "resources_dir": str(tmp_path), "split": [0.5, 0.25, 0.25]}
    data = stages.load_trials("rodent_npy", opts)
    assert data.counts.shape == (120, 5) and np.bincount(data.split.numpy()).tolist() == [60, 30, 30]
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bin_s'\]"):
        stages.load_trials("rodent_npy", {**opts, "bin_s": 4.0})
    with pytest.raises(FileNotFoundError, match=r"no behav_states_n_4full.npy .*run the download rule"):
        stages.load_trials("rodent_npy", {**opts, "artifact": ["rates_art", "missing_art"]})


@pytest.mark.parametrize(
    "which, bad, match",
    [
        ("rates", np.zeros(200, dtype=np.int32), r"rates must be \[units, bins\]"),
        ("rates", np.zeros((200, 5), dtype=np.int32), r"has 200 labels; it looks transposed"),
        ("rates", np.zeros((5, 199), dtype=np.int32), r"shape \(5, 199\).*200 labels"),
        ("rates", -np.ones((5, 200), dtype=np.int32), "negative"),
        ("rates", np.array([["a"] * 200] * 5), "numeric counts"),
        ("states", np.full(200, 3), r"must be in 0\.\.2 .*found \[3\]"),
        ("states", np.full(200, 0.5), "must be integers"),
        ("states", np.zeros((2, 100), dtype=np.int64), r"one per bin, shape \[bins\]"),
        ("states", np.array([{"state": 0}] * 200, dtype=object), "without unpickling"),
    ],
)
def test_rodent_sleep_errors_name_the_file(tmp_path, which, bad, match):
    rates, states = tiny_arrays()
    rates, states = (bad, states) if which == "rates" else (rates, bad)
    folder = tmp_path / "art"
    folder.mkdir()
    np.save(folder / RATES_FILE, rates, allow_pickle=True)
    np.save(folder / STATES_FILE, states, allow_pickle=True)
    name = RATES_FILE if which == "rates" else STATES_FILE
    with pytest.raises(ValueError, match=match) as err:
        rodent_sleep(folder)
    assert str(folder / name) in str(err.value)


def test_rodent_sleep_accepts_integral_float_labels_and_more_states(tmp_path):
    rates, _ = tiny_arrays()
    states = np.arange(200) % 4
    write_pair(tmp_path, rates, states.astype(np.float64))
    data = rodent_sleep(tmp_path, n_states=4, block_bins=None)
    assert data.n_classes == 4 and data.direction.tolist() == states.tolist() and data.trial.unique().numel() == 3


def test_trial_data_rejects_unknown_task():
    data = rodent_like(n_units=3, n_bins=50, block_bins=10)
    with pytest.raises(ValueError, match="task must be one of"):
        TrialData(**{**{f: getattr(data, f) for f in data.__dataclass_fields__}, "task": "sleep"})


# ------------------------------------------------------------------------------------------- stand-in
def test_rodent_like_state_frequencies_dwell_and_rates():
    probs = np.array([0.35, 0.57, 0.07])
    rates, states = rodent_like_arrays(n_units=40, n_bins=50_000, state_probs=probs, seed=1)
    assert rates.shape == (40, 50_000) and rates.dtype == np.int32 and states.dtype == np.int64
    freq = np.bincount(states, minlength=3) / states.size
    np.testing.assert_allclose(freq, probs, atol=0.04)
    # bout lengths: switch_bins / (1 - p) on average (redraws may keep the state)
    change = np.flatnonzero(np.diff(states)) + 1
    bouts = np.diff(np.r_[0, change, states.size])
    bout_state = states[np.r_[0, change]]
    for s, p in enumerate(probs):
        assert bouts[bout_state == s].mean() == pytest.approx(20.0 / (1 - p), rel=0.25)

    def spread(r, st):  # per unit: largest / smallest mean count over the states
        means = np.stack([r[:, st == s].mean(1) for s in range(3)], 1)
        return np.median(means.max(1) / means.min(1))

    assert spread(rates, states) > 1.08  # the default state effect: log-rate sd 0.1 per unit and state
    flat, flat_states = rodent_like_arrays(n_units=40, n_bins=50_000, state_modulation=0.0, seed=1)
    assert spread(flat, flat_states) < 1.04  # control: without a state effect the rates agree
    data = rodent_like(n_units=40, n_bins=50_000, seed=1)
    np.testing.assert_array_equal(data.counts.numpy(), rates.T)
    np.testing.assert_array_equal(data.direction.numpy(), states)


def test_count_jitter_pairs_with_recording_wide_time():
    data = rodent_like(n_units=3, n_bins=300, block_bins=40)
    train = data.split == 0
    brute = sum(
        int(bool(train[i]) and bool(train[i + k]) and int(data.trial[i]) == int(data.trial[i + k]))
        for i in range(300)
        for k in range(4)
        if i + k < 300
    )
    assert count_jitter_pairs(data, 3, rows=train, min_shift=0) == brute


# ------------------------------------------------------------------------------------------- mining
def test_mining_with_exclude_window_never_returns_a_close_candidate():
    data = rodent_like(n_units=20, n_bins=3000, block_bins=200, state_modulation=0.4, seed=2)
    x = torch.log1p(data.counts)
    train = torch.nonzero(data.split == 0).squeeze(1)
    g = torch.Generator().manual_seed(0)
    anchors = train[torch.randperm(train.numel(), generator=g)[:256]]
    pool = train[torch.randperm(train.numel(), generator=g)[:512]]
    zeros_a, zeros_p = torch.zeros(256, dtype=torch.long), torch.zeros(512, dtype=torch.long)
    kw = dict(anchor_time=data.time[anchors], pool_time=data.time[pool])

    def gaps(window: int) -> torch.Tensor:
        idx = mine_views(
            x[anchors], x[pool], zeros_a, zeros_p, 5, torch.Generator().manual_seed(1), **kw, exclude_window=window
        )
        ok = idx >= 0
        assert ok.all()
        return (data.time[anchors][ok] - data.time[pool][idx[ok]]).abs()

    assert (gaps(0) <= 150).any()  # neighbours in activity are often neighbours in time ...
    assert (gaps(150) > 150).all()  # ... and the rodent rule excludes every one within +-150 bins


def test_train_myow_mines_across_blocks_outside_the_window(monkeypatch):
    data = rodent_like(n_units=16, n_bins=2000, block_bins=100, seed=3)
    seen = []

    def spy(anchor, pool, ag, pg, k, generator=None, **kw):
        idx = mine_views(anchor, pool, ag, pg, k, generator, **kw)
        seen.append((ag.clone(), pg.clone(), kw["anchor_time"].clone(), kw["pool_time"].clone(), idx.clone()))
        return idx

    monkeypatch.setattr(myow_module, "mine_views", spy)
    myow_module.train_myow_neural(
        data,
        preset="myow-neuro",
        encoder="myow-neuro-rodent",
        epochs=2,
        steps_per_epoch=2,
        batch_size=64,
        pool_size=256,
        max_shift=3,
        min_shift=0,
        exclude_window=150,
        mined_warmup_epochs=0,
        skip_mining_when_zero=False,
        device="cpu",
    )
    assert len(seen) == 4
    for ag, pg, at, pt, idx in seen:
        assert (ag == 0).all() and (pg == 0).all()  # one group: the window alone decides, across blocks
        ok = idx >= 0
        assert ok.any() and ((at[ok] - pt[idx[ok]]).abs() > 150).all()


# ------------------------------------------------------------------------------------------- probes
def test_weighted_f1_known_answer():
    y_true = [0, 0, 0, 1, 1, 2]
    y_pred = [0, 0, 1, 1, 2, 2]
    # class 0: P 1, R 2/3, F1 0.8; class 1: P 1/2, R 1/2, F1 0.5; class 2: P 1/2, R 1, F1 2/3
    expected = (3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6
    assert weighted_f1(y_true, y_pred) == pytest.approx(expected)
    assert weighted_f1([0, 1], [0, 1], n_classes=3) == 1.0 and np.isnan(weighted_f1([], []))


def test_balanced_class_probe_recalls_the_rare_class():
    g = torch.Generator().manual_seed(0)
    n = 3000
    y = (torch.rand(n, generator=g) < 0.07).long()  # 7 % minority, overlapping classes
    z = torch.randn(n, 4, generator=g)
    z[:, 0] += 1.5 * y
    args = (z[:2000], y[:2000], z[2000:2500], y[2000:2500], z[2500:], y[2500:])
    kw = dict(weight_decays=[1e-3], epochs=20, seed=0)
    plain = class_probe(*args, **kw)
    balanced = class_probe(*args, **kw, balanced=True, samples_per_epoch=5000)
    assert {"acc", "f1", "val_acc", "val_f1", "weight_decay"} <= set(balanced)

    def minority_recall(res_kw):
        from repro.neural.probes import fit_linear_heads, standardise

        xs, xt = standardise(z[:2000], z[2500:])
        ce = lambda p, t: torch.nn.functional.cross_entropy(p[0], t).reshape(1)  # noqa: E731
        w, b = fit_linear_heads(xs, y[:2000], 2, ce, [1e-3], epochs=20, seed=0, **res_kw)
        pred = (xt @ w[0] + b[0]).argmax(1)
        return float((pred[y[2500:] == 1] == 1).float().mean())

    weights = 1.0 / torch.bincount(y[:2000]).double()[y[:2000]]
    assert minority_recall({"sample_weights": weights, "samples_per_epoch": 5000}) > minority_recall({}) + 0.3
    assert balanced["acc"] < plain["acc"]  # balancing trades majority accuracy for minority recall


# ------------------------------------------------------------------------------------------- stages
def test_evaluate_states_from_raw_counts_is_well_above_chance():
    data = rodent_like(n_units=30, n_bins=4000, block_bins=400, state_modulation=0.3, seed=4)
    arrays, _ = stages.train_neural(data, "raw", "rodent_like", {"seed": 0})
    assert str(arrays["task"]) == "states" and arrays["task"].dtype.kind == "U"
    rows = stages.evaluate_neural(arrays, "raw", "rodent_like", FAST_PROBE)
    values = {r["metric"]: r["value"] for r in rows}
    assert set(values) == {"state_acc", "state_f1", "val_acc", "val_f1", "state_weight_decay", "knn_acc"}
    test_states = data.direction[data.split == 2]
    majority = float(torch.bincount(test_states).max()) / test_states.numel()
    assert values["state_acc"] > max(0.85, majority + 0.15)  # chance 1/3 (balanced), majority ~0.6
    assert values["state_f1"] > 0.85 and values["knn_acc"] > 0.8
    setting = rows[0]["setting"]
    assert setting["task"] == "states" and setting["n_classes"] == 3 and setting["balanced_samples"] == 2000
    assert setting["speed_threshold"] is None  # no velocity: no speed filter

    # a states array set mislabelled as direction fails clearly (NaN angles)
    with pytest.raises(ValueError, match="finite angles"):
        stages.evaluate_neural({**arrays, "task": np.asarray("direction")}, "raw", "rodent_like", FAST_PROBE)


def test_npz_round_trip_without_pickle(tmp_path):
    data = rodent_like(n_units=4, n_bins=200, block_bins=50)
    arrays, _ = stages.train_neural(data, "raw", "rl", {"seed": 0})
    np.savez(tmp_path / "reps.npz", **arrays)
    with np.load(tmp_path / "reps.npz", allow_pickle=False) as npz:
        assert str(npz["task"]) == "states"


def paper_rodent_train_options() -> dict:
    config = yaml.safe_load((ROOT / "config" / "paper.yaml").read_text())
    spec = config["neural_data"]["rodent_mouse"]
    assert spec["loader"] == "rodent_npy" and "rodent_mouse" in config["myow"]["datasets"]
    return dict(spec["train"])


@pytest.mark.parametrize("model", ["myow", "byol"])
def test_train_myow_on_rodent_like_with_the_paper_settings(model):
    data = rodent_like(n_units=20, n_bins=1500, block_bins=150, seed=5)
    opts = {
        **paper_rodent_train_options(),
        "epochs": 2,
        "steps_per_epoch": 2,
        "batch_size": 64,
        "pool_size": 128,
        "device": "cpu",
        "progress": False,
        "seed": 1,
    }
    arrays, records = stages.train_neural(data, model, "rodent_like", opts)
    assert arrays["representation"].shape == (1500, 32) and np.isfinite(arrays["representation"]).all()
    assert str(arrays["task"]) == "states"
    losses = [r["value"] for r in records if r["metric"] == "loss"]
    assert len(losses) == 2 and all(np.isfinite(losses))
    if model == "myow":
        assert [r["value"] for r in records if r["metric"] == "mined_frac"] == [1.0, 1.0]
    rows = stages.evaluate_neural(arrays, model, "rodent_like", FAST_PROBE)
    assert {r["metric"] for r in rows} >= {"state_acc", "state_f1"}


# ------------------------------------------------------------------------------------------- report
def _decoding_rows(values: dict, metric: str, n_classes: int):
    from repro.report.rows import PROVENANCE_COLUMNS, tidy_rows

    records = [
        {
            "method": stages.METHOD_NAMES[model],
            "model": model,
            "dataset": dataset,
            "seed": 0,
            "metric": metric,
            "value": value,
            "setting": {"n_classes": n_classes},
        }
        for (dataset, model), value in values.items()
    ]
    prov = {c: "-" for c in PROVENANCE_COLUMNS}
    return tidy_rows(records, paper="myow", experiment="decoding", tier="test", provenance=prov)


def test_report_takes_state_rows(tmp_path):
    import pandas as pd

    from repro.neural import report

    direction = _decoding_rows({("chewie_1", "myow"): 0.8, ("chewie_1", "byol"): 0.7}, "direction_acc", 8)
    states = _decoding_rows({("rodent_mouse", "myow"): 0.6, ("rodent_mouse", "byol"): 0.65}, "state_acc", 3)
    table = pd.concat([direction, states], ignore_index=True)
    claim = {c.claim_id: c for c in report.myow_claims(table)}["myow_beats_byol_neural"]
    assert claim.measured == pytest.approx(10.0) and claim.holds is True  # reach datasets only ...
    assert "state accuracy: rodent_mouse: MYOW 60.00% vs BYOL 65.00%" in claim.detail  # ... states in the detail
    frame = report.decoding_frame(table, "myow", "state_acc")
    assert set(frame["dataset"]) == {"rodent_mouse"} and frame["chance"].tolist() == pytest.approx([1 / 3] * 2)
    report.plot_decoding(table, tmp_path / "decoding.png", "myow")
    report.plot_decoding(states, tmp_path / "states_only.png", "myow")  # no reach rows at all
    assert (tmp_path / "decoding.png").stat().st_size > 1000 and (tmp_path / "states_only.png").stat().st_size > 1000

    data = rodent_like(n_units=6, n_bins=300, block_bins=50)
    arrays, _ = stages.train_neural(data, "raw", "rodent_like", {"seed": 0})
    np.savez(tmp_path / "states.npz", **arrays)
    report.plot_embeddings({"rodent_like/raw": tmp_path / "states.npz"}, tmp_path / "embeddings.png")
    assert (tmp_path / "embeddings.png").stat().st_size > 1000
