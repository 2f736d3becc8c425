"""Rule plot_heavy_ball: iterations vs kappa with fitted exponents, and convergence curves."""

import pandas as pd

from repro.optim.heavy_ball_figures import plot_convergence, plot_iterations_vs_kappa
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    plot_iterations_vs_kappa(pd.read_parquet(snakemake.input.table), snakemake.output.scaling)
    traces = pd.concat([pd.read_parquet(p) for p in snakemake.input.traces], ignore_index=True)
    plot_convergence(traces, snakemake.output.convergence)
