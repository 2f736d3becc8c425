"""Rule compress_llm: one compression run, saved as a real smaller model folder."""

from repro.llm.stages import compress
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    info = compress(
        snakemake.input.model,
        snakemake.params.spec,
        snakemake.params.calibration,
        snakemake.input.statistics,
        snakemake.output.model,
        dtype=snakemake.params.dtype,
        device=snakemake.params.device,
    )
    job.log.info("run %s: %s s, counts after %s", info["run"], info["compress_seconds"], info.get("counts_after"))
