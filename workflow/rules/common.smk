# Validation, wildcards and helpers shared by every rule file.
from pathlib import Path

from snakemake.exceptions import WorkflowError

from repro.report.claims import CLAIM_EXTRA_TABLES, CLAIM_FUNCTIONS
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


def llm_setting(wc):
    return run_setting(LLM_RUNS[wc.run], LLM_CALIB)


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
    from repro.augtheory.report import FIGURES

    experiments = section.get("experiments", {})
    return {name: key for name, (key, _) in FIGURES.items() if key in experiments}


def augtheory_caption(wc):
    return (REPO / f"workflow/report/augtheory_{wc.da_figure}.rst").read_text()
