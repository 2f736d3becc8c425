"""Zero-shot multiple-choice accuracy through lm-eval's Python API (brief §2.3 and §6.2).

``zero_shot`` wraps an in-memory model and tokenizer in lm-eval's ``HFLM`` and runs
``lm_eval.simple_evaluate`` with ``num_fewshot=0``. Tasks are lm-eval task config dicts (our local
JSONL item sets, from ``repro.data.zeroshot.lmeval_task_config``) or names of lm-eval's built-in tasks
(the paper tier: ``piqa, hellaswag, arc_easy, arc_challenge, winogrande``, whose datasets must already
be in the Hugging Face cache when running offline). Only config dicts means lm-eval's built-in task
index is not scanned at all.

The pipeline records provenance itself, so lm-eval's ``git describe`` call for its own report is
skipped. Determinism: the seeds lm-eval exposes (python ``random``, numpy, torch, few-shot sampler) are passed
explicitly and recorded; the caller's global RNG states are restored afterwards, since
``simple_evaluate`` reseeds them. The tokenizer is deep-copied because lm-eval sets a pad token on the
tokenizer it is given.

Headline metric: ``acc_norm`` for piqa, hellaswag, arc_easy and arc_challenge, ``acc`` for winogrande
(SliceGPT's ``TASK_METRIC_MAP``, also DISP-LLM's convention), ``acc`` for any other task unless a
``metric_map`` says otherwise. The paper average is the unweighted mean over tasks.
"""

from __future__ import annotations

import copy
import math
import random
from collections.abc import Mapping, Sequence
from typing import Any
from unittest import mock

import numpy as np
import torch

from repro.llm.eval._common import model_dtype, place_model

PAPER_TASK_METRIC = {
    "piqa": "acc_norm",
    "hellaswag": "acc_norm",
    "arc_easy": "acc_norm",
    "arc_challenge": "acc_norm",
    "winogrande": "acc",
}
PAPER_TASKS = tuple(PAPER_TASK_METRIC)

# lm-eval 0.4.13's own defaults for simple_evaluate, pinned here so they are recorded with the rows.
DEFAULT_SEEDS = {"random_seed": 0, "numpy_random_seed": 1234, "torch_random_seed": 1234, "fewshot_random_seed": 1234}


def task_name(task: str | Mapping[str, Any]) -> str:
    """The name of a task given by name or as an lm-eval config dict."""
    return task if isinstance(task, str) else str(task["task"])


def headline_metric(task: str | Mapping[str, Any], metric_map: Mapping[str, str] | None = None) -> str:
    """The metric reported for ``task``: ``metric_map`` first, then ``PAPER_TASK_METRIC``, else ``acc``."""
    name = task_name(task)
    if metric_map and name in metric_map:
        return metric_map[name]
    return PAPER_TASK_METRIC.get(name, "acc")


def mean_accuracy(results: Mapping[str, Mapping[str, Any]], metric_map: Mapping[str, str] | None = None) -> float:
    """Unweighted mean over the tasks of ``results`` of each task's headline metric."""
    if not results:
        raise ValueError("no task results to average")
    return float(np.mean([float(results[task][headline_metric(task, metric_map)]) for task in results]))


def lm_eval_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("lm-eval")
    except PackageNotFoundError:
        import lm_eval

        return str(getattr(lm_eval, "__version__", "unknown"))


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):  # lm-eval writes "N/A" where it has no stderr
        return None
    return None if math.isnan(value) else value


def _task_results(metrics: Mapping[str, Any], n: int | None, samples: list[dict] | None) -> dict[str, Any]:
    """lm-eval's ``{"acc,none": .., "acc_stderr,none": .., "alias": ..}`` as ``{acc: .., stderr: {acc: ..}, n: ..}``."""
    values: dict[str, Any] = {}
    stderr: dict[str, float | None] = {}
    for key, value in metrics.items():
        if "," not in key:
            continue  # "alias", "name", "sample_len"
        metric, filt = key.split(",", 1)
        if filt != "none":
            metric = f"{metric}[{filt}]"  # filtered variants keep their filter name
        if metric.endswith("_stderr"):
            stderr[metric.removesuffix("_stderr")] = _number(value)
        elif _number(value) is not None:
            values[metric] = _number(value)
    out: dict[str, Any] = {**values, "stderr": stderr, "n": n}
    if samples is not None:
        out["samples"] = [
            {
                "doc_id": int(s["doc_id"]),
                "target": s.get("target"),
                "loglikelihoods": [float(resp[0]) for resp in s["filtered_resps"]],
            }
            for s in sorted(samples, key=lambda s: int(s["doc_id"]))
        ]
    return out


def zero_shot(
    model,
    tokenizer,
    task_configs: Sequence[str | Mapping[str, Any]],
    *,
    batch_size: int = 8,
    limit: int | float | None = None,
    device=None,
    seeds: Mapping[str, int] | None = None,
    log_samples: bool = False,
) -> dict[str, dict[str, Any]]:
    """Zero-shot evaluation of ``model`` on ``task_configs`` with lm-eval; results per task.

    Each task maps to its metrics (``acc``, ``acc_norm``, ... as floats), ``stderr`` (metric → standard
    error, ``None`` where lm-eval has none), ``n`` (documents evaluated) and ``protocol``: lm-eval's
    version, ``num_fewshot`` (0), ``limit``, ``batch_size``, the seeds and the model dtype, to be stored
    with every row. ``limit`` caps the documents per task (testing only). ``log_samples=True`` adds
    ``samples``: per document (``doc_id`` order) the target and the log-likelihood of every choice.
    ``device=None`` evaluates where the model is; another device moves the model there.
    """
    import lm_eval.evaluator
    from lm_eval import simple_evaluate
    from lm_eval.models.huggingface import HFLM
    from lm_eval.tasks import TaskManager

    if not task_configs:
        raise ValueError("no tasks given")
    tasks = [t if isinstance(t, str) else dict(t) for t in task_configs]
    seeds = {**DEFAULT_SEEDS, **(seeds or {})}
    place_model(model, device)
    was_training = model.training

    states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
    cuda_states = torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None
    try:
        lm = HFLM(pretrained=model, tokenizer=copy.deepcopy(tokenizer), batch_size=batch_size)
        manager = TaskManager(include_defaults=any(isinstance(t, str) for t in tasks))
        # simple_evaluate shells out to `git describe` in the working directory for its own report.
        with mock.patch.object(lm_eval.evaluator, "get_git_commit_hash", lambda: None):
            output = simple_evaluate(
                model=lm,
                tasks=tasks,
                num_fewshot=0,
                limit=limit,
                task_manager=manager,
                log_samples=log_samples,
                **seeds,
            )
    finally:
        random.setstate(states[0])
        np.random.set_state(states[1])
        torch.set_rng_state(states[2])
        if cuda_states is not None:
            torch.cuda.set_rng_state_all(cuda_states)
        model.train(was_training)
    if output is None:
        raise RuntimeError("lm-eval returned no results (not rank 0?)")

    protocol = {
        "harness": "lm-eval",
        "lm_eval_version": lm_eval_version(),
        "num_fewshot": 0,
        "limit": limit,
        "batch_size": batch_size,
        "dtype": model_dtype(model),
        **seeds,
    }
    results: dict[str, dict[str, Any]] = {}
    for task, metrics in output["results"].items():
        n = output.get("n-samples", {}).get(task, {}).get("effective")
        samples = output.get("samples", {}).get(task) if log_samples else None
        results[task] = {**_task_results(metrics, n, samples), "protocol": dict(protocol)}
    return results
