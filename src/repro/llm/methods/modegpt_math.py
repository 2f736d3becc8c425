"""MoDeGPT's per-module decompositions and its global sparsity allocation, as pure tensor functions.

Brief: ``shared/papers/llm_compression.md`` §4 (MoDeGPT, ICLR 2025).  Nothing here touches a model:
the functions take calibration statistics (:mod:`repro.llm.calibration`, float64 sums over tokens)
and Hugging Face ``nn.Linear`` weights (``W[out, in]``) and return the compressed weights; the
method module (:mod:`repro.llm.methods.modegpt`) slices the model with them.

Conventions.

* Weight layouts are Hugging Face's: gate/up (or fc1) ``[d_int, d]``, down (or fc2) ``[d, d_int]``,
  q ``[n_heads * d_h, d]``, k/v ``[n_kv * d_h, d]``, o ``[d, n_heads * d_h]``; heads are contiguous
  blocks of rows (q/k/v) or of columns (o).  Under grouped-query attention query head ``h`` reads KV
  head ``h // (n_heads // n_kv)`` (``repeat_kv``), so KV group ``j`` holds query heads
  ``j * g, ..., (j + 1) * g - 1``.
* Everything is computed in float64.  Statistics may live on the CPU while the weights are on an
  accelerator: the work is done on the device of the weights (of the statistic where there is no
  weight), and weight-shaped results come back in the dtype of the given weights.
* Ridge and jitter constants are *absolute*, as in the reference implementation (brief §4.2): they
  act on the statistics exactly as given (un-normalised token sums from the calibration, or means if
  the caller divides by ``tokens``), so keep the normalisation and the constants together.

Statistics used (names of :mod:`repro.llm.calibration`): ``layers.{l}.mlp_mid_cov`` = ``C_sigma``
(type I), ``layers.{l}.attn_in_cov`` = ``C_x`` (type III), ``layers.{l}.q_energy``
``[n_heads, d_h]`` and ``layers.{l}.k_energy`` ``[n_kv_heads, d_h]`` = the diagonals of ``C_q`` and
``C_k`` per head (sums over tokens of the squared raw q/k projection outputs, bias included, pre-RoPE;
type II), ``bi`` ``[L]`` (global allocation).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = [
    "Whitening",
    "allocate_sparsity",
    "cr_pair_scores",
    "nystrom_mlp",
    "ridge_leverage_scores",
    "select_qk_channels",
    "whitened_svd_vo",
    "whitened_svd_vo_one_big",
    "whitening",
]

_F64 = torch.float64


# ---------------------------------------------------------------------------------------------- helpers
def _square(C: Tensor, name: str) -> None:
    if C.dim() != 2 or C.shape[0] != C.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {tuple(C.shape)}")


def _sym64(C: Tensor, device: torch.device | None = None) -> Tensor:
    """``C`` as float64 on ``device``, symmetrised (the accumulated sums are symmetric up to rounding)."""
    C = C.to(device=device if device is not None else C.device, dtype=_F64)
    return 0.5 * (C + C.T)


def _eye(n: int, like: Tensor) -> Tensor:
    return torch.eye(n, dtype=like.dtype, device=like.device)


def _ridge_inverse_diag(C: Tensor, ridge: float) -> Tensor:
    """``diag((C + ridge I)^-1)`` for a symmetric PSD ``C`` (float64): Cholesky, or ``eigh`` if that fails."""
    A = C + ridge * _eye(C.shape[0], C)
    L, info = torch.linalg.cholesky_ex(A)
    if int(info) == 0:
        return torch.cholesky_inverse(L).diagonal().clone()
    # Not numerically positive definite (rounding made tiny eigenvalues negative and the ridge is too
    # small to cover them): clamp the spectrum at zero.
    evals, evecs = torch.linalg.eigh(C)
    shifted = evals.clamp_min(0.0) + ridge
    if bool((shifted <= 0).any()):
        raise ValueError("C + ridge*I is singular; use ridge > 0")
    return (evecs.square() / shifted).sum(dim=1)


def _stable_order(scores: Tensor, descending: bool) -> Tensor:
    """Indices that sort ``scores``; ties keep the lower index first (deterministic selection)."""
    return torch.sort(scores, descending=descending, stable=True).indices


# ---------------------------------------------------------------------------------------------- type I
def ridge_leverage_scores(C: Tensor, ridge: float) -> Tensor:
    """Ridge leverage scores ``diag(C (C + ridge I)^-1)`` of a symmetric PSD matrix (brief §4.3 step 1).

    Computed as ``1 - ridge * diag((C + ridge I)^-1)`` (the identity ``C (C + λI)^-1 = I - λ (C + λI)^-1``)
    with a Cholesky inverse in float64, falling back to an eigendecomposition with the spectrum clamped
    at zero when rounding makes ``C + ridge I`` indefinite.  The scores lie in ``[0, 1)``.  Note that
    for un-normalised statistics and a small ridge they are all close to 1; :func:`nystrom_mlp`
    therefore ranks channels by the smallest ``diag((C + ridge I)^-1)``, the same order without the
    cancellation.

    Args:
        C: ``[n, n]`` symmetric positive semi-definite matrix (e.g. ``C_sigma``).
        ridge: ``λ > 0`` (absolute).

    Returns:
        float64 ``[n]`` on ``C``'s device.
    """
    _square(C, "C")
    if not ridge > 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    C64 = _sym64(C)
    return 1.0 - ridge * _ridge_inverse_diag(C64, float(ridge))


def nystrom_mlp(
    C_sigma: Tensor,
    w_gate: Tensor | None,
    w_up: Tensor,
    w_down: Tensor,
    k: int,
    ridge: float,
    jitter: float = 1e-6,
) -> dict[str, Tensor | None]:
    """Type-I compression of an MLP by Nyström column selection (brief §4.3, Algorithm 1).

    The MLP is ``y = h W_down^T`` with ``h = σ(x W_up^T)`` (or ``SiLU(x W_gate^T) ⊙ (x W_up^T)``),
    ``h ∈ R^{d_int}`` and ``C_sigma = Σ_t h_t^T h_t``.  Because ``σ`` acts element-wise, keeping the
    intermediate channels ``S`` (rows of gate/up) gives exactly ``h_S = h[:, S]``; the down
    projection is then refitted in closed form to the least-squares optimum over the calibration
    tokens::

        min_B  Σ_t ||h_t W_down^T - h_{t,S} B^T||²
        =>  C[S, S] B^T = C[S, :] W_down^T,   i.e.  down_new = W_down C[:, S] (C[S, S] + jitter I)^-1

    (the brief's ``(S^T C S)^-1 S^T C W_D`` in HF orientation).  ``S`` is the ``k`` channels with the
    largest ridge leverage scores (:func:`ridge_leverage_scores`), ranked by the smallest
    ``diag((C + ridge I)^-1)``; ties go to the lower index.  The solve is a Cholesky solve with
    ``jitter`` (absolute, as in the reference code) on the diagonal, falling back to a pseudo-inverse
    when ``C[S, S] + jitter I`` is not positive definite.

    Args:
        C_sigma: ``[d_int, d_int]`` input covariance of the down projection (``mlp_mid_cov``).
        w_gate: ``[d_int, d]`` gate projection, or ``None`` for a non-gated MLP (OPT fc1/fc2, Phi,
            GPT-NeoX: pass fc1 as ``w_up`` and fc2 as ``w_down``).
        w_up: ``[d_int, d]`` up projection (fc1).
        w_down: ``[d, d_int]`` down projection (fc2).
        k: intermediate channels to keep, ``1 <= k <= d_int``.
        ridge: leverage-score ridge ``λ > 0`` (brief: 1e-2 default / 1e-4 in the reference scripts).
        jitter: ``>= 0`` added to ``C[S, S]`` before the refit solve.

    Returns:
        ``{"index": LongTensor[k] (sorted), "gate": [k, d] or None, "up": [k, d], "down": [d, k]}`` on
        the device of ``w_down``; gate/up are row slices of the given weights, down is the refit in
        ``w_down``'s dtype.  Biases are the caller's: slice gate/up (fc1) biases with ``index``; the
        down (fc2) bias is unchanged.
    """
    _square(C_sigma, "C_sigma")
    d_int = C_sigma.shape[0]
    if w_up.dim() != 2 or w_up.shape[0] != d_int:
        raise ValueError(f"w_up must be [d_int={d_int}, d], got {tuple(w_up.shape)}")
    if w_gate is not None and tuple(w_gate.shape) != tuple(w_up.shape):
        raise ValueError(f"w_gate shape {tuple(w_gate.shape)} differs from w_up {tuple(w_up.shape)}")
    if w_down.dim() != 2 or w_down.shape[1] != d_int:
        raise ValueError(f"w_down must be [d, d_int={d_int}], got {tuple(w_down.shape)}")
    if not 1 <= int(k) <= d_int:
        raise ValueError(f"k must be in [1, {d_int}], got {k}")
    if not ridge > 0:
        raise ValueError(f"ridge must be positive, got {ridge}")
    if not jitter >= 0:
        raise ValueError(f"jitter must be non-negative, got {jitter}")
    k = int(k)
    device = w_down.device
    C = _sym64(C_sigma, device)

    inv_diag = _ridge_inverse_diag(C, float(ridge))
    index = _stable_order(inv_diag, descending=False)[:k].sort().values

    C_ss = C[index][:, index] + jitter * _eye(k, C)
    rhs = C[index] @ w_down.to(_F64).T  # [k, d] = C[S, :] W_down^T
    L, info = torch.linalg.cholesky_ex(C_ss)
    if int(info) == 0:
        solution = torch.cholesky_solve(rhs, L)
    else:
        solution = torch.linalg.pinv(C_ss, hermitian=True) @ rhs
    down = solution.T.to(w_down.dtype).contiguous()

    idx_w = index.to(w_up.device)
    return {
        "index": index,
        "gate": None if w_gate is None else w_gate[idx_w].contiguous(),
        "up": w_up[idx_w].contiguous(),
        "down": down,
    }


# ---------------------------------------------------------------------------------------------- type II
def cr_pair_scores(q_energy_h: Tensor, k_energy_h: Tensor, rope: bool = True) -> Tensor:
    """Type-II (CR) channel scores of one attention head (brief §4.4).

    With per-channel energies ``Cq_ii = Σ_t q_{t,i}^2`` and ``Ck_ii`` (the diagonals of the head's
    ``C_q`` and ``C_k``), the CR score of head-dim channel ``i`` is
    ``||C_q^{1/2} e_i|| ||C_k^{1/2} e_i|| = sqrt(Cq_ii Ck_ii) = ||X W_q[i]|| ||X W_k[i]||``.  With RoPE
    (HF's ``rotate_half``) channels ``i`` and ``j = i + d_h/2`` are rotated together and must be kept
    or dropped together; the pair score is ``sqrt(Cq_ii Ck_ii + Cq_jj Ck_jj)``.

    Args:
        q_energy_h: ``[..., d_h]`` query energies of the head (leading dimensions are batched).
        k_energy_h: ``[..., d_h]`` key energies of the head's KV head (broadcastable).
        rope: pair the channels as RoPE does (``d_h`` must then be even).

    Returns:
        float64 ``[..., d_h / 2]`` pair scores (score of pair ``i`` = channels ``i, i + d_h/2``) with
        ``rope``, else ``[..., d_h]`` channel scores.
    """
    q = q_energy_h.to(_F64)
    k = k_energy_h.to(device=q.device, dtype=_F64)
    if q.dim() == 0 or q.shape[-1] != k.shape[-1]:
        raise ValueError(f"q/k energies need the same last (head) dimension, got {tuple(q.shape)}, {tuple(k.shape)}")
    prod = (q * k).clamp_min(0.0)
    if not rope:
        return prod.sqrt()
    d_h = prod.shape[-1]
    if d_h % 2:
        raise ValueError(f"RoPE pairs need an even head dimension, got {d_h}")
    half = d_h // 2
    return (prod[..., :half] + prod[..., half:]).sqrt()


def _as_heads(energy: Tensor, n: int, head_dim: int, name: str) -> Tensor:
    if energy.numel() != n * head_dim:
        raise ValueError(f"{name} must have {n} x {head_dim} entries, got shape {tuple(energy.shape)}")
    return energy.reshape(n, head_dim)


def select_qk_channels(
    q_energy: Tensor,
    k_energy: Tensor,
    n_heads: int,
    n_kv_heads: int,
    head_dim: int,
    keep: int,
    rope: bool = True,
) -> list[Tensor]:
    """Type-II channel selection for every KV group of one layer (brief §4.4, incl. GQA and RoPE).

    For KV group ``j`` (KV head ``j`` and query heads ``j g .. (j+1) g - 1``, ``g = n_heads / n_kv``)
    the score of a channel (or RoPE pair) is :func:`cr_pair_scores` of each query head against the
    KV head, summed over the ``g`` query heads.  One index list per group is applied to the group's K
    head and to all its q heads (rows ``h * d_h + index`` of q_proj/k_proj).

    * ``rope=True``: the top ``keep / 2`` pairs ``p`` (sorted) give ``index = [p, p + d_h/2]``: first
      halves, then second halves, so that HF's ``rotate_half`` on the compressed head of size ``keep``
      pairs compressed channel ``i`` with ``i + keep/2`` exactly as before.  The rotary ``cos``/``sin``
      must be gathered with the same index (``cos[..., index]``).  ``index`` is sorted.
    * ``rope=False``: the top ``keep`` channels, sorted.

    Ties go to the lower index.

    Args:
        q_energy: ``[n_heads, d_h]`` (calibration's ``q_energy``; a flat ``[n_heads * d_h]`` is accepted).
        k_energy: ``[n_kv_heads, d_h]`` (calibration's ``k_energy``; flat accepted).
        n_heads, n_kv_heads, head_dim: attention geometry (``n_heads`` a multiple of ``n_kv_heads``).
        keep: channels to keep per head, ``1 <= keep <= head_dim``, even when ``rope``.
        rope: whether the model applies rotary embeddings to q and k.

    Returns:
        ``n_kv_heads`` sorted ``LongTensor[keep]`` on the energies' device.
    """
    if n_heads < 1 or n_kv_heads < 1 or n_heads % n_kv_heads:
        raise ValueError(f"n_heads ({n_heads}) must be a positive multiple of n_kv_heads ({n_kv_heads})")
    if head_dim < 1:
        raise ValueError(f"head_dim must be positive, got {head_dim}")
    if not 1 <= int(keep) <= head_dim:
        raise ValueError(f"keep must be in [1, {head_dim}], got {keep}")
    keep = int(keep)
    if rope and (keep % 2 or head_dim % 2):
        raise ValueError(
            f"with RoPE keep and head_dim must be even (channel pairs), got keep={keep}, head_dim={head_dim}"
        )
    q = _as_heads(q_energy, n_heads, head_dim, "q_energy").to(_F64)
    k = _as_heads(k_energy, n_kv_heads, head_dim, "k_energy").to(device=q.device, dtype=_F64)
    g = n_heads // n_kv_heads
    # [n_kv, g, d_h] query energies against [n_kv, 1, d_h] key energies, summed over the group.
    scores = cr_pair_scores(q.reshape(n_kv_heads, g, head_dim), k.unsqueeze(1), rope=rope).sum(dim=1)
    out: list[Tensor] = []
    for j in range(n_kv_heads):
        if rope:
            pairs = _stable_order(scores[j], descending=True)[: keep // 2].sort().values
            out.append(torch.cat([pairs, pairs + head_dim // 2]))
        else:
            out.append(_stable_order(scores[j], descending=True)[:keep].sort().values)
    return out


# ---------------------------------------------------------------------------------------------- type III
class Whitening(NamedTuple):
    """``(C + ridge I)^{±1/2}`` of a covariance, from :func:`whitening` (reusable across KV groups)."""

    half: Tensor
    inv_half: Tensor
    ridge: float


def whitening(C: Tensor, ridge: float, device: torch.device | str | None = None) -> Whitening:
    """``(C + ridge I)^{1/2}`` and ``(C + ridge I)^{-1/2}`` by ``eigh`` in float64 (brief §4.5).

    The eigenvalues are clamped at zero (rounding) before the ridge is added.  Compute this once per
    layer and pass it to :func:`whitened_svd_vo` for every KV group instead of ``C_x`` (an ``eigh`` of
    a ``d x d`` matrix per group is the expensive part otherwise).

    Raises:
        ValueError: negative ridge, or ``C + ridge I`` singular (use ``ridge > 0``).
    """
    _square(C, "C")
    if not ridge >= 0:
        raise ValueError(f"ridge must be non-negative, got {ridge}")
    C64 = _sym64(C, torch.device(device) if device is not None else None)
    evals, evecs = torch.linalg.eigh(C64)
    evals = evals.clamp_min(0.0) + ridge
    if bool((evals <= 0).any()):
        raise ValueError("C + ridge*I is singular (zero eigenvalues); use ridge > 0")
    root = evals.sqrt()
    half = (evecs * root) @ evecs.T
    inv_half = (evecs / root) @ evecs.T
    return Whitening(0.5 * (half + half.T), 0.5 * (inv_half + inv_half.T), float(ridge))


def _vo_inputs(
    C_x: Tensor | Whitening, w_v_group: Tensor, w_o_heads: Sequence[Tensor], keep: int, ridge: float
) -> tuple[Whitening, Tensor, list[Tensor]]:
    if w_v_group.dim() != 2:
        raise ValueError(f"w_v_group must be [d_h, d], got shape {tuple(w_v_group.shape)}")
    d_h, d = w_v_group.shape
    if len(w_o_heads) < 1:
        raise ValueError("w_o_heads must hold at least one O column block")
    for w_o in w_o_heads:
        if tuple(w_o.shape) != (d, d_h):
            raise ValueError(f"every O block must be [d={d}, d_h={d_h}], got {tuple(w_o.shape)}")
    if not 1 <= int(keep) <= d_h:
        raise ValueError(f"keep must be in [1, {d_h}], got {keep}")
    device = w_v_group.device
    if isinstance(C_x, Whitening):
        if C_x.ridge != float(ridge):
            raise ValueError(f"the Whitening was computed with ridge {C_x.ridge}, not {ridge}")
        white = Whitening(C_x.half.to(device, _F64), C_x.inv_half.to(device, _F64), C_x.ridge)
    else:
        white = whitening(C_x, ridge, device)
    if white.half.shape != (d, d):
        raise ValueError(f"C_x must be [d={d}, d], got {tuple(white.half.shape)}")
    return white, w_v_group.to(_F64), [w_o.to(device=device, dtype=_F64) for w_o in w_o_heads]


def whitened_svd_vo(
    C_x: Tensor | Whitening,
    w_v_group: Tensor,
    w_o_heads: Sequence[Tensor],
    keep: int,
    ridge: float,
) -> tuple[Tensor, list[Tensor]]:
    """Type-III compression of one KV group's value-output pair by whitened SVD (brief §4.5).

    A query head ``h`` maps its (attention-mixed) input ``x`` to ``x W_v^T W_o,h^T`` with ``W_v`` the
    group's V rows ``[d_h, d]`` and ``W_o,h`` the head's O columns ``[d, d_h]``.  With
    ``C = C_x + ridge I`` and ``M = W_v^T W_o^T`` (``d x d``, rank ``<= d_h``), the rank-``keep``
    minimiser of ``||X M - X M'||_F = ||C^{1/2} (M - M')||_F`` is ``M' = C^{-1/2} U_k Σ_k V_k^T`` from
    the SVD ``C^{1/2} M = U Σ V^T`` (Eckart-Young; the error is ``sqrt(Σ_{i>k} σ_i²)``).

    * One query head per group (``len(w_o_heads) == 1``, no GQA): the cheap two-step form, identical
      to the big SVD: ``C^{1/2} W_v^T = U_1 Σ_1 V_1^T`` (``d x d_h``), then
      ``Σ_1 V_1^T W_o^T = U_2 Σ_2 V_2^T`` (``d_h x d``); ``U = U_1 U_2``, ``Σ = Σ_2``, ``V = V_2``.
    * ``g > 1`` query heads share V (GQA): as in the reference code, the SVD of ``C^{1/2} W_v^T`` alone,
      ``V_new^T = C^{-1/2} U_k`` and every head's ``O_new,h^T = Σ_k V_k^T W_o,h^T``, i.e. the whitened
      V projected onto its top-``keep`` subspace.  Not jointly optimal for the group (brief);
      :func:`whitened_svd_vo_one_big` gives the joint optimum of the summed objective for comparison.

    V biases are not handled here: since attention rows sum to one, a V bias ``b_v`` adds the constant
    ``W_o,h b_v`` to the output, so the caller can fold it into the o_proj bias and drop it.

    Args:
        C_x: ``[d, d]`` covariance of the attention input (``attn_in_cov``), or a precomputed
            :func:`whitening` of it with the same ``ridge``.
        w_v_group: ``[d_h, d]`` the group's rows of v_proj.
        w_o_heads: the group's query heads' column blocks of o_proj, each ``[d, d_h]``.
        keep: new value head dimension, ``1 <= keep <= d_h``.
        ridge: ``>= 0`` added to the eigenvalues of ``C_x`` (brief: 1e-4 default in the reference code).

    Returns:
        ``(v_new [keep, d], [o_new_h [d, keep] per query head])`` on ``w_v_group``'s device, in the
        dtypes of ``w_v_group`` and of each O block.
    """
    white, w_v, w_os = _vo_inputs(C_x, w_v_group, w_o_heads, keep, ridge)
    keep = int(keep)
    U1, S1, V1h = torch.linalg.svd(white.half @ w_v.T, full_matrices=False)  # [d, d_h], [d_h], [d_h, d_h]
    if len(w_os) == 1:
        U2, S2, V2h = torch.linalg.svd((S1.unsqueeze(1) * V1h) @ w_os[0].T, full_matrices=False)
        U = U1 @ U2[:, :keep]
        o_new = [(V2h[:keep].T * S2[:keep]).to(w_o_heads[0].dtype).contiguous()]
    else:
        U = U1[:, :keep]
        proj = V1h[:keep].T * S1[:keep]  # V_k Σ_k, [d_h, keep]
        o_new = [(w_o @ proj).to(orig.dtype).contiguous() for w_o, orig in zip(w_os, w_o_heads)]
    v_new = (white.inv_half @ U).T.to(w_v_group.dtype).contiguous()
    return v_new, o_new


def whitened_svd_vo_one_big(
    C_x: Tensor | Whitening,
    w_v_group: Tensor,
    w_o_heads: Sequence[Tensor],
    keep: int,
    ridge: float,
) -> tuple[Tensor, list[Tensor]]:
    """Reference for :func:`whitened_svd_vo`: one big SVD (brief §4.5 first bullet), for tests.

    The SVD of ``C^{1/2} W_v^T [W_o,1^T, ..., W_o,g^T]`` (``d x g d``), ``V_new^T = C^{-1/2} U_k`` and
    ``O_new,h^T`` the ``h``-th ``d``-column block of ``Σ_k V_k^T``.  For ``g = 1`` this is the per-head
    optimum of the paper; for ``g > 1`` it is the optimum of the error summed over the group's heads
    (with a shared ``V_new``), so its error is never larger than that of :func:`whitened_svd_vo`.
    Same arguments and return value as :func:`whitened_svd_vo`; costs a ``d x g d`` SVD.
    """
    white, w_v, w_os = _vo_inputs(C_x, w_v_group, w_o_heads, keep, ridge)
    keep = int(keep)
    d = w_v.shape[1]
    big = white.half @ w_v.T @ torch.cat([w_o.T for w_o in w_os], dim=1)
    U, S, Vh = torch.linalg.svd(big, full_matrices=False)
    o_t = S[:keep].unsqueeze(1) * Vh[:keep]  # [keep, g d]
    o_new = [o_t[:, h * d : (h + 1) * d].T.to(orig.dtype).contiguous() for h, orig in enumerate(w_o_heads)]
    v_new = (white.inv_half @ U[:, :keep]).T.to(w_v_group.dtype).contiguous()
    return v_new, o_new


# ---------------------------------------------------------------------------------------------- allocation
def allocate_sparsity(
    bi: Tensor,
    mean_sparsity: float,
    temperature: float,
    cap: float = 0.8,
    weights: Tensor | None = None,
) -> Tensor:
    """Per-layer sparsities from block influence (brief §4.6).

    ``φ = L · φ_avg · softmax(-bi / ε)`` (the maximiser of ``Σ_l s_l (1 - φ_l) + ε H(φ)`` under a
    mean constraint): layers with lower BI get more sparsity.  Layers above ``cap`` are set to the cap
    and the excess is redistributed over the uncapped layers in proportion to their softmax weights,
    repeated until no layer exceeds the cap (the uncapped layers keep ``φ_l ∝ softmax(-bi/ε)_l``).

    With ``weights`` (e.g. per-layer prunable parameter counts) the constraint is the weighted mean
    ``Σ w_l φ_l / Σ w_l = φ_avg``, so that the removed parameter fraction hits the target; with
    ``weights=None`` it is the plain mean.  The constraint holds to rounding (float64).

    Args:
        bi: ``[L]`` block influence per layer (calibration's ``bi``).
        mean_sparsity: target (weighted) mean ``φ_avg`` in ``[0, cap]``.
        temperature: softmax temperature ``ε > 0`` (reference default 0.15).
        cap: maximum per-layer sparsity, in ``(0, 1]`` (reference default 0.8).
        weights: optional ``[L]`` positive layer weights.

    Returns:
        float64 ``[L]`` sparsities on ``bi``'s device.

    Raises:
        ValueError: bad shapes or values, or ``mean_sparsity > cap`` (infeasible).
    """
    bi = torch.as_tensor(bi)
    if bi.dim() != 1 or bi.numel() < 1 or not bool(torch.isfinite(bi).all()):
        raise ValueError(f"bi must be a non-empty finite vector, got shape {tuple(bi.shape)}")
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 0 < cap <= 1:
        raise ValueError(f"cap must be in (0, 1], got {cap}")
    if not 0 <= mean_sparsity <= 1:
        raise ValueError(f"mean_sparsity must be in [0, 1], got {mean_sparsity}")
    if mean_sparsity > cap:
        raise ValueError(f"mean sparsity {mean_sparsity} exceeds the per-layer cap {cap}: infeasible")
    n = bi.numel()
    logits = -bi.to(_F64) / float(temperature)
    if weights is None:
        w = torch.ones(n, dtype=_F64, device=bi.device)
    else:
        w = torch.as_tensor(weights).to(device=bi.device, dtype=_F64)
        if w.shape != (n,) or not bool(torch.isfinite(w).all()) or not bool((w > 0).all()):
            raise ValueError(f"weights must be {n} positive finite numbers, got {weights!r}")
    total = float(mean_sparsity) * w.sum()

    phi = torch.empty(n, dtype=_F64, device=bi.device)
    capped = torch.zeros(n, dtype=torch.bool, device=bi.device)
    while True:
        free = ~capped
        if not bool(free.any()):
            break
        # Softmax restricted to the free layers: the same proportions, but no underflow to all-zero.
        p = torch.softmax(logits[free], dim=0)
        budget = total - cap * w[capped].sum()
        phi[free] = p * (budget / (w[free] * p).sum())
        phi[capped] = cap
        over = free.clone()
        over[free] = phi[free] > cap
        if not bool(over.any()):
            break
        capped |= over
    phi[capped] = cap
    return phi
