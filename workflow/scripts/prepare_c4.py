"""Rule prepare_c4: the first documents of a C4 train shard as one calibration text (blank-line joined)."""

from repro.data.c4 import prepare_c4
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    prepare_c4(
        snakemake.input.artifact,
        snakemake.output.train,
        shard=snakemake.params.options["shard"],
        documents=snakemake.params.options["documents"],
    )
