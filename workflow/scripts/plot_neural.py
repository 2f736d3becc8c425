"""Rules plot_neural and plot_myow_images: Swap-VAE / MYOW figures (repro.neural.report)."""

import pandas as pd

from repro.neural import report
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    table = pd.read_parquet(snakemake.input.table)
    if snakemake.rule == "plot_myow_images":
        report.plot_images(table, snakemake.output.images)
    else:
        paper = snakemake.wildcards.paper
        report.plot_decoding(table, snakemake.output.decoding, paper)
        report.plot_training(table, snakemake.output.training, paper)
        # keys "dataset/model" (first seed of each) for the embedding panels
        files = {}
        for path in snakemake.input.reps:
            dataset, model = path.split("/")[-4:-2]
            files.setdefault(f"{dataset}/{model}", path)
        report.plot_embeddings(files, snakemake.output.embeddings)
