# LLM compression substrate and baselines (SliceGPT, Wanda, SparseGPT, ShortGPT, SVD-LLM),
# shared by DISP-LLM and MoDeGPT.  prepared model -> calibrate -> compress (one job per run) -> params / perplexity /
# zero-shot / speed -> paper table -> figures.  Code: src/repro/llm/ (stages.py is what each
# rule runs; runs.py expands the config's methods and targets into the {run} wildcard and
# run_calibration.py gives each run its method's calibration set, `calibrate_with`).
import re

from repro.llm.run_calibration import expand_runs_with_calibration

LLM = config.get("llm_compression") or {}
if "llm_compression" in PAPERS and not LLM:
    raise WorkflowError(
        "invalid config: 'papers' lists llm_compression but the config has no 'llm_compression' section"
    )
try:
    LLM_RUNS = expand_runs_with_calibration(LLM) if LLM else {}
except ValueError as err:
    raise WorkflowError(f"invalid config: {err}") from None
LLM_MODELS = LLM.get("models", {})
LLM_CALIBRATION = LLM.get("calibration", {})
LLM_CALIB = LLM.get("compress_with")
LLM_EVALS = ["params", "perplexity", "zeroshot", "speed"]
LLM_FIGURES = ["perplexity", "zeroshot", "speed"]
if LLM and LLM_CALIB not in LLM_CALIBRATION:
    raise WorkflowError(
        f"invalid config: llm_compression.compress_with is {LLM_CALIB!r}, which is not a key of "
        f"llm_compression.calibration ({sorted(LLM_CALIBRATION)})"
    )

PAPER_TABLES["llm_compression"] = expand(
    "results/llm/{model}/calibration/{calibration}.parquet",
    model=LLM_MODELS,
    calibration=LLM_CALIBRATION,
) + expand(
    "results/llm/{model}/eval/{run}/{evaluation}.parquet",
    model=LLM_MODELS,
    run=LLM_RUNS,
    evaluation=LLM_EVALS,
)
PAPER_FIGURES["llm_compression"] = expand(
    "results/figures/llm_compression/{figure}.png", figure=LLM_FIGURES
)
PAPER_BENCHMARKS["llm_compression"] = (
    expand(
        "benchmarks/calibrate_llm/{model}/{calibration}.tsv",
        model=LLM_MODELS,
        calibration=LLM_CALIBRATION,
    )
    + expand(
        "benchmarks/compress_llm/{model}/{run}.tsv",
        model=LLM_MODELS,
        run=[r for r in LLM_RUNS if r != "dense"],
    )
    + expand(
        "benchmarks/evaluate_llm_{evaluation}/{model}/{run}.tsv",
        model=LLM_MODELS,
        run=LLM_RUNS,
        evaluation=LLM_EVALS,
    )
    + ["benchmarks/plot_llm_compression/llm_compression.tsv"]
)


wildcard_constraints:
    model="|".join(LLM_MODELS) or "(?!)",
    run="|".join(re.escape(r) for r in LLM_RUNS) or "(?!)",
    calibration="|".join(LLM_CALIBRATION) or "(?!)",


rule calibrate_llm:
    input:
        model=lambda wc: LLM_MODELS[wc.model]["path"],
        text=lambda wc: LLM_CALIBRATION[wc.calibration]["text"],
    output:
        statistics="results/llm/{model}/calibration/{calibration}.safetensors",
        table="results/llm/{model}/calibration/{calibration}.parquet",
    log:
        "logs/calibrate_llm/{model}/{calibration}.log",
    benchmark:
        "benchmarks/calibrate_llm/{model}/{calibration}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=device_gpus(LLM),
        mem_mb=model_stage_mem_mb("calibrate"),
        runtime=model_stage_runtime("calibrate"),
    params:
        options=lambda wc: llm_calibration_options(wc.calibration),
        dtype=lambda wc: LLM_MODELS[wc.model].get("dtype", "float32"),
        device=LLM.get("device", "auto"),
        tier=TIER,
        code=code("repro.llm.stages"),
    script:
        "../scripts/calibrate_llm.py"


rule compress_llm:
    input:
        model=lambda wc: LLM_MODELS[wc.model]["path"],
        statistics=llm_run_statistics,
        text=lambda wc: LLM_CALIBRATION[llm_run_calibration(wc.run)]["text"],
    output:
        model=directory("results/llm/{model}/models/{run}"),
    log:
        "logs/compress_llm/{model}/{run}.log",
    benchmark:
        "benchmarks/compress_llm/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=device_gpus(LLM),
        mem_mb=model_stage_mem_mb("compress"),
        runtime=model_stage_runtime("compress"),
    params:
        spec=lambda wc: LLM_RUNS[wc.run],
        calibration=lambda wc: llm_calibration_options(llm_run_calibration(wc.run)),
        dtype=lambda wc: LLM_MODELS[wc.model].get("dtype", "float32"),
        device=LLM.get("device", "auto"),
        code=lambda wc: code(
            "repro.llm.stages", f"repro.llm.methods.{LLM_RUNS[wc.run]['method']}"
        ),
    script:
        "../scripts/compress_llm.py"


