# Validation, wildcards and helpers shared by every rule file.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from repro.report.claims import CLAIM_EXTRA_TABLES, CLAIM_FUNCTIONS
from repro.llm.run_calibration import run_calibration_set
from repro.llm.runs import run_setting
from repro.workflow import ConfigError, module_digest, validate_config

REPO = Path(workflow.basedir)

try:
    validate_config(config, REPO / "workflow/schemas/config.schema.yaml")
except ConfigError as err:
    raise WorkflowError(str(err)) from None

TIER = config["tier"]
PAPERS = list(config["papers"])

# What each paper contributes; filled in by the family rule files.
PAPER_TABLES = {}  # paper -> per-job tidy tables to aggregate
PAPER_FIGURES = {}  # paper -> figure files (PNG; the PDF sits beside each)
PAPER_BENCHMARKS = {}  # paper -> benchmark files of its jobs


def code(*modules):
    """Digest of the given repro modules and all they import, used as a param so edits rerun jobs.

    Read from this checkout's src/repro, the sources `pip install -e .` runs.
    """
    return module_digest(*modules, root=REPO / "src" / "repro")


def check_prepared_artifacts(prepare, prepared, artifacts):
    """Every prepared dataset named in the config must have the artifacts it reads."""
    for name in prepare:
        missing = [a for a in prepared[name][0] if a not in artifacts]
        if missing:
            raise WorkflowError(
                f"invalid config: key 'prepare' lists {name!r}, which needs artifact(s) "
                f"{missing} under 'artifacts'"
            )


# LLM helpers (globals LLM_MODELS, LLM_RUNS, ... are set in llm.smk).
def llm_model_dir(wc):
    """The dense run reads the prepared model folder; every other run its compressed folder."""
    if wc.run == "dense":
        return LLM_MODELS[wc.model]["path"]
    return f"results/llm/{wc.model}/models/{wc.run}"


def llm_run_calibration(run):
    """The calibration set of a run: its method's `calibrate_with`, else `compress_with`."""
    return run_calibration_set(LLM_RUNS[run], LLM_CALIB)


def llm_run_statistics(wc):
    """The calibration statistics a compression run reads (those of its own calibration set)."""
    return (
        f"results/llm/{wc.model}/calibration/{llm_run_calibration(wc.run)}.safetensors"
    )


def llm_setting(wc):
    return run_setting(LLM_RUNS[wc.run], llm_run_calibration(wc.run))


def llm_task_files():
    """Task YAMLs under zeroshot.task_dir; none when task_dir is null (lm-eval built-in tasks)."""
    zeroshot = LLM.get("zeroshot", {})
    if not zeroshot.get("task_dir"):
        return []
    return [f"{zeroshot['task_dir']}/{t}.yaml" for t in zeroshot["tasks"]]


def llm_calibration_options(name):
    return {"batch_size": 4, **LLM_CALIBRATION[name]}


def final_targets():
    targets = list(DATA_TARGETS) + [
        "results/tables/all.parquet",
        "results/tables/claims.parquet",
        "results/tables/runtime.parquet",
        "results/tables/README.md",
    ]
    for paper in PAPERS:
        targets.append(f"results/tables/{paper}.parquet")
        targets.extend(PAPER_FIGURES[paper])
    return targets


def dynamo_model(wc):
    return DYNAMO_MODELS[wc.model]["path"]


# Files each Half-Hop graph loader reads (repro.graphs.datasets.load_graph); csbm reads none.
HALFHOP_LOADER_FILES = {
    "wordnet_hypernym": [
        "resources/wordnet/synsets.parquet",
        "resources/wordnet/edges_hypernym.parquet",
    ],
    "wordnet_domain_topic": [
        "resources/wordnet/synsets.parquet",
        "resources/wordnet/edges_domain_topic.parquet",
    ],
    "drosophila": ["resources/graphs/drosophila.npz"],
    "csbm": [],
}


