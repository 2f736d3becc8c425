"""Rule collect_runtime: runtime.parquet from every job's benchmark file, plus an HTML summary."""

from repro.report.html import write_table_html
from repro.report.runtime import collect_runtime, summarise_runtime
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    runtime = collect_runtime(list(snakemake.input), snakemake.output.table)
    summary = summarise_runtime(runtime).reset_index(names="rule")
    write_table_html(
        summary,
        snakemake.output.html,
        title="Runtime per rule (wall seconds summed over jobs; peak resident memory in MB)",
        note="From Snakemake benchmark files; jobs run in parallel, so the summed seconds exceed the wall time.",
    )
