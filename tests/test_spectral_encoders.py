"""Encoders of the spectral-imbalance study: MobileNetV2 architecture/checkpoint, MiniLM, PCA, pixels, timm."""

from __future__ import annotations

import importlib.util
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.spectral import encoders as enc

ROOT = Path(__file__).resolve().parents[1]
MOBILENET_DIR = ROOT / "resources" / "artifacts" / "mobilenet_v2"
MINILM_DIR = ROOT / "resources" / "artifacts" / "minilm"


def _mobilenet_checkpoint() -> Path | None:
    found = sorted(MOBILENET_DIR.rglob(enc.MOBILENET_V2_FILE)) if MOBILENET_DIR.is_dir() else []
    return found[0] if found else None


def _has_minilm() -> bool:
    return MINILM_DIR.is_dir() and any(MINILM_DIR.rglob("config.json"))


needs_checkpoint = pytest.mark.skipif(
    _mobilenet_checkpoint() is None,
    reason="MobileNetV2 artifact missing: snakemake --cores 1 -- resources/manifest/mobilenet_v2.json",
)
needs_minilm = pytest.mark.skipif(
    not _has_minilm(), reason="MiniLM artifact missing: snakemake --cores 1 -- resources/manifest/minilm.json"
)


def _expected_mobilenet_shapes() -> dict[str, tuple[int, ...]]:
    """torchvision's MobileNetV2 state-dict layout, written out from the paper's (t, c, n, s) table."""
    shapes: dict[str, tuple[int, ...]] = {}

    def conv_bn(prefix: str, cout: int, cin_per_group: int, k: int) -> None:
        shapes[f"{prefix}.0.weight"] = (cout, cin_per_group, k, k)
        bn(f"{prefix}.1", cout)

    def bn(prefix: str, c: int) -> None:
        for name in ("weight", "bias", "running_mean", "running_var"):
            shapes[f"{prefix}.{name}"] = (c,)
        shapes[f"{prefix}.num_batches_tracked"] = ()

    conv_bn("features.0", 32, 3, 3)
    block, cin = 1, 32
    for t, c, n, _ in [
        (1, 16, 1, 1),
        (6, 24, 2, 2),
        (6, 32, 3, 2),
        (6, 64, 4, 2),
        (6, 96, 3, 1),
        (6, 160, 3, 2),
        (6, 320, 1, 1),
    ]:
        for _ in range(n):
            hidden, j, p = cin * t, 0, f"features.{block}.conv"
            if t != 1:
                conv_bn(f"{p}.0", hidden, cin, 1)
                j = 1
            conv_bn(f"{p}.{j}", hidden, 1, 3)  # depthwise
            shapes[f"{p}.{j + 1}.weight"] = (c, hidden, 1, 1)
            bn(f"{p}.{j + 2}", c)
            block, cin = block + 1, c
    conv_bn("features.18", 1280, 320, 1)
    shapes["classifier.1.weight"] = (1000, 1280)
    shapes["classifier.1.bias"] = (1000,)
    return shapes


# --------------------------------------------------------------------------- MobileNetV2


def test_mobilenet_architecture_matches_torchvision_layout():
    model = enc.mobilenet_v2()
    state = model.state_dict()
    expected = _expected_mobilenet_shapes()
    assert len(state) == len(expected) == 314
    assert {k: tuple(v.shape) for k, v in state.items()} == expected
    assert sum(p.numel() for p in model.parameters()) == enc.MOBILENET_V2_PARAMETERS == 3_504_872
    # a random-init state dict loads strictly into a fresh model (round trip of the layout)
    enc.mobilenet_v2().load_state_dict(state, strict=True)
    model.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 64, 64)
        assert model(x).shape == (2, 1000)
        assert model.embed(x).shape == (2, 1280)
    # residual connections exactly where torchvision has them (stride 1, equal widths)
    residual = [i for i, m in enumerate(model.features) if getattr(m, "use_res_connect", False)]
    assert residual == [3, 5, 6, 8, 9, 10, 12, 13, 15, 16]


@needs_checkpoint
def test_real_checkpoint_loads_strictly():
    path = _mobilenet_checkpoint()
    state = torch.load(path, map_location="cpu", weights_only=True)
    assert {k: tuple(v.shape) for k, v in state.items()} == _expected_mobilenet_shapes()
    model = enc.load_mobilenet_v2(path.parent.parent)  # a folder holding exactly one checkpoint works too
    assert not model.training
    assert torch.equal(model.classifier[1].weight, state["classifier.1.weight"])


@needs_checkpoint
def test_china_jpg_top5_contains_monastery():
    pytest.importorskip("PIL", reason="sklearn's sample images need Pillow")
    from sklearn.datasets import load_sample_image

    image = load_sample_image("china.jpg")  # [427, 640, 3] uint8, channel-last
    model = enc.load_mobilenet_v2(_mobilenet_checkpoint())
    top5 = np.argsort(-enc.image_logits(model, image[None], size=224)[0])[:5]
    assert 663 in top5  # monastery
    feats = enc.image_features(model, image[None], size=224, progress=False)
    assert feats.shape == (1, 1280) and feats.dtype == np.float32 and (feats >= 0).all()  # after ReLU6 + pool


def test_load_mobilenet_rejects_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="mobilenet_v2.json"):
        enc.load_mobilenet_v2(tmp_path / "absent.pth")
    state = enc.mobilenet_v2().state_dict()
    state.pop("classifier.1.bias")
    torch.save(state, tmp_path / "partial.pth")
    with pytest.raises(ValueError, match="partial.pth"):
        enc.load_mobilenet_v2(tmp_path / "partial.pth")
    torch.save({"x": Fraction(1, 2)}, tmp_path / "pickled.pth")  # needs full unpickling: refused
    with pytest.raises(ValueError, match="cannot read MobileNetV2 checkpoint .*pickled.pth"):
        enc.load_mobilenet_v2(tmp_path / "pickled.pth")


