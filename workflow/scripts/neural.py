"""Rules neural_train, neural_evaluate and neural_images: one Swap-VAE / MYOW stage each (repro.neural.stages)."""

import os

import numpy as np
import pandas as pd

from repro.io import write_parquet
from repro.neural import stages
from repro.report.rows import tidy_rows
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params, rule, wc = snakemake.params, snakemake.rule, snakemake.wildcards
    options = dict(params.options)
    if rule == "neural_train":
        paper = wc.paper
        spec = params.data
        data = stages.load_trials(spec["loader"], spec.get("options", {}))
        job.log.info("%s: %d bins x %d units", wc.dataset, data.counts.shape[0], data.n_units)
        arrays, records = stages.train_neural(data, wc.method, wc.dataset, options)
        # np.savez appends ".npz" to names without it; write to a temporary name and move.
        tmp = snakemake.output.reps + ".tmp.npz"
        np.savez(tmp, **arrays)
        os.replace(tmp, snakemake.output.reps)
    elif rule == "neural_evaluate":
        paper = wc.paper
        with np.load(snakemake.input.reps) as npz:
            arrays = {k: npz[k] for k in npz.files}
        try:
            records = stages.evaluate_neural(arrays, wc.method, wc.dataset, options)
        except ValueError as err:
            raise ValueError(f"{snakemake.input.reps}: {err}") from err
    else:  # neural_images
        paper = "myow"
        with np.load(snakemake.input.images) as npz:
            arrays = {k: npz[k] for k in npz.files}
        try:
            records = stages.image_records(arrays, wc.method, wc.image_set, options)
        except ValueError as err:
            raise ValueError(f"{snakemake.input.images}: {err}") from err
    default_experiment = {"neural_train": "training", "neural_evaluate": "decoding", "neural_images": "images"}[rule]
    by_experiment = {}
    for rec in records:
        by_experiment.setdefault(rec.get("experiment", default_experiment), []).append(rec)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    provenance = job.provenance(device=device)
    tables = [
        tidy_rows(recs, paper=paper, experiment=exp, tier=params.tier, provenance=provenance)
        for exp, recs in sorted(by_experiment.items())
    ]
    table = (
        pd.concat(tables, ignore_index=True)
        if tables
        else tidy_rows([], paper=paper, experiment=default_experiment, tier=params.tier, provenance=provenance)
    )
    write_parquet(table, snakemake.output.rows)
