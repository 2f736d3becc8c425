# Swap-VAE (NeurIPS 2021) and MYOW (2021): self-supervised representations of neural activity.
# Per paper in (swap_vae, myow), dataset of its `datasets`, model of its `models` and seed:
# neural_train (representations of every bin + training curves) -> neural_evaluate (direction,
# velocity and kNN decoding, or state decoding for labelled-state data such as MYOW's rodent sleep
# recording; content/style decoding for Swap-VAE); MYOW also trains on images
# (neural_images).  Figures per paper.  Code: src/repro/neural/ (stages.py is what each rule runs,
# report.py figures and claims).
NEURAL_DATA = config.get("neural_data") or {}
NEURAL_PAPERS = [p for p in ("swap_vae", "myow") if p in PAPERS]
check_neural_config(config, NEURAL_PAPERS, NEURAL_DATA)
NEURAL_FIGURES = ["decoding", "training", "embeddings"]

for _paper in NEURAL_PAPERS:
    PAPER_TABLES[_paper] = neural_tables(config, _paper)
    PAPER_FIGURES[_paper] = expand(
        "results/figures/{paper}/{figure}.png",
        paper=_paper,
        figure=NEURAL_FIGURES + neural_image_figures(config, _paper),
    )
    PAPER_BENCHMARKS[_paper] = neural_benchmarks(config, _paper)


rule neural_train:
    input:
        unpack(neural_data_inputs),
    output:
        reps="results/{paper}/{dataset}/{method}/s{seed}/representations.npz",
        rows="results/{paper}/{dataset}/{method}/s{seed}/training.parquet",
    log:
        "logs/neural_train/{paper}/{dataset}/{method}/s{seed}.log",
    benchmark:
        "benchmarks/neural_train/{paper}/{dataset}/{method}/s{seed}.tsv"
    wildcard_constraints:
        paper="swap_vae|myow",
        seed=r"\d+",
    conda:
        "../../environment.yml"
    threads: 1
    params:
        data=lambda wc: NEURAL_DATA[wc.dataset],
        options=lambda wc: {
            **neural_train_options(config, wc.paper, wc.method, wc.dataset),
            "seed": int(wc.seed),
        },
        tier=TIER,
        code=code("repro.neural.stages"),
    script:
        "../scripts/neural.py"


rule neural_evaluate:
    input:
        reps="results/{paper}/{dataset}/{method}/s{seed}/representations.npz",
    output:
        rows="results/{paper}/{dataset}/{method}/s{seed}/decoding.parquet",
    log:
        "logs/neural_evaluate/{paper}/{dataset}/{method}/s{seed}.log",
    benchmark:
        "benchmarks/neural_evaluate/{paper}/{dataset}/{method}/s{seed}.tsv"
    wildcard_constraints:
        paper="swap_vae|myow",
        seed=r"\d+",
    conda:
        "../../environment.yml"
    threads: 1
    params:
        options=lambda wc: config[wc.paper].get("evaluate", {}),
        tier=TIER,
        code=code("repro.neural.stages"),
    script:
        "../scripts/neural.py"


rule neural_images:
    input:
        images=lambda wc: config["myow"]["images"]["datasets"][wc.image_set],
    output:
        rows="results/myow/images/{image_set}/{method}/s{seed}.parquet",
    log:
        "logs/neural_images/{image_set}/{method}/s{seed}.log",
    benchmark:
        "benchmarks/neural_images/{image_set}/{method}/s{seed}.tsv"
    wildcard_constraints:
        seed=r"\d+",
    conda:
        "../../environment.yml"
    threads: 1
    params:
        options=lambda wc: {
            **config["myow"]["images"].get("train", {}),
            "seed": int(wc.seed),
        },
        tier=TIER,
        code=code("repro.neural.stages"),
    script:
        "../scripts/neural.py"


rule plot_neural:
    input:
        table="results/tables/{paper}.parquet",
        reps=lambda wc: neural_rep_files(config, wc.paper),
    output:
        decoding=report(
            "results/figures/{paper}/decoding.png",
            caption="../report/neural_decoding.rst",
            category="{paper}",
            labels={"figure": "decoding"},
        ),
        training=report(
            "results/figures/{paper}/training.png",
            caption="../report/neural_training.rst",
            category="{paper}",
            labels={"figure": "training curves"},
        ),
        embeddings=report(
            "results/figures/{paper}/embeddings.png",
            caption="../report/neural_embeddings.rst",
            category="{paper}",
            labels={"figure": "embeddings"},
        ),
        pdfs=expand("results/figures/{{paper}}/{figure}.pdf", figure=NEURAL_FIGURES),
    log:
        "logs/plot_neural/{paper}.log",
    benchmark:
        "benchmarks/plot_neural/{paper}.tsv"
    wildcard_constraints:
        paper="swap_vae|myow",
    conda:
        "../../environment.yml"
    params:
        code=code("repro.neural.report"),
    script:
        "../scripts/plot_neural.py"


rule plot_myow_images:
    input:
        table="results/tables/myow.parquet",
    output:
        images=report(
            "results/figures/myow/images.png",
            caption="../report/neural_images.rst",
            category="myow",
            labels={"figure": "images"},
        ),
        pdf="results/figures/myow/images.pdf",
    log:
        "logs/plot_myow_images/myow.log",
    benchmark:
        "benchmarks/plot_myow_images/myow.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.neural.report"),
    script:
        "../scripts/plot_neural.py"
