"""DynaMo's report: the training log, the decoding-sweep figures and the paper's claims.

The ``dynamo`` paper table holds tidy rows of five experiments (rows built with ``tidy_rows``):

* ``training``: per head-training step (dataset ``"step_00012"``) the loss, the heads' learning rate
  and each head's cross-entropy ``ce_1`` (the base head), ``ce_2``, ...; per run (dataset
  ``"summary"``) ``seconds``, ``tokens`` and ``peak_rss_mb`` (read from ``heads.json``);
* ``cooccurrence``: the n-gram tables' size and build time (dataset ``"summary"``);
* ``perplexity``: per text the per-head perplexities (all valid positions and ``_common`` positions),
  the joint ``PPL_{1:n}``; per model (dataset ``"model"``) the parameter overhead;
* ``decoding``: the threshold sweep (dataset ``"eps_0.25"``, method ``"dynamo"``), the autoregressive
  reference (``"ar"``) and Hugging Face assisted generation (``"assisted"``): tokens per step, step-size
  shares, wall-clock speed-up over the AR reference of the same job, and judge-free quality;
* ``judge`` (optional): pairwise wins / losses / ties against AR.

Claims (brief dynamo.md §0, §2.2, §5.2-§5.6, §6):

* ``speedup_at_matched_quality``: the best wall-clock speed-up among thresholds whose continuation
  perplexity under the base model is within ``QUALITY_TOLERANCE`` of AR's (ours: the paper used a
  GPT-4 / GPT-3.5 judge's win rate >= 1, which offline runs cannot reproduce).
* ``parameter_overhead``: the new heads add the parameters of ``n - 1`` decoder layers (Pythia-70M:
  +6,304,768, 8.95 %); the heads' own final norms add a few ``d`` more, hence a 1 % tolerance.
* ``per_head_ppl_ordering``: ``PPL_1 < PPL_2 < PPL_3`` on every text.
* ``joint_ppl_identity``: ``PPL_{1:n}`` is the geometric mean of the per-head perplexities.
* ``bigrams_rare``: bigram steps are a small share at every threshold strictly between 0 and 1.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from repro.report.claims import Claim

PAPER = "dynamo"
QUALITY_TOLERANCE = 1.10  # ours: continuation ppl <= 1.10 x AR's = "matched quality"
OVERHEAD_TOLERANCE = 0.01  # |extra - formula| / formula: the heads' own norms add 2d (LayerNorm) per head
IDENTITY_TOLERANCE = 1e-9
SUMMARY_METRICS = ("seconds", "tokens", "peak_rss_mb")
DECODING_METRICS = (
    "tokens",
    "steps",
    "tokens_per_step",
    "tokens_per_s",
    "speedup",
    "share_1",
    "share_2",
    "share_3",
    "continuation_ppl",
    "distinct_2",
    "repetition_rate",
    "eps_b",
)
REFERENCE_DATASETS = ("ar", "assisted")
NAN = float("nan")
_CE = re.compile(r"ce_\d+")


# ---------------------------------------------------------------------------------------------- rows
def training_records(info: Mapping[str, Any], setting: Mapping[str, Any]) -> list[dict]:
    """Tidy records of one DynaMo heads run (``info`` from ``heads.json``).

    Per step (dataset ``"step_00001"``, ...) ``loss``, ``lr_heads`` and every ``ce_<j>``; per run
    (dataset ``"summary"``) ``seconds``, ``tokens`` and ``peak_rss_mb`` (NaN when missing).
    """
    history = info.get("history")
    if not history:
        run = setting.get("run", setting)
        raise ValueError(f"run {run!r}: heads info has no 'history' (not a trained DynaMo heads folder?)")
    seed = int(info.get("architecture", {}).get("seed", 0))

    def record(metric: str, value: Any, dataset: str) -> dict:
        value = NAN if value is None else float(value)
        return {
            "method": PAPER,
            "setting": dict(setting),
            "seed": seed,
            "metric": metric,
            "value": value,
            "dataset": dataset,
        }

    records = []
    for row in history:
        dataset = f"step_{int(row['step']):05d}"
        metrics = ["loss", "lr_heads", *sorted((k for k in row if _CE.fullmatch(k)), key=lambda k: int(k[3:]))]
        records += [record(m, row.get(m), dataset) for m in metrics]
    records += [record(m, info.get(m), "summary") for m in SUMMARY_METRICS]
    return records


def _rows(table: pd.DataFrame, experiment: str) -> pd.DataFrame:
    df = table[table["experiment"].astype(str) == experiment]
    if "paper" in df.columns:
        df = df[df["paper"].astype(str) == PAPER]
    df = df.copy()
    for col in ("model", "dataset", "metric", "method"):
        df[col] = df[col].astype(str)
    return df


def _wide(df: pd.DataFrame, index: list[str], columns: tuple[str, ...] | None = None) -> pd.DataFrame:
    if df.empty:
        return pd.DataFrame(columns=[*index, *(columns or ())])
    wide = df.groupby([*index, "metric"])["value"].mean().unstack("metric")
    if columns is not None:
        wide = wide.reindex(columns=list(columns))
    wide.columns.name = None
    return wide.reset_index()


# ---------------------------------------------------------------------------------------------- frames
def training_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``(model, step)`` rows with ``loss``, ``lr_heads`` and ``ce_<j>`` columns (summary rows left out)."""
    df = _rows(table, "training")
    df = df[df["dataset"].str.startswith("step_")].copy()
    df["step"] = df["dataset"].str.removeprefix("step_").astype(int)
    return _wide(df, ["model", "step"])