def halfhop_graph_inputs(wc):
    """The prepared resources the {graph}'s loader reads (a `pyg` graph: its downloaded artifact)."""
    spec = config["halfhop"]["graphs"][wc.graph]
    if spec["loader"] == "pyg":
        return {"resources": [f"resources/artifacts/{halfhop_pyg_artifact(wc.graph)}"]}
    return {"resources": HALFHOP_LOADER_FILES[spec["loader"]]}


def halfhop_pyg_artifact(graph):
    """The torch_geometric artifact a `pyg` graph reads, checked against config['artifacts']."""
    options = config["halfhop"]["graphs"][graph].get("options", {})
    artifact = options.get("artifact")
    spec = config.get("artifacts", {}).get(artifact)
    if spec is None or spec.get("kind") != "torch_geometric":
        raise WorkflowError(
            f"invalid config: halfhop.graphs.{graph} (loader pyg) needs options.artifact naming a "
            f"torch_geometric entry of 'artifacts'; got {artifact!r}"
        )
    return artifact


def halfhop_graph_spec(graph):
    """The {graph}'s loader and options; a `pyg` graph gets its dataset class and arguments
    from its artifact's entry, so the two cannot disagree."""
    spec = config["halfhop"]["graphs"][graph]
    if spec["loader"] != "pyg":
        return spec
    artifact = config["artifacts"][halfhop_pyg_artifact(graph)]
    options = {
        "dataset": artifact["dataset"],
        "kwargs": artifact.get("kwargs") or {},
        **spec.get("options", {}),
    }
    return {**spec, "options": options}


def halfhop_stage_graphs(section, stage):
    """Graphs a Half-Hop stage runs on: its own `graphs` list, else every configured graph;
    a stage whose section is absent runs on none."""
    if stage not in section:
        return []
    graphs = section[stage].get("graphs") or list(section.get("graphs", {}))
    unknown = sorted(set(graphs) - set(section.get("graphs", {})))
    if unknown:
        raise WorkflowError(
            f"invalid config: halfhop.{stage}.graphs names {unknown}, "
            f"not among halfhop.graphs ({sorted(section.get('graphs', {}))})"
        )
    return graphs


def halfhop_stage_options(section, stage):
    """A stage's options without its `graphs` list (params: other graphs' changes rerun nothing)."""
    return {k: v for k, v in (section.get(stage) or {}).items() if k != "graphs"}


NEURAL_SECTION_KEYS = ("datasets", "models", "seeds")


def check_neural_config(cfg, papers, data):
    """Swap-VAE / MYOW sections must exist and name configured datasets."""
    for paper in papers:
        section = cfg.get(paper)
        if not section:
            raise WorkflowError(
                f"invalid config: 'papers' lists {paper} but the config has no '{paper}' section"
            )
        unknown = sorted(set(section["datasets"]) - set(data))
        if unknown:
            raise WorkflowError(
                f"invalid config: {paper}.datasets names {unknown}, not among neural_data "
                f"({sorted(data)})"
            )


def neural_data_inputs(wc):
    """A paper-tier recording's downloaded artifact folder(s) (the generators need no input):
    reach_pickle names one artifact, rodent_npy one or a list (one per .npy file)."""
    spec = config["neural_data"][wc.dataset]
    if spec["loader"] in ("reach_pickle", "rodent_npy"):
        artifact = spec.get("options", {}).get("artifact")
        if not artifact:
            raise WorkflowError(
                f"invalid config: neural_data.{wc.dataset} (loader {spec['loader']}) needs options.artifact"
            )
        names = [artifact] if isinstance(artifact, str) else list(artifact)
        return {"artifact": [f"resources/artifacts/{name}" for name in names]}
    return {}


def neural_runs(cfg, paper):
    """(dataset, model, seed) of every representation a paper trains."""
    section = cfg[paper]
    return [
        (d, m, s)
        for d in section["datasets"]
        for m in section["models"]
        for s in section.get("seeds", [0])
    ]


