"""Rule compute_claims: one paper's headline claims, computed from its aggregated table."""

from repro.report.claims import compute_claims
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    compute_claims(
        snakemake.wildcards.paper,
        snakemake.input.table,
        snakemake.output[0],
        snakemake.params.tier,
        extra_tables=snakemake.input.extra,
    )