def training_summary(table: pd.DataFrame) -> pd.DataFrame:
    """``model`` rows with ``seconds``, ``tokens`` and ``peak_rss_mb``."""
    df = _rows(table, "training")
    return _wide(df[df["dataset"] == "summary"], ["model"], SUMMARY_METRICS)


def decoding_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``(model, dataset)`` rows of the decoding sweep with the metric columns, ``eps_b`` and ``method``.

    ``eps_b`` is NaN for the ``"ar"`` and ``"assisted"`` references; rows are sorted by model, the
    references first, then by ``eps_b``.
    """
    df = _rows(table, "decoding")
    wide = _wide(df, ["model", "dataset"], DECODING_METRICS)
    methods = df.groupby(["model", "dataset"])["method"].first()
    wide["method"] = [methods.get((m, d), "") for m, d in zip(wide["model"], wide["dataset"])]
    if wide.empty:
        return wide
    return wide.sort_values(["model", "eps_b"], na_position="first", kind="stable").reset_index(drop=True)


def perplexity_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``(model, dataset)`` rows of the per-text perplexities (``ppl_1``, ..., ``ppl_joint``, positions)."""
    df = _rows(table, "perplexity")
    return _wide(df[df["dataset"] != "model"], ["model", "dataset"])


def parameter_frame(table: pd.DataFrame) -> pd.DataFrame:
    """``model`` rows with ``params_base``, ``params_extra``, ``overhead`` and ``params_extra_formula``."""
    df = _rows(table, "perplexity")
    columns = ("params_base", "params_extra", "overhead", "params_extra_formula")
    return _wide(df[df["dataset"] == "model"], ["model"], columns)


def _heads(frame: pd.DataFrame, pattern: str) -> list[str]:
    """Columns matching ``pattern`` (with ``{}`` for the head index) in head order."""
    regex = re.compile(pattern.replace("{}", r"(\d+)"))
    found = [(int(m.group(1)), c) for c in frame.columns if (m := regex.fullmatch(str(c)))]
    return [c for _, c in sorted(found)]


def _split(frame: pd.DataFrame, model: str) -> tuple[pd.DataFrame, pd.Series | None, pd.Series | None]:
    """(DynaMo sweep points, AR row, assisted row) of one model in a decoding frame."""
    part = frame[frame["model"] == model]
    sweep = part[part["eps_b"].notna() & ~part["dataset"].isin(REFERENCE_DATASETS)].sort_values("eps_b")
    ar = part[part["dataset"] == "ar"]
    assisted = part[part["dataset"] == "assisted"]
    return sweep, (ar.iloc[0] if len(ar) else None), (assisted.iloc[0] if len(assisted) else None)


# ---------------------------------------------------------------------------------------------- figures
def _require(frame: pd.DataFrame, experiment: str) -> None:
    if frame.empty:
        raise ValueError(f"no {experiment} rows in the table (experiment {experiment!r}, paper {PAPER!r})")


