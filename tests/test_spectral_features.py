"""Feature-set stages, linear probes and augmentations of the spectral-imbalance study (P1)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repro.spectral import augment as aug
from repro.spectral.class_probe import linear_probe, per_class_accuracy, probe_features
from repro.spectral.features import (
    balanced_indices,
    check_features,
    fashion_mnist_features,
    image_subsets,
    load_features,
    save_features,
    top_supersenses,
    wordnet_gloss_features,
)

ROOT = Path(__file__).resolve().parents[1]
MOBILENET_DIR = ROOT / "resources" / "artifacts" / "mobilenet_v2"
MINILM_DIR = ROOT / "resources" / "artifacts" / "minilm"
CLASSES = np.array([f"c{k}" for k in range(4)])


@pytest.fixture
def image_npz(tmp_path) -> Path:
    """A tiny image dataset in the project's .npz format: 4 classes, 12 train / 6 test images each."""
    rng = np.random.default_rng(0)
    y_train, y_test = np.repeat(np.arange(4), 12), np.repeat(np.arange(4), 6)
    rng.shuffle(y_train)

    def images(y):  # class k: a bright band at rows 2k..2k+1 plus noise
        x = rng.integers(0, 40, (len(y), 10, 10)).astype(np.uint8)
        for i, k in enumerate(y):
            x[i, 2 * k : 2 * k + 2] = 220
        return x

    path = tmp_path / "images.npz"
    np.savez_compressed(
        path, x_train=images(y_train), y_train=y_train, x_test=images(y_test), y_test=y_test, classes=CLASSES
    )
    return path


@pytest.fixture
def synsets_parquet(tmp_path) -> Path:
    rows = []
    for name, n in [("noun.animal", 30), ("noun.plant", 25), ("noun.food", 8), ("verb.motion", 40)]:
        pos = name.split(".")[0][0]
        topic = name.split(".")[1]
        rows += [(f"{pos}{len(rows) + i:08d}", pos, 0, name, ["w"], f"a {topic} gloss number {i}") for i in range(n)]
    rows.append(("n99999999", "n", 0, "noun.plant", ["w"], "a plant gloss number 0"))  # duplicate gloss text
    df = pd.DataFrame(rows, columns=["key", "pos", "lex_filenum", "lexname", "words", "gloss"])
    path = tmp_path / "synsets.parquet"
    df.to_parquet(path, index=False)
    return path


# --------------------------------------------------------------------------- sampling and storage


def test_balanced_indices_exact_and_seeded():
    labels = np.random.default_rng(3).integers(0, 5, 500)
    idx = balanced_indices(labels, 20, seed=7)
    assert len(idx) == 100 and len(np.unique(idx)) == 100
    assert np.array_equal(np.bincount(labels[idx]), [20] * 5)
    assert np.array_equal(idx, balanced_indices(labels, 20, seed=7))
    assert not np.array_equal(idx, balanced_indices(labels, 20, seed=8))
    assert np.array_equal(np.unique(labels[balanced_indices(labels, 3, 0, classes=[4, 1])]), [1, 4])
    with pytest.raises(ValueError, match="class 0 has"):
        balanced_indices(labels, 1000, seed=0)
    with pytest.raises(ValueError, match="n_per_class"):
        balanced_indices(labels, 0, seed=0)


