"""Figures of the LLM structural-compression comparison, drawn from its tidy table only.

Every figure puts the *measured* fraction of the dense model's total parameters removed (tied
embeddings counted once; non-zeros for Wanda and SparseGPT) on the x-axis, in percent, with one line per series
(a single-point series is drawn as a marker) and the dense model as a horizontal reference line.
Colours follow the series, so a method has the same colour in every figure of one table.
"""

from __future__ import annotations

import json

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.ticker import FuncFormatter

from repro.llm.claims import PAPER, perplexity_datasets, ppl_column, run_frame
from repro.report.figures import STYLE, figure_style, save_figure

# preferred legend order; other series follow alphabetically
SERIES_ORDER = (
    "SliceGPT",
    "SliceGPT (nominal width)",
    "ShortGPT",
    "Wanda 2:4",
    "SparseGPT 2:4",
    "Wanda unstructured",
    "SparseGPT unstructured",
    "MoDeGPT",
    "SVD-LLM",
    "SVD-LLM (nominal ratio)",
    "DISP-LLM",
)
# fixed colours (colour-blind safe palette) so that the methods compared most often differ clearly
SERIES_COLORS = {
    "SliceGPT": "#0072B2",
    "SliceGPT (nominal width)": "#56B4E9",
    "ShortGPT": "#009E73",
    "Wanda 2:4": "#E69F00",
    "Wanda unstructured": "#CC79A7",
    "MoDeGPT": "#D55E00",
    "DISP-LLM": "#7F3C8D",
    # the stronger baselines of issue 12, each a darker shade next to its sibling
    "SparseGPT 2:4": "#8C5A00",
    "SparseGPT unstructured": "#882255",
    "SVD-LLM": "#999933",
    "SVD-LLM (nominal ratio)": "#666622",
}
X_LABEL = "parameters removed (% of dense total, tied embeddings once)"


def _paper_rows(table: pd.DataFrame) -> pd.DataFrame:
    return table[table["paper"].astype(str) == PAPER] if "paper" in table.columns else table


def _require(table: pd.DataFrame, *experiments: str) -> None:
    present = set(table["experiment"].astype(str)) if len(table) else set()
    for exp in experiments:
        if exp not in present:
            raise ValueError(f"the {PAPER} table has no rows of experiment {exp!r}, needed for this figure")


def _series_styles(runs: pd.DataFrame) -> dict[str, dict]:
    """A colour and marker per (non-dense) series, stable for a given table."""
    names = sorted(
        set(runs.loc[runs.method != "dense", "series"]),
        key=lambda s: (SERIES_ORDER.index(s) if s in SERIES_ORDER else len(SERIES_ORDER), s),
    )
    colors = list(STYLE["axes.prop_cycle"].by_key()["color"])
    colors = [c for c in colors if c != "#000000"]  # black is the dense reference
    markers = "osD^vP*Xh<>"
    return {
        s: {"color": SERIES_COLORS.get(s, colors[i % len(colors)]), "marker": markers[i % len(markers)]}
        for i, s in enumerate(names)
    }


def _draw(ax, runs: pd.DataFrame, y: str, *, scale: float = 1.0, yerr: str | None = None) -> int:
    """One line per (model, series) of y against removed_total (%); returns the points drawn."""
    styles = _series_styles(runs)
    many_models = runs.model.nunique() > 1
    drawn = 0
    for model in sorted(runs.model.unique()):
        sub = runs[runs.model == model]
        dense = sub[(sub.method == "dense") & sub[y].notna()]
        if len(dense):
            ax.axhline(
                scale * float(dense[y].iloc[0]),
                color="black",
                linestyle="--",
                linewidth=1.2,
                label="dense" + (f" ({model})" if many_models else ""),
            )
        for series in styles:
            grp = sub[(sub.series == series) & (sub.method != "dense")]
            grp = grp.dropna(subset=["removed_total", y]).sort_values("removed_total")
            if grp.empty:
                continue
            x = 100.0 * grp.removed_total.to_numpy(dtype=float)
            v = scale * grp[y].to_numpy(dtype=float)
            err = None
            if yerr is not None:
                e = scale * grp[yerr].to_numpy(dtype=float)
                err = np.where(np.isfinite(e), e, 0.0) if np.isfinite(e).any() else None
            single = len(grp) == 1
            ax.errorbar(
                x,
                v,
                yerr=err,
                linestyle="none" if single else "-",
                marker=styles[series]["marker"],
                markersize=7 if single else 5,
                color=styles[series]["color"],
                capsize=3 if err is not None else 0,
                label=series + (f" ({model})" if many_models else ""),
            )
            drawn += len(grp)
    ax.set_xlabel(X_LABEL)
    return drawn


