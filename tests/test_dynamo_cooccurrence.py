"""Known-answer tests of the DynaMo co-occurrence tables (repro.dynamo.cooccurrence)."""

from __future__ import annotations

import itertools
from collections import Counter

import pytest
import torch
from safetensors.torch import load_file, save_file

from repro.dynamo.cooccurrence import CooccurrenceTable, count_ngrams, pack_keys, unpack_keys

# Hand-made corpus, V = 4 (token 3 never occurs).  Between the documents, (1, 1) would be a
# cross-boundary bigram: it must never be counted.
DOCS = [torch.tensor([0, 1, 2, 0, 1]), torch.tensor([1, 2])]
V = 4


def ngram_counter(docs, n: int) -> Counter:
    """Reference: adjacent n-grams within each document."""
    out: Counter = Counter()
    for doc in docs:
        ids = doc.tolist()
        out.update(tuple(ids[i : i + n]) for i in range(len(ids) - n + 1))
    return out


def as_dict(keys: torch.Tensor, counts: torch.Tensor, n: int, vocab_size: int) -> dict[tuple[int, ...], int]:
    grams = unpack_keys(keys, n, vocab_size).tolist()
    return {tuple(g): int(c) for g, c in zip(grams, counts.tolist())}


def reference_ratios(docs, n: int, vocab_size: int, min_count: int) -> dict[tuple[int, ...], float]:
    """ratio = (count / N_n) / prod_i(u_i / T), with N_n and T counted before pruning."""
    unigrams = ngram_counter(docs, 1)
    total = sum(unigrams.values())
    grams = ngram_counter(docs, n)
    n_total = sum(grams.values())
    out = {}
    for gram, count in grams.items():
        if count >= min_count:
            denom = 1.0
            for x in gram:
                denom *= unigrams[(x,)] / total
            out[gram] = (count / n_total) / denom
    return out


# ------------------------------------------------------------------------------------------ keys
def test_pack_known_values_and_round_trip():
    assert pack_keys(torch.tensor([[1, 2, 3], [0, 0, 9]]), 10).tolist() == [123, 9]
    g = torch.Generator().manual_seed(0)
    for n, vocab in [(1, 7), (2, 50304), (3, 50304), (4, 50304)]:
        grams = torch.randint(0, vocab, (5, 6, n), generator=g)
        keys = pack_keys(grams, vocab)
        assert keys.dtype == torch.int64 and keys.shape == (5, 6)
        assert torch.equal(unpack_keys(keys, n, vocab), grams)


def test_packed_order_is_lexicographic():
    grams = list(itertools.product(range(5), repeat=3))
    keys = pack_keys(torch.tensor(grams), 5)
    assert keys.tolist() == list(range(125))  # itertools.product enumerates in lexicographic order
    shuffled = torch.tensor(grams)[torch.randperm(125, generator=torch.Generator().manual_seed(1))]
    order = torch.argsort(pack_keys(shuffled, 5))
    assert [tuple(r) for r in shuffled[order].tolist()] == sorted(tuple(r) for r in shuffled.tolist())


def test_pack_overflow_and_range_errors():
    # 2**21 ** 3 == 2**63: the largest key 2**63 - 1 is exactly int64 max, one more id overflows.
    top = 2**21 - 1
    assert pack_keys(torch.tensor([[top, top, top]]), 2**21).item() == 2**63 - 1
    with pytest.raises(ValueError, match="int64"):
        pack_keys(torch.zeros(1, 3, dtype=torch.long), 2**21 + 1)
    with pytest.raises(ValueError, match="int64"):
        pack_keys(torch.zeros(1, 5, dtype=torch.long), 50304)
    with pytest.raises(ValueError, match="out of range"):
        pack_keys(torch.tensor([[0, 4]]), 4)
    with pytest.raises(ValueError, match="out of range"):
        pack_keys(torch.tensor([[-1, 0]]), 4)
    with pytest.raises(ValueError, match="integer"):
        pack_keys(torch.tensor([[0.0, 1.0]]), 4)
    with pytest.raises(ValueError, match="out of range"):
        unpack_keys(torch.tensor([16]), 2, 4)


