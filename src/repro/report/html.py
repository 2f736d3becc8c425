"""HTML views of the claims and runtime tables for ``snakemake --report`` (it cannot show Parquet)."""

from __future__ import annotations

import html

import pandas as pd

from repro.io import write_text

CSS = """
body{font-family:system-ui,sans-serif;margin:1.5em;color:#222}
table{border-collapse:collapse;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}
th{background:#f0f0f0}
td.holds-True{background:#e3f5e1} td.holds-False{background:#fbe3e1} td.holds-NA{background:#f3f3f3}
caption{caption-side:top;text-align:left;font-weight:600;padding:0.4em 0}
"""


def table_html(df: pd.DataFrame, title: str, note: str = "") -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, row in df.iterrows():
        cells = []
        for col, val in row.items():
            text = "NA" if pd.isna(val) else (f"{val:.4g}" if isinstance(val, float) else str(val))
            cls = f' class="holds-{text}"' if col == "holds" else ""
            cells.append(f"<td{cls}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    note_html = f"<p>{html.escape(note)}</p>" if note else ""
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        f"<style>{CSS}</style></head><body><h2>{html.escape(title)}</h2>{note_html}"
        f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table></body></html>\n"
    )


def write_table_html(df: pd.DataFrame, path, title: str, note: str = "") -> None:
    write_text(table_html(df, title, note), path)
