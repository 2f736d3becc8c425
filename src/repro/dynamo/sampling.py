"""DynaMo's per-step decoding rule: dynamic multi-token sampling (reference implementation, batch size 1).

Own implementation of Tuli et al. (NAACL 2024), §3.2 / Alg. 1, from the brief
``shared/papers/dynamo.md`` §4.1, §4.3 and §10 items 7-11; there is no official code.  This is plain
PyTorch written for clarity: a fused kernel is tested against it.  One decoding step, given the
last-position logits of the ``n_heads`` token heads:

1. softmax(logits / T) of every head, top-k sorted descending (:func:`head_topk`);
2. from ``n = min(max_tokens, n_heads)`` down to 2 (:func:`thresholded_joint`):
   joint = outer product of the first ``n`` heads' top-k probabilities times the co-occurrence
   ratio ** alpha_c, renormalised (:func:`joint_distribution`); static zeroing; adaptive
   threshold (Otsu, :func:`otsu_threshold`, on the Gaussian-blurred joint, :func:`gaussian_blur`);
   repetition penalty (:func:`repetition_factor`); if ``max <= eps_b ** (n-1)`` back off to
   ``n - 1``, else draw one cell by multinomial sampling and emit its ``n`` tokens;
3. at ``n = 1``: draw from head 1's top-k with the repetition penalty on context tokens.

:func:`choose_tokens` runs the whole step.  Truncation after EOS inside a multi-token block
(§10 item 11) is the generation loop's job, not this module's.

Defaults of :class:`SamplingConfig` and where they come from ([P] stated by the paper, [I] our
choice where the brief lists an ambiguity):

- ``top_k = 50`` [P]; ``temperature = 0.7`` [P]; ``repetition_penalty = 1.1`` [P] (CTRL-style:
  probabilities are *divided* by it); ``max_tokens = 3`` [P] (n starts at 3, model "T3").
- ``alpha_c = 1.0`` [P] (full co-occurrence masking; 0 turns it off, Eq. 6).
  ``cooccurrence_mode = "ratio"`` [P] (Eq. 3 multiplies by p̂(x1..xn) / prod p̂(xi); unseen
  n-grams give 0 [I]); ``"binary"`` (seen = 1, unseen = 0) is our extra toggle [I].
- ``eps_b = 0.5`` [P] (the headline Vicuna result; the paper sweeps it over [0, 1]).
- ``threshold_exponent = "n_minus_1"`` [I] (§4.3 ambiguity 1, §10 item 8): entries below
  ``eps_b ** (n-1)`` are zeroed and the step backs off when ``max <= eps_b ** (n-1)``; this keeps the
  stated limits (eps_b = 0: always ``max_tokens`` tokens, eps_b = 1: always one).  ``"constant"``
  zeroes below ``eps_b`` (the paper's literal sentence) with the same back-off test.
- Joint normalisation [I] (§10 item 7): the joint is renormalised to sum 1 over the k**n grid
  *after* the co-occurrence multiply (values can exceed 1 before), so the thresholds are
  probabilities.  ``renormalise_topk = True`` [I] (HF-style top-k renormalisation of each head)
  therefore changes neither the back-off decision nor the draw at n >= 2 (a per-head constant
  cancels in the joint's normalisation) nor the draw at n = 1 (multinomial normalises); it only
  changes the probabilities :func:`head_topk` returns and ``StepResult.joint_max`` at n = 1.
- ``adaptive = "otsu"`` [P]; ``blur_kernel = 3`` [P] (kernel size).  Blur details [I] (§10
  item 9): OpenCV's default for a given ksize (sigma <= 0): the fixed kernel [1/4, 1/2, 1/4] for
  ksize 3 (OpenCV's ksize-3 kernel; a sampled Gaussian of sigma 0.8 would be ~[.27, .45, .27]),
  separable along every axis of the k**n grid (so 3x3x3 at n = 3), border BORDER_REFLECT_101.
- ``otsu_bins = 256`` [I]; Otsu on a linear-scale histogram over [min, max] of *all* k**n
  blurred values, zeros included [I]; the threshold is the upper edge of the last bin of the
  lower class, see :func:`otsu_threshold` [I].
- ``sample_from = "raw"`` [I]: the blur only serves to find the Otsu threshold; the threshold is
  applied to, and the cell drawn from, the un-blurred (statically zeroed) joint.  ``"blurred"``
  draws from the blurred joint instead (thresholded, and restricted to the cells that were
  non-zero before blurring, so the blur cannot revive masked or statically zeroed n-grams).
- ``repetition_scope = "context"`` [I] (§10 item 10): a grid entry is divided by
  ``penalty ** c`` with ``c`` the number of its n positions whose token occurs in the context;
  ``"context_and_ngram"`` also counts a position whose token repeats an earlier position of the
  same n-gram.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import torch

COOCCURRENCE_MODES = ("ratio", "binary")
THRESHOLD_EXPONENTS = ("n_minus_1", "constant")
ADAPTIVE_MODES = ("otsu", "none")
SAMPLE_FROM = ("raw", "blurred")
REPETITION_SCOPES = ("context", "context_and_ngram")

# OpenCV's getGaussianKernel table for ksize 1, 3, 5, 7 when sigma <= 0 (imgproc/src/smooth).
_OPENCV_SMALL_KERNELS: dict[int, tuple[float, ...]] = {
    1: (1.0,),
    3: (0.25, 0.5, 0.25),
    5: (0.0625, 0.25, 0.375, 0.25, 0.0625),
    7: (0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125),
}


@runtime_checkable
class CooccurrenceLookup(Protocol):
    """Anything with the lookup of :class:`repro.dynamo.cooccurrence.CooccurrenceTable`."""

    def lookup(self, candidates: torch.Tensor, mode: str = "ratio") -> torch.Tensor:
        """Candidate n-grams ``(..., n)`` -> co-occurrence ratio ``(...)`` (0 for unseen n-grams)."""
        ...


def _is_int(x: object) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _is_real(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool) and math.isfinite(x)


@dataclass(frozen=True)
class SamplingConfig:
    """Hyperparameters of one DynaMo decoding step; see the module docstring for each default.

    Construction validates the fields (:meth:`validate`), so every instance is valid.
    """

    top_k: int = 50
    temperature: float = 0.7
    alpha_c: float = 1.0
    cooccurrence_mode: str = "ratio"
    eps_b: float = 0.5
    threshold_exponent: str = "n_minus_1"
    adaptive: str = "otsu"
    blur_kernel: int = 3
    otsu_bins: int = 256
    sample_from: str = "raw"
    repetition_penalty: float = 1.1
    repetition_scope: str = "context"
    renormalise_topk: bool = True
    max_tokens: int = 3

    def __post_init__(self) -> None:
        self.validate()

    def validate(self) -> None:
        """Raise ``ValueError`` naming the first invalid field."""

        def bad(field: str, want: str) -> ValueError:
            return ValueError(f"SamplingConfig.{field} must be {want}, got {getattr(self, field)!r}")

        if not _is_int(self.top_k) or self.top_k < 1:
            raise bad("top_k", "an integer >= 1")
        if not _is_real(self.temperature) or self.temperature <= 0:
            raise bad("temperature", "a finite number > 0")
        if not _is_real(self.alpha_c) or self.alpha_c < 0:
            raise bad("alpha_c", "a finite number >= 0")
        if self.cooccurrence_mode not in COOCCURRENCE_MODES:
            raise bad("cooccurrence_mode", f"one of {COOCCURRENCE_MODES}")
        if not _is_real(self.eps_b) or not 0.0 <= self.eps_b <= 1.0:
            raise bad("eps_b", "a number in [0, 1]")
        if self.threshold_exponent not in THRESHOLD_EXPONENTS:
            raise bad("threshold_exponent", f"one of {THRESHOLD_EXPONENTS}")
        if self.adaptive not in ADAPTIVE_MODES:
            raise bad("adaptive", f"one of {ADAPTIVE_MODES}")
        if (
            not _is_int(self.blur_kernel)
            or self.blur_kernel < 0
            or (self.blur_kernel > 1 and self.blur_kernel % 2 == 0)
        ):
            raise bad("blur_kernel", "0 or 1 (no blur) or an odd integer >= 3")
        if not _is_int(self.otsu_bins) or self.otsu_bins < 2:
            raise bad("otsu_bins", "an integer >= 2")
        if self.sample_from not in SAMPLE_FROM:
            raise bad("sample_from", f"one of {SAMPLE_FROM}")
        if not _is_real(self.repetition_penalty) or self.repetition_penalty <= 0:
            raise bad("repetition_penalty", "a finite number > 0")
        if self.repetition_scope not in REPETITION_SCOPES:
            raise bad("repetition_scope", f"one of {REPETITION_SCOPES}")
        if not isinstance(self.renormalise_topk, bool):
            raise bad("renormalise_topk", "a bool")
        if not _is_int(self.max_tokens) or self.max_tokens < 1:
            raise bad("max_tokens", "an integer >= 1")

    def static_bars(self, n: int) -> tuple[float, float]:
        """``(zeroing threshold, back-off bar)`` at ``n`` tokens (``n >= 2``)."""
        backoff = float(self.eps_b) ** (n - 1)
        zeroing = backoff if self.threshold_exponent == "n_minus_1" else float(self.eps_b)
        return zeroing, backoff


@dataclass(frozen=True)
class StepResult:
    """One decoding step's outcome.

    ``tokens``: the ``n`` emitted token ids.  ``joint_max``: the largest entry of the final
    (thresholded, penalised) joint at the accepted level, the value that passed the back-off test;
    at ``n = 1`` the largest penalised top-k probability of head 1.  ``threshold``: the adaptive
    (Otsu) threshold used at the accepted level; 0.0 at ``n = 1`` or with ``adaptive="none"``.
    """

    tokens: list[int]
    n: int
    joint_max: float
    threshold: float


@dataclass(frozen=True)
class LevelJoint:
    """The final joint at one back-off level: ``weights`` (k,)*n (unnormalised, >= 0), the static
    zeroing threshold and back-off bar used, and the adaptive threshold (0.0 when off)."""

    weights: torch.Tensor
    zeroing_bar: float
    backoff_bar: float
    threshold: float


def head_topk(
    logits: torch.Tensor, k: int, temperature: float, renormalise: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(logits / T) of every head, then its top-k sorted descending.

    ``logits`` is ``(n_heads, V)``; returns ``(probs, ids)``, both ``(n_heads, min(k, V))`` (``k``
    is clamped to the vocabulary like HF's top-k).  Probabilities are computed in at least float32.
    With ``renormalise`` each head's top-k probabilities are rescaled to sum to 1.
    """
    if logits.dim() != 2:
        raise ValueError(f"logits must be (n_heads, V), got shape {tuple(logits.shape)}")
    if not _is_int(k) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if not _is_real(temperature) or temperature <= 0:
        raise ValueError(f"temperature must be a finite number > 0, got {temperature!r}")
    dtype = torch.promote_types(logits.dtype, torch.float32)
    probs = torch.softmax(logits.to(dtype) / temperature, dim=-1)
    top, ids = torch.topk(probs, min(k, logits.shape[-1]), dim=-1, largest=True, sorted=True)
    if renormalise:
        top = top / top.sum(dim=-1, keepdim=True)
    return top, ids


