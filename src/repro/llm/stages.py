"""The LLM stages of the DAG as file-to-file functions (``workflow/rules/llm.smk`` calls one per rule).

calibrate -> compress -> {params, perplexity, zeroshot, speed}.  Each stage loads what it needs
from disk, so any stage can be rerun alone; the rules only wire paths and config slices.

* :func:`calibrate`: calibration windows from a text (``calibration_batches``: random windows,
  seeded), every statistic of :data:`repro.llm.calibration.ALL_STATISTICS` on the *original* model
  (float64, streamed layer by layer), saved as safetensors, plus throughput and peak-RSS rows.
  Statistics of a partially compressed model (the sequential mode) depend on the method, so the
  methods that need them (SliceGPT, Wanda's and SparseGPT's default) collect them inside their compress job.
* :func:`compress`: one run of :mod:`repro.llm.runs` with the same windows (same seed), cached
  statistics passed to the methods that can use them, the result saved with
  :func:`repro.llm.compressed.save_compressed` (a real smaller model, never a mask).
* :func:`parameter_records`, :func:`perplexity_records_for`, :func:`zeroshot_records_for`,
  :func:`speed_records_for`: result records for :func:`repro.report.rows.tidy_rows`.
"""

from __future__ import annotations

import logging
import resource
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from repro.llm.adapters import get_adapter
from repro.llm.calibration import (
    ALL_STATISTICS,
    calibration_batches,
    collect_statistics,
    load_statistics,
    save_statistics,
)
from repro.llm.compressed import COMPRESSION_FILE, load_compressed, save_compressed
from repro.llm.params import compression_ratio, parameter_counts
from repro.llm.runs import SPARSE_METHODS

log = logging.getLogger(__name__)

__all__ = [
    "calibrate",
    "compress",
    "jsonable",
    "load_model",
    "parameter_records",
    "perplexity_records_for",
    "speed_records_for",
    "zeroshot_records_for",
]

_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def torch_dtype(name: str) -> torch.dtype:
    if name not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {name!r}")
    return _DTYPES[name]


def pick_device(name: str = "auto") -> torch.device:
    """``"auto"``: CUDA when available, else CPU; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def load_model(path, dtype: str = "float32", device: str = "auto"):
    """``(model, tokenizer)`` in eval mode from a prepared model folder or a compressed one."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path)
    if not (path / "config.json").is_file():
        raise FileNotFoundError(f"{path} is not a model folder (no config.json)")
    if (path / COMPRESSION_FILE).is_file():
        model, tokenizer, _ = load_compressed(path, dtype=torch_dtype(dtype))
    else:
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=torch_dtype(dtype), local_files_only=True, trust_remote_code=False
        )
        tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    return model.to(pick_device(device)).eval(), tokenizer


def jsonable(value):
    """Tensors to lists and keys to strings, recursively (for ``compression.json``)."""
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _read_text(path) -> str:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    return path.read_text(encoding="utf-8")


def _windows(tokenizer, options: Mapping[str, Any]) -> torch.Tensor:
    return calibration_batches(
        tokenizer, _read_text(options["text"]), int(options["n_samples"]), int(options["seq_len"]), int(options["seed"])
    )


