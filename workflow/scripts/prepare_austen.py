"""Rule prepare_austen: the six novels as train / validation / test text files."""

from repro.data.corpora import prepare_austen
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    outputs = {name: snakemake.output[name] for name in ("train", "validation", "test")}
    prepare_austen(snakemake.input.artifact, dict(snakemake.params.split), outputs)
