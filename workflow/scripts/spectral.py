"""Rules spectral_{synthetic,features,encoder,augment}: one spectral-imbalance stage each (repro.spectral.stages)."""

from repro.io import write_parquet
from repro.report.rows import tidy_rows, tidy_rows_by_experiment
from repro.spectral import stages
from repro.workflow.script import job_context

with job_context(snakemake) as job:  # noqa: F821
    import torch

    torch.set_num_threads(snakemake.threads)
    params, stage = snakemake.params, snakemake.rule.removeprefix("spectral_")
    wc = snakemake.wildcards
    if stage == "features":
        stages.build_feature_set(
            params.spec,
            data=snakemake.input.data,
            artifact=snakemake.input.get("artifact"),
            seed=int(wc.seed),
            output=snakemake.output.features,
        )
    else:
        if stage == "synthetic":
            records, experiment = stages.synthetic_records(params.options), None
        elif stage == "encoder":
            from repro.spectral.features import load_features

            features = load_features(snakemake.input.features)
            records = stages.encoder_records(
                features, feature_set=wc.feature_set, spec=params.spec, probe=params.probe, seed=int(wc.seed)
            )
            experiment = "encoders"
        else:
            aug = params.augmentation
            records = stages.augmentation_records(
                wc.strategy,
                aug["strategies"][wc.strategy],
                spec=params.spec,
                data=snakemake.input.data,
                artifact=snakemake.input.get("artifact"),
                seed=int(wc.seed),
                n_copies=int(aug.get("n_copies", 2)),
                mode=aug.get("mode", "expand"),
                classes=aug.get("classes"),
                probe=params.probe,
            )
            experiment = "augmentation"
        kwargs = dict(paper="spectral_imbalance", tier=params.tier, provenance=job.provenance(device="cpu"))
        if experiment is None:  # synthetic: one experiment name per record
            table = tidy_rows_by_experiment(records, dataset="gaussian_mixture", **kwargs)
        else:
            table = tidy_rows(records, experiment=experiment, **kwargs)
        write_parquet(table, snakemake.output.rows)
