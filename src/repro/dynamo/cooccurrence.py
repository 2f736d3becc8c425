"""DynaMo co-occurrence tables: n-gram statistics of a tokenised corpus, pruned, with fast lookup.

DynaMo (Tuli et al., NAACL 2024, Eq. 3/6) multiplies the outer product of its token heads' top-k
marginals by a corpus co-occurrence ratio (see ``papers/dynamo.md`` §4.1 step 4 and §4.2)::

    ratio(x_1..x_n) = p̂(x_1..x_n) / prod_i p̂(x_i)

with ``p̂(x_1..x_n) = count(x_1..x_n) / ngram_totals[n]`` (the number of n-grams counted, before
pruning) and ``p̂(x) = unigram_count(x) / total_tokens``.  The decoder raises it to the power α_c
itself (α_c = 0 turns masking off since ``0 ** 0 == 1``).

Which setting of the brief each default follows ([P] paper, [I] the brief's inference; the [I]
choices are ours, brief §10 item 6 asks for them to be recorded):

* ``orders=(2, 3)``: pair and triplet tables for the T3 model [P]; 4-grams fit too (V = 50,304).
* **Adjacency** [I, ours]: the n-grams are *consecutive* tokens inside one document; n-grams
  never cross a document boundary (each document is tokenised and counted on its own).
* **Hard zero, no smoothing** [I, ours]: an unseen or pruned n-gram has ratio 0 at lookup (it is
  masked out, "filter out improbable token combinations"); ``mode="binary"`` gives the 0/1
  seen-mask variant the brief asks for as a toggle.
* **Pruning** [I, ours]: ``min_count=2`` drops singletons (the paper's 53 MB / 153 MB pair / triplet
  sizes imply pruning it never states), then ``max_entries`` (default ``None``: no cap) keeps the
  most frequent n-grams of each order, ties broken by the smaller key, so tables are deterministic.
  The unigram and n-gram totals are taken *before* pruning, so pruning never changes a kept ratio.
* **Keys** [I]: an n-gram is packed into one int64 key ``sum_i x_i * V**(n-1-i)`` (``x_1`` most
  significant, so key order is lexicographic order); tables hold the sorted unique keys plus float32
  ratios (a sorted COO list) and lookup is one ``torch.searchsorted``.  ``V`` is the table's
  ``vocab_size`` (50,304 for the Pythia models up to 2.8B, 50,432 for 6.9B: pass the model's).
* **Counting** [I]: chunk by chunk (``chunk_size`` n-grams) with ``torch.unique(return_counts=True)``,
  each chunk merged into the running sorted table, so memory is bounded by the number of distinct
  n-grams, not the corpus size.

Files are safetensors (``unigram_counts``, ``keys_<n>``, ``ratios_<n>``) with the scalar fields
JSON-encoded in the header metadata.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch

FORMAT_NAME = "repro.dynamo.cooccurrence"
FORMAT_VERSION = 1
_INT64_MAX = 2**63 - 1
_METADATA_FIELDS = ("format", "format_version", "vocab_size", "total_tokens", "orders", "ngram_totals")
_METADATA_FIELDS += ("min_count", "max_entries", "kept")


# ------------------------------------------------------------------------------------------ keys
def _check_key_space(n: int, vocab_size: int) -> None:
    if n < 1:
        raise ValueError(f"n-gram order must be >= 1, got {n}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be >= 1, got {vocab_size}")
    if vocab_size**n - 1 > _INT64_MAX:
        raise ValueError(f"vocab_size**n = {vocab_size}**{n} does not fit in int64 keys")


def _check_ids(ids: torch.Tensor, vocab_size: int) -> None:
    if ids.dtype.is_floating_point or ids.dtype.is_complex or ids.dtype == torch.bool:
        raise ValueError(f"token ids must be an integer tensor, got {ids.dtype}")
    if ids.numel() and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
        raise ValueError(f"token ids out of range [0, {vocab_size}): min {int(ids.min())}, max {int(ids.max())}")


def _pack(ngrams: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Horner evaluation of the key, without checks (ids must be in range)."""
    ngrams = ngrams.long()
    keys = ngrams[..., 0].clone()
    for i in range(1, ngrams.shape[-1]):
        keys.mul_(vocab_size).add_(ngrams[..., i])
    return keys


