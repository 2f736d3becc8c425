# Half-Hop (ICML 2023): slow-node graph upsampling.  Per graph of halfhop.graphs: statistics,
# the supervised sweep (GCN/SAGE/GAT with and without Half-Hop), cost (materialised vs lean first
# layer) and self-supervised BGRL/GRACE; per homophily value a contextual-SBM sweep -> table ->
# figures.  Code: src/repro/graphs/ (stages.py is what each rule runs; report.py figures and claims).
HALFHOP = config.get("halfhop") or {}
if "halfhop" in PAPERS and not HALFHOP:
    raise WorkflowError(
        "invalid config: 'papers' lists halfhop but the config has no 'halfhop' section"
    )
HALFHOP_GRAPHS = HALFHOP.get("graphs", {})
HALFHOP_STAGES = ["supervised", "cost", "ssl"]
HALFHOP_SWEEP = [
    f"{h:.2f}" for h in HALFHOP.get("homophily_sweep", {}).get("homophily", [])
]
HALFHOP_FIGURES = ["gain_vs_homophily", "supervised", "cost", "ssl"]

PAPER_TABLES["halfhop"] = (
    expand("results/halfhop/{graph}/graph.parquet", graph=HALFHOP_GRAPHS)
    + [
        f"results/halfhop/{graph}/{stage}.parquet"
        for stage in HALFHOP_STAGES
        for graph in halfhop_stage_graphs(HALFHOP, stage)
    ]
    + expand("results/halfhop/sweep/h{homophily}.parquet", homophily=HALFHOP_SWEEP)
)
PAPER_FIGURES["halfhop"] = expand(
    "results/figures/halfhop/{figure}.png", figure=HALFHOP_FIGURES
)
PAPER_BENCHMARKS["halfhop"] = (
    expand("benchmarks/halfhop_graph/{graph}.tsv", graph=HALFHOP_GRAPHS)
    + [
        f"benchmarks/halfhop_{stage}/{graph}.tsv"
        for stage in HALFHOP_STAGES
        for graph in halfhop_stage_graphs(HALFHOP, stage)
    ]
    + expand("benchmarks/halfhop_sweep/h{homophily}.tsv", homophily=HALFHOP_SWEEP)
    + ["benchmarks/plot_halfhop/halfhop.tsv"]
)


rule halfhop_graph:
    input:
        unpack(halfhop_graph_inputs),
    output:
        rows="results/halfhop/{graph}/graph.parquet",
    log:
        "logs/halfhop_graph/{graph}.log",
    benchmark:
        "benchmarks/halfhop_graph/{graph}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        graph=lambda wc: halfhop_graph_spec(wc.graph),
        options={},
        tier=TIER,
        code=code("repro.graphs.stages", "repro.graphs.datasets"),
    script:
        "../scripts/halfhop.py"


rule halfhop_supervised:
    input:
        unpack(halfhop_graph_inputs),
    output:
        rows="results/halfhop/{graph}/supervised.parquet",
    log:
        "logs/halfhop_supervised/{graph}.log",
    benchmark:
        "benchmarks/halfhop_supervised/{graph}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        graph=lambda wc: halfhop_graph_spec(wc.graph),
        options=halfhop_stage_options(HALFHOP, "supervised"),
        tier=TIER,
        code=code("repro.graphs.stages", "repro.graphs.datasets"),
    script:
        "../scripts/halfhop.py"


rule halfhop_cost:
    input:
        unpack(halfhop_graph_inputs),
    output:
        rows="results/halfhop/{graph}/cost.parquet",
    log:
        "logs/halfhop_cost/{graph}.log",
    benchmark:
        "benchmarks/halfhop_cost/{graph}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        graph=lambda wc: halfhop_graph_spec(wc.graph),
        options=halfhop_stage_options(HALFHOP, "cost"),
        tier=TIER,
        code=code("repro.graphs.stages", "repro.graphs.datasets"),
    script:
        "../scripts/halfhop.py"


rule halfhop_ssl:
    input:
        unpack(halfhop_graph_inputs),
    output:
        rows="results/halfhop/{graph}/ssl.parquet",
    log:
        "logs/halfhop_ssl/{graph}.log",
    benchmark:
        "benchmarks/halfhop_ssl/{graph}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        graph=lambda wc: halfhop_graph_spec(wc.graph),
        options=halfhop_stage_options(HALFHOP, "ssl"),
        tier=TIER,
        code=code("repro.graphs.stages", "repro.graphs.datasets"),
    script:
        "../scripts/halfhop.py"


rule halfhop_sweep:
    output:
        rows="results/halfhop/sweep/h{homophily}.parquet",
    log:
        "logs/halfhop_sweep/h{homophily}.log",
    benchmark:
        "benchmarks/halfhop_sweep/h{homophily}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    params:
        options=lambda wc: {
            **HALFHOP.get("homophily_sweep", {}),
            "homophily": [float(wc.homophily)],
        },
        tier=TIER,
        code=code("repro.graphs.stages"),
    script:
        "../scripts/halfhop.py"


rule plot_halfhop:
    input:
        table="results/tables/halfhop.parquet",
    output:
        gain_vs_homophily=report(
            "results/figures/halfhop/gain_vs_homophily.png",
            caption="../report/halfhop_gain_vs_homophily.rst",
            category="Half-Hop",
            labels={"figure": "gain vs homophily"},
        ),
        supervised=report(
            "results/figures/halfhop/supervised.png",
            caption="../report/halfhop_supervised.rst",
            category="Half-Hop",
            labels={"figure": "supervised accuracy"},
        ),
        cost=report(
            "results/figures/halfhop/cost.png",
            caption="../report/halfhop_cost.rst",
            category="Half-Hop",
            labels={"figure": "cost per epoch"},
        ),
        ssl=report(
            "results/figures/halfhop/ssl.png",
            caption="../report/halfhop_ssl.rst",
            category="Half-Hop",
            labels={"figure": "self-supervised probe"},
        ),
        pdfs=expand("results/figures/halfhop/{figure}.pdf", figure=HALFHOP_FIGURES),
    log:
        "logs/plot_halfhop/halfhop.log",
    benchmark:
        "benchmarks/plot_halfhop/halfhop.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.graphs.report"),
    script:
        "../scripts/plot_halfhop.py"