def test_image_features_layouts_and_batching():
    torch.manual_seed(0)
    model = enc.mobilenet_v2()
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    f = enc.image_features(model, gray, size=32, batch_size=2, progress=False)
    assert f.shape == (5, 1280) and f.dtype == np.float32
    assert not model.training
    same = {
        "nchw1": gray[:, None],
        "nchw3": np.repeat(gray[:, None], 3, axis=1),
        "nhwc3": np.repeat(gray[..., None], 3, axis=3),
        "float": gray.astype(np.float32) / 255,
    }
    for name, images in same.items():
        np.testing.assert_allclose(
            enc.image_features(model, images, 32, 5, False), f, rtol=1e-4, atol=1e-5, err_msg=name
        )
    with pytest.raises(ValueError, match="images must be"):
        enc.image_features(model, rng.integers(0, 256, (2, 5, 8, 8), dtype=np.uint8), 32, progress=False)


def test_preprocess_normalises_with_imagenet_statistics():
    x = enc.preprocess(np.zeros((1, 8, 8), np.uint8), size=16)
    assert x.shape == (1, 3, 16, 16)
    expected = -np.array(enc.IMAGENET_MEAN) / np.array(enc.IMAGENET_STD)
    np.testing.assert_allclose(x[0, :, 0, 0].numpy(), expected, rtol=1e-6)
    white = enc.preprocess(np.full((1, 3, 4, 4), 255, np.uint8), size=None)
    np.testing.assert_allclose(
        white[0, :, 0, 0].numpy(), (1 - np.array(enc.IMAGENET_MEAN)) / enc.IMAGENET_STD, rtol=1e-6
    )


# --------------------------------------------------------------------------- pixels / PCA


def test_pixel_features():
    x = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    np.testing.assert_allclose(enc.pixel_features(x), [[0, 1, 0.2, 0.4]], rtol=1e-6)
    assert enc.pixel_features(x).dtype == np.float32


def test_pca_is_fitted_on_train_only():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(1)
    train = rng.normal(size=(60, 12)) @ rng.normal(size=(12, 12))
    test = rng.normal(size=(20, 12)) * 5 + 3  # a different distribution: a fit on it would differ
    f_train, f_test = enc.pca_features(train, test, n_components=4)
    ref = PCA(n_components=4, svd_solver="full").fit(train.astype(np.float32))
    signs = np.sign(np.sum(ref.transform(train) * f_train, axis=0))  # components are defined up to sign
    np.testing.assert_allclose(f_train, ref.transform(train) * signs, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(f_test, ref.transform(test) * signs, rtol=1e-3, atol=1e-3)
    np.testing.assert_allclose(f_train.mean(axis=0), 0, atol=1e-4)
    assert abs(f_test.mean(axis=0)).max() > 0.1
    with pytest.raises(ValueError, match="n_components"):
        enc.pca_features(train, n_components=13)


# --------------------------------------------------------------------------- MiniLM


@needs_minilm
def test_minilm_embeddings_are_unit_norm_and_semantic():
    texts = [
        "A cat is sleeping on the sofa.",
        "A kitten is napping on the couch.",
        "The stock market fell sharply after the interest rate decision.",
    ]
    e = enc.minilm_embed(MINILM_DIR, texts)
    assert e.shape == (3, 384) and e.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(e, axis=1), 1, rtol=1e-5)
    sim = e @ e.T
    assert sim[0, 1] > 0.5 and sim[0, 1] > sim[0, 2] + 0.3 and sim[1, 1] > sim[1, 2]
    # length-sorted batching still returns input order
    e_rev = enc.minilm_embed(MINILM_DIR, texts[::-1], batch_size=2)
    np.testing.assert_allclose(e_rev[::-1], e, atol=1e-5)


def test_minilm_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="minilm.json"):
        enc.minilm_embed(tmp_path, ["text"])


# --------------------------------------------------------------------------- timm and the registry


@pytest.mark.skipif(importlib.util.find_spec("timm") is not None, reason="timm is installed")
def test_timm_is_optional_with_install_hint():
    with pytest.raises(ImportError, match="pip install timm"):
        enc.timm_features("resnet50", np.zeros((1, 3, 8, 8), np.uint8))
    with pytest.raises(ImportError, match="pip install timm"):
        enc.encode("timm", np.zeros((1, 8, 8), np.uint8), np.zeros((1, 8, 8), np.uint8), model_name="resnet50")


def test_registry_declares_kinds_and_options():
    assert set(enc.ENCODERS) == {"pixels", "pca", "mobilenet_v2", "timm", "minilm"}
    with pytest.raises(ValueError, match="unknown encoder"):
        enc.get_encoder("__import__('os')")
    with pytest.raises(ValueError, match="does not take"):
        enc.get_encoder("pca", options={"n_components": 2, "callback": print})
    with pytest.raises(ValueError, match="needs option"):
        enc.get_encoder("mobilenet_v2", options={"size": 64})
    with pytest.raises(ValueError, match="encodes text"):
        enc.get_encoder("minilm", modality="image")
    x = np.random.default_rng(0).integers(0, 256, (10, 4, 4), dtype=np.uint8)
    f_train, f_test = enc.encode("pca", x, x[:3], "image", n_components=3)
    assert f_train.shape == (10, 3) and f_test.shape == (3, 3)
    f_train, _ = enc.encode("pixels", x, x[:3])
    assert f_train.shape == (10, 16)
