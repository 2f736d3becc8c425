# The results contract: per-paper and overall tables, claims, runtime, HTML views.
# Code: src/repro/report/.


wildcard_constraints:
    paper="|".join(CLAIM_FUNCTIONS),


rule aggregate_paper:
    input:
        lambda wc: PAPER_TABLES[wc.paper],
    output:
        "results/tables/{paper}.parquet",
    log:
        "logs/aggregate_paper/{paper}.log",
    benchmark:
        "benchmarks/aggregate_paper/{paper}.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.report.aggregate"),
    script:
        "../scripts/aggregate_tables.py"


rule aggregate_all:
    input:
        expand("results/tables/{paper}.parquet", paper=PAPERS),
    output:
        "results/tables/all.parquet",
    log:
        "logs/aggregate_all/all.log",
    benchmark:
        "benchmarks/aggregate_all/all.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.report.aggregate"),
    script:
        "../scripts/aggregate_tables.py"


rule compute_claims:
    input:
        table="results/tables/{paper}.parquet",
        extra=lambda wc: [
            f"results/tables/{p}.parquet" for p in CLAIM_EXTRA_TABLES.get(wc.paper, [])
        ],
    output:
        "results/claims/{paper}.parquet",
    log:
        "logs/compute_claims/{paper}.log",
    benchmark:
        "benchmarks/compute_claims/{paper}.tsv"
    conda:
        "../../environment.yml"
    params:
        tier=TIER,
        code=lambda wc: code(
            "repro.report.claims", CLAIM_FUNCTIONS[wc.paper].split(":")[0]
        ),
    script:
        "../scripts/compute_claims.py"


rule collect_claims:
    input:
        expand("results/claims/{paper}.parquet", paper=PAPERS),
    output:
        table="results/tables/claims.parquet",
        html=report(
            "results/tables/claims.html",
            caption="../report/claims.rst",
            category="Tables",
            labels={"table": "claims"},
        ),
    log:
        "logs/collect_claims/claims.log",
    benchmark:
        "benchmarks/collect_claims/claims.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.report.claims", "repro.report.html"),
    script:
        "../scripts/collect_claims.py"


rule collect_runtime:
    input:
        DATA_BENCHMARKS,
        [b for paper in PAPERS for b in PAPER_BENCHMARKS[paper]],
        expand("benchmarks/aggregate_paper/{paper}.tsv", paper=PAPERS),
        expand("benchmarks/compute_claims/{paper}.tsv", paper=PAPERS),
        "benchmarks/aggregate_all/all.tsv",
        "benchmarks/collect_claims/claims.tsv",
    output:
        table="results/tables/runtime.parquet",
        html=report(
            "results/tables/runtime.html",
            caption="../report/runtime.rst",
            category="Tables",
            labels={"table": "runtime"},
        ),
    log:
        "logs/collect_runtime/runtime.log",
    benchmark:
        "benchmarks/collect_runtime/runtime.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.report.runtime", "repro.report.html"),
    script:
        "../scripts/collect_runtime.py"


rule results_readme:
    """README.md beside the tables and the report's provenance page (tier, provenance, claims summary, files)."""
    input:
        tables=expand("results/tables/{paper}.parquet", paper=PAPERS),
        all="results/tables/all.parquet",
        claims="results/tables/claims.parquet",
        runtime="results/tables/runtime.parquet",
    output:
        readme="results/tables/README.md",
        html=report(
            "results/tables/provenance.html",
            caption="../report/provenance.rst",
            category="Tables",
            labels={"table": "provenance"},
        ),
    log:
        "logs/results_readme/readme.log",
    benchmark:
        "benchmarks/results_readme/readme.tsv"
    conda:
        "../../environment.yml"
    params:
        tier=TIER,
        code=code("repro.report.results_readme"),
    script:
        "../scripts/results_readme.py"


rule paper:
    """Everything one paper produces: `snakemake --cores all results/papers/<paper>.done`."""
    input:
        lambda wc: [
            f"results/tables/{wc.paper}.parquet",
            f"results/claims/{wc.paper}.parquet",
        ]
        + PAPER_FIGURES[wc.paper],
    output:
        touch("results/papers/{paper}.done"),
    log:
        "logs/paper/{paper}.log",
    localrule: True
