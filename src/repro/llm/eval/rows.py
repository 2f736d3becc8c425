"""Turn perplexity, zero-shot and speed results into records for ``repro.report.rows.tidy_rows``.

Every record has ``method``, ``setting``, ``seed``, ``metric`` and ``value`` (plus ``dataset`` and,
when given, ``model``). The result's ``protocol`` dict is merged into the caller's ``setting``, so
the window, remainder policy, lm-eval version, batch shape, device, dtype ... travel with every row;
a caller setting that contradicts the protocol is an error rather than being overwritten.

Metric names
    perplexity: ``perplexity``, ``nll`` (mean NLL per scored token), ``scored_tokens``
    zero-shot: per task (``dataset`` = task name) each metric lm-eval reports (``acc``, ``acc_norm``)
    and its ``<metric>_stderr``; over the tasks (``dataset`` = ``"zeroshot_mean"``) ``zeroshot_acc``,
    the unweighted mean of each task's headline metric, with the tasks and their metrics in the setting
    speed: ``prefill_tok_s``, ``decode_tok_s``, ``generate_tok_s``, ``peak_mem_mb``
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from repro.llm.eval.zeroshot import headline_metric, mean_accuracy

ZEROSHOT_MEAN_DATASET = "zeroshot_mean"
SPEED_METRICS = ("prefill_tok_s", "decode_tok_s", "generate_tok_s", "peak_mem_mb")


def merge_setting(setting: Mapping[str, Any] | None, protocol: Mapping[str, Any]) -> dict[str, Any]:
    """``setting`` plus ``protocol``; a key present in both with different values raises ``ValueError``."""
    merged = dict(setting or {})
    for key, value in protocol.items():
        if key in merged and merged[key] != value:
            raise ValueError(f"setting {key}={merged[key]!r} contradicts the measured protocol's {value!r}")
        merged[key] = value
    return merged


def _record(method, setting, seed, metric, value, dataset, model) -> dict[str, Any]:
    record = {"method": method, "setting": setting, "seed": seed, "metric": metric, "value": float(value)}
    if dataset:
        record["dataset"] = dataset
    if model:
        record["model"] = model
    return record


def perplexity_records(
    result: Mapping[str, Any],
    *,
    method: str,
    seed: int = 0,
    setting: Mapping[str, Any] | None = None,
    model: str | None = None,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """Records ``perplexity``, ``nll`` and ``scored_tokens`` of a ``perplexity()`` result.

    ``dataset`` defaults to the protocol's dataset (if it names one).
    """
    merged = merge_setting(setting, result["protocol"])
    dataset = dataset or result["protocol"].get("dataset") or None
    return [
        _record(method, merged, seed, metric, result[key], dataset, model)
        for metric, key in (("perplexity", "perplexity"), ("nll", "nll_mean"), ("scored_tokens", "scored_tokens"))
    ]


def zeroshot_records(
    results: Mapping[str, Mapping[str, Any]],
    *,
    method: str,
    seed: int = 0,
    setting: Mapping[str, Any] | None = None,
    model: str | None = None,
    metric_map: Mapping[str, str] | None = None,
    include_stderr: bool = True,
    include_mean: bool = True,
) -> list[dict[str, Any]]:
    """Records of a ``zero_shot()`` result: per task and metric (and stderr), plus the mean.

    The mean row (``zeroshot_acc``) averages each task's ``headline_metric(task, metric_map)``; its
    setting also lists the tasks and the metric used for each.
    """
    records = []
    protocol: dict[str, Any] = {}
    for task, entry in results.items():
        protocol = entry.get("protocol", {})
        merged = merge_setting(setting, protocol)
        for metric, value in entry.items():
            if metric in ("stderr", "n", "protocol", "samples") or not isinstance(value, (int, float)):
                continue
            records.append(_record(method, merged, seed, metric, value, task, model))
            stderr = entry.get("stderr", {}).get(metric)
            if include_stderr and stderr is not None and math.isfinite(stderr):
                records.append(_record(method, merged, seed, f"{metric}_stderr", stderr, task, model))
        if entry.get("n") is not None:
            records.append(_record(method, merged, seed, "n", entry["n"], task, model))
    if include_mean and results:
        metrics = {task: headline_metric(task, metric_map) for task in sorted(results)}
        merged = merge_setting(setting, {**protocol, "tasks": sorted(results), "task_metrics": metrics})
        value = mean_accuracy(results, metric_map)
        records.append(_record(method, merged, seed, "zeroshot_acc", value, ZEROSHOT_MEAN_DATASET, model))
    return records


def speed_records(
    result: Mapping[str, Any],
    *,
    method: str,
    seed: int = 0,
    setting: Mapping[str, Any] | None = None,
    model: str | None = None,
    dataset: str | None = "random_tokens",
    metrics: tuple[str, ...] = SPEED_METRICS,
) -> list[dict[str, Any]]:
    """Records of a ``measure_speed()`` result (tokens/s and peak memory); device and dtype in the setting."""
    merged = merge_setting(setting, result["protocol"])
    return [_record(method, merged, seed, metric, result[metric], dataset, model) for metric in metrics]
