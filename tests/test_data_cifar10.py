"""CIFAR-10 preparation (repro.data.images.prepare_cifar10) and the NumPy-only unpickler
(repro.data.safe_pickle) on a tiny fake copy of the official python batches."""

from __future__ import annotations

import io
import os
import pickle
import struct

import numpy as np
import pytest

from repro.data.images import CIFAR10_CLASSES, prepare_cifar10
from repro.data.safe_pickle import NumpyOnlyUnpickler, load_numpy_pickle

PER_BATCH = 2
BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
META_NAMES = ["plane", "car", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _batch(index: int, str_keys: bool = False) -> dict:
    """Batch ``index`` (0..5): pixel values encode the batch, labels are ``index + [0, 1]``."""
    data = np.full((PER_BATCH, 3072), 10 * index, dtype=np.uint8)
    data[:, :1024] += np.arange(PER_BATCH, dtype=np.uint8)[:, None]  # first channel: image index
    labels = [index % 10, (index + 1) % 10]
    batch = {b"batch_label": b"batch %d" % index, b"data": data, b"labels": labels, b"filenames": [b"a.png"] * 2}
    return {k.decode(): v for k, v in batch.items()} if str_keys else batch


class _Py2Pickler(pickle._Pickler):
    """Writes what Python 2's cPickle wrote for the official batches: protocol 2, every ``str`` and
    ``bytes`` as a byte string (``SHORT_BINSTRING`` / ``BINSTRING``), arrays via
    ``numpy.core.multiarray._reconstruct``."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_bytes(self, obj):
        n = len(obj)
        head = pickle.SHORT_BINSTRING + bytes([n]) if n < 256 else pickle.BINSTRING + struct.pack("<i", n)
        self.write(head + obj)
        self.memoize(obj)

    def save_str(self, obj):
        self.save_bytes(obj.encode("latin1"))

    dispatch[bytes] = save_bytes
    dispatch[str] = save_str


def _dump(path, obj, py2: bool = True) -> None:
    """``obj`` pickled as Python 2 did (``py2``) or with Python 3's protocol 2."""
    buf = io.BytesIO()
    if py2:
        _Py2Pickler(buf, protocol=2).dump(obj)
    else:
        pickle.dump(obj, buf, protocol=2)
    data = buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")
    path.write_bytes(data)


@pytest.fixture
def cifar_dir(tmp_path):
    """``artifact/cifar-10-batches-py/{data_batch_1..5, test_batch, batches.meta}`` (2 images each)."""
    folder = tmp_path / "artifact" / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    for i, name in enumerate(BATCHES):
        py3 = name == "data_batch_3"  # one batch written by Python 3, with str keys
        _dump(folder / name, _batch(i, str_keys=py3), py2=not py3)
    _dump(folder / "batches.meta", {b"label_names": [n.encode() for n in META_NAMES], b"num_vis": 3072})
    return tmp_path / "artifact"


def test_prepare_cifar10_shapes_order_and_classes(cifar_dir, tmp_path):
    out = tmp_path / "images" / "cifar10.npz"
    shapes = prepare_cifar10(cifar_dir, out)
    n_train = 5 * PER_BATCH
    assert shapes == {
        "x_train": (n_train, 3, 32, 32),
        "y_train": (n_train,),
        "x_test": (PER_BATCH, 3, 32, 32),
        "y_test": (PER_BATCH,),
    }
    with np.load(out) as z:
        assert z["x_train"].dtype == np.uint8 and z["y_train"].dtype == np.int64
        assert z["x_test"].dtype == np.uint8 and z["y_test"].dtype == np.int64
        # batches 1..5 in order, channel first: channel 0 carries the image index, 1 and 2 the batch only
        assert z["x_train"][:, 1, 0, 0].tolist() == [0, 0, 10, 10, 20, 20, 30, 30, 40, 40]
        assert z["x_train"][:, 0, 31, 31].tolist() == [0, 1, 10, 11, 20, 21, 30, 31, 40, 41]
        assert z["y_train"].tolist() == [0, 1, 1, 2, 2, 3, 3, 4, 4, 5]
        assert z["x_test"][:, 2, 5, 5].tolist() == [50, 50] and z["y_test"].tolist() == [5, 6]
        assert z["classes"].tolist() == META_NAMES
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no temporary left


def test_prepare_cifar10_without_meta_uses_standard_names(cifar_dir, tmp_path):
    next(cifar_dir.rglob("batches.meta")).unlink()
    out = tmp_path / "cifar10.npz"
    prepare_cifar10(cifar_dir, out)
    with np.load(out) as z:
        assert tuple(z["classes"].tolist()) == CIFAR10_CLASSES


def test_prepare_cifar10_missing_batch(cifar_dir, tmp_path):
    next(cifar_dir.rglob("data_batch_4")).unlink()
    out = tmp_path / "cifar10.npz"
    with pytest.raises(FileNotFoundError, match=r"artifact.*data_batch_4"):
        prepare_cifar10(cifar_dir, out)
    assert not out.exists()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        prepare_cifar10(tmp_path / "nowhere", out)


class _Boom:
    """Pickles as a call of os.system: what a tampered download could hold."""

    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_prepare_cifar10_refuses_code_in_a_pickle(cifar_dir, tmp_path):
    _dump(next(cifar_dir.rglob("test_batch")), {b"data": _Boom(), b"labels": [0]})
    out = tmp_path / "cifar10.npz"
    with pytest.raises(pickle.UnpicklingError, match=r"test_batch.*refusing to load (posix|nt|os)\.system"):
        prepare_cifar10(cifar_dir, out)
    assert not out.exists() and not list(tmp_path.glob("*.npz"))


@pytest.mark.parametrize(
    "change, message",
    [
        ({b"data": np.zeros((2, 100), np.uint8)}, r"data_batch_2.*\[n, 3072\]"),
        ({b"labels": [0]}, r"data_batch_2.*2 images but labels"),
        ({b"labels": [0, 10]}, r"data_batch_2.*0\.\.9"),
        ({b"data": np.zeros((2, 3072), np.float32)}, r"data_batch_2.*uint8"),
    ],
)
def test_prepare_cifar10_validates_batches(cifar_dir, tmp_path, change, message):
    _dump(next(cifar_dir.rglob("data_batch_2")), {**_batch(1), **change})
    out = tmp_path / "cifar10.npz"
    with pytest.raises(ValueError, match=message):
        prepare_cifar10(cifar_dir, out)
    assert not out.exists()


def test_load_numpy_pickle_round_trip_and_refusal(tmp_path):
    obj = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": [1, 2.5, "x", b"y"], "c": np.int64(3)}
    for protocol in (2, 4):  # protocol 5 pickles arrays through numpy's _frombuffer: not allowed
        path = tmp_path / f"ok{protocol}.pkl"
        path.write_bytes(pickle.dumps(obj, protocol=protocol))
        back = load_numpy_pickle(path)
        np.testing.assert_array_equal(back["a"], obj["a"])
        assert back["b"] == obj["b"] and back["c"] == 3
        with open(path, "rb") as f:  # a file object works too
            assert load_numpy_pickle(f)["b"] == obj["b"]
    with pytest.raises(pickle.UnpicklingError, match=r"refusing to load .*system"):
        load_numpy_pickle(io.BytesIO(pickle.dumps(_Boom(), protocol=2)))
    assert ("_codecs", "encode") in NumpyOnlyUnpickler.ALLOWED
