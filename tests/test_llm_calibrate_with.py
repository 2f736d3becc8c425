"""Per-method calibration sets (llm_compression.methods.<method>.calibrate_with) and the C4 calibration text."""

from __future__ import annotations

import gzip
import json

import pytest
import yaml

from conftest import ROOT, copy_workflow, dag_jobs, job_counts, planned_jobs, run_snakemake
from repro.data.c4 import prepare_c4, read_c4_documents
from repro.llm.run_calibration import expand_runs_with_calibration, run_calibration_set
from repro.llm.runs import expand_runs, run_setting

SECTION = yaml.safe_load(
    """
calibration:
  wiki: {text: wiki.txt, n_samples: 8, seq_len: 64}
  c4: {text: c4.txt, n_samples: 8, seq_len: 128}
compress_with: wiki
convention: total
methods:
  slicegpt: {targets: [0.2]}
  wanda: {runs: {2of4: {pattern: "2:4"}}, calibrate_with: wiki}
  sparsegpt: {runs: {2of4: {pattern: "2:4"}, u0.50: {sparsity: 0.5}}, calibrate_with: c4}
  svd_llm: {targets: [0.2], runs: {ratio0.20: {ratio: 0.2}}, calibrate_with: c4}
"""
)


def tier(name: str) -> dict:
    return yaml.safe_load((ROOT / "config" / name).read_text())


# ---------------------------------------------------------------------------------------------- run specs


def test_every_run_of_a_method_carries_its_calibration_set():
    runs = expand_runs_with_calibration(SECTION)
    assert list(runs) == list(expand_runs(SECTION))
    assert {r: s.get("calibrate_with") for r, s in runs.items()} == {
        "dense": None,
        "slicegpt-r0.20": None,
        "wanda-2of4": None,  # calibrate_with == compress_with: the spec stays as before
        "sparsegpt-2of4": "c4",
        "sparsegpt-u0.50": "c4",
        "svd_llm-r0.20": "c4",
        "svd_llm-ratio0.20": "c4",
    }
    sets = {r: run_calibration_set(s, SECTION["compress_with"]) for r, s in runs.items()}
    assert sets["dense"] == sets["slicegpt-r0.20"] == sets["wanda-2of4"] == "wiki"
    assert sets["sparsegpt-u0.50"] == sets["svd_llm-r0.20"] == "c4"
    # the result rows record the run's own set; nothing else of the spec changes
    assert run_setting(runs["sparsegpt-2of4"], sets["sparsegpt-2of4"])["calibration_set"] == "c4"
    plain = expand_runs(SECTION)
    for run, spec in runs.items():
        assert {k: v for k, v in spec.items() if k != "calibrate_with"} == plain[run]


def test_an_unknown_calibration_set_names_the_key_and_the_known_sets():
    section = {**SECTION, "methods": {"sparsegpt": {"runs": {"2of4": {"pattern": "2:4"}}, "calibrate_with": "c5"}}}
    with pytest.raises(ValueError, match=r"llm_compression\.methods\.sparsegpt\.calibrate_with") as err:
        expand_runs_with_calibration(section)
    assert "'c5'" in str(err.value) and "['c4', 'wiki']" in str(err.value)


@pytest.mark.parametrize("name", ["config.yaml", "test.yaml"])
def test_tiers_without_the_key_keep_their_specs(name):
    """No calibrate_with in the default and test tiers: the `spec` param of every job is unchanged."""
    section = tier(name)["llm_compression"]
    assert not any("calibrate_with" in (entry or {}) for entry in section["methods"].values())
    assert expand_runs_with_calibration(section) == expand_runs(section)


def test_paper_tier_calibrates_each_baseline_as_its_paper():
    section = tier("paper.yaml")["llm_compression"]
    calibration = section["calibration"]
    assert calibration["c4_train"] == {
        "text": "resources/text/c4/train.txt",
        "n_samples": 128,
        "seq_len": 4096,  # LLaMA-2's max_position_embeddings (brief §5)
        "seed": 0,
        "batch_size": 4,
    }
    assert {k: calibration["wikitext2_svdllm"][k] for k in ("n_samples", "seq_len", "seed")} == {
        "n_samples": 256,
        "seq_len": 2048,
        "seed": 0,
    }
    sets = {
        run: run_calibration_set(spec, section["compress_with"])
        for run, spec in expand_runs_with_calibration(section).items()
    }
    by_method = {}
    for run, name in sets.items():
        by_method.setdefault(run.split("-")[0], set()).add(name)
    assert by_method["sparsegpt"] == by_method["wanda"] == {"c4_train"}
    assert by_method["svd_llm"] == {"wikitext2_svdllm"}
    assert by_method["slicegpt"] == by_method["modegpt"] == by_method["dense"] == {"wikitext2_train"}


