"""What each DynaMo rule runs: file in, file out (``workflow/rules/dynamo.smk``).

* :func:`build_cooccurrence`: n-gram co-occurrence tables of the training text (safetensors);
* :func:`train` / :func:`load_heads`: the token heads on the prepared model, saved as
  ``heads.safetensors`` (the new layers and norms only) + ``heads.json`` (settings, base model path,
  per-step history);
* :func:`perplexity_records`: per-head and joint perplexity and the parameter overhead;
* :func:`decoding_records`: the threshold sweep (tokens per step, step-size shares, wall-clock
  tokens/s against autoregressive decoding of the same model, offline quality) on the prompts, and
  the generated continuations (``generations.jsonl``);
* :func:`judge_records`: the pairwise win rate of each decoding against autoregressive decoding,
  by a local judge model (paper tier; brief §5.3).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from repro.io import atomic_dir
from repro.llm.calibration import calibration_batches
from repro.llm.stages import load_model, pick_device

from .cooccurrence import CooccurrenceTable
from .corpus import TokenPieces, stream_windows
from .generate import autoregressive_generate, dynamo_generate
from .heads import MultiTokenModel, layer_parameters_from_config
from .metrics import continuation_nll, distinct_n, multi_token_perplexity, repetition_rate
from .sampling import SamplingConfig
from .training import train_heads

__all__ = [
    "CooccurrenceTable",
    "HEADS_FILE",
    "HEADS_INFO",
    "build_cooccurrence",
    "decoding_records",
    "judge_records",
    "read_generations",
    "write_generations",
    "load_heads",
    "perplexity_records",
    "load_model",
    "pick_device",
    "save_heads",
    "text_windows",
    "tokenize_text",
    "train",
]

log = logging.getLogger(__name__)
HEADS_FILE = "heads.safetensors"
HEADS_INFO = "heads.json"
FORMAT_VERSION = 1


def text_windows(tokenizer, options: Mapping[str, Any]) -> torch.Tensor:
    """The first ``max_windows`` non-overlapping ``window``-token windows of ``options["text"]`` (``(N, window)``)."""
    ids = tokenize_text(tokenizer, options["text"])
    window = int(options["window"])
    n = ids.numel() // window
    if options.get("max_windows"):
        n = min(n, int(options["max_windows"]))
    if n < 1:
        raise ValueError(f"{options['text']}: fewer than {window} tokens, no perplexity window")
    return ids[: n * window].view(n, window)


def tokenize_text(tokenizer, path) -> torch.Tensor:
    """All token ids of a text file (no special tokens), 1-D."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    ids = tokenizer(path.read_text(encoding="utf-8"), add_special_tokens=False)["input_ids"]
    return torch.as_tensor(ids, dtype=torch.long)


# ---------------------------------------------------------------------------------------------- co-occurrence
def build_cooccurrence(model_dir, text, options: Mapping[str, Any], out_path) -> dict[str, Any]:
    """Co-occurrence tables of ``text`` tokenised with the model's tokenizer; returns a summary."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir, local_files_only=True, trust_remote_code=False)
    chunk_chars = options.get("chunk_chars")
    # chunk_chars: stream the text in pieces (each read once per order; n-grams stay within a piece)
    documents = [tokenize_text(tokenizer, text)] if chunk_chars is None else TokenPieces(tokenizer, text, chunk_chars)
    t0 = time.perf_counter()
    table = CooccurrenceTable.build(
        documents,
        len(tokenizer),
        orders=tuple(int(n) for n in options.get("orders", (2, 3))),
        min_count=int(options.get("min_count", 2)),
        max_entries=options.get("max_entries"),
        progress=chunk_chars is not None,
    )
    seconds = time.perf_counter() - t0
    table.save(out_path)
    summary = {"tokens": table.total_tokens, "seconds": seconds, "memory_bytes": table.memory_bytes()}
    summary.update({f"entries_{n}": int(k) for n, k in table.kept.items()})
    summary.update({f"distinct_{n}": int(t) for n, t in table.ngram_totals.items()})
    return summary


# ---------------------------------------------------------------------------------------------- heads
def save_heads(model: MultiTokenModel, folder, info: Mapping[str, Any]) -> None:
    """Write the new heads' parameters and ``info`` (JSON) into ``folder`` atomically."""
    folder = Path(folder)
    state = {f"extra_layers.{k}": v for k, v in model.extra_layers.state_dict().items()}
    state.update({f"extra_norms.{k}": v for k, v in model.extra_norms.state_dict().items()})
    with atomic_dir(folder) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, tmp / HEADS_FILE)
        (tmp / HEADS_INFO).write_text(json.dumps({"format_version": FORMAT_VERSION, **info}, indent=1))


