"""Rule plot_escape_times: escape time against beta for every saddle problem."""

import pandas as pd

from repro.optim.saddle_figures import plot_escape_times
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    plot_escape_times(pd.read_parquet(snakemake.input.table), snakemake.output.png)
