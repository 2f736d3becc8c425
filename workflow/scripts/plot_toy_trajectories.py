"""Rule plot_toy_trajectories: Fig. 1, SGD vs SGD with momentum paths on the toy saddle."""

import pandas as pd

from repro.optim.saddle_figures import plot_toy_trajectories
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    plot_toy_trajectories(pd.read_parquet(snakemake.input.traces), snakemake.output.png)
