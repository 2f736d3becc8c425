"""Rule plot_llm_compression: perplexity, zero-shot accuracy and throughput vs compression."""

import pandas as pd

from repro.llm.figures import plot_perplexity, plot_speed, plot_zeroshot
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    plot_perplexity(table, snakemake.output.perplexity)
    plot_zeroshot(table, snakemake.output.zeroshot)
    plot_speed(table, snakemake.output.speed)
