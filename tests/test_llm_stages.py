"""The LLM pipeline stages file to file on a tiny model folder (repro.llm.stages)."""

import math

import pytest
import torch

from repro.llm import stages
from repro.llm.calibration import load_statistics
from repro.llm.compressed import read_compression_info
from repro.llm.runs import SPARSE_METHODS, expand_runs, run_setting
from repro.llm.tiny_assets import build_tiny_llm, write_tiny_texts

SECTION = {
    "methods": {
        "slicegpt": {"targets": [0.2], "runs": {"s0.25": {"sparsity": 0.25}}, "options": {"round_to": 8}},
        "shortgpt": {"targets": [0.25]},
        "wanda": {"runs": {"2of4": {"pattern": "2:4"}}},
        "modegpt": {"targets": [0.3]},  # original mode: the cached statistics of the calibrate stage
        "disp_llm": {"targets": [0.3], "options": {"steps": 4, "train_seq_len": 16}},
        "sparsegpt": {  # sequential (own pass) and original (the cached statistics)
            "runs": {"2of4": {"pattern": "2:4"}, "u0.50": {"sparsity": 0.5, "calibration": "original"}},
            "options": {"blocksize": 32},
        },
        "svd_llm": {"targets": [0.3]},  # original mode: the cached statistics
    }
}
RUNS = expand_runs(SECTION)


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    texts = write_tiny_texts(root / "text", seed=0)
    build_tiny_llm(root / "model", seed=0)
    calibration = {"text": str(texts["train"]), "n_samples": 4, "seq_len": 32, "seed": 0, "batch_size": 2}
    stats_path = root / "calibration.safetensors"
    summary = stages.calibrate(root / "model", calibration, stats_path, device="cpu")
    return {"root": root, "texts": texts, "calibration": calibration, "stats": stats_path, "summary": summary}


def test_calibration_file_has_every_statistic_and_its_protocol(assets):
    stats, meta = load_statistics(assets["stats"])
    assert int(stats["tokens"]) == 4 * 32 == assets["summary"]["tokens"]
    assert meta["n_samples"] == 4 and meta["seq_len"] == 32 and meta["seed"] == 0
    assert stats["bi"].dtype == torch.float64 and stats["bi"].numel() == 4
    assert assets["summary"]["tokens_per_s"] > 0 and assets["summary"]["peak_rss_mb"] > 0


@pytest.mark.parametrize("run", [r for r in RUNS if r != "dense"])
def test_compress_saves_a_real_model_that_the_records_describe(assets, run):
    out = assets["root"] / "models" / run
    spec = RUNS[run]
    stages.compress(assets["root"] / "model", spec, assets["calibration"], assets["stats"], out, device="cpu")
    assert read_compression_info(out)["info"]["run"] == run
    dense, _ = stages.load_model(assets["root"] / "model", device="cpu")
    model, tokenizer = stages.load_model(out, device="cpu")
    setting = run_setting(spec, "tiny")
    records = {r["metric"]: r["value"] for r in stages.parameter_records(dense, model, spec, setting)}
    info = read_compression_info(out)["info"]
    if spec["method"] in SPARSE_METHODS:
        assert records["params_total"] == sum(p.numel() for p in dense.parameters())
        assert records["nonzero_total"] < records["params_total"]
        assert records["target_rel_error"] == pytest.approx(0.0, abs=1e-6)  # exactly half of every linear
    else:
        assert records["params_total"] == sum(p.numel() for p in model.parameters())
    if spec["method"] in ("svd_llm", "modegpt") or spec["settings"].get("calibration") == "original":
        assert info["calibration"]["source"] == "statistics"  # no calibration pass of its own
    if spec["target_removed"] is not None:
        assert "target_params" in records
        expected = records["params_total"] / records["target_params"] - 1
        assert records["target_rel_error"] == pytest.approx(expected)
    ppl = stages.perplexity_records_for(
        model,
        tokenizer,
        {"tiny": {"text": str(assets["texts"]["test"]), "window": 32, "max_windows": 2}},
        spec,
        setting,
    )
    values = {r["metric"]: r for r in ppl}
    assert math.isfinite(values["perplexity"]["value"]) and values["scored_tokens"]["value"] == 2 * 31
    assert values["perplexity"]["setting"]["run"] == run and values["perplexity"]["setting"]["window"] == 32


