"""Rule calibrate_llm: calibration statistics of one prepared model on one calibration set."""

from repro.io import write_parquet
from repro.llm.stages import calibrate, calibration_records
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    options = snakemake.params.options
    summary = calibrate(
        snakemake.input.model,
        options,
        snakemake.output.statistics,
        dtype=snakemake.params.dtype,
        device=snakemake.params.device,
    )
    table = tidy_rows(
        calibration_records(summary, options, snakemake.wildcards.calibration),
        paper="llm_compression",
        experiment="calibration",
        tier=snakemake.params.tier,
        provenance=job.provenance(device="cuda" if torch.cuda.is_available() else "cpu"),
        model=snakemake.wildcards.model,
        dataset=snakemake.wildcards.calibration,
    )
    write_parquet(table, snakemake.output.table)