# -------------------------------------------------------------------------------------- counting
@pytest.mark.parametrize("chunk_size", [1, 2, 3, 7, 1_000_000])
def test_count_ngrams_matches_counter_within_documents(chunk_size):
    for n in (1, 2, 3):
        keys, counts = count_ngrams(DOCS, n, V, chunk_size=chunk_size)
        assert torch.all(keys[1:] > keys[:-1])
        assert as_dict(keys, counts, n, V) == dict(ngram_counter(DOCS, n))
    bigrams = as_dict(*count_ngrams(DOCS, 2, V, chunk_size=chunk_size), 2, V)
    assert bigrams == {(0, 1): 2, (1, 2): 2, (2, 0): 1}
    assert (1, 1) not in bigrams  # the cross-document bigram


@pytest.mark.parametrize("chunk_size", [1, 5, 64, 1_000_000])
def test_count_ngrams_random_corpus_and_short_documents(chunk_size):
    g = torch.Generator().manual_seed(2)
    docs = [torch.randint(0, 6, (int(length),), generator=g) for length in torch.randint(0, 40, (30,), generator=g)]
    docs += [torch.tensor([], dtype=torch.long), torch.tensor([3]), torch.tensor([2, 5])]  # shorter than n
    for n in (2, 3, 4):
        keys, counts = count_ngrams(docs, n, 6, chunk_size=chunk_size)
        assert as_dict(keys, counts, n, 6) == dict(ngram_counter(docs, n))


def test_count_ngrams_rejects_bad_input():
    with pytest.raises(ValueError, match="out of range"):
        count_ngrams([torch.tensor([0, 9])], 2, 4)
    with pytest.raises(ValueError, match="1-D"):
        count_ngrams([torch.zeros(2, 2, dtype=torch.long)], 2, 4)


# ----------------------------------------------------------------------------------------- ratios
def test_ratio_values_by_hand():
    table = CooccurrenceTable.build(DOCS, V, orders=(2, 3), min_count=1)
    # Unigrams: 0 x2, 1 x3, 2 x2, 3 x0; T = 7.  Bigrams: (0,1) x2, (1,2) x2, (2,0) x1; N_2 = 5.
    # Trigrams: (0,1,2), (1,2,0), (2,0,1) x1 each; N_3 = 3.
    #   r(0,1)   = (2/5) / ((2/7)(3/7))      = (2/5)(49/6)    = 49/15
    #   r(1,2)   = (2/5) / ((3/7)(2/7))      = 49/15
    #   r(2,0)   = (1/5) / ((2/7)(2/7))      = (1/5)(49/4)    = 49/20
    #   r(0,1,2) = (1/3) / ((2/7)(3/7)(2/7)) = (1/3)(343/12)  = 343/36
    #   r(1,2,0) = 343/36 (same unigram counts 3, 2, 2);  r(2,0,1) = 343/36
    assert table.unigram_counts.tolist() == [2, 3, 2, 0]
    assert table.total_tokens == 7 and table.ngram_totals == {2: 5, 3: 3} and table.kept == {2: 3, 3: 3}
    pairs = torch.tensor([[0, 1], [1, 2], [2, 0], [1, 1], [0, 3], [2, 1]])
    expected = torch.tensor([49 / 15, 49 / 15, 49 / 20, 0.0, 0.0, 0.0])
    got = table.lookup(pairs)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=0)
    triples = torch.tensor([[0, 1, 2], [1, 2, 0], [2, 0, 1], [0, 1, 1], [1, 2, 1]])  # last: cross-document
    torch.testing.assert_close(table.lookup(triples), torch.tensor([343 / 36] * 3 + [0.0, 0.0]), rtol=1e-6, atol=0)
    assert table.lookup(pairs, mode="binary").tolist() == [1.0, 1.0, 1.0, 0.0, 0.0, 0.0]


def test_lookup_edge_cases():
    table = CooccurrenceTable.build(DOCS, V, orders=(2,), min_count=1)
    assert table.lookup(torch.tensor([[0, 1], [-1, 1], [0, 4], [4, 0]])).tolist()[1:] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="order-3"):
        table.lookup(torch.tensor([[0, 1, 2]]))
    with pytest.raises(ValueError, match="mode"):
        table.lookup(torch.tensor([[0, 1]]), mode="soft")
    empty = CooccurrenceTable.build(DOCS, V, orders=(2,), min_count=100)
    assert empty.kept == {2: 0}
    assert empty.lookup(torch.tensor([[[0, 1], [1, 2]]])).tolist() == [[0.0, 0.0]]


