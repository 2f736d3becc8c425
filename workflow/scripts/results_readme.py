"""Rule results_readme: results/tables/README.md and the provenance page of the report."""

from repro.report.results_readme import write_results_readme
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    inp = snakemake.input  # noqa: F821
    write_results_readme(
        tables=[inp.all, inp.claims, inp.runtime, *inp.tables],
        all_rows=inp.all,
        claims=inp.claims,
        runtime=inp.runtime,
        tier=snakemake.params.tier,  # noqa: F821
        readme=snakemake.output.readme,  # noqa: F821
        html=snakemake.output.html,  # noqa: F821
    )
