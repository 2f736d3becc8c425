"""Rule prepare_tiny_images: the test tier's synthetic shape images (Fashion-MNIST layout)."""

from repro.data.images import prepare_tiny_images
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_tiny_images(snakemake.output[0])
