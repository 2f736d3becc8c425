"""``runtime.parquet``: wall time and peak memory of every job, from Snakemake benchmark files.

Benchmark files live at ``benchmarks/<rule>/<wildcards>.tsv``; the rule is the first
folder and the rest of the path names the job.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from repro.io import write_parquet

RUNTIME_COLUMNS = ["rule", "job", "seconds", "max_rss_mb", "cpu_seconds", "mean_load"]


def read_benchmark(path, root="benchmarks") -> dict:
    path = Path(path)
    rel = path.relative_to(root) if path.is_relative_to(root) else path
    rule = rel.parts[0] if len(rel.parts) > 1 else rel.stem
    job = str(Path(*rel.parts[1:]).with_suffix("")) if len(rel.parts) > 1 else rel.stem
    bench = pd.read_csv(path, sep="\t")
    if bench.empty or "s" not in bench.columns:
        raise ValueError(f"{path}: not a Snakemake benchmark file (no 's' column)")
    last = bench.iloc[-1]

    def num(col):
        value = pd.to_numeric(last.get(col), errors="coerce")
        return float(value) if pd.notna(value) else float("nan")

    return {
        "rule": rule,
        "job": job,
        "seconds": num("s"),
        "max_rss_mb": num("max_rss"),
        "cpu_seconds": num("cpu_time"),
        "mean_load": num("mean_load"),
    }


def collect_runtime(paths, output, root="benchmarks") -> pd.DataFrame:
    df = pd.DataFrame([read_benchmark(p, root) for p in paths], columns=RUNTIME_COLUMNS)
    df = df.sort_values(["rule", "job"], kind="stable").reset_index(drop=True)
    write_parquet(df, output)
    return df


def summarise_runtime(df: pd.DataFrame) -> pd.DataFrame:
    """Per-rule totals plus an overall row: job count, summed and longest wall time, peak RSS."""
    per_rule = df.groupby("rule").agg(
        jobs=("job", "count"),
        seconds=("seconds", "sum"),
        longest_s=("seconds", "max"),
        max_rss_mb=("max_rss_mb", "max"),
    )
    total = pd.DataFrame(
        {
            "jobs": [len(df)],
            "seconds": [df["seconds"].sum()],
            "longest_s": [df["seconds"].max()],
            "max_rss_mb": [df["max_rss_mb"].max()],
        },
        index=["TOTAL"],
    )
    return pd.concat([per_rule.sort_values("seconds", ascending=False), total]).round(2)
