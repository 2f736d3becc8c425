"""Rules spectral_{synthetic,features,encoder,augment}: one spectral-imbalance stage each (repro.spectral.stages)."""

from repro.io import write_parquet
from repro.report.rows import tidy_rows
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
        provenance = job.provenance(device="cpu")
        if experiment is None:  # synthetic: one experiment name per record
            import pandas as pd

            by_experiment = {}
            for r in records:
                by_experiment.setdefault(r["experiment"], []).append(r)
            table = pd.concat(
                [
                    tidy_rows(
                        rs,
                        paper="spectral_imbalance",
                        experiment=name,
                        tier=params.tier,
                        provenance=provenance,
                        dataset="gaussian_mixture",
                    )
                    for name, rs in by_experiment.items()
                ],
                ignore_index=True,
            )
        else:
            table = tidy_rows(
                records, paper="spectral_imbalance", experiment=experiment, tier=params.tier, provenance=provenance
            )
        write_parquet(table, snakemake.output.rows)
