"""Method dispatcher: a method kind -> its ``"module:function"``, imported only when used.

Every method function has the signature ``fn(model, calibration_ids, **settings) -> (model, info)``
and compresses ``model`` in place.  :func:`compress` adds the loader name that
:func:`repro.llm.compressed.save_compressed` must record so that ``load_compressed`` rebuilds the
result: ``"hf"`` for models that stay standard transformers architectures (dense, Wanda's and
SparseGPT's zeroed weights, ShortGPT's shallower model), ``"slicegpt"`` for SliceGPT (shortcut
matrices), ``"modegpt"`` / ``"disp_llm"`` for their resized layers, ``"svd_llm"`` for SVD-LLM's
factorised linears.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

__all__ = ["LOADERS", "METHODS", "compress", "dense", "resolve"]

#: method kind -> ``"module:function"`` (resolved lazily by :func:`resolve`).
METHODS: dict[str, str] = {
    "dense": "repro.llm.methods.registry:dense",
    "wanda": "repro.llm.methods.wanda:wanda",
    "shortgpt": "repro.llm.methods.shortgpt:shortgpt",
    "slicegpt": "repro.llm.methods.slicegpt:slicegpt",
    "modegpt": "repro.llm.methods.modegpt:modegpt",
    "disp_llm": "repro.llm.methods.disp_llm:disp_llm",
    "sparsegpt": "repro.llm.methods.sparsegpt:sparsegpt",
    "svd_llm": "repro.llm.methods.svd_llm:svd_llm",
}

#: method kind -> loader name for ``save_compressed``; kinds not listed use ``"hf"``.
LOADERS: dict[str, str] = {
    "slicegpt": "slicegpt",
    "modegpt": "modegpt",
    "disp_llm": "disp_llm",
    "svd_llm": "svd_llm",
}


def dense(model: nn.Module, calibration_ids: torch.Tensor | None = None, **settings: Any) -> tuple[nn.Module, dict]:
    """The uncompressed reference: returns ``model`` unchanged and its parameter counts (no settings)."""
    if settings:
        raise ValueError(f"method 'dense' takes no settings, got {sorted(settings)}")
    from repro.llm.adapters import get_adapter
    from repro.llm.params import parameter_counts

    adapter = get_adapter(model)
    counts = parameter_counts(model, adapter)
    return model, {"method": "dense", "counts_dense": counts, "counts_after": counts}


def _check_kind(kind: str) -> str:
    if kind not in METHODS:
        raise ValueError(f"unknown compression method {kind!r}; allowed kinds: {', '.join(sorted(METHODS))}")
    return METHODS[kind]


def resolve(kind: str) -> Callable[..., tuple[nn.Module, dict]]:
    """Import and return the function of method ``kind`` (``ValueError`` for an unknown kind)."""
    target = _check_kind(kind)
    module_name, sep, attr = target.partition(":")
    if not sep or not module_name or not attr:
        raise ValueError(f"method {kind!r}: entry {target!r} is not of the form 'module:function'")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ImportError(f"method {kind!r}: cannot import {module_name} ({exc})") from exc
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ImportError(f"method {kind!r}: {module_name} has no function {attr!r}") from None


def compress(
    kind: str, model: nn.Module, tokenizer, calibration_ids: torch.Tensor | None, **settings: Any
) -> tuple[nn.Module, dict, str]:
    """Compress ``model`` with method ``kind``; return ``(model, info, loader)``.

    ``tokenizer`` is not used by the methods (the calibration windows are already token ids); it is
    accepted so that callers can pass what ``save_compressed`` will need next.  ``settings`` go to
    the method function as keyword arguments.  ``loader`` is :data:`LOADERS`' entry of the kind,
    ``"hf"`` for kinds not listed there.
    """
    _check_kind(kind)
    fn = resolve(kind)
    model, info = fn(model, calibration_ids, **settings)
    info = dict(info)
    info.setdefault("method", kind)
    return model, info, LOADERS.get(kind, "hf")