# ---------------------------------------------------------------------------------------------- calibrate
def calibrate(model_dir, options: Mapping[str, Any], out_path, *, dtype: str = "float32", device: str = "auto") -> dict:
    """Statistics of the original model on the calibration windows of ``options``, saved to ``out_path``.

    ``options``: ``text``, ``n_samples``, ``seq_len``, ``seed``, ``batch_size``.  Returns a summary
    (tokens, seconds, tokens_per_s, peak_rss_mb, mode) that is also in the file's metadata.
    """
    model, tokenizer = load_model(model_dir, dtype, device)
    ids = _windows(tokenizer, options)
    stats = collect_statistics(model, ids, batch_size=int(options["batch_size"]), which=ALL_STATISTICS)
    summary = {
        "tokens": int(ids.numel()),
        "seconds": round(stats.elapsed_s, 3),
        "tokens_per_s": stats.tokens_per_s,
        "peak_rss_mb": peak_rss_mb(),
        "mode": stats.mode,
    }
    metadata = {
        "model": str(model_dir),
        "text": str(options["text"]),
        "n_samples": int(options["n_samples"]),
        "seq_len": int(options["seq_len"]),
        "seed": int(options["seed"]),
        "which": sorted(ALL_STATISTICS),
        "tokens_per_s": summary["tokens_per_s"],
        "peak_rss_mb": summary["peak_rss_mb"],
    }
    save_statistics(stats, out_path, metadata)
    log.info("calibration: %d tokens, %.1f s, %.0f tokens/s, peak RSS %.0f MB", *list(summary.values())[:4])
    return summary


def calibration_records(summary: Mapping[str, Any], options: Mapping[str, Any], name: str) -> list[dict]:
    setting = {"calibration_set": name, **{k: options[k] for k in ("n_samples", "seq_len", "seed", "batch_size")}}
    return [
        {
            "method": "calibration",
            "setting": setting,
            "seed": int(options["seed"]),
            "metric": metric,
            "value": summary[metric],
        }
        for metric in ("tokens", "seconds", "tokens_per_s", "peak_rss_mb")
    ]


# ---------------------------------------------------------------------------------------------- compress
def _check_statistics(meta: Mapping[str, Any], options: Mapping[str, Any], stats_path) -> None:
    for key in ("n_samples", "seq_len", "seed"):
        if key in meta and int(meta[key]) != int(options[key]):
            raise ValueError(
                f"{stats_path}: statistics were computed with {key}={meta[key]}, the config now says "
                f"{options[key]}; rerun the calibrate rule"
            )


def _cached_keywords(method: str, settings: Mapping[str, Any], stats: Mapping[str, torch.Tensor]) -> dict:
    """Statistics a method can take from the calibration stage instead of its own pass."""
    if method == "shortgpt":
        return {"statistics": stats}  # BI of the original model, as in ShortGPT
    if method in SPARSE_METHODS and settings.get("calibration", "sequential") == "original":
        return {"statistics": stats}  # Wanda's norms / SparseGPT's input covariances of the original model
    if method == "svd_llm" and settings.get("calibration", "original") == "original":
        return {"statistics": stats}  # the input covariance of every linear (official: original model)
    if method == "modegpt":  # all of them in original mode; BI for the allocation in sequential mode
        return {"statistics": stats}
    return {}


def training_windows(tokenizer, settings: Mapping[str, Any], calibration: Mapping[str, Any]) -> torch.Tensor:
    """DISP-LLM's training windows: ``steps x train_batch_size`` random windows of ``train_seq_len``
    tokens from ``train_text`` (default: the calibration text), drawn with the calibration seed."""
    steps, batch = int(settings.get("steps", 10_000)), int(settings.get("train_batch_size", 1))
    options = {
        "text": settings.get("train_text") or calibration["text"],
        "n_samples": steps * batch,
        "seq_len": int(settings.get("train_seq_len", calibration["seq_len"])),
        "seed": int(calibration["seed"]),
    }
    return _windows(tokenizer, options)


