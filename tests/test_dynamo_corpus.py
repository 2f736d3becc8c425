"""Streaming a corpus from disk: pieces at document boundaries, windows, streamed training."""

from __future__ import annotations

import pytest
import torch

from repro.dynamo.cooccurrence import CooccurrenceTable
from repro.dynamo.corpus import TokenPieces, stream_windows, text_pieces
from repro.dynamo.heads import MultiTokenModel
from repro.dynamo.training import train_heads
from repro.llm.tiny import tiny_model


class CharTokenizer:
    """One id per character (ord), so token counts are character counts."""

    def __call__(self, text, add_special_tokens=False):
        return {"input_ids": [ord(c) % 128 for c in text]}


def write_docs(path, n_docs=40, seed=0):
    g = torch.Generator().manual_seed(seed)
    docs = []
    for d in range(n_docs):
        words = [
            "".join(
                chr(97 + int(c))
                for c in torch.randint(0, 26, (int(torch.randint(1, 8, (1,), generator=g)),), generator=g)
            )
            for _ in range(int(torch.randint(5, 30, (1,), generator=g)))
        ]
        docs.append(" ".join(words))
    text = "\n\n".join(docs)
    path.write_text(text, encoding="utf-8")
    return text


def test_pieces_rebuild_the_text_and_end_at_boundaries(tmp_path):
    text = write_docs(tmp_path / "c.txt")
    pieces = list(text_pieces(tmp_path / "c.txt", chunk_chars=200))
    assert "".join(pieces) == text
    assert len(pieces) > 3
    for piece in pieces[:-1]:
        assert piece.endswith("\n\n") or piece.endswith("\n") or piece.endswith(" ")
        assert len(piece) <= 2 * 200


def test_a_piece_without_boundary_is_cut_at_chunk_chars(tmp_path):
    (tmp_path / "w.txt").write_text("x" * 100)
    assert [len(p) for p in text_pieces(tmp_path / "w.txt", chunk_chars=32)] == [32, 32, 32, 4]
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        list(text_pieces(tmp_path / "nope.txt"))


def test_token_pieces_reiterate_and_count_like_the_whole_text(tmp_path):
    text = write_docs(tmp_path / "c.txt")
    tok = CharTokenizer()
    pieces = TokenPieces(tok, tmp_path / "c.txt", chunk_chars=300)
    first, second = list(pieces), list(pieces)
    assert all(torch.equal(a, b) for a, b in zip(first, second))
    assert torch.equal(torch.cat(first), torch.tensor(tok(text)["input_ids"]))
    # unigram statistics do not depend on the pieces
    whole = CooccurrenceTable.build([torch.cat(first)], 128, orders=(2,), min_count=1)
    streamed = CooccurrenceTable.build(pieces, 128, orders=(2,), min_count=1)
    assert torch.equal(whole.unigram_counts, streamed.unigram_counts)
    # bigrams lost at piece cuts: one per cut at most
    assert whole.ngram_totals[2] - streamed.ngram_totals[2] == len(first) - 1


def test_stream_windows_cover_the_stream_in_shuffled_order(tmp_path):
    text = write_docs(tmp_path / "c.txt")
    tok = CharTokenizer()
    ids = torch.tensor(tok(text)["input_ids"])
    seq_len, batch = 16, 4
    n_windows = ids.numel() // seq_len
    steps = n_windows // batch

    def read():
        options = dict(seq_len=seq_len, batch_size=batch, steps=steps, shuffle_buffer=10**6, chunk_chars=250)
        return list(stream_windows(tok, tmp_path / "c.txt", **options))

    batches = read()
    assert len(batches) == steps and all(b.shape == (batch, seq_len) for b in batches)
    got = [tuple(w.tolist()) for b in batches for w in b]
    # every emitted window is a distinct consecutive, non-overlapping window of the token stream
    in_order = [tuple(w.tolist()) for w in ids[: n_windows * seq_len].reshape(n_windows, seq_len)]
    assert set(got) <= set(in_order) and len(set(got)) == len(got) == steps * batch
    assert got != sorted(got, key=in_order.index)  # shuffled
    again = read()
    assert all(torch.equal(a, b) for a, b in zip(batches, again))  # seeded


def test_stream_windows_cycle_and_reject_a_too_short_file(tmp_path):
    (tmp_path / "s.txt").write_text("abcdefghij" * 5)  # 50 tokens: 3 windows of 16
    batches = list(
        stream_windows(CharTokenizer(), tmp_path / "s.txt", seq_len=16, batch_size=2, steps=5, shuffle_buffer=4)
    )
    assert len(batches) == 5  # 10 windows from 3 per epoch: the file is read again
    (tmp_path / "t.txt").write_text("abc")
    with pytest.raises(ValueError, match="t.txt: fewer than seq_len=16 tokens"):
        list(stream_windows(CharTokenizer(), tmp_path / "t.txt", seq_len=16, batch_size=1, steps=1))


@pytest.mark.parametrize("train_base", [False, True])
def test_training_from_a_stream_equals_training_from_the_same_windows(train_base):
    """A stream of batches trains exactly as the same windows given as a tensor."""
    g = torch.Generator().manual_seed(3)
    windows = torch.randint(0, 128, (12, 16), generator=g)
    results = []
    for source in ("tensor", "stream"):
        model = MultiTokenModel(tiny_model("llama"), n_heads=3, seed=0)
        data = windows if source == "tensor" else (windows[i : i + 4] for i in range(0, 12, 4))
        history = train_heads(model, data, steps=3, batch_size=4, lr_base=1e-4, train_base=train_base, progress=False)
        results.append(([h["loss"] for h in history], [p.detach().clone() for p in model.new_parameters()]))
    (loss_a, params_a), (loss_b, params_b) = results
    assert loss_a == pytest.approx(loss_b, rel=1e-5)
    for a, b in zip(params_a, params_b):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_a_short_stream_is_an_error():
    model = MultiTokenModel(tiny_model("llama"), n_heads=3, seed=0)
    with pytest.raises(ValueError, match="ended after 1 of 3 steps"):
        train_heads(model, iter([torch.randint(0, 128, (2, 16))]), steps=3, batch_size=2, progress=False)
