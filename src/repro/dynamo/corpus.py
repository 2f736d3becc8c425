"""A training corpus too large for memory, read as a stream (the paper tier's Pile subset).

The paper trains on 5 % of the Pile (about 10 B tokens, brief §3.2): neither the text nor its token
ids fit in memory, so the paper tier reads the text file in pieces.  Pieces end at a document
boundary (a blank line, the layout the paper config asks for) where one falls inside the piece,
else at a line end, else at a space, so no word is split between two tokenizer calls.

* :func:`text_pieces`: the file as strings of about ``chunk_chars`` characters;
* :class:`TokenPieces`: the pieces tokenised, re-iterable (the co-occurrence counts read the corpus
  once per n-gram order), each piece one "document" whose n-grams are counted within it;
* :func:`stream_windows`: ``(batch_size, seq_len)`` batches of consecutive tokens, shuffled within a
  buffer of windows, cycling over the file when it ends before ``steps`` batches.

The default tier keeps its small texts in memory (``training.stream`` and
``cooccurrence.chunk_chars`` unset), where the result does not depend on piece boundaries.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch

__all__ = ["TokenPieces", "stream_windows", "text_pieces"]

_BOUNDARIES = ("\n\n", "\n", " ")


def text_pieces(path, chunk_chars: int = 1 << 22) -> Iterator[str]:
    """The text of ``path`` in order, as pieces of about ``chunk_chars`` characters (the last may be
    shorter; a piece with no boundary inside is cut at ``chunk_chars``)."""
    path = Path(path)
    if chunk_chars < 16:
        raise ValueError(f"chunk_chars must be at least 16, got {chunk_chars}")
    if not path.is_file():
        raise FileNotFoundError(f"text file {path} does not exist")
    carry = ""
    with path.open(encoding="utf-8") as handle:
        while True:
            block = handle.read(chunk_chars)
            text = carry + block
            if not block:
                if text:
                    yield text
                return
            cut = -1
            for boundary in _BOUNDARIES:
                # search the second half only, so pieces stay near chunk_chars
                at = text.rfind(boundary, len(text) // 2)
                if at >= 0:
                    cut = at + len(boundary)
                    break
            if cut <= 0:
                cut = len(text)
            yield text[:cut]
            carry = text[cut:]


class TokenPieces:
    """Token ids of the pieces of a text file; iterating again reads and tokenises the file again."""

    def __init__(self, tokenizer, path, chunk_chars: int = 1 << 22) -> None:
        self.tokenizer, self.path, self.chunk_chars = tokenizer, Path(path), int(chunk_chars)
        if not self.path.is_file():
            raise FileNotFoundError(f"text file {self.path} does not exist")

    def __iter__(self) -> Iterator[torch.Tensor]:
        for piece in text_pieces(self.path, self.chunk_chars):
            ids = self.tokenizer(piece, add_special_tokens=False)["input_ids"]
            if ids:
                yield torch.as_tensor(ids, dtype=torch.long)


def stream_windows(
    tokenizer,
    path,
    *,
    seq_len: int,
    batch_size: int,
    steps: int,
    seed: int = 0,
    shuffle_buffer: int = 4096,
    chunk_chars: int = 1 << 22,
) -> Iterator[torch.Tensor]:
    """``steps`` batches ``(batch_size, seq_len)`` of non-overlapping consecutive-token windows.

    Windows are cut from the token stream in file order (tokens left over at the end of a piece
    continue into the next piece), collected into a buffer of ``shuffle_buffer`` windows, and the
    buffer is emitted in a seeded random order.  When the file runs out first it is read again from
    the start (a second epoch).  A file shorter than one window raises ``ValueError``.
    """
    if seq_len < 1 or batch_size < 1 or steps < 1 or shuffle_buffer < 1:
        raise ValueError(
            f"seq_len, batch_size, steps and shuffle_buffer must be positive, got {seq_len}, {batch_size}, "
            f"{steps}, {shuffle_buffer}"
        )
    generator = torch.Generator().manual_seed(int(seed))
    pieces = TokenPieces(tokenizer, path, chunk_chars)
    needed = steps * batch_size

    def windows() -> Iterator[torch.Tensor]:
        while True:
            produced = 0
            rest = torch.empty(0, dtype=torch.long)
            for ids in pieces:
                stream = torch.cat([rest, ids])
                whole = stream.numel() // seq_len
                for i in range(whole):
                    produced += 1
                    yield stream[i * seq_len : (i + 1) * seq_len]
                rest = stream[whole * seq_len :]
            if produced == 0:
                raise ValueError(f"{path}: fewer than seq_len={seq_len} tokens, no training window")

    emitted = 0
    buffer: list[torch.Tensor] = []
    batch: list[torch.Tensor] = []
    source = windows()
    while emitted < needed:
        buffer.append(next(source))
        if len(buffer) < min(shuffle_buffer, needed - emitted):
            continue
        for i in torch.randperm(len(buffer), generator=generator).tolist():
            batch.append(buffer[i])
            emitted += 1
            if len(batch) == batch_size:
                yield torch.stack(batch)
                batch = []
            if emitted == needed:
                break
        buffer = []