def compress(
    model_dir,
    spec: Mapping[str, Any],
    calibration: Mapping[str, Any],
    stats_path,
    out_dir,
    *,
    dtype: str = "float32",
    device: str = "auto",
) -> dict:
    """Compress the model in ``model_dir`` as run ``spec`` says and save it to ``out_dir``; return its info."""
    from repro.llm.methods.registry import compress as run_method

    model, tokenizer = load_model(model_dir, dtype, device)
    stats, meta = load_statistics(stats_path)
    _check_statistics(meta, calibration, stats_path)
    ids = _windows(tokenizer, calibration)
    settings = dict(spec["settings"])
    settings.setdefault("batch_size", int(calibration["batch_size"]))
    extra = _cached_keywords(spec["method"], settings, stats)
    if spec["method"] == "disp_llm":
        extra["train_ids"] = training_windows(tokenizer, settings, calibration)
    t0 = time.perf_counter()
    model, info, loader = run_method(spec["method"], model, tokenizer, ids, **settings, **extra)
    seconds = time.perf_counter() - t0
    info = jsonable({k: v for k, v in info.items() if k != "statistics"})
    info["run"] = spec["run"]
    info["compress_seconds"] = round(seconds, 3)
    info["peak_rss_mb"] = peak_rss_mb()
    writer = None
    if loader == "slicegpt":
        from repro.llm.methods.slicegpt import write_weights as writer
    elif loader == "modegpt":
        from repro.llm.methods.modegpt import write_weights as writer
    elif loader == "disp_llm":
        from repro.llm.methods.disp_llm import write_weights as writer
    elif loader == "svd_llm":
        from repro.llm.methods.svd_llm import write_weights as writer
    save_compressed(model, tokenizer, out_dir, method=spec["method"], info=info, loader=loader, write_weights=writer)
    log.info("compressed %s in %.1f s -> %s", spec["run"], seconds, out_dir)
    return info


# ---------------------------------------------------------------------------------------------- params
def _linear_weights(adapter) -> int:
    return sum(lin.weight.numel() for la in adapter.layers() for lin in la.named_linears().values())


def nm_pattern_counts(model, pattern: str, dense_model=None) -> dict[str, int]:
    """How the decoder linears of an ``"n:m"`` model follow the pattern, per group of ``m`` consecutive
    input weights of a row.

    ``nm_groups_violating`` counts groups with fewer than ``n`` zeros (the pattern broken: more than
    ``m - n`` non-zeros, which the 2:4 kernels cannot run); ``nm_groups_extra`` groups with more than
    ``n`` zeros and ``nm_extra_zeros`` those zeros beyond ``n``.  With ``dense_model``,
    ``nm_extra_zeros_in_dense`` counts how many extra zeros the dense group already had (a weight that
    is exactly zero before pruning; SparseGPT also zeroes inputs the calibration never activated).
    """
    from repro.llm.methods.wanda import parse_pattern

    n, m = parse_pattern(pattern)
    counts = {"nm_groups": 0, "nm_groups_violating": 0, "nm_groups_extra": 0, "nm_extra_zeros": 0}
    dense_linears = None
    if dense_model is not None:
        counts["nm_extra_zeros_in_dense"] = 0
        dense_linears = {
            (la.index, name): lin
            for la in get_adapter(dense_model).layers()
            for name, lin in la.named_linears().items()
        }
    for la in get_adapter(model).layers():
        for name, lin in la.named_linears().items():
            weight = lin.weight.detach()
            if weight.shape[1] % m:
                raise ValueError(f"{pattern} model has a linear with {weight.shape[1]} inputs, not a multiple of {m}")
            zeros = (weight == 0).reshape(weight.shape[0], -1, m).sum(dim=-1)
            extra = (zeros - n).clamp(min=0)
            counts["nm_groups"] += zeros.numel()
            counts["nm_groups_violating"] += int((zeros < n).sum())
            counts["nm_groups_extra"] += int((extra > 0).sum())
            counts["nm_extra_zeros"] += int(extra.sum())
            if dense_linears is not None:
                dense = dense_linears[(la.index, name)].weight.detach().to(weight.device)
                dense_zeros = (dense == 0).reshape(dense.shape[0], -1, m).sum(dim=-1)
                counts["nm_extra_zeros_in_dense"] += int(torch.minimum(extra, dense_zeros).sum())
    return counts


