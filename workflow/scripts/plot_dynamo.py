"""Rule plot_dynamo: speed-up, step-size shares, quality vs speed and head training of every DynaMo model."""

import pandas as pd

from repro.dynamo.report import plot_quality, plot_speedup, plot_token_share, plot_training
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    plot_speedup(table, snakemake.output.speedup)
    plot_token_share(table, snakemake.output.token_share)
    plot_quality(table, snakemake.output.quality)
    plot_training(table, snakemake.output.training)
