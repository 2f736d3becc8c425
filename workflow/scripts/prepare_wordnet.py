"""Rule prepare_wordnet: synsets with glosses and supersenses, hypernym and domain-topic edges."""

from repro.data.graphs import prepare_wordnet
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    outputs = {k: snakemake.output[k] for k in ("synsets", "hypernym", "domain_topic")}
    prepare_wordnet(snakemake.input.artifact, outputs)
