"""Rule prepare_fashion_mnist: the IDX files as one .npz."""

from repro.data.images import prepare_fashion_mnist
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_fashion_mnist(snakemake.input.artifact, snakemake.output[0])