def neural_image_runs(cfg, paper):
    """(image set, model, seed) of MYOW's image experiments (none without `images`)."""
    images = cfg[paper].get("images") if paper == "myow" else None
    if not images:
        return []
    return [
        (i, m, s)
        for i in images["datasets"]
        for m in images["models"]
        for s in images.get("seeds", [0])
    ]


def neural_image_figures(cfg, paper):
    return ["images"] if neural_image_runs(cfg, paper) else []


def neural_rep_files(cfg, paper):
    return [
        f"results/{paper}/{d}/{m}/s{s}/representations.npz"
        for d, m, s in neural_runs(cfg, paper)
    ]


def neural_tables(cfg, paper):
    runs = neural_runs(cfg, paper)
    return (
        [f"results/{paper}/{d}/{m}/s{s}/training.parquet" for d, m, s in runs]
        + [f"results/{paper}/{d}/{m}/s{s}/decoding.parquet" for d, m, s in runs]
        + [
            f"results/myow/images/{i}/{m}/s{s}.parquet"
            for i, m, s in neural_image_runs(cfg, paper)
        ]
    )


def neural_benchmarks(cfg, paper):
    runs = neural_runs(cfg, paper)
    return (
        [f"benchmarks/neural_train/{paper}/{d}/{m}/s{s}.tsv" for d, m, s in runs]
        + [f"benchmarks/neural_evaluate/{paper}/{d}/{m}/s{s}.tsv" for d, m, s in runs]
        + [
            f"benchmarks/neural_images/{i}/{m}/s{s}.tsv"
            for i, m, s in neural_image_runs(cfg, paper)
        ]
        + [f"benchmarks/plot_neural/{paper}.tsv"]
        + (
            ["benchmarks/plot_myow_images/myow.tsv"]
            if neural_image_runs(cfg, paper)
            else []
        )
    )


def neural_train_options(cfg, paper, model, dataset):
    """Training options of one run: the paper's `train` settings, `model_options[model]`, then
    the dataset's `train` overrides (e.g. its jitter window); none for `raw`, which trains nothing.
    """
    if model == "raw":
        return {}
    section = cfg[paper]
    return {
        **section.get("train", {}),
        **section.get("model_options", {}).get(model, {}),
        **cfg["neural_data"][dataset].get("train", {}),
    }


def dynamo_draft(wc):
    """The assisted-generation draft model folder, or nothing when the config names none."""
    draft = DYNAMO.get("decoding", {}).get("draft")
    return {"draft": draft} if draft else {}


def spectral_feature_set(name):
    """The spectral_imbalance feature set `name`, its artifact checked against config['artifacts']."""
    spec = config["spectral_imbalance"]["feature_sets"][name]
    artifact = spec.get("artifact")
    if artifact is not None and artifact not in config.get("artifacts", {}):
        raise WorkflowError(
            f"invalid config: spectral_imbalance.feature_sets.{name}.artifact names {artifact!r}, "
            "which is not an entry of 'artifacts'"
        )
    return spec


def spectral_feature_inputs(name):
    """The data file and (if any) the encoder artifact folder a feature set reads."""
    spec = spectral_feature_set(name)
    inputs = {"data": spec["data"]}
    if spec.get("artifact"):
        inputs["artifact"] = f"resources/artifacts/{spec['artifact']}"
    return inputs


def spectral_augment_inputs(wc):
    name = config["spectral_imbalance"]["augmentation"]["feature_set"]
    return spectral_feature_inputs(name)


def spectral_runs(section):
    """(feature set, seed) pairs of the encoder study."""
    return [
        (f, s)
        for f in section.get("feature_sets", {})
        for s in section.get("seeds", [0])
    ]


def spectral_augment_runs(section):
    """(strategy, seed) pairs of the augmentation study (none without `augmentation`)."""
    aug = section.get("augmentation")
    if not aug:
        return []
    return [(a, s) for a in aug["strategies"] for s in aug.get("seeds", [0])]


