"""SliceGPT (Ashkboos et al., ICLR 2024): delete rows and columns by rotating the residual stream.

Own implementation after the official ``microsoft/TransformerCompression`` (commit 6b12cde, read for
shape only), written against the architecture adapters (LLaMA/SmolLM2, pre-LN OPT, Phi, GPT-NeoX).

1. **Computational invariance** (:func:`fuse_norms`).  The LM head is untied from the token
   embedding (SliceGPT slices the embedding but not the head; brief §11).  For LayerNorm models every
   write into the residual stream is made mean-free -- token (and OPT position) embeddings have their
   row means subtracted, attention-output and MLP-output linears have their output columns centred
   (``W -= W.mean(0)``, ``b -= b.mean()``) -- so each LayerNorm sees a mean-free input and equals
   ``RMSNorm(x) * gamma + beta``.  Every norm's ``gamma`` is folded into the columns of the linears
   that read it (``W <- W diag(gamma)``) and ``beta`` into their bias (``b <- b + W beta``, adding a
   bias where there was none, e.g. OPT's LM head); Phi's single shared norm is folded into q/k/v and
   fc1, GPT-NeoX's two parallel norms into their own branches, the final norm into the LM head.  The
   norms become weightless :class:`~repro.llm.methods.slicegpt_modules.RMSN`.  Logits are unchanged.
2. **Rotate and slice, sequentially** (:func:`rotate_and_slice`, the official default).  At each point
   where the residual stream is read -- the embedding output, between attention and MLP of a
   sequential layer, and each layer output -- the calibration signal of the *already sliced* model
   gives ``H = sum X^T X`` (float64) ``+ 0.01 * mean(diag H) * I``; its eigenvectors, sorted by
   descending eigenvalue, form ``Q``.  Readers get ``W <- W Q[:, :d']`` (input side), writers
   ``W <- Q[:, :d']^T W`` (output side, bias too), embeddings ``E <- E Q[:, :d']``.  Where two
   consecutive points have different ``Q`` the residual shortcut carries ``Q_a[:, :d_a]^T Q_b[:, :d_b]``:
   ``attn_shortcut_Q`` and ``mlp_shortcut_Q`` for sequential layers, one ``attn_shortcut_Q`` per
   parallel-residual layer (Phi, GPT-NeoX).  ``d' = int((1 - sparsity) * d)`` rounded down to a
   multiple of ``round_to`` (official ``--round-interval 8``).  As in the official code with its
   default ``do_slice_head=False``, the output of the last layer, the final norm and the LM head keep
   the full width ``d`` (their rotation is still applied); ``slice_head=True`` slices them to ``d'``.
   This choice is what reproduces the brief's SmolLM2 counts (147.5 M at 0.2, 131.6 M at 0.3).
3. **Materialise**: the result is a real smaller model (:mod:`.slicegpt_modules`): embeddings of
   width ``d'``, q/k/v/gate/up/fc1 with ``d'`` inputs, o/down/fc2 with ``d'`` outputs, weightless
   norms, shortcut matrices as parameters of the decoder layers.  Save with
   ``save_compressed(model, tok, path, method="slicegpt", info=info, loader="slicegpt",
   write_weights=write_weights)``; ``load_compressed`` rebuilds it once this module (which registers
   the ``"slicegpt"`` loader) has been imported.

Parameter target.  ``sparsity`` fixes the width, not the parameter count: untying the head and the
shortcut matrices add parameters, so on SmolLM2-135M (tied, 134.5 M) sparsity 0.2 gives 147.5 M
(brief §2.1, §11).  To compare methods at equal *total* parameters, ``slicegpt(...,
target_removed=r, convention="total")`` picks the width itself: :func:`sliced_parameter_counts`
predicts, from the module shapes alone (no copy, no calibration), the exact
:func:`~repro.llm.params.parameter_counts` the method will produce at a given width (untied head,
weightless norms, folded-beta biases, sliced embeddings / readers / writers, shortcut matrices), and
:func:`width_for_target` takes the multiple of ``round_to`` whose predicted removed fraction (against
the dense model as given, a tied embedding counted once) is closest to ``r`` (ties: the wider).
``info["sparsity"]`` is then the effective ``1 - d' / d``.

Final orientation: ``"pca"`` (the default here) keeps the PCA eigenvectors: the method as the paper
describes it (its rotation is the PCA basis; not re-checked against the PDF here).  ``"random"``
multiplies each ``Q`` by a random orthogonal matrix acting inside the kept ``d'``-dimensional subspace
(the official ``random_orthogonal_upper_left``: Q factor of a uniform random matrix; here drawn from a
``torch.Generator`` seeded with ``seed``, so not bit-identical to the official numpy draw).  It spans
the same subspace, so the sliced model computes the same function up to float rounding (tested), but
note that the official ``experiments/run_slicegpt.py`` at 6b12cde defaults to
``--final-orientation random``.

Post-LN models (OPT-350m, ``do_layer_norm_before=False``) are refused: computational invariance does
not hold when a norm sits on the residual stream itself.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from repro.llm.adapters import LayerAdapter, ModelAdapter, get_adapter
from repro.llm.calibration import _layer_output, layer0_inputs
from repro.llm.params import compression_ratio, parameter_counts

from .slicegpt_modules import (
    RMSN,
    convert_norms,
    is_sliced_layer,
    load_sliced,
    make_sliced_layer,
    norm_parameters,
    set_embedding,
    set_linear,
    write_weights,
)

__all__ = [
    "CONVENTIONS",
    "FINAL_ORIENTATIONS",
    "RMSN",
    "check_sliceable",
    "fuse_norms",
    "load_sliced",
    "pca",
    "random_orthogonal_upper_left",
    "rotate_and_slice",
    "sliced_parameter_counts",
    "sliced_width",
    "slicegpt",
    "width_for_target",
    "write_weights",
]

log = logging.getLogger(__name__)

#: Accepted ``final_orientation`` values.
FINAL_ORIENTATIONS = ("pca", "random")


# ---------------------------------------------------------------------------------------------- checks
def check_sliceable(model: nn.Module) -> ModelAdapter:
    """The adapter of ``model``, or ``ValueError`` naming the model type when SliceGPT cannot apply."""
    adapter = get_adapter(model)
    name = f"model_type {adapter.model_type!r} ({type(model).__name__})"
    post_ln = [la.index for la in adapter.layers() if not la.pre_norm]
    if post_ln:
        raise ValueError(
            f"SliceGPT needs pre-norm decoder layers, but {name} is post-LN "
            f"(do_layer_norm_before=False, e.g. OPT-350m; layers {post_ln[:4]}...): a norm on the residual "
            "stream breaks computational invariance"
        )
    if adapter.project_in() is not None or adapter.project_out() is not None:
        raise ValueError(
            f"SliceGPT does not support {name} with project_in/project_out (word_embed_proj_dim != hidden)"
        )
    if adapter.final_norm() is None:
        raise ValueError(f"SliceGPT needs a final norm before the LM head; {name} has none")
    if any(is_sliced_layer(layer) for layer in adapter.decoder_layers_container()):
        raise ValueError(f"{name} has already been sliced")
    return adapter


def sliced_width(hidden_size: int, sparsity: float, round_to: int = 8) -> int:
    """``int((1 - sparsity) * hidden_size)`` rounded down to a multiple of ``round_to`` (official rule)."""
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    if round_to < 1:
        raise ValueError(f"round_to must be a positive integer, got {round_to}")
    width = int((1.0 - sparsity) * hidden_size)
    width -= width % round_to
    if width < 1:
        raise ValueError(f"sparsity {sparsity} with round_to {round_to} leaves no channel of {hidden_size}")
    return width


# ---------------------------------------------------------------------------------------------- counts
#: Conventions accepted by :func:`width_for_target` (see :mod:`repro.llm.params`).
CONVENTIONS = ("total", "blocks")
_TIE_DIGITS = 12  # removed fractions equal to this many digits count as a tie
_TABLE_NEIGHBOURS = 3  # candidates kept on each side of the chosen width in the logged table


def _params_of(modules: Sequence[nn.Module | None]) -> dict[int, nn.Parameter]:
    out: dict[int, nn.Parameter] = {}
    for module in modules:
        if module is not None:
            for p in module.parameters():
                out.setdefault(id(p), p)
    return out


def _has_shift(norm: nn.Module | None) -> bool:
    """Whether folding ``norm`` adds ``W beta`` to the biases of its readers (a LayerNorm with bias)."""
    return norm is not None and norm_parameters(norm)[1] is not None


def _slice_plan(model: nn.Module, adapter: ModelAdapter) -> dict[str, Any]:
    """The shapes that decide the parameter counts of ``model`` after :func:`slicegpt` (no weights read).

    Mirrors :func:`fuse_norms` (untied head; norms -> weightless :class:`RMSN`; a reader of a norm
    with a shift gains a bias) and :func:`rotate_and_slice` (what is sliced, shortcut shapes).
    Per layer: ``rest`` counts the layer parameters that slicing does not touch (e.g. Phi's q/k
    norms); readers are ``(out_features, has bias after folding)``, writers ``(in_features, has bias)``.
    """
    dense = parameter_counts(model, adapter)
    layers = []
    for la in adapter.layers():
        attn_norm, mlp_norm = la.attention_input_norm(), la.mlp_input_norm()
        attn_in, mlp_in = la.attention_input_linears(), la.mlp_input_linears()
        writers = [la.attention_output_linear(), la.mlp_output_linear()]
        touched = _params_of([attn_norm, mlp_norm, *attn_in, *mlp_in, *writers])
        rest = sum(p.numel() for key, p in _params_of([la.layer]).items() if key not in touched)
        shift_attn, shift_mlp = _has_shift(attn_norm), _has_shift(mlp_norm)
        layers.append(
            {
                "parallel": bool(la.parallel_residual),
                "rest": int(rest),
                "attn_readers": [(lin.out_features, lin.bias is not None or shift_attn) for lin in attn_in],
                "mlp_readers": [(lin.out_features, lin.bias is not None or shift_mlp) for lin in mlp_in],
                "attn_writer": (writers[0].in_features, writers[0].bias is not None),
                "mlp_writer": (writers[1].in_features, writers[1].bias is not None),
            }
        )
    head, final = adapter.lm_head(), adapter.final_norm()
    elsewhere = _params_of(
        [*adapter.decoder_layers_container(), adapter.embed_tokens(), adapter.position_embeddings(), head]
    )
    final_params = sum(p.numel() for key, p in _params_of([final]).items() if key not in elsewhere)
    positions = adapter.position_embeddings()
    return {
        "hidden_size": adapter.hidden_size,
        "num_layers": adapter.num_layers,
        "vocab_rows": int(adapter.embed_tokens().num_embeddings),
        "position_rows": 0 if positions is None else int(positions.num_embeddings),
        "head_out": int(head.out_features),
        "head_bias": head.bias is not None or _has_shift(final),
        "other": int(dense["other"] - final_params),
        "layers": layers,
        "dense": dense,
    }


def _readers(readers: Sequence[tuple[int, bool]], width: int) -> int:
    return sum(out * width + (out if bias else 0) for out, bias in readers)


def _writer(writer: tuple[int, bool], width: int) -> int:
    n_in, bias = writer
    return width * n_in + (width if bias else 0)


def _plan_counts(plan: Mapping[str, Any], new_width: int, slice_head: bool) -> dict[str, int]:
    """:func:`parameter_counts` of the sliced model described by ``plan`` at residual width ``new_width``."""
    d, k, n_layers = plan["hidden_size"], int(new_width), plan["num_layers"]
    blocks = 0
    for idx, layer in enumerate(plan["layers"]):
        d_in = k  # every layer reads the sliced stream (the embeddings have width k)
        d_out = d if idx == n_layers - 1 and not slice_head else k
        blocks += layer["rest"] + _readers(layer["attn_readers"], d_in)
        if layer["parallel"]:  # x Q + attn(x) + mlp(x): one shortcut d_in x d_out
            blocks += _writer(layer["attn_writer"], d_out) + _readers(layer["mlp_readers"], d_in)
            blocks += _writer(layer["mlp_writer"], d_out) + d_in * d_out
        else:  # attention writes the mid point (width k), the MLP reads it and writes d_out
            blocks += _writer(layer["attn_writer"], k) + _readers(layer["mlp_readers"], k)
            blocks += _writer(layer["mlp_writer"], d_out) + d_in * k + k * d_out
    embeddings = (plan["vocab_rows"] + plan["position_rows"]) * k
    head_in = k if slice_head else d
    lm_head = plan["head_out"] * head_in + (plan["head_out"] if plan["head_bias"] else 0)
    return {
        "total": int(blocks + embeddings + lm_head + plan["other"]),
        "blocks": int(blocks),
        "embeddings": int(embeddings),
        "lm_head": int(lm_head),
        "other": int(plan["other"]),
        "tied": 0,
        "num_layers": int(n_layers),
    }


def sliced_parameter_counts(model: nn.Module, new_width: int, *, slice_head: bool = False) -> dict[str, int]:
    """Predict :func:`parameter_counts` of ``slicegpt(model, ...)`` at residual width ``new_width``.

    Derived from the module shapes alone: ``model`` is not modified and no calibration runs (a
    SmolLM2-135M takes milliseconds).  The prediction follows the structure the method produces:
    the head is untied (``tied`` 0); every norm becomes a weightless :class:`RMSN` (the final norm
    leaves ``other``); a linear that reads a LayerNorm with a shift gains a bias (folded ``beta``,
    e.g. OPT's LM head); token (and OPT position) embeddings have width ``new_width``; readers
    (q/k/v/qkv, gate/up/fc1) have ``new_width`` inputs; writers (o/dense/out_proj, down/fc2) and
    their biases have ``new_width`` outputs, except the last layer's output (and its attention
    output in a parallel layer), which stays ``d`` unless ``slice_head``; shortcut matrices are
    ``d_in x d_mid`` + ``d_mid x d_out`` per sequential layer and ``d_in x d_out`` per
    parallel-residual layer; the LM head reads ``new_width`` with ``slice_head``, else ``d``.

    Raises:
        ValueError: for models SliceGPT refuses (:func:`check_sliceable`) or ``new_width`` outside ``[1, d]``.
    """
    adapter = check_sliceable(model)
    d = adapter.hidden_size
    if isinstance(new_width, bool) or int(new_width) != new_width or not 1 <= new_width <= d:
        raise ValueError(f"new_width must be an integer in [1, {d}], got {new_width!r}")
    return _plan_counts(_slice_plan(model, adapter), int(new_width), bool(slice_head))


def width_for_target(
    model: nn.Module,
    target_removed: float,
    *,
    convention: str = "total",
    round_to: int = 8,
    slice_head: bool = False,
) -> tuple[int, dict[str, Any]]:
    """The residual width whose predicted removed parameter fraction is closest to ``target_removed``.

    Candidates are the multiples of ``round_to`` in ``[round_to, d]``; each is scored with
    :func:`sliced_parameter_counts` and ``compression_ratio(parameter_counts(model), predicted)
    [f"removed_{convention}"]`` (so with ``"total"`` the reference is the model as given: a tied
    embedding counted once).  Ties (equal to 12 digits) go to the wider model.  ``model`` is not
    modified.

    Returns:
        ``(width, info)``; ``info`` holds ``width``, ``target_removed``, ``convention``,
        ``round_to``, ``slice_head``, ``sparsity`` (``1 - width / d``), ``achieved_removed`` (the
        predicted fraction), ``predicted_counts``, ``dense_counts``, ``reachable`` (the range of
        predicted fractions), ``n_candidates`` and ``candidates``: ``[width, total, removed]`` rows
        of the chosen width and up to three neighbours on each side.

    Raises:
        ValueError: naming the value, for ``target_removed`` outside ``[0, 1)``, an unknown
            ``convention``, a bad ``round_to`` (no multiple of it in ``[round_to, d]``), a target that
            lies beyond every candidate by more than the widest step between neighbours (unreachable
            under that convention), or a model SliceGPT refuses.
    """
    if isinstance(target_removed, bool) or not isinstance(target_removed, (int, float)):
        raise ValueError(f"target_removed must be a number in [0, 1), got {target_removed!r}")
    target = float(target_removed)
    if not 0.0 <= target < 1.0:
        raise ValueError(f"target_removed must be in [0, 1), got {target_removed!r}")
    if convention not in CONVENTIONS:
        raise ValueError(f"convention must be one of {CONVENTIONS}, got {convention!r}")
    adapter = check_sliceable(model)
    d = adapter.hidden_size
    if isinstance(round_to, bool) or int(round_to) != round_to or not 1 <= round_to <= d:
        raise ValueError(f"round_to must be an integer in [1, {d}], got {round_to!r}")
    round_to = int(round_to)
    plan = _slice_plan(model, adapter)
    dense = plan["dense"]
    if dense[convention] <= 0:
        raise ValueError(f"convention {convention!r}: the model has no {convention} parameters to remove")
    rows = []
    for width in range(round_to, d + 1, round_to):
        counts = _plan_counts(plan, width, bool(slice_head))
        rows.append((width, counts, compression_ratio(dense, counts)[f"removed_{convention}"]))
    best = min(range(len(rows)), key=lambda i: (round(abs(rows[i][2] - target), _TIE_DIGITS), -rows[i][0]))
    width, counts, achieved = rows[best]
    fractions = [r[2] for r in rows]
    low, high = min(fractions), max(fractions)
    step = max((abs(a - b) for a, b in zip(fractions, fractions[1:], strict=False)), default=0.0)
    if target > high + step or target < low - step:
        raise ValueError(
            f"target_removed {target_removed!r} is unreachable under convention {convention!r}: "
            f"SliceGPT widths {round_to}..{d} (step {round_to}) remove between {low:.4f} and {high:.4f} "
            f"of the {convention} parameters"
        )
    window = rows[max(0, best - _TABLE_NEIGHBOURS) : best + _TABLE_NEIGHBOURS + 1]
    info: dict[str, Any] = {
        "width": int(width),
        "target_removed": target,
        "convention": convention,
        "round_to": round_to,
        "slice_head": bool(slice_head),
        "sparsity": 1.0 - width / d,
        "achieved_removed": float(achieved),
        "predicted_counts": counts,
        "dense_counts": dense,
        "reachable": [float(low), float(high)],
        "n_candidates": len(rows),
        "candidates": [[w, c["total"], round(float(r), 6)] for w, c, r in window],
    }
    return int(width), info


# ---------------------------------------------------------------------------------------------- step 1
def _f64(t: torch.Tensor | None) -> torch.Tensor | None:
    return None if t is None else t.detach().to(torch.float64)


def _centre_writer(linear: nn.Linear) -> None:
    """Make the output of ``linear`` mean-free over its output channels for every input."""
    weight = _f64(linear.weight)
    bias = _f64(linear.bias)
    set_linear(linear, weight - weight.mean(0, keepdim=True), None if bias is None else bias - bias.mean())


def _centre_embedding(embedding: nn.Embedding) -> None:
    weight = _f64(embedding.weight)
    set_embedding(embedding, weight - weight.mean(-1, keepdim=True))


def _fold_norm(norm: nn.Module, readers: Sequence[nn.Linear]) -> None:
    """Fold ``norm``'s scale into the columns and its shift into the biases of ``readers``."""
    scale, shift, _, _ = norm_parameters(norm)
    scale, shift = _f64(scale), _f64(shift)
    for linear in readers:
        weight = _f64(linear.weight)
        bias = _f64(linear.bias)
        if shift is not None:
            extra = weight @ shift.to(weight.device)
            bias = extra if bias is None else bias + extra
        if scale is not None:
            weight = weight * scale.to(weight.device).unsqueeze(0)
        set_linear(linear, weight, bias)


