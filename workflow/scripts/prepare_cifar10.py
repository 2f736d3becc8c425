"""Rule prepare_cifar10: the CIFAR-10 python batches as one .npz."""

from repro.data.images import prepare_cifar10
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_cifar10(snakemake.input.artifact, snakemake.output[0])
