# The two optimisation-theory papers: stochastic momentum escaping saddles (ICLR 2020)
# and Heavy Ball acceleration beyond quadratics (ICML 2022).  Code: src/repro/optim/.

SADDLE = config["stochastic_momentum"]["problems"]
TOY_PROBLEMS = [p for p, s in SADDLE.items() if s["objective"] == "toy_saddle"]
HB_FUNCTIONS = config["heavy_ball"]["functions"]

PAPER_TABLES["stochastic_momentum"] = expand(
    "results/optim/stochastic_momentum/{problem}/metrics.parquet", problem=SADDLE
)
PAPER_FIGURES["stochastic_momentum"] = (
    expand(
        "results/figures/stochastic_momentum/{problem}_{kind}.png",
        problem=SADDLE,
        kind=["curves", "diagnostics"],
    )
    + expand(
        "results/figures/stochastic_momentum/{problem}_trajectories.png",
        problem=TOY_PROBLEMS,
    )
    + ["results/figures/stochastic_momentum/escape_time.png"]
)
PAPER_BENCHMARKS["stochastic_momentum"] = (
    expand("benchmarks/simulate_saddle/{problem}.tsv", problem=SADDLE)
    + expand("benchmarks/plot_saddle_problem/{problem}.tsv", problem=SADDLE)
    + expand("benchmarks/plot_toy_trajectories/{problem}.tsv", problem=TOY_PROBLEMS)
    + ["benchmarks/plot_escape_times/stochastic_momentum.tsv"]
)
PAPER_TABLES["heavy_ball"] = expand(
    "results/optim/heavy_ball/{function}/metrics.parquet", function=HB_FUNCTIONS
)
PAPER_FIGURES["heavy_ball"] = [
    "results/figures/heavy_ball/iterations_vs_kappa.png",
    "results/figures/heavy_ball/convergence.png",
]
PAPER_BENCHMARKS["heavy_ball"] = expand(
    "benchmarks/sweep_heavy_ball/{function}.tsv", function=HB_FUNCTIONS
) + ["benchmarks/plot_heavy_ball/heavy_ball.tsv"]


wildcard_constraints:
    problem="|".join(SADDLE),
    toy="|".join(TOY_PROBLEMS) or "(?!)",
    function="|".join(HB_FUNCTIONS),


rule simulate_saddle:
    output:
        metrics="results/optim/stochastic_momentum/{problem}/metrics.parquet",
        traces="results/optim/stochastic_momentum/{problem}/traces.parquet",
    log:
        "logs/simulate_saddle/{problem}.log",
    benchmark:
        "benchmarks/simulate_saddle/{problem}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        setting=lambda wc: SADDLE[wc.problem],
        tier=TIER,
        code=code("repro.optim.saddle_experiment"),
    script:
        "../scripts/simulate_saddle.py"


rule plot_saddle_problem:
    input:
        traces="results/optim/stochastic_momentum/{problem}/traces.parquet",
    output:
        curves=report(
            "results/figures/stochastic_momentum/{problem}_curves.png",
            caption="../report/saddle_curves.rst",
            category="Stochastic momentum",
            labels={"problem": "{problem}", "figure": "curves"},
        ),
        curves_pdf="results/figures/stochastic_momentum/{problem}_curves.pdf",
        diagnostics=report(
            "results/figures/stochastic_momentum/{problem}_diagnostics.png",
            caption="../report/saddle_diagnostics.rst",
            category="Stochastic momentum",
            labels={"problem": "{problem}", "figure": "diagnostics"},
        ),
        diagnostics_pdf="results/figures/stochastic_momentum/{problem}_diagnostics.pdf",
    log:
        "logs/plot_saddle_problem/{problem}.log",
    benchmark:
        "benchmarks/plot_saddle_problem/{problem}.tsv"
    conda:
        "../../environment.yml"
    params:
        diagnostics=lambda wc: SADDLE[wc.problem]["diagnostics"],
        code=code("repro.optim.saddle_figures"),
    script:
        "../scripts/plot_saddle_problem.py"


rule plot_toy_trajectories:
    input:
        traces="results/optim/stochastic_momentum/{toy}/traces.parquet",
    output:
        png=report(
            "results/figures/stochastic_momentum/{toy}_trajectories.png",
            caption="../report/saddle_trajectories.rst",
            category="Stochastic momentum",
            labels={"problem": "{toy}", "figure": "trajectories"},
        ),
        pdf="results/figures/stochastic_momentum/{toy}_trajectories.pdf",
    log:
        "logs/plot_toy_trajectories/{toy}.log",
    benchmark:
        "benchmarks/plot_toy_trajectories/{toy}.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.optim.saddle_figures"),
    script:
        "../scripts/plot_toy_trajectories.py"


rule plot_escape_times:
    input:
        table="results/tables/stochastic_momentum.parquet",
    output:
        png=report(
            "results/figures/stochastic_momentum/escape_time.png",
            caption="../report/escape_time.rst",
            category="Stochastic momentum",
            labels={"problem": "all", "figure": "escape time"},
        ),
        pdf="results/figures/stochastic_momentum/escape_time.pdf",
    log:
        "logs/plot_escape_times/stochastic_momentum.log",
    benchmark:
        "benchmarks/plot_escape_times/stochastic_momentum.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.optim.saddle_figures"),
    script:
        "../scripts/plot_escape_times.py"


rule sweep_heavy_ball:
    output:
        metrics="results/optim/heavy_ball/{function}/metrics.parquet",
        traces="results/optim/heavy_ball/{function}/traces.parquet",
    log:
        "logs/sweep_heavy_ball/{function}.log",
    benchmark:
        "benchmarks/sweep_heavy_ball/{function}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        setting=lambda wc: HB_FUNCTIONS[wc.function],
        tier=TIER,
        code=code("repro.optim.heavy_ball_experiment"),
    script:
        "../scripts/sweep_heavy_ball.py"


rule plot_heavy_ball:
    input:
        table="results/tables/heavy_ball.parquet",
        traces=expand(
            "results/optim/heavy_ball/{function}/traces.parquet", function=HB_FUNCTIONS
        ),
    output:
        scaling=report(
            "results/figures/heavy_ball/iterations_vs_kappa.png",
            caption="../report/hb_iterations_vs_kappa.rst",
            category="Heavy Ball",
            labels={"figure": "iterations vs kappa"},
        ),
        scaling_pdf="results/figures/heavy_ball/iterations_vs_kappa.pdf",
        convergence=report(
            "results/figures/heavy_ball/convergence.png",
            caption="../report/hb_convergence.rst",
            category="Heavy Ball",
            labels={"figure": "convergence"},
        ),
        convergence_pdf="results/figures/heavy_ball/convergence.pdf",
    log:
        "logs/plot_heavy_ball/heavy_ball.log",
    benchmark:
        "benchmarks/plot_heavy_ball/heavy_ball.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.optim.heavy_ball_figures"),
    script:
        "../scripts/plot_heavy_ball.py"