def test_the_schema_takes_calibrate_with_and_data_c4():
    from repro.workflow.config import ConfigError, validate_config

    schema = ROOT / "workflow" / "schemas" / "config.schema.yaml"
    config = tier("test.yaml")
    config["llm_compression"]["methods"]["sparsegpt"]["calibrate_with"] = "tiny_train"
    validate_config(config, schema)
    assert config["data"]["c4"] == {"shard": "en/c4-train.00000-of-01024.json.gz", "documents": 20000}
    assert "calibrate_with" not in config["llm_compression"]["methods"]["wanda"]  # no default filled in
    config["llm_compression"]["methods"]["sparsegpt"]["calibrate_with"] = 3
    with pytest.raises(ConfigError, match=r"llm_compression\.methods\.sparsegpt\.calibrate_with': 3 is not of type"):
        validate_config(config, schema)
    config = tier("test.yaml")
    config["llm_compression"]["methods"]["sparsegpt"]["calibrate"] = "tiny_train"
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['calibrate'\]"):
        validate_config(config, schema)
    config = tier("test.yaml")
    config["data"] = {"c4": {"documents": 0}}
    with pytest.raises(ConfigError, match=r"data\.c4\.documents"):
        validate_config(config, schema)


# ---------------------------------------------------------------------------------------------- the DAG


def test_paper_tier_dry_run_calibrates_every_set_and_compresses_on_the_methods_set(tmp_path):
    config = tier("paper.yaml")
    section = config["llm_compression"]
    proc = run_snakemake(ROOT, "-n", "--configfile", str(ROOT / "config" / "paper.yaml"), "--directory", str(tmp_path))
    counts = job_counts(proc.stdout)
    assert counts["calibrate_llm"] == len(section["models"]) * len(section["calibration"]) == 3
    assert counts["prepare_c4"] == 1
    planned = planned_jobs(proc.stdout)
    for name in section["calibration"]:
        assert f"calibrate_llm[calibration={name},model=llama2_7b]" in planned

    (tmp_path / "work").mkdir()
    jobs = dag_jobs(copy_workflow(tmp_path / "work"), configfile="config/paper.yaml")
    expected = {
        "sparsegpt": "c4_train",
        "wanda": "c4_train",
        "svd_llm": "wikitext2_svdllm",
        "slicegpt": "wikitext2_train",
    }
    seen = set()
    for key, job in jobs.items():
        if job["rule"] != "compress_llm":
            continue
        method = job["wildcards"]["run"].split("-")[0]
        name = expected.get(method, "wikitext2_train")
        text = section["calibration"][name]["text"]
        statistics = [f for f in job["input"] if f.endswith(".safetensors")]
        assert statistics == [f"results/llm/llama2_7b/calibration/{name}.safetensors"], key
        assert text in job["input"], key
        assert json.loads(job["params"]["calibration"]) == {"batch_size": 4, **section["calibration"][name]}, key
        seen.add(method)
    assert {"sparsegpt", "wanda", "svd_llm", "slicegpt"} <= seen
    assert (
        "results/llm/llama2_7b/calibration/c4_train.safetensors"
        in jobs["compress_llm[model=llama2_7b,run=sparsegpt-2of4]"]["input"]
    )
    prepare = jobs["prepare_c4[]"]
    assert prepare["output"] == ["resources/text/c4/train.txt"]
    assert json.loads(prepare["params"]["options"]) == config["data"]["c4"]
    # every result row of a run records its calibration set
    setting = json.loads(jobs["evaluate_llm_perplexity[model=llama2_7b,run=svd_llm-r0.20]"]["params"]["setting"])
    assert setting["calibration_set"] == "wikitext2_svdllm"


def test_an_unknown_set_stops_the_dry_run(tmp_path):
    work = copy_workflow(tmp_path)
    config = tier("test.yaml")
    config["llm_compression"]["methods"]["sparsegpt"]["calibrate_with"] = "c4_train"
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(config))
    proc = run_snakemake(work, "-n", "--configfile", "config/bad.yaml", check=False)
    assert proc.returncode != 0
    message = proc.stdout + proc.stderr
    assert "invalid config: llm_compression.methods.sparsegpt.calibrate_with is 'c4_train'" in message
    assert "['tiny_train']" in message