def augtheory_figures(section):
    """Figures of the data-augmentation paper whose experiment the config runs (figure -> experiment)."""
    from repro.augtheory.figure_index import FIGURE_EXPERIMENTS

    experiments = section.get("experiments", {})
    return {name: key for name, key in FIGURE_EXPERIMENTS.items() if key in experiments}


def augtheory_caption(wc):
    return (REPO / f"workflow/report/augtheory_{wc.da_figure}.rst").read_text()


# ---------------------------------------------------------------------------------------------
# Cluster resources (issue 11).  GPU rules declare `gpu`, `mem_mb` and `runtime`; mem_mb and
# runtime are estimated from the model's size and the stage's config slice.  Everything below this
# line is plain Python: tests/test_cluster_profiles.py runs it outside Snakemake.
#
# `gpu` comes from the section's `device` only: 1 for cuda / cuda:N, 0 for cpu and auto.  So the
# test and default tiers (device auto) never ask for a GPU locally, and the local profile's global
# `gpu=1` limit only serialises jobs of a config that names cuda; the cluster profiles
# (profiles/slurm, profiles/kubernetes) set `gpu: 1` for every GPU rule, and `auto` finds the GPU
# on the node.  The estimates assume the model runs on that GPU (device cuda or auto); mem_mb is host
# memory, and with device cpu the GPU part moves to it.  Each retry (`attempt`) asks for more.
import json
import math
import re

ESTIMATE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# effective FLOP/s of eager PyTorch on an A100-class GPU
ESTIMATE_FLOPS = {"float32": 15e12, "bfloat16": 50e12, "float16": 50e12}
ESTIMATE_FP64_FLOPS = 5e12  # float64 covariance accumulation
ESTIMATE_BANDWIDTH = 1e12  # bytes/s: one decoding step reads every weight once
ESTIMATE_STEP_S = 0.03  # Python and kernel-launch time of one decoding step
ESTIMATE_HOST_BASE = 4e9  # Python, torch, CUDA context, tokenizer, data
ESTIMATE_GPU_BASE = 1.5e9  # CUDA context and allocator slack
# a model whose size can be read from neither its config.json nor its name
ESTIMATE_DEFAULT_PARAMS = 7e9
# a perplexity text without max_windows that is not on disk yet
ESTIMATE_TEXT_TOKENS = 350_000
ESTIMATE_TASK_ITEMS = 5_000  # zero-shot items per task when `limit` is null
GATED_MLP_TYPES = {"llama", "mistral", "mixtral", "qwen2", "qwen3", "gemma", "olmo"}
SIZE_TOKEN = re.compile(r"(?:^|[-_/])(\d+(?:[._]\d+)?)([mb])(?![a-z])", re.IGNORECASE)


def shape_from_config(cfg):
    """Parameter count and layer widths of a Hugging Face config.json (Llama, OPT, GPT-NeoX, Phi...)."""
    hidden = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    ffn = cfg.get("intermediate_size") or cfg.get("ffn_dim") or cfg.get("n_inner")
    ffn = ffn or 4 * hidden
    heads = cfg.get("num_attention_heads") or cfg.get("n_head")
    head_dim = cfg.get("head_dim") or hidden // heads
    kv_heads = cfg.get("num_key_value_heads") or heads
    vocab = cfg["vocab_size"]
    attn, kv = heads * head_dim, kv_heads * head_dim
    mlp_matrices = 3 if cfg.get("model_type") in GATED_MLP_TYPES else 2
    per_layer = 2 * hidden * attn + 2 * hidden * kv + mlp_matrices * hidden * ffn
    embeddings = vocab * hidden * (1 if cfg.get("tie_word_embeddings", True) else 2)
    return {
        "params": layers * per_layer + embeddings,
        "layers": layers,
        "hidden": hidden,
        "attn": attn,
        "kv": kv,
        "ffn": ffn,
        "vocab": vocab,
    }