rule evaluate_llm_params:
    input:
        dense=lambda wc: LLM_MODELS[wc.model]["path"],
        model=llm_model_dir,
    output:
        "results/llm/{model}/eval/{run}/params.parquet",
    log:
        "logs/evaluate_llm_params/{model}/{run}.log",
    benchmark:
        "benchmarks/evaluate_llm_params/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: 1
    resources:
        mem_mb=model_stage_mem_mb("params"),
        runtime=model_stage_runtime("params"),
    params:
        spec=lambda wc: LLM_RUNS[wc.run],
        setting=llm_setting,
        dtype=lambda wc: LLM_MODELS[wc.model].get("dtype", "float32"),
        tier=TIER,
        code=code("repro.llm.stages"),
    script:
        "../scripts/evaluate_llm.py"


rule evaluate_llm_perplexity:
    input:
        model=llm_model_dir,
        texts=[d["text"] for d in LLM.get("perplexity", {}).values()],
    output:
        "results/llm/{model}/eval/{run}/perplexity.parquet",
    log:
        "logs/evaluate_llm_perplexity/{model}/{run}.log",
    benchmark:
        "benchmarks/evaluate_llm_perplexity/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: 1  # at 2 threads these jobs kept 0.7-0.9 cores busy (benchmark cpu_time / s): run two side by side
    resources:
        gpu=device_gpus(LLM),
        mem_mb=model_stage_mem_mb("perplexity"),
        runtime=model_stage_runtime("perplexity"),
    params:
        spec=lambda wc: LLM_RUNS[wc.run],
        setting=llm_setting,
        options=LLM.get("perplexity", {}),
        dtype=lambda wc: LLM_MODELS[wc.model].get("dtype", "float32"),
        device=LLM.get("device", "auto"),
        tier=TIER,
        code=code("repro.llm.stages", "repro.llm.eval.perplexity"),
    script:
        "../scripts/evaluate_llm.py"


rule evaluate_llm_zeroshot:
    input:
        model=llm_model_dir,
        tasks=llm_task_files(),
    output:
        "results/llm/{model}/eval/{run}/zeroshot.parquet",
    log:
        "logs/evaluate_llm_zeroshot/{model}/{run}.log",
    benchmark:
        "benchmarks/evaluate_llm_zeroshot/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: 1  # at 2 threads these jobs kept 0.7-0.9 cores busy (benchmark cpu_time / s): run two side by side
    resources:
        gpu=device_gpus(LLM),
        mem_mb=model_stage_mem_mb("zeroshot"),
        runtime=model_stage_runtime("zeroshot"),
    params:
        spec=lambda wc: LLM_RUNS[wc.run],
        setting=llm_setting,
        options=LLM.get("zeroshot", {}),
        dtype=lambda wc: LLM_MODELS[wc.model].get("dtype", "float32"),
        device=LLM.get("device", "auto"),
        tier=TIER,
        code=code("repro.llm.stages", "repro.llm.eval.zeroshot"),
    script:
        "../scripts/evaluate_llm.py"


rule evaluate_llm_speed:
    input:
        dense=lambda wc: LLM_MODELS[wc.model]["path"],
        model=llm_model_dir,
    output:
        "results/llm/{model}/eval/{run}/speed.parquet",
    log:
        "logs/evaluate_llm_speed/{model}/{run}.log",
    benchmark:
        "benchmarks/evaluate_llm_speed/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    threads: 2
    resources:
        gpu=device_gpus(LLM),
        mem_mb=model_stage_mem_mb("speed"),
        runtime=model_stage_runtime("speed"),
    params:
        spec=lambda wc: LLM_RUNS[wc.run],
        setting=llm_setting,
        options=LLM.get("speed", {}),
        dtype=lambda wc: LLM_MODELS[wc.model].get(
            "speed_dtype", LLM_MODELS[wc.model].get("dtype", "float32")
        ),
        device=LLM.get("device", "auto"),
        tier=TIER,
        code=code("repro.llm.stages", "repro.llm.eval.speed"),
    script:
        "../scripts/evaluate_llm.py"


rule plot_llm_compression:
    input:
        table="results/tables/llm_compression.parquet",
    output:
        perplexity=report(
            "results/figures/llm_compression/perplexity.png",
            caption="../report/llm_perplexity.rst",
            category="LLM compression",
            labels={"figure": "perplexity vs compression"},
        ),
        perplexity_pdf="results/figures/llm_compression/perplexity.pdf",
        zeroshot=report(
            "results/figures/llm_compression/zeroshot.png",
            caption="../report/llm_zeroshot.rst",
            category="LLM compression",
            labels={"figure": "zero-shot vs compression"},
        ),
        zeroshot_pdf="results/figures/llm_compression/zeroshot.pdf",
        speed=report(
            "results/figures/llm_compression/speed.png",
            caption="../report/llm_speed.rst",
            category="LLM compression",
            labels={"figure": "throughput vs compression"},
        ),
        speed_pdf="results/figures/llm_compression/speed.pdf",
    log:
        "logs/plot_llm_compression/llm_compression.log",
    benchmark:
        "benchmarks/plot_llm_compression/llm_compression.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.llm.figures"),
    script:
        "../scripts/plot_llm_compression.py"


