"""Config validation: the three tiers pass; wrong keys, types and values fail naming the key."""

import copy
from pathlib import Path

import pytest
import yaml

from repro.workflow.config import ConfigError, load_and_validate, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
TIERS = {"test": "test.yaml", "default": "config.yaml", "paper": "paper.yaml"}


def _load(name="test.yaml"):
    return yaml.safe_load((ROOT / "config" / name).read_text())


@pytest.mark.parametrize("tier, name", TIERS.items())
def test_every_tier_validates(tier, name):
    config = load_and_validate(ROOT / "config" / name, SCHEMA)
    assert config["tier"] == tier


def test_defaults_are_filled_in():
    config = _load()
    config["heavy_ball"]["functions"]["pl_sin2"].pop("init_radius", None)
    config["stochastic_momentum"]["problems"]["toy_saddle"].pop("batch_size", None)
    validate_config(config, SCHEMA)
    assert config["heavy_ball"]["functions"]["pl_sin2"]["init_radius"] == 4.0
    toy = config["stochastic_momentum"]["problems"]["toy_saddle"]
    assert toy["batch_size"] == 1 and toy["diagnostics"]["grad_floor"] == 0.0


@pytest.mark.parametrize(
    "edit, expected",
    [
        (
            lambda c: c.update(tier="huge"),
            "key 'tier': 'huge' is not allowed; allowed values: ['test', 'default', 'paper']",
        ),
        (lambda c: c.update(papers=["dynamo_typo"]), "key 'papers[0]': 'dynamo_typo' is not allowed; allowed values:"),
        (
            lambda c: c["stochastic_momentum"]["problems"]["toy_saddle"].update(bta=[0.1]),
            "unknown key(s) ['bta'] under 'stochastic_momentum.problems.toy_saddle'; allowed keys:",
        ),
        (
            lambda c: c["stochastic_momentum"]["problems"]["toy_saddle"].update(betas=[0.0, 1.5]),
            "key 'stochastic_momentum.problems.toy_saddle.betas[1]': 1.5 is greater than or equal to the maximum of 1",
        ),
        (
            lambda c: c["heavy_ball"]["functions"]["pl_sin2"].update(dim="fifty"),
            "key 'heavy_ball.functions.pl_sin2.dim': 'fifty' is not of type 'integer'",
        ),
        (
            lambda c: c["heavy_ball"]["functions"]["pl_sin2"].update(methods=["gd", "adam"]),
            "key 'heavy_ball.functions.pl_sin2.methods[1]': 'adam' is not allowed; allowed values:",
        ),
        (
            lambda c: c["heavy_ball"]["functions"]["pl_sin2"].pop("kappas"),
            "key 'heavy_ball.functions.pl_sin2': 'kappas' is a required property",
        ),
        (
            lambda c: c["stochastic_momentum"]["problems"]["toy_saddle"].update(seeds=[0, 0]),
            "key 'stochastic_momentum.problems.toy_saddle.seeds': repeated values in [0, 0]",
        ),
    ],
)
def test_bad_config_names_the_key(edit, expected):
    config = copy.deepcopy(_load())
    edit(config)
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    assert expected in str(err.value)


def test_bad_files_are_named(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_and_validate(tmp_path / "missing.yaml", SCHEMA)
    bad = tmp_path / "bad.yaml"
    bad.write_text("tier: [unclosed\n")
    with pytest.raises(ConfigError, match="bad.yaml is not valid YAML"):
        load_and_validate(bad, SCHEMA)


def test_free_form_options_may_repeat_values():
    """Keyword arguments passed through free-form objects (a loader's options) are not sweep lists."""
    config = copy.deepcopy(_load())
    config["neural_data"]["reach"]["options"]["split"] = [0.4, 0.4, 0.2]
    validate_config(config, SCHEMA)
    config["swap_vae"]["seeds"] = [1, 1]
    with pytest.raises(ConfigError, match=r"key 'swap_vae.seeds'"):
        validate_config(config, SCHEMA)
