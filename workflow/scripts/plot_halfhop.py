"""Rule plot_halfhop: gain vs homophily, supervised accuracy, cost per epoch and the SSL probe."""

import pandas as pd

from repro.graphs.report import plot_cost, plot_gain_vs_homophily, plot_ssl, plot_supervised
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    plot_gain_vs_homophily(table, snakemake.output.gain_vs_homophily)
    plot_supervised(table, snakemake.output.supervised)
    plot_cost(table, snakemake.output.cost)
    plot_ssl(table, snakemake.output.ssl)