def shape_from_params(params):
    """Llama-2 proportions for a bare parameter count: ffn = 2.6875 hidden, hidden = 128 layers,
    12 layers hidden^2 parameters in the blocks, a 32k vocabulary."""
    hidden = max(64, 64 * round((128 * params / 12) ** (1 / 3) / 64))
    layers = max(1, round(params / (12 * hidden**2)))
    ffn = 64 * round(2.6875 * hidden / 64)
    return {
        "params": params,
        "layers": layers,
        "hidden": hidden,
        "attn": hidden,
        "kv": hidden,
        "ffn": ffn,
        "vocab": 32_000,
    }


def size_from_name(name):
    """Parameters named in a model or repository name (`llama2_7b`, `opt-1.3b`, `pythia_6_9b`,
    `smollm2-135m-instruct`), or None."""
    match = SIZE_TOKEN.search(str(name))
    if not match:
        return None
    number = float(match.group(1).replace("_", "."))
    return number * (1e9 if match.group(2).lower() == "b" else 1e6)


def model_shape(path, artifacts=None):
    """The model's shape from `<path>/config.json` when it is there (resources are evaluated again
    when a job is ready, so a downloaded model is measured), else from the size in its name or its
    artifact's repo_id, else that of a 7B model."""
    try:
        return shape_from_config(json.loads((Path(path) / "config.json").read_text()))
    except (OSError, ValueError, KeyError, TypeError, ZeroDivisionError):
        pass
    names = [path]
    artifact = (artifacts or {}).get(Path(path).name)
    if artifact and artifact.get("repo_id"):
        names.append(artifact["repo_id"])
    for name in names:
        params = size_from_name(name)
        if params:
            return shape_from_params(params)
    return shape_from_params(ESTIMATE_DEFAULT_PARAMS)


def perplexity_tokens(datasets):
    """Tokens a perplexity stage reads: max_windows x window, else the text's size / 4 characters."""
    total = 0
    for spec in datasets.values():
        if spec.get("max_windows"):
            total += int(spec["max_windows"]) * int(spec["window"])
            continue
        try:
            total += Path(spec["text"]).stat().st_size // 4
        except OSError:
            total += ESTIMATE_TEXT_TOKENS
    return total


def calibration_estimate(shape, bpe, rate, calibration):
    """(gpu, host, seconds) of one pass that collects every layer's float64 statistics."""
    params, layers = shape["params"], shape["layers"]
    hidden, ffn = shape["hidden"], shape["ffn"]
    # resid_in, attn_in, mlp_in (d x d), attn_mid (h_q d_h square), mlp_mid (d_int square)
    covariance = 3 * hidden**2 + shape["attn"] ** 2 + ffn**2
    seq, batch = int(calibration["seq_len"]), int(calibration.get("batch_size", 4))
    tokens = int(calibration["n_samples"]) * seq
    # weights, the calibration set's hidden states in and out of a layer, one layer's
    # float64 accumulators and one batch's activations (also in float64)
    gpu = params * bpe + 2 * tokens * hidden * bpe + covariance * 8
    gpu += batch * seq * ffn * (2 * 8 + 4 * bpe)
    # every layer's statistics end up on the CPU
    host = params * bpe + layers * covariance * 8
    seconds = 2 * params * tokens / rate
    seconds += 2 * tokens * layers * covariance / ESTIMATE_FP64_FLOPS
    return gpu, host, seconds