def target_parameters(spec: Mapping[str, Any], dense_model) -> int | None:
    """The parameter count a run is meant to reach, or ``None`` when it has no parameter target.

    A run at a parameter target removes ``target_removed`` of the dense count under its convention
    (the other parameters kept); Wanda and SparseGPT remove ``n/m`` (N:M) or ``sparsity`` of every
    decoder linear weight, counted as non-zeros.
    """
    adapter = get_adapter(dense_model)
    dense = parameter_counts(dense_model, adapter)
    if spec["target_removed"] is not None:
        key = spec["convention"]
        return round(dense["total"] - spec["target_removed"] * dense[key])
    if spec["method"] in SPARSE_METHODS:
        from repro.llm.methods.wanda import parse_pattern

        settings = spec["settings"]
        if settings.get("pattern"):
            n, m = parse_pattern(settings["pattern"])
            fraction = n / m
        else:
            fraction = float(settings["sparsity"])
        # counted as non-zeros, like the pruned model (an embedding's zero padding row is not "removed")
        dense_nonzero = parameter_counts(dense_model, adapter, nonzero=True)["total"]
        return round(dense_nonzero - fraction * _linear_weights(adapter))
    return None


def parameter_records(
    dense_model, model, spec: Mapping[str, Any], setting: Mapping[str, Any], info: Mapping[str, Any] | None = None
) -> list[dict]:
    """Parameter counts under both conventions, the run's distance from its target and, from the
    saved ``compression.json`` ``info``, the compression job's wall time and peak RSS."""
    dense = parameter_counts(dense_model, get_adapter(dense_model))
    adapter = get_adapter(model)
    counts = parameter_counts(model, adapter)
    nonzero = parameter_counts(model, adapter, nonzero=True)
    sparse = spec["method"] in SPARSE_METHODS
    if sparse:  # zeros against non-zeros, so zeros the dense model already had do not count as removed
        removed = compression_ratio(parameter_counts(dense_model, get_adapter(dense_model), nonzero=True), nonzero)
    else:
        removed = compression_ratio(dense, counts)
    values = {
        "params_total": counts["total"],
        "params_blocks": counts["blocks"],
        "nonzero_total": nonzero["total"],
        "nonzero_blocks": nonzero["blocks"],
        "removed_total": removed["removed_total"],
        "removed_blocks": removed["removed_blocks"],
    }
    target = target_parameters(spec, dense_model)
    if target is not None:
        achieved = nonzero["total"] if sparse else counts["total"]
        values["target_params"] = target
        values["target_rel_error"] = (achieved - target) / target
    if sparse and spec["settings"].get("pattern"):
        values.update(nm_pattern_counts(model, spec["settings"]["pattern"], dense_model))
    if info:
        for metric, key in (("compress_seconds", "compress_seconds"), ("compress_peak_rss_mb", "peak_rss_mb")):
            if info.get(key) is not None:
                values[metric] = info[key]
    return [
        {"method": spec["method"], "setting": dict(setting), "seed": 0, "metric": k, "value": float(v)}
        for k, v in values.items()
    ]


# ---------------------------------------------------------------------------------------------- evaluate
def perplexity_records_for(model, tokenizer, datasets: Mapping[str, Mapping[str, Any]], spec, setting) -> list[dict]:
    """Perplexity on each configured text (``text``, ``window``, ``remainder``, ``max_windows``, ``join``)."""
    from repro.llm.eval.perplexity import perplexity
    from repro.llm.eval.rows import perplexity_records

    records = []
    for name, options in datasets.items():
        result = perplexity(
            model,
            tokenizer,
            _read_text(options["text"]),
            window=int(options["window"]),
            remainder=options.get("remainder", "drop"),
            join_note=options.get("join", ""),
            dataset=name,
            max_windows=options.get("max_windows"),
            batch_size=int(options.get("batch_size", 1)),
        )
        log.info(
            "perplexity %s on %s: %.3f (%d tokens)", spec["run"], name, result["perplexity"], result["scored_tokens"]
        )
        records += perplexity_records(result, method=spec["method"], setting=setting, dataset=name)
    return records