def test_fashion_stage_with_reference_encoders(image_npz, tmp_path):
    out = tmp_path / "feats" / "pixels.npz"
    f = fashion_mnist_features(image_npz, "pixels", 5, 3, seed=1, output=out)
    assert f["x_train"].shape == (20, 100) and f["x_test"].shape == (12, 100)
    assert np.array_equal(np.bincount(f["y_train"]), [5] * 4) and np.array_equal(np.bincount(f["y_test"]), [3] * 4)
    assert list(f["classes"]) == list(CLASSES) and str(f["encoder"]) == "pixels"
    with np.load(image_npz) as z:  # provenance: the rows really are those images and labels
        np.testing.assert_allclose(f["x_train"], z["x_train"][f["idx_train"]].reshape(20, -1) / 255, rtol=1e-6)
        assert np.array_equal(f["y_test"], z["y_test"][f["idx_test"]])
    loaded = load_features(out)
    for key in f:
        assert np.array_equal(loaded[key], f[key]), key
    assert sorted(p.name for p in out.parent.iterdir()) == ["pixels.npz"]  # no temporary left behind
    again = fashion_mnist_features(image_npz, "pixels", 5, 3, seed=1)
    assert np.array_equal(again["idx_train"], f["idx_train"])
    pca = fashion_mnist_features(image_npz, "pca", 5, 3, seed=1, encoder_options={"n_components": 6})
    assert pca["x_train"].shape == (20, 6)
    np.testing.assert_allclose(pca["x_train"].mean(axis=0), 0, atol=1e-5)  # fitted on the train subset


def test_fashion_stage_errors_name_file_and_encoder(image_npz, tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.npz"):
        fashion_mnist_features(tmp_path / "absent.npz", "pixels")
    bad = tmp_path / "bad.npz"
    np.savez(bad, x_train=np.zeros((2, 4, 4), np.uint8), y_train=np.zeros(2, np.int64))
    with pytest.raises(ValueError, match="bad.npz.*missing"):
        fashion_mnist_features(bad, "pixels", 1, 1)
    with pytest.raises(ValueError, match="unknown encoder 'resnet'"):
        fashion_mnist_features(image_npz, "resnet", 2, 2)
    with pytest.raises(ValueError, match="'minilm' encodes text"):
        fashion_mnist_features(image_npz, "minilm", 2, 2)
    with pytest.raises(ValueError, match="class 0 has 12 samples"):
        fashion_mnist_features(image_npz, "pixels", 13, 2)
    with pytest.raises(FileNotFoundError, match="images.npz with 'mobilenet_v2'.*mobilenet_v2.json"):
        fashion_mnist_features(image_npz, "mobilenet_v2", 2, 2, encoder_options={"checkpoint": tmp_path / "none"})


def test_feature_files_are_validated(tmp_path):
    good = {
        "x_train": np.zeros((4, 3), np.float32),
        "y_train": np.array([0, 1, 0, 1]),
        "x_test": np.zeros((2, 3), np.float32),
        "y_test": np.array([0, 1]),
        "classes": np.array(["a", "b"]),
    }
    check_features(good)
    with pytest.raises(ValueError, match="y_test has labels outside"):
        check_features({**good, "y_test": np.array([0, 2])}, "f.npz")
    with pytest.raises(ValueError, match="x.npz: missing"):
        check_features({k: v for k, v in good.items() if k != "classes"}, "x.npz")
    save_features(tmp_path / "good.npz", good)
    assert np.array_equal(load_features(tmp_path / "good.npz")["y_train"], good["y_train"])
    with pytest.raises(ValueError, match="bad.npz: x_train must be"):
        save_features(tmp_path / "bad.npz", {**good, "x_train": np.zeros(4)})
    assert not (tmp_path / "bad.npz").exists()
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ValueError, match="junk.npz"):
        load_features(tmp_path / "junk.npz")


@pytest.mark.skipif(not any(MOBILENET_DIR.rglob("mobilenet_v2-*.pth")), reason="MobileNetV2 artifact missing")
def test_fashion_stage_with_mobilenet(image_npz):
    f = fashion_mnist_features(
        image_npz, "mobilenet_v2", 2, 1, encoder_options={"checkpoint": MOBILENET_DIR, "size": 32, "progress": False}
    )
    assert f["x_train"].shape == (8, 1280) and f["x_test"].shape == (4, 1280) and f["x_train"].dtype == np.float32


