"""Small helpers shared by the evaluation modules: where a model lives and in which dtype."""

from __future__ import annotations

import torch


def model_device(model) -> torch.device:
    """The device of the model's first parameter (CPU for a parameterless module)."""
    for param in model.parameters():
        return param.device
    return torch.device("cpu")


def model_dtype(model) -> str:
    """The model's floating-point dtype as a plain string (``"float32"``, ``"bfloat16"``, ...)."""
    dtype = getattr(model, "dtype", None)
    if not isinstance(dtype, torch.dtype):
        dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), torch.float32)
    return str(dtype).removeprefix("torch.")


def place_model(model, device=None) -> torch.device:
    """Resolve ``device`` (``None``: where the model already is); move the model there if needed."""
    current = model_device(model)
    if device is None:
        return current
    target = torch.device(device)
    if target.type == "cuda" and target.index is None:
        target = torch.device("cuda", torch.cuda.current_device())
    if target != current:
        model.to(target)
    return target
