"""Rule plot_modegpt_allocation: per-layer sparsity of every MoDeGPT run against block influence."""

import pandas as pd

from repro.llm.modegpt_report import plot_allocation
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    plot_allocation(pd.read_parquet(snakemake.input.table), snakemake.output.allocation)
