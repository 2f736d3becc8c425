"""Swap-VAE / MYOW report (repro.neural.report): claims on hand-made tables (holding, failing, missing
rows) with hand-computed measurements, and every figure written from small tables / npz files."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from repro.neural import report
from repro.neural.stages import METHOD_NAMES
from repro.report.claims import claims_frame
from repro.report.rows import PROVENANCE_COLUMNS, tidy_rows

PROV = {c: "-" for c in PROVENANCE_COLUMNS}


def rows(paper, experiment, values, metric, seeds=(0, 1), setting=None, jitter=0.01) -> pd.DataFrame:
    """``values``: ``{(dataset, model): value}``; each seed +-``jitter`` around it (mean exact)."""
    records = []
    for (dataset, model), value in values.items():
        for i, seed in enumerate(seeds):
            offset = 0.0 if len(seeds) == 1 else jitter * (1 if i % 2 else -1)
            records.append(
                {
                    "method": METHOD_NAMES.get(model, model),
                    "model": model,
                    "dataset": dataset,
                    "seed": seed,
                    "metric": metric,
                    "value": value + offset,
                    "setting": setting or {},
                }
            )
    return tidy_rows(records, paper=paper, experiment=experiment, tier="test", provenance=PROV)


def swap_table(acc, content=None, style=None, n_classes=8) -> pd.DataFrame:
    parts = [rows("swap_vae", "decoding", acc, "direction_acc", setting={"n_classes": n_classes})]
    if content:
        parts.append(rows("swap_vae", "disentanglement", content, "acc_content"))
    if style:
        parts.append(rows("swap_vae", "disentanglement", style, "acc_style"))
    return pd.concat(parts, ignore_index=True)


def by_id(claims):
    return {c.claim_id: c for c in claims}


# ------------------------------------------------------------------------------------------- Swap-VAE claims
def test_swap_vae_claims_hold():
    acc = {("A", "swap_vae"): 0.8, ("A", "vae"): 0.6, ("A", "beta_vae"): 0.5, ("B", "swap_vae"): 0.7}
    acc |= {("B", "vae"): 0.65, ("B", "beta_vae"): 0.4}
    content = {("A", "swap_vae"): 0.9, ("B", "swap_vae"): 0.7}
    style = {("A", "swap_vae"): 0.3, ("B", "swap_vae"): 0.6}
    c = by_id(report.swap_vae_claims(swap_table(acc, content, style)))
    assert c["content_beats_vae"].holds is True
    assert c["content_beats_vae"].measured == pytest.approx(5.0)  # min(20, 30, 5, 30) points
    assert c["content_beats_style"].holds is True
    assert c["content_beats_style"].measured == pytest.approx(10.0)  # min(60, 10)
    assert c["swap_vae_above_chance"].holds is True
    assert c["swap_vae_above_chance"].measured == pytest.approx(0.7 / 0.125)
    frame = claims_frame(list(c.values()), "swap_vae", "test")
    assert frame["holds"].tolist() == [True, True, True]


def test_swap_vae_claims_fail():
    acc = {("A", "swap_vae"): 0.2, ("A", "vae"): 0.22, ("A", "beta_vae"): 0.1}
    content = {("A", "swap_vae"): 0.3}
    style = {("A", "swap_vae"): 0.35}
    c = by_id(report.swap_vae_claims(swap_table(acc, content, style)))
    assert c["content_beats_vae"].holds is False
    assert c["content_beats_vae"].measured == pytest.approx(-2.0)
    assert c["content_beats_style"].holds is False
    assert c["content_beats_style"].measured == pytest.approx(-5.0)
    assert c["swap_vae_above_chance"].holds is False  # 0.2 / 0.125 = 1.6 < 2
    assert c["swap_vae_above_chance"].measured == pytest.approx(1.6)


def test_swap_vae_claims_missing_rows():
    for table in (pd.DataFrame(), swap_table({("A", "swap_vae"): 0.9})):
        c = by_id(report.swap_vae_claims(table))
        assert math.isnan(c["content_beats_vae"].measured) and c["content_beats_vae"].holds is None
        assert math.isnan(c["content_beats_style"].measured) and c["content_beats_style"].holds is None
    c = by_id(report.swap_vae_claims(pd.DataFrame()))
    assert math.isnan(c["swap_vae_above_chance"].measured) and c["swap_vae_above_chance"].holds is None
    frame = claims_frame(report.swap_vae_claims(pd.DataFrame()), "swap_vae", "test")
    assert frame["holds"].isna().all()
    # only one baseline present: compared with it alone
    c = by_id(report.swap_vae_claims(swap_table({("A", "swap_vae"): 0.5, ("A", "vae"): 0.4})))
    assert c["content_beats_vae"].measured == pytest.approx(10.0) and c["content_beats_vae"].holds is True


def test_claims_prefer_their_own_paper_rows():
    own = swap_table({("A", "swap_vae"): 0.8, ("A", "vae"): 0.6})
    other = rows("myow", "decoding", {("A", "swap_vae"): 0.1, ("A", "vae"): 0.9}, "direction_acc")
    c = by_id(report.swap_vae_claims(pd.concat([own, other], ignore_index=True)))
    assert c["content_beats_vae"].measured == pytest.approx(20.0)


# ------------------------------------------------------------------------------------------- MYOW claims
def myow_table(acc, probe=None, knn=None) -> pd.DataFrame:
    parts = [rows("myow", "decoding", acc, "direction_acc", setting={"n_classes": 8})]
    if probe:
        parts.append(rows("myow", "images", probe, "linear_probe_acc"))
    if knn:
        parts.append(rows("myow", "images", knn, "knn_acc"))
    return pd.concat(parts, ignore_index=True)


def test_myow_claims_hold_and_fail():
    acc = {("A", "myow"): 0.7, ("A", "byol"): 0.6, ("A", "raw"): 0.5, ("B", "myow"): 0.5, ("B", "byol"): 0.55}
    acc[("B", "raw")] = 0.45
    probe = {("fmnist", "myow"): 0.80, ("fmnist", "byol"): 0.78}
    knn = {("fmnist", "myow"): 0.7, ("fmnist", "byol"): 0.75}
    c = by_id(report.myow_claims(myow_table(acc, probe, knn)))
    assert c["myow_beats_byol_neural"].holds is False
    assert c["myow_beats_byol_neural"].measured == pytest.approx(-5.0)  # min(10, -5)
    assert c["myow_vs_byol_images"].holds is True
    assert c["myow_vs_byol_images"].measured == pytest.approx(2.0)
    assert "k-NN" in c["myow_vs_byol_images"].detail
    assert c["myow_beats_raw"].holds is True
    assert c["myow_beats_raw"].measured == pytest.approx(5.0)  # min(20, 5)
    assert "not a paper claim" in c["myow_beats_raw"].comparison


def test_myow_claims_missing_rows():
    c = by_id(report.myow_claims(myow_table({("A", "myow"): 0.7})))
    assert set(c) == {"myow_beats_byol_neural", "myow_vs_byol_images", "myow_beats_raw"}
    for claim in c.values():
        assert math.isnan(claim.measured) and claim.holds is None
    assert claims_frame(list(c.values()), "myow", "test")["holds"].isna().all()


# ------------------------------------------------------------------------------------------- figures
def decoding_table() -> pd.DataFrame:
    acc = {(d, m): v for d in ("reach", "synthetic") for m, v in (("swap_vae", 0.8), ("vae", 0.6), ("raw", 0.5))}
    parts = [
        rows("swap_vae", "decoding", acc, "direction_acc", setting={"n_classes": 8}),
        rows("swap_vae", "decoding", {("reach", "swap_vae"): 0.6, ("reach", "vae"): 0.3}, "velocity_r2"),
        rows("swap_vae", "disentanglement", {("reach", "swap_vae"): 0.9}, "acc_content"),
        rows("swap_vae", "disentanglement", {("reach", "swap_vae"): 0.2}, "acc_style"),
    ]
    return pd.concat(parts, ignore_index=True)


def training_table() -> pd.DataFrame:
    records = []
    for model, key, scale in (("swap_vae", "total", 100.0), ("vae", "total", 80.0), ("myow", "loss", 2.0)):
        for seed in (0, 1):
            for epoch in range(5):
                records.append(
                    {
                        "method": METHOD_NAMES[model],
                        "model": model,
                        "dataset": "reach",
                        "seed": seed,
                        "metric": key,
                        "value": scale / (epoch + 1) + seed,
                        "setting": {"epoch": epoch},
                    }
                )
    records.append(
        {"method": "raw counts", "model": "raw", "dataset": "reach", "seed": 0, "metric": "train_seconds", "value": 0.0}
    )
    return tidy_rows(records, paper="swap_vae", experiment="training", tier="test", provenance=PROV)


def test_plot_decoding_and_training(tmp_path):
    report.plot_decoding(decoding_table(), tmp_path / "decoding.png", "swap_vae")
    report.plot_training(training_table(), tmp_path / "training.png", "swap_vae")
    for name in ("decoding", "training"):
        assert (tmp_path / f"{name}.png").stat().st_size > 1000
        assert (tmp_path / f"{name}.pdf").exists()
    frame = report.training_frame(training_table())
    first = frame[(frame["model"] == "swap_vae") & (frame["epoch"] == 0)].iloc[0]
    assert (first["mean"], first["min"], first["max"]) == pytest.approx((100.5, 100.0, 101.0))


def test_plots_refuse_empty_tables(tmp_path):
    with pytest.raises(ValueError, match="decoding"):
        report.plot_decoding(pd.DataFrame(), tmp_path / "d.png", "swap_vae")
    with pytest.raises(ValueError, match="training"):
        report.plot_training(decoding_table(), tmp_path / "t.png", "swap_vae")
    with pytest.raises(ValueError, match="images"):
        report.plot_images(decoding_table(), tmp_path / "i.png")


def write_reps(path, n=80, dim=6, n_classes=8, seed=0):
    rng = np.random.default_rng(seed)
    direction = np.arange(n) % n_classes
    np.savez(
        path,
        representation=rng.normal(size=(n, dim)).astype(np.float32),
        direction=direction,
        angle=(2 * np.pi * direction / n_classes).astype(np.float32),
        split=np.repeat([0, 2], n // 2),
        n_classes=np.asarray(n_classes),
    )
    return path


def test_plot_embeddings(tmp_path):
    files = {
        "reach/swap_vae": write_reps(tmp_path / "a.npz"),
        "reach/raw": write_reps(tmp_path / "b.npz", dim=1),  # 1-D representation: padded PCA
        "synthetic/myow": write_reps(tmp_path / "c.npz", n_classes=4),
    }
    report.plot_embeddings(files, tmp_path / "embeddings.png")
    assert (tmp_path / "embeddings.png").stat().st_size > 1000


def test_plot_images(tmp_path):
    table = pd.concat(
        [
            rows("myow", "images", {("fmnist", "myow"): 0.8, ("fmnist", "byol"): 0.78}, "linear_probe_acc"),
            rows("myow", "images", {("fmnist", "myow"): 0.7, ("fmnist", "byol"): 0.72}, "knn_acc"),
        ],
        ignore_index=True,
    )
    report.plot_images(table, tmp_path / "images.png")
    assert (tmp_path / "images.png").stat().st_size > 1000


def test_decoding_frame_chance():
    frame = report.decoding_frame(decoding_table())
    assert set(frame["chance"]) == {0.125}
    row = frame[(frame["dataset"] == "reach") & (frame["model"] == "swap_vae")].iloc[0]
    assert row["mean"] == pytest.approx(0.8) and row["std"] == pytest.approx(0.01 * math.sqrt(2)) and row["n"] == 2
