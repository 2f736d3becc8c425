"""Rule simulate_saddle: one saddle-escape experiment -> metrics and traces Parquet."""

from repro.io import write_parquet
from repro.optim.saddle_experiment import run_experiment
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821 (snakemake is injected by Snakemake)
    table, traces = run_experiment(
        snakemake.wildcards.problem,
        snakemake.params.setting,
        tier=snakemake.params.tier,
        provenance=job.provenance(device="cpu (numpy)"),
    )
    write_parquet(traces, snakemake.output.traces)
    write_parquet(table, snakemake.output.metrics)