@torch.no_grad()
def fuse_norms(model: nn.Module) -> dict[str, Any]:
    """Computational-invariance transform (step 1 of the module docstring), in place.

    Returns ``{"untied": bool, "centred": bool}``: whether a tied LM head was untied, and whether the
    residual writers were centred (LayerNorm models).  The logits do not change (up to float rounding).
    """
    adapter = check_sliceable(model)
    untied = adapter.untie_embeddings()
    layers = adapter.layers()
    norms = [n for la in layers for n in (la.attention_input_norm(), la.mlp_input_norm())] + [adapter.final_norm()]
    centres = any(norm_parameters(n)[3] for n in norms)
    if centres:
        _centre_embedding(adapter.embed_tokens())
        if adapter.position_embeddings() is not None:
            _centre_embedding(adapter.position_embeddings())
        for la in layers:
            _centre_writer(la.attention_output_linear())
            _centre_writer(la.mlp_output_linear())
    for la in layers:
        attn_norm, mlp_norm = la.attention_input_norm(), la.mlp_input_norm()
        if attn_norm is mlp_norm:  # Phi: one norm feeds both branches
            _fold_norm(attn_norm, [*la.attention_input_linears(), *la.mlp_input_linears()])
        else:
            _fold_norm(attn_norm, la.attention_input_linears())
            _fold_norm(mlp_norm, la.mlp_input_linears())
    _fold_norm(adapter.final_norm(), [adapter.lm_head()])
    convert_norms(adapter, adapter.hidden_size)
    return {"untied": bool(untied), "centred": bool(centres)}


