"""Rules dynamo_{cooccurrence,train,perplexity,decoding,judge}: one DynaMo stage each (repro.dynamo.stages)."""

from repro.dynamo import stages
from repro.io import write_parquet
from repro.llm.eval.speed import device_name
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params, stage = snakemake.params, snakemake.rule.removeprefix("dynamo_")
    device = stages.pick_device(params.device)
    setting = dict(params.setting)
    if stage == "train":
        info = stages.train(
            snakemake.input.model,
            snakemake.input.text,
            params.options,
            snakemake.output.heads,
            dtype=params.dtype,
            device=str(device),
        )
        job.log.info("trained %d steps on %d tokens in %.0f s", len(info["history"]), info["tokens"], info["seconds"])
    else:
        if stage == "cooccurrence":
            summary = stages.build_cooccurrence(
                snakemake.input.model, snakemake.input.text, params.options, snakemake.output.table
            )
            records = [{"method": "dynamo", "metric": k, "value": v, "dataset": "summary"} for k, v in summary.items()]
            device = torch.device("cpu")
        elif stage == "perplexity":
            model, tokenizer, info = stages.load_heads(snakemake.input.heads, params.dtype, str(device))
            records = []
            for name, options in params.options.items():
                windows = stages.text_windows(tokenizer, options)
                records += stages.perplexity_records(model, windows, info, name)
            records = [{"method": "dynamo", **r} for r in records]
        elif stage == "decoding":
            model, tokenizer, info = stages.load_heads(snakemake.input.heads, params.dtype, str(device))
            table = stages.CooccurrenceTable.load(snakemake.input.table)
            draft = None
            if snakemake.input.get("draft"):
                draft = stages.load_model(snakemake.input.draft, params.dtype, str(device))[0]
            samples: list[dict] = []
            records = stages.decoding_records(
                model, tokenizer, table, params.options["prompts"], params.options, draft, samples
            )
            stages.write_generations(samples, snakemake.output.generations)
            method = {"ar": "autoregressive", "assisted": "assisted"}
            records = [{"method": method.get(r["dataset"], "dynamo"), **r} for r in records]
        elif stage == "judge":
            from repro.dynamo.judge import PairwiseJudge

            judge_model, judge_tokenizer = stages.load_model(snakemake.input.judge, params.dtype, str(device))
            judge = PairwiseJudge.from_model(
                judge_model,
                judge_tokenizer,
                max_new_tokens=int(params.options.get("max_new_tokens", 16)),
                seed=int(params.options.get("seed", 0)),
            )
            samples = stages.read_generations(snakemake.input.generations)
            records = stages.judge_records(samples, judge)
            method = {"assisted": "assisted"}
            records = [{"method": method.get(r["dataset"], "dynamo"), **r} for r in records]
        else:
            raise ValueError(f"unknown DynaMo stage {stage!r}")
        table = tidy_rows(
            [{"setting": setting, "seed": 0, **r} for r in records],
            paper="dynamo",
            experiment=stage,
            tier=params.tier,
            provenance=job.provenance(device=device_name(device)),
            model=snakemake.wildcards.model,
        )
        write_parquet(table, snakemake.output.rows)
