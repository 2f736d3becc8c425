"""The materialisation contract: a compressed model is a real, smaller model on disk.

Every method saves its result with ``save_compressed`` into a folder holding
safetensors weights, the tokenizer and ``compression.json`` (method, settings,
parameter counts, which loader rebuilds it).  ``load_compressed(path)`` reloads it
without ``trust_remote_code``:

* loader ``"hf"``: the result is a standard transformers architecture (ShortGPT's
  shallower model, Wanda's and SparseGPT's zeroed weights, a model whose config carries
  its new widths); ``from_pretrained`` rebuilds it;
* any other loader name: a function registered with ``register_loader`` in this
  package (e.g. SliceGPT's layers with shortcut matrices) rebuilds it from the folder.

Writes are atomic (a hidden temporary folder renamed into place), so an interrupted
save never leaves a folder that looks complete.
"""

from __future__ import annotations

import importlib
import json
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from repro.io import atomic_dir

COMPRESSION_FILE = "compression.json"
LOADERS: dict[str, Callable[..., PreTrainedModel]] = {}
# loader name -> module whose import registers it (so a fresh process can load any saved model)
LOADER_MODULES = {
    "slicegpt": "repro.llm.methods.slicegpt_modules",
    "modegpt": "repro.llm.methods.modegpt_modules",
    "disp_llm": "repro.llm.methods.disp_modules",
    "svd_llm": "repro.llm.methods.svd_llm",
}


def register_loader(name: str):
    """Decorator: ``fn(path, record, dtype, attn_implementation) -> model`` rebuilds models saved with ``loader=name``."""

    def wrap(fn):
        LOADERS[name] = fn
        return fn

    return wrap


def save_compressed(
    model: PreTrainedModel,
    tokenizer,
    path,
    *,
    method: str,
    info: dict,
    loader: str = "hf",
    write_weights: Callable[[PreTrainedModel, Path], None] | None = None,
) -> Path:
    """Save ``model`` (+ tokenizer + ``compression.json``) atomically into the folder ``path``.

    ``write_weights(model, folder)`` replaces ``save_pretrained`` for custom loaders; it must
    write safetensors only.  ``info`` must be JSON-serialisable (settings, counts, indices).
    """
    path = Path(path)
    with atomic_dir(path) as tmp:
        if write_weights is None:
            model.save_pretrained(tmp, safe_serialization=True)
        else:
            write_weights(model, tmp)
        if tokenizer is not None:
            tokenizer.save_pretrained(tmp)
        record = {"method": method, "loader": loader, "info": info}
        (tmp / COMPRESSION_FILE).write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
        if any(p.suffix in (".bin", ".pt", ".pth") for p in tmp.iterdir()):
            raise ValueError(f"{path}: compressed models are saved as safetensors only")
    return path


def read_compression_info(path) -> dict:
    file = Path(path) / COMPRESSION_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} is not a compressed model folder: {COMPRESSION_FILE} is missing")
    return json.loads(file.read_text())


def load_compressed(path, dtype: torch.dtype = torch.float32, attn_implementation: str | None = None):
    """(model in eval mode, tokenizer, compression record) from a folder written by ``save_compressed``.

    ``attn_implementation`` (e.g. "eager", "sdpa") is passed to transformers; None keeps its default.
    """
    path = Path(path)
    record = read_compression_info(path)
    loader = record.get("loader", "hf")
    if loader == "hf":
        model = AutoModelForCausalLM.from_pretrained(
            path, dtype=dtype, local_files_only=True, trust_remote_code=False, attn_implementation=attn_implementation
        )
    elif loader in LOADERS or loader in LOADER_MODULES:
        if loader not in LOADERS:
            importlib.import_module(LOADER_MODULES[loader])
        model = LOADERS[loader](path, record, dtype, attn_implementation)
    else:
        raise ValueError(f"{path}: no loader {loader!r} registered; known: {['hf', *sorted(LOADERS)]}")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    return model.eval(), tokenizer, record


def unique_state_dict(model: PreTrainedModel) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """State dict with every shared tensor stored once: ``(state, {dropped key: kept key})``."""
    state: dict[str, torch.Tensor] = {}
    seen: dict[int, str] = {}
    dropped: dict[str, str] = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if id(value) in seen:
            dropped[key] = seen[id(value)]
            continue
        seen[id(value)] = key
        state[key] = value.detach().cpu().contiguous()
    return state, dropped


