"""Architecture adapters: ``get_adapter(model)`` picks the :class:`ModelAdapter` for a causal LM.

Supported (``config.model_type`` -> transformers class -> adapter):

* ``llama``    -> ``LlamaForCausalLM``   -> :class:`LlamaAdapter`   (SmolLM2, LLaMA-2/3)
* ``opt``      -> ``OPTForCausalLM``     -> :class:`OPTAdapter`     (OPT-125m ... 66b, opt-350m)
* ``phi``      -> ``PhiForCausalLM``     -> :class:`PhiAdapter`     (Phi-1, Phi-1.5, Phi-2)
* ``gpt_neox`` -> ``GPTNeoXForCausalLM`` -> :class:`GPTNeoXAdapter` (Pythia)

Compression methods are written once against :class:`ModelAdapter` / :class:`LayerAdapter`; adding an
architecture means writing one adapter module and registering it with :func:`register_adapter`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from .base import FusedProjectionView, LayerAdapter, ModelAdapter
from .gpt_neox import GPTNeoXAdapter, GPTNeoXLayerAdapter, interleaved_qkv_rows
from .llama import LlamaAdapter, LlamaLayerAdapter
from .opt import OPTAdapter, OPTLayerAdapter
from .phi import PhiAdapter, PhiLayerAdapter

if TYPE_CHECKING:
    from transformers import PreTrainedModel

__all__ = [
    "ADAPTERS",
    "FusedProjectionView",
    "GPTNeoXAdapter",
    "GPTNeoXLayerAdapter",
    "LayerAdapter",
    "LlamaAdapter",
    "LlamaLayerAdapter",
    "ModelAdapter",
    "OPTAdapter",
    "OPTLayerAdapter",
    "PhiAdapter",
    "PhiLayerAdapter",
    "get_adapter",
    "interleaved_qkv_rows",
    "register_adapter",
    "supported_model_types",
]

#: ``config.model_type`` -> adapter class.
ADAPTERS: dict[str, type[ModelAdapter]] = {
    cls.model_type: cls for cls in (LlamaAdapter, OPTAdapter, PhiAdapter, GPTNeoXAdapter)
}


def register_adapter(adapter_cls: type[ModelAdapter]) -> type[ModelAdapter]:
    """Register ``adapter_cls`` under its ``model_type`` (usable as a class decorator)."""
    ADAPTERS[adapter_cls.model_type] = adapter_cls
    return adapter_cls


def supported_model_types() -> list[str]:
    """The ``config.model_type`` values :func:`get_adapter` accepts, sorted."""
    return sorted(ADAPTERS)


def get_adapter(model: PreTrainedModel) -> ModelAdapter:
    """Return the adapter for a ``*ForCausalLM`` model, dispatching on ``config.model_type``.

    Raises:
        ValueError: when the model type (or, for a supported type, the model class -- e.g. a bare
            ``LlamaModel`` without LM head) is not supported; the message names the model type,
            the class and the supported types.
    """
    config = getattr(model, "config", None)
    model_type = getattr(config, "model_type", None)
    cls = ADAPTERS.get(model_type) if model_type is not None else None
    if cls is None:
        raise ValueError(
            f"no compression adapter for model_type {model_type!r} ({type(model).__name__}); "
            f"supported model types: {', '.join(supported_model_types())}"
        )
    if not cls.accepts(model):
        raise ValueError(
            f"model_type {model_type!r} is supported only as {', '.join(cls.model_class_names)}, "
            f"got {type(model).__name__}; supported model types: {', '.join(supported_model_types())}"
        )
    return cls(model)
