"""Stages, figures and claims of the spectral-imbalance paper (repro.spectral.stages / report)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from repro.data.images import prepare_tiny_images
from repro.report.rows import tidy_rows, validate_table
from repro.spectral import measures as M
from repro.spectral import report, stages

PROV = {
    "git_commit": "x",
    "code_digest": "x",
    "torch_version": "x",
    "transformers_version": "x",
    "lm_eval_version": "x",
    "device": "cpu",
}
SMALL = {"n_seeds": 3, "p": 40, "n": 80, "large_p": 100, "large_seeds": 1, "multiclass_seeds": 1, "mc_per_class": 4000}


def _table(records, experiment=None):
    if experiment is None:
        by = {}
        for r in records:
            by.setdefault(r["experiment"], []).append(r)
        parts = [
            tidy_rows(rs, paper="spectral_imbalance", experiment=e, tier="test", provenance=PROV)
            for e, rs in by.items()
        ]
        return pd.concat(parts, ignore_index=True)
    return tidy_rows(records, paper="spectral_imbalance", experiment=experiment, tier="test", provenance=PROV)


@pytest.fixture(scope="module")
def synthetic_table():
    return _table(stages.synthetic_records(SMALL))


def test_synthetic_records_follow_the_contract(synthetic_table):
    validate_table(synthetic_table, "synthetic")
    assert set(synthetic_table.experiment) == {"alpha_grid", "alpha_sweep", "ridge_sweep", "large_p", "multiclass"}
    assert set(synthetic_table.seed[synthetic_table.experiment == "alpha_grid"]) == {0, 1, 2}


def test_unknown_synthetic_option_is_rejected():
    with pytest.raises(ValueError, match="n_seed"):
        stages.synthetic_records({"n_seed": 3})


def test_synthetic_claims(synthetic_table):
    claims = {c.claim_id: c for c in report.spectral_imbalance_claims(synthetic_table)}
    # the conditional formula is exact: it must agree with Monte Carlo on fresh samples
    assert claims["exact_matches_monte_carlo"].holds is True
    assert 0 <= claims["exact_matches_monte_carlo"].measured <= report.Z_TOLERANCE
    for cid in ("equal_spectra_no_gap", "flatter_class_worse", "gap_grows_with_imbalance"):
        assert isinstance(claims[cid].holds, bool) and np.isfinite(claims[cid].measured), cid
    # no encoder or augmentation rows: those claims say so instead of vanishing
    assert claims["encoder_error_tracks_spectra"].holds is None
    assert claims["augmentation_imbalance_tracks_gap"].holds is None


def _toy_features(seed=0, n=120, p=30):
    """Class 0: isotropic (flat spectrum); class 1: variance on 2 directions (steep); same trace."""
    rng = np.random.default_rng(seed)
    out = {}
    for split, m in (("train", n), ("test", n)):
        x0 = rng.normal(size=(m, p)) + 1.0
        x1 = rng.normal(size=(m, p)) * 0.0
        x1[:, :2] = rng.normal(size=(m, 2)) * np.sqrt(p / 2)
        x1 -= 1.0
        out[f"x_{split}"] = np.concatenate([x0, x1]).astype(np.float32)
        out[f"y_{split}"] = np.repeat([0, 1], m)
    out["classes"] = np.array(["flat", "steep"])
    return out


def test_feature_set_measures_known_answers():
    feats = _toy_features()
    recs = stages.feature_set_measures(feats, probe={"probe": "logistic", "grid": [1.0]}, seed=0)
    df = pd.DataFrame(recs)
    per_class = df[df.setting.map(bool)]
    overall = df[~df.setting.map(bool)].set_index("metric")["value"]
    acc = {r["setting"]["class"]: r["value"] for r in recs if r["metric"] == "class_accuracy"}
    assert set(acc) == {"flat", "steep"}
    assert overall["gap"] == pytest.approx(abs(acc["flat"] - acc["steep"]))
    assert overall["worst_class_accuracy"] == pytest.approx(min(acc.values()))
    # spectra are those of the training features of each class
    lam = M.class_eigenvalues(feats["x_train"], feats["y_train"], classes=[0, 1])
    eff = {r["setting"]["class"]: r["value"] for r in recs if r["metric"] == "effective_rank"}
    assert eff["flat"] == pytest.approx(M.effective_rank(lam[0]))
    assert eff["steep"] == pytest.approx(M.effective_rank(lam[1]))
    assert eff["flat"] > 10 and eff["steep"] < 2.5
    assert overall["mean_spectral_imbalance"] == pytest.approx(M.mean_spectral_imbalance(lam))
    assert len(per_class) == 2 * (2 + len(stages.SUMMARIES))


def test_unknown_probe_option_is_rejected():
    with pytest.raises(ValueError, match="unknown probe option"):
        stages.feature_set_measures(_toy_features(), probe={"C": 1.0})


@pytest.fixture(scope="module")
def tiny_images(tmp_path_factory):
    path = tmp_path_factory.mktemp("img") / "images.npz"
    prepare_tiny_images(path)
    return path


SPEC = {"source": "images", "encoder": "pixels", "n_per_class_train": 30, "n_per_class_test": 15}


def test_feature_set_and_unaugmented_strategy_agree(tiny_images, tmp_path):
    """Strategy `none` re-encodes the same balanced subset: its probe equals the feature set's."""
    spec = {**SPEC, "data": str(tiny_images)}
    feats = stages.build_feature_set(spec, data=tiny_images, artifact=None, seed=1, output=tmp_path / "f.npz")
    assert (tmp_path / "f.npz").is_file()
    assert np.bincount(feats["y_train"]).tolist() == [30] * 4
    probe = {"grid": [1.0]}
    enc = stages.encoder_records(feats, feature_set="tiny", spec=spec, probe=probe, seed=1)
    aug = stages.augmentation_records("none", [], spec=spec, data=tiny_images, artifact=None, seed=1, probe=probe)
    value = {(r["metric"], r["setting"].get("class")): r["value"] for r in enc}
    for r in aug:
        assert r["method"] == "none" and r["model"] == "pixels"
        assert r["value"] == pytest.approx(value[(r["metric"], r["setting"].get("class"))], nan_ok=True)