# ---------------------------------------------------------------------------------------- pruning
# Two-token documents give exact bigram counts: (0,1) x3, (0,2) x2, (1,2) x2, (2,3) x2, (3,0) x1.
# Keys with V = 4: (0,1) = 1, (0,2) = 2, (1,2) = 6, (2,3) = 11, (3,0) = 12.
PRUNE_DOCS = [torch.tensor(d) for d in [[0, 1]] * 3 + [[0, 2]] * 2 + [[1, 2]] * 2 + [[2, 3]] * 2 + [[3, 0]]]


def kept_bigrams(table: CooccurrenceTable) -> list[tuple[int, ...]]:
    return [tuple(g) for g in unpack_keys(table.orders[2][0], 2, V).tolist()]


def test_min_count_and_max_entries_pruning():
    full = CooccurrenceTable.build(PRUNE_DOCS, V, orders=(2,), min_count=1)
    assert kept_bigrams(full) == [(0, 1), (0, 2), (1, 2), (2, 3), (3, 0)]
    by_count = CooccurrenceTable.build(PRUNE_DOCS, V, orders=(2,), min_count=2)
    assert kept_bigrams(by_count) == [(0, 1), (0, 2), (1, 2), (2, 3)]
    assert by_count.lookup(torch.tensor([[3, 0]])).item() == 0.0
    # Cap 2: (0,1) by count, then the count-2 tie goes to the smallest key, (0,2).
    capped = CooccurrenceTable.build(PRUNE_DOCS, V, orders=(2,), min_count=1, max_entries=2)
    assert kept_bigrams(capped) == [(0, 1), (0, 2)]
    assert kept_bigrams(CooccurrenceTable.build(PRUNE_DOCS, V, orders=(2,), min_count=1, max_entries=3)) == [
        (0, 1),
        (0, 2),
        (1, 2),
    ]
    assert capped.kept == {2: 2} and capped.ngram_totals == {2: 10}  # totals before pruning
    # Pruning never changes a surviving ratio.
    probe = torch.tensor([[0, 1], [0, 2]])
    torch.testing.assert_close(capped.lookup(probe), full.lookup(probe), rtol=0, atol=0)
    with pytest.raises(ValueError, match="min_count"):
        CooccurrenceTable.build(PRUNE_DOCS, V, min_count=0)


def test_memory_bytes():
    table = CooccurrenceTable.build(DOCS, V, orders=(2, 3), min_count=1)
    assert table.memory_bytes() == 8 * V + (8 + 4) * (3 + 3)


# ------------------------------------------------------------------------------------- save/load
def test_save_load_round_trip(tmp_path):
    table = CooccurrenceTable.build(PRUNE_DOCS, V, orders=(2, 3), min_count=1, max_entries=4)
    path = tmp_path / "cooc.safetensors"
    table.save(path)
    loaded = CooccurrenceTable.load(path)
    for name in ("vocab_size", "total_tokens", "ngram_totals", "min_count", "max_entries", "kept"):
        assert getattr(loaded, name) == getattr(table, name), name
    assert torch.equal(loaded.unigram_counts, table.unigram_counts)
    assert sorted(loaded.orders) == sorted(table.orders) == [2, 3]
    for n in (2, 3):
        assert torch.equal(loaded.orders[n][0], table.orders[n][0])
        assert torch.equal(loaded.orders[n][1], table.orders[n][1])
    no_cap = CooccurrenceTable.build(DOCS, V, orders=(2,), min_count=1)
    no_cap.save(path)
    assert CooccurrenceTable.load(path).max_entries is None