# MoDeGPT (ICLR 2025): its runs are evaluated above with the baselines; its own table is the
# per-layer sparsity allocation of each run.  Code: src/repro/llm/methods/modegpt*.py and
# src/repro/llm/modegpt_report.py (allocation table, figure, claims).
MODEGPT_RUNS = [r for r, spec in LLM_RUNS.items() if spec["method"] == "modegpt"]
if "modegpt" in PAPERS and not MODEGPT_RUNS:
    raise WorkflowError(
        "invalid config: 'papers' lists modegpt but llm_compression.methods has no modegpt runs"
    )
PAPER_TABLES["modegpt"] = expand(
    "results/llm/{model}/allocation/{run}.parquet", model=LLM_MODELS, run=MODEGPT_RUNS
)
PAPER_FIGURES["modegpt"] = ["results/figures/modegpt/allocation.png"]
PAPER_BENCHMARKS["modegpt"] = expand(
    "benchmarks/modegpt_allocation/{model}/{run}.tsv",
    model=LLM_MODELS,
    run=MODEGPT_RUNS,
) + ["benchmarks/plot_modegpt_allocation/modegpt.tsv"]


rule modegpt_allocation:
    input:
        model="results/llm/{model}/models/{run}",
    output:
        "results/llm/{model}/allocation/{run}.parquet",
    log:
        "logs/modegpt_allocation/{model}/{run}.log",
    benchmark:
        "benchmarks/modegpt_allocation/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    params:
        setting=llm_setting,
        tier=TIER,
        code=code("repro.llm.modegpt_report"),
    script:
        "../scripts/modegpt_allocation.py"


rule plot_modegpt_allocation:
    input:
        table="results/tables/modegpt.parquet",
    output:
        allocation=report(
            "results/figures/modegpt/allocation.png",
            caption="../report/modegpt_allocation.rst",
            category="MoDeGPT",
            labels={"figure": "sparsity allocation"},
        ),
        allocation_pdf="results/figures/modegpt/allocation.pdf",
    log:
        "logs/plot_modegpt_allocation/modegpt.log",
    benchmark:
        "benchmarks/plot_modegpt_allocation/modegpt.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.llm.modegpt_report"),
    script:
        "../scripts/plot_modegpt_allocation.py"


# DISP-LLM (NeurIPS 2024): its runs are evaluated above with the baselines; its own table is the
# per-step hypernetwork training history of each run (loss, ratio, time, memory).  Code:
# src/repro/llm/methods/disp_*.py (method), src/repro/kernels/gather_gemm.py (kernels) and
# src/repro/llm/disp_report.py (training table, figure, claims).
DISP_RUNS = [r for r, spec in LLM_RUNS.items() if spec["method"] == "disp_llm"]
if "disp_llm" in PAPERS and not DISP_RUNS:
    raise WorkflowError(
        "invalid config: 'papers' lists disp_llm but llm_compression.methods has no disp_llm runs"
    )
PAPER_TABLES["disp_llm"] = expand(
    "results/llm/{model}/training/{run}.parquet", model=LLM_MODELS, run=DISP_RUNS
)
PAPER_FIGURES["disp_llm"] = ["results/figures/disp_llm/training.png"]
PAPER_BENCHMARKS["disp_llm"] = expand(
    "benchmarks/disp_llm_training/{model}/{run}.tsv",
    model=LLM_MODELS,
    run=DISP_RUNS,
) + ["benchmarks/plot_disp_llm_training/disp_llm.tsv"]


rule disp_llm_training:
    input:
        model="results/llm/{model}/models/{run}",
    output:
        "results/llm/{model}/training/{run}.parquet",
    log:
        "logs/disp_llm_training/{model}/{run}.log",
    benchmark:
        "benchmarks/disp_llm_training/{model}/{run}.tsv"
    conda:
        "../../environment.yml"
    params:
        setting=llm_setting,
        tier=TIER,
        code=code("repro.llm.disp_report"),
    script:
        "../scripts/disp_llm_training.py"


rule plot_disp_llm_training:
    input:
        table="results/tables/disp_llm.parquet",
    output:
        training=report(
            "results/figures/disp_llm/training.png",
            caption="../report/disp_llm_training.rst",
            category="DISP-LLM",
            labels={"figure": "hypernetwork training"},
        ),
        training_pdf="results/figures/disp_llm/training.pdf",
    log:
        "logs/plot_disp_llm_training/disp_llm.log",
    benchmark:
        "benchmarks/plot_disp_llm_training/disp_llm.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.llm.disp_report"),
    script:
        "../scripts/plot_disp_llm_training.py"
