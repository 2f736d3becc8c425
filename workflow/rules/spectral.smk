# Spectral imbalance and class bias (ICML 2024): the Gaussian-mixture theory (exact per-class
# errors against Monte Carlo), per-class probe accuracy against per-class feature spectra for
# each encoder, and augmentation strategies' effect on spectra and gaps -> table -> figures.
# Code: src/repro/spectral/ (stages.py is what each rule runs; report.py figures and claims).
SPECTRAL = config.get("spectral_imbalance") or {}
if "spectral_imbalance" in PAPERS and not SPECTRAL:
    raise WorkflowError(
        "invalid config: 'papers' lists spectral_imbalance but the config has no "
        "'spectral_imbalance' section"
    )
SPECTRAL_RUNS = spectral_runs(SPECTRAL)
SPECTRAL_AUGMENT_RUNS = spectral_augment_runs(SPECTRAL)
SPECTRAL_FIGURES = ["synthetic", "encoders"] + (
    ["augmentation"] if SPECTRAL_AUGMENT_RUNS else []
)

PAPER_TABLES["spectral_imbalance"] = (
    ["results/spectral_imbalance/synthetic.parquet"]
    + [
        f"results/spectral_imbalance/encoders/{f}/s{s}.parquet"
        for f, s in SPECTRAL_RUNS
    ]
    + [
        f"results/spectral_imbalance/augmentation/{a}/s{s}.parquet"
        for a, s in SPECTRAL_AUGMENT_RUNS
    ]
)
PAPER_FIGURES["spectral_imbalance"] = expand(
    "results/figures/spectral_imbalance/{figure}.png", figure=SPECTRAL_FIGURES
)
PAPER_BENCHMARKS["spectral_imbalance"] = (
    ["benchmarks/spectral_synthetic/synthetic.tsv"]
    + [f"benchmarks/spectral_features/{f}/s{s}.tsv" for f, s in SPECTRAL_RUNS]
    + [f"benchmarks/spectral_encoder/{f}/s{s}.tsv" for f, s in SPECTRAL_RUNS]
    + [f"benchmarks/spectral_augment/{a}/s{s}.tsv" for a, s in SPECTRAL_AUGMENT_RUNS]
    + ["benchmarks/plot_spectral_imbalance/spectral_imbalance.tsv"]
    + (
        ["benchmarks/plot_spectral_augmentation/spectral_imbalance.tsv"]
        if SPECTRAL_AUGMENT_RUNS
        else []
    )
)


wildcard_constraints:
    feature_set="|".join(SPECTRAL.get("feature_sets", {})) or "(?!)",
    strategy="|".join((SPECTRAL.get("augmentation") or {}).get("strategies", {}))
    or "(?!)",


rule spectral_synthetic:
    output:
        rows="results/spectral_imbalance/synthetic.parquet",
    log:
        "logs/spectral_synthetic/synthetic.log",
    benchmark:
        "benchmarks/spectral_synthetic/synthetic.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        options=SPECTRAL.get("synthetic", {}),
        tier=TIER,
        code=code("repro.spectral.stages", "repro.spectral.synthetic"),
    script:
        "../scripts/spectral.py"


rule spectral_features:
    input:
        unpack(lambda wc: spectral_feature_inputs(wc.feature_set)),
    output:
        features="results/spectral_imbalance/features/{feature_set}/s{seed}.npz",
    log:
        "logs/spectral_features/{feature_set}/s{seed}.log",
    benchmark:
        "benchmarks/spectral_features/{feature_set}/s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        spec=lambda wc: spectral_feature_set(wc.feature_set),
        tier=TIER,
        code=code("repro.spectral.stages", "repro.spectral.features"),
    script:
        "../scripts/spectral.py"


rule spectral_encoder:
    input:
        features="results/spectral_imbalance/features/{feature_set}/s{seed}.npz",
    output:
        rows="results/spectral_imbalance/encoders/{feature_set}/s{seed}.parquet",
    log:
        "logs/spectral_encoder/{feature_set}/s{seed}.log",
    benchmark:
        "benchmarks/spectral_encoder/{feature_set}/s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        spec=lambda wc: spectral_feature_set(wc.feature_set),
        probe=SPECTRAL.get("probe", {}),
        tier=TIER,
        code=code("repro.spectral.stages"),
    script:
        "../scripts/spectral.py"


rule spectral_augment:
    input:
        unpack(spectral_augment_inputs),
    output:
        rows="results/spectral_imbalance/augmentation/{strategy}/s{seed}.parquet",
    log:
        "logs/spectral_augment/{strategy}/s{seed}.log",
    benchmark:
        "benchmarks/spectral_augment/{strategy}/s{seed}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        spec=lambda wc: spectral_feature_set(SPECTRAL["augmentation"]["feature_set"]),
        augmentation=SPECTRAL.get("augmentation", {}),
        probe=SPECTRAL.get("probe", {}),
        tier=TIER,
        code=code("repro.spectral.stages", "repro.spectral.augment"),
    script:
        "../scripts/spectral.py"


rule plot_spectral_imbalance:
    input:
        table="results/tables/spectral_imbalance.parquet",
    output:
        synthetic=report(
            "results/figures/spectral_imbalance/synthetic.png",
            caption="../report/spectral_synthetic.rst",
            category="Spectral imbalance",
            labels={"figure": "synthetic"},
        ),
        synthetic_pdf="results/figures/spectral_imbalance/synthetic.pdf",
        encoders=report(
            "results/figures/spectral_imbalance/encoders.png",
            caption="../report/spectral_encoders.rst",
            category="Spectral imbalance",
            labels={"figure": "encoders"},
        ),
        encoders_pdf="results/figures/spectral_imbalance/encoders.pdf",
    log:
        "logs/plot_spectral_imbalance/spectral_imbalance.log",
    benchmark:
        "benchmarks/plot_spectral_imbalance/spectral_imbalance.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.spectral.report"),
    script:
        "../scripts/plot_spectral_imbalance.py"


rule plot_spectral_augmentation:
    input:
        table="results/tables/spectral_imbalance.parquet",
    output:
        augmentation=report(
            "results/figures/spectral_imbalance/augmentation.png",
            caption="../report/spectral_augmentation.rst",
            category="Spectral imbalance",
            labels={"figure": "augmentation"},
        ),
        augmentation_pdf="results/figures/spectral_imbalance/augmentation.pdf",
    log:
        "logs/plot_spectral_augmentation/spectral_imbalance.log",
    benchmark:
        "benchmarks/plot_spectral_augmentation/spectral_imbalance.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.spectral.report"),
    script:
        "../scripts/plot_spectral_imbalance.py"