def layers_and_rows(model: PreTrainedModel, layers: list, record_file: str) -> list[tuple[Any, Mapping[str, Any]]]:
    """Pair each decoder :class:`LayerAdapter` with its row of a structure record (``record_file``),
    checking that the record has one row per layer, in order."""
    from repro.llm.adapters import get_adapter

    adapter = get_adapter(model)
    if len(layers) != adapter.num_layers:
        raise ValueError(f"{record_file} describes {len(layers)} layers, the model has {adapter.num_layers}")
    pairs = list(zip(adapter.layers(), layers))
    for la, row in pairs:
        if int(row["layer"]) != la.index:
            raise ValueError(f"{record_file} row {row['layer']} out of order (expected layer {la.index})")
    return pairs


def write_structured_weights(
    model: PreTrainedModel,
    folder,
    *,
    loader: str,
    layers: list,
    record_file: str,
    weights_file: str,
    format_version: int,
    indent: int | None = None,
) -> None:
    """Config, generation config, a JSON record of the per-layer structure and the weights (safetensors).

    The shared writer of the loaders whose modules change shape per layer (MoDeGPT, DISP-LLM): the
    record holds ``format_version``, ``model_type``, ``num_layers``, ``shared_keys`` (tied tensors
    stored once) and ``layers``; the safetensors header repeats the first ones under ``loader``.
    """
    from safetensors.torch import save_file

    from repro.llm.adapters import get_adapter

    folder = Path(folder)
    adapter = get_adapter(model)
    model.config.save_pretrained(folder)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        generation_config.save_pretrained(folder)
    state, dropped = unique_state_dict(model)
    record = {
        "format_version": format_version,
        "model_type": adapter.model_type,
        "num_layers": adapter.num_layers,
        "shared_keys": dropped,
        "layers": layers,
    }
    (folder / record_file).write_text(json.dumps(record, indent=indent) + "\n")
    header = {"format_version": format_version, "model_type": adapter.model_type, "shared_keys": dropped}
    save_file(state, str(folder / weights_file), metadata={"format": "pt", loader: json.dumps(header)})


def read_structured_weights(
    path,
    *,
    loader: str,
    label: str,
    record_file: str,
    weights_file: str,
    format_version: int,
    restructure: Callable[[PreTrainedModel, list], Any],
    dtype: torch.dtype = torch.float32,
    attn_implementation: str | None = None,
) -> PreTrainedModel:
    """Rebuild a model written by :func:`write_structured_weights` (no pickle, no remote code).

    Checks the format version in the safetensors header (under ``loader``) and in the record, builds
    the transformers model from its config, applies ``restructure(model, record["layers"])`` and
    loads every tensor, checking that nothing is missing or unexpected and that tensors saved once
    as shared are still tied.  ``label`` names the method in error messages.
    """
    from safetensors import safe_open
    from safetensors.torch import load_file
    from transformers import AutoConfig

    path = Path(path)
    file, record_path = path / weights_file, path / record_file
    with safe_open(str(file), framework="pt") as handle:
        header = json.loads((handle.metadata() or {}).get(loader, "null") or "null")
    if not header or int(header.get("format_version", -1)) != format_version:
        raise ValueError(f"{file} is not a {label} model of format version {format_version} (header: {header})")
    record = json.loads(record_path.read_text())
    if int(record.get("format_version", -1)) != format_version:
        raise ValueError(f"{record_path}: unsupported format version {record.get('format_version')}")
    config = AutoConfig.from_pretrained(path, local_files_only=True, trust_remote_code=False)
    kwargs: dict[str, Any] = {"dtype": dtype, "trust_remote_code": False}
    if attn_implementation is not None:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_config(config, **kwargs)
    restructure(model, record["layers"])
    missing, unexpected = model.load_state_dict(load_file(str(file)), strict=False)
    shared = dict(header.get("shared_keys", {}))
    bad_missing = [key for key in missing if key not in shared]
    if bad_missing or unexpected:
        raise ValueError(f"{file}: state dict mismatch, missing {bad_missing[:5]}, unexpected {unexpected[:5]}")
    current = model.state_dict(keep_vars=True)
    untied = [key for key, kept in shared.items() if current.get(key) is not current.get(kept)]
    if untied:
        raise ValueError(f"{file}: {untied} were saved as shared tensors but are separate in the rebuilt model")
    return model.eval()
