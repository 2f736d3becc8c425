"""Rule prepare_kjv: the King James Bible as plain text, one verse per line."""

from repro.data.corpora import prepare_kjv
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_kjv(snakemake.input.program, snakemake.input.text, snakemake.output[0])