def pack_keys(ngrams: torch.Tensor, vocab_size: int) -> torch.Tensor:
    """Pack n-grams ``(..., n)`` into int64 keys ``(...)``: ``sum_i x_i * V**(n-1-i)``.

    ``x_1`` is the most significant digit, so packed order equals lexicographic n-gram order.
    Raises ``ValueError`` if ``V**n`` overflows int64 or an id is outside ``[0, V)``.
    """
    if ngrams.dim() < 1:
        raise ValueError("ngrams must have a last dimension of size n")
    _check_key_space(ngrams.shape[-1], vocab_size)
    _check_ids(ngrams, vocab_size)
    return _pack(ngrams, vocab_size)


def unpack_keys(keys: torch.Tensor, n: int, vocab_size: int) -> torch.Tensor:
    """Inverse of :func:`pack_keys`: int64 keys ``(...)`` -> n-grams ``(..., n)``."""
    _check_key_space(n, vocab_size)
    keys = keys.long()
    if keys.numel() and (int(keys.min()) < 0 or int(keys.max()) > vocab_size**n - 1):
        raise ValueError(f"keys out of range [0, {vocab_size}**{n})")
    out = torch.empty((*keys.shape, n), dtype=torch.long, device=keys.device)
    rest = keys.clone()
    for i in range(n - 1, -1, -1):
        out[..., i] = rest % vocab_size
        rest = rest.div(vocab_size, rounding_mode="floor")
    return out


# -------------------------------------------------------------------------------------- counting
def _as_ids(doc, device: torch.device | str | None) -> torch.Tensor:
    ids = torch.as_tensor(doc)
    if ids.dim() != 1:
        raise ValueError(f"each document must be a 1-D tensor of token ids, got shape {tuple(ids.shape)}")
    return ids.to(device) if device is not None else ids


def _key_chunks(
    documents: Iterable, n: int, vocab_size: int, chunk_size: int, device: torch.device | str | None
) -> Iterator[torch.Tensor]:
    """Yield the packed keys of all within-document n-grams, ``chunk_size`` keys at a time.

    A document is cut into pieces of whole n-grams (a piece overlaps the next by n - 1 tokens), so
    every n-gram is produced exactly once however the chunks fall.
    """
    buffer: list[torch.Tensor] = []
    buffered = 0
    for doc in documents:
        ids = _as_ids(doc, device)
        _check_ids(ids, vocab_size)
        m = ids.numel() - n + 1  # n-grams in this document
        start = 0
        while start < m:
            stop = min(m, start + chunk_size - buffered)
            buffer.append(_pack(ids[start : stop + n - 1].unfold(0, n, 1), vocab_size))
            buffered += stop - start
            start = stop
            if buffered >= chunk_size:
                yield torch.cat(buffer)
                buffer, buffered = [], 0
    if buffer:
        yield torch.cat(buffer)