def candidate_grid(ids: torch.Tensor, n: int) -> torch.Tensor:
    """All n-grams of the first ``n`` heads' top-k ids: ``(k,)*n + (n,)``, ``[a, b, .., i] = ids[i, index_i]``."""
    grids = torch.meshgrid(*[ids[i] for i in range(n)], indexing="ij")
    return torch.stack(grids, dim=-1)


def joint_distribution(
    probs: torch.Tensor,
    ids: torch.Tensor,
    n: int,
    table: CooccurrenceLookup | None,
    alpha_c: float,
    mode: str = "ratio",
) -> torch.Tensor:
    """Co-occurrence-weighted joint of the first ``n`` heads, renormalised: ``(k,)*n``.

    ``J[a, b, ..] = probs[0, a] * probs[1, b] * ... * lookup((ids[0, a], ids[1, b], ..)) ** alpha_c``,
    divided by its sum (an all-zero grid, e.g. every n-gram unseen, stays all zeros).  With
    ``alpha_c == 0`` or ``n == 1`` (the ratio of a unigram is 1) the table is not consulted and may be
    ``None``.
    """
    if probs.dim() != 2 or probs.shape != ids.shape:
        raise ValueError(f"probs and ids must both be (n_heads, k), got {tuple(probs.shape)} and {tuple(ids.shape)}")
    if not _is_int(n) or not 1 <= n <= probs.shape[0]:
        raise ValueError(f"n must be in [1, n_heads={probs.shape[0]}], got {n!r}")
    if not _is_real(alpha_c) or alpha_c < 0:
        raise ValueError(f"alpha_c must be a finite number >= 0, got {alpha_c!r}")
    if mode not in COOCCURRENCE_MODES:
        raise ValueError(f"mode must be one of {COOCCURRENCE_MODES}, got {mode!r}")
    joint = probs[0]
    for i in range(1, n):
        joint = joint.unsqueeze(-1) * probs[i]  # outer product, one axis per head
    if alpha_c != 0 and n > 1:
        if table is None:
            raise ValueError("a co-occurrence table is required when alpha_c != 0")
        ratio = table.lookup(candidate_grid(ids, n), mode=mode)
        if tuple(ratio.shape) != tuple(joint.shape):
            raise ValueError(f"table.lookup returned shape {tuple(ratio.shape)}, expected {tuple(joint.shape)}")
        ratio = ratio.to(device=joint.device, dtype=joint.dtype)
        joint = joint * (ratio if alpha_c == 1 else ratio.pow(alpha_c))
    total = joint.sum()
    # where() rather than `if total > 0`: no host sync, and 0/0 never leaks into the result.
    return torch.where(total > 0, joint / torch.where(total > 0, total, 1.0), torch.zeros_like(joint))


