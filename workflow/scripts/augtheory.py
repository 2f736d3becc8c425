"""Rule augtheory_experiment: one data-augmentation experiment (repro.augtheory.stages)."""

import pandas as pd

from repro.augtheory.stages import experiment_records
from repro.io import write_parquet
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params = snakemake.params
    records = experiment_records(snakemake.wildcards.da_experiment, params.settings, seed=int(params.seed))
    provenance = job.provenance(device="cpu")
    by_experiment = {}
    for r in records:
        by_experiment.setdefault(r["experiment"], []).append(r)
    table = pd.concat(
        [
            tidy_rows(
                rs,
                paper="data_augmentation",
                experiment=name,
                tier=params.tier,
                provenance=provenance,
                dataset="linear_gaussian",
            )
            for name, rs in by_experiment.items()
        ],
        ignore_index=True,
    )
    write_parquet(table, snakemake.output.rows)
