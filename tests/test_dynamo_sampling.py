"""DynaMo's per-step decoding rule (repro.dynamo.sampling): known answers and statistical checks."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from repro.dynamo.sampling import (
    CooccurrenceLookup,
    SamplingConfig,
    choose_tokens,
    gaussian_blur,
    gaussian_kernel_1d,
    head_topk,
    joint_distribution,
    otsu_threshold,
    repetition_factor,
    sample_cells,
    thresholded_joint,
)


class DictTable:
    """A fake co-occurrence table: ratios of the listed n-grams, ``default`` for every other one."""

    def __init__(self, ratios: dict[tuple[int, ...], float], default: float = 0.0) -> None:
        self.ratios = ratios
        self.default = default
        self.calls = 0

    def lookup(self, candidates: torch.Tensor, mode: str = "ratio") -> torch.Tensor:
        self.calls += 1
        flat = candidates.reshape(-1, candidates.shape[-1]).tolist()
        out = torch.tensor([self.ratios.get(tuple(c), self.default) for c in flat], dtype=torch.float32)
        out = out.reshape(candidates.shape[:-1])
        return (out > 0).float() if mode == "binary" else out


class FullTable:
    """Sees every n-gram, with varied positive ratios in [0.5, 2]."""

    def lookup(self, candidates: torch.Tensor, mode: str = "ratio") -> torch.Tensor:
        if mode == "binary":
            return torch.ones(candidates.shape[:-1])
        weights = torch.tensor([7, 13, 29, 31][: candidates.shape[-1]])
        return 0.5 + ((candidates * weights).sum(-1) % 7).float() / 4


def random_logits(seed: int, n_heads: int = 3, vocab: int = 64, scale: float = 3.0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n_heads, vocab, generator=g) * scale


def test_fakes_satisfy_protocol():
    assert isinstance(DictTable({}), CooccurrenceLookup)
    assert isinstance(FullTable(), CooccurrenceLookup)


# ----------------------------------------------------------------------------------------- head_topk
@pytest.mark.parametrize("renormalise", [False, True])
def test_head_topk_matches_manual_softmax(renormalise):
    logits = random_logits(0, n_heads=3, vocab=20)
    probs, ids = head_topk(logits, k=5, temperature=0.7, renormalise=renormalise)
    assert probs.shape == ids.shape == (3, 5)
    for h in range(3):
        row = [x / 0.7 for x in logits[h].tolist()]
        m = max(row)
        z = sum(math.exp(x - m) for x in row)
        p = [math.exp(x - m) / z for x in row]
        order = sorted(range(20), key=lambda i: -p[i])[:5]
        want = [p[i] for i in order]
        if renormalise:
            want = [w / sum(want) for w in want]
        assert ids[h].tolist() == order
        assert probs[h].tolist() == pytest.approx(want, rel=1e-5)
        assert all(a >= b for a, b in zip(probs[h].tolist(), probs[h].tolist()[1:]))


def test_head_topk_clamps_k_to_vocab_and_promotes_dtype():
    probs, ids = head_topk(random_logits(1, vocab=4).half(), k=50, temperature=1.0)
    assert probs.shape == (3, 4) and probs.dtype == torch.float32
    assert sorted(ids[0].tolist()) == [0, 1, 2, 3]


# ----------------------------------------------------------------------------------------- joint
def test_joint_is_the_normalised_outer_product_when_alpha_c_is_zero():
    g = torch.Generator().manual_seed(2)
    probs = torch.rand(3, 4, generator=g)
    ids = torch.arange(12).reshape(3, 4)
    table = DictTable({})
    outers = {1: probs[0], 2: torch.outer(probs[0], probs[1]), 3: torch.einsum("a,b,c->abc", *probs)}
    for n, outer in outers.items():
        torch.testing.assert_close(joint_distribution(probs, ids, n, table, alpha_c=0.0), outer / outer.sum())
    assert table.calls == 0  # alpha_c = 0: the table is never consulted
    joint_distribution(probs, ids, 3, None, alpha_c=0.0)  # and may be absent


def test_joint_hand_example_ratio_binary_and_partial():
    probs = torch.tensor([[0.6, 0.4], [0.7, 0.3]])
    ids = torch.tensor([[10, 11], [20, 21]])
    table = DictTable({(10, 20): 2.0, (10, 21): 1.0, (11, 21): 0.5})  # (11, 20) unseen
    # product [[.42, .18], [.28, .12]] x ratio [[2, 1], [0, .5]] = [[.84, .18], [0, .06]], sum 1.08
    got = joint_distribution(probs, ids, 2, table, alpha_c=1.0, mode="ratio")
    torch.testing.assert_close(got, torch.tensor([[0.84, 0.18], [0.0, 0.06]]) / 1.08)
    got = joint_distribution(probs, ids, 2, table, alpha_c=1.0, mode="binary")
    torch.testing.assert_close(got, torch.tensor([[0.42, 0.18], [0.0, 0.12]]) / 0.72)
    half = torch.tensor([[0.42 * 2**0.5, 0.18], [0.0, 0.12 * 0.5**0.5]])
    got = joint_distribution(probs, ids, 2, table, alpha_c=0.5)
    torch.testing.assert_close(got, half / half.sum())


def test_joint_three_heads_uses_the_right_candidate_per_cell():
    probs = torch.full((3, 2), 0.5)
    ids = torch.tensor([[1, 2], [3, 4], [5, 6]])
    table = DictTable({(2, 3, 6): 3.0, (1, 4, 5): 1.0})
    got = joint_distribution(probs, ids, 3, table, alpha_c=1.0)
    want = torch.zeros(2, 2, 2)
    want[1, 0, 1] = 0.75
    want[0, 1, 0] = 0.25
    torch.testing.assert_close(got, want)


def test_joint_all_unseen_is_all_zeros_without_nan():
    probs, ids = head_topk(random_logits(3), k=4, temperature=1.0)
    got = joint_distribution(probs, ids, 3, DictTable({}), alpha_c=1.0)
    assert got.shape == (4, 4, 4)
    assert not torch.isnan(got).any() and (got == 0).all()


# ----------------------------------------------------------------------------------------- blur
def blur_bruteforce(x: torch.Tensor, kernel: list[float]) -> torch.Tensor:
    """Direct n-D convolution with the product kernel and OpenCV BORDER_REFLECT_101 (pure Python)."""

    def reflect(p: int, length: int) -> int:
        if length == 1:
            return 0
        while p < 0 or p >= length:
            p = -p if p < 0 else 2 * (length - 1) - p
        return p

    r = len(kernel) // 2
    out = torch.zeros_like(x, dtype=torch.float64)
    shape = x.shape
    offsets = torch.cartesian_prod(*[torch.arange(-r, r + 1)] * x.dim()).reshape(-1, x.dim()).tolist()
    for pos in torch.cartesian_prod(*[torch.arange(s) for s in shape]).reshape(-1, x.dim()).tolist():
        acc = 0.0
        for off in offsets:
            w = math.prod(kernel[o + r] for o in off)
            src = tuple(reflect(p + o, s) for p, o, s in zip(pos, off, shape))
            acc += w * float(x[src])
        out[tuple(pos)] = acc
    return out


def test_gaussian_blur_hand_2d_examples():
    ramp = torch.arange(1.0, 10.0).reshape(3, 3)
    # a row [1, 2, 3] pads to [2 | 1 2 3 | 2]: [1.5, 2, 2.5]; columns likewise (+-1.5)
    want = torch.tensor([[3.0, 3.5, 4.0], [4.5, 5.0, 5.5], [6.0, 6.5, 7.0]])
    torch.testing.assert_close(gaussian_blur(ramp, 3), want)
    corner = torch.zeros(3, 3)
    corner[0, 0] = 1.0  # [1, 0, 0] pads to [0 | 1 0 0 | 0] -> [0.5, 0.25, 0] per axis
    want = torch.tensor([[0.25, 0.125, 0.0], [0.125, 0.0625, 0.0], [0.0, 0.0, 0.0]])
    torch.testing.assert_close(gaussian_blur(corner, 3), want)


def test_gaussian_blur_3d_matches_bruteforce_and_is_separable():
    g = torch.Generator().manual_seed(4)
    x = torch.rand(4, 3, 5, generator=g, dtype=torch.float64)
    torch.testing.assert_close(gaussian_blur(x, 3), blur_bruteforce(x, [0.25, 0.5, 0.25]))
    a, b, c = torch.rand(4, generator=g), torch.rand(3, generator=g), torch.rand(5, generator=g)
    outer = torch.einsum("i,j,k->ijk", a, b, c)
    want = torch.einsum("i,j,k->ijk", gaussian_blur(a), gaussian_blur(b), gaussian_blur(c))
    torch.testing.assert_close(gaussian_blur(outer, 3), want)
    centre = torch.zeros(5, 5, 5)
    centre[2, 2, 2] = 1.0
    k1 = torch.tensor([0.0, 0.25, 0.5, 0.25, 0.0])
    torch.testing.assert_close(gaussian_blur(centre), torch.einsum("i,j,k->ijk", k1, k1, k1))


def test_gaussian_blur_short_axes_and_larger_kernels():
    g = torch.Generator().manual_seed(5)
    x = torch.rand(1, 2, 3, generator=g, dtype=torch.float64)  # axes shorter than the kernel
    for ksize in (3, 5, 7):
        kernel = gaussian_kernel_1d(ksize).tolist()
        torch.testing.assert_close(gaussian_blur(x, ksize), blur_bruteforce(x, kernel))
    torch.testing.assert_close(gaussian_kernel_1d(5), torch.tensor([1.0, 4, 6, 4, 1], dtype=torch.float64) / 16)
    sigma = 0.3 * ((9 - 1) * 0.5 - 1) + 0.8
    w = torch.exp(-((torch.arange(9.0, dtype=torch.float64) - 4) ** 2) / (2 * sigma**2))
    torch.testing.assert_close(gaussian_kernel_1d(9), w / w.sum())


def test_gaussian_blur_of_a_constant_is_the_constant_and_no_blur_is_identity():
    for shape in [(5,), (4, 6), (3, 3, 3)]:
        torch.testing.assert_close(gaussian_blur(torch.full(shape, 0.37), 3), torch.full(shape, 0.37))
        torch.testing.assert_close(gaussian_blur(torch.full(shape, 0.37), 5), torch.full(shape, 0.37))
    x = torch.rand(3, 4)
    for ksize in (0, 1):
        torch.testing.assert_close(gaussian_blur(x, ksize), x)
    for bad in (2, 4, -1):
        with pytest.raises(ValueError, match="ksize"):
            gaussian_blur(x, bad)


def test_gaussian_blur_matches_opencv():
    cv2 = pytest.importorskip("cv2")
    g = torch.Generator().manual_seed(6)
    for shape in [(7, 9), (3, 3), (2, 5), (50, 50)]:
        x = torch.rand(shape, generator=g, dtype=torch.float64)
        for ksize in [k for k in (3, 5, 9) if k // 2 < min(shape)]:
            want = torch.from_numpy(cv2.GaussianBlur(x.numpy(), (ksize, ksize), 0))
            torch.testing.assert_close(gaussian_blur(x, ksize), want)


# ----------------------------------------------------------------------------------------- Otsu
def otsu_bruteforce(values: list[float], bins: int) -> float:
    """Pure-Python Otsu: try every split of the histogram, keep the first maximum, return its edge."""
    lo, hi = min(values), max(values)
    if lo == hi:
        return lo
    width = (hi - lo) / bins
    edges = [lo + i * width for i in range(bins)] + [hi]
    counts = [0] * bins
    for v in values:
        b = next((i for i in range(bins) if v < edges[i + 1]), bins - 1)
        counts[b] += 1
    centres = [(edges[i] + edges[i + 1]) / 2 for i in range(bins)]
    best, best_t = -1.0, 0
    for t in range(bins - 1):
        w1, w2 = sum(counts[: t + 1]), sum(counts[t + 1 :])
        m1 = sum(c * x for c, x in zip(counts[: t + 1], centres[: t + 1])) / w1
        m2 = sum(c * x for c, x in zip(counts[t + 1 :], centres[t + 1 :])) / w2
        var = w1 * w2 * (m1 - m2) ** 2
        if var > best * (1 + 1e-12):  # first maximum, robust to summation-order rounding
            best, best_t = var, t
    return edges[best_t + 1]


@pytest.mark.parametrize("seed", range(6))
def test_otsu_matches_bruteforce(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(300, generator=g, dtype=torch.float64) ** 3
    if seed % 2:
        x[torch.rand(300, generator=g) < 0.6] = 0.0  # a joint is mostly zeros after masking
    bins = [256, 16, 7][seed % 3]
    assert otsu_threshold(x, bins) == pytest.approx(otsu_bruteforce(x.tolist(), bins), rel=1e-12, abs=1e-15)


def test_otsu_matches_skimage_up_to_half_a_bin():
    filters = pytest.importorskip("skimage.filters")
    g = torch.Generator().manual_seed(7)
    x = torch.rand(20, 20, generator=g, dtype=torch.float64) ** 2
    half_bin = float(x.max() - x.min()) / 256 / 2
    assert otsu_threshold(x, 256) == pytest.approx(filters.threshold_otsu(x.numpy(), nbins=256) + half_bin)


def test_otsu_separates_two_modes_and_handles_constants():
    g = torch.Generator().manual_seed(8)
    low = 0.1 + 0.02 * torch.randn(500, generator=g)
    high = 0.8 + 0.02 * torch.randn(200, generator=g)
    thr = otsu_threshold(torch.cat([low, high])[torch.randperm(700, generator=g)])
    assert low.max() < thr <= high.min()
    assert otsu_threshold(torch.full((3, 3), 0.25)) == 0.25
    x = torch.rand(10, 10, generator=g)
    assert x.min() < otsu_threshold(x) < x.max()


# ----------------------------------------------------------------------------------------- repetition
def test_repetition_factor_counts():
    ids = torch.tensor([[5, 7], [5, 9], [7, 5]])
    ctx = torch.tensor([5, 5, 1])
    got = repetition_factor(ids, 1, ctx, 2.0)
    torch.testing.assert_close(got, torch.tensor([2.0, 1.0]))
    # pairs (a, b): count = [a in ctx] + [b in ctx]; 5 in ctx, 7 and 9 not
    got = repetition_factor(ids, 2, ctx, 2.0, "context")
    torch.testing.assert_close(got, torch.tensor([[4.0, 2.0], [2.0, 1.0]]))
    # "context_and_ngram" also counts b == a: (7, 9) no, (5, 5) already 2, nothing new
    got = repetition_factor(ids, 2, ctx, 2.0, "context_and_ngram")
    torch.testing.assert_close(got, torch.tensor([[4.0, 2.0], [2.0, 1.0]]))
    # triplets: third head [7, 5]; (7, 9, 7) repeats 7 inside the n-gram, (5, 9, 5) is in context twice
    ctx = torch.tensor([5])
    got = repetition_factor(ids, 3, ctx, 3.0, "context")
    assert got[1, 1, 0] == 1.0 and got[0, 1, 1] == 9.0 and got[0, 0, 1] == 27.0
    got = repetition_factor(ids, 3, ctx, 3.0, "context_and_ngram")
    assert got[1, 1, 0] == 3.0 and got[0, 1, 1] == 9.0 and got[0, 0, 1] == 27.0 and got[1, 1, 1] == 3.0
    empty = repetition_factor(ids, 3, torch.tensor([], dtype=torch.long), 3.0, "context")
    assert (empty == 1).all()


# ----------------------------------------------------------------------------------------- choose_tokens
def test_eps_b_limits_give_one_or_max_tokens():
    table = FullTable()
    for seed in range(60):
        logits = random_logits(seed)
        ctx = torch.randint(0, 64, (10,), generator=torch.Generator().manual_seed(seed))
        for max_tokens in (3, 2):
            cfg = SamplingConfig(top_k=8, eps_b=0.0, max_tokens=max_tokens)
            step = choose_tokens(logits, ctx, table, cfg, torch.Generator().manual_seed(seed))
            assert step.n == len(step.tokens) == max_tokens
        step = choose_tokens(logits, ctx, table, SamplingConfig(top_k=8, eps_b=1.0), torch.Generator().manual_seed(0))
        assert step.n == len(step.tokens) == 1


def test_tokens_per_step_non_increasing_in_eps_b():
    # With no context the repetition penalty is inert and each level's test is max(J_n) > eps_b**(n-1),
    # so the number of tokens of a step can only fall as eps_b rises.
    table = FullTable()
    empty = torch.tensor([], dtype=torch.long)
    logits = [random_logits(seed, scale=4.0) for seed in range(80)]
    sweep = [i / 10 for i in range(11)]
    per_eps = []
    for eps in sweep:
        cfg = SamplingConfig(top_k=8, eps_b=eps)
        per_eps.append(
            [choose_tokens(x, empty, table, cfg, torch.Generator().manual_seed(i)).n for i, x in enumerate(logits)]
        )
    means = [sum(ns) / len(ns) for ns in per_eps]
    assert means[0] == 3 and means[-1] == 1
    assert all(a >= b for a, b in zip(means, means[1:])), means
    assert all(all(a >= b for a, b in zip(lo, hi)) for lo, hi in zip(per_eps, per_eps[1:]))
    assert len(set(means)) >= 4, means  # the sweep is not a step function


def test_threshold_exponent_constant_zeroes_at_eps_b():
    # Three heads whose joint has max 0.3 > eps_b**2 = 0.25 but < eps_b = 0.5.
    p = torch.tensor([[0.75, 0.25], [0.8, 0.2], [0.5, 0.5]])
    logits = p.log()
    empty = torch.tensor([], dtype=torch.long)
    cfg = SamplingConfig(top_k=2, temperature=1.0, alpha_c=0.0, eps_b=0.5, repetition_penalty=1.0)
    step = choose_tokens(logits, empty, None, cfg, torch.Generator().manual_seed(0))
    assert step.n == 3 and step.joint_max == pytest.approx(0.3)
    assert step.tokens[:2] == [0, 0]  # only the two 0.3 cells survive the bar 0.25
    cfg = dataclasses.replace(cfg, threshold_exponent="constant")
    step = choose_tokens(logits, empty, None, cfg, torch.Generator().manual_seed(0))
    assert step.n == 2 and step.tokens == [0, 0]  # 3 tokens: all zeroed; 2 tokens: 0.6 > 0.5


def test_adaptive_threshold_zeroes_below_otsu_and_keeps_the_max():
    probs, ids = head_topk(random_logits(9, scale=2.0), k=10, temperature=0.7)
    cfg = SamplingConfig(top_k=10, alpha_c=0.0, eps_b=0.0, repetition_penalty=1.0)
    raw = joint_distribution(probs, ids, 3, None, 0.0)
    level = thresholded_joint(probs, ids, 3, torch.tensor([], dtype=torch.long), None, cfg)
    assert level.threshold == pytest.approx(otsu_threshold(gaussian_blur(raw, 3)))
    kept = level.weights > 0
    assert kept.sum() < raw.numel()  # Otsu removed something
    torch.testing.assert_close(level.weights[kept], raw[kept])
    assert (raw[~kept] < level.threshold).all() and (raw[kept] >= level.threshold).all()
    assert level.weights.max() == raw.max()
    # sample_from="blurred": drawn from the blurred map, on a subset of the raw support
    cfg = dataclasses.replace(cfg, sample_from="blurred")
    blurred = thresholded_joint(probs, ids, 3, torch.tensor([], dtype=torch.long), None, cfg)
    assert ((blurred.weights > 0) <= (raw > 0)).all()
    assert blurred.threshold == level.threshold


def test_sampled_cells_match_the_joint():
    joint = torch.tensor([[0.30, 0.15, 0.05], [0.18, 0.09, 0.03], [0.12, 0.06, 0.02]])
    draws = 20000
    cells = sample_cells(joint, draws, torch.Generator().manual_seed(10))
    freq = torch.zeros(3, 3)
    freq.index_put_((cells[:, 0], cells[:, 1]), torch.ones(draws), accumulate=True)
    check_frequencies(freq / draws, joint, draws)


def check_frequencies(freq: torch.Tensor, weights: torch.Tensor, draws: int) -> None:
    p = weights / weights.sum()
    se = (p * (1 - p) / draws).sqrt()
    assert ((freq - p).abs() <= 4 * se + 1e-12).all(), (freq, p)


def test_choose_tokens_draws_from_the_penalised_joint():
    # Heads over a 3-token vocabulary: p1 = [.5, .3, .2], p2 = [.6, .3, .1] (ids = ranks).  Context [0]
    # with penalty 2 divides each cell by 2 ** (#zeros in its pair).  No co-occurrence, no thresholds.
    logits = torch.tensor([[0.5, 0.3, 0.2], [0.6, 0.3, 0.1]]).log()
    cfg = SamplingConfig(
        top_k=3, temperature=1.0, alpha_c=0.0, eps_b=0.0, adaptive="none", repetition_penalty=2.0, max_tokens=2
    )
    want = torch.tensor([[0.075, 0.075, 0.025], [0.09, 0.09, 0.03], [0.06, 0.06, 0.02]])
    gen = torch.Generator().manual_seed(11)
    draws = 4000
    freq = torch.zeros(3, 3)
    for _ in range(draws):
        step = choose_tokens(logits, torch.tensor([0]), None, cfg, gen)
        assert step.n == 2 and step.joint_max == pytest.approx(0.09)
        freq[step.tokens[0], step.tokens[1]] += 1
    check_frequencies(freq / draws, want, draws)


def test_single_token_path_penalises_context_tokens():
    logits = torch.tensor([[0.5, 0.3, 0.2]]).log()  # one head: always n = 1
    cfg = SamplingConfig(top_k=3, temperature=1.0, alpha_c=0.0, repetition_penalty=5.0)
    gen = torch.Generator().manual_seed(12)
    counts = [0, 0, 0]
    for _ in range(3000):
        step = choose_tokens(logits, torch.tensor([0, 2]), None, cfg, gen)
        assert step.n == 1 and step.threshold == 0.0
        counts[step.tokens[0]] += 1
    check_frequencies(torch.tensor(counts) / 3000, torch.tensor([0.1, 0.3, 0.04]), 3000)
    assert step.joint_max == pytest.approx(0.3)


def test_choose_tokens_is_deterministic_under_a_seeded_generator():
    table = DictTable({}, default=1.0)
    cfg = SamplingConfig(top_k=6, eps_b=0.2)

    def run(seed: int) -> list[list[int]]:
        gen = torch.Generator().manual_seed(seed)
        ctx = torch.tensor([1, 2, 3])
        return [choose_tokens(random_logits(s, scale=1.5), ctx, table, cfg, gen).tokens for s in range(30)]

    assert run(0) == run(0)
    assert run(0) != run(1)


def test_table_required_when_alpha_c_is_positive():
    with pytest.raises(ValueError, match="table"):
        choose_tokens(random_logits(0), torch.tensor([1]), None, SamplingConfig(top_k=4))


@pytest.mark.parametrize(
    "field, value",
    [
        ("top_k", 0),
        ("top_k", 2.5),
        ("temperature", 0.0),
        ("temperature", float("nan")),
        ("alpha_c", -0.5),
        ("cooccurrence_mode", "soft"),
        ("eps_b", 1.5),
        ("eps_b", -0.1),
        ("threshold_exponent", "n"),
        ("adaptive", "triangle"),
        ("blur_kernel", 4),
        ("blur_kernel", -3),
        ("otsu_bins", 1),
        ("sample_from", "both"),
        ("repetition_penalty", 0.0),
        ("repetition_scope", "ngram"),
        ("renormalise_topk", 1),
        ("max_tokens", 0),
        ("max_tokens", True),
    ],
)
def test_bad_config_values_name_the_field(field, value):
    with pytest.raises(ValueError, match=field):
        SamplingConfig(**{field: value})


def test_default_config_is_valid():
    cfg = SamplingConfig()
    cfg.validate()
    assert (cfg.top_k, cfg.temperature, cfg.repetition_penalty, cfg.max_tokens) == (50, 0.7, 1.1, 3)
    assert cfg.static_bars(3) == (0.25, 0.25) and cfg.static_bars(2) == (0.5, 0.5)


# ----------------------------------------------------------------------------------- all-ones table
class OnesTable:
    """Every n-gram seen with ratio 1: co-occurrence masking must then be a no-op."""

    def lookup(self, candidates: torch.Tensor, mode: str = "ratio") -> torch.Tensor:
        return torch.ones(candidates.shape[:-1])


@pytest.mark.parametrize("mode", ["ratio", "binary"])
@pytest.mark.parametrize("alpha_c", [0.5, 1.0, 2.0])
def test_all_ones_table_changes_nothing(mode, alpha_c):
    plain = SamplingConfig(alpha_c=0.0, eps_b=0.2)
    masked = dataclasses.replace(plain, alpha_c=alpha_c, cooccurrence_mode=mode)
    for seed in range(6):
        logits = random_logits(seed)
        context = torch.tensor([1, 5, 9])
        probs, ids = head_topk(logits, plain.top_k, plain.temperature)
        for n in (2, 3):
            a = thresholded_joint(probs, ids, n, context, None, plain)
            b = thresholded_joint(probs, ids, n, context, OnesTable(), masked)
            assert torch.equal(a.weights, b.weights) and a.threshold == b.threshold
        x = choose_tokens(logits, context, None, plain, torch.Generator().manual_seed(seed))
        y = choose_tokens(logits, context, OnesTable(), masked, torch.Generator().manual_seed(seed))
        assert x == y
