"""Rule plot_augtheory: one figure of repro.augtheory.report.FIGURES."""

import pandas as pd

from repro.augtheory.report import FIGURES
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    _, plot = FIGURES[snakemake.wildcards.da_figure]
    plot(table, snakemake.output.png)