def test_augmentation_changes_the_training_features(tiny_images):
    spec = {**SPEC, "data": str(tiny_images)}
    steps = [{"name": "noise", "sigma": 0.3}]
    recs = stages.augmentation_records(
        "noise", steps, spec=spec, data=tiny_images, artifact=None, seed=0, n_copies=1, probe={"grid": [1.0]}
    )
    base = stages.augmentation_records(
        "none", [], spec=spec, data=tiny_images, artifact=None, seed=0, probe={"grid": [1.0]}
    )
    tr = {(r["metric"], r["setting"].get("class")): r["value"] for r in recs}
    tb = {(r["metric"], r["setting"].get("class")): r["value"] for r in base}
    # noise adds isotropic variance: every class's trace grows
    for c in ("square", "disc", "horizontal bar", "vertical bar"):
        assert tr[("trace", c)] > tb[("trace", c)]
    assert all(r["setting"]["augment"] == steps for r in recs)
    table = _table(recs, "augmentation")
    validate_table(table, "augmentation")


def test_bad_feature_set_specs(tiny_images):
    with pytest.raises(ValueError, match="source"):
        stages.build_feature_set(
            {"source": "audio", "encoder": "pixels"}, data=tiny_images, artifact=None, seed=0, output=None
        )
    with pytest.raises(ValueError, match="minilm"):
        stages.build_feature_set(
            {"source": "wordnet_glosses", "encoder": "pixels"}, data=tiny_images, artifact=None, seed=0, output=None
        )
    with pytest.raises(ValueError, match="not one of"):
        stages.augmentation_records(
            "x", [{"name": "flip"}], spec={**SPEC}, data=tiny_images, artifact=None, seed=0, classes=["zebra"]
        )


def test_figures_and_all_claims_from_a_full_table(synthetic_table, tiny_images, tmp_path):
    spec = {**SPEC, "data": str(tiny_images)}
    parts = [synthetic_table]
    for encoder in ("pixels", "pca"):
        s = {**spec, "encoder": encoder, **({"options": {"n_components": 6}} if encoder == "pca" else {})}
        f = stages.build_feature_set(s, data=tiny_images, artifact=None, seed=0, output=None)
        parts.append(
            _table(
                stages.encoder_records(f, feature_set=f"tiny_{encoder}", spec=s, probe={"grid": [1.0]}, seed=0),
                "encoders",
            )
        )
    for name, steps in {
        "none": [],
        "flip": [{"name": "flip"}],
        "noise": [{"name": "noise", "sigma": 0.2}],
        "cutout": [{"name": "cutout", "size": 6}],
    }.items():
        recs = stages.augmentation_records(
            name, steps, spec=spec, data=tiny_images, artifact=None, seed=0, n_copies=1, probe={"grid": [1.0]}
        )
        parts.append(_table(recs, "augmentation"))
    table = pd.concat(parts, ignore_index=True)
    validate_table(table, "all")
    claims = {c.claim_id: c for c in report.spectral_imbalance_claims(table)}
    assert claims["augmentation_imbalance_tracks_gap"].holds is not None
    # only reference encoders here: the pretrained-encoder claim has nothing to judge
    assert claims["encoder_error_tracks_spectra"].holds is None
    for fn, name in (
        (report.plot_synthetic, "s.png"),
        (report.plot_encoders, "e.png"),
        (report.plot_augmentation, "a.png"),
    ):
        fn(table, tmp_path / name)
        assert (tmp_path / name).stat().st_size > 10_000