# ---------------------------------------------------------------------------------------------- PCA
def pca(cov: torch.Tensor, damp: float = 0.01) -> tuple[torch.Tensor, torch.Tensor]:
    """Eigen-decomposition of ``cov + damp * mean(diag cov) * I`` (float64), sorted descending.

    Returns ``(eigenvalues of cov, eigenvectors as columns)``: the damping shifts every eigenvalue by
    the same amount and does not change the eigenvectors; it is subtracted again from the returned
    eigenvalues.
    """
    cov = cov.to(torch.float64)
    shift = damp * cov.diagonal().mean()
    damped = cov + shift * torch.eye(cov.shape[0], dtype=cov.dtype, device=cov.device)
    values, vectors = torch.linalg.eigh(damped)
    order = torch.argsort(values, descending=True)
    return values[order] - shift, vectors[:, order]


def random_orthogonal_upper_left(total: int, kept: int, generator: torch.Generator) -> torch.Tensor:
    """``total x total`` float64 identity whose upper-left ``kept x kept`` block is a random orthogonal matrix.

    The block is the Q factor of a uniform ``[0, 1)`` random matrix (the official recipe).
    """
    block, _ = torch.linalg.qr(torch.rand(kept, kept, generator=generator, dtype=torch.float64))
    out = torch.eye(total, dtype=torch.float64)
    out[:kept, :kept] = block
    return out