def gaussian_kernel_1d(
    ksize: int, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None
) -> torch.Tensor:
    """OpenCV's ``getGaussianKernel(ksize, sigma=0)``: fixed kernels for ksize 1, 3, 5, 7, otherwise a
    normalised sampled Gaussian with ``sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8``."""
    if not _is_int(ksize) or ksize < 1 or ksize % 2 == 0:
        raise ValueError(f"ksize must be a positive odd integer, got {ksize!r}")
    if ksize in _OPENCV_SMALL_KERNELS:
        return torch.tensor(_OPENCV_SMALL_KERNELS[ksize], dtype=dtype, device=device)
    sigma = 0.3 * ((ksize - 1) * 0.5 - 1) + 0.8
    x = torch.arange(ksize, dtype=torch.float64) - (ksize - 1) / 2
    w = torch.exp(-(x**2) / (2 * sigma**2))
    return (w / w.sum()).to(dtype=dtype, device=device)


def _reflect101(p: int, length: int) -> int:
    """OpenCV's ``borderInterpolate(p, length, BORDER_REFLECT_101)``: ``gfedcb|abcdefgh|gfedcba``."""
    if length == 1:
        return 0
    while not 0 <= p < length:  # repeated reflection for offsets longer than the axis
        p = -p if p < 0 else 2 * (length - 1) - p
    return p


