"""``results/tables/README.md`` and ``provenance.html``: what the tables are, what they hold, where they came from.

Built from the finished tables only (rule ``results_readme``): every table file with its columns
and row count, the claims summary (how many claims hold per paper), the tier, and the provenance
the rows carry (git commit, code digest, library versions, device) with the time each table was
written.  The same content goes to Markdown (next to the tables) and to one HTML page that
``snakemake --report`` shows under *Tables*.
"""

from __future__ import annotations

import platform
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq

from repro.io import write_text
from repro.report.html import Section, cell_text, sections_html
from repro.report.provenance import library_version
from repro.report.rows import PROVENANCE_COLUMNS

#: what the fixed table files hold; ``<paper>.parquet`` files are described by :func:`describe_table`.
TABLE_DESCRIPTIONS = {
    "all.parquet": "every paper's tidy result rows, concatenated",
    "claims.parquet": "one row per headline claim: paper value, measured value and the computed `holds`",
    "runtime.parquet": "one row per job: wall seconds, peak RSS (MB), CPU seconds, from Snakemake benchmark files",
}

#: packages whose versions the report job records about its own environment.
ENVIRONMENT_PACKAGES = ("snakemake", "numpy", "pandas", "pyarrow", "torch", "transformers", "lm-eval")

TIER_NOTES = {
    "test": "config/test.yaml: tiny models and data; checks that the pipeline runs, not the papers",
    "default": "config/config.yaml: real offline data and small real models on a 2-core CPU",
    "paper": "config/paper.yaml: the papers' own models and datasets, GPU cluster",
}


def describe_table(name: str) -> str:
    return TABLE_DESCRIPTIONS.get(name, f"tidy result rows of paper `{Path(name).stem}`")


