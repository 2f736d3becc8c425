"""Rule prepare_tiny_llm: the test tier's tiny Llama, its synthetic texts and a cloze task."""

from pathlib import Path

from repro.llm.tiny_assets import build_tiny_llm, write_tiny_texts, write_tiny_zeroshot
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    options, out = snakemake.params.options, snakemake.output
    texts = write_tiny_texts(Path(out.train).parent, seed=options["seed"])
    summary = build_tiny_llm(out.model, seed=options["seed"], train_steps=options["train_steps"], overwrite=True)
    job.log.info("tiny model: %s", summary)
    zeroshot = write_tiny_zeroshot(
        Path(out.item_set).parent,
        Path(texts["test"]).read_text(),
        seed=options["seed"],
        n_items=options["zeroshot_items"],
    )
    job.log.info("tiny zero-shot set: %s", zeroshot)
