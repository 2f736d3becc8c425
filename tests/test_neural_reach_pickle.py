"""The paper-tier reaching loader on a hand-made pickle in the MYOW repository's layout."""

import math
import os
import pickle

import numpy as np
import pytest

from repro.neural.reach_pickle import find_pickle, reach_pickle


def _session(n_trials=10, n_units=3, seed=0):
    rng = np.random.default_rng(seed)
    lengths = rng.integers(2, 5, size=n_trials)
    targets = np.array([1, 3, 5, 7, 9, 11, 13, 15])  # raw ids; mapped to 0..7 by sorting
    data = {"firing_rates": [], "velocity": [], "labels": [], "sequence": [], "position": []}
    for t, n in enumerate(lengths):
        data["firing_rates"].append(rng.integers(0, 5, size=(n, n_units)) / 0.1)
        data["velocity"].append(rng.normal(size=(n, 2)))
        data["labels"].append(np.full((n, 1), targets[t % 8], dtype=float))
        data["sequence"].append(np.full((n, 1), t, dtype=float))
        data["position"].append(np.zeros((n, 2)))
    return {"data": data}, lengths


def test_reach_pickle_matches_the_file(tmp_path):
    session, lengths = _session()
    path = tmp_path / "artifact" / "full-chewie-10032013-0.10.pkl"
    path.parent.mkdir()
    path.write_bytes(pickle.dumps(session))
    assert find_pickle(path.parent) == path
    data = reach_pickle(path.parent, test=0.2, val=0.25)
    rates = np.concatenate(session["data"]["firing_rates"])
    assert np.array_equal(data.counts.numpy(), np.rint(rates * 0.1).astype(np.float32))
    assert data.trial.tolist() == np.repeat(np.arange(10), lengths).tolist()
    assert data.time.tolist() == np.concatenate([np.arange(n) for n in lengths]).tolist()
    # trials 0..7 carry raw ids 1..15 -> 0..7, trials 8, 9 wrap to 0, 1
    trial_dir = [t % 8 for t in range(10)]
    assert data.direction.tolist() == np.repeat(trial_dir, lengths).tolist()
    assert np.allclose(data.angle.numpy(), 2 * math.pi / 8 * data.direction.numpy())
    # 10 trials: last 2 test (the official 80/20 in file order), then 2 of the first 8 validation
    trial_split = [0] * 6 + [1] * 2 + [2] * 2
    assert data.split.tolist() == np.repeat(trial_split, lengths).tolist()
    assert np.allclose(data.velocity.numpy(), np.concatenate(session["data"]["velocity"]))


def test_reach_pickle_rejects_code_and_bad_layouts(tmp_path):
    evil = tmp_path / "evil.pkl"
    evil.write_bytes(pickle.dumps({"data": {"firing_rates": [os.system]}}))  # a callable by reference
    with pytest.raises(ValueError, match="refusing to load|not a processed reaching pickle"):
        reach_pickle(evil)
    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps({"data": {"firing_rates": [np.zeros((2, 2))] * 3}}))
    with pytest.raises(ValueError, match=r"lacks \['velocity', 'labels'\]"):
        reach_pickle(bad)
    with pytest.raises(FileNotFoundError, match="download rule"):
        find_pickle(tmp_path / "missing")


def test_load_trials_reads_an_artifact_folder(tmp_path):
    from repro.neural.stages import load_trials

    session, lengths = _session(n_trials=6)
    folder = tmp_path / "artifacts" / "reaching_chewie_1"
    folder.mkdir(parents=True)
    (folder / "full-chewie-10032013-0.10.pkl").write_bytes(pickle.dumps(session))
    data = load_trials("reach_pickle", {"artifact": "reaching_chewie_1", "resources_dir": str(tmp_path)})
    assert data.counts.shape == (int(lengths.sum()), 3)
    with pytest.raises(ValueError, match=r"unknown option\(s\) \['bins'\]"):
        load_trials("reach_pickle", {"artifact": "reaching_chewie_1", "bins": 2})
