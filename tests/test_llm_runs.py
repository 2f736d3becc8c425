"""Run expansion of the llm_compression config section (repro.llm.runs)."""

import pytest
import yaml

from repro.llm.runs import expand_runs, run_setting

SECTION = yaml.safe_load(
    """
convention: total
methods:
  slicegpt:
    targets: [0.2, 0.3]
    runs: {s0.20: {sparsity: 0.2}}
    options: {round_to: 8}
  shortgpt: {targets: [0.25]}
  wanda:
    runs: {2of4: {pattern: "2:4"}, u0.50: {sparsity: 0.5}}
"""
)


def test_every_target_and_named_run_becomes_one_run():
    runs = expand_runs(SECTION)
    assert list(runs) == [
        "dense",
        "slicegpt-r0.20",
        "slicegpt-r0.30",
        "slicegpt-s0.20",
        "shortgpt-r0.25",
        "wanda-2of4",
        "wanda-u0.50",
    ]
    assert runs["slicegpt-r0.30"]["settings"] == {"round_to": 8, "target_removed": 0.3, "convention": "total"}
    assert runs["slicegpt-s0.20"]["settings"] == {"round_to": 8, "sparsity": 0.2}
    assert runs["slicegpt-s0.20"]["target_removed"] is None
    assert runs["shortgpt-r0.25"]["settings"] == {"ratio": 0.25, "convention": "total"}
    assert runs["dense"]["settings"] == {}


def test_series_labels_separate_targets_from_nominal_knobs():
    runs = expand_runs(SECTION)
    labels = {r: s["series"] for r, s in runs.items()}
    assert labels["slicegpt-r0.20"] == labels["slicegpt-r0.30"] == "SliceGPT"
    assert labels["slicegpt-s0.20"] == "SliceGPT (nominal width)"
    assert labels["wanda-2of4"] == "Wanda 2:4"
    assert labels["wanda-u0.50"] == "Wanda unstructured"
    assert labels["dense"] == "dense"


def test_run_setting_is_what_the_rows_record():
    spec = expand_runs(SECTION)["slicegpt-r0.20"]
    setting = run_setting(spec, "austen_train")
    assert setting == {
        "round_to": 8,
        "target_removed": 0.2,
        "convention": "total",
        "run": "slicegpt-r0.20",
        "series": "SliceGPT",
        "calibration_set": "austen_train",
    }


def test_a_target_for_a_method_without_one_names_the_key():
    with pytest.raises(ValueError, match=r"llm_compression.methods.wanda.targets"):
        expand_runs({"methods": {"wanda": {"targets": [0.2]}}})


def test_bad_run_names_and_duplicates_are_refused():
    with pytest.raises(ValueError, match="run name"):
        expand_runs({"methods": {"wanda": {"runs": {"2:4": {"pattern": "2:4"}}}}})
    with pytest.raises(ValueError, match="defined twice"):
        expand_runs({"methods": {"slicegpt": {"targets": [0.2], "runs": {"r0.20": {"sparsity": 0.2}}}}})