def zeroshot_records_for(model, tokenizer, tasks, options: Mapping[str, Any], spec, setting) -> list[dict]:
    """lm-eval zero-shot accuracy (``limit`` items per task, ``batch_size``).

    ``tasks``: task YAML files (``*.yaml``, our local item sets) or names of lm-eval's built-in
    tasks (the paper tier's piqa, winogrande, ...).
    """
    from repro.data.zeroshot import read_lmeval_task_yaml
    from repro.llm.eval.rows import zeroshot_records
    from repro.llm.eval.zeroshot import zero_shot

    configs = []
    for task in tasks:
        if str(task).endswith((".yaml", ".yml")):
            path = Path(task)
            if not path.is_file():
                raise FileNotFoundError(f"zero-shot task config {path} does not exist")
            configs.append(read_lmeval_task_yaml(path))
        else:
            configs.append(str(task))
    tasks = configs
    results = zero_shot(model, tokenizer, tasks, batch_size=int(options["batch_size"]), limit=options.get("limit"))
    for task, entry in sorted(results.items()):
        log.info(
            "zero-shot %s on %s: acc %.3f (n=%s)", spec["run"], task, entry.get("acc", float("nan")), entry.get("n")
        )
    return zeroshot_records(results, method=spec["method"], setting=setting)


def speed_records_for(dense_model, model, tokenizer, options: Mapping[str, Any], spec, setting) -> list[dict]:
    """Prefill / decode tokens/s of the run's model and of the dense model, same job, same device.

    Order dense, run, dense (each model moved to the device in turn): the dense reference is the
    mean of its two measurements, so a drift of the machine during the job (clock, caches, other
    load) does not show up as a speed-up; ``dense_drift_decode`` / ``dense_drift_prefill`` (second
    / first dense measurement) say how large that drift was.  A Wanda N:M model is converted to
    semi-structured sparse tensors where the GPU supports them (a SparseGPT one too); the rows say which kernels ran
    (``sparse_kernels``).  ``dense_model=None`` (the dense run itself) measures ``model`` once.
    """
    from repro.llm.eval.rows import speed_records
    from repro.llm.eval.speed import measure_speed

    device = pick_device(options.get("device", "auto"))
    kwargs = {k: int(options[k]) for k in ("batch", "prefill_len", "decode_tokens", "repeats", "warmup")}

    def measure_dense() -> dict:
        out = measure_speed(dense_model, tokenizer, device=device, **kwargs)
        dense_model.to("cpu")
        return out

    dense_runs = [measure_dense()] if dense_model is not None else []
    sparse_kernels = "none"
    if spec["method"] in SPARSE_METHODS:
        sparse_kernels = "none (dense kernels over zeroed weights)"
        if device.type == "cuda":
            from repro.llm.methods.wanda import semi_structured

            model.to(device)
            if semi_structured(model):
                sparse_kernels = "torch.sparse semi-structured 2:4"
    result = measure_speed(model, tokenizer, device=device, **kwargs)
    if dense_model is not None:
        model.to("cpu")
        dense_runs.append(measure_dense())
    else:
        dense_runs = [result, result]
    merged = {**setting, "sparse_kernels": sparse_kernels}
    records = speed_records(result, method=spec["method"], setting=merged)
    dense = {key: sum(run[key] for run in dense_runs) / 2 for key in ("prefill_tok_s", "decode_tok_s")}
    extra = {
        "dense_prefill_tok_s": dense["prefill_tok_s"],
        "dense_decode_tok_s": dense["decode_tok_s"],
        "prefill_speedup": result["prefill_tok_s"] / dense["prefill_tok_s"],
        "decode_speedup": result["decode_tok_s"] / dense["decode_tok_s"],
        "dense_drift_prefill": dense_runs[1]["prefill_tok_s"] / dense_runs[0]["prefill_tok_s"],
        "dense_drift_decode": dense_runs[1]["decode_tok_s"] / dense_runs[0]["decode_tok_s"],
    }
    template = records[0]
    for metric, value in extra.items():
        records.append({**template, "metric": metric, "value": float(value)})
    return records
