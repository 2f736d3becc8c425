"""IDX reader: every dtype code round-trips, plain or gzip; bad magic and size mismatches name the file."""

from __future__ import annotations

import gzip
import struct

import numpy as np
import pytest

from repro.data.parsers.idx import read_idx

CODES = {0x08: "u1", 0x09: "i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def _idx_bytes(array: np.ndarray, code: int) -> bytes:
    head = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return head + array.astype(CODES[code]).tobytes()


@pytest.mark.parametrize("code", sorted(CODES))
@pytest.mark.parametrize("compress", [False, True])
def test_round_trip(tmp_path, code, compress):
    array = (np.arange(24).reshape(2, 3, 4) - (0 if code == 0x08 else 5)).astype(CODES[code])
    data = _idx_bytes(array, code)
    path = tmp_path / "x-idx3-ubyte"
    path.write_bytes(gzip.compress(data) if compress else data)
    out = read_idx(path)
    assert out.shape == (2, 3, 4) and out.dtype == np.dtype(CODES[code]).newbyteorder("=")
    np.testing.assert_array_equal(out, array)


def test_labels_vector(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"  # gzip detected by content, not name
    path.write_bytes(_idx_bytes(np.array([9, 0, 3], dtype="u1"), 0x08))
    assert read_idx(path).tolist() == [9, 0, 3]


@pytest.mark.parametrize(
    "data, message",
    [
        (b"\x01\x00\x08\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x00\x07\x01\x00\x00\x00\x01\x05", "not an IDX file"),
        (b"\x00\x00", "not an IDX file"),
        (b"\x00\x00\x08\x03\x00\x00\x00\x02", "declares 3 dimensions"),
        (b"\x00\x00\x08\x01\x00\x00\x00\x03\x01\x02", r"needs 3 data bytes, found 2"),
        (b"\x00\x00\x0c\x01\x00\x00\x00\x01\x00\x00\x00\x01\x00", r"needs 4 data bytes, found 5"),
        (b"\x1f\x8b\x08garbage", "corrupt gzip"),
    ],
)
def test_malformed_files_name_the_file(tmp_path, data, message):
    path = tmp_path / "bad-idx1-ubyte"
    path.write_bytes(data)
    with pytest.raises(ValueError, match=rf"bad-idx1-ubyte: .*{message}"):
        read_idx(path)
