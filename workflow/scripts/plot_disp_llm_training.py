"""Rule plot_disp_llm_training: cross-entropy and kept fraction per hypernetwork step of every DISP-LLM run."""

import pandas as pd

from repro.llm.disp_report import plot_training
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    plot_training(pd.read_parquet(snakemake.input.table), snakemake.output.training)