def test_wordnet_selection_and_errors(synsets_parquet):
    assert top_supersenses(synsets_parquet, 2) == ["noun.animal", "noun.plant"]
    assert top_supersenses(synsets_parquet, 3, pos="n", min_count=10) == ["noun.animal", "noun.plant"]
    with pytest.raises(ValueError, match="only 2 'n' supersenses"):
        wordnet_gloss_features(synsets_parquet, MINILM_DIR, 3, n_per_class=10, n_test_per_class=2)
    with pytest.raises(ValueError, match=r"noun\.bogus"):
        wordnet_gloss_features(synsets_parquet, MINILM_DIR, ["noun.animal", "noun.bogus"], 10, n_test_per_class=2)
    with pytest.raises(ValueError, match="class 'noun.food' has 8"):
        wordnet_gloss_features(synsets_parquet, MINILM_DIR, ["noun.animal", "noun.food"], 10, n_test_per_class=2)
    with pytest.raises(ValueError, match="n_test_per_class"):
        wordnet_gloss_features(synsets_parquet, MINILM_DIR, 2, 10, n_test_per_class=10)


@pytest.mark.skipif(
    not (MINILM_DIR.is_dir() and any(MINILM_DIR.rglob("config.json"))), reason="MiniLM artifact missing"
)
def test_wordnet_stage_is_balanced(synsets_parquet, tmp_path):
    out = tmp_path / "wn.npz"
    f = wordnet_gloss_features(synsets_parquet, MINILM_DIR, 2, n_per_class=20, seed=0, n_test_per_class=5, output=out)
    assert list(f["classes"]) == ["noun.animal", "noun.plant"]
    assert np.array_equal(np.bincount(f["y_train"]), [15, 15]) and np.array_equal(np.bincount(f["y_test"]), [5, 5])
    assert not set(f["key_train"]) & set(f["key_test"]) and "n99999999" not in set(f["key_train"]) | set(f["key_test"])
    np.testing.assert_allclose(np.linalg.norm(f["x_train"], axis=1), 1, rtol=1e-5)
    df = pd.read_parquet(synsets_parquet)
    assert (df.loc[f["idx_train"], "lexname"].to_numpy() == f["classes"][f["y_train"]]).all()
    assert np.array_equal(load_features(out)["key_test"], f["key_test"])


# --------------------------------------------------------------------------- linear probes


def _blobs(means, stds, n, seed):
    rng = np.random.default_rng(seed)
    x = np.concatenate([rng.normal(m, s, (n, len(m))) for m, s in zip(means, stds)])
    return x, np.repeat(np.arange(len(means)), n)


@pytest.mark.parametrize("probe", ["logistic", "ridge"])
def test_probe_separable_toy_is_perfect(probe):
    means = [(0, 0), (10, 0), (0, 10)]
    x_tr, y_tr = _blobs(means, [0.5] * 3, 60, 0)
    x_te, y_te = _blobs(means, [0.5] * 3, 40, 1)
    r = linear_probe(x_tr, y_tr, x_te, y_te, probe=probe)
    assert np.array_equal(r.per_class_accuracy, [1, 1, 1]) and r.accuracy == 1 and r.gap == 0
    assert r.reg in r.val_scores and r.confusion.trace() == 120


@pytest.mark.parametrize("probe", ["logistic", "ridge"])
def test_probe_confusable_case_orders_classes(probe):
    # class 0 far away; class 1 tight; class 2 wide and overlapping class 1 -> acc0 > acc1 > acc2
    # (a triangle, not a line: with collinear means least squares would mask the middle class)
    means, stds = [(0, 10), (0, 0), (1.5, 0)], [0.3, 0.3, 2.0]
    x_tr, y_tr = _blobs(means, stds, 300, 0)
    x_te, y_te = _blobs(means, stds, 300, 1)
    r = linear_probe(x_tr, y_tr, x_te, y_te, probe=probe)
    acc = r.per_class_accuracy
    assert acc[0] > 0.97 and acc[0] >= acc[1] > acc[2] + 0.1
    assert r.worst_class == 2 and r.gap == pytest.approx(acc.max() - acc.min())
    assert r.accuracy == pytest.approx(acc.mean())  # balanced test set
    assert r.as_dict()["per_class_accuracy"] == acc.tolist()


