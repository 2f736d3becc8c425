"""Rule augtheory_experiment: one data-augmentation experiment (repro.augtheory.stages)."""

from repro.augtheory.stages import experiment_records
from repro.io import write_parquet
from repro.report.rows import tidy_rows_by_experiment
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    params = snakemake.params
    records = experiment_records(snakemake.wildcards.da_experiment, params.settings, seed=int(params.seed))
    table = tidy_rows_by_experiment(
        records,
        paper="data_augmentation",
        tier=params.tier,
        provenance=job.provenance(device="cpu"),
        dataset="linear_gaussian",
    )
    write_parquet(table, snakemake.output.rows)