def _plain_log_ticks(ax) -> None:
    """Log y-axis labelled with plain numbers (20, 30, 50, 100) instead of 2 x 10^1."""
    ax.set_yscale("log")
    lo, hi = ax.get_ylim()
    span = np.log10(hi / lo) if lo > 0 and hi > lo else 0.0
    leading = {2, 3, 5} if span <= 1.3 else ({2, 5} if span <= 3 else set())

    def minor(value, _pos):
        mantissa = value / 10 ** np.floor(np.log10(value) + 1e-9)
        return f"{value:g}" if round(mantissa) in leading and abs(mantissa - round(mantissa)) < 1e-6 else ""

    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))
    ax.yaxis.set_minor_formatter(FuncFormatter(minor))


def _legend(ax) -> None:
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)


def _unique(values) -> list[str]:
    return sorted({str(v) for v in values if isinstance(v, str) and v})


def _models(runs: pd.DataFrame) -> str:
    return ", ".join(sorted(runs.model.astype(str).unique()))


def plot_perplexity(table: pd.DataFrame, path) -> None:
    """Perplexity (log scale) against the fraction of total parameters removed, one panel per dataset."""
    table = _paper_rows(table)
    _require(table, "perplexity", "params")
    runs = run_frame(table)
    datasets = perplexity_datasets(table)
    windows = _protocol(table, "perplexity", ("window", "max_windows"))
    with figure_style():
        fig, axes = plt.subplots(1, len(datasets), figsize=(5.6 * len(datasets), 4.4), squeeze=False)
        for ax, ds in zip(axes[0], datasets):
            _draw(ax, runs, ppl_column(ds))
            _plain_log_ticks(ax)
            ax.set_ylabel("perplexity (per token, log scale)")
            title = ds
            w = windows.get(ds, {})
            if w.get("window") is not None:
                title += f" ({w['window']}-token windows"
                title += f", at most {w['max_windows']})" if w.get("max_windows") is not None else ")"
            ax.set_title(title)
            _legend(ax)
        fig.suptitle(f"LLM compression ({_models(runs)}): perplexity vs parameters removed")
        save_figure(fig, path)


def plot_zeroshot(table: pd.DataFrame, path) -> None:
    """Mean zero-shot accuracy against the fraction removed; error bars sqrt(sum s_i^2)/k over tasks."""
    table = _paper_rows(table)
    _require(table, "zeroshot", "params")
    runs = run_frame(table)
    if runs.zeroshot_acc.isna().all():
        raise ValueError(f"the {PAPER} table has zeroshot rows but no 'zeroshot_acc' (dataset 'zeroshot_mean')")
    tasks = sorted({t for ts in runs.tasks if isinstance(ts, list) for t in ts})
    with figure_style():
        fig, ax = plt.subplots(figsize=(6.4, 4.6))
        _draw(ax, runs, "zeroshot_acc", scale=100.0, yerr="zeroshot_acc_stderr")
        ax.set_ylabel(f"mean zero-shot accuracy (%, {len(tasks) or '?'} tasks)")
        ax.set_title(f"LLM compression ({_models(runs)}): zero-shot accuracy\ntasks: {', '.join(tasks) or 'unknown'}")
        _legend(ax)
        save_figure(fig, path)


def plot_speed(table: pd.DataFrame, path) -> None:
    """Prefill and decode speed-up (compressed / dense, same job) against the fraction removed."""
    table = _paper_rows(table)
    _require(table, "speed", "params")
    runs = run_frame(table)
    settings = [json.loads(s) for s in table.loc[table.experiment.astype(str) == "speed", "setting"].astype(str)]
    device = ", ".join(_unique(s.get("device") for s in settings)) or "device not recorded"
    dtypes = _unique(s.get("dtype") for s in settings)
    if dtypes:
        device += f" ({', '.join(dtypes)})"
    dense = runs[runs.method == "dense"]
    with figure_style():
        fig, axes = plt.subplots(1, 2, figsize=(11.2, 4.4), squeeze=False)
        for ax, name in zip(axes[0], ("prefill", "decode")):
            label = "dense"
            if len(dense) == 1 and np.isfinite(dense[f"{name}_tok_s"].iloc[0]):
                label += f" ({dense[f'{name}_tok_s'].iloc[0]:,.0f} tokens/s)"
            ax.axhline(1.0, color="black", linestyle="--", linewidth=1.2, label=label)
            _draw(ax, runs[runs.method != "dense"], f"{name}_speedup")
            ax.set_ylabel(f"{name} speed-up (× dense tokens/s, same job)")
            ax.set_title(f"{name} throughput")
            _legend(ax)
        fig.suptitle(f"LLM compression ({_models(runs)}): speed-up vs parameters removed on {device}")
        save_figure(fig, path)


def _protocol(table: pd.DataFrame, experiment: str, keys: tuple[str, ...]) -> dict[str, dict]:
    """Per dataset, each key's value in the settings of ``experiment`` when it is the same in all rows."""
    out: dict[str, dict] = {}
    sub = table[table.experiment.astype(str) == experiment]
    for ds, grp in sub.groupby(sub.dataset.astype(str)):
        settings = [json.loads(s) for s in grp.setting.astype(str).unique()]
        out[ds] = {}
        for k in keys:
            vals = {json.dumps(s.get(k)) for s in settings}
            out[ds][k] = settings[0].get(k) if len(vals) == 1 else None
    return out
