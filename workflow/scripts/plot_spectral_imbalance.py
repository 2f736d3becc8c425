"""Rules plot_spectral_imbalance / plot_spectral_augmentation: figures of repro.spectral.report."""

import pandas as pd

from repro.spectral.report import plot_augmentation, plot_encoders, plot_synthetic
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    if snakemake.rule == "plot_spectral_augmentation":
        plot_augmentation(table, snakemake.output.augmentation)
    else:
        plot_synthetic(table, snakemake.output.synthetic)
        plot_encoders(table, snakemake.output.encoders)