def llm_stage_estimate(stage, shape, dtype, options):
    """(GPU bytes, host bytes, seconds on one GPU) of an LLM or DynaMo stage, before
    safety margins; `params` runs on the CPU (no GPU bytes).

    `options` is the stage's config slice: calibrate: a calibration set; compress:
    {"calibration", "run"}; perplexity / dynamo_perplexity: {name: dataset} (+ n_heads);
    zeroshot, speed, dynamo_train, dynamo_decoding, dynamo_judge: their sections."""
    bpe, rate = ESTIMATE_BYTES[dtype], ESTIMATE_FLOPS[dtype]
    params, layers = shape["params"], shape["layers"]
    hidden, ffn, vocab = shape["hidden"], shape["ffn"], shape["vocab"]
    weights = params * bpe
    step_s = max(weights / ESTIMATE_BANDWIDTH, ESTIMATE_STEP_S)
    if stage == "calibrate":
        gpu, host, seconds = calibration_estimate(shape, bpe, rate, options)
    elif stage == "compress":
        # a statistics pass of its own (sequential methods go through compressed layers)
        calibration = options["calibration"]
        gpu, host, seconds = calibration_estimate(shape, bpe, rate, calibration)
        host += weights  # the statistics file beside the model, the model written out
        run = options["run"]
        if run["method"] == "disp_llm":
            settings = run["settings"]
            batch = int(settings.get("train_batch_size", 1))
            seq = int(settings.get("train_seq_len", calibration["seq_len"]))
            tokens = int(settings.get("steps", 10_000)) * batch * seq
            # activations kept for the backward pass through the frozen model
            activations = batch * seq * hidden * layers * 17 * bpe
            gpu = max(gpu, weights + activations + batch * seq * vocab * 8)
            seconds += 6 * params * tokens / rate
    elif stage in ("perplexity", "dynamo_perplexity"):
        datasets = {k: v for k, v in options.items() if k != "n_heads"}
        n_logits = max(int(options.get("n_heads", 1)), 1)
        window = max([int(d["window"]) for d in datasets.values()] or [0])
        per_token = n_logits * vocab * 12 + 4 * ffn * bpe + 8 * hidden * bpe
        gpu = weights + window * per_token
        host = weights
        seconds = 2 * params * perplexity_tokens(datasets) / rate
    elif stage == "zeroshot":
        items = int(options.get("limit") or ESTIMATE_TASK_ITEMS)
        items *= len(options.get("tasks", []))
        batch = int(options.get("batch_size", 8))
        gpu = weights + batch * 512 * (vocab * 8 + 4 * ffn * bpe)
        host = weights
        # about 4 continuations of about 128 tokens per item
        seconds = 2 * params * items * 4 * 128 / rate
    elif stage == "params":
        # dense and compressed model on the CPU, read from disk at 200 MB/s
        gpu, host = 0, 2 * weights
        seconds = 2 * weights / 2e8
    elif stage == "speed":
        batch, prefill = int(options["batch"]), int(options["prefill_len"])
        decode = int(options["decode_tokens"])
        # dense and compressed model, warm-up and timed repeats
        runs = 2 * (int(options.get("repeats", 1)) + int(options.get("warmup", 0)))
        kv_cache = 2 * layers * shape["kv"] * batch * (prefill + decode) * bpe
        gpu = 2 * weights + kv_cache + batch * prefill * vocab * 4
        host = 2 * weights
        seconds = runs * (2 * params * batch * prefill / rate + decode * step_s)
    elif stage == "dynamo_train":
        extra = max(int(options.get("n_heads", 3)) - 1, 0)
        base = bool(options.get("train_base"))
        # one decoder layer per extra head
        trainable = extra * (params - vocab * hidden) / layers + (params if base else 0)
        batch, seq = int(options.get("batch_size", 8)), int(options["seq_len"])
        tokens = int(options["steps"]) * batch * seq
        trained_layers = extra + (layers if base else 0)
        activations = batch * seq * hidden * trained_layers * 17 * bpe
        logits = batch * seq * vocab * 8 * (extra + 1)
        # weights, then gradients and Adam moments of what is trained
        gpu = weights + 16 * trainable + activations + logits
        host = 2 * weights
        seconds = (6 * trainable + 2 * params) * tokens / rate
    elif stage == "dynamo_decoding":
        runs = len(options.get("prompts", [])) * len(options.get("seeds", [0]))
        # every threshold, autoregressive decoding and (with a draft) assisted generation
        variants = len(options.get("thresholds", [])) + 1 + bool(options.get("draft"))
        steps = runs * variants * int(options.get("max_new_tokens", 128))
        gpu = 2 * weights + 64 * vocab * 4
        host = 2 * weights
        seconds = steps * step_s
    elif stage == "dynamo_judge":
        new_tokens = int(options.get("max_new_tokens", 16))
        gpu = weights + 2048 * (vocab * 8 + 4 * ffn * bpe)
        host = weights
        per_comparison = 2 * params * 512 / rate + new_tokens * step_s
        seconds = int(options.get("comparisons", 1)) * per_comparison
    else:
        raise ValueError(f"no resource estimate for stage {stage!r}")
    gpu = gpu + ESTIMATE_GPU_BASE if gpu else 0
    return gpu, host + ESTIMATE_HOST_BASE, seconds


