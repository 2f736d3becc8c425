"""HTML views of the result tables for ``snakemake --report`` (it cannot show Parquet).

``table_html`` renders one table as a page (claims, runtime); ``sections_html`` renders several
tables under headings on one page (the provenance and table overview of
:mod:`repro.report.results_readme`).
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import pandas as pd

from repro.io import write_text

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.holds-True{background:#e3f5e1} td.holds-False{background:#fbe3e1} td.holds-NA{background:#f3f3f3}
caption{caption-side:top;text-align:left;font-weight:600;padding:0.4em 0}
code{background:#f6f6f6;padding:0 3px}
"""


@dataclass
class Section:
    """One heading of a :func:`sections_html` page: a note (plain text) and an optional table."""

    heading: str
    note: str = ""
    table: pd.DataFrame | None = None


def cell_text(val) -> str:
    """How a table cell is shown: NA for missing values, 4 significant digits for floats."""
    if val is None or (not isinstance(val, (list, tuple, dict)) and pd.isna(val)):
        return "NA"
    return f"{val:.4g}" if isinstance(val, float) else str(val)


def _table(df: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for col, val in row.items():
            text = cell_text(val)
            cls = f' class="holds-{text}"' if col == "holds" else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _page(title: str, body: str) -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h2>{html.escape(title)}</h2>{body}</body></html>\n"
    )


def table_html(df: pd.DataFrame, title: str, note: str = "") -> str:
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return _page(title, note_html + _table(df))


def sections_html(title: str, sections: Sequence[Section]) -> str:
    """One page with a heading, a note and a table per section (all text escaped)."""
    parts = []
    for sec in sections:
        parts.append(f"<h3>{html.escape(sec.heading)}</h3>")
        if sec.note:
            parts.append(f"<p>{html.escape(sec.note)}</p>")
        if sec.table is not None:
            parts.append(_table(sec.table))
    return _page(title, "".join(parts))


def write_table_html(df: pd.DataFrame, path, title: str, note: str = "") -> None:
    write_text(table_html(df, title, note), path)
