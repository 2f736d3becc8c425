"""Rule download_artifact: fetch one pinned artifact into resources/ and write its manifest entry."""

from pathlib import Path

from repro.data.sources import fetch
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    resources = Path(snakemake.output.manifest).parents[1]
    fetch(snakemake.wildcards.artifact, dict(snakemake.params.spec), resources)
