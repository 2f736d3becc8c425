"""Rule prepare_zeroshot: seeded multiple-choice item sets (JSONL) and their lm-eval task configs."""

from repro.data.zeroshot_sets import build_zeroshot_sets
from repro.workflow.script import job_context

with job_context(snakemake):  # noqa: F821
    build_zeroshot_sets(
        quiz_dir=snakemake.input.quiz,
        synsets_path=snakemake.input.synsets,
        cloze_text_path=snakemake.input.cloze_text,
        options=dict(snakemake.params.options),
        items_paths=list(snakemake.output.item_sets),
        task_paths=list(snakemake.output.tasks),
    )