class _Stop(Exception):
    """Raised by the mid-layer hook once the MLP input has been captured."""


class _Orienter:
    """Computes ``Q`` at each read point and records the fraction of signal energy kept."""

    def __init__(self, final_orientation: str, seed: int) -> None:
        self.final_orientation = final_orientation
        self.generator = torch.Generator().manual_seed(int(seed))
        self.kept_energy: list[dict[str, Any]] = []

    def __call__(self, cov: torch.Tensor, kept: int, where: str) -> torch.Tensor:
        values, q = pca(cov)
        total = float(values.clamp_min(0).sum())
        frac = float(values[:kept].clamp_min(0).sum()) / total if total > 0 else 1.0
        self.kept_energy.append({"where": where, "width": kept, "energy_kept": frac})
        if self.final_orientation == "random":
            q = q @ random_orthogonal_upper_left(q.shape[0], kept, self.generator).to(q.device)
        return q


def _accumulate(cov: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    x = x.detach().reshape(-1, x.shape[-1]).to(torch.float64)
    if cov is None:
        cov = torch.zeros(x.shape[1], x.shape[1], dtype=torch.float64, device=x.device)
    return cov.addmm_(x.T, x)


def _rotate_readers(linears: Sequence[nn.Linear], q: torch.Tensor) -> None:
    """``W <- W q`` for linears reading the residual stream (``q``: ``d x d'``)."""
    for linear in linears:
        set_linear(linear, _f64(linear.weight) @ q.to(linear.weight.device), linear.bias)


def _rotate_writer(linear: nn.Linear, q: torch.Tensor) -> None:
    """``W <- q^T W`` and ``b <- q^T b`` for a linear writing the residual stream."""
    q = q.to(linear.weight.device)
    bias = _f64(linear.bias)
    set_linear(linear, q.T @ _f64(linear.weight), None if bias is None else bias @ q)


def _shortcut_param(matrix: torch.Tensor, like: torch.Tensor) -> nn.Parameter:
    return nn.Parameter(matrix.to(device=like.device, dtype=like.dtype).contiguous(), requires_grad=False)


def _project(h: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    return (h.to(torch.float64) @ q.to(h.device)).to(h.dtype)


def _run_layer(
    layer: nn.Module,
    hidden: list[torch.Tensor],
    layer_kwargs: dict[int, tuple[tuple, dict]],
    hook_module: nn.Module | None = None,
) -> tuple[list[torch.Tensor], torch.Tensor]:
    """Run ``layer`` on every batch: ``(outputs, covariance of the outputs)``.

    With ``hook_module`` the layer is stopped when that module is called, no output is returned and
    the covariance is that of the module's input (the residual entering the MLP norm).
    """
    outs: list[torch.Tensor] = []
    acc: dict[str, torch.Tensor | None] = {"cov": None}
    handle = None
    if hook_module is not None:

        def hook(module, args):
            acc["cov"] = _accumulate(acc["cov"], args[0])
            raise _Stop

        handle = hook_module.register_forward_pre_hook(hook)
    try:
        for h in hidden:
            extra, kwargs = layer_kwargs[h.shape[0]]
            try:
                out = _layer_output(layer(h, *extra, **kwargs))
            except _Stop:
                continue
            acc["cov"] = _accumulate(acc["cov"], out)
            outs.append(out)
    finally:
        if handle is not None:
            handle.remove()
    return outs, acc["cov"]


# ---------------------------------------------------------------------------------------------- step 2
@torch.no_grad()
def rotate_and_slice(
    model: nn.Module,
    calibration_ids: torch.Tensor,
    *,
    new_width: int,
    slice_head: bool = False,
    batch_size: int = 4,
    final_orientation: str = "pca",
    seed: int = 0,
    progress: bool = True,
) -> dict[str, Any]:
    """Rotate and slice a model prepared by :func:`fuse_norms`, layer by layer (step 2), in place.

    Args:
        model: the norm-fused model (weightless :class:`RMSN` norms, untied head).
        calibration_ids: ``(n_samples, seq_len)`` token windows without padding.
        new_width: ``d'``, the residual width after slicing (``d' == d`` only rotates).
        slice_head: also slice the last layer's output, the final norm input and the LM head
            (official ``do_slice_head``, default ``False``).
        batch_size: calibration rows per forward call.
        final_orientation: ``"pca"`` or ``"random"`` (see the module docstring).
        seed: generator seed of the random orientation.
        progress: progress bar.

    Returns:
        ``{"layer_widths": [[d_in, d_mid, d_out], ...], "kept_energy": [...], "seconds": float}``;
        ``d_mid`` is ``None`` for parallel-residual layers.
    """
    if final_orientation not in FINAL_ORIENTATIONS:
        raise ValueError(f"final_orientation must be one of {FINAL_ORIENTATIONS}, got {final_orientation!r}")
    adapter = get_adapter(model)
    d = adapter.hidden_size
    if not 1 <= new_width <= d:
        raise ValueError(f"new_width must be in [1, {d}], got {new_width}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    ids = torch.as_tensor(calibration_ids)
    if ids.dim() != 2:
        raise ValueError(f"calibration_ids must be (n_samples, seq_len), got shape {tuple(ids.shape)}")
    device = next(model.parameters()).device
    orient = _Orienter(final_orientation, seed)
    t0 = time.perf_counter()
    was_training = model.training
    model.eval()
    try:
        container = adapter.decoder_layers_container()
        hidden, layer_kwargs = layer0_inputs(model, ids, batch_size, device)
        cov = None
        for h in hidden:
            cov = _accumulate(cov, h)
        q_in = orient(cov, new_width, "embeddings")[:, :new_width]
        for emb in (adapter.embed_tokens(), adapter.position_embeddings()):
            if emb is not None:
                set_embedding(emb, _f64(emb.weight) @ q_in.to(emb.weight.device))
        hidden = [_project(h, q_in) for h in hidden]

        widths: list[list[int | None]] = []
        n_layers = len(container)
        bar = _progress_bar(n_layers, progress)
        d_in = new_width
        for idx in range(n_layers):
            la: LayerAdapter = adapter.layer(idx)
            layer = make_sliced_layer(la.layer)
            ref = la.attention_output_linear().weight
            d_out = d if idx == n_layers - 1 and not slice_head else new_width
            _rotate_readers(la.attention_input_linears(), q_in)
            if la.parallel_residual:
                _rotate_readers(la.mlp_input_linears(), q_in)
                layer.attn_shortcut_Q = _shortcut_param(q_in.T, ref)  # back to the original basis
                outs, cov = _run_layer(layer, hidden, layer_kwargs)
                q_out = orient(cov, d_out, f"layers.{idx}.output")[:, :d_out]
                layer.attn_shortcut_Q = _shortcut_param(q_in.T @ q_out, ref)
                _rotate_writer(la.attention_output_linear(), q_out)
                _rotate_writer(la.mlp_output_linear(), q_out)
                widths.append([d_in, None, d_out])
            else:
                layer.attn_shortcut_Q = _shortcut_param(q_in.T, ref)
                _, cov = _run_layer(layer, hidden, layer_kwargs, hook_module=la.mlp_input_norm())
                q_mid = orient(cov, new_width, f"layers.{idx}.mid")[:, :new_width]
                layer.attn_shortcut_Q = _shortcut_param(q_in.T @ q_mid, ref)
                _rotate_writer(la.attention_output_linear(), q_mid)
                _rotate_readers(la.mlp_input_linears(), q_mid)
                layer.mlp_shortcut_Q = _shortcut_param(q_mid.T, ref)
                outs, cov = _run_layer(layer, hidden, layer_kwargs)
                q_out = orient(cov, d_out, f"layers.{idx}.output")[:, :d_out]
                layer.mlp_shortcut_Q = _shortcut_param(q_mid.T @ q_out, ref)
                _rotate_writer(la.mlp_output_linear(), q_out)
                widths.append([d_in, new_width, d_out])
            hidden = [_project(o, q_out) for o in outs]
            del outs
            q_in, d_in = q_out, d_out
            bar.update(1)
        bar.close()
        _rotate_readers([adapter.lm_head()], q_in)
        del hidden, layer_kwargs
    finally:
        model.train(was_training)
    return {"layer_widths": widths, "kept_energy": orient.kept_energy, "seconds": time.perf_counter() - t0}


def _progress_bar(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="slicegpt", unit="layer", mininterval=5, disable=not enabled)


# ---------------------------------------------------------------------------------------------- API
def slicegpt(
    model: nn.Module,
    calibration_ids: torch.Tensor,
    *,
    sparsity: float | None = None,
    target_removed: float | None = None,
    convention: str = "total",
    round_to: int = 8,
    batch_size: int = 4,
    final_orientation: str = "pca",
    seed: int = 0,
    slice_head: bool = False,
    progress: bool = True,
) -> tuple[nn.Module, dict[str, Any]]:
    """Compress ``model`` in place with SliceGPT; return ``(model, info)``.

    The signature follows :mod:`repro.llm.methods.registry` (``fn(model, calibration_ids, **settings)``;
    SliceGPT needs no tokenizer).

    Args:
        model: a pre-LN ``*ForCausalLM`` supported by the adapters (``ValueError`` naming the model
            type for post-LN OPT-350m).
        calibration_ids: ``(n_samples, seq_len)`` token windows (:func:`repro.llm.calibration.calibration_batches`).
        sparsity: the official ``--sparsity``: new width ``int((1 - sparsity) * d)``, rounded down to
            a multiple of ``round_to``.  Not the fraction of parameters removed (see ``info``).
        target_removed: instead of ``sparsity``: the fraction of the dense model's parameters (under
            ``convention``) to remove; the width is the multiple of ``round_to`` whose predicted
            removed fraction is closest (:func:`width_for_target`, computed on the model as given,
            before anything is modified).  Exactly one of ``sparsity`` and ``target_removed``.
        convention: ``"total"`` (unique parameters, a tied embedding counted once; the default) or
            ``"blocks"`` (decoder-layer parameters); used with ``target_removed`` only.
        round_to: the official ``--round-interval`` (8).
        batch_size: calibration rows per forward call.
        final_orientation: ``"pca"`` (default; the paper's method) or ``"random"`` (default of the
            official script, see the module docstring).
        seed: seed of the random orientation.
        slice_head: slice the last layer's output and the LM head too (official default ``False``).
        progress: progress bar and a summary log line.

    Returns:
        ``(model, info)``; ``info`` holds ``method``, ``sparsity`` (with ``target_removed``: the
        effective ``1 - new_width / d``), ``round_to``, ``hidden_size``,
        ``new_width``, ``width_unrounded``, ``slice_head``, ``final_orientation``, ``seed``,
        ``untied`` / ``centred`` (step 1), ``counts_dense`` (:func:`parameter_counts` of the model as
        given: a tied head counted once), ``counts_dense_untied`` (after untying, before folding),
        ``counts_after``, ``shortcut_params``, ``removed`` (:func:`compression_ratio` against the
        dense model) and ``removed_vs_untied``, ``layer_widths``, ``kept_energy`` (fraction of the
        calibration signal's energy inside the kept subspace at each PCA point) and ``calibration``
        (mode, n_samples, seq_len, tokens, seconds).  With ``target_removed`` it also holds
        ``target_removed``, ``convention``, ``predicted_counts`` (:func:`sliced_parameter_counts`),
        ``predicted_matches`` (whether ``counts_after`` equals them) and ``target_search`` (the
        rest of :func:`width_for_target`'s info: achieved fraction, reachable range, candidates).
    """
    adapter = check_sliceable(model)
    d = adapter.hidden_size
    if (sparsity is None) == (target_removed is None):
        raise ValueError(
            f"give exactly one of sparsity and target_removed, got sparsity={sparsity!r}, "
            f"target_removed={target_removed!r}"
        )
    search: dict[str, Any] | None = None
    if sparsity is not None:
        new_width = sliced_width(d, sparsity, round_to)
        width_unrounded = int((1.0 - sparsity) * d)
    else:
        new_width, search = width_for_target(
            model, target_removed, convention=convention, round_to=round_to, slice_head=slice_head
        )
        sparsity = 1.0 - new_width / d
        width_unrounded = new_width
    if final_orientation not in FINAL_ORIENTATIONS:
        raise ValueError(f"final_orientation must be one of {FINAL_ORIENTATIONS}, got {final_orientation!r}")
    ids = torch.as_tensor(calibration_ids)
    if ids.dim() != 2 or ids.dtype not in (torch.long, torch.int, torch.int32):
        raise ValueError(f"calibration_ids must be integer (n_samples, seq_len), got {ids.dtype} {tuple(ids.shape)}")
    t0 = time.perf_counter()
    counts_dense = parameter_counts(model, adapter)
    adapter.untie_embeddings()
    counts_untied = parameter_counts(model, adapter)
    step1 = fuse_norms(model)
    step1["untied"] = bool(counts_dense["tied"])
    step2 = rotate_and_slice(
        model,
        ids,
        new_width=new_width,
        slice_head=slice_head,
        batch_size=batch_size,
        final_orientation=final_orientation,
        seed=seed,
        progress=progress,
    )
    counts_after = parameter_counts(model, adapter)
    shortcut_params = sum(
        p.numel()
        for layer in adapter.decoder_layers_container()
        for p in (layer.attn_shortcut_Q, layer.mlp_shortcut_Q)
        if p is not None
    )
    info: dict[str, Any] = {
        "method": "slicegpt",
        "sparsity": float(sparsity),
        "round_to": int(round_to),
        "hidden_size": d,
        "new_width": new_width,
        "width_unrounded": width_unrounded,
        "slice_head": bool(slice_head),
        "final_orientation": final_orientation,
        "seed": int(seed),
        **step1,
        "counts_dense": counts_dense,
        "counts_dense_untied": counts_untied,
        "counts_after": counts_after,
        "shortcut_params": int(shortcut_params),
        "removed": compression_ratio(counts_dense, counts_after),
        "removed_vs_untied": compression_ratio(counts_untied, counts_after),
        "layer_widths": step2["layer_widths"],
        "kept_energy": step2["kept_energy"],
        "calibration": {
            "mode": "sequential",
            "n_samples": int(ids.shape[0]),
            "seq_len": int(ids.shape[1]),
            "tokens": int(ids.numel()),
            "seconds": round(time.perf_counter() - t0, 3),
        },
    }
    if search is not None:
        predicted = search.pop("predicted_counts")
        info.update(
            target_removed=search.pop("target_removed"),
            convention=search.pop("convention"),
            predicted_counts=predicted,
            predicted_matches=predicted == counts_after,
            target_search={key: search[key] for key in ("achieved_removed", "reachable", "n_candidates", "candidates")},
        )
        if predicted != counts_after:
            log.warning("slicegpt: predicted counts %s differ from the actual %s", predicted, counts_after)
        (log.info if progress else log.debug)(
            "slicegpt %s: target %.4f of %s parameters -> width %d, predicted removed %.4f",
            adapter.model_type,
            info["target_removed"],
            info["convention"],
            new_width,
            search["achieved_removed"],
        )
    (log.info if progress else log.debug)(
        "slicegpt %s: width %d -> %d, parameters %d -> %d (untied dense %d), %.1f s",
        adapter.model_type,
        d,
        new_width,
        counts_dense["total"],
        counts_after["total"],
        counts_untied["total"],
        time.perf_counter() - t0,
    )
    return model, info
