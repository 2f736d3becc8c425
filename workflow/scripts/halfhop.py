"""Rules halfhop_{graph,supervised,cost,ssl,sweep}: one Half-Hop stage each (repro.graphs.stages)."""

from repro.graphs import stages
from repro.graphs.datasets import load_graph
from repro.io import write_parquet
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params, stage = snakemake.params, snakemake.rule.removeprefix("halfhop_")
    options = dict(params.options)
    if stage == "sweep":
        records = stages.homophily_sweep_records(options)
        experiment = "homophily_sweep"
    else:
        name = snakemake.wildcards.graph
        spec = params.graph
        data = load_graph(spec["loader"], "resources", spec.get("options", {}))
        job.log.info("graph %s: %s", name, data.stats)
        run = {
            "graph": lambda: stages.graph_records(data, name),
            "supervised": lambda: stages.supervised_records(data, name, options),
            "cost": lambda: stages.cost_records(data, name, options),
            "ssl": lambda: stages.ssl_records_for(data, name, options),
        }
        records = run[stage]()
        experiment = "graphs" if stage == "graph" else stage
    device = "cuda" if torch.cuda.is_available() else "cpu"
    table = tidy_rows(
        records, paper="halfhop", experiment=experiment, tier=params.tier, provenance=job.provenance(device=device)
    )
    write_parquet(table, snakemake.output.rows)
