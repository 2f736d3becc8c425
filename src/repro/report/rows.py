"""Tidy result rows: one measured value per row, with its setting and provenance.

Every evaluation job writes such a table; ``validate_table`` is the contract check
that the aggregation, the claims and the tests all rely on.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from repro.report.provenance import TRACKED_LIBRARIES

KEY_COLUMNS = ["paper", "experiment", "method", "model", "dataset", "setting", "seed", "metric"]
RESULT_COLUMNS = KEY_COLUMNS + ["value", "tier"]
PROVENANCE_COLUMNS = ["git_commit", "code_digest"] + [f"{c}_version" for c in TRACKED_LIBRARIES] + ["device"]
COLUMNS = RESULT_COLUMNS + PROVENANCE_COLUMNS
STRING_COLUMNS = [c for c in COLUMNS if c not in ("seed", "value")]


def setting_json(setting: dict) -> str:
    """Canonical JSON (sorted keys, plain floats) so equal settings compare equal."""

    def plain(x):
        if isinstance(x, (np.floating, np.integer)):
            return x.item()
        raise TypeError(f"setting value {x!r} is not JSON-serialisable")

    return json.dumps(setting, sort_keys=True, default=plain)


def tidy_rows(
    records: list[dict],
    *,
    paper: str,
    experiment: str,
    tier: str,
    provenance: dict[str, str],
    model: str = "-",
    dataset: str = "-",
) -> pd.DataFrame:
    """Build a contract table from records with keys method, setting, seed, metric, value."""
    rows = []
    for rec in records:
        rows.append(
            {
                "paper": paper,
                "experiment": experiment,
                "method": rec["method"],
                "model": rec.get("model", model),
                "dataset": rec.get("dataset", dataset),
                "setting": setting_json(rec.get("setting", {})),
                "seed": int(rec["seed"]),
                "metric": rec["metric"],
                "value": float(rec["value"]),
                "tier": tier,
                **provenance,
            }
        )
    df = pd.DataFrame(rows, columns=COLUMNS)
    return normalise(df)


def records_from_frame(df: pd.DataFrame) -> list[dict]:
    """Records (``experiment``, ``method``, ``setting`` as a dict, ``seed``, ``metric``, ``value``) of a
    long runner DataFrame whose ``setting`` column holds JSON strings."""
    return [
        {
            "experiment": row.experiment,
            "method": row.method,
            "setting": json.loads(row.setting),
            "seed": int(row.seed),
            "metric": row.metric,
            "value": float(row.value),
        }
        for row in df[["experiment", "method", "setting", "seed", "metric", "value"]].itertuples(index=False)
    ]


def tidy_rows_by_experiment(records: list[dict], **kwargs) -> pd.DataFrame:
    """:func:`tidy_rows` for records that carry their own ``experiment`` key (one table, all experiments)."""
    groups: dict[str, list[dict]] = {}
    for rec in records:
        groups.setdefault(rec["experiment"], []).append(rec)
    return normalise(
        pd.concat([tidy_rows(rs, experiment=name, **kwargs) for name, rs in groups.items()], ignore_index=True)
    )


def normalise(df: pd.DataFrame) -> pd.DataFrame:
    df = df.astype({c: "string" for c in STRING_COLUMNS})
    df["seed"] = df["seed"].astype("Int64")
    df["value"] = df["value"].astype("float64")
    return df.sort_values(KEY_COLUMNS, kind="stable").reset_index(drop=True)


def validate_table(df: pd.DataFrame, source: str = "table") -> pd.DataFrame:
    """Raise ValueError naming ``source`` if ``df`` breaks the results contract."""
    missing = [c for c in COLUMNS if c not in df.columns]
    if missing:
        raise ValueError(f"{source}: missing columns {missing}")
    if df.empty:
        raise ValueError(f"{source}: no rows")
    for col in STRING_COLUMNS:
        if df[col].isna().any():
            raise ValueError(f"{source}: column {col!r} has missing values")
    bad_json = [s for s in df["setting"].unique() if not _is_json_object(s)]
    if bad_json:
        raise ValueError(f"{source}: 'setting' must hold JSON objects, got {bad_json[:3]}")
    if not pd.api.types.is_float_dtype(df["value"]):
        raise ValueError(f"{source}: column 'value' must be float, got {df['value'].dtype}")
    dupes = df.duplicated(KEY_COLUMNS)
    if dupes.any():
        raise ValueError(f"{source}: {int(dupes.sum())} duplicate rows for key {KEY_COLUMNS}")
    return df


def _is_json_object(text: str) -> bool:
    try:
        return isinstance(json.loads(text), dict)
    except (TypeError, ValueError):
        return False


def settings_frame(df: pd.DataFrame) -> pd.DataFrame:
    """The table with its JSON settings expanded into columns (for claims and figures)."""
    expanded = pd.json_normalize([json.loads(s) for s in df["setting"]]).set_index(df.index)
    return pd.concat([df.drop(columns=[c for c in expanded.columns if c in df.columns]), expanded], axis=1)


def experiment_rows(
    table: pd.DataFrame | None, experiment: str, paper: str | None = None, *, fall_back_to_all: bool = False
) -> pd.DataFrame:
    """The rows of ``experiment`` ready for figures and claims: name columns as str, ``value`` as float.

    With ``paper`` and a ``paper`` column only that paper's rows are kept; ``fall_back_to_all``
    keeps every row instead when the paper has none (hand-made or merged tables).  A missing or
    empty table gives an empty frame with the contract's core columns.
    """
    if table is None or table.empty or "experiment" not in table.columns:
        return pd.DataFrame(columns=KEY_COLUMNS + ["value"])
    df = table[table["experiment"].astype(str) == experiment]
    if paper is not None and "paper" in df.columns:
        own = df[df["paper"].astype(str) == paper]
        if len(own) or not fall_back_to_all:
            df = own
    df = df.copy()
    for col in ("method", "model", "dataset", "metric"):
        df[col] = df[col].astype(str)
    df["value"] = df["value"].astype(float)
    if "setting" not in df.columns:
        df["setting"] = "{}"
    return df


def with_setting_columns(df: pd.DataFrame, keys) -> pd.DataFrame:
    """``df`` with the JSON ``setting`` fields ``keys`` as columns (None where a row lacks one)."""
    df = df.copy()
    parsed = [json.loads(s) if isinstance(s, str) else dict(s or {}) for s in df.get("setting", [])]
    for key in keys:
        df[key] = [p.get(key) for p in parsed]
    return df