def load_heads(folder, dtype: str = "float32", device: str = "auto") -> tuple[MultiTokenModel, Any, dict]:
    """``(model, tokenizer, info)`` from a folder written by :func:`save_heads` (base loaded from ``info``)."""
    folder = Path(folder)
    info_path = folder / HEADS_INFO
    if not info_path.is_file() or not (folder / HEADS_FILE).is_file():
        raise FileNotFoundError(f"{folder} is not a DynaMo heads folder (needs {HEADS_INFO} and {HEADS_FILE})")
    info = json.loads(info_path.read_text())
    if info.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{info_path}: format_version {info.get('format_version')!r}, expected {FORMAT_VERSION}")
    base, tokenizer = load_model(info["base_model"], dtype, device)
    arch = info["architecture"]
    model = MultiTokenModel(base, int(arch["n_heads"]), own_norm=bool(arch["own_norm"]), init="normal")
    state = load_file(folder / HEADS_FILE)
    expected = {f"extra_layers.{k}" for k in model.extra_layers.state_dict()}
    expected |= {f"extra_norms.{k}" for k in model.extra_norms.state_dict()}
    if set(state) != expected:
        raise ValueError(
            f"{folder / HEADS_FILE}: tensors do not match the architecture in {HEADS_INFO} "
            f"(missing {sorted(expected - set(state))[:3]}, unexpected {sorted(set(state) - expected)[:3]})"
        )
    model.extra_layers.load_state_dict(
        {k.removeprefix("extra_layers."): v for k, v in state.items() if k.startswith("extra_layers.")}
    )
    model.extra_norms.load_state_dict(
        {k.removeprefix("extra_norms."): v for k, v in state.items() if k.startswith("extra_norms.")}
    )
    return model.eval(), tokenizer, info


def train(
    model_dir, text, options: Mapping[str, Any], out_dir, *, dtype: str = "float32", device: str = "auto"
) -> dict:
    """Train the heads on random windows of ``text`` as ``options`` say; save them to ``out_dir``."""
    base, tokenizer = load_model(model_dir, dtype, device)
    if options.get("train_base", False):
        base.train()
    arch = {
        "n_heads": int(options.get("n_heads", 3)),
        "own_norm": bool(options.get("own_norm", True)),
        "init": options.get("init", "normal"),
        "seed": int(options.get("seed", 0)),
    }
    model = MultiTokenModel(base, arch["n_heads"], own_norm=arch["own_norm"], init=arch["init"], seed=arch["seed"])
    steps, batch, seq_len = int(options["steps"]), int(options.get("batch_size", 8)), int(options["seq_len"])
    if options.get("stream", False):  # a corpus too large for memory (paper tier): batches read from disk
        windows = stream_windows(tokenizer, text, seq_len=seq_len, batch_size=batch, steps=steps, seed=arch["seed"])
    else:
        windows = calibration_batches(
            tokenizer, Path(text).read_text(encoding="utf-8"), steps * batch, seq_len, arch["seed"]
        )
    keys = ("lr_base", "head_lr_ratio", "stem_grad_ratio", "unembed_grad_ratio", "train_base", "warmup_fraction")
    settings = {k: options[k] for k in (*keys, "weight_decay", "loss_weights", "progress") if k in options}
    t0 = time.perf_counter()
    history = train_heads(model, windows, steps=steps, batch_size=batch, seed=arch["seed"], **settings)
    seconds = time.perf_counter() - t0
    from repro.llm.stages import peak_rss_mb

    overhead = model.parameter_overhead()
    info = {
        "base_model": str(model_dir),
        "architecture": arch,
        "training": {
            "steps": steps,
            "batch_size": batch,
            "seq_len": seq_len,
            "stream": bool(options.get("stream", False)),
            "text": str(text),
            **settings,
        },
        "tokens": steps * batch * seq_len,
        "seconds": seconds,
        "peak_rss_mb": peak_rss_mb(),
        "overhead": overhead,
        "formula_extra": (arch["n_heads"] - 1) * layer_parameters_from_config(base.config),
        "history": history,
    }
    save_heads(model, out_dir, info)
    log.info("DynaMo heads: %d steps, %d tokens in %.0f s -> %s", steps, info["tokens"], seconds, out_dir)
    return info