def test_probe_features_and_errors():
    x, y = _blobs([(0, 0), (5, 5)], [1, 1], 20, 0)
    f = {"x_train": x, "y_train": y, "x_test": x, "y_test": y, "classes": np.array(["a", "b", "c"])}
    r = probe_features(f, grid=[1.0])
    assert len(r.per_class_accuracy) == 3 and np.isnan(r.per_class_accuracy[2]) and r.val_scores == {}
    with pytest.raises(ValueError, match="probe must be"):
        linear_probe(x, y, x, y, probe="svm")
    with pytest.raises(ValueError, match="grid"):
        linear_probe(x, y, x, y, grid=[0.0, 1.0])
    np.testing.assert_array_equal(per_class_accuracy([0, 0, 1, 1], [0, 1, 1, 1], 2), [0.5, 1.0])


# --------------------------------------------------------------------------- augmentations


def test_noise_known_cases():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (4, 6, 6), dtype=np.uint8)
    assert np.array_equal(aug.gaussian_noise(x, 0.0, rng), x)
    y = aug.gaussian_noise(x, 0.1, np.random.default_rng(1))
    assert y.shape == x.shape and y.dtype == np.uint8 and not np.array_equal(x, y)
    assert np.array_equal(y, aug.gaussian_noise(x, 0.1, np.random.default_rng(1)))  # seeded
    xf = np.full((500, 4, 4), 0.5, np.float32)
    yf = aug.gaussian_noise(xf, 0.05, rng)
    assert yf.dtype == np.float32 and abs(float((yf - xf).std()) - 0.05) < 0.005


def test_masks_known_cases():
    rng = np.random.default_rng(0)
    white = np.full((3, 2, 8, 8), 255, np.uint8)
    assert not aug.cutout(white, 8, rng).any() and not aug.cutout(white, 20, rng).any()  # full mask = zeros
    assert np.array_equal(aug.cutout(white, 0, rng), white)
    cut = aug.cutout(white, 3, rng)
    assert cut.shape == white.shape and ((cut == 0).sum(axis=(2, 3)) == 9).all()  # 3x3, same square on all channels
    assert np.array_equal(cut[:, 0], cut[:, 1])
    assert not aug.pixel_mask(white, 1.0, rng).any() and np.array_equal(aug.pixel_mask(white, 0.0, rng), white)
    frac = (aug.pixel_mask(np.ones((200, 10, 10)), 0.3, rng) == 0).mean()
    assert abs(frac - 0.3) < 0.02


def test_shift_moves_pixels_by_k():
    x = np.zeros((3, 7, 9), np.uint8)
    x[:, 3, 4] = 200
    out = aug.shift(x, dy=[2, -1, 0], dx=[1, 0, -3])
    for i, (r, c) in enumerate([(5, 5), (2, 4), (3, 1)]):
        assert out[i, r, c] == 200 and out[i].sum() == 200
    assert not aug.shift(x, 4, 0).any()  # pushed off the bottom edge: zero-filled
    assert np.array_equal(aug.shift(x, 0, 0), x)
    nchw = np.repeat(x[:, None], 3, axis=1)
    assert np.array_equal(aug.shift(nchw, 1, 1)[:, 2], aug.shift(x, 1, 1))
    rng = np.random.default_rng(0)
    assert np.array_equal(aug.random_shift(x, 0, rng), x)
    moved = aug.random_shift(np.repeat(x, 50, axis=0), 2, rng)
    rows, cols = np.nonzero(moved.max(axis=0))
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 2 and cols.max() <= 6
    assert len(set(map(tuple, np.argwhere(moved)[:, 1:]))) == 25  # all 5x5 offsets occur


