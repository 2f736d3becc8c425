"""Rule prepare_wikitext2: WikiText-2 (raw) splits as text files joined with blank lines."""

from repro.data.corpora import prepare_wikitext2
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    outputs = {name: snakemake.output[name] for name in ("train", "validation", "test")}
    prepare_wikitext2(snakemake.input.artifact, outputs)