def gaussian_blur(x: torch.Tensor, ksize: int = 3) -> torch.Tensor:
    """Gaussian blur of an n-D tensor, separable along every axis, like ``cv2.GaussianBlur(x, (ksize,)*2, 0)``.

    Kernel: :func:`gaussian_kernel_1d` (OpenCV's default for ``sigma = 0``).  Border: BORDER_REFLECT_101
    (OpenCV's default), applied per axis, also on axes shorter than the kernel.  ``ksize`` 0 or 1
    returns a copy.  Returns a tensor of the same shape and dtype.
    """
    if not _is_int(ksize) or ksize < 0 or (ksize > 1 and ksize % 2 == 0):
        raise ValueError(f"ksize must be 0, 1 or an odd integer >= 3, got {ksize!r}")
    if not x.is_floating_point():
        raise ValueError(f"x must be floating point, got {x.dtype}")
    out = x.clone()
    if ksize <= 1:
        return out
    weights = gaussian_kernel_1d(ksize, dtype=x.dtype, device=x.device)
    radius = ksize // 2
    for axis in range(x.dim()):
        length = x.shape[axis]
        taps = [[_reflect101(i + j - radius, length) for i in range(length)] for j in range(ksize)]
        src = out
        out = sum(weights[j] * src.index_select(axis, torch.tensor(taps[j], device=x.device)) for j in range(ksize))
    return out


