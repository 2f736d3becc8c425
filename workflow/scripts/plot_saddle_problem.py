"""Rule plot_saddle_problem: Fig. 2 curves and Fig. 3 diagnostics for one problem."""

import pandas as pd

from repro.optim.saddle_figures import plot_saddle_curves, plot_saddle_diagnostics
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    traces = pd.read_parquet(snakemake.input.traces)
    problem = snakemake.wildcards.problem
    plot_saddle_curves(traces, problem, snakemake.output.curves)
    plot_saddle_diagnostics(traces, problem, snakemake.params.diagnostics, snakemake.output.diagnostics)