def _utc(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def table_inventory(paths: Sequence[Path | str]) -> pd.DataFrame:
    """One row per Parquet file: ``file, rows, columns, written, what`` (read from the file's metadata)."""
    rows = []
    for path in paths:
        path = Path(path)
        meta = pq.read_metadata(path)
        names = [n for n in meta.schema.to_arrow_schema().names if not n.startswith("__index_level")]
        rows.append(
            {
                "file": path.name,
                "rows": int(meta.num_rows),
                "columns": ", ".join(names),
                "written": _utc(path.stat().st_mtime),
                "what": describe_table(path.name),
            }
        )
    return pd.DataFrame(rows, columns=["file", "rows", "columns", "written", "what"])


def claims_summary(claims: pd.DataFrame) -> pd.DataFrame:
    """Per paper: number of claims, how many hold, do not hold, and could not be measured; plus a total row."""
    holds = claims["holds"].astype("boolean")
    df = pd.DataFrame(
        {
            "paper": claims["paper"].astype(str),
            "hold": holds.eq(True).fillna(False).astype(int),
            "do not hold": holds.eq(False).fillna(False).astype(int),
            "not measured": holds.isna().astype(int),
        }
    )
    per_paper = df.groupby("paper", sort=True).sum()
    per_paper.insert(0, "claims", per_paper.sum(axis=1))
    total = per_paper.sum().to_frame("TOTAL").T
    return (
        pd.concat([per_paper, total])
        .rename_axis("paper")
        .reset_index()
        .astype({c: int for c in ("claims", "hold", "do not hold", "not measured")})
    )


def provenance_summary(rows: pd.DataFrame) -> pd.DataFrame:
    """The distinct provenance records of the result rows per paper and tier, with their row counts.

    Jobs differ in the modules they run, so one paper's rows carry several code digests: they are
    listed (sorted, comma-separated) in one record as long as everything else agrees.
    """
    digest = "code_digest"
    keys = ["paper", "tier"] + [c for c in PROVENANCE_COLUMNS if c != digest]
    df = rows.copy()
    for col in keys + [digest]:
        df[col] = df[col].astype("string").fillna("unknown") if col in df.columns else "unknown"
    grouped = df.groupby(keys, dropna=False, sort=True)
    out = grouped[digest].agg(lambda s: ", ".join(sorted(set(s)))).rename("code_digests").to_frame()
    out["rows"] = grouped.size()
    return out.reset_index()[keys + ["code_digests", "rows"]]


def runtime_totals(runtime: pd.DataFrame) -> dict[str, float]:
    return {
        "jobs": int(len(runtime)),
        "seconds": float(runtime["seconds"].sum()),
        "longest_s": float(runtime["seconds"].max()) if len(runtime) else float("nan"),
        "max_rss_mb": float(runtime["max_rss_mb"].max()) if len(runtime) else float("nan"),
    }


def environment() -> dict[str, str]:
    """Python and the key packages of the environment that wrote the README (the report job's)."""
    env = {"python": platform.python_version(), "platform": platform.platform(terse=True)}
    env.update({pkg: library_version(pkg) for pkg in ENVIRONMENT_PACKAGES})
    return env


@dataclass
class ResultsOverview:
    """Everything the README and the provenance page say, computed once from the tables."""

    tier: str
    inventory: pd.DataFrame
    claims: pd.DataFrame
    provenance: pd.DataFrame
    runtime: dict[str, float]
    environment: dict[str, str]
    written_at: str

    @property
    def tiers_in_rows(self) -> list[str]:
        return sorted(set(self.provenance["tier"]))

    @property
    def code_digests(self) -> set[str]:
        return {d for cell in self.provenance["code_digests"] for d in cell.split(", ")}

    @property
    def first_last_written(self) -> tuple[str, str]:
        times = sorted(self.inventory["written"])
        return times[0], times[-1]


def overview(
    tables: Sequence[Path | str],
    all_rows: Path | str,
    claims: Path | str,
    runtime: Path | str,
    tier: str,
    written_at: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> ResultsOverview:
    """Read the finished tables; ``tables`` lists every Parquet file to inventory."""
    columns = ["paper", "tier"] + PROVENANCE_COLUMNS
    schema = pq.read_schema(all_rows).names
    rows = pd.read_parquet(all_rows, columns=[c for c in columns if c in schema])
    when = written_at or datetime.now(tz=timezone.utc)
    return ResultsOverview(
        tier=tier,
        inventory=table_inventory(tables),
        claims=claims_summary(pd.read_parquet(claims)),
        provenance=provenance_summary(rows),
        runtime=runtime_totals(pd.read_parquet(runtime)),
        environment=dict(env) if env is not None else environment(),
        written_at=when.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC"),
    )


# --------------------------------------------------------------------------- Markdown


def _md_cell(val) -> str:
    return cell_text(val).replace("|", "\\|").replace("\n", " ")


def markdown_table(df: pd.DataFrame) -> str:
    head = "| " + " | ".join(_md_cell(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _tier_line(ov: ResultsOverview) -> str:
    line = f"Tier: **{ov.tier}** ({TIER_NOTES.get(ov.tier, 'custom tier')})."
    if ov.tiers_in_rows != [ov.tier]:
        line += f" The rows carry tier(s) {', '.join(ov.tiers_in_rows)}."
    return line


def _runtime_line(ov: ResultsOverview) -> str:
    rt = ov.runtime
    return (
        f"{rt['jobs']} jobs, {rt['seconds']:.1f} s of job wall time summed (jobs run in parallel), "
        f"longest job {rt['longest_s']:.1f} s, peak RSS {rt['max_rss_mb']:.0f} MB."
    )


def _distinct(ov: ResultsOverview, column: str) -> str:
    return ", ".join(sorted(set(ov.provenance[column])))


def _commit_note(ov: ResultsOverview) -> str:
    commits = set(ov.provenance["git_commit"])
    notes = []
    if any(c.endswith("-dirty") for c in commits):
        notes.append("`-dirty`: the checkout had uncommitted changes")
    if "unknown" in commits:
        notes.append("`unknown`: the workflow did not run from a git checkout")
    return f" ({'; '.join(notes)})" if notes else ""


def readme_markdown(ov: ResultsOverview) -> str:
    first, last = ov.first_last_written
    env = ", ".join(f"{k} {v}" for k, v in ov.environment.items())
    lines = [
        "# Result tables",
        "",
        "Written by rule `results_readme` (`src/repro/report/results_readme.py`) from the tables in this "
        "folder; do not edit by hand, rerun the workflow.",
        "",
        _tier_line(ov),
        "",
        f"Tables written between {first} and {last}; this README written {ov.written_at}.",
        "",
        "## Provenance",
        "",
        f"- git commit(s): {_distinct(ov, 'git_commit')}{_commit_note(ov)}",
        f"- code digest(s): {len(ov.code_digests)} distinct "
        "(each job records the digest of the `repro` modules it ran; per paper in the table below)",
        f"- torch: {_distinct(ov, 'torch_version')}; transformers: {_distinct(ov, 'transformers_version')}; "
        f"lm-eval: {_distinct(ov, 'lm_eval_version')}",
        f"- device(s): {_distinct(ov, 'device')}",
        f"- environment of this README's job: {env}",
        "",
        "Distinct provenance records of the result rows (`all.parquet`), per paper:",
        "",
        markdown_table(ov.provenance),
        "",
        "## Claims",
        "",
        "`holds` is computed from the measured value by the test in `comparison` (see `claims.parquet` "
        "or `claims.html`); *not measured* means the configured experiments cannot measure the claim, or "
        "(speed claims) that the measurement was not steady enough to decide it (its detail says so).",
        "",
        markdown_table(ov.claims),
        "",
        "## Runtime",
        "",
        _runtime_line(ov) + " Per job: `runtime.parquet`; per rule: `runtime.html`.",
        "",
        "## Files",
        "",
        markdown_table(ov.inventory[["file", "rows", "columns", "what"]]),
        "",
        "The tidy tables (`all.parquet`, `<paper>.parquet`) follow the results contract: one measured value "
        "per row, `setting` a JSON object, provenance in every row. HTML views for the report: "
        "`claims.html`, `runtime.html`, `provenance.html`.",
        "",
    ]
    return "\n".join(lines)


# --------------------------------------------------------------------------- HTML


def provenance_sections(ov: ResultsOverview) -> list[Section]:
    first, last = ov.first_last_written
    rt = ov.runtime
    run = pd.DataFrame(
        [
            ("tier", ov.tier),
            ("git commit(s)", _distinct(ov, "git_commit")),
            ("torch", _distinct(ov, "torch_version")),
            ("transformers", _distinct(ov, "transformers_version")),
            ("lm-eval", _distinct(ov, "lm_eval_version")),
            ("device(s)", _distinct(ov, "device")),
            ("code digests", f"{len(ov.code_digests)} distinct (per paper below)"),
            ("tables written", f"{first} to {last}"),
            ("jobs", str(rt["jobs"])),
            ("job wall time summed (s)", f"{rt['seconds']:.1f}"),
            ("this page written", ov.written_at),
        ]
        + [(f"{k} (report job)", v) for k, v in ov.environment.items()],
        columns=["item", "value"],
    )
    return [
        Section("Run", _tier_line(ov).replace("**", ""), run),
        Section(
            "Provenance of the result rows",
            "Distinct (paper, tier, git commit, code digest, library versions, device) records of all.parquet, "
            "with their row counts; the code digest covers the repro modules a job ran.",
            ov.provenance,
        ),
        Section(
            "Claims per paper",
            "holds is computed from the measured value; 'not measured': the configured experiments cannot "
            "measure the claim, or a speed measurement drifted too much to decide it. Each claim is in the "
            "claims table.",
            ov.claims,
        ),
        Section(
            "Tables in results/tables/",
            "Each Parquet file with its row count and columns; README.md beside them says the same.",
            ov.inventory,
        ),
    ]


def provenance_html(ov: ResultsOverview) -> str:
    return sections_html("Provenance, claims summary and tables of this run", provenance_sections(ov))


def write_results_readme(
    tables: Sequence[Path | str],
    all_rows: Path | str,
    claims: Path | str,
    runtime: Path | str,
    tier: str,
    readme: Path | str,
    html: Path | str,
    written_at: datetime | None = None,
    env: Mapping[str, str] | None = None,
) -> ResultsOverview:
    """Write ``README.md`` and ``provenance.html`` (atomically) and return what they say."""
    ov = overview(tables, all_rows, claims, runtime, tier, written_at=written_at, env=env)
    write_text(readme_markdown(ov), readme)
    write_text(provenance_html(ov), html)
    return ov
