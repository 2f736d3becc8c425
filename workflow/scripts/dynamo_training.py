"""Rule dynamo_training: the per-step head-training log of one DynaMo model as tidy rows."""

import json
from pathlib import Path

from repro.dynamo.report import PAPER, training_records
from repro.io import write_parquet
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    info = json.loads((Path(snakemake.input.heads) / "heads.json").read_text())
    table = tidy_rows(
        training_records(info, snakemake.params.setting),
        paper=PAPER,
        experiment="training",
        tier=snakemake.params.tier,
        provenance=job.provenance(device="cpu"),
        model=snakemake.wildcards.model,
    )
    write_parquet(table, snakemake.output[0])