# ---------------------------------------------------------------------------------------------- evaluate
def perplexity_records(
    model: MultiTokenModel, windows: torch.Tensor, info: Mapping[str, Any], dataset: str
) -> list[dict]:
    """Per-head / joint perplexity rows and the parameter-overhead rows of one trained model."""
    result = multi_token_perplexity(model, windows)
    rows = [{"metric": k, "value": float(v), "dataset": dataset} for k, v in result.items()]
    overhead = info["overhead"]
    rows += [
        {"metric": "params_base", "value": float(overhead["base"]), "dataset": "model"},
        {"metric": "params_extra", "value": float(overhead["extra"]), "dataset": "model"},
        {"metric": "overhead", "value": float(overhead["overhead"]), "dataset": "model"},
        {"metric": "params_extra_formula", "value": float(info["formula_extra"]), "dataset": "model"},
    ]
    return rows


def _quality(reference, generations) -> dict[str, float]:
    nll = tokens = 0.0
    for g in generations:
        a, b = continuation_nll(reference, g.prompt, g.tokens)
        nll, tokens = nll + a, tokens + b
    import math

    return {
        "continuation_ppl": math.exp(nll / tokens) if tokens else float("nan"),
        "distinct_2": distinct_n([g.tokens for g in generations], 2),
        "repetition_rate": sum(repetition_rate(g.tokens) for g in generations) / len(generations),
    }


def decoding_records(
    model: MultiTokenModel,
    tokenizer,
    table: CooccurrenceTable,
    prompts: Sequence[str],
    options: Mapping[str, Any],
    draft=None,
    samples: list[dict] | None = None,
) -> list[dict]:
    """The threshold sweep, the autoregressive reference and, with a ``draft`` model, assisted generation,
    as rows (``dataset`` = ``eps_<value>`` / ``ar`` / ``assisted``).

    ``options``: ``thresholds``, ``max_new_tokens``, ``seeds``, ``sampling`` (fields of
    :class:`SamplingConfig`).  Every generation is scored by the base model (head 1 = the dense model).
    ``samples``, when given, receives one dict per generation: ``dataset``, ``prompt``, ``seed``,
    ``continuation`` (decoded text) and ``tokens``.
    """
    config = SamplingConfig(**dict(options.get("sampling") or {}))
    prompt_ids = [tokenizer(p, add_special_tokens=False)["input_ids"] for p in prompts]
    seeds = [int(s) for s in options.get("seeds", [0])]
    limit = int(options["max_new_tokens"])
    eos = tokenizer.eos_token_id
    rows: list[dict] = []

    from tqdm.auto import tqdm

    runs = len(options["thresholds"]) + 1 + (draft is not None)
    bar = tqdm(total=runs * len(prompt_ids) * len(seeds), desc="generations", mininterval=5)

    def run(fn) -> list:
        out = []
        for ids in prompt_ids:
            for seed in seeds:
                out.append(fn(ids, torch.Generator().manual_seed(seed)))
                bar.update()
        return out

    def keep(dataset: str, gens) -> None:
        if samples is None:
            return
        pairs = [(prompt, seed) for prompt in prompts for seed in seeds]
        for (prompt, seed), g in zip(pairs, gens):
            text = tokenizer.decode(g.tokens, skip_special_tokens=True)
            samples.append(
                {"dataset": dataset, "prompt": prompt, "seed": seed, "continuation": text, "tokens": g.tokens}
            )

    # warm-up (first calls allocate caches and kernels)
    autoregressive_generate(model.base, prompt_ids[0], 4, config, torch.Generator().manual_seed(0))
    ar = run(lambda ids, g: autoregressive_generate(model.base, ids, limit, config, g, eos))
    ar_tps = sum(len(g.tokens) for g in ar) / sum(g.seconds for g in ar)
    rows += _rows("ar", ar, ar_tps, _quality(model.base, ar))
    keep("ar", ar)
    if draft is not None:
        from .assisted import assisted_generate

        assisted_generate(model.base, draft, prompt_ids[0], 4, config, 0, eos)  # warm-up
        gens = run(lambda ids, g: assisted_generate(model.base, draft, ids, limit, config, int(g.initial_seed()), eos))
        rows += _rows("assisted", gens, ar_tps, _quality(model.base, gens))
        keep("assisted", gens)
    for eps in options["thresholds"]:
        cfg = replace(config, eps_b=float(eps))
        gens = run(lambda ids, g, cfg=cfg: dynamo_generate(model, ids, limit, table, cfg, g, eos))
        rows += _rows(f"eps_{float(eps):.2f}", gens, ar_tps, _quality(model.base, gens), eps=float(eps))
        keep(f"eps_{float(eps):.2f}", gens)
    bar.close()
    return rows


