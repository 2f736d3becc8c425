"""Rules evaluate_llm_{params,perplexity,zeroshot,speed}: one evaluation of one run's model."""

from repro.io import write_parquet
from repro.llm import stages
from repro.llm.compressed import read_compression_info
from repro.llm.eval.speed import device_name
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params, evaluation = snakemake.params, snakemake.rule.removeprefix("evaluate_llm_")
    spec, setting = params.spec, params.setting
    device = stages.pick_device(getattr(params, "device", "cpu") if evaluation != "params" else "cpu")
    model, tokenizer = stages.load_model(snakemake.input.model, params.dtype, str(device))
    if evaluation == "params":
        dense, _ = stages.load_model(snakemake.input.dense, params.dtype, "cpu")
        info = read_compression_info(snakemake.input.model)["info"] if spec["run"] != "dense" else None
        records = stages.parameter_records(dense, model, spec, setting, info)
    elif evaluation == "perplexity":
        records = stages.perplexity_records_for(model, tokenizer, params.options, spec, setting)
    elif evaluation == "zeroshot":
        tasks = list(snakemake.input.tasks) or list(params.options["tasks"])  # YAML files, else built-in names
        records = stages.zeroshot_records_for(model, tokenizer, tasks, params.options, spec, setting)
    elif evaluation == "speed":
        dense = None
        if spec["run"] != "dense":
            dense, _ = stages.load_model(snakemake.input.dense, params.dtype, "cpu")
        records = stages.speed_records_for(
            dense, model, tokenizer, {**params.options, "device": str(device)}, spec, setting
        )
    else:
        raise ValueError(f"unknown evaluation {evaluation!r}")
    table = tidy_rows(
        records,
        paper="llm_compression",
        experiment=evaluation,
        tier=params.tier,
        provenance=job.provenance(device=device_name(device)),
        model=snakemake.wildcards.model,
    )
    write_parquet(table, snakemake.output[0])