def test_load_rejects_other_files(tmp_path):
    table = CooccurrenceTable.build(DOCS, V, orders=(2, 3), min_count=1)
    good = tmp_path / "good.safetensors"
    table.save(good)
    tensors = load_file(str(good))
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        meta = f.metadata()

    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x07not a safetensors file at all")
    other = tmp_path / "other.safetensors"
    save_file({"weight": torch.zeros(3)}, str(other))
    unsorted = tmp_path / "unsorted.safetensors"
    save_file({**tensors, "keys_2": tensors["keys_2"].flip(0).contiguous()}, str(unsorted), metadata=meta)
    short = tmp_path / "short.safetensors"
    save_file({**tensors, "ratios_3": tensors["ratios_3"][:2].contiguous()}, str(short), metadata=meta)
    no_field = tmp_path / "no_field.safetensors"
    save_file(tensors, str(no_field), metadata={k: v for k, v in meta.items() if k != "kept"})
    missing_tensor = tmp_path / "missing_tensor.safetensors"
    save_file({k: v for k, v in tensors.items() if k != "keys_3"}, str(missing_tensor), metadata=meta)

    for path, why in [
        (garbage, "safetensors"),
        (other, "missing"),
        (unsorted, "sorted"),
        (short, "length"),
        (no_field, "kept"),
        (missing_tensor, "tensors"),
    ]:
        with pytest.raises(ValueError, match=why) as err:
            CooccurrenceTable.load(path)
        assert str(path) in str(err.value)
    with pytest.raises(FileNotFoundError):
        CooccurrenceTable.load(tmp_path / "absent.safetensors")


# ------------------------------------------------------------------------------ random grid lookup
def zipf_corpus(vocab_size: int, n_docs: int, seed: int) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    weights = 1.0 / torch.arange(1, vocab_size + 1, dtype=torch.float64)
    lengths = torch.randint(1, 400, (n_docs,), generator=g).tolist()
    return [torch.multinomial(weights, length, replacement=True, generator=g) for length in lengths]


@pytest.mark.parametrize("min_count", [1, 3])
def test_lookup_grid_matches_dict_reference(min_count):
    vocab = 50
    docs = zipf_corpus(vocab, 120, seed=3)
    table = CooccurrenceTable.build(docs, vocab, orders=(2, 3), min_count=min_count, chunk_size=997)

    ids = torch.arange(vocab)
    pairs = torch.stack(torch.meshgrid(ids, ids, indexing="ij"), -1)  # (50, 50, 2)
    ref2 = reference_ratios(docs, 2, vocab, min_count)
    expected2 = torch.tensor([[ref2.get((a, b), 0.0) for b in range(vocab)] for a in range(vocab)])
    assert table.kept[2] == len(ref2)
    torch.testing.assert_close(table.lookup(pairs), expected2.float(), rtol=1e-6, atol=0)
    assert torch.equal(table.lookup(pairs, mode="binary"), (expected2 > 0).float())

    top = torch.randperm(vocab, generator=torch.Generator().manual_seed(4))[:20]  # like a top-k list
    triples = torch.stack(torch.meshgrid(top, top, top, indexing="ij"), -1)  # (20, 20, 20, 3)
    ref3 = reference_ratios(docs, 3, vocab, min_count)
    expected3 = torch.tensor([ref3.get(tuple(t), 0.0) for t in triples.reshape(-1, 3).tolist()]).reshape(20, 20, 20)
    assert 0 < int((expected3 > 0).sum()) < expected3.numel()  # both hits and misses exercised
    torch.testing.assert_close(table.lookup(triples), expected3.float(), rtol=1e-6, atol=0)
    assert torch.equal(table.lookup(triples, mode="binary"), (expected3 > 0).float())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_lookup_on_cuda_matches_cpu():
    docs = zipf_corpus(50, 40, seed=5)
    table = CooccurrenceTable.build(docs, 50, orders=(2, 3), min_count=1, device="cuda")
    cpu = CooccurrenceTable.build(docs, 50, orders=(2, 3), min_count=1)
    cand = torch.randint(0, 50, (20, 20, 20, 3))
    torch.testing.assert_close(table.lookup(cand.cuda()).cpu(), cpu.lookup(cand), rtol=0, atol=0)


def test_build_with_progress(capsys):
    table = CooccurrenceTable.build(DOCS, V, orders=(2,), min_count=1, progress=True)
    assert table.kept == {2: 3}
