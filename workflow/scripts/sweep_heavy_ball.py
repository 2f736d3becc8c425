"""Rule sweep_heavy_ball: iterations to tolerance for every method and kappa of one function."""

from repro.io import write_parquet
from repro.optim.heavy_ball_experiment import run_experiment
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    table, traces = run_experiment(
        snakemake.wildcards.function,
        snakemake.params.setting,
        tier=snakemake.params.tier,
        provenance=job.provenance(device="cpu (numpy)"),
    )
    write_parquet(traces, snakemake.output.traces)
    write_parquet(table, snakemake.output.metrics)