def write_generations(samples: Sequence[Mapping[str, Any]], path) -> None:
    """One JSON object per line (``dataset, prompt, seed, continuation, tokens``), written atomically."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(json.dumps(dict(s)) + "\n" for s in samples), encoding="utf-8")
    tmp.replace(path)


def read_generations(path) -> list[dict]:
    """The samples of :func:`write_generations`; a clear error naming the file and line otherwise."""
    path = Path(path)
    samples = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            sample = json.loads(line)
        except json.JSONDecodeError as err:
            raise ValueError(f"{path}:{i}: not a JSON line ({err.msg})") from None
        missing = {"dataset", "prompt", "seed", "continuation"} - set(sample)
        if missing:
            raise ValueError(f"{path}:{i}: generation record lacks {sorted(missing)}")
        samples.append(sample)
    return samples


def judge_records(samples: Sequence[Mapping[str, Any]], judge, reference: str = "ar") -> list[dict]:
    """Win rate of every decoding against ``reference`` on the same (prompt, seed), by ``judge``
    (a :class:`~repro.dynamo.judge.PairwiseJudge`): rows ``wins``, ``losses``, ``ties``, ``invalid``,
    ``win_rate`` per ``dataset`` (brief §5.3: wins / losses, ties excluded)."""
    from tqdm.auto import tqdm

    from .judge import win_rate

    base = {(s["prompt"], s["seed"]): s["continuation"] for s in samples if s["dataset"] == reference}
    if not base:
        raise ValueError(f"no {reference!r} generations to judge against")
    others = [s for s in samples if s["dataset"] != reference]
    outcomes: dict[str, list[str]] = {}
    for s in tqdm(others, desc="judge", mininterval=5):
        key = (s["prompt"], s["seed"])
        if key not in base:
            raise ValueError(
                f"{s['dataset']}: no {reference!r} generation for prompt {s['prompt']!r}, seed {s['seed']}"
            )
        outcomes.setdefault(s["dataset"], []).append(judge.compare(s["prompt"], s["continuation"], base[key]))
    rows = []
    for dataset, results in outcomes.items():
        # win_rate is NaN without a loss: that row is left out, as the decoding rows leave out NaNs
        rows += [{"metric": k, "value": float(v), "dataset": dataset} for k, v in win_rate(results).items() if v == v]
    return rows


def _rows(dataset: str, gens, ar_tps: float, quality: Mapping[str, float], eps: float | None = None) -> list[dict]:
    tokens = sum(len(g.tokens) for g in gens)
    steps = sum(g.steps for g in gens)
    tps = tokens / sum(g.seconds for g in gens)
    nan = float("nan")
    values = {
        "tokens": tokens,
        "steps": steps,
        "tokens_per_step": tokens / steps if steps else nan,  # assisted generation does not report steps
        "tokens_per_s": tps,
        "speedup": tps / ar_tps,
        **{f"share_{n}": sum(s == n for g in gens for s in g.step_sizes) / steps if steps else nan for n in (1, 2, 3)},
        **quality,
    }
    if eps is not None:
        values["eps_b"] = eps
    return [{"metric": k, "value": float(v), "dataset": dataset} for k, v in values.items() if v == v]
