"""Rules aggregate_paper and aggregate_all: concatenate tidy tables after checking the contract."""

from repro.report.aggregate import aggregate
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    aggregate(list(snakemake.input), snakemake.output[0])
