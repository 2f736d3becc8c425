"""Loading pickles that should hold only NumPy arrays and plain containers, without running code.

Downloaded pickles (MYOW's processed reaching sessions, the CIFAR-10 python batches) are read
through :class:`NumpyOnlyUnpickler`: it resolves only the globals a pickled NumPy array needs
(plus ``_codecs.encode``, which Python 3 protocol-2 pickles use to rebuild ``bytes``) and refuses
everything else with :class:`pickle.UnpicklingError` naming the global, so a tampered file cannot
import or call arbitrary code.  Dicts, lists, tuples, strings, bytes and numbers need no global.
"""

from __future__ import annotations

import os
import pickle
from typing import IO, Any

__all__ = ["NumpyOnlyUnpickler", "load_numpy_pickle"]


class NumpyOnlyUnpickler(pickle.Unpickler):
    """Allow the globals a pickled NumPy array needs, nothing else."""

    ALLOWED = frozenset(
        {
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("_codecs", "encode"),  # bytes in Python 3 protocol-2 pickles: encode(str, "latin1")
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) in self.ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only NumPy arrays are expected")


def load_numpy_pickle(path_or_file: str | os.PathLike | IO[bytes], encoding: str = "ASCII") -> Any:
    """Unpickle a path or binary file object with :class:`NumpyOnlyUnpickler`.

    ``encoding`` is passed to :class:`pickle.Unpickler` (``"bytes"`` keeps Python 2 ``str`` objects,
    e.g. the CIFAR-10 batches' dict keys, as ``bytes``; ``"latin1"`` is what NumPy arrays from
    Python 2 need when their keys should become ``str``).  Raises :class:`pickle.UnpicklingError`
    naming any refused global.
    """
    if hasattr(path_or_file, "read"):
        return NumpyOnlyUnpickler(path_or_file, encoding=encoding).load()
    with open(path_or_file, "rb") as f:
        return NumpyOnlyUnpickler(f, encoding=encoding).load()