def test_flip_and_class_selective_application():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 4, 5), dtype=np.uint8)
    assert np.array_equal(aug.horizontal_flip(x, rng, p=1.0), x[..., ::-1])
    assert np.array_equal(aug.horizontal_flip(x, rng, p=0.0), x)
    labels = np.array([0, 1, 2, 0, 1, 2])
    flip = aug.make_augmentation("flip", p=1.0)
    out = aug.augment_classes(x, labels, flip, rng, classes=[1])
    assert np.array_equal(out[labels != 1], x[labels != 1]) and np.array_equal(
        out[labels == 1], x[labels == 1][..., ::-1]
    )
    with pytest.raises(ValueError, match="unknown augmentation"):
        aug.make_augmentation("rotate")
    with pytest.raises(ValueError, match="takes"):
        aug.make_augmentation("noise", std=0.1)
    combo = aug.from_config([{"name": "flip", "p": 1.0}, {"name": "shift", "max_shift": 0}])
    assert np.array_equal(combo(x, rng), x[..., ::-1]) and "flip" in combo.__name__


def test_augmented_features_modes():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (6, 4, 4), dtype=np.uint8)
    y, x_te, y_te = np.array([0, 0, 1, 1, 2, 2]), x[:3], np.array([0, 1, 2])
    base = x.reshape(6, -1) / 255
    ident = aug.make_augmentation("noise", sigma=0.0)
    f = aug.augmented_features(x, y, x_te, y_te, ident, n_copies=3, mode="average")
    np.testing.assert_allclose(f["x_train"], base, rtol=1e-6)
    flip = aug.make_augmentation("flip", p=1.0)
    flipped = x[..., ::-1].reshape(6, -1) / 255
    f = aug.augmented_features(x, y, x_te, y_te, flip, n_copies=1, mode="average", classes=[1])
    expected = base.copy()
    expected[2:4] = (base[2:4] + flipped[2:4]) / 2
    np.testing.assert_allclose(f["x_train"], expected, rtol=1e-6)
    np.testing.assert_allclose(f["x_test"], x_te.reshape(3, -1) / 255, rtol=1e-6)  # test never augmented
    e = aug.augmented_features(x, y, x_te, y_te, flip, n_copies=2, mode="expand", classes=[1], include_original=False)
    assert e["x_train"].shape == (12, 16) and np.array_equal(np.bincount(e["y_train"]), [4, 4, 4])  # still balanced
    exp = np.concatenate([np.where(np.isin(y, [1])[:, None], flipped, base)] * 2)
    np.testing.assert_allclose(e["x_train"], exp, rtol=1e-6)
    full = aug.augmented_features(x, y, x_te, y_te, flip, n_copies=2, mode="expand")  # all classes, with original
    assert full["x_train"].shape == (18, 16) and str(full["mode"]) == "expand"
    p = aug.augmented_features(x, y, x_te, y_te, flip, encoder="pca", encoder_options={"n_components": 2}, classes=[0])
    assert p["x_train"].shape == (6, 2)
    check_features(p)
    with pytest.raises(ValueError, match="mode"):
        aug.augmented_features(x, y, x_te, y_te, flip, mode="mix")


def test_image_subsets_feed_augmentation(image_npz):
    sub = image_subsets(image_npz, 4, 2, seed=0)
    noise = aug.make_augmentation("noise", sigma=0.2)
    f = aug.augmented_features(
        sub["images_train"], sub["y_train"], sub["images_test"], sub["y_test"], noise, n_copies=2,
        classes=[3], class_names=sub["classes"], seed=5,
    )  # fmt: skip
    r = probe_features(f, grid=[1.0])
    assert f["x_train"].shape == (16, 100) and r.accuracy == 1.0
