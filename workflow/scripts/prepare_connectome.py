"""Rule prepare_connectome: the Drosophila mushroom-body connectome (both sides) as one .npz."""

from repro.data.graphs import prepare_connectome
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_connectome(snakemake.input.artifact, snakemake.output[0])
