"""Rule collect_claims: claims.parquet and its HTML view for the report."""

from repro.report.claims import combine_claims
from repro.report.html import write_table_html
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    claims = combine_claims(list(snakemake.input), snakemake.output.table)
    write_table_html(
        claims,
        snakemake.output.html,
        title="Headline claims: paper vs measured",
        note="'holds' is computed from the measured value by the test in 'comparison'; NA means not measurable "
        "with the configured experiments.",
    )