def test_mismatched_calibration_settings_are_refused(assets, tmp_path):
    wrong = {**assets["calibration"], "n_samples": 8}
    with pytest.raises(ValueError, match="n_samples=4"):
        stages.compress(assets["root"] / "model", RUNS["shortgpt-r0.25"], wrong, assets["stats"], tmp_path / "m")
    assert not (tmp_path / "m").exists()


def test_speed_rows_compare_with_the_dense_model_of_the_same_job(assets):
    dense, tokenizer = stages.load_model(assets["root"] / "model", device="cpu")
    model, _ = stages.load_model(assets["root"] / "model", device="cpu")
    options = {"batch": 1, "prefill_len": 8, "decode_tokens": 32, "repeats": 3, "warmup": 1, "device": "cpu"}
    spec = RUNS["dense"]
    rows = stages.speed_records_for(dense, model, tokenizer, options, spec, run_setting(spec))
    values = {r["metric"]: r["value"] for r in rows}
    assert values["prefill_speedup"] == pytest.approx(values["prefill_tok_s"] / values["dense_prefill_tok_s"])
    assert values["dense_drift_prefill"] > 0  # dense measured before and after the run's model
    own = {r["metric"]: r["value"] for r in stages.speed_records_for(None, model, tokenizer, options, spec, {})}
    # the dense run is its own reference; prefill is always timed, the decode rate t(N) - t(1) of a
    # tiny model can be NaN on a loaded machine (non-positive difference), so decode is checked when finite
    assert own["prefill_speedup"] == own["dense_drift_prefill"] == 1.0
    if math.isfinite(own["decode_tok_s"]):
        assert own["decode_speedup"] == own["dense_drift_decode"] == 1.0
    else:
        assert math.isnan(own["decode_speedup"])
    assert {r["setting"]["sparse_kernels"] for r in rows} == {"none"}


def test_missing_inputs_name_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="no config.json"):
        stages.load_model(tmp_path)
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        stages._read_text(tmp_path / "missing.txt")


def test_zeroshot_tasks_are_yaml_files_or_builtin_names(tmp_path, monkeypatch):
    """YAML paths are loaded into task dicts; other entries go to lm-eval as built-in task names."""
    import repro.llm.eval.zeroshot as zeroshot

    seen = {}

    def fake_zero_shot(model, tokenizer, tasks, batch_size, limit):
        seen.update(tasks=tasks, batch_size=batch_size, limit=limit)
        return {
            "piqa": {"acc": 0.5, "acc_norm": 0.75, "stderr": {}, "n": 4, "protocol": {}},
            "local": {"acc": 0.25, "stderr": {}, "n": 4, "protocol": {}},
        }

    monkeypatch.setattr(zeroshot, "zero_shot", fake_zero_shot)
    task_file = tmp_path / "local.yaml"
    task_file.write_text("task: local\noutput_type: multiple_choice\n")
    spec = RUNS["dense"]
    records = stages.zeroshot_records_for(
        None, None, [str(task_file), "piqa"], {"batch_size": 2, "limit": 4}, spec, run_setting(spec)
    )
    assert seen == {"tasks": [{"task": "local", "output_type": "multiple_choice"}, "piqa"], "batch_size": 2, "limit": 4}
    mean = [r for r in records if r["metric"] == "zeroshot_acc"]
    assert mean[0]["value"] == pytest.approx((0.75 + 0.25) / 2)  # acc_norm for piqa, acc for a local task
    with pytest.raises(FileNotFoundError, match="missing.yaml"):
        stages.zeroshot_records_for(None, None, [str(tmp_path / "missing.yaml")], {"batch_size": 2}, spec, {})