def otsu_threshold(values: torch.Tensor, bins: int = 256) -> float:
    """Otsu's threshold of a tensor's values (any shape, flattened).

    Histogram: ``bins`` equal-width bins on ``[min, max]`` (linear scale, every value counted,
    zeros included; the last bin is closed, as in ``numpy.histogram``).  For each split after bin
    ``t`` (``t = 0 .. bins-2``) the between-class variance ``w1 * w2 * (mu1 - mu2) ** 2`` is computed
    from the counts and bin centres, exactly the formula of ``skimage.filters.threshold_otsu``;
    the first maximising ``t`` wins (``argmax``), the same ``t`` as scikit-image.

    Returned value [I]: the **upper edge** of bin ``t``, ``min + (t + 1) * (max - min) / bins``, so that
    ``values < threshold`` is exactly the lower class of the split.  scikit-image returns the centre
    of bin ``t`` instead (half a bin lower, and meant for ``image > threshold``).  A constant input
    returns its value (like scikit-image).  Computed in float64; values must be finite.
    """
    if not _is_int(bins) or bins < 2:
        raise ValueError(f"bins must be an integer >= 2, got {bins!r}")
    v = values.detach().reshape(-1).to(torch.float64)
    if v.numel() == 0:
        raise ValueError("otsu_threshold needs at least one value")
    lo, hi = float(v.min()), float(v.max())
    if lo == hi:
        return lo
    width = (hi - lo) / bins
    edges = lo + torch.arange(bins + 1, dtype=torch.float64, device=v.device) * width
    edges[-1] = hi
    idx = ((v - lo) / width).floor().long().clamp_(0, bins - 1)
    # Fix floating-point rounding so that edges[idx] <= v < edges[idx + 1] (last bin closed).
    idx = idx - (v < edges[idx]).long()
    idx = idx + ((v >= edges[idx + 1]) & (idx < bins - 1)).long()
    counts = torch.bincount(idx, minlength=bins).to(torch.float64)
    centres = (edges[:-1] + edges[1:]) / 2
    w1 = counts.cumsum(0)
    w2 = counts.flip(0).cumsum(0).flip(0)
    # Bin 0 holds the min and the last bin the max, so w1 > 0 and w2 > 0 everywhere.
    mu1 = (counts * centres).cumsum(0) / w1
    mu2 = (counts * centres).flip(0).cumsum(0).flip(0) / w2
    between = w1[:-1] * w2[1:] * (mu1[:-1] - mu2[1:]) ** 2
    t = int(torch.argmax(between))
    return float(edges[t + 1])


