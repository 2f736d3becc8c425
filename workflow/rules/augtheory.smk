# Data augmentation as implicit spectral regularisation (JMLR 2024): every experiment of the
# augmentation-theory notebooks (closed-form augmented estimators, bias-variance, classification,
# finite vs on-the-fly augmentation, SGD against the closed form) -> table -> one figure each.
# Code: src/repro/augtheory/ (experiments.py per experiment; report.py figures and claims).
AUGTHEORY = config.get("data_augmentation") or {}
if "data_augmentation" in PAPERS and not AUGTHEORY:
    raise WorkflowError(
        "invalid config: 'papers' lists data_augmentation but the config has no "
        "'data_augmentation' section"
    )
DA_EXPERIMENTS = list(AUGTHEORY.get("experiments", {}))
DA_FIGURES = augtheory_figures(AUGTHEORY)

PAPER_TABLES["data_augmentation"] = expand(
    "results/data_augmentation/{da_experiment}.parquet", da_experiment=DA_EXPERIMENTS
)
PAPER_FIGURES["data_augmentation"] = expand(
    "results/figures/data_augmentation/{da_figure}.png", da_figure=DA_FIGURES
)
PAPER_BENCHMARKS["data_augmentation"] = expand(
    "benchmarks/augtheory_experiment/{da_experiment}.tsv", da_experiment=DA_EXPERIMENTS
) + expand("benchmarks/plot_augtheory/{da_figure}.tsv", da_figure=DA_FIGURES)


wildcard_constraints:
    da_experiment="|".join(DA_EXPERIMENTS) or "(?!)",
    da_figure="|".join(DA_FIGURES) or "(?!)",


rule augtheory_experiment:
    output:
        rows="results/data_augmentation/{da_experiment}.parquet",
    log:
        "logs/augtheory_experiment/{da_experiment}.log",
    benchmark:
        "benchmarks/augtheory_experiment/{da_experiment}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        settings=lambda wc: AUGTHEORY["experiments"][wc.da_experiment] or {},
        seed=AUGTHEORY.get("seed", 1),
        tier=TIER,
        code=code("repro.augtheory.stages", "repro.augtheory.experiments"),
    script:
        "../scripts/augtheory.py"


rule plot_augtheory:
    input:
        table="results/tables/data_augmentation.parquet",
    output:
        png=report(
            "results/figures/data_augmentation/{da_figure}.png",
            caption="../report/augtheory_figure.rst",
            category="Data augmentation",
            labels={"figure": "{da_figure}"},
        ),
        pdf="results/figures/data_augmentation/{da_figure}.pdf",
    log:
        "logs/plot_augtheory/{da_figure}.log",
    benchmark:
        "benchmarks/plot_augtheory/{da_figure}.tsv"
    conda:
        "../../environment.yml"
    params:
        caption=augtheory_caption,
        code=code("repro.augtheory.report"),
    script:
        "../scripts/plot_augtheory.py"
