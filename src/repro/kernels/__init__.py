"""GPU hot paths of the pipeline: each kernel is a pure-torch reference plus a Triton implementation.

Every kernel registered here has

* a **reference** written in plain torch: runs on any device, is what CPU tiers use, and is the
  definition the Triton version is tested against;
* a **Triton** implementation for CUDA tensors;
* optionally a list of benchmark cases that ``python -m repro.bench kernels`` times.

Choosing the backend
--------------------
``dispatch(name, *tensors)`` returns the implementation to call; each kernel's public function
(e.g. :func:`repro.kernels.nm_sparsity.wanda_nm_mask`) calls it for you.  The choice is made by the
environment variable ``REPRO_KERNELS`` (or a ``backend=`` argument, which wins over it):

``auto`` (default)
    Triton when every tensor argument is a CUDA tensor, Triton is importable (and not in
    interpreter mode), the kernel supports the arguments (dtype, sizes) and its Triton version is
    not marked slower than the reference (``Kernel.auto_triton``); the reference otherwise.  CPU tensors always get the reference, even with ``TRITON_INTERPRET=1``: the
    interpreter is a testing tool, far slower than the reference.
``reference``
    Always the reference.
``triton``
    Always Triton; an error when that is impossible.  Triton compiles for GPUs only, so CPU tensors
    are accepted only when Triton runs in its interpreter: with ``TRITON_INTERPRET=1`` each kernel
    program is executed by Triton's NumPy interpreter on the CPU, which is how the tests check the
    Triton code on a machine without a GPU (slow; for tests only).  Set the variable **before
    Python starts** (``TRITON_INTERPRET=1 REPRO_KERNELS=triton python ...``): Triton decides at
    ``triton.jit`` time, and its own standard library (``tl.sum``, ``tl.zeros``, ...) is wrapped when
    ``triton`` is first imported, so setting it later leaves a half-interpreted Triton.
    Forcing Triton on CPU tensors without the interpreter, or with the variable set too late, raises
    :class:`KernelBackendError` with that advice rather than Triton's opaque ``0 active drivers``.

``available_backends()`` says which backends can run on this machine, ``KERNELS`` lists the
registered kernels.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Callable

import torch

ENV_VAR = "REPRO_KERNELS"
MODES = ("auto", "reference", "triton")
BACKENDS = ("reference", "triton")


class KernelBackendError(RuntimeError):
    """The requested backend cannot run these arguments on this machine."""


@dataclass(frozen=True)
class BenchCase:
    """One benchmark problem: ``make()`` returns the ``(args, kwargs)`` for the kernel call."""

    shape: str
    dtype: str
    make: Callable[[], tuple[tuple, dict]]


@dataclass(frozen=True)
class Kernel:
    """A registered kernel.

    ``triton_supports(*args, **kwargs)`` returns ``None`` when the Triton implementation handles
    these arguments, else a short reason (auto mode then uses the reference, forced Triton raises).
    ``bench_cases(device)`` lists the problems to time on ``device``.
    """

    name: str
    reference: Callable[..., Any]
    triton: Callable[..., Any] | None
    summary: str
    paper: str = ""
    triton_supports: Callable[..., str | None] = field(default=lambda *a, **k: None)
    bench_cases: Callable[[torch.device], list[BenchCase]] = field(default=lambda device: [])
    # False where the Triton version measured slower than the reference on a GPU: ``auto`` then keeps
    # the reference, and ``REPRO_KERNELS=triton`` (or ``backend="triton"``) still selects Triton.
    auto_triton: bool = True

    def implementation(self, backend: str) -> Callable[..., Any]:
        if backend == "reference":
            return self.reference
        if backend == "triton":
            if self.triton is None or not triton_available():
                raise KernelBackendError(f"kernel {self.name!r}: Triton is not importable on this machine")
            return self.triton
        raise ValueError(f"unknown backend {backend!r}; expected one of {BACKENDS}")


KERNELS: dict[str, Kernel] = {}


def register(kernel: Kernel) -> Kernel:
    if kernel.name in KERNELS:
        raise ValueError(f"kernel {kernel.name!r} is already registered")
    KERNELS[kernel.name] = kernel
    return kernel


def triton_available() -> bool:
    """True when ``import triton`` works (it does not say a GPU is there)."""
    try:
        import triton  # noqa: F401
    except ImportError:
        return False
    return True


def triton_interpret_enabled() -> bool:
    """True when ``TRITON_INTERPRET`` is set now (see :func:`triton_interpreter_active` for whether it took)."""
    try:
        from triton import knobs

        return bool(knobs.runtime.interpret)
    except (ImportError, AttributeError):
        return os.environ.get("TRITON_INTERPRET", "").strip().lower() in ("1", "true", "on", "yes")


def triton_interpreter_active() -> bool:
    """True when Triton was imported with ``TRITON_INTERPRET=1``, so its kernels run in the CPU interpreter."""
    try:
        from triton.language import standard
        from triton.runtime.interpreter import InterpretedFunction
    except ImportError:
        return False
    return isinstance(getattr(standard, "zeros", None), InterpretedFunction)


def triton_cpu_error(name: str, device: Any) -> str:
    """The message for Triton asked to run on non-CUDA tensors without a working interpreter."""
    if triton_interpret_enabled():
        return (
            f"Triton for kernel {name!r} on {device} tensors: TRITON_INTERPRET=1 was set after triton was "
            "imported, so Triton is not in interpreter mode. Set it before Python starts, e.g. "
            f"`TRITON_INTERPRET=1 {ENV_VAR}=triton python ...`."
        )
    return (
        f"Triton for kernel {name!r} on {device} tensors: Triton only compiles for GPUs. Move the tensors "
        "to CUDA, set TRITON_INTERPRET=1 before starting Python to run Triton through its CPU interpreter "
        f"(slow, for tests), or use {ENV_VAR}=auto."
    )


def available_backends() -> tuple[str, ...]:
    """Backends that can run on this machine: the reference always; Triton with CUDA or the interpreter."""
    if triton_available() and (torch.cuda.is_available() or triton_interpreter_active()):
        return BACKENDS
    return ("reference",)


def kernel_mode() -> str:
    """The ``REPRO_KERNELS`` setting: ``auto`` (default), ``reference`` or ``triton``."""
    mode = os.environ.get(ENV_VAR, "auto").strip().lower() or "auto"
    if mode not in MODES:
        raise ValueError(f"{ENV_VAR}={os.environ[ENV_VAR]!r} is not one of {', '.join(MODES)}")
    return mode


def _get_kernel(name: str) -> Kernel:
    try:
        return KERNELS[name]
    except KeyError:
        raise KeyError(f"unknown kernel {name!r}; registered: {sorted(KERNELS)}") from None


def select_backend(name: str, *args: Any, backend: str | None = None, **kwargs: Any) -> str:
    """Which backend runs kernel ``name`` on these arguments (see the module docstring)."""
    kernel = _get_kernel(name)
    mode = kernel_mode() if backend is None else backend
    if mode not in MODES:
        raise ValueError(f"backend={backend!r} is not one of {', '.join(MODES)}")
    if mode == "reference":
        return "reference"
    tensors = [a for a in (*args, *kwargs.values()) if isinstance(a, torch.Tensor)]
    on_cuda = bool(tensors) and all(t.is_cuda for t in tensors)
    have_triton = kernel.triton is not None and triton_available()
    if mode == "auto":  # never the interpreter: it is for tests
        if (
            on_cuda
            and kernel.auto_triton
            and have_triton
            and not triton_interpreter_active()
            and kernel.triton_supports(*args, **kwargs) is None
        ):
            return "triton"
        return "reference"
    # forced Triton
    if not have_triton:
        raise KernelBackendError(f"{ENV_VAR}=triton but kernel {name!r} has no usable Triton implementation")
    if not on_cuda and not triton_interpreter_active():
        devices = ", ".join(sorted({str(t.device) for t in tensors})) or "non-tensor"
        raise KernelBackendError(f"{ENV_VAR}=triton: " + triton_cpu_error(name, devices))
    reason = kernel.triton_supports(*args, **kwargs)
    if reason is not None:
        raise KernelBackendError(f"{ENV_VAR}=triton but kernel {name!r} cannot run in Triton: {reason}")
    return "triton"


def dispatch(name: str, *args: Any, backend: str | None = None, **kwargs: Any) -> Callable[..., Any]:
    """The implementation of kernel ``name`` to call with ``(*args, **kwargs)``."""
    return _get_kernel(name).implementation(select_backend(name, *args, backend=backend, **kwargs))


# Kernel modules register themselves on import; they need the names above.
from repro.kernels import dynamo_joint, gather_gemm, halfhop_propagate, neighbour_mining, nm_sparsity, rope_gather  # noqa: E402, F401  (importing a kernel module registers it)
from repro.kernels.nm_sparsity import apply_mask_, nm_check, wanda_nm_mask  # noqa: E402

__all__ = [
    "BACKENDS",
    "ENV_VAR",
    "KERNELS",
    "BenchCase",
    "Kernel",
    "KernelBackendError",
    "apply_mask_",
    "available_backends",
    "dispatch",
    "dynamo_joint",
    "gather_gemm",
    "halfhop_propagate",
    "kernel_mode",
    "neighbour_mining",
    "nm_check",
    "nm_sparsity",
    "rope_gather",
    "register",
    "select_backend",
    "triton_available",
    "triton_cpu_error",
    "triton_interpret_enabled",
    "triton_interpreter_active",
    "wanda_nm_mask",
]