def _merge_sorted(
    keys: torch.Tensor, counts: torch.Tensor, new_keys: torch.Tensor, new_counts: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Merge sorted unique ``(new_keys, new_counts)`` into sorted unique ``(keys, counts)``.

    Keys already present get their counts added in place; absent ones are interleaved at their
    sorted positions (position in the merged table = searchsorted position + rank among the new).
    """
    if keys.numel() == 0:
        return new_keys, new_counts
    idx = torch.searchsorted(keys, new_keys)
    hit = keys[idx.clamp_max(keys.numel() - 1)] == new_keys
    counts.index_add_(0, idx[hit], new_counts[hit])
    miss = ~hit
    if not bool(miss.any()):
        return keys, counts
    add_keys, add_counts = new_keys[miss], new_counts[miss]
    pos = idx[miss] + torch.arange(add_keys.numel(), device=keys.device)
    size = keys.numel() + add_keys.numel()
    old = torch.ones(size, dtype=torch.bool, device=keys.device)
    old[pos] = False
    merged_keys = torch.empty(size, dtype=keys.dtype, device=keys.device)
    merged_counts = torch.empty(size, dtype=counts.dtype, device=keys.device)
    merged_keys[pos], merged_counts[pos] = add_keys, add_counts
    merged_keys[old], merged_counts[old] = keys, counts
    return merged_keys, merged_counts


def count_ngrams(
    documents: Sequence[torch.Tensor],
    n: int,
    vocab_size: int,
    chunk_size: int = 1_000_000,
    *,
    device: torch.device | str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Count the adjacent n-grams *within* each document.

    Returns ``(keys, counts)``: the sorted unique packed keys (int64, see :func:`pack_keys`) and
    their counts (int64).  N-grams never span two documents.  Keys are counted ``chunk_size`` at a
    time with ``torch.unique(return_counts=True)`` and merged into the running table, so peak memory
    is O(distinct n-grams + chunk_size).  ``device`` (default: where each document is) is where the
    counting runs, e.g. ``"cuda"``.
    """
    _check_key_space(n, vocab_size)
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be >= 1, got {chunk_size}")
    keys = torch.empty(0, dtype=torch.long, device=device)
    counts = torch.empty(0, dtype=torch.long, device=device)
    for chunk in _key_chunks(documents, n, vocab_size, chunk_size, device):
        chunk_keys, chunk_counts = torch.unique(chunk, sorted=True, return_counts=True)
        keys, counts = _merge_sorted(keys.to(chunk.device), counts.to(chunk.device), chunk_keys, chunk_counts)
    return keys, counts


def _count_unigrams(
    documents: Iterable, vocab_size: int, chunk_size: int, device: torch.device | str | None
) -> torch.Tensor:
    counts = torch.zeros(vocab_size, dtype=torch.long, device=device)
    for chunk in _key_chunks(documents, 1, vocab_size, chunk_size, device):
        counts = counts.to(chunk.device)
        counts += torch.bincount(chunk, minlength=vocab_size)
    return counts


def _prune(
    keys: torch.Tensor, counts: torch.Tensor, min_count: int, max_entries: int | None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Drop counts < min_count, then keep the ``max_entries`` most frequent (ties: smaller key)."""
    keep = counts >= min_count
    keys, counts = keys[keep], counts[keep]
    if max_entries is not None and keys.numel() > max_entries:
        # Keys are ascending, so a stable sort by descending count breaks ties by the smaller key.
        order = torch.sort(counts, descending=True, stable=True).indices[:max_entries]
        order = torch.sort(order).values  # back to key order
        keys, counts = keys[order], counts[order]
    return keys, counts


# ------------------------------------------------------------------------------------------ table
@dataclass(eq=False)  # tensor fields: compare tables field by field
class CooccurrenceTable:
    """Pruned n-gram co-occurrence ratios of a corpus (see the module docstring).

    ``orders[n] = (keys, ratios)``: sorted unique int64 packed keys of the kept n-grams and their
    float32 ratios ``p̂(x_1..x_n) / prod_i p̂(x_i)``.  ``ngram_totals[n]`` is the number of n-grams
    counted (before pruning); ``kept[n]`` how many survived pruning.  Treat a table as immutable:
    :meth:`lookup` caches per-device copies of ``orders``.
    """

    vocab_size: int
    unigram_counts: torch.Tensor
    total_tokens: int
    orders: dict[int, tuple[torch.Tensor, torch.Tensor]]
    ngram_totals: dict[int, int]
    min_count: int
    max_entries: int | None
    kept: dict[int, int]
    _device_cache: dict[tuple[int, str], tuple[torch.Tensor, torch.Tensor]] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    @classmethod
    def build(
        cls,
        documents: Sequence[torch.Tensor],
        vocab_size: int,
        orders: Sequence[int] = (2, 3),
        min_count: int = 2,
        max_entries: int | None = None,
        progress: bool = False,
        *,
        chunk_size: int = 1_000_000,
        device: torch.device | str | None = None,
    ) -> CooccurrenceTable:
        """Count unigrams and each order's n-grams of ``documents`` and keep the pruned ratios.

        ``documents`` is read once per order plus once for unigrams, so it must be re-iterable
        (a list of 1-D id tensors).  ``max_entries`` caps each order separately.  ``progress``
        shows a tqdm bar per pass.  Tables are returned on the CPU.
        """
        orders = tuple(sorted(set(int(n) for n in orders)))
        if not orders or orders[0] < 2:
            raise ValueError(f"orders must be n-gram orders >= 2, got {orders}")
        if min_count < 1:
            raise ValueError(f"min_count must be >= 1, got {min_count}")
        if max_entries is not None and max_entries < 0:
            raise ValueError(f"max_entries must be >= 0 or None, got {max_entries}")
        for n in orders:
            _check_key_space(n, vocab_size)

        def docs(desc: str) -> Iterable:
            if not progress:
                return documents
            from tqdm.auto import tqdm

            return tqdm(documents, desc=desc, unit="doc")

        unigram_counts = _count_unigrams(docs("unigrams"), vocab_size, chunk_size, device).cpu()
        total_tokens = int(unigram_counts.sum())
        # p̂(x) as float64; a token inside a kept n-gram always has a count > 0.
        log_p1 = (unigram_counts.double() / max(total_tokens, 1)).log()
        tables: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        totals: dict[int, int] = {}
        kept: dict[int, int] = {}
        for n in orders:
            keys, counts = count_ngrams(docs(f"{n}-grams"), n, vocab_size, chunk_size, device=device)
            keys, counts = keys.cpu(), counts.cpu()
            totals[n] = int(counts.sum())
            keys, counts = _prune(keys, counts, min_count, max_entries)
            # log ratio = log(count / N_n) - sum_i log p̂(x_i), in float64 to avoid T**n overflow.
            log_ratio = (counts.double() / max(totals[n], 1)).log() - log_p1[unpack_keys(keys, n, vocab_size)].sum(-1)
            tables[n] = (keys.contiguous(), log_ratio.exp().float().contiguous())
            kept[n] = int(keys.numel())
        return cls(
            vocab_size=int(vocab_size),
            unigram_counts=unigram_counts,
            total_tokens=total_tokens,
            orders=tables,
            ngram_totals=totals,
            min_count=int(min_count),
            max_entries=None if max_entries is None else int(max_entries),
            kept=kept,
        )

    # ---------------------------------------------------------------------------------- lookup
    def _on(self, n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
        """The order-``n`` keys and ratios on ``device``, copied once and cached."""
        cache_key = (n, str(device))
        if cache_key not in self._device_cache:
            keys, ratios = self.orders[n]
            self._device_cache[cache_key] = (keys.to(device), ratios.to(device))
        return self._device_cache[cache_key]

    def lookup(self, candidates: torch.Tensor, mode: str = "ratio") -> torch.Tensor:
        """Ratio of each candidate n-gram ``(..., n)`` -> float32 ``(...)``; 0 where absent or pruned.

        ``mode="binary"`` returns 1 for a kept n-gram and 0 otherwise.  Runs on the candidates'
        device without host syncs (ids outside ``[0, V)`` count as absent, not as errors).
        """
        if mode not in ("ratio", "binary"):
            raise ValueError(f"mode must be 'ratio' or 'binary', got {mode!r}")
        if candidates.dim() < 1:
            raise ValueError("candidates must have a last dimension of size n")
        n = candidates.shape[-1]
        if n not in self.orders:
            raise ValueError(f"no order-{n} table (have orders {sorted(self.orders)})")
        keys, ratios = self._on(n, candidates.device)
        shape = candidates.shape[:-1]
        if keys.numel() == 0:
            return torch.zeros(shape, dtype=torch.float32, device=candidates.device)
        cand = candidates.long()
        valid = ((cand >= 0) & (cand < self.vocab_size)).all(-1)
        query = _pack(cand.clamp(0, self.vocab_size - 1), self.vocab_size)
        idx = torch.searchsorted(keys, query.reshape(-1)).clamp_max_(keys.numel() - 1).reshape(shape)
        hit = (keys[idx] == query) & valid
        if mode == "binary":
            return hit.float()
        return torch.where(hit, ratios[idx], torch.zeros((), dtype=ratios.dtype, device=ratios.device))

    def memory_bytes(self) -> int:
        """Bytes held by the keys, ratios and unigram counts (CPU copies; device caches excluded)."""
        total = self.unigram_counts.numel() * self.unigram_counts.element_size()
        for keys, ratios in self.orders.values():
            total += keys.numel() * keys.element_size() + ratios.numel() * ratios.element_size()
        return total

    # ------------------------------------------------------------------------------------- I/O
    def save(self, path: str | Path) -> None:
        """Write the table to a safetensors file (atomically), scalar fields in the header metadata."""
        from safetensors.torch import save_file

        from repro.io import atomic_path

        tensors = {"unigram_counts": self.unigram_counts.detach().cpu().contiguous()}
        for n, (keys, ratios) in self.orders.items():
            tensors[f"keys_{n}"] = keys.detach().cpu().contiguous()
            tensors[f"ratios_{n}"] = ratios.detach().cpu().contiguous()
        meta = {
            "format": FORMAT_NAME,
            "format_version": FORMAT_VERSION,
            "vocab_size": self.vocab_size,
            "total_tokens": self.total_tokens,
            "orders": sorted(self.orders),
            "ngram_totals": {str(n): v for n, v in self.ngram_totals.items()},
            "min_count": self.min_count,
            "max_entries": self.max_entries,
            "kept": {str(n): v for n, v in self.kept.items()},
        }
        header = {k: json.dumps(v, sort_keys=True) for k, v in meta.items()}
        with atomic_path(Path(path), suffix=".safetensors") as tmp:
            save_file(tensors, str(tmp), metadata=header)

    @classmethod
    def load(cls, path: str | Path) -> CooccurrenceTable:
        """Read a table written by :meth:`save`; ``ValueError`` naming the file if it is not one."""
        from safetensors import safe_open

        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"co-occurrence table {path} does not exist")

        def bad(why: str) -> ValueError:
            return ValueError(f"{path} is not a valid co-occurrence table: {why}")

        try:
            with safe_open(str(path), framework="pt") as f:
                header = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as exc:  # safetensors raises its own error types for unreadable files
            raise bad(f"cannot read it as safetensors ({exc})") from exc
        missing = [k for k in _METADATA_FIELDS if k not in header]
        if missing:
            raise bad(f"metadata fields missing: {missing}")
        try:
            meta = {k: json.loads(header[k]) for k in _METADATA_FIELDS}
        except json.JSONDecodeError as exc:
            raise bad(f"metadata is not JSON ({exc})") from exc
        if meta["format"] != FORMAT_NAME or meta["format_version"] != FORMAT_VERSION:
            raise bad(f"format {meta['format']!r} version {meta['format_version']!r}")
        try:
            vocab_size, total_tokens = int(meta["vocab_size"]), int(meta["total_tokens"])
            orders = [int(n) for n in meta["orders"]]
            totals = {int(n): int(v) for n, v in meta["ngram_totals"].items()}
            kept = {int(n): int(v) for n, v in meta["kept"].items()}
            min_count = int(meta["min_count"])
            max_entries = None if meta["max_entries"] is None else int(meta["max_entries"])
        except (TypeError, ValueError, AttributeError) as exc:
            raise bad(f"malformed metadata ({exc})") from exc
        if set(totals) != set(orders) or set(kept) != set(orders):
            raise bad(f"orders {orders} disagree with ngram_totals {sorted(totals)} / kept {sorted(kept)}")

        unigrams = tensors.get("unigram_counts")
        if unigrams is None or unigrams.dtype != torch.long or tuple(unigrams.shape) != (vocab_size,):
            raise bad(f"unigram_counts must be int64 of shape ({vocab_size},)")
        if int(unigrams.sum()) != total_tokens or bool((unigrams < 0).any()):
            raise bad(f"unigram_counts do not sum to total_tokens = {total_tokens}")
        expected = {"unigram_counts"} | {f"{p}_{n}" for n in orders for p in ("keys", "ratios")}
        if set(tensors) != expected:
            raise bad(f"tensors {sorted(tensors)}, expected {sorted(expected)}")
        tables: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        for n in orders:
            keys, ratios = tensors[f"keys_{n}"], tensors[f"ratios_{n}"]
            if keys.dtype != torch.long or keys.dim() != 1:
                raise bad(f"keys_{n} must be a 1-D int64 tensor")
            if ratios.dtype != torch.float32 or ratios.shape != keys.shape:
                raise bad(f"ratios_{n} must be float32 with the length of keys_{n} ({keys.numel()})")
            if keys.numel() != kept[n]:
                raise bad(f"keys_{n} has {keys.numel()} entries, metadata kept says {kept[n]}")
            if keys.numel() > 1 and not bool((keys[1:] > keys[:-1]).all()):
                raise bad(f"keys_{n} are not sorted and unique")
            if keys.numel() and (int(keys[0]) < 0 or int(keys[-1]) > vocab_size**n - 1):
                raise bad(f"keys_{n} out of range for vocab_size {vocab_size}")
            if not bool(torch.isfinite(ratios).all()) or bool((ratios < 0).any()):
                raise bad(f"ratios_{n} must be finite and >= 0")
            tables[n] = (keys, ratios)
        return cls(
            vocab_size=vocab_size,
            unigram_counts=unigrams,
            total_tokens=total_tokens,
            orders=tables,
            ngram_totals=totals,
            min_count=min_count,
            max_entries=max_entries,
            kept=kept,
        )