def estimate_mem_mb(gpu, host, on_cpu):
    """Host memory to ask for, MB rounded up to 1000 (the GPU part too when the model runs on the CPU)."""
    return 1000 * math.ceil(1.2 * (host + (gpu if on_cpu else 0)) / 1e9)


def estimate_runtime(seconds):
    """Minutes to ask for: 15 + 3x the estimate, rounded up to 15."""
    return 15 * math.ceil((15 + 3 * seconds / 60) / 15)


def device_gpus(section):
    """GPUs a job of `section` asks for by itself: 1 when its device is cuda / cuda:N, else 0."""
    return 1 if str(section.get("device", "auto")).startswith("cuda") else 0


def model_stage_inputs(stage, wc):
    """(config section, model path, dtype, options) of a job that loads a model."""
    if stage.startswith("dynamo"):
        section = config["dynamo"]
        entry = section["models"][wc.model]
        path, dtype = entry["path"], entry.get("dtype", "float32")
        if stage == "dynamo_train":
            options = {**section.get("heads", {}), **section.get("training", {})}
        elif stage == "dynamo_perplexity":
            n_heads = section.get("heads", {}).get("n_heads", 3)
            options = {**section.get("perplexity", {}), "n_heads": n_heads}
        elif stage == "dynamo_decoding":
            options = section.get("decoding", {})
        else:
            judge, decoding = section.get("judge") or {}, section.get("decoding", {})
            path, dtype = judge.get("model", path), judge.get("dtype", "float32")
            comparisons = (
                len(decoding.get("prompts", []))
                * len(decoding.get("seeds", [0]))
                * len(decoding.get("thresholds", []))
            )
            options = {**judge, "comparisons": comparisons}
        return section, path, dtype, options
    section = config["llm_compression"]
    entry = section["models"][wc.model]
    path, dtype = entry["path"], entry.get("dtype", "float32")
    if stage == "calibrate":
        options = llm_calibration_options(wc.calibration)
    elif stage == "compress":
        options = {
            "calibration": llm_calibration_options(llm_run_calibration(wc.run)),
            "run": LLM_RUNS[wc.run],
        }
    else:
        options = section.get(stage, {})
        if stage == "speed":
            dtype = entry.get("speed_dtype", dtype)
    return section, path, dtype, options


def model_stage_estimate(stage, wc):
    section, path, dtype, options = model_stage_inputs(stage, wc)
    gpu, host, seconds = llm_stage_estimate(
        stage, model_shape(path, config.get("artifacts")), dtype, options
    )
    return section, gpu, host, seconds


def model_stage_mem_mb(stage):
    """`mem_mb` for the jobs of a model stage: estimated host memory, times the attempt."""

    def mem_mb(wildcards, attempt):
        section, gpu, host, _ = model_stage_estimate(stage, wildcards)
        on_cpu = str(section.get("device", "auto")) == "cpu"
        return attempt * estimate_mem_mb(gpu, host, on_cpu)

    return mem_mb


def model_stage_runtime(stage):
    """`runtime` (minutes) for the jobs of a model stage: from its FLOPs, times the attempt."""

    def runtime(wildcards, attempt):
        return attempt * estimate_runtime(model_stage_estimate(stage, wildcards)[3])

    return runtime