def plot_speedup(table: pd.DataFrame, path) -> None:
    """Wall-clock speed-up over AR (solid) and tokens per step (dashed) against eps_b, one colour per model."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from repro.report.figures import figure_style, save_figure

    frame = decoding_frame(table)
    _require(frame, "decoding")
    with figure_style():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        ax.axhline(1.0, color="black", lw=1.0, label="autoregressive (1x)")
        for model in frame["model"].unique():
            sweep, _, assisted = _split(frame, model)
            (line,) = ax.plot(sweep["eps_b"], sweep["speedup"], marker="o", ms=4, label=model)
            color = line.get_color()
            ax.plot(sweep["eps_b"], sweep["tokens_per_step"], color=color, ls="--", marker="s", ms=3)
            if assisted is not None and math.isfinite(assisted["speedup"]):
                ax.axhline(assisted["speedup"], color=color, ls=":", lw=1.2)
        styles = [
            Line2D([], [], color="grey", marker="o", ms=4, label="wall-clock speed-up over AR"),
            Line2D([], [], color="grey", ls="--", marker="s", ms=3, label="tokens per step"),
            Line2D([], [], color="grey", ls=":", label="assisted generation (speed-up)"),
        ]
        ax.legend(handles=[*ax.get_legend_handles_labels()[0], *styles], fontsize=8)
        ax.set_xlabel("back-off threshold eps_b")
        ax.set_ylabel("speed-up over autoregressive decoding")
        ax.set_title("DynaMo: wall-clock and algorithmic speed-up against the threshold")
        save_figure(fig, path)


def plot_token_share(table: pd.DataFrame, path) -> None:
    """Stacked shares of sampling steps emitting 1, 2 and 3 tokens against eps_b, one panel per model."""
    import matplotlib.pyplot as plt

    from repro.report.figures import figure_style, save_figure

    frame = decoding_frame(table)
    _require(frame, "decoding")
    models = list(frame["model"].unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(models), figsize=(5 * len(models), 4), squeeze=False, sharey=True)
        for ax, model in zip(axes[0], models):
            sweep, _, _ = _split(frame, model)
            shares = [sweep[f"share_{n}"].fillna(0.0).to_numpy() for n in (1, 2, 3)]
            ax.stackplot(sweep["eps_b"], *shares, labels=["1 token", "2 tokens", "3 tokens"], alpha=0.85)
            ax.set_title(model)
            ax.set_xlabel("back-off threshold eps_b")
            ax.set_ylim(0, 1)
        axes[0][0].set_ylabel("share of sampling steps")
        axes[0][-1].legend(loc="upper right", fontsize=8, frameon=True)
        fig.suptitle("DynaMo: tokens emitted per sampling step")
        save_figure(fig, path)


def plot_quality(table: pd.DataFrame, path) -> None:
    """Continuation perplexity under the base model against wall-clock speed-up (sweep, AR, assisted)."""
    import matplotlib.pyplot as plt

    from repro.report.figures import figure_style, save_figure

    frame = decoding_frame(table)
    _require(frame, "decoding")
    with figure_style():
        fig, ax = plt.subplots(figsize=(7, 4.5))
        values = frame["continuation_ppl"][frame["continuation_ppl"] > 0]
        bottom = float(values.min()) / 1.3 if len(values) else 1.0
        for model in frame["model"].unique():
            sweep, ar, assisted = _split(frame, model)
            (line,) = ax.plot(sweep["speedup"], sweep["continuation_ppl"], marker="o", ms=4, label=f"DynaMo ({model})")
            color = line.get_color()
            for _, point in sweep.iterrows():
                ax.annotate(
                    f"{point['eps_b']:g}",
                    (point["speedup"], point["continuation_ppl"]),
                    fontsize=7,
                    xytext=(3, 3),
                    textcoords="offset points",
                )
            if ar is not None and math.isfinite(ar["continuation_ppl"]):
                ax.plot(
                    [1.0],
                    [ar["continuation_ppl"]],
                    marker="*",
                    ms=12,
                    color=color,
                    ls="",
                    mec="black",
                    label=f"autoregressive ({model})",
                )
                ax.axhspan(bottom, QUALITY_TOLERANCE * ar["continuation_ppl"], color=color, alpha=0.08)
            if assisted is not None and math.isfinite(assisted["continuation_ppl"]):
                ax.plot(
                    [assisted["speedup"]],
                    [assisted["continuation_ppl"]],
                    marker="s",
                    ms=7,
                    color=color,
                    ls="",
                    mec="black",
                    label=f"assisted ({model})",
                )
        ax.set_yscale("log")
        ax.set_ylim(bottom=bottom)
        ax.set_xlabel("wall-clock speed-up over autoregressive decoding")
        ax.set_ylabel("continuation perplexity under the base model")
        ax.set_title(
            f"DynaMo quality vs speed (shaded: matched quality, <= {QUALITY_TOLERANCE:.2f} x AR; labels: eps_b)"
        )
        ax.legend(fontsize=8)
        save_figure(fig, path)


def plot_training(table: pd.DataFrame, path) -> None:
    """Per-head training cross-entropy against step (faint: raw; solid: running mean over 10 steps)."""
    import matplotlib.pyplot as plt

    from repro.report.figures import figure_style, save_figure

    frame = training_frame(table)
    _require(frame, "training")
    models = list(frame["model"].unique())
    with figure_style():
        fig, axes = plt.subplots(1, len(models), figsize=(6 * len(models), 4), squeeze=False)
        for ax, model in zip(axes[0], models):
            part = frame[frame["model"] == model].sort_values("step")
            for column in _heads(part, "ce_{}"):
                (raw,) = ax.plot(part["step"], part[column], alpha=0.25, lw=0.8)
                mean = part[column].rolling(10, min_periods=1).mean()
                ax.plot(part["step"], mean, color=raw.get_color(), label=f"head {column[3:]}")
            ax.set_title(model)
            ax.set_xlabel("training step")
            ax.legend(fontsize=8)
        axes[0][0].set_ylabel("cross-entropy (nats/token)")
        fig.suptitle("DynaMo head training (faint: per step; solid: running mean over 10 steps; head 1 = base)")
        save_figure(fig, path)


# ---------------------------------------------------------------------------------------------- claims
def _judge(table: pd.DataFrame) -> dict[tuple[str, str], float]:
    df = _rows(table, "judge")
    df = df[df["metric"] == "win_rate"]
    return {(m, d): float(v) for m, d, v in zip(df["model"], df["dataset"], df["value"])}


def _speedup_at_matched_quality(frame: pd.DataFrame, judge: Mapping[tuple[str, str], float]) -> Claim:
    speedups, details = [], []
    for model in frame["model"].unique():
        sweep, ar, assisted = _split(frame, model)
        if ar is None or sweep.empty or not math.isfinite(ar["continuation_ppl"]):
            continue
        limit = QUALITY_TOLERANCE * ar["continuation_ppl"] * (1 + 1e-12)  # the boundary itself counts
        matched = sweep[(sweep["continuation_ppl"] <= limit) & sweep["speedup"].notna()]
        text = f"{model}: AR ppl {ar['continuation_ppl']:.4g}"
        if matched.empty:
            speedups.append(1.0)  # only AR itself is at matched quality
            text += f"; no threshold within {QUALITY_TOLERANCE:.2f} x AR ppl (AR itself: 1x)"
        else:
            pick = matched.loc[matched["speedup"].idxmax()]
            speedups.append(float(pick["speedup"]))
            text += (
                f"; eps_b {pick['eps_b']:g}: {pick['speedup']:.3f}x wall-clock, {pick['tokens_per_step']:.3f} "
                f"tokens/step, ppl {pick['continuation_ppl']:.4g}; best tokens/step at matched quality "
                f"{matched['tokens_per_step'].max():.3f} (algorithmic speed-up)"
            )
            win = judge.get((model, str(pick["dataset"])))
            if win is not None:
                text += f", judge win rate {win:.3g}"
        if assisted is not None:
            text += f"; assisted {assisted['speedup']:.3f}x, ppl {assisted['continuation_ppl']:.4g}"
        details.append(text)
    best = max(speedups) if speedups else NAN
    return Claim(
        "speedup_at_matched_quality",
        "DynaMo decodes faster than autoregressive sampling at matched generation quality",
        "2.57x for DynaMo-7.3B-T3 at judged-equal quality (GPT-4 win rate 0.98, Vicuna; brief §0)",
        best,
        f"max wall-clock speed-up over thresholds with continuation ppl <= {QUALITY_TOLERANCE:.2f} x AR's > 1 "
        "(ours; the paper's LLM judge cannot run offline; 1 when no threshold matches)",
        bool(best > 1) if speedups else None,
        "; ".join(details) or "no decoding rows with an AR reference and a DynaMo threshold sweep",
    )


def _parameter_overhead(params: pd.DataFrame) -> Claim:
    params = params.dropna(subset=["params_base", "params_extra", "params_extra_formula"])
    errors, details = [], []
    for _, row in params.iterrows():
        extra, formula = row["params_extra"], row["params_extra_formula"]
        errors.append(abs(extra - formula) / formula)
        details.append(
            f"{row['model']}: base {row['params_base']:,.0f}, extra {extra:,.0f} "
            f"({extra / row['params_base']:.2%}), formula (n-1 decoder layers) {formula:,.0f}, "
            f"difference {extra - formula:+,.0f}"
        )
    measured = float(params.iloc[0]["params_extra"] / params.iloc[0]["params_base"]) if len(params) else NAN
    return Claim(
        "parameter_overhead",
        "The extra heads add only the parameters of n - 1 decoder layers",
        "Pythia-70M -> 77M: +6,304,768 parameters, 8.95 % (two decoder layers; brief §2.2)",
        measured,
        f"params_extra / params_base; holds when |extra - formula| / formula <= {OVERHEAD_TOLERANCE} for every "
        "model (the heads' own final norms add 2d parameters each for LayerNorm, d for RMSNorm)",
        bool(max(errors) <= OVERHEAD_TOLERANCE) if errors else None,
        "; ".join(details) or "no parameter rows (experiment 'perplexity', dataset 'model')",
    )


def _per_head_ppl_ordering(ppl: pd.DataFrame) -> Claim:
    heads = _heads(ppl, "ppl_{}")
    measured, ordered, details = NAN, [], []
    if len(heads) >= 2:
        for _, row in ppl.iterrows():
            values = [float(row[h]) for h in heads]
            if not all(math.isfinite(v) for v in values):
                continue
            if not ordered:
                measured = values[1] / values[0]
            ordered.append(all(a < b for a, b in zip(values, values[1:])))
            ratios = ", ".join(f"PPL_{j + 1}/PPL_1 {v / values[0]:.3g}" for j, v in enumerate(values[1:], 1))
            joined = " < ".join(f"{v:.4g}" for v in values)
            details.append(f"{row['model']} {row['dataset']}: {joined} ({ratios})")
    return Claim(
        "per_head_ppl_ordering",
        "Each later head is less certain: PPL_1 < PPL_2 < PPL_3",
        "PPL_1 < PPL_2 < PPL_3: 18.3 < 111.4 < 262.0 (DynaMo-77M-T3, Table 2)",
        measured,
        "PPL_2 / PPL_1 on the first text; holds when PPL_1 < PPL_2 < ... on every model and text",
        all(ordered) if ordered else None,
        "; ".join(details) or "no per-head perplexity rows (experiment 'perplexity') with at least two heads",
    )


def _joint_ppl_identity(ppl: pd.DataFrame) -> Claim:
    heads = _heads(ppl, "ppl_{}_common")
    errors, details = [], []
    if heads and "ppl_joint" in ppl.columns:
        for _, row in ppl.iterrows():
            values = np.array([row[h] for h in heads], dtype=float)
            if not (np.all(np.isfinite(values)) and math.isfinite(row["ppl_joint"])):
                continue
            gm = float(np.exp(np.log(values).mean()))
            errors.append(abs(row["ppl_joint"] - gm) / gm)
            details.append(f"{row['model']} {row['dataset']}: joint {row['ppl_joint']:.6g} vs geometric mean {gm:.6g}")
    measured = max(errors) if errors else NAN
    return Claim(
        "joint_ppl_identity",
        "The joint perplexity PPL_1:n is the geometric mean of the per-head perplexities",
        "PPL_1:3 = geometric mean of PPL_1..3 (Table 2: (18.3 x 111.4 x 262.0)^(1/3) = 81.1 vs 81.2)",
        measured,
        f"max relative |PPL_joint - geometric mean of PPL_j (common positions)| <= {IDENTITY_TOLERANCE:g}",
        bool(measured <= IDENTITY_TOLERANCE) if errors else None,
        "; ".join(details) or "no joint and per-head perplexity rows (experiment 'perplexity')",
    )


def _bigrams_rare(frame: pd.DataFrame) -> Claim:
    eps = frame["eps_b"].astype(float)
    points = frame[(eps > 0) & (eps < 1)].dropna(subset=["share_1", "share_2", "share_3"])
    measured = float(points["share_2"].max()) if len(points) else NAN
    holds = bool((points["share_2"] < np.maximum(points["share_1"], points["share_3"])).all()) if len(points) else None
    details = [
        f"{r['model']} eps_b {r['eps_b']:g}: 1/2/3 tokens {r['share_1']:.2f}/{r['share_2']:.2f}/{r['share_3']:.2f}"
        for _, r in points.iterrows()
    ]
    return Claim(
        "bigrams_rare",
        "Two-token steps are a small share of sampling steps at every threshold",
        "bigram steps are a small share at every threshold (Fig. 5)",
        measured,
        "max share_2 over thresholds 0 < eps_b < 1; holds when share_2 < max(share_1, share_3) at each",
        holds,
        "; ".join(details) or "no decoding rows with 0 < eps_b < 1 and step-size shares",
    )


def dynamo_claims(table: pd.DataFrame) -> list[Claim]:
    """DynaMo's claims from its paper table (missing experiments give NaN / None claims)."""
    frame = decoding_frame(table)
    ppl = perplexity_frame(table)
    return [
        _speedup_at_matched_quality(frame, _judge(table)),
        _parameter_overhead(parameter_frame(table)),
        _per_head_ppl_ordering(ppl),
        _joint_ppl_identity(ppl),
        _bigrams_rare(frame),
    ]
