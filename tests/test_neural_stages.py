"""Swap-VAE / MYOW stages (repro.neural.stages): loaders, tiny training runs of every model, the probes
on representations with a known answer (perfect, random, speed-filtered) and the image stage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repro.neural import stages
from repro.neural.trials import TrialData
from repro.report.rows import PROVENANCE_COLUMNS, setting_json, tidy_rows

PROV = {c: "-" for c in PROVENANCE_COLUMNS}
TINY_REACH = {"n_trials": 24, "n_units": 12, "min_bins": 4, "max_bins": 6}
TRAIN_OPTIONS = {
    "swap_vae": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 16, "latent_dim": 8, "hidden": [16]},
    "myow": {"epochs": 2, "steps_per_epoch": 2, "batch_size": 16, "pool_size": 16, "k": 1, "encoder": "myow-neuro"},
}
PROBE = {"probe_epochs": 150, "lr": 0.05, "weight_decays": [1e-4]}


def options_for(model: str) -> dict:
    if model in stages.SWAP_FAMILY:
        return {**TRAIN_OPTIONS["swap_vae"], "progress": False, "seed": 3}
    if model in ("myow", "byol"):
        return {**TRAIN_OPTIONS["myow"], "progress": False, "seed": 3}
    return {"seed": 3}


@pytest.fixture(scope="module")
def tiny() -> TrialData:
    return stages.load_trials("reach", TINY_REACH)


# ------------------------------------------------------------------------------------------- loaders
def test_load_trials_reach_and_swap_synthetic():
    data = stages.load_trials("reach", {**TINY_REACH, "split": [0.6, 0.2, 0.2]})  # YAML list -> tuple
    assert isinstance(data, TrialData) and data.n_units == 12 and data.n_classes == 8
    syn = stages.load_trials("swap_synthetic", {"n_samples": 40, "n_neurons": 10})
    assert isinstance(syn, TrialData) and syn.n_units == 10 and syn.n_classes == 4


def test_load_trials_errors_name_the_culprit_and_the_choices():
    with pytest.raises(ValueError, match=r"'nope'.*reach.*swap_synthetic"):
        stages.load_trials("nope", {})
    with pytest.raises(ValueError, match=r"n_neurons.*accepted.*n_trials"):
        stages.load_trials("reach", {"n_neurons": 10})
    with pytest.raises(ValueError, match="return_info"):
        stages.load_trials("swap_synthetic", {"return_info": True})


# ------------------------------------------------------------------------------------------- training
@pytest.mark.parametrize("model", stages.NEURAL_MODELS)
def test_train_neural_arrays_and_records(tiny, model):
    arrays, records = stages.train_neural(tiny, model, "tiny", options_for(model))
    b = tiny.counts.shape[0]
    rep = arrays["representation"]
    assert rep.dtype == np.float32 and rep.shape[0] == b and np.isfinite(rep).all()
    for key in ("direction", "angle", "split", "trial"):
        np.testing.assert_array_equal(arrays[key], getattr(tiny, key).numpy())
    assert arrays["velocity"].shape == (b, 2)
    assert int(arrays["n_classes"]) == 8 and int(arrays["seed"]) == 3
    if model in stages.SWAP_FAMILY:
        width = 4 if model == "swap_vae" else 0  # latent 8: Swap-VAE 4 content + 4 style; VAEs all style
        assert arrays["content"].shape == (b, width)
        assert arrays["style"].shape == (b, 8 - width)
        np.testing.assert_array_equal(rep, np.concatenate([arrays["content"], arrays["style"]], axis=1))
    elif model == "raw":
        train = rep[tiny.split.numpy() == 0]
        np.testing.assert_allclose(train.mean(0), 0.0, atol=1e-5)
        np.testing.assert_allclose(train.std(0, ddof=1), 1.0, atol=1e-4)
    else:
        assert rep.shape[1] == 64 and "content" not in arrays

    assert {r["experiment"] for r in records} == {"training"}
    assert {r["model"] for r in records} == {model}
    assert {r["method"] for r in records} == {stages.METHOD_NAMES[model]}
    assert {r["seed"] for r in records} == {3} and {r["dataset"] for r in records} == {"tiny"}
    for r in records:
        setting_json(r["setting"])  # JSON-ready
        assert "seed" not in r["setting"] and "progress" not in r["setting"]
    metrics = {r["metric"] for r in records}
    assert {"train_seconds", "representation_dim"} <= metrics
    dim = next(r["value"] for r in records if r["metric"] == "representation_dim")
    assert dim == rep.shape[1]
    loss = {"swap_vae": "total", "vae": "total", "beta_vae": "total", "myow": "loss", "byol": "loss"}.get(model)
    if loss:
        epochs = sorted(r["setting"]["epoch"] for r in records if r["metric"] == loss)
        assert epochs == [0, 1]
    else:
        assert all("epoch" not in r["setting"] for r in records)
    if model == "byol":
        assert "l_mined" not in metrics  # all NaN for BYOL: left out
    table = tidy_rows(records, paper="swap_vae", experiment="training", tier="test", provenance=PROV)
    assert len(table) == len(records)


@pytest.mark.parametrize("model", ["swap_vae", "myow", "raw"])
def test_train_neural_unknown_option_is_named(tiny, model):
    with pytest.raises(ValueError, match="not_an_option"):
        stages.train_neural(tiny, model, "tiny", {"not_an_option": 1})


def test_train_neural_unknown_model(tiny):
    with pytest.raises(ValueError, match=r"'gpt'.*swap_vae"):
        stages.train_neural(tiny, "gpt", "tiny", {})


def test_train_neural_fixed_keys_are_refused(tiny):
    with pytest.raises(ValueError, match="variant"):
        stages.train_neural(tiny, "vae", "tiny", {"variant": "swap_vae"})
    with pytest.raises(ValueError, match="mined"):
        stages.train_neural(tiny, "byol", "tiny", {"mined": True})


# ------------------------------------------------------------------------------------------- evaluation
def synthetic_reps(n_per_class=30, n_classes=8, signal=True, seed=0, velocity=None) -> dict[str, np.ndarray]:
    """Bins of ``n_classes`` directions split 50/25/25 by trial; ``signal``: reps = (cos, sin) of the angle
    + noise 0.01 + two noise dimensions of scale 0.1, else pure noise."""
    rng = np.random.default_rng(seed)
    direction = np.repeat(np.arange(n_classes), n_per_class)
    rng.shuffle(direction)
    b = direction.size
    angle = (2 * np.pi * direction / n_classes).astype(np.float32)
    split = np.repeat([0, 1, 2], [b // 2, b // 4, b - b // 2 - b // 4])
    noise = rng.normal(size=(b, 4)).astype(np.float32)
    if signal:
        z = np.concatenate([np.stack([np.cos(angle), np.sin(angle)], 1) + 0.01 * noise[:, :2], 0.1 * noise[:, 2:]], 1)
    else:
        z = noise
    return {
        "representation": z.astype(np.float32),
        "direction": direction,
        "angle": angle,
        "velocity": np.zeros((b, 2), np.float32) if velocity is None else velocity,
        "split": split,
        "trial": np.arange(b),
        "n_classes": np.asarray(n_classes),
        "seed": np.asarray(7),
    }


def values(records: list[dict]) -> dict[str, float]:
    return {r["metric"]: r["value"] for r in records}


def test_evaluate_perfect_representation_decodes_direction():
    records = stages.evaluate_neural(synthetic_reps(), "myow", "syn", PROBE)
    v = values(records)
    assert v["direction_acc"] == pytest.approx(1.0) and v["direction_delta_acc"] == pytest.approx(1.0)
    assert v["knn_acc"] == pytest.approx(1.0) and v["val_acc"] == pytest.approx(1.0)
    assert "velocity_r2" not in v  # no velocity in these data
    assert {r["experiment"] for r in records} == {"decoding"}
    assert {r["seed"] for r in records} == {7}  # taken from the arrays
    setting = records[0]["setting"]
    assert setting["n_classes"] == 8 and setting["speed_threshold"] is None and setting["knn_k"] == 5
    setting_json(setting)


def test_evaluate_random_representation_is_near_chance():
    v = values(stages.evaluate_neural(synthetic_reps(signal=False), "byol", "syn", {**PROBE, "knn_k": 3}))
    assert v["direction_acc"] < 0.35 and v["knn_acc"] < 0.35  # chance 1/8


def test_speed_filter_removes_slow_bins():
    reps = synthetic_reps()
    b = reps["angle"].size
    slow = np.arange(b) % 2 == 1
    reps["representation"][slow, :2] *= -1  # slow bins point the opposite way
    speed = np.where(slow, 1.0, 20.0)
    reps["velocity"] = (speed[:, None] * np.stack([np.cos(reps["angle"]), np.sin(reps["angle"])], 1)).astype(np.float32)
    filtered = stages.evaluate_neural(reps, "raw", "syn", PROBE)
    v = values(filtered)
    assert v["direction_acc"] == pytest.approx(1.0) and v["knn_acc"] == pytest.approx(1.0)
    assert "velocity_r2" in v and filtered[0]["setting"]["speed_threshold"] == 5.0
    unfiltered = values(stages.evaluate_neural(reps, "raw", "syn", {**PROBE, "speed_threshold": None}))
    assert unfiltered["direction_acc"] < 0.8


def test_disentanglement_rows_for_swap_vae_only_with_content():
    reps = synthetic_reps()
    reps["content"] = reps["representation"][:, :2].copy()
    reps["style"] = reps["representation"][:, 2:].copy()
    records = stages.evaluate_neural(reps, "swap_vae", "syn", PROBE)
    dis = {r["metric"]: r["value"] for r in records if r["experiment"] == "disentanglement"}
    assert set(dis) == {"acc_content", "acc_style", "delta_acc_content", "delta_acc_style"}  # no velocity: no r2
    assert dis["acc_content"] == pytest.approx(1.0) and dis["acc_style"] < 0.4
    reps["content"] = np.zeros((reps["angle"].size, 0), np.float32)
    assert all(r["experiment"] == "decoding" for r in stages.evaluate_neural(reps, "vae", "syn", PROBE))


def test_evaluate_options_are_checked():
    with pytest.raises(ValueError, match="knn"):
        stages.evaluate_neural(synthetic_reps(), "myow", "syn", {"knn": 3})
    with pytest.raises(ValueError, match="probe_epochs"):
        stages.evaluate_neural(synthetic_reps(), "myow", "syn", {"epochs": 2, "probe_epochs": 3})


def test_train_then_evaluate_end_to_end(tiny):
    arrays, _ = stages.train_neural(tiny, "swap_vae", "tiny", options_for("swap_vae"))
    records = stages.evaluate_neural(arrays, "swap_vae", "tiny", {"probe_epochs": 2, "weight_decays": [1e-3]})
    metrics = {(r["experiment"], r["metric"]) for r in records}
    assert ("decoding", "velocity_r2") in metrics and ("disentanglement", "r2_content") in metrics
    assert all(math.isfinite(r["value"]) for r in records if r["metric"] != "val_acc")


# ------------------------------------------------------------------------------------------- images
def tiny_images(n_train=60, n_test=20, n_classes=3, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x_train": rng.integers(0, 256, size=(n_train, 28, 28), dtype=np.uint8),
        "y_train": np.arange(n_train) % n_classes,
        "x_test": rng.integers(0, 256, size=(n_test, 28, 28), dtype=np.uint8),
        "y_test": np.arange(n_test) % n_classes,
    }


IMAGE_OPTIONS = {
    "n_train": 30,
    "n_val": 12,
    "n_test": 15,
    "epochs": 1,
    "batch_size": 15,
    "width": 4,
    "probe_epochs": 2,
    "weight_decays": [1e-3],
    "knn_k": 3,
    "progress": False,
}


@pytest.mark.parametrize("model", ["myow", "byol"])
def test_image_records_runs_on_tiny_images(model):
    records = stages.image_records(tiny_images(), model, "tiny_images", {**IMAGE_OPTIONS, "seed": 1})
    images = {r["metric"]: r for r in records if r["experiment"] == "images"}
    assert set(images) == {"linear_probe_acc", "linear_probe_val_acc", "knn_acc"}
    for r in images.values():
        assert 0.0 <= r["value"] <= 1.0 and r["method"] == stages.METHOD_NAMES[model] and r["seed"] == 1
    setting = images["linear_probe_acc"]["setting"]
    assert (setting["n_train"], setting["n_val"], setting["n_test"]) == (30, 12, 15)
    assert setting["epochs"] == 1 and setting["mined"] == (model == "myow")
    setting_json(setting)
    training = [r for r in records if r["experiment"] == "images_training"]
    assert any(r["metric"] == "loss" and r["setting"]["epoch"] == 0 for r in training)


def test_image_subsets_are_stratified_and_disjoint():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(4), 25)
    order = stages._stratified(labels, rng)
    assert sorted(order) == list(range(100))
    assert np.bincount(labels[order[:20]], minlength=4).tolist() == [5, 5, 5, 5]


def test_image_records_errors():
    with pytest.raises(ValueError, match="raw"):
        stages.image_records(tiny_images(), "raw", "x", {})
    with pytest.raises(ValueError, match="bogus"):
        stages.image_records(tiny_images(), "myow", "x", {"bogus": 1})
