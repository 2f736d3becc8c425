"""Concatenate per-job tables into ``results/tables/<paper>.parquet`` and ``all.parquet``."""

from __future__ import annotations

import pandas as pd

from repro.io import write_parquet
from repro.report.rows import normalise, validate_table


def aggregate(paths, output) -> pd.DataFrame:
    """Read, check and concatenate tidy tables; write them sorted so reruns are byte-stable."""
    frames = []
    for path in paths:
        df = pd.read_parquet(path)
        frames.append(validate_table(df, source=str(path)))
    if not frames:
        raise ValueError(f"nothing to aggregate into {output}")
    table = validate_table(normalise(pd.concat(frames, ignore_index=True)), source=str(output))
    write_parquet(table, output)
    return table