# ---------------------------------------------------------------------------------------------- C4 text


def write_shard(path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def c4_line(text: str, **extra) -> str:
    return json.dumps({"text": text, "timestamp": "2019-04-25T12:57:54Z", "url": "https://example.org", **extra})


def test_prepare_c4_keeps_the_first_documents_joined_by_blank_lines(tmp_path):
    artifact = tmp_path / "c4_shard"
    shard = artifact / "en" / "c4-train.00000-of-01024.json.gz"
    write_shard(shard, [c4_line("First doc.\nSecond line."), "", c4_line("Zweites Dokument: äöü."), c4_line("Third.")])
    out = tmp_path / "text" / "c4" / "train.txt"
    info = prepare_c4(artifact, out, shard="en/c4-train.00000-of-01024.json.gz", documents=2)
    assert out.read_text(encoding="utf-8") == "First doc.\nSecond line.\n\nZweites Dokument: äöü."
    assert info == {"documents": 2, "characters": len(out.read_text(encoding="utf-8"))}
    # fewer documents than asked for: all of them
    assert prepare_c4(artifact, out, documents=100)["documents"] == 3
    assert read_c4_documents(shard) == ["First doc.\nSecond line.", "Zweites Dokument: äöü.", "Third."]


def test_prepare_c4_output_feeds_the_calibration_sampler(tmp_path):
    from repro.llm.calibration import calibration_batches

    artifact = tmp_path / "c4_shard"
    words = [f"w{i}" for i in range(40)]
    write_shard(artifact / "en" / "c4-train.00000-of-01024.json.gz", [c4_line(" ".join(words[i::4])) for i in range(4)])
    out = tmp_path / "train.txt"
    prepare_c4(artifact, out, documents=4)

    def tokenizer(text, add_special_tokens=False):
        return {"input_ids": [int(w[1:]) if w.startswith("w") else -1 for w in text.split()]}

    ids = calibration_batches(tokenizer, out.read_text(), n_samples=3, seq_len=8, seed=0)
    assert tuple(ids.shape) == (3, 8)


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([c4_line("ok"), "{not json"], r"line 2: not JSON"),
        ([c4_line("ok"), json.dumps({"url": "x"})], r"line 2: no field 'text' \(keys: \['url'\]\)"),
        ([json.dumps({"text": 3})], r"line 1: field 'text' is a int"),
        ([json.dumps(["text"])], r"line 1: a JSON list, not an object"),
        (["", "  "], r"no documents"),
    ],
)
def test_bad_shard_lines_name_the_file_and_line(tmp_path, lines, message):
    shard = tmp_path / "c4_shard" / "en" / "c4-train.00000-of-01024.json.gz"
    write_shard(shard, lines)
    out = tmp_path / "train.txt"
    with pytest.raises(ValueError, match=message) as err:
        prepare_c4(tmp_path / "c4_shard", out)
    assert str(shard) in str(err.value)
    assert not out.exists()


def test_missing_or_broken_shards_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"c4-train\.00000-of-01024\.json\.gz: no such file"):
        prepare_c4(tmp_path / "c4_shard", tmp_path / "train.txt")
    (tmp_path / "c4_shard").mkdir()
    plain = tmp_path / "c4_shard" / "plain.json.gz"
    plain.write_text(c4_line("not gzipped"))
    with pytest.raises(ValueError, match=r"plain\.json\.gz: not a complete gzip file"):
        prepare_c4(tmp_path / "c4_shard", tmp_path / "train.txt", shard="plain.json.gz")
    binary = tmp_path / "c4_shard" / "latin1.json.gz"
    binary.write_bytes(gzip.compress(b'{"text": "ok"}\n{"text": "caf\xe9"}\n'))
    with pytest.raises(ValueError, match=r"latin1\.json\.gz, line 2: not UTF-8"):
        prepare_c4(tmp_path / "c4_shard", tmp_path / "train.txt", shard="latin1.json.gz")
    with pytest.raises(ValueError, match="outside the artifact folder"):
        prepare_c4(tmp_path / "c4_shard", tmp_path / "train.txt", shard="../elsewhere.json.gz")
    assert not (tmp_path / "train.txt").exists()