def repetition_factor(
    ids: torch.Tensor,
    n: int,
    context_ids: torch.Tensor,
    penalty: float,
    scope: str = "context",
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Divisor of every grid entry of the first ``n`` heads' top-k ids: ``penalty ** count``, ``(k,)*n``.

    ``count`` is the number of positions ``i`` of the n-gram ``(ids[0, a], ids[1, b], ..)`` whose token
    is a repetition: it occurs in ``context_ids`` (scope ``"context"``), or it occurs in the context or
    equals the token at an earlier position ``j < i`` of the same n-gram (``"context_and_ngram"``).
    A token found in the context counts once per position it takes, however often the context has it.
    """
    if scope not in REPETITION_SCOPES:
        raise ValueError(f"scope must be one of {REPETITION_SCOPES}, got {scope!r}")
    if not _is_int(n) or not 1 <= n <= ids.shape[0]:
        raise ValueError(f"n must be in [1, n_heads={ids.shape[0]}], got {n!r}")
    k = ids.shape[1]
    context = context_ids.reshape(-1).to(device=ids.device, dtype=ids.dtype)
    in_context = torch.isin(ids[:n], context)  # (n, k)

    def along(i: int, t: torch.Tensor) -> torch.Tensor:  # a (k,) vector on axis i of the grid
        shape = [1] * n
        shape[i] = k
        return t.reshape(shape)

    count = torch.zeros((k,) * n, dtype=dtype, device=ids.device)
    for i in range(n):
        repeat = along(i, in_context[i])
        if scope == "context_and_ngram":
            for j in range(i):
                repeat = repeat | (along(i, ids[i]) == along(j, ids[j]))
        count = count + repeat.to(dtype)
    return torch.pow(torch.tensor(float(penalty), dtype=dtype, device=ids.device), count)


def thresholded_joint(
    probs: torch.Tensor,
    ids: torch.Tensor,
    n: int,
    context_ids: torch.Tensor,
    table: CooccurrenceLookup | None,
    config: SamplingConfig,
) -> LevelJoint:
    """The joint at back-off level ``n >= 2`` after every filter of brief §4.3, before the back-off test.

    Co-occurrence-weighted normalised joint, static zeroing, adaptive (Otsu) zeroing, repetition
    penalty.  The step backs off when ``weights.max() <= backoff_bar``.
    """
    if n < 2:
        raise ValueError(f"thresholded_joint is for n >= 2, got {n}")
    joint = joint_distribution(probs, ids, n, table, config.alpha_c, config.cooccurrence_mode)
    zeroing_bar, backoff_bar = config.static_bars(n)
    # Thresholds are compared in float64, like the back-off test (float(max) <= bar).
    joint = torch.where(joint.double() < zeroing_bar, torch.zeros_like(joint), joint)
    factor = None
    if config.repetition_penalty != 1:
        factor = repetition_factor(
            ids, n, context_ids, config.repetition_penalty, config.repetition_scope, dtype=joint.dtype
        )
    return finish_level(joint, factor, config)


def finish_level(joint: torch.Tensor, factor: torch.Tensor | None, config: SamplingConfig) -> LevelJoint:
    """Adaptive (Otsu) zeroing, ``sample_from`` and the repetition divisor ``factor`` on a statically
    zeroed joint ``(k,)*n``: the tail of :func:`thresholded_joint` (also run after the fused kernel
    :func:`repro.kernels.dynamo_joint.dynamo_joint`, which returns ``joint`` and ``factor``)."""
    zeroing_bar, backoff_bar = config.static_bars(joint.dim())
    threshold = 0.0
    use_blur = config.adaptive == "otsu" or config.sample_from == "blurred"
    blurred = gaussian_blur(joint, config.blur_kernel) if use_blur else joint
    if config.sample_from == "blurred":
        # Keep the support of the pre-blur joint: the blur must not revive masked n-grams.
        weights = torch.where(joint > 0, blurred, torch.zeros_like(blurred))
    else:
        weights = joint
    if config.adaptive == "otsu":
        threshold = otsu_threshold(blurred, config.otsu_bins)
        weights = torch.where(weights.double() < threshold, torch.zeros_like(weights), weights)
    if config.repetition_penalty != 1 and factor is not None:
        weights = weights / factor
    return LevelJoint(weights=weights, zeroing_bar=zeroing_bar, backoff_bar=backoff_bar, threshold=threshold)


def fused_level_supported(head_logits: torch.Tensor, table: CooccurrenceLookup | None, config: SamplingConfig) -> bool:
    """Whether :func:`choose_tokens` builds each level with the fused kernel (brief §7).

    Only on CUDA (on the CPU the kernel's reference is this module's own code, one table rebuild
    slower), for the ratio/binary table of :class:`~repro.dynamo.cooccurrence.CooccurrenceTable`
    (or no table at ``alpha_c == 0``) and the repetition scope ``"context"`` the kernel implements.
    """
    from repro.dynamo.cooccurrence import CooccurrenceTable

    if not head_logits.is_cuda:
        return False
    if config.repetition_penalty != 1 and config.repetition_scope != "context":
        return False
    if config.alpha_c == 0:
        return True
    return isinstance(table, CooccurrenceTable)


def fused_thresholded_joint(
    probs: torch.Tensor,
    ids: torch.Tensor,
    n: int,
    context_ids: torch.Tensor,
    table: CooccurrenceLookup | None,
    config: SamplingConfig,
    vocab_size: int,
) -> LevelJoint:
    """:func:`thresholded_joint` through :func:`repro.kernels.dynamo_joint.dynamo_joint` (Triton on CUDA).

    Equal to ``thresholded_joint`` up to float32 rounding (exactly, with the reference backend);
    ``tests/test_dynamo_sampling.py`` checks both paths pick the same level and tokens.
    """
    from repro.kernels.dynamo_joint import context_membership, dynamo_joint

    device = probs.device
    if config.alpha_c == 0 or table is None:
        keys = torch.zeros(0, dtype=torch.long, device=device)
        ratios = torch.zeros(0, dtype=torch.float32, device=device)
    else:
        keys, ratios = table._on(n, device)
        if config.cooccurrence_mode == "binary":
            ratios = torch.ones_like(ratios)
    mask = context_membership(context_ids.to(device), vocab_size)
    zeroing_bar = config.static_bars(n)[0]
    joint, factor = dynamo_joint(
        probs[:n].float().contiguous(),
        ids[:n].contiguous(),
        keys,
        ratios,
        vocab_size,
        float(config.alpha_c),
        mask,
        float(config.repetition_penalty),
        zeroing_bar,
    )
    return finish_level(joint, factor if config.repetition_penalty != 1 else None, config)


def sample_cells(weights: torch.Tensor, num_samples: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw grid cells with probability proportional to ``weights`` (with replacement): ``(num_samples, ndim)``."""
    flat = torch.multinomial(weights.reshape(-1), num_samples, replacement=True, generator=generator)
    return torch.stack(torch.unravel_index(flat, weights.shape), dim=-1)


def choose_tokens(
    head_logits: torch.Tensor,
    context_ids: torch.Tensor,
    table: CooccurrenceLookup | None,
    config: SamplingConfig | None = None,
    generator: torch.Generator | None = None,
) -> StepResult:
    """One DynaMo decoding step (brief §4.3): pick 1..``max_tokens`` tokens from the heads' logits.

    ``head_logits``: ``(n_heads, V)`` logits at the last position, head 1 first.  ``context_ids``: 1-D
    ids of the context so far (prompt and generated tokens), for the repetition penalty.  ``table``:
    the co-occurrence lookup (unused, and may be ``None``, when ``config.alpha_c == 0``).
    ``generator`` drives the single multinomial draw, so a seeded generator makes the step
    deterministic; the back-off decision itself involves no randomness.
    """
    config = SamplingConfig() if config is None else config
    if head_logits.dim() != 2 or head_logits.shape[0] < 1:
        raise ValueError(f"head_logits must be (n_heads >= 1, V), got shape {tuple(head_logits.shape)}")
    if context_ids.dim() != 1:
        raise ValueError(f"context_ids must be 1-D, got shape {tuple(context_ids.shape)}")
    probs, ids = head_topk(head_logits, config.top_k, config.temperature, config.renormalise_topk)
    fused = fused_level_supported(head_logits, table, config)
    for n in range(min(config.max_tokens, head_logits.shape[0]), 1, -1):
        if fused:
            level = fused_thresholded_joint(probs, ids, n, context_ids, table, config, head_logits.shape[1])
        else:
            level = thresholded_joint(probs, ids, n, context_ids, table, config)
        joint_max = float(level.weights.max())
        if joint_max <= level.backoff_bar:
            continue  # back off to n - 1 tokens
        cell = sample_cells(level.weights, 1, generator)[0]
        tokens = [int(ids[i, cell[i]]) for i in range(n)]
        return StepResult(tokens=tokens, n=n, joint_max=joint_max, threshold=level.threshold)
    # n = 1: ordinary top-k sampling from head 1, with the repetition penalty on context tokens.
    factor = repetition_factor(ids, 1, context_ids, config.repetition_penalty, config.repetition_scope, probs.dtype)
    first = probs[0] / factor
    cell = sample_cells(first, 1, generator)[0]
    return StepResult(tokens=[int(ids[0, cell[0]])], n=1, joint_max=float(first.max()), threshold=0.0)
