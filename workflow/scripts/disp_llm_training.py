"""Rule disp_llm_training: the per-step hypernetwork training log of one DISP-LLM run as tidy rows."""

from repro.io import write_parquet
from repro.llm.compressed import read_compression_info
from repro.llm.disp_report import training_records
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    info = read_compression_info(snakemake.input.model)["info"]
    table = tidy_rows(
        training_records(info, snakemake.params.setting),
        paper="disp_llm",
        experiment="training",
        tier=snakemake.params.tier,
        provenance=job.provenance(device="cpu"),
        model=snakemake.wildcards.model,
    )
    write_parquet(table, snakemake.output[0])
